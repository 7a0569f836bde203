"""The Ada loop: the readers of LM answers, the bookkeeping of scores, sampling and the library on a
scripted language model with known answers, logging and resume, bad input, and the baselines."""

from __future__ import annotations

import json
import random

import pytest

from lmscope.errors import LmscopeError
from lmscope.planning import prompts as P
from lmscope.planning.ada import AdaConfig, run_ada
from lmscope.planning.baselines import read_actions, run_baseline
from lmscope.planning.planner import available_planners
from lmscope.planning.worlds import get_world

needs_planner = pytest.mark.skipif(not available_planners(), reason="no planner installed")


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path_factory, monkeypatch):
    """Each test plans for real: the planner cache lives in a fresh folder."""
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path_factory.mktemp("lmscope-cache")))

# a high-level operator the controller can reach from any start of a wood task (it mines with the axe)
GET_WOOD = "t - tile)\n  :precondition (and (tree ?t))\n  :effect (and (has wood)))"
# a wrong one: it claims to give a bed as well, which no wood task's map can make
WRONG_WOOD = "t - tile)\n  :precondition (and (tree ?t))\n  :effect (and (has wood) (has bed)))"


class ScriptedLM:
    """A test double with known answers, keyed on the end of each prompt: it pins the loop's arithmetic.
    ``definitions``: the continuation of ``(:action NAME\\n  :parameters (?`` per sample."""

    spec = "scripted"

    def __init__(self, goals: dict, sketch: str, definitions: list[str], fail_after: int | None = None):
        self.goals, self.sketch, self.definitions = goals, sketch, definitions
        self.calls = []
        self.fail_after = fail_after

    def generate(self, prompts, *, max_tokens=64, temperature=0.0, top_p=1.0, n=1, stop=None, seed=0):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise LmscopeError("cannot reach the language model server at http://127.0.0.1:9 (connection refused)")
        out = []
        for p in prompts:
            self.calls.append(p)
            if p.endswith("Goal:"):
                instruction = p.rsplit("Task: ", 1)[1].split("\n")[0]
                out.append([self.goals.get(instruction, "(nonsense")] * n)
            elif p.endswith("Operators:"):
                out.append([self.sketch] * n)
            elif p.endswith(":parameters (?"):
                name = p.rsplit("(:action ", 1)[1].split("\n")[0]
                defs = self.definitions.get(name, []) if isinstance(self.definitions, dict) else self.definitions
                out.append([defs[k % len(defs)] if defs else "" for k in range(n)])
            else:
                out.append(["?"] * n)
        return out


def _wood_world():
    """Minecraft with only tasks whose goal is wood (the scripted LM knows their goal)."""
    world = get_world("minecraft")
    tasks = world.make_tasks(40, 6, 0)
    wood = [t for t in tasks if t.goal == ("has wood",)]
    assert wood, "seed 0 makes wood tasks"
    return world, {t.instruction: "(has wood)" for t in tasks if t.goal == ("has wood",)}


# ------------------------------------------------------------------------------------------ readers
def test_read_goal_accepts_atoms_and_rejects_with_reasons():
    world = get_world("household")
    task = world.make_tasks(4, 2, 0)[1]
    skel = world.skeleton_domain()
    from lmscope.planning.pddl import parse_problem

    prob = parse_problem(world.problem(task))
    obj = sorted(o for o, t in prob.objects.items() if t == "thing")[0]
    rec = sorted(o for o, t in prob.objects.items() if t == "receptacle")[0]
    assert P.read_goal(f" (and (clean {obj}) (in {obj} {rec})) and more", skel, prob) == (
        (f"clean {obj}", f"in {obj} {rec}"), None)
    assert P.read_goal(f"(hot {obj}) (hot {obj})", skel, prob) == ((f"hot {obj}",), None)
    for text, code in [("", "empty"), ("(and)", "empty"), ("(hot", "unparsable"), ("(warm apple-1)", "unknown-predicate"),
                       (f"(in {obj})", "wrong-arity"), ("(hot dragon-7)", "unknown-object"),
                       (f"(and (not (hot {obj})))", "unsupported")]:
        goal, why = P.read_goal(text, skel, prob)
        assert goal is None and why.split(":")[0] == code, (text, why)


