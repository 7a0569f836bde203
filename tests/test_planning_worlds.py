"""The planning worlds: seeded tasks and splits, the simulators' rules with planted failures, and the
ground-truth domains solving every generated task through the planner, the plans running in the
simulators."""

from __future__ import annotations

import pytest

from lmscope.errors import LmscopeError
from lmscope.planning import minecraft as mc
from lmscope.planning.household import HELDOUT_TEMPLATES, Household
from lmscope.planning.minecraft import Minecraft
from lmscope.planning.pddl import parse_domain, validate
from lmscope.planning.planner import available_planners, validate_plan
from lmscope.planning.worlds import Task, get_world, oracle_plan

needs_planner = pytest.mark.skipif(not available_planners(), reason="no planner installed")


def _check_all_solved(world, tasks):
    """Every task: planned with the oracle domain, the plan runs in the simulator and agrees with the
    PDDL semantics; returns the operator names of each task's plan."""
    used = {}
    for task in tasks:
        res = oracle_plan(world, task, time_limit=60)
        assert res.plan.solved, (task.id, task.instruction, res.plan.status, res.plan.message)
        assert res.execution.success, (task.id, res.execution)
        assert validate_plan(world.oracle_domain(), world.problem(task), res.plan.actions).ok
        used[task.id] = {name for name, _ in res.plan.actions}
    return used


# ---------------------------------------------------------------- the rules and the registry
def test_minecraft_rules():
    assert len(mc.MINING_RULES) >= 11 and len(mc.CRAFTING_RULES) >= 15
    for _name, _station, ings, out in mc.CRAFTING_RULES:
        assert 1 <= len(ings) <= 2 and len(set(ings)) == len(ings) and out not in ings
    # every held-out rule makes an item that only held-out rules make or use
    for rule in mc.HELDOUT_RULES:
        out = mc.RULES[rule][3]
        assert all(r in mc.HELDOUT_RULES for r in mc.producers(out))


@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_oracle_domain_parses_and_validates(name):
    world = get_world(name)
    dom = parse_domain(world.oracle_domain())
    assert len(dom.operators) == (29 if name == "minecraft" else 9)
    for op in dom.operators:
        assert validate(op, dom).ok, (op.name, validate(op, dom).reason)


def test_unknown_world():
    with pytest.raises(LmscopeError, match="unknown world 'chess'"):
        get_world("chess")
    with pytest.raises(LmscopeError, match="n_train"):
        get_world("minecraft").make_tasks(0, 5, 0)


# ---------------------------------------------------------------- tasks
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_tasks_are_seeded(name):
    world = get_world(name)
    a, b = world.make_tasks(40, 20, 3), world.make_tasks(40, 20, 3)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]
    c = world.make_tasks(40, 20, 4)
    assert [t.to_dict() for t in a] != [t.to_dict() for t in c]
    assert len({t.id for t in a}) == 60
    assert [t.split for t in a].count("train") == 40 and [t.split for t in a].count("heldout") == 20


@pytest.mark.parametrize("seed", [0, 1])
def test_minecraft_heldout_tasks_need_new_recipes(seed):
    tasks = Minecraft().make_tasks(40, 20, seed)
    train_rules = {r for t in tasks if t.split == "train" for r in t.recipe}
    assert not train_rules & mc.HELDOUT_RULES
    for t in tasks:
        if t.split == "heldout":
            assert set(t.recipe) - train_rules, t
    # the instructions name what to make
    for t in tasks:
        item = t.goal[0].split()[1].replace("-", " ")
        assert t.instruction == f"mine {item}" if t.template == "mine" else item in t.instruction


@pytest.mark.parametrize("seed", [0, 1])
def test_household_heldout_templates(seed):
    tasks = Household().make_tasks(40, 20, seed)
    train = {t.template for t in tasks if t.split == "train"}
    held = {t.template for t in tasks if t.split == "heldout"}
    assert held == set(HELDOUT_TEMPLATES) and not train & held and len(train) == 4


# ---------------------------------------------------------------- planted simulator failures
def _mc_task(sites, floor, inventory=(), agent="t-0-0", slots=3, goal="has wood"):
    spec = {"size": 3, "slots": slots, "sites": sites, "agent": agent, "inventory": list(inventory),
            "floor": floor}
    return Task("planted", "minecraft", "train", "planted", "craft", (goal,), (), spec)


