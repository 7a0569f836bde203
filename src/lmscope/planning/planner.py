"""Classical planning on PDDL text: Fast Downward (lama-first) or pyperplan, each as a separate process
with a time limit, results cached on disk; and a symbolic check of any plan.

Fast Downward is the build the ``up-fast-downward`` wheel ships (its driver, ``fast-downward.py``, run
directly with ``--alias lama-first``: unified-planning's own wrapper adds about two seconds of start-up
per call). ``pyperplan`` (greedy best-first search with the FF heuristic) is the pure-Python fallback;
it handles STRIPS with types only. Both are GPL-licensed programs and run as child processes; a run
that passes the time limit is killed with its whole process group and recorded as ``timeout``.

Results that do not depend on the machine's speed (``solved``, ``unsolvable``) are cached under
``planner/`` in the lmscope cache, keyed by the SHA-256 of (planner, domain text, problem text, time
limit); ``timeout`` and ``error`` are not cached.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lmscope.errors import LmscopeError, check_number
from lmscope.planning.pddl import NEGATIVE, Atom, Domain, Problem, parse_domain, parse_problem, read_sexprs

PLANNERS = ("fast-downward", "pyperplan")
STATUSES = ("solved", "unsolvable", "timeout", "error")
CACHE_FORMAT = "1"
INSTALL_HINT = "pip install 'lmscope[planning]'"
# Fast Downward driver exit codes that mean "no plan exists" (translator or search proved it)
_FD_UNSOLVABLE = {10, 11, 12}
_runs = {"fast-downward": 0, "pyperplan": 0}  # planner processes started by this process
_noted = False


@dataclass
class PlanResult:
    status: str  # one of STATUSES
    actions: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    seconds: float = 0.0  # the planner's wall time (of the original run, for a cached result)
    planner: str = ""
    message: str | None = None
    cached: bool = False

    @property
    def solved(self) -> bool:
        return self.status == "solved"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["actions"] = [[n, list(a)] for n, a in self.actions]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PlanResult:
        return cls(d["status"], [(n, tuple(a)) for n, a in d["actions"]], float(d["seconds"]), d["planner"],
                   d.get("message"), bool(d.get("cached", False)))


def planner_runs() -> dict[str, int]:
    """How many planner processes this Python process has started, per planner (cache hits start none)."""
    return dict(_runs)


def _fd_driver() -> Path | None:
    spec = importlib.util.find_spec("up_fast_downward")
    if spec is None or not spec.submodule_search_locations:
        return None
    driver = Path(list(spec.submodule_search_locations)[0]) / "downward" / "fast-downward.py"
    return driver if driver.is_file() else None


def available_planners() -> list[str]:
    """The planners installed here, preferred first."""
    out = []
    if _fd_driver() is not None:
        out.append("fast-downward")
    if importlib.util.find_spec("pyperplan") is not None:
        out.append("pyperplan")
    return out


def _choose(planner: str) -> str:
    global _noted
    if planner not in ("auto", *PLANNERS):
        raise LmscopeError(f"unknown planner {planner!r}; choose from auto, {', '.join(PLANNERS)}")
    have = available_planners()
    if planner == "auto":
        if not have:
            raise LmscopeError(f"no planner installed (neither Fast Downward nor pyperplan); {INSTALL_HINT}")
        if have[0] != "fast-downward" and not _noted:
            print("lmscope: note: Fast Downward (up-fast-downward) is not installed; planning with pyperplan",
                  file=sys.stderr)
            _noted = True
        return have[0]
    if planner not in have:
        raise LmscopeError(f"the planner {planner} is not installed; {INSTALL_HINT}")
    return planner


def _text(x, kind: str) -> str:
    if isinstance(x, (Domain, Problem)):
        return x.to_pddl()
    if isinstance(x, str):
        return x
    raise LmscopeError(f"the {kind} must be PDDL text or a {kind.capitalize()}, got {type(x).__name__}")


def cache_key(planner: str, domain_text: str, problem_text: str, time_limit: float) -> str:
    doc = json.dumps([CACHE_FORMAT, planner, domain_text, problem_text, float(time_limit)])
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


def _cache_file(key: str) -> Path:
    from lmscope.cache import cache_dir

    return cache_dir("planner", key[:2]) / f"{key}.json"


def _read_plan_lines(text: str) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for form in read_sexprs(text):  # comments (; cost = ...) are dropped by the reader
        if isinstance(form, list) and form and all(isinstance(x, str) for x in form):
            out.append((form[0], tuple(form[1:])))
    return out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _run(cmd: list[str], cwd: str, time_limit: float) -> tuple[int | None, str, float]:
    """Run ``cmd`` in its own process group; kill the group at the limit (and when this process is
    interrupted). Returns (returncode, or None after a timeout; output; seconds)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=time_limit)
        return proc.returncode, out or "", time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a descendant that left the group still holds the pipe
            proc.kill()
            out = ""
        return None, out or "", time.perf_counter() - t0
    except BaseException:  # Ctrl-C or another error here: leave no planner running
        _kill_group(proc)
        proc.wait()
        raise


