"""Low-rank linear layers: store a rank-k matrix as two thin factors, so memory really shrinks.

A checkpoint written by ``lmscope laser apply --factored`` keeps each reduced matrix ``W`` (out x in,
rank k) as ``<module>.down.weight`` (k x in) and ``<module>.up.weight`` (out x k), with the bias,
if any, under ``<module>.bias``. Its ``lmscope_edit.json`` lists the factored modules; loading such
a folder with :func:`load_factored` (or ``open_model(path).load_model()``) builds the model without
allocating the dense matrices, swaps in :class:`LowRankLinear` modules, and loads the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lmscope.errors import LmscopeError

NOTE_FILE = "lmscope_edit.json"


class LowRankLinear(torch.nn.Module):
    """``y = up(down(x)) + bias``: a drop-in for ``nn.Linear`` (or GPT-2's ``Conv1D``) of rank ``rank``."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.down = torch.nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)
        self.up = torch.nn.Linear(rank, out_features, bias=False, device=device, dtype=dtype)
        if bias:
            self.bias = torch.nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_factors(cls, up: torch.Tensor, down: torch.Tensor, bias: torch.Tensor | None = None) -> LowRankLinear:
        mod = cls(down.shape[1], up.shape[0], down.shape[0], bias=bias is not None, dtype=up.dtype)
        with torch.no_grad():
            mod.up.weight.copy_(up)
            mod.down.weight.copy_(down)
            if bias is not None:
                mod.bias.copy_(bias)
        return mod

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.down(x))
        return y + self.bias if self.bias is not None else y

    @property
    def weight(self) -> torch.Tensor:
        """The dense (out, in) matrix, computed on demand (for code that inspects ``.weight``)."""
        return self.up.weight @ self.down.weight

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, " \
               f"bias={self.bias is not None}"


def factors(U: torch.Tensor, S: torch.Tensor, Vh: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(up, down) with ``up @ down == U_k diag(S_k) Vh_k``; the singular values are split evenly."""
    r = S[:k].sqrt()
    return (U[:, :k] * r).contiguous(), (r[:, None] * Vh[:k]).contiguous()


def read_note(path: str | Path) -> dict:
    p = Path(path) / NOTE_FILE
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError:  # malformed JSON or invalid UTF-8
        raise LmscopeError(f"corrupt {p}") from None


def factored_modules(path: str | Path) -> dict[str, dict]:
    """``{module path: {"in", "out", "rank", "bias", "transposed"}}`` of a factored checkpoint (or {})."""
    fac = read_note(path).get("factored") or {}
    if not isinstance(fac, dict):
        raise LmscopeError(f"corrupt {Path(path) / NOTE_FILE}: 'factored' must be an object")
    return fac


def match_name(names, name: str) -> str | None:
    """``name`` itself if in ``names``, else the one entry ending in ``.name`` (checkpoints saved from a
    bare model lack the task model's prefix, e.g. ``model.`` or ``transformer.``), else None."""
    if name in names:
        return name
    hits = [n for n in names if n.endswith("." + name)]
    return hits[0] if len(hits) == 1 else None


def _resolve(model, name: str) -> str:
    hit = match_name(dict(model.named_modules()), name)
    if hit is None:
        raise LmscopeError(f"cannot find module {name} in the {type(model).__name__}")
    return hit


def _set_module(model, path: str, module: torch.nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def load_factored(path: str | Path, model_cls, state: dict[str, torch.Tensor], dtype=torch.float32):
    """Build ``model_cls`` from ``path``'s config with factored modules in place, then load ``state``.

    The dense matrices are never allocated: parameters start on the meta device and are assigned
    from ``state`` (our reader's tensors), then tied weights are re-tied.
    """
    from accelerate import init_empty_weights
    from transformers import AutoConfig

    fac = factored_modules(path)
    config = AutoConfig.from_pretrained(str(path))
    with init_empty_weights(include_buffers=False):
        model = model_cls.from_config(config, dtype=dtype)
    for name, info in fac.items():
        full = _resolve(model, name)
        with torch.device("meta"):
            mod = LowRankLinear(int(info["in"]), int(info["out"]), int(info["rank"]), bias=bool(info.get("bias")),
                                dtype=dtype)
        _set_module(model, full, mod)
    expected = dict(model.state_dict())
    sd = {}
    for name, t in state.items():
        key = match_name(expected, name)
        if key is not None:
            sd[key] = t.to(dtype)
    model.load_state_dict(sd, strict=False, assign=True)
    model.tie_weights()
    still = [n for n, p in model.named_parameters() if p.is_meta]
    if still:
        raise LmscopeError(f"factored checkpoint {path} lacks weights for {', '.join(sorted(still)[:3])}"
                           f"{' ...' if len(still) > 3 else ''}")
    return model.eval()