def test_read_sketch_and_actions():
    assert P.read_sketch(" mine-wood, craft-plank craft-plank move-to\nnext line x-y", ("move-to",)) == (
        "mine-wood", "craft-plank")
    assert P.read_sketch("", ()) == ()
    assert len(P.read_sketch(" ".join(f"op-{i}" for i in range(20)), ())) == P.MAX_SKETCH
    assert read_actions("move-to t-0-0 t-0-1)\n(pick-up axe t-0-1 s0)\n\nTask") == [
        ("move-to", ("t-0-0", "t-0-1")), ("pick-up", ("axe", "t-0-1", "s0"))]
    assert read_actions("") == []


def test_prompts_hold_no_ground_truth_operator_at_the_first_iteration():
    world = get_world("minecraft")
    skel = world.skeleton_domain()
    text = P.definition_prompt(skel, "get-wood", [("mine wood", ["has wood"])], P.TOY_OPERATORS, toy=True)
    from lmscope.planning.pddl import parse_domain

    truth = [o.name for o in parse_domain(world.oracle_domain()).operators if o.name not in world.known_actions]
    assert truth and not any(f"(:action {n}\n" in text for n in truth)
    assert text.endswith(P.definition_prefix("get-wood"))


# ------------------------------------------------------------------------------------------ the loop
def test_config_checks():
    with pytest.raises(LmscopeError, match="between 0 and 1"):
        AdaConfig(threshold=1.5)
    with pytest.raises(LmscopeError, match="iterations"):
        AdaConfig(iterations=0)
    with pytest.raises(LmscopeError, match="unknown planner"):
        AdaConfig(planner="graphplan")


@needs_planner
def test_scores_sampling_and_library_on_a_scripted_lm(tmp_path):
    world, goals = _wood_world()
    lm = ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD])
    out = run_ada(world, lm, tmp_path / "run", iterations=2, n_train=40, n_heldout=6, definition_samples=2,
                  quiet=True)
    cands = {c["name"]: c for c in out["candidates"]}
    assert set(cands) == {"get-wood", "get-wood-v2"}
    good, bad = cands["get-wood"], cands["get-wood-v2"]
    assert "(has wood)" in good["pddl"] and "(has bed)" in bad["pddl"]
    # the good operator reaches its effect every time it runs, the wrong one never
    assert good["attempts"] >= 1 and good["successes"] == good["attempts"]
    assert bad["successes"] == 0
    assert [o["name"] for o in out["library"]] == ["get-wood"]
    n_wood = len(goals_of_split(world, "train", goals))
    assert out["history"][-1]["train_solved"] == n_wood
    # every other task got no readable goal: rejected with a reason, never a crash
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    reasons = {e["reason"].split(":")[0] for e in log if e["event"] == "task" and not e["solved"]}
    assert reasons == {"goal"}
    # the log replays the run: the attempts of the good operator are its successful runs in the log
    runs = [s for e in log if e["event"] == "execute" for s in e["steps"] if s["operator"] == "get-wood"]
    assert len(runs) == good["attempts"] and all(s["ok"] for s in runs)
    assert any(e["event"] == "lm" and e["kind"] == "define" for e in log)


def goals_of_split(world, split, goals):
    return [t for t in world.make_tasks(40, 6, 0) if t.split == split and t.instruction in goals]


def test_keep_probability_and_library_rule():
    from lmscope.planning.ada import OpRecord

    c = AdaConfig(threshold=0.5)
    r = OpRecord("x", "x", "", 0)
    assert r.keep_probability(c) == 0.5 and not r.in_library(c)
    r.successes, r.attempts = 1, 3
    assert r.keep_probability(c) == pytest.approx(2 / 5) and not r.in_library(c)
    r.successes, r.attempts = 2, 3
    assert r.keep_probability(c) == pytest.approx(3 / 5) and r.in_library(c)
    assert OpRecord("y", "y", "", 0).in_library(AdaConfig(learn=False))
    # sampling: the empirical keep rate matches the probability
    rng = random.Random(0)
    kept = sum(rng.random() < r.keep_probability(c) for _ in range(20000))
    assert abs(kept / 20000 - 0.6) < 0.02


