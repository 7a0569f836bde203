"""Fully parenthesized arithmetic over single digits, with compositional splits.

Grammar: ``E -> digit | ( E op E )`` with digits ``0``..``9`` and ``op`` in ``+ *``; tokens are
separated by spaces, e.g. ``( ( 3 + 4 ) * 2 )``. The depth of an expression is its nesting of
operations: a digit has depth 0, ``( A op B )`` has depth ``1 + max(depth A, depth B)``. Every row
has depth at least 1.

Rows: ``{"text": "( ( 3 + 4 ) * 2 )", "target": "4", "tree": ..., "split": ...}``; ``target`` is the
value modulo ``modulus`` (10 by default, so the answer is one digit).

Gold tree over all tokens of ``text``: the derivation ``E -> ( I )``, ``I -> E op E``, binarized to
the right like every n-ary node: ``( A op B )`` is
``("(", ((A, (op, B)), ")"))``. Its spans are the whole subexpression, ``A op B )``, ``A op B`` and
``op B``. (The words ``(`` and ``)`` are written ``-LRB-`` and ``-RRB-`` in the bracketed tree.)

Expressions of depth d are built top-down: the operator is uniform, one operand chosen at random has
depth exactly d - 1 and the other a depth uniform in 0..d-1, digits are uniform.

Splits (``split_rule``):

* ``"depth"`` (default): ``train`` and ``val`` have depths uniform in 1..``train_depth``; ``gen`` has
  depths uniform in ``train_depth + 1``..``gen_depth``, deeper than every training expression.
* ``"composition"``: expressions are drawn with depths uniform in 1..``train_depth`` and kept or
  rejected by the split's side of the rule; a
  *held-out composition* is a sum whose left operand is a product, ``( ( A * B ) + C )``. ``train``
  and ``val`` contain none; every ``gen`` expression contains at least one, so each combines two
  operations in a way never seen in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmscope.data._sampling import check_count, check_seed, draw_rows, pick, split_rng
from lmscope.data.trees import Tree, to_bracketed
from lmscope.errors import LmscopeError

DIGITS = tuple("0123456789")
OPERATORS = ("+", "*")
SPLIT_RULES = ("depth", "composition")

Expr = str | tuple  # a digit, or (left, op, right)


def arith_rules(split_rule: str = "depth", train_depth: int = 3, gen_depth: int = 5, modulus: int = 10) -> dict[str, str]:
    """What each split obeys, in words (``modulus`` does not change the splits)."""
    if split_rule == "composition":
        return {"train": f"depths 1..{train_depth}; no sum whose left operand is a product, ( ( A * B ) + C )",
                "val": "same distribution as train (in-distribution), texts disjoint from train",
                "gen": f"depths 1..{train_depth}; at least one sum whose left operand is a product, "
                       "( ( A * B ) + C ), a composition absent from train"}
    return {"train": f"depths uniform in 1..{train_depth}",
            "val": "same distribution as train (in-distribution), texts disjoint from train",
            "gen": f"depths uniform in {train_depth + 1}..{gen_depth}, deeper than every train expression"}


# ------------------------------------------------------------------------------------------ expressions
def parse_expression(text: str | Sequence[str]) -> Expr:
    """Read a fully parenthesized expression into a digit or nested ``(left, op, right)`` tuples."""
    tokens = text.split() if isinstance(text, str) else list(text)
    pos = 0

    def fail(msg: str) -> LmscopeError:
        return LmscopeError(f"not an arithmetic expression ({msg}): {' '.join(tokens)!r}")

    def expr() -> Expr:
        nonlocal pos
        if pos >= len(tokens):
            raise fail("ends early")
        tok = tokens[pos]
        pos += 1
        if tok in DIGITS:
            return tok
        if tok != "(":
            raise fail(f"unexpected {tok!r} at token {pos}")
        left = expr()
        if pos >= len(tokens) or tokens[pos] not in OPERATORS:
            raise fail(f"expected + or * at token {pos + 1}")
        op = tokens[pos]
        pos += 1
        right = expr()
        if pos >= len(tokens) or tokens[pos] != ")":
            raise fail(f"expected ) at token {pos + 1}")
        pos += 1
        return (left, op, right)

    e = expr()
    if pos != len(tokens):
        raise fail(f"trailing tokens from token {pos + 1}")
    return e


def expression_tokens(e: Expr) -> list[str]:
    if isinstance(e, str):
        return [e]
    left, op, right = e
    return ["(", *expression_tokens(left), op, *expression_tokens(right), ")"]


def depth(e: Expr | str) -> int:
    """Nesting depth of operations (a digit: 0)."""
    if isinstance(e, str) and e not in DIGITS:
        e = parse_expression(e)
    if isinstance(e, str):
        return 0
    return 1 + max(depth(e[0]), depth(e[2]))


def evaluate(e: Expr | str, modulus: int | None = 10) -> int:
    """The value (modulo ``modulus``; None for the exact integer)."""
    if isinstance(e, str) and e not in DIGITS:
        e = parse_expression(e)
    if isinstance(e, str):
        v = int(e)
    else:
        a, b = evaluate(e[0], modulus), evaluate(e[2], modulus)
        v = a + b if e[1] == "+" else a * b
    return v % modulus if modulus else v


def has_heldout_composition(e: Expr | str) -> bool:
    """True when some sum's left operand is a product: ``( ( A * B ) + C )``."""
    if isinstance(e, str) and e not in DIGITS:
        e = parse_expression(e)
    if isinstance(e, str):
        return False
    left, op, right = e
    if op == "+" and isinstance(left, tuple) and left[1] == "*":
        return True
    return has_heldout_composition(left) or has_heldout_composition(right)