def _last_line(out: str) -> str:
    lines = [ln.strip() for ln in out.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def _run_fast_downward(domain_text: str, problem_text: str, time_limit: float) -> PlanResult:
    _runs["fast-downward"] += 1
    with tempfile.TemporaryDirectory(prefix="lmscope-fd-") as tmp:
        Path(tmp, "domain.pddl").write_text(domain_text)
        Path(tmp, "problem.pddl").write_text(problem_text)
        cmd = [sys.executable, str(_fd_driver()), "--plan-file", "plan", "--alias", "lama-first",
               "domain.pddl", "problem.pddl"]
        rc, out, secs = _run(cmd, tmp, time_limit)
        name = "fast-downward"
        if rc is None:
            return PlanResult("timeout", [], secs, name, f"killed after the time limit of {time_limit:g} s")
        plan_file = Path(tmp, "plan")
        if rc == 0 and plan_file.is_file():
            return PlanResult("solved", _read_plan_lines(plan_file.read_text()), secs, name)
        if rc in _FD_UNSOLVABLE:
            return PlanResult("unsolvable", [], secs, name, f"Fast Downward proved no plan exists (exit {rc})")
        if rc in (21, 23, 24):
            return PlanResult("timeout", [], secs, name, f"Fast Downward ran out of time (exit {rc})")
        return PlanResult("error", [], secs, name, f"Fast Downward failed (exit {rc}): {_last_line(out)}")


def _run_pyperplan(domain_text: str, problem_text: str, time_limit: float) -> PlanResult:
    name = "pyperplan"
    if NEGATIVE in domain_text.lower():
        return PlanResult("error", [], 0.0, name, "pyperplan handles STRIPS with types only "
                          f"(this domain states {NEGATIVE}); use Fast Downward")
    _runs["pyperplan"] += 1
    with tempfile.TemporaryDirectory(prefix="lmscope-pyperplan-") as tmp:
        Path(tmp, "domain.pddl").write_text(domain_text)
        Path(tmp, "problem.pddl").write_text(problem_text)
        cmd = [sys.executable, "-m", "pyperplan", "-l", "warning", "-s", "gbf", "-H", "hff",
               "domain.pddl", "problem.pddl"]
        rc, out, secs = _run(cmd, tmp, time_limit)
        if rc is None:
            return PlanResult("timeout", [], secs, name, f"killed after the time limit of {time_limit:g} s")
        soln = Path(tmp, "problem.pddl.soln")
        if rc == 0 and soln.is_file():
            return PlanResult("solved", _read_plan_lines(soln.read_text()), secs, name)
        if rc == 0 and "no solution could be found" in out.lower():
            return PlanResult("unsolvable", [], secs, name, "pyperplan's search found no plan")
        return PlanResult("error", [], secs, name, f"pyperplan failed (exit {rc}): {_last_line(out)}")


def plan(domain: Domain | str, problem: Problem | str, planner: str = "auto", time_limit: float = 10.0,
         cache: bool = True) -> PlanResult:
    """Plan for ``problem`` in ``domain`` (objects or PDDL text) with ``planner`` (``auto``: Fast Downward
    when installed, else pyperplan with a one-line note). Never raises for what the planner does: a
    timeout or a planner failure is a result; LmscopeError for a bad argument or no planner installed."""
    time_limit = check_number("time_limit", time_limit, above=0)
    name = _choose(planner)
    dtext, ptext = _text(domain, "domain"), _text(problem, "problem")
    key = cache_key(name, dtext, ptext, time_limit)
    path = _cache_file(key) if cache else None
    if path is not None and path.is_file():
        try:
            res = PlanResult.from_dict(json.loads(path.read_text()))
            res.cached = True
            return res
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable entry is replaced below
    run = _run_fast_downward if name == "fast-downward" else _run_pyperplan
    res = run(dtext, ptext, time_limit)
    if path is not None and res.status in ("solved", "unsolvable"):
        from lmscope._io import write_json

        try:
            write_json(path, res.to_dict())
        except OSError:
            pass  # a read-only cache: the result is still returned
    return res


# ------------------------------------------------------------------------------------------ checking plans
@dataclass
class PlanCheck:
    """The outcome of simulating a plan: ``ok`` when every step applies and the goal holds at the end;
    else ``failed_step`` (0-based; ``len(actions)`` when only the goal is missing) and ``reason``
    (``code: message``)."""

    ok: bool
    failed_step: int | None = None
    reason: str | None = None
    state: frozenset = frozenset()

    def to_dict(self) -> dict:
        return {"ok": self.ok, "failed_step": self.failed_step, "reason": self.reason,
                "state": sorted(a.to_pddl() for a in self.state)}


def validate_plan(domain: Domain | str, problem: Problem | str, actions) -> PlanCheck:
    """Simulate ``actions`` ([(name, args)]) from the problem's initial state under STRIPS semantics
    (delete, then add) and check the goal."""
    dom = domain if isinstance(domain, Domain) else parse_domain(_text(domain, "domain"))
    prob = problem if isinstance(problem, Problem) else parse_problem(_text(problem, "problem"))
    objects = {**dict(dom.constants), **prob.objects}
    state = set(prob.init)
    for i, step in enumerate(actions):
        try:
            name, args = step[0].lower(), tuple(str(a).lower() for a in step[1])
        except (TypeError, IndexError, AttributeError):
            return PlanCheck(False, i, f"malformed-step: {step!r}", frozenset(state))
        shown = "(" + " ".join((name, *args)) + ")"
        op = dom.operator(name)
        if op is None:
            return PlanCheck(False, i, f"unknown-operator: {shown}", frozenset(state))
        if len(args) != len(op.parameters):
            return PlanCheck(False, i, f"wrong-arity: {shown} ({name} takes {len(op.parameters)})",
                             frozenset(state))
        binding = {}
        for (var, typ), a in zip(op.parameters, args):
            if a not in objects:
                return PlanCheck(False, i, f"unknown-object: {a} in {shown}", frozenset(state))
            if not dom.is_subtype(objects[a], typ):
                return PlanCheck(False, i, f"type-mismatch: {a} - {objects[a]} in {shown} (wants {typ})",
                                 frozenset(state))
            binding[var] = a

        for lit in op.preconditions:
            g = ground(lit.atom, binding)
            if (g in state) != lit.positive:
                want = g.to_pddl() if lit.positive else f"(not {g.to_pddl()})"
                return PlanCheck(False, i, f"precondition: {want} does not hold before {shown}",
                                 frozenset(state))
        state -= {ground(a, binding) for a in op.delete}
        state |= {ground(a, binding) for a in op.add}
    missing = [g for g in prob.goal if g not in state]
    if missing:
        return PlanCheck(False, len(list(actions)), f"goal-not-reached: {missing[0].to_pddl()} does not hold"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""), frozenset(state))
    return PlanCheck(True, None, None, frozenset(state))


def ground(atom: Atom, binding: dict[str, str]) -> Atom:
    """``atom`` with its variables replaced by the objects ``binding`` gives them."""
    return Atom(atom.pred, tuple(binding.get(x, x) for x in atom.args))
