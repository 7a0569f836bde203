"""Metrics of the structural-grokking experiments, computed on a causal small transformer.

Lines are encoded as in training (:func:`lmscope.train.loop.train_lm`): ``<bos> text target <eos>``,
the tab between ``text`` and ``target`` being white space to the word tokenizer. So the prompt of a
row is ``<bos>`` followed by the words of ``text``, and the logits at its last position predict the
first word of the target.

* question formation: :func:`qf_first_word_accuracy`, the first word of the question, argmax
  restricted to the four auxiliaries (on ``quest`` rows);
* tense inflection: :func:`tense_accuracy`, greedy decoding; an output is correct when its
  part-of-speech sequence equals the gold target's and its main verb is the gold main verb (tense
  and number); exact-match accuracy is reported too (on ``PRESENT`` rows);
* Dyck: :func:`dyck_closing_accuracy`, at every position whose next token is a closing bracket, the
  argmax over the closing brackets against that bracket (the model reads the string only);
* :func:`weight_norm`, :func:`attention_sparsity` and :func:`tree_scores` (t-score and parsing F1
  from :mod:`lmscope.trees`);
* :func:`make_eval_fn`, the ``eval_fn(model, step)`` of a grokking run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from lmscope.data import grammars
from lmscope.data.dyck import bracket_pairs
from lmscope.data.grammars import main_verb_index, pos_sequence, pos_tag, tense_correct  # noqa: F401 (re-exported)
from lmscope.data.trees import leaves, parse_bracketed
from lmscope.errors import LmscopeError
from lmscope.models.hooks import capture_blocks
from lmscope.models.small_tokenizer import pad_batch

TASKS = ("question-formation", "tense-inflection", "dyck")
QF_AUXILIARIES = grammars.AUXILIARY_WORDS
TRANSFORM_MARKER = {"question-formation": "quest", "tense-inflection": "PRESENT"}
GEN_SPLIT = {"question-formation": "gen", "tense-inflection": "gen", "dyck": "ood"}

# ------------------------------------------------------------------------------------------ helpers
def _device(model) -> torch.device:
    return next(model.parameters()).device


def _logits(model, seqs: list[list[int]], batch_size: int = 64) -> list[torch.Tensor]:
    """Per sequence, its logits (T, vocab), from right-padded batches."""
    out: list[torch.Tensor] = []
    dev = _device(model)
    pad = model.config.pad_id
    for s in range(0, len(seqs), batch_size):
        chunk = seqs[s:s + batch_size]
        ids, mask = pad_batch(chunk, pad)
        with torch.no_grad():
            lg = model(ids.to(dev), attention_mask=mask.to(dev)).logits.float().cpu()
        out.extend(lg[b, :len(x)] for b, x in enumerate(chunk))
    return out


def _ids(tokenizer, words: Sequence[str]) -> list[int]:
    ids = []
    for w in words:
        if w not in tokenizer.token_to_id:
            raise LmscopeError(f"the word {w!r} is not in the tokenizer's vocabulary")
        ids.append(tokenizer.token_to_id[w])
    return ids


def _prompt(tokenizer, text: str) -> list[int]:
    return [tokenizer.bos_id] + tokenizer.encode(text)


# ------------------------------------------------------------------------------------------ task metrics
def qf_first_word_scores(model, tokenizer, rows: list[dict]) -> dict:
    """First-word scores of ``quest`` rows, the model's pick being the argmax over do / does / don't /
    doesn't after ``<bos> text``:

    * ``acc``: the pick is the target's first word (the main clause's auxiliary);
    * ``first_aux``: the pick is the sentence's first auxiliary (what the linear rule fronts);
    * ``linear``: the linear rule's own score, i.e. the first auxiliary is the target's first word
      (1 on train/val questions, 0 on the gen split by construction);
    * ``n``: rows scored. Scores are None without rows.
    """
    rows = [r for r in rows if r.get("task", "quest") == "quest"]
    if not rows:
        return {"acc": None, "first_aux": None, "linear": None, "n": 0}
    allowed = _ids(tokenizer, QF_AUXILIARIES)
    logits = _logits(model, [_prompt(tokenizer, r["text"]) for r in rows])
    acc = fronts_first = linear = 0
    for r, lg in zip(rows, logits):
        pick = QF_AUXILIARIES[int(lg[-1, allowed].argmax())]
        words = grammars.declarative_words(r["text"])
        first, target = words[grammars.first_auxiliary(words)], r["target"].split()[0]
        acc += pick == target
        fronts_first += pick == first
        linear += first == target
    n = len(rows)
    return {"acc": acc / n, "first_aux": fronts_first / n, "linear": linear / n, "n": n}


def qf_first_word_accuracy(model, tokenizer, rows: list[dict]) -> float | None:
    """Fraction of ``quest`` rows whose question's first word (argmax over do / does / don't / doesn't
    after ``<bos> text``) equals the target's first word; None without such rows."""
    return qf_first_word_scores(model, tokenizer, rows)["acc"]


