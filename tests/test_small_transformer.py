"""Tests for lmscope.models.small (the from-scratch transformer) and its word-level tokenizer.

Every model here is tiny (d_model 16-32, a few layers), so the whole file runs in seconds.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from lmscope.errors import LmscopeError
from lmscope.models import open_model
from lmscope.models.checkpoint import save_edited
from lmscope.models.small import CONFIG_FILE, WEIGHTS_FILE, SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import SPECIALS, WordTokenizer, has_word_vocab
from lmscope.models.sources import is_causal

V = 20


def tiny(seed: int = 0, **overrides) -> SmallTransformer:
    kw = dict(vocab_size=V, d_model=16, n_layers=2, n_heads=4, d_ff=32, max_len=32)
    return SmallTransformer(SmallConfig(**{**kw, **overrides}), seed=seed).eval()


def ids_like(B: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, V, (B, T), generator=torch.Generator().manual_seed(seed))


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


VARIANTS = [dict(causal=c, norm=n, positions=p) for c in (True, False) for n in ("pre", "post")
            for p in ("sinusoidal", "learned")]


def vid(v: dict) -> str:
    return f"{'causal' if v['causal'] else 'encoder'}-{v['norm']}-{v['positions']}"


# ------------------------------------------------------------------------------------------------
# Config
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    dict(vocab_size=0), dict(d_model=30, n_heads=4), dict(n_layers=0), dict(d_ff=-1), dict(max_len=0),
    dict(norm="middle"), dict(positions="rotary"), dict(dropout=1.0), dict(dropout=-0.1),
    dict(pad_id=V), dict(causal="yes"), dict(d_model=16.0), dict(n_heads=True),
])
def test_config_rejects_bad_values(bad):
    with pytest.raises(LmscopeError):
        SmallConfig(**{"vocab_size": V, **bad})


def test_config_round_trip():
    cfg = SmallConfig(vocab_size=V, d_model=24, n_layers=3, n_heads=3, causal=False, norm="post",
                      positions="learned", dropout=0.1, tie_embeddings=False, pad_id=2)
    assert SmallConfig.from_dict(cfg.to_dict()) == cfg
    assert SmallConfig.from_dict({**cfg.hf_dict(), "unrelated": 1}) == cfg  # extra keys ignored
    assert cfg.d_head == 8
    with pytest.raises(LmscopeError, match="vocab_size"):
        SmallConfig.from_dict({"d_model": 16})


# ------------------------------------------------------------------------------------------------
# Shapes and parameter names
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_layers", [1, 3])
@pytest.mark.parametrize("variant", VARIANTS, ids=vid)
def test_shapes_and_hidden_states(variant, n_layers):
    m = tiny(n_layers=n_layers, **variant)
    B, T = 3, 7
    out = m(ids_like(B, T), return_hidden=True)
    assert out.logits.shape == (B, T, V)
    assert out["logits"] is out.logits
    assert len(out.hidden_states) == n_layers + 1
    assert all(h.shape == (B, T, 16) for h in out.hidden_states)
    if variant["norm"] == "pre":
        close(out.final_hidden, m.norm(out.hidden_states[-1]))
    else:
        assert m.norm is None and out.final_hidden is out.hidden_states[-1]
    close(out.logits, out.final_hidden @ m.embed.weight.t() / 4)  # tied head, scaled by 1/sqrt(d_model)
    assert torch.isfinite(out.logits).all()
    assert m(ids_like(B, T)).hidden_states is None


def test_parameter_names():
    names = set(dict(tiny(positions="learned", tie_embeddings=False).named_parameters()))
    for i in range(2):
        for mod in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc_in", "mlp.fc_out", "ln1", "ln2"):
            assert {f"layers.{i}.{mod}.weight", f"layers.{i}.{mod}.bias"} <= names
    assert {"embed.weight", "pos.weight", "norm.weight", "norm.bias", "head.weight"} <= names
    tied = dict(tiny(norm="post").named_parameters())
    assert "pos.weight" not in tied and "norm.weight" not in tied and "head.weight" not in tied
    m = tiny()
    assert m.head.weight is m.embed.weight


def test_seed_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = tiny(seed=1), tiny(seed=1), tiny(seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.layers[0].attn.q.weight, c.layers[0].attn.q.weight)


def test_input_errors():
    m = tiny()
    with pytest.raises(LmscopeError, match="max_len"):
        m(ids_like(1, 33))
    with pytest.raises(LmscopeError, match="token ids"):
        m(torch.tensor([[1, V]]))
    with pytest.raises(LmscopeError, match="attention_mask"):
        m(ids_like(2, 5), attention_mask=torch.ones(2, 4))


# ------------------------------------------------------------------------------------------------
# Causality and padding
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_causal_model_never_looks_ahead(norm):
    m = tiny(norm=norm, n_layers=3)
    x = ids_like(2, 9)
    base = m(x).logits
    for k in (0, 4, 8):
        y = x.clone()
        y[:, k] = (y[:, k] % (V - 1)) + 1  # a different real token
        changed = m(y).logits
        close(changed[:, :k], base[:, :k])
        assert not torch.allclose(changed[:, k], base[:, k])


def test_encoder_sees_both_directions():
    m = tiny(causal=False)
    x = ids_like(1, 6)
    y = x.clone()
    y[0, 5] = (y[0, 5] % (V - 1)) + 1
    assert not torch.allclose(m(x).logits[0, 0], m(y).logits[0, 0])


@pytest.mark.parametrize("variant", VARIANTS, ids=vid)
def test_right_padding_does_not_change_real_tokens(variant):
    m = tiny(n_layers=2, **variant)
    short, long = ids_like(1, 4, seed=1), ids_like(1, 7, seed=2)
    alone = m(short).logits[0]
    batch = torch.zeros(2, 7, dtype=torch.long)
    batch[0, :4], batch[1] = short[0], long[0]
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1] * 7])
    padded = m(batch, attention_mask=mask).logits
    close(padded[0, :4], alone)
    close(padded[1], m(long).logits[0])
    # garbage in the padding positions changes nothing either
    batch[0, 4:] = torch.tensor([5, 6, 7])
    close(m(batch, attention_mask=mask).logits[0, :4], alone)


# ------------------------------------------------------------------------------------------------
# key_mask
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [True, False])
def test_key_mask_allowing_everything_equals_no_mask(causal):
    m = tiny(causal=causal, n_layers=3)
    x = ids_like(2, 6)
    mask = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]])
    ref = m(x, attention_mask=mask, return_hidden=True)
    every = torch.ones(2, 6, 6, dtype=torch.bool)
    for km in (every, every[0], every[:1], every.expand(3, 2, 6, 6), [every, None, every], [None] * 3):
        out = m(x, attention_mask=mask, key_mask=km, return_hidden=True)
        close(out.logits, ref.logits)
        for a, b in zip(out.hidden_states, ref.hidden_states):
            close(a, b)


def random_mask(B, T, seed=0) -> torch.Tensor:
    m = torch.rand(B, T, T, generator=torch.Generator().manual_seed(seed)) < 0.5
    return m | torch.eye(T, dtype=torch.bool)


@pytest.mark.parametrize("causal", [True, False])
def test_key_mask_from_layer_t_leaves_lower_layers_alone(causal):
    L, B, T = 4, 2, 7
    m = tiny(causal=causal, n_layers=L)
    x = ids_like(B, T)
    ref = m(x, return_hidden=True).hidden_states
    km = random_mask(B, T)
    for t in range(L + 1):
        hidden = m(x, key_mask=[None] * t + [km] * (L - t), return_hidden=True).hidden_states
        for layer in range(t + 1):
            close(hidden[layer], ref[layer])
        if t < L:  # the first masked block changes its output
            assert not torch.allclose(hidden[t + 1], ref[t + 1])
    # the same masks as one (n_layers, B, T, T) tensor
    t = 2
    stacked = torch.stack([torch.ones(B, T, T, dtype=torch.bool)] * t + [km] * (L - t))
    close(m(x, key_mask=stacked).logits, m(x, key_mask=[None] * t + [km] * (L - t)).logits)


@pytest.mark.parametrize("variant", [dict(causal=False, norm="pre"), dict(causal=False, norm="post"),
                                     dict(causal=True, norm="pre")], ids=lambda v: f"{v['causal']}-{v['norm']}")
@pytest.mark.parametrize("keep_first", [False, True])
def test_span_mask_makes_span_independent_of_outside(variant, keep_first):
    """The tree-projection use: keys outside span [i, j] hidden for every query at every layer
    (threshold 0), optionally with position 0 (a BOS) kept visible."""
    L, T, i, j = 3, 9, 3, 6
    m = tiny(n_layers=L, **variant)
    visible = torch.zeros(T, dtype=torch.bool)
    visible[i:j + 1] = True
    if keep_first:
        visible[0] = True
    km = visible.expand(1, T, T)  # T-shaped: every query may attend only to the visible keys
    x = ids_like(1, T)
    y = x.clone()
    outside = [p for p in range(T) if not visible[p]]
    y[0, outside] = (y[0, outside] % (V - 1)) + 1
    a = m(x, key_mask=km, return_hidden=True)
    b = m(y, key_mask=km, return_hidden=True)
    for ha, hb in zip(a.hidden_states, b.hidden_states):
        close(ha[0, i:j + 1], hb[0, i:j + 1])
    close(a.logits[0, i:j + 1], b.logits[0, i:j + 1])
    # without the mask the span does see the outside
    assert not torch.allclose(m(x).logits[0, i:j + 1], m(y).logits[0, i:j + 1])


@pytest.mark.parametrize("causal", [True, False])
def test_fully_masked_rows_attend_to_themselves(causal):
    m = tiny(causal=causal)
    B, T = 2, 5
    x = ids_like(B, T)
    km = torch.ones(B, T, T, dtype=torch.bool)
    km[0, 2] = False        # query 2 of example 0 may attend nowhere
    km[1] = False           # nothing anywhere in example 1
    out = m(x, key_mask=km, return_hidden=True)
    assert all(torch.isfinite(h).all() for h in out.hidden_states) and torch.isfinite(out.logits).all()
    masks = m.attention_masks(x, key_mask=km)
    assert len(masks) == 2
    eye = torch.eye(T, dtype=torch.bool)
    assert torch.equal(masks[0][0, 2], eye[2])
    assert torch.equal(masks[0][1], eye)
    # a sequence of padding only, too
    pad = m(x, attention_mask=torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]]))
    assert torch.isfinite(pad.logits).all()


def test_key_mask_errors():
    m = tiny()
    x = ids_like(2, 5)
    for bad in (torch.ones(2, 5, 5),                          # not bool
                torch.ones(2, 4, 4, dtype=torch.bool),        # wrong T
                torch.ones(3, 5, 5, dtype=torch.bool),        # wrong B
                torch.ones(3, 2, 5, 5, dtype=torch.bool),     # wrong number of layers
                [torch.ones(2, 5, 5, dtype=torch.bool)],      # list of the wrong length
                "all"):
        with pytest.raises(LmscopeError, match="key_mask"):
            m(x, key_mask=bad)


# ------------------------------------------------------------------------------------------------
# Saving, loading, open_model
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tie", [True, False])
def test_save_load_round_trip(tmp_path, tie):
    m = tiny(tie_embeddings=tie, positions="learned", n_layers=3)
    x = ids_like(2, 6)
    d = m.save(tmp_path / "model")
    stored = load_file(str(d / WEIGHTS_FILE))
    assert ("head.weight" in stored) is (not tie)
    assert "pos_table" not in stored
    cfg = json.loads((d / CONFIG_FILE).read_text())
    assert cfg["model_type"] == "lmscope-small" and cfg["architectures"] == ["SmallTransformer"]
    assert (cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"]) == (3, 4, 16)
    back = SmallTransformer.load(d)
    assert not back.training
    assert back.config == m.config
    assert torch.equal(back(x).logits, m(x).logits)
    if tie:
        assert back.head.weight is back.embed.weight
    assert sorted(p.name for p in d.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]  # no temporary leftovers


def test_save_is_atomic(tmp_path):
    d = tiny(seed=1).save(tmp_path / "model")
    before = (d / WEIGHTS_FILE).read_bytes()

    class Broken:
        def save(self, path):
            raise OSError("disk full")

    with pytest.raises(OSError):
        tiny(seed=2).save(d, tokenizer=Broken())
    assert (d / WEIGHTS_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_open_model_lists_roles_and_loads(tmp_path):
    L = 3
    m = tiny(n_layers=L, d_ff=48)
    tok = WordTokenizer(["a", "b"])
    d = m.save(tmp_path / "model", tokenizer=tok)
    src = open_model(d)
    assert src.family == "small" and src.num_heads == 4
    refs = src.matrices()
    assert len(refs) == 6 * L
    shapes = {"q": (16, 16), "k": (16, 16), "v": (16, 16), "o": (16, 16), "fc_in": (48, 16), "fc_out": (16, 48)}
    for layer in range(L):
        got = {r.role: r.shape for r in refs if r.layer == layer}
        assert got == shapes
    assert torch.equal(src.load("0.q"), m.layers[0].attn.q.weight)
    assert torch.equal(src.load("2.fc_out"), m.layers[2].mlp.fc_out.weight)
    assert [r.key for r in src.matrices(roles=["q"], layers=[1])] == ["1.q"]
    loaded = src.load_model()
    assert isinstance(loaded, SmallTransformer) and is_causal(loaded)
    x = ids_like(1, 5)
    assert torch.equal(loaded(x).logits, m(x).logits)
    assert isinstance(src.load_model("causal-lm"), SmallTransformer)
    with pytest.raises(LmscopeError, match="task"):
        src.load_model("seq-cls")
    with pytest.raises(LmscopeError, match="task"):
        src.load_model("masked-lm")
    t = src.load_tokenizer()
    assert isinstance(t, WordTokenizer) and t.tokens == tok.tokens
    enc = tiny(causal=False).save(tmp_path / "encoder")
    assert not is_causal(open_model(enc).load_model("masked-lm"))
    with pytest.raises(LmscopeError, match="task"):
        open_model(enc).load_model("causal-lm")


def test_edited_and_factored_copies_load(tmp_path):
    """lmscope's checkpoint editing (LASER) works on small models: dense and factored copies."""
    m = tiny(n_layers=2, d_ff=32)
    d = m.save(tmp_path / "model")
    src = open_model(d)
    w = src.load("1.fc_in")
    U, S, Vh = torch.linalg.svd(w, full_matrices=False)
    k = 3
    low = (U[:, :k] * S[:k]) @ Vh[:k]
    edited = SmallTransformer.load(save_edited(src, {"1.fc_in": low}, tmp_path / "edited", quiet=True))
    close(edited.layers[1].mlp.fc_in.weight, low)
    up, down = (U[:, :k] * S[:k]).contiguous(), Vh[:k].contiguous()
    fac_dir = save_edited(src, {}, tmp_path / "factored", quiet=True, factored={"1.fc_in": (up, down)})
    fac = open_model(fac_dir).load_model()
    assert type(fac.layers[1].mlp.fc_in).__name__ == "LowRankLinear"
    x = ids_like(2, 6)
    close(fac(x).logits, edited(x).logits)


