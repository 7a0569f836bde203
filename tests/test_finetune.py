"""Fine-tuning on the shared training loop: an interrupted fine-tune resumes to the same result,
OUT.partial/ holds the unfinished run and goes away on success, another configuration is refused."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from lmscope.cli import main
from lmscope.errors import LmscopeError
from lmscope.train.finetune import FinetuneConfig, finetune, partial_dir
from lmscope.train.loop import read_metrics

SPECIAL = ["[PAD]", "[UNK]", "[MASK]", "[CLS]", "[SEP]"]
WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "rug", "and", "then", "slept", "good", "bad",
         "very", "food", "was", "not", "movie", "great", "awful", "fine", "it", "is"]


def _word_tokenizer(path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(WordLevel({w: i for i, w in enumerate(SPECIAL + WORDS)}, unk_token="[UNK]"))
    t.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]", mask_token="[MASK]",
                                  cls_token="[CLS]", sep_token="[SEP]")
    tok.save_pretrained(path)


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    """The tiny random Llama (causal LM) and BERT (dropout 0.1) of conftest, with a word tokenizer."""
    out = {}
    for family in ("llama", "bert"):
        d = tmp_path_factory.mktemp(f"ft-{family}") / "model"
        # BERT's positions cover the 128 tokens of the forgetting measurement's passages
        shutil.copytree(tiny_model_dir(family, **({"max_position_embeddings": 160} if family == "bert" else {})), d)
        _word_tokenizer(d)
        out[family] = d
    return out


def _lm_rows(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        ids = torch.randint(0, 11, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g)
        rows.append({"text": " ".join(WORDS[i] for i in ids.tolist())})
    return rows


def _cls_rows(n=40):
    good, bad = "the food was very good", "the movie was not great"
    return [{"text": (good if i % 2 else bad) + " " + WORDS[i % 11], "label": "pos" if i % 2 else "neg"}
            for i in range(n)]


CASES = {  # family, rows, config: LoRA on a causal LM; full fine-tuning of BERT (dropout on) as a classifier
    "lora-llama": ("llama", _lm_rows, dict(method="lora", rank=2, lr=5e-3)),
    "full-bert": ("bert", _cls_rows, dict(method="full", lr=1e-3)),
}


def _files(d):
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("case", sorted(CASES))
def test_interrupted_finetune_resumes_to_the_same_weights(models, tmp_path, case, capsys):
    family, make_rows, kw = CASES[case]
    cfg = FinetuneConfig(max_steps=12, batch_size=6, ckpt_every=4, seed=3, general_texts=4, **kw)
    rows = make_rows()
    a, b = tmp_path / "a", tmp_path / "b"
    ra = finetune(models[family], rows, a, cfg, quiet=True)
    assert not partial_dir(a).exists()
    weights = "adapter_model.safetensors" if kw["method"] == "lora" else "model.safetensors"
    assert weights in _files(a) and "lmscope.json" in _files(a) and "losses.json" in _files(a)
    assert not any(n in _files(a) for n in ("checkpoints", "metrics.jsonl", "run.json"))
    assert len(ra.losses) == 12 and ra.metrics["steps"] == 12

    # killed after step 7: the checkpoint of step 4 is there, and the per-step losses so far
    assert finetune(models[family], rows, b, cfg, quiet=True, stop_after=7) is None
    part = partial_dir(b)
    assert not b.exists() and part.name == "b.partial"
    assert {"run.json", "before.json", "metrics.jsonl", "checkpoints"} <= set(_files(part))
    assert _files(part / "checkpoints") == ["step-0000004"]
    assert [r["step"] for r in read_metrics(part)] == list(range(1, 8))
    if kw["method"] == "lora":  # a damaged record of the base model's metrics is measured again
        (part / "before.json").write_text('{"general_bef')
    capsys.readouterr()
    rb = finetune(models[family], rows, b, cfg)  # the same command again resumes
    assert "resuming" in capsys.readouterr().err
    assert not part.exists() and _files(a) == _files(b)
    assert rb.losses == ra.losses
    wa, wb = load_file(str(a / weights)), load_file(str(b / weights))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    for key in ("general_before", "general_after", "task_after"):
        assert rb.metrics[key] == ra.metrics[key]
    # and the fine-tune did learn: the later losses are lower than the first ones
    assert sum(ra.losses[-3:]) < sum(ra.losses[:3])


def test_other_settings_on_an_unfinished_finetune_are_refused(models, tmp_path):
    cfg = FinetuneConfig(method="lora", rank=2, max_steps=6, batch_size=6, ckpt_every=2, general_texts=4)
    out = tmp_path / "ad"
    finetune(models["llama"], _lm_rows(), out, cfg, quiet=True, stop_after=3)
    before = sorted(p.relative_to(partial_dir(out)) for p in partial_dir(out).rglob("*"))
    other = FinetuneConfig(method="lora", rank=4, max_steps=6, batch_size=6, ckpt_every=2, general_texts=4)
    with pytest.raises(LmscopeError, match=r"ad\.partial holds an unfinished fine-tune with other settings "
                                           r"\(finetune\.config\.rank differs\)"):
        finetune(models["llama"], _lm_rows(), out, other, quiet=True)
    with pytest.raises(LmscopeError, match=r"\(data\.sha256 differs\)"):
        finetune(models["llama"], _lm_rows(seed=1), out, cfg, quiet=True)
    assert sorted(p.relative_to(partial_dir(out)) for p in partial_dir(out).rglob("*")) == before  # untouched
    assert not out.exists()


def test_cli_finetune_resume_and_refusal(models, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _lm_rows()))
    out = tmp_path / "ad"
    args = ["finetune", str(models["llama"]), "--data", str(data), "--rank", "2", "--max-steps", "4",
            "--batch-size", "6", "--ckpt-every", "2", "--out", str(out), "--quiet"]
    partial_dir(out).mkdir()
    (partial_dir(out) / "notes.txt").write_text("someone else's")
    capsys.readouterr()
    assert main(args) != 0
    err = capsys.readouterr().err
    assert err.startswith("lmscope: error: ") and "ad.partial is not empty" in err and err.count("\n") == 1
    shutil.rmtree(partial_dir(out))
    assert main(args) == 0
    assert not partial_dir(out).exists() and (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / "lmscope.json").read_text())["config"]["ckpt_every"] == 2
    assert main([*args[:-3], "--ckpt-every", "0", "--out", str(tmp_path / "x")]) != 0
    assert "argument --ckpt-every: must be an integer >= 1" in capsys.readouterr().err


# ------------------------------------------------------------------ the reference's trainable set and clipping
def _reference_rule(name: str) -> bool:
    """The reference code's rule, written on names: the head, and every non-embedding, non-norm weight."""
    if name.split(".")[0] in ("classifier", "score"):
        return True
    return name.endswith(".weight") and "embeddings" not in name and "LayerNorm" not in name


