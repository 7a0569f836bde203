"""The worlds' state abstraction: the atoms of a state agree with the PDDL problem at the start and with
the oracle domain's semantics after every action (over the oracle plans and seeded random walks), the
primitive actions cover every action the oracle domain allows, and the skeleton domain plans."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from lmscope.planning.household import Household
from lmscope.planning.minecraft import Minecraft
from lmscope.planning.pddl import Atom, parse_domain, parse_problem
from lmscope.planning.planner import available_planners, ground, plan
from lmscope.planning.worlds import get_world, oracle_plan

needs_planner = pytest.mark.skipif(not available_planners(), reason="no planner installed")


def _text(atom: Atom) -> str:
    return " ".join((atom.pred, *atom.args))


def _applicable(dom, objects: dict, atoms: frozenset) -> dict:
    """Every ground action of ``dom`` whose preconditions hold in ``atoms``, with its PDDL successor:
    {(name, args): successor atoms}. Bindings come from matching the positive preconditions; parameters
    they leave free range over every object of their type."""
    by_pred: dict[str, list[tuple]] = {}
    for a in atoms:
        parts = a.split()
        by_pred.setdefault(parts[0], []).append(tuple(parts[1:]))
    out = {}
    for op in dom.operators:
        pos = [lit.atom for lit in op.preconditions if lit.positive]

        def bindings(i, b, pos=pos):
            if i == len(pos):
                yield b
                return
            for args in by_pred.get(pos[i].pred, ()):
                nb = dict(b)
                if len(args) == len(pos[i].args) and all(
                        (nb.setdefault(x, v) == v) if x.startswith("?") else x == v
                        for x, v in zip(pos[i].args, args)):
                    yield from bindings(i + 1, nb)

        for b in bindings(0, {}):
            free = [(v, t) for v, t in op.parameters if v not in b]
            choices = [[o for o, ot in objects.items() if dom.is_subtype(ot, t)] for _, t in free]
            for combo in itertools.product(*choices):
                full = {**b, **dict(zip((v for v, _ in free), combo))}
                if not all(dom.is_subtype(objects[full[v]], t) for v, t in op.parameters):
                    continue
                if any(not lit.positive and _text(ground(lit.atom, full)) in atoms for lit in op.preconditions):
                    continue
                nxt = (set(atoms) - {_text(ground(a, full)) for a in op.delete}) | {
                    _text(ground(a, full)) for a in op.add}
                out[(op.name, tuple(full[v] for v, _ in op.parameters))] = frozenset(nxt)
    return out


def _check_state(world, task, dom, objects, state) -> dict:
    """At ``state``: the simulator and the oracle domain agree on every primitive action listed and every
    action the domain allows; returns the allowed actions with their successors."""
    now = world.atoms(task, state)
    allowed = _applicable(dom, objects, now)
    listed = world.primitive_actions(task, state)
    assert len(listed) == len(set(listed)) and len(listed) <= 40, listed
    assert listed == world.primitive_actions(task, world.copy_state(state))  # deterministic
    for act, succ in allowed.items():
        # every action the domain allows is listed, except a no-op (household: goto where the agent is)
        assert act in listed or succ == now, (task.id, act)
    for act in set(listed) | set(allowed):
        s = world.copy_state(state)
        why = world.step(task, s, act)
        if act in allowed:
            assert why is None, (task.id, act, why)
            assert world.atoms(task, s) == allowed[act], (task.id, act, world.atoms(task, s) ^ allowed[act])
        else:
            assert why is not None, (task.id, act, "the simulator allows what the domain does not")
            assert world.state_key(s) == world.state_key(state)
    return allowed


def _setup(world, task):
    dom = parse_domain(world.oracle_domain())
    prob = parse_problem(world.problem(task))
    return dom, {**dict(dom.constants), **prob.objects}


# ---------------------------------------------------------------- the start state
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_atoms_of_the_start_state_are_the_problems_init(name, seed):
    world = get_world(name)
    for task in world.make_tasks(40, 20, seed):
        init = frozenset(_text(a) for a in parse_problem(world.problem(task)).init)
        state = world.initial_state(task)
        assert world.atoms(task, state) == init, task.id
        # asking for some predicates gives exactly those atoms
        some = {"agent-at", "adjacent", "has"} if name == "minecraft" else {"agent-at", "closed", "is-fridge"}
        assert world.atoms(task, state, some) == {a for a in init if a.split()[0] in some}


@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_copy_and_key(name):
    world = get_world(name)
    task = world.make_tasks(4, 2, 0)[0]
    s = world.initial_state(task)
    c = world.copy_state(s)
    assert world.state_key(c) == world.state_key(s) and hash(world.state_key(s)) == hash(world.state_key(c))
    act = next(a for a in world.primitive_actions(task, c) if a[0] not in ("move-to", "goto"))\
        if name == "household" else world.primitive_actions(task, c)[0]
    assert world.step(task, c, act) is None
    assert world.state_key(c) != world.state_key(s)
    assert world.state_key(s) == world.state_key(world.initial_state(task))  # the original is untouched


# ---------------------------------------------------------------- agreement with the oracle domain
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_atoms_follow_the_oracle_domain_along_random_walks(name):
    """Seeded random walks of successful actions (biased away from moves): at every state the simulator and
    the PDDL semantics agree. (Crafting and the household's treatments are covered along the oracle plans.)"""
    world = get_world(name)
    kinds = set()
    for task in world.make_tasks(6, 3, 2):
        dom, objects = _setup(world, task)
        rng = random.Random(f"walk-{task.id}")
        state = world.initial_state(task)
        for _ in range(50):
            allowed = _check_state(world, task, dom, objects, state)
            acts = sorted(allowed)
            other = [a for a in acts if a[0] not in ("move-to", "goto")]
            act = rng.choice(other if other and rng.random() < 0.6 else acts)
            assert world.step(task, state, act) is None
            kinds.add(act[0] if act[0].startswith(("move", "goto", "pick", "put", "place", "open", "close"))
                      else act[0].split("-")[0])
    want = {"move-to", "pick-up", "place", "mine"} if name == "minecraft" else \
        {"goto", "pick", "put", "open", "close"}
    assert want <= kinds, kinds


@needs_planner
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_atoms_follow_the_oracle_domain_along_oracle_plans(name):
    world = get_world(name)
    used = set()
    for task in world.make_tasks(4, 2, 0):
        dom, objects = _setup(world, task)
        res = oracle_plan(world, task, time_limit=60)
        assert res.success
        state = world.initial_state(task)
        for act in res.plan.actions:
            allowed = _check_state(world, task, dom, objects, state)
            assert act in allowed and world.step(task, state, act) is None
            used.add(act[0].split("-")[0])
        _check_state(world, task, dom, objects, state)
        assert world.goal_holds(task, state)
    assert {"mine", "craft"} <= used if name == "minecraft" else {"heat", "cool", "clean", "slice"} <= used


def test_primitive_actions_in_a_planted_state():
    world = Minecraft()
    spec = {"size": 3, "slots": 3, "sites": {"t-1-1": "furnace"}, "agent": "t-1-1",
            "inventory": ["iron-ore", "coal"], "floor": {"t-1-1": "axe"}}
    task = replace(world.make_tasks(1, 1, 0)[0], spec=spec)
    acts = world.primitive_actions(task, world.initial_state(task))
    assert acts == [("move-to", ("t-1-1", "t-2-1")), ("move-to", ("t-1-1", "t-0-1")),
                    ("move-to", ("t-1-1", "t-1-2")), ("move-to", ("t-1-1", "t-1-0")),
                    ("pick-up", ("axe", "t-1-1", "s2")), ("craft-iron-ingot", ("t-1-1", "s0", "s1"))]


# ---------------------------------------------------------------- the skeleton domain
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_skeleton_domain(name):
    world = get_world(name)
    full = parse_domain(world.oracle_domain())
    sk = world.skeleton_domain()
    assert tuple(op.name for op in sk.operators) == world.known_actions
    assert world.known_actions == (("move-to", "pick-up", "place") if name == "minecraft"
                                   else ("goto", "pick", "put", "open", "close"))
    assert sk.static == full.static and sk.predicates == full.predicates and sk.constants == full.constants
    assert sk.name == full.name and sk.types == full.types
    # predicates only the unknown actions change are not static (the agent must learn those actions)
    assert ("has" if name == "minecraft" else "hot") not in sk.static
    assert world.skeleton_domain() is sk  # cached
    again = parse_domain(sk.to_pddl(), static=sk.static)
    assert again.operators == sk.operators


@needs_planner
def test_skeleton_domain_plans():
    world = Minecraft()
    task = world.make_tasks(3, 1, 0)[0]
    prob = replace(parse_problem(world.problem(task)), goal=(Atom("agent-at", ("t-0-0",)),))
    res = plan(world.skeleton_domain().to_pddl(), prob.to_pddl(), time_limit=60)
    assert res.solved and all(n == "move-to" for n, _ in res.actions)
    x, y = map(int, task.spec["agent"].split("-")[1:])
    assert len(res.actions) >= x + y
    state = world.initial_state(task)
    assert all(world.step(task, state, a) is None for a in res.actions) and state.agent == "t-0-0"
    # household: a pick-and-place task needs only the known actions
    hh = Household()
    task = next(t for t in hh.make_tasks(8, 2, 0) if t.template == "pick-place")
    res = plan(hh.skeleton_domain().to_pddl(), hh.problem(task), time_limit=60)
    assert res.solved and hh.execute(task, res.actions).success
