"""Dyck-k strings of bounded depth, with gold trees and an out-of-distribution split.

Strings come from the probabilistic automaton of the structural-grokking experiments. With the
stack (the open brackets not yet closed) of depth d:

* d = 0: end the string with probability 1/2, otherwise open a bracket of a uniformly random type;
* 0 < d < max_depth: close the top bracket with probability 1/2, otherwise open a random type;
* d = max_depth: close the top bracket.

Strings are kept when ``2 <= length <= max_len`` (the empty string and overlong strings are drawn
again), so the suite is the automaton's distribution conditioned on that length range.

Tokens: for k <= 4 the pairs ``( )``, ``[ ]``, ``{ }``, ``< >`` (the first k of them); for k > 4 the
pairs ``a1 b1``, ``a2 b2``, ..., ``ak bk``. Tokens are separated by single spaces.

Rows: ``{"text": "( [ ] ) ( )", "target": ") ] ) _ ) _", "tree": ..., "split": ...}``. ``target``
holds one entry per token of ``text``: after reading tokens 0..i, the closing bracket that matches
the top of the stack, i.e. the only closing bracket that may come next, or ``_`` where the stack is
empty. The closing-bracket accuracy of a language model trained on ``text`` is its argmax over the
k closing brackets at position i compared with ``target[i]``, at the positions where the next token
of ``text`` is a closing bracket (there ``target[i]`` is that token).

Gold tree over all tokens of ``text``: a matched pair with nothing inside is ``(open close)``; a pair
around the constituents c1 .. cm is ``((open C) close)``, where C combines c1 .. cm left-branching
(``((c1 c2) c3)``); the whole string combines its top-level pairs left-branching.

Splits. A stack configuration is the tuple of open brackets on the stack, bottom first, e.g.
``("(", "[")``. A configuration is *held out* when its depth is at least ``heldout_min_depth`` and a
fixed hash of it (the first 8 bytes of the SHA-256 of its tokens joined by spaces, as a fraction of
2^64) is below ``heldout_fraction`` (:func:`is_heldout`). ``train`` and ``val`` strings never reach a
held-out configuration; every ``ood`` string reaches at least one. So each ``ood`` string contains a
stack configuration that no ``train`` string contains, for every seed and size.

Split by depth (``train_max_depth`` = k given): the nesting depth of a string is the largest stack
depth it reaches (:func:`nesting_depth`). ``train`` and ``val`` strings have depth <= k, and the
generalization split, then named ``deep``, has depth > k (and <= ``max_depth``), so every ``deep``
string nests deeper than every ``train`` string. The held-out configurations are not used then.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np

from lmscope.data._sampling import check_count, check_seed, draw_rows, split_rng
from lmscope.data.trees import Tree, to_bracketed
from lmscope.errors import LmscopeError

_SYMBOLS = (("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"))
EMPTY_TARGET = "_"
MAX_K = 100

DYCK_RULES = {
    "train": "strings that never reach a held-out stack configuration",
    "val": "same distribution as train (in-distribution), texts disjoint from train",
    "ood": "strings that reach at least one held-out stack configuration, hence one that no train string "
           "reaches",
}

DEPTH_RULES = {
    "train": "strings of nesting depth <= train_max_depth",
    "val": "same distribution as train (in-distribution), texts disjoint from train",
    "deep": "strings of nesting depth > train_max_depth (up to max_depth), deeper than every train string",
}


def bracket_pairs(k: int) -> list[tuple[str, str]]:
    """The k (open, close) token pairs."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise LmscopeError(f"k (bracket types) must be a whole number from 1 to {MAX_K}, got {k!r}")
    if k <= len(_SYMBOLS):
        return list(_SYMBOLS[:k])
    return [(f"a{i}", f"b{i}") for i in range(1, k + 1)]


def _tokens(text: str | Sequence[str]) -> list[str]:
    return text.split() if isinstance(text, str) else list(text)


