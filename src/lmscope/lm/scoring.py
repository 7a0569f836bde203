"""Score evaluation tasks with a local transformers language model, fast.

A :class:`TaskScorer` encodes a task once (:class:`lmscope.data.evalsets.EvalTask`: ``recall``,
``choice`` or ``text``) into length-sorted, padded batches and then scores the model's current
weights as often as asked. Three things keep repeated scoring cheap:

- the vocabulary projection runs only at the positions that predict answer tokens, not at every
  position of every sequence (checked once against the model's own logits; models whose head does
  more than the projection fall back to the full forward pass);
- :meth:`TaskScorer.prepare_prefix` stores the hidden states entering chosen layers; when only
  layers ``>= L`` have changed since, ``score(start_layer=L)`` replays the stored input of layer
  ``L`` and runs just the rest of the model;
- examples are batched (right padding, so no real token attends to padding).

Metrics per example (see :class:`Scores`):

- ``recall``: top-1 / top-k correct compare the model's predictions for the first answer token
  with the first token of the answer or an alias, case- and whitespace-insensitively; ``logprob``
  is the log-probability of the whole answer; ``logloss`` is ``-logprob / answer tokens``.
- ``choice``: each choice is scored by its log-probability as the continuation; top-1 is the gold
  choice winning, top-k the gold choice among the k best; ``logprob`` is the gold choice's and
  ``logloss`` is ``-log`` of its probability among the choices.
- ``text``: ``logprob`` of the text, ``logloss`` per token (perplexity = exp of the token mean).

Causal LMs score continuations left to right. Masked LMs fill masks: the prompt is followed by as
many mask tokens as the answer has tokens, and the answer tokens are scored at the masks.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lmscope.data.evalsets import EvalTask
from lmscope.errors import LmscopeError, check_int
from lmscope.models.hooks import (
    capture_blocks,
    find_body_head,
    find_layers,
    project,
    resolve_device,
    run_body,
)
from lmscope.models.small_tokenizer import pad_batch, pad_id_of
from lmscope.models.sources import is_causal
from lmscope.progress import progress


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------
@dataclass
class Scores:
    """Per-example metrics (numpy arrays of one length); accuracy arrays are NaN for text tasks."""

    kind: str
    top1: np.ndarray
    topk: np.ndarray
    logprob: np.ndarray
    logloss: np.ndarray
    ntokens: np.ndarray
    k: int

    def __len__(self) -> int:
        return len(self.logprob)

    def subset(self, idx) -> Scores:
        idx = np.asarray(idx, dtype=int)
        return Scores(self.kind, self.top1[idx], self.topk[idx], self.logprob[idx], self.logloss[idx],
                      self.ntokens[idx], self.k)

    def summary(self) -> dict:
        n = len(self)
        out = {"n": n, "accuracy": None, f"top{self.k}_accuracy": None}
        if n == 0:
            return {**out, "logprob": None, "logloss": None}
        if self.kind != "text":
            out["accuracy"] = float(np.mean(self.top1))
            out[f"top{self.k}_accuracy"] = float(np.mean(self.topk))
        out["logprob"] = float(np.mean(self.logprob))
        out["logloss"] = float(np.mean(self.logloss))
        if self.kind == "text":
            nll = -float(np.sum(self.logprob)) / max(1, int(np.sum(self.ntokens)))
            out["perplexity"] = math.exp(nll) if nll < 50 else math.inf
        return out

    def rows(self, task: EvalTask | None = None) -> list[dict]:
        """One dict per example (with the example's id, prompt and answer when ``task`` is given)."""
        out = []
        for i in range(len(self)):
            r = {"index": i}
            if task is not None:
                src = task.rows[i]
                r.update({k: src[k] for k in ("id", "prompt", "answer") if k in src})
            if self.kind != "text":
                r["top1"] = bool(self.top1[i])
                r[f"top{self.k}"] = bool(self.topk[i])
            r.update(logprob=float(self.logprob[i]), logloss=float(self.logloss[i]), tokens=int(self.ntokens[i]))
            out.append(r)
        return out


def better(a: dict, b: dict) -> bool:
    """Whether summary ``a`` beats ``b``: higher accuracy, ties broken by lower log-loss."""
    acc_a, acc_b = a.get("accuracy"), b.get("accuracy")
    if acc_a is not None and acc_b is not None and not math.isclose(acc_a, acc_b, abs_tol=1e-12):
        return acc_a > acc_b
    return a["logloss"] < b["logloss"] - 1e-12


# ------------------------------------------------------------------------------------------------
# Model plumbing
# ------------------------------------------------------------------------------------------------
class _Skip(torch.nn.Module):
    """Stands in for a block below the first changed layer: passes through, or replays a stored input."""

    def __init__(self):
        super().__init__()
        self.replay: torch.Tensor | None = None

    def forward(self, *args, **kwargs):
        if self.replay is not None:
            return self.replay
        return args[0] if args else kwargs["hidden_states"]


_HEAD_CHUNK = 2048
_BATCH_TOKENS = 16384  # scored positions projected onto the vocabulary at once


@dataclass
class _Batch:
    ids: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, T)
    rows: torch.Tensor  # (N,) batch row of each scored position
    pos: torch.Tensor  # (N,) position whose logits predict the target
    tgt: torch.Tensor  # (N,) target token id
    qidx: torch.Tensor  # (N,) query of each scored position
    first: torch.Tensor  # (Q_b,) index into the N scored positions of each query's first target
    queries: torch.Tensor  # (Q_b,) query ids of this batch


