"""The data every part of ``lmscope.skills`` passes around: demonstrations and their segmentations.

A **demonstration** is one episode of a BabyAI level solved by the ``minigrid`` expert bot: ``T`` steps,
each an observation (before the action) and the action taken. A **segmentation** cuts the ``T`` actions
into contiguous segments, each a candidate skill; ``starts`` lists where each segment begins.

Files (written by ``lmscope skills demos`` / ``segment``; read by ``train`` / ``transfer``)
-----------------------------------------------------------------------------------------
Demonstration folder ``DIR``:

``manifest.json``
    ``{"format": "lmscope-demos", "version": 1, "level", "n", "seed", "count", "steps" (total),
    "files": {name: sha256}}``.
``arrays.npz``
    ``images`` uint8 ``[S, 7, 7, 3]`` (minigrid's symbolic partial view: object type, colour, state),
    ``directions`` int8 ``[S]`` (0-3), ``actions`` int8 ``[S]`` (minigrid ``Actions``: 0 left, 1 right,
    2 forward, 3 pickup, 4 drop, 5 toggle, 6 done), ``offsets`` int64 ``[count + 1]``: demo ``i`` is rows
    ``offsets[i]:offsets[i+1]`` of the other arrays (``S`` = total steps).
``demos.jsonl``
    One row per demo, in order: ``{"index", "level", "seed", "mission", "steps": [T short texts],
    "subgoals": [T texts]}``. ``steps[t]`` describes action ``t`` for the language model ("turn left",
    "move forward", "pick up the red ball", "open the green door"); ``subgoals[t]`` is the bot's own
    current subgoal when it chose action ``t`` (its stack top, e.g. ``"GoNextTo(red ball)"``, ``"Pickup"``,
    ``"Drop"``, ``"Open"``, ``"Explore"``).

Segmentation folder ``SEG``:

``manifest.json``
    ``{"format": "lmscope-segments", "version": 1, "demos": absolute path of DIR, "demos_sha256":
    sha256 of DIR's manifest.json, "method": "lm"|"fixed"|"random"|"none", "lm": identity or null,
    "counts": {source: number of demos}}``.
``segments.jsonl``
    One row per demo, in the demos' order: :meth:`Segmentation.to_dict` plus ``"index"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
N_ACTIONS = len(ACTION_NAMES)
VIEW = 7  # the agent's partial view is VIEW x VIEW cells


@dataclass
class Demo:
    """One expert episode: ``T`` observations and the ``T`` actions taken after them."""

    level: str  # gymnasium id, e.g. "BabyAI-GoToLocal-v0"
    seed: int  # the env.reset seed that recreates the episode
    mission: str
    images: np.ndarray  # uint8 [T, 7, 7, 3]
    directions: np.ndarray  # int8 [T]
    actions: np.ndarray  # int8 [T]
    steps: list[str]  # T descriptions of the actions, for the language model
    subgoals: list[str]  # T bot subgoals (stack top when each action was chosen)

    def __len__(self) -> int:
        return int(len(self.actions))

    def subgoal_starts(self) -> list[int]:
        """Where the bot's subgoal changes: 0 and every t with subgoals[t] != subgoals[t-1]."""
        return [t for t in range(len(self.subgoals)) if t == 0 or self.subgoals[t] != self.subgoals[t - 1]]


@dataclass
class Segmentation:
    """Contiguous segments over a demo's ``T`` actions: segment ``k`` is ``starts[k]:starts[k+1]`` (the last
    ends at ``T``). ``starts[0] == 0`` and ``starts`` is strictly increasing and below ``T``."""

    starts: list[int]
    descriptions: list[str] = field(default_factory=list)  # one per segment ("" where none was given)
    source: str = "lm"  # lm | repaired | fallback | fixed | random | none
    reason: str | None = None  # why an LM answer was repaired or fell back (a reason code)
    answer: str | None = None  # the LM's raw answer, where there was one

    def boundaries(self, length: int) -> np.ndarray:
        """Boolean ``[T]``: True where a segment starts (a new skill may begin there)."""
        mask = np.zeros(length, dtype=bool)
        mask[[s for s in self.starts if 0 <= s < length]] = True
        return mask

    def lengths(self, length: int) -> list[int]:
        ends = list(self.starts[1:]) + [length]
        return [e - s for s, e in zip(self.starts, ends)]

    def to_dict(self) -> dict:
        return {"starts": list(map(int, self.starts)), "descriptions": list(self.descriptions),
                "source": self.source, "reason": self.reason, "answer": self.answer}

    @classmethod
    def from_dict(cls, d: dict) -> Segmentation:
        return cls(starts=[int(s) for s in d["starts"]], descriptions=list(d.get("descriptions") or []),
                   source=d.get("source", "lm"), reason=d.get("reason"), answer=d.get("answer"))


def boundary_f1(predicted: list[int], gold: list[int], length: int, tolerance: int = 1) -> dict:
    """Precision, recall and F1 of segment starts against gold starts, a start matching a gold one within
    ``tolerance`` steps (each gold start matched at most once). Start 0 is trivial and left out of both."""
    pred = sorted(s for s in set(predicted) if 0 < s < length)
    gold_ = sorted(s for s in set(gold) if 0 < s < length)
    used: set[int] = set()
    hits = 0
    for p in pred:
        best = None
        for g in gold_:
            if g not in used and abs(g - p) <= tolerance and (best is None or abs(g - p) < abs(best - p)):
                best = g
        if best is not None:
            used.add(best)
            hits += 1
    precision = hits / len(pred) if pred else (1.0 if not gold_ else 0.0)
    recall = hits / len(gold_) if gold_ else (1.0 if not pred else 0.0)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "hits": hits, "predicted": len(pred),
            "gold": len(gold_)}


def pooled_f1(results: list[dict]) -> dict:
    """Precision, recall and F1 from the hits, predictions and gold starts of several :func:`boundary_f1`
    results pooled together (micro-averaged)."""
    hits = sum(r["hits"] for r in results)
    pred = sum(r["predicted"] for r in results)
    gold = sum(r["gold"] for r in results)
    precision = hits / pred if pred else (1.0 if not gold else 0.0)
    recall = hits / gold if gold else (1.0 if not pred else 0.0)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "hits": hits, "predicted": pred, "gold": gold}
