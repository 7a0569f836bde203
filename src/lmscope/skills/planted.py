"""Demonstrations with planted skills: a ground truth for the inference (tests, benchmarks, sanity checks).

Skill j of ``n_skills`` acts by a fixed table: at each step the view holds a random cue c in {0, 1} (the
object index of the view's first cell is 1 + c) and the skill takes action ``TABLE[j][c]``; the skills use
disjoint actions, so the skill is needed to predict an action and can be read off the actions. A demo is
2-4 segments of 3-6 steps, each a skill other than the previous one. The bot subgoal of every step is the
name of its true skill, so :meth:`Demo.subgoal_starts` gives the true switch points. Given segmentations
(:func:`planted_segmentations`) start a segment at every true switch and, as distractors, at other steps
with a probability.
"""

from __future__ import annotations

import numpy as np

from lmscope.errors import check_int, check_number
from lmscope.skills.types import Demo, Segmentation

TABLE = ((0, 2), (3, 4), (1, 5))  # (left, forward), (pickup, drop), (right, toggle)


def planted_demos(n: int, seed: int = 0, n_skills: int = 3) -> list[Demo]:
    """``n`` demos from ``n_skills`` (2 or 3) planted skills (see the module docstring)."""
    check_int("n", n, 1)
    n_skills = check_int("n_skills", n_skills, 2, len(TABLE))
    rng = np.random.default_rng(seed)
    demos = []
    for i in range(n):
        skills, prev = [], -1
        for _ in range(int(rng.integers(2, 5))):
            j = int(rng.choice([s for s in range(n_skills) if s != prev]))
            skills += [j] * int(rng.integers(3, 7))
            prev = j
        T = len(skills)
        cues = rng.integers(0, 2, size=T)
        images = np.zeros((T, 7, 7, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = 1 + cues
        images[:, 1:, :, 0] = 1  # empty floor elsewhere
        actions = np.array([TABLE[j][c] for j, c in zip(skills, cues)], dtype=np.int8)
        demos.append(Demo(level="planted", seed=i, mission="solve the planted task", images=images,
                          directions=rng.integers(0, 4, size=T).astype(np.int8), actions=actions,
                          steps=[f"action {a}" for a in actions], subgoals=[f"Skill{j}" for j in skills]))
    return demos


def planted_segmentations(demos: list[Demo], distractors: float = 0.3, seed: int = 0) -> list[Segmentation]:
    """Segment starts at every true switch plus, with probability ``distractors``, at any other step."""
    check_number("distractors", distractors, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    out = []
    for d in demos:
        true = set(d.subgoal_starts())
        starts = [t for t in range(len(d)) if t in true or rng.random() < distractors]
        out.append(Segmentation(starts=starts, descriptions=[""] * len(starts), source="planted"))
    return out
