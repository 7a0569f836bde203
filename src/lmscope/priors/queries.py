"""Prior queries: ask a language model for a table of probabilities by scoring candidate classes.

A :class:`PriorQuery` holds a prompt template with named fields, the values of each field (the
table's input axes), the candidate classes, and a few worked examples shown before each prompt.
For every combination of input values the prompt is filled in and every class is scored as the
continuation after it (the summed natural-log probability of the class's tokens); the scores are
softmaxed over the classes. A *binary* query names one ``positive`` class (say ``plausible`` out
of ``plausible`` / ``implausible``) and its table keeps only p(positive), one number per
combination of inputs, with no class axis: a statement's probability of being plausible, as the
LaMPP reference asks it (a few worked examples of each answer, then "A kitchen has a stove:").
``wording`` writes an input value differently in the prompt than in the table ("An office" for
``office``), so the table's labels stay plain names.

All prompts of one or several queries go to the model in one ``score`` call; caching is the
backend's business. :func:`uniform_table` is the null baseline: every class equally likely.
"""

from __future__ import annotations

import csv
import io
import json
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from lmscope._io import atomic_path, read_text, write_json
from lmscope.errors import LmscopeError

ANSWER = "answer"  # the key of an example's class in its dict form


def template_fields(template: str) -> list[str]:
    """The named fields of a ``str.format`` template, in order of first appearance.

    Positional fields (``{}``, ``{0}``), attribute or index access, conversions and format specs are
    refused: a prior template only substitutes names.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise LmscopeError(f"malformed template {template!r}: {e}") from None
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise LmscopeError(f"template field {{{name}}} in {template!r} is not a plain name")
        if spec or conv:
            raise LmscopeError(f"template field {{{name}}} in {template!r} has a format spec or conversion")
        if name not in names:
            names.append(name)
    return names


def _strings(value, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise LmscopeError(f"{what} must be a list of strings, got {value!r}")
    out = []
    for v in value:
        if not isinstance(v, str) or not v.strip():
            raise LmscopeError(f"{what} must hold non-empty strings, got {v!r}")
        out.append(v)
    if len(set(out)) != len(out):
        dup = sorted({v for v in out if out.count(v) > 1})
        raise LmscopeError(f"{what} repeat {', '.join(map(repr, dup))}")
    return tuple(out)


@dataclass(frozen=True)
class PriorQuery:
    """One prior to ask a language model for.

    ``template`` is filled with one value per field from ``inputs`` (field name -> values; the
    table has one axis per field, in the order of ``inputs``); each class follows the filled prompt
    after a space (none when the template ends in whitespace). ``examples`` are shown first, each a
    dict of field values plus ``"answer"``, the class that follows it (written as is). ``instruction``
    is a line before everything. With ``positive`` set, the query is binary: the table keeps
    p(positive). ``wording`` maps a field to {value: text in the prompt} for values written
    differently in the prompt (articles, capitals); values it does not name are written as they are.
    """

    name: str
    template: str
    inputs: Mapping[str, Sequence[str]]
    classes: Sequence[str]
    examples: Sequence[Mapping[str, str]] = ()
    positive: str | None = None
    instruction: str = ""
    class_axis: str = "class"
    separator: str = "\n"
    wording: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise LmscopeError("a prior query needs a non-empty name")
        where = f"prior query {self.name!r}"
        if not isinstance(self.template, str) or not self.template.strip():
            raise LmscopeError(f"{where}: the template is empty")
        if not isinstance(self.inputs, Mapping):
            raise LmscopeError(f"{where}: inputs must map each template field to its values")
        inputs = {str(k): _strings(v, f"{where}: the values of input {k!r}") for k, v in self.inputs.items()}
        for k, v in inputs.items():
            if not v:
                raise LmscopeError(f"{where}: input {k!r} has no values")
        classes = _strings(self.classes, f"{where}: the classes")
        if not classes:
            raise LmscopeError(f"{where}: the class list is empty")
        fields = template_fields(self.template)
        unknown = [f for f in fields if f not in inputs]
        if unknown:
            raise LmscopeError(f"{where}: template field(s) {', '.join('{' + f + '}' for f in unknown)} have no "
                               f"input values (inputs: {', '.join(inputs) or 'none'})")
        unused = [k for k in inputs if k not in fields]
        if unused:
            raise LmscopeError(f"{where}: input(s) {', '.join(map(repr, unused))} do not appear in the template "
                               f"{self.template!r}")
        if self.positive is not None:
            if self.positive not in classes:
                raise LmscopeError(f"{where}: the positive class {self.positive!r} is not one of the classes "
                                   f"{list(classes)}")
            if len(classes) < 2:
                raise LmscopeError(f"{where}: a binary query needs the positive class and at least one other")
        if self.class_axis in inputs:
            raise LmscopeError(f"{where}: the class axis name {self.class_axis!r} is also an input")
        examples = []
        for i, ex in enumerate(self.examples):
            if not isinstance(ex, Mapping):
                raise LmscopeError(f"{where}: example {i + 1} must be a dict of field values and {ANSWER!r}")
            missing = [f for f in fields if f not in ex]
            if missing or ANSWER not in ex:
                raise LmscopeError(f"{where}: example {i + 1} lacks {', '.join(map(repr, missing + [ANSWER] * (ANSWER not in ex)))}")
            extra = [k for k in ex if k not in fields and k != ANSWER]
            if extra:
                raise LmscopeError(f"{where}: example {i + 1} has field(s) {', '.join(map(repr, extra))} that the "
                                   "template does not use")
            ex = {k: str(v) for k, v in ex.items()}
            if self.positive is not None and ex[ANSWER] not in classes:
                raise LmscopeError(f"{where}: example {i + 1}'s answer {ex[ANSWER]!r} is not one of the classes "
                                   f"{list(classes)}")
            examples.append(ex)
        if not isinstance(self.wording, Mapping):
            raise LmscopeError(f"{where}: wording must map a field to {{value: text}}")
        wording = {}
        for k, m in self.wording.items():
            if k not in inputs or not isinstance(m, Mapping):
                raise LmscopeError(f"{where}: wording names {k!r}, which is not an input with a {{value: text}} map")
            odd = [v for v in m if v not in inputs[k]]
            if odd:
                raise LmscopeError(f"{where}: wording of {k!r} names value(s) {', '.join(map(repr, odd))} that the "
                                   "input does not have")
            if not all(isinstance(t, str) and t.strip() for t in m.values()):
                raise LmscopeError(f"{where}: wording of {k!r} must give non-empty strings")
            wording[k] = {str(v): t for v, t in m.items()}
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "wording", wording)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "examples", tuple(examples))

    # ------------------------------------------------------------------ prompts
    @property
    def binary(self) -> bool:
        return self.positive is not None

    @property
    def axes(self) -> tuple[str, ...]:
        """The result table's axes: the inputs, then the classes unless the query is binary."""
        return tuple(self.inputs) + (() if self.binary else (self.class_axis,))

    @property
    def labels(self) -> tuple[tuple[str, ...], ...]:
        return tuple(self.inputs.values()) + (() if self.binary else (tuple(self.classes),))

    def _joiner(self) -> str:
        return "" if self.template[-1].isspace() else " "

    def prefix(self) -> str:
        """The text every prompt starts with: the instruction and the worked examples."""
        parts = [self.instruction] if self.instruction else []
        j = self._joiner()
        for ex in self.examples:
            parts.append(self.template.format(**{k: v for k, v in ex.items() if k != ANSWER}) + j + ex[ANSWER])
        return "".join(p + self.separator for p in parts)

    def combinations(self) -> list[tuple[str, ...]]:
        """Every combination of input values, in row-major order of the table."""
        return list(product(*self.inputs.values()))

    def prompts(self) -> list[str]:
        head = self.prefix()
        names = list(self.inputs)
        w = self.wording
        return [head + self.template.format(**{n: w.get(n, {}).get(v, v) for n, v in zip(names, combo)})
                for combo in self.combinations()]

    def continuations(self) -> list[str]:
        j = self._joiner()
        return [j + c for c in self.classes]

    def size(self) -> int:
        return math.prod(len(v) for v in self.inputs.values())

    # ------------------------------------------------------------------ dict form
    def to_dict(self) -> dict:
        d = {"name": self.name, "template": self.template, "inputs": {k: list(v) for k, v in self.inputs.items()},
             "classes": list(self.classes), "examples": [dict(e) for e in self.examples]}
        if self.positive is not None:
            d["positive"] = self.positive
        if self.instruction:
            d["instruction"] = self.instruction
        if self.class_axis != "class":
            d["class_axis"] = self.class_axis
        if self.separator != "\n":
            d["separator"] = self.separator
        if self.wording:
            d["wording"] = {k: dict(v) for k, v in self.wording.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> PriorQuery:
        if not isinstance(d, Mapping):
            raise LmscopeError(f"a prior query must be a dict, got {type(d).__name__}")
        known = {"name", "template", "inputs", "classes", "examples", "positive", "instruction", "class_axis",
                 "separator", "wording"}
        extra = sorted(set(d) - known)
        if extra:
            raise LmscopeError(f"unknown prior query key(s) {', '.join(map(repr, extra))}; known: "
                               f"{', '.join(sorted(known))}")
        missing = [k for k in ("name", "template", "inputs", "classes") if k not in d]
        if missing:
            raise LmscopeError(f"the prior query lacks {', '.join(map(repr, missing))}")
        return cls(**dict(d))


def read_queries(path: str | Path) -> list[PriorQuery]:
    """Prior queries from a JSON file: one query object, or a list of them."""
    path = Path(path)
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LmscopeError(f"{path}: malformed JSON ({e.msg}, line {e.lineno})") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise LmscopeError(f"{path}: no prior queries")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(PriorQuery.from_dict(item))
        except LmscopeError as e:
            raise LmscopeError(f"{path}: query {i + 1}: {e}") from None
    names = [q.name for q in out]
    if len(set(names)) != len(names):
        raise LmscopeError(f"{path}: query names must differ")
    return out


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------
@dataclass
class PriorTable:
    """A probability table with named, labelled axes (``values.shape`` matches ``labels``)."""

    values: np.ndarray
    axes: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    name: str = ""
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=float)
        self.axes = tuple(self.axes)
        self.labels = tuple(tuple(str(x) for x in lab) for lab in self.labels)
        if len(self.axes) != len(self.labels) or len(set(self.axes)) != len(self.axes):
            raise LmscopeError(f"table {self.name!r}: axes {self.axes} do not match its labels")
        if self.values.shape != tuple(len(lab) for lab in self.labels):
            raise LmscopeError(f"table {self.name!r}: values of shape {self.values.shape} do not match labels of "
                               f"lengths {[len(lab) for lab in self.labels]}")
        for a, lab in zip(self.axes, self.labels):
            if len(set(lab)) != len(lab):
                raise LmscopeError(f"table {self.name!r}: axis {a!r} repeats a label")
        if not np.all(np.isfinite(self.values)) or np.any(self.values < 0):
            raise LmscopeError(f"table {self.name!r}: values must be finite and non-negative")

    def axis(self, name: str) -> int:
        if name not in self.axes:
            raise LmscopeError(f"table {self.name!r} has no axis {name!r} (axes: {', '.join(self.axes)})")
        return self.axes.index(name)

    def labels_of(self, name: str) -> tuple[str, ...]:
        return self.labels[self.axis(name)]

    def get(self, **where: str) -> np.ndarray | float:
        """The values at the given labels (axes not named are kept whole)."""
        idx = [slice(None)] * len(self.axes)
        for a, lab in where.items():
            i = self.axis(a)
            if lab not in self.labels[i]:
                raise LmscopeError(f"table {self.name!r}: no {a} {lab!r}")
            idx[i] = self.labels[i].index(lab)
        v = self.values[tuple(idx)]
        return float(v) if np.ndim(v) == 0 else v

    def array(self, *axes: str, **labels: Sequence[str]) -> np.ndarray:
        """The values with axes in the given order, each axis reindexed to ``labels[axis]`` if given."""
        order = [self.axis(a) for a in axes] if axes else list(range(len(self.axes)))
        if sorted(order) != list(range(len(self.axes))):
            raise LmscopeError(f"table {self.name!r}: name every axis once ({', '.join(self.axes)})")
        v = np.transpose(self.values, order)
        for pos, i in enumerate(order):
            want = labels.get(self.axes[i])
            if want is None:
                continue
            have = self.labels[i]
            missing = [w for w in want if w not in have]
            if missing:
                raise LmscopeError(f"table {self.name!r}: axis {self.axes[i]!r} lacks {missing}")
            v = np.take(v, [have.index(w) for w in want], axis=pos)
        return v

    def normalized(self, axis: str) -> PriorTable:
        """The table divided by its sums along ``axis`` (all-zero slices become uniform)."""
        i = self.axis(axis)
        s = self.values.sum(axis=i, keepdims=True)
        n = self.values.shape[i]
        v = np.where(s > 0, self.values / np.where(s > 0, s, 1.0), 1.0 / n)
        return PriorTable(v, self.axes, self.labels, self.name, dict(self.source))

    def calibrated(self, axis: str) -> PriorTable:
        """Divide each class (label of ``axis``) by its mean probability over all inputs, renormalize.

        A language model prefers some class strings whatever the input (frequent or short names);
        this removes that preference, keeping how each input shifts the classes (p(c | x) / p̄(c)).
        """
        i = self.axis(axis)
        others = tuple(j for j in range(self.values.ndim) if j != i)
        mean = self.values.mean(axis=others, keepdims=True) if others else np.ones_like(self.values)
        v = self.values / np.maximum(mean, 1e-300)
        t = PriorTable(v, self.axes, self.labels, self.name, {**self.source, "calibrated": axis})
        return t.normalized(axis)

    # ------------------------------------------------------------------ files
    def to_frame(self):
        """A long DataFrame: one column per axis and ``p``."""
        import pandas as pd

        rows = [list(combo) + [float(self.values[idx])]
                for idx, combo in zip(np.ndindex(*self.values.shape), product(*self.labels))]
        return pd.DataFrame(rows, columns=list(self.axes) + ["p"])

    def to_dict(self) -> dict:
        return {"name": self.name, "axes": list(self.axes), "labels": [list(lab) for lab in self.labels],
                "values": self.values.tolist(), "source": self.source}

    @classmethod
    def from_dict(cls, d: Mapping) -> PriorTable:
        try:
            return cls(np.asarray(d["values"], dtype=float), tuple(d["axes"]), tuple(tuple(x) for x in d["labels"]),
                       str(d.get("name", "")), dict(d.get("source") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise LmscopeError(f"not a prior table ({type(e).__name__}: {e})") from None

    def save(self, path: str | Path) -> Path:
        """Write the table as ``.json`` (everything) or ``.csv`` (long form: axes, p)."""
        path = Path(path)
        if path.suffix == ".json":
            return write_json(path, self.to_dict())
        if path.suffix == ".csv":
            with atomic_path(path) as tmp:
                self.to_frame().to_csv(tmp, index=False, float_format="%.10g")
            return path
        raise LmscopeError(f"write a prior table as .json or .csv, not {path.name}")

    @classmethod
    def load(cls, path: str | Path) -> PriorTable:
        path = Path(path)
        text = read_text(path)
        if path.suffix == ".json":
            try:
                return cls.from_dict(json.loads(text))
            except json.JSONDecodeError as e:
                raise LmscopeError(f"{path}: malformed JSON ({e.msg})") from None
            except LmscopeError as e:
                raise LmscopeError(f"{path}: {e}") from None
        if path.suffix == ".csv":
            return cls._from_csv(path)
        raise LmscopeError(f"read a prior table from .json or .csv, not {path.name}")

    @classmethod
    def _from_csv(cls, path: Path) -> PriorTable:
        rows = list(csv.reader(io.StringIO(read_text(path))))
        if not rows or len(rows[0]) < 2 or rows[0][-1] != "p":
            raise LmscopeError(f"{path}: expected a header of axis names followed by p")
        axes = tuple(rows[0][:-1])
        labels: list[list[str]] = [[] for _ in axes]
        cells = {}
        for n, r in enumerate(rows[1:], 2):
            if not r:
                continue
            if len(r) != len(axes) + 1:
                raise LmscopeError(f"{path}:{n}: expected {len(axes) + 1} columns")
            for lab, x in zip(labels, r):
                if x not in lab:
                    lab.append(x)
            try:
                cells[tuple(r[:-1])] = float(r[-1])
            except ValueError:
                raise LmscopeError(f"{path}:{n}: {r[-1]!r} is not a number") from None
        shape = tuple(len(lab) for lab in labels)
        if len(cells) != math.prod(shape):
            raise LmscopeError(f"{path}: the table is incomplete ({len(cells)} of {math.prod(shape)} cells)")
        values = np.array([cells[c] for c in product(*labels)]).reshape(shape)
        try:
            return cls(values, axes, tuple(tuple(lab) for lab in labels), path.stem)
        except LmscopeError as e:
            raise LmscopeError(f"{path}: {e}") from None


# ------------------------------------------------------------------------------------------------
# Asking the model
# ------------------------------------------------------------------------------------------------
def class_probabilities(logprobs: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of summed class log-probabilities."""
    x = np.asarray(logprobs, dtype=float)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def query_priors(lm, queries: Sequence[PriorQuery]) -> list[PriorTable]:
    """Ask ``lm`` (a :class:`lmscope.lm.base.LanguageModel`) for every query's table, in one ``score`` call."""
    queries = list(queries)
    if not queries:
        return []
    requests: list[tuple[str, list[str]]] = []
    spans = []
    for q in queries:
        start = len(requests)
        conts = q.continuations()
        requests += [(p, conts) for p in q.prompts()]
        spans.append((start, len(requests)))
    scores = lm.score(requests)
    if len(scores) != len(requests):
        raise LmscopeError(f"the language model answered {len(scores)} of {len(requests)} scoring requests")
    try:
        ident = lm.identity()
    except Exception:  # noqa: BLE001 - provenance only
        ident = {"spec": getattr(lm, "spec", type(lm).__name__)}
    tables = []
    for q, (a, b) in zip(queries, spans):
        lp = np.array([[s.logprob for s in row] for row in scores[a:b]], dtype=float)
        if lp.shape != (q.size(), len(q.classes)):
            raise LmscopeError(f"prior query {q.name!r}: the language model returned scores of shape {lp.shape}")
        if not np.all(np.isfinite(lp)):
            raise LmscopeError(f"prior query {q.name!r}: the language model returned a non-finite log-probability")
        p = class_probabilities(lp)
        if q.binary:
            p = p[:, q.classes.index(q.positive)]
        shape = tuple(len(lab) for lab in q.labels)
        tables.append(PriorTable(p.reshape(shape), q.axes, q.labels, q.name,
                                 {"lm": ident, "query": q.to_dict(), "logprobs": lp.reshape(
                                     tuple(len(v) for v in q.inputs.values()) + (len(q.classes),)).tolist()}))
    return tables


def query_prior(lm, query: PriorQuery) -> PriorTable:
    """One query's table (see :func:`query_priors`)."""
    return query_priors(lm, [query])[0]


def uniform_table(query: PriorQuery) -> PriorTable:
    """The null prior: every class equally likely (p(positive) = 1 / number of classes when binary)."""
    shape = tuple(len(lab) for lab in query.labels)
    return PriorTable(np.full(shape, 1.0 / len(query.classes)), query.axes, query.labels, query.name,
                      {"uniform": True, "query": query.to_dict()})


