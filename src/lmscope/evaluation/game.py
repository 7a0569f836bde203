"""The distinguishing game: a hidden fair coin picks the model g or the ground truth μ, the evaluator
interacts with that oracle and guesses which it was. Repeated N times on a seeded schedule.

Advantage = |P(says "model" | g) - P(says "model" | μ)|, as the framework defines it: near 0 the
evaluator cannot tell g from μ (g is pseudointelligent to it); near 1 it always can, whichever way
round its guesses are. Its 95% interval is a seeded percentile bootstrap over whole coin pairs
(:data:`BOOTSTRAP_RESAMPLES` resamples, see :func:`abs_advantage_interval`). The signed value
P(says "model" | g) - P(says "model" | μ) = 2 P(correct) - 1 (the games are balanced, see
:func:`coin`) is kept beside it with a Wilson 95% interval on P(correct) mapped to it; a negative
signed value means inverted guesses (the evaluator takes μ for the model).

Game i uses its own seeds (the coin from ``[seed, i // 2, 0]``, see :func:`coin`; the evaluator from
``[seed, i, 1]``), so a longer run repeats the games of a shorter one.

Transcripts
-----------
JSONL: a header line (capability, model, evaluator, options, resources, seed, format) and one line
per game: ``{"game", "coin", "guess", "correct", "error", "events"}``, where ``events`` lists every
call of the game in order: ``probe`` (queries to g during learning and g's answers), ``ask`` (the
round, the queries to the hidden oracle and its responses), ``judge`` (prompts' judge and margins)
and ``note`` (what the evaluator learned or saw). Lines are appended and flushed as games end, so
an interrupted run keeps every finished game; starting again with the same transcript resumes (the
header must match, the capability's version included; games already there are skipped; games that
ended in a model error are played again, the last record of a game counting). :func:`replay` recomputes every guess and the
advantage from a transcript alone, feeding the evaluator the recorded answers, without the model.

A model oracle that raises during a game (a crashed server, a bad checkpoint) ends that game with
``"error"``: ``on_error="continue"`` goes on with the next game, ``"stop"`` stops the run; games
with errors count in ``errors`` and not in the advantage.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmscope import __version__
from lmscope._io import dumps, read_text
from lmscope._stats import wilson  # noqa: F401  (part of this module's API)
from lmscope.errors import LmscopeError
from lmscope.evaluation.capabilities import Capability, get_capability
from lmscope.evaluation.evaluators import Channel, Evaluator, Resources, make_evaluator
from lmscope.evaluation.oracles import LMOracle, Memo, Oracle, TruthOracle
from lmscope.progress import progress

TRANSCRIPT_FORMAT = 1
BOOTSTRAP_RESAMPLES = 2000


def advantage_interval(correct: int, n: int) -> tuple[float, float, float]:
    """(advantage, low, high): 2p - 1 and the Wilson interval of p mapped the same way."""
    if n == 0:
        return float("nan"), -1.0, 1.0
    lo, hi = wilson(correct, n)
    return 2 * correct / n - 1, 2 * lo - 1, 2 * hi - 1


def abs_advantage_interval(diffs, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                           level: float = 0.95) -> tuple[float, float, float]:
    """(|d|, low, high): the absolute advantage of paired games and its bootstrap interval.

    ``diffs`` holds one value per whole coin pair: 1[says "model" facing g] - 1[says "model" facing
    μ], each in {-1, 0, 1}; their mean d is the signed advantage. The pairs are resampled with
    replacement ``resamples`` times (``numpy.random.default_rng([seed, 2])``), the percentile
    interval [lo, hi] of the resampled d taken, and folded through |.|: [min |lo|, |hi|, max] when it
    lies on one side of 0, [0, max(|lo|, |hi|)] when it contains 0. Folding the interval of d, not
    taking percentiles of |d*|, keeps 0 inside it when the evaluator's guesses are noise (the
    percentiles of |d*| never reach 0 then). When every pair has the same value the interval has
    width 0 (the resamples cannot vary); the Wilson interval of the signed value shows the sampling
    uncertainty there. No pairs: (nan, 0, 1).
    """
    x = np.asarray(diffs, dtype=float).ravel()
    if x.size == 0:
        return float("nan"), 0.0, 1.0
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise LmscopeError(f"resamples must be a whole number >= 1, got {resamples!r}")
    d = float(x.mean())
    rng = np.random.default_rng([seed, 2])
    boot = x[rng.integers(x.size, size=(resamples, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
    lo, hi = min(lo, d), max(hi, d)  # the estimate itself always lies inside
    if lo <= 0 <= hi:
        return abs(d), 0.0, max(abs(lo), abs(hi))
    return abs(d), min(abs(lo), abs(hi)), max(abs(lo), abs(hi))


def coin(seed: int, game: int) -> str:
    """The hidden coin of game ``game``: "model" or "truth", fair and seeded.

    Games come in pairs (0 and 1, 2 and 3, ...) with opposite coins in a seeded random order, so
    every coin is fair, an even number of games faces g and μ equally often, and an evaluator that
    always says the same thing scores an advantage of exactly 0 rather than sampling noise.
    """
    flip = int(np.random.default_rng([seed, game // 2, 0]).integers(2))
    return "model" if (game % 2) ^ flip else "truth"


@dataclass
class GameResult:
    """The outcome of N games: counts, the advantage with its interval, one row per game."""

    capability: str
    model: str
    evaluator: str
    resources: dict
    seed: int
    games: list[dict] = field(default_factory=list)  # {"game", "coin", "guess", "correct", "error"}
    transcript: str | None = None
    stopped: str | None = None  # why the run stopped early, if it did

    @property
    def played(self) -> list[dict]:
        return [g for g in self.games if g.get("error") is None]

    @property
    def errors(self) -> int:
        return sum(g.get("error") is not None for g in self.games)

    @property
    def paired(self) -> list[dict]:
        """The played games whose partner (the other coin of the same pair) was played too.

        Only whole pairs count toward the advantage: a model that fails on some queries can only fail
        in games whose coin picked it, so dropping just the failed games would leave more μ-side
        games than g-side ones and bias 2·P(correct) − 1; an odd last game is left out for the same
        reason."""
        ok = {g["game"] for g in self.played}
        return [g for g in self.played if g["game"] ^ 1 in ok]

    def pair_diffs(self) -> list[int]:
        """Per whole coin pair (in game order): 1[says "model" facing g] - 1[says "model" facing μ]."""
        pairs: dict[int, dict[str, bool]] = {}
        for g in self.paired:
            pairs.setdefault(g["game"] // 2, {})[g["coin"]] = g["guess"] == "model"
        return [int(p["model"]) - int(p["truth"]) for _, p in sorted(pairs.items())]

    def stats(self) -> dict:
        played = self.paired
        n, k = len(played), sum(bool(g["correct"]) for g in played)
        signed, slo, shi = advantage_interval(k, n)
        adv, lo, hi = abs_advantage_interval(self.pair_diffs(), seed=self.seed)
        on_model = [g for g in played if g["coin"] == "model"]
        on_truth = [g for g in played if g["coin"] == "truth"]

        def rate(rows):
            return sum(g["guess"] == "model" for g in rows) / len(rows) if rows else None

        return {"n": n, "correct": k, "errors": self.errors, "unpaired": len(self.played) - n,
                "advantage": adv, "ci_low": lo, "ci_high": hi, "ci_method": "bootstrap",
                "ci_resamples": BOOTSTRAP_RESAMPLES,
                "signed_advantage": signed, "signed_ci_low": slo, "signed_ci_high": shi,
                "p_model_given_model": rate(on_model), "p_model_given_truth": rate(on_truth)}

    def to_dict(self) -> dict:
        return {"capability": self.capability, "model": self.model, "evaluator": self.evaluator,
                "resources": self.resources, "seed": self.seed, **self.stats(), "transcript": self.transcript,
                "stopped": self.stopped, "games": self.games}

    def summary_lines(self) -> list[str]:
        s = self.stats()
        r = self.resources
        lines = [f"{self.model} vs {self.evaluator} evaluator on {self.capability} "
                 f"(samples {r['samples']}, {r['rounds']} rounds x {r['queries_per_round']} queries)",
                 f"  games {s['n']} ({s['correct']} guessed right), errors {s['errors']}"]
        if s["n"]:
            pm, pt = s["p_model_given_model"], s["p_model_given_truth"]
            lines.append(f"  advantage |P(model|g) - P(model|truth)| {s['advantage']:.3f}  (95% CI {s['ci_low']:.3f} "
                         f".. {s['ci_high']:.3f}, bootstrap over {s['n'] // 2} coin pairs, {s['ci_resamples']} "
                         "resamples)")
            lines.append(f"  signed P(model|g) - P(model|truth) {s['signed_advantage']:+.3f}  (95% Wilson CI "
                         f"{s['signed_ci_low']:+.3f} .. {s['signed_ci_high']:+.3f})"
                         + ("; negative: its guesses are inverted" if s["signed_advantage"] < 0 else ""))
            lines.append("  says 'model': " + (f"{pm:.3f} when it faced the model" if pm is not None else "-") + ", "
                         + (f"{pt:.3f} when it faced the truth" if pt is not None else "-"))
        if s["errors"] or s["unpaired"]:
            lines.append(f"  not counted: {s['errors']} game(s) ended in a model error, {s['unpaired']} played "
                         "game(s) lost their partner of the opposite coin (only whole pairs count, so the model "
                         "and truth sides stay balanced)")
        if self.stopped:
            lines.append(f"  stopped early: {self.stopped}")
        if self.transcript:
            lines.append(f"  transcript: {self.transcript}  (replay: lmscope eval game --replay {self.transcript})")
        return lines


class OracleError(Exception):
    """A model oracle (or judge) failed during a game; the game is recorded with the error."""


class _LiveChannel(Channel):
    def __init__(self, cap: Capability, hidden: Oracle, model: Oracle, judge_lm, events: list):
        self.cap, self.hidden, self.model, self.judge_lm, self.events = cap, hidden, model, judge_lm, events

    def _call(self, fn, what):
        try:
            return fn()
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the model is recorded, not fatal
            msg = str(e).strip() or type(e).__name__
            raise OracleError(f"{what} failed: {type(e).__name__}: {msg}") from e

    def ask(self, queries, round):
        responses = self._call(lambda: self.hidden.respond(list(queries)), "the hidden oracle")
        responses = [str(r) for r in responses]
        self.events.append({"call": "ask", "round": round, "queries": list(queries), "responses": responses})
        return responses

    def probe(self, queries):
        responses = [str(r) for r in self._call(lambda: self.model.respond(list(queries)), "the model")]
        self.events.append({"call": "probe", "queries": list(queries), "responses": responses})
        return responses

    def has_model_lm(self):
        inner = self.model.inner if isinstance(self.model, Memo) else self.model
        return isinstance(inner, LMOracle)

    def judge(self, prompts, by="judge"):
        if by == "model":
            inner = self.model.inner if isinstance(self.model, Memo) else self.model
            lm = inner.lm
        else:
            lm = self.judge_lm
            if lm is None:
                raise LmscopeError("this evaluator needs a judge language model (--judge-lm)")
        out = self._call(lambda: lm.score([(p, [" yes", " no"]) for p in prompts]), f"the {by} LM")
        margins = [float(s[0].logprob - s[1].logprob) for s in out]
        self.events.append({"call": "judge", "by": by, "prompts": len(prompts), "margins": margins})
        return margins

    def note(self, **info):
        self.events.append({"call": "note", **info})


class _ReplayChannel(Channel):
    """Serves a game's recorded calls in order, checking that the evaluator asks the same things."""

    def __init__(self, events: list, where: str):
        self.events = [e for e in events if e.get("call") != "note"]
        self.pos, self.where = 0, where
        self._model_lm = any(e.get("call") == "judge" and e.get("by") == "model" for e in self.events)

    def _next(self, call, queries=None):
        if self.pos >= len(self.events):
            raise LmscopeError(f"{self.where}: the transcript ends before the evaluator's {call} call; it does "
                               "not replay (was it written by another version?)")
        e = self.events[self.pos]
        self.pos += 1
        if e.get("call") != call or (queries is not None and e.get("queries") != list(queries)):
            raise LmscopeError(f"{self.where}: the evaluator made a {call} call that the transcript does not "
                               f"record (call {self.pos}); it does not replay")
        return e

    def ask(self, queries, round):
        return self._next("ask", queries)["responses"]

    def probe(self, queries):
        return self._next("probe", queries)["responses"]

    def judge(self, prompts, by="judge"):
        e = self._next("judge")
        if len(e["margins"]) != len(prompts):
            raise LmscopeError(f"{self.where}: the recorded judge call has {len(e['margins'])} margins for "
                               f"{len(prompts)} prompts; it does not replay")
        return e["margins"]

    def has_model_lm(self):
        return self._model_lm

    def note(self, **info):
        pass

    def finish(self) -> None:
        """LmscopeError when the game ended with recorded calls that the evaluator did not make."""
        if self.pos < len(self.events):
            left = len(self.events) - self.pos
            raise LmscopeError(f"{self.where}: the transcript records {len(self.events)} calls, the evaluator made "
                               f"{self.pos} ({left} recorded call(s) left over, the first a "
                               f"{self.events[self.pos].get('call')!r} call); it does not replay")


