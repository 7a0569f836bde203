"""The configuration of a :class:`lmscope.pushdown.model.PushdownLM`, and reading it from a saved folder."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lmscope.errors import LmscopeError, check_int, check_number
from lmscope.pushdown.tape import DEPTH_CAP

MODEL_TYPE = "lmscope-pushdown"
ARCHITECTURE = "PushdownLM"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
NORMS = ("pre", "post")


@dataclass
class PushdownConfig:
    """Sizes and choices of a :class:`PushdownLM`; checked on construction (LmscopeError).

    ``pushdown_layers``: the indices of the layers that read the tape; None means every layer, the
    empty tuple the plain relative-position baseline (no tape, no attachment head)."""

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    pushdown_layers: tuple[int, ...] | None = None
    depth_cap: int = DEPTH_CAP
    max_relative: int = 64
    dropout: float = 0.0
    norm: str = "pre"
    tie_embeddings: bool = True
    pad_id: int = 0

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "depth_cap", "max_relative"):
            check_int(f"pushdown model config: {name}", getattr(self, name), minimum=1)
        check_int("pushdown model config: pad_id", self.pad_id, 0, self.vocab_size - 1)
        if self.d_model % self.n_heads:
            raise LmscopeError(f"pushdown model config: d_model {self.d_model} is not divisible by "
                               f"n_heads {self.n_heads}")
        if self.norm not in NORMS:
            raise LmscopeError(f"pushdown model config: norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if not isinstance(self.tie_embeddings, bool):
            raise LmscopeError(f"pushdown model config: tie_embeddings must be true or false, "
                               f"got {self.tie_embeddings!r}")
        self.dropout = check_number("pushdown model config: dropout", self.dropout, minimum=0.0, below=1.0)
        layers = self.pushdown_layers
        if layers is None:
            layers = range(self.n_layers)
        elif isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise LmscopeError(f"pushdown model config: pushdown_layers must be a list of layer indices, "
                               f"got {layers!r}")
        layers = [check_int("pushdown model config: a pushdown layer", i, 0, self.n_layers - 1) for i in layers]
        if len(set(layers)) != len(layers):
            raise LmscopeError(f"pushdown model config: pushdown_layers repeats a layer: {layers}")
        self.pushdown_layers = tuple(sorted(layers))

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def has_tape(self) -> bool:
        """Whether any layer reads the tape (and the model has an attachment head)."""
        return bool(self.pushdown_layers)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pushdown_layers"] = list(self.pushdown_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PushdownConfig:
        """Build from a dict; keys that are not config fields (e.g. ``model_type``) are ignored."""
        if not isinstance(d, dict):
            raise LmscopeError("pushdown model config must be a JSON object")
        if "vocab_size" not in d:
            raise LmscopeError("pushdown model config lacks vocab_size")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def hf_dict(self) -> dict:
        return {"model_type": MODEL_TYPE, "architectures": [ARCHITECTURE], **self.to_dict(),
                "hidden_size": self.d_model, "num_hidden_layers": self.n_layers,
                "num_attention_heads": self.n_heads, "intermediate_size": self.d_ff, "is_decoder": True}


def read_config(path: str | os.PathLike) -> PushdownConfig:
    """The :class:`PushdownConfig` of a saved folder; LmscopeError if missing, corrupt or of another type."""
    path = Path(path)
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise LmscopeError(f"no {CONFIG_FILE} in {path}")
    try:
        d = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LmscopeError(f"corrupt {cfg_path}: {getattr(e, 'msg', str(e))}") from None
    if not isinstance(d, dict) or d.get("model_type") != MODEL_TYPE:
        got = d.get("model_type") if isinstance(d, dict) else None
        raise LmscopeError(f"{path} is not a pushdown model (model_type {got!r}, expected {MODEL_TYPE!r})")
    try:
        return PushdownConfig.from_dict(d)
    except TypeError as e:
        raise LmscopeError(f"corrupt {cfg_path}: {e}") from None
