"""Recognition: which concept does a piece of drawing code draw? (Sharma et al., "A Vision Check-up").

A language model is shown drawing code with what gives the concept away removed (:func:`strip_code`)
and picks the concept among K candidates: the true one and K - 1 distractors of the same tier
(:func:`recognition_choices`). With ``c_1..c_K`` the candidates' texts and ``P`` the prompt
(:data:`PROMPT`), each candidate is scored as the continuation " " + c_j after P::

    s_j = sum_t log p(token_t | P, tokens_<t)               (normalize="sum")
    s_j = (1 / T_j) sum_t log p(token_t | P, tokens_<t)      (normalize="mean", T_j = number of tokens)
    choice = argmax_j s_j  (ties: the earlier candidate);   rank = 1 + #{j: s_j > s_true}
                                                                    + #{j before true: s_j = s_true}

so ``correct`` <=> ``rank == 1``. Accuracy is the mean of ``correct`` over items, per tier and language;
chance is 1 / K. As a reference the rendered image (where there is one) is classified among the same
candidates by an ImageNet classifier, each candidate being its ImageNet class set
(:meth:`lmscope.vision.classifier.ImageClassifier.candidate_probabilities`):
``classifier choice = argmax_j p(c_j | image, {c_1..c_K})``. This reference is defined only when every
candidate has ImageNet classes; otherwise it is None.

Stripping rules (:func:`strip_code`) are in the function's docstring. The prompt is one plain text,
so any backend with a ``score`` method (:mod:`lmscope.lm`) can answer it.
"""

from __future__ import annotations

import ast
import functools
import io
import keyword
import re
import tokenize
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from lmscope.errors import LmscopeError, check_int
from lmscope.vision.render import LANGUAGES

PROMPT = ("Here is {language} code that draws a picture.\n```{fence}\n{code}\n```\n"
          "Question: what does the picture show?\nAnswer: It shows")
LANGUAGE_NAMES = {"python": "Python", "svg": "SVG"}
NORMALIZE = ("mean", "sum")

