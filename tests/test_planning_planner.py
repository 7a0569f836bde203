"""The planners on small typed domains with known answers: solutions that check, agreement between
Fast Downward and pyperplan, unsolvable problems, time limits, the cache; and the plan checker."""

import json
import subprocess
import sys
import time

import pytest
from _planning_domains import (
    CRAFTING,
    CRAFTING_PROBLEM,
    CRAFTING_UNSOLVABLE,
    DELIVERY,
    DELIVERY_PROBLEM,
    DELIVERY_UNSOLVABLE,
    pigeonhole,
)

from lmscope.errors import LmscopeError
from lmscope.planning import parse_domain, parse_problem, plan, planner_runs, validate_plan
from lmscope.planning import planner as planner_mod

SOLVABLE = {"delivery": (DELIVERY, DELIVERY_PROBLEM), "crafting": (CRAFTING, CRAFTING_PROBLEM)}
UNSOLVABLE = {"delivery": (DELIVERY, DELIVERY_UNSOLVABLE), "crafting": (CRAFTING, CRAFTING_UNSOLVABLE)}
PLANNERS = ["fast-downward", "pyperplan"]


def _need(planner):
    if planner == "fast-downward":
        pytest.importorskip("up_fast_downward", reason="Fast Downward (up-fast-downward) is part of the planning extra")
    else:
        pytest.importorskip("pyperplan", reason="pyperplan is part of the planning extra")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("planner", PLANNERS)
@pytest.mark.parametrize("world", list(SOLVABLE))
def test_planners_solve_small_typed_domains_with_valid_plans(planner, world, fresh_cache):
    _need(planner)
    dtext, ptext = SOLVABLE[world]
    res = plan(dtext, ptext, planner=planner, time_limit=30)
    assert res.status == "solved", res
    assert res.planner == planner and res.seconds > 0 and not res.cached
    check = validate_plan(dtext, ptext, res.actions)
    assert check.ok, check
    if world == "delivery":  # office -> hall -> kitchen, pick, -> hall -> office, drop, -> hall: 7 steps at least
        assert len(res.actions) >= 7
    else:  # mine wood twice, two planks, a stick, the ladder, and the walks
        assert [a for a, _ in res.actions].count("mine") >= 2 and res.actions[-1][0] == "craft2"


@pytest.mark.parametrize("world", list(SOLVABLE))
def test_planners_agree_on_solvability(world, fresh_cache):
    for p in PLANNERS:
        _need(p)
    got = {p: (plan(*SOLVABLE[world], planner=p).status, plan(*UNSOLVABLE[world], planner=p).status)
           for p in PLANNERS}
    assert got == {p: ("solved", "unsolvable") for p in PLANNERS}


def _live_group_members(pgid: int, wait: float = 3.0) -> list[str]:
    """The processes of group ``pgid`` still running (not zombies waiting to be reaped), after up to ``wait`` s."""
    deadline = time.monotonic() + wait
    while True:
        ps = subprocess.run(["ps", "-eo", "pgid=,stat=,args="], capture_output=True, text=True).stdout
        live = [ln for ln in ps.splitlines() if ln.split()[0] == str(pgid) and not ln.split()[1].startswith("Z")]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.1)


@pytest.mark.parametrize("planner", PLANNERS)
def test_a_hard_problem_times_out_within_about_the_limit(planner, fresh_cache, monkeypatch):
    _need(planner)
    started = []
    real_popen = subprocess.Popen

    def spy(*a, **k):
        proc = real_popen(*a, **k)
        started.append(proc.pid)
        return proc

    monkeypatch.setattr(planner_mod.subprocess, "Popen", spy)
    dom, prob = pigeonhole(10)
    t0 = time.perf_counter()
    res = plan(dom, prob, planner=planner, time_limit=1.0)
    wall = time.perf_counter() - t0
    assert res.status == "timeout", res
    assert 1.0 <= res.seconds < 2.5 and wall < 3.0
    assert not res.actions and "time limit" in res.message
    # no planner process outlives the run: its whole process group (the driver and its children) is gone
    assert len(started) == 1
    assert _live_group_members(started[0]) == []
    # a timeout is not cached: the next call runs the planner again
    before = planner_runs()[planner]
    plan(dom, prob, planner=planner, time_limit=0.5)
    assert planner_runs()[planner] == before + 1


