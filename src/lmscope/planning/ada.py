"""Ada: learning planning operators with language-model guidance (Wong et al. 2023).

The agent is given a world's types, predicates and known primitive actions (the skeleton domain), and
tasks in natural language. Iteration k = 1..K over the training tasks T:

- for every unsolved task t: goals ``g_t ~ LM(goal | instruction_t, solved examples)`` (PDDL atoms; the
  greedy one plus ``goal_samples - 1`` sampled ones, each tried in turn below) and a plan sketch ``s_t ~ LM(operators | instruction_t, g_t, examples)`` (operator names);
- for every new name n used by at least ``min_uses`` sketches: definitions
  ``d ~ LM(PDDL action | n, the tasks using it)``, ``definition_samples`` of them; each is validated
  (:func:`lmscope.planning.pddl.parse_operators`) and joins the candidates or is rejected with a reason;
- for every task with a goal, up to ``plan_samples`` times: keep each learned operator o with
  probability ``p_o = (s_o + a) / (n_o + b)`` (s successes, n attempts, a/b the prior's pseudo-counts),
  plan with the skeleton plus the kept operators, stop at the first plan;
- execute the plan: a known action runs as it is; a learned operator ``o(args)`` runs by the low-level
  controller (:func:`lmscope.planning.controller.execute_operator`), a bounded breadth-first search over
  primitive actions for a state where its grounded effects hold; the first failure stops the plan;
- every operator run updates ``n_o += 1`` and, when its effects were reached, ``s_o += 1``; the task is
  solved when its true goal holds at the end, and becomes a few-shot example;
- the library is ``L_k = {o : s_o >= 1, s_o / n_o >= threshold}``; held-out (and test) tasks, never
  learned from, are solved after each iteration with ``L_k`` only: goal from the LM, then plan, then run.

With ``learn=False`` (the baseline "no learning") no operator is ever sampled out or scored: every
accepted candidate is always used, and the library is every accepted candidate.

Everything is logged as JSON lines (``log.jsonl``: every prompt and answer, candidate and its fate,
plan and execution); ``state.json`` is rewritten after the proposals, after the definitions and after
every finished training task, so an interrupted run resumes at the next task (the log is cut back to the
checkpoint; an interrupted evaluation of held-out and test tasks is redone).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

from lmscope._settings import Settings, setting
from lmscope.errors import LmscopeError
from lmscope.planning import prompts as P
from lmscope.planning.pddl import Atom, Operator, parse_operators, parse_problem
from lmscope.planning.worlds import Task, World

PHASES = ("propose", "define", "solve", "evaluate")


def _unit(text) -> float:
    try:
        x = float(text)
    except (TypeError, ValueError):
        raise LmscopeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= x <= 1.0:
        raise LmscopeError(f"expected a number between 0 and 1, got {text!r}")
    return x


def _planner_name(text) -> str:
    name = str(text).strip().lower()
    if name not in ("auto", "fast-downward", "pyperplan"):
        raise LmscopeError(f"unknown planner {text!r}; choose from auto, fast-downward, pyperplan")
    return name


@dataclass(frozen=True)
class AdaConfig(Settings):
    """The settings of one Ada run (the options of `lmscope ada run`)."""

    WHAT = "ada_run option"
    COMMAND = "lmscope ada run"

    iterations: int = setting(5, "iterations of the loop (default 5)", minimum=1)
    seed: int = setting(0, "seed of the tasks, the LM samples and the operator sampling (default 0)", minimum=0)
    n_train: int = setting(40, "training tasks (default 40)", minimum=1)
    n_heldout: int = setting(20, "held-out tasks: new recipes or templates (default 20)", minimum=1)
    n_test: int = setting(0, "test tasks: new instances of the training recipes (default 0)", minimum=0)
    goal_samples: int = setting(2, "goals proposed per unsolved task and iteration: the greedy one plus sampled "
                                   "ones (default 2)", minimum=1)
    definition_samples: int = setting(3, "definitions sampled per new operator name (default 3)", minimum=1)
    min_uses: int = setting(1, "sketches that must use a new name before it is defined (default 1)", minimum=1)
    max_new: int = setting(6, "new operator names defined per iteration at most, the most used first (default 6)",
                           minimum=1)
    plan_samples: int = setting(3, "operator subsets tried per task (default 3)", minimum=1)
    shots: int = setting(4, "solved tasks shown as examples in a prompt (default 4)", minimum=1)
    threshold: float = setting(0.5, "success rate an operator needs to join the library (default 0.5)",
                               parse=_unit)
    temperature: float = setting(0.7, "sampling temperature of goals, sketches and definitions (default 0.7)",
                                 parse=_unit)
    max_states: int = setting(1000, "states the low-level search may expand per operator (default 1000)",
                              minimum=1)
    time_limit: float = setting(10.0, "planner time limit in seconds (default 10)", number_above=0.0)
    planner: str = setting("auto", "auto, fast-downward or pyperplan (default auto)", parse=_planner_name)
    learn: bool = setting(True)  # False: the "no learning" baseline (every candidate kept, nothing scored)
    prior_successes: float = setting(1.0)  # the pseudo-counts of every operator's record
    prior_attempts: float = setting(2.0)
    definition_tokens: int = setting(120)

    def __post_init__(self):
        self.check_settings()

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


# ------------------------------------------------------------------------------------------ state
@dataclass
class OpRecord:
    """A candidate operator: its PDDL, where it came from, and its execution record."""

    name: str           # unique in the run (variants of one proposed name get -v2, -v3, ...)
    proposed: str       # the name the sketch used
    pddl: str
    iteration: int
    successes: int = 0
    attempts: int = 0

    def keep_probability(self, c: AdaConfig) -> float:
        return (self.successes + c.prior_successes) / (self.attempts + c.prior_attempts)

    def in_library(self, c: AdaConfig) -> bool:
        if not c.learn:
            return True
        return self.successes >= 1 and self.successes / self.attempts >= c.threshold


class RunState:
    """Everything a run needs to resume: kept in ``state.json``."""

    def __init__(self, config: AdaConfig, world: str, lm: str):
        self.config, self.world, self.lm = config, world, lm
        self.iteration, self.phase, self.next_task = 0, "propose", 0
        self.ops: dict[str, OpRecord] = {}
        self.rejected: list[dict] = []
        self.solved: dict[str, dict] = {}
        self.proposals: dict[str, dict] = {}
        self.history: list[dict] = []
        self.evaluation: dict[str, dict] = {}
        self.counters = {"lm_calls": 0, "lm_prompt_chars": 0, "lm_answer_chars": 0, "planner_calls": 0,
                         "planner_seconds": 0.0, "controller_states": 0, "seconds": 0.0}
        self.rng_state = None
        self.log_lines = 0
        self.done = False

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "world": self.world, "lm": self.lm, "iteration": self.iteration,
                "phase": self.phase, "next_task": self.next_task,
                "ops": {k: vars(v) for k, v in self.ops.items()}, "rejected": self.rejected,
                "solved": self.solved, "proposals": self.proposals, "history": self.history,
                "evaluation": self.evaluation, "counters": self.counters,
                "rng_state": _rng_json(self.rng_state), "log_lines": self.log_lines, "done": self.done}

    @classmethod
    def from_dict(cls, d: dict) -> RunState:
        s = cls(AdaConfig(**d["config"]), d["world"], d["lm"])
        for k in ("iteration", "phase", "next_task", "rejected", "solved", "proposals", "history", "evaluation",
                  "counters", "log_lines", "done"):
            setattr(s, k, d[k])
        s.ops = {k: OpRecord(**v) for k, v in d["ops"].items()}
        r = d["rng_state"]
        s.rng_state = (r[0], tuple(r[1]), r[2]) if r else None
        return s

    def library(self) -> list[OpRecord]:
        return [o for o in self.ops.values() if o.in_library(self.config)]


def _rng_json(state):
    return None if state is None else [state[0], list(state[1]), state[2]]


# ------------------------------------------------------------------------------------------ the run
class AdaRun:
    """One run of the loop in a folder (see the module docstring). Use :func:`run_ada`."""

    def __init__(self, world: World, lm, config: AdaConfig, out_dir: str | Path, quiet: bool | None = None):
        self.world, self.lm, self.c, self.out = world, lm, config, Path(out_dir)
        self.quiet = quiet
        self.tasks = world.make_tasks(config.n_train, config.n_heldout, config.seed, n_test=config.n_test)
        self.by_id = {t.id: t for t in self.tasks}
        self.train = [t for t in self.tasks if t.split == "train"]
        self.skeleton = world.skeleton_domain()
        self.known = tuple(o.name for o in self.skeleton.operators)
        self._parsed: dict[str, Operator] = {}
        self._problems: dict[str, object] = {}
        self.state: RunState
        self._log = None

    # ----- files -----
    def _open(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        sp = self.out / "state.json"
        lm_id = getattr(self.lm, "spec", str(self.lm))
        if sp.exists():
            try:
                self.state = RunState.from_dict(json.loads(sp.read_text()))
            except (ValueError, KeyError, TypeError) as e:
                raise LmscopeError(f"{sp} is not a readable Ada run state ({e}); start in a new folder") from None
            mine = {"config": self.c.to_dict(), "world": self.world.name, "lm": lm_id}
            theirs = {"config": self.state.config.to_dict(), "world": self.state.world, "lm": self.state.lm}
            if mine != theirs:
                diff = [k for k in mine["config"] if mine["config"][k] != theirs["config"].get(k)]
                diff += [k for k in ("world", "lm") if mine[k] != theirs[k]]
                if diff == ["iterations"] and self.c.iterations > self.state.config.iterations:
                    # more iterations continue the run: the loop's state after an iteration does not
                    # depend on how many follow, so this equals a run asked for them from the start
                    self.state.config, self.state.done = self.c, False
                else:
                    raise LmscopeError(f"{self.out} holds an Ada run of another configuration (differs in "
                                       f"{', '.join(diff)}); use another --out, the same settings to resume, "
                                       "or more --iterations to continue it")
            self._cut_log(self.state.log_lines)
        else:
            if (self.out / "log.jsonl").exists():
                raise LmscopeError(f"{self.out} holds a log.jsonl but no Ada run state (state.json): it is another "
                                   "command's output; use another --out")
            self.state = RunState(self.c, self.world.name, lm_id)
            self.state.rng_state = random.Random(f"ada-{self.c.seed}").getstate()
            self._cut_log(0)
        self._log = open(self.out / "log.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._t0 = time.monotonic()
        self.checkpoint()  # the run's marker: a rerun of the same command resumes here

    def _cut_log(self, lines: int) -> None:
        path = self.out / "log.jsonl"
        if not path.exists():
            path.write_text("")
            return
        from lmscope._io import write_text

        keep = path.read_text(encoding="utf-8").splitlines(keepends=True)[:lines]
        write_text(path, "".join(keep))  # atomically: an interruption here leaves the longer log

    def log(self, event: str, **fields) -> None:
        self._log.write(json.dumps({"event": event, "iteration": self.state.iteration, **fields},
                                   default=str) + "\n")
        self.state.log_lines += 1

    def checkpoint(self) -> None:
        from lmscope._io import write_json

        self._log.flush()
        now = time.monotonic()
        self.state.counters["seconds"] += now - self._t0
        self._t0 = now
        write_json(self.out / "state.json", self.state.to_dict())

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # ----- language model -----
    def generate(self, kind: str, prompts: list[str], keys: list[str], *, max_tokens: int, temperature: float,
                 n: int = 1, stop=("\n",), seed: int = 0) -> list[list[str]]:
        if not prompts:
            return []
        try:
            answers = self.lm.generate(prompts, max_tokens=max_tokens, temperature=temperature, n=n,
                                       stop=list(stop), seed=seed)
        except LmscopeError as e:  # the last checkpoint stays: a rerun resumes from it
            raise LmscopeError(f"the language model failed ({e}); the run is saved in {self.out}: run the "
                               "same command again to resume") from None
        st = self.state.counters
        st["lm_calls"] += len(prompts) * n
        st["lm_prompt_chars"] += sum(len(p) for p in prompts) * n
        st["lm_answer_chars"] += sum(len(a) for ans in answers for a in ans)
        for key, prompt, ans in zip(keys, prompts, answers):
            self.log("lm", kind=kind, key=key, prompt=prompt, answers=ans)
        return answers

    def examples(self) -> list[P.Example]:
        solved = sorted(self.state.solved.items(), key=lambda kv: (kv[1]["iteration"], kv[0]))
        shots = [P.Example(self.by_id[tid].instruction, tuple(v["goal"]), tuple(v["sketch"]))
                 for tid, v in solved[-self.c.shots:]]
        return shots or list(P.TOY_EXAMPLES)

    # ----- planning and execution -----
    def problem(self, task: Task, goal):
        if task.id not in self._problems:
            self._problems[task.id] = parse_problem(self.world.problem(task))
        p = self._problems[task.id]
        return replace(p, goal=tuple(Atom(g.split()[0], tuple(g.split()[1:])) for g in goal))

    def operator(self, rec: OpRecord) -> Operator:
        if rec.name not in self._parsed:
            self._parsed[rec.name] = parse_operators(rec.pddl, self.skeleton, confirm=False)[0]
        return self._parsed[rec.name]

    def plan(self, task: Task, goal, records: list[OpRecord]):
        from lmscope.planning.planner import plan

        domain = self.skeleton.with_operators((*self.skeleton.operators, *(self.operator(r) for r in records)))
        res = plan(domain.to_pddl(), self.problem(task, goal).to_pddl(), planner=self.c.planner,
                   time_limit=self.c.time_limit)
        self.state.counters["planner_calls"] += 1
        self.state.counters["planner_seconds"] += 0.0 if res.cached else res.seconds
        return res

    def execute(self, task: Task, actions, records: dict[str, OpRecord]) -> dict:
        from lmscope.planning.controller import execute_operator

        state = self.world.initial_state(task)
        steps, failed_at, why = [], None, ""
        for i, (name, args) in enumerate(actions):
            if name in self.known:
                err = self.world.step(task, state, (name, tuple(args)))
                steps.append({"operator": name, "args": list(args), "ok": err is None, "primitive": 1})
                if err is not None:
                    failed_at, why = i, f"({name} {' '.join(args)}): {err}"
                    break
                continue
            rec = records[name]
            reach, state = execute_operator(self.world, task, state, self.operator(rec), tuple(args),
                                            max_states=self.c.max_states)
            self.state.counters["controller_states"] += reach.expanded
            steps.append({"operator": name, "args": list(args), "ok": reach.ok, "primitive": len(reach.actions),
                          "reason": reach.reason})
            if not reach.ok:
                failed_at, why = i, f"({name} {' '.join(args)}): {reach.reason}"
                break
        solved = failed_at is None and self.world.goal_holds(task, state)
        if failed_at is None and not solved:
            why = "every operator ran but the task's goal does not hold"
        return {"solved": solved, "failed_at": failed_at, "reason": why if not solved else "goal reached",
                "steps": steps}

    def try_task(self, task: Task, goal, pool: list[OpRecord], sample: bool, rng: random.Random) -> dict:
        """Plan (with up to plan_samples operator subsets when ``sample``) and execute; update scores."""
        tries = self.c.plan_samples if sample else 1
        result = {"solved": False, "reason": "no plan", "plan": None}
        tried = set()
        for j in range(tries):
            kept = [r for r in pool if not sample or rng.random() < r.keep_probability(self.c)]
            if tuple(r.name for r in kept) in tried:  # the same subset again: the same plan, skip it
                continue
            tried.add(tuple(r.name for r in kept))
            res = self.plan(task, goal, kept)
            self.log("plan", task=task.id, attempt=j, operators=[r.name for r in kept], **res.to_dict())
            if not res.solved:
                result["reason"] = f"planner: {res.status}" + (f" ({res.message})" if res.message else "")
                continue
            names = {r.name: r for r in kept}
            ex = self.execute(task, res.actions, names)
            self.log("execute", task=task.id, **ex)
            if sample:
                for s in ex["steps"]:
                    if s["operator"] in names:
                        names[s["operator"]].attempts += 1
                        names[s["operator"]].successes += int(s["ok"])
            return {**ex, "plan": [[a, list(b)] for a, b in res.actions]}
        return result

    # ----- the phases -----
    def propose(self, rng: random.Random) -> None:
        st, it = self.state, self.state.iteration
        todo = [t for t in self.train if t.id not in st.solved]
        shots = self.examples()
        prompts = [P.goal_prompt(self.skeleton, self.problem(t, ()), t.instruction, shots, self.world.goal_types)
                   for t in todo]
        keys = [t.id for t in todo]
        answers = self.generate("goal", prompts, keys, max_tokens=40, temperature=0.0)
        if self.c.goal_samples > 1:  # sampled goals, new at every iteration (the greedy one repeats)
            more = self.generate("goal", prompts, keys, max_tokens=40, temperature=self.c.temperature,
                                 n=self.c.goal_samples - 1, seed=self.c.seed * 1000 + it)
            answers = [a + b for a, b in zip(answers, more)]
        st.proposals = {}
        for t, ans in zip(todo, answers):
            goals, reasons = [], []
            for a in ans:
                goal, why = P.read_goal(a, self.skeleton, self.problem(t, ()))
                if goal and list(goal) not in goals:
                    goals.append(list(goal))
                elif why:
                    reasons.append(why)
                self.log("goal", task=t.id, answer=a, goal=goal, reason=why)
            st.proposals[t.id] = {"goal": goals[0] if goals else None, "goals": goals,
                                  "goal_reason": None if goals else reasons[0], "sketch": []}
        with_goal = [t for t in todo if st.proposals[t.id]["goal"]]
        library = tuple(sorted({o.proposed for o in st.library()}))
        sketches = self.generate("sketch", [P.sketch_prompt(self.skeleton, t.instruction,
                                                            st.proposals[t.id]["goal"], shots, library)
                                            for t in with_goal], [t.id for t in with_goal], max_tokens=40,
                                 temperature=self.c.temperature, seed=self.c.seed * 1000 + it)
        for t, ans in zip(with_goal, sketches):
            st.proposals[t.id]["sketch"] = list(P.read_sketch(ans[0], self.known))
            self.log("sketch", task=t.id, answer=ans[0], sketch=st.proposals[t.id]["sketch"])
        st.phase = "define"
        self.checkpoint()

    def define(self) -> None:
        st, it = self.state, self.state.iteration
        have = {o.proposed for o in st.ops.values()} | {r["name"] for r in st.rejected if r.get("iteration") == it}
        uses: dict[str, list] = {}
        for tid, p in st.proposals.items():
            for name in dict.fromkeys(p["sketch"]):
                uses.setdefault(name, []).append((self.by_id[tid].instruction, p["goal"]))
        new = [n for n, u in sorted(uses.items(), key=lambda kv: (-len(kv[1]), kv[0]))
               if n not in have and len(u) >= self.c.min_uses][:self.c.max_new]
        learned = [o.pddl for o in sorted(st.library(), key=lambda o: -o.successes)][:3]
        toy = not learned
        prompts = [P.definition_prompt(self.skeleton, n, uses[n], tuple(learned) or P.TOY_OPERATORS, toy)
                   for n in new]
        answers = self.generate("define", prompts, new, max_tokens=self.c.definition_tokens,
                                temperature=self.c.temperature, n=self.c.definition_samples,
                                stop=("\n\n", "\n(:action", "\n;"), seed=self.c.seed * 1000 + it)
        for name, samples in zip(new, answers):
            seen = set()
            for k, text in enumerate(samples):
                full = P.definition_prefix(name) + text
                got = parse_operators(full, self.skeleton)[0]
                op = got if isinstance(got, Operator) else None
                reason = None if op is not None else got.reason
                if op is not None and op.name != name:
                    op, reason = None, f"wrong-name: the definition of {name} names another action ({op.name})"
                if op is not None and op.to_pddl() in seen:
                    op, reason = None, "duplicate: the same definition as another sample"
                if reason is not None:
                    st.rejected.append({"name": name, "iteration": it, "sample": k, "code": reason.split(":")[0],
                                        "reason": reason, "text": full})
                    self.log("candidate", name=name, sample=k, accepted=False, reason=reason, text=full)
                    continue
                seen.add(op.to_pddl())
                uid, k2 = name, 2
                while uid in st.ops or uid in self.known:  # a free name: x, x-v2, x-v3, ...
                    uid, k2 = f"{name}-v{k2}", k2 + 1
                op = replace(op, name=uid)
                st.ops[uid] = OpRecord(uid, name, op.to_pddl(), it)
                self.log("candidate", name=name, sample=k, accepted=True, operator=uid, text=op.to_pddl())
        st.phase, st.next_task = "solve", 0
        self.checkpoint()

    def solve(self, rng: random.Random, bar) -> None:
        st, it = self.state, self.state.iteration
        todo = [t for t in self.train if t.id in st.proposals]
        for k in range(st.next_task, len(todo)):
            t = todo[k]
            p = st.proposals[t.id]
            if p["goal"]:
                for goal in p["goals"]:  # each proposed goal in turn, until one solves the task
                    res = self.try_task(t, goal, list(st.ops.values()), sample=self.c.learn, rng=rng)
                    if res["solved"]:
                        break
                if res["solved"]:
                    used = [s["operator"] for s in res["steps"] if s["operator"] not in self.known]
                    base = [st.ops[u].proposed for u in used]
                    st.solved[t.id] = {"iteration": it, "goal": goal,
                                       "sketch": list(dict.fromkeys(base)) or p["sketch"], "plan": res["plan"]}
                self.log("task", task=t.id, solved=res["solved"], reason=res["reason"])
            else:
                self.log("task", task=t.id, solved=False, reason=f"goal: {p['goal_reason']}")
            st.next_task = k + 1
            st.rng_state = rng.getstate()
            self.checkpoint()
            bar.update(1)
        st.phase = "evaluate"
        self.checkpoint()

    def evaluate(self, bar) -> dict:
        """Held-out and test tasks with the library as it stands (no sampling, no learning)."""
        st = self.state
        shots = self.examples()
        lib = st.library()
        out = {}
        for split in ("heldout", "test"):
            tasks = [t for t in self.tasks if t.split == split]
            if not tasks:
                continue
            answers = self.generate("goal", [P.goal_prompt(self.skeleton, self.problem(t, ()), t.instruction,
                                                           shots, self.world.goal_types) for t in tasks], [t.id for t in tasks],
                                    max_tokens=40, temperature=0.0)
            solved = 0
            for t, ans in zip(tasks, answers):
                goal, why = P.read_goal(ans[0], self.skeleton, self.problem(t, ()))
                if goal:
                    res = self.try_task(t, goal, lib, sample=False, rng=random.Random(0))
                else:
                    res = {"solved": False, "reason": f"goal: {why}"}
                solved += int(res["solved"])
                self.log("eval", split=split, task=t.id, goal=goal, solved=res["solved"], reason=res["reason"])
                bar.update(1)
            out[split] = {"solved": solved, "tasks": len(tasks)}
        return out

    def run(self) -> dict:
        from lmscope.progress import progress

        try:
            self._open()
            st = self.state
            rng = random.Random()
            rng.setstate(st.rng_state)
            while st.iteration < self.c.iterations and not st.done:
                n_eval = sum(t.split != "train" for t in self.tasks)
                with progress(total=len(self.train) + n_eval, desc=f"iteration {st.iteration + 1}/{self.c.iterations}",
                              quiet=self.quiet) as bar:
                    if st.phase == "propose":
                        self.propose(rng)
                    if st.phase == "define":
                        self.define()
                    if st.phase == "solve":
                        bar.update(st.next_task)
                        self.solve(rng, bar)
                    ev = self.evaluate(bar)
                row = {"iteration": st.iteration + 1, "train_solved": len(st.solved), "train_tasks": len(self.train),
                       "candidates": len(st.ops), "library": len(st.library()),
                       "rejected": sum(r["iteration"] == st.iteration for r in st.rejected),
                       **{f"{s}_solved": v["solved"] for s, v in ev.items()},
                       **{f"{s}_tasks": v["tasks"] for s, v in ev.items()}, **dict(st.counters)}
                st.history.append(row)
                self.log("iteration", **row)
                st.iteration += 1
                st.phase, st.next_task, st.proposals = "propose", 0, {}
                st.rng_state = rng.getstate()
                self.checkpoint()
            st.done = True
            self.checkpoint()
            return self.summary()
        except OSError as e:  # the run folder cannot be written: one line naming it
            from lmscope.outputs import write_error

            raise write_error(e, self.out) from None
        finally:
            self.close()

    def summary(self) -> dict:
        st = self.state
        return {"world": self.world.name, "lm": st.lm, "config": self.c.to_dict(), "history": st.history,
                "library": [vars(o) for o in st.library()], "candidates": [vars(o) for o in st.ops.values()],
                "rejected": st.rejected, "solved": st.solved, "counters": st.counters, "out": str(self.out)}


def run_ada(world: World | str, lm, out_dir: str | Path, config: AdaConfig | None = None,
            quiet: bool | None = None, **settings) -> dict:
    """Run (or resume) the Ada loop of ``world`` with language model ``lm`` (any object with the
    :class:`lmscope.lm.base.LanguageModel` ``generate``) in ``out_dir``. Returns the run's summary:
    ``history`` (one row per iteration: solved counts per split, library size, costs), ``library``,
    ``candidates``, ``rejected`` (with reasons), ``solved`` and ``counters``."""
    from lmscope.planning.worlds import get_world

    w = get_world(world) if isinstance(world, str) else world
    c = AdaConfig.make(config, **settings)
    return AdaRun(w, lm, c, out_dir, quiet=quiet).run()
