"""A model already in memory (a torch module) presented as a model source.

>>> model = open_model("minilm-l6").load_model()
>>> src = ModuleSource(model)             # its matrices, by (layer, role), without touching the disk
>>> w = src.load(src.matrices(roles=["q"])[0])

The matrices are the module's own parameters (detached, on the CPU, as float32), so analyses of a
model that is already loaded skip reading and decoding its files.
"""

from __future__ import annotations

import dataclasses

import torch

from lmscope.errors import LmscopeError
from lmscope.models.sources import ModelSource


class ModuleSource(ModelSource):
    """The weights of a loaded ``torch.nn.Module`` (a transformers model or lmscope's small transformer)."""

    kind = "module"

    def __init__(self, module: torch.nn.Module, spec: str | None = None):
        if not isinstance(module, torch.nn.Module):
            raise LmscopeError(f"ModuleSource needs a torch module, not {type(module).__name__}")
        super().__init__(spec or type(module).__name__, _config_dict(getattr(module, "config", None)))
        self.module = module
        self._tensors = dict(module.state_dict(keep_vars=True))

    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._tensors[name].shape)

    def read_tensor(self, name: str) -> torch.Tensor:
        if name not in self._tensors:
            raise LmscopeError(f"no tensor {name} in {self.spec}")
        return self._tensors[name].detach().cpu()

    def load_model(self, task: str | None = None, **kwargs):
        return self.module

    def load_tokenizer(self):
        raise LmscopeError(f"{self.spec} is a model in memory: it has no tokenizer files")


def _config_dict(config) -> dict:
    if config is None:
        return {}
    if hasattr(config, "hf_dict"):  # lmscope's small transformer: what its config.json would hold
        return dict(config.hf_dict())
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return dict(vars(config)) if hasattr(config, "__dict__") else {}
