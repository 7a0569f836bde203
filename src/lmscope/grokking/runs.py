"""Reading a grokking run folder: its configuration, task and metrics rows, and its models.

A run folder (written by :func:`lmscope.grokking.grok_train`) holds ``run.json``, ``metrics.jsonl``
and ``checkpoints/step-NNNNNNN/``. From ``run.json`` alone the run's data can be rebuilt
(:func:`rebuild_run`: the suite is regenerated from its seed and sizes and checked against the
fingerprints of the training texts and of the vocabulary), and so can its initial model
(:func:`initial_model`, the seeded random initialization that training started from) and the fixed
training sentences whose tree projections the run logs (``t_score`` and ``f1``).
:func:`run_model` loads the model of any kept checkpoint, or the initial one at step 0.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from lmscope.errors import LmscopeError
from lmscope.train.loop import CHECKPOINTS, RUN_FILE, read_metrics


def _read_run_file(path: Path) -> dict:
    run_file = path / RUN_FILE
    if not run_file.is_file():
        raise LmscopeError(f"{path} is not a training run (no {RUN_FILE})")
    try:
        info = json.loads(run_file.read_text(encoding="utf-8"))
        int(info["model"]["n_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LmscopeError(f"{run_file} is unreadable") from None
    return info


def load_run(run_dir: str | os.PathLike) -> dict:
    """``{"name", "path", "task", "layers", "rows"}`` of a grokking run folder (LmscopeError if it is
    not one or has no metrics)."""
    path = Path(run_dir)
    info = _read_run_file(path)
    layers = int(info["model"]["n_layers"])
    task = (info.get("meta") or {}).get("task") if isinstance(info.get("meta"), dict) else None
    grok = path / "grok.json"
    if task is None and grok.is_file():
        try:
            task = json.loads(grok.read_text(encoding="utf-8")).get("task")
        except (OSError, ValueError):
            task = None
    rows = read_metrics(path)
    if not rows:
        raise LmscopeError(f"{path} has no metrics rows yet")
    return {"name": path.name, "path": str(path), "task": task, "layers": layers, "rows": rows}


# ------------------------------------------------------------------------------------------------
# Checkpoints and models
# ------------------------------------------------------------------------------------------------
def checkpoint_steps(run_dir: str | os.PathLike, min_age: float = 0.0) -> list[int]:
    """The steps of the run's checkpoints (folders with a manifest, which is written last), oldest
    first; ``min_age`` (seconds) leaves out those written more recently than that (a run still
    training). Step 0 (the initial model, see :func:`initial_model`) is not among them."""
    root = Path(run_dir) / CHECKPOINTS
    steps = []
    if root.is_dir():
        now = time.time()
        for p in root.iterdir():
            if not (p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit()):
                continue
            manifest = p / "manifest.json"
            if manifest.is_file() and now - manifest.stat().st_mtime >= min_age:
                steps.append(int(p.name[5:]))
    return sorted(steps)


def initial_model(run_dir: str | os.PathLike):
    """The run's model before its first step: ``SmallTransformer`` of the run's model config with
    the run's seed (how :func:`lmscope.train.loop.train_lm` builds it), in eval mode."""
    from lmscope.models.small import SmallConfig, SmallTransformer

    info = _read_run_file(Path(run_dir))
    try:
        config = SmallConfig.from_dict(info["model"])
        seed = int(info["train"]["seed"])
    except (KeyError, TypeError, ValueError) as e:
        raise LmscopeError(f"{Path(run_dir) / RUN_FILE}: unusable model or train settings ({e})") from None
    return SmallTransformer(config, seed=seed).eval()


def run_model(run_dir: str | os.PathLike, step: int):
    """The run's model at ``step``: the kept checkpoint of that step (verified against its
    manifest), or :func:`initial_model` for step 0. LmscopeError if there is no such checkpoint."""
    from lmscope.models.small import SmallTransformer
    from lmscope.train.loop import MODEL_DIR, verify_checkpoint

    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise LmscopeError(f"step must be a non-negative integer, got {step!r}")
    path = Path(run_dir)
    if step == 0:
        return initial_model(path)
    _read_run_file(path)
    folder = path / CHECKPOINTS / f"step-{step:07d}"
    if not folder.is_dir():
        kept = checkpoint_steps(path)
        raise LmscopeError(f"{path} has no checkpoint at step {step} (kept: "
                           f"{', '.join(map(str, kept)) if kept else 'none'})")
    verify_checkpoint(folder)
    return SmallTransformer.load(folder / MODEL_DIR).eval()


