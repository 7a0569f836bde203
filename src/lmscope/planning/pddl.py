"""STRIPS-with-types PDDL: domains, problems, parsing, and the checks an LM-written operator must pass.

The subset kept here is the one both planners handle (Fast Downward fully; pyperplan, the pure-Python
fallback, only this): ``:strips`` and ``:typing``, conjunctions of atoms as preconditions, goals and
effects (``(not ...)`` in an effect is a delete). A negative precondition ``(not (p ?x))`` is accepted
only in a domain that states ``:negative-preconditions`` among its requirements; pyperplan refuses such
domains (``lmscope.planning.planner`` reports that as an error). Disjunctions, quantifiers, conditional
effects, equality and numeric fluents are outside the subset and rejected with the reason
``unsupported``.

Text is read by an S-expression reader (PDDL is case-insensitive: names are lower-cased; ``;`` starts
a comment); an operator that passes :func:`validate` is, when unified-planning is installed, also read
by its PDDL parser inside a copy of the domain, so that what is accepted here is what the planners
accept. Rejections carry a short stable code and a message, e.g. ``unknown-predicate: (holdz ?x)``:
:data:`REASONS` lists the codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lmscope.errors import LmscopeError

STRIPS = (":strips", ":typing")
NEGATIVE = ":negative-preconditions"
REASONS = (
    "unparsable",            # not a readable (:action ...) form
    "unsupported",           # a PDDL feature outside STRIPS + typing (or, forall, when, =, ...)
    "unknown-predicate",     # a predicate the domain does not declare
    "wrong-arity",           # a predicate used with the wrong number of arguments
    "unknown-type",          # a parameter of a type the domain does not declare
    "type-mismatch",         # an argument whose type does not fit the predicate's
    "unknown-variable",      # a variable that is not a parameter (or an unknown constant)
    "duplicate-parameter",   # two parameters with one name
    "static-effect",         # an effect on a static predicate
    "arity-over-bound",      # more parameters than the bound
    "negative-precondition",  # a negative precondition in a domain that does not state the requirement
    "unsatisfiable",         # preconditions that contradict each other
    "no-effect",             # an operator that changes nothing
    "duplicate-name",        # the name of an operator the domain already has
)


# ------------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class Atom:
    """``(pred a1 a2 ...)``; arguments are variables (``?x``) or object / constant names."""

    pred: str
    args: tuple[str, ...] = ()

    def to_pddl(self) -> str:
        return "(" + " ".join((self.pred, *self.args)) + ")"

    def __str__(self) -> str:
        return self.to_pddl()


@dataclass(frozen=True)
class Literal:
    atom: Atom
    positive: bool = True

    def to_pddl(self) -> str:
        return self.atom.to_pddl() if self.positive else f"(not {self.atom.to_pddl()})"

    def __str__(self) -> str:
        return self.to_pddl()


@dataclass(frozen=True)
class Predicate:
    name: str
    arg_types: tuple[str, ...] = ()

    def to_pddl(self) -> str:
        return "(" + " ".join([self.name, *(f"?x{i} - {t}" for i, t in enumerate(self.arg_types))]) + ")"


@dataclass(frozen=True)
class Operator:
    """A STRIPS operator: typed parameters, preconditions (literals), add and delete effects."""

    name: str
    parameters: tuple[tuple[str, str], ...] = ()
    preconditions: tuple[Literal, ...] = ()
    add: tuple[Atom, ...] = ()
    delete: tuple[Atom, ...] = ()

    def to_pddl(self) -> str:
        params = " ".join(f"{v} - {t}" for v, t in self.parameters)
        pre = " ".join(lit.to_pddl() for lit in self.preconditions)
        eff = " ".join([a.to_pddl() for a in self.add] + [f"(not {a.to_pddl()})" for a in self.delete])
        return (f"(:action {self.name}\n  :parameters ({params})\n  :precondition (and {pre})\n"
                f"  :effect (and {eff}))").replace("(and )", "(and)")

    def to_dict(self) -> dict:
        return {"name": self.name, "parameters": [list(p) for p in self.parameters],
                "preconditions": [str(x) for x in self.preconditions], "add": [str(a) for a in self.add],
                "delete": [str(a) for a in self.delete], "pddl": self.to_pddl()}


@dataclass(frozen=True)
class Domain:
    """A typed STRIPS domain. ``types``: (type, parent) pairs (parent ``object`` at the top);
    ``static``: names of predicates no operator may change (facts of the world's layout)."""

    name: str
    types: tuple[tuple[str, str], ...] = ()
    predicates: tuple[Predicate, ...] = ()
    static: tuple[str, ...] = ()
    operators: tuple[Operator, ...] = ()
    constants: tuple[tuple[str, str], ...] = ()
    requirements: tuple[str, ...] = STRIPS

    # lookups
    def predicate(self, name: str) -> Predicate | None:
        return next((p for p in self.predicates if p.name == name), None)

    def operator(self, name: str) -> Operator | None:
        return next((o for o in self.operators if o.name == name), None)

    def type_names(self) -> set[str]:
        return {"object", *(t for t, _ in self.types), *(p for _, p in self.types)}

    def is_subtype(self, sub: str, sup: str) -> bool:
        """Whether ``sub`` is ``sup`` or below it (every type is below ``object``)."""
        parents = dict(self.types)
        seen = set()
        while sub not in seen:
            if sub == sup or sup == "object":
                return True
            seen.add(sub)
            if sub not in parents:
                return False
            sub = parents[sub]
        return False

    def with_operators(self, operators) -> Domain:
        return replace(self, operators=tuple(operators))

    def to_pddl(self) -> str:
        reqs = list(self.requirements)
        if NEGATIVE not in reqs and any(not lit.positive for o in self.operators for lit in o.preconditions):
            reqs.append(NEGATIVE)
        lines = [f"(define (domain {self.name})", f"  (:requirements {' '.join(reqs)})"]
        if self.types:
            lines.append("  (:types " + " ".join(f"{t} - {p}" for t, p in self.types) + ")")
        if self.constants:
            lines.append("  (:constants " + " ".join(f"{c} - {t}" for c, t in self.constants) + ")")
        lines.append("  (:predicates " + " ".join(p.to_pddl() for p in self.predicates) + ")")
        if self.static:
            lines.append(f"  ; static: {' '.join(self.static)}")
        for op in self.operators:
            lines.append("  " + op.to_pddl().replace("\n", "\n  "))
        return "\n".join(lines) + ")\n"


@dataclass(frozen=True)
class Problem:
    name: str
    domain: str
    objects: dict[str, str] = field(default_factory=dict)
    init: tuple[Atom, ...] = ()
    goal: tuple[Atom, ...] = ()

    def to_pddl(self) -> str:
        by_type: dict[str, list[str]] = {}
        for o, t in self.objects.items():
            by_type.setdefault(t, []).append(o)
        objs = " ".join(f"{' '.join(os_)} - {t}" for t, os_ in by_type.items())
        return (f"(define (problem {self.name}) (:domain {self.domain})\n  (:objects {objs})\n"
                f"  (:init {' '.join(a.to_pddl() for a in self.init)})\n"
                f"  (:goal (and {' '.join(a.to_pddl() for a in self.goal)})))\n")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None = None  # "code: message"

    @property
    def code(self) -> str | None:
        return self.reason.split(":", 1)[0] if self.reason else None


@dataclass(frozen=True)
class Rejected:
    """A candidate that did not become an :class:`Operator`: its text, name (when readable), why."""

    text: str
    reason: str
    name: str | None = None

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]

    def to_dict(self) -> dict:
        return {"name": self.name, "code": self.code, "reason": self.reason, "text": self.text}


