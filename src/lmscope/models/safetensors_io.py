"""Minimal, memory-tight safetensors reading: one tensor at a time, header validated up front.

Reading uses plain ``seek`` + ``read`` (no memory map), so the resident memory of a scan over a
multi-GB checkpoint stays at the size of the tensor being processed. Writing goes through the
``safetensors`` library.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch

from lmscope.errors import LmscopeError

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _name, _attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _attr):
        _DTYPES[_name] = getattr(torch, _attr)

_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsFile:
    """Validated header of one .safetensors file; ``read(name)`` loads a single tensor."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise LmscopeError(f"missing weights file: {self.path}")
        size = self.path.stat().st_size
        with open(self.path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise LmscopeError(f"corrupt safetensors file (truncated header): {self.path}")
            (hlen,) = struct.unpack("<Q", raw)
            if hlen > _MAX_HEADER or 8 + hlen > size:
                raise LmscopeError(f"corrupt safetensors file (bad header length): {self.path}")
            try:
                header = json.loads(f.read(hlen).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise LmscopeError(f"corrupt safetensors file (unreadable header): {self.path}") from None
        if not isinstance(header, dict):
            raise LmscopeError(f"corrupt safetensors file (header is not a mapping): {self.path}")
        self.metadata = header.pop("__metadata__", None) or {}
        self.data_start = 8 + hlen
        self.entries: dict[str, dict] = {}
        for name, info in header.items():
            try:
                dtype, shape, (start, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise LmscopeError(f"corrupt safetensors file (bad entry {name!r}): {self.path}") from None
            if dtype not in _DTYPES:
                raise LmscopeError(f"unsupported dtype {dtype} for {name!r} in {self.path}")
            if self.data_start + end > size:
                raise LmscopeError(
                    f"truncated safetensors file: {self.path} ends before tensor {name!r} "
                    f"({size} bytes, needs {self.data_start + end})"
                )
            n = 1
            for d in shape:
                n *= d
            if end - start != n * torch.empty((), dtype=_DTYPES[dtype]).element_size():
                raise LmscopeError(f"corrupt safetensors file (size mismatch for {name!r}): {self.path}")
            self.entries[name] = {"dtype": dtype, "shape": tuple(shape), "start": start, "end": end}

    def keys(self):
        return self.entries.keys()

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name]["shape"]

    def dtype(self, name: str) -> torch.dtype:
        return _DTYPES[self.entries[name]["dtype"]]

    def read(self, name: str) -> torch.Tensor:
        e = self.entries[name]
        nbytes = e["end"] - e["start"]
        dtype = _DTYPES[e["dtype"]]
        if nbytes == 0:
            return torch.empty(e["shape"], dtype=dtype)
        buf = torch.empty(nbytes, dtype=torch.uint8)  # not zero-filled: every byte is read into it
        with open(self.path, "rb") as f:
            f.seek(self.data_start + e["start"])
            got = f.readinto(memoryview(buf.numpy()))
        if got != nbytes:
            raise LmscopeError(f"truncated safetensors file: {self.path} (tensor {name!r})")
        return buf.view(dtype).reshape(e["shape"])