@pytest.mark.parametrize("planner", PLANNERS)
def test_cache_returns_the_same_result_without_running_the_planner(planner, fresh_cache):
    _need(planner)
    first = plan(DELIVERY, DELIVERY_PROBLEM, planner=planner)
    runs = planner_runs()[planner]
    again = [plan(DELIVERY, DELIVERY_PROBLEM, planner=planner) for _ in range(3)]
    assert planner_runs()[planner] == runs  # no planner process started
    assert all(a.cached and a.actions == first.actions and a.status == first.status for a in again)
    assert first.seconds == again[0].seconds  # the original run's time is kept
    files = list(fresh_cache.glob("planner/*/*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["status"] == "solved"
    # another time limit, problem, or cache=False is a new run
    plan(DELIVERY, DELIVERY_PROBLEM, planner=planner, time_limit=9.0)
    plan(DELIVERY, DELIVERY_PROBLEM, planner=planner, cache=False)
    assert planner_runs()[planner] == runs + 2
    # a corrupt entry is replaced by a fresh run
    files[0].write_text("{not json")
    res = plan(DELIVERY, DELIVERY_PROBLEM, planner=planner)
    assert not res.cached and res.status == "solved" and planner_runs()[planner] == runs + 3


def test_objects_and_text_plan_alike(fresh_cache):
    pytest.importorskip("pyperplan")
    dom, prob = parse_domain(CRAFTING), parse_problem(CRAFTING_PROBLEM)
    a = plan(dom, prob, planner="pyperplan")
    b = plan(dom.to_pddl(), prob.to_pddl(), planner="pyperplan")
    assert a.status == b.status == "solved" and b.cached and a.actions == b.actions


def test_pyperplan_refuses_negative_preconditions_as_an_error_result(fresh_cache):
    pytest.importorskip("pyperplan")
    text = DELIVERY.replace(":typing)", ":typing :negative-preconditions)").replace(
        "(door ?a ?b))", "(door ?a ?b) (not (robot-at ?r ?b)))")
    res = plan(text, DELIVERY_PROBLEM, planner="pyperplan")
    assert res.status == "error" and "STRIPS with types only" in res.message
    if "fast-downward" in planner_mod.available_planners():
        ok = plan(text, DELIVERY_PROBLEM, planner="fast-downward")
        assert ok.status == "solved" and validate_plan(text, DELIVERY_PROBLEM, ok.actions).ok


def test_a_broken_problem_is_an_error_result_not_a_crash(fresh_cache):
    for p in planner_mod.available_planners():
        res = plan(DELIVERY, "(define (problem x) (:domain delivery) (:objects a - nosuchtype) (:goal (at a a)))",
                   planner=p)
        assert res.status == "error" and res.message, res


def test_bad_arguments_are_lmscope_errors(fresh_cache):
    with pytest.raises(LmscopeError, match="unknown planner"):
        plan(DELIVERY, DELIVERY_PROBLEM, planner="ff")
    with pytest.raises(LmscopeError, match="time_limit"):
        plan(DELIVERY, DELIVERY_PROBLEM, time_limit=0)
    with pytest.raises(LmscopeError, match="domain"):
        plan(42, DELIVERY_PROBLEM)


def test_no_planner_installed_names_the_extra(monkeypatch):
    monkeypatch.setattr(planner_mod, "available_planners", lambda: [])
    with pytest.raises(LmscopeError, match=r"pip install 'lmscope\[planning\]'"):
        plan(DELIVERY, DELIVERY_PROBLEM)
    with pytest.raises(LmscopeError, match=r"fast-downward is not installed; pip install"):
        plan(DELIVERY, DELIVERY_PROBLEM, planner="fast-downward")


def test_auto_falls_back_to_pyperplan_with_one_note(monkeypatch, fresh_cache, capsys):
    pytest.importorskip("pyperplan")
    monkeypatch.setattr(planner_mod, "available_planners", lambda: ["pyperplan"])
    monkeypatch.setattr(planner_mod, "_noted", False)
    assert plan(DELIVERY, DELIVERY_PROBLEM).planner == "pyperplan"
    assert plan(CRAFTING, CRAFTING_PROBLEM).planner == "pyperplan"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "planning with pyperplan" in err[0]


def test_missing_planner_module_is_detected_in_a_fresh_process():
    """With up_fast_downward unimportable, auto planning picks pyperplan (checked in a child process)."""
    pytest.importorskip("pyperplan")
    code = ("import sys; sys.modules['up_fast_downward'] = None\n"
            "import importlib.util as u; real = u.find_spec\n"
            "u.find_spec = lambda n, *a: None if n == 'up_fast_downward' else real(n, *a)\n"
            "from lmscope.planning.planner import available_planners; print(available_planners())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['pyperplan']"


# ------------------------------------------------------------------------------------------ validate_plan
GOOD_PLAN = [("move", ("bot", "office", "hall")), ("move", ("bot", "hall", "kitchen")),
             ("pick", ("bot", "letter", "kitchen")), ("move", ("bot", "kitchen", "hall")),
             ("move", ("bot", "hall", "office")), ("drop", ("bot", "letter", "office")),
             ("move", ("bot", "office", "hall"))]


def test_validate_plan_accepts_a_hand_written_plan_and_tracks_state():
    check = validate_plan(DELIVERY, DELIVERY_PROBLEM, GOOD_PLAN)
    assert check.ok and check.failed_step is None
    from lmscope.planning import Atom
    assert Atom("at", ("letter", "office")) in check.state and Atom("free", ("bot",)) in check.state


@pytest.mark.parametrize("plan_, step, code", [
    (GOOD_PLAN[:2] + [("drop", ("bot", "letter", "kitchen"))], 2, "precondition"),  # not holding it
    ([("move", ("bot", "office", "kitchen"))], 0, "precondition"),  # no door
    (GOOD_PLAN[:3] + [("fly", ("bot",))], 3, "unknown-operator"),
    ([("move", ("bot", "office"))], 0, "wrong-arity"),
    ([("move", ("bot", "office", "moon"))], 0, "unknown-object"),
    ([("move", ("letter", "office", "hall"))], 0, "type-mismatch"),
    (GOOD_PLAN[:6], 6, "goal-not-reached"),
    ([], 0, "goal-not-reached"),
])
def test_validate_plan_names_the_first_failing_step(plan_, step, code):
    check = validate_plan(parse_domain(DELIVERY), parse_problem(DELIVERY_PROBLEM), plan_)
    assert not check.ok and check.failed_step == step and check.reason.startswith(code + ": "), check


def test_validate_plan_reports_the_unmet_precondition():
    check = validate_plan(DELIVERY, DELIVERY_PROBLEM, [("pick", ("bot", "letter", "office"))])
    # the robot is in the office, the letter is not
    assert check.reason == "precondition: (at letter office) does not hold before (pick bot letter office)"


def test_planner_results_are_a_part_of_the_lmscope_cache(fresh_cache):
    pytest.importorskip("pyperplan")
    from lmscope.cache import cache_info, clear

    plan(DELIVERY, DELIVERY_PROBLEM, planner="pyperplan")
    assert cache_info()["planner"]["files"] == 1
    runs = planner_runs()["pyperplan"]
    clear(["planner"])
    assert cache_info()["planner"]["files"] == 0
    assert not plan(DELIVERY, DELIVERY_PROBLEM, planner="pyperplan").cached
    assert planner_runs()["pyperplan"] == runs + 1
