"""The language-model side of Ada: prompts for goals, plan sketches and operator definitions, and the
readers that turn an answer into PDDL or say why it cannot be one.

Prompts are plain few-shot completions (no chat template), so a small model continues the pattern.
Before any task is solved the examples come from :data:`TOY`, a hand-written gardening domain that
shares no predicate or operator with the worlds, so nothing of a ground-truth domain leaks into the
prompts; afterwards they come from the tasks solved so far and the operators learned so far.

Every reader returns a value or a reason (``code: message``), never raises on what a model writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmscope.planning.pddl import Atom, Domain, PddlSyntaxError, Problem, _atom, _conjunction, read_sexprs

NAME = re.compile(r"[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*")
MAX_SKETCH = 8  # operator names kept from one sketch


@dataclass(frozen=True)
class Example:
    """One solved task as the prompts show it: the instruction, the goal atoms, the operators used."""

    instruction: str
    goal: tuple[str, ...]
    sketch: tuple[str, ...]


# A different toy domain for the first iteration's prompts (gardening): not a predicate of ours.
TOY_EXAMPLES = (
    Example("water the rose", ("watered rose-1",), ("fill-watering-can", "water-plant")),
    Example("put a washed trowel in the shed", ("washed trowel-1", "in trowel-1 shed-1"),
            ("wash-tool", "store-tool")),
    Example("harvest a pumpkin", ("has pumpkin",), ("harvest-vegetable",)),
)
TOY_OPERATORS = (
    "(:action fill-watering-can\n  :parameters (?p - plot)\n"
    "  :precondition (and (agent-at ?p) (well ?p) (holding watering-can))\n"
    "  :effect (and (can-full)))",
    "(:action water-plant\n  :parameters (?p - plot ?x - plant)\n"
    "  :precondition (and (agent-at ?p) (grows ?x ?p) (can-full))\n"
    "  :effect (and (watered ?x) (not (can-full))))",
    "(:action harvest-vegetable\n  :parameters (?p - plot)\n"
    "  :precondition (and (agent-at ?p) (pumpkin-patch ?p) (holding shears))\n"
    "  :effect (and (has pumpkin)))",
)


def _atoms_text(goal) -> str:
    return " ".join(f"({g})" for g in goal)


def describe(domain: Domain, known: tuple[str, ...] = ()) -> str:
    """The domain as comment lines: types, constants, predicates, which predicates are static."""
    consts: dict[str, list[str]] = {}
    for c, t in domain.constants:
        consts.setdefault(t, []).append(c)
    lines = [f"; The PDDL domain {domain.name} (STRIPS with typing).",
             "; types: " + " ".join(t for t, _ in domain.types)]
    lines += [f"; {t} constants: {' '.join(cs)}" for t, cs in consts.items()]
    lines.append("; predicates: " + " ".join(p.to_pddl() for p in domain.predicates))
    if domain.static:
        lines.append("; static predicates (no action changes them): " + " ".join(domain.static))
    if known:
        lines.append("; primitive actions: " + " ".join(known))
    return "\n".join(lines)


def objects_line(problem: Problem, domain: Domain, types: tuple[str, ...] | None = None) -> str:
    """The problem's objects and the domain's constants of ``types`` (default: all)."""
    by_type: dict[str, list[str]] = {}
    for o, t in (*problem.objects.items(), *domain.constants):
        if types is None or t in types:
            by_type.setdefault(t, []).append(o)
    return "; objects: " + "; ".join(f"{' '.join(os_)} - {t}" for t, os_ in by_type.items())


def goal_prompt(domain: Domain, problem: Problem, instruction: str, examples,
                types: tuple[str, ...] | None = None) -> str:
    """Few-shot: instruction -> PDDL goal atoms. The head names the predicates that actions change and
    the objects of ``types`` (a world's ``goal_types``), to keep the prompt short."""
    preds = " ".join(p.to_pddl() for p in domain.predicates if p.name not in domain.static)
    head = [f"; The PDDL domain {domain.name}. Predicates: {preds}", objects_line(problem, domain, types),
            "; Write the PDDL goal of each task.", ""]
    shots = [f"Task: {e.instruction}\nGoal: {_atoms_text(e.goal)}\n" for e in examples]
    return "\n".join(head) + "\n".join(shots) + f"\nTask: {instruction}\nGoal:"


def sketch_prompt(domain: Domain, instruction: str, goal, examples, library: tuple[str, ...] = ()) -> str:
    """Few-shot: instruction + goal -> the names of the operators a plan would use, in order."""
    head = [f"; The PDDL domain {domain.name}: name the high-level operators a plan for each task uses, in order."]
    if library:
        head.append("; operators known so far: " + " ".join(library))
    shots = [f"Task: {e.instruction}\nGoal: {_atoms_text(e.goal)}\nOperators: {' '.join(e.sketch)}\n"
             for e in examples]
    return ("\n".join(head) + "\n\n" + "\n".join(shots)
            + f"\nTask: {instruction}\nGoal: {_atoms_text(goal)}\nOperators:")


def definition_prefix(name: str) -> str:
    return f"(:action {name}\n  :parameters (?"


def definition_prompt(domain: Domain, name: str, uses, examples: tuple[str, ...], toy: bool) -> str:
    """Few-shot: an operator name and the tasks that used it -> its PDDL definition. ``examples``: PDDL
    actions (the toy domain's when ``toy``, else learned operators); the domain's known actions are
    always shown, since they are given to the agent."""
    parts = []
    if toy:
        parts += ["; Example actions from another domain (gardening), for the format only:", *examples, ""]
    parts += [describe(domain), "; Each action uses only the predicates, types and constants above.", ""]
    parts += [a.to_pddl() for a in domain.operators]
    if not toy:
        parts += examples
    uses = list(uses)[:3]
    parts += ["", f"; Define the action {name}: what it needs (precondition) and what it makes true (effect), "
              "for tasks such as " + "; ".join(f"'{i}' (goal {_atoms_text(g)})" for i, g in uses) + "."]
    return "\n".join(parts) + "\n" + definition_prefix(name)


# ------------------------------------------------------------------------------------------ readers
def read_goal(text: str, domain: Domain, problem: Problem) -> tuple[tuple[str, ...] | None, str | None]:
    """The goal atoms of an answer (``(has bow)``, ``(and (hot apple-1) (in apple-1 table-1))``), each
    over a predicate of ``domain`` with objects of ``problem`` or constants, or None and why not."""
    text = (text or "").strip()
    if not text:
        return None, "empty: the answer is empty"
    try:
        forms = read_sexprs(_balanced_prefix(text))
        if not forms:
            raise PddlSyntaxError("unparsable", "no atom")
        atoms: list[Atom] = []
        for f in forms:
            if isinstance(f, list) and f and f[0] == "and":
                lits = _conjunction(f, "goal")
                if not all(lit.positive for lit in lits):
                    raise PddlSyntaxError("unsupported", "a negative goal")
                atoms += [lit.atom for lit in lits]
            else:
                atoms.append(_atom(f))
    except PddlSyntaxError as e:
        return None, str(e)
    if not atoms:
        return None, "empty: a goal without atoms"
    names = set(problem.objects) | {c for c, _ in domain.constants}
    for a in atoms:
        pred = domain.predicate(a.pred)
        if pred is None:
            return None, f"unknown-predicate: {a.to_pddl()}"
        if len(a.args) != len(pred.arg_types):
            return None, f"wrong-arity: {a.to_pddl()} ({a.pred} takes {len(pred.arg_types)})"
        bad = next((x for x in a.args if x not in names), None)
        if bad is not None:
            return None, f"unknown-object: {bad} in {a.to_pddl()}"
    return tuple(dict.fromkeys(" ".join((a.pred, *a.args)) for a in atoms)), None


def _balanced_prefix(text: str) -> str:
    """The longest prefix of ``text`` made of complete parenthesized forms (a model often runs on)."""
    depth, end = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
            if depth == 0:
                end = i + 1
        elif depth == 0 and not ch.isspace():
            break
    return text[:end]


def read_sketch(text: str, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Operator names from a sketch answer, in order, without repeats of a name in a row or names in
    ``exclude`` (the world's given actions); at most :data:`MAX_SKETCH`."""
    out: list[str] = []
    for m in NAME.finditer((text or "").lower().split("\n")[0]):
        name = m.group(0)
        if name in exclude or (out and out[-1] == name) or len(name) < 3:
            continue
        out.append(name)
    return tuple(out[:MAX_SKETCH])