def test_minecraft_planted_failures():
    w = Minecraft()
    task = _mc_task({"t-1-0": "tree", "t-2-0": "work-station", "t-2-1": "furnace"}, {"t-0-0": "axe"},
                    goal="has wood-plank")
    good = [("pick-up", ("axe", "t-0-0", "s0")), ("move-to", ("t-0-0", "t-1-0")),
            ("mine-wood", ("t-1-0", "s0", "s1")), ("move-to", ("t-1-0", "t-2-0")),
            ("craft-wood-plank", ("t-2-0", "s1"))]
    assert w.execute(task, good).success
    # the tool left on the floor: mining fails at exactly that step
    r = w.execute(task, good[1:])
    assert (r.success, r.failed_at) == (False, 1) and "missing tool" in r.reason and "axe" in r.reason
    # crafting at the wrong station (the furnace)
    wrong = good[:3] + [("move-to", ("t-1-0", "t-1-1")), ("move-to", ("t-1-1", "t-2-1")),
                        ("craft-wood-plank", ("t-2-1", "s1"))]
    r = w.execute(task, wrong)
    assert r.failed_at == 5 and "wrong station" in r.reason and "furnace" in r.reason
    # not adjacent; not at the tile; no such site; missing ingredient
    r = w.execute(task, [("move-to", ("t-0-0", "t-2-0"))])
    assert r.failed_at == 0 and "not adjacent" in r.reason
    r = w.execute(task, [("pick-up", ("axe", "t-1-0", "s0"))])
    assert r.failed_at == 0 and "the agent is at t-0-0" in r.reason
    r = w.execute(task, good[:2] + [("mine-iron-ore", ("t-1-0", "s0", "s1"))])
    assert r.failed_at == 2 and "no iron-ore-vein" in r.reason
    r = w.execute(task, good[:2] + [("move-to", ("t-1-0", "t-2-0")), ("craft-wood-plank", ("t-2-0", "s1"))])
    assert r.failed_at == 3 and "missing ingredient" in r.reason
    # all ran but the goal does not hold; unknown action; wrong arity
    r = w.execute(task, good[:3])
    assert not r.success and r.failed_at is None and "goal" in r.reason
    assert "unknown action" in w.execute(task, [("fly", ("t-0-0",))]).reason
    assert "takes 3 arguments" in w.execute(task, [("pick-up", ("axe",))]).reason
    # actions as PDDL strings; garbage is a failed step, never an exception
    r = w.execute(task, ["(pick-up axe t-0-0 s0)", "(MOVE-TO t-0-0 t-1-0)", 42, ("mine-wood",)])
    assert r.failed_at == 2 and r.reason.startswith("malformed action")
    r = w.execute(task, ["(pick-up axe t-0-0 s0)", "()"])
    assert r.failed_at == 1 and "empty action" in r.reason


def test_minecraft_inventory_bound():
    w = Minecraft()
    task = _mc_task({"t-1-0": "tree", "t-0-1": "potato-plant"}, {"t-0-0": "axe", "t-1-1": "coal"},
                    inventory=["pickaxe"], slots=2)
    steps = [("pick-up", ("axe", "t-0-0", "s1")), ("move-to", ("t-0-0", "t-1-0")),
             ("mine-wood", ("t-1-0", "s1", "s0"))]
    r = w.execute(task, steps)
    assert r.failed_at == 2 and "inventory full" in r.reason  # s0 holds the pickaxe, s1 the axe
    r = w.execute(task, steps[:2] + [("move-to", ("t-1-0", "t-1-1")), ("pick-up", ("coal", "t-1-1", "s2"))])
    assert r.failed_at == 3 and "no inventory slot s2" in r.reason  # there are two slots only
    # dropping the pickaxe frees a slot
    ok = steps[:2] + [("place", ("pickaxe", "t-1-0", "s0")), ("mine-wood", ("t-1-0", "s1", "s0"))]
    assert w.execute(task, ok).success
    # one item on each tile's floor
    r = w.execute(task, ok + [("move-to", ("t-1-0", "t-0-0")), ("move-to", ("t-0-0", "t-0-1"))]
                  + [("place", ("wood", "t-0-1", "s0")), ("move-to", ("t-0-1", "t-0-0")),
                     ("move-to", ("t-0-0", "t-1-0")), ("mine-wood", ("t-1-0", "s1", "s0")),
                     ("move-to", ("t-1-0", "t-0-0")), ("move-to", ("t-0-0", "t-0-1")),
                     ("place", ("axe", "t-0-1", "s1"))])
    assert r.failed_at == 12 and "already holds wood" in r.reason
    # one item of each kind in the inventory
    task = _mc_task({}, {"t-0-0": "wood"}, inventory=["wood"])
    r = w.execute(task, [("pick-up", ("wood", "t-0-0", "s1"))])
    assert r.failed_at == 0 and "already holding wood" in r.reason


