"""Scoring drawings: fidelity, the shapes check, and diversity.

For a sample *i* of concept *c* with ImageNet classes :math:`Y_c` and rendered image :math:`x_i`, with the
classifier's class probabilities :math:`p(y \\mid x)` (EfficientNet-Lite0, :mod:`lmscope.vision.classifier`):

- fidelity :math:`F_i = \\sum_{y \\in Y_c} p(y \\mid x_i)` and top-5 hit :math:`H_i = [Y_c \\cap
  \\mathrm{top5}(x_i) \\neq \\emptyset]`;
- the null reference of the same numbers: :math:`F^0_i = \\mathrm{mean}_{c' \\neq c} \\sum_{y \\in Y_{c'}}
  p(y \\mid x_i)` over the other concepts of the drawing that have classes, i.e. how much mass an image
  gives to *some* concept's classes without being about it;
- for the shapes tier, the programmatic check of :func:`lmscope.vision.shapes.check_shapes` against the
  concept's spec (colour, shape, count of each primitive and their relation): pass and a score in [0, 1];
- diversity of concept *c* in language *l*: the mean pairwise cosine distance
  :math:`D = \\frac{2}{n(n-1)} \\sum_{i<j} (1 - \\cos(e_i, e_j))` of the classifier's pooled embeddings
  :math:`e` of its rendered images (n >= 2).

Per tier and language the table reports the rendering rate, mean fidelity over rendered images and over
all samples (a failed sample counts 0), the top-5 rate, the null fidelity, the shapes pass rate and the
mean diversity. The paper scored fidelity with an image-text model (CLIP-style); none can be installed
here, so fidelity is measured only where a concept names ImageNet classes, and the shapes tier is checked
by its spec instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmscope.vision.draw import Drawing
from lmscope.vision.shapes import check_shapes


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def pairwise_diversity(embeddings: np.ndarray) -> float | None:
    """Mean pairwise cosine distance of the rows; None with fewer than two."""
    if len(embeddings) < 2:
        return None
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    sim = e @ e.T
    iu = np.triu_indices(len(e), k=1)
    return float(np.mean(1.0 - sim[iu]))


@dataclass
class ScoreResult:
    rows: list[dict]                      # one per sample
    table: list[dict]                     # one per (tier, language)
    diversity: list[dict] = field(default_factory=list)   # one per (concept, language)
    classifier: str = "EfficientNet-Lite0 (ImageNet-1k)"

    def summary(self) -> list[str]:
        def f(x, pct=False):
            return "-" if x is None else (f"{x:.0%}" if pct else f"{x:.3f}")
        lines = [f"{'tier/language':<18} {'rendered':>8} {'fidelity':>8} {'(all)':>6} {'top-5':>6} "
                 f"{'null':>6} {'shapes':>7} {'diversity':>9}"]
        for t in self.table:
            key = (f"r{t['round']} " if "round" in t else "") + t["tier"] + "/" + t["language"]
            lines.append(f"{key:<18} {f(t['rendered'], True):>8} "
                         f"{f(t['fidelity']):>8} {f(t['fidelity_all']):>6} {f(t['top5'], True):>6} "
                         f"{f(t['null_fidelity']):>6} {f(t['shapes_pass'], True):>7} {f(t['diversity']):>9}")
        return lines

    def to_dict(self) -> dict:
        return {"classifier": self.classifier, "table": self.table, "diversity": self.diversity, "rows": self.rows}


def score_images(images: list[np.ndarray], concepts_classes: list[tuple[int, ...]], classifier,
                 others: list[tuple[int, ...]] | None = None) -> list[dict]:
    """Fidelity, top-5 hit and null fidelity of each image for its concept's classes."""
    if not images:
        return []
    probs = classifier.probabilities(images)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    names = classifier.class_names()
    out = []
    for i, classes in enumerate(concepts_classes):
        row: dict = {"top5": [[int(y), names[int(y)], round(float(probs[i, y]), 4)] for y in top5[i]]}
        if classes:
            row["fidelity"] = float(probs[i, list(classes)].sum())
            row["top5_hit"] = bool(set(classes) & set(int(y) for y in top5[i]))
            alts = [c for c in (others or []) if c and set(c) != set(classes)]
            row["null_fidelity"] = float(np.mean([probs[i, list(c)].sum() for c in alts])) if alts else None
        out.append(row)
    return out


