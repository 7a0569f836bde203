"""One training loop for any torch module, with checkpoints and exact resume.

>>> def loss_fn(model, batch):                      # batch = collate([data[i] for i in indices])
...     x, y = batch
...     return F.cross_entropy(model(x), y)
>>> summary = train("runs/mlp", model, loss_fn, data, TrainConfig(steps=5_000, batch_size=32),
...                 collate=stack_pairs, eval_fn=my_eval)

:func:`train` takes a ``torch.nn.Module``, a loss function ``loss_fn(model, batch) -> scalar
tensor``, and the data as a sequence of N items (``len`` and indexing) with ``collate(items) ->
batch`` (default: the list of items). Each step draws the next ``batch_size`` indices of a seeded
epoch permutation (batches run on across epoch ends), computes the loss, back-propagates, clips the
gradient norm, and takes an AdamW step (by default weight decay on the matrices, none on biases and
norms; ``make_optimizer`` replaces it) at a rate with a linear warmup, then constant, linear or
cosine (:meth:`TrainConfig.lr_factor`, the one schedule of the project). Only parameters that require
gradients are trained and saved, so a model with a frozen base (LoRA) stores just what changes.

The language models of the grammar suites use it through :func:`train_lm`:

>>> rows = make_suite("dyck", 2000, 200, 200)
>>> texts = suite_lines(rows, "train")                   # "text<TAB>target" lines
>>> tok = WordTokenizer.build(texts)
>>> cfg = SmallConfig(vocab_size=tok.vocab_size, d_model=128, n_layers=2)
>>> summary = train_lm("runs/dyck", cfg, tok, texts, eval_fn=my_eval, config=TrainConfig(steps=20_000))

a causal :class:`SmallTransformer` trained on whole lines (``<bos> words <eos>``) with the LM loss
on every non-pad token; and :func:`lmscope.train.finetune.finetune` (LoRA, rsLoRA, full fine-tuning)
runs on it too.

Run directory
-------------
``run.json``
    The configuration: the train config (``train``) and whatever the caller adds (``run_info``; for
    :func:`train_lm` the model config and fingerprints of the texts and of the tokenizer's
    vocabulary). Starting again in the same folder with anything different is refused
    (:class:`RunDirMismatch`), except more steps for a constant-rate run, which continue it.
``metrics.jsonl``
    One row every ``eval_every`` steps: ``{step, loss, lr, seconds, **eval_fn(model, step)}``, where
    ``loss`` is the mean training loss since the previous row and ``seconds`` the training time so
    far (summed over interrupted runs).
``checkpoints/step-0000100/``
    ``model/`` (written by ``save_model``; by default ``model.safetensors`` with the trainable
    parameters and the buffers; :func:`train_lm` writes a :meth:`SmallTransformer.save` folder with
    the tokenizer, loadable on its own), ``trainer.pt`` (optimizer, scheduler, torch RNG states),
    ``trainer.json`` (step, data position, numpy / python / data-order RNG states, the running loss)
    and ``manifest.json`` (SHA-256 of every other file), written last. A checkpoint is written to a
    temporary folder and renamed into place, so it appears complete or not at all; the newest
    ``keep_checkpoints`` are kept. A checkpoint that cannot be written (a full disk) ends the run
    with one message and leaves the earlier checkpoints intact.

Resume
------
Starting in a folder that has checkpoints resumes from the newest valid one (one whose manifest
is present and matches its files, and whose files load); others are skipped with a one-line
message. Metrics rows after the resumed step are dropped. Everything the remaining steps depend on
is restored (weights and buffers, AdamW moments, schedule position, the epoch's permutation and
position, the generator drawing later permutations, torch / numpy / python global RNG states (and
CUDA's when in use), the running loss), so a run interrupted and resumed gives bit for bit the same
metrics and final weights as an uninterrupted one on the same machine (with dropout too, as the RNG
states are restored). The caller builds the model the same way each time (its frozen parts are not
stored); :func:`train` seeds torch, numpy and python's ``random`` with ``config.seed`` when it starts.
``eval_fn`` runs in eval mode without gradients, with the RNG states saved and restored around it,
so it cannot disturb them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lmscope._io import atomic_dir, dumps, sha256_file, write_json, write_jsonl
from lmscope.errors import LmscopeError
from lmscope.models.small import WEIGHTS_FILE, SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import pad_batch
from lmscope.progress import progress

SCHEDULES = ("constant", "linear", "cosine")
RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
TRAINER_PT = "trainer.pt"
TRAINER_JSON = "trainer.json"
MODEL_DIR = "model"
RUN_FORMAT = 1


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Training settings of :func:`train`; checked by :meth:`validate` (LmscopeError).

    ``warmup``: linear warmup steps from 0 to ``lr``; None means ``min(1000, steps // 10)``.
    After warmup the rate stays at ``lr`` ("constant") or decays to 0 at ``steps`` ("linear",
    "cosine"). ``grad_clip`` 0 turns clipping off. ``eval_every`` / ``ckpt_every`` 0: no metrics
    rows / no checkpoints except the final one (a final checkpoint is always written).
    ``keep_checkpoints`` 0 keeps them all. ``add_bos`` / ``add_eos``: how :func:`train_lm` encodes
    its texts (other uses ignore them).
    """

    steps: int = 10_000
    batch_size: int = 8
    lr: float = 1e-4
    warmup: int | None = None
    schedule: str = "constant"
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    eval_every: int = 500
    ckpt_every: int = 1000
    seed: int = 0
    keep_checkpoints: int = 2
    add_bos: bool = True
    add_eos: bool = True

    def __post_init__(self):
        self.betas = tuple(self.betas)

    def validate(self) -> TrainConfig:
        def integer(name, minimum):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise LmscopeError(f"train config: {name} must be an integer, got {v!r}")
            if v < minimum:
                raise LmscopeError(f"train config: {name} must be >= {minimum}, got {v}")

        integer("steps", 1)
        integer("batch_size", 1)
        for name in ("eval_every", "ckpt_every", "keep_checkpoints", "seed"):
            integer(name, 0)
        if self.warmup is not None:
            integer("warmup", 0)
        for name in ("lr", "weight_decay", "grad_clip"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise LmscopeError(f"train config: {name} must be a non-negative number, got {v!r}")
        if self.lr == 0:
            raise LmscopeError("train config: lr must be positive")
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise LmscopeError(f"train config: betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.schedule not in SCHEDULES:
            raise LmscopeError(f"train config: unknown schedule {self.schedule!r}; choose one of "
                               f"{', '.join(SCHEDULES)}")
        return self

    @property
    def warmup_steps(self) -> int:
        return min(1000, self.steps // 10) if self.warmup is None else self.warmup

    def lr_factor(self, step: int) -> float:
        """The multiplier of ``lr`` for optimizer step ``step`` (0-based)."""
        w = self.warmup_steps
        if step < w:
            return (step + 1) / w
        if self.schedule == "constant" or self.steps <= w:
            return 1.0
        frac = min(1.0, (step - w) / (self.steps - w))
        if self.schedule == "linear":
            return 1.0 - frac
        return 0.5 * (1.0 + math.cos(math.pi * frac))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def suite_lines(rows: list[dict], split: str | None = "train") -> list[str]:
    """Training lines from suite rows: ``"text<TAB>target"`` (or ``text`` when the target is empty)."""
    out = []
    for r in rows:
        if split is not None and r.get("split") != split:
            continue
        target = r.get("target")
        out.append(f"{r['text']}\t{target}" if target else r["text"])
    return out


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------
def texts_fingerprint(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def vocab_fingerprint(tokenizer) -> str:
    tokens = getattr(tokenizer, "tokens", None)
    if tokens is None and hasattr(tokenizer, "get_vocab"):
        vocab = tokenizer.get_vocab()
        tokens = sorted(vocab, key=vocab.get)
    if tokens is None:
        raise LmscopeError("the tokenizer exposes no vocabulary (tokens or get_vocab())")
    return hashlib.sha256(json.dumps(list(tokens)).encode("utf-8")).hexdigest()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def _first_difference(old: dict, new: dict) -> str | None:
    a, b = _flatten(old), _flatten(new)
    for key in list(b) + [k for k in a if k not in b]:
        if a.get(key, "<missing>") != b.get(key, "<missing>"):
            return key
    return None


def _rng_states() -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = states["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def _save_tensors(obj: Any, path: Path) -> None:
    """torch.save, kept apart so that tests can make it fail."""
    torch.save(obj, path)


def _message(text: str) -> None:
    print(f"lmscope: {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Model state
# ------------------------------------------------------------------------------------------------
def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What training changes: the parameters that require gradients and the (persistent) buffers,
    by ``state_dict`` name; a tensor shared under several names (tied weights) appears once."""
    frozen = {name for name, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        if name in frozen or id(t) in seen:
            continue
        seen.add(id(t))
        out[name] = t
    return out


def save_weights(model: torch.nn.Module, folder: Path) -> None:
    """The default ``save_model``: :func:`trainable_state` as ``folder/model.safetensors``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in trainable_state(model).items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})


def load_weights(model: torch.nn.Module, folder: Path) -> None:
    """The default ``load_model``: read ``folder/model.safetensors`` into ``model``; LmscopeError
    unless it holds every tensor of :func:`trainable_state` and nothing the model lacks."""
    from safetensors.torch import load_file

    weights = load_file(str(Path(folder) / WEIGHTS_FILE))
    expected = trainable_state(model)
    known = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in known]
    if missing or unexpected:
        what = f"lacks {missing[0]}" if missing else f"has an unexpected tensor {unexpected[0]}"
        raise LmscopeError(f"it {what}")
    for k, v in weights.items():
        if tuple(v.shape) != tuple(known[k].shape):
            raise LmscopeError(f"its {k} has shape {tuple(v.shape)}, the model's {tuple(known[k].shape)}")
    model.load_state_dict(weights, strict=False)


def adamw(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The default optimizer: AdamW over the parameters that require gradients, weight decay on
    matrices (2+ dimensions) and none on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise LmscopeError("the model has no parameters that require gradients; nothing to train")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=config.betas)


def lr_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The project's schedule (:meth:`TrainConfig.lr_factor`) as a torch scheduler."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: config.lr_factor(s))


# ------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------
def _checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Checkpoint folders, oldest first (by step in the name)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit():
            found.append((int(p.name[5:]), p))
    return [p for _, p in sorted(found)]


def verify_checkpoint(path: str | os.PathLike) -> dict:
    """The manifest of a checkpoint folder after checking every file against it; LmscopeError if
    the manifest is missing or corrupt, or a file is missing or has changed."""
    path = Path(path)
    mf = path / MANIFEST
    if not mf.is_file():
        raise LmscopeError(f"checkpoint {path.name} has no {MANIFEST} (incomplete)")
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise LmscopeError(f"checkpoint {path.name}: unreadable {MANIFEST}") from None
    for req in (TRAINER_PT, TRAINER_JSON):
        if req not in files:
            raise LmscopeError(f"checkpoint {path.name}: {MANIFEST} does not list {req}")
    if not any(rel.startswith(f"{MODEL_DIR}/") for rel in files):
        raise LmscopeError(f"checkpoint {path.name}: {MANIFEST} lists no file of {MODEL_DIR}/")
    for rel, digest in files.items():
        f = path / rel
        if not f.is_file():
            raise LmscopeError(f"checkpoint {path.name}: {rel} is missing")
        try:
            actual = sha256_file(f)
        except OSError as e:
            raise LmscopeError(f"checkpoint {path.name}: cannot read {rel} ({e.strerror})") from None
        if actual != digest:
            raise LmscopeError(f"checkpoint {path.name}: checksum mismatch in {rel}")
    return manifest


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint folder of ``run_dir`` whose manifest matches its files, or None."""
    for p in reversed(_checkpoint_dirs(Path(run_dir))):
        try:
            verify_checkpoint(p)
        except LmscopeError:
            continue
        return p
    return None


def _first_line(e: BaseException) -> str:
    text = str(e)
    return text.splitlines()[0] if text else type(e).__name__


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer=None, scheduler=None,
                    load_model: Callable[[torch.nn.Module, Path], None] | None = None) -> dict:
    """Verify the checkpoint at ``path`` and load it into ``model`` (with ``load_model``, default
    :func:`load_weights`) and ``optimizer``, ``scheduler`` when given. Returns the trainer state:
    ``step``, the data position, RNG states, running loss. LmscopeError if the checkpoint is
    incomplete, corrupt or does not fit the model."""
    from safetensors import SafetensorError

    path = Path(path)
    verify_checkpoint(path)
    try:
        state = json.loads((path / TRAINER_JSON).read_text(encoding="utf-8"))
        tensors = torch.load(path / TRAINER_PT, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise LmscopeError(f"checkpoint {path.name}: unreadable ({_first_line(e)})") from None
    try:
        (load_model or load_weights)(model, path / MODEL_DIR)
    except LmscopeError as e:
        raise LmscopeError(f"checkpoint {path.name} does not fit the model: {e}") from None
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise LmscopeError(f"checkpoint {path.name}: unreadable ({_first_line(e)})") from None
    try:
        if optimizer is not None:
            optimizer.load_state_dict(tensors["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(tensors["scheduler"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise LmscopeError(f"checkpoint {path.name}: optimizer state does not fit ({e})") from None
    state["rng"]["torch"] = tensors["torch_rng"]
    if "cuda_rng" in tensors:
        state["rng"]["cuda"] = tensors["cuda_rng"]
    return state


def _write_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, save_model, optimizer, scheduler,
                      trainer_state: dict) -> Path:
    path = run_dir / CHECKPOINTS / f"step-{step:07d}"
    try:
        with atomic_dir(path) as tmp:
            save_model(model, tmp / MODEL_DIR)
            rng = trainer_state["rng"]
            tensors = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                       "torch_rng": rng["torch"]}
            if "cuda" in rng:
                tensors["cuda_rng"] = rng["cuda"]
            _save_tensors(tensors, tmp / TRAINER_PT)
            js = dict(trainer_state, rng={k: v for k, v in rng.items() if k not in ("torch", "cuda")})
            (tmp / TRAINER_JSON).write_text(json.dumps(js), encoding="utf-8")
            files = {p.relative_to(tmp).as_posix(): sha256_file(p)
                     for p in sorted(tmp.rglob("*")) if p.is_file()}
            write_json(tmp / MANIFEST, {"step": step, "files": files})  # last: marks the folder complete
    except OSError as e:
        why = e.strerror or str(e)
        raise LmscopeError(f"could not write checkpoint {path}: {why}; the earlier checkpoints are intact") \
            from None
    return path


def _prune(run_dir: Path, keep: int) -> None:
    if keep <= 0:
        return
    for p in _checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)


def _clean_partial(run_dir: Path) -> None:
    """Remove temporary folders left by a run killed while writing a checkpoint."""
    root = run_dir / CHECKPOINTS
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".step-") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------
def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of ``run_dir/metrics.jsonl`` ([] if none); a torn last line (a killed run) is ignored."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    rows = []
    lines = path.read_bytes().split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            if i == len(lines) - 1:  # a write cut short inside a character
                break
            raise LmscopeError(f"{path}:{i + 1}: not valid UTF-8") from None
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise LmscopeError(f"{path}:{i + 1}: malformed JSON") from None
        rows.append(row)
    return rows


def _truncate_metrics(run_dir: Path, step: int) -> None:
    path = run_dir / METRICS_FILE
    if path.exists():
        rows = read_metrics(run_dir)
        kept = [r for r in rows if r.get("step", 0) <= step]
        if len(kept) != len(rows) or path.read_bytes().count(b"\n") != len(rows):
            write_jsonl(path, kept)


# ------------------------------------------------------------------------------------------------
# Data order
# ------------------------------------------------------------------------------------------------
class DataOrder:
    """Batches of indices from seeded epoch permutations (numpy's default generator); a batch that
    reaches the end of an epoch continues in the next one. Its state is plain JSON."""

    def __init__(self, n: int, seed: int):
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self.index = 0
        self.perm = self.rng.permutation(n).tolist()

    def next_batch(self, size: int) -> list[int]:
        out: list[int] = []
        while len(out) < size:
            if self.index >= self.n:
                self.epoch += 1
                self.index = 0
                self.perm = self.rng.permutation(self.n).tolist()
            take = min(size - len(out), self.n - self.index)
            out.extend(self.perm[self.index: self.index + take])
            self.index += take
        return out

    def state(self) -> dict:
        return {"epoch": self.epoch, "index": self.index, "perm": self.perm,
                "rng": self.rng.bit_generator.state}

    def restore(self, state: dict) -> None:
        if len(state["perm"]) != self.n:
            raise LmscopeError("checkpoint data position does not fit the number of training items")
        self.epoch, self.index, self.perm = int(state["epoch"]), int(state["index"]), list(state["perm"])
        self.rng.bit_generator.state = state["rng"]


# ------------------------------------------------------------------------------------------------
# Run directory
# ------------------------------------------------------------------------------------------------
class RunDirMismatch(LmscopeError):
    """A run directory that belongs to another configuration; ``key`` is the first setting that differs."""

    def __init__(self, run_dir: Path, key: str):
        super().__init__(f"{run_dir} belongs to a different configuration: {key}")
        self.run_dir, self.key = run_dir, key


def _extends(old: dict, new: dict) -> bool:
    """Whether ``new`` only raises the step count of a constant-rate run with an unchanged warmup (the
    warmup steps in effect: a run that took the default and one that names the same number agree)."""
    try:
        a, b = dict(old["train"]), dict(new["train"])
        if b["steps"] <= a["steps"] or a.get("schedule") != "constant" or b.get("schedule") != "constant":
            return False
        warm_a = min(1000, a["steps"] // 10) if a.get("warmup") is None else a["warmup"]
        warm_b = min(1000, b["steps"] // 10) if b.get("warmup") is None else b["warmup"]
        if warm_a != warm_b:
            return False
        a.pop("steps"), b.pop("steps")
        a["warmup"] = b["warmup"] = warm_a  # the default warmup and the same number given: one schedule
        old, new = {**old, "train": a}, {**new, "train": b}
        # a method that records its whole configuration in ``meta.config`` (pushdown runs) repeats the two
        for rec in (old, new):
            cfg = rec.get("meta", {}).get("config") if isinstance(rec.get("meta"), dict) else None
            if isinstance(cfg, dict) and "steps" in cfg:
                rec["meta"] = {**rec["meta"], "config": {**cfg, "warmup": warm_a}}
                rec["meta"]["config"].pop("steps")
        return _first_difference(old, new) is None
    except (KeyError, TypeError):
        return False


def run_record(config: TrainConfig, run_info: dict | None = None) -> dict:
    """What :func:`train` records in ``run.json``: the format, ``run_info`` and the train config."""
    info: dict = {"format": RUN_FORMAT}
    info.update(run_info or {})
    info["train"] = config.to_dict()
    return info


def check_run_dir(run_dir: str | os.PathLike, run_info: dict, create: bool = True) -> None:
    """Record ``run_info`` (see :func:`run_record`) in ``run_dir/run.json``, or check it against the
    one there.

    :class:`RunDirMismatch` when the folder holds a run of another configuration (more steps for a
    constant-rate run are accepted and recorded: the same run, continued; a ``meta`` entry that an
    older run lacks is adopted); LmscopeError when the folder is not empty and has no run file.
    ``create=False`` only checks: it writes nothing.
    """
    run_dir = Path(run_dir)
    run_file = run_dir / RUN_FILE
    if run_file.is_file():
        try:
            old = json.loads(run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise LmscopeError(f"{run_file} is unreadable; it is not a training run of this version") from None
        new = json.loads(dumps(run_info))
        adopted = "meta" in new and "meta" not in old  # a run from before its settings were recorded
        if adopted:
            old = {**old, "meta": new["meta"]}
        key = _first_difference(old, new)
        if key is not None and _extends(old, new):
            if create:
                write_json(run_file, run_info)  # a longer constant-rate run: the same run, continued
            return
        if key is not None:
            raise RunDirMismatch(run_dir, key)
        if adopted and create:
            write_json(run_file, old)
        return
    if run_dir.exists():
        if not run_dir.is_dir():
            raise LmscopeError(f"run directory path exists and is not a directory: {run_dir}")
        if any(run_dir.iterdir()):
            raise LmscopeError(f"{run_dir} is not empty and has no {RUN_FILE}; choose a new run directory")
    if create:
        write_json(run_file, run_info)


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------
def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def train(run_dir: str | os.PathLike, model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
          data: Sequence, config: TrainConfig | None = None, *, collate: Callable[[list], Any] | None = None,
          eval_fn: Callable[[torch.nn.Module, int], dict | None] | None = None,
          save_model: Callable[[torch.nn.Module, Path], None] | None = None,
          load_model: Callable[[torch.nn.Module, Path], None] | None = None,
          make_optimizer: Callable[[torch.nn.Module, TrainConfig], torch.optim.Optimizer] | None = None,
          run_info: dict | None = None, quiet: bool | None = None, stop_after: int | None = None,
          desc: str = "train") -> dict:
    """Train ``model`` in ``run_dir`` for ``config.steps`` steps, resuming if it has checkpoints
    (see the module docstring).

    ``data``: N items (``len`` and ``data[i]``); ``collate(items)`` makes a batch of them (default:
    the list). ``loss_fn(model, batch)``: the scalar loss to minimize. ``eval_fn(model, step)``: a
    dict of metrics added to each metrics row. ``save_model(model, folder)`` / ``load_model(model,
    folder)``: how a checkpoint stores the model (default :func:`save_weights` / :func:`load_weights`).
    ``make_optimizer(model, config)``: default :func:`adamw`. ``run_info`` (JSON): the rest of the
    configuration, recorded in ``run.json`` beside ``config``; a different one is refused.
    ``stop_after`` ends the run after that many steps without a checkpoint, as if it had been killed
    (for tests and time-sliced runs). ``desc``: the progress bar's label. The model stays on its
    device; ``collate`` (or ``loss_fn``) puts a batch there.

    Returns ``{"step", "steps", "seconds", "resumed_from", "final_checkpoint", "last_metrics",
    "run_dir"}``; ``final_checkpoint`` is None unless the run reached ``config.steps``.
    """
    config = (config or TrainConfig()).validate()
    if not isinstance(model, torch.nn.Module):
        raise LmscopeError(f"train needs a torch.nn.Module, got {type(model).__name__}")
    try:
        n_items = len(data)
    except TypeError:
        raise LmscopeError("train needs the data as a sequence of items (with len)") from None
    if n_items == 0:
        raise LmscopeError("train needs at least one training item")
    collate = collate or list
    save_model = save_model or save_weights
    make_optimizer = make_optimizer or adamw
    run_dir = Path(run_dir)
    check_run_dir(run_dir, run_record(config, run_info))
    _clean_partial(run_dir)

    _seed_all(config.seed)
    optimizer = make_optimizer(model, config)
    scheduler = lr_scheduler(optimizer, config)
    order = DataOrder(n_items, config.seed)
    step, loss_sum, loss_count, seconds = 0, 0.0, 0, 0.0
    resumed_from = None

    checkpoints = _checkpoint_dirs(run_dir)
    initial = {k: v.detach().clone() for k, v in trainable_state(model).items()} if checkpoints else None
    for ckpt in reversed(checkpoints):
        try:
            state = load_checkpoint(ckpt, model, optimizer, scheduler, load_model=load_model)
            order.restore(state["data"])
        except (LmscopeError, KeyError, TypeError, ValueError) as e:
            _message(f"skipping checkpoint {ckpt.name}: {e}")
            continue
        step, seconds = int(state["step"]), float(state["seconds"])
        loss_sum, loss_count = float(state["loss_sum"]), int(state["loss_count"])
        _set_rng_states(state["rng"])
        resumed_from = ckpt
        break
    if resumed_from is None and initial is not None:
        # nothing loaded: start afresh (a failed load may have touched the model or the optimizer)
        with torch.no_grad():
            model.load_state_dict(initial, strict=False)
        optimizer = make_optimizer(model, config)
        scheduler = lr_scheduler(optimizer, config)
        order = DataOrder(n_items, config.seed)
    del initial
    _truncate_metrics(run_dir, step)
    if resumed_from is not None and quiet is not True:
        _message(f"resuming {run_dir} from step {step}")

    def trainer_state() -> dict:
        return {"step": step, "seconds": seconds, "loss_sum": loss_sum, "loss_count": loss_count,
                "data": order.state(), "rng": _rng_states()}

    final_ckpt = resumed_from if step >= config.steps else None
    last_row = (read_metrics(run_dir) or [None])[-1]
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    shown = _bar_fields(last_row or {})
    bar = progress(total=config.steps, initial=step, desc=desc, quiet=quiet)
    try:
        while step < config.steps:
            if stop_after is not None and step >= stop_after:
                break
            t0 = time.perf_counter()
            batch = collate([data[i] for i in order.next_batch(config.batch_size)])
            loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise LmscopeError(f"the training loss became {loss.item()} at step {step + 1}; "
                                   f"try a lower learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += loss.item()
            loss_count += 1
            seconds += time.perf_counter() - t0
            bar.update(1)
            if step % 10 == 0 or step == config.steps:
                bar.set_postfix(loss=f"{loss.item():.4f}", **shown, refresh=False)

            if config.eval_every and (step % config.eval_every == 0 or step == config.steps):
                row = {"step": step, "loss": loss_sum / max(loss_count, 1), "lr": lr, "seconds": seconds}
                if eval_fn is not None:
                    row.update(_run_eval(eval_fn, model, step))
                    shown = _bar_fields(row)
                try:
                    with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
                        f.write(dumps(row, indent=None) + "\n")
                        f.flush()
                except OSError as e:
                    raise LmscopeError(f"could not write {run_dir / METRICS_FILE}: {e.strerror or e}") from None
                last_row = row
                loss_sum, loss_count = 0.0, 0
            if (config.ckpt_every and step % config.ckpt_every == 0) or step == config.steps:
                final_ckpt = _write_checkpoint(run_dir, step, model, save_model, optimizer, scheduler,
                                               trainer_state())
                _prune(run_dir, config.keep_checkpoints)
    finally:
        bar.close()
    return {"step": step, "steps": config.steps, "seconds": seconds, "run_dir": str(run_dir),
            "resumed_from": str(resumed_from) if resumed_from else None,
            "final_checkpoint": str(final_ckpt) if final_ckpt and step >= config.steps else None,
            "last_metrics": last_row}


def _bar_fields(row: dict, limit: int = 4) -> dict:
    """The accuracies (and t-score) of the last evaluation, for the progress bar."""
    keys = [k for k in row if k.endswith("acc") or k in ("t_score", "val_loss")]
    return {k: f"{row[k]:.3f}" for k in keys[:limit] if isinstance(row[k], (int, float))
            and not isinstance(row[k], bool)}


def _run_eval(eval_fn, model: torch.nn.Module, step: int) -> dict:
    """``eval_fn(model, step)`` in eval mode without gradients, the RNG states kept as they were."""
    saved = _rng_states()
    model.eval()
    try:
        with torch.no_grad():
            result = eval_fn(model, step)
    finally:
        model.train()
        _set_rng_states(saved)
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise LmscopeError(f"eval_fn must return a dict, got {type(result).__name__}")
    reserved = {"step", "loss", "lr", "seconds"} & set(result)
    if reserved:
        raise LmscopeError(f"eval_fn returned the reserved key {sorted(reserved)[0]!r}")
    return result


# ------------------------------------------------------------------------------------------------
# Language models on text lines
# ------------------------------------------------------------------------------------------------
def lm_batch_loss(model: SmallTransformer, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every non-pad target token of a right-padded batch."""
    logits = model(ids, attention_mask=mask).logits[:, :-1]
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def train_lm(run_dir: str | os.PathLike, model_config: SmallConfig, tokenizer, train_texts: list[str],
             eval_fn: Callable[[SmallTransformer, int], dict] | None = None, config: TrainConfig | None = None,
             quiet: bool | None = None, stop_after: int | None = None, meta: dict | None = None,
             device: str = "cpu") -> dict:
    """Train a causal :class:`SmallTransformer` on ``train_texts`` with :func:`train` in ``run_dir``,
    resuming if it has checkpoints (see the module docstring). Each text is one item, encoded with
    ``<bos>`` / ``<eos>`` as ``config.add_bos`` / ``add_eos`` say; a batch is right-padded.
    ``stop_after`` ends the run after that many steps without a checkpoint, as if it had been killed
    (for tests and time-sliced runs). ``meta`` (JSON) is recorded in the run file with the rest of
    the configuration (for example the evaluation settings of ``eval_fn``): resuming with a different
    ``meta`` is refused like any other change. Checkpoints hold a :meth:`SmallTransformer.save`
    folder with the tokenizer. ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``): where the model
    trains; not part of the configuration, so a run may resume on another device.

    Returns ``{"step", "steps", "resumed_from", "final_checkpoint", "last_metrics", "run_dir"}``.
    """
    from lmscope.models.hooks import resolve_device

    dev = resolve_device(device)
    config = (config or TrainConfig()).validate()
    if not isinstance(model_config, SmallConfig):
        raise LmscopeError("model_config must be a SmallConfig")
    if not model_config.causal:
        raise LmscopeError("train_lm trains causal language models; the model config has causal=false")
    texts = list(train_texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise LmscopeError("train_lm needs a non-empty list of training texts")
    encoded = [tokenizer.encode(t, add_bos=config.add_bos, add_eos=config.add_eos) for t in texts]
    for i, ids in enumerate(encoded):
        if len(ids) < 2:
            raise LmscopeError(f"training text {i} has fewer than 2 tokens; nothing to predict")
        if len(ids) > model_config.max_len:
            raise LmscopeError(f"training text {i} has {len(ids)} tokens, more than max_len "
                               f"{model_config.max_len}")
    top = max(max(ids) for ids in encoded)
    if top >= model_config.vocab_size:
        raise LmscopeError(f"the tokenizer gives id {top}; the model's vocab_size is {model_config.vocab_size}")
    pad_id = getattr(tokenizer, "pad_id", model_config.pad_id)
    if pad_id != model_config.pad_id:
        raise LmscopeError(f"the tokenizer's pad id {pad_id} differs from the model's pad_id {model_config.pad_id}")

    run_info = {"model": model_config.to_dict(),
                "data": {"n_texts": len(texts), "sha256": texts_fingerprint(texts)},
                "tokenizer": {"vocab_sha256": vocab_fingerprint(tokenizer)}}
    if meta is not None:
        run_info["meta"] = meta
    saved_tokenizer = tokenizer if hasattr(tokenizer, "save") else None

    def save_model(model: SmallTransformer, folder: Path) -> None:
        model.save(folder, tokenizer=saved_tokenizer)

    def loss_fn(model: SmallTransformer, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return lm_batch_loss(model, *(t.to(dev) for t in batch))

    summary = train(run_dir, SmallTransformer(model_config, seed=config.seed).to(dev), loss_fn, encoded, config,
                    collate=lambda items: pad_batch(items, model_config.pad_id), eval_fn=eval_fn,
                    save_model=save_model, run_info=run_info, quiet=quiet, stop_after=stop_after)
    summary.pop("seconds")
    return summary