def _hh_task(objects, goal, agent="countertop-1", opened=()):
    from lmscope.planning.household import _receptacles

    spec = {"receptacles": [r[0] for r in _receptacles()], "objects": objects, "agent": agent,
            "opened": list(opened)}
    return Task("planted", "household", "train", "planted", "heat-place", tuple(goal), (), spec)


def test_household_planted_failures():
    w = Household()
    task = _hh_task({"potato-1": "cabinet-1", "knife-1": "drawer-1"}, ["hot potato-1", "in potato-1 table-1"])
    good = [("goto", ("countertop-1", "cabinet-1")), ("open", ("cabinet-1",)), ("pick", ("potato-1", "cabinet-1")),
            ("goto", ("cabinet-1", "microwave-1")), ("open", ("microwave-1",)), ("heat", ("potato-1", "microwave-1")),
            ("goto", ("microwave-1", "table-1")), ("put", ("potato-1", "table-1"))]
    assert w.execute(task, good).success
    r = w.execute(task, [good[0], good[2]])
    assert r.failed_at == 1 and "closed" in r.reason
    r = w.execute(task, good[:3] + [("goto", ("cabinet-1", "fridge-1")), ("open", ("fridge-1",)),
                                    ("heat", ("potato-1", "fridge-1"))])
    assert r.failed_at == 5 and "wrong receptacle" in r.reason and "microwave" in r.reason
    r = w.execute(task, good[:3] + [("goto", ("cabinet-1", "drawer-1")), ("open", ("drawer-1",)),
                                    ("pick", ("knife-1", "drawer-1"))])
    assert r.failed_at == 5 and "hands full" in r.reason
    r = w.execute(task, good[:3] + [("put", ("potato-1", "cabinet-1")), ("slice", ("potato-1", "knife-1", "cabinet-1"))])
    assert r.failed_at == 4 and "missing tool" in r.reason
    r = w.execute(task, good[:6])
    assert not r.success and r.failed_at is None


# ---------------------------------------------------------------- the oracle solves every task
@needs_planner
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_oracle_solves_generated_tasks_small(name):
    world = get_world(name)
    tasks = world.make_tasks(6, 4, 7)
    used = _check_all_solved(world, tasks)
    if name == "minecraft":
        train_ops = set().union(*(used[t.id] for t in tasks if t.split == "train"))
        for t in tasks:
            if t.split == "heldout":
                assert used[t.id] - train_ops, t.id  # a rule no training plan used


@needs_planner
def test_oracle_plan_with_a_planted_wrong_station():
    world = Minecraft()
    task = next(t for t in world.make_tasks(6, 4, 7) if t.template == "craft")
    res = oracle_plan(world, task, time_limit=60)
    i, (name, args) = next((i, a) for i, a in enumerate(res.plan.actions) if a[0].startswith("craft-"))
    station = mc.RULES[name][1]
    other = next(t for t, s in task.spec["sites"].items() if s != station)
    planted = list(res.plan.actions)
    # go to another site by a straight path of moves, then craft there: fails at the craft
    x0, y0 = map(int, args[0].split("-")[1:])
    x1, y1 = map(int, other.split("-")[1:])
    path, x, y = [], x0, y0
    while (x, y) != (x1, y1):
        nx, ny = (x + (x1 > x) - (x1 < x), y) if x != x1 else (x, y + (y1 > y) - (y1 < y))
        path.append(("move-to", (f"t-{x}-{y}", f"t-{nx}-{ny}")))
        x, y = nx, ny
    planted[i:i + 1] = path + [(name, (other, *args[1:]))]
    r = world.execute(task, planted)
    assert r.failed_at == i + len(path) and "wrong station" in r.reason


@needs_planner
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_oracle_solves_every_default_task(name, seed):
    """All 60 tasks of the default sizes: 11-17 s per world and seed with Fast Downward (cached after)."""
    world = get_world(name)
    tasks = world.make_tasks(40, 20, seed)
    used = _check_all_solved(world, tasks)
    if name == "minecraft":
        train_ops = set().union(*(used[t.id] for t in tasks if t.split == "train"))
        assert all(used[t.id] - train_ops for t in tasks if t.split == "heldout")
