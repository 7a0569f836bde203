"""A small local language model for the LM-priors tests: a transformers causal LM behind ``LanguageModel``.

It scores a continuation by the summed log-probabilities of its tokens after the prompt (prompt and
continuation tokenized together, so a leading space joins the continuation's first token), batching
sequences by length with right padding; ``generate`` is greedy. Results are memoized per instance.
"""

from __future__ import annotations

import torch

from lmscope.lm.base import ContinuationScore, LanguageModel


class TransformersLM(LanguageModel):
    def __init__(self, model, tokenizer, spec: str = "test:transformers", batch_size: int = 64):
        self.model = model.eval()
        self.tok = tokenizer
        self.spec = spec
        self.batch_size = batch_size
        self.calls = 0
        self._memo: dict[tuple[str, str], ContinuationScore] = {}

    def identity(self) -> dict:
        return {"backend": "test-transformers", "spec": self.spec}

    # ------------------------------------------------------------------ scoring
    def _ids(self, text: str) -> list[int]:
        ids = list(self.tok(text, add_special_tokens=True)["input_ids"])
        if not ids:
            start = self.tok.bos_token_id if self.tok.bos_token_id is not None else self.tok.eos_token_id
            ids = [int(start)]
        return ids

    def _split(self, prompt: str, cont: str) -> tuple[list[int], list[int]]:
        p = self._ids(prompt)
        full = self._ids(prompt + cont)
        if full[: len(p)] == p and len(full) > len(p):
            return p, full[len(p):]
        return p, list(self.tok(cont, add_special_tokens=False)["input_ids"])

    @torch.no_grad()
    def score(self, requests):
        self.calls += 1
        pending = {}
        for prompt, conts in requests:
            for c in conts:
                if (prompt, c) not in self._memo and (prompt, c) not in pending:
                    pending[(prompt, c)] = (prompt, c, *self._split(prompt, c))
        todo = list(pending.values())
        todo.sort(key=lambda t: len(t[2]) + len(t[3]))
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        for s in range(0, len(todo), self.batch_size):
            chunk = todo[s: s + self.batch_size]
            T = max(len(p) + len(c) for _, _, p, c in chunk)
            ids = torch.full((len(chunk), T), int(pad), dtype=torch.long)
            mask = torch.zeros((len(chunk), T), dtype=torch.long)
            for b, (_, _, p, c) in enumerate(chunk):
                seq = p + c
                ids[b, : len(seq)] = torch.tensor(seq)
                mask[b, : len(seq)] = 1
            logp = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for b, (prompt, c, p, cont) in enumerate(chunk):
                pos = torch.arange(len(p) - 1, len(p) + len(cont) - 1)
                tok_lp = logp[b, pos, torch.tensor(cont)].double().tolist()
                self._memo[(prompt, c)] = ContinuationScore(c, float(sum(tok_lp)), tok_lp,
                                                            [self.tok.decode([t]) for t in cont])
        return [[self._memo[(prompt, c)] for c in conts] for prompt, conts in requests]

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts, *, max_tokens=64, temperature=0.0, top_p=1.0, n=1, stop=None, seed=0):
        out = []
        for prompt in prompts:
            if not isinstance(prompt, str):
                prompt = self.tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            ids = torch.tensor([self._ids(prompt)])
            gen = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                      do_sample=False, pad_token_id=self.tok.eos_token_id)
            text = self.tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
            for s in stop or []:
                if s in text:
                    text = text[: text.index(s)]
            out.append([text] * n)
        return out

    def close(self) -> None:
        self._memo.clear()


# ------------------------------------------------------------------------------------------------
# Models shared by the tests of one session
# ------------------------------------------------------------------------------------------------
_SHARED: dict[str, object] = {}


def smollm2_tokenizer():
    """The bundled SmolLM2 tokenizer (the test is skipped when the bundled model is not installed)."""
    import pytest

    from lmscope.errors import LmscopeError
    from lmscope.models import open_model

    if "tok" not in _SHARED:
        try:
            _SHARED["tok"] = open_model("smollm2-135m").load_tokenizer()
        except LmscopeError as e:
            pytest.skip(str(e))
    return _SHARED["tok"]


def tiny_llama(seed: int = 0):
    """A random 2-layer Llama (hidden 32) over SmolLM2's vocabulary."""
    import transformers

    tok = smollm2_tokenizer()
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tok),
                                      max_position_embeddings=256)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    return model.eval(), tok


def tiny_lm() -> TransformersLM:
    if "tiny" not in _SHARED:
        model, tok = tiny_llama()
        _SHARED["tiny"] = TransformersLM(model, tok, spec="test:tiny-llama")
    return _SHARED["tiny"]


def smollm2_lm() -> TransformersLM:
    """The bundled SmolLM2-135M-Instruct, loaded with lmscope.models.open_model."""
    from lmscope.models import open_model

    if "smollm2" not in _SHARED:
        tok = smollm2_tokenizer()
        model = open_model("smollm2-135m").load_model()
        _SHARED["smollm2"] = TransformersLM(model, tok, spec="test:smollm2-135m")
    return _SHARED["smollm2"]