def play_game(cap: Capability, evaluator: Evaluator, res: Resources, model: Oracle, seed: int, index: int,
              judge_lm=None, truth: Oracle | None = None) -> dict:
    """One game: the record written to the transcript (``error`` set when the model failed)."""
    side = coin(seed, index)
    events: list = []
    hidden = model if side == "model" else (truth or TruthOracle(cap))
    ch = _LiveChannel(cap, hidden, model, judge_lm, events)
    rng = np.random.default_rng([seed, index, 1])
    record = {"type": "game", "game": index, "coin": side}
    try:
        guess = evaluator.play(cap, res, rng, ch)
    except OracleError as e:
        return {**record, "guess": None, "correct": None, "error": str(e), "events": events}
    return {**record, "guess": guess, "correct": guess == side, "error": None, "events": events}


def _header(cap: Capability, model: Oracle | str, evaluator: Evaluator, res: Resources, seed: int) -> dict:
    desc = model.describe() if isinstance(model, Oracle) else {"spec": str(model)}
    return {"type": "header", "format": TRANSCRIPT_FORMAT, "lmscope": __version__, "capability": cap.name,
            "capability_version": cap.version, "model": desc, "evaluator": evaluator.name, "evaluator_options": evaluator.options(),
            "resources": res.to_dict(), "seed": int(seed)}


