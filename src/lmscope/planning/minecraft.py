"""Mini Minecraft: a symbolic crafting world on a grid.

Tiles of a ``size`` x ``size`` grid (``t-X-Y``) may hold a site: a resource (a tree, an iron ore vein,
sheep, ...) or a crafting station (a work station, a furnace, ...), and at most one item lying on the
floor. The agent stands on one tile and carries an inventory of ``SLOTS`` slots, one item per slot and
at most one item of each kind. Eleven mining rules (a tool, or bare hands, at a resource gives an item)
and fifteen crafting rules (a station and one or two ingredients give an item, the ingredients are used
up) define the world.

Primitive actions (also the actions of the ground-truth PDDL domain, so an oracle plan runs as it is):

- ``(move-to FROM TO)``: step to a neighbouring tile;
- ``(pick-up ITEM TILE SLOT)`` / ``(place ITEM TILE SLOT)``: between the floor of the agent's tile and a slot;
- ``(mine-... TILE [TOOL-SLOT] OUT-SLOT)``: one action per mining rule, the tool held in TOOL-SLOT;
- ``(craft-... TILE SLOT [SLOT2])``: one action per crafting rule, the ingredients held in SLOT (and
  SLOT2, in the rule's order), the result going to SLOT.

Item kinds are constants of the domain (``wood``, ``axe``, ...), so every operator has at most three
parameters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lmscope.planning.worlds import Action, Task, World

SIZE = 5
SLOTS = 3

# (rule, resource site, tool or None, item made)
MINING_RULES = (
    ("mine-iron-ore", "iron-ore-vein", "pickaxe", "iron-ore"),
    ("mine-coal", "coal-ore-vein", "pickaxe", "coal"),
    ("mine-cobblestone", "cobblestone-stash", "pickaxe", "cobblestone"),
    ("mine-wood", "tree", "axe", "wood"),
    ("mine-feather", "chicken", "sword", "feather"),
    ("mine-wool-with-shears", "sheep", "shears", "wool"),
    ("mine-wool-with-sword", "sheep", "sword", "wool"),
    ("mine-potato", "potato-plant", None, "potato"),
    ("mine-beetroot", "beetroot-crop", None, "beetroot"),
    ("mine-gold-ore", "gold-ore-vein", "pickaxe", "gold-ore"),
    ("mine-sugar-cane", "sugar-cane-plant", None, "sugar-cane"),
)
# (rule, station, ingredients (one or two, of different kinds), item made)
CRAFTING_RULES = (
    ("craft-wood-plank", "work-station", ("wood",), "wood-plank"),
    ("craft-stick", "work-station", ("wood-plank",), "stick"),
    ("craft-arrow", "weapon-station", ("stick", "feather"), "arrow"),
    ("craft-sword", "weapon-station", ("stick", "iron-ingot"), "sword"),
    ("craft-shears-from-iron", "tool-station", ("iron-ingot",), "shears"),
    ("craft-shears-from-gold", "tool-station", ("gold-ingot",), "shears"),
    ("craft-iron-ingot", "furnace", ("iron-ore", "coal"), "iron-ingot"),
    ("craft-gold-ingot", "furnace", ("gold-ore", "coal"), "gold-ingot"),
    ("craft-bed", "bed-station", ("wood-plank", "wool"), "bed"),
    ("craft-boat", "boat-station", ("wood-plank",), "boat"),
    ("craft-bowl-from-wood", "food-station", ("wood-plank",), "bowl"),
    ("craft-bowl-from-iron", "food-station", ("iron-ingot",), "bowl"),
    ("craft-cooked-potato", "furnace", ("potato", "coal"), "cooked-potato"),
    ("craft-beetroot-soup", "food-station", ("beetroot", "bowl"), "beetroot-soup"),
    ("craft-paper", "work-station", ("sugar-cane",), "paper"),
)
# rules only held-out tasks need: no training task's goal can be reached through them
HELDOUT_RULES = frozenset({"mine-beetroot", "craft-bed", "craft-boat", "craft-cooked-potato",
                           "craft-beetroot-soup", "craft-paper"})
BASE_TOOLS = ("axe", "pickaxe")  # never crafted: lie on the floor or in the inventory at the start
SITES = tuple(dict.fromkeys([r[1] for r in MINING_RULES] + [r[1] for r in CRAFTING_RULES]))
ITEMS = tuple(dict.fromkeys(list(BASE_TOOLS) + [r[3] for r in MINING_RULES]
                            + [x for r in CRAFTING_RULES for x in (*r[2], r[3])]))
MASS_NOUNS = {"wood", "coal", "cobblestone", "wool", "iron-ore", "gold-ore", "sugar-cane", "paper", "shears",
              "beetroot-soup"}
RULES = {r[0]: r for r in MINING_RULES + CRAFTING_RULES}


def producers(item: str) -> list[str]:
    return [r[0] for r in MINING_RULES if r[3] == item] + [r[0] for r in CRAFTING_RULES if r[3] == item]


def _words(item: str, article: bool = True) -> str:
    w = item.replace("-", " ")
    if not article or item in MASS_NOUNS:
        return w
    return ("an " if w[0] in "aeiou" else "a ") + w


def _tile(x: int, y: int) -> str:
    return f"t-{x}-{y}"


@dataclass
class State:
    """The mutable part of the world: the agent's tile, the inventory slots, the items on the floor."""

    agent: str
    slots: list  # item or None per slot
    floor: dict = field(default_factory=dict)  # tile -> item