# ------------------------------------------------------------------------------------------------
# The run's data, rebuilt
# ------------------------------------------------------------------------------------------------
@dataclass
class RunData:
    """What a grokking run was trained and evaluated on, rebuilt from its ``run.json``.

    ``rows``: the suite's rows (every split, held-out rows included); ``tokenizer``: its word
    tokenizer; ``tree_sentences`` / ``tree_trees``: the training sentences (declaratives) and gold
    trees whose tree projections the run logs at every evaluation; ``seed``: the run's seed (also
    the seed of those projections' t-scores)."""

    task: str
    seed: int
    layers: int
    rows: list[dict]
    tokenizer: object
    tree_sentences: list[str]
    tree_trees: list[str]

    def tree_set(self, n: int) -> tuple[list[str], list[str]]:
        """``n`` training sentences and their gold trees, drawn as the run draws its logged ones (the
        same seeded order, so the logged sentences are the first ``tree_sample`` of it, as a set)."""
        from lmscope.grokking.metrics import TRANSFORM_MARKER, declarative, pick_trees

        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise LmscopeError(f"the number of sentences must be a positive integer, got {n!r}")
        marker = TRANSFORM_MARKER.get(self.task)
        train = [r for r in self.rows if r["split"] == "train" and (marker is None or r.get("task") == marker)]
        pairs = [declarative(r, self.task) for r in pick_trees(train, n, self.seed)]
        return [p[0] for p in pairs], [p[1] for p in pairs]


def rebuild_run(run_dir: str | os.PathLike) -> RunData:
    """Regenerate a grokking run's suite and tokenizer from its ``run.json`` (task, seed, split sizes)
    and check them against the run's fingerprints of the training texts and of the vocabulary;
    LmscopeError if the folder is not a grokking run or the data cannot be rebuilt exactly."""
    from lmscope.grokking.run import suite_data
    from lmscope.models.small_tokenizer import WordTokenizer
    from lmscope.train.loop import texts_fingerprint, vocab_fingerprint

    path = Path(run_dir)
    info = _read_run_file(path)
    meta = info.get("meta") if isinstance(info.get("meta"), dict) else {}
    task = meta.get("task")
    ev = meta.get("eval") if isinstance(meta.get("eval"), dict) else None
    if task is None or ev is None:
        raise LmscopeError(f"{path / RUN_FILE} does not record a grokking task and its evaluation settings")
    try:
        seed = int(info["train"]["seed"])
        n_train = int(info["data"]["n_texts"])
        n_val, n_gen = int(ev["n_val"]), int(ev["n_gen"])
        n_test = int(ev.get("n_test") or 0)
        tree_sample = ev.get("tree_sample")
        want_texts, want_vocab = info["data"]["sha256"], info["tokenizer"]["vocab_sha256"]
    except (KeyError, TypeError, ValueError) as e:
        raise LmscopeError(f"{path / RUN_FILE}: incomplete settings ({e})") from None
    rows, _, _, texts, vocab_texts = suite_data(task, n_train, n_val, n_gen, n_test, seed)
    if texts_fingerprint(texts) != want_texts:
        raise LmscopeError(f"{path}: the regenerated training texts differ from the run's (another version of "
                           "the suite generator?)")
    tokenizer = WordTokenizer.build(vocab_texts)
    if vocab_fingerprint(tokenizer) != want_vocab:
        raise LmscopeError(f"{path}: the regenerated vocabulary differs from the run's")
    data = RunData(task, seed, int(info["model"]["n_layers"]), rows, tokenizer, [], [])
    if tree_sample:
        data.tree_sentences, data.tree_trees = data.tree_set(int(tree_sample))
    return data
