"""Pseudointelligence (lmscope.evaluation): capabilities, oracles, evaluators, the game, transcripts.

Ground truth is planted: the truth oracle must be indistinguishable (advantage exactly 0 with the
paired coin schedule), an evaluator whose guesses are relabelled must score |advantage| 1 with a
signed value of -1, a model wrong on known kinds must be caught exactly when a query hits them,
and a memorizer of the public benchmark must pass the static evaluator and fail the others.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmscope.cli import main
from lmscope.data.grammars import declarative_words
from lmscope.data.suites import make_suite
from lmscope.data.trees import parse_bracketed
from lmscope.errors import LmscopeError
from lmscope.evaluation import (
    BOOTSTRAP_RESAMPLES,
    CAPABILITIES,
    Resources,
    abs_advantage_interval,
    advantage_interval,
    get_capability,
    make_evaluator,
    make_oracle,
    play_games,
    read_transcript,
    replay,
    wilson,
)
from lmscope.evaluation.capabilities import parse_declarative
from lmscope.evaluation.evaluators import FreshEvaluator
from lmscope.evaluation.game import GameResult, coin
from lmscope.evaluation.oracles import Oracle, TruthOracle

NON_LM = ("static", "fresh", "adaptive", "discriminator", "self")


# ------------------------------------------------------------------------------------------ capabilities
@pytest.mark.parametrize("name", list(CAPABILITIES))
def test_capability_answers_kinds_and_corruptions(name):
    cap = get_capability(name)
    rng = np.random.default_rng(0)
    for split in ("id", "gen"):
        queries = cap.sample_queries(rng, 60, split)
        assert len(set(queries)) == 60
        for q in queries:
            a = cap.answer(q)
            assert cap.is_correct(q, a) and cap.is_correct(q, f"  {a}\nmore text")
            assert not cap.is_correct(q, cap.corrupt(q, a, rng))
            assert cap.kind(q) in cap.kinds
            assert isinstance(cap.checks(q, a), dict)
    assert cap.sample_queries(np.random.default_rng(3), 5) == cap.sample_queries(np.random.default_rng(3), 5)
    assert cap.benchmark(10)[:4] == cap.benchmark(4)  # the public benchmark's prefixes agree


@pytest.mark.parametrize("suite,mode", [("question-formation", "aux"), ("tense-inflection", "past")])
def test_grammar_capabilities_agree_with_the_suites(suite, mode):
    cap = get_capability(suite)
    rows = [r for r in make_suite(suite, 150, 50, 100, seed=2) if r["task"] in ("quest", "PRESENT")]
    for r in rows:
        words = declarative_words(r["text"])
        assert parse_declarative(words, mode) == parse_bracketed(r["tree"], labeled=False)
        assert cap.is_correct(" ".join(words), r["target"])
        # the shallow (linear) rule is right in distribution and wrong on the generalization split
        assert cap.is_correct(" ".join(words), cap.heuristic(" ".join(words))) == (r["split"] != "gen")


def test_capability_bad_input():
    with pytest.raises(LmscopeError, match="unknown capability 'nope'"):
        get_capability("nope")
    with pytest.raises(LmscopeError, match="not an arithmetic query"):
        get_capability("arithmetic").answer("two plus two")
    with pytest.raises(LmscopeError, match="not a question-formation declarative"):
        get_capability("question-formation").answer("the cat does sleep the")
    every_id = {f"{a} + {b}" for a in range(10, 100) for b in range(10, 100)} | \
               {f"{a} * {b}" for a in range(2, 10) for b in range(10, 100)}
    with pytest.raises(LmscopeError, match="too few distinct id queries"):  # the budget cannot be met
        get_capability("arithmetic").sample_queries(np.random.default_rng(0), 1, "id", exclude=every_id)


@pytest.mark.parametrize("response,right", [
    ("83", True), (" 83 ", True), ("83.", True), ("83!", True), ("+83", True), ("083", True), ("83\nmore", True),
    ("83.9", False), ("83 or 84", False), ("38 + 45 = 83", False), ("= 83", False), ("=83", False),
    ("83 apples", False), ("8 3", False), ("8,3", False), ("-83", False), ("83..", False), ("", False),
    ("answer: 83", False), ("83/1", False),
])
def test_arithmetic_answers_are_whole_numbers_only(response, right):
    """Strict parsing: the (first) line must be the number itself, not merely start with it."""
    cap = get_capability("arithmetic")
    assert cap.is_correct("38 + 45", response) is right
    assert cap.normalize(response) == "83" if right else cap.normalize(response) != "83"


def test_arithmetic_signs_and_thousands():
    cap = get_capability("arithmetic")
    assert cap.is_correct("99 * 99", "9,801") and cap.is_correct("99 * 99", "9801")
    assert not cap.is_correct("99 * 99", "98,01") and not cap.is_correct("99 * 99", "9,8,0,1")
    assert cap.normalize("-0") == "0" and cap.normalize("-12") == "-12" and cap.normalize("+0012") == "12"
    # the cheap checks of the discriminator see the same strict parse
    assert cap.checks("38 + 45", "83.9")["number"] == 0.0 and cap.checks("38 + 45", "83")["number"] == 1.0


# ------------------------------------------------------------------------------------------ statistics
def test_wilson_and_advantage_interval():
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    adv, lo, hi = advantage_interval(10, 10)
    assert adv == 1.0 and hi == 1.0 and lo == pytest.approx(2 * 0.7225 - 1, abs=1e-3)
    adv, lo, hi = advantage_interval(50, 100)
    assert adv == 0.0 and lo < 0 < hi and lo == pytest.approx(-hi)


def test_abs_advantage_interval_planted():
    assert np.isnan(abs_advantage_interval([])[0]) and abs_advantage_interval([])[1:] == (0.0, 1.0)
    assert abs_advantage_interval([1] * 30) == (1.0, 1.0, 1.0)
    assert abs_advantage_interval([-1] * 30) == (1.0, 1.0, 1.0)  # inverted guesses: |d| = 1 all the same
    d0, lo0, hi0 = abs_advantage_interval([0] * 30)
    assert (d0, lo0, hi0) == (0.0, 0.0, 0.0) and str(hi0) == "0.0"  # no negative zero in the output
    x = [1] * 12 + [0] * 6 + [-1] * 2
    assert abs_advantage_interval(x, seed=4) == abs_advantage_interval(x, seed=4)  # seeded
    d, lo, hi = abs_advantage_interval(x, seed=4)
    assert d == pytest.approx(0.5) and 0 < lo < d < hi <= 1
    d2, lo2, hi2 = abs_advantage_interval([-v for v in x], seed=4)  # the mirror image: the same interval
    assert (d2, lo2, hi2) == pytest.approx((d, lo, hi))
    with pytest.raises(LmscopeError, match="resamples"):
        abs_advantage_interval(x, resamples=0)


@pytest.mark.parametrize("p_g,p_mu", [(0.7, 0.2), (0.3, 0.8), (0.5, 0.5)])
def test_abs_advantage_interval_covers_the_planted_advantage(p_g, p_mu):
    """Simulated games with known P(model | g) and P(model | μ): the 95% interval holds |p_g - p_mu| in
    about 95% of runs, and holds 0 when the evaluator's guesses are pure noise (percentiles of |d*|
    themselves would almost never reach 0 there)."""
    rng = np.random.default_rng(0)
    truth = abs(p_g - p_mu)
    covered = 0
    runs = 200
    for r in range(runs):
        x = (rng.random(60) < p_g).astype(int) - (rng.random(60) < p_mu).astype(int)
        _, lo, hi = abs_advantage_interval(x, seed=r, resamples=500)
        covered += lo <= truth <= hi
    assert covered / runs >= 0.88


def test_coin_schedule_is_fair_paired_and_prefix_stable():
    coins = [coin(5, i) for i in range(200)]
    assert all({coins[2 * j], coins[2 * j + 1]} == {"model", "truth"} for j in range(100))
    assert coins[:20] == [coin(5, i) for i in range(20)]
    assert coins != [coin(6, i) for i in range(200)]
    assert 30 < sum(coins[2 * j] == "model" for j in range(100)) < 70  # the order within a pair is random


# ------------------------------------------------------------------------------------------ planted ground truth
@pytest.mark.parametrize("evaluator", NON_LM)
def test_truth_is_indistinguishable(evaluator):
    cap = get_capability("question-formation")
    res = play_games(cap, TruthOracle(cap), evaluator, Resources(16, 4, 2), 40, seed=1)
    s = res.stats()
    assert s["n"] == 40 and s["errors"] == 0
    assert s["advantage"] == 0.0 and s["ci_low"] == 0.0 <= s["ci_high"]
    assert s["signed_advantage"] == 0.0 and s["signed_ci_low"] < 0 < s["signed_ci_high"]


def test_wrong_on_is_caught_exactly_when_a_query_hits_its_kinds():
    cap = get_capability("question-formation")
    model = make_oracle("wrong-on:subj-rc", cap)
    res = play_games(cap, model, "fresh", Resources(6, 3, 2), 60, seed=2, transcript=None)
    assert res.stats()["p_model_given_truth"] == 0.0
    # rebuild what each model-side game asked from a transcript and check the rule exactly
    hits = []
    for g in res.games:
        assert g["guess"] in ("model", "truth")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.jsonl"
        play_games(cap, model, "fresh", Resources(6, 3, 2), 60, seed=2, transcript=path)
        _, games = read_transcript(path)
    for rec in games.values():
        asked = [q for e in rec["events"] if e["call"] == "ask" for q in e["queries"]]
        hit = any(cap.kind(q) == "subj-rc" for q in asked)
        if rec["coin"] == "model":
            hits.append(hit)
            assert (rec["guess"] == "model") == hit
        else:
            assert rec["guess"] == "truth"
    assert any(hits) and not all(hits)


def test_memorizer_passes_the_static_benchmark_but_not_fresh_or_adaptive_evaluators():
    cap = get_capability("question-formation")
    mem = make_oracle("memorizer", cap)
    res = Resources(32, 4, 2)
    adv = {e: play_games(cap, mem, e, res, 60, seed=3).stats()["advantage"] for e in ("static", "fresh", "adaptive")}
    assert adv["static"] == 0.0
    assert adv["fresh"] > 0.6 and adv["adaptive"] > 0.85 and adv["adaptive"] >= adv["fresh"]
    # the same memorizer's fallback (the linear rule) fails the static benchmark at once
    heur = play_games(cap, make_oracle("heuristic", cap), "static", Resources(64, 8, 8), 20, seed=3)
    assert heur.stats()["advantage"] == 1.0


def test_self_evaluation_is_blind_to_its_own_errors():
    cap = get_capability("arithmetic")
    res = play_games(cap, make_oracle("heuristic", cap), "self", Resources(0, 2, 2), 40, seed=0)
    s = res.stats()
    assert s["p_model_given_model"] == 0.0  # it never doubts its own answers
    assert s["signed_advantage"] < 0  # and it takes the truth for the model: inverted guesses
    assert s["advantage"] == pytest.approx(-s["signed_advantage"]) and 0 < s["ci_low"] <= s["advantage"]
    assert s["advantage"] == pytest.approx(s["p_model_given_truth"] - s["p_model_given_model"])


class Relabelled(FreshEvaluator):
    """The fresh evaluator with its two answers swapped: it says "truth" whenever it catches an error."""

    name = "relabelled"

    def play(self, cap, res, rng, ch):
        return {"model": "truth", "truth": "model"}[super().play(cap, res, rng, ch)]


def test_an_always_wrong_evaluator_has_advantage_one():
    """A model wrong on every kind is caught by every fresh game; swapping the evaluator's labels makes it
    wrong in every game: signed advantage -1, and the advantage as defined, |P(m|g) - P(m|μ)|, is 1."""
    cap = get_capability("arithmetic")
    model = make_oracle("wrong-on:" + ",".join(cap.kinds), cap)
    right = play_games(cap, model, "fresh", Resources(8, 2, 2), 40, seed=1).stats()
    assert right["advantage"] == right["signed_advantage"] == 1.0
    res = play_games(cap, model, Relabelled(), Resources(8, 2, 2), 40, seed=1)
    s = res.stats()
    assert s["correct"] == 0 and s["p_model_given_model"] == 0.0 and s["p_model_given_truth"] == 1.0
    assert s["signed_advantage"] == -1.0 and s["advantage"] == 1.0 and (s["ci_low"], s["ci_high"]) == (1.0, 1.0)
    assert s["signed_ci_high"] < -0.8 and s["ci_method"] == "bootstrap" and s["ci_resamples"] == BOOTSTRAP_RESAMPLES
    text = "\n".join(res.summary_lines())
    assert "advantage |P(model|g) - P(model|truth)| 1.000" in text and "signed" in text and "-1.000" in text
    assert "inverted" in text
    d = res.to_dict()
    assert d["advantage"] == 1.0 and d["signed_advantage"] == -1.0


def test_noise_guesses_against_the_truth_keep_zero_in_the_interval():
    """An evaluator guessing by its seeded coin, facing the truth or the truth: the interval holds 0."""
    class Coin(FreshEvaluator):
        name = "coin"

        def play(self, cap, res, rng, ch):
            super().play(cap, res, rng, ch)
            return "model" if rng.random() < 0.5 else "truth"

    cap = get_capability("arithmetic")
    s = play_games(cap, TruthOracle(cap), Coin(), Resources(8, 2, 2), 100, seed=3).stats()
    assert 0 < s["p_model_given_model"] < 1 and 0 < s["p_model_given_truth"] < 1
    assert s["ci_low"] == 0.0 <= s["advantage"] <= s["ci_high"] < 0.5
    assert s["signed_ci_low"] < 0 < s["signed_ci_high"]


def test_stats_bootstrap_over_pairs():
    """The advantage is the mean of per-pair differences; pairs with an error are left out whole."""
    games = []
    for j, (gm, tm) in enumerate([(1, 0), (1, 0), (1, 1), (0, 0), (0, 1), (1, 0)]):
        games += [{"game": 2 * j, "coin": "model", "guess": "model" if gm else "truth", "error": None},
                  {"game": 2 * j + 1, "coin": "truth", "guess": "model" if tm else "truth", "error": None}]
    for g in games:
        g["correct"] = g["guess"] == g["coin"]
    games.append({"game": 12, "coin": "model", "guess": "model", "correct": True, "error": None})  # unpaired
    r = GameResult("arithmetic", "m", "e", {}, seed=5, games=games)
    assert r.pair_diffs() == [1, 1, 0, 0, -1, 1]
    s = r.stats()
    assert s["n"] == 12 and s["unpaired"] == 1
    assert s["advantage"] == pytest.approx(abs(4 / 6 - 2 / 6)) == pytest.approx(s["signed_advantage"])
    assert (s["advantage"], s["ci_low"], s["ci_high"]) == abs_advantage_interval([1, 1, 0, 0, -1, 1], seed=5)


def test_seeded_reproducibility():
    cap = get_capability("dyck-membership")
    mem = make_oracle("memorizer", cap)
    for ev in ("fresh", "adaptive", "discriminator"):
        a = play_games(cap, mem, ev, Resources(16, 2, 2), 30, seed=4).games
        b = play_games(cap, mem, ev, Resources(16, 2, 2), 30, seed=4).games
        assert a == b


# ------------------------------------------------------------------------------------------ transcripts
class Counting(Oracle):
    def __init__(self, inner, fail_on_call=None):
        self.inner, self.spec, self.calls, self.fail_on_call = inner, inner.spec, 0, fail_on_call

    def respond(self, queries):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise RuntimeError("connection reset by peer")
        return self.inner.respond(queries)


def test_transcript_resume_and_replay(tmp_path):
    cap = get_capability("tense-inflection")
    res = Resources(24, 3, 2)
    path = tmp_path / "games.jsonl"
    first = Counting(make_oracle("memorizer", cap))
    play_games(cap, first, "adaptive", res, 10, seed=7, transcript=path)
    second = Counting(make_oracle("memorizer", cap))
    resumed = play_games(cap, second, "adaptive", res, 20, seed=7, transcript=path)
    whole = play_games(cap, make_oracle("memorizer", cap), "adaptive", res, 20, seed=7)
    assert resumed.games == whole.games
    assert 0 < second.calls < first.calls * 2  # only the 10 new games asked the model
    again = Counting(make_oracle("memorizer", cap))
    play_games(cap, again, "adaptive", res, 20, seed=7, transcript=path)
    assert again.calls == 0
    header, games = read_transcript(path)
    assert header["evaluator"] == "adaptive" and sorted(games) == list(range(20))
    rep = replay(path)
    assert rep.games == whole.games and rep.stats() == whole.stats()
    # a torn last line (an interrupted write) is ignored and repaired on resume
    with open(path, "a") as f:
        f.write('{"type": "game", "game": 20, "co')
    assert len(read_transcript(path)[1]) == 20
    play_games(cap, make_oracle("memorizer", cap), "adaptive", res, 21, seed=7, transcript=path)
    assert len(read_transcript(path)[1]) == 21
    # another setup in the same file is refused
    with pytest.raises(LmscopeError, match="records another game"):
        play_games(cap, make_oracle("memorizer", cap), "fresh", res, 5, seed=7, transcript=path)
    with pytest.raises(LmscopeError, match="records another game"):
        play_games(cap, make_oracle("memorizer", cap), "adaptive", res, 5, seed=8, transcript=path)


def test_replay_detects_a_transcript_that_does_not_replay(tmp_path):
    cap = get_capability("arithmetic")
    path = tmp_path / "t.jsonl"
    play_games(cap, make_oracle("heuristic", cap), "fresh", Resources(8, 2, 2), 4, seed=0, transcript=path)
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    ask = next(e for e in rec["events"] if e["call"] == "ask")
    ask["queries"][0] = "1 + 1"
    lines[1] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LmscopeError, match="does not replay"):
        replay(path)
    with pytest.raises(LmscopeError, match="no such transcript"):
        replay(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"type": "game", "game": 0}\n')
    with pytest.raises(LmscopeError, match="no header"):
        replay(tmp_path / "bad.jsonl")


def test_replay_refuses_recorded_calls_left_over_or_missing(tmp_path, capsys):
    cap = get_capability("arithmetic")
    path = tmp_path / "t.jsonl"
    play_games(cap, make_oracle("heuristic", cap), "fresh", Resources(8, 2, 2), 6, seed=0, transcript=path)
    assert replay(path).stats()["n"] == 6
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    asks = [e for e in rec["events"] if e["call"] == "ask"]

    def write(events, to):
        to.write_text("\n".join([lines[0], json.dumps({**rec, "events": events})] + lines[2:]) + "\n")
        return to

    extra = write(rec["events"] + [dict(asks[-1], round=9)], tmp_path / "extra.jsonl")
    with pytest.raises(LmscopeError, match=r"records \d+ calls, the evaluator made \d+ .*left over"):
        replay(extra)
    code, _, err = run_cli(capsys, "eval", "game", "--replay", extra)
    one_error_line(code, err, "left over")
    # a note is not a call: an extra note still replays
    assert replay(write(rec["events"] + [{"call": "note", "x": 1}], tmp_path / "note.jsonl")).stats()["n"] == 6
    last_ask = max(i for i, e in enumerate(rec["events"]) if e["call"] == "ask")
    short = write(rec["events"][:last_ask], tmp_path / "short.jsonl")
    with pytest.raises(LmscopeError, match="ends before"):
        replay(short)


@pytest.mark.parametrize("on_error", ["continue", "stop"])
def test_model_error_mid_game_is_recorded(tmp_path, on_error):
    cap = get_capability("question-formation")
    path = tmp_path / "t.jsonl"
    flaky = Counting(make_oracle("memorizer", cap), fail_on_call=3)
    res = play_games(cap, flaky, "adaptive", Resources(20, 2, 2), 12, seed=0, transcript=path, on_error=on_error)
    assert res.errors == 1
    bad = next(g for g in res.games if g["error"])
    assert "connection reset by peer" in bad["error"] and bad["guess"] is None
    _, games = read_transcript(path)
    assert games[bad["game"]]["error"] == bad["error"]
    assert games[bad["game"]]["events"] is not None
    if on_error == "stop":
        assert res.stopped and len(res.games) == bad["game"] + 1
    else:
        assert not res.stopped and len(res.games) == 12
        assert res.stats()["n"] == 10 and res.stats()["unpaired"] == 1  # the failed game takes its pair out
    # running again resumes: the failed game is played again, the finished ones are kept
    healed = play_games(cap, make_oracle("memorizer", cap), "adaptive", Resources(20, 2, 2), 12, seed=0,
                        transcript=path)
    assert healed.errors == 0 and healed.stats()["n"] == 12
    assert healed.games == play_games(cap, make_oracle("memorizer", cap), "adaptive", Resources(20, 2, 2), 12,
                                      seed=0).games
    assert replay(path).games == healed.games


def test_discriminator_honours_its_threshold(tmp_path):
    """Without a threshold the discriminator compares its summed log-odds with 0; with one it says "model"
    as soon as that many responses have positive log-odds, checked here against every game's record."""
    cap = get_capability("question-formation")
    mem = make_oracle("memorizer", cap)
    assert make_evaluator("discriminator").options() == {"l2": 1.0}
    assert make_evaluator("discriminator", threshold=2).options() == {"l2": 1.0, "threshold": 2}
    res = Resources(32, 2, 2)
    said = {}
    for t in (None, 1, 2, 3, 5):
        path = tmp_path / f"t{t}.jsonl"
        r = play_games(cap, mem, make_evaluator("discriminator", threshold=t), res, 30, seed=2, transcript=path)
        said[t] = [g["guess"] == "model" for g in r.games]
        header, games = read_transcript(path)
        assert header["evaluator_options"].get("threshold") == t
        for rec in games.values():
            logits = [v for e in rec["events"] if e["call"] == "note" and "logits" in e for v in e["logits"]]
            positive = sum(v > 0 for v in logits)
            expect = sum(logits) > 0 if t is None else positive >= t
            assert (rec["guess"] == "model") == expect
        assert replay(path).games == r.games  # the threshold is in the header, so it replays
    assert not any(said[5])  # 4 responses can never reach 5
    for lo, hi in ((1, 2), (2, 3)):  # a higher threshold says "model" in a subset of the games
        assert all(a or not b for a, b in zip(said[lo], said[hi]))
    assert said[1] != said[3]
    with pytest.raises(LmscopeError, match="threshold .* >= 1"):
        make_evaluator("discriminator", threshold=0)


