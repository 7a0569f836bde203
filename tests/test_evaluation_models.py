"""Real model oracles in the pseudointelligence game: a small transformer trained here for a few
steps with the grokking API, and the bundled SmolLM2-135M-Instruct through lmscope.lm (skipped when
the bundled model is not installed)."""

from __future__ import annotations

import pytest

from lmscope.errors import LmscopeError
from lmscope.evaluation import Resources, get_capability, make_oracle, play_games, read_transcript, replay
from lmscope.evaluation.oracles import LMOracle, SmallOracle


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from lmscope.grokking import grok_train

    run = tmp_path_factory.mktemp("qf-run") / "run"
    grok_train("question-formation", run, layers=1, d_model=16, heads=2, d_ff=32, steps=30, batch_size=8,
               eval_every=30, ckpt_every=30, n_train=60, n_val=10, n_gen=10, sample_size=10, tree_sample=0,
               quiet=True)
    return run


def test_small_transformer_oracle(tiny_run, tmp_path):
    cap = get_capability("question-formation")
    oracle = make_oracle(f"small:{tiny_run}", cap)
    assert isinstance(oracle, SmallOracle) and oracle.step == 30
    qs = cap.sample_queries(__import__("numpy").random.default_rng(0), 3, "mix")
    out = oracle.respond(qs)
    assert len(out) == 3 and all(isinstance(a, str) for a in out)
    assert oracle.respond(qs) == out  # greedy: deterministic
    path = tmp_path / "t.jsonl"
    res = play_games(cap, oracle, "discriminator", Resources(8, 2, 2), 6, seed=0, transcript=path)
    assert res.stats()["n"] == 6
    assert replay(path).games == res.games
    assert read_transcript(path)[0]["model"]["step"] == 30


def test_small_transformer_oracle_refuses_other_capabilities(tiny_run, tmp_path):
    with pytest.raises(LmscopeError, match="trained on question-formation; it cannot answer tense-inflection"):
        make_oracle(f"small:{tiny_run}", get_capability("tense-inflection"))
    with pytest.raises(LmscopeError, match="answers question-formation or tense-inflection"):
        make_oracle(f"small:{tiny_run}", get_capability("arithmetic"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmscopeError, match="not a run of lmscope grok train"):
        make_oracle(f"small:{tmp_path / 'empty'}", get_capability("question-formation"))


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    from lmscope.lm import open_lm
    from lmscope.models import bundled_path

    try:
        bundled_path("smollm2-135m")
    except LmscopeError as e:
        pytest.skip(str(e))
    lm = open_lm("local:smollm2-135m", cache=tmp_path_factory.mktemp("lmcache") / "lm.sqlite", device="cpu")
    yield lm
    lm.close()


def test_lm_oracle_and_judges_with_the_bundled_model(smol, tmp_path):
    cap = get_capability("arithmetic")
    oracle = make_oracle("lm", cap, lm_factory=lambda spec: smol)
    assert isinstance(oracle, LMOracle) and oracle.spec == "lm:local:smollm2-135m"
    prompt = oracle.prompt("12 + 30")
    assert prompt.startswith(cap.instruction) and prompt.endswith("Input: 12 + 30\nOutput:")
    path = tmp_path / "fresh.jsonl"
    res = play_games(cap, oracle, "fresh", Resources(2, 1, 2), 2, seed=0, transcript=path)
    assert res.stats()["n"] == 2
    asked = [e for g in read_transcript(path)[1].values() for e in g["events"] if e["call"] == "ask"]
    assert all(len(e["responses"]) == 2 for e in asked)
    # the model judging itself (its own yes/no) and an LM judge calibrated on 2 samples
    for ev, judge in (("self", None), ("lm-judge", smol)):
        p = tmp_path / f"{ev}.jsonl"
        r = play_games(cap, oracle, ev, Resources(4, 1, 2), 2, seed=0, transcript=p, judge_lm=judge)
        assert r.stats()["n"] == 2
        assert any(e["call"] == "judge" for g in read_transcript(p)[1].values() for e in g["events"])
        assert replay(p).games == r.games  # replays without the model
    before = smol.stats.misses
    play_games(cap, oracle, "fresh", Resources(2, 1, 2), 2, seed=0, transcript=tmp_path / "again.jsonl")
    assert smol.stats.misses == before  # the same games again come from the LM cache
