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
from lmscope.data.trees import (
    BASELINE_NAMES,
    Tree,
    baseline_tree,
    leaves,
    parse_bracketed,
    parse_f1,
    to_bracketed,
)
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
def _tape_rows(stacks: Sequence[Stack], dev) -> torch.Tensor:
    """Each row's current tape: BOS (depth 0), then its words' depths."""
    return torch.tensor([[0, *s.depths] for s in stacks], dtype=torch.long, device=dev)


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

        cache = model.new_cache(B)
        lps = [model.step(cache, ids[:, 0], _tape_rows(stacks, dev))]
        for p in range(1, T):
            if tape:
                allowed = torch.zeros(B, p + 1, dtype=torch.bool)
                for b, s in enumerate(stacks):
                    allowed[b, [a + 1 for a in s.allowed()]] = True
                alp = model.attach_logprobs(cache, ids[:, p], _tape_rows(stacks, dev), allowed.to(dev))
                for b, q in enumerate(alp.argmax(-1).tolist()):
                    stacks[b].push(q - 1)
                    hist[b].append(q - 1)
            lps.append(model.step(cache, ids[:, p], _tape_rows(stacks, dev)))
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


# ------------------------------------------------------------------------------------------ runs
@dataclass
class LoadedRun:
    """A pushdown run's newest valid checkpoint: model (eval mode), tokenizer, what ``run.json``
    records (``meta``: task, configuration), and the checkpoint's step."""

    run_dir: Path
    model: object
    tokenizer: object
    meta: dict
    step: int

    @property
    def task(self) -> str:
        return self.meta.get("task", "trees")


def load_run(run_dir: str | os.PathLike, device: str = "cpu") -> LoadedRun:
    """Open a run folder of `lmscope pushdown train`, its model on ``device``; LmscopeError when it is
    not one or has no complete checkpoint yet."""
    import json

    from lmscope.models.small_tokenizer import WordTokenizer
    from lmscope.pushdown.model import PushdownLM
    from lmscope.train.loop import RUN_FILE, latest_checkpoint

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LmscopeError(f"no such run folder: {run_dir}")
    try:
        info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise LmscopeError(f"{run_dir} is not a pushdown run folder (no readable {RUN_FILE})") from None
    meta = info.get("meta") if isinstance(info, dict) else None
    if not isinstance(meta, dict) or "config" not in meta or "pushdown_layers" not in (info.get("model") or {}):
        raise LmscopeError(f"{run_dir} is not a run folder of lmscope pushdown train")
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise LmscopeError(f"{run_dir} has no complete checkpoint yet; train it (further) first")
    from lmscope.models.hooks import resolve_device

    model = PushdownLM.load(ckpt / "model").to(resolve_device(device))
    return LoadedRun(run_dir, model, WordTokenizer.load(ckpt / "model"), meta, int(ckpt.name[5:]))


def _kind(model) -> str:
    return "pushdown" if model.config.has_tape else "plain"