_MATCH_KEYS = ("capability", "capability_version", "evaluator", "evaluator_options", "resources", "seed")


def read_transcript(path: str | os.PathLike) -> tuple[dict, dict[int, dict]]:
    """(header, last record per game) of a transcript; a torn last line (an interrupted write) is ignored."""
    path = Path(path)
    header, games = None, {}
    lines = read_text(path, "transcript").split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):  # the last line, cut short by an interrupted write
                break
            raise LmscopeError(f"{path}:{i}: malformed JSON; not an lmscope game transcript") from None
        if not isinstance(row, dict):
            raise LmscopeError(f"{path}:{i}: expected a JSON object per line")
        if row.get("type") == "header":
            if header is not None:
                raise LmscopeError(f"{path}:{i}: a second header; one transcript holds one game setup")
            header = row
        elif row.get("type") == "game" and isinstance(row.get("game"), int):
            games[row["game"]] = row
        else:
            raise LmscopeError(f"{path}:{i}: not a header or game record")
    if header is None:
        raise LmscopeError(f"{path}: no header line; not an lmscope game transcript")
    if header.get("format") != TRANSCRIPT_FORMAT:
        raise LmscopeError(f"{path}: transcript format {header.get('format')!r}, expected {TRANSCRIPT_FORMAT}")
    return header, games


