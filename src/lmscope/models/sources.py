"""Model sources: open a checkpoint and read its weight matrices one at a time.

Every source presents matrices as float32 tensors of shape (out_features, in_features), named by
(layer, role) so that different checkpoints of one architecture line up (see ``roles``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmscope._io import read_text
from lmscope.errors import LmscopeError
from lmscope.models import roles as R
from lmscope.models.hf_logging import quiet_transformers
from lmscope.models.safetensors_io import SafetensorsFile


@dataclass(frozen=True)
class MatrixRef:
    """One weight matrix of a model, without its data."""

    key: str                     # "<layer>.<role>": the name that matches across checkpoints
    name: str                    # tensor path in the checkpoint (fused blocks get a "[role]" suffix)
    tensor: str                  # underlying stored tensor name
    layer: int | None
    role: str
    shape: tuple[int, int]       # (out, in) as presented
    block: int | None = None     # index of this block in a fused tensor
    fused: tuple[str, ...] | None = None
    transposed: bool = False     # stored as (in, out)

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "layer": self.layer, "role": self.role,
                "rows": self.shape[0], "cols": self.shape[1]}


@dataclass
class ModelSource:
    """Base class. Subclasses provide the stored tensors; this class does roles and fused splits."""

    spec: str
    config: dict = field(default_factory=dict)

    kind = "abstract"

    # --- to be provided by subclasses -------------------------------------------------------------
    def tensor_names(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def tensor_shape(self, name: str) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_tensor(self, name: str) -> torch.Tensor:  # pragma: no cover - abstract
        """The stored tensor, in its stored layout and dtype."""
        raise NotImplementedError

    def load_model(self, task: str | None = None, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def load_tokenizer(self):  # pragma: no cover - abstract
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------------
    @property
    def model_type(self) -> str | None:
        return self.config.get("model_type")

    @property
    def lm_head(self) -> str | None:
        """What the checkpoint's head predicts, read from its config (nothing is loaded): "causal" (the
        next token), "masked" (masked tokens) or None (no language-model head: a bare encoder or
        decoder body, a classifier)."""
        if self.model_type == "lmscope-small":
            return "causal" if self.config.get("causal", True) else "masked"
        if self.model_type == "lmscope-pushdown":
            return "causal"
        archs = self.config.get("architectures") or []
        if any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            return "causal"
        if any(str(a).endswith("ForMaskedLM") for a in archs):
            return "masked"
        return None

    def require_lm_head(self, purpose: str, *, causal: bool = False) -> str:
        """The kind of :attr:`lm_head` when it serves ``purpose`` (a causal LM; with ``causal=False`` a
        masked LM too); else an LmscopeError naming the model and what it is, before anything loads
        (a missing head would otherwise be initialised at random and its numbers look real)."""
        head = self.lm_head
        if head == "causal" or (head == "masked" and not causal):
            return head
        need = ("a causal language model (a ...ForCausalLM checkpoint)" if causal else
                "a language model with its head (a causal LM, or a masked LM such as ...ForMaskedLM)")
        if head == "masked":
            what = "is a bidirectional encoder with a masked-LM head"
        else:
            archs = ", ".join(map(str, self.config.get("architectures") or [])) or "none named in config.json"
            what = f"has no language-model head (architecture: {archs})"
        raise LmscopeError(f"{purpose} needs {need}; {self.spec} {what}")

    @property
    def family(self) -> str | None:
        return R.family_for(self.model_type)

    @property
    def num_heads(self) -> int | None:
        for k in ("num_attention_heads", "n_head"):
            if k in self.config:
                return int(self.config[k])
        return None

    def matrices(self, roles=None, layers=None) -> list[MatrixRef]:
        """All analyzed weight matrices, ordered by layer then role.

        ``roles``: iterable of role names (aliases allowed); ``layers``: iterable of layer indices.
        """
        refs = self._all_refs()
        if not refs:
            raise LmscopeError(
                f"unknown architecture: no weight matrices recognized in {self.spec} "
                f"(model_type={self.model_type!r})"
            )
        if roles is not None:
            want = set(R.check_roles(roles, {r.role for r in refs}))
            refs = [r for r in refs if r.role in want]
        if layers is not None:
            layers = set(int(x) for x in layers)
            have = {r.layer for r in refs}
            missing = sorted(layers - have)
            if missing:
                raise LmscopeError(
                    f"layer {missing[0]} does not exist in {self.spec} "
                    f"(layers {min(h for h in have if h is not None)}..{max(h for h in have if h is not None)})"
                )
            refs = [r for r in refs if r.layer in layers]
        return refs

    def _all_refs(self) -> list[MatrixRef]:
        cached = getattr(self, "_refs_cache", None)
        if cached is not None:
            return cached
        family = self.family
        refs = []
        for name in self.tensor_names():
            shape = self.tensor_shape(name)
            if len(shape) != 2:
                continue
            m = R.classify(name, family)
            if m is None:
                continue
            rows, cols = (shape[1], shape[0]) if m.transposed else (shape[0], shape[1])
            if m.fused:
                nb = len(m.fused)
                if rows % nb:
                    raise LmscopeError(f"fused matrix {name} of shape {shape} does not split in {nb}")
                for i, role in enumerate(m.fused):
                    refs.append(MatrixRef(f"{m.layer}.{role}", f"{name}[{role}]", name, m.layer, role,
                                          (rows // nb, cols), i, m.fused, m.transposed))
            else:
                refs.append(MatrixRef(f"{m.layer}.{m.role}", name, name, m.layer, m.role, (rows, cols),
                                      None, None, m.transposed))
        order = {r: i for i, r in enumerate(R.ROLES)}
        refs.sort(key=lambda r: (r.layer if r.layer is not None else -1, order.get(r.role, 99), r.role))
        keys = [r.key for r in refs]
        if len(set(keys)) != len(keys):
            # two tensors map to one key (e.g. an encoder-decoder): fall back to full names as keys
            refs = [MatrixRef(r.name, r.name, r.tensor, r.layer, r.role, r.shape, r.block, r.fused,
                              r.transposed) for r in refs]
        self._refs_cache = refs
        return refs

    def ref(self, key: str) -> MatrixRef:
        for r in self._all_refs():
            if r.key == key or r.name == key:
                return r
        raise LmscopeError(f"no matrix {key!r} in {self.spec}")

    def present(self, stored: torch.Tensor, ref: MatrixRef) -> torch.Tensor:
        """Stored full tensor -> this ref's (out, in) float32 matrix."""
        w = stored.to(torch.float32)
        if ref.transposed:
            w = w.t()
        if ref.fused:
            w = split_fused(w, ref, self.family, self.num_heads)
        return w.contiguous()

    def load(self, ref: MatrixRef | str) -> torch.Tensor:
        """One weight matrix as float32 (out, in)."""
        if isinstance(ref, str):
            ref = self.ref(ref)
        return self.present(self.read_tensor(ref.tensor), ref)

    def describe(self) -> dict:
        refs = self._all_refs()
        return {"spec": self.spec, "kind": self.kind, "model_type": self.model_type,
                "family": self.family or "generic", "matrices": len(refs),
                "layers": len({r.layer for r in refs})}


