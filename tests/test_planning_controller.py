"""The low-level controller: breadth-first search over primitive actions for a subgoal, on planted
states with known shortest lengths, impossible and already-true subgoals, and operators (hand-written
high-level ones and the oracle domain's own, executed along every oracle plan)."""

from __future__ import annotations

import json

import pytest

from lmscope.errors import LmscopeError
from lmscope.planning.controller import Reach, achieve, execute_operator
from lmscope.planning.household import Household, _receptacles
from lmscope.planning.minecraft import Minecraft
from lmscope.planning.pddl import Atom, parse_domain, parse_operators
from lmscope.planning.planner import available_planners
from lmscope.planning.worlds import Task, get_world, oracle_plan

needs_planner = pytest.mark.skipif(not available_planners(), reason="no planner installed")


def _mc_task(sites, floor, inventory=(), agent="t-0-0", size=5, slots=3, goal="has wood"):
    spec = {"size": size, "slots": slots, "sites": sites, "agent": agent, "inventory": list(inventory),
            "floor": floor}
    return Task("planted", "minecraft", "train", "planted", "craft", (goal,), (), spec)


def _hh_task(objects, agent="countertop-1", opened=()):
    spec = {"receptacles": [r[0] for r in _receptacles()], "objects": objects, "agent": agent,
            "opened": list(opened)}
    return Task("planted", "household", "train", "planted", "heat-place", ("hot apple-1",), (), spec)


def _replay(world, task, state, reach):
    """Run ``reach.actions`` with the simulator from ``state`` (on a copy); the resulting state."""
    s = world.copy_state(state)
    for act in reach.actions:
        assert world.step(task, s, act) is None, act
    return s


# ---------------------------------------------------------------- planted shortest lengths
@pytest.mark.parametrize("target,d", [("t-0-0", 0), ("t-1-0", 1), ("t-2-3", 5), ("t-4-4", 8), ("t-3-1", 4)])
def test_moves_to_a_tile_at_manhattan_distance(target, d):
    world = Minecraft()
    task = _mc_task({"t-2-2": "tree"}, {"t-1-1": "axe"})
    state = world.initial_state(task)
    reach, new = achieve(world, task, state, [f"agent-at {target}"])
    assert reach.ok and len(reach.actions) == d and all(a[0] == "move-to" for a in reach.actions)
    assert reach.reason == ("already holds" if d == 0 else f"reached in {d} actions")
    assert new.agent == target and state.agent == "t-0-0"  # the input state is not modified
    assert world.state_key(_replay(world, task, state, reach)) == world.state_key(new)


def test_pick_up_an_item_on_the_agents_tile():
    world = Minecraft()
    task = _mc_task({"t-2-2": "tree"}, {"t-0-0": "axe"}, inventory=["coal"])
    state = world.initial_state(task)
    reach, new = achieve(world, task, state, ["(HAS axe)"])
    assert reach.ok and reach.actions == (("pick-up", ("axe", "t-0-0", "s1")),)
    assert "axe" in new.slots and "axe" not in state.slots
    # a specific slot, and an item two tiles away: two moves and a pick-up
    reach, new = achieve(world, task, state, [Atom("holding", ("s2", "axe"))])
    assert reach.actions == (("pick-up", ("axe", "t-0-0", "s2")),) and new.slots == ["coal", None, "axe"]
    task = _mc_task({}, {"t-1-1": "axe"})
    reach, _ = achieve(world, task, world.initial_state(task), ["has axe"])
    assert len(reach.actions) == 3 and reach.actions[-1][0] == "pick-up"


def test_mine_wood_needs_the_axe_first():
    """Axe at t-0-1, tree at t-3-0, agent at t-0-0: move, pick up, then 3 + 1 moves (Manhattan distance
    from t-0-1 to t-3-0) and the mining: 7 actions."""
    world = Minecraft()
    task = _mc_task({"t-3-0": "tree"}, {"t-0-1": "axe"})
    state = world.initial_state(task)
    reach, new = achieve(world, task, state, ["has wood"])
    assert reach.ok and len(reach.actions) == 7 and reach.actions[-1][0] == "mine-wood"
    assert "wood" in new.slots and reach.expanded > 7
    # a negative subgoal: leave the start tile
    reach, new = achieve(world, task, state, [], ["agent-at t-0-0"])
    assert reach.ok and len(reach.actions) == 1 and new.agent != "t-0-0"


