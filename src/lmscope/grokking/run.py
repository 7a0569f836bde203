"""A structural-grokking training run: a suite, a word tokenizer, a causal post-LN transformer with
sinusoidal positions, and :func:`lmscope.train.loop.train_lm` with the grokking ``eval_fn``.

Grammar tasks train on ``text<TAB>target`` lines of the train split; Dyck trains on the strings alone
(the per-position closing targets are only read by the metric). Runs resume from their newest
checkpoint when started again in the same folder with the same settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lmscope._io import write_json
from lmscope._settings import Settings
from lmscope._settings import setting as _setting
from lmscope.errors import LmscopeError, check_int, check_number

# GrokConfig is read when the command line is built: the training stack (torch) is imported only by
# the functions that train

GROK_FILE = "grok.json"


@dataclass(frozen=True)
class GrokConfig(Settings):
    """The settings of one grokking run: model, training and evaluation. The one definition of them:
    :func:`grok_train` reads it, the command-line options of `lmscope grok train` / `grok sweep` are
    generated from the fields that have a help text (in this order), and :meth:`to_argv` writes a
    run's command line for a sweep (see :mod:`lmscope._settings`). LmscopeError for a value out of range."""

    WHAT = "grok_train option"
    COMMAND = "lmscope grok train"

    layers: int = _setting(2, "transformer blocks (default 2)", minimum=1)
    steps: int = _setting(2000, "training steps (default 2000)",
                          sweep_help="training steps of every run (default 2000)", minimum=1)
    seed: int = _setting(0, "seed of the data, the weights and the order (default 0)", minimum=0)
    d_model: int = _setting(64, "model width (default 64)", minimum=1)
    heads: int = _setting(4, "attention heads (default 4)", minimum=1)
    d_ff: int = _setting(256, "MLP width (default 256)", minimum=1)
    batch_size: int = _setting(8, "batch size (default 8)", minimum=1)
    lr: float = _setting(1e-4, "peak learning rate (default 1e-4)", number_above=0.0)
    eval_every: int = _setting(100, "steps between metric rows (default 100)", minimum=0)
    ckpt_every: int = _setting(500, "steps between checkpoints (default 500)", minimum=0)
    n_train: int = _setting(2000, "training rows (default 2000)", minimum=1)
    n_val: int = _setting(200, "in-distribution rows (default 200)", minimum=1)
    n_gen: int = _setting(200, "generalization rows (default 200)", minimum=1)
    sample_size: int | None = _setting(200, "rows evaluated per split (default 200)", minimum=1)
    tree_sample: int | None = _setting(50, "training sentences for the t-score and F1 (default 50; 0 turns them off)",
                                       minimum=0)
    n_test: int = _setting(1000, "held-out rows per split (in-distribution and generalization), scored once, "
                                 "at the final step (default 1000; 0 turns them off)", minimum=0)
    warmup: int | None = _setting(None, "linear warmup steps (default min(1000, steps/10))", minimum=0)
    dropout: float = _setting(0.0, "dropout probability (default 0)")
    weight_decay: float = _setting(0.0, "AdamW weight decay (default 0, as in the reference code)")
    keep_checkpoints: int = _setting(2, "newest checkpoints kept (default 2; 0 keeps every one, e.g. for "
                                        "tree projections along training)", minimum=0)
    # Python-only settings (no help text: not command-line options)
    max_len: int = _setting(256)

    def __post_init__(self):
        self.check_settings()
        check_number("lr", self.lr, above=0.0)
        check_number("dropout", self.dropout, 0.0, below=1.0)
        check_number("weight_decay", self.weight_decay, 0.0)
        check_int("max_len", self.max_len, 1)
        if self.warmup is not None:
            check_int("warmup", self.warmup, 0)
        if self.d_model % self.heads:
            raise LmscopeError(f"d_model {self.d_model} is not divisible by heads {self.heads}")


def suite_data(task: str, n_train: int, n_val: int, n_gen: int, n_test: int, seed: int):
    """The data of a grokking run: ``(rows, by_split, heldout, texts, vocab_texts)``. The held-out rows
    (``n_test`` per kind) are drawn with the others, so their texts are distinct from every split, then
    set apart: ``by_split`` keeps ``n_val`` val and ``n_gen`` generalization rows, ``heldout`` is
    ``{"id": rows, "gen": rows}``. ``texts`` are the training lines, ``vocab_texts`` every split's (the
    held-out rows are scored too, so their words are in the vocabulary)."""
    from lmscope.data.suites import make_suite
    from lmscope.grokking.metrics import GEN_SPLIT
    from lmscope.train.loop import suite_lines

    rows = make_suite(task, n_train, n_val + n_test, n_gen + n_test, seed=seed)
    by_split: dict[str, list[dict]] = {}
    for r in rows:
        by_split.setdefault(r["split"], []).append(r)
    gen_split = GEN_SPLIT[task]
    heldout = {"id": by_split.get("val", [])[n_val:], "gen": by_split.get(gen_split, [])[n_gen:]}
    by_split["val"] = by_split.get("val", [])[:n_val]
    by_split[gen_split] = by_split.get(gen_split, [])[:n_gen]
    if task == "dyck":
        texts = [r["text"] for r in by_split.get("train", [])]
        vocab_texts = [r["text"] for r in rows]
    else:
        texts, vocab_texts = suite_lines(rows, "train"), suite_lines(rows, None)
    return rows, by_split, heldout, texts, vocab_texts


