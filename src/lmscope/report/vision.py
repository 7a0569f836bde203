"""The pages of the vision check-up: a gallery per tier of a drawing folder (every sample, with its outcome),
and the scores page (the table per tier and language, the best and worst drawings by fidelity)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lmscope.report.html import Report


def _caption(row: dict) -> str:
    rnd = f" r{row['round']}" if "round" in row else ""
    what = row["outcome"] if row["outcome"] != "image" else "ok"
    return f"{row['text'][:60]} [{row['language']} #{row['sample']}{rnd}] {what}"


def write_galleries(folder: str | Path) -> list[Path]:
    """``<tier>/index.html`` for each tier of the drawing folder, and an ``index.html`` linking them."""
    folder = Path(folder)
    rows = [json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines() if x.strip()]
    manifest = json.loads((folder / "drawing.json").read_text())
    pages = []
    tiers = sorted({r["tier"] for r in rows})
    for tier in tiers:
        rep = Report(folder / tier, f"Drawings: {tier}")
        rep.kv({"LM": manifest.get("lm"), "languages": ", ".join(manifest.get("languages", [])),
                "samples per concept": manifest.get("samples"), "temperature": manifest.get("temperature")})
        sel = [r for r in rows if r["tier"] == tier]
        ok = sum(r["outcome"] == "image" for r in sel)
        rep.text(f"{ok} of {len(sel)} samples rendered to an image. Failed samples show their outcome; the code "
                 f"of each is in ../code/.")
        cells = []
        for r in sel:
            if r.get("image"):
                cells.append(("../" + r["image"], _caption(r)))
        rep.gallery(cells)
        failed = [r for r in sel if not r.get("image")]
        if failed:
            rep.heading("Samples without an image")
            rep.table(pd.DataFrame([{"concept": r["concept"], "language": r["language"], "sample": r["sample"],
                                     "outcome": r["outcome"], "detail": r.get("detail", "")[:120]}
                                    for r in failed]))
        pages.append(rep.write())
    top = Report(folder, f"Drawings by {manifest.get('lm')}")
    counts = manifest.get("outcomes", {})
    if counts:
        top.table(pd.DataFrame([{"tier/language": k, **v} for k, v in counts.items()]))
    for tier in tiers:
        top.link(folder / tier / "index.html", f"gallery: {tier}")
    pages.append(top.write())
    return pages


def fill_score_report(out: str | Path, drawing, result) -> Path:
    """``index.html`` of a scores folder: the table, then the highest- and lowest-fidelity drawings."""
    import shutil

    out = Path(out)
    rep = Report(out, "Vision check-up: scores")
    rep.text(f"Drawing folder: {drawing.folder}. Fidelity is the probability that {result.classifier} gives "
             "the concept's ImageNet classes (concepts without classes have none); null is the mass the same "
             "images give to other concepts' classes; shapes is the programmatic check of the shapes tier; "
             "diversity is the mean pairwise cosine distance of the classifier's embeddings within a concept.",
             note=True)
    rep.table(pd.DataFrame([{k: v for k, v in t.items() if k != "outcomes"} for t in result.table]))
    scored = [r for r in result.rows if r.get("fidelity") is not None and r.get("image")]
    scored.sort(key=lambda r: -r["fidelity"])
    (out / "images").mkdir(exist_ok=True)
    for title, chosen in (("Highest fidelity", scored[:12]), ("Lowest fidelity", scored[-12:][::-1])):
        if not chosen:
            continue
        rep.heading(title)
        cells = []
        for r in chosen:
            name = Path(r["image"]).name
            shutil.copyfile(drawing.folder / r["image"], out / "images" / name)
            top = r["top5"][0][1] if r.get("top5") else "?"
            cells.append((f"images/{name}", f"{r['text'][:50]}: {r['fidelity']:.2f} (top: {top})"))
        rep.gallery(cells)
    return rep.write()
