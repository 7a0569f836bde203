"""The steps that start from a drawing folder: recognition of its samples and a contrastive model trained on
its images, each against its baselines.

>>> drawing = load_drawing("draw")
>>> rec = recognize_drawing(lm, drawing, k=5)          # the LM names the concept of stripped code
>>> ssl = ssl_from_drawing("runs/ssl", drawing, steps=600, datasets=["digits"])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmscope.errors import LmscopeError
from lmscope.vision.draw import Drawing

SSL_SOURCES = ("lm-images", "random-shapes", "dead-leaves")


def recognize_drawing(lm, drawing: Drawing, *, k: int = 5, seed: int = 0, classifier=None, quiet: bool = True):
    """Recognition of every sample that rendered: the LM picks its concept among ``k`` candidates of the same
    tier from the stripped code; the classifier picks among the same candidates from the image.

    The candidate pool of a tier is the whole bundled concept set's tier (so a small drawing still has
    distractors)."""
    from lmscope.vision.classifier import open_classifier
    from lmscope.vision.concepts import load_concepts
    from lmscope.vision.recognize import recognize

    concepts = drawing.concepts()
    pools = {}
    items = []
    for r in drawing.rows:
        if r["outcome"] != "image":
            continue
        c = concepts[r["concept"]]
        if c.tier not in pools:
            pools[c.tier] = load_concepts(c.tier)
            if c not in pools[c.tier]:
                pools[c.tier] = [c] + pools[c.tier]
        items.append((c, drawing.code(r), r["language"], drawing.image(r), pools[c.tier]))
    if not items:
        raise LmscopeError(f"{drawing.folder}: no sample rendered to an image; nothing to recognize")
    return recognize(lm, items, k=k, seed=seed, classifier=classifier or open_classifier())


def recognition_lines(result) -> list[str]:
    """Accuracy per tier and language, the LM's and the classifier's, against chance."""
    def pct(x) -> str:
        return "-" if x is None or x != x else f"{x:.0%}"
    lines = [f"{'tier/language':<18} {'items':>5} {'LM':>5} {'classifier':>10} (chance {result.chance:.0%})"]
    for r in result.accuracy().itertuples():
        cls = f"{pct(r.classifier_accuracy)} of {int(r.classifier_n)}" if r.classifier_n else "-"
        lines.append(f"{r.tier + '/' + r.language:<18} {int(r.n):>5} {pct(r.accuracy):>5} {cls:>10}")
    return lines


def drawing_images(drawing: Drawing) -> np.ndarray:
    """The rendered images of a drawing folder (N x 256 x 256 x 3 uint8)."""
    images = [drawing.image(r) for r in drawing.rows if r["outcome"] == "image" and r.get("image")]
    if not images:
        raise LmscopeError(f"{drawing.folder}: no sample rendered to an image; nothing to train on")
    return np.stack(images)


def ssl_from_drawing(run_dir, drawing: Drawing, *, steps: int = 600, datasets=("digits",), procedural: bool = True,
                     seed: int = 0, n_train: int = 1000, n_test: int = 500, quiet: bool = True):
    """Train the contrastive model on the drawing's images and, with ``procedural``, on as many random-shapes
    and dead-leaves images with the same settings; evaluate each (and the random initialization) on the real
    sets. Writes ``comparison.json`` into ``run_dir`` last; an interrupted run resumes."""
    from lmscope._io import write_json
    from lmscope.vision.procedural import generate
    from lmscope.vision.realdata import DATASETS
    from lmscope.vision.ssl import SSLConfig, compare

    datasets = [d.strip() for d in datasets if d.strip()]
    bad = [d for d in datasets if d not in DATASETS]
    if bad or not datasets:
        raise LmscopeError(f"unknown --eval {', '.join(bad) or '(none)'}; choose from {', '.join(DATASETS)}")
    images = drawing_images(drawing)
    if len(images) < 2:
        raise LmscopeError(f"{drawing.folder}: contrastive training needs at least 2 rendered images, found 1")
    config = SSLConfig(steps=steps, seed=seed, batch_size=min(128, len(images)))
    sources = {"lm-images": images}
    if procedural:
        for name in SSL_SOURCES[1:]:
            sources[name] = generate(name, len(images), config.size, seed=seed + 1)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = compare(run_dir, sources, config, datasets=datasets, n_images=len(images), n_train=n_train,
                     n_test=n_test, seed=seed, quiet=quiet)
    write_json(run_dir / "comparison.json", {"drawing": str(Path(drawing.folder).resolve()), **result.to_dict()})
    return result


def ssl_lines(result) -> list[str]:
    lines = [f"trained on {result.n_images} images each; accuracy on real images (linear probe / {20}-NN)"]
    for row in result.table.itertuples():
        lines.append(f"{row.dataset:<14} {row.encoder:<14} probe {row.probe_acc:.3f}  kNN {row.knn_acc:.3f}")
    return lines