class Minecraft(World):
    name = "minecraft"
    description = "Mini Minecraft: mine resources and craft items on a grid, with a small inventory"
    known_actions = ("move-to", "pick-up", "place")
    goal_types = ("item",)  # the objects a goal prompt lists (the tiles and slots are left out)

    # ----- tasks -----
    def _make_tasks(self, n_train, n_heldout, seed, n_test=0):
        heldout_goals = sorted({RULES[r][3] for r in HELDOUT_RULES})
        train_goals = sorted({r[3] for r in MINING_RULES + CRAFTING_RULES} - set(heldout_goals))
        tasks = []
        for split, n, goals in (("train", n_train, train_goals), ("heldout", n_heldout, heldout_goals),
                                ("test", n_test, train_goals)):
            order = list(goals)
            random.Random(f"minecraft-{seed}-{split}-order").shuffle(order)
            for i in range(n):
                rng = random.Random(f"minecraft-{seed}-{split}-{i}")
                tasks.append(self._task(f"mc-{split}-{i:03d}", split, order[i % len(order)], rng,
                                        allow_heldout=split == "heldout"))
        return tasks

    def _task(self, task_id, split, goal, rng, allow_heldout):
        sites: list[str] = []
        given: list[str] = []
        rules: list[str] = []

        def supply(item: str, depth: int) -> None:
            if item in BASE_TOOLS or (depth > 0 and (depth >= 3 or rng.random() < 0.4)):
                if item not in given:
                    given.append(item)
                return
            options = [r for r in producers(item) if allow_heldout or r not in HELDOUT_RULES]
            rule = RULES[rng.choice(options)]
            rules.append(rule[0])
            sites.append(rule[1])
            if rule[0].startswith("mine-"):
                if rule[2] is not None:
                    supply(rule[2], depth + 1)
            else:
                for ing in rule[2]:
                    supply(ing, depth + 1)

        supply(goal, 0)
        tiles = [_tile(x, y) for x in range(SIZE) for y in range(SIZE)]
        distract = [s for s in SITES if s not in sites]
        sites = list(dict.fromkeys(sites)) + rng.sample(distract, 2)
        site_tiles = rng.sample(tiles, len(sites))
        site_map = dict(zip(site_tiles, sites))
        inventory = []
        floor = {}
        free = [t for t in tiles if t not in site_map]
        for item in given:
            if not inventory and rng.random() < 0.3:
                inventory.append(item)
            else:
                t = rng.choice([t for t in free if t not in floor])
                floor[t] = item
        agent = rng.choice(tiles)
        direct = RULES[rules[0]][0].startswith("craft-") and all(i in given for i in RULES[rules[0]][2])
        if rules[0].startswith("mine-"):
            template, text = "mine", f"mine {_words(goal, article=False)}"
        elif direct:
            template = "craft-using"
            text = f"craft {_words(goal)} using " + " and ".join(_words(i, False) for i in RULES[rules[0]][2])
        else:
            template, text = "craft", f"craft {_words(goal)}"
        spec = {"size": SIZE, "slots": SLOTS, "sites": dict(sorted(site_map.items())), "agent": agent,
                "inventory": inventory, "floor": dict(sorted(floor.items()))}
        return Task(task_id, self.name, split, text, template, (f"has {goal}",), tuple(rules), spec)

    # ----- the simulator -----
    def initial_state(self, task: Task) -> State:
        sp = task.spec
        slots = list(sp["inventory"]) + [None] * (sp["slots"] - len(sp["inventory"]))
        return State(sp["agent"], slots, dict(sp["floor"]))

    def goal_holds(self, task, state) -> bool:
        return all(g.split()[1] in state.slots for g in task.goal)

    def step(self, task: Task, state: State, action: Action) -> str | None:
        return _Sim(task).step(state, action)

    # ----- the state abstraction -----
    def copy_state(self, state: State) -> State:
        return State(state.agent, list(state.slots), dict(state.floor))

    def state_key(self, state: State):
        return state.agent, tuple(state.slots), tuple(sorted(state.floor.items()))

    def atoms(self, task: Task, state: State, preds=None) -> frozenset[str]:
        want = _DYNAMIC_PREDS | _STATIC_PREDS if preds is None else set(preds)
        sp = task.spec
        out = []
        if want & _STATIC_PREDS:
            out += [a for a in _static_atoms(sp["size"], sp["sites"]) if a.split(" ", 1)[0] in want]
        if "agent-at" in want:
            out.append(f"agent-at {state.agent}")
        if "item-at" in want:
            out += [f"item-at {item} {t}" for t, item in state.floor.items()]
        if "floor-free" in want:
            n = sp["size"]
            out += [f"floor-free {_tile(x, y)}" for x in range(n) for y in range(n)
                    if _tile(x, y) not in state.floor]
        for k, item in enumerate(state.slots):
            if item is None:
                if "slot-empty" in want:
                    out.append(f"slot-empty s{k}")
                continue
            if "holding" in want:
                out.append(f"holding s{k} {item}")
            if "has" in want:
                out.append(f"has {item}")
        if "lacks" in want:
            out += [f"lacks {item}" for item in ITEMS if item not in state.slots]
        return frozenset(out)

    def primitive_actions(self, task: Task, state: State) -> list[Action]:
        n = task.spec["size"]
        t = state.agent
        x, y = map(int, t.split("-")[1:])
        acts: list[Action] = [("move-to", (t, _tile(x + dx, y + dy))) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
                              if 0 <= x + dx < n and 0 <= y + dy < n]
        slots = [f"s{k}" for k in range(len(state.slots))]
        empty = [slots[k] for k, item in enumerate(state.slots) if item is None]
        where = {item: slots[k] for k, item in enumerate(state.slots) if item is not None}
        lying = state.floor.get(t)
        if lying is not None and lying not in where:
            acts += [("pick-up", (lying, t, s)) for s in empty]
        if lying is None:
            acts += [("place", (item, t, s)) for item, s in where.items()]
        site = task.spec["sites"].get(t)
        for name in _RULES_AT.get(site, ()):
            _, _, need, out = RULES[name]
            if out in where:
                continue
            if name.startswith("mine-"):
                if need is None:
                    acts += [(name, (t, s)) for s in empty]
                elif need in where:
                    acts += [(name, (t, where[need], s)) for s in empty]
            elif all(i in where for i in need):
                acts.append((name, (t, *(where[i] for i in need))))
        return acts

    # ----- PDDL -----
    def oracle_domain(self) -> str:
        return oracle_domain_text()

    def problem(self, task: Task) -> str:
        sp = task.spec
        n = sp["size"]
        tiles = [_tile(x, y) for x in range(n) for y in range(n)]
        slots = [f"s{i}" for i in range(sp["slots"])]
        init = [f"(agent-at {sp['agent']})"]
        for x in range(n):
            for y in range(n):
                for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    if 0 <= x + dx < n and 0 <= y + dy < n:
                        init.append(f"(adjacent {_tile(x, y)} {_tile(x + dx, y + dy)})")
        for t, site in sp["sites"].items():
            init.append(f"({site} {t})")
        for t in tiles:
            init.append(f"(item-at {sp['floor'][t]} {t})" if t in sp["floor"] else f"(floor-free {t})")
        held = set(sp["inventory"])
        for i, s in enumerate(slots):
            init.append(f"(holding {s} {sp['inventory'][i]})" if i < len(sp["inventory"]) else f"(slot-empty {s})")
        for item in ITEMS:
            init.append(f"(has {item})" if item in held else f"(lacks {item})")
        goal = " ".join(f"({g})" for g in task.goal)
        return (f"(define (problem {task.id})\n  (:domain minecraft)\n  (:objects {' '.join(tiles)} - tile\n"
                f"    {' '.join(slots)} - slot)\n  (:init\n    "
                + "\n    ".join(init) + f")\n  (:goal (and {goal})))\n")


