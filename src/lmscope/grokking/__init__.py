"""Structural grokking: long training runs of small transformers on question formation, tense
inflection and Dyck, with generalization accuracy and tree-structuredness tracked over training.

Layering: a method package on the base (``models``, ``data``, ``train``). Its one declared sideways
edge is ``grokking -> trees``: the t-score and parsing F1 of a run (:func:`tree_scores`) are the tree
projections of :mod:`lmscope.trees`. The plots of runs live in :mod:`lmscope.report.grokking`.
"""

import importlib

# name -> module of this package; imported on first use, so that reading GrokConfig (which the command
# line does to build its options) does not import torch
_EXPORTS = {
    **dict.fromkeys(["attention_sparsity", "dyck_closing_accuracy", "main_verb_index", "make_eval_fn", "pos_sequence",
                     "qf_first_word_accuracy", "tense_accuracy", "tense_correct", "tree_scores", "weight_norm"],
                    "metrics"),
    **dict.fromkeys(["RunData", "checkpoint_steps", "initial_model", "load_run", "rebuild_run", "run_model"],
                    "runs"),
    **dict.fromkeys(["SentenceScores", "gap_intervals", "pooled_f1"], "treestats"),
    **dict.fromkeys(["GrokConfig", "grok_sweep_jobs", "grok_train", "sweep_run_name"], "run"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"lmscope.grokking.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
