"""The worlds Ada plans in: one interface for every symbolic world, and a registry.

A world makes seeded tasks (a natural-language instruction, a start state, a goal), says how a task
looks as a PDDL problem, holds a hand-written ground-truth PDDL domain (the oracle) whose actions are the
world's primitive actions, and executes a sequence of primitive actions in a low-level simulator that
reports success, or the first action that failed and why.

An action is ``(name, args)``: the name of a primitive action and a tuple of object names, exactly as a
plan of the oracle domain spells them, so an oracle plan runs in the simulator as it is.

A world also abstracts its states into PDDL: :meth:`World.atoms` lists the ground atoms true in a state,
in the vocabulary of the oracle domain (so that applying an oracle action in the simulator and applying
its add and delete effects to the atoms agree), and :meth:`World.primitive_actions` lists the actions worth
trying in a state, for the low-level controller (:mod:`lmscope.planning.controller`) to search over.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from lmscope.errors import LmscopeError, check_int
from lmscope.planning.pddl import Domain, parse_domain

SPLITS = ("train", "heldout", "test")


@dataclass(frozen=True)
class Task:
    """One task of a world: ``id`` (unique in its task list), ``split`` (train, heldout: needs recipes or
    templates no training task uses, or test: a new instance of the training recipes),
    ``instruction`` (the natural-language task), ``template`` (the instruction's template name),
    ``goal`` (the goal atoms, PDDL without the parentheses: ``has bow``, ``in mug-1 cabinet-1``),
    ``recipe`` (the rules or template the task is built on) and ``spec`` (the world's description of
    the start state and goal; JSON-ready)."""

    id: str
    world: str
    split: str
    instruction: str
    template: str
    goal: tuple[str, ...]
    recipe: tuple[str, ...] = ()
    spec: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExecResult:
    """The simulator's verdict: ``success`` (every action ran and the goal holds), ``steps`` (actions
    that ran), ``failed_at`` (index of the first action that failed, None when all ran) and ``reason``."""

    success: bool
    steps: int
    failed_at: int | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


Action = tuple[str, tuple[str, ...]]


def normalize_action(a) -> Action:
    """An action as ``(name, (arg, ...))`` in lower case, from a pair or a ``"(name a b)"`` string;
    ValueError for anything else."""
    if isinstance(a, str):
        parts = a.strip().removeprefix("(").removesuffix(")").split()
        if not parts:
            raise ValueError(f"empty action {a!r}")
        return parts[0].lower(), tuple(p.lower() for p in parts[1:])
    try:
        name, args = a
    except (TypeError, ValueError):
        raise ValueError(f"not an action: {a!r}") from None
    if not isinstance(name, str) or isinstance(args, str) or not hasattr(args, "__iter__"):
        raise ValueError(f"not an action: {a!r}")
    return name.lower(), tuple(str(x).lower() for x in args)


class World:
    """The interface every world implements (see :mod:`lmscope.planning.minecraft` and
    :mod:`lmscope.planning.household`)."""

    name: str = ""
    description: str = ""
    # the primitive actions whose PDDL model the agent is given (the others it must learn)
    known_actions: tuple[str, ...] = ()
    goal_types: tuple[str, ...] | None = None  # the object types a goal prompt lists (None: all)

    def make_tasks(self, n_train: int = 40, n_heldout: int = 20, seed: int = 0, n_test: int = 0) -> list[Task]:
        """The seeded tasks: ``n_train`` training tasks, ``n_heldout`` held-out tasks (recipes or templates
        no training task uses) and ``n_test`` test tasks (the training recipes or templates on new maps);
        the first two lists do not depend on ``n_test``."""
        check_int("n_train", n_train, 1, 10_000)
        check_int("n_heldout", n_heldout, 1, 10_000)
        check_int("n_test", n_test, 0, 10_000)
        check_int("seed", seed, 0, 2**32 - 1)
        return self._make_tasks(n_train, n_heldout, seed, n_test)

    def _make_tasks(self, n_train: int, n_heldout: int, seed: int, n_test: int) -> list[Task]:
        raise NotImplementedError

    def initial_state(self, task: Task) -> Any:
        raise NotImplementedError

    def oracle_domain(self) -> str:
        """The ground-truth domain as PDDL text (STRIPS with typing)."""
        raise NotImplementedError

    def problem(self, task: Task) -> str:
        """The task as a PDDL problem of the oracle domain."""
        raise NotImplementedError

    def step(self, task: Task, state, action: Action) -> str | None:
        """Apply ``action`` to ``state`` in place; None on success, else why it failed (state unchanged)."""
        raise NotImplementedError

    def goal_holds(self, task: Task, state) -> bool:
        raise NotImplementedError

    def execute(self, task: Task, actions) -> ExecResult:
        """Run ``actions`` from the task's start state in order; stop at the first one that fails."""
        state = self.initial_state(task)
        acts = list(actions)
        for i, raw in enumerate(acts):
            try:
                act = normalize_action(raw)
            except ValueError as e:
                return ExecResult(False, i, i, f"malformed action: {e}")
            why = self.step(task, state, act)
            if why is not None:
                return ExecResult(False, i, i, f"({act[0]} {' '.join(act[1])}): {why}")
        if not self.goal_holds(task, state):
            return ExecResult(False, len(acts), None, "every action ran but the goal does not hold")
        return ExecResult(True, len(acts), None, "goal reached")

    # ----- the state abstraction -----
    def copy_state(self, state):
        """An independent copy of ``state``."""
        return copy.deepcopy(state)

    def state_key(self, state) -> Hashable:
        """A hashable key of ``state``: equal keys exactly when the states are equal."""
        raise NotImplementedError

    def atoms(self, task: Task, state, preds: Iterable[str] | None = None) -> frozenset[str]:
        """Every ground atom true in ``state`` as ``"pred a b"`` (the vocabulary of the oracle domain and
        :meth:`problem`, static atoms included); only those of the predicates ``preds`` when given."""
        raise NotImplementedError

    def primitive_actions(self, task: Task, state) -> list[Action]:
        """The primitive actions worth trying in ``state``, in a fixed order: every action that changes
        the state when it succeeds is among them (most of them succeed)."""
        raise NotImplementedError

    def skeleton_domain(self) -> Domain:
        """The oracle domain with only the :attr:`known_actions`; its ``static`` predicates are those of
        the full oracle domain (facts no primitive action changes)."""
        key = type(self)
        if key not in _SKELETONS:
            full = parse_domain(self.oracle_domain())
            ops = tuple(op for op in full.operators if op.name in self.known_actions)
            missing = set(self.known_actions) - {op.name for op in ops}
            if missing:
                raise ValueError(f"{self.name}: known actions missing from the oracle domain: {sorted(missing)}")
            _SKELETONS[key] = full.with_operators(ops)
        return _SKELETONS[key]