def test_train_set_weights_freezes_exactly_embeddings_norms_and_biases():
    from conftest import _tiny_config, build_tiny_model
    from transformers import BertForSequenceClassification

    from lmscope.train.finetune import set_train_set

    config, _ = _tiny_config("bert")
    config.num_labels = 3
    model = BertForSequenceClassification(config)
    n = set_train_set(model, "weights")
    trained = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trained == {k for k, _ in model.named_parameters() if _reference_rule(k)}
    assert {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight",
            "bert.encoder.layer.0.attention.self.query.weight"} <= trained
    assert not {"bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight",
                "bert.encoder.layer.0.attention.self.query.bias", "bert.pooler.dense.bias"} & trained
    # 2 layers x (4 attention 32x32 + 32x64 + 64x32) + pooler 32x32 + classifier 3x32 + 3
    assert n == 2 * (4 * 32 * 32 + 2 * 32 * 64) + 32 * 32 + 3 * 32 + 3
    assert set_train_set(model, "all") == sum(p.numel() for p in model.parameters())

    # GPT-2 ties its output layer to the token embedding: both stay frozen, as does the position embedding
    gpt2 = build_tiny_model("gpt2")
    set_train_set(gpt2, "weights")
    trained = {k for k, p in gpt2.named_parameters() if p.requires_grad}
    assert gpt2.lm_head.weight is gpt2.transformer.wte.weight and not gpt2.lm_head.weight.requires_grad
    assert trained == {k for k, p in gpt2.named_parameters() if p.ndim == 2 and not k.startswith("transformer.w")}
    with pytest.raises(LmscopeError, match="unknown train set"):
        set_train_set(gpt2, "some")


