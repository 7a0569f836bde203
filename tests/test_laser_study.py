"""LASER study: single-token scoring on a real tokenizer, the pre-registered grid, resplits that never share
a prompt, paired bootstrap intervals on known differences, and the stratum the unmodified model gets wrong,
with planted ground truth on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _priors_lm import smollm2_tokenizer, tiny_model_dir
from conftest import assert_clean_error
from test_laser_search import COUNTRIES, PLANTED, _predictions, _recall_rows, _write_jsonl, word_models  # noqa: F401

from lmscope.cli import main
from lmscope.data.evalsets import EvalTask, load_eval_task
from lmscope.errors import LmscopeError
from lmscope.models import open_model
from lmscope.spectral.laser_search import (
    PAPER_KEEPS,
    PAPER_LAST_LAYERS,
    SearchConfig,
    answer_tokens,
    laser_search,
    late_layers,
    single_token_subset,
    split_indices,
)
from lmscope.spectral.laser_study import (
    StudyConfig,
    bootstrap_mean,
    choose,
    laser_study,
    resplit_analysis,
    stratum,
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------------ statistics
def test_bootstrap_interval_on_a_known_difference():
    d = np.array([1.0] * 300 + [0.0] * 700)  # mean exactly 0.3; standard error sqrt(0.21 / 1000) = 0.0145
    b = bootstrap_mean(d, n_boot=4000, seed=5)
    assert b["mean"] == pytest.approx(0.3) and b["n"] == 1000
    assert b["lo"] < 0.3 < b["hi"]
    assert b["hi"] - b["lo"] == pytest.approx(2 * 1.96 * np.sqrt(0.21 / 1000), rel=0.12)
    assert bootstrap_mean(d, n_boot=4000, seed=5) == b  # seeded
    assert bootstrap_mean(d, n_boot=4000, seed=6) != b
    const = bootstrap_mean(np.full(50, -0.25), n_boot=500, seed=0)  # no spread: the interval is the value
    assert const["lo"] == const["hi"] == const["mean"] == -0.25
    paired = np.array([1, 1, 0, 0, 1]) - np.array([0, 1, 1, 0, 0])  # two fixed, one broken: +0.2
    assert bootstrap_mean(paired, 500, 0)["mean"] == pytest.approx(0.2)
    with pytest.raises(LmscopeError):
        bootstrap_mean([], 100, 0)


def test_stratum_counts_fixed_and_broken():
    base = [1, 1, 0, 0, 0, 1]
    other = [1, 0, 1, 1, 0, 1]
    assert stratum(base, other) == {"base_wrong": 3, "fixed": 2, "base_right": 3, "broken": 1}


def test_choose_prefers_accuracy_then_logloss_then_grid_order():
    idx = np.arange(4)
    rows = [{"top1": np.array([1, 0, 0, 0.]), "logloss": np.ones(4)},
            {"top1": np.array([1, 1, 0, 0.]), "logloss": np.full(4, 2.0)},
            {"top1": np.array([0, 1, 1, 0.]), "logloss": np.full(4, 1.5)},  # same accuracy, lower log-loss
            {"top1": np.array([0, 1, 1, 0.]), "logloss": np.full(4, 1.5)}]  # an exact tie: the earlier wins
    assert choose(rows, idx) == 2
    assert choose(rows, np.array([0])) == 0


def test_resplits_never_share_a_prompt_and_find_a_planted_winner():
    n = 500
    rng = np.random.default_rng(0)
    base = {"top1": (rng.random(n) < 0.4).astype(float), "logloss": np.ones(n)}
    perfect = {"layer": 3, "role": "fc_in", "keep": 0.01, "rank": 1, "top1": np.ones(n), "logloss": np.ones(n)}
    worse = {"layer": 1, "role": "fc_out", "keep": 0.1, "rank": 2, "top1": np.zeros(n), "logloss": np.ones(n)}
    cfg = StudyConfig(resplits=6, val_fraction=0.2, seed=11, n_boot=500)
    per, summ = resplit_analysis(base, [worse, perfect], cfg)
    assert len(per) == 6
    seen_val = []
    for r in per:
        val, test = split_indices(n, 0.2, r["split_seed"])
        assert not set(val) & set(test) and len(val) + len(test) == n
        assert (r["n_val"], r["n_test"]) == (len(val), len(test)) == (100, 400)
        seen_val.append(tuple(val))
        assert (r["layer"], r["role"], r["keep"]) == (3, "fc_in", 0.01)
        wrong = int((base["top1"][test] == 0).sum())
        assert r["delta"] == pytest.approx(wrong / len(test))  # every prompt right: gains all the base got wrong
        assert r["lo"] <= r["delta"] <= r["hi"]
        assert (r["base_wrong"], r["fixed"], r["broken"]) == (wrong, wrong, 0)
        assert r["beats_base_on_val"]
    assert len(set(seen_val)) == 6  # each resplit is a different split
    assert [r["split_seed"] for r in per] == list(range(11, 17))
    assert summ["picks"] == {"3:fc_in:0.01": 6} and summ["interval_above_zero"] == 6
    assert summ["mean_delta"] == pytest.approx(np.mean([r["delta"] for r in per]))
    assert summ["fixed"] == summ["base_wrong"] and summ["broken"] == 0


# ------------------------------------------------------------------------------------------------ scoring
def test_single_token_filter_on_the_real_smollm2_tokenizer():
    tok = smollm2_tokenizer()
    rows = [{"prompt": "The capital of France is", "answer": "Paris", "aliases": ["Paris, France"]},
            {"prompt": "The capital of Argentina is", "answer": "Buenos Aires", "aliases": []},
            {"prompt": "The chemical symbol for gold is", "answer": "Au", "aliases": []},
            {"prompt": "The plural of ox is", "answer": "oxen", "aliases": []}]
    task = EvalTask("t", "recall", rows)
    n_tokens = [len(tok(" " + r["answer"], add_special_tokens=False)["input_ids"]) for r in rows]
    sub, kept = single_token_subset(task, tok)
    assert kept == [i for i, n in enumerate(n_tokens) if n == 1]
    assert 0 in kept and 1 not in kept  # " Paris" is one token, " Buenos Aires" is not
    assert all(r["aliases"] == [] for r in sub.rows)  # judged by the answer only, as the paper does
    assert [r["answer"] for r in sub.rows] == [rows[i]["answer"] for i in kept]
    # on the bundled set: the count the results page reports, against a plain count with the tokenizer
    fr = load_eval_task("factual_recall")
    plain = sum(len(tok(" " + r["answer"], add_special_tokens=False)["input_ids"]) == 1 for r in fr.rows)
    sub, kept = single_token_subset(fr, tok)
    assert len(kept) == plain and 0 < plain < len(fr)
    assert all(len(answer_tokens(tok, r["prompt"], r["answer"])) == 1 for r in sub.rows)
    with pytest.raises(LmscopeError, match="needs a recall task"):
        single_token_subset(load_eval_task("true_false"), tok)
    with pytest.raises(LmscopeError, match="no answer"):
        single_token_subset(EvalTask("m", "recall", [rows[1]]), tok)


def test_study_with_single_token_scoring_on_a_model_with_the_real_tokenizer(tmp_path_factory):
    model = tiny_model_dir(tmp_path_factory.mktemp("smol"))
    tok = smollm2_tokenizer()
    rows = [r for r in load_eval_task("factual_recall").rows[::40]]
    task = EvalTask("sample", "recall", rows)
    n_single = sum(len(tok(" " + r["answer"], add_special_tokens=False)["input_ids"]) == 1 for r in rows)
    cfg = StudyConfig(layers=(1,), keeps=(0.5, 0.1), resplits=3, n_boot=200)
    res = laser_study(model, task, cfg, quiet=True)
    assert (res.n_task, res.n_scored) == (len(rows), n_single)
    assert len(res.grid) == 2 * 2 and len(res.resplits) == 3
    assert all(r["n_val"] + r["n_test"] == n_single for r in res.resplits)
    first = laser_study(model, task, StudyConfig(layers=(1,), keeps=(0.5,), scoring="first-token", resplits=1,
                                                 n_boot=200), quiet=True)
    assert first.n_scored == len(rows)
    again = laser_study(model, task, cfg, quiet=True)  # seeded: the same numbers
    assert again.resplits == res.resplits and again.summary == res.summary


# ------------------------------------------------------------------------------------------------ grid
def test_study_and_paper_grid_on_planted_answers(word_models):  # noqa: F811
    gold = _predictions(word_models["llama"], [PLANTED])
    task = EvalTask("planted", "recall", [{**r, "aliases": []} for r in _recall_rows(gold)])
    res = laser_study(word_models["llama"], task, StudyConfig(keeps=(0.5, 0.1, 0.05), resplits=4, val_fraction=0.5,
                                                              n_boot=300), quiet=True)
    src = open_model(word_models["llama"])
    assert res.config["layers"] == late_layers(src) == [0, 1, 2]  # 3 layers: all are among the last 5
    row = next(g for g in res.grid if (g["layer"], g["role"], g["keep"]) == (2, "fc_out", 0.1))
    assert row["accuracy"] == 1.0 and row["broken"] == 0 and row["fixed"] == row["base_wrong"] > 0
    assert row["d_accuracy"] == pytest.approx(1.0 - res.base["accuracy"]) and row["lo"] > 0
    for r in res.resplits:  # every resplit chooses a config that is perfect on its validation half
        assert r["val_chosen"] == 1.0
    assert "2:fc_out:0.1" in res.summary["picks"]
    assert json.loads(json.dumps(res.to_dict()))["summary"]["resplits"] == 4
    # the search's pre-registered grid: fixed layers, roles and keeps whatever else is given
    s = laser_search(word_models["llama"], task, SearchConfig(grid="paper", layers=[0], keeps=(0.9,), compose=False,
                                                              val_fraction=0.5), quiet=True)
    assert len(s.table) == min(3, PAPER_LAST_LAYERS) * 2 * len(PAPER_KEEPS)
    assert {r["keep"] for r in s.table} == set(PAPER_KEEPS)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_study_and_errors(word_models, tmp_path, capsys):  # noqa: F811
    gold = _predictions(word_models["llama"], [PLANTED])
    task = _write_jsonl(tmp_path / "task.jsonl", _recall_rows(gold))
    model = str(word_models["llama"])
    rc = main(["laser", "study", model, "--task", str(task), "--layers", "1-2", "--keeps", "0.5,0.1",
               "--resplits", "3", "--n-boot", "200", "--val-fraction", "0.5", "--out", str(tmp_path / "rep"),
               "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "single-token scoring keeps 40 of 40 examples" in out and "3 resplits" in out
    for f in ("index.html", "laser_study.json", "laser_study_grid.csv", "laser_study_resplits.csv"):
        assert (tmp_path / "rep" / f).is_file(), f
    assert len((tmp_path / "rep" / "laser_study_grid.csv").read_text().splitlines()) == 1 + 2 * 2 * 2
    rc = main(["laser", "study", model, "--task", str(task), "--layers", "2", "--keeps", "0.1", "--resplits", "2",
               "--n-boot", "200", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_scored"] == len(COUNTRIES) and len(doc["resplits"]) == 2
    rc = main(["laser", "search", model, "--task", str(task), "--grid", "paper", "--scoring", "single-token",
               "--no-compose", "--val-fraction", "0.5", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["examples_scored"] == 40 and doc["config"]["keeps"] == sorted(PAPER_KEEPS, reverse=True)

    tf = _write_jsonl(tmp_path / "tf.jsonl", [{"prompt": "x is", "choices": ["true", "false"], "answer": "true"}] * 4)
    for cmd, msg in (
        (["study", model, "--task", str(tf)], "recall task"),
        (["study", model, "--task", str(task), "--resplits", "0"], "--resplits"),
        (["study", model, "--task", str(task), "--n-boot", "5"], "n_boot"),
        (["study", model, "--task", str(task), "--layers", "9"], "layer 9"),
        (["search", model, "--task", str(task), "--grid", "paper", "--layers", "1"], "--grid paper"),
        (["search", model, "--task", str(tf), "--scoring", "single-token"], "single-token scoring needs"),
    ):
        rc = main(["laser", *cmd, "--quiet"])
        captured = capsys.readouterr()
        assert_clean_error(rc, captured.out, captured.err, msg)
    with pytest.raises(SystemExit) as e:  # argparse's own usage error for an unknown scoring
        main(["laser", "study", model, "--task", str(task), "--scoring", "whole"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err
