"""The low-level controller of Ada: reaching a high-level operator's effects with primitive actions.

A planned high-level operator ``o`` (e.g. ``mine-wood``: precondition ``(has axe)``, effect ``(has wood)``)
grounded with the objects ``args`` gives a subgoal: the atoms its add effects make true, ``P = add(o, args)``,
and those its delete effects make false, ``N = delete(o, args) - P``. From the real current state ``s0`` the
controller searches breadth-first over the world's primitive actions ``A(s)``
(:meth:`~lmscope.planning.worlds.World.primitive_actions`, run in the world's simulator) for

    a* = argmin_{a_1..a_k} k   such that   s_k = step(...step(s0, a_1)..., a_k),
                               P ⊆ atoms(s_k)   and   N ∩ atoms(s_k) = ∅

(states are identified by :meth:`~lmscope.planning.worlds.World.state_key`; the search gives up after
expanding ``max_states`` states). Breadth-first order makes ``a*`` a shortest sequence. The operator's
preconditions are not checked: the controller acts in the world as it is, so a wrong precondition in an
LM-proposed operator shows up as a failure (or a longer search) here, not as a silent success.

A static atom (a predicate no primitive action changes, e.g. ``adjacent``) is checked once against the
start state; only the subgoal's other predicates are computed in each state the search visits.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmscope.errors import LmscopeError, check_int
from lmscope.planning.pddl import Atom, Operator
from lmscope.planning.planner import ground


@dataclass(frozen=True)
class Reach:
    """The outcome of one search: ``ok`` (a state satisfying the subgoal was found, or it already held),
    ``actions`` (the primitive actions to it, ``(name, args)`` pairs; empty when it already held),
    ``expanded`` (states whose successors the search generated) and ``reason``."""

    ok: bool
    actions: tuple
    expanded: int
    reason: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "actions": [[n, list(a)] for n, a in self.actions], "expanded": self.expanded,
                "reason": self.reason}


def _atom_text(x) -> str:
    """A ground atom as ``"pred a b"`` from an :class:`Atom` or a string (``"(pred a b)"`` or ``"pred a b"``)."""
    if isinstance(x, Atom):
        parts = [x.pred, *x.args]
    elif isinstance(x, str):
        parts = x.strip().removeprefix("(").removesuffix(")").split()
    else:
        raise LmscopeError(f"a subgoal atom must be a string or an Atom, got {type(x).__name__}: {x!r}")
    parts = [str(p).lower() for p in parts]
    if not parts or not parts[0]:
        raise LmscopeError(f"empty subgoal atom {x!r}")
    var = next((p for p in parts[1:] if p.startswith("?")), None)
    if var is not None:
        raise LmscopeError(f"the subgoal atom ({' '.join(parts)}) is not ground: {var} is a variable")
    return " ".join(parts)


def _atoms(xs, what: str) -> tuple[str, ...]:
    if isinstance(xs, (str, Atom)):
        xs = [xs]
    try:
        items = list(xs)
    except TypeError:
        raise LmscopeError(f"the {what} atoms must be an iterable of atoms, got {xs!r}") from None
    return tuple(dict.fromkeys(_atom_text(x) for x in items))


def _show(pos, neg) -> str:
    parts = [f"({a})" for a in pos] + [f"(not ({a}))" for a in neg]
    return " ".join(parts) if parts else "(and)"


def achieve(world, task, state, positive, negative=(), *, max_states: int = 20_000):
    """Breadth-first search over ``world``'s primitive actions from ``state`` for a state where every atom of
    ``positive`` holds and none of ``negative`` does (ground atoms, ``"pred a b"`` strings or
    :class:`~lmscope.planning.pddl.Atom`); at most ``max_states`` states are expanded.

    Returns ``(reach, new_state)``: ``new_state`` is the state after ``reach.actions`` (a copy; ``state`` is
    not modified), or an unchanged copy of ``state`` when ``reach.ok`` is False."""
    max_states = check_int("max_states", max_states, 1)
    pos, neg = _atoms(positive, "positive"), _atoms(negative, "negative")
    skeleton = world.skeleton_domain()
    known = {p.name for p in skeleton.predicates}
    for a in (*pos, *neg):
        if a.split(" ", 1)[0] not in known:
            raise LmscopeError(f"unknown predicate in the subgoal atom ({a}): the {world.name} domain has "
                               f"{', '.join(sorted(known))}")
    start = world.copy_state(state)
    goal = _show(pos, neg)
    clash = next((a for a in pos if a in neg), None)
    if clash is not None:
        return Reach(False, (), 0, f"no state satisfies {goal}: ({clash}) is both required and excluded"), start
    static = set(skeleton.static)
    s_pos = [a for a in pos if a.split(" ", 1)[0] in static]
    s_neg = [a for a in neg if a.split(" ", 1)[0] in static]
    if s_pos or s_neg:
        held = world.atoms(task, start, {a.split(" ", 1)[0] for a in (*s_pos, *s_neg)})
        bad = next((f"({a}) is false" for a in s_pos if a not in held), None)
        bad = bad or next((f"({a}) is true" for a in s_neg if a in held), None)
        if bad is not None:
            return Reach(False, (), 0, f"no state satisfies {goal}: the static atom {bad} and no action "
                         "changes it"), start
    d_pos = frozenset(a for a in pos if a not in s_pos)
    d_neg = frozenset(a for a in neg if a not in s_neg)
    preds = {a.split(" ", 1)[0] for a in (*d_pos, *d_neg)}

    def satisfied(s) -> bool:
        if not preds:
            return True
        now = world.atoms(task, s, preds)
        return d_pos <= now and not (d_neg & now)

    if satisfied(start):
        return Reach(True, (), 0, "already holds"), start
    # nodes: (state or None once expanded, parent index, action from the parent)
    nodes: list[list] = [[start, -1, None]]
    visited = {world.state_key(start)}
    expanded = 0
    while expanded < len(nodes):
        if expanded >= max_states:
            return Reach(False, (), expanded, f"no state within the bound of {max_states:,} states satisfies "
                         f"{goal}"), world.copy_state(state)
        node = nodes[expanded]
        s, node[0] = node[0], None
        here = expanded
        expanded += 1
        for act in world.primitive_actions(task, s):
            nxt = world.copy_state(s)
            if world.step(task, nxt, act) is not None:
                continue
            key = world.state_key(nxt)
            if key in visited:
                continue
            visited.add(key)
            nodes.append([nxt, here, act])
            if satisfied(nxt):
                path, i = [], len(nodes) - 1
                while i > 0:
                    path.append(nodes[i][2])
                    i = nodes[i][1]
                path.reverse()
                return Reach(True, tuple(path), expanded, f"reached in {len(path)} actions"), nxt
    return Reach(False, (), expanded, f"search space exhausted after {expanded:,} states: no reachable state "
                 f"satisfies {goal}"), world.copy_state(state)


def execute_operator(world, task, state, operator: Operator, args, *, max_states: int = 20_000):
    """Achieve the effects of ``operator`` grounded with ``args`` (object names in the order of
    ``operator.parameters``): :func:`achieve` with the add effects as ``positive`` and the delete effects
    that are not also added as ``negative``. Returns ``(reach, new_state)``."""
    if not isinstance(operator, Operator):
        raise LmscopeError(f"execute_operator needs a PDDL Operator, got {type(operator).__name__}")
    if isinstance(args, str):
        args = args.split()
    args = tuple(str(a).lower() for a in args)
    if len(args) != len(operator.parameters):
        raise LmscopeError(f"{operator.name} takes {len(operator.parameters)} arguments "
                           f"({' '.join(v for v, _ in operator.parameters) or 'none'}), got {len(args)}: "
                           f"{' '.join(args) or 'none'}")
    binding = {v: a for (v, _), a in zip(operator.parameters, args)}
    add = [_atom_text(ground(a, binding)) for a in operator.add]
    delete = [_atom_text(ground(a, binding)) for a in operator.delete]
    return achieve(world, task, state, add, [a for a in delete if a not in add], max_states=max_states)