def _neox_view(w: torch.Tensor, nh: int | None) -> torch.Tensor:
    rows, cols = w.shape
    if not nh or rows % (3 * nh):
        raise LmscopeError("cannot split GPT-NeoX query_key_value: num_attention_heads missing or wrong")
    return w.view(nh, 3, rows // (3 * nh), cols)


def split_fused(w: torch.Tensor, ref: MatrixRef, family: str | None, nh: int | None) -> torch.Tensor:
    """Take block ``ref.block`` of a fused (out, in) matrix."""
    nb = len(ref.fused)
    if family == "neox":
        v = _neox_view(w, nh)
        return v[:, ref.block].reshape(-1, w.shape[1])
    size = w.shape[0] // nb
    return w[ref.block * size:(ref.block + 1) * size]


def merge_fused(w: torch.Tensor, block: torch.Tensor, ref: MatrixRef, family: str | None,
                nh: int | None) -> torch.Tensor:
    """Inverse of ``split_fused``: return a copy of fused (out, in) ``w`` with the block replaced."""
    w = w.clone()
    nb = len(ref.fused)
    if family == "neox":
        v = _neox_view(w, nh)
        v[:, ref.block] = block.reshape(v.shape[0], v.shape[2], v.shape[3])
        return v.reshape(w.shape)
    size = w.shape[0] // nb
    w[ref.block * size:(ref.block + 1) * size] = block
    return w


# ------------------------------------------------------------------------------------------------
# Hugging Face directories
# ------------------------------------------------------------------------------------------------
_AUTO_FOR_ARCH = (("ForCausalLM", "causal-lm"), ("LMHeadModel", "causal-lm"), ("ForMaskedLM", "masked-lm"),
                  ("ForSequenceClassification", "seq-cls"))


def task_from_config(config: dict) -> str:
    for arch in config.get("architectures") or []:
        for suffix, task in _AUTO_FOR_ARCH:
            if arch.endswith(suffix):
                return task
    return "base"


def is_causal(model) -> bool:
    """Whether a loaded transformers model (or lmscope small transformer) is a causal (left-to-right) LM."""
    from lmscope.models.small import SmallConfig

    if isinstance(getattr(model, "config", None), SmallConfig):
        return model.config.causal
    if bool(getattr(model.config, "is_decoder", False)) or any(
        a.endswith(("ForCausalLM", "LMHeadModel")) for a in (model.config.architectures or [])
    ) or type(model).__name__.endswith(("ForCausalLM", "LMHeadModel")):
        return True
    # a bare decoder body (e.g. LlamaModel, GPT2Model): its attention modules say they are causal
    return any(getattr(m, "is_causal", None) is True for m in model.modules()
               if isinstance(m, torch.nn.Module) and type(m).__name__.endswith("Attention"))


def auto_class(task: str):
    import transformers

    quiet_transformers()

    classes = {
        "causal-lm": transformers.AutoModelForCausalLM,
        "masked-lm": transformers.AutoModelForMaskedLM,
        "seq-cls": transformers.AutoModelForSequenceClassification,
        "base": transformers.AutoModel,
    }
    if task not in classes:
        raise LmscopeError(f"unknown model task {task!r}; choose one of {', '.join(classes)}")
    return classes[task]


class HFDirSource(ModelSource):
    """A local Hugging Face model directory (safetensors, sharded or not; or PyTorch .bin)."""

    kind = "hf"

    def __init__(self, path: str | os.PathLike, spec: str | None = None):
        self.path = Path(path)
        cfg_path = self.path / "config.json"
        config = {}
        if cfg_path.is_file():
            try:
                config = json.loads(read_text(cfg_path))
            except json.JSONDecodeError as e:
                raise LmscopeError(f"corrupt config.json in {self.path}: {e.msg}") from None
            if not isinstance(config, dict):
                raise LmscopeError(f"corrupt config.json in {self.path}: not a JSON object")
        super().__init__(spec or str(path), config)
        self._index: dict[str, Path] = {}
        self._files: dict[Path, object] = {}
        self._bin_cache: tuple[Path, dict] | None = None
        self._scan()
        self._virtual: dict[str, tuple[str, str, bool]] = {}
        self._hidden: set[str] = set()
        from lmscope.models.lowrank import factored_modules

        self.factored = factored_modules(self.path)
        for module, info in self.factored.items():
            up, down = f"{module}.up.weight", f"{module}.down.weight"
            if up not in self._index or down not in self._index:
                raise LmscopeError(f"factored checkpoint {self.path} lacks the factors of {module}")
            self._virtual[f"{module}.weight"] = (up, down, bool(info.get("transposed")))
            self._hidden |= {up, down}

    def _scan(self):
        p = self.path
        st_index, bin_index = p / "model.safetensors.index.json", p / "pytorch_model.bin.index.json"
        if st_index.is_file() or bin_index.is_file():
            idx_path = st_index if st_index.is_file() else bin_index
            try:
                weight_map = json.loads(read_text(idx_path))["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise LmscopeError(f"corrupt shard index: {idx_path}") from None
            for name, fname in weight_map.items():
                self._index[name] = p / fname
            for f in sorted(set(self._index.values())):
                if not f.is_file():
                    raise LmscopeError(f"missing shard {f.name} listed in {idx_path}")
            self._open_all()
            return
        st_files = sorted(p.glob("*.safetensors"))
        bin_files = sorted(p.glob("pytorch_model*.bin"))
        files = st_files or bin_files
        if not files:
            raise LmscopeError(f"no weights found in {p} (expected *.safetensors or pytorch_model.bin)")
        for f in files:
            for name in self._open(f).keys():
                self._index[name] = f
        self._open_all()

    def _open_all(self):
        for f in sorted(set(self._index.values())):
            self._open(f)

    def _open(self, f: Path):
        if f not in self._files:
            if f.suffix == ".safetensors":
                self._files[f] = SafetensorsFile(f)
            else:
                self._files[f] = _BinFile(f)
        return self._files[f]

    def tensor_names(self) -> list[str]:
        return [n for n in self._index if n not in self._hidden] + list(self._virtual)

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in self._virtual:
            up, down, transposed = self._virtual[name]
            shape = (self.tensor_shape(up)[0], self.tensor_shape(down)[1])
            return shape[::-1] if transposed else shape
        f = self._open(self._index[name])
        if name not in f.keys():
            raise LmscopeError(f"tensor {name} is listed in the shard index but missing from {f.path.name}")
        return tuple(f.shape(name))

    def read_tensor(self, name: str) -> torch.Tensor:
        if name in self._virtual:  # a factored matrix, presented dense in its original layout
            up, down, transposed = self._virtual[name]
            u, d = self.read_tensor(up), self.read_tensor(down)
            w = (u.to(torch.float32) @ d.to(torch.float32)).to(u.dtype)
            return w.t().contiguous() if transposed else w
        if name not in self._index:
            raise LmscopeError(f"no tensor {name} in {self.spec}")
        return self._open(self._index[name]).read(name)

    def weight_files(self) -> list[Path]:
        return sorted(set(self._index.values()))

    def load_model(self, task: str | None = None, **kwargs):
        from lmscope.models.small import MODEL_TYPE, SmallTransformer

        if self.model_type == MODEL_TYPE:  # lmscope's own small transformer (a causal LM or an encoder)
            return SmallTransformer.load(self.path, task).to(kwargs.get("dtype", torch.float32))
        if self.model_type == "lmscope-pushdown":  # its layers read a stack tape: lmscope.pushdown runs it
            raise LmscopeError(f"{self.spec} is a pushdown model: its matrices can be analyzed here, but it runs "
                               "only through `lmscope pushdown eval|parse` (it reads a stack tape)")
        task = task or task_from_config(self.config)
        kwargs.setdefault("dtype", torch.float32)
        if self.factored:
            from lmscope.models.lowrank import load_factored

            state = {n: self.read_tensor(n) for n in self._index}
            try:
                return load_factored(self.path, auto_class(task), state, dtype=kwargs["dtype"])
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                raise LmscopeError(f"cannot load the factored checkpoint {self.spec}: {str(e).splitlines()[0]}") from None
        try:
            return auto_class(task).from_pretrained(str(self.path), **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise LmscopeError(f"transformers cannot load {self.spec}: {str(e).splitlines()[0]}") from None

    def load_tokenizer(self):
        from lmscope.models.small_tokenizer import WordTokenizer, has_word_vocab

        if has_word_vocab(self.path):  # the word-level tokenizer of the synthetic suites
            return WordTokenizer.load(self.path)
        from transformers import AutoTokenizer

        quiet_transformers()
        try:
            return AutoTokenizer.from_pretrained(str(self.path))
        except (OSError, ValueError) as e:
            raise LmscopeError(f"no usable tokenizer in {self.spec}: {str(e).splitlines()[0]}") from None


class _BinFile:
    """A PyTorch pickle checkpoint, loaded safely (weights only), memory-mapped where possible."""

    def __init__(self, path: Path):
        self.path = path
        try:
            try:
                self._sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:
                self._sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many types for bad pickles
            raise LmscopeError(f"cannot read {path} safely: {str(e).splitlines()[0][:200]}") from None
        if not isinstance(self._sd, dict):
            raise LmscopeError(f"{path} does not hold a state dict")

    def keys(self):
        return self._sd.keys()

    def shape(self, name):
        return tuple(self._sd[name].shape)

    def read(self, name):
        return self._sd[name].clone()


# ------------------------------------------------------------------------------------------------
# GGUF files
# ------------------------------------------------------------------------------------------------
_GGUF_LLAMA_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}
_GGUF_LLAMA_GLOBAL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_GGUF_LLAMA_ARCHS = {"llama", "mistral", "qwen2"}


class GGUFSource(ModelSource):
    """A GGUF file, read tensor by tensor (dequantized to float32) through a memory map.

    For Llama-family architectures tensors are renamed to the Hugging Face names and the q/k rows
    are un-permuted, so a GGUF base lines up with a Hugging Face fine-tune of it.
    """

    kind = "gguf"

    def __init__(self, path: str | os.PathLike, spec: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise LmscopeError(f"no such GGUF file: {self.path}")
        index = self._index()
        arch = index["arch"]
        config = {"model_type": arch, "architectures": ["LlamaForCausalLM"] if arch in _GGUF_LLAMA_ARCHS else []}
        if index.get("heads") is not None:
            config["num_attention_heads"] = int(index["heads"])
        if arch:
            config["num_key_value_heads"] = int(index["kv_heads"] or index["heads"] or 0) or None
        super().__init__(spec or str(path), config)
        self._tensors: dict[str, dict] = {}
        self._names = {}
        rename = arch in _GGUF_LLAMA_ARCHS
        for t in index["tensors"]:
            name = self._hf_name(t["name"]) if rename else t["name"]
            self._tensors[name] = t
            self._names[name] = t["name"]

    def _index(self) -> dict:
        """Tensor table and the few header fields we need, parsed once per file and cached.

        Parsing a GGUF header (tokenizer vocabularies included) takes seconds; the table itself is
        small, so it is kept next to the other caches, keyed by the file's path, size and mtime.
        """
        from lmscope.cache import cache_dir

        st = self.path.stat()
        key = hashlib.sha256(f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]
        cached = cache_dir("gguf-index") / f"{key}.json"
        if cached.is_file():
            try:
                return json.loads(cached.read_text())
            except (OSError, json.JSONDecodeError):
                pass
        from gguf import GGUFReader

        try:
            reader = GGUFReader(str(self.path))
        except Exception as e:  # noqa: BLE001 - the reader raises ValueError/struct errors/etc.
            raise LmscopeError(f"corrupt or truncated GGUF file {self.path}: {str(e)[:200]}") from None

        def field(key: str):
            f = reader.fields.get(key)
            if f is None:
                return None
            val = f.parts[f.data[0]]
            if f.types and f.types[0].name == "STRING":
                return bytes(val).decode("utf-8")
            return val.tolist()[0] if hasattr(val, "tolist") else val

        arch = field("general.architecture")
        index = {
            "arch": arch,
            "heads": field(f"{arch}.attention.head_count") if arch else None,
            "kv_heads": field(f"{arch}.attention.head_count_kv") if arch else None,
            "tensors": [{"name": t.name, "type": int(t.tensor_type), "shape": [int(x) for x in t.shape],
                         "offset": int(t.data_offset), "data_shape": list(t.data.shape), "dtype": t.data.dtype.str}
                        for t in reader.tensors],
        }
        from lmscope._io import write_json

        write_json(cached, index)
        return index

    @staticmethod
    def _hf_name(name: str) -> str:
        m = re.match(r"blk\.(\d+)\.([a-z_]+)\.(weight|bias)$", name)
        if m and m.group(2) in _GGUF_LLAMA_NAMES:
            return f"model.layers.{m.group(1)}.{_GGUF_LLAMA_NAMES[m.group(2)]}.{m.group(3)}"
        m = re.match(r"([a-z_]+)\.(weight|bias)$", name)
        if m and m.group(1) in _GGUF_LLAMA_GLOBAL:
            return f"{_GGUF_LLAMA_GLOBAL[m.group(1)]}.{m.group(2)}"
        return name

    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(reversed(self._tensors[name]["shape"]))

    def read_tensor(self, name: str) -> torch.Tensor:
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        t = self._tensors[name]
        qtype = GGMLQuantizationType(t["type"])
        try:
            data = np.memmap(self.path, dtype=np.dtype(t["dtype"]), mode="r", offset=t["offset"],
                             shape=tuple(t["data_shape"]))
            arr = dequantize(np.asarray(data), qtype)
        except Exception as e:  # noqa: BLE001
            raise LmscopeError(f"cannot read {self._names[name]} ({qtype.name}) from {self.path}: {e}") from None
        arr = np.asarray(arr, dtype=np.float32).reshape(self.tensor_shape(name))
        if self.model_type in _GGUF_LLAMA_ARCHS:
            nh = self.config.get("num_attention_heads")
            if name.endswith("self_attn.q_proj.weight"):
                arr = _unpermute(arr, nh)
            elif name.endswith("self_attn.k_proj.weight"):
                arr = _unpermute(arr, self.config.get("num_key_value_heads") or nh)
        return torch.from_numpy(np.ascontiguousarray(arr))

    @property
    def lm_head(self) -> str | None:
        return "causal"  # a GGUF file holds a language model with its output head

    def hf_dir(self) -> Path:
        """A Hugging Face directory converted from this file once, kept in the lmscope cache."""
        from lmscope.models.convert import gguf_to_hf_dir

        return gguf_to_hf_dir(self.path)

    def load_model(self, task: str | None = None, **kwargs):
        return HFDirSource(self.hf_dir(), spec=self.spec).load_model(task or "causal-lm", **kwargs)

    def load_tokenizer(self):
        return HFDirSource(self.hf_dir(), spec=self.spec).load_tokenizer()


def _unpermute(w: np.ndarray, n_head: int | None) -> np.ndarray:
    """Undo llama.cpp's rotary row permutation of q/k projections."""
    if not n_head:
        return w
    half = w.shape[0] // n_head // 2
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# ------------------------------------------------------------------------------------------------
# PEFT LoRA adapters
# ------------------------------------------------------------------------------------------------
class PeftSource(ModelSource):
    """A PEFT LoRA adapter on top of its base; each matrix is merged on demand.

    W = W0 + s * B @ A, with s = alpha / r (rsLoRA: alpha / sqrt(r)); per-module ``rank_pattern`` and
    ``alpha_pattern`` are honoured.
    """

    kind = "peft"

    def __init__(self, path: str | os.PathLike, base: str | ModelSource | None = None, spec: str | None = None):
        from lmscope.models import open_model

        self.path = Path(path)
        try:
            self.adapter_config = json.loads(read_text(self.path / "adapter_config.json"))
        except json.JSONDecodeError as e:
            raise LmscopeError(f"corrupt adapter_config.json in {self.path}: {e.msg}") from None
        cfg = self.adapter_config
        if not isinstance(cfg, dict):
            raise LmscopeError(f"adapter {self.path}: adapter_config.json must hold a JSON object")
        if cfg.get("peft_type", "LORA") != "LORA":
            raise LmscopeError(f"only LoRA adapters are supported, {self.path} is {cfg.get('peft_type')}")
        if cfg.get("use_dora"):
            raise LmscopeError("DoRA adapters are not supported (their merge needs the magnitude vector)")
        meta_path = self.path / "lmscope.json"
        try:
            meta = json.loads(read_text(meta_path)) if meta_path.is_file() else {}
        except json.JSONDecodeError as e:
            raise LmscopeError(f"corrupt lmscope.json in {self.path}: {e.msg}") from None
        if not isinstance(meta, dict):
            raise LmscopeError(f"adapter {self.path}: lmscope.json must hold a JSON object")
        self.meta = meta
        base_spec = base if base is not None else meta.get("base") or cfg.get("base_model_name_or_path")
        if base_spec is None:
            raise LmscopeError(f"adapter {self.path} does not name its base model; pass the base explicitly")
        self.base = base_spec if isinstance(base_spec, ModelSource) else open_model(base_spec)
        super().__init__(spec or str(path), dict(self.base.config))
        weights = self.path / "adapter_model.safetensors"
        if weights.is_file():
            f = SafetensorsFile(weights)
            self._adapter = {k: f.read(k) for k in f.keys()}
        elif (self.path / "adapter_model.bin").is_file():
            self._adapter = torch.load(self.path / "adapter_model.bin", map_location="cpu", weights_only=True)
        else:
            raise LmscopeError(f"no adapter weights (adapter_model.safetensors) in {self.path}")
        self._deltas = self._match_modules()

    def _match_modules(self) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
        base_names = set(self.base.tensor_names())
        modules: dict[str, dict] = {}
        for k, t in self._adapter.items():
            m = re.match(r"(.*)\.lora_([AB])(?:\.[^.]+)?\.weight$", k)
            if m:
                modules.setdefault(m.group(1), {})[m.group(2)] = t
        if not modules:
            raise LmscopeError(f"adapter {self.path} holds no LoRA weights")
        out = {}
        self.unmatched: list[str] = []
        wrong: list[tuple[str, str]] = []  # modules whose weights disagree with adapter_config.json
        for mod, ab in modules.items():
            if set(ab) != {"A", "B"}:
                raise LmscopeError(f"adapter {self.path}: module {mod} lacks lora_A or lora_B")
            path = mod[len("base_model.model."):] if mod.startswith("base_model.model.") else mod
            parts = (path + ".weight").split(".")
            target = None
            for i in range(len(parts) - 1):
                cand = ".".join(parts[i:])
                if cand in base_names:
                    target = cand
                    break
            if target is None:
                if R.layer_index(path) is None:
                    # a module outside the transformer blocks that the base checkpoint lacks (e.g. a pooler
                    # created by a task head): it has no base matrix to compare, so it is left out
                    self.unmatched.append(path)
                    continue
                raise LmscopeError(f"adapter does not match base {self.base.spec}: no weight for module {path}")
            a, b = ab["A"].float(), ab["B"].float()
            r = a.shape[0]
            rank = self._pattern(self.adapter_config.get("rank_pattern"), path, self.adapter_config.get("r", r))
            if a.ndim != 2 or b.ndim != 2 or b.shape[1] != r or rank != r:
                wrong.append((path, f"lora_A {tuple(a.shape)}, lora_B {tuple(b.shape)}, config r={rank}"))
                continue
            alpha = self._pattern(self.adapter_config.get("alpha_pattern"), path,
                                  self.adapter_config.get("lora_alpha", rank))
            scale = alpha / math.sqrt(rank) if self.adapter_config.get("use_rslora") else alpha / rank
            stored = self.base.tensor_shape(target)
            fan_in_fan_out = bool(self.adapter_config.get("fan_in_fan_out"))
            expect = (stored[1], stored[0]) if fan_in_fan_out else tuple(stored)
            if (b.shape[0], a.shape[1]) != expect:
                raise LmscopeError(
                    f"adapter does not match base {self.base.spec}: {path} is {tuple(expect)} in the base "
                    f"but the adapter's update is {(b.shape[0], a.shape[1])}"
                )
            out[target] = (a, b, float(scale))
        if wrong:
            raise LmscopeError(f"adapter {self.path}: the weights of {len(wrong)} of {len(modules)} modules disagree "
                               f"with adapter_config.json (first: {wrong[0][0]}: {wrong[0][1]})")
        return out

    @staticmethod
    def _pattern(pattern: dict | None, name: str, default):
        for key, val in (pattern or {}).items():
            if name == key or re.fullmatch(rf"(.*\.)?({key})", name):
                return val
        return default

    def tensor_names(self) -> list[str]:
        return self.base.tensor_names()

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.base.tensor_shape(name)

    @property
    def family(self) -> str | None:
        return self.base.family

    def read_tensor(self, name: str) -> torch.Tensor:
        w = self.base.read_tensor(name)
        if name not in self._deltas:
            return w
        a, b, scale = self._deltas[name]
        delta = scale * (b @ a)
        if self.adapter_config.get("fan_in_fan_out"):
            delta = delta.t()
        return w.float() + delta  # merged in float32, whatever the stored dtype

    def targeted(self) -> list[str]:
        return sorted(self._deltas)

    @property
    def lm_head(self) -> str | None:
        if self.meta.get("task") == "classification":
            return None  # a classifier's adapter (its head is a label layer)
        return self.base.lm_head

    def load_model(self, task: str | None = None, **kwargs):
        from peft import PeftModel

        if task is None and self.meta.get("task") == "classification":
            labels = self.meta.get("labels") or []
            task = "seq-cls"
            kwargs.setdefault("num_labels", len(labels))
            kwargs.setdefault("id2label", dict(enumerate(labels)))
            kwargs.setdefault("label2id", {lab: i for i, lab in enumerate(labels)})
        elif task is None and self.meta.get("task") == "lm":
            task = "causal-lm"
        model = self.base.load_model(task, **kwargs)
        try:
            model = PeftModel.from_pretrained(model, str(self.path))
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LmscopeError(f"PEFT cannot load the adapter {self.spec} on {self.base.spec}: {first}") from None
        return model.merge_and_unload()

    def load_tokenizer(self):
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(self.path))
        except (OSError, ValueError):
            return self.base.load_tokenizer()