def test_cli_discriminator_threshold(capsys, tmp_path):
    base = ["eval", "game", "--capability", "question-formation", "--model", "memorizer", "--evaluator",
            "discriminator", "--samples", "16", "--rounds", "2", "--queries", "2", "--games", "10", "--json"]
    runs = {}
    for t in (None, "1", "5"):
        extra = [] if t is None else ["--threshold", t]
        code, out, _ = run_cli(capsys, *base, *extra, "--transcript", tmp_path / f"t{t}.jsonl")
        assert code == 0
        runs[t] = json.loads(out)
        assert read_transcript(tmp_path / f"t{t}.jsonl")[0]["evaluator_options"].get("threshold") == \
            (None if t is None else int(t))
    assert runs["5"]["p_model_given_model"] == runs["5"]["p_model_given_truth"] == 0.0
    assert runs["1"]["p_model_given_model"] >= runs[None]["p_model_given_model"] > 0
    code, _, err = run_cli(capsys, *base, "--threshold", "0", "--transcript", tmp_path / "t0.jsonl")
    one_error_line(code, err, "threshold (--threshold) must be a whole number >= 1, got 0")


def test_budgets_and_bad_input():
    cap = get_capability("arithmetic")
    truth = TruthOracle(cap)
    with pytest.raises(LmscopeError, match="rounds .* >= 1, got 0"):
        Resources(8, 0, 2)
    with pytest.raises(LmscopeError, match="more than the benchmark's size"):
        play_games(cap, truth, "static", Resources(4, 4, 2), 2)
    with pytest.raises(LmscopeError, match="at least 2 samples"):
        play_games(cap, truth, "discriminator", Resources(1, 4, 2), 2)
    with pytest.raises(LmscopeError, match="needs --samples >= 4"):
        play_games(cap, truth, "lm-judge", Resources(3, 1, 1), 2)
    with pytest.raises(LmscopeError, match="judge language model"):
        play_games(cap, truth, "lm-judge", Resources(8, 1, 1), 2)
    with pytest.raises(LmscopeError, match="unknown evaluator"):
        make_evaluator("oracle-of-delphi")
    with pytest.raises(LmscopeError, match="games"):
        play_games(cap, truth, "fresh", Resources(8, 1, 1), 0)
    with pytest.raises(LmscopeError, match="unknown model"):
        make_oracle("gpt-9", cap)
    with pytest.raises(LmscopeError, match="no query kind 'subj-rc'"):
        make_oracle("wrong-on:subj-rc", cap)
    with pytest.raises(LmscopeError, match="not a run of lmscope grok train|no such run"):
        make_oracle("small:/nonexistent", get_capability("question-formation"))
    with pytest.raises(LmscopeError, match="answers question-formation or tense-inflection"):
        make_oracle("small:/nonexistent", cap)