def tense_accuracy(model, tokenizer, rows: list[dict], batch_size: int = 64) -> dict:
    """Greedy decoding of ``PRESENT`` rows: ``{"acc": POS sequence and main verb right, "exact": the
    whole target right, "n"}`` (accuracies None without rows). Decoding stops at ``<eos>`` or after
    the target's length + 5 tokens."""
    rows = [r for r in rows if r.get("task", "PRESENT") == "PRESENT"]
    if not rows:
        return {"acc": None, "exact": None, "n": 0}
    good = exact = 0
    for s in range(0, len(rows), batch_size):
        chunk = rows[s:s + batch_size]
        prompts = [_prompt(tokenizer, r["text"]) for r in chunk]
        budget = max(len(r["target"].split()) for r in chunk) + 5
        outs = model.generate(prompts, budget, stop_id=tokenizer.eos_id)
        for r, out in zip(chunk, outs):
            gold = r["target"].split()
            limit = len(gold) + 5
            out = out[:limit]
            if tokenizer.eos_id in out:
                out = out[:out.index(tokenizer.eos_id)]
            words = tokenizer.decode(out).split()
            exact += words == gold
            good += tense_correct(words, gold, main_verb_index(r["tree"]))
    return {"acc": good / len(rows), "exact": exact / len(rows), "n": len(rows)}


def dyck_closing_accuracy(model, tokenizer, rows: list[dict], k: int | None = None) -> float | None:
    """Over every position of every row whose next token is a closing bracket: whether the argmax
    over the k closing brackets, after ``<bos>`` and the tokens so far, is that bracket. ``k``
    defaults to the largest bracket type seen in the rows (at least 2)."""
    if not rows:
        return None
    if k is None:
        seen = {w for r in rows for w in r["text"].split()}
        k = max([2] + [n + 1 for n, (o, c) in enumerate(bracket_pairs(4)) if o in seen or c in seen])
    closers = [c for _, c in bracket_pairs(k)]
    close_ids = _ids(tokenizer, closers)
    seqs = [_prompt(tokenizer, r["text"]) for r in rows]
    total = correct = 0
    for r, lg in zip(rows, _logits(model, seqs)):
        words = r["text"].split()
        for i in range(len(words) - 1):
            nxt = words[i + 1]
            if nxt in closers:
                total += 1
                # position i + 1 of the input (after <bos>) holds word i and predicts word i + 1
                correct += closers[int(lg[i + 1, close_ids].argmax())] == nxt
    return correct / total if total else None


# ------------------------------------------------------------------------------------------ model metrics
def weight_norm(model) -> float:
    """L2 norm of all parameters taken together."""
    with torch.no_grad():
        return float(math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in model.parameters())))


def attention_sparsity(model, tokenizer, texts: list[str]) -> dict:
    """Attention statistics of a SmallTransformer on ``<bos> text`` sequences.

    Attention probabilities are recomputed from each block's query and key projections with the
    model's own masks (padding and causality). Returned: ``entropy``, the mean entropy (nats) of the
    attention distributions over every (layer, head, real query position), and ``top1``, the mean
    probability mass on the most attended key. Lower entropy / higher top-1 = sparser attention.
    """
    if not texts:
        return {"entropy": None, "top1": None}
    dev = _device(model)
    ids, amask = pad_batch([_prompt(tokenizer, t) for t in texts], model.config.pad_id)
    ids, amask = ids.to(dev), amask.to(dev)
    attns = [block.attn for block in model.layers]
    with torch.no_grad():  # the input of every attention module (the pass stops at the last one)
        got, _ = capture_blocks(attns, lambda: model(ids, attention_mask=amask), inputs=range(len(attns)))
        masks = model.attention_masks(ids, amask)
    captured = [got[i] for i in range(len(attns))]
    ents, tops = [], []
    real = amask.bool()
    with torch.no_grad():
        for block, x, mask in zip(model.layers, captured, masks):
            att = block.attn
            B, L, d = x.shape

            def heads(t, att=att, B=B, L=L):
                return t.view(B, L, att.n_heads, att.d_head).transpose(1, 2)

            q, k = heads(att.q(x)), heads(att.k(x))
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(att.d_head)
            scores = scores.masked_fill(~mask[:, None], float("-inf"))
            p = scores.softmax(-1)
            ent = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)  # (B, H, L)
            sel = real[:, None, :].expand_as(ent)
            ents.append(ent[sel].double())
            tops.append(p.max(-1).values[sel].double())
    return {"entropy": float(torch.cat(ents).mean()), "top1": float(torch.cat(tops).mean())}