class PddlSyntaxError(ValueError):
    """Text that is not PDDL of the supported subset; ``code`` is one of :data:`REASONS`."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


# ------------------------------------------------------------------------------------------ reading
def _tokens(text: str) -> list[str]:
    out, word = [], []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == ";":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in "()" or c.isspace():
            if word:
                out.append("".join(word).lower())
                word = []
            if c in "()":
                out.append(c)
        else:
            word.append(c)
        i += 1
    if word:
        out.append("".join(word).lower())
    return out


def read_sexprs(text: str) -> list:
    """The S-expressions of ``text`` as nested lists of lower-cased strings; PddlSyntaxError on
    unbalanced parentheses."""
    stack: list[list] = [[]]
    for tok in _tokens(text):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise PddlSyntaxError("unparsable", "a ')' without its '('")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise PddlSyntaxError("unparsable", f"{len(stack) - 1} unclosed '('")
    return stack[0]


def _show(x) -> str:
    return x if isinstance(x, str) else "(" + " ".join(_show(y) for y in x) + ")"


def _typed_list(items: list, what: str) -> list[tuple[str, str]]:
    """``a b - t c`` -> [(a, t), (b, t), (c, object)]."""
    out, pending = [], []
    i = 0
    while i < len(items):
        x = items[i]
        if not isinstance(x, str):
            raise PddlSyntaxError("unparsable", f"a list inside the {what}: {_show(x)}")
        if x == "-":
            if i + 1 >= len(items) or not isinstance(items[i + 1], str) or not pending:
                raise PddlSyntaxError("unparsable", f"a '-' without a name and a type in the {what}")
            t = items[i + 1]
            out += [(p, t) for p in pending]
            pending = []
            i += 2
            continue
        pending.append(x)
        i += 1
    return out + [(p, "object") for p in pending]


def _atom(x) -> Atom:
    if isinstance(x, str) or not x or not isinstance(x[0], str):
        raise PddlSyntaxError("unparsable", f"not an atom: {_show(x)}")
    if x[0] in ("and", "or", "not", "forall", "exists", "when", "imply", "=", "increase", "decrease"):
        raise PddlSyntaxError("unsupported", f"{_show(x)} (only conjunctions of atoms)")
    for a in x[1:]:
        if not isinstance(a, str):
            raise PddlSyntaxError("unsupported", f"nested term in {_show(x)}")
    return Atom(x[0], tuple(x[1:]))


def _conjunction(x, what: str) -> list[Literal]:
    """The literals of ``(and l1 l2 ...)``, a single literal, or ``()``."""
    if isinstance(x, str):
        raise PddlSyntaxError("unparsable", f"the {what} is a bare name: {x}")
    if not x:
        return []
    parts = x[1:] if x[0] == "and" else [x]
    out = []
    for p in parts:
        if isinstance(p, list) and p and p[0] == "not":
            if len(p) != 2:
                raise PddlSyntaxError("unparsable", f"{_show(p)} in the {what}")
            out.append(Literal(_atom(p[1]), False))
        else:
            if isinstance(p, list) and p and p[0] == "and":
                out += _conjunction(p, what)
                continue
            out.append(Literal(_atom(p), True))
    return out


def _operator(form: list) -> Operator:
    if len(form) < 2 or form[0] != ":action" or not isinstance(form[1], str):
        raise PddlSyntaxError("unparsable", "an action must start (:action NAME ...)")
    name = form[1]
    if name.startswith((":", "?")):
        raise PddlSyntaxError("unparsable", f"bad action name {name!r}")
    keys = {}
    rest = form[2:]
    if len(rest) % 2:
        raise PddlSyntaxError("unparsable", f"action {name}: a keyword without a value")
    for k, v in zip(rest[::2], rest[1::2]):
        if not isinstance(k, str) or not k.startswith(":"):
            raise PddlSyntaxError("unparsable", f"action {name}: expected a keyword, got {_show(k)}")
        if k not in (":parameters", ":precondition", ":effect"):
            raise PddlSyntaxError("unsupported", f"action {name}: {k}")
        keys[k] = v
    if ":effect" not in keys:
        raise PddlSyntaxError("unparsable", f"action {name} has no :effect")
    params = keys.get(":parameters", [])
    if isinstance(params, str):
        raise PddlSyntaxError("unparsable", f"action {name}: :parameters must be a list")
    parameters = _typed_list(params, f"parameters of {name}")
    pre = _conjunction(keys.get(":precondition", []), f"precondition of {name}")
    eff = _conjunction(keys[":effect"], f"effect of {name}")
    return Operator(name, tuple(parameters), tuple(pre), tuple(lit.atom for lit in eff if lit.positive),
                    tuple(lit.atom for lit in eff if not lit.positive))


def _sections(form, head: str) -> tuple[str, list]:
    if (not isinstance(form, list) or len(form) < 2 or form[0] != "define" or not isinstance(form[1], list)
            or len(form[1]) != 2 or form[1][0] != head):
        raise PddlSyntaxError("unparsable", f"expected (define ({head} NAME) ...)")
    return form[1][1], form[2:]


def parse_domain(text: str, static: tuple[str, ...] | None = None) -> Domain:
    """A :class:`Domain` from PDDL text; LmscopeError (one line) when it is not the supported subset.

    ``static``: the static predicates; by default those that no operator changes."""
    try:
        forms = read_sexprs(text)
        if len(forms) != 1:
            raise PddlSyntaxError("unparsable", f"expected one (define ...) form, found {len(forms)}")
        name, sections = _sections(forms[0], "domain")
        types, preds, ops, consts, reqs = [], [], [], [], list(STRIPS)
        for sec in sections:
            if not isinstance(sec, list) or not sec or not isinstance(sec[0], str):
                raise PddlSyntaxError("unparsable", f"unexpected {_show(sec)}")
            head = sec[0]
            if head == ":requirements":
                reqs = list(sec[1:])
                bad = [r for r in reqs if r not in (*STRIPS, NEGATIVE)]
                if bad:
                    raise PddlSyntaxError("unsupported", f"requirement {bad[0]}")
            elif head == ":types":
                types = _typed_list(sec[1:], ":types")
            elif head == ":constants":
                consts = _typed_list(sec[1:], ":constants")
            elif head == ":predicates":
                for p in sec[1:]:
                    if not isinstance(p, list) or not p or not isinstance(p[0], str):
                        raise PddlSyntaxError("unparsable", f"bad predicate {_show(p)}")
                    preds.append(Predicate(p[0], tuple(t for _, t in _typed_list(p[1:], f"predicate {p[0]}"))))
            elif head == ":action":
                ops.append(_operator(sec))
            else:
                raise PddlSyntaxError("unsupported", f"domain section {head}")
    except PddlSyntaxError as e:
        raise LmscopeError(f"not a PDDL domain of the supported subset (STRIPS + typing): {e}") from None
    changed = {a.pred for o in ops for a in (*o.add, *o.delete)}
    if static is None:
        static = tuple(p.name for p in preds if p.name not in changed)
    dom = Domain(name, tuple((t, p) for t, p in types if t != "object"), tuple(preds), tuple(static),
                 (), tuple(consts), tuple(reqs))
    for op in ops:
        v = validate(op, dom, max_arity=None, check_static=False)
        if not v.ok:
            raise LmscopeError(f"domain {name}: action {op.name}: {v.reason}")
        dom = dom.with_operators((*dom.operators, op))
    return dom


def parse_problem(text: str) -> Problem:
    """A :class:`Problem` from PDDL text (positive conjunctive goal); LmscopeError when it is not one."""
    try:
        forms = read_sexprs(text)
        if len(forms) != 1:
            raise PddlSyntaxError("unparsable", f"expected one (define ...) form, found {len(forms)}")
        name, sections = _sections(forms[0], "problem")
        dom, objects, init, goal = None, {}, [], []
        for sec in sections:
            if not isinstance(sec, list) or not sec or not isinstance(sec[0], str):
                raise PddlSyntaxError("unparsable", f"unexpected {_show(sec)}")
            if sec[0] == ":domain" and len(sec) == 2:
                dom = sec[1]
            elif sec[0] == ":objects":
                objects = dict(_typed_list(sec[1:], ":objects"))
            elif sec[0] == ":init":
                init = [_atom(a) for a in sec[1:]]
            elif sec[0] == ":goal" and len(sec) == 2:
                lits = _conjunction(sec[1], "goal")
                if not all(lit.positive for lit in lits):
                    raise PddlSyntaxError("unsupported", "negative goals")
                goal = [lit.atom for lit in lits]
            else:
                raise PddlSyntaxError("unsupported", f"problem section {_show(sec)[:60]}")
        if dom is None:
            raise PddlSyntaxError("unparsable", "no (:domain NAME)")
    except PddlSyntaxError as e:
        raise LmscopeError(f"not a PDDL problem of the supported subset (STRIPS + typing): {e}") from None
    return Problem(name, dom, objects, tuple(init), tuple(goal))


# ------------------------------------------------------------------------------------------ checks
def validate(op: Operator, domain: Domain, max_arity: int | None = 4, *, check_static: bool = True) -> Verdict:
    """Whether ``op`` is a well-formed operator of ``domain``; else the first problem found, as
    ``code: message`` (codes in :data:`REASONS`)."""
    def no(code: str, msg: str) -> Verdict:
        return Verdict(False, f"{code}: {msg}")

    if max_arity is not None and len(op.parameters) > max_arity:
        return no("arity-over-bound", f"{op.name} has {len(op.parameters)} parameters, the bound is {max_arity}")
    params: dict[str, str] = {}
    known_types = domain.type_names()
    for v, t in op.parameters:
        if not v.startswith("?"):
            return no("unparsable", f"parameter {v} of {op.name} is not a variable")
        if v in params:
            return no("duplicate-parameter", f"{v} in {op.name}")
        if t not in known_types:
            return no("unknown-type", f"{v} - {t}")
        params[v] = t
    consts = dict(domain.constants)
    for atom in (*(lit.atom for lit in op.preconditions), *op.add, *op.delete):
        pred = domain.predicate(atom.pred)
        if pred is None:
            return no("unknown-predicate", atom.to_pddl())
        if len(atom.args) != len(pred.arg_types):
            return no("wrong-arity", f"{atom.to_pddl()} ({atom.pred} takes {len(pred.arg_types)})")
        for a, want in zip(atom.args, pred.arg_types):
            have = params.get(a) if a.startswith("?") else consts.get(a)
            if have is None:
                return no("unknown-variable", f"{a} in {atom.to_pddl()} is not a parameter"
                          + ("" if a.startswith("?") else " nor a constant"))
            if not domain.is_subtype(have, want):
                return no("type-mismatch", f"{a} - {have} in {atom.to_pddl()} (wants {want})")
    if check_static:
        for atom in (*op.add, *op.delete):
            if atom.pred in domain.static:
                return no("static-effect", f"{atom.to_pddl()} changes the static predicate {atom.pred}")
    if NEGATIVE not in domain.requirements:
        neg = next((lit for lit in op.preconditions if not lit.positive), None)
        if neg is not None:
            return no("negative-precondition", f"{neg.to_pddl()} (the domain does not state {NEGATIVE})")
    pos = {lit.atom for lit in op.preconditions if lit.positive}
    clash = next((lit for lit in op.preconditions if not lit.positive and lit.atom in pos), None)
    if clash is not None:
        return no("unsatisfiable", f"{clash.atom.to_pddl()} both required and excluded")
    if not op.add and not op.delete:
        return no("no-effect", f"{op.name} changes nothing")
    return Verdict(True)


def _action_blocks(text: str) -> list[str]:
    """The ``(:action ...)`` blocks in free text (an LM answer: prose, code fences), each up to its
    matching parenthesis or the end of the text."""
    out, low, start = [], text.lower(), 0
    while True:
        i = low.find("(:action", start)
        if i < 0:
            return out
        depth, j = 0, i
        while j < len(text):
            if text[j] == "(":
                depth += 1
            elif text[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append(text[i:j + 1])
        start = j + 1


def _up_accepts(domain: Domain) -> str | None:
    """None when unified-planning's PDDL reader reads ``domain`` (or is not installed), else why not."""
    try:
        from unified_planning.io import PDDLReader
    except ImportError:
        return None
    try:
        PDDLReader().parse_problem_string(domain.to_pddl())
    except Exception as e:  # noqa: BLE001 - any parser failure is a rejection of the candidate
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return first[:200]
    return None