def _corrupt(tmp_path, how: str):
    m = tiny()
    d = m.save(tmp_path / "model")
    cfg_path = d / CONFIG_FILE
    cfg = json.loads(cfg_path.read_text())
    if how == "json":
        cfg_path.write_text("{not json")
    elif how == "value":
        cfg_path.write_text(json.dumps({**cfg, "n_heads": 5, "num_attention_heads": 5}))
    elif how == "alias":
        cfg_path.write_text(json.dumps({**cfg, "hidden_size": 64}))
    elif how == "shape":
        cfg_path.write_text(json.dumps({**cfg, "d_ff": 64, "intermediate_size": 64}))
    elif how == "missing-tensor":
        sd = load_file(str(d / WEIGHTS_FILE))
        del sd["layers.1.attn.k.bias"]
        save_file(sd, str(d / WEIGHTS_FILE))
    elif how == "no-weights":
        (d / WEIGHTS_FILE).unlink()
    elif how == "truncated":
        data = (d / WEIGHTS_FILE).read_bytes()
        (d / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    elif how == "no-config":
        cfg_path.unlink()
    elif how == "model-type":
        cfg_path.write_text(json.dumps({**cfg, "model_type": "gpt2"}))
    return d


@pytest.mark.parametrize("how", ["json", "value", "alias", "shape", "missing-tensor", "no-weights",
                                 "truncated", "no-config", "model-type"])
def test_damaged_folders_raise_lmscope_error(tmp_path, how):
    d = _corrupt(tmp_path, how)
    with pytest.raises(LmscopeError):
        SmallTransformer.load(d)
    if how not in ("no-config", "model-type"):  # those no longer claim to be small models
        with pytest.raises(LmscopeError):
            open_model(d).load_model()


# ------------------------------------------------------------------------------------------------
# Word-level tokenizer
# ------------------------------------------------------------------------------------------------
def test_word_tokenizer(tmp_path):
    tok = WordTokenizer.build(["the cat sleeps .", "the dogs sleep ."])
    assert tok.tokens[: len(SPECIALS)] == list(SPECIALS)
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.tokens[5:] == sorted(["the", "cat", "sleeps", ".", "dogs", "sleep"])
    assert WordTokenizer.build(["the dogs sleep .", "the cat sleeps ."]).tokens == tok.tokens
    ids = tok.encode("the cat  sleep .", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(ids) == 6
    assert tok.decode(ids) == "the cat sleep ."
    assert tok.decode(ids, skip_special=False) == "<bos> the cat sleep . <eos>"
    assert tok.encode("the bird") == [tok.token_to_id["the"], tok.unk_id]
    assert tok.decode(tok.encode("a <mask> .")) == "<unk> <mask> ."
    ids, mask = tok.batch_encode(["the cat", "the dogs sleep ."], add_bos=True)
    assert ids.shape == mask.shape == (2, 5) and ids.dtype == torch.long
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert ids[0, 3:].tolist() == [tok.pad_id] * 2
    assert tok.decode(ids[0]) == "the cat"
    # save / load, and recognition next to a model
    tok.save(tmp_path)
    assert has_word_vocab(tmp_path)
    assert WordTokenizer.load(tmp_path).tokens == tok.tokens
    assert WordTokenizer.load(tmp_path / "vocab.json").tokens == tok.tokens


def test_word_tokenizer_errors(tmp_path):
    for bad in (["a", "a"], ["two words"], [""], [3]):
        with pytest.raises(LmscopeError):
            WordTokenizer(bad)
    assert WordTokenizer(["<pad>", "a", "<eos>"]).tokens == [*SPECIALS, "a"]
    tok = WordTokenizer(["a"])
    with pytest.raises(LmscopeError):
        tok.decode([99])
    with pytest.raises(LmscopeError):
        WordTokenizer.load(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"type": 5, "the": 3}))  # a BPE-style vocabulary
    assert not has_word_vocab(tmp_path)
    with pytest.raises(LmscopeError):
        WordTokenizer.load(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"type": "lmscope-word", "tokens": ["a", "b"]}))
    with pytest.raises(LmscopeError, match="starting with"):
        WordTokenizer.load(tmp_path)
    (tmp_path / "vocab.json").write_text("{")
    with pytest.raises(LmscopeError):
        WordTokenizer.load(tmp_path)


