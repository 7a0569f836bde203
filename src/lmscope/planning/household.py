"""A symbolic household world in the spirit of ALFRED.

Receptacles stand at places of a few rooms (a fridge, a microwave, a sink, countertops, a table,
cabinets and drawers, which open and close); objects (apples, mugs, knives, potatoes, ...) lie in or
on receptacles. The agent goes from receptacle to receptacle, carries one object at a time, and can
open and close receptacles, heat an object it holds at an open microwave, cool it at an open fridge,
clean it at a sink, and slice an object lying at its receptacle while holding a knife.

Primitive actions (also the actions of the ground-truth PDDL domain):
``(goto FROM TO)``, ``(pick OBJ RECEP)``, ``(put OBJ RECEP)``, ``(open RECEP)``, ``(close RECEP)``,
``(heat OBJ RECEP)``, ``(cool OBJ RECEP)``, ``(clean OBJ RECEP)``, ``(slice OBJ KNIFE RECEP)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lmscope.planning.worlds import Action, Task, World

# receptacle kind -> (openable, how many, room)
RECEPTACLES = {
    "countertop": (False, 2, "kitchen"), "fridge": (True, 1, "kitchen"), "microwave": (True, 1, "kitchen"),
    "sink": (False, 1, "kitchen"), "cabinet": (True, 2, "kitchen"), "drawer": (True, 2, "kitchen"),
    "table": (False, 1, "dining room"), "shelf": (False, 1, "living room"),
}
# object kind -> properties (heatable, coolable, cleanable, sliceable, knife)
OBJECTS = {
    "apple": {"heatable", "coolable", "cleanable", "sliceable"},
    "potato": {"heatable", "coolable", "cleanable", "sliceable"},
    "bread": {"heatable", "sliceable"},
    "tomato": {"coolable", "cleanable", "sliceable"},
    "mug": {"heatable", "coolable", "cleanable"},
    "plate": {"cleanable", "coolable"},
    "egg": {"heatable", "coolable"},
    "knife": {"cleanable", "knife"},
    "book": set(),
}
MASS_NOUNS = {"bread"}
PROPERTIES = ("heatable", "coolable", "cleanable", "sliceable", "knife")
STATES = {"heat": "hot", "cool": "cold", "clean": "clean", "slice": "sliced"}
AT = {"fridge": "in", "microwave": "in", "cabinet": "in", "drawer": "in", "sink": "in"}

# template -> (instruction pattern, object property needed or None, treatment or None, place target?)
TEMPLATES = {
    "pick-place": ("put {a} {obj} {at} the {recep}", None, None, True),
    "clean-place": ("put {a} clean {obj} {at} the {recep}", "cleanable", "clean", True),
    "heat-place": ("heat {a} {obj} and put it {at} the {recep}", "heatable", "heat", True),
    "cool-place": ("put {a} cold {obj} {at} the {recep}", "coolable", "cool", True),
    "slice": ("slice {a} {obj}", "sliceable", "slice", False),
    "slice-place": ("put {a} sliced {obj} {at} the {recep}", "sliceable", "slice", True),
}
HELDOUT_TEMPLATES = ("cool-place", "slice-place")
TARGETS = ("countertop", "cabinet", "drawer", "table", "shelf", "fridge")


def _receptacles() -> list[tuple[str, str, bool]]:
    """(name, kind, openable) of every receptacle."""
    out = []
    for kind, (openable, n, _room) in RECEPTACLES.items():
        out += [(f"{kind}-{i + 1}", kind, openable) for i in range(n)]
    return out


def _kind(name: str) -> str:
    return name.rsplit("-", 1)[0]


@dataclass
class State:
    agent: str
    holding: str | None
    where: dict  # object -> receptacle (absent while held)
    opened: set = field(default_factory=set)
    props: set = field(default_factory=set)  # (state, object): hot, cold, clean, sliced


class Household(World):
    name = "household"
    description = "a symbolic household (ALFRED-like): go, pick, put, open, close, heat, cool, clean, slice"
    known_actions = ("goto", "pick", "put", "open", "close")
    goal_types = ("thing", "receptacle")  # the objects a goal prompt lists

    def _make_tasks(self, n_train, n_heldout, seed, n_test=0):
        train = [t for t in TEMPLATES if t not in HELDOUT_TEMPLATES]
        tasks = []
        for split, n, templates in (("train", n_train, train), ("heldout", n_heldout, list(HELDOUT_TEMPLATES)),
                                    ("test", n_test, train)):
            for i in range(n):
                rng = random.Random(f"household-{seed}-{split}-{i}")
                tasks.append(self._task(f"hh-{split}-{i:03d}", split, templates[i % len(templates)], rng))
        return tasks

    def _task(self, task_id, split, template, rng):
        pattern, need, treat, place = TEMPLATES[template]
        kinds = [k for k, p in OBJECTS.items() if need is None or need in p]
        obj_kind = rng.choice(kinds)
        recs = _receptacles()
        rec_names = [r[0] for r in recs]
        # the objects: the target's kind, a knife when slicing, and two distractors
        chosen = [obj_kind] + (["knife"] if treat == "slice" and obj_kind != "knife" else [])
        chosen += rng.sample([k for k in OBJECTS if k not in chosen], 2)
        objects = {f"{k}-1": rng.choice(rec_names) for k in chosen}
        target = f"{obj_kind}-1"
        goal = []
        if treat:
            goal.append(f"{STATES[treat]} {target}")
        recep = None
        if place:
            options = [r for r in rec_names if _kind(r) in TARGETS and r != objects[target]]
            recep = rng.choice(options)
            goal.append(f"in {target} {recep}")
        words = {"a": "some" if obj_kind in MASS_NOUNS else "a", "obj": obj_kind, "recep": _kind(recep) if recep else "", "at": AT.get(_kind(recep or ""), "on")}
        text = pattern.format(**words)
        if recep and sum(_kind(r) == _kind(recep) for r in rec_names) > 1:
            text += f" ({recep})"
        spec = {"receptacles": rec_names, "objects": dict(sorted(objects.items())), "agent": rng.choice(rec_names),
                "opened": []}
        return Task(task_id, self.name, split, text, template, tuple(goal), (template,), spec)

    # ----- the simulator -----
    def initial_state(self, task):
        sp = task.spec
        return State(sp["agent"], None, dict(sp["objects"]), set(sp["opened"]), set())

    def goal_holds(self, task, state):
        for g in task.goal:
            parts = g.split()
            if parts[0] == "in":
                if state.where.get(parts[1]) != parts[2]:
                    return False
            elif (parts[0], parts[1]) not in state.props:
                return False
        return True

    def step(self, task, state: State, action: Action) -> str | None:
        name, args = action
        arity = {"goto": 2, "pick": 2, "put": 2, "open": 1, "close": 1, "heat": 2, "cool": 2, "clean": 2,
                 "slice": 3}
        if name not in arity:
            return f"unknown action {name!r}"
        if len(args) != arity[name]:
            return f"{name} takes {arity[name]} arguments, got {len(args)}"
        recs = set(task.spec["receptacles"])
        objs = set(task.spec["objects"])
        r = args[-1]
        if r not in recs:
            return f"no receptacle {r}"
        for o in args[:-1] if name != "goto" else ():
            if o not in objs:
                return f"no object {o}"
        if name == "goto":
            if args[0] not in recs:
                return f"no receptacle {args[0]}"
            if state.agent != args[0]:
                return f"the agent is at {state.agent}, not at {args[0]}"
            state.agent = r
            return None
        if state.agent != r:
            return f"the agent is at {state.agent}, not at {r}"
        openable = RECEPTACLES[_kind(r)][0]
        closed = openable and r not in state.opened
        if name in ("open", "close"):
            if not openable:
                return f"{r} does not open or close"
            if name == "open":
                if not closed:
                    return f"{r} is already open"
                state.opened.add(r)
            else:
                if closed:
                    return f"{r} is already closed"
                state.opened.discard(r)
            return None
        o = args[0]
        if name == "pick":
            if state.where.get(o) != r:
                return f"{o} is not at {r}"
            if closed:
                return f"{r} is closed"
            if state.holding is not None:
                return f"hands full: holding {state.holding}"
            del state.where[o]
            state.holding = o
            return None
        if name == "slice":
            knife = args[1]
            if state.holding != knife or "knife" not in OBJECTS[_kind(knife)]:
                return f"missing tool: slicing needs a knife in hand, holding {state.holding or 'nothing'}"
            if state.where.get(o) != r:
                return f"{o} is not at {r}"
            if closed:
                return f"{r} is closed"
            if "sliceable" not in OBJECTS[_kind(o)]:
                return f"{o} cannot be sliced"
            state.props.add(("sliced", o))
            return None
        if state.holding != o:
            return f"not holding {o} (holding {state.holding or 'nothing'})"
        if closed:
            return f"{r} is closed"
        if name == "put":
            state.holding = None
            state.where[o] = r
            return None
        station = {"heat": "microwave", "cool": "fridge", "clean": "sink"}[name]
        if _kind(r) != station:
            return f"wrong receptacle: {name} needs a {station}, {r} is a {_kind(r)}"
        prop = {"heat": "heatable", "cool": "coolable", "clean": "cleanable"}[name]
        if prop not in OBJECTS[_kind(o)]:
            return f"{o} is not {prop}"
        if name == "heat":
            state.props.discard(("cold", o))
        if name == "cool":
            state.props.discard(("hot", o))
        state.props.add((STATES[name], o))
        return None

    # ----- the state abstraction -----
    def copy_state(self, state: State) -> State:
        return State(state.agent, state.holding, dict(state.where), set(state.opened), set(state.props))

    def state_key(self, state: State):
        return (state.agent, state.holding, tuple(sorted(state.where.items())), tuple(sorted(state.opened)),
                tuple(sorted(state.props)))

    def atoms(self, task, state: State, preds=None) -> frozenset[str]:
        want = _DYNAMIC_PREDS | _STATIC_PREDS if preds is None else set(preds)
        sp = task.spec
        out = []
        if want & _STATIC_PREDS:
            out += [a for a in _static_atoms(sp["receptacles"], sp["objects"]) if a.split(" ", 1)[0] in want]
        if "agent-at" in want:
            out.append(f"agent-at {state.agent}")
        if state.holding is None:
            if "hand-empty" in want:
                out.append("hand-empty")
        elif "holding" in want:
            out.append(f"holding {state.holding}")
        if "in" in want:
            out += [f"in {o} {r}" for o, r in state.where.items()]
        if "closed" in want or "reachable" in want:
            for r in sp["receptacles"]:
                if RECEPTACLES[_kind(r)][0] and r not in state.opened:
                    if "closed" in want:
                        out.append(f"closed {r}")
                elif "reachable" in want:
                    out.append(f"reachable {r}")
        out += [f"{p} {o}" for p, o in state.props if p in want]
        return frozenset(out)

    def primitive_actions(self, task, state: State) -> list[Action]:
        r = state.agent
        acts: list[Action] = [("goto", (r, to)) for to in task.spec["receptacles"] if to != r]
        openable = RECEPTACLES[_kind(r)][0]
        if openable:
            acts.append(("close", (r,)) if r in state.opened else ("open", (r,)))
        if openable and r not in state.opened:
            return acts
        here = [o for o, at in state.where.items() if at == r]
        held = state.holding
        if held is None:
            return acts + [("pick", (o, r)) for o in here]
        acts.append(("put", (held, r)))
        for name, station, prop in (("heat", "microwave", "heatable"), ("cool", "fridge", "coolable"),
                                    ("clean", "sink", "cleanable")):
            if _kind(r) == station and prop in OBJECTS[_kind(held)]:
                acts.append((name, (held, r)))
        if "knife" in OBJECTS[_kind(held)]:
            acts += [("slice", (o, held, r)) for o in here if "sliceable" in OBJECTS[_kind(o)]]
        return acts

    # ----- PDDL -----
    def oracle_domain(self) -> str:
        return oracle_domain_text()

    def problem(self, task):
        sp = task.spec
        recs = sp["receptacles"]
        objs = list(sp["objects"])
        init = [f"(agent-at {sp['agent']})", "(hand-empty)"]
        for r in recs:
            kind = _kind(r)
            init.append(f"(is-{kind} {r})")
            if RECEPTACLES[kind][0]:
                init.append(f"(openable {r})")
                init.append(f"(reachable {r})" if r in sp["opened"] else f"(closed {r})")
            else:
                init.append(f"(reachable {r})")
        for o, r in sp["objects"].items():
            init.append(f"(in {o} {r})")
            init += [f"({p} {o})" for p in PROPERTIES if p in OBJECTS[_kind(o)]]
        goal = " ".join(f"({g})" for g in task.goal)
        return (f"(define (problem {task.id})\n  (:domain household)\n  (:objects {' '.join(recs)} - receptacle\n"
                f"    {' '.join(objs)} - thing)\n  (:init\n    " + "\n    ".join(init)
                + f")\n  (:goal (and {goal})))\n")


_STATIC_PREDS = frozenset({"openable", *(f"is-{k}" for k in RECEPTACLES), *PROPERTIES})
_DYNAMIC_PREDS = frozenset({"agent-at", "hand-empty", "holding", "in", "closed", "reachable", *STATES.values()})


def _static_atoms(receptacles, objects) -> list[str]:
    """The atoms no action changes: the receptacles' kinds and openability, the objects' properties."""
    out = []
    for r in receptacles:
        out.append(f"is-{_kind(r)} {r}")
        if RECEPTACLES[_kind(r)][0]:
            out.append(f"openable {r}")
    for o in objects:
        out += [f"{p} {o}" for p in PROPERTIES if p in OBJECTS[_kind(o)]]
    return out


def oracle_domain_text() -> str:
    """The ground-truth household domain (STRIPS with typing)."""
    preds = ["(agent-at ?r - receptacle)", "(hand-empty)", "(holding ?o - thing)",
             "(in ?o - thing ?r - receptacle)", "(openable ?r - receptacle)", "(closed ?r - receptacle)",
             "(reachable ?r - receptacle)"]
    preds += [f"(is-{k} ?r - receptacle)" for k in RECEPTACLES]
    preds += [f"({p} ?o - thing)" for p in PROPERTIES] + [f"({s} ?o - thing)" for s in STATES.values()]
    acts = [
        ("goto", "?from - receptacle ?to - receptacle", "(agent-at ?from)", "(agent-at ?to) (not (agent-at ?from))"),
        ("pick", "?o - thing ?r - receptacle", "(agent-at ?r) (in ?o ?r) (reachable ?r) (hand-empty)",
         "(holding ?o) (not (in ?o ?r)) (not (hand-empty))"),
        ("put", "?o - thing ?r - receptacle", "(agent-at ?r) (holding ?o) (reachable ?r)",
         "(in ?o ?r) (hand-empty) (not (holding ?o))"),
        ("open", "?r - receptacle", "(agent-at ?r) (openable ?r) (closed ?r)", "(reachable ?r) (not (closed ?r))"),
        ("close", "?r - receptacle", "(agent-at ?r) (openable ?r) (reachable ?r)", "(closed ?r) (not (reachable ?r))"),
        ("heat", "?o - thing ?r - receptacle", "(agent-at ?r) (is-microwave ?r) (reachable ?r) (holding ?o) (heatable ?o)",
         "(hot ?o) (not (cold ?o))"),
        ("cool", "?o - thing ?r - receptacle", "(agent-at ?r) (is-fridge ?r) (reachable ?r) (holding ?o) (coolable ?o)",
         "(cold ?o) (not (hot ?o))"),
        ("clean", "?o - thing ?r - receptacle", "(agent-at ?r) (is-sink ?r) (reachable ?r) (holding ?o) (cleanable ?o)",
         "(clean ?o)"),
        ("slice", "?o - thing ?k - thing ?r - receptacle",
         "(agent-at ?r) (in ?o ?r) (reachable ?r) (holding ?k) (knife ?k) (sliceable ?o)", "(sliced ?o)"),
    ]
    text = [f"(:action {n}\n  :parameters ({p})\n  :precondition (and {pre})\n  :effect (and {eff}))"
            for n, p, pre, eff in acts]
    return ("(define (domain household)\n  (:requirements :strips :typing)\n  (:types receptacle thing)\n"
            "  (:predicates\n    " + "\n    ".join(preds) + ")\n\n" + "\n\n".join(text) + ")\n")
