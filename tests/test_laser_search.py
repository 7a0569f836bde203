"""LASER evaluation, search and composition, and factored storage, on tiny models with planted answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import build_tiny_model

from lmscope.cli import main
from lmscope.data.evalsets import EvalTask, load_eval_task
from lmscope.errors import LmscopeError
from lmscope.lm.scoring import TaskScorer
from lmscope.models import open_model
from lmscope.models.checkpoint import WeightEditor
from lmscope.models.lowrank import LowRankLinear, factors
from lmscope.report.sections import laser_verdict
from lmscope.spectral import SVDCache
from lmscope.spectral.laser import Reduction, apply_laser, kept_rank, low_rank
from lmscope.spectral.laser_search import (
    LaserSearchResult,
    SearchConfig,
    compose,
    laser_search,
    split_indices,
)

COUNTRIES = [f"c{i}" for i in range(40)]
ANSWERS = [f"w{i}" for i in range(12)]
WORDS = ["the", "capital", "of", "is", "true", "false", "answer", "x"] + COUNTRIES + ANSWERS
SPECIAL = ["[PAD]", "[UNK]", "[MASK]"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))


def _word_tokenizer(path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    t = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    t.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    t.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]", mask_token="[MASK]")
    tok.save_pretrained(path)
    return tok


@pytest.fixture(scope="module")
def word_models(tmp_path_factory):
    """Tiny Llama (causal) and BERT (masked LM) over a word-level vocabulary, with their tokenizer."""
    out = {}
    n_vocab = len(SPECIAL) + len(WORDS)
    torch.manual_seed(0)
    llama = build_tiny_model("llama", seed=None, vocab_size=n_vocab, num_hidden_layers=3, tie_word_embeddings=False)
    with torch.no_grad():  # special tokens never win, so every prediction is a plain word
        llama.lm_head.weight[: len(SPECIAL)] = 0.0
        llama.lm_head.weight[len(SPECIAL):] *= 8.0
    bert = build_tiny_model("bert", seed=None, vocab_size=n_vocab, num_attention_heads=2)
    for name, model in (("llama", llama), ("bert", bert)):
        d = tmp_path_factory.mktemp(name) / "model"
        model.eval().save_pretrained(d)
        _word_tokenizer(d)
        out[name] = d
    return out


def _recall_rows(answers=None):
    return [{"prompt": f"the capital of {c} is", "answer": (answers[i] if answers else ANSWERS[i % len(ANSWERS)])}
            for i, c in enumerate(COUNTRIES)]


def _predictions(model_dir, reductions) -> list[str]:
    """Each prompt's top-1 next word under the model with ``reductions`` applied (an independent loop)."""
    src = open_model(model_dir)
    model = src.load_model()
    tok = src.load_tokenizer()
    editor = WeightEditor(model, src)
    svds = SVDCache(enabled=False)
    for red in reductions:
        w = editor.get(red.key)
        editor.set({red.key: low_rank(svds.full(w), kept_rank(tuple(w.shape), red.keep))})
    preds = []
    with torch.no_grad():
        for row in _recall_rows():
            ids = torch.tensor([tok(row["prompt"])["input_ids"]])
            preds.append(tok.decode([int(model(input_ids=ids).logits[0, -1].argmax())]))
    return preds


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------------------------ factored
def test_factored_module_computes_the_dense_low_rank_function():
    torch.manual_seed(1)
    w, b = torch.randn(24, 40), torch.randn(24)
    U, S, Vh = torch.linalg.svd(w, full_matrices=False)
    k = 5
    up, down = factors(U, S, Vh, k)
    dense = torch.nn.Linear(40, 24)
    with torch.no_grad():
        dense.weight.copy_((U[:, :k] * S[:k]) @ Vh[:k])
        dense.bias.copy_(b)
    lr = LowRankLinear.from_factors(up, down, b)
    x = torch.randn(7, 3, 40)
    torch.testing.assert_close(lr(x), dense(x), atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in lr.parameters()) == k * (24 + 40) + 24 < dense.weight.numel() + 24