# words that only describe how something is drawn: a string made only of these (and numbers) is kept
DRAWING_WORDS = frozenset("""
equal off on none round butt projecting miter bevel center centre left right top bottom upper lower middle
baseline center_baseline bold normal italic oblique light heavy semibold ultralight solid dashed dotted dashdot
tight auto polar nearest bilinear bicubic gouraud flat full fill stroke rad arc arc3 angle angle3 bar pad
square circle round4 sawtooth roundtooth larrow rarrow darrow fancy simple wedge data axes figure offset
points pixels fraction serif sans monospace cursive fantasy dejavu vertical horizontal anchor default both
major minor in out inout mid pre post steps step stepfilled barstacked linear log symlog logit image png
rgb rgba lower upper box clip antialiased mitre xy x y k r g b c m w
""".split())
_IMAGE_FILE = re.compile(r"^[^\s/\\]+\.(png|jpe?g|svg|pdf|gif|bmp|tiff?|webp)$", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ------------------------------------------------------------------------------------------ stripping
def strip_code(code: str, language: str) -> str:
    """Drawing code without what tells its concept away, drawing the same picture.

    ``python`` (when the code parses):

    - comments go (the code is re-written from its syntax tree) and so do docstrings and other bare
      string statements (a body left empty gets ``pass``);
    - every name the code itself binds (assignment, loop, ``with``, ``except`` and ``match`` targets,
      functions, classes, parameters, comprehension variables, ``global`` names) becomes ``v1, v2,
      ...`` in order of first appearance, skipping names the code already uses; a keyword argument is
      renamed with its parameter only in a call of the code's own function, lambda or class by its name
      (``draw(size=2)``), never in a library call (``color=`` stays); a parameter passed by keyword
      where the callee cannot be told (a method called through an attribute, an alias) keeps its name
      everywhere. Kept: imported names, builtins the code does not rebind, dunder names, and names
      bound in a class body (methods, class attributes: they are reached as attributes, which are
      never renamed, so the two must not part). Attributes are never renamed;
    - a string literal is kept when it only describes drawing: one character; up to 3 characters
      with no letter (``"--"``, ``"->"``), or a matplotlib format string (at most one line style,
      marker and colour: ``"k--"``, ``"ro"``) or hatch (``"xx"``); a matplotlib colour
      (``matplotlib.colors.is_color_like``: ``"red"``, ``"#ff0000"``, ``"0.5"``); a colormap name; the
      name of a settable artist property (``"color"``, ``"linewidth"``: keys of ``**`` dicts); or
      text made only of numbers and words of :data:`DRAWING_WORDS` (``"equal"``, ``"off"``,
      ``"round,pad=0.3"``, ``"upper right"``). So ``"cat"``, ``"sun"`` or ``"dog"`` go. An image file
      name keeps its extension and is renamed ``image.EXT``; any other string is replaced by a blank
      one: the first distinct such string by
      ``""``, the next by ``" "``, and so on, so strings that differed still differ (dict keys,
      comparisons) while none carries a word. Drawn text (titles, labels, ``ax.text``) so loses its
      words; format specs inside f-strings are kept.

    Code that does not parse only loses its ``#`` comments (line by line, outside quotes).

    ``svg`` (regular expressions on the text; the document need not be valid XML): ``<!-- -->``
    comments, ``<title>``, ``<desc>`` and ``<metadata>`` elements and CSS comments go; the character
    data inside ``<text>`` (with its ``<tspan>``/``<textPath>``) goes, the tags stay; ``id`` values
    become ``i1, i2, ...`` and ``class`` names ``c1, c2, ...`` in order of first appearance, with
    ``url(#..)``, ``href="#.."`` and ``#id`` / ``.class`` selectors in ``<style>`` renamed to match;
    ``aria-label`` and ``*:label`` values are emptied. Everything else is kept byte for byte.
    """
    if not isinstance(code, str):
        raise LmscopeError(f"drawing code must be text, got {type(code).__name__}")
    language = _check_language(language)
    if language == "python":
        return _strip_python(code)
    return _strip_svg(code)


def _check_language(language) -> str:
    if language not in LANGUAGES:
        raise LmscopeError(f"unknown drawing language {language!r}: expected one of {', '.join(LANGUAGES)}")
    return language


# ---------------------------------------------------------------- python
def _strip_python(code: str) -> str:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return _strip_comments_by_line(code)
    try:
        tree = _Docstrings().visit(tree)
        renames, keywords = _plan_renames(tree, code)
        tree = _Rewriter(renames, keywords, _StringPolicy()).visit(tree)
        ast.fix_missing_locations(tree)
        return ast.unparse(tree) + "\n"
    except RecursionError:
        return _strip_comments_by_line(code)


def _strip_comments_by_line(code: str) -> str:
    """Drop ``#`` comments outside quotes, line by line (for code that does not parse)."""
    out = []
    for line in code.splitlines():
        quote, i, cut = None, 0, len(line)
        while i < len(line):
            ch = line[i]
            if quote:
                if ch == "\\":
                    i += 1
                elif line.startswith(quote, i):
                    i += len(quote) - 1
                    quote = None
            elif line.startswith(('"""', "'''"), i):
                quote = line[i:i + 3]
                i += 2
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                cut = i
                break
            i += 1
        kept = line[:cut].rstrip()
        if kept or not line[cut:].strip():
            out.append(kept)
    return "\n".join(out) + ("\n" if code.endswith("\n") else "")


class _Docstrings(ast.NodeTransformer):
    """Remove bare string statements (docstrings included)."""

    def generic_visit(self, node):
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.stmt):
                continue
            kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                            and isinstance(s.value.value, str))]
            if not kept and not isinstance(node, ast.Module) and name == "body":
                kept = [ast.Pass()]
            setattr(node, name, kept)
        return node


def _bound_names(tree: ast.AST) -> tuple[set[str], set[str], set[str], dict[str, set[str]]]:
    """(names the code binds, names it imports, names bound in class bodies, own callables -> params)."""
    bound, imported, in_class = set(), set(), set()
    params: dict[str, set[str]] = {}

    def add_args(args: ast.arguments) -> set[str]:
        names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        bound.update(names)
        return {a.arg for a in args.args + args.kwonlyargs}

    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                for sub in ast.walk(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                   ast.ClassDef)) else [stmt]:
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                        in_class.add(sub.id)
                    elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        in_class.add(sub.name)
            bound.add(node.name)
            init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
            params.setdefault(node.name, set())
            if init is not None:
                params[node.name] |= {a.arg for a in init.args.args[1:] + init.args.kwonlyargs}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bound.add(node.name)
            params.setdefault(node.name, set()).update(add_args(node.args))
        elif isinstance(node, ast.Lambda):
            add_args(node.args)
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
              and isinstance(node.value, ast.Lambda)):
            params.setdefault(node.targets[0].id, set()).update(add_args(node.value.args))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                imported.add((alias.asname or alias.name).split(".")[0])
    return bound, imported, in_class, params


