"""The adaptive evaluator's ablations and the question-formation generalization split of the game.

Planted ground truth: the ``none`` taxonomy never sees the capability's categories (a capability whose
``kind`` raises still plays, and no category name reaches the transcript); the ``shuffled`` one files
the same labels under other queries (a permutation, seeded); renaming the categories changes no
guess (so a renaming is no ablation); a model that always fronts the first auxiliary scores 0 on the
gen split of the first-word capability and 1 in distribution.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmscope.cli import main
from lmscope.data.grammars import first_auxiliary
from lmscope.data.suites import make_suite
from lmscope.errors import LmscopeError
from lmscope.evaluation import (
    Resources,
    get_capability,
    make_evaluator,
    make_oracle,
    play_games,
    read_transcript,
    replay,
)
from lmscope.evaluation.capabilities import QuestionFormation
from lmscope.evaluation.evaluators import AdaptiveEvaluator, failure_scores, text_features
from lmscope.evaluation.game import play_game
from lmscope.evaluation.oracles import Memo


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------ the gen split
def test_fronting_the_first_auxiliary_scores_zero_on_gen_and_one_in_distribution():
    aux, full = get_capability("question-formation-aux"), get_capability("question-formation")
    rng = np.random.default_rng(11)
    gen, ind = aux.sample_queries(rng, 300, "gen"), aux.sample_queries(rng, 300, "id")
    linear = make_oracle("heuristic", aux)  # the first auxiliary of the sentence
    assert sum(aux.is_correct(q, a) for q, a in zip(gen, linear.respond(gen))) == 0
    assert all(aux.is_correct(q, a) for q, a in zip(ind, linear.respond(ind)))
    # every gen query has a relative clause on the subject whose auxiliary is another word than the main one
    for q in gen:
        words = q.split()
        assert aux.kind(q) == "subj-rc" and words[first_auxiliary(words)] != aux.answer(q)
        assert not full.is_correct(q, full.heuristic(q))
    assert all(aux.kind(q) != "subj-rc" for q in ind)
    # the mix draws gen at its rate and never a relative-clause subject with the main auxiliary's word
    mix = aux.sample_queries(np.random.default_rng(12), 800, "mix")
    rc = [q for q in mix if aux.kind(q) == "subj-rc"]
    assert 0.2 < len(rc) / len(mix) < 0.3
    assert all(not aux.is_correct(q, aux.heuristic(q)) for q in rc)


def test_gen_queries_are_the_suites_gen_sentences():
    """The game's gen split and the grokking suite's gen split are one definition."""
    cap = get_capability("question-formation")
    rows = make_suite("question-formation", 300, 50, 150, seed=4)
    gen = {r["text"].rsplit(" . ", 1)[0] for r in rows if r["split"] == "gen"}
    quest = {r["text"].rsplit(" . ", 1)[0] for r in rows if r["split"] != "gen" and r["task"] == "quest"}
    assert all(not cap.is_correct(q, cap.heuristic(q)) and cap.kind(q) == "subj-rc" for q in gen)
    assert all(cap.kind(q) != "subj-rc" for q in quest)
    drawn = cap.sample_queries(np.random.default_rng(5), 150, "gen")
    first_words = {get_capability("question-formation-aux").heuristic(q) == cap.answer(q).split()[0]
                   for q in drawn}
    assert first_words == {False}


# ------------------------------------------------------------------------------------------ taxonomies
class Untold(QuestionFormation):
    """Question formation that refuses to tell anyone its categories."""

    kinds = ()

    def kind(self, query):
        raise AssertionError("the capability's categories were asked for")


def test_none_taxonomy_never_receives_the_categories(tmp_path):
    cap = Untold()
    model = make_oracle("heuristic", get_capability("question-formation"))
    path = tmp_path / "t.jsonl"
    for probe in (True, False):
        ev = AdaptiveEvaluator(taxonomy="none", probe=probe)
        res = play_games(cap, model, ev, Resources(16, 2, 2), 20, seed=0, transcript=None)
        assert res.stats()["n"] == 20
    play_games(cap, model, AdaptiveEvaluator(taxonomy="none"), Resources(16, 2, 2), 20, seed=0, transcript=path)
    text = path.read_text()
    for name in get_capability("question-formation").kinds:
        assert name not in text
    with pytest.raises(AssertionError, match="categories were asked"):
        play_games(cap, model, "adaptive", Resources(16, 2, 2), 2, seed=0)


def test_none_taxonomy_finds_the_failing_queries_by_word_overlap():
    """One query per game: fresh hits a failing (gen) query at the base rate; the untold evaluator,
    which learned from probes which words go with failures, hits them far more often; the full
    taxonomy, handed the categories, does best."""
    cap = get_capability("question-formation")
    model = Memo(make_oracle("heuristic", cap))  # wrong on exactly the gen queries
    res = Resources(40, 1, 1)
    adv = {ev.label: play_games(cap, model, ev, res, 200, seed=7).stats()["advantage"]
           for ev in (make_evaluator("fresh"), AdaptiveEvaluator(taxonomy="none"), AdaptiveEvaluator())}
    assert 0.1 < adv["fresh"] < 0.4
    assert adv["adaptive-none"] > adv["fresh"] + 0.3
    assert adv["adaptive"] >= adv["adaptive-none"]


def test_failure_scores_learn_a_planted_word():
    """Queries fail exactly when they hold the word "zz"; the scorer, told nothing else, ranks unseen
    queries with "zz" above those without."""
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(30)]

    def query(bad):
        words = [vocab[int(i)] for i in rng.integers(30, size=6)]
        if bad:
            words[int(rng.integers(6))] = "zz"
        return " ".join(words)

    answered = [(query(i % 4 == 0), i % 4 == 0) for i in range(24)]
    fresh = [query(i % 2 == 0) for i in range(20)]
    p = failure_scores(answered, fresh)
    assert p[::2].min() > p[1::2].max()
    assert text_features("a b a") == ["0=a", "1=b", "2=a", "a", "b"]
    assert np.all(failure_scores([], fresh) == 0.5)
    assert np.all(failure_scores([(q, False) for q, _ in answered], fresh) == 0.5)  # one outcome: no ranking


def test_shuffled_taxonomy_is_a_seeded_permutation_of_the_labels():
    cap = get_capability("question-formation")
    pool = cap.sample_queries(np.random.default_rng(1), 60, "mix")
    true = [cap.kind(q) for q in pool]
    full = AdaptiveEvaluator().categories(cap, pool, np.random.default_rng(2))
    assert [full[q] for q in pool] == true
    ev = AdaptiveEvaluator(taxonomy="shuffled")
    a = ev.categories(cap, pool, np.random.default_rng(2))
    b = ev.categories(cap, pool, np.random.default_rng(2))
    assert a == b and sorted(a.values()) == sorted(true)  # seeded; the same labels, as many of each
    assert [a[q] for q in pool] != true
    assert ev.categories(cap, pool, np.random.default_rng(3)) != a


def test_shuffled_taxonomy_loses_what_the_categories_told():
    cap = get_capability("question-formation")
    model = Memo(make_oracle("heuristic", cap))
    res = Resources(40, 1, 1)
    full = play_games(cap, model, AdaptiveEvaluator(), res, 200, seed=8).stats()["advantage"]
    shuffled = play_games(cap, model, AdaptiveEvaluator(taxonomy="shuffled"), res, 200, seed=8).stats()
    fresh = play_games(cap, model, "fresh", res, 200, seed=8).stats()
    assert full > 0.9
    assert shuffled["advantage"] < 0.45 and abs(shuffled["advantage"] - fresh["advantage"]) < 0.15


RENAME = {"subj-none": "subj-rc", "subj-pp": "subj-none", "subj-rc": "subj-pp"}


class Renamed(QuestionFormation):
    """The same categories under permuted names."""

    kinds = tuple(RENAME[k] for k in QuestionFormation.kinds)

    def kind(self, query):
        return RENAME[super().kind(query)]


def test_renaming_the_categories_changes_no_guess():
    """What the adaptive evaluator is handed is the partition, not the names: permuting the names of the
    categories gives the same games (which is why the shuffled taxonomy permutes labels among queries)."""
    cap, renamed = get_capability("question-formation"), Renamed()
    model = Memo(make_oracle("heuristic", cap))
    ev = AdaptiveEvaluator()
    for i in range(30):
        a = play_game(cap, ev, Resources(16, 2, 2), model, 3, i)
        b = play_game(renamed, ev, Resources(16, 2, 2), model, 3, i)
        asked = [[e["queries"] for e in g["events"] if e["call"] in ("ask", "probe")] for g in (a, b)]
        assert a["guess"] == b["guess"] and asked[0] == asked[1]


# ------------------------------------------------------------------------------------------ probing off
def test_no_probe_asks_the_model_nothing_before_the_game_and_replays(tmp_path):
    cap = get_capability("question-formation")
    model = make_oracle("memorizer", cap)
    for taxonomy in ("full", "none", "shuffled"):
        ev = AdaptiveEvaluator(taxonomy=taxonomy, probe=False)
        path = tmp_path / f"{ev.label}.jsonl"
        res = play_games(cap, model, ev, Resources(32, 2, 2), 40, seed=1, transcript=path)
        header, games = read_transcript(path)
        assert header["evaluator"] == "adaptive" and header["evaluator_options"]["probe"] is False
        assert not any(e["call"] == "probe" for g in games.values() for e in g["events"])
        again = replay(path)
        assert again.evaluator == ev.label == res.evaluator
        assert again.stats()["advantage"] == res.stats()["advantage"]
    # with probes, the same budget spends (32 - 4) // 2 = 14 queries on the model first
    path = tmp_path / "probe.jsonl"
    play_games(cap, model, AdaptiveEvaluator(), Resources(32, 2, 2), 2, seed=1, transcript=path)
    _, games = read_transcript(path)
    assert [len(e["queries"]) for e in games[0]["events"] if e["call"] == "probe"] == [14]


def test_default_adaptive_options_are_unchanged():
    ev = make_evaluator("adaptive")
    assert ev.options() == {"threshold": 1} and ev.label == "adaptive"
    assert make_evaluator("adaptive", taxonomy="none", probe=False).label == "adaptive-none-noprobe"
    assert make_evaluator("fresh", taxonomy="none").label == "fresh"
    with pytest.raises(LmscopeError, match="unknown taxonomy 'x'"):
        AdaptiveEvaluator(taxonomy="x")


# ------------------------------------------------------------------------------------------ command line
def test_cli_taxonomy_and_no_probe(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "eval", "game", "--capability", "question-formation", "--model", "memorizer",
                           "--evaluator", "adaptive", "--taxonomy", "shuffled", "--no-probe", "--samples", "16",
                           "--rounds", "2", "--queries", "2", "--games", "10", "--out", tmp_path / "g", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["evaluator"] == "adaptive-shuffled-noprobe" and payload["n"] == 10
    header, _ = read_transcript(tmp_path / "g" / "transcript.jsonl")
    assert header["evaluator_options"] == {"threshold": 1, "taxonomy": "shuffled", "probe": False}
    code, out, _ = run_cli(capsys, "eval", "profile", "--capability", "question-formation", "--model", "memorizer",
                           "--evaluator", "fresh,adaptive", "--taxonomy", "none", "--values", "8",
                           "--rounds", "2", "--queries", "2", "--games", "6", "--out", tmp_path / "p", "--quiet")
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "p" / "transcripts").glob("*.jsonl"))
    assert names == ["memorizer__adaptive-none__samples8.jsonl", "memorizer__fresh__samples8.jsonl"]


@pytest.mark.parametrize("extra,text", [
    (["--taxonomy", "none"], "--taxonomy changes the adaptive evaluator only"),
    (["--no-probe"], "--no-probe changes the adaptive evaluator only"),
])
def test_cli_ablation_options_need_the_adaptive_evaluator(capsys, tmp_path, extra, text):
    code, _, err = run_cli(capsys, "eval", "game", "--capability", "question-formation", "--model", "truth",
                           "--evaluator", "fresh", *extra, "--transcript", tmp_path / "t.jsonl")
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code != 0 and lines == [f"lmscope: error: {text}; add --evaluator adaptive"]
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "game", "--capability", "question-formation", "--model", "truth", "--evaluator", "adaptive",
              "--taxonomy", "bogus", "--transcript", str(tmp_path / "t.jsonl")])
    assert exit_.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err


def test_a_transcript_of_the_previous_question_formation_is_not_resumed(tmp_path):
    """Version 2 of question formation draws other gen queries: games recorded under version 1 (no
    version in the header) are refused rather than mixed in; other capabilities still resume."""
    path = tmp_path / "t.jsonl"
    cap = get_capability("question-formation")
    play_games(cap, make_oracle("memorizer", cap), "fresh", Resources(8, 2, 2), 4, seed=0, transcript=path)
    header, _ = read_transcript(path)
    assert header["capability_version"] == 2
    lines = path.read_text().splitlines()
    old = json.loads(lines[0])
    del old["capability_version"]
    path.write_text("\n".join([json.dumps(old)] + lines[1:]) + "\n")
    with pytest.raises(LmscopeError, match="capability_version differs"):
        play_games(cap, make_oracle("memorizer", cap), "fresh", Resources(8, 2, 2), 4, seed=0, transcript=path)
    arith, path2 = get_capability("arithmetic"), tmp_path / "a.jsonl"
    play_games(arith, make_oracle("heuristic", arith), "fresh", Resources(8, 2, 2), 4, seed=0, transcript=path2)
    lines = path2.read_text().splitlines()
    old = json.loads(lines[0])
    del old["capability_version"]
    path2.write_text("\n".join([json.dumps(old)] + lines[1:]) + "\n")
    res = play_games(arith, make_oracle("heuristic", arith), "fresh", Resources(8, 2, 2), 6, seed=0, transcript=path2)
    assert res.stats()["n"] == 6