_SKELETONS: dict[type, Domain] = {}


def world_names() -> list[str]:
    return ["minecraft", "household"]


def get_world(name: str) -> World:
    """The world called ``name`` (minecraft or household)."""
    key = str(name).strip().lower()
    if key == "minecraft":
        from lmscope.planning.minecraft import Minecraft

        return Minecraft()
    if key == "household":
        from lmscope.planning.household import Household

        return Household()
    raise LmscopeError(f"unknown world {name!r}: choose one of {', '.join(world_names())}")


def find_task(tasks: list[Task], task_id: str) -> Task:
    for t in tasks:
        if t.id == task_id:
            return t
    ids = [t.id for t in tasks]
    hint = f" ({ids[0]} .. {ids[-1]})" if ids else ""
    raise LmscopeError(f"unknown task {task_id!r}: the {len(ids)} tasks are{hint}; list them with "
                       "`lmscope ada tasks`")


@dataclass
class OraclePlan:
    """A task planned with its world's ground-truth domain, and the plan's run in the simulator."""

    task: Task
    plan: Any  # lmscope.planning.planner.PlanResult
    execution: ExecResult | None  # None when the planner found no plan

    @property
    def success(self) -> bool:
        return bool(self.plan.solved and self.execution is not None and self.execution.success)

    def to_dict(self) -> dict:
        return {"task": self.task.to_dict(), "plan": self.plan.to_dict(),
                "execution": self.execution.to_dict() if self.execution else None, "success": self.success}


def oracle_plan(world: World, task: Task, planner: str = "auto", time_limit: float = 10.0,
                cache: bool = True) -> OraclePlan:
    """Plan ``task`` with the world's ground-truth domain through :func:`lmscope.planning.planner.plan`,
    then execute the plan in the world's simulator."""
    from lmscope.planning.planner import plan

    res = plan(world.oracle_domain(), world.problem(task), planner=planner, time_limit=time_limit, cache=cache)
    return OraclePlan(task, res, world.execute(task, res.actions) if res.solved else None)