@pytest.mark.parametrize("family,fmt", [("llama", "sharded"), ("gpt2", "safetensors"), ("bert", "safetensors")])
def test_apply_factored_shrinks_the_model_and_matches_dense(tiny_model_dir, tmp_path, family, fmt):
    src_dir = tiny_model_dir(family, fmt)
    reds = [Reduction(1, "fc_out", 0.25), Reduction(0, "fc_in", 0.1)]
    dense = apply_laser(src_dir, reds, tmp_path / "dense", quiet=True)
    fac = apply_laser(src_dir, reds, tmp_path / "fac", quiet=True, factored=True)
    assert [r["stored"] for r in fac["reductions"]] == ["factored", "factored"]
    saved = sum(r["dense_parameters"] - r["factored_parameters"] for r in fac["reductions"])
    assert fac["parameters_after"] == fac["parameters_before"] - saved < dense["parameters_before"]
    md = open_model(tmp_path / "dense").load_model()
    mf = open_model(tmp_path / "fac").load_model()
    assert any(isinstance(m, LowRankLinear) for m in mf.modules())
    assert mf.num_parameters() == md.num_parameters() - saved
    x = torch.tensor([[1, 5, 9, 3, 7, 2]])
    with torch.no_grad():
        out_d = md(input_ids=x)
        out_f = mf(input_ids=x)
    key = "logits" if hasattr(out_d, "logits") else "last_hidden_state"
    torch.testing.assert_close(getattr(out_f, key), getattr(out_d, key), atol=1e-5, rtol=1e-4)
    # the factored folder still opens as matrices (dense views of the factors), equal to the dense copy
    a, b = open_model(tmp_path / "fac"), open_model(tmp_path / "dense")
    assert [r.key for r in a.matrices()] == [r.key for r in b.matrices()]
    for ref in a.matrices():
        torch.testing.assert_close(a.load(ref), b.load(ref), atol=1e-5, rtol=1e-4)
    with pytest.raises(LmscopeError, match="already a factored"):
        apply_laser(tmp_path / "fac", [Reduction(1, "q", 0.5)], tmp_path / "again", quiet=True)


def test_factored_falls_back_to_dense_where_factors_are_not_smaller(tiny_model_dir, tmp_path):
    res = apply_laser(tiny_model_dir("gpt2"), [Reduction(0, "k", 0.25), Reduction(1, "fc_in", 0.9)],
                      tmp_path / "out", quiet=True, factored=True)
    assert [r["stored"] for r in res["reductions"]] == ["dense", "dense"]
    assert "fused" in res["reductions"][0]["why_dense"]
    assert res["parameters_after"] == res["parameters_before"]


# ------------------------------------------------------------------------------------------------ scoring
def _manual_recall(model, tok, rows):
    """Answer log-prob and top-1 word, one example at a time with full logits (the slow, obvious way)."""
    out = []
    with torch.no_grad():
        for r in rows:
            p = tok(r["prompt"])["input_ids"]
            a = tok(" " + r["answer"], add_special_tokens=False)["input_ids"]
            logits = model(input_ids=torch.tensor([p + a])).logits[0].log_softmax(-1)
            lp = sum(float(logits[len(p) - 1 + i, t]) for i, t in enumerate(a))
            out.append((lp, tok.decode([int(logits[len(p) - 1].argmax())]) == r["answer"]))
    return out


