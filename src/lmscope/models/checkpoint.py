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

from lmscope.errors import LmscopeError
from lmscope.models.lowrank import NOTE_FILE, factored_modules, match_name
from lmscope.models.sources import GGUFSource, HFDirSource, ModelSource, PeftSource, merge_fused
from lmscope.outputs import check_output, output_dir
from lmscope.progress import progress


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


def check_output_path(src: ModelSource, out: str | Path, force: bool = False, inputs=()) -> None:
    """Apply lmscope's output policy (:func:`lmscope.outputs.check_output`) to the folder ``out`` with the
    source's files (and ``inputs``) as the inputs: refuse one that is, holds or is inside an input."""
    check_output(out, [*input_paths(src), *inputs], kind="dir", force=force)


def save_edited(src: ModelSource, edits: dict[str, torch.Tensor], out: str | Path, note: dict | None = None,
                quiet: bool | None = None, factored: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                force: bool = False) -> Path:
    """Write ``src`` with ``edits`` applied to ``out``.

    ``factored`` maps matrix keys to ``(up, down)`` factors (out x k, k x in): those matrices are
    stored as a :class:`~lmscope.models.lowrank.LowRankLinear` module's two factors instead.
    ``force`` replaces an existing folder lmscope did not write (never one that is or holds an input).
    """
    out = Path(out)
    check_output_path(src, out, force=force)
    factored = factored or {}
    if isinstance(src, GGUFSource):
        hf = HFDirSource(src.hf_dir(), spec=src.spec)
        check_output_path(hf, out, force=force, inputs=input_paths(src))
        return _save_hf_dir(hf, edits, out, note, quiet, factored)
    if isinstance(src, HFDirSource):
        return _save_hf_dir(src, edits, out, note, quiet, factored)
    if factored:
        raise LmscopeError("factored storage needs a Hugging Face directory or GGUF model (not a LoRA adapter); "
                           "merge the adapter first or drop --factored")
    if isinstance(src, PeftSource):
        return _save_merged(src, edits, out, note)
    raise LmscopeError(f"cannot write an edited copy of a {src.kind} source")


def _factor_tensors(src: HFDirSource, factored) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, dict]]:
    """Stored tensor -> its replacement tensors, and the note entries of the factored modules."""
    replace, info = {}, {}
    for key, (up, down) in factored.items():
        ref = src.ref(key)
        if ref.fused:
            raise LmscopeError(f"{key} is a slice of the fused matrix {ref.tensor}; it cannot be stored factored")
        if not ref.tensor.endswith(".weight"):
            raise LmscopeError(f"cannot factor {ref.tensor}: not a module weight")
        module = ref.tensor[: -len(".weight")]
        dtype = src.read_tensor(ref.tensor).dtype
        replace[ref.tensor] = {f"{module}.up.weight": up.to(dtype).contiguous(),
                               f"{module}.down.weight": down.to(dtype).contiguous()}
        info[module] = {"in": int(down.shape[1]), "out": int(up.shape[0]), "rank": int(down.shape[0]),
                        "bias": f"{module}.bias" in src.tensor_names(), "transposed": bool(ref.transposed)}
    return replace, info


def _save_hf_dir(src: HFDirSource, edits, out: Path, note, quiet, factored=None) -> Path:
    if factored_modules(src.path) and (edits or factored):
        raise LmscopeError(f"{src.spec} is already a factored checkpoint; apply all reductions to the original model")
    updates = _stored_updates(src, edits, src.read_tensor)
    replace, fac_info = _factor_tensors(src, factored or {})
    if fac_info:
        note = {**(note or {}), "factored": fac_info}
    weight_files = src.weight_files()
    index_files = {"model.safetensors.index.json", "pytorch_model.bin.index.json"}
    new_map: dict[str, str] = {}
    with output_dir(out, checked=True, command="edited checkpoint") as tmp:
        for f in sorted(src.path.iterdir()):
            if f.is_file() and f not in weight_files and not f.name.startswith(".") and f.name != NOTE_FILE:
                shutil.copy2(f, tmp / f.name)
        for wf in progress(weight_files, desc="writing", quiet=quiet):
            names = [n for n, p in src._index.items() if p == wf]
            for n in names:
                for m in replace.get(n, {n: None}):
                    new_map[m] = wf.name
            if not any(n in updates or n in replace for n in names):
                shutil.copy2(wf, tmp / wf.name)
                continue
            tensors = {}
            for n in names:
                if n in replace:
                    tensors.update(replace[n])
                else:
                    tensors[n] = updates[n] if n in updates else src.read_tensor(n)
            if wf.suffix == ".safetensors":
                from safetensors.torch import save_file

                meta = dict(src._files[wf].metadata) or {"format": "pt"}
                save_file(tensors, str(tmp / wf.name), metadata=meta)
            else:
                torch.save(tensors, tmp / wf.name)
            del tensors
        if replace:
            for name in index_files & {f.name for f in src.path.iterdir()}:
                idx = json.loads((src.path / name).read_text())
                idx["weight_map"] = dict(sorted(new_map.items()))
                (tmp / name).write_text(json.dumps(idx, indent=2) + "\n")
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
    with output_dir(out, checked=True, command="edited checkpoint") as tmp:
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
    WeightEditor(model, src).set(edits)


class WeightEditor:
    """Set weight matrices of a loaded transformers model by ``MatrixRef`` key, and undo exactly.

    ``set`` returns the previous contents of every tensor it touched (copies, not views), so
    ``undo`` restores the model bit for bit, however many edits were stacked in between.
    """

    def __init__(self, model, src: ModelSource):
        self.model = model
        self.src = src
        self._params = dict(model.state_dict(keep_vars=True))

    def _param(self, tensor: str) -> torch.Tensor:
        hit = match_name(self._params, tensor)
        if hit is None:
            raise LmscopeError(f"cannot place tensor {tensor} in the loaded model")
        return self._params[hit]

    def get(self, key: str) -> torch.Tensor:
        """The matrix ``key`` as the model holds it now, as float32 (out, in) on the CPU."""
        ref = self.src.ref(key)
        return self.src.present(self._param(ref.tensor).detach().to("cpu", torch.float32), ref)

    @torch.no_grad()
    def set(self, edits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        updates = _stored_updates(self.src, edits, lambda n: self._param(n).detach().to("cpu").clone())
        previous = {}
        for name, t in updates.items():
            p = self._param(name)
            previous[name] = p.detach().clone()
            p.copy_(t.to(p.device, p.dtype))
        return previous

    @torch.no_grad()
    def undo(self, previous: dict[str, torch.Tensor]) -> None:
        for name, t in previous.items():
            self._param(name).copy_(t)