# ------------------------------------------------------------------------------------------------
# The scorer
# ------------------------------------------------------------------------------------------------
class TaskScorer:
    """Score ``task`` with ``model`` (a transformers causal or masked LM) and its ``tokenizer``."""

    def __init__(self, model, tokenizer, task: EvalTask, *, batch_size: int = 32, top_k: int = 5,
                 max_length: int = 512, quiet: bool | None = None):
        if batch_size < 1:
            raise LmscopeError(f"batch size must be at least 1, got {batch_size}")
        vocab = getattr(getattr(model, "config", None), "vocab_size", None)
        check_int("top-k", top_k, 1, vocab if isinstance(vocab, int) and vocab > 0 else None)
        self.model = model.eval()
        self.tok = tokenizer
        self.task = task
        self.k = top_k
        self.quiet = quiet
        self.causal = is_causal(model)
        self.device = next(model.parameters()).device
        if not self.causal and task.kind == "text":
            raise LmscopeError("plain-text (perplexity) tasks need a causal LM; this model is a masked LM")
        if not self.causal and tokenizer.mask_token_id is None:
            raise LmscopeError("this encoder's tokenizer has no mask token, so it cannot fill in answers")
        self.max_length = max_length
        self._decoded: dict[int, str] = {}
        self._encode_all()
        self.batches = self._make_batches(batch_size)
        self.layers = find_layers(model)
        self._prefix: dict[int, list[torch.Tensor]] = {}
        b = self.batches[0]
        self._split = find_body_head(model, {"input_ids": b.ids, "attention_mask": b.mask}, at=(b.rows, b.pos))

    @property
    def _fast(self) -> bool:
        """Whether only the scored positions go through the head (see :func:`~lmscope.models.hooks.find_body_head`)."""
        return self._split is not None

    # ------------------------------------------------------------------ encoding
    def _ids(self, text: str, special: bool) -> list[int]:
        return list(self.tok(text, add_special_tokens=special)["input_ids"])

    def _continuation(self, prompt: str, answer: str, where: str) -> tuple[list[int], list[int]]:
        """Token ids of the prompt and of ``" " + answer`` after it."""
        if self.causal:
            p = self._ids(prompt, True)
            full = self._ids(prompt + " " + answer, True)
            if full[:len(p)] == p and len(full) > len(p):
                cont = full[len(p):]
            else:
                cont = self._ids(" " + answer, False)
        else:
            p = self._ids(prompt, False)
            cont = self._ids(" " + answer, False)
        if not cont:
            raise LmscopeError(f"{where}: the answer {answer!r} tokenizes to nothing")
        return p, cont

    def _norm(self, token_id: int) -> str:
        s = self._decoded.get(token_id)
        if s is None:
            s = self.tok.decode([int(token_id)]).strip().lower()
            self._decoded[token_id] = s
        return s

    def _query(self, prompt_ids: list[int], cont: list[int]) -> tuple[list[int], list[int], list[int]]:
        """(input ids, positions scored, targets) of one prompt + continuation, for a causal LM."""
        room = self.max_length - len(cont)
        if room < 1:
            raise LmscopeError(f"an answer of {len(cont)} tokens does not fit in {self.max_length} tokens")
        prompt_ids = prompt_ids[-room:]
        ids = prompt_ids + cont
        start = len(prompt_ids)
        return ids, list(range(start - 1, start - 1 + len(cont))), cont

    def _mlm_query(self, prompt: str, cont: list[int], where: str) -> tuple[list[int], list[int], list[int]]:
        """The prompt followed by one mask per answer token, with the tokenizer's special tokens."""
        mask = self.tok.mask_token_id
        ids = self._ids(prompt + (" " + self.tok.mask_token) * len(cont), True)
        pos = [i for i, t in enumerate(ids) if t == mask]
        if len(pos) < len(cont):
            raise LmscopeError(f"{where}: the tokenizer does not keep its mask token {self.tok.mask_token!r} intact")
        if len(ids) > self.max_length:
            raise LmscopeError(f"{where}: the prompt is longer than {self.max_length} tokens")
        return ids, pos[-len(cont):], cont

    def _encode_one(self, prompt_ids, prompt: str, cont, where: str):
        return self._query(prompt_ids, cont) if self.causal else self._mlm_query(prompt, cont, where)

    def _encode_all(self) -> None:
        task = self.task
        self.q_ids: list[list[int]] = []
        self.q_pos: list[list[int]] = []
        self.q_tgt: list[list[int]] = []
        self.q_example: list[int] = []
        self.q_choice: list[int] = []
        self.gold_choice: list[int] = []
        self.gold_first: list[tuple[int, frozenset]] = []
        for i, row in enumerate(task.rows):
            where = f"example {i + 1}" + (f" (id {row['id']})" if "id" in row else "")
            if task.kind == "text":
                ids = self._ids(row["text"], True)
                if len(ids) < 2:
                    raise LmscopeError(f"{where}: the text has fewer than two tokens")
                step = self.max_length
                for s in range(0, len(ids) - 1, step - 1):
                    chunk = ids[s:s + step]
                    if len(chunk) < 2:
                        break
                    self._add(chunk, list(range(len(chunk) - 1)), chunk[1:], i, 0)
                continue
            if task.kind == "recall":
                p, cont = self._continuation(row["prompt"], row["answer"], where)
                firsts = {cont[0]}
                for alias in row.get("aliases", []):
                    firsts.add(self._continuation(row["prompt"], alias, where)[1][0])
                names = frozenset(n for n in (self._norm(t) for t in firsts) if n)
                self.gold_first.append((cont[0], names))
                self._add(*self._encode_one(p, row["prompt"], cont, where), i, 0)
                continue
            for c, choice in enumerate(row["choices"]):
                p, cont = self._continuation(row["prompt"], choice, where)
                self._add(*self._encode_one(p, row["prompt"], cont, where), i, c)
            self.gold_choice.append(row["choices"].index(row["answer"]))

    def _add(self, ids, pos, tgt, example, choice) -> None:
        self.q_ids.append(ids)
        self.q_pos.append(pos)
        self.q_tgt.append(tgt)
        self.q_example.append(example)
        self.q_choice.append(choice)

    def _make_batches(self, size: int) -> list[_Batch]:
        order = sorted(range(len(self.q_ids)), key=lambda q: (len(self.q_ids[q]), q))
        pad = pad_id_of(self.tok)
        groups, cur = [], []
        for q in order:  # at most `size` sequences and about _BATCH_TOKENS padded tokens per batch
            if cur and (len(cur) >= size or (len(cur) + 1) * len(self.q_ids[q]) > _BATCH_TOKENS):
                groups.append(cur)
                cur = []
            cur.append(q)
        groups.append(cur)
        batches = []
        for qs in groups:
            ids, mask = pad_batch([self.q_ids[q] for q in qs], pad)
            rows, pos, tgt, qidx, first = [], [], [], [], []
            for b, q in enumerate(qs):
                first.append(len(pos))
                rows += [b] * len(self.q_pos[q])
                pos += self.q_pos[q]
                tgt += self.q_tgt[q]
                qidx += [q] * len(self.q_pos[q])
            dev = self.device
            batches.append(_Batch(ids.to(dev), mask.to(dev), torch.tensor(rows, device=dev),
                                  torch.tensor(pos, device=dev), torch.tensor(tgt, device=dev),
                                  torch.tensor(qidx), torch.tensor(first), torch.tensor(qs)))
        return batches

    # ------------------------------------------------------------------ forward passes
    def _scored_hidden(self, b: _Batch) -> torch.Tensor:
        """Final hidden states at the scored positions (fast path) or the model's full logits there."""
        states, _ = run_body(self.model, self._split, input_ids=b.ids, attention_mask=b.mask)
        return states[b.rows, b.pos]

    @contextlib.contextmanager
    def _skipping(self, start: int, batch_index: int | None):
        """Blocks below ``start`` pass through; the last one replays the stored input of ``start``."""
        if start <= 0:
            yield
            return
        saved = [self.layers[i] for i in range(start)]
        skip = _Skip()
        try:
            for i in range(start):
                self.layers[i] = skip
            if batch_index is not None:
                skip.replay = self._prefix[start][batch_index]
            yield skip
        finally:
            for i, m in enumerate(saved):
                self.layers[i] = m

    @torch.no_grad()
    def prepare_prefix(self, layers) -> None:
        """Store the hidden states entering each of ``layers`` for every batch, from the current weights.

        ``score(start_layer=L)`` is then exact as long as no weight below layer ``L`` changes. The pass
        starts from the highest layer already stored below the requested ones (so walking up the layers
        one at a time costs one pass in all) and stops at the highest requested layer.
        """
        wanted = sorted({int(L) for L in layers if 0 < int(L) < len(self.layers)} - set(self._prefix))
        if not wanted:
            return
        start = max((L for L in self._prefix if L < wanted[0]), default=0)
        store: dict[int, list[torch.Tensor]] = {L: [] for L in wanted}
        for bi, b in enumerate(progress(self.batches, desc="caching hidden states", quiet=self.quiet)):
            with self._skipping(start, bi if start else None):
                got, _ = capture_blocks(self.layers, lambda b=b: self.model(input_ids=b.ids, attention_mask=b.mask),
                                        inputs=wanted)
            for L in wanted:
                store[L].append(got[L].detach())
        self._prefix.update(store)

    def has_prefix(self, layer: int) -> bool:
        return layer in self._prefix

    def drop_prefix(self, below: int) -> None:
        """Forget the stored inputs of layers below ``below`` (to bound memory while walking up)."""
        for L in [L for L in self._prefix if L < below]:
            del self._prefix[L]

    def clear_prefix(self) -> None:
        self._prefix.clear()

    def prefix_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for ts in self._prefix.values() for t in ts)

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def score(self, start_layer: int = 0) -> Scores:
        """Score the model's current weights; ``start_layer=L`` reuses the stored input of layer ``L``."""
        if start_layer and start_layer not in self._prefix:
            raise LmscopeError(f"no stored hidden states for layer {start_layer}; call prepare_prefix first")
        nq = len(self.q_ids)
        q_lp = torch.zeros(nq, dtype=torch.float64)
        q_n = torch.zeros(nq, dtype=torch.long)
        q_top = torch.full((nq, self.k), -1, dtype=torch.long)
        want_top = self.task.kind == "recall"
        for bi, b in enumerate(self.batches):
            with self._skipping(start_layer, bi if start_layer else None):
                hidden = self._scored_hidden(b)
            for s in range(0, len(b.tgt), _HEAD_CHUNK):
                logits = project(self._split, hidden[s:s + _HEAD_CHUNK])
                lp = F.log_softmax(logits, dim=-1)
                tgt = b.tgt[s:s + _HEAD_CHUNK]
                tok_lp = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1).double().cpu()
                qidx = b.qidx[s:s + _HEAD_CHUNK]
                q_lp.index_add_(0, qidx, tok_lp)
                q_n.index_add_(0, qidx, torch.ones_like(qidx))
                if want_top:
                    k = min(self.k, logits.shape[-1])
                    sel = (b.first >= s) & (b.first < s + _HEAD_CHUNK)
                    if bool(sel.any()):
                        rows = (b.first[sel] - s).to(logits.device)
                        q_top[b.queries[sel], :k] = logits[rows].topk(k, dim=-1).indices.cpu()
        return self._aggregate(q_lp.numpy(), q_n.numpy(), q_top.numpy())

    def _aggregate(self, q_lp, q_n, q_top) -> Scores:
        n = len(self.task)
        kind = self.task.kind
        top1 = np.full(n, np.nan)
        topk = np.full(n, np.nan)
        logprob = np.zeros(n)
        ntok = np.zeros(n, dtype=int)
        ex = np.asarray(self.q_example)
        if kind == "text":
            np.add.at(logprob, ex, q_lp)
            np.add.at(ntok, ex, q_n)
            return Scores(kind, top1, topk, logprob, -logprob / np.maximum(ntok, 1), ntok, self.k)
        if kind == "recall":
            logprob[ex] = q_lp
            ntok[ex] = q_n
            for q, e in enumerate(ex):
                gold_id, names = self.gold_first[e]
                hits = [(self._norm(t) in names) if names else (t == gold_id) for t in q_top[q] if t >= 0]
                top1[e] = float(bool(hits) and hits[0])
                topk[e] = float(any(hits))
            return Scores(kind, top1, topk, logprob, -logprob / np.maximum(ntok, 1), ntok, self.k)
        # choice
        by_ex: dict[int, list[tuple[int, float, int]]] = {}
        for q, e in enumerate(ex):
            by_ex.setdefault(int(e), []).append((self.q_choice[q], float(q_lp[q]), int(q_n[q])))
        logloss = np.zeros(n)
        for e, items in by_ex.items():
            items.sort()
            lps = np.array([lp for _, lp, _ in items])
            g = self.gold_choice[e]
            rank = int(np.sum(lps > lps[g]) + np.sum(lps[:g] == lps[g]))  # ties go to the earlier choice
            top1[e] = float(rank == 0)
            topk[e] = float(rank < self.k)
            logprob[e] = lps[g]
            ntok[e] = items[g][2]
            logloss[e] = -(lps[g] - float(np.logaddexp.reduce(lps)))
        return Scores(kind, top1, topk, logprob, logloss, ntok, self.k)