def _plan_renames(tree: ast.AST, code: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    bound, imported, in_class, params = _bound_names(tree)
    # keyword arguments of calls through an attribute to the code's own methods keep their parameter's name
    # and so do keyword arguments of calls of a name the code binds to something other than a def,
    # class or lambda (an alias, a partial): the callee cannot be told
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    by_attribute = {kw.arg for n in calls if isinstance(n.func, ast.Attribute) and n.func.attr in in_class
                    for kw in n.keywords if kw.arg}
    by_attribute |= {kw.arg for n in calls if isinstance(n.func, ast.Name) and n.func.id in bound
                     and n.func.id not in params for kw in n.keywords if kw.arg}
    renamable = {n for n in bound if n not in imported and n not in in_class and n not in by_attribute
                 and not (n.startswith("__") and n.endswith("__"))}
    # every identifier that stays as it is: new names must not collide with them
    kept = ({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            | {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)} | imported | in_class) - renamable
    order = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME and tok.string in renamable and tok.string not in order:
                order.append(tok.string)
    except (tokenize.TokenError, SyntaxError):
        pass
    order += sorted(renamable - set(order))
    renames, i = {}, 0
    for name in order:
        i += 1
        while f"v{i}" in kept or keyword.iskeyword(f"v{i}"):
            i += 1
        renames[name] = f"v{i}"
    return renames, {f: {p for p in ps if p in renames} for f, ps in params.items()}


class _StringPolicy:
    """Which string literals stay, and what the others become (see :func:`strip_code`)."""

    def __init__(self):
        self.blanks: dict[str, str] = {}
        self._words = None

    def words(self) -> frozenset:
        if self._words is None:
            try:
                import matplotlib

                cmaps = {n.lower() for n in matplotlib.colormaps}
            except (ImportError, AttributeError):  # pragma: no cover - matplotlib is a dependency
                cmaps = set()
            self._words = frozenset(cmaps)
        return self._words

    def keep(self, s: str) -> bool:
        t = s.strip()
        if len(t) <= 1 or (len(t) <= 3 and (not re.search(r"[A-Za-z]", t) or _is_format(t) or _is_hatch(t))):
            return True
        if _is_colour(s) or t in self.words() or _is_property(t):
            return True
        words = [w for w in re.split(r"[^A-Za-z0-9_]+", t.lower()) if w]
        words = [w for w in words if not re.fullmatch(r"[0-9_]+", w)]
        return not words or all(w in DRAWING_WORDS for w in words)

    def __call__(self, s: str) -> str:
        if self.keep(s):
            return s
        m = _IMAGE_FILE.match(s.strip())
        if m:
            return "image." + m.group(1)
        if s not in self.blanks:
            self.blanks[s] = " " * len(self.blanks)
        return self.blanks[s]


_FORMAT_LINES = ("--", "-.", "-", ":")
_FORMAT_MARKERS = set(".,ov^<>12348spP*hH+xXDd|_")
_FORMAT_COLOURS = set("bgrcmykw")


def _is_format(s: str) -> bool:
    """A matplotlib format string: at most one line style, one marker and one colour (``"k--"``, ``"ro"``)."""
    line, marker, colour = 0, 0, 0
    i = 0
    while i < len(s):
        style = next((ls for ls in _FORMAT_LINES if s.startswith(ls, i)), None)
        if style is not None:
            line += 1
            i += len(style)
            continue
        if s[i] == "C" and i + 1 < len(s) and s[i + 1].isdigit():
            colour += 1
            i += 2
            continue
        if s[i] in _FORMAT_COLOURS:
            colour += 1
        elif s[i] in _FORMAT_MARKERS:
            marker += 1
        else:
            return False
        i += 1
    return line <= 1 and marker <= 1 and colour <= 1


def _is_hatch(s: str) -> bool:
    return all(ch in "/\\|-+xoO.*" for ch in s)


@functools.lru_cache(maxsize=4096)
def _is_property(s: str) -> bool:
    """A settable property of matplotlib artists ("color", "linewidth", "label"): dict keys for ``**``."""
    if not s.isidentifier() or len(s) > 40:
        return False
    try:
        from matplotlib.collections import Collection
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        from matplotlib.text import Text
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return False
    return any(hasattr(cls, "set_" + s) for cls in (Line2D, Patch, Text, Collection))


def _is_colour(s: str) -> bool:
    try:
        from matplotlib.colors import is_color_like
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return bool(re.fullmatch(r"#[0-9a-fA-F]{3,8}", s))
    try:
        return bool(is_color_like(s))
    except Exception:  # noqa: BLE001 - any odd string is simply not a colour
        return False


class _Rewriter(ast.NodeTransformer):
    def __init__(self, renames: dict[str, str], keywords: dict[str, set[str]], strings: _StringPolicy):
        self.renames, self.keywords, self.strings = renames, keywords, strings

    def _new(self, name: str) -> str:
        return self.renames.get(name, name)

    def visit_Name(self, node: ast.Name):
        node.id = self._new(node.id)
        return node

    def visit_arg(self, node: ast.arg):
        node.arg = self._new(node.arg)
        node.annotation = self.visit(node.annotation) if node.annotation is not None else None
        return node

    def _visit_def(self, node):
        node.name = self._new(node.name)
        return self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_def

    def visit_ExceptHandler(self, node: ast.ExceptHandler):
        if node.name:
            node.name = self._new(node.name)
        return self.generic_visit(node)

    def _visit_names(self, node):
        node.names = [self._new(n) for n in node.names]
        return node

    visit_Global = visit_Nonlocal = _visit_names

    def visit_MatchAs(self, node):
        if node.name:
            node.name = self._new(node.name)
        return self.generic_visit(node)

    def visit_MatchStar(self, node):
        if node.name:
            node.name = self._new(node.name)
        return node

    def visit_MatchMapping(self, node):
        if node.rest:
            node.rest = self._new(node.rest)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call):
        own = node.func.id if isinstance(node.func, ast.Name) else None
        params = self.keywords.get(own, set()) if own else set()
        for kw in node.keywords:
            if kw.arg is not None and kw.arg in params:
                kw.arg = self._new(kw.arg)
        return self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue):
        node.value = self.visit(node.value)  # the format spec stays as written
        return node

    def visit_Constant(self, node: ast.Constant):
        if isinstance(node.value, str):
            return ast.copy_location(ast.Constant(self.strings(node.value)), node)
        return node