def _scan(tokens: Sequence[str], k: int) -> list[tuple[str, ...]]:
    """The stack configuration after each token; raises for a string that is not balanced Dyck-k."""
    pairs = bracket_pairs(k)
    opens = {o: c for o, c in pairs}
    closes = {c for _, c in pairs}
    stack: list[str] = []
    out = []
    for i, tok in enumerate(tokens):
        if tok in opens:
            stack.append(tok)
        elif tok in closes:
            if not stack or opens[stack[-1]] != tok:
                raise LmscopeError(f"not a Dyck-{k} string: {tok!r} at token {i + 1} closes nothing it matches")
            stack.pop()
        else:
            raise LmscopeError(f"not a Dyck-{k} token: {tok!r} (tokens: {' '.join(o + ' ' + c for o, c in pairs)})")
        out.append(tuple(stack))
    if stack:
        raise LmscopeError(f"not a Dyck-{k} string: {len(stack)} bracket(s) left open")
    return out


def stack_configurations(text: str | Sequence[str], k: int) -> list[tuple[str, ...]]:
    """The stack configuration (open brackets, bottom first) after each token of a Dyck-k string."""
    return _scan(_tokens(text), k)


def nesting_depth(text: str | Sequence[str], k: int) -> int:
    """The largest stack depth a Dyck-k string reaches (0 for the empty string)."""
    return max((len(c) for c in stack_configurations(text, k)), default=0)


def closing_targets(text: str | Sequence[str], k: int) -> list[str]:
    """After each token: the closing bracket matching the stack top, or ``_`` for an empty stack."""
    close = dict(bracket_pairs(k))
    return [close[s[-1]] if s else EMPTY_TARGET for s in stack_configurations(text, k)]


def dyck_tree(text: str | Sequence[str], k: int) -> Tree:
    """The gold binary tree of a Dyck-k string (see the module docstring)."""
    tokens = _tokens(text)
    _scan(tokens, k)
    if not tokens:
        raise LmscopeError("an empty string has no tree")

    def combine(parts: list[Tree]) -> Tree:
        tree = parts[0]
        for p in parts[1:]:
            tree = (tree, p)
        return tree

    frames: list[tuple[str, list[Tree]]] = [("", [])]  # (open token, finished constituents inside)
    for tok in tokens:
        if tok in dict(bracket_pairs(k)):
            frames.append((tok, []))
        else:
            open_tok, inside = frames.pop()
            pair: Tree = (open_tok, tok) if not inside else ((open_tok, combine(inside)), tok)
            frames[-1][1].append(pair)
    return combine(frames[0][1])