def _append(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(dumps(row, indent=None) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _repair_tail(path: Path) -> None:
    """Drop a torn last line so that appended records start on a line of their own."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[:data.rfind(b"\n") + 1])


def play_games(capability: Capability | str, model: Oracle, evaluator: Evaluator | str, resources: Resources,
               n_games: int, seed: int = 0, transcript: str | os.PathLike | None = None, judge_lm=None,
               on_error: str = "continue", quiet: bool | None = None) -> GameResult:
    """Play ``n_games`` games of ``evaluator`` against ``model`` on ``capability`` (see the module docstring).

    ``transcript``: the JSONL file to write (resumed when it exists and matches). ``judge_lm``: the
    language model of the ``lm-judge`` evaluator. ``on_error``: "continue" or "stop" after a game in
    which the model failed.
    """
    cap = get_capability(capability) if isinstance(capability, str) else capability
    ev = make_evaluator(evaluator) if isinstance(evaluator, str) else evaluator
    if isinstance(n_games, bool) or not isinstance(n_games, int) or n_games < 1:
        raise LmscopeError(f"the number of games (--games) must be a whole number >= 1, got {n_games!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise LmscopeError(f"seed must be a whole number >= 0, got {seed!r}")
    if on_error not in ("continue", "stop"):
        raise LmscopeError(f"on_error must be continue or stop, got {on_error!r}")
    ev.check(cap, resources)
    if ev.name == "lm-judge" and judge_lm is None:
        raise LmscopeError("the lm-judge evaluator needs a judge language model (--judge-lm)")
    header = _header(cap, model, ev, resources, seed)
    done: dict[int, dict] = {}
    path = Path(transcript) if transcript is not None else None
    if path is not None:
        if path.exists():
            old, done = read_transcript(path)
            old = {"capability_version": 1, **old}  # transcripts from before versions were recorded
            diff = [k for k in _MATCH_KEYS if old.get(k) != header.get(k)]
            om, nm = old.get("model") or {}, header["model"]
            if any(om.get(k) != nm.get(k) for k in ("spec", "step")):  # same spec, another checkpoint: refused
                diff.insert(0, "model")
            if diff:
                raise LmscopeError(f"the transcript {path} records another game ({diff[0]} differs: "
                                   f"{old.get(diff[0])!r}); choose another transcript file or delete it")
            _repair_tail(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            _append(path, header)
    memo = model if isinstance(model, Memo) else Memo(model)
    result = GameResult(cap.name, header["model"]["spec"], ev.label, resources.to_dict(), seed,
                        transcript=str(path) if path else None)
    bar = progress(total=n_games, desc=f"games ({ev.label})", quiet=quiet)
    try:
        for i in range(n_games):
            prev = done.get(i)
            if prev is not None and prev.get("error") is None:
                result.games.append(_row(prev))
                bar.update(1)
                continue
            rec = play_game(cap, ev, resources, memo, seed, i, judge_lm=judge_lm)
            if path is not None:
                _append(path, rec)
            result.games.append(_row(rec))
            bar.update(1)
            if rec["error"] is not None and on_error == "stop":
                result.stopped = f"game {i}: {rec['error']}"
                break
    finally:
        bar.close()
    return result


def _row(rec: dict) -> dict:
    return {k: rec.get(k) for k in ("game", "coin", "guess", "correct", "error")}


def replay(transcript: str | os.PathLike) -> GameResult:
    """Recompute every game of a transcript from its recorded calls, without the model or the judge.

    The evaluator is rebuilt from the header and plays each game again on the recorded answers; a
    transcript whose calls differ from what the evaluator asks (edited, or from another version),
    including a game with fewer recorded calls than the evaluator makes or with recorded calls left
    over when it has guessed, raises LmscopeError. Games that ended in an error stay errors.
    """
    header, games = read_transcript(transcript)
    try:
        cap = get_capability(header["capability"])
        ev = make_evaluator(header["evaluator"], **(header.get("evaluator_options") or {}))
        res = Resources(**header["resources"])
        seed = int(header["seed"])
    except (KeyError, TypeError, ValueError):
        raise LmscopeError(f"{transcript}: incomplete header") from None
    result = GameResult(cap.name, header.get("model", {}).get("spec", "?"), ev.label, res.to_dict(), seed,
                        transcript=str(transcript))
    for i in sorted(games):
        rec = games[i]
        where = f"{transcript}: game {i}"
        if rec.get("coin") != coin(seed, i):
            raise LmscopeError(f"{where}: the recorded coin is not the seeded one; it does not replay")
        if rec.get("error") is not None:
            result.games.append(_row(rec))
            continue
        rng = np.random.default_rng([seed, i, 1])
        ch = _ReplayChannel(rec.get("events") or [], where)
        try:
            guess = ev.play(cap, res, rng, ch)
        except (KeyError, TypeError, IndexError, ValueError) as e:
            raise LmscopeError(f"{where}: a recorded call is malformed ({type(e).__name__}: {e}); "
                               "it does not replay") from None
        ch.finish()
        if guess != rec.get("guess"):
            raise LmscopeError(f"{where}: replaying gives the guess {guess!r}, the transcript {rec.get('guess')!r}")
        result.games.append({**_row(rec), "guess": guess, "correct": guess == rec["coin"]})
    return result