# ------------------------------------------------------------------------------------------ eval
@dataclass
class PushdownEvalResult:
    """What :func:`pushdown_eval` measured. ``perplexity``: per token (the words and EOS of every
    line), from the beam's log-likelihood, an UPPER bound for a pushdown model (``exact`` False), exact
    for the plain one; ``task``: ``{split: {"acc", "n"}}`` with the model's own attachments; ``parse``:
    pooled bracket precision / recall / F1 of the best beam parses (None for the plain model);
    ``baselines``: ``{name: F1}`` of the baseline trees of the same sentences; ``parses``: (words,
    predicted tree, gold tree) of the parsed sentences."""

    run_dir: str
    step: int
    task: str
    model_kind: str
    beam: int
    n_lines: int
    n_tokens: int
    log_likelihood: float
    perplexity: float | None
    exact: bool
    task_scores: dict = field(default_factory=dict)
    parse: dict | None = None
    baselines: dict = field(default_factory=dict)
    parses: list = field(default_factory=list, repr=False)
    note: str | None = None

    def summary(self) -> dict:
        return {"run_dir": self.run_dir, "step": self.step, "task": self.task, "model": self.model_kind,
                "beam": self.beam, "lines": self.n_lines, "tokens": self.n_tokens,
                "perplexity": self.perplexity, "perplexity_is": "exact" if self.exact else
                "an upper bound (the beam's log-likelihood is a lower bound on log p(line))",
                "task_accuracy": {k: v["acc"] for k, v in self.task_scores.items()},
                "parse_f1": None if self.parse is None else self.parse["f1"],
                "baseline_f1": dict(self.baselines), "note": self.note}

    def to_dict(self) -> dict:
        return {**self.summary(), "log_likelihood": self.log_likelihood, "task_scores": self.task_scores,
                "parse": self.parse,
                "parses": [{"words": " ".join(w), "tree": to_bracketed(t), "gold": to_bracketed(g)}
                           for w, t, g in self.parses]}

    def lines(self) -> list[str]:
        """The result as a small table for the terminal."""
        out = [f"{self.run_dir} (step {self.step}, {self.task}, {self.model_kind} model), beam {self.beam}"]
        if self.perplexity is not None:
            bound = "exact" if self.exact else "upper bound"
            out.append(f"  perplexity ({bound}) {self.perplexity:10.3f}   over {self.n_lines} lines, "
                       f"{self.n_tokens} tokens")
        for split, s in self.task_scores.items():
            acc = "-" if s["acc"] is None else f"{s['acc']:.4f}"
            out.append(f"  task accuracy {split:<8} {acc:>10}   ({s['n']} rows, own attachments)")
        if self.parse is not None:
            f1 = "-" if self.parse["f1"] is None else f"{self.parse['f1']:.4f}"
            out.append(f"  parse F1 {'model':<13} {f1:>10}   ({len(self.parses)} sentences)")
            for name, v in self.baselines.items():
                out.append(f"  parse F1 {name:<13} {'-' if v is None else f'{v:.4f}':>10}")
        if self.note:
            out.append(f"  {self.note}")
        return out


def eval_rows_of_run(run: LoadedRun, limit: int | None = None) -> list[dict]:
    """The run's own held-out test rows (in-distribution ``test-id`` and generalization ``test-gen``;
    for a tree-file run its held-out lines), rebuilt from its recorded configuration."""
    from lmscope.pushdown.run import PushdownRunConfig, file_sha256, suite_run_data, tree_file_data

    config = PushdownRunConfig.make(**run.meta["config"])
    if run.task == "trees":
        recorded = run.meta.get("trees_file") or {}
        path = recorded.get("path")
        if not path or not Path(path).is_file():
            raise LmscopeError(f"the tree file of {run.run_dir} ({path}) is gone; give --data FILE.jsonl")
        if file_sha256(path) != recorded.get("sha256"):
            raise LmscopeError(f"the tree file {path} changed since {run.run_dir} was trained, so its held-out "
                               "lines are unknown; give --data FILE.jsonl")
        rows = tree_file_data(path, config).by_split["val"]
        return [dict(r, split="test-id") for r in rows][:limit]
    data = suite_run_data(run.task, config)
    out = []
    for key, rows in data.heldout.items():
        out += [dict(r, split=f"test-{key}") for r in rows[:limit]]
    if not out:
        raise LmscopeError(f"{run.run_dir} was trained with n_test 0: it has no held-out rows; give --data FILE.jsonl")
    return out


def line_words(row: dict, task: str) -> list[str]:
    """The words of a row's whole line as the run trained on it (:func:`lmscope.pushdown.data.line_words`);
    for a row without a gold tree, the same words without needing one."""
    from lmscope.pushdown import data

    if task == "dyck" or row.get("tree"):
        return data.line_words(row, task)
    words = row["text"].split()
    target = row.get("target", "").split() if task != "trees" else []
    return [*words, data.ARITH_EQUALS, *target] if task == "arith" else [*words, *target]


