"""Pseudointelligence profiles: the advantage |P(says "model" | g) - P(says "model" | μ)| of
evaluators (and its signed value) as a function of one of their resources (ground-truth samples,
rounds, or queries per round), for one or several models.

Every point is :func:`lmscope.evaluation.game.play_games` with its own transcript
``<model>__<evaluator>__<resource><value>.jsonl`` in the transcripts folder, so a profile resumes
where it stopped and every point replays on its own. All budgets are checked before any game.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from lmscope.errors import LmscopeError
from lmscope.evaluation.capabilities import Capability, get_capability
from lmscope.evaluation.evaluators import Evaluator, Resources, make_evaluator
from lmscope.evaluation.game import play_games
from lmscope.evaluation.oracles import Memo, Oracle

RESOURCES = ("samples", "rounds", "queries_per_round")
COLUMNS = ["model", "evaluator", "resource", "value", "advantage", "ci_low", "ci_high", "signed_advantage",
           "signed_ci_low", "signed_ci_high", "n", "errors", "p_model_given_model", "p_model_given_truth",
           "transcript"]
STAT_COLUMNS = COLUMNS[4:-1]


def model_label(spec: str) -> str:
    """A short file-name-safe name of a model spec (a small run by its folder's name)."""
    if spec.startswith("small:"):
        spec = "small-" + Path(spec[len("small:"):].rstrip("/")).name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-") or "model"


@dataclass
class ProfileResult:
    capability: str
    resource: str
    values: list[int]
    base: dict
    games: int
    seed: int
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMNS))

    def to_dict(self) -> dict:
        return {"capability": self.capability, "resource": self.resource, "values": self.values,
                "base_resources": self.base, "games": self.games, "seed": self.seed,
                "points": self.table.to_dict(orient="records")}

    def pivot(self, values: str = "advantage") -> pd.DataFrame:
        """``values`` (the absolute advantage by default) per (model, evaluator) row and resource value column."""
        return self.table.pivot_table(index=["model", "evaluator"], columns="value", values=values, sort=False)

    def summary_lines(self) -> list[str]:
        b = self.base
        fixed = ", ".join(f"{k} {v}" for k, v in b.items() if k != self.resource)
        lines = [f"pseudointelligence profile on {self.capability}: advantage |P(model|g) - P(model|truth)| vs "
                 f"{self.resource} ({fixed}; {self.games} games per point, seed {self.seed})"]
        if not self.table.empty:
            piv = self.pivot()
            piv.columns = [f"{self.resource}={c}" for c in piv.columns]
            lines.append(piv.to_string(float_format=lambda v: f"{v:.2f}"))
            signed = self.table["signed_advantage"].astype(float)
            if (signed < 0).any():
                bad = self.table[signed < 0]
                lines.append("inverted guesses (signed advantage < 0): " + ", ".join(
                    f"{m} / {e} at {self.resource}={v} ({s:+.2f})"
                    for m, e, v, s in zip(bad["model"], bad["evaluator"], bad["value"], bad["signed_advantage"])))
        errors = int(self.table["errors"].sum()) if not self.table.empty else 0
        if errors:
            lines.append(f"model errors: {errors} games (not counted; see the transcripts)")
        return lines


def profile(capability: Capability | str, models: dict[str, Oracle], evaluators: list[Evaluator | str],
            resource: str, values: list[int], base: Resources, n_games: int, seed: int = 0,
            transcripts: str | os.PathLike | None = None, judge_lm=None, on_error: str = "continue",
            quiet: bool | None = None, log=None) -> ProfileResult:
    """Advantage of every evaluator against every model at each ``values`` of ``resource``.

    ``models``: label -> oracle. ``base``: the other resources. ``transcripts``: the folder of the
    points' transcripts (resumed when present).
    """
    cap = get_capability(capability) if isinstance(capability, str) else capability
    if resource not in RESOURCES:
        raise LmscopeError(f"unknown resource {resource!r}; choose one of {', '.join(RESOURCES)}")
    if not values:
        raise LmscopeError("a profile needs at least one resource value")
    if not models:
        raise LmscopeError("a profile needs at least one model")
    evs = [make_evaluator(e) if isinstance(e, str) else e for e in evaluators]
    if not evs:
        raise LmscopeError("a profile needs at least one evaluator")
    points = []
    for v in values:
        res = replace(base, **{resource: v})  # validates the value
        for ev in evs:
            ev.check(cap, res)
            if ev.name == "lm-judge" and judge_lm is None:
                raise LmscopeError("the lm-judge evaluator needs a judge language model (--judge-lm)")
            points.append((v, ev, res))
    folder = Path(transcripts) if transcripts is not None else None
    rows = []
    memos = {label: (m if isinstance(m, Memo) else Memo(m)) for label, m in models.items()}
    for label, memo in memos.items():
        for v, ev, res in points:
            path = folder / f"{model_label(label)}__{ev.label}__{resource}{v}.jsonl" if folder else None
            r = play_games(cap, memo, ev, res, n_games, seed=seed, transcript=path, judge_lm=judge_lm,
                           on_error=on_error, quiet=quiet)
            s = r.stats()
            rows.append({"model": label, "evaluator": ev.label, "resource": resource, "value": v,
                         **{k: s[k] for k in STAT_COLUMNS},
                         "transcript": str(path) if path else None})
            if log is not None:
                log(f"{label} / {ev.label} / {resource} {v}: advantage {s['advantage']:.3f} "
                    f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}], signed {s['signed_advantage']:+.3f}, "
                    f"over {s['n']} games")
            if r.stopped:
                raise LmscopeError(f"stopped: {label} / {ev.label} / {resource} {v}: {r.stopped}; the transcripts "
                                   "keep every finished game, and running the profile again resumes")
    return ProfileResult(cap.name, resource, list(values), base.to_dict(), n_games, seed,
                         pd.DataFrame(rows, columns=COLUMNS))
