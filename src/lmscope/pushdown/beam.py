"""Inference with a pushdown LM: beam search over attachments, teacher-forced scores, greedy decoding.

A sentence is given as token ids ``[BOS, w_0 .. w_{n-1}, EOS]``. A hypothesis is a parser state
(:class:`~lmscope.pushdown.tape.Stack`), a row of the model's cache, and the joint log-probability of
the words and attachments read so far. The word log-probs differ between hypotheses too: the tape
changes the hidden states. At each word every hypothesis extends by each allowed attachment, and the
best ``beam`` extensions are kept (ties: the earlier hypothesis, then the lower attachment). The
cache rows are reordered by hypothesis (:meth:`PushdownLM.reorder`), so no prefix is ever computed
twice; :func:`beam_search_reference` recomputes every hypothesis's prefix with the full forward pass
instead (the same beams and scores up to float rounding; for tests and the benchmark). EOS closes
everything: its attachment is forced, and only its word log-prob is scored.

The sentence log-likelihood is the logsumexp of the final beam's joint log-probs: a LOWER BOUND on the
marginal ``log p(words)`` (the sum over every attachment sequence), equal to it when the beam holds
all of them. The best hypothesis's attachments give the parse (:func:`tree_from_attachments`).

Beam 1 is greedy decoding (:func:`greedy_parse`). A wider beam usually finds a best hypothesis at
least as good as beam 1's, but beam search does not guarantee it: the greedy path can be pruned from
a wider beam whose survivors all end lower. For the plain relative-position model (no tape) the
sentence log-likelihood is the LM's own and there is no parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmscope.data.trees import Tree
from lmscope.errors import LmscopeError, check_int
from lmscope.pushdown.model import PushdownLM
from lmscope.pushdown.tape import Stack, model_tape, tree_from_attachments


@dataclass
class BeamResult:
    """The final beam, best first: ``attachments`` (word positions) and ``scores`` (joint log-probs of
    words and attachments); ``log_likelihood`` (logsumexp of the scores: a lower bound on the
    sentence's log-probability); ``tree``: the best hypothesis's parse (None for the plain model,
    whose beam is empty and whose ``log_likelihood`` is the LM's)."""

    attachments: list[list[int]]
    scores: list[float]
    log_likelihood: float
    tree: Tree | None

    @property
    def best(self) -> list[int] | None:
        return self.attachments[0] if self.attachments else None

    def to_dict(self) -> dict:
        from lmscope.data.trees import to_bracketed

        return {"attachments": self.attachments, "scores": self.scores, "log_likelihood": self.log_likelihood,
                "tree": to_bracketed(self.tree) if self.tree is not None else None}


def _check_sentence(model: PushdownLM, ids: Sequence[int], words: Sequence[str] | None) -> tuple[list[int], list]:
    ids = [int(i) for i in ids]
    if len(ids) < 3:
        raise LmscopeError("a sentence needs BOS, at least one word and EOS")
    V = model.config.vocab_size
    if min(ids) < 0 or max(ids) >= V:
        raise LmscopeError(f"token ids must be in 0..{V - 1}")
    words = list(words) if words is not None else [str(i) for i in ids[1:-1]]
    if len(words) != len(ids) - 2:
        raise LmscopeError(f"{len(words)} words for a sentence of {len(ids) - 2} tokens between BOS and EOS")
    return ids, words


def _device(model: PushdownLM):
    return model.embed.weight.device


def _rows(stacks: list[Stack], device) -> torch.Tensor:
    """Each hypothesis's tape row at the current position: BOS (depth 0), then its words' depths."""
    return torch.tensor([[0, *s.depths] for s in stacks], dtype=torch.long, device=device)


def _allowed(stacks: list[Stack], width: int, device) -> torch.Tensor:
    """(B, width) bool: the model positions each hypothesis's next word may attach to."""
    rows = [b for b, s in enumerate(stacks) for _ in s.ends] + list(range(len(stacks)))
    cols = [e + 1 for s in stacks for e in s.ends] + [s.n + 1 for s in stacks]
    out = torch.zeros(len(stacks), width, dtype=torch.bool)
    out[rows, cols] = True
    return out.to(device)


def _select(total: torch.Tensor, word_lp: torch.Tensor, attach_lp: torch.Tensor, beam: int):
    """The best ``beam`` extensions: (parent rows, attachments in word positions, new totals)."""
    cand = (total + word_lp)[:, None] + attach_lp.double()
    width = cand.shape[1]
    flat = cand.flatten()
    order = torch.sort(flat, descending=True, stable=True).indices
    keep = order[: min(beam, int(torch.isfinite(flat).sum()))]
    return (keep // width).tolist(), (keep % width - 1).tolist(), flat[keep]


def _extend(stacks, history, parents, attach):
    new_stacks, new_history = [], []
    for par, a in zip(parents, attach, strict=True):
        s = stacks[par].copy()
        s.push(a)
        new_stacks.append(s)
        new_history.append(history[par] + [a])
    return new_stacks, new_history


def _finish(history, total: torch.Tensor, words) -> BeamResult:
    order = torch.sort(total, descending=True, stable=True).indices.tolist()
    scores = [float(total[i]) for i in order]
    attach = [history[i] for i in order]
    return BeamResult(attach, scores, float(torch.logsumexp(total, 0)), tree_from_attachments(words, attach[0]))


@torch.no_grad()
def lm_log_likelihood(model: PushdownLM, ids: Sequence[int]) -> float:
    """log p(tokens after BOS) of the plain model (no tape)."""
    if model.config.has_tape:
        raise LmscopeError("a pushdown model's sentence log-likelihood needs its attachments: use beam_search")
    x = torch.tensor([list(ids)], device=_device(model))
    lp = model(x).logits[0, :-1].double().log_softmax(-1)
    return float(lp.gather(1, x[0, 1:, None]).sum())


@torch.no_grad()
def beam_search(model: PushdownLM, ids: Sequence[int], beam: int, words: Sequence[str] | None = None
                ) -> BeamResult:
    """Beam search over the attachments of the sentence ``ids`` (``[BOS, words.., EOS]``), reordering
    the model's cache by hypothesis (see the module docstring). ``words`` (default: the ids as text)
    label the tree's leaves."""
    beam = check_int("beam", beam, minimum=1)
    ids, words = _check_sentence(model, ids, words)
    if not model.config.has_tape:
        ll = lm_log_likelihood(model, ids)
        return BeamResult([], [], ll, None)
    device = _device(model)
    n = len(ids) - 2
    stacks, history = [Stack()], [[]]
    total = torch.zeros(1, dtype=torch.float64, device=device)
    cache = model.new_cache(1)
    lp = model.step(cache, torch.tensor([ids[0]], device=device), _rows(stacks, device))
    for p in range(n):
        nxt = ids[p + 1]
        B = len(stacks)
        next_ids = torch.full((B,), nxt, dtype=torch.long, device=device)
        attach_lp = model.attach_logprobs(cache, next_ids, _rows(stacks, device), _allowed(stacks, p + 2, device))
        parents, attach, total = _select(total, lp[:, nxt].double(), attach_lp, beam)
        stacks, history = _extend(stacks, history, parents, attach)
        model.reorder(cache, parents)
        lp = model.step(cache, torch.full((len(parents),), nxt, dtype=torch.long, device=device),
                        _rows(stacks, device))
    total = total + lp[:, ids[-1]].double()
    return _finish(history, total, words)


def _prefix_tapes(rows: list[list[list[int]]], T: int) -> np.ndarray:
    """(B, T, T) model-layout depth rows of each hypothesis (rows after its last word are zero: causal
    attention never lets them reach the positions that are scored)."""
    out = np.zeros((len(rows), T, T), dtype=np.int64)
    for b, hyp in enumerate(rows):
        for p, row in enumerate(hyp):
            out[b, p, : len(row)] = row
    return out


@torch.no_grad()
def beam_search_reference(model: PushdownLM, ids: Sequence[int], beam: int,
                          words: Sequence[str] | None = None) -> BeamResult:
    """:func:`beam_search` without caches: every hypothesis's prefix goes through the full forward pass
    again at every word (all hypotheses in one batch). Same beams and scores up to float rounding."""
    beam = check_int("beam", beam, minimum=1)
    ids, words = _check_sentence(model, ids, words)
    if not model.config.has_tape:
        return BeamResult([], [], lm_log_likelihood(model, ids), None)
    device = _device(model)
    n = len(ids) - 2
    stacks, history = [Stack()], [[]]
    tape_rows = [[[0]]]  # each hypothesis's depth rows so far, kept as it grows (not recomputed)
    total = torch.zeros(1, dtype=torch.float64, device=device)
    for p in range(n + 1):
        T = p + 2  # positions 0..p read, and the next token (whose own row is never used)
        B = len(stacks)
        x = torch.tensor([ids[:T]] * B, device=device)
        depth = torch.from_numpy(_prefix_tapes(tape_rows, T)).to(device)
        allowed = torch.zeros(B, T, T, dtype=torch.bool, device=device)
        if p < n:
            allowed[:, p] = _allowed(stacks, T, device)
        out = model(x, depth=depth, allowed=allowed)
        word_lp = out.logits[:, p].log_softmax(-1)[:, ids[p + 1]].double()
        if p == n:
            total = total + word_lp
            break
        parents, attach, total = _select(total, word_lp, out.attach_logits[:, p], beam)
        stacks, history = _extend(stacks, history, parents, attach)
        tape_rows = [tape_rows[par] + [[0, *s.depths]] for par, s in zip(parents, stacks, strict=True)]
    return _finish(history, total, words)


@torch.no_grad()
def greedy_parse(model: PushdownLM, ids: Sequence[int], words: Sequence[str] | None = None
                 ) -> tuple[list[int], float, Tree]:
    """The attachments chosen one word at a time by their argmax, their joint log-prob with the words,
    and the tree; what ``beam_search(..., beam=1)`` returns."""
    ids, words = _check_sentence(model, ids, words)
    if not model.config.has_tape:
        raise LmscopeError("the plain relative-position model has no attachment head to parse with")
    device = _device(model)
    stack, attach, score = Stack(), [], 0.0
    cache = model.new_cache(1)
    lp = model.step(cache, torch.tensor([ids[0]], device=device), _rows([stack], device))
    for p in range(len(ids) - 2):
        nxt = torch.tensor([ids[p + 1]], device=device)
        alp = model.attach_logprobs(cache, nxt, _rows([stack], device), _allowed([stack], p + 2, device))[0]
        q = int(alp.argmax())
        score += float(lp[0, ids[p + 1]].double()) + float(alp[q].double())
        stack.push(q - 1)
        attach.append(q - 1)
        lp = model.step(cache, nxt, _rows([stack], device))
    score += float(lp[0, ids[-1]].double())
    return attach, score, tree_from_attachments(words, attach)


@torch.no_grad()
def joint_log_probs(model: PushdownLM, ids: Sequence[int], attachment_seqs: Sequence[Sequence[int]]
                    ) -> list[float]:
    """Teacher-forced joint log p(words, attachments) of the sentence ``ids`` under each attachment
    sequence (all in one batch; LmscopeError for a sequence that is not valid)."""
    ids, _ = _check_sentence(model, ids, None)
    if not model.config.has_tape:
        raise LmscopeError("the plain relative-position model has no attachments to score")
    n, cap, device = len(ids) - 2, model.config.depth_cap, _device(model)
    tapes = []
    for a in attachment_seqs:
        if len(a) != n:
            raise LmscopeError(f"{len(a)} attachments for a sentence of {n} words")
        tapes.append(model_tape(a, cap))
    x = torch.tensor([ids] * len(tapes), device=device)
    depth = torch.from_numpy(np.stack([t.depth for t in tapes])).to(device)
    allowed = torch.from_numpy(np.stack([t.allowed for t in tapes])).to(device)
    out = model(x, depth=depth, allowed=allowed)
    word = out.logits[:, :-1].double().log_softmax(-1).gather(2, x[:, 1:, None])[..., 0].sum(1)
    targets = torch.from_numpy(np.stack([t.targets for t in tapes])).to(device)[:, 1: n + 1]
    att = out.attach_logits[:, :n].double().gather(2, targets[..., None])[..., 0].sum(1)
    return (word + att).tolist()


@dataclass
class Generation:
    """What :func:`greedy_generate` returns: the new token ids (a stop id included) and the attachment
    of every word read after BOS (the prefix's and the generated ones'; none for the plain model)."""

    ids: list[int]
    attachments: list[int]


@torch.no_grad()
def greedy_generate(model: PushdownLM, prefix_ids: Sequence[int], max_new: int, stop_ids: Sequence[int] = (),
                    prefix_attachments: Sequence[int] | None = None) -> Generation:
    """Greedy continuation of ``prefix_ids`` (starting with BOS) by the model's OWN attachments: the
    argmax word, then the argmax attachment of that word, at every step; the prefix's words attach by
    their argmax too unless ``prefix_attachments`` gives them. Stops after a token in ``stop_ids`` (not
    attached: EOS closes everything) or ``max_new`` tokens."""
    max_new = check_int("max_new", max_new, minimum=0)
    prefix = [int(i) for i in prefix_ids]
    if not prefix:
        raise LmscopeError("greedy_generate needs a prefix starting with BOS")
    if prefix_attachments is not None and len(prefix_attachments) != len(prefix) - 1:
        raise LmscopeError(f"{len(prefix_attachments)} prefix attachments for {len(prefix) - 1} words after BOS")
    device = _device(model)
    tape = model.config.has_tape
    stop = {int(s) for s in stop_ids}
    stack, attach = Stack(), []
    cache = model.new_cache(1)
    lp = model.step(cache, torch.tensor([prefix[0]], device=device), _rows([stack], device))

    def read(tok: int, given: int | None):
        if tape:
            t = torch.tensor([tok], device=device)
            if given is None:
                alp = model.attach_logprobs(cache, t, _rows([stack], device), _allowed([stack], stack.n + 2, device))
                given = int(alp[0].argmax()) - 1
            stack.push(int(given))
            attach.append(int(given))
        return model.step(cache, torch.tensor([tok], device=device), _rows([stack], device))

    for i, tok in enumerate(prefix[1:]):
        lp = read(tok, prefix_attachments[i] if prefix_attachments is not None else None)
    out: list[int] = []
    for _ in range(max_new):
        tok = int(lp[0].argmax())
        out.append(tok)
        if tok in stop:
            break
        lp = read(tok, None)
    return Generation(out, attach)