@functools.lru_cache(maxsize=1 << 16)
def _hash_fraction(config: tuple[str, ...]) -> float:
    digest = hashlib.sha256(" ".join(config).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_heldout(config: tuple[str, ...], fraction: float, min_depth: int) -> bool:
    """Whether a stack configuration is held out of ``train``/``val`` (see the module docstring)."""
    return len(config) >= min_depth and _hash_fraction(tuple(config)) < fraction


def sample_dyck(rng: np.random.Generator, k: int, max_depth: int, max_len: int | None = None) -> list[str] | None:
    """One string from the automaton; None when it grows past ``max_len`` tokens."""
    pairs = bracket_pairs(k)
    tokens: list[str] = []
    stack: list[int] = []
    while True:
        if max_len is not None and len(tokens) > max_len:
            return None
        d = len(stack)
        if d == 0:
            if rng.random() < 0.5:
                return tokens
            action = "open"
        elif d >= max_depth:
            action = "close"
        else:
            action = "close" if rng.random() < 0.5 else "open"
        if action == "open":
            t = int(rng.integers(k))
            stack.append(t)
            tokens.append(pairs[t][0])
        else:
            tokens.append(pairs[stack.pop()][1])


def _check_options(k, max_depth, max_len, heldout_fraction, heldout_min_depth) -> tuple:
    pairs = bracket_pairs(k)
    for name, v, lo in (("max_depth", max_depth, 1), ("max_len", max_len, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise LmscopeError(f"{name} must be a whole number >= {lo}, got {v!r}")
    if heldout_min_depth is None:
        heldout_min_depth = min(3, int(max_depth))
    if isinstance(heldout_min_depth, bool) or not isinstance(heldout_min_depth, (int, np.integer)) \
            or not 1 <= heldout_min_depth <= max_depth:
        raise LmscopeError(f"heldout_min_depth must be a whole number from 1 to max_depth ({max_depth}), "
                           f"got {heldout_min_depth!r}")
    try:
        frac = float(heldout_fraction)
    except (TypeError, ValueError):
        frac = -1.0
    if not 0.0 < frac < 1.0:
        raise LmscopeError(f"heldout_fraction must be a number strictly between 0 and 1, got {heldout_fraction!r}")
    # In small configuration spaces make sure something is held out (and something is not).
    sizes = [k**d for d in range(heldout_min_depth, max_depth + 1)]
    if sum(sizes) <= 100_000:
        opens = [o for o, _ in pairs]
        level: list[tuple[str, ...]] = [()]
        found = False
        for d in range(1, max_depth + 1):
            level = [c + (o,) for c in level for o in opens]
            if d >= heldout_min_depth and any(is_heldout(c, frac, heldout_min_depth) for c in level):
                found = True
                break
        if not found:
            raise LmscopeError(f"no stack configuration is held out for k={k}, max_depth={max_depth}, "
                               f"heldout_fraction={frac}, heldout_min_depth={heldout_min_depth}; raise one of them")
    return int(max_depth), int(max_len), frac, int(heldout_min_depth)


def generalization_split(train_max_depth: int | None) -> str:
    """The name of the third split: ``ood`` (held-out configurations) or ``deep`` (split by depth)."""
    return "ood" if train_max_depth is None else "deep"


def _check_train_max_depth(train_max_depth, max_depth: int) -> int | None:
    if train_max_depth is None:
        return None
    if isinstance(train_max_depth, bool) or not isinstance(train_max_depth, (int, np.integer)) \
            or not 1 <= train_max_depth < max_depth:
        raise LmscopeError(f"train_max_depth must be a whole number from 1 to max_depth - 1 ({max_depth - 1}), "
                           f"got {train_max_depth!r}")
    return int(train_max_depth)


def dyck(n_train: int, n_val: int, n_gen: int, seed: int = 0, k: int = 2, max_depth: int = 10,
         max_len: int = 100, heldout_fraction: float = 0.1, heldout_min_depth: int | None = None,
         train_max_depth: int | None = None) -> list[dict]:
    """Rows of the Dyck suite: ``n_gen`` rows go to the ``ood`` split, or with ``train_max_depth`` to the
    ``deep`` split (see the module docstring).

    ``heldout_min_depth`` defaults to ``min(3, max_depth)``.
    """
    seed = check_seed(seed)
    max_depth, max_len, frac, min_depth = _check_options(k, max_depth, max_len, heldout_fraction,
                                                         heldout_min_depth)
    by_depth = _check_train_max_depth(train_max_depth, max_depth)
    gen_split = generalization_split(by_depth)
    counts = {"train": check_count("n_train", n_train), "val": check_count("n_val", n_val),
              gen_split: check_count("n_gen", n_gen)}
    seen: set[str] = set()
    rows: list[dict] = []
    for split, n in counts.items():
        rng = split_rng(seed, split, salt=3)
        want_gen = split == gen_split

        def sample(rng=rng, split=split, want_gen=want_gen) -> dict | None:
            tokens = sample_dyck(rng, k, max_depth, max_len)
            if tokens is None or len(tokens) < 2:
                return None
            configs = _scan(tokens, k)
            if by_depth is not None:
                outside = max(len(c) for c in configs) > by_depth
            else:
                outside = any(is_heldout(c, frac, min_depth) for c in configs)
            if outside != want_gen:
                return None
            close = dict(bracket_pairs(k))
            return {"text": " ".join(tokens), "target": " ".join(close[c[-1]] if c else EMPTY_TARGET for c in configs),
                    "tree": to_bracketed(dyck_tree(tokens, k)), "split": split}

        rows += draw_rows(n, sample, seen, f"dyck {split}")
    return rows
