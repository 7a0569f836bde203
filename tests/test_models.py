"""Tests for lmscope.models: roles, values, checkpoint formats, GGUF, PEFT adapters, errors, edits.

Every model here is a tiny random transformers model (see ``tiny_model_dir`` in conftest.py), so the
"truth" each test compares against is what transformers itself holds or computes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AttentionInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from lmscope.errors import LmscopeError
from lmscope.models import ROLES, HFDirSource, MatrixRef, PeftSource, open_model
from lmscope.models.checkpoint import NOTE_FILE, save_edited
from lmscope.models.sources import merge_fused, split_fused

# keep in step with conftest.py
H, INTER, LAYERS, HEADS, KV_HEADS = 32, 64, 2, 4, 2
HD = H // HEADS

LLAMA_LIKE = ("llama", "qwen2", "mistral")
FAMILIES = ("llama", "qwen2", "mistral", "gpt2", "gptj", "neox", "bert", "roberta")
LMSCOPE_FAMILY = {"llama": "llama", "qwen2": "llama", "mistral": "llama", "gpt2": "gpt2", "gptj": "gptj",
                  "neox": "neox", "bert": "bert", "roberta": "bert"}


def expected_roles(family: str) -> set[str]:
    if family in LLAMA_LIKE:
        return {"q", "k", "v", "o", "fc_in", "up", "fc_out"}
    return {"q", "k", "v", "o", "fc_in", "fc_out"}


def expected_shape(family: str, role: str) -> tuple[int, int]:
    kv = KV_HEADS * HD if family in LLAMA_LIKE else H
    return {"q": (H, H), "k": (kv, H), "v": (kv, H), "o": (H, H), "fc_in": (INTER, H), "up": (INTER, H),
            "fc_out": (H, INTER)}[role]


def reference_matrix(state_dict: dict, ref: MatrixRef, family: str) -> torch.Tensor:
    """The (out, in) matrix for ``ref`` computed from a transformers state dict, independently of lmscope."""
    w = state_dict[ref.tensor].detach().float()
    if LMSCOPE_FAMILY[family] == "gpt2":          # Conv1D: stored (in, out)
        w = w.t()
    if ref.fused:
        j = ref.fused.index(ref.role)
        if LMSCOPE_FAMILY[family] == "neox":      # per head: [q | k | v] rows
            nh, rows, cols = HEADS, w.shape[0], w.shape[1]
            w = w.reshape(nh, 3, rows // (3 * nh), cols)[:, j].reshape(-1, cols)
        else:                                     # [q; k; v] blocks
            size = w.shape[0] // 3
            w = w[j * size:(j + 1) * size]
    return w


def file_hashes(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(d).rglob("*")) if p.is_file()}


def all_tensors(src) -> dict[str, torch.Tensor]:
    return {n: src.read_tensor(n) for n in src.tensor_names()}


# ================================================================================================
# 1. roles
# ================================================================================================
@pytest.mark.parametrize("family", FAMILIES)
def test_roles_keys_and_shapes(family, tiny_model_dir):
    src = open_model(tiny_model_dir(family))
    refs = src.matrices()
    roles = expected_roles(family)
    assert {r.key for r in refs} == {f"{layer}.{role}" for layer in range(LAYERS) for role in roles}
    assert len(refs) == LAYERS * len(roles)
    for r in refs:
        assert r.key == f"{r.layer}.{r.role}"
        assert r.shape == expected_shape(family, r.role), r
        assert src.load(r).shape == r.shape
        assert src.load(r).dtype == torch.float32
    # ordered by layer, then by the canonical role order
    order = [(r.layer, ROLES.index(r.role)) for r in refs]
    assert order == sorted(order)
    assert src.describe()["family"] == LMSCOPE_FAMILY[family]
    assert src.describe()["matrices"] == len(refs) and src.describe()["layers"] == LAYERS


def test_gpt2_refs_are_transposed_and_fused(tiny_model_dir):
    src = open_model(tiny_model_dir("gpt2"))
    by_key = {r.key: r for r in src.matrices()}
    for role, block in (("q", 0), ("k", 1), ("v", 2)):
        r = by_key[f"0.{role}"]
        assert r.tensor == "transformer.h.0.attn.c_attn.weight"
        assert r.fused == ("q", "k", "v") and r.block == block and r.transposed
        assert r.name == f"transformer.h.0.attn.c_attn.weight[{role}]"
    assert by_key["1.o"].tensor == "transformer.h.1.attn.c_proj.weight"
    assert by_key["1.fc_out"].tensor == "transformer.h.1.mlp.c_proj.weight"
    assert src.tensor_shape("transformer.h.0.attn.c_attn.weight") == (H, 3 * H)  # stored (in, out)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_bert_output_dense_roles(family, tiny_model_dir):
    src = open_model(tiny_model_dir(family))
    by_key = {r.key: r for r in src.matrices()}
    for layer in range(LAYERS):
        assert by_key[f"{layer}.o"].tensor.endswith(f"layer.{layer}.attention.output.dense.weight")
        assert by_key[f"{layer}.fc_out"].tensor.endswith(f"layer.{layer}.output.dense.weight")
        assert "attention" not in by_key[f"{layer}.fc_out"].tensor
        assert by_key[f"{layer}.fc_in"].tensor.endswith(f"layer.{layer}.intermediate.dense.weight")
    # the masked-LM head's transform.dense has no layer index and is not an analyzed matrix
    assert not any("cls." in r.tensor or "pooler" in r.tensor for r in by_key.values())


def test_role_aliases_and_layer_filter(tiny_model_dir):
    src = open_model(tiny_model_dir("llama"))
    refs = src.matrices(roles=["gate", "DOWN", "query"], layers=[1])
    assert [r.key for r in refs] == ["1.q", "1.fc_in", "1.fc_out"]
    assert src.ref("0.up").tensor == "model.layers.0.mlp.up_proj.weight"
    assert src.ref("model.layers.0.mlp.up_proj.weight").key == "0.up"
    assert torch.equal(src.load("0.up"), src.load(src.ref("0.up")))
    assert open_model(src) is src


def test_generic_fallback_for_unknown_architecture(tmp_path):
    d = tmp_path / "weird"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "weird"}))
    tensors = {"emb.weight": torch.randn(10, 4), "blocks.0.attn.wq.weight": torch.randn(3, 4),
               "blocks.0.norm.weight": torch.ones(4), "blocks.0.ln_1.weight": torch.ones(4, 4),
               "blocks.1.ff.w1.weight": torch.randn(5, 4), "blocks.1.ff.w1.bias": torch.randn(5)}
    save_file(tensors, str(d / "model.safetensors"))
    src = open_model(d)
    assert [(r.key, r.shape) for r in src.matrices()] == [("0.attn.wq", (3, 4)), ("1.ff.w1", (5, 4))]
    assert torch.equal(src.load("1.ff.w1"), tensors["blocks.1.ff.w1.weight"])


# ================================================================================================
# 2. values
# ================================================================================================
@pytest.mark.parametrize("family", FAMILIES)
def test_every_matrix_equals_the_model_weights(family, tiny_model_dir, load_tiny_model):
    d = tiny_model_dir(family)
    src = open_model(d)
    sd = load_tiny_model(d).state_dict()
    for ref in src.matrices():
        assert torch.equal(src.load(ref), reference_matrix(sd, ref, family)), ref.key


def test_gpt2_q_k_v_are_column_blocks_of_c_attn(tiny_model_dir, load_tiny_model):
    d = tiny_model_dir("gpt2")
    src, model = open_model(d), load_tiny_model(d)
    for i, block in enumerate(model.transformer.h):
        c_attn = block.attn.c_attn.weight.detach()   # (in, 3h)
        assert c_attn.shape == (H, 3 * H)
        assert torch.equal(src.load(f"{i}.q"), c_attn.t()[:H])
        assert torch.equal(src.load(f"{i}.k"), c_attn.t()[H:2 * H])
        assert torch.equal(src.load(f"{i}.v"), c_attn.t()[2 * H:])
        assert torch.equal(src.load(f"{i}.o"), block.attn.c_proj.weight.detach().t())
        assert torch.equal(src.load(f"{i}.fc_in"), block.mlp.c_fc.weight.detach().t())
        assert torch.equal(src.load(f"{i}.fc_out"), block.mlp.c_proj.weight.detach().t())


def test_neox_q_k_v_are_head_interleaved(tiny_model_dir, load_tiny_model):
    d = tiny_model_dir("neox")
    src, model = open_model(d), load_tiny_model(d)
    for i, layer in enumerate(model.gpt_neox.layers):
        w = layer.attention.query_key_value.weight.detach()   # (3h, h)
        per_head = w.view(HEADS, 3, HD, H)
        for j, role in enumerate("qkv"):
            assert torch.equal(src.load(f"{i}.{role}"), per_head[:, j].reshape(H, H))
        # a plain row split would be wrong for NeoX
        assert not torch.equal(src.load(f"{i}.q"), w[:H])
        assert torch.equal(src.load(f"{i}.o"), layer.attention.dense.weight.detach())


# --- what the model actually computes ----------------------------------------------------------
_CAPTURED: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []


def _capture_attention(module, query, key, value, attention_mask, **kwargs):
    _CAPTURED.append((query.detach().clone(), key.detach().clone(), value.detach().clone()))
    return ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register("lmscope_test_capture", _capture_attention)


@pytest.mark.parametrize("family", FAMILIES)
def test_q_k_v_reproduce_the_models_attention_inputs(family, tiny_model_dir, load_tiny_model):
    """x @ W.T with lmscope's q/k/v equals the query/key/value the model hands its attention kernel."""
    d = tiny_model_dir(family)
    src, model = open_model(d), load_tiny_model(d)
    model.set_attn_implementation("lmscope_test_capture")
    inputs, hooks = {}, []
    with torch.no_grad():
        for layer in range(LAYERS):
            for role in "qkv":     # biases would hide nothing here but complicate the comparison
                mod = model.get_submodule(src.ref(f"{layer}.{role}").tensor.removesuffix(".weight"))
                if getattr(mod, "bias", None) is not None:
                    mod.bias.zero_()
            q_mod = model.get_submodule(src.ref(f"{layer}.q").tensor.removesuffix(".weight"))
            hooks.append(q_mod.register_forward_pre_hook(
                lambda m, args, layer=layer: inputs.__setitem__(layer, args[0].detach().clone())))
        _CAPTURED.clear()
        try:
            # one position per sequence: rotary embeddings are the identity at position 0
            model(input_ids=torch.tensor([[5], [17], [42]]))
        finally:
            for h in hooks:
                h.remove()
    assert len(_CAPTURED) == LAYERS
    for layer in range(LAYERS):
        x = inputs[layer].reshape(3, H)
        for t, role in zip(_CAPTURED[layer], "qkv"):
            assert t.shape[0] == 3 and t.shape[2] == 1   # (batch, heads, seq, head_dim)
            got = t.transpose(1, 2).reshape(3, -1)
            want = x @ src.load(f"{layer}.{role}").t()
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=f"{family} {layer}.{role}")


