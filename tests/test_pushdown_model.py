"""The pushdown LM: the depth term, incremental decoding against the full pass, the attachment mask,
saving and loading, config checks, and training on a tiny treebank through the shared loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmscope.data.trees import parse_bracketed, to_bracketed
from lmscope.errors import LmscopeError
from lmscope.models.small import SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import WordTokenizer
from lmscope.pushdown.beam import greedy_parse
from lmscope.pushdown.model import PushdownConfig, PushdownLM
from lmscope.pushdown.tape import model_tape
from lmscope.pushdown.train import batch_losses, collate, example_from_tree, prepare, train_pushdown
from lmscope.train.loop import TrainConfig, read_metrics

TREES = ["(a (b (c d)))", "(((w x) y) z)", "((p q) (r s))", "(e (f (g (h i))))", "((((j k) l) m) n)"]


def tiny(pushdown_layers=None, seed=0, randomize_depth=True, **kw) -> PushdownLM:
    cfg = PushdownConfig(vocab_size=20, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_relative=4,
                         pushdown_layers=pushdown_layers, **kw)
    model = PushdownLM(cfg, seed=seed).eval()
    if randomize_depth:  # the depth tables start at zero; make them matter
        g = torch.Generator().manual_seed(seed + 100)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 2 and not p.any():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


def batch(model: PushdownLM, rows: list[tuple[list[int], list[int]]]):
    return collate(prepare(rows, model.config), model.config.pad_id)


SENT = ([2, 5, 6, 7, 8, 9, 10, 3], [0, 0, 2, 3, 1, 5])  # (((w0 w1) (w2 (w3 w4))) w5)


def test_zero_depth_embeddings_give_the_plain_layer_exactly():
    pushdown = tiny(pushdown_layers=(0, 1), randomize_depth=False)
    plain = tiny(pushdown_layers=(), randomize_depth=False)
    missing, unexpected = plain.load_state_dict(pushdown.state_dict(), strict=False)
    assert not missing and {k.split(".")[0] for k in unexpected} <= {"layers", "attach"}
    b = batch(pushdown, [SENT])
    a = pushdown(b["ids"], b["mask"], depth=b["depth"]).logits
    assert torch.equal(a, plain(b["ids"], b["mask"]).logits)
    with torch.no_grad():  # a non-zero depth table changes the output: the tape is read
        pushdown.layers[0].attn.depth.normal_(0, 30.0)
    assert (pushdown(b["ids"], b["mask"], depth=b["depth"]).logits - a).abs().max() > 1e-3


def test_pushdown_layers_config():
    assert tiny().config.pushdown_layers == (0, 1)
    one = tiny(pushdown_layers=[1])
    assert one.config.pushdown_layers == (1,) and one.layers[0].attn.depth is None
    assert one.layers[1].attn.depth is not None and one.attach is not None
    plain = tiny(pushdown_layers=())
    assert plain.attach is None and not plain.config.has_tape
    b = batch(plain, [SENT])
    assert plain(b["ids"], b["mask"], depth=None, allowed=b["allowed"]).attach_logits is None


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("layers", [None, (1,), ()])
def test_step_by_step_equals_full_forward(norm, layers):
    model = tiny(pushdown_layers=layers, norm=norm)
    ids, attach = SENT
    tape = model_tape(attach)
    out = model(torch.tensor([ids]), depth=torch.tensor(tape.depth)[None], allowed=torch.tensor(tape.allowed)[None])
    full_lp = out.logits[0].log_softmax(-1)
    cache = model.new_cache(1)
    with torch.no_grad():
        for p in range(len(ids)):
            lp = model.step(cache, torch.tensor([ids[p]]), torch.tensor(tape.depth[p, : p + 1])[None])
            assert torch.allclose(lp[0], full_lp[p], atol=1e-5)
            if model.attach is not None and p < len(attach):
                alp = model.attach_logprobs(cache, torch.tensor([ids[p + 1]]), torch.tensor(tape.depth[p, : p + 1])[None],
                                            torch.tensor(tape.allowed[p, : p + 2])[None])[0]
                ref = out.attach_logits[0, p, : p + 2]
                assert torch.equal(torch.isinf(alp), torch.isinf(ref))
                fin = torch.isfinite(ref)
                assert torch.allclose(alp[fin], ref[fin], atol=1e-5)
    assert cache.length == len(ids)


def test_reorder_moves_cache_rows():
    model = tiny()
    cache = model.new_cache(2)
    with torch.no_grad():
        model.step(cache, torch.tensor([2, 2]), torch.zeros(2, 1, dtype=torch.long))
        lp = model.step(cache, torch.tensor([5, 6]), torch.zeros(2, 2, dtype=torch.long))
        model.reorder(cache, [1, 1, 0])
        nxt = model.step(cache, torch.tensor([7, 7, 7]), torch.zeros(3, 3, dtype=torch.long))
    assert cache.batch == 3 and torch.equal(nxt[0], nxt[1]) and not torch.allclose(nxt[0], nxt[2])
    solo = model.new_cache(1)
    with torch.no_grad():
        model.step(solo, torch.tensor([2]), torch.zeros(1, 1, dtype=torch.long))
        model.step(solo, torch.tensor([6]), torch.zeros(1, 2, dtype=torch.long))
        ref = model.step(solo, torch.tensor([7]), torch.zeros(1, 3, dtype=torch.long))
    assert torch.allclose(nxt[0], ref[0], atol=1e-6) and lp.shape == (2, 20)


def test_attachments_not_allowed_get_probability_zero():
    model = tiny()
    b = batch(model, [SENT, ([2, 5, 6, 3], [0, 0])])
    att = model(b["ids"], b["mask"], depth=b["depth"], allowed=b["allowed"]).attach_logits
    probs = att.exp()
    assert torch.all(probs[~b["allowed"]] == 0)
    scored = b["allowed"].any(-1)
    assert torch.allclose(probs.sum(-1)[scored], torch.ones(int(scored.sum())), atol=1e-6)
    assert torch.all(torch.isinf(att[~scored]))
    # the first word has only one choice (shift): probability 1
    assert torch.allclose(probs[:, 0, 1], torch.ones(2))


def test_padding_does_not_change_a_sentence():
    model = tiny()
    short = ([2, 5, 6, 3], [0, 0])
    both = batch(model, [SENT, short])
    alone = batch(model, [short])
    a = model(both["ids"], both["mask"], depth=both["depth"], allowed=both["allowed"])
    s = model(alone["ids"], alone["mask"], depth=alone["depth"], allowed=alone["allowed"])
    assert torch.allclose(a.logits[1, :4], s.logits[0], atol=1e-5)
    fin = torch.isfinite(s.attach_logits[0])
    assert torch.allclose(a.attach_logits[1, :4, :4][fin], s.attach_logits[0][fin], atol=1e-5)


def test_pushdown_model_needs_the_tape():
    model = tiny()
    with pytest.raises(LmscopeError, match="needs the depth tape"):
        model(torch.tensor([SENT[0]]))
    with pytest.raises(LmscopeError, match="shape"):
        model(torch.tensor([SENT[0]]), depth=torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(LmscopeError, match="token ids"):
        model(torch.tensor([[2, 99, 3]]), depth=torch.zeros(1, 3, 3, dtype=torch.long))


@pytest.mark.parametrize("layers", [None, ()])
def test_save_load_round_trip(tmp_path, layers):
    model = tiny(pushdown_layers=layers, tie_embeddings=layers is None)
    tok = WordTokenizer([f"w{i}" for i in range(15)])
    model.save(tmp_path / "m", tokenizer=tok)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model_type"] == "lmscope-pushdown" and (tmp_path / "m" / "vocab.json").is_file()
    loaded = PushdownLM.load(tmp_path / "m")
    assert loaded.config == model.config and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    b = batch(model, [SENT])
    assert torch.equal(model(b["ids"], b["mask"], b["depth"]).logits, loaded(b["ids"], b["mask"], b["depth"]).logits)


def test_load_refuses_other_and_corrupt_folders(tmp_path):
    SmallTransformer(SmallConfig(vocab_size=20, d_model=16, n_heads=2, d_ff=32), seed=0).save(tmp_path / "small")
    with pytest.raises(LmscopeError, match="not a pushdown model"):
        PushdownLM.load(tmp_path / "small")
    with pytest.raises(LmscopeError, match="no config.json"):
        PushdownLM.load(tmp_path / "missing")
    tiny().save(tmp_path / "a")
    (tmp_path / "a" / "config.json").write_text("{not json")
    with pytest.raises(LmscopeError, match="corrupt"):
        PushdownLM.load(tmp_path / "a")
    # a config of another size than the weights
    tiny().save(tmp_path / "b")
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    cfg["d_ff"] = 128
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LmscopeError, match="d_ff|fc_in"):
        PushdownLM.load(tmp_path / "b")
    # a plain model's weights under a pushdown config: the depth tables are missing
    tiny(pushdown_layers=()).save(tmp_path / "c")
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    cfg["pushdown_layers"] = [0]
    (tmp_path / "c" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LmscopeError, match="lacks"):
        PushdownLM.load(tmp_path / "c")
    tiny().save(tmp_path / "d")
    (tmp_path / "d" / "model.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(LmscopeError, match="corrupt safetensors"):
        PushdownLM.load(tmp_path / "d")


@pytest.mark.parametrize("bad,match", [
    ({"d_model": 30}, "divisible"), ({"n_layers": 0}, "n_layers"), ({"pushdown_layers": [2]}, "pushdown layer"),
    ({"pushdown_layers": [0, 0]}, "repeats"), ({"pushdown_layers": "0"}, "list of layer"),
    ({"dropout": 1.0}, "dropout"), ({"norm": "mid"}, "norm"), ({"depth_cap": 0}, "depth_cap"),
    ({"max_relative": -1}, "max_relative"), ({"pad_id": 20}, "pad_id"), ({"vocab_size": 2.5}, "vocab_size"),
])
def test_bad_config_values(bad, match):
    kw = {"vocab_size": 20, "d_model": 32, "n_layers": 2, **bad}
    with pytest.raises(LmscopeError, match=match):
        PushdownConfig(**kw)


def test_config_dict_round_trip():
    cfg = PushdownConfig(vocab_size=20, pushdown_layers=[1], n_layers=3)
    assert PushdownConfig.from_dict(json.loads(json.dumps(cfg.hf_dict()))) == cfg


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------
def treebank():
    trees = [parse_bracketed(t, labeled=False) for t in TREES]
    tok = WordTokenizer.build([" ".join("abcdefghijklmnpqrswxyz")])
    return tok, trees, [example_from_tree(tok, t) for t in trees]


def test_training_learns_the_attachments(tmp_path):
    torch.manual_seed(0)
    tok, trees, examples = treebank()
    cfg = PushdownConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64)
    model0 = PushdownLM(cfg, seed=3)
    b = collate(prepare(examples, cfg, tok), cfg.pad_id)
    with torch.no_grad():
        lm0, att0 = (float(x) for x in batch_losses(model0, b))
    tc = TrainConfig(steps=250, batch_size=5, lr=3e-3, warmup=20, eval_every=50, ckpt_every=0, seed=3)
    summary = train_pushdown(tmp_path / "run", cfg, tok, examples, tc, quiet=True)
    assert summary["step"] == 250 and summary["final_checkpoint"]
    model = PushdownLM.load(f"{summary['final_checkpoint']}/model")
    assert WordTokenizer.load(f"{summary['final_checkpoint']}/model").tokens == tok.tokens
    with torch.no_grad():
        lm1, att1 = (float(x) for x in batch_losses(model, b))
    assert att1 < 0.1 * att0 and lm1 < 0.5 * lm0
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [50, 100, 150, 200, 250] and rows[-1]["loss"] < rows[0]["loss"]
    for (ids, attach), tree in zip(examples, trees, strict=True):
        got, _, parsed = greedy_parse(model, ids, words=tok.decode(ids).split())
        assert got == attach and to_bracketed(parsed) == to_bracketed(tree)


def test_plain_baseline_trains_on_the_lm_loss(tmp_path):
    tok, _, examples = treebank()
    cfg = PushdownConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=4, d_ff=64, pushdown_layers=())
    b = collate(prepare(examples, cfg, tok), cfg.pad_id)
    assert b["depth"] is None
    with torch.no_grad():
        lm0, none = batch_losses(PushdownLM(cfg, seed=0), b)
    assert none is None
    tc = TrainConfig(steps=60, batch_size=5, lr=3e-3, warmup=5, eval_every=0, ckpt_every=0)
    summary = train_pushdown(tmp_path / "plain", cfg, tok, [(ids, None) for ids, _ in examples], tc, quiet=True)
    model = PushdownLM.load(f"{summary['final_checkpoint']}/model")
    with torch.no_grad():
        assert float(batch_losses(model, b)[0]) < 0.7 * float(lm0)


def test_training_resumes_exactly(tmp_path):
    tok, _, examples = treebank()
    cfg = PushdownConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.1)
    tc = TrainConfig(steps=30, batch_size=3, lr=1e-3, warmup=3, eval_every=10, ckpt_every=10)
    whole = train_pushdown(tmp_path / "a", cfg, tok, examples, tc, quiet=True)
    train_pushdown(tmp_path / "b", cfg, tok, examples, tc, quiet=True, stop_after=15)
    resumed = train_pushdown(tmp_path / "b", cfg, tok, examples, tc, quiet=True)
    assert resumed["resumed_from"].endswith("step-0000010")
    a = PushdownLM.load(f"{whole['final_checkpoint']}/model").state_dict()
    b = PushdownLM.load(f"{resumed['final_checkpoint']}/model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = PushdownConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, d_ff=32, pushdown_layers=())
    with pytest.raises(LmscopeError, match="model.pushdown_layers"):
        train_pushdown(tmp_path / "a", other, tok, examples, tc, quiet=True)


@pytest.mark.parametrize("examples,match", [
    ([([2, 5, 3], [0, 0])], "2 attachments for 1 words"),
    ([([2, 5, 6, 3], [0, 2])], "not allowed"),
    ([([5, 6, 3], [0])], "BOS"),
    ([([2, 3], [])], "fewer than 3"),
    ([([2, 99, 3], [0])], "vocabulary"),
    ([([2, 5, 3], None)], "no attachments"),
    ([], "at least one"),
    ([7], "not a pair"),
])
def test_bad_training_examples(tmp_path, examples, match):
    tok, _, _ = treebank()
    cfg = PushdownConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    with pytest.raises(LmscopeError, match=match):
        train_pushdown(tmp_path / "r", cfg, tok, examples, TrainConfig(steps=2), quiet=True)
    assert not (tmp_path / "r").exists()


def test_depth_cap_is_applied():
    model = tiny(depth_cap=2)
    ids, attach = SENT
    tape = model_tape(attach)  # depths up to 3; the model clips them to depth_cap - 1
    capped = model_tape(attach, cap=2)
    assert tape.depth.max() > 1 and capped.depth.max() == 1
    a = model(torch.tensor([ids]), depth=torch.tensor(tape.depth)[None]).logits
    b = model(torch.tensor([ids]), depth=torch.tensor(np.asarray(capped.depth))[None]).logits
    assert torch.equal(a, b)


def test_open_model_lists_a_pushdown_models_matrices_by_role(tmp_path):
    """The checkpoint commands (spectrum, intruders, laser) see a pushdown model's matrices under the
    usual roles; running it is left to lmscope.pushdown, with a one-line error elsewhere."""
    from lmscope.models import open_model

    model = tiny()
    model.save(tmp_path / "m")
    src = open_model(tmp_path / "m")
    refs = src.matrices()
    n = model.config.n_layers
    assert sorted({r.role for r in refs}) == ["fc_in", "fc_out", "k", "o", "q", "v"]
    assert sorted({r.layer for r in refs}) == list(range(n)) and len(refs) == 6 * n
    ref = next(r for r in refs if r.layer == 0 and r.role == "q")
    assert torch.equal(src.load(ref), model.state_dict()["layers.0.attn.q.weight"])
    assert src.lm_head == "causal"
    with pytest.raises(LmscopeError, match="pushdown model"):
        src.load_model()
