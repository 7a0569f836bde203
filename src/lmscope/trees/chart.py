"""The SCI chart: for every span (i, j) of a sentence, how far its context-free vector is from its contextual one.

``v(i, j)`` is the sum of the words' vectors ``i..j`` from the ordinary pass over the whole sentence;
``ṽ(i, j)`` the same sum from a pass in which keys outside the span are masked from the threshold block
upward (special tokens stay visible). The chart holds the similarity ``s(i, j) = 1 - distance(ṽ, v)``
for ``j >= i`` (NaN below the diagonal): cosine distance by default (so ``s`` is the cosine), or
Euclidean distance.

Two procedures give the same chart:

* ``reference``: one ordinary pass and one masked pass per span, one sentence and one pass at a time
  (``1 + n(n+1)/2`` forward passes of batch size 1 per sentence).
* ``fast``: every pass of every sentence batched together (right padding), and, for a causal model,
  ONE masked pass per span start ``i`` instead of one per span: keys before word ``i`` are hidden
  (special tokens such as BOS excepted) and ``ṽ(i, j)`` is read for every ``j >= i`` from the same
  pass. This is exact, at any threshold: a position ``q <= j`` cannot see keys after ``q``, so within
  ``i..j`` the pass computes exactly what the pass restricted to ``i..j`` computes (and the blocks below
  the threshold are the ordinary ones in both). The span that covers the whole sentence (and, for a
  causal model, every span starting at word 0) sees everything the ordinary pass sees, so its masked
  pass is skipped and the ordinary vectors are used. A sentence of n words then costs ``n`` passes
  (causal) or ``n(n+1)/2`` (encoder) instead of ``1 + n(n+1)/2``.

For a causal model ``s(0, j) = 1`` for every ``j`` (up to rounding): a span that starts at the first word
hides nothing from any of its positions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lmscope.errors import LmscopeError
from lmscope.progress import progress
from lmscope.trees.adapters import Encoded, Job, SpanAdapter

DISTANCES = ("cosine", "euclidean")


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise LmscopeError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    return distance


def similarity(vt: np.ndarray, v: np.ndarray, distance: str = "cosine") -> np.ndarray:
    """Row-wise ``1 - distance(vt, v)`` for (m, d) arrays (a zero vector has cosine 1 with a zero vector, else 0)."""
    if distance == "euclidean":
        return 1.0 - np.linalg.norm(vt - v, axis=-1)
    na = np.linalg.norm(vt, axis=-1)
    nb = np.linalg.norm(v, axis=-1)
    dot = np.sum(vt * v, axis=-1)
    denom = na * nb
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), np.where((na == 0) & (nb == 0), 1.0, 0.0))
    return np.clip(cos, -1.0, 1.0)


@dataclass
class ChartStats:
    """What computing the charts cost."""

    procedure: str
    passes: int = 0          # sequences run through the model (ordinary and masked)
    forward_calls: int = 0   # batched forward calls
    tokens: int = 0          # real (unpadded) tokens processed
    padded_tokens: int = 0   # tokens including padding
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Acc:
    """Per sentence: ordinary word vectors and context-free span vectors, per layer."""

    n: int
    ordinary: dict[int, np.ndarray] = field(default_factory=dict)            # layer -> (n, d)
    free: dict[int, dict[tuple[int, int], np.ndarray]] = field(default_factory=dict)  # layer -> span -> (d,)


def _masked_jobs(enc: Encoded, causal: bool) -> list[Job]:
    n = enc.n_words
    if causal:
        return [Job(enc, (i, n - 1)) for i in range(1, n)]
    return [Job(enc, (i, j)) for i in range(n) for j in range(i, n) if (i, j) != (0, n - 1)]


def _store(acc: _Acc, job: Job, vecs: np.ndarray, layer: int, causal: bool) -> None:
    if job.span is None:
        acc.ordinary[layer] = vecs
        return
    i, j = job.span
    free = acc.free.setdefault(layer, {})
    if causal and j == acc.n - 1:  # one pass per start: every span (i, j') with j' >= i
        run = np.cumsum(vecs[i:], axis=0)
        for jj in range(i, acc.n):
            free[(i, jj)] = run[jj - i]
    else:
        free[(i, j)] = vecs[i:j + 1].sum(axis=0)


def _finish(acc: _Acc, layer: int, distance: str, causal: bool) -> np.ndarray:
    n = acc.n
    V = acc.ordinary[layer]
    prefix = np.concatenate([np.zeros((1, V.shape[1])), np.cumsum(V, axis=0)])
    free = acc.free.get(layer, {})
    spans = [(i, j) for i in range(n) for j in range(i, n)]
    ctx = np.stack([prefix[j + 1] - prefix[i] for i, j in spans])
    # spans whose masked pass equals the ordinary one were not run: their context-free vector is v
    tilde = np.stack([free[s] if s in free else ctx[k] for k, s in enumerate(spans)])
    sims = similarity(tilde, ctx, distance)
    chart = np.full((n, n), np.nan)
    for (i, j), val in zip(spans, sims, strict=True):
        chart[i, j] = val
    return chart


def _run(adapter: SpanAdapter, jobs: list[Job], layers: list[int], threshold: int, stats: ChartStats):
    t = time.perf_counter()
    out = adapter.run_jobs(jobs, layers, threshold)
    stats.seconds += time.perf_counter() - t
    stats.forward_calls += 1
    stats.passes += len(jobs)
    stats.tokens += sum(len(j.enc.ids) for j in jobs)
    stats.padded_tokens += len(jobs) * max(len(j.enc.ids) for j in jobs)
    return out


def compute_charts(adapter: SpanAdapter, encs: list[Encoded], layers: list[int], threshold: int = 0,
                   distance: str = "cosine", fast: bool = True, batch_size: int = 32,
                   quiet: bool | None = None) -> tuple[dict[int, list[np.ndarray]], ChartStats]:
    """Charts (n, n) per requested layer and sentence, and what they cost (see the module docstring).

    ``layers`` and ``threshold`` must already be checked (:meth:`SpanAdapter.check_layer`).
    """
    check_distance(distance)
    if batch_size < 1:
        raise LmscopeError(f"batch size must be at least 1, got {batch_size}")
    causal = adapter.causal
    accs = [_Acc(e.n_words) for e in encs]
    stats = ChartStats("fast" if fast else "reference")
    if fast:
        jobs: list[tuple[int, Job]] = []
        for k, e in enumerate(encs):
            jobs.append((k, Job(e, None)))
            jobs += [(k, j) for j in _masked_jobs(e, causal)]
        # longest first, so that a batch holds sequences of similar length (little padding)
        order = sorted(range(len(jobs)), key=lambda q: (-len(jobs[q][1].enc.ids), q))
        batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
        for batch in progress(batches, desc="tree projections", quiet=quiet):
            out = _run(adapter, [jobs[q][1] for q in batch], layers, threshold, stats)
            for r, q in enumerate(batch):
                k, job = jobs[q]
                for layer in layers:
                    _store(accs[k], job, out[layer][r], layer, causal)
    else:
        total = sum(1 + e.n_words * (e.n_words + 1) // 2 for e in encs)
        bar = progress(total=total, desc="tree projections (reference)", quiet=quiet)
        try:
            for k, e in enumerate(encs):
                seq = [Job(e, None)] + [Job(e, (i, j)) for i in range(e.n_words) for j in range(i, e.n_words)]
                for job in seq:
                    out = _run(adapter, [job], layers, threshold, stats)
                    for layer in layers:
                        _store(accs[k], job, out[layer][0], layer, causal=False)
                    bar.update(1)
        finally:
            bar.close()
    charts = {layer: [_finish(a, layer, distance, causal) for a in accs] for layer in layers}
    return charts, stats
