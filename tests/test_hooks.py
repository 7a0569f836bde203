"""lmscope.models.hooks: blocks of a model, hidden states captured with an early stop, body-then-head scoring."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_model

from lmscope.errors import LmscopeError
from lmscope.models.hooks import (
    capture_blocks,
    find_body_head,
    find_layers,
    log_probs_at,
    project,
    resolve_device,
    run_body,
)
from lmscope.models.small_tokenizer import pad_batch, pad_id_of

IDS = torch.tensor([[5, 17, 3, 42, 8, 61], [9, 2, 77, 4, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])


@pytest.mark.parametrize("family", ["llama", "gpt2", "bert-encoder"])
def test_find_layers_is_the_block_stack(family):
    model = build_tiny_model(family, num_hidden_layers=3) if family != "gpt2" else build_tiny_model(family, n_layer=3)
    blocks = find_layers(model)
    assert len(blocks) == 3
    names = {id(m): n for n, m in model.named_modules()}
    assert names[id(blocks)].endswith(("layers", "h", "layer"))


def test_find_layers_error_is_a_user_error():
    class NoBlocks(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"num_hidden_layers": 2})()
            self.proj = torch.nn.Linear(2, 2)

    with pytest.raises(LmscopeError, match="cannot find the stack of layers in a NoBlocks"):
        find_layers(NoBlocks())


@torch.no_grad()
def test_capture_matches_hidden_states_and_stops_early():
    model = build_tiny_model("llama", num_hidden_layers=4)
    ref = model(input_ids=IDS, attention_mask=MASK, output_hidden_states=True).hidden_states
    blocks = find_layers(model)
    before = [(len(b._forward_hooks), len(b._forward_pre_hooks)) for b in blocks]
    ran = []
    counters = [b.register_forward_hook(lambda m, a, o, i=i: ran.append(i)) for i, b in enumerate(blocks)]
    head_calls = []
    counters.append(model.lm_head.register_forward_hook(lambda m, a, o: head_calls.append(1)))
    try:
        ins, outs = capture_blocks(blocks, lambda: model(input_ids=IDS, attention_mask=MASK), inputs=[0, 2],
                                   outputs=[1])
        assert ran == [0, 1]  # block 2's input is the last thing asked for: blocks 2 and 3 never run
        assert not head_calls
        # hidden_states[l] is the output of block l - 1 (and the input of block l)
        torch.testing.assert_close(ins[0], ref[0])
        torch.testing.assert_close(outs[1], ref[2])
        torch.testing.assert_close(ins[2], ref[2])
        ran.clear()
        ins, outs = capture_blocks(blocks, lambda: model(input_ids=IDS, attention_mask=MASK), outputs=[3],
                                   on_output=lambda i, h: model.model.norm(h))
        assert ran == [0, 1, 2, 3] and not head_calls and ins == {}
        torch.testing.assert_close(outs[3], ref[4])  # the last hidden state includes the final norm
        # every capture hook is removed again: a plain pass runs every block and the head
        ran.clear()
        model(input_ids=IDS, attention_mask=MASK)
        assert ran == [0, 1, 2, 3] and head_calls == [1]
    finally:
        for h in counters:
            h.remove()
    assert [(len(b._forward_hooks), len(b._forward_pre_hooks)) for b in blocks] == before


@torch.no_grad()
def test_body_then_head_reproduces_the_logits_at_scored_positions():
    model = build_tiny_model("llama")
    split = find_body_head(model, {"input_ids": IDS, "attention_mask": MASK})
    assert split is not None and split[0] is model.model and split[1] is model.lm_head
    full = model(input_ids=IDS, attention_mask=MASK).logits
    rows, pos = torch.tensor([0, 0, 1]), torch.tensor([1, 5, 3])
    for s in (split, None):  # the shortcut, and the full model when there is none
        states, _ = run_body(model, s, input_ids=IDS, attention_mask=MASK)
        torch.testing.assert_close(project(s, states[rows, pos]), full[rows, pos].float(), atol=1e-5, rtol=1e-5)
    tgt = torch.tensor([3, 99, 0])
    states, _ = run_body(model, split, input_ids=IDS, attention_mask=MASK)
    lp = log_probs_at(split, states[rows, pos], tgt, chunk=2)  # chunks of 2 rows: 2 + 1
    want = torch.log_softmax(full[rows, pos].double(), -1)[torch.arange(3), tgt]
    assert lp.dtype == torch.float64 and lp.device.type == "cpu"
    torch.testing.assert_close(lp, want, atol=1e-5, rtol=1e-5)
    assert log_probs_at(split, states[:0, 0], tgt[:0]).shape == (0,)


@torch.no_grad()
def test_masked_lm_uses_its_prediction_head_and_a_capped_head_falls_back():
    bert = build_tiny_model("bert")
    split = find_body_head(bert, {"input_ids": IDS, "attention_mask": MASK})
    assert split is not None and split[1] is bert.cls  # the output embedding alone would skip the transform
    if not hasattr(__import__("transformers"), "Gemma2ForCausalLM"):
        pytest.skip("this transformers has no Gemma2")
    import transformers as T

    def gemma(cap):
        cfg = T.Gemma2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, head_dim=8, vocab_size=100, final_logit_softcapping=cap)
        torch.manual_seed(0)
        model = T.Gemma2ForCausalLM(cfg).eval()
        model.lm_head.weight.mul_(50)  # logits well past the soft cap
        return model

    assert find_body_head(gemma(None), {"input_ids": IDS}) is not None
    assert find_body_head(gemma(5.0), {"input_ids": IDS}) is None  # head(body) is not the capped logits


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(LmscopeError, match="unknown device 'gpu9'"):
        resolve_device("gpu9")
    if not torch.cuda.is_available():
        with pytest.raises(LmscopeError, match="sees no CUDA GPU"):
            resolve_device("cuda:0")


def test_pad_batch_and_pad_id():
    ids, mask = pad_batch([[4, 5, 6], [7]], 9)
    assert ids.tolist() == [[4, 5, 6], [7, 9, 9]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    tok = type("Tok", (), {"pad_token_id": None, "eos_token_id": 2})()
    assert pad_id_of(tok) == 2
    tok.pad_token_id = 0
    assert pad_id_of(tok) == 0  # 0 is a real id, not "missing"
    assert pad_id_of(object()) == 0