def score_drawing(drawing: Drawing, classifier, *, batch_size: int = 16, quiet: bool = True) -> ScoreResult:
    """Score every rendered sample of a drawing folder (see the module docstring)."""
    from lmscope.progress import progress

    specs = {cid: c.spec for cid, c in drawing.concepts().items() if c.tier == "shapes"}
    all_classes = list({tuple(r.get("imagenet") or ()) for r in drawing.rows if r.get("imagenet")})
    rows = [dict(r, fidelity=None, top5_hit=None, null_fidelity=None, shapes_pass=None, shapes_score=None)
            for r in drawing.rows]
    idx = [i for i, r in enumerate(rows) if r["outcome"] in ("image", "blank") and r.get("image")]
    embeds: dict[int, np.ndarray] = {}
    for start in progress(range(0, len(idx), batch_size), desc="scoring", quiet=quiet or None):
        chunk = idx[start:start + batch_size]
        images = [drawing.image(rows[i]) for i in chunk]
        scored = score_images(images, [tuple(rows[i].get("imagenet") or ()) for i in chunk], classifier,
                              others=all_classes)
        emb = classifier.embeddings(images)
        for j, i in enumerate(chunk):
            rows[i].update(scored[j])
            embeds[i] = emb[j]
            spec = specs.get(rows[i]["concept"])
            if spec:
                check = check_shapes(images[j], spec)
                rows[i]["shapes_pass"], rows[i]["shapes_score"] = bool(check.passed), float(check.score)
    diversity = []
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r["concept"], r["language"], r.get("round", 0)), []).append(i)
    for (concept, lang, rnd), members in groups.items():
        e = np.array([embeds[i] for i in members if i in embeds and rows[i]["outcome"] == "image"])
        diversity.append({"concept": concept, "language": lang, "round": rnd, "tier": rows[members[0]]["tier"],
                          "images": len(e), "diversity": pairwise_diversity(e) if len(e) else None})
    table = []
    rounds = any("round" in r for r in rows)
    for rnd, tier, lang in sorted({(r.get("round", 0), r["tier"], r["language"]) for r in rows}):
        sel = [r for r in rows if (r.get("round", 0), r["tier"], r["language"]) == (rnd, tier, lang)]
        ok = [r for r in sel if r["outcome"] == "image"]
        with_cls = [r for r in sel if r.get("imagenet")]
        table.append({
            **({"round": rnd} if rounds else {}), "tier": tier, "language": lang, "samples": len(sel), "images": len(ok),
            "rendered": len(ok) / len(sel) if sel else None,
            "fidelity": _mean(r["fidelity"] for r in ok if r.get("imagenet")),
            "fidelity_all": (_mean((r["fidelity"] or 0.0) if r["outcome"] == "image" else 0.0 for r in with_cls)
                             if with_cls else None),
            "top5": _mean(float(r["top5_hit"]) for r in ok if r.get("top5_hit") is not None),
            "null_fidelity": _mean(r["null_fidelity"] for r in ok if r.get("null_fidelity") is not None),
            "shapes_pass": (_mean(float(bool(r["shapes_pass"])) if r["outcome"] == "image" else 0.0
                                  for r in sel) if tier == "shapes" else None),
            "diversity": _mean(d["diversity"] for d in diversity
                               if (d["round"], d["tier"], d["language"]) == (rnd, tier, lang)),
            "outcomes": {o: sum(r["outcome"] == o for r in sel) for o in sorted({r["outcome"] for r in sel})},
        })
    return ScoreResult(rows, table, diversity)