def grok_train(task: str, out_dir: str | os.PathLike, config: GrokConfig | None = None, *,
               quiet: bool | None = None, stop_after: int | None = None, device: str = "cpu",
               **settings) -> dict:
    """Train (or resume) a grokking run in ``out_dir`` with ``config`` (default: the defaults), any
    GrokConfig field given as a keyword replacing its value (``grok_train(task, out, layers=4)``);
    returns :func:`train_lm`'s summary plus ``task`` and ``layers``. LmscopeError for an unknown task
    or settings out of range."""
    from lmscope.grokking.metrics import GEN_SPLIT, TASKS, make_eval_fn
    from lmscope.models.small import SmallConfig
    from lmscope.models.small_tokenizer import WordTokenizer
    from lmscope.train.loop import TrainConfig, train_lm

    if task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    c = GrokConfig.make(config, **settings)
    rows, by_split, heldout, texts, vocab_texts = suite_data(task, c.n_train, c.n_val, c.n_gen, c.n_test, c.seed)
    tokenizer = WordTokenizer.build(vocab_texts)
    model_config = SmallConfig(vocab_size=tokenizer.vocab_size, d_model=c.d_model, n_layers=c.layers,
                               n_heads=c.heads, d_ff=c.d_ff, max_len=c.max_len, causal=True, norm="post",
                               positions="sinusoidal", dropout=c.dropout)
    train_config = TrainConfig(steps=c.steps, batch_size=c.batch_size, lr=c.lr, warmup=c.warmup,
                               eval_every=c.eval_every, ckpt_every=c.ckpt_every, seed=c.seed,
                               weight_decay=c.weight_decay, keep_checkpoints=c.keep_checkpoints)
    eval_fn = make_eval_fn(task, tokenizer, by_split, sample_size=c.sample_size, seed=c.seed,
                           tree_sample=c.tree_sample, heldout=heldout, final_step=c.steps)
    meta = {"task": task, "eval": {"n_val": c.n_val, "n_gen": c.n_gen, "sample_size": c.sample_size,
                                   "tree_sample": c.tree_sample, "tree_split": "train", "n_test": c.n_test}}
    summary = train_lm(out_dir, model_config, tokenizer, texts, eval_fn=eval_fn, config=train_config, quiet=quiet,
                       stop_after=stop_after, meta=meta, device=device)
    write_json(Path(out_dir) / GROK_FILE, {"task": task, "layers": c.layers, "d_model": c.d_model,
                                           "heads": c.heads, "d_ff": c.d_ff, "seed": c.seed,
                                           "gen_split": GEN_SPLIT[task]})
    return {**summary, "task": task, "layers": c.layers, "gen_split": GEN_SPLIT[task]}


# --------------------------------------------------------------------------------------------------
TASK_SHORT = {"question-formation": "qf", "tense-inflection": "ti", "dyck": "dyck"}
# the GrokConfig fields a sweep passes through to every run (its own arguments set layers, seed and steps)
SWEEP_OPTIONS = tuple(f.name for f in GrokConfig.options() if f.name not in ("layers", "seed", "steps"))


def sweep_run_name(task: str, layers: int, seed: int) -> str:
    return f"{TASK_SHORT[task]}-l{layers}-s{seed}"


def grok_sweep_jobs(task: str, root: str | os.PathLike, layers: list[int], seeds: list[int], steps: int,
                    **options) -> list:
    """One :class:`lmscope.train.sweep.SweepJob` per (depth, seed): ``lmscope grok train`` into
    ``ROOT/<task>-l<layers>-s<seed>`` (e.g. ``qf-l6-s0``) with the given GrokConfig ``options``
    (:data:`SWEEP_OPTIONS`; None keeps the default), every setting written out on its command line.
    A run already trained to more steps than asked is marked ``skipped`` (ask for at least its
    steps to extend it)."""
    import json

    from lmscope.grokking.metrics import TASKS
    from lmscope.train.loop import RUN_FILE
    from lmscope.train.sweep import SweepJob

    if task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not layers or not seeds:
        raise LmscopeError("a sweep needs at least one depth and one seed")
    unknown = sorted(set(options) - set(SWEEP_OPTIONS))
    if unknown:
        raise LmscopeError(f"unknown grok_train option {unknown[0]!r}")
    options = {k: v for k, v in options.items() if v is not None}  # None: the default
    configs = {(n, s): GrokConfig.make(layers=n, seed=s, steps=steps, **options)
               for n in dict.fromkeys(layers) for s in dict.fromkeys(seeds)}
    root = Path(root)
    jobs = []
    for (n_layers, seed), config in configs.items():
        name = sweep_run_name(task, n_layers, seed)
        run_dir = root / name
        argv = ["grok", "train", "--task", task, *config.to_argv(), "--quiet", "--out", str(run_dir)]
        job = SweepJob(name=name, run_dir=run_dir, argv=argv, steps=steps)
        try:
            had = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))["train"]["steps"]
        except (OSError, ValueError, KeyError, TypeError):
            had = None
        if isinstance(had, int) and had > steps:
            job.status = "skipped"
            job.error = f"already trained for {had} steps; ask --steps {had} or more to extend it"
        jobs.append(job)
    return jobs
