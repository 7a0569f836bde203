"""A Vision Check-up for Language Models: the reproduction of Sharma et al. (2024) at our scale.

Every step is an lmscope command, run through the shared sweep runner (`lmscope.train.sweep`: local
processes, or a Ray cluster with --ray); steps that finished are skipped and LM answers are cached
(runs/vision/lm.sqlite), so the script resumes.

The bundled models are served by llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`, one
thread each, on fixed loopback ports so the cache keys stay the same); --lms LABEL=SPEC uses other servers.

1. ``draw-LM``: `lmscope vision draw` of --per-tier concepts of each tier, in Python and SVG, --samples each,
   temperature 0.8.
2. ``score-LM``: `lmscope vision score` (ImageNet classifier fidelity, shapes check, diversity).
   ``rec-LM``: `lmscope vision recognize` (K = 5 candidates of the same tier, stripped code).
   ``correct-LM``: `lmscope vision correct` of the first sample of each concept and language for --rounds
   rounds without feedback, and (for the first LM, --fb-rounds rounds) with the classifier's top labels.
   ``ssl``: `lmscope vision ssl` on the first LM's images against random-shapes and dead-leaves images of
   the same number and the random initialization, evaluated on scikit-learn's digits and Fashion-MNIST.

    .venv/bin/python experiments/vision_checkup.py                 # the page (runs resume)
    .venv/bin/python experiments/vision_checkup.py --report-only   # the page from the runs so far
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _doc import PLACEHOLDER, md_table, mean_range, write_keeping_reading

from lmscope.train.sweep import SweepJob, run_sweep

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = {"coder": ("qwen2.5-coder-0.5b", 8391), "smollm2": ("smollm2-135m", 8392)}
SIZES = dict(per_tier=20, samples=4, rounds=2, fb_rounds=1, ssl_steps=1500)


def _done(path: Path, name: str) -> bool:
    return (path / name).is_file()


def _start_server(label: str, port: int, log_path: Path):
    name = BUNDLED[label][0]
    gguf = subprocess.run([sys.executable, "-m", "lmscope", "models", "path", name], capture_output=True,
                          text=True, check=True).stdout.strip()
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "4096", "--n_threads", "1", "--n_threads_batch", "1",
         "--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            with urllib.request.urlopen(url + "/models", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    return proc, log, f"{url}#{name}"


@contextlib.contextmanager
def servers(labels: list[str], given: dict[str, str], log_dir: Path):
    """Start a llama.cpp server for each bundled label not given by --lms, and a second one for the first label
    (its recognition and feedback-ablation jobs run there, beside its correction); yield label -> spec, with
    ``LABEL/b`` for the second server."""
    procs, specs = [], dict(given)
    try:
        for i, label in enumerate(labels):
            if label in specs:
                continue
            port = BUNDLED[label][1]
            for key, p in [(label, port)] + ([(f"{label}/b", port + 10)] if i == 0 else []):
                proc, log, spec = _start_server(label, p, log_dir / f"server-{key.replace('/', '-')}.log")
                procs.append((proc, log))
                specs[key] = spec
        yield specs
    finally:
        for p, log in procs:
            p.terminate()
            p.wait(timeout=30)
            log.close()


def score_spec(label: str, spec: str) -> str:
    """Recognition scores five long prompts per item: the local backend scores a request's continuations in
    one batch, where the server re-reads the whole prompt for each (about 25 s a continuation here)."""
    return f"local:{BUNDLED[label][0]}" if label in BUNDLED else spec


def stage_jobs(args, runs: Path, specs: dict[str, str]) -> list[list[SweepJob]]:
    cache = ["--lm-cache", str(runs / "lm.sqlite")]
    stages: list[list[SweepJob]] = [[], []]
    per_tier = [] if args.full else ["--per-tier", str(args.per_tier)]
    second = {k.split("/")[0]: v for k, v in specs.items() if k.endswith("/b")}
    specs = {k: v for k, v in specs.items() if not k.endswith("/b")}
    for i, (label, spec) in enumerate(specs.items()):
        spec_b = second.get(label, spec)
        d = runs / f"draw-{label}"
        j = SweepJob(f"draw-{label}", d, ["vision", "draw", "--lm", spec, *cache, "--tier", "all", "--language",
                                          "both", *per_tier, "--samples", str(args.samples), "--seed", "0",
                                          "--jobs", "1", "--out", str(d), "--quiet"])
        j.status = "skipped" if _done(d, "drawing.json") else j.status
        stages[0].append(j)
        later = [SweepJob(f"score-{label}", runs / f"score-{label}", ["vision", "score", str(d), "--out",
                                                                       str(runs / f"score-{label}"), "--quiet"]),
                 SweepJob(f"rec-{label}", runs / f"rec-{label}", ["vision", "recognize", str(d), "--lm",
                                                                   score_spec(label, spec_b), *cache,
                                                                   "--k", "5", "--out", str(runs / f"rec-{label}"),
                                                                   "--quiet"])]
        for fb in (["none", "classifier"] if i == 0 else ["none"]):
            name = f"correct-{label}" + ("-fb" if fb == "classifier" else "")
            rounds = args.rounds if fb == "none" else args.fb_rounds
            later.append(SweepJob(name, runs / name, ["vision", "correct", str(d), "--lm",
                                                      spec if fb == "none" else spec_b, *cache, "--rounds",
                                                      str(rounds), "--samples", "1", "--feedback", fb,
                                                      "--jobs", "1", "--out", str(runs / name), "--quiet"]))
        for j in later:
            marker = {"score": "scores.json", "rec": "recognition.json"}.get(j.name.split("-")[0], "drawing.json")
            j.status = "skipped" if _done(j.run_dir, marker) else j.status
        stages[1] += later
    first = next(iter(specs))   # the SSL runs need only the first LM's drawings: they run beside stage 2
    for seed in args.ssl_seeds:
        name = "ssl" if seed == 0 else f"ssl-s{seed}"
        j = SweepJob(name, runs / name, ["vision", "ssl", str(runs / f"draw-{first}"), "--steps", str(args.ssl_steps),
                                         "--eval", "digits,fashion-mnist", "--seed", str(seed), "--out",
                                         str(runs / name), "--quiet"])
        j.status = "skipped" if _done(runs / name, "comparison.json") else j.status
        stages[1].append(j)
    # a server answers its jobs one at a time: its corrections first, then recognition, the feedback ablation,
    # and the SSL runs (CPU only) last
    def priority(job: SweepJob) -> int:
        if job.name.startswith("correct-"):
            return 2 if job.name.endswith("-fb") else 0
        return {"rec": 1, "score": 3, "ssl": 4}[job.name.split("-")[0]]
    stages[1].sort(key=priority)
    return stages[:2]


# ------------------------------------------------------------------------------------------ the page
def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _f(x, pct=False) -> str:
    return "–" if x is None else (f"{100 * x:.0f}%" if pct else f"{x:.4f}")


def contact_sheet(draw: Path, path: Path, per_row: int = 10, side: int = 96) -> bool:
    """Rows of the first rendered images of each (tier, language) of a drawing folder, with a label."""
    from PIL import Image, ImageDraw

    if not (draw / "samples.jsonl").is_file():
        return False
    rows = [json.loads(x) for x in (draw / "samples.jsonl").read_text().splitlines() if x.strip()]
    groups = sorted({(r["tier"], r["language"]) for r in rows})
    sheet = Image.new("RGB", (110 + per_row * side, len(groups) * side), "white")
    pen = ImageDraw.Draw(sheet)
    for g, (tier, lang) in enumerate(groups):
        pen.text((4, g * side + side // 2 - 6), f"{tier}\n{lang}", fill="black")
        chosen = [r for r in rows if (r["tier"], r["language"]) == (tier, lang) and r["outcome"] == "image"][:per_row]
        for i, r in enumerate(chosen):
            with Image.open(draw / r["image"]) as im:
                sheet.paste(im.convert("RGB").resize((side - 4, side - 4)), (110 + i * side, g * side + 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return True


def args_rounds(runs: Path, labels: list[str]) -> list[int]:
    rounds = []
    for label in labels:
        for suffix in ("", "-fb"):
            m = _json(runs / f"correct-{label}{suffix}" / "drawing.json")
            rounds += [c["round"] for c in (m or {}).get("curve", [])]
    return rounds


def correction_plot(runs: Path, labels: list[str], path: Path) -> bool:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    drawn = False
    for label in labels:
        for suffix in ("", "-fb"):
            m = _json(runs / f"correct-{label}{suffix}" / "drawing.json")
            if not m:
                continue
            curve = m["curve"]
            rounds = sorted({c["round"] for c in curve})
            for ax, key in zip(axes, ("rendered", "fidelity_all")):
                ys = []
                for r in rounds:
                    vals = [c[key] for c in curve if c["round"] == r and c[key] is not None]
                    ys.append(sum(vals) / len(vals) if vals else float("nan"))
                ax.plot(rounds, ys, marker="o", label=label + suffix)
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    for ax in axes:
        ax.set_xticks(range(max(args_rounds(runs, labels), default=0) + 1))
    axes[0].set(title="rendered (mean over tiers and languages)", xlabel="round")
    axes[1].set(title="fidelity, failed = 0 (objects and scenes)", xlabel="round")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def page(args, runs: Path, labels: list[str], wall: dict) -> str:
    out = ["# A Vision Check-up for Language Models (Sharma et al. 2024)", "",
           "Generated by `experiments/vision_checkup.py` from the runs in `runs/vision`; rerun it to "
           "regenerate every number. " + f"Sizes: {'all' if args.full else args.per_tier} concepts per tier, "
           f"{args.samples} samples per concept and language, {args.rounds} correction rounds ({args.fb_rounds} with "
           f"feedback), SSL "
           f"{args.ssl_steps} steps.", ""]
    out += ["## Drawing: rendering, fidelity, diversity", "",
            "Rendered: share of samples whose code ran in the sandbox to a non-blank image. Fidelity: the "
            "probability EfficientNet-Lite0 gives the concept's ImageNet classes (mean over rendered images; "
            "*all*: a failed sample counts 0); null: the mass the same images give to other concepts' classes. "
            "Shapes: the programmatic check of the shapes tier (failed samples count as failing). Diversity: "
            "mean pairwise cosine distance of the classifier's embeddings within a concept.", ""]
    rows = []
    for label in labels:
        s = _json(runs / f"score-{label}" / "scores.json")
        for t in (s or {}).get("table", []):
            rows.append([label, t["tier"], t["language"], t["samples"], _f(t["rendered"], True), _f(t["fidelity"]),
                         _f(t["fidelity_all"]), _f(t["top5"], True), _f(t["null_fidelity"]),
                         _f(t["shapes_pass"], True), _f(t["diversity"])])
    out += [md_table(["LM", "tier", "language", "samples", "rendered", "fidelity", "fidelity (all)", "top-5",
                      "null", "shapes pass", "diversity"], rows), ""]
    figures = ROOT / "docs" / "results" / "vision-checkup"
    if contact_sheet(runs / f"draw-{labels[0]}", figures / "drawings.png"):
        out += [f"The first rendered drawings of {labels[0]} per tier and language (all are in "
                f"`runs/vision/draw-{labels[0]}/<tier>/index.html`):", "", "![drawings](vision-checkup/drawings.png)", ""]
    rows = []
    for label in labels:
        m = _json(runs / f"draw-{label}" / "drawing.json")
        for key, c in (m or {}).get("outcomes", {}).items():
            if key != "all":
                rows.append([label, key] + [c.get(k, 0) for k in ("samples", "image", "blank", "syntax-error",
                                                                   "runtime-error", "timeout", "limit",
                                                                   "sandbox-error")])
    out += ["Outcomes of every sample:", "", md_table(["LM", "tier/language", "samples", "image", "blank", "syntax",
                                                      "runtime", "timeout", "limit", "sandbox"], rows), ""]
    out += ["## Recognition from stripped code", "",
            "The LM picks the concept among K = 5 candidates of the same tier (scored by mean log-probability "
            "per token) from the drawing's code with comments, docstrings, telling strings and identifiers "
            "removed; chance is 20%. The classifier picks among the same candidates from the image, where all "
            "candidates have ImageNet classes.", ""]
    rows = []
    for label in labels:
        r = _json(runs / f"rec-{label}" / "recognition.json")
        for t in (r or {}).get("accuracy_table", []):
            rows.append([label, t.get("tier"), t.get("language"), t.get("n"), _f(t.get("accuracy"), True),
                         _f(t.get("classifier_accuracy"), True), t.get("classifier_n", "–")])
    out += [md_table(["LM", "tier", "language", "items", "LM accuracy", "classifier accuracy", "classifier items"],
                     rows), ""]
    for label in labels:
        if not (runs / f"rec-{label}" / "recognition.json").is_file():
            out += [f"{label}: no recognition (none of its drawings rendered to an image, or the step did not run).",
                    ""]
    out += ["## Self-correction", "", "The first sample of each concept and language, improved by the same LM "
            "for each round; *fb*: with the classifier's top-3 labels quoted as feedback.", ""]
    rows = []
    for label in labels:
        for suffix in ("", "-fb"):
            m = _json(runs / f"correct-{label}{suffix}" / "drawing.json")
            for c in (m or {}).get("curve", []):
                rows.append([label + suffix, c["round"], c["tier"], c["language"], c["samples"],
                             _f(c["rendered"], True), _f(c["fidelity_all"]), _f(c["top5"], True),
                             _f(c["shapes_pass"], True)])
    out += [md_table(["LM", "round", "tier", "language", "samples", "rendered", "fidelity (all)", "top-5",
                      "shapes pass"], rows), ""]
    if correction_plot(runs, labels, figures / "correction.png"):
        out += ["![self-correction](vision-checkup/correction.png)", ""]
    out += ["## A vision model trained only on LM images", ""]
    comps = [c for c in (_json(runs / ("ssl" if seed == 0 else f"ssl-s{seed}") / "comparison.json")
                         for seed in args.ssl_seeds) if c]
    if comps:
        c = comps[0]
        out += [f"SimCLR-style model (config below) trained on {c['n_images']} images of each source (the "
                f"{labels[0]} drawings that rendered; as many random-shapes and dead-leaves images); linear probe and "
                f"20-NN accuracy on real images ({c['rows'][0].get('n_train')} training and "
                f"{c['rows'][0].get('n_test')} test images per set). Mean [min, max] over {len(comps)} seed(s) "
                "(the seed sets the model's initialization, the augmentations, the procedural images and the "
                "probe's split).", ""]
        rows = []
        for r0 in c["rows"]:
            same = [r for comp in comps for r in comp["rows"]
                    if (r["dataset"], r["encoder"]) == (r0["dataset"], r0["encoder"])]
            rows.append([r0["dataset"], r0["encoder"], mean_range([r["probe_acc"] for r in same]),
                         mean_range([r["knn_acc"] for r in same]), _f(r0.get("chance"))])
        out += [md_table(["dataset", "encoder", "linear probe", "20-NN", "chance"], rows), "",
                "Config: `" + json.dumps(c["config"]) + "`", ""]
    out += ["## Wall time", "", md_table(["step", "seconds"], [[k, f"{v:.0f}"] for k, v in wall.items()]), ""]
    out += [(ROOT / "experiments" / "vision_setup.md").read_text().strip(), "", "## Reading", "", PLACEHOLDER, ""]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lms", default="coder,smollm2", help="bundled labels (coder, smollm2) or LABEL=SPEC, "
                                                          "comma-separated; the first is the main one")
    ap.add_argument("--per-tier", type=int, default=SIZES["per_tier"])
    ap.add_argument("--full", action="store_true", help="the whole concept set")
    ap.add_argument("--samples", type=int, default=SIZES["samples"])
    ap.add_argument("--rounds", type=int, default=SIZES["rounds"])
    ap.add_argument("--fb-rounds", type=int, default=SIZES["fb_rounds"], help="rounds of the feedback ablation")
    ap.add_argument("--ssl-steps", type=int, default=SIZES["ssl_steps"])
    ap.add_argument("--ssl-seeds", default="0,1,2", help="seeds of the SSL comparison (default 0,1,2)")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "vision"))
    ap.add_argument("--jobs", type=int, default=3, help="sweep workers (default 3)")
    ap.add_argument("--ray", metavar="ADDRESS", help="run the jobs on a Ray cluster (auto, local, HOST:PORT)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    args.ssl_seeds = [int(x) for x in args.ssl_seeds.split(",") if x.strip()]
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    given, labels = {}, []
    for item in args.lms.split(","):
        label, _, spec = item.partition("=")
        labels.append(label)
        if spec:
            given[label] = spec
        elif label not in BUNDLED:
            ap.error(f"--lms {item!r}: a bundled label ({', '.join(BUNDLED)}) or LABEL=SPEC")
    wall_path = runs / "wall.json"
    wall = _json(wall_path) or {}
    if not args.report_only:
        with servers(labels, given, runs) as specs:
            for i, stage in enumerate(stage_jobs(args, runs, specs)):
                todo = [j for j in stage if j.status != "skipped"]
                if todo:
                    t0 = time.time()
                    res = run_sweep(stage, runs, workers=args.jobs, threads=1, ray=args.ray)
                    wall[f"stage {i + 1}"] = wall.get(f"stage {i + 1}", 0) + time.time() - t0
                    wall_path.write_text(json.dumps(wall))
                    if res["failed"]:
                        print(f"{len(res['failed'])} job(s) failed: {', '.join(res['failed'])}", file=sys.stderr)
    doc = ROOT / "docs" / "results" / "vision-checkup.md"
    write_keeping_reading(doc, page(args, runs, labels, wall))
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
