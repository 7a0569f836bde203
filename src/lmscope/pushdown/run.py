"""A pushdown training run: a suite (or a user's bracketed trees), a word tokenizer, a pushdown LM (or
the plain relative-position baseline of the same size) and :func:`lmscope.pushdown.train.train_pushdown`
with an ``eval_fn`` that logs, at every evaluation:

* ``val_loss`` / ``val_ppl``: the LM loss and perplexity of held-out in-distribution lines read with
  their GOLD tapes (teacher-forced; the beam-based perplexity, an upper bound that needs no gold tree,
  is :func:`lmscope.pushdown.evaluate.pushdown_eval`'s);
* ``id_acc`` / ``gen_acc``: task accuracy on the val and the generalization split with the model's OWN
  greedy attachments (:func:`lmscope.pushdown.evaluate.task_scores`);
* ``f1``: parse F1 of the greedy (beam 1) parses of training declaratives (the suite's gold trees;
  for a tree file, held-out lines) against gold.

The held-out test rows (``n_test`` per kind) are scored once, at the final step (``test_*`` keys).
Whole lines are trained on (:func:`lmscope.pushdown.data.line_attachments`). The configuration is
recorded in ``run.json`` (``meta``); starting again with another one is refused, the same one resumes.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lmscope._settings import Settings, setting
from lmscope.errors import LmscopeError, check_number

TASKS = ("question-formation", "tense-inflection", "dyck", "arith")
TREES = "trees"  # the task of a run on a user's tree file
# the answer words of a task, in the vocabulary even when a small sample lacks one
TRANSFORM_WORDS = {"question-formation": ("do", "does", "don't", "doesn't")}


def parse_layers(text) -> str:
    """``all``, ``none`` or a list of layer indices (``0,2``) in canonical form; LmscopeError else."""
    if isinstance(text, (list, tuple)):
        text = ",".join(str(i) for i in text) if text else "none"
    value = str(text).strip().lower()
    if value in ("all", "none"):
        return value
    try:
        idx = sorted({int(x) for x in value.split(",")})
    except ValueError:
        raise LmscopeError(f"pushdown layers must be 'all', 'none' or layer indices such as 0,2; got {text!r}") from None
    if not idx or idx[0] < 0:
        raise LmscopeError(f"pushdown layers must be indices >= 0; got {text!r}")
    return ",".join(map(str, idx))


@dataclass(frozen=True)
class PushdownRunConfig(Settings):
    """The settings of one pushdown run: model, training and evaluation. The command-line options of
    `lmscope pushdown train` are generated from the fields with a help text (see :mod:`lmscope._settings`).
    LmscopeError for a value out of range."""

    WHAT = "pushdown_train option"
    COMMAND = "lmscope pushdown train"

    layers: int = setting(2, "transformer blocks (default 2)", minimum=1)
    pushdown_layers: str = setting("all", "the layers that read the stack tape: all (default), none (the plain "
                                          "relative-position baseline of the same size), or indices such as 0,2",
                                   parse=parse_layers)
    depth_cap: int = setting(32, "depths at or above this share one depth embedding (default 32)", minimum=2)
    steps: int = setting(2000, "training steps (default 2000)", minimum=1)
    seed: int = setting(0, "seed of the data, the weights and the order (default 0)", minimum=0)
    d_model: int = setting(64, "model width (default 64)", minimum=1)
    heads: int = setting(4, "attention heads (default 4)", minimum=1)
    d_ff: int = setting(256, "MLP width (default 256)", minimum=1)
    batch_size: int = setting(8, "batch size (default 8)", minimum=1)
    lr: float = setting(1e-3, "peak learning rate (default 1e-3)", number_above=0.0)
    eval_every: int = setting(100, "steps between metric rows (default 100)", minimum=0)
    ckpt_every: int = setting(500, "steps between checkpoints (default 500)", minimum=0)
    n_train: int = setting(2000, "training rows (default 2000; a tree file: all its lines but the held-out ones)",
                           minimum=1)
    n_val: int = setting(200, "in-distribution rows (default 200; a tree file: held-out lines)", minimum=1)
    n_gen: int = setting(200, "generalization rows (default 200)", minimum=1)
    sample_size: int = setting(100, "rows scored per split at each evaluation (default 100)", minimum=1)
    parse_sample: int = setting(50, "sentences parsed for F1 at each evaluation (default 50; 0: none)", minimum=0)
    n_test: int = setting(200, "held-out rows per split, scored once at the final step (default 200; 0: none)",
                          minimum=0)
    dyck_train_depth: int = setting(4, "dyck: the deepest nesting in training; the generalization split is "
                                       "deeper (default 4)", minimum=1)
    warmup: int | None = setting(None, "linear warmup steps (default min(1000, steps/10))", minimum=0)
    dropout: float = setting(0.0, "dropout probability (default 0)")
    weight_decay: float = setting(0.0, "AdamW weight decay (default 0)")
    keep_checkpoints: int = setting(2, "newest checkpoints kept (default 2; 0 keeps every one)", minimum=0)

    def __post_init__(self):
        self.check_settings()
        check_number("lr", self.lr, above=0.0)
        check_number("dropout", self.dropout, 0.0, below=1.0)
        check_number("weight_decay", self.weight_decay, 0.0)
        if self.d_model % self.heads:
            raise LmscopeError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        for i in self.layer_indices() or ():
            if i >= self.layers:
                raise LmscopeError(f"pushdown layer {i} does not exist: the model has {self.layers} layers "
                                   f"(0..{self.layers - 1})")

    def layer_indices(self) -> tuple[int, ...] | None:
        """The pushdown layers as the model config takes them (None: all; (): the plain model)."""
        if self.pushdown_layers == "all":
            return None
        if self.pushdown_layers == "none":
            return ()
        return tuple(int(i) for i in self.pushdown_layers.split(","))

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------ data
@dataclass
class RunData:
    """A run's data: ``train`` rows, ``by_split`` (val and the generalization split, the scored samples
    drawn from them), ``heldout`` (``{"id": rows, "gen": rows}``, scored at the end), ``gen_split``."""

    task: str
    train: list[dict]
    by_split: dict[str, list[dict]]
    heldout: dict[str, list[dict]]
    gen_split: str | None


def _split(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["split"], []).append(r)
    return out


def suite_run_data(task: str, c: PushdownRunConfig) -> RunData:
    """The rows of a suite run (Dyck: the depth split, training depth <= ``dyck_train_depth``)."""
    from lmscope.data.suites import get_suite, make_suite

    if task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    from lmscope.data.dyck import generalization_split

    options = {"train_max_depth": c.dyck_train_depth} if task == "dyck" else {}
    deepest = get_suite("dyck").options["max_depth"]
    if task == "dyck" and not c.dyck_train_depth < deepest:
        raise LmscopeError(f"dyck_train_depth must be below the Dyck suite's max_depth {deepest} (the "
                           f"generalization split nests deeper), got {c.dyck_train_depth}")
    rows = make_suite(task, c.n_train, c.n_val + c.n_test, c.n_gen + c.n_test, seed=c.seed, **options)
    by = _split(rows)
    gen = generalization_split(c.dyck_train_depth) if task == "dyck" else get_suite(task).splits[2]
    val, gens = by.get("val", []), by.get(gen, [])
    return RunData(task, by.get("train", []), {"val": val[:c.n_val], gen: gens[:c.n_gen]},
                   {"id": val[c.n_val:], "gen": gens[c.n_gen:]}, gen)


def tree_file_data(path, c: PushdownRunConfig) -> RunData:
    """The rows of a run on a bracketed tree file: a seeded draw of ``min(n_val, n / 10)`` lines (at
    least one) held out for evaluation, the rest (up to ``n_train``) trained on."""
    from lmscope.pushdown.data import tree_file_rows

    rows = [dict(r, split="train") for r in tree_file_rows(path)]
    if len(rows) < 2:
        raise LmscopeError(f"{path}: a tree file needs at least 2 trees (one is held out for evaluation)")
    order = np.random.default_rng(c.seed).permutation(len(rows))
    n_held = max(1, min(c.n_val, len(rows) // 10))
    held = [dict(rows[i], split="val") for i in sorted(order[:n_held])]
    train = [rows[i] for i in sorted(order[n_held:])][:c.n_train]
    return RunData(TREES, train, {"val": held}, {"id": [], "gen": []}, None)


def line_example(tokenizer, row: dict, task: str) -> tuple[list[int], list[int]]:
    """``(ids with BOS and EOS, gold attachments)`` of a row's whole line."""
    from lmscope.pushdown.data import line_attachments
    from lmscope.pushdown.evaluate import sentence_ids

    words, attach = line_attachments(row, task)
    return sentence_ids(tokenizer, words), list(attach)


