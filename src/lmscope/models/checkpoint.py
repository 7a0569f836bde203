"""Write an edited copy of a checkpoint; the input is never modified.

``save_edited(source, edits, out)`` takes edited matrices keyed like ``MatrixRef.key`` (in the
(out, in) float32 layout every source presents) and writes a new directory that transformers can
load. Hugging Face directories are streamed shard by shard (only the shards that change are
rewritten, the others copied), so editing a multi-GB checkpoint needs one shard's memory. GGUF
files are written as their converted Hugging Face directory; LoRA adapters as the merged model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from lmscope._io import atomic_dir
from lmscope.errors import LmscopeError
from lmscope.models.sources import GGUFSource, HFDirSource, ModelSource, PeftSource, merge_fused
from lmscope.progress import progress

NOTE_FILE = "lmscope_edit.json"


def _stored_updates(src: ModelSource, edits: dict[str, torch.Tensor], read_stored) -> dict[str, torch.Tensor]:
    """Edited (out, in) matrices -> new stored tensors (transposes and fused blocks put back)."""
    by_tensor: dict[str, list] = {}
    for key, w in edits.items():
        ref = src.ref(key)
        if tuple(w.shape) != ref.shape:
            raise LmscopeError(f"edit for {key} has shape {tuple(w.shape)}, the matrix is {ref.shape}")
        by_tensor.setdefault(ref.tensor, []).append((ref, w))
    out = {}
    for name, items in by_tensor.items():
        stored = read_stored(name)
        dtype = stored.dtype
        full = stored.to(torch.float32)
        transposed = items[0][0].transposed
        if transposed:
            full = full.t()
        for ref, w in items:
            full = merge_fused(full, w, ref, src.family, src.num_heads) if ref.fused else w.to(torch.float32)
        if transposed:
            full = full.t()
        out[name] = full.to(dtype).contiguous()
    return out


def input_paths(src: ModelSource) -> list[Path]:
    """The files and folders a source reads (an adapter's base included)."""
    paths = [Path(src.path)] if hasattr(src, "path") else []
    if isinstance(src, PeftSource):
        paths += input_paths(src.base)
    return paths


def check_output_path(src: ModelSource, out: str | Path) -> None:
    """Refuse an output folder that is, or contains, one of the source's inputs."""
    o = Path(out).resolve()
    for p in input_paths(src):
        if p.resolve() == o or p.resolve().is_relative_to(o):
            raise LmscopeError(f"refusing to overwrite the input {p}; choose another output folder")


def save_edited(src: ModelSource, edits: dict[str, torch.Tensor], out: str | Path, note: dict | None = None,
                quiet: bool | None = None) -> Path:
    out = Path(out)
    check_output_path(src, out)
    if isinstance(src, GGUFSource):
        hf = HFDirSource(src.hf_dir(), spec=src.spec)
        return save_edited(hf, edits, out, note, quiet)
    if isinstance(src, HFDirSource):
        return _save_hf_dir(src, edits, out, note, quiet)
    if isinstance(src, PeftSource):
        return _save_merged(src, edits, out, note)
    raise LmscopeError(f"cannot write an edited copy of a {src.kind} source")


def _save_hf_dir(src: HFDirSource, edits, out: Path, note, quiet) -> Path:
    updates = _stored_updates(src, edits, src.read_tensor)
    weight_files = src.weight_files()
    with atomic_dir(out) as tmp:
        for f in sorted(src.path.iterdir()):
            if f.is_file() and f not in weight_files and not f.name.startswith(".") and f.name != NOTE_FILE:
                shutil.copy2(f, tmp / f.name)
        for wf in progress(weight_files, desc="writing", quiet=quiet):
            names = [n for n, p in src._index.items() if p == wf]
            if not any(n in updates for n in names):
                shutil.copy2(wf, tmp / wf.name)
                continue
            tensors = {n: updates[n] if n in updates else src.read_tensor(n) for n in names}
            if wf.suffix == ".safetensors":
                from safetensors.torch import save_file

                meta = dict(src._files[wf].metadata) or {"format": "pt"}
                save_file(tensors, str(tmp / wf.name), metadata=meta)
            else:
                torch.save(tensors, tmp / wf.name)
            del tensors
        _write_note(tmp, src, note)
    return out


def _save_merged(src: PeftSource, edits, out: Path, note) -> Path:
    model = src.load_model()
    apply_edits(model, src, edits)
    tok = None
    try:
        tok = src.load_tokenizer()
    except LmscopeError:
        pass
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        if tok is not None:
            tok.save_pretrained(tmp)
        _write_note(tmp, src, note)
    return out


def _write_note(d: Path, src: ModelSource, note: dict | None) -> None:
    info = {"source": src.spec, **(note or {})}
    (d / NOTE_FILE).write_text(json.dumps(info, indent=2) + "\n")


def apply_edits(model, src: ModelSource, edits: dict[str, torch.Tensor]) -> None:
    """Apply edited matrices to a loaded transformers model of ``src``, in place."""
    params = dict(model.state_dict())

    def param_name(tensor: str) -> str:
        if tensor in params:
            return tensor
        hits = [p for p in params if p.endswith("." + tensor)]
        if len(hits) != 1:
            raise LmscopeError(f"cannot place edited tensor {tensor} in the loaded model")
        return hits[0]

    updates = _stored_updates(src, edits, lambda n: params[param_name(n)].detach().clone())
    with torch.no_grad():
        for name, t in updates.items():
            params[param_name(name)].copy_(t)