def test_household_hot_apple():
    """The apple in the closed cabinet: goto, open, pick, goto the microwave, open, heat (6); with the
    microwave already open, 5; holding the apple at the open microwave, 1."""
    world = Household()
    task = _hh_task({"apple-1": "cabinet-1", "mug-1": "table-1"})
    state = world.initial_state(task)
    reach, new = achieve(world, task, state, ["hot apple-1"])
    assert reach.ok and [a[0] for a in reach.actions] == ["goto", "open", "pick", "goto", "open", "heat"]
    assert ("hot", "apple-1") in new.props and not state.props
    task = _hh_task({"apple-1": "cabinet-1", "mug-1": "table-1"}, opened=["microwave-1"])
    reach, _ = achieve(world, task, world.initial_state(task), ["hot apple-1"])
    assert len(reach.actions) == 5
    reach, after = achieve(world, task, new, ["hot apple-1", "in apple-1 table-1"])
    assert reach.ok and [a[0] for a in reach.actions] == ["goto", "put"]
    assert world.goal_holds(task, after)


# ---------------------------------------------------------------- trivial, impossible, bad input
def test_already_true_subgoal():
    world = Minecraft()
    task = _mc_task({"t-2-2": "tree"}, {}, inventory=["axe"])
    state = world.initial_state(task)
    reach, new = achieve(world, task, state, ["has axe", "agent-at t-0-0", "tree t-2-2"], ["has wood"])
    assert reach == Reach(True, (), 0, "already holds") and new is not state
    assert world.state_key(new) == world.state_key(state)


def test_impossible_subgoal_exhausts_or_hits_the_bound():
    world = Minecraft()
    # a 2 x 2 grid with nothing on it: 4 states (the agent's tiles), no bed anywhere
    task = _mc_task({}, {}, size=2)
    state = world.initial_state(task)
    reach, new = achieve(world, task, state, ["has bed"])
    assert not reach.ok and reach.actions == () and reach.expanded == 4
    assert reach.reason.startswith("search space exhausted after 4 states") and "(has bed)" in reach.reason
    assert world.state_key(new) == world.state_key(state) and new is not state
    # a full map without a bed station: the bound stops the search
    task = _mc_task({"t-2-2": "tree", "t-1-3": "work-station"}, {"t-0-1": "axe", "t-4-4": "coal"})
    state = world.initial_state(task)
    key = world.state_key(state)
    reach, new = achieve(world, task, state, ["has bed"], max_states=500)
    assert not reach.ok and reach.expanded == 500
    assert reach.reason == "no state within the bound of 500 states satisfies (has bed)"
    assert world.state_key(state) == key and world.state_key(new) == key
    # a static atom that is false never becomes true: no search at all
    reach, _ = achieve(world, task, state, ["has wood", "adjacent t-0-0 t-4-4"])
    assert not reach.ok and reach.expanded == 0 and "static atom (adjacent t-0-0 t-4-4) is false" in reach.reason
    reach, _ = achieve(world, task, state, ["has axe"], ["has axe"])
    assert not reach.ok and "both required and excluded" in reach.reason


def test_bad_arguments():
    world = Minecraft()
    task = _mc_task({}, {}, size=2)
    state = world.initial_state(task)
    for bad in (0, -3, 2.5, "many"):
        with pytest.raises(LmscopeError, match="max_states"):
            achieve(world, task, state, ["has axe"], max_states=bad)
    with pytest.raises(LmscopeError, match="unknown predicate.*holds-tight"):
        achieve(world, task, state, ["holds-tight s0 axe"])
    with pytest.raises(LmscopeError, match="not ground"):
        achieve(world, task, state, ["has ?x"])
    with pytest.raises(LmscopeError, match="string or an Atom"):
        achieve(world, task, state, [42])


