"""Tree projections of grokking runs: rebuilding a run's initial model, checkpoints and logged
sentences from its folder, and the bootstrap comparison of two models' projections."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lmscope.errors import LmscopeError
from lmscope.grokking import (
    SentenceScores,
    checkpoint_steps,
    gap_intervals,
    grok_train,
    initial_model,
    pooled_f1,
    rebuild_run,
    run_model,
    tree_scores,
)
from lmscope.models.small import SmallConfig, SmallTransformer
from lmscope.train.loop import read_metrics
from lmscope.trees import prf, tree_projection

TINY = dict(layers=2, d_model=16, heads=2, d_ff=32, steps=20, eval_every=10, ckpt_every=10, n_train=80,
            n_val=10, n_gen=10, sample_size=6, tree_sample=4, n_test=5, keep_checkpoints=0, quiet=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("grok") / "qf"
    grok_train("question-formation", path, seed=3, lr=3e-3, warmup=0, **TINY)
    return path


def _weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_checkpoint_steps_and_min_age(run):
    assert checkpoint_steps(run) == [10, 20]
    assert checkpoint_steps(run, min_age=3600) == []  # all written just now
    assert checkpoint_steps(run.parent / "nothing") == []


def test_logged_tree_scores_are_reproduced_from_checkpoints(run):
    data = rebuild_run(run)
    assert data.task == "question-formation" and data.seed == 3 and data.layers == 2
    assert len(data.tree_sentences) == 4 == len(data.tree_trees)
    logged = {r["step"]: r for r in read_metrics(run)}
    for step in (10, 20):
        model = run_model(run, step)
        got = tree_scores(model, data.tokenizer, data.tree_sentences, data.tree_trees, seed=data.seed)
        assert got["t_score"] == pytest.approx(logged[step]["t_score"], abs=1e-9)
        assert got["f1"] == pytest.approx(logged[step]["f1"], abs=1e-12)
    # the checkpoints differ from each other and from the start
    w10, w20, w0 = (_weights(run_model(run, s)) for s in (10, 20, 0))
    assert any(not torch.equal(w10[k], w20[k]) for k in w10)
    assert any(not torch.equal(w0[k], w10[k]) for k in w0)


def test_tree_set_extends_the_logged_sentences(run):
    data = rebuild_run(run)
    more, trees = data.tree_set(12)
    assert len(more) == 12 and len(trees) == 12
    assert set(data.tree_sentences) <= set(more)
    assert all(" ".join(s.split()) == s and "." not in s.split() for s in more)  # declaratives, no period
    with pytest.raises(LmscopeError):
        data.tree_set(0)


def test_initial_model_is_where_training_started(tmp_path):
    # a learning rate so small that one step leaves the weights where they started (to ~1e-12)
    path = tmp_path / "still"
    grok_train("question-formation", path, seed=5, lr=1e-12, warmup=0,
               **{**TINY, "steps": 1, "eval_every": 0, "ckpt_every": 1})
    start, after_one = _weights(initial_model(path)), _weights(run_model(path, 1))
    assert set(start) == set(after_one)
    for k in start:
        assert torch.allclose(start[k], after_one[k], atol=1e-8), k
    assert all(torch.equal(start[k], v) for k, v in _weights(run_model(path, 0)).items())
    info = json.loads((path / "run.json").read_text())
    other = _weights(SmallTransformer(SmallConfig.from_dict(info["model"]), seed=6))  # another seed
    assert max(float((start[k] - other[k]).abs().max()) for k in start) > 1e-2
    assert not initial_model(path).training


def test_run_model_and_rebuild_errors(run, tmp_path):
    with pytest.raises(LmscopeError, match="no checkpoint at step 15.*kept: 10, 20"):
        run_model(run, 15)
    for bad in (-1, 1.5, True):
        with pytest.raises(LmscopeError):
            run_model(run, bad)
    with pytest.raises(LmscopeError, match="not a training run"):
        initial_model(tmp_path)
    # a corrupt checkpoint is refused, not loaded
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    weights = copy / "checkpoints" / "step-0000010" / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(LmscopeError, match="checksum"):
        run_model(copy, 10)
    # data that cannot be regenerated exactly is refused
    info = json.loads((copy / "run.json").read_text())
    info["data"]["sha256"] = "0" * 64
    (copy / "run.json").write_text(json.dumps(info))
    with pytest.raises(LmscopeError, match="training texts differ"):
        rebuild_run(copy)
    info["meta"] = {}
    (copy / "run.json").write_text(json.dumps(info))
    with pytest.raises(LmscopeError, match="does not record a grokking task"):
        rebuild_run(copy)


def test_rebuild_run_of_a_missing_folder(tmp_path):
    with pytest.raises(LmscopeError):
        rebuild_run(tmp_path / "missing")


# ------------------------------------------------------------------------------------------ statistics
def test_pooled_f1_matches_prf():
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(30):
        p, g = rng.integers(1, 9, size=2)
        counts.append((int(rng.integers(0, min(p, g) + 1)), int(p), int(g)))
    assert float(pooled_f1(np.sum(counts, axis=0))) == pytest.approx(prf(counts)["f1"])
    assert float(pooled_f1(np.array([0, 3, 4]))) == 0.0


def test_sentence_scores_from_a_projection(run):
    data = rebuild_run(run)
    res = tree_projection((run_model(run, 20), data.tokenizer), data.tree_sentences, gold_trees=data.tree_trees,
                          seed=data.seed, quiet=True)
    sc = SentenceScores.from_result(res)
    assert sc.t_score == pytest.approx(res.t_score)
    assert sc.f1 == pytest.approx(res.f1)
    assert SentenceScores.from_dict(json.loads(json.dumps(sc.to_dict()))).f1 == pytest.approx(res.f1)
    nogold = tree_projection((run_model(run, 20), data.tokenizer), data.tree_sentences, seed=0, quiet=True)
    with pytest.raises(LmscopeError, match="gold"):
        SentenceScores.from_result(nogold)


def _scores(t, counts):
    return SentenceScores(np.asarray(t, float), np.asarray(counts))


def test_gap_intervals_planted_constant_gap():
    rng = np.random.default_rng(1)
    n = 40
    b_t = rng.normal(size=n)
    counts = np.stack([rng.integers(0, 3, n), np.full(n, 4), np.full(n, 4)], 1)
    a, b = _scores(b_t + 0.5, counts), _scores(b_t, counts)
    g = gap_intervals([(a, b)], n_boot=300, seed=0)
    assert g["t_gap"] == pytest.approx(0.5) and g["t_lo"] == pytest.approx(0.5) and g["t_hi"] == pytest.approx(0.5)
    assert g["f1_gap"] == 0.0 and g["f1_lo"] == 0.0 and g["f1_hi"] == 0.0
    assert g["n_pairs"] == 1 and g["n_sentences"] == n


def test_gap_intervals_cover_a_planted_mean_gap():
    rng = np.random.default_rng(2)
    n, true = 2000, 0.3
    b_t = rng.normal(size=n)
    a_t = b_t + true + rng.normal(size=n)  # per-sentence gap: mean 0.3, sd 1
    # trained trees match 3 of 4 gold brackets, initial ones 1 of 4: pooled F1 0.75 vs 0.25
    a = _scores(a_t, np.tile([3, 4, 4], (n, 1)))
    b = _scores(b_t, np.tile([1, 4, 4], (n, 1)))
    g = gap_intervals([(a, b)], n_boot=1000, seed=7)
    assert g["t_lo"] < true < g["t_hi"]
    assert g["t_hi"] - g["t_lo"] == pytest.approx(2 * 1.96 / np.sqrt(n), rel=0.2)  # the normal theory width
    assert g["f1_gap"] == pytest.approx(0.5) and g["f1_lo"] == pytest.approx(0.5)
    again = gap_intervals([(a, b)], n_boot=1000, seed=7)
    assert again == g  # seeded
    # the mean over two runs: the gaps average, the interval narrows
    a2, b2 = _scores(b_t + 0.1 + rng.normal(size=n), b.counts), _scores(b_t, b.counts)
    both = gap_intervals([(a, b), (a2, b2)], n_boot=1000, seed=7)
    assert both["t_gap"] == pytest.approx((g["t_gap"] + (a2.t_score - b2.t_score)) / 2)
    assert both["t_hi"] - both["t_lo"] < g["t_hi"] - g["t_lo"]
    assert both["f1_gap"] == pytest.approx(0.25)


def test_gap_intervals_bad_input():
    a = _scores([1.0, 2.0], [[1, 2, 2], [1, 2, 2]])
    b = _scores([1.0], [[1, 2, 2]])
    with pytest.raises(LmscopeError, match="paired"):
        gap_intervals([(a, b)])
    with pytest.raises(LmscopeError):
        gap_intervals([])
    with pytest.raises(LmscopeError):
        gap_intervals([(a, a)], n_boot=0)
    with pytest.raises(LmscopeError):
        SentenceScores([1.0, 2.0], [[1, 2, 2]])
