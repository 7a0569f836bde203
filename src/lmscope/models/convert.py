"""One-time conversion of a GGUF file into a Hugging Face directory (kept in the lmscope cache)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path

from lmscope._io import atomic_dir
from lmscope.cache import cache_dir
from lmscope.errors import LmscopeError
from lmscope.models.hf_logging import quiet_transformers
from lmscope.progress import progress


def _file_key(path: Path) -> str:
    st = path.stat()
    h = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _lmscope_progress_bars():
    """transformers' GGUF reader draws its own tqdm bar, whatever its logging settings; route it through
    :func:`lmscope.progress.progress` for the conversion, so it shows on a terminal only and obeys --quiet."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # another transformers layout: its bar stays as it is
        yield
        return
    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return
    gguf_utils.tqdm = lambda iterable=None, *args, desc=None, **kw: progress(iterable, desc=desc)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def gguf_to_hf_dir(path: str | os.PathLike) -> Path:
    """Dequantize a GGUF model into a float32 safetensors directory (once; reused afterwards)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()

    path = Path(path)
    out = cache_dir("models") / f"{path.stem}-{_file_key(path)}"
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    with warnings.catch_warnings(), _lmscope_progress_bars():
        warnings.simplefilter("ignore")
        try:
            tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise LmscopeError(f"transformers cannot load GGUF {path}: {str(e).splitlines()[0]}") from None
    # the weights are dequantized float32 now: drop the GGUF "quantizer" so the model saves normally
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return out