# ---------------------------------------------------------------- svg
_SVG_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_SVG_DROP = re.compile(r"<((?:[\w.-]+:)?(?:title|desc|metadata))\b[^>]*?(?:/>|>.*?</\1\s*>)",
                       re.DOTALL | re.IGNORECASE)
_SVG_TEXT = re.compile(r"(<(?:[\w.-]+:)?text\b[^>]*?(?<!/)>)(.*?)(</(?:[\w.-]+:)?text\s*>)", re.DOTALL | re.IGNORECASE)
_SVG_ATTR = re.compile(r"(?<![\w:.-])(id|class)(\s*=\s*)(\"[^\"]*\"|'[^']*')")
_SVG_LABEL = re.compile(r"(?<![\w.-])((?:aria-label|[\w.-]+:label)\s*=\s*)(\"[^\"]*\"|'[^']*')")
_SVG_STYLE = re.compile(r"(<(?:[\w.-]+:)?style\b[^>]*?(?<!/)>)(.*?)(</(?:[\w.-]+:)?style\s*>)", re.DOTALL | re.IGNORECASE)
_SVG_TAG = re.compile(r"<[^>]*>")


def _strip_svg(code: str) -> str:
    text = _SVG_COMMENT.sub("", code)
    text = _SVG_DROP.sub("", text)
    text = _SVG_TEXT.sub(lambda m: m.group(1) + "".join(_SVG_TAG.findall(m.group(2))) + m.group(3), text)
    text = _SVG_LABEL.sub(lambda m: m.group(1) + m.group(2)[0] * 2, text)
    ids: dict[str, str] = {}
    classes: dict[str, str] = {}

    def attr(m: re.Match) -> str:
        q, value = m.group(3)[0], m.group(3)[1:-1]
        if m.group(1) == "id":
            value = value.strip()
            new = ids.setdefault(value, f"i{len(ids) + 1}") if value else ""
        else:
            new = " ".join(classes.setdefault(c, f"c{len(classes) + 1}") for c in value.split())
        return m.group(1) + m.group(2) + q + new + q

    text = _SVG_ATTR.sub(attr, text)

    def ref(m: re.Match) -> str:
        name = m.group(2)
        return m.group(1) + ids.get(name, name)

    text = re.sub(r"(url\(\s*['\"]?#)([^)'\"\s]+)", ref, text)
    text = re.sub(r"((?<![\w.-])(?:[\w.-]+:)?href\s*=\s*[\"']#)([^\"']+)", ref, text)

    def style(m: re.Match) -> str:
        css = re.sub(r"/\*.*?\*/", "", m.group(2), flags=re.DOTALL)
        css = re.sub(r"#([A-Za-z_][\w-]*)", lambda s: "#" + ids.get(s.group(1), s.group(1)), css)
        css = re.sub(r"\.([A-Za-z_][\w-]*)", lambda s: "." + classes.get(s.group(1), s.group(1)), css)
        return m.group(1) + css + m.group(3)

    return _SVG_STYLE.sub(style, text)


