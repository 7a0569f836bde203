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
    summary = train_lm(out_dir, model_config, tokenizer, texts, eval_fn=eval_fn, config=config, quiet=quiet,
                       stop_after=stop_after)
    write_json(Path(out_dir) / GROK_FILE, {"task": task, "layers": layers, "d_model": d_model, "heads": heads,
                                           "d_ff": d_ff, "seed": seed, "gen_split": GEN_SPLIT[task]})
    return {**summary, "task": task, "layers": layers, "gen_split": GEN_SPLIT[task]}
