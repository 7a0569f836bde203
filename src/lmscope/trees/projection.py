"""Tree projections: the tree that best explains how a model composes a sentence, and how tree-like it is.

>>> from lmscope.trees import tree_projection
>>> res = tree_projection("smollm2-135m", ["the dog that barked saw the cat", ...], gold_trees=[...])
>>> res.t_score, res.f1, res.baseline_f1          # corpus t-score, parsing F1, baselines' F1
>>> res.sentences[0].bracketed                    # '((the (dog (that barked))) (saw (the cat)))'
>>> res.table()                                   # one row per sentence (pandas)

Method (Murty et al., "Characterizing Intrinsic Compositionality in Transformers with Tree
Projections"): the SCI chart of each sentence (:mod:`lmscope.trees.chart`), a greedy top-down tree
over it, the tree-structuredness score (t-score) against seeded random splits, and unlabeled parsing
F1 against gold trees with precision and recall pooled over the corpus, next to the F1 of
left-branching, right-branching, balanced and random trees (:mod:`lmscope.trees.decode`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from lmscope.data.trees import Tree, leaves, parse_bracketed, to_bracketed
from lmscope.errors import LmscopeError
from lmscope.trees.adapters import SpanAdapter, _word_text, load_adapter, make_adapter
from lmscope.trees.chart import ChartStats, check_distance, compute_charts
from lmscope.trees.decode import (
    BASELINE_NAMES,
    Node,
    baseline_tree,
    bracket_match,
    decode,
    prf,
    sentence_rng,
    t_score,
)


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------
@dataclass
class SentenceProjection:
    """One sentence: its chart, induced tree, t-score and (when given) gold tree."""

    index: int
    words: list[str]
    chart: np.ndarray          # (n, n): s(i, j) at [i, j] for j >= i, NaN below the diagonal
    tree: Tree
    nodes: list[Node]          # internal nodes (i, j, k) of the induced tree, pre-order
    t_score: float
    gold: Tree | None = None
    where: str = ""

    @property
    def bracketed(self) -> str:
        return to_bracketed(self.tree)

    @property
    def gold_bracketed(self) -> str | None:
        return None if self.gold is None else to_bracketed(self.gold)

    @property
    def f1(self) -> float | None:
        """This sentence's own F1 against its gold tree (None without gold or for one word)."""
        if self.gold is None:
            return None
        return prf([bracket_match(self.tree, self.gold)])["f1"]

    def to_dict(self, chart: bool = True) -> dict:
        d = {"index": self.index, "where": self.where, "sentence": " ".join(self.words), "n_words": len(self.words),
             "tree": self.bracketed, "gold": self.gold_bracketed, "t_score": self.t_score, "f1": self.f1}
        if chart:
            d["chart"] = self.chart.tolist()
        return d