def check_top_k(src, top_k: int) -> int:
    """``top_k`` when it is at least 1 and at most the vocabulary of ``src`` (from its config, before
    loading); else an LmscopeError giving the allowed range."""
    vocab = src.config.get("vocab_size")
    vocab = vocab if isinstance(vocab, int) and not isinstance(vocab, bool) and vocab > 0 else None
    try:
        return check_int("top-k", top_k, 1, vocab)
    except LmscopeError as e:
        raise LmscopeError(f"{e}" + (f" (the vocabulary of {src.spec} has {vocab:,} tokens)" if vocab else "")) from None


def evaluate_model(model, task, *, batch_size: int = 32, top_k: int = 5, device: str = "auto",
                   limit: int | None = None, seed: int = 0, quiet: bool | None = None) -> tuple[EvalTask, Scores]:
    """Score a model (anything :func:`lmscope.models.open_model` opens) on a task (file or bundled name).

    ``limit`` scores a seeded sample of that many examples. Returns the (sampled) task and its scores.
    """
    from lmscope.data.evalsets import load_eval_task
    from lmscope.models import open_model

    task = (task if isinstance(task, EvalTask) else load_eval_task(task)).sample(limit, seed)
    src = open_model(model)
    src.require_lm_head("evaluation")
    check_top_k(src, top_k)
    check_int("batch_size", batch_size, 1)
    dev = resolve_device(device)
    m = src.load_model().to(dev).eval()
    scorer = TaskScorer(m, src.load_tokenizer(), task, batch_size=batch_size, top_k=top_k, quiet=quiet)
    return task, scorer.score()