_STATIC_PREDS = frozenset({"adjacent", *SITES})
_DYNAMIC_PREDS = frozenset({"agent-at", "item-at", "floor-free", "holding", "slot-empty", "has", "lacks"})
# site -> the rules that work there, in the order of the rule tables
_RULES_AT: dict[str, tuple[str, ...]] = {}
for _r in MINING_RULES + CRAFTING_RULES:
    _RULES_AT[_r[1]] = (*_RULES_AT.get(_r[1], ()), _r[0])


def _static_atoms(n: int, sites: dict) -> list[str]:
    """The atoms no action changes: the grid's adjacency and the sites."""
    out = []
    for x in range(n):
        for y in range(n):
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= x + dx < n and 0 <= y + dy < n:
                    out.append(f"adjacent {_tile(x, y)} {_tile(x + dx, y + dy)}")
    out += [f"{site} {t}" for t, site in sites.items()]
    return out


class _Sim:
    """The rules of the world applied to one task's map."""

    def __init__(self, task: Task):
        self.n = task.spec["size"]
        self.sites = task.spec["sites"]

    def _tile(self, t: str) -> tuple[int, int] | None:
        parts = t.split("-")
        if len(parts) == 3 and parts[0] == "t" and parts[1].isdigit() and parts[2].isdigit():
            x, y = int(parts[1]), int(parts[2])
            if x < self.n and y < self.n:
                return x, y
        return None

    @staticmethod
    def _slot(state: State, s: str) -> int | None:
        if s.startswith("s") and s[1:].isdigit() and int(s[1:]) < len(state.slots):
            return int(s[1:])
        return None

    def step(self, state: State, action: Action) -> str | None:
        name, args = action
        if name in ("move-to", "pick-up", "place") or name in RULES:
            pass
        else:
            return f"unknown action {name!r}"
        want = self._arity(name)
        if len(args) != want:
            return f"{name} takes {want} arguments, got {len(args)}"
        if name == "move-to":
            a, b = self._tile(args[0]), self._tile(args[1])
            if a is None or b is None:
                return f"no tile {args[0] if a is None else args[1]}"
            if state.agent != args[0]:
                return f"the agent is at {state.agent}, not at {args[0]}"
            if abs(a[0] - b[0]) + abs(a[1] - b[1]) != 1:
                return f"{args[1]} is not adjacent to {args[0]}"
            state.agent = args[1]
            return None
        if name in ("pick-up", "place"):
            item, t, s = args
            if self._tile(t) is None:
                return f"no tile {t}"
            k = self._slot(state, s)
            if k is None:
                return f"no inventory slot {s}"
            if state.agent != t:
                return f"the agent is at {state.agent}, not at {t}"
            if name == "pick-up":
                if state.floor.get(t) != item:
                    return f"no {item} on the floor at {t}"
                if state.slots[k] is not None:
                    return f"inventory full: slot {s} holds {state.slots[k]}"
                if item in state.slots:
                    return f"already holding {item} (one item of each kind)"
                del state.floor[t]
                state.slots[k] = item
            else:
                if state.slots[k] != item:
                    return f"slot {s} does not hold {item}"
                if t in state.floor:
                    return f"the floor at {t} already holds {state.floor[t]}"
                state.slots[k] = None
                state.floor[t] = item
            return None
        rule = RULES[name]
        t = args[0]
        if self._tile(t) is None:
            return f"no tile {t}"
        if state.agent != t:
            return f"the agent is at {state.agent}, not at {t}"
        site = self.sites.get(t)
        if name.startswith("mine-"):
            _, need_site, tool, out = rule
            if site != need_site:
                return f"no {need_site} at {t} (it holds {site or 'nothing'})"
            if tool is not None:
                k = self._slot(state, args[1])
                if k is None or state.slots[k] != tool:
                    return f"missing tool: {name} needs {tool} in slot {args[1]}"
            os_ = args[-1]
            k = self._slot(state, os_)
            if k is None:
                return f"no inventory slot {os_}"
            if state.slots[k] is not None:
                return f"inventory full: slot {os_} holds {state.slots[k]}"
            if out in state.slots:
                return f"already holding {out} (one item of each kind)"
            state.slots[k] = out
            return None
        _, station, ingredients, out = rule
        if site != station:
            return f"wrong station: {name} needs a {station}, {t} holds {site or 'nothing'}"
        used = []
        for j, ing in enumerate(ingredients):
            k = self._slot(state, args[1 + j])
            if k is None or state.slots[k] != ing:
                return f"missing ingredient: {name} needs {ing} in slot {args[1 + j]}"
            used.append(k)
        if out in state.slots:
            return f"already holding {out} (one item of each kind)"
        for k in used:
            state.slots[k] = None
        state.slots[used[0]] = out
        return None

    @staticmethod
    def _arity(name: str) -> int:
        if name == "move-to":
            return 2
        if name in ("pick-up", "place"):
            return 3
        rule = RULES[name]
        if name.startswith("mine-"):
            return 3 if rule[2] is not None else 2
        return 1 + len(rule[2])