def test_reach_to_dict_is_json():
    world = Minecraft()
    task = _mc_task({}, {}, size=3)
    reach, _ = achieve(world, task, world.initial_state(task), ["agent-at t-1-1"])
    d = json.loads(json.dumps(reach.to_dict()))
    assert d["ok"] and len(d["actions"]) == 2 and d["actions"][0][0] == "move-to" and d["reason"] == reach.reason


# ---------------------------------------------------------------- operators
def test_a_hand_written_high_level_operator():
    world = Minecraft()
    task = next(t for t in world.make_tasks(40, 20, 0) if t.recipe and t.recipe[0] == "mine-wood")
    dom = world.skeleton_domain()
    [op] = parse_operators("(:action get-wood :parameters () :precondition (and) :effect (and (has wood)))",
                           dom, confirm=False)
    state = world.initial_state(task)
    reach, new = execute_operator(world, task, state, op, ())
    assert reach.ok and reach.actions[-1][0] == "mine-wood" and "wood" in new.slots
    assert world.goal_holds(task, new)
    with pytest.raises(LmscopeError, match="get-wood takes 0 arguments"):
        execute_operator(world, task, state, op, ("t-0-0",))
    # household: heat any object, then put it somewhere
    hh = Household()
    task = _hh_task({"apple-1": "fridge-1", "mug-1": "table-1"}, agent="sink-1")
    ops = parse_operators("(:action heat-obj :parameters (?o - thing) :precondition (and) :effect (and (hot ?o)))"
                          "(:action place-obj :parameters (?o - thing ?r - receptacle) :precondition (and)"
                          " :effect (and (in ?o ?r) (hand-empty) (not (holding ?o))))",
                          hh.skeleton_domain(), confirm=False)
    reach, s = execute_operator(hh, task, hh.initial_state(task), ops[0], ("apple-1",))
    assert reach.ok and [a[0] for a in reach.actions] == ["goto", "open", "pick", "goto", "open", "heat"]
    reach, s = execute_operator(hh, task, s, ops[1], ("apple-1", "table-1"))
    assert reach.ok and [a[0] for a in reach.actions] == ["goto", "put"] and hh.goal_holds(task, s)


@needs_planner
def test_the_oracle_mine_wood_operator_with_a_plans_args():
    world = Minecraft()
    task = next(t for t in world.make_tasks(40, 20, 0) if t.recipe and t.recipe[0] == "mine-wood")
    res = oracle_plan(world, task, time_limit=60)
    i = next(i for i, (n, _) in enumerate(res.plan.actions) if n == "mine-wood")
    state = world.initial_state(task)
    for act in res.plan.actions[:i]:
        assert world.step(task, state, act) is None
    op = parse_domain(world.oracle_domain()).operator("mine-wood")
    reach, new = execute_operator(world, task, state, op, res.plan.actions[i][1])
    assert reach.ok and reach.actions == (res.plan.actions[i],)
    # from the start state the controller finds its own way to the same effects
    t, _ts, os_ = res.plan.actions[i][1]
    reach, new = execute_operator(world, task, world.initial_state(task), op, (t, "s9", os_))
    assert reach.ok and new.slots[int(os_[1:])] == "wood" and len(reach.actions) <= i + 1


def _run_oracle_plans(name, tasks):
    world = get_world(name)
    dom = parse_domain(world.oracle_domain())
    for task in tasks:
        res = oracle_plan(world, task, time_limit=60)
        assert res.plan.solved, task.id
        state = world.initial_state(task)
        for act_name, args in res.plan.actions:
            reach, state = execute_operator(world, task, state, dom.operator(act_name), args)
            assert reach.ok, (task.id, act_name, args, reach.reason)
            assert len(reach.actions) <= 1  # each oracle step is one primitive action (or already holds)
        assert world.goal_holds(task, state), task.id


@needs_planner
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_oracle_plans_step_by_step_small(name):
    world = get_world(name)
    tasks = world.make_tasks(40, 20, 0)
    _run_oracle_plans(name, tasks[:3] + tasks[40:42])


@needs_planner
@pytest.mark.slow
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_oracle_plans_step_by_step_every_default_task(name):
    _run_oracle_plans(name, get_world(name).make_tasks(40, 20, 0))