def parse_operators(text: str, domain: Domain, max_arity: int | None = 4,
                    confirm: bool = True) -> list[Operator | Rejected]:
    """Each ``(:action ...)`` block of ``text`` (e.g. an LM's answer) as an :class:`Operator` that passed
    :func:`validate` against ``domain``, or a :class:`Rejected` with the reason. Text without any
    block gives one Rejected (``unparsable``). ``confirm``: also have unified-planning's PDDL parser
    read each accepted operator inside a copy of the domain."""
    blocks = _action_blocks(text if isinstance(text, str) else "")
    if not blocks:
        return [Rejected(str(text)[:2000], "unparsable: no (:action ...) block")]
    out: list[Operator | Rejected] = []
    for block in blocks:
        try:
            forms = read_sexprs(block)
            if len(forms) != 1 or not isinstance(forms[0], list):
                raise PddlSyntaxError("unparsable", "not one (:action ...) form")
            op = _operator(forms[0])
        except PddlSyntaxError as e:
            name = None
            try:
                name = _tokens(block)[2]
            except IndexError:
                pass
            out.append(Rejected(block, str(e), name if name not in ("(", ")") else None))
            continue
        if domain.operator(op.name) is not None:
            out.append(Rejected(block, f"duplicate-name: the domain already has {op.name}", op.name))
            continue
        v = validate(op, domain, max_arity=max_arity)
        if not v.ok:
            out.append(Rejected(block, v.reason, op.name))
            continue
        why = _up_accepts(domain.with_operators((*domain.operators, op))) if confirm else None
        out.append(op if why is None else Rejected(block, f"unparsable: {why}", op.name))
    return out
