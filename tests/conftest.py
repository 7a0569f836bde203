"""Shared test fixtures and helpers: an isolated lmscope cache, tiny random transformers models, and the
check that a command failed with one clean error line.

Test modules import the plain helpers with ``from conftest import build_tiny_model, assert_clean_error``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# Keep the tests' caches away from the user's ~/.cache/lmscope. The directory persists across runs
# on purpose: the bundled GGUF model's one-time conversion (25-45 s) is then paid only once.
os.environ["LMSCOPE_CACHE"] = os.environ.get("LMSCOPE_TEST_CACHE") or "/tmp/lmscope-test-cache"

# ------------------------------------------------------------------------------------------------
# Tiny random models
# ------------------------------------------------------------------------------------------------
# Every tiny model: hidden 32, MLP 64, 2 layers, 4 heads of 8 (Llama-style ones: 2 key/value heads).
TINY_HIDDEN = 32
TINY_INTERMEDIATE = 64
TINY_LAYERS = 2
TINY_HEADS = 4
TINY_KV_HEADS = 2  # Llama / Qwen2 / Mistral only (grouped-query attention)
TINY_VOCAB = 100

TINY_FAMILIES = ("llama", "qwen2", "mistral", "gpt2", "gptj", "neox", "bert", "roberta")


def _tiny_config(family: str, **overrides):
    import transformers as T

    h, inter, n, nh = TINY_HIDDEN, TINY_INTERMEDIATE, TINY_LAYERS, TINY_HEADS
    llama_like = dict(hidden_size=h, intermediate_size=inter, num_hidden_layers=n, num_attention_heads=nh,
                      num_key_value_heads=TINY_KV_HEADS, vocab_size=TINY_VOCAB, max_position_embeddings=64)
    bert_like = dict(hidden_size=h, intermediate_size=inter, num_hidden_layers=n, num_attention_heads=nh,
                     vocab_size=TINY_VOCAB, max_position_embeddings=64)
    table = {
        "llama": (T.LlamaConfig, T.LlamaForCausalLM, llama_like),
        "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, llama_like),
        "mistral": (T.MistralConfig, T.MistralForCausalLM, llama_like),
        "gpt2": (T.GPT2Config, T.GPT2LMHeadModel,
                 dict(n_embd=h, n_inner=inter, n_layer=n, n_head=nh, vocab_size=TINY_VOCAB, n_positions=64,
                      bos_token_id=0, eos_token_id=0)),
        "gptj": (T.GPTJConfig, T.GPTJForCausalLM,
                 dict(n_embd=h, n_inner=inter, n_layer=n, n_head=nh, vocab_size=TINY_VOCAB, n_positions=64,
                      rotary_dim=4, bos_token_id=0, eos_token_id=0)),
        "neox": (T.GPTNeoXConfig, T.GPTNeoXForCausalLM,
                 dict(hidden_size=h, intermediate_size=inter, num_hidden_layers=n, num_attention_heads=nh,
                      vocab_size=TINY_VOCAB, max_position_embeddings=64)),
        "bert": (T.BertConfig, T.BertForMaskedLM, bert_like),
        "bert-encoder": (T.BertConfig, T.BertModel, bert_like),  # no head: the encoder alone
        "roberta": (T.RobertaConfig, T.RobertaModel, {**bert_like, "max_position_embeddings": 66}),
    }
    if family not in table:
        raise ValueError(f"unknown tiny family {family!r}; choose one of {', '.join(table)}")
    config_cls, model_cls, kwargs = table[family]
    return config_cls(**{**kwargs, **overrides}), model_cls


def build_tiny_model(family: str, seed: int | None = 0, **overrides):
    """A freshly initialized random transformers model of ``family`` (deterministic per seed).

    ``overrides`` replace entries of the family's config (``vocab_size``, ``num_hidden_layers``, ...).
    ``seed=None`` draws the weights from torch's current random state instead (and advances it), for
    several models built one after another from one seeded stream.
    """
    import torch

    config, model_cls = _tiny_config(family, **overrides)
    if seed is None:
        return model_cls(config).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    return model.eval()


def save_tiny_model(model, out: Path, fmt: str = "safetensors") -> Path:
    """Write ``model`` as ``fmt``: safetensors | sharded | bin | bin-sharded."""
    import torch

    out = Path(out)
    if fmt == "safetensors":
        model.save_pretrained(out)
    elif fmt == "sharded":
        model.save_pretrained(out, max_shard_size="20KB")
    elif fmt in ("bin", "bin-sharded"):
        # transformers 5 always writes safetensors: write the PyTorch pickle format by hand
        out.mkdir(parents=True, exist_ok=True)
        model.config.save_pretrained(out)
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        if fmt == "bin":
            torch.save(sd, out / "pytorch_model.bin")
        else:
            names = list(sd)
            halves = [names[: len(names) // 2], names[len(names) // 2:]]
            weight_map = {}
            for i, part in enumerate(halves, 1):
                fname = f"pytorch_model-{i:05d}-of-00002.bin"
                torch.save({k: sd[k] for k in part}, out / fname)
                weight_map.update(dict.fromkeys(part, fname))
            (out / "pytorch_model.bin.index.json").write_text(
                json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Factory: ``tiny_model_dir(family, fmt="safetensors", seed=0, **config_overrides) -> Path``.

    Directories are built once per session and shared: treat them as read-only (copy one with
    ``shutil.copytree`` before damaging or editing it). Families: see ``TINY_FAMILIES``.
    """
    made: dict[tuple, Path] = {}

    def make(family: str = "llama", fmt: str = "safetensors", seed: int = 0, **overrides) -> Path:
        key = (family, fmt, seed, tuple(sorted(overrides.items())))
        if key not in made:
            tag = "-".join([family, fmt, str(seed)] + [f"{k}{v}" for k, v in sorted(overrides.items())])
            out = tmp_path_factory.mktemp(tag, numbered=True)
            save_tiny_model(build_tiny_model(family, seed=seed, **overrides), out / "model", fmt)
            made[key] = out / "model"
        return made[key]

    return make