def test_scorer_matches_a_plain_forward_pass_and_the_prefix_cache_is_exact(word_models):
    src = open_model(word_models["llama"])
    model, tok = src.load_model(), src.load_tokenizer()
    task = EvalTask("t", "recall", [{**r, "aliases": []} for r in _recall_rows()])
    sc = TaskScorer(model, tok, task, batch_size=7, top_k=3)
    assert sc._fast
    full = sc.score()
    manual = _manual_recall(model, tok, task.rows)
    np.testing.assert_allclose(full.logprob, [m[0] for m in manual], atol=1e-4)
    np.testing.assert_array_equal(full.top1, [float(m[1]) for m in manual])
    walk = TaskScorer(model, tok, task, batch_size=7, top_k=3)
    walk.prepare_prefix([1])
    walk.prepare_prefix([2])  # starts from the stored input of layer 1
    sc.prepare_prefix([1, 2])
    for a, b in zip(walk._prefix[2], sc._prefix[2], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    for start in (1, 2):
        again = sc.score(start_layer=start)
        np.testing.assert_allclose(again.logprob, full.logprob, atol=1e-6)
        np.testing.assert_array_equal(again.top1, full.top1)
    # with layer 2 edited, replaying layer 2's input equals a full pass of the edited model
    editor = WeightEditor(model, src)
    w = editor.get("2.fc_out")
    prev = editor.set({"2.fc_out": low_rank(SVDCache(enabled=False).full(w), 3)})
    np.testing.assert_allclose(sc.score(start_layer=2).logprob, sc.score().logprob, atol=1e-6)
    editor.undo(prev)
    np.testing.assert_array_equal(sc.score().logprob, full.logprob)


def test_choice_and_text_tasks(word_models):
    src = open_model(word_models["llama"])
    model, tok = src.load_model(), src.load_tokenizer()
    rows = [{"prompt": f"the capital of {c} is w1 true or false answer", "choices": ["true", "false"],
             "answer": "true" if i % 2 else "false"} for i, c in enumerate(COUNTRIES[:10])]
    s = TaskScorer(model, tok, EvalTask("c", "choice", rows), top_k=1).score()
    with torch.no_grad():
        for i, r in enumerate(rows):
            ids = tok(r["prompt"])["input_ids"]
            lp = model(input_ids=torch.tensor([ids])).logits[0, -1].log_softmax(-1)
            t, f = float(lp[tok.convert_tokens_to_ids("true")]), float(lp[tok.convert_tokens_to_ids("false")])
            gold, other = (t, f) if r["answer"] == "true" else (f, t)
            assert s.top1[i] == float(gold > other)
            assert s.logprob[i] == pytest.approx(gold, abs=1e-5)
            assert s.logloss[i] == pytest.approx(-(gold - np.logaddexp(t, f)), abs=1e-5)
    text = EvalTask("x", "text", [{"text": " ".join(WORDS[i:i + 9])} for i in range(0, 40, 4)])
    ts = TaskScorer(model, tok, text).score()
    summ = ts.summary()
    assert summ["accuracy"] is None and summ["perplexity"] > 1
    assert np.all(ts.ntokens == 8)


def test_masked_lm_fills_the_masks(word_models):
    src = open_model(word_models["bert"])
    model, tok = src.load_model(), src.load_tokenizer()
    rows = [{**r, "aliases": []} for r in _recall_rows()[:12]]
    sc = TaskScorer(model, tok, EvalTask("t", "recall", rows), batch_size=5)
    s = sc.score()
    with torch.no_grad():
        for i, r in enumerate(rows):
            ids = tok(r["prompt"], add_special_tokens=False)["input_ids"] + [tok.mask_token_id]
            lp = model(input_ids=torch.tensor([ids])).logits[0, -1].log_softmax(-1)
            assert s.logprob[i] == pytest.approx(float(lp[tok.convert_tokens_to_ids(r["answer"])]), abs=1e-5)
    sc.prepare_prefix([1])
    np.testing.assert_allclose(sc.score(start_layer=1).logprob, s.logprob, atol=1e-6)
    with pytest.raises(LmscopeError, match="causal"):
        TaskScorer(model, tok, EvalTask("x", "text", [{"text": "the capital of c1"}]))


# ------------------------------------------------------------------------------------------------ search
PLANTED = Reduction(2, "fc_out", 0.1)


def test_search_finds_the_planted_best_config(word_models, tmp_path):
    gold = _predictions(word_models["llama"], [PLANTED])
    task = EvalTask("planted", "recall", [{**r, "aliases": []} for r in _recall_rows(gold)])
    cfg = SearchConfig(roles=("fc_in", "fc_out"), keeps=(0.5, 0.1, 0.05), val_fraction=0.5, compose=True)
    res = laser_search(word_models["llama"], task, cfg, quiet=True)
    assert len(res.table) == 3 * 2 * 3
    assert (res.best["layer"], res.best["role"], res.best["keep"]) == (2, "fc_out", 0.1)
    assert res.best["val"]["accuracy"] == 1.0 and res.best["test"]["accuracy"] == 1.0
    assert res.base["test"]["accuracy"] < 1.0
    assert res.composed["val"]["accuracy"] == 1.0  # (extra reductions may fit validation only)
    assert {"layer": 2, "role": "fc_out", "keep": 0.1} in [
        {k: r[k] for k in ("layer", "role", "keep")} for r in res.composed["reductions"]]
    row = next(r for r in res.table if (r["layer"], r["role"], r["keep"]) == (2, "fc_out", 0.1))
    assert row["d_accuracy"] == pytest.approx(1.0 - res.base["val"]["accuracy"])
    assert res.improved and res.to_dict()["improved"] is True
    verdict = laser_verdict(res)
    assert f"validation accuracy {100 * res.base['val']['accuracy']:.1f}%" in verdict
    assert "layer 2 fc_out keep 0.1, beat it on validation with accuracy 100.0%" in verdict
    # a second run resumes from the progress file and gives the same table
    again = laser_search(word_models["llama"], task, cfg, quiet=True)
    assert again.timing["scored_now"] == 0
    assert [r["logloss"] for r in again.table] == [r["logloss"] for r in res.table]


def test_laser_says_plainly_when_no_reduction_beat_the_unmodified_model():
    """A result whose best config is worse on validation than the unmodified model (accuracy, then
    log-loss on a tie) is reported as no improvement, with the unmodified validation accuracy."""
    def result(best_val):
        base = {"val": {"accuracy": 0.5, "logloss": 1.0}, "test": {"accuracy": 0.4, "logloss": 1.1}}
        best = {"layer": 3, "role": "fc_in", "keep": 0.2, "rank": 4, "val": best_val,
                "test": {"accuracy": 0.3, "logloss": 1.3}}
        table = [{"layer": 3, "role": "fc_in", "keep": 0.2, "rank": 4, **best_val}]
        return LaserSearchResult("m", "t", "recall", {}, 20, 30, base, table, best, None)

    for worse in ({"accuracy": 0.45, "logloss": 0.9}, {"accuracy": 0.5, "logloss": 1.0}):
        res = result(worse)
        assert not res.improved
        text = laser_verdict(res)
        assert text.startswith("The unmodified model's validation accuracy 50.0% (20 examples; test accuracy "
                               "40.0% on 30).")
        assert "No reduction of the 1 tried beat it on validation: LASER did not help here" in text
        assert "no reduction beat the unmodified model on validation" in "\n".join(res.summary_lines())
        assert "unmodified     val  accuracy 50.0%" in "\n".join(res.summary_lines())
    tie_better = result({"accuracy": 0.5, "logloss": 0.8})  # same accuracy, lower log-loss: an improvement
    assert tie_better.improved and "beat it on validation" in laser_verdict(tie_better)


def test_composition_accepts_improvements_and_reverts_the_rest(word_models):
    a, b, harmful = Reduction(2, "fc_out", 0.1), Reduction(1, "fc_in", 0.1), Reduction(1, "fc_out", 0.05)
    gold = _predictions(word_models["llama"], [a, b])
    task = EvalTask("two", "recall", [{**r, "aliases": []} for r in _recall_rows(gold)])
    src = open_model(word_models["llama"])
    model, tok = src.load_model(), src.load_tokenizer()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sc = TaskScorer(model, tok, task)
    base = sc.score().summary()
    editor = WeightEditor(model, src)
    svds = SVDCache(enabled=False)
    assert base["accuracy"] < 1.0
    # candidates as the search would list them (numbers only order them within a layer)
    table = [{"layer": r.layer, "role": r.role, "keep": r.keep, "rank": 1, "accuracy": acc, "d_accuracy": acc,
              "logloss": 0.0} for r, acc in ((a, 1.0), (b, 1.0), (harmful, 0.99))]
    out = compose(editor, svds, sc, table, {**base, "accuracy": 0.0}, quiet=True)
    kept = [(r["layer"], r["role"], r["keep"]) for r in out["reductions"]]
    assert kept == [(2, "fc_out", 0.1), (1, "fc_in", 0.1)]
    assert [t["kept"] for t in out["trials"]] == [True, True, False]
    assert out["val"]["accuracy"] == 1.0
    for k, v in model.state_dict().items():  # the model is left exactly as it was given
        assert torch.equal(v, before[k]), k


def test_weight_editor_undo_is_a_copy_not_an_alias(tiny_model_dir):
    src = open_model(tiny_model_dir("gpt2"))  # q, k, v are slices of one fused tensor
    model = src.load_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ed = WeightEditor(model, src)
    p1 = ed.set({"0.q": torch.zeros(32, 32)})
    p2 = ed.set({"0.k": torch.ones(32, 32)})
    assert torch.equal(ed.get("0.q"), torch.zeros(32, 32)) and torch.equal(ed.get("0.k"), torch.ones(32, 32))
    ed.undo(p2)
    assert torch.equal(ed.get("0.q"), torch.zeros(32, 32))
    ed.undo(p1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_split_is_seeded_and_disjoint():
    v, t = split_indices(100, 0.2, seed=3)
    assert len(v) == 20 and len(t) == 80 and not set(v) & set(t)
    assert split_indices(100, 0.2, seed=3) == (v, t) != split_indices(100, 0.2, seed=4)
    with pytest.raises(LmscopeError):
        split_indices(1, 0.2, 0)
    with pytest.raises(LmscopeError):
        split_indices(10, 1.0, 0)


# ------------------------------------------------------------------------------------------------ input
def test_task_files_bad_input(tmp_path):
    cases = {
        "empty": ("", "no examples"),
        "malformed": ('{"prompt": "a", "answer": "b"}\n{"prompt": \n', ":2: malformed JSON"),
        "mixed": ('{"prompt": "a", "answer": "b"}\n\n{"text": "abc"}\n', ":3: a text example"),
        "noanswer": ('{"prompt": "a", "answer": ""}\n', ":1: 'answer' must be"),
        "badchoice": ('{"prompt": "a", "choices": ["x", "y"], "answer": "z"}\n', "one of the choices"),
        "onechoice": ('{"prompt": "a", "choices": ["x"], "answer": "x"}\n', "at least two"),
        "unknown": ('{"question": "a"}\n', "not an evaluation example"),
    }
    for name, (text, msg) in cases.items():
        p = tmp_path / f"{name}.jsonl"
        p.write_text(text)
        with pytest.raises(LmscopeError, match=msg):
            load_eval_task(p)
    ok = _write_jsonl(tmp_path / "ok.jsonl", [{"prompt": "q", "choices": ["a", "b"], "answer": 1}])
    assert load_eval_task(ok).rows[0]["answer"] == "b"
    assert load_eval_task("factual_recall").kind == "recall"
    assert load_eval_task("true_false").kind == "choice"


def test_answers_that_tokenize_to_nothing(word_models):
    src = open_model(word_models["bert"])
    task = EvalTask("t", "recall", [{"prompt": "the capital of c1 is", "answer": "w1", "aliases": []},
                                    {"prompt": "the capital of c2 is", "answer": "\u200b", "aliases": []}])
    with pytest.raises(LmscopeError, match="example 2.*tokenizes to nothing"):
        TaskScorer(src.load_model(), src.load_tokenizer(), task)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_search_eval_and_errors(word_models, tmp_path, capsys):
    gold = _predictions(word_models["llama"], [PLANTED])
    task = _write_jsonl(tmp_path / "task.jsonl", _recall_rows(gold))
    model = str(word_models["llama"])
    rc = main(["laser", "search", model, "--task", str(task), "--layers", "1-2", "--keeps", "0.5,0.1",
               "--val-fraction", "0.5", "--out", str(tmp_path / "rep"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "best single" in out and "layer 2 fc_out keep 0.1" in out
    for f in ("index.html", "laser_configs.csv", "laser_heatmap.png", "laser.json", "laser_test_examples_base.jsonl"):
        assert (tmp_path / "rep" / f).is_file(), f
    assert len((tmp_path / "rep" / "laser_configs.csv").read_text().splitlines()) == 1 + 2 * 2 * 2

    rc = main(["eval", model, "--task", str(task), "--out", str(tmp_path / "ev"), "--json"])
    assert rc == 0
    summ = json.loads(capsys.readouterr().out)
    assert summ["n"] == len(COUNTRIES) and 0 <= summ["accuracy"] <= 1
    ex = [json.loads(line) for line in (tmp_path / "ev" / "examples.jsonl").read_text().splitlines()]
    assert len(ex) == len(COUNTRIES) and {"top1", "top5", "logprob", "logloss"} <= set(ex[0])

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "answer": "b"}\nnot json\n')
    for args, msg in (
        (["--task", str(bad)], "bad.jsonl:2"),
        (["--task", str(task), "--roles", "nope"], "unknown role"),
        (["--task", str(task), "--layers", "7"], "layer 7"),
        (["--task", str(task), "--keeps", "0.5,1.5"], "keep must be a number > 0 and <= 1"),
        (["--task", str(task), "--keeps", "abc"], "comma-separated"),
        (["--task", str(tmp_path / "missing.jsonl")], "no such task file"),
    ):
        rc = main(["laser", "search", model, *args, "--out", str(tmp_path / "nope"), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, (args, err)
        assert not (tmp_path / "nope").exists()


def test_checkup_has_a_laser_section(word_models, tmp_path, capsys):
    rep = tmp_path / "rep"
    rc = main(["checkup", str(word_models["llama"]), "--no-finetune", "--no-trees", "--out", str(rep), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    html = (rep / "index.html").read_text()
    assert "LASER on" in html and "laser_heatmap.png" in html
    summary = json.loads((rep / "summary.json").read_text())
    assert summary["laser"]["best"]["layer"] in (0, 1, 2)
    base_val = summary["laser"]["base_val"]["accuracy"]
    assert 0 <= base_val <= 1 and isinstance(summary["laser"]["improved"], bool)
    assert f"The unmodified model&#x27;s validation accuracy {100 * base_val:.1f}%" in html
    assert ("No reduction of the" in html) == (not summary["laser"]["improved"])
    assert (rep / "laser_configs.csv").is_file()


def test_eval_of_an_adapter_scores_it_merged_into_its_base(word_models, tmp_path, capsys):
    """An adapter folder given to `eval` is evaluated on its base with its update merged: the same
    numbers as the merged model written out as a full checkpoint."""
    import shutil

    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from lmscope.cli import main

    base = word_models["llama"]
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                                LoraConfig(r=2, lora_alpha=4, init_lora_weights=False, target_modules=["q_proj"]))
    peft_model.save_pretrained(tmp_path / "adapter")
    cfg_path = tmp_path / "adapter" / "adapter_config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "base_model_name_or_path": str(base)}))
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(tmp_path / "adapter"))
    merged.merge_and_unload().save_pretrained(tmp_path / "merged")
    for f in base.iterdir():
        if "token" in f.name:
            shutil.copy(f, tmp_path / "merged" / f.name)
    task = _write_jsonl(tmp_path / "task.jsonl", _recall_rows())
    docs = []
    for model in (tmp_path / "adapter", tmp_path / "merged", base):
        capsys.readouterr()
        assert main(["eval", str(model), "--task", str(task), "--json", "--device", "cpu"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert docs[0]["logprob"] == pytest.approx(docs[1]["logprob"], abs=1e-5)
    assert docs[0]["logprob"] != pytest.approx(docs[2]["logprob"], abs=1e-5)  # the update changed the model