def pushdown_eval(run_dir: str | os.PathLike, rows: Sequence[dict] | None = None, data: str | os.PathLike | None = None,
                  beam: int = 8, limit: int | None = 200, seed: int = 0, quiet: bool | None = None,
                  device: str = "cpu") -> PushdownEvalResult:
    """Evaluate a run on ``rows`` (suite rows: ``text``, optional ``target``, ``tree``, ``split``), on
    the rows of ``data`` (a JSONL file of them), or by default on the run's own held-out test rows;
    ``limit`` rows per split (None: all). Perplexity from beam search of width ``beam`` over the whole
    lines; task accuracy with the model's own attachments (for a suite run, on rows with a target);
    parse F1 of the best beam parses of the rows with a gold ``tree`` and the baselines'. Words outside
    the run's vocabulary are an LmscopeError naming them."""
    from lmscope.data.suites import load_suite_file
    from lmscope.pushdown.beam import beam_search

    beam = check_int("beam", beam, minimum=1)
    if limit is not None:
        limit = check_int("limit", limit, minimum=1)
    if rows is not None and data is not None:
        raise LmscopeError("give rows or a data file, not both")
    if data is not None:  # the user's file is checked before the model is loaded
        rows = load_suite_file(data)
    run = load_run(run_dir, device)
    tok, model, task = run.tokenizer, run.model, run.task
    if rows is None:
        rows = eval_rows_of_run(run, limit)
    rows = list(rows)
    if not rows:
        raise LmscopeError("nothing to evaluate: no rows")
    by_split: dict[str, list[dict]] = {}
    for r in rows:
        by_split.setdefault(r.get("split", "all"), []).append(r)
    if limit is not None:
        by_split = {k: v[:limit] for k, v in by_split.items()}
    chosen = [r for v in by_split.values() for r in v]
    lines = [line_words(r, task) for r in chosen]
    word_ids(tok, sorted({w for ws in lines for w in ws}))  # every unknown word named at once
    ll, n_tok = 0.0, 0
    for ws in progress(lines, desc="beam", quiet=quiet):
        res = beam_search(model, sentence_ids(tok, ws), beam, words=ws)
        ll += res.log_likelihood
        n_tok += len(ws) + 1
    ppl = math.exp(min(-ll / n_tok, 700.0)) if n_tok else None
    scores = {}
    if task in TASKS:
        for split, rs in by_split.items():
            if all("target" in r for r in rs):
                scores[split] = task_scores(model, tok, task, rs)
    golds = [parse_bracketed(r["tree"], labeled=False) for r in chosen if r.get("tree")]
    parse, baselines, parses, note = None, {}, [], None
    if golds and model.config.has_tape:
        sents = [leaves(g) for g in golds]
        trees = [t for t, _ in parse_sentences(model, tok, sents, beam, quiet=quiet)]
        parse = parse_f1(trees, golds)
        parses = list(zip(sents, trees, golds, strict=True))
    if golds:
        rng = np.random.default_rng(seed)
        for name in BASELINE_NAMES:
            base = [baseline_tree(name, leaves(g), rng if name == "random" else None) for g in golds]
            baselines[name] = parse_f1(base, golds)["f1"]
    if not model.config.has_tape:
        note = PLAIN_NO_PARSE
    elif not golds:
        note = "no gold trees in the rows: no parse F1"
    return PushdownEvalResult(str(run.run_dir), run.step, task, _kind(model), beam, len(lines), n_tok, ll, ppl,
                              not model.config.has_tape, scores, parse, baselines, parses, note)


# ------------------------------------------------------------------------------------------ parse
@dataclass
class ParseResult:
    """The best beam parse of a sentence: ``tree``; ``log_prob``, its joint log-probability with the
    words; ``log_likelihood``, the beam's lower bound on log p(sentence)."""

    words: list[str]
    tree: Tree
    log_prob: float
    log_likelihood: float
    beam: int

    def to_dict(self) -> dict:
        return {"sentence": " ".join(self.words), "tree": to_bracketed(self.tree), "log_prob": self.log_prob,
                "log_likelihood": self.log_likelihood, "log_likelihood_is": "a lower bound (logsumexp of the final "
                "beam)", "beam": self.beam}


def pushdown_parse(run_dir: str | os.PathLike, sentence: str | Sequence[str], beam: int = 8) -> ParseResult:
    """Parse ``sentence`` (words separated by spaces) with a run's model by beam search of width
    ``beam``. LmscopeError for the plain model (it has no attachments), an empty sentence or words
    outside the run's vocabulary (all named)."""
    from lmscope.pushdown.beam import beam_search

    beam = check_int("beam", beam, minimum=1)
    words = sentence.split() if isinstance(sentence, str) else list(sentence)
    if not words:
        raise LmscopeError("the sentence is empty")
    run = load_run(run_dir)
    ids = sentence_ids(run.tokenizer, words)
    if not run.model.config.has_tape:
        raise LmscopeError(PLAIN_NO_PARSE)
    res = beam_search(run.model, ids, beam, words=words)
    return ParseResult(words, res.tree, res.scores[0], res.log_likelihood, beam)
