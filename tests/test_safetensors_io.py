"""The one-tensor-at-a-time safetensors reader: same tensors as the safetensors library, clear errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from lmscope.errors import LmscopeError
from lmscope.models.safetensors_io import SafetensorsFile


@pytest.fixture
def mixed_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(33, 17, generator=g),
        "f16": torch.randn(5, 7, generator=g).half(),
        "bf16": torch.randn(9, generator=g).bfloat16(),
        "f64": torch.randn(3, 4, 2, generator=g).double(),
        "i64": torch.randint(-10**12, 10**12, (6,), generator=g),
        "u8": torch.randint(0, 256, (11,), generator=g, dtype=torch.uint8),
        "flag": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
        "scalar": torch.tensor(2.5),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, str(path))
    return path


def test_every_tensor_reads_back_bit_for_bit(mixed_file):
    ref = load_file(str(mixed_file))
    f = SafetensorsFile(mixed_file)
    assert set(f.keys()) == set(ref)
    for name, want in ref.items():
        got = f.read(name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert torch.equal(got, want), name
        assert f.shape(name) == tuple(want.shape) and f.dtype(name) == want.dtype


def test_reads_are_independent_buffers(mixed_file):
    f = SafetensorsFile(mixed_file)
    a, b = f.read("f32"), f.read("f32")
    a.zero_()
    assert torch.equal(b, load_file(str(mixed_file))["f32"])


def test_a_file_cut_short_after_opening_is_a_clear_error(mixed_file):
    f = SafetensorsFile(mixed_file)          # header validated against the full file
    data = mixed_file.read_bytes()
    mixed_file.write_bytes(data[: f.data_start + 8])
    with pytest.raises(LmscopeError, match="truncated safetensors file") as e:
        for name in f.keys():
            f.read(name)
    assert "mixed.safetensors" in str(e.value)
