"""Structural grokking: long training runs of small transformers on question formation, tense
inflection and Dyck, with generalization accuracy and tree-structuredness tracked over training.

Layering: a method package on the base (``models``, ``data``, ``train``). Its one declared sideways
edge is ``grokking -> trees``: the t-score and parsing F1 of a run (:func:`tree_scores`) are the tree
projections of :mod:`lmscope.trees`. The plots of runs live in :mod:`lmscope.report.grokking`.
"""

from lmscope.grokking.metrics import (
    attention_sparsity,
    dyck_closing_accuracy,
    main_verb_index,
    make_eval_fn,
    pos_sequence,
    qf_first_word_accuracy,
    tense_accuracy,
    tense_correct,
    tree_scores,
    weight_norm,
)
from lmscope.grokking.run import grok_sweep_jobs, grok_train, sweep_run_name
from lmscope.grokking.runs import load_run

__all__ = ["attention_sparsity", "dyck_closing_accuracy", "grok_sweep_jobs", "grok_train", "load_run", "main_verb_index",
           "make_eval_fn", "pos_sequence", "qf_first_word_accuracy", "sweep_run_name", "tense_accuracy",
           "tense_correct", "tree_scores", "weight_norm"]