# --- fused split / merge ------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["gpt2", "neox"])
def test_split_merge_round_trip(family, tiny_model_dir):
    src = open_model(tiny_model_dir(family))
    fam = src.family
    g = torch.Generator().manual_seed(1)
    refs = [src.ref(f"1.{role}") for role in "qkv"]
    stored = src.read_tensor(refs[0].tensor)
    full = stored.t() if refs[0].transposed else stored      # (3h, h) as presented
    blocks = [split_fused(full, r, fam, src.num_heads) for r in refs]
    for r, b in zip(refs, blocks):
        assert torch.equal(b, src.load(r))
        assert torch.equal(merge_fused(full, b, r, fam, src.num_heads), full)   # merge(split) = id
    # the blocks partition the rows of the fused matrix
    assert sorted(map(tuple, torch.cat(blocks).tolist())) == sorted(map(tuple, full.tolist()))
    for r in refs:
        new = torch.randn(r.shape, generator=g)
        merged = merge_fused(full, new, r, fam, src.num_heads)
        assert merged.shape == full.shape
        for other, b in zip(refs, blocks):
            want = new if other is r else b
            assert torch.equal(split_fused(merged, other, fam, src.num_heads), want)   # split(merge) = id
    assert torch.equal(full, stored.t() if refs[0].transposed else stored)         # input not modified


