"""Evaluating pushdown runs: language modelling, the tasks with the model's own attachments, and parses.

* Task accuracy always uses the model's OWN attachments, never the gold ones: the prompt is read with
  the argmax attachment of every word (beam 1) and the answer decoded greedily the same way
  (:func:`task_scores`): question formation, the first word of the question (argmax over do / does /
  don't / doesn't) on ``quest`` rows; tense inflection, greedy decoding judged as the grokking runs
  judge it (:func:`lmscope.data.grammars.tense_correct`) on ``PRESENT`` rows; Dyck, the argmax over
  the closing brackets wherever the next token is one; arith, the greedy answer.
* Perplexity in :func:`pushdown_eval` comes from beam search (:func:`lmscope.pushdown.beam.beam_search`):
  the logsumexp over the final beam is a LOWER bound on log p(line), so the perplexity is an UPPER
  bound on the model's (exact for the plain model, which has no attachments). The perplexity logged
  during training (:func:`teacher_forced_nll`) reads the GOLD tapes instead.
* Parses: the best beam hypothesis's tree, scored against the gold trees with pooled bracket F1 (the
  whole sentence counted, single words not), beside the left-/right-branching, balanced and random
  baselines over the same sentences.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmscope.data import grammars
from lmscope.data.trees import BASELINE_NAMES, Tree, baseline_tree, leaves, parse_bracketed, parse_f1, to_bracketed
from lmscope.errors import LmscopeError, check_int
from lmscope.progress import progress
from lmscope.pushdown.tape import Stack, model_tape, tree_from_attachments

TASKS = ("question-formation", "tense-inflection", "dyck", "arith")
TRANSFORM_MARKER = {"question-formation": "quest", "tense-inflection": "PRESENT"}
PLAIN_NO_PARSE = "the plain relative-position model (--pushdown-layers none) has no attachments, so no parse"


def word_ids(tokenizer, words: Sequence[str]) -> list[int]:
    """The ids of ``words``; LmscopeError naming every word outside the run's vocabulary."""
    unknown = [w for w in dict.fromkeys(words) if w not in tokenizer.token_to_id]
    if unknown:
        shown = ", ".join(repr(w) for w in unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise LmscopeError(f"{len(unknown)} word(s) not in the run's vocabulary: {shown}")
    return [tokenizer.token_to_id[w] for w in words]


def sentence_ids(tokenizer, words: Sequence[str]) -> list[int]:
    """``[BOS, words.., EOS]`` as ids (LmscopeError naming out-of-vocabulary words)."""
    return [tokenizer.bos_id, *word_ids(tokenizer, words), tokenizer.eos_id]


def _device(model):
    return model.embed.weight.device


# ------------------------------------------------------------------------------------------ reading
@torch.no_grad()
def greedy_read(model, seqs: Sequence[Sequence[int]]) -> list[tuple[torch.Tensor, list[int]]]:
    """Read each sequence (``[BOS, w_0 ..]``) with the model's own argmax attachment for every word,
    sequences of one length in one batch. Per sequence: the next-token log-probs after every position
    (len, V) and the attachments (word positions; empty for the plain model)."""
    out: list = [None] * len(seqs)
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        by_len.setdefault(len(s), []).append(i)
    dev, tape = _device(model), model.config.has_tape
    for T, idx in by_len.items():
        ids = torch.tensor([list(seqs[i]) for i in idx], dtype=torch.long, device=dev)
        B = len(idx)
        stacks, hist = [Stack() for _ in range(B)], [[] for _ in range(B)]

        def rows():
            return torch.tensor([[0, *s.depths] for s in stacks], dtype=torch.long, device=dev)

        cache = model.new_cache(B)
        lps = [model.step(cache, ids[:, 0], rows())]
        for p in range(1, T):
            if tape:
                allowed = torch.zeros(B, p + 1, dtype=torch.bool)
                for b, s in enumerate(stacks):
                    allowed[b, [a + 1 for a in s.allowed()]] = True
                alp = model.attach_logprobs(cache, ids[:, p], rows(), allowed.to(dev))
                for b, q in enumerate(alp.argmax(-1).tolist()):
                    stacks[b].push(q - 1)
                    hist[b].append(q - 1)
            lps.append(model.step(cache, ids[:, p], rows()))
        lp = torch.stack(lps, 1).float().cpu()
        for b, i in enumerate(idx):
            out[i] = (lp[b], hist[b])
    return out


@torch.no_grad()
def teacher_forced_nll(model, examples: Sequence[tuple[Sequence[int], Sequence[int]]], batch_size: int = 32
                       ) -> tuple[float, int]:
    """Summed next-token negative log-likelihood (nats) of every token after BOS of the examples
    (``(ids with BOS and EOS, attachments)``) read with their GOLD tapes, and the number of tokens."""
    dev, total, count = _device(model), 0.0, 0
    cap = model.config.depth_cap
    for s in range(0, len(examples), batch_size):
        chunk = examples[s:s + batch_size]
        T = max(len(ids) for ids, _ in chunk)
        B = len(chunk)
        ids = torch.full((B, T), model.config.pad_id, dtype=torch.long)
        mask = torch.zeros(B, T, dtype=torch.long)
        depth = np.zeros((B, T, T), dtype=np.int64)
        for b, (x, a) in enumerate(chunk):
            ids[b, :len(x)] = torch.tensor(list(x))
            mask[b, :len(x)] = 1
            if model.config.has_tape:
                depth[b, :len(x), :len(x)] = model_tape(a, cap).depth
        out = model(ids.to(dev), attention_mask=mask.to(dev),
                    depth=torch.from_numpy(depth).to(dev) if model.config.has_tape else None)
        lp = out.logits[:, :-1].double().log_softmax(-1).gather(2, ids[:, 1:, None].to(dev))[..., 0]
        keep = mask[:, 1:].to(dev).bool()
        total -= float(lp[keep].sum())
        count += int(keep.sum())
    return total, count


# ------------------------------------------------------------------------------------------ the tasks
def task_rows(task: str, rows: Sequence[dict]) -> list[dict]:
    """The rows a task is scored on (the transformation rows of the grammar tasks; every row else)."""
    marker = TRANSFORM_MARKER.get(task)
    return [r for r in rows if marker is None or r.get("task") == marker]


def task_scores(model, tokenizer, task: str, rows: Sequence[dict]) -> dict:
    """``{"acc", "n"}`` of the task on ``rows`` with the model's own attachments (see the module
    docstring); ``acc`` None without rows to score."""
    from lmscope.pushdown.beam import greedy_generate

    if task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    rows = task_rows(task, rows)
    if not rows:
        return {"acc": None, "n": 0}
    bos = tokenizer.bos_id
    if task == "question-formation":
        aux = word_ids(tokenizer, grammars.AUXILIARY_WORDS)
        reads = greedy_read(model, [[bos, *word_ids(tokenizer, r["text"].split())] for r in rows])
        good = sum(grammars.AUXILIARY_WORDS[int(lp[-1, aux].argmax())] == r["target"].split()[0]
                   for r, (lp, _) in zip(rows, reads, strict=True))
        return {"acc": good / len(rows), "n": len(rows)}
    if task == "dyck":
        from lmscope.data.dyck import bracket_pairs

        seen = {w for r in rows for w in r["text"].split()}
        k = max([2] + [n + 1 for n, (o, c) in enumerate(bracket_pairs(4)) if o in seen or c in seen])
        closers = [c for _, c in bracket_pairs(k) if c in tokenizer.token_to_id]
        close_ids = word_ids(tokenizer, closers)
        reads = greedy_read(model, [[bos, *word_ids(tokenizer, r["text"].split())] for r in rows])
        total = good = 0
        for r, (lp, _) in zip(rows, reads, strict=True):
            words = r["text"].split()
            for i, nxt in enumerate(words):
                if nxt in closers:  # position i (BOS + words before i) predicts word i
                    total += 1
                    good += closers[int(lp[i, close_ids].argmax())] == nxt
        return {"acc": good / total if total else None, "n": len(rows)}
    good = 0
    for r in rows:  # tense inflection and arith: greedy decoding of the target
        gold = r["target"].split()
        gen = greedy_generate(model, [bos, *word_ids(tokenizer, r["text"].split())], len(gold) + 5,
                              stop_ids=[tokenizer.eos_id])
        out = gen.ids[:-1] if gen.ids and gen.ids[-1] == tokenizer.eos_id else gen.ids
        words = tokenizer.decode(out).split()
        if task == "tense-inflection":
            good += grammars.tense_correct(words, gold, grammars.main_verb_index(r["tree"]))
        else:
            good += words[:len(gold)] == gold
    return {"acc": good / len(rows), "n": len(rows)}


# ------------------------------------------------------------------------------------------ parses
def parse_sentences(model, tokenizer, sentences: Sequence[Sequence[str]], beam: int = 1,
                    quiet: bool | None = True) -> list[tuple[Tree, float | None]]:
    """The best beam parse of each sentence and its joint log-probability (beam 1: the greedy reading,
    batched; its score is not computed, None). LmscopeError for the plain model."""
    from lmscope.pushdown.beam import beam_search

    if not model.config.has_tape:
        raise LmscopeError(PLAIN_NO_PARSE)
    if beam == 1:
        reads = greedy_read(model, [[tokenizer.bos_id, *word_ids(tokenizer, ws)] for ws in sentences])
        return [(tree_from_attachments(ws, a), None) for ws, (_, a) in zip(sentences, reads, strict=True)]
    out = []
    for ws in progress(sentences, desc="parse", quiet=quiet):
        res = beam_search(model, sentence_ids(tokenizer, ws), beam, words=ws)
        out.append((res.tree, res.scores[0]))
    return out