# ------------------------------------------------------------------------------------------------
# Training sanity
# ------------------------------------------------------------------------------------------------
def test_causal_model_learns_to_reverse():
    """Sequences ``x SEP reverse(x)``, loss on the reversed half: it falls far below its start."""
    n, vocab, sep = 4, 12, 1
    m = SmallTransformer(SmallConfig(vocab_size=vocab, d_model=32, n_layers=2, n_heads=4, d_ff=64,
                                     max_len=16), seed=0).train()
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(300):
        x = torch.randint(2, vocab, (32, n), generator=g)
        seq = torch.cat([x, torch.full((32, 1), sep), x.flip(1)], dim=1)
        target = seq[:, 1:].clone()
        target[:, :n] = -100  # only the reversed half is predictable
        logits = m(seq[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    start, end = sum(losses[:5]) / 5, sum(losses[-10:]) / 10
    assert end < 0.3 and end < start / 5, (start, end)



def test_generate_is_greedy_and_batch_independent():
    import torch

    from lmscope.models.small import SmallConfig, SmallTransformer

    model = SmallTransformer(SmallConfig(vocab_size=20, d_model=32, n_layers=2, n_heads=4, d_ff=64), seed=3).eval()
    prompts = [[1, 5, 6], [1, 7], [2, 9, 9, 4, 3]]
    batch = model.generate(prompts, max_new_tokens=5)
    alone = [model.generate([p], max_new_tokens=5)[0] for p in prompts]
    assert batch == alone and all(len(o) == 5 for o in batch)
    # step by step by hand for the first prompt
    seq = list(prompts[0])
    for t in batch[0]:
        with torch.no_grad():
            assert int(model(torch.tensor([seq])).logits[0, -1].argmax()) == t
        seq.append(t)
    allowed = model.generate(prompts, max_new_tokens=3, allowed=[10, 11])
    assert all(t in (10, 11) for o in allowed for t in o)
    stop = batch[1][1]
    stopped = model.generate([prompts[1]], max_new_tokens=5, stop_id=stop)[0]
    assert stopped == batch[1][:batch[1].index(stop) + 1]