def test_neox_split_needs_head_count():
    ref = MatrixRef("0.q", "x[q]", "x", 0, "q", (4, 4), 0, ("q", "k", "v"))
    with pytest.raises(LmscopeError, match="num_attention_heads"):
        split_fused(torch.zeros(12, 4), ref, "neox", None)
    with pytest.raises(LmscopeError, match="num_attention_heads"):
        split_fused(torch.zeros(12, 4), ref, "neox", 5)


# ================================================================================================
# 3. formats
# ================================================================================================
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_formats_give_identical_matrices(family, tiny_model_dir):
    single = tiny_model_dir(family, "safetensors")
    sharded = tiny_model_dir(family, "sharded")
    pt_bin = tiny_model_dir(family, "bin")
    pt_bin_sharded = tiny_model_dir(family, "bin-sharded")
    assert (sharded / "model.safetensors.index.json").is_file()
    assert len(list(sharded.glob("*.safetensors"))) > 1
    assert (pt_bin / "pytorch_model.bin").is_file() and not list(pt_bin.glob("*.safetensors"))
    assert (pt_bin_sharded / "pytorch_model.bin.index.json").is_file()

    sources = [open_model(p) for p in (single, sharded, pt_bin, pt_bin_sharded)]
    sources.append(open_model(single / "model.safetensors"))     # a weights file inside a model dir
    assert all(isinstance(s, HFDirSource) for s in sources)
    keys = [r.key for r in sources[0].matrices()]
    assert len(keys) == LAYERS * len(expected_roles(family))
    for s in sources[1:]:
        assert [r.key for r in s.matrices()] == keys
        assert [r.shape for r in s.matrices()] == [r.shape for r in sources[0].matrices()]
        for k in keys:
            assert torch.equal(s.load(k), sources[0].load(k)), (s.spec, k)


