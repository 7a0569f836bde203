"""Tree projections: how tree-structured a transformer's composition of a sentence is, and which tree.

>>> from lmscope.trees import tree_projection
>>> res = tree_projection("smollm2-135m", sentences, gold_trees=trees)   # layer=None: the last layer
>>> res.t_score, res.f1, res.baseline_f1
>>> sweep = tree_projection("smollm2-135m", sentences, gold_trees=trees, layer=[6, 12, 18, 24, 30])
>>> sweep.table()                                                          # one row per layer

See :mod:`lmscope.trees.projection` (the API), :mod:`lmscope.trees.chart` (SCI charts, reference and
fast procedures), :mod:`lmscope.trees.decode` (greedy trees, t-score, F1) and
:mod:`lmscope.trees.adapters` (per-word vectors under span masks for small, causal and encoder models;
hidden states are read with the hooks of :mod:`lmscope.models.hooks`). A method package on the base
(``models``, ``data``); its tables and charts are drawn by :mod:`lmscope.report`.
"""

from lmscope.trees.adapters import HFAdapter, SmallAdapter, SpanAdapter, load_adapter, make_adapter
from lmscope.trees.chart import DISTANCES, ChartStats, compute_charts, similarity
from lmscope.trees.decode import BASELINE_NAMES, baseline_tree, bracket_match, decode, parse_f1, prf, t_score
from lmscope.trees.inputs import SentenceFile, read_sentence_file
from lmscope.trees.projection import (
    LayerSweepResult,
    SentenceProjection,
    TreeProjectionResult,
    tree_projection,
)

__all__ = [
    "BASELINE_NAMES", "DISTANCES", "ChartStats", "HFAdapter", "LayerSweepResult", "SentenceFile",
    "SentenceProjection", "SmallAdapter", "SpanAdapter", "TreeProjectionResult", "baseline_tree", "bracket_match",
    "compute_charts", "decode", "load_adapter", "make_adapter", "parse_f1", "prf", "read_sentence_file", "similarity",
    "t_score", "tree_projection",
]