@dataclass
class TreeProjectionResult:
    """Tree projections of a set of sentences at one layer (see the module docstring)."""

    model: str
    layer: int
    n_layers: int
    threshold: int
    distance: str
    seed: int
    procedure: str
    causal: bool
    sentences: list[SentenceProjection]
    baselines: dict[str, list[Tree]] = field(default_factory=dict)
    stats: ChartStats | None = None

    @property
    def has_gold(self) -> bool:
        return any(s.gold is not None for s in self.sentences)

    @property
    def t_score(self) -> float:
        """The corpus t-score: the mean of the sentences' t-scores."""
        return float(np.mean([s.t_score for s in self.sentences]))

    @property
    def parsing(self) -> dict | None:
        """Pooled precision, recall and F1 of the induced trees (None without gold trees)."""
        if not self.has_gold:
            return None
        return prf([bracket_match(s.tree, s.gold) for s in self.sentences if s.gold is not None])

    @property
    def f1(self) -> float | None:
        p = self.parsing
        return None if p is None else p["f1"]

    @property
    def baseline_parsing(self) -> dict[str, dict]:
        """Per baseline, pooled precision, recall and F1 on the sentences with a gold tree."""
        if not self.has_gold:
            return {}
        return {name: prf([bracket_match(t, s.gold) for t, s in zip(trees, self.sentences, strict=True)
                           if s.gold is not None])
                for name, trees in self.baselines.items()}

    @property
    def baseline_f1(self) -> dict[str, float | None]:
        return {name: p["f1"] for name, p in self.baseline_parsing.items()}

    def summary(self) -> dict:
        out = {"model": self.model, "layer": self.layer, "n_layers": self.n_layers, "threshold": self.threshold,
               "distance": self.distance, "seed": self.seed, "procedure": self.procedure, "causal": self.causal,
               "sentences": len(self.sentences), "words": int(sum(len(s.words) for s in self.sentences)),
               "t_score": self.t_score}
        p = self.parsing
        if p is not None:
            out.update(f1=p["f1"], precision=p["precision"], recall=p["recall"],
                       gold_sentences=sum(s.gold is not None for s in self.sentences))
            out["baseline_f1"] = self.baseline_f1
        if self.stats is not None:
            out["cost"] = self.stats.to_dict()
        return out

    def table(self):
        """One row per sentence: index, where, words, t-score, induced tree, gold tree and F1."""
        import pandas as pd

        rows = []
        for k, s in enumerate(self.sentences):
            row = {"index": s.index, "where": s.where, "n_words": len(s.words), "t_score": s.t_score,
                   "tree": s.bracketed, "sentence": " ".join(s.words)}
            if self.has_gold:
                row["gold"] = s.gold_bracketed
                row["f1"] = s.f1
                for name, trees in self.baselines.items():
                    row[f"f1_{name}"] = (None if s.gold is None
                                         else prf([bracket_match(trees[k], s.gold)])["f1"])
            rows.append(row)
        return pd.DataFrame(rows)

    def tree_rows(self, charts: bool = True) -> list[dict]:
        """Per sentence, a JSON-ready record (bracketed trees, t-score, F1 and the chart)."""
        return [s.to_dict(chart=charts) for s in self.sentences]

    def to_dict(self, charts: bool = True) -> dict:
        return {**self.summary(), "baseline_parsing": self.baseline_parsing, "parsing": self.parsing,
                "per_sentence": self.tree_rows(charts=charts)}

    def summary_lines(self) -> list[str]:
        lines = [f"{self.model}: layer {self.layer} of {self.n_layers}, span mask from block {self.threshold}, "
                 f"{self.distance} distance, {len(self.sentences)} sentences ({self.procedure} charts)",
                 f"  t-score {self.t_score:.4f} (mean over sentences; seed {self.seed})"]
        p = self.parsing
        if p is not None:
            f1 = "n/a" if p["f1"] is None else f"{p['f1']:.4f}"
            lines.append(f"  parsing F1 {f1} (precision {_fmt(p['precision'])}, recall {_fmt(p['recall'])}, "
                         f"pooled over {sum(s.gold is not None for s in self.sentences)} gold trees)")
            lines.append("  baselines F1: " + ", ".join(f"{k} {_fmt(v)}" for k, v in self.baseline_f1.items()))
        return lines


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


