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