def expression_tree(e: Expr | str) -> Tree:
    """The gold binary tree over the expression's tokens (see the module docstring)."""
    if isinstance(e, str) and e not in DIGITS:
        e = parse_expression(e)
    if isinstance(e, str):
        return e
    left, op, right = e
    return ("(", ((expression_tree(left), (op, expression_tree(right))), ")"))


def sample_expression(rng: np.random.Generator, d: int) -> Expr:
    """An expression of depth exactly ``d`` (see the module docstring)."""
    if d == 0:
        return pick(rng, DIGITS)
    op = pick(rng, OPERATORS)
    deep_left = bool(rng.random() < 0.5)
    other = sample_expression(rng, int(rng.integers(d)))
    deep = sample_expression(rng, d - 1)
    return (deep, op, other) if deep_left else (other, op, deep)


# ------------------------------------------------------------------------------------------ suite
def _check_int(name: str, v, lo: int, hi: int = 12) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise LmscopeError(f"{name} must be a whole number from {lo} to {hi}, got {v!r}")
    return int(v)


def arith(n_train: int, n_val: int, n_gen: int, seed: int = 0, split_rule: str = "depth", train_depth: int = 3,
          gen_depth: int = 5, modulus: int = 10) -> list[dict]:
    """Rows of the arithmetic suite (see the module docstring)."""
    seed = check_seed(seed)
    counts = {"train": check_count("n_train", n_train), "val": check_count("n_val", n_val),
              "gen": check_count("n_gen", n_gen)}
    if split_rule not in SPLIT_RULES:
        raise LmscopeError(f"split_rule must be one of {', '.join(SPLIT_RULES)}, got {split_rule!r}")
    train_depth = _check_int("train_depth", train_depth, 2 if split_rule == "composition" else 1)
    if split_rule == "depth":
        gen_depth = _check_int("gen_depth", gen_depth, train_depth + 1)
    modulus = _check_int("modulus", modulus, 2, 1_000_000)
    seen: set[str] = set()
    rows: list[dict] = []
    for split, n in counts.items():
        rng = split_rng(seed, split, salt=4)
        lo, hi = (train_depth + 1, gen_depth) if (split_rule == "depth" and split == "gen") else (1, train_depth)

        def sample(rng=rng, split=split, lo=lo, hi=hi) -> dict | None:
            e = sample_expression(rng, int(rng.integers(lo, hi + 1)))
            if split_rule == "composition" and has_heldout_composition(e) != (split == "gen"):
                return None
            return {"text": " ".join(expression_tokens(e)), "target": str(evaluate(e, modulus)),
                    "tree": to_bracketed(expression_tree(e)), "split": split}

        rows += draw_rows(n, sample, seen, f"arith {split}")
    return rows
