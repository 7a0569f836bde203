"""Structural grokking: long training runs of small transformers on question formation, tense
inflection and Dyck, with generalization accuracy and tree-structuredness tracked over training."""

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
from lmscope.grokking.plot import load_run, plot_runs
from lmscope.grokking.run import grok_sweep_jobs, grok_train, sweep_run_name

__all__ = ["attention_sparsity", "dyck_closing_accuracy", "grok_sweep_jobs", "grok_train", "load_run", "main_verb_index",
           "make_eval_fn", "plot_runs", "pos_sequence", "qf_first_word_accuracy", "sweep_run_name", "tense_accuracy",
           "tense_correct", "tree_scores", "weight_norm"]