def oracle_domain_text() -> str:
    """The ground-truth domain: move-to, pick-up, place and one action per mining and crafting rule."""
    preds = ["(agent-at ?t - tile)", "(adjacent ?a - tile ?b - tile)", "(item-at ?i - item ?t - tile)",
             "(floor-free ?t - tile)", "(holding ?s - slot ?i - item)", "(slot-empty ?s - slot)",
             "(has ?i - item)", "(lacks ?i - item)"]
    preds += [f"({s} ?t - tile)" for s in SITES]
    acts = [
        "(:action move-to\n  :parameters (?from - tile ?to - tile)\n"
        "  :precondition (and (agent-at ?from) (adjacent ?from ?to))\n"
        "  :effect (and (agent-at ?to) (not (agent-at ?from))))",
        "(:action pick-up\n  :parameters (?i - item ?t - tile ?s - slot)\n"
        "  :precondition (and (agent-at ?t) (item-at ?i ?t) (slot-empty ?s) (lacks ?i))\n"
        "  :effect (and (holding ?s ?i) (has ?i) (floor-free ?t)\n"
        "               (not (item-at ?i ?t)) (not (slot-empty ?s)) (not (lacks ?i))))",
        "(:action place\n  :parameters (?i - item ?t - tile ?s - slot)\n"
        "  :precondition (and (agent-at ?t) (holding ?s ?i) (floor-free ?t))\n"
        "  :effect (and (item-at ?i ?t) (slot-empty ?s) (lacks ?i)\n"
        "               (not (floor-free ?t)) (not (holding ?s ?i)) (not (has ?i))))",
    ]
    for name, site, tool, out in MINING_RULES:
        params = "?t - tile " + ("?ts - slot " if tool else "") + "?os - slot"
        pre = f"(agent-at ?t) ({site} ?t) " + (f"(holding ?ts {tool}) " if tool else "")
        pre += f"(lacks {out}) (slot-empty ?os)"
        acts.append(f"(:action {name}\n  :parameters ({params})\n  :precondition (and {pre})\n"
                    f"  :effect (and (holding ?os {out}) (has {out}) (not (lacks {out})) (not (slot-empty ?os))))")
    for name, station, ings, out in CRAFTING_RULES:
        params = "?t - tile " + " ".join(f"?s{j} - slot" for j in range(len(ings)))
        pre = [f"(agent-at ?t) ({station} ?t)"]
        eff = [f"(holding ?s0 {out}) (has {out}) (not (lacks {out}))"]
        for j, ing in enumerate(ings):
            pre.append(f"(holding ?s{j} {ing})")
            eff.append(f"(not (holding ?s{j} {ing})) (not (has {ing})) (lacks {ing})")
        if len(ings) == 2:
            eff.append("(slot-empty ?s1)")
        pre.append(f"(lacks {out})")
        acts.append(f"(:action {name}\n  :parameters ({params})\n  :precondition (and {' '.join(pre)})\n"
                    f"  :effect (and {' '.join(eff)}))")
    return ("(define (domain minecraft)\n  (:requirements :strips :typing)\n  (:types tile slot item)\n"
            f"  (:constants {' '.join(ITEMS)} - item)\n"
            "  (:predicates\n    " + "\n    ".join(preds) + ")\n\n" + "\n\n".join(acts) + ")\n")