@needs_planner
def test_interrupted_run_resumes_and_a_down_server_loses_nothing(tmp_path):
    world, goals = _wood_world()
    full = run_ada(world, ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD]), tmp_path / "a", iterations=2,
                   n_train=40, n_heldout=6, definition_samples=2, quiet=True)
    # the server goes down after a few calls: a clear error, the state is kept
    down = ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD], fail_after=45)
    with pytest.raises(LmscopeError, match="run the same command again to resume"):
        run_ada(world, down, tmp_path / "b", iterations=2, n_train=40, n_heldout=6, definition_samples=2,
                quiet=True)
    assert (tmp_path / "b" / "state.json").is_file()
    again = run_ada(world, ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD]), tmp_path / "b", iterations=2,
                    n_train=40, n_heldout=6, definition_samples=2, quiet=True)
    timing = ("seconds", "planner_seconds")
    assert [{k: v for k, v in h.items() if k not in timing} for h in again["history"]] == [
        {k: v for k, v in h.items() if k not in timing} for h in full["history"]]
    assert again["candidates"] == full["candidates"]
    events = lambda d: [json.loads(x)["event"] for x in (d / "log.jsonl").read_text().splitlines()]  # noqa: E731
    assert events(tmp_path / "b") == events(tmp_path / "a")
    # another configuration in the same folder is refused, fewer iterations too
    with pytest.raises(LmscopeError, match="another configuration"):
        run_ada(world, ScriptedLM(goals, "", []), tmp_path / "b", iterations=2, n_train=40, n_heldout=5,
                definition_samples=2, quiet=True)
    with pytest.raises(LmscopeError, match="another configuration"):
        run_ada(world, ScriptedLM(goals, "", []), tmp_path / "b", iterations=1, n_train=40, n_heldout=6,
                definition_samples=2, quiet=True)
    # more iterations continue the finished run, as if they had been asked for from the start
    lm = ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD])
    longer = run_ada(world, lm, tmp_path / "b", iterations=3, n_train=40, n_heldout=6, definition_samples=2,
                     quiet=True)
    three = run_ada(world, ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD]), tmp_path / "c", iterations=3,
                    n_train=40, n_heldout=6, definition_samples=2, quiet=True)
    assert [{k: v for k, v in h.items() if k not in timing} for h in longer["history"]] == [
        {k: v for k, v in h.items() if k not in timing} for h in three["history"]]
    assert len(longer["history"]) == 3 and longer["candidates"] == three["candidates"]
    assert events(tmp_path / "b") == events(tmp_path / "c")
    assert json.loads((tmp_path / "b" / "state.json").read_text())["done"] is True


@needs_planner
def test_garbage_answers_are_rejected_with_reasons(tmp_path):
    world, goals = _wood_world()
    garbage = ["", "{{{{", "t - tile)\n  :precondition (and (warm ?t))\n  :effect (and (has wood)))",
               "t - tile)\n  :precondition (and)\n  :effect (and (tree ?t)))",
               "a - tile ?b - tile ?c - tile ?d - tile ?e - tile)\n  :precondition (and)\n  :effect (and (has wood)))",
               "s - slot)\n  :precondition (and (agent-at ?s))\n  :effect (and (has wood)))"]
    out = run_ada(world, ScriptedLM(goals, " get-wood", garbage), tmp_path / "g", iterations=1, n_train=40,
                  n_heldout=6, definition_samples=len(garbage), quiet=True)
    codes = [r["code"] for r in out["rejected"]]
    assert codes == ["unparsable", "unparsable", "unknown-predicate", "static-effect", "arity-over-bound",
                     "type-mismatch"]
    assert out["candidates"] == [] and out["history"][0]["train_solved"] == 0


# ------------------------------------------------------------------------------------------ baselines
@needs_planner
@pytest.mark.parametrize("name", ["minecraft", "household"])
def test_oracle_baseline_solves_everything_and_goal_primitive_little(name):
    world = get_world(name)
    res = run_baseline("oracle", world, None, n_train=6, n_heldout=4, n_test=2, quiet=True)
    assert res["by_split"] == {"heldout": {"solved": 4, "tasks": 4}, "test": {"solved": 2, "tasks": 2},
                               "train": {"solved": 6, "tasks": 6}}
    tasks = world.make_tasks(6, 4, 0)
    truth = {t.instruction: " ".join(f"({g})" for g in t.goal) for t in tasks}
    lm = ScriptedLM(truth, "", [])
    # the true goal, planned with the ground-truth domain: the oracle again
    assert run_baseline("oracle-lm-goal", world, lm, n_train=6, n_heldout=4, quiet=True)["by_split"]["heldout"][
        "solved"] == 4
    # planned over the given primitive actions only: the world's rules are unknown, so no crafted goal
    prim = run_baseline("goal-primitive", world, lm, n_train=6, n_heldout=4, quiet=True)
    assert prim["by_split"]["heldout"]["solved"] == 0
    with pytest.raises(LmscopeError, match="unknown baseline"):
        run_baseline("voyager", world, lm)