# ------------------------------------------------------------------------------------------ profile
def test_profile_table_and_plot(tmp_path):
    from lmscope.evaluation import profile
    from lmscope.report.plots import plot_profile_result

    cap = get_capability("question-formation")
    models = {"truth": make_oracle("truth", cap), "memorizer": make_oracle("memorizer", cap)}
    res = profile(cap, models, ["static", "adaptive"], "samples", [8, 24], Resources(8, 4, 2), 20, seed=0,
                  transcripts=tmp_path / "tr")
    t = res.table
    assert len(t) == 8 and set(t["evaluator"]) == {"static", "adaptive"}
    assert (t[t["model"] == "truth"]["advantage"] == 0).all()
    assert np.allclose(t["advantage"], t["signed_advantage"].abs()) and (t["ci_low"] >= 0).all()
    assert (t["ci_low"] <= t["advantage"]).all() and (t["advantage"] <= t["ci_high"]).all()
    mem = t[t["model"] == "memorizer"].set_index(["evaluator", "value"])["advantage"]
    assert mem[("static", 8)] == 0 and mem[("static", 24)] == 0 and mem[("adaptive", 24)] > 0.5
    assert len(list((tmp_path / "tr").glob("*.jsonl"))) == 8
    assert plot_profile_result(res, tmp_path / "p.png").stat().st_size > 1000
    assert "samples=24" in "\n".join(res.summary_lines())
    with pytest.raises(LmscopeError, match="more than"):  # checked before any game is played
        profile(cap, models, ["static"], "samples", [16, 4], Resources(8, 4, 2), 4, transcripts=tmp_path / "x")
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------------------ CLI
def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code, err, text):
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lmscope: error:") and text in lines[0], err