def edit_copy(src: Path, dst: Path, edits: dict) -> Path:
    """Copy a checkpoint directory and replace some tensors (same shapes) of its model.safetensors."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    sd = load_file(str(dst / "model.safetensors"))
    for name, w in edits.items():
        assert sd[name].shape == w.shape, (name, tuple(sd[name].shape), tuple(w.shape))
        sd[name] = w.to(sd[name].dtype).contiguous()
    save_file(sd, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def load_hf_model(path):
    """Load a (tiny) model directory with the transformers class named in its config.json."""
    import torch
    import transformers

    arch = json.loads((Path(path) / "config.json").read_text())["architectures"][0]
    return getattr(transformers, arch).from_pretrained(str(path), dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def load_tiny_model():
    """``load_tiny_model(dir)``: the transformers model of a directory made by ``tiny_model_dir``."""
    return load_hf_model


# ------------------------------------------------------------------------------------------------
# Errors as the user sees them
# ------------------------------------------------------------------------------------------------
ERROR_PREFIX = "lmscope: error:"


def assert_clean_error(rc: int, out: str, err: str, match: str | None = None) -> None:
    """A command failed as a user error: exit status 2, one ``lmscope: error:`` line on stderr (containing
    ``match`` when given), no traceback anywhere."""
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(ERROR_PREFIX), err
    if match is not None:
        assert match in lines[0], lines[0]
    assert "Traceback" not in err and "Traceback" not in out


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny SVDs and matmuls are many times slower with 2 threads on a busy 2-core machine than with one."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_cpp_server(gguf, log: Path, *extra: str, n_ctx: int = 1024, wait_s: float = 180):
    """``python -m llama_cpp.server`` on a GGUF file, on a free loopback port; yields its base URL once
    ``/models`` answers, and stops the server after. Skips when llama_cpp is not installed."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not installed (scripts/install.sh builds llama-cpp-python[server])")
    port = free_port()
    # One thread: llama.cpp's threads wait on each other by spinning, which on a busy machine makes
    # two threads many times slower than one (12 tokens: 0.5 s with one, 13.6 s with two).
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "1", "--n_threads_batch", "1", *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the llama.cpp server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the llama.cpp server did not answer in {wait_s:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