def _sample(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    if n is None or len(rows) <= n:
        return list(rows)
    idx = np.random.default_rng(seed).permutation(len(rows))[:n]
    return [rows[i] for i in sorted(idx)]


# ------------------------------------------------------------------------------------------ eval_fn
def make_eval_fn(data: RunData, tokenizer, c: PushdownRunConfig, final_step: int | None = None):
    """``eval_fn(model, step) -> dict`` of a pushdown run (see the module docstring)."""
    from lmscope.data.trees import leaves, parse_bracketed, parse_f1
    from lmscope.pushdown.evaluate import parse_sentences, task_rows, task_scores, teacher_forced_nll

    task = data.task
    val = data.by_split.get("val", [])
    ppl_rows = _sample(val, c.sample_size, c.seed)
    ppl_examples = [line_example(tokenizer, r, task) for r in ppl_rows]
    scored = {}
    if task != TREES:
        scored = {"id": _sample(task_rows(task, val), c.sample_size, c.seed),
                  "gen": _sample(task_rows(task, data.by_split.get(data.gen_split, [])), c.sample_size, c.seed)}
    parse_pool = val if task == TREES else data.train
    gold = [parse_bracketed(r["tree"], labeled=False) for r in _sample(parse_pool, c.parse_sample, c.seed + 1)]
    tests = {k: task_rows(task, rows) for k, rows in data.heldout.items() if rows and task != TREES}

    def eval_fn(model, step: int) -> dict:
        out: dict = {}
        if ppl_examples:
            nll, n = teacher_forced_nll(model, ppl_examples)
            out["val_loss"] = nll / n
            out["val_ppl"] = math.exp(min(nll / n, 700.0))
        for name, rows in scored.items():
            out[f"{name}_acc"] = task_scores(model, tokenizer, task, rows)["acc"]
        if gold and model.config.has_tape:
            trees = [t for t, _ in parse_sentences(model, tokenizer, [leaves(g) for g in gold], beam=1)]
            out["f1"] = parse_f1(trees, gold)["f1"]
        if final_step is not None and step == final_step:
            for name, rows in tests.items():
                out[f"test_{name}_acc"] = task_scores(model, tokenizer, task, rows)["acc"]
                out[f"test_{name}_n"] = len(rows)
        return out

    return eval_fn


# ------------------------------------------------------------------------------------------ training
def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_data(task: str | None, trees_file, c: PushdownRunConfig) -> RunData:
    """The data of a run on a suite ``task`` or on ``trees_file`` (exactly one of them)."""
    if (task is None) == (trees_file is None):
        raise LmscopeError("give a task or a tree file, not both and not neither")
    return suite_run_data(task, c) if task is not None else tree_file_data(trees_file, c)


def pushdown_train(task: str | None, out_dir: str | os.PathLike, config: PushdownRunConfig | None = None, *,
                   trees_file: str | os.PathLike | None = None, quiet: bool | None = None,
                   stop_after: int | None = None, device: str = "cpu", **settings) -> dict:
    """Train (or resume) a pushdown run in ``out_dir`` on suite ``task`` or on ``trees_file`` (a
    bracketed tree per line), with ``config`` (default: the defaults; any field given as a keyword
    replaces its value). Returns the loop's summary plus ``task``, ``layers``, ``pushdown_layers``.
    LmscopeError for an unknown task, a bad tree file, settings out of range, or a run folder of
    another configuration."""
    from lmscope.models.small_tokenizer import WordTokenizer
    from lmscope.pushdown.evaluate import line_words
    from lmscope.pushdown.model import PushdownConfig
    from lmscope.pushdown.train import train_pushdown
    from lmscope.train.loop import TrainConfig

    c = PushdownRunConfig.make(config, **settings)
    data = run_data(task, trees_file, c)
    name = data.task
    every = [*data.train, *data.by_split.get("val", []), *data.by_split.get(data.gen_split, []),
             *data.heldout["id"], *data.heldout["gen"]]
    vocab = [" ".join(line_words(r, name)) for r in every]
    if name in TRANSFORM_WORDS:
        vocab.append(" ".join(TRANSFORM_WORDS[name]))
    tokenizer = WordTokenizer.build(vocab)
    examples = [line_example(tokenizer, r, name) for r in data.train]
    model_config = PushdownConfig(vocab_size=tokenizer.vocab_size, d_model=c.d_model, n_layers=c.layers,
                                  n_heads=c.heads, d_ff=c.d_ff, pushdown_layers=c.layer_indices(),
                                  depth_cap=c.depth_cap, dropout=c.dropout,
                                  max_relative=max(64, max(len(ids) for ids, _ in examples)))
    train_config = TrainConfig(steps=c.steps, batch_size=c.batch_size, lr=c.lr, warmup=c.warmup,
                               eval_every=c.eval_every, ckpt_every=c.ckpt_every, seed=c.seed,
                               weight_decay=c.weight_decay, keep_checkpoints=c.keep_checkpoints)
    eval_fn = make_eval_fn(data, tokenizer, c, final_step=c.steps)
    meta = {"task": name, "gen_split": data.gen_split, "config": c.to_dict()}
    if trees_file is not None:
        meta["trees_file"] = {"path": str(Path(trees_file).resolve()), "sha256": file_sha256(trees_file)}
    summary = train_pushdown(out_dir, model_config, tokenizer, examples, train_config, eval_fn=eval_fn,
                             quiet=quiet, stop_after=stop_after, meta=meta, device=device)
    return {**summary, "task": name, "layers": c.layers, "pushdown_layers": c.pushdown_layers}