def test_full_finetune_with_the_weights_set_changes_only_the_weights(models, tmp_path):
    base = load_file(str(models["bert"] / "model.safetensors"))
    cfg = FinetuneConfig(method="full", train_set="weights", grad_clip=0.0, lr=1e-2, max_steps=4, batch_size=6,
                         general_texts=2)
    res = finetune(models["bert"], _cls_rows(), tmp_path / "ft", cfg, quiet=True)
    tuned = load_file(str(tmp_path / "ft" / "model.safetensors"))
    changed = {k for k in base if k in tuned and not torch.equal(base[k], tuned[k])}
    shared = [k for k in base if k in tuned]
    assert changed == {k for k in shared if _reference_rule(k) and k.startswith("bert.encoder")} | (
        {k for k in shared if k.startswith("bert.pooler") and k.endswith("weight")})
    assert res.config["train_set"] == "weights" and res.config["grad_clip"] == 0.0
    # the whole model trains by default: embeddings, norms and biases change too
    res_all = finetune(models["bert"], _cls_rows(), tmp_path / "all", FinetuneConfig(
        method="full", lr=1e-2, max_steps=4, batch_size=6, general_texts=2), quiet=True)
    tuned = load_file(str(tmp_path / "all" / "model.safetensors"))
    assert not torch.equal(base["bert.embeddings.word_embeddings.weight"], tuned["bert.embeddings.word_embeddings.weight"])
    assert not torch.equal(base["bert.encoder.layer.0.attention.self.query.bias"],
                           tuned["bert.encoder.layer.0.attention.self.query.bias"])
    assert res_all.metrics["trainable_parameters"] > res.metrics["trainable_parameters"]


def test_grad_clip_reaches_the_loop_and_changes_the_updates(models, tmp_path):
    kw = dict(method="full", train_set="weights", lr=1e-2, max_steps=3, batch_size=6, general_texts=2)
    assert FinetuneConfig(**kw, grad_clip=0.0).train_config(40).grad_clip == 0.0
    assert FinetuneConfig(**kw).train_config(40).grad_clip == 1.0
    finetune(models["bert"], _cls_rows(), tmp_path / "c0", FinetuneConfig(**kw, grad_clip=0.0), quiet=True)
    finetune(models["bert"], _cls_rows(), tmp_path / "c1", FinetuneConfig(**kw, grad_clip=1e-3), quiet=True)
    a = load_file(str(tmp_path / "c0" / "model.safetensors"))
    b = load_file(str(tmp_path / "c1" / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    for bad, match in ((dict(grad_clip=-1.0), "grad-clip"), (dict(train_set="bias"), "unknown train set")):
        with pytest.raises(LmscopeError, match=match):
            finetune(models["bert"], _cls_rows(), tmp_path / "x", FinetuneConfig(**{**kw, **bad}), quiet=True)
    with pytest.raises(LmscopeError, match="full fine-tuning only"):
        finetune(models["bert"], _cls_rows(), tmp_path / "x", FinetuneConfig(method="lora", train_set="weights"))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("method", ["lora", "full"])
def test_kept_checkpoints_are_models_and_intruders_are_counted_at_each(models, tmp_path, method, capsys):
    from lmscope.models import open_model
    from lmscope.spectral.intruders import find_intruders, intruders_over_training
    from lmscope.train.finetune import checkpoint_steps

    kw = dict(rank=2, lr=5e-2) if method == "lora" else dict(train_set="weights", lr=5e-3)
    cfg = FinetuneConfig(method=method, max_steps=7, batch_size=6, ckpt_every=3, keep_checkpoints=True,
                         grad_clip=0.0, general_texts=2, **kw)
    out = tmp_path / "ft"
    # interrupted after step 4 and resumed: the kept checkpoints are those of an uninterrupted run
    assert finetune(models["bert"], _cls_rows(), out, cfg, quiet=True, stop_after=4) is None
    finetune(models["bert"], _cls_rows(), out, cfg, quiet=True)
    steps = checkpoint_steps(out)
    assert [s for s, _ in steps] == [3, 6, 7] and steps[-1][1] == out
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000003", "step-0000006"]
    m3 = open_model(steps[0][1])
    assert m3.kind == ("peft" if method == "lora" else "hf")
    # a kept checkpoint is the model at that step: its matrices lie between the base and the end
    key = "0.q"
    w0, w3, w7 = open_model(models["bert"]).load(key), m3.load(key), open_model(out).load(key)
    assert 0 < float((w3 - w0).norm()) and not torch.equal(w3, w7)

    table = intruders_over_training(models["bert"], out, k=4, eps=0.9, quiet=True)
    assert list(table["step"]) == [3, 6, 7]
    for step, folder in steps:  # each row is the count find_intruders gives for that checkpoint
        res = find_intruders(models["bert"], folder, k=4, eps=0.9, quiet=True)
        row = table.set_index("step").loc[step]
        assert row["n_intruders"] == res.total and row["q"] == res.summary()["by_role"]["q"]
        assert len(row["max_cos"]) == 4 * len(res.table)

    capsys.readouterr()
    assert main(["intruders", str(models["bert"]), str(out), "--checkpoints", "--k", "4", "--eps", "0.9",
                 "--json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in doc["steps"]] == [3, 6, 7]
    assert [r["n_intruders"] for r in doc["steps"]] == list(table["n_intruders"])
    assert main(["intruders", str(models["bert"]), str(out), "--checkpoints", "--scale", "0.5"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("lmscope: error: ") and "--scale" in err and err.count("\n") == 1