def test_bin_is_loaded_weights_only(tmp_path, tiny_model_dir):
    """A pickle that would run code when unpickled is refused, and the code does not run."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    d = tmp_path / "evil"
    d.mkdir()
    shutil.copy(tiny_model_dir("llama") / "config.json", d)
    torch.save({"model.layers.0.self_attn.q_proj.weight": torch.zeros(H, H), "x": Payload()},
               d / "pytorch_model.bin")
    with pytest.raises(LmscopeError, match="safely"):
        open_model(d)
    assert not marker.exists()


# ================================================================================================
# 4. bundled models
# ================================================================================================
def _bundled(name):
    try:
        return open_model(name)
    except LmscopeError as e:   # the optional model package is not installed
        pytest.skip(str(e))


def test_bundled_gguf_q_k_match_converted_directory():
    src = _bundled("smollm2-135m")
    assert src.kind == "gguf" and src.family == "llama"
    hf = open_model(src.hf_dir())   # converted by transformers once, cached in $LMSCOPE_CACHE
    assert isinstance(hf, HFDirSource)
    assert [r.key for r in src.matrices()] == [r.key for r in hf.matrices()]
    last = max(r.layer for r in src.matrices())
    for key in ("0.q", "0.k", f"{last}.q", f"{last}.k", "3.v"):
        a, b = src.load(key), hf.load(key)
        assert a.shape == b.shape == src.ref(key).shape
        assert torch.equal(a, b), key


def test_bundled_minilm_layers_and_roles():
    src = _bundled("minilm-l6")
    refs = src.matrices()
    assert src.family == "bert"
    assert {r.layer for r in refs} == set(range(6))
    assert {r.role for r in refs} == {"q", "k", "v", "o", "fc_in", "fc_out"}
    assert len(refs) == 36
    hidden = src.config["hidden_size"]
    assert src.ref("5.o").shape == (hidden, hidden)
    assert src.ref("5.fc_out").shape == (hidden, src.config["intermediate_size"])


# ================================================================================================
# 5. PEFT LoRA adapters
# ================================================================================================
def make_adapter(base_dir: Path, out: Path, load_model, seed: int = 0, **lora_kwargs) -> Path:
    from peft import LoraConfig, get_peft_model

    base = load_model(base_dir)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, **lora_kwargs))
        peft_model.save_pretrained(str(out))
    return out


def merged_state_dict(base_dir: Path, adapter_dir: Path, load_model) -> dict:
    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PeftModel.from_pretrained(load_model(base_dir), str(adapter_dir)).merge_and_unload()
    return model.state_dict()


PEFT_CASES = {
    "llama-all-linear": ("llama", dict(target_modules="all-linear")),
    "llama-rslora": ("llama", dict(target_modules=["q_proj", "v_proj", "down_proj"], use_rslora=True)),
    "llama-patterns": ("llama", dict(target_modules="all-linear",
                                     rank_pattern={"q_proj": 2, "layers.1.mlp.up_proj": 6},
                                     alpha_pattern={"v_proj": 3, "down_proj": 16})),
    "gpt2-all-linear": ("gpt2", dict(target_modules="all-linear", fan_in_fan_out=True)),
    "gpt2-rslora-pattern": ("gpt2", dict(target_modules=["c_attn", "c_fc"], fan_in_fan_out=True,
                                         use_rslora=True, rank_pattern={"c_attn": 2})),
    "bert-all-linear": ("bert", dict(target_modules="all-linear")),
    "neox-all-linear": ("neox", dict(target_modules="all-linear")),
}


@pytest.mark.parametrize("case", sorted(PEFT_CASES))
def test_peft_matrices_equal_merge_and_unload(case, tiny_model_dir, load_tiny_model, tmp_path):
    family, lora = PEFT_CASES[case]
    base_dir = tiny_model_dir(family)
    ad = make_adapter(base_dir, tmp_path / "adapter", load_tiny_model, **lora)
    src = open_model(ad)       # base found through adapter_config.json's base_model_name_or_path
    assert isinstance(src, PeftSource) and src.targeted()
    base = open_model(base_dir)
    merged = merged_state_dict(base_dir, ad, load_tiny_model)
    changed = 0
    for ref in src.matrices():
        w = src.load(ref)
        assert w.shape == ref.shape
        torch.testing.assert_close(w, reference_matrix(merged, ref, family), atol=1e-5, rtol=0, msg=ref.key)
        if ref.tensor in src.targeted():
            assert not torch.equal(w, base.load(ref)), ref.key
            changed += 1
        else:
            assert torch.equal(w, base.load(ref)), ref.key
    assert changed > 0
    if case == "llama-rslora":
        assert {r.role for r in src.matrices() if r.tensor in src.targeted()} == {"q", "v", "fc_out"}


def test_peft_rank_pattern_is_in_the_adapter(tiny_model_dir, load_tiny_model, tmp_path):
    """Guards the pattern test above: peft really trained different ranks per module."""
    _, lora = PEFT_CASES["llama-patterns"]
    ad = make_adapter(tiny_model_dir("llama"), tmp_path / "adapter", load_tiny_model, **lora)
    ranks = {k: v.shape[0] for k, v in load_file(str(ad / "adapter_model.safetensors")).items() if "lora_A" in k}
    assert ranks["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] == 2
    assert ranks["base_model.model.model.layers.1.mlp.up_proj.lora_A.weight"] == 6
    assert ranks["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] == 4


def test_peft_pattern_with_alternation(tiny_model_dir, load_tiny_model, tmp_path):
    base_dir = tiny_model_dir("llama")
    ad = make_adapter(base_dir, tmp_path / "adapter", load_tiny_model, target_modules="all-linear",
                      rank_pattern={"q_proj|v_proj": 2}, alpha_pattern={"k_proj|o_proj": 2})
    src = open_model(ad)
    merged = merged_state_dict(base_dir, ad, load_tiny_model)
    for ref in src.matrices(roles=["q", "k", "v", "o"]):
        torch.testing.assert_close(src.load(ref), merged[ref.tensor], atol=1e-5, rtol=0, msg=ref.key)


def test_peft_base_from_lmscope_json_or_argument(tiny_model_dir, load_tiny_model, tmp_path):
    base_dir = tiny_model_dir("llama")
    ad = make_adapter(base_dir, tmp_path / "adapter", load_tiny_model, target_modules="all-linear")
    cfg = json.loads((ad / "adapter_config.json").read_text())
    assert Path(cfg["base_model_name_or_path"]).resolve() == base_dir.resolve()
    reference = {r.key: open_model(ad).load(r) for r in open_model(ad).matrices()}

    cfg["base_model_name_or_path"] = str(tmp_path / "moved-away")
    (ad / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(LmscopeError, match="no such model"):
        open_model(ad)
    via_argument = open_model(ad, base=str(base_dir))
    (ad / "lmscope.json").write_text(json.dumps({"base": str(base_dir)}))
    via_meta = open_model(ad)
    for src in (via_argument, via_meta):
        assert {r.key for r in src.matrices()} == set(reference)
        for k, w in reference.items():
            assert torch.equal(src.load(k), w)


def test_peft_adapter_on_base_with_other_shapes(tiny_model_dir, load_tiny_model, tmp_path):
    ad = make_adapter(tiny_model_dir("llama"), tmp_path / "adapter", load_tiny_model, target_modules="all-linear")
    other = tiny_model_dir("llama", hidden_size=48, intermediate_size=96)
    with pytest.raises(LmscopeError, match="adapter does not match base"):
        open_model(ad, base=str(other))


def test_peft_dora_refused(tiny_model_dir, load_tiny_model, tmp_path):
    ad = make_adapter(tiny_model_dir("llama"), tmp_path / "adapter", load_tiny_model,
                      target_modules=["q_proj"], use_dora=True)
    with pytest.raises(LmscopeError, match="DoRA"):
        open_model(ad)


def test_peft_without_weights(tiny_model_dir, load_tiny_model, tmp_path):
    ad = make_adapter(tiny_model_dir("llama"), tmp_path / "adapter", load_tiny_model, target_modules=["q_proj"])
    (ad / "adapter_model.safetensors").unlink()
    with pytest.raises(LmscopeError, match="no adapter weights"):
        open_model(ad)


# ================================================================================================
# 6. bad input
# ================================================================================================
def _copy(src_dir: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src_dir, dst))


def test_error_nonexistent_path(tmp_path):
    with pytest.raises(LmscopeError, match="no such model"):
        open_model(tmp_path / "nope")


def test_error_directory_without_weights(tmp_path, tiny_model_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmscopeError, match="no weights found"):
        open_model(tmp_path / "empty")
    (tmp_path / "config-only").mkdir()
    shutil.copy(tiny_model_dir("llama") / "config.json", tmp_path / "config-only")
    with pytest.raises(LmscopeError, match="no weights found"):
        open_model(tmp_path / "config-only")


def test_error_unrecognized_file(tiny_model_dir):
    with pytest.raises(LmscopeError, match="unrecognized model file"):
        open_model(tiny_model_dir("llama") / "config.json")


def test_error_truncated_safetensors(tmp_path, tiny_model_dir):
    d = _copy(tiny_model_dir("llama"), tmp_path / "m")
    f = d / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(LmscopeError, match="truncated safetensors file") as e:
        open_model(d)
    assert "model.safetensors" in str(e.value)
    f.write_bytes(data[:5])
    with pytest.raises(LmscopeError, match="truncated header"):
        open_model(d)


@pytest.mark.parametrize("length", [2**62, 2**64 - 1, 10**6])
def test_error_corrupt_header_length(tmp_path, tiny_model_dir, length):
    d = _copy(tiny_model_dir("llama"), tmp_path / "m")
    f = d / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[:8] = struct.pack("<Q", length)
    f.write_bytes(bytes(data))
    with pytest.raises(LmscopeError, match="bad header length"):
        open_model(d)


def test_error_unreadable_header(tmp_path, tiny_model_dir):
    d = _copy(tiny_model_dir("llama"), tmp_path / "m")
    f = d / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[8:12] = b"\xff\xfe{["
    f.write_bytes(bytes(data))
    with pytest.raises(LmscopeError, match="corrupt safetensors file"):
        open_model(d)


def test_error_missing_shard(tmp_path, tiny_model_dir):
    d = _copy(tiny_model_dir("llama", "sharded"), tmp_path / "m")
    index = json.loads((d / "model.safetensors.index.json").read_text())
    victim = sorted(set(index["weight_map"].values()))[1]
    (d / victim).unlink()
    with pytest.raises(LmscopeError, match=f"missing shard {victim}"):
        open_model(d)


def test_error_corrupt_shard_index(tmp_path, tiny_model_dir):
    d = _copy(tiny_model_dir("llama", "sharded"), tmp_path / "m")
    (d / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(LmscopeError, match="corrupt shard index"):
        open_model(d)


def test_error_corrupt_gguf(tmp_path):
    f = tmp_path / "broken.gguf"
    f.write_bytes(b"GGUF" + b"\x00" * 3 + b"garbage" * 5)
    with pytest.raises(LmscopeError, match="GGUF"):
        open_model(f)


def test_error_unknown_architecture(tmp_path):
    d = tmp_path / "unknown"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "weird"}))
    save_file({"emb.weight": torch.zeros(10, 4), "norm.weight": torch.ones(4)}, str(d / "model.safetensors"))
    with pytest.raises(LmscopeError, match="unknown architecture.*weird"):
        open_model(d).matrices()


def test_error_unknown_role(tiny_model_dir):
    src = open_model(tiny_model_dir("gpt2"))
    with pytest.raises(LmscopeError, match="unknown role 'banana'.*fc_in") as e:
        src.matrices(roles=["q", "banana"])
    assert "q" in str(e.value)
    with pytest.raises(LmscopeError, match="unknown role 'up'"):   # gpt2 has no up projection
        src.matrices(roles=["up"])


def test_error_unknown_layer(tiny_model_dir):
    src = open_model(tiny_model_dir("llama"))
    with pytest.raises(LmscopeError, match=r"layer 7 does not exist.*0\.\.1"):
        src.matrices(layers=[0, 7])
    with pytest.raises(LmscopeError, match="no matrix '9.q'"):
        src.load("9.q")


# ================================================================================================
# 7. save_edited
# ================================================================================================
def test_save_edited_sharded_llama(tmp_path, tiny_model_dir, load_tiny_model):
    inp = _copy(tiny_model_dir("llama", "sharded"), tmp_path / "in")
    before = file_hashes(inp)
    src = open_model(inp)
    ref = src.ref("1.v")
    new = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    out = save_edited(src, {"1.v": new}, tmp_path / "out", note={"why": "test"}, quiet=True)

    assert file_hashes(inp) == before                       # input untouched
    edited = open_model(out)
    assert torch.equal(edited.load("1.v"), new)
    old_tensors, new_tensors = all_tensors(src), all_tensors(edited)
    assert set(old_tensors) == set(new_tensors)
    for name, t in old_tensors.items():
        if name == ref.tensor:
            assert torch.equal(new_tensors[name], new)
        else:
            assert torch.equal(new_tensors[name], t), name
    # only the shard holding the edited tensor was rewritten; the others are byte-identical copies
    index = json.loads((inp / "model.safetensors.index.json").read_text())["weight_map"]
    after = file_hashes(out)
    for fname in set(index.values()):
        assert (after[fname] == before[fname]) == (fname != index[ref.tensor]), fname
    assert json.loads((out / NOTE_FILE).read_text()) == {"source": str(inp), "why": "test"}
    model = load_tiny_model(out)
    assert torch.equal(model.state_dict()[ref.tensor], new)


def test_save_edited_gpt2_fused_q_block(tmp_path, tiny_model_dir, load_tiny_model):
    inp = _copy(tiny_model_dir("gpt2"), tmp_path / "in")
    before = file_hashes(inp)
    src = open_model(inp)
    new = torch.randn(H, H, generator=torch.Generator().manual_seed(4))
    out = save_edited(src, {"0.q": new}, tmp_path / "out", quiet=True)
    assert file_hashes(inp) == before
    edited = open_model(out)
    assert torch.equal(edited.load("0.q"), new)
    for ref in src.matrices():
        if ref.key != "0.q":
            assert torch.equal(edited.load(ref), src.load(ref)), ref.key
    old_tensors, new_tensors = all_tensors(src), all_tensors(edited)
    for name, t in old_tensors.items():
        if name != "transformer.h.0.attn.c_attn.weight":
            assert torch.equal(new_tensors[name], t), name
    model = load_tiny_model(out)
    c_attn = model.transformer.h[0].attn.c_attn.weight.detach()       # (in, 3h)
    assert torch.equal(c_attn.t()[:H], new)
    assert torch.equal(c_attn[:, H:], old_tensors["transformer.h.0.attn.c_attn.weight"][:, H:])


def test_save_edited_neox_fused_k_block(tmp_path, tiny_model_dir, load_tiny_model):
    inp = _copy(tiny_model_dir("neox"), tmp_path / "in")
    src = open_model(inp)
    new = torch.randn(H, H, generator=torch.Generator().manual_seed(5))
    out = save_edited(src, {"1.k": new}, tmp_path / "out", quiet=True)
    model = load_tiny_model(out)
    per_head = model.gpt_neox.layers[1].attention.query_key_value.weight.detach().view(HEADS, 3, HD, H)
    old = src.read_tensor("gpt_neox.layers.1.attention.query_key_value.weight").view(HEADS, 3, HD, H)
    assert torch.equal(per_head[:, 1].reshape(H, H), new)
    assert torch.equal(per_head[:, 0], old[:, 0]) and torch.equal(per_head[:, 2], old[:, 2])


def test_save_edited_refuses_to_overwrite_input(tmp_path, tiny_model_dir):
    inp = _copy(tiny_model_dir("llama"), tmp_path / "in")
    before = file_hashes(inp)
    src = open_model(inp)
    w = src.load("0.q") + 1
    with pytest.raises(LmscopeError, match="refusing to overwrite"):
        save_edited(src, {"0.q": w}, inp, quiet=True)
    (tmp_path / "alias").symlink_to(inp)
    with pytest.raises(LmscopeError, match="refusing to overwrite"):
        save_edited(src, {"0.q": w}, tmp_path / "alias", quiet=True)
    assert file_hashes(inp) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias", "in"]   # nothing half-written


def test_save_edited_bad_edits(tmp_path, tiny_model_dir):
    src = open_model(tiny_model_dir("llama"))
    with pytest.raises(LmscopeError, match="shape"):
        save_edited(src, {"0.k": torch.zeros(H, H)}, tmp_path / "out", quiet=True)
    with pytest.raises(LmscopeError, match="no matrix"):
        save_edited(src, {"5.q": torch.zeros(H, H)}, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_save_edited_into_parent_of_input_keeps_input(tmp_path, tiny_model_dir):
    parent = tmp_path / "parent"
    parent.mkdir()
    inp = _copy(tiny_model_dir("llama"), parent / "in")
    before = file_hashes(inp)
    src = open_model(inp)
    try:
        save_edited(src, {"0.q": src.load("0.q") + 1}, parent, quiet=True)
    except LmscopeError:
        pass  # refusing is fine
    assert inp.is_dir() and file_hashes(inp) == before


def test_save_edited_peft_writes_merged_model(tmp_path, tiny_model_dir, load_tiny_model):
    base_dir = tiny_model_dir("llama")
    ad = make_adapter(base_dir, tmp_path / "adapter", load_tiny_model, target_modules="all-linear")
    before = file_hashes(ad)
    src = open_model(ad)
    new = torch.randn(src.ref("0.o").shape, generator=torch.Generator().manual_seed(6))
    out = save_edited(src, {"0.o": new}, tmp_path / "out", quiet=True)
    assert file_hashes(ad) == before
    edited = open_model(out)
    assert isinstance(edited, HFDirSource)
    assert torch.equal(edited.load("0.o"), new)
    for ref in src.matrices():
        if ref.key != "0.o":
            torch.testing.assert_close(edited.load(ref.key), src.load(ref), atol=1e-5, rtol=0, msg=ref.key)


def test_save_edited_peft_refuses_to_overwrite_adapter(tmp_path, tiny_model_dir, load_tiny_model):
    ad = make_adapter(tiny_model_dir("llama"), tmp_path / "adapter", load_tiny_model, target_modules=["q_proj"])
    before = file_hashes(ad)
    src = open_model(ad)
    with pytest.raises(LmscopeError):
        save_edited(src, {"0.q": src.load("0.q") + 1}, ad, quiet=True)
    assert file_hashes(ad) == before