def test_cli_game_replay_and_list(capsys, tmp_path):
    out_dir = tmp_path / "g"
    code, out, _ = run_cli(capsys, "eval", "game", "--capability", "question-formation", "--model", "memorizer",
                           "--evaluator", "adaptive", "--samples", "16", "--rounds", "2", "--queries", "2",
                           "--games", "20", "--out", out_dir, "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["n"] == 20 and payload["advantage"] > 0.5
    assert (out_dir / "transcript.jsonl").is_file() and (out_dir / "summary.json").is_file()
    code, out, _ = run_cli(capsys, "eval", "game", "--replay", out_dir / "transcript.jsonl", "--json")
    assert code == 0 and json.loads(out)["advantage"] == payload["advantage"]
    code, out, _ = run_cli(capsys, "eval", "game", "--capability", "arithmetic", "--model", "truth",
                           "--evaluator", "static", "--games", "10", "--transcript", tmp_path / "t.jsonl")
    assert code == 0 and "advantage |P(model|g) - P(model|truth)| 0.000" in out and "--replay" in out
    assert "signed P(model|g) - P(model|truth) +0.000" in out
    code, out, _ = run_cli(capsys, "eval", "list", "--json")
    assert code == 0 and set(json.loads(out)["capabilities"]) == set(CAPABILITIES)


def test_cli_profile(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "eval", "profile", "--capability", "reverse", "--model", "memorizer",
                           "--model", "truth", "--evaluator", "static,fresh", "--values", "8,16",
                           "--rounds", "2", "--queries", "2", "--games", "10", "--out", tmp_path / "p", "--quiet")
    assert code == 0 and "samples=16" in out
    for f in ("profile.csv", "profile.json", "profile.png", "index.html"):
        assert (tmp_path / "p" / f).is_file()
    import pandas as pd

    csv = pd.read_csv(tmp_path / "p" / "profile.csv")
    assert {"advantage", "ci_low", "ci_high", "signed_advantage", "signed_ci_low", "signed_ci_high"} <= set(csv)
    assert np.allclose(csv["advantage"], csv["signed_advantage"].abs())
    assert len(list((tmp_path / "p" / "transcripts").glob("*.jsonl"))) == 8


@pytest.mark.parametrize("argv,text", [
    (["--capability", "nope", "--model", "truth", "--evaluator", "static"], "unknown capability 'nope'"),
    (["--capability", "arithmetic", "--model", "truth", "--evaluator", "nope"], "unknown evaluator 'nope'"),
    (["--capability", "arithmetic", "--model", "nope", "--evaluator", "fresh"], "unknown model 'nope'"),
    (["--capability", "arithmetic", "--model", "truth", "--evaluator", "fresh", "--rounds", "0"],
     "argument --rounds: must be an integer >= 1, got '0'"),
    (["--capability", "arithmetic", "--model", "truth", "--evaluator", "fresh", "--queries", "0"],
     "argument --queries: must be an integer >= 1"),
    (["--capability", "arithmetic", "--model", "truth", "--evaluator", "static", "--samples", "4"],
     "is more than the benchmark's size"),
    (["--capability", "arithmetic", "--model", "truth", "--evaluator", "fresh", "--games", "0"], "--games"),
    (["--capability", "arithmetic", "--model", "small:/no/such/run", "--evaluator", "fresh"],
     "answers question-formation or tense-inflection"),
    (["--capability", "arithmetic"], "give --model, --evaluator"),
    (["--replay", "/no/such/file.jsonl"], "no such transcript"),
])
def test_cli_bad_input(capsys, tmp_path, argv, text):
    code, _, err = run_cli(capsys, "eval", "game", *argv, "--transcript", tmp_path / "t.jsonl")
    one_error_line(code, err, text)


def test_cli_profile_impossible_budget(capsys, tmp_path):
    code, _, err = run_cli(capsys, "eval", "profile", "--capability", "arithmetic", "--model", "truth",
                           "--evaluator", "fresh", "--values", "16,4", "--out", tmp_path / "p")
    one_error_line(code, err, "is more than its samples")
    assert not (tmp_path / "p" / "transcripts").exists()


def test_cli_model_that_fails_stops_cleanly(capsys, tmp_path):
    """An LM behind a server that is not there: the first model game fails; the run stops with the
    transcript intact (truth-side games before it are kept), and --on-error continue plays on."""
    t = tmp_path / "t.jsonl"
    base = ["eval", "game", "--capability", "arithmetic", "--model", "lm:http://127.0.0.1:9/v1#m",
            "--evaluator", "fresh", "--games", "6", "--transcript", t, "--no-cache"]
    code, out, err = run_cli(capsys, *base)
    one_error_line(code, err, "stopped after a model error")
    _, games = read_transcript(t)
    assert [g for g in games.values() if g["error"]] and all(g["coin"] == "model" for g in games.values()
                                                             if g["error"])
    code, out, err = run_cli(capsys, *base, "--on-error", "continue")
    # every model-side game failed, so no pair of games is whole: nothing to score, said plainly
    one_error_line(code, err, "no whole pair of games could be played")
    _, games = read_transcript(t)
    assert len(games) == 6


def test_failed_games_drop_their_pair_so_the_advantage_stays_unbiased():
    """An exact model that crashes on some queries: the evaluator never sees a wrong answer, so the
    advantage must be 0; counting the truth-side partners of failed games would make it positive."""
    cap = get_capability("arithmetic")

    class Flaky(TruthOracle):
        def respond(self, queries):
            if any(cap.kind(q) in ("add3", "add4") for q in queries):
                raise RuntimeError("backend fell over")
            return super().respond(queries)

    res = play_games(cap, Flaky(cap), "fresh", Resources(8, 2, 2), 80, seed=4, on_error="continue")
    s = res.stats()
    assert s["errors"] > 0 and s["unpaired"] == s["errors"] and s["n"] == 80 - 2 * s["errors"]
    assert s["advantage"] == 0.0 and s["p_model_given_model"] == s["p_model_given_truth"] == 0.0
    odd = play_games(cap, TruthOracle(cap), "fresh", Resources(8, 2, 2), 3, seed=4).stats()
    assert odd["n"] == 2 and odd["unpaired"] == 1 and odd["advantage"] == 0.0


def test_old_eval_form_still_parses():
    from lmscope.cli import build_parser

    args = build_parser().parse_args(["eval", "smollm2-135m", "--task", "factual_recall"])
    assert args.model == "smollm2-135m" and args.task == "factual_recall"


def test_question_formation_aux_judges_the_first_word_only():
    full, aux = get_capability("question-formation"), get_capability("question-formation-aux")
    rng = np.random.default_rng(5)
    for split in ("id", "gen"):
        for q in aux.sample_queries(rng, 40, split):
            question = full.answer(q)
            assert aux.answer(q) == question.split()[0] in ("do", "does", "don't", "doesn't")
            assert aux.is_correct(q, question) and aux.is_correct(q, question.split()[0].capitalize())
            # the linear rule's question is right by its first word exactly when the first auxiliary of
            # the sentence is the main one
            linear = full.heuristic(q)
            first_aux = next(w for w in declarative_words(q) if w in ("do", "does", "don't", "doesn't"))
            assert aux.is_correct(q, linear) == (first_aux == aux.answer(q))
            assert aux.checks(q, linear)["first_aux"] == 1.0
    assert aux.answer("my bee who my wolf doesn't visit does amuse her toad") == "does"
    assert aux.heuristic("my bee who my wolf doesn't visit does amuse her toad") == "doesn't"
    assert not aux.is_correct("my bee who my wolf doesn't visit does amuse her toad", "")


def test_replay_of_a_broken_transcript_is_one_error_line(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "format": 1}\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", "game", "--replay", bad)
    one_error_line(code, err, "incomplete header")


def test_a_correct_model_is_not_told_apart_by_formatting():
    """Capitalized answers without the final punctuation are correct; no evaluator may use the format."""
    for name in ("question-formation", "tense-inflection"):
        cap = get_capability(name)

        class Shouting(TruthOracle):
            def respond(self, queries):
                return [a.rstrip(" ?.").capitalize() for a in super().respond(queries)]

        for ev in ("fresh", "adaptive", "discriminator"):
            assert play_games(cap, Shouting(cap), ev, Resources(32, 2, 2), 40, seed=6).stats()["advantage"] == 0.0


def test_resume_refuses_a_transcript_of_another_checkpoint(tmp_path):
    """A small transformer trained further between two runs has the same spec but another step."""
    cap = get_capability("arithmetic")

    class Checkpointed(TruthOracle):
        def __init__(self, step):
            super().__init__(cap)
            self.step = step

        def describe(self):
            return {**super().describe(), "step": self.step}

    path = tmp_path / "t.jsonl"
    play_games(cap, Checkpointed(1000), "fresh", Resources(8, 2, 2), 4, transcript=path)
    assert play_games(cap, Checkpointed(1000), "fresh", Resources(8, 2, 2), 6, transcript=path).stats()["n"] == 6
    with pytest.raises(LmscopeError, match="records another game \\(model differs"):
        play_games(cap, Checkpointed(2000), "fresh", Resources(8, 2, 2), 6, transcript=path)