# ------------------------------------------------------------------------------------------ choices
def _concept_fields(concept, what: str = "concept") -> tuple[str, str, str, tuple[int, ...]]:
    try:
        cid, tier, text, classes = concept.id, concept.tier, concept.text, tuple(concept.imagenet or ())
    except AttributeError:
        raise LmscopeError(f"a {what} needs id, tier, text and imagenet, got {type(concept).__name__}") from None
    if not isinstance(cid, str) or not cid or not isinstance(text, str) or not text.strip():
        raise LmscopeError(f"a {what} needs a non-empty id and text, got {cid!r}: {text!r}")
    return cid, tier, text, classes


def recognition_choices(concept, pool: Sequence, k: int, seed: int = 0) -> list:
    """The true ``concept`` and k - 1 distractors from ``pool``, in a seeded random order.

    Distractors share the concept's tier and differ from it by id. When the concept has ImageNet
    classes, they are drawn among the pool's concepts that have classes none of which is the
    concept's (so the classifier reference is defined and unambiguous); when there are fewer than
    k - 1 of those, among all same-tier concepts whose classes do not overlap. The pool is ordered
    by id first and the generator is seeded with (seed, crc32(id)), so the list depends only on the
    seed, the concept and the pool's contents.
    """
    k = check_int("k", k, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    cid, tier, _, classes = _concept_fields(concept)
    if isinstance(pool, (str, bytes)) or not hasattr(pool, "__iter__"):
        raise LmscopeError("the candidate pool must be a list of concepts")
    others: dict[str, Any] = {}
    for c in pool:
        oid, otier, _, oclasses = _concept_fields(c, "pool concept")
        if otier == tier and oid != cid and not set(oclasses) & set(classes):
            others.setdefault(oid, c)
    same_tier = [others[i] for i in sorted(others)]
    eligible = [c for c in same_tier if c.imagenet] if classes else same_tier
    if len(eligible) < k - 1:
        eligible = same_tier
    if len(eligible) < k - 1:
        raise LmscopeError(f"k={k} needs {k - 1} distractors for {cid!r} but the pool has only {len(eligible)} "
                           f"other {tier!r} concept(s) with no ImageNet class in common")
    rng = np.random.default_rng([seed, zlib.crc32(cid.encode("utf-8"))])
    picked = [eligible[i] for i in rng.choice(len(eligible), size=k - 1, replace=False)]
    out = picked + [concept]
    return [out[i] for i in rng.permutation(k)]


# ------------------------------------------------------------------------------------------ recognition
class RecognitionItem(NamedTuple):
    """One piece of drawing code to recognize; ``image`` (the rendered picture) may be None."""

    concept: Any
    code: str
    language: str
    image: Any = None
    pool: Sequence = ()


@dataclass
class RecognitionRow:
    concept_id: str
    tier: str
    language: str
    candidates: list[str]
    choice: str
    correct: bool
    rank: int
    scores: list[float]  # per candidate, normalized as asked
    logprobs: list[float]  # per candidate, summed
    n_tokens: list[int]
    classifier_choice: str | None = None
    classifier_correct: bool | None = None
    classifier_probabilities: list[float] | None = None


@dataclass
class RecognitionResult:
    model: str
    k: int
    seed: int
    normalize: str
    rows: list[RecognitionRow] = field(default_factory=list)

    @property
    def chance(self) -> float:
        return 1.0 / self.k

    def table(self) -> pd.DataFrame:
        """One row per item (candidate lists as lists)."""
        cols = list(RecognitionRow.__dataclass_fields__)
        return pd.DataFrame([asdict(r) for r in self.rows], columns=cols)

    def accuracy(self, by: Sequence[str] | str = ("tier", "language")) -> pd.DataFrame:
        """Accuracy per group: n, accuracy, chance (1/k), and the classifier reference's n and
        accuracy over the group's items where it is defined (NaN where none)."""
        by = [by] if isinstance(by, str) else list(by)
        bad = [b for b in by if b not in ("tier", "language", "concept_id")]
        if bad:
            raise LmscopeError(f"accuracy can be grouped by tier, language or concept_id, not {', '.join(bad)}")
        t = self.table()
        cols = by + ["n", "accuracy", "chance", "classifier_n", "classifier_accuracy"]
        if t.empty:
            return pd.DataFrame(columns=cols)
        t["correct"] = t["correct"].astype(float)
        t["classifier_correct"] = t["classifier_correct"].map(lambda v: np.nan if v is None else float(v))
        groups = t.groupby(by, sort=True) if by else [((), t)]
        out = []
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            ref = g["classifier_correct"].dropna()
            out.append(list(key) + [len(g), float(g["correct"].mean()), self.chance, len(ref),
                                    float(ref.mean()) if len(ref) else float("nan")])
        return pd.DataFrame(out, columns=cols)

    def summary(self) -> dict:
        overall = self.accuracy(by=())
        row = overall.iloc[0] if len(overall) else None
        by_tier = self.accuracy(by="tier")
        return {"model": self.model, "k": self.k, "seed": self.seed, "normalize": self.normalize,
                "n": int(row["n"]) if row is not None else 0,
                "accuracy": float(row["accuracy"]) if row is not None else float("nan"),
                "chance": self.chance,
                "classifier_n": int(row["classifier_n"]) if row is not None else 0,
                "classifier_accuracy": float(row["classifier_accuracy"]) if row is not None else float("nan"),
                "accuracy_by_tier": dict(zip(by_tier["tier"], by_tier["accuracy"].astype(float)))}

    def to_dict(self) -> dict:
        acc = self.accuracy()
        return {**self.summary(), "accuracy_table": acc.to_dict(orient="records"),
                "rows": [asdict(r) for r in self.rows]}


def recognition_prompt(code: str, language: str) -> str:
    """The prompt for one piece of code: :data:`PROMPT` filled with the stripped code."""
    language = _check_language(language)
    return PROMPT.format(language=LANGUAGE_NAMES[language], fence=language, code=strip_code(code, language).strip())


def _as_item(item, i: int) -> RecognitionItem:
    if isinstance(item, RecognitionItem):
        return item
    if isinstance(item, (tuple, list)) and len(item) == 5:
        return RecognitionItem(*item)
    raise LmscopeError(f"item {i + 1}: expected (concept, code, language, image or None, pool)")


def _rank(scores: list[float], truth: int) -> int:
    s = scores[truth]
    return 1 + sum(1 for j, x in enumerate(scores) if x > s or (x == s and j < truth))


def recognize(lm, items, k: int = 5, seed: int = 0, normalize: str = "mean", classifier: Any = True,
              ) -> RecognitionResult:
    """Ask ``lm`` (any object with :meth:`~lmscope.lm.base.LanguageModel.score`) which concept each
    item's code draws, among :func:`recognition_choices` (concept, pool, k, seed).

    ``items``: (concept, code, language, image or None, pool) tuples or :class:`RecognitionItem`; a
    concept is any object with ``id``, ``tier``, ``text`` and ``imagenet`` (a tuple of class indices,
    possibly empty). The prompt is :func:`recognition_prompt`; candidate j's continuation is
    ``" " + text_j``. ``normalize``: ``"mean"`` (log-probability per token; a score without per-token
    values counts as one token) or ``"sum"``. ``classifier``: True opens
    :func:`lmscope.vision.classifier.open_classifier` when some item can use it, False/None skips the
    reference, or any object with ``candidate_probabilities(images, classes)``. All prompts go to the
    model in one ``score`` call.
    """
    k = check_int("k", k, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    if normalize not in NORMALIZE:
        raise LmscopeError(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    if not callable(getattr(lm, "score", None)):
        raise LmscopeError(f"the model must have a score method, got {type(lm).__name__}")
    if isinstance(items, (str, bytes)):
        raise LmscopeError("items must be a list of (concept, code, language, image, pool)")
    items = [_as_item(it, i) for i, it in enumerate(items)]
    if not items:
        raise LmscopeError("no items to recognize")
    plans, requests = [], []
    for i, it in enumerate(items):
        if not isinstance(it.code, str):
            raise LmscopeError(f"item {i + 1}: the code must be text, got {type(it.code).__name__}")
        if it.language not in LANGUAGES:
            raise LmscopeError(f"item {i + 1}: unknown drawing language {it.language!r}: expected one of "
                               f"{', '.join(LANGUAGES)}")
        cands = recognition_choices(it.concept, it.pool, k, seed)
        plans.append(cands)
        requests.append((recognition_prompt(it.code, it.language), [" " + c.text for c in cands]))
    answers = lm.score(requests)
    if len(answers) != len(requests):
        raise LmscopeError(f"the model returned {len(answers)} score lists for {len(requests)} prompts")
    rows = []
    for it, cands, ans in zip(items, plans, answers):
        ans = list(ans)
        if len(ans) != len(cands):
            raise LmscopeError(f"the model returned {len(ans)} scores for {len(cands)} candidates")
        logprobs = [float(a.logprob) for a in ans]
        n_tokens = [len(getattr(a, "token_logprobs", None) or []) for a in ans]
        scores = logprobs if normalize == "sum" else [lp / max(n, 1) for lp, n in zip(logprobs, n_tokens)]
        truth = next(j for j, c in enumerate(cands) if c is it.concept)
        choice = int(np.argmax(scores))
        cid, tier, _, _ = _concept_fields(it.concept)
        rows.append(RecognitionRow(concept_id=cid, tier=tier, language=it.language,
                                   candidates=[c.id for c in cands], choice=cands[choice].id,
                                   correct=choice == truth, rank=_rank(scores, truth), scores=scores,
                                   logprobs=logprobs, n_tokens=n_tokens))
    _classifier_reference(items, plans, rows, classifier)
    return RecognitionResult(model=str(getattr(lm, "spec", type(lm).__name__)), k=k, seed=seed,
                             normalize=normalize, rows=rows)


def _classifier_reference(items, plans, rows, classifier) -> None:
    """Fill the rows' classifier fields where the item has an image and every candidate has classes."""
    if classifier is None or classifier is False:
        return
    todo = [i for i, (it, cands) in enumerate(zip(items, plans))
            if it.image is not None and all(tuple(c.imagenet or ()) for c in cands)]
    if not todo:
        return
    if classifier is True:
        from lmscope.vision.classifier import open_classifier

        classifier = open_classifier()
    if not callable(getattr(classifier, "candidate_probabilities", None)):
        raise LmscopeError(f"the classifier must have candidate_probabilities, got {type(classifier).__name__}")
    for i in todo:
        cands = plans[i]
        probs = np.asarray(classifier.candidate_probabilities([items[i].image],
                                                              [list(c.imagenet) for c in cands]))[0]
        j = int(np.argmax(probs))
        rows[i].classifier_choice = cands[j].id
        rows[i].classifier_correct = cands[j] is items[i].concept
        rows[i].classifier_probabilities = [float(p) for p in probs]
