"""Language models for the LM-priors tests: a tiny random Llama over SmolLM2's vocabulary, saved as a
Hugging Face directory and opened with the real local backend (``lmscope.lm.open_lm``)."""

from __future__ import annotations

from pathlib import Path

from lmscope.lm.base import LanguageModel

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


def tiny_model_dir(root: Path) -> Path:
    """A random 2-layer Llama (hidden 32) with SmolLM2's tokenizer, written to ``root/tiny-llama`` once."""
    from conftest import build_tiny_model

    out = Path(root) / "tiny-llama"
    if not (out / "config.json").is_file():
        tok = smollm2_tokenizer()
        model = build_tiny_model("llama", seed=0, vocab_size=len(tok), max_position_embeddings=512)
        model.save_pretrained(out)
        tok.save_pretrained(out)
    return out


class CountingLM(LanguageModel):
    """Passes everything to ``inner`` and counts the ``score`` calls."""

    def __init__(self, inner: LanguageModel):
        self.inner = inner
        self.spec = inner.spec
        self.calls = 0

    def identity(self) -> dict:
        return self.inner.identity()

    def generate(self, prompts, **kw):
        return self.inner.generate(prompts, **kw)

    def score(self, requests):
        self.calls += 1
        return self.inner.score(requests)

    def close(self) -> None:
        self.inner.close()


def tiny_lm(root: Path) -> CountingLM:
    """The tiny model behind the local backend, without the persistent cache."""
    from lmscope.lm import open_lm

    key = f"tiny:{root}"
    if key not in _SHARED:
        _SHARED[key] = CountingLM(open_lm(f"local:{tiny_model_dir(root)}", cache=False, device="cpu"))
    return _SHARED[key]