@dataclass
class LayerSweepResult:
    """Tree projections at several layers of one model (the same sentences and passes)."""

    results: dict[int, TreeProjectionResult]

    @property
    def layers(self) -> list[int]:
        return sorted(self.results)

    def table(self):
        """One row per layer: t-score, parsing F1 (and precision, recall) and the baselines' F1."""
        import pandas as pd

        rows = []
        for layer in self.layers:
            r = self.results[layer]
            row = {"layer": layer, "t_score": r.t_score}
            p = r.parsing
            if p is not None:
                row.update(f1=p["f1"], precision=p["precision"], recall=p["recall"])
                row.update({f"f1_{k}": v for k, v in r.baseline_f1.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self, charts: bool = False) -> dict:
        first = self.results[self.layers[0]]
        common = {k: v for k, v in first.summary().items() if k not in ("layer", "t_score", "f1", "precision",
                                                                          "recall", "baseline_f1")}
        return {**common, "layers": self.table().to_dict(orient="records"),
                "per_layer": {str(k): self.results[k].to_dict(charts=charts) for k in self.layers}}

    def summary_lines(self) -> list[str]:
        first = self.results[self.layers[0]]
        lines = [f"{first.model}: {len(first.sentences)} sentences, span mask from block {first.threshold}, "
                 f"{first.distance} distance ({first.procedure} charts)"]
        t = self.table()
        lines.append(t.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return lines


# ------------------------------------------------------------------------------------------------
# The API
# ------------------------------------------------------------------------------------------------
def _adapter(model, tokenizer, device: str) -> SpanAdapter:
    from lmscope.models.sources import ModelSource

    if isinstance(model, SpanAdapter):
        return model
    if isinstance(model, (str, os.PathLike, ModelSource)):
        return load_adapter(model, device=device)
    if isinstance(model, tuple) and len(model) == 2 and tokenizer is None:
        model, tokenizer = model
    return make_adapter(model, tokenizer)


def _gold(gold, words: list[str], where: str) -> Tree | None:
    if gold is None:
        return None
    if isinstance(gold, str):
        try:
            gold = parse_bracketed(gold)
        except LmscopeError as e:
            raise LmscopeError(f"{where}: bad gold tree: {e}") from None
    got = leaves(gold)
    if got != words:
        raise LmscopeError(f"{where}: the gold tree's leaves {' '.join(got)!r} do not match the sentence "
                           f"{' '.join(words)!r}")
    return gold


def tree_projection(model, sentences, gold_trees=None, layer=None, threshold: int = 0, distance: str = "cosine",
                    batch_size: int = 32, seed: int = 0, fast: bool = True, quiet: bool | None = None, *,
                    tokenizer=None, device: str = "cpu", where: list[str] | None = None):
    """Tree projections of ``sentences`` under ``model``.

    ``model``: a bundled name or path (see :func:`lmscope.models.open_model`), a loaded
    :class:`~lmscope.models.small.SmallTransformer` or transformers model (with ``tokenizer``, or as a
    ``(model, tokenizer)`` pair), or a :class:`~lmscope.trees.adapters.SpanAdapter`.
    ``sentences``: strings (split on white space) or lists of words. ``gold_trees``: None, or one
    tree per sentence (a tree, a bracketed string, or None) whose leaves are the sentence's words.
    ``layer``: the layer read (0 = embeddings, ``n_layers`` = last block, the default; negative counts
    from the end), or a list of layers: then every layer is read from the same passes and a
    :class:`LayerSweepResult` is returned. ``threshold``: the first block under the span mask
    (0 = all; every layer read must be above it). ``distance``: "cosine" or "euclidean".
    ``fast``: the batched procedure (one pass per span start for causal models) instead of the
    reference one (one pass per span, one at a time); both give the same charts. ``seed`` drives the
    t-score's random splits and the random-tree baseline. ``where``: a label per sentence for error
    messages (default ``sentence K``, 0-based). ``device`` applies when the model is loaded here.
    """
    adapter = _adapter(model, tokenizer, device)
    check_distance(distance)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LmscopeError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(sentences, str):
        raise LmscopeError("give a list of sentences, not one string")
    sentences = list(sentences)
    if not sentences:
        raise LmscopeError("no sentences to project")
    where = list(where) if where is not None else [f"sentence {k}" for k in range(len(sentences))]
    if len(where) != len(sentences):
        raise LmscopeError(f"{len(where)} labels for {len(sentences)} sentences")
    words = []
    for w, s in zip(where, sentences, strict=True):
        try:
            ws = _word_text(s)
            to_bracketed(ws[0] if len(ws) == 1 else tuple(ws))  # the words must be printable in a tree
            words.append(ws)
        except LmscopeError as e:
            raise LmscopeError(f"{w}: {e}") from None
    if gold_trees is not None:
        gold_trees = list(gold_trees)
        if len(gold_trees) != len(sentences):
            raise LmscopeError(f"{len(gold_trees)} gold trees for {len(sentences)} sentences")
        golds = [_gold(g, ws, w) for g, ws, w in zip(gold_trees, words, where, strict=True)]
    else:
        golds = [None] * len(words)

    sweep = isinstance(layer, (list, tuple, range, np.ndarray))
    layers = [adapter.check_layer(x) for x in (layer if sweep else [layer])]
    if sweep and not layers:
        raise LmscopeError("an empty list of layers")
    layers = sorted(set(layers))
    threshold = adapter.check_threshold(threshold)
    low = [x for x in layers if x <= threshold]
    if low:
        raise LmscopeError(f"layer {low[0]} is not above the threshold {threshold}: the span mask starts at block "
                           f"{threshold}, whose output is layer {threshold + 1}")

    encs = [adapter.encode_checked(ws, where=w) for ws, w in zip(words, where, strict=True)]
    charts, stats = compute_charts(adapter, encs, layers, threshold=threshold, distance=distance, fast=fast,
                                   batch_size=batch_size, quiet=quiet)
    baselines = {name: [baseline_tree(name, ws, sentence_rng(seed, k, 1) if name == "random" else None)
                        for k, ws in enumerate(words)] for name in BASELINE_NAMES}
    results = {}
    for lay in layers:
        per = []
        for k, ws in enumerate(words):
            chart = charts[lay][k]
            tree, nodes = decode(chart, ws)
            per.append(SentenceProjection(k, ws, chart, tree, nodes, t_score(chart, nodes, sentence_rng(seed, k, 0)),
                                          golds[k], where[k]))
        results[lay] = TreeProjectionResult(adapter.name, lay, adapter.n_layers, threshold, distance, int(seed),
                                            stats.procedure, adapter.causal, per, baselines, stats)
    if sweep:
        return LayerSweepResult(results)
    return results[layers[0]]
