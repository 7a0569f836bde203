"""The baselines Ada is compared with, each solving every task of a world once (nothing is learned):

- ``oracle``: the true goal, planned with the hand-written ground-truth domain (the upper bound);
- ``oracle-lm-goal``: the LM's goal, planned with the ground-truth domain (the ceiling the LM's goals allow);
- ``goal-primitive``: the LM's goal, planned over the primitive actions whose model the agent is given
  (the skeleton domain; no operator of the world's rules);
- ``lm-actions``: the LM writes the primitive-action plan itself, run in the simulator (no planner);
- ``goal-search``: the LM's goal reached by the low-level controller alone (one bounded breadth-first
  search over primitive actions from the start state, with Ada's bound): what the controller does
  without any operator.

The fifth, the loop with operator learning turned off, is :func:`lmscope.planning.ada.run_ada` with
``learn=False``. Every prompt and answer, plan and execution is logged like Ada's (``log.jsonl``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lmscope.errors import LmscopeError
from lmscope.planning import prompts as P
from lmscope.planning.worlds import World, normalize_action

BASELINES = ("oracle", "oracle-lm-goal", "goal-primitive", "goal-search", "lm-actions", "no-learning")

TOY_PLAN = ("Task: water the rose\n"
            "; state: (agent-at shed-1) (in watering-can-1 shed-1) (grows rose-1 bed-1) (well well-1)\n"
            "Plan:\n(pick watering-can-1 shed-1)\n(goto shed-1 well-1)\n(fill watering-can-1 well-1)\n"
            "(goto well-1 bed-1)\n(water rose-1 watering-can-1 bed-1)\n")


def _signature(world: World) -> str:
    from lmscope.planning.pddl import parse_domain

    d = parse_domain(world.oracle_domain())
    return "\n".join(f"; ({o.name} {' '.join(t for _, t in o.parameters)})" for o in d.operators)


def _state_text(world: World, task) -> str:
    from lmscope.planning.pddl import parse_problem

    p = parse_problem(world.problem(task))
    return " ".join(a.to_pddl() for a in p.init if a.pred != "adjacent")


def actions_prompt(world: World, task) -> str:
    """Few-shot (a toy gardening example): the task and its start state -> a primitive-action plan."""
    head = (f"; The {world.name} world. Primitive actions (argument types):\n{_signature(world)}\n"
            + ("; tiles t-X-Y form a grid; move-to goes to a neighbouring tile\n" if world.name == "minecraft"
               else "") + "; Write the plan as one primitive action per line.\n\n")
    return (head + TOY_PLAN + f"\nTask: {task.instruction}\n; state: {_state_text(world, task)}\nPlan:\n(")


def read_actions(text: str) -> list:
    """Actions from an answer (one ``(name args)`` per line; the first line's ``(`` is in the prompt)."""
    out = []
    for i, line in enumerate(("(" + text).splitlines()):
        line = line.strip()
        if not line:
            if out:
                break
            continue
        if not line.startswith("(") and i:
            break
        try:
            out.append(normalize_action(line))
        except ValueError:
            break
    return out


def run_baseline(name: str, world: World, lm, out_dir: str | Path | None = None, *, seed: int = 0,
                 n_train: int = 40, n_heldout: int = 20, n_test: int = 0, splits=("heldout", "test", "train"),
                 planner: str = "auto", time_limit: float = 10.0, max_states: int = 1000,
                 quiet: bool | None = None) -> dict:
    """Solve every task of ``splits`` once with baseline ``name`` (not ``no-learning``: see the module
    docstring). Returns ``{"baseline", "world", "by_split": {split: {"solved", "tasks"}}, "tasks": [...]}``
    and, with ``out_dir``, writes its ``log.jsonl`` there."""
    from lmscope.planning.pddl import Atom, parse_problem
    from lmscope.planning.planner import plan
    from lmscope.progress import progress

    if name not in BASELINES or name == "no-learning":
        raise LmscopeError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    tasks = [t for t in world.make_tasks(n_train, n_heldout, seed, n_test=n_test) if t.split in splits]
    log = []
    oracle = world.oracle_domain()
    skeleton = world.skeleton_domain().to_pddl()
    goals: dict[str, tuple | None] = {}
    if name in ("oracle-lm-goal", "goal-primitive", "goal-search"):
        skel = world.skeleton_domain()
        probs = {t.id: parse_problem(world.problem(t)) for t in tasks}
        prompts = [P.goal_prompt(skel, probs[t.id], t.instruction, P.TOY_EXAMPLES, world.goal_types) for t in tasks]
        answers = lm.generate(prompts, max_tokens=40, temperature=0.0, stop=["\n"]) if prompts else []
        for t, pr, ans in zip(tasks, prompts, answers):
            goals[t.id], why = P.read_goal(ans[0], skel, probs[t.id])
            log.append({"event": "lm", "kind": "goal", "key": t.id, "prompt": pr, "answers": ans,
                        "goal": goals[t.id], "reason": why})
    elif name == "lm-actions":
        prompts = [actions_prompt(world, t) for t in tasks]
        answers = lm.generate(prompts, max_tokens=200, temperature=0.0, stop=["\n\n", "\nTask:"]) if prompts else []
        plans = {}
        for t, pr, ans in zip(tasks, prompts, answers):
            plans[t.id] = read_actions(ans[0])
            log.append({"event": "lm", "kind": "actions", "key": t.id, "prompt": pr, "answers": ans})
    rows = []
    for t in progress(tasks, desc=f"baseline {name}", quiet=quiet):
        if name == "lm-actions":
            ex = world.execute(t, plans[t.id])
            row = {"solved": ex.success, "reason": ex.reason, "actions": len(plans[t.id])}
        elif name == "goal-search":
            from lmscope.planning.controller import achieve

            if not goals[t.id]:
                row = {"solved": False, "reason": "no readable goal"}
            else:
                reach, state = achieve(world, t, world.initial_state(t), goals[t.id], max_states=max_states)
                ok = reach.ok and world.goal_holds(t, state)
                row = {"solved": ok, "reason": reach.reason if not reach.ok else
                       ("goal reached" if ok else "the LM's goal holds but the task's does not"),
                       "actions": len(reach.actions), "expanded": reach.expanded}
        else:
            if name == "oracle":
                dom, prob = oracle, world.problem(t)
            else:
                goal = goals[t.id]
                if not goal:
                    rows.append({"task": t.id, "split": t.split, "solved": False, "reason": "no readable goal"})
                    continue
                p = parse_problem(world.problem(t))
                p = replace(p, goal=tuple(Atom(g.split()[0], tuple(g.split()[1:])) for g in goal))
                dom, prob = (oracle if name == "oracle-lm-goal" else skeleton), p.to_pddl()
            res = plan(dom, prob, planner=planner, time_limit=time_limit)
            log.append({"event": "plan", "task": t.id, **res.to_dict()})
            if not res.solved:
                row = {"solved": False, "reason": f"planner: {res.status}"}
            else:
                ex = world.execute(t, res.actions)
                row = {"solved": ex.success, "reason": ex.reason}
        rows.append({"task": t.id, "split": t.split, **row})
        log.append({"event": "task", "task": t.id, **row})
    by_split = {}
    for s in splits:
        r = [x for x in rows if x["split"] == s]
        if r:
            by_split[s] = {"solved": sum(x["solved"] for x in r), "tasks": len(r)}
    result = {"baseline": name, "world": world.name, "lm": getattr(lm, "spec", None) if lm is not None else None,
              "seed": seed, "by_split": by_split, "tasks": rows}
    if out_dir is not None:
        from lmscope._io import write_json, write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "log.jsonl", "".join(json.dumps(e, default=str) + "\n" for e in log))
        write_json(out / "result.json", result)
    return result
