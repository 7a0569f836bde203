"""A structural-grokking training run: a suite, a word tokenizer, a causal post-LN transformer with
sinusoidal positions, and :func:`lmscope.train.loop.train_lm` with the grokking ``eval_fn``.

Grammar tasks train on ``text<TAB>target`` lines of the train split; Dyck trains on the strings alone
(the per-position closing targets are only read by the metric). Runs resume from their newest
checkpoint when started again in the same folder with the same settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from lmscope._io import write_json
from lmscope.data.suites import make_suite
from lmscope.errors import LmscopeError
from lmscope.grokking.metrics import GEN_SPLIT, TASKS, make_eval_fn
from lmscope.models.small import SmallConfig
from lmscope.models.small_tokenizer import WordTokenizer
from lmscope.train.loop import TrainConfig, suite_lines, train_lm

GROK_FILE = "grok.json"


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LmscopeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def grok_train(task: str, out_dir: str | os.PathLike, layers: int = 2, d_model: int = 64, heads: int = 4,
               d_ff: int = 256, steps: int = 2000, batch_size: int = 8, lr: float = 1e-4,
               eval_every: int = 100, ckpt_every: int = 500, n_train: int = 2000, n_val: int = 200,
               n_gen: int = 200, seed: int = 0, warmup: int | None = None, dropout: float = 0.0,
               sample_size: int | None = 200, tree_sample: int | None = 50, max_len: int = 256,
               quiet: bool | None = None, stop_after: int | None = None) -> dict:
    """Train (or resume) a grokking run in ``out_dir``; returns :func:`train_lm`'s summary plus
    ``task`` and ``layers``. LmscopeError for an unknown task or sizes out of range."""
    if task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    _int("layers", layers, 1)
    _int("steps", steps, 1)
    for name, v in (("d_model", d_model), ("heads", heads), ("d_ff", d_ff), ("n_train", n_train),
                    ("n_val", n_val), ("n_gen", n_gen), ("batch_size", batch_size)):
        _int(name, v, 1)
    if d_model % heads:
        raise LmscopeError(f"d_model {d_model} is not divisible by heads {heads}")
    rows = make_suite(task, n_train, n_val, n_gen, seed=seed)
    by_split: dict[str, list[dict]] = {}
    for r in rows:
        by_split.setdefault(r["split"], []).append(r)
    if task == "dyck":
        texts = [r["text"] for r in by_split.get("train", [])]
        vocab_texts = [r["text"] for r in rows]
    else:
        texts = suite_lines(rows, "train")
        vocab_texts = suite_lines(rows, None)
    tokenizer = WordTokenizer.build(vocab_texts)
    model_config = SmallConfig(vocab_size=tokenizer.vocab_size, d_model=d_model, n_layers=layers, n_heads=heads,
                               d_ff=d_ff, max_len=max_len, causal=True, norm="post", positions="sinusoidal",
                               dropout=dropout)
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every,
                         ckpt_every=ckpt_every, seed=seed)
    eval_fn = make_eval_fn(task, tokenizer, by_split, sample_size=sample_size, seed=seed, tree_sample=tree_sample)
    meta = {"task": task, "eval": {"n_val": n_val, "n_gen": n_gen, "sample_size": sample_size,
                                   "tree_sample": tree_sample}}
    summary = train_lm(out_dir, model_config, tokenizer, texts, eval_fn=eval_fn, config=config, quiet=quiet,
                       stop_after=stop_after, meta=meta)
    write_json(Path(out_dir) / GROK_FILE, {"task": task, "layers": layers, "d_model": d_model, "heads": heads,
                                           "d_ff": d_ff, "seed": seed, "gen_split": GEN_SPLIT[task]})
    return {**summary, "task": task, "layers": layers, "gen_split": GEN_SPLIT[task]}


# --------------------------------------------------------------------------------------------------
TASK_SHORT = {"question-formation": "qf", "tense-inflection": "ti", "dyck": "dyck"}
# grok_train keyword -> `lmscope grok train` option, for the options a sweep passes through
_OPTIONS = {"d_model": "--d-model", "heads": "--heads", "d_ff": "--d-ff", "batch_size": "--batch-size",
            "lr": "--lr", "eval_every": "--eval-every", "ckpt_every": "--ckpt-every", "n_train": "--n-train",
            "n_val": "--n-val", "n_gen": "--n-gen", "sample_size": "--sample-size", "tree_sample": "--tree-sample"}


def sweep_run_name(task: str, layers: int, seed: int) -> str:
    return f"{TASK_SHORT[task]}-l{layers}-s{seed}"


def grok_sweep_jobs(task: str, root: str | os.PathLike, layers: list[int], seeds: list[int], steps: int,
                    **options) -> list:
    """One :class:`lmscope.train.sweep.SweepJob` per (depth, seed): ``lmscope grok train`` into
    ``ROOT/<task>-l<layers>-s<seed>`` (e.g. ``qf-l6-s0``) with the given grok_train ``options``.
    A run already trained to more steps than asked is marked ``skipped`` (ask for at least its
    steps to extend it)."""
    import json

    from lmscope.train.loop import RUN_FILE
    from lmscope.train.sweep import SweepJob

    if task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not layers or not seeds:
        raise LmscopeError("a sweep needs at least one depth and one seed")
    for v in layers:
        _int("layers", v, 1)
    for v in seeds:
        _int("seed", v, 0)
    _int("steps", steps, 1)
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise LmscopeError(f"unknown grok_train option {unknown[0]!r}")
    root = Path(root)
    jobs = []
    for n_layers in dict.fromkeys(layers):
        for seed in dict.fromkeys(seeds):
            name = sweep_run_name(task, n_layers, seed)
            run_dir = root / name
            argv = ["grok", "train", "--task", task, "--layers", str(n_layers), "--seed", str(seed),
                    "--steps", str(steps)]
            for key, value in options.items():
                if value is not None:
                    argv += [_OPTIONS[key], str(value)]
            argv += ["--quiet", "--out", str(run_dir)]
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