def tree_scores(model, tokenizer, sentences: list[str], gold_trees: list, seed: int = 0) -> dict:
    """t-score and parsing F1 (last layer) of the model's tree projections of ``sentences``."""
    from lmscope.trees import tree_projection

    res = tree_projection((model, tokenizer), sentences, gold_trees=gold_trees, seed=seed, quiet=True)
    parsing = res.parsing
    return {"t_score": float(res.t_score), "f1": None if parsing is None else float(parsing["f1"])}


# ------------------------------------------------------------------------------------------ eval_fn
def _sample(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    if n is None or len(rows) <= n:
        return list(rows)
    idx = np.random.default_rng(seed).permutation(len(rows))[:n]
    return [rows[i] for i in sorted(idx)]


def declarative(row: dict, task: str) -> tuple[str, str]:
    """The sentence and gold tree used for tree projections: the declarative of a grammar row (the
    tree's words), the string itself for Dyck."""
    if task == "dyck":
        return row["text"], row["tree"]
    return " ".join(leaves(parse_bracketed(row["tree"], labeled=False))), row["tree"]


def make_eval_fn(task: str, tokenizer, rows_by_split: dict[str, list[dict]], sample_size: int | None = 200,
                 seed: int = 0, tree_sample: int | None = 50, heldout: dict[str, list[dict]] | None = None,
                 final_step: int | None = None) -> Callable:
    """``eval_fn(model, step) -> dict`` for :func:`lmscope.train.loop.train_lm`.

    Keys: ``id_acc`` (the task metric on the ``val`` split), ``gen_acc`` (on ``gen``, or ``ood`` for
    Dyck), for tense inflection also ``id_exact`` / ``gen_exact``, for question formation also
    ``gen_first_aux`` (how often the model fronts the first auxiliary) and ``gen_linear`` (the linear
    rule's score on the same rows); ``t_score`` and ``f1`` (tree projections of ``tree_sample`` fixed
    sentences of the ``train`` split, the transformation rows' declaratives as in the reference code;
    skipped when ``tree_sample`` is 0); ``weight_norm``; ``attn_entropy`` and ``attn_top1`` (see
    :func:`attention_sparsity`). The rows evaluated are a fixed, seeded sample of ``sample_size`` rows
    per split (None: all).

    ``heldout``: ``{"id": rows, "gen": rows}`` scored only at ``final_step`` (keys ``test_id_acc``,
    ``test_gen_acc``, ...): the numbers to report, never looked at during training.
    """
    if task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    marker = TRANSFORM_MARKER.get(task)

    def transforms(rows: list[dict]) -> list[dict]:
        return [r for r in rows if marker is None or r.get("task") == marker]

    def pick(split: str, n) -> list[dict]:
        return _sample(transforms(rows_by_split.get(split, [])), n, seed)

    id_rows, gen_rows = pick("val", sample_size), pick(GEN_SPLIT[task], sample_size)
    tree_rows = [] if not tree_sample else pick_trees(transforms(rows_by_split.get("train", [])), tree_sample, seed)
    tree_pairs = [declarative(r, task) for r in tree_rows]
    attn_texts = [r["text"] for r in id_rows[:32]]
    test_sets = {name: transforms(rows) for name, rows in (heldout or {}).items() if rows}

    def score(model, rows) -> dict:
        if task == "question-formation":
            return qf_first_word_scores(model, tokenizer, rows)
        if task == "tense-inflection":
            return tense_accuracy(model, tokenizer, rows)
        return {"acc": dyck_closing_accuracy(model, tokenizer, rows)}

    def task_scores(model, name: str, rows: list[dict]) -> dict:
        s = score(model, rows)
        out = {f"{name}_acc": s["acc"]}
        if "exact" in s:
            out[f"{name}_exact"] = s["exact"]
        if "first_aux" in s and name.endswith("gen"):
            out[f"{name}_first_aux"], out[f"{name}_linear"] = s["first_aux"], s["linear"]
        return out

    def eval_fn(model, step: int) -> dict:
        out: dict = {}
        for name, rows in (("id", id_rows), ("gen", gen_rows)):
            out.update(task_scores(model, name, rows))
        if tree_pairs:
            ts = tree_scores(model, tokenizer, [p[0] for p in tree_pairs], [p[1] for p in tree_pairs], seed)
            out.update(ts)
        else:
            out.update(t_score=None, f1=None)
        out["weight_norm"] = weight_norm(model)
        att = attention_sparsity(model, tokenizer, attn_texts)
        out["attn_entropy"], out["attn_top1"] = att["entropy"], att["top1"]
        if final_step is not None and step == final_step:
            for name, rows in test_sets.items():
                out.update(task_scores(model, f"test_{name}", rows))
                out[f"test_{name}_n"] = len(rows)
        return out

    return eval_fn


def pick_trees(rows: list[dict], n: int, seed: int) -> list[dict]:
    """The fixed, seeded sample of ``n`` rows whose declaratives are tree-projected at every evaluation."""
    return _sample(rows, n, seed + 1)