@needs_planner
def test_a_run_interrupted_while_solving_resumes_at_the_next_task(tmp_path, monkeypatch):
    import lmscope.planning.planner as planner

    world, goals = _wood_world()
    kw = dict(iterations=2, n_train=40, n_heldout=6, definition_samples=2, quiet=True)
    lm_full = ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD])
    full = run_ada(world, lm_full, tmp_path / "a", **kw)
    real, calls = planner.plan, []

    def flaky(*a, **k):  # the machine stops (Ctrl-C) at the second planner call
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(planner, "plan", flaky)
    lm_cut = ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD])
    with pytest.raises(KeyboardInterrupt):
        run_ada(world, lm_cut, tmp_path / "b", **kw)
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert state["phase"] == "solve" and state["next_task"] >= 1
    monkeypatch.setattr(planner, "plan", real)
    lm = ScriptedLM(goals, " get-wood", [GET_WOOD, WRONG_WOOD])
    again = run_ada(world, lm, tmp_path / "b", **kw)
    # the resumed run asks the LM nothing twice, and ends as the whole run did
    assert len(lm_cut.calls) + len(lm.calls) == len(lm_full.calls)
    assert again["candidates"] == full["candidates"] and again["solved"] == full["solved"]
    logs = [[json.loads(x)["event"] for x in (d / "log.jsonl").read_text().splitlines()] for d in (tmp_path / "a",
                                                                                                  tmp_path / "b")]
    assert logs[0] == logs[1]


@needs_planner
def test_a_planner_timeout_is_recorded_not_fatal(tmp_path):
    world, goals = _wood_world()
    out = run_ada(world, ScriptedLM(goals, " get-wood", [GET_WOOD]), tmp_path / "t", iterations=1, n_train=40,
                  n_heldout=6, definition_samples=1, time_limit=0.001, quiet=True)
    log = [json.loads(x) for x in (tmp_path / "t" / "log.jsonl").read_text().splitlines()]
    wood = [e for e in log if e["event"] == "task" and e["task"] in {t.id for t in goals_of_split(world, "train", goals)}]
    assert wood and all(not e["solved"] and e["reason"].startswith("planner:") for e in wood), wood
    assert out["history"][0]["train_solved"] == 0


@needs_planner
def test_a_planted_wrong_operator_fails_at_its_step_and_loses_the_sampling(tmp_path):
    world, goals = _wood_world()
    # the wrong operator is planned first (one step from anywhere), the right one needs the agent at the tree
    wrong = "t - tile)\n  :precondition (and (tree ?t))\n  :effect (and (has wood) (has bed)))"
    right = "t - tile)\n  :precondition (and (agent-at ?t) (tree ?t))\n  :effect (and (has wood)))"
    lm = ScriptedLM(goals, " fake-wood get-wood", {"fake-wood": [wrong], "get-wood": [right]})
    out = run_ada(world, lm, tmp_path / "w", iterations=3, n_train=40, n_heldout=6, definition_samples=1,
                  quiet=True)
    log = [json.loads(x) for x in (tmp_path / "w" / "log.jsonl").read_text().splitlines()]
    runs = [e for e in log if e["event"] == "execute"]
    fails = [e for e in runs if e["steps"] and e["steps"][0]["operator"] == "fake-wood"]
    assert fails and all(e["failed_at"] == 0 and not e["steps"][0]["ok"] and "fake-wood" in e["reason"]
                         for e in fails)
    cands = {c["name"]: c for c in out["candidates"]}
    assert cands["fake-wood"]["successes"] == 0 and cands["fake-wood"]["attempts"] == len(fails)
    assert [o["name"] for o in out["library"]] == ["get-wood"]


@needs_planner
def test_variant_names_never_collide_and_a_foreign_log_is_kept(tmp_path):
    world, goals = _wood_world()
    # the sketch names get-wood-v2 and get-wood: three accepted definitions, three distinct records
    lm = ScriptedLM(goals, " get-wood-v2 get-wood", {"get-wood-v2": [GET_WOOD],
                                                     "get-wood": [GET_WOOD, WRONG_WOOD]})
    out = run_ada(world, lm, tmp_path / "v", iterations=1, n_train=40, n_heldout=6, definition_samples=2,
                  quiet=True)
    names = [c["name"] for c in out["candidates"]]
    assert len(names) == len(set(names)) == 3  # no record overwrote another
    other = tmp_path / "other"
    other.mkdir()
    (other / "log.jsonl").write_text('{"event": "task"}\n')
    with pytest.raises(LmscopeError, match="another command's output"):
        run_ada(world, lm, other, iterations=1, n_train=40, n_heldout=6, quiet=True)
    assert (other / "log.jsonl").read_text() == '{"event": "task"}\n'
