"""LASER apply: rank reduction of chosen matrices, written as a new checkpoint."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from lmscope.cli import main
from lmscope.errors import LmscopeError
from lmscope.models import open_model
from lmscope.spectral import SVDCache
from lmscope.spectral.laser import Reduction, apply_laser, keep_from_rate, kept_rank, laser_edits


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))


def _hashes(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def test_keep_and_rate():
    assert kept_rank((576, 1536), 0.01) == 5
    assert kept_rank((384, 384), 1.0) == 384
    assert kept_rank((10, 10), 0.001) == 1  # never rank 0
    assert math.isclose(keep_from_rate(9.9), 0.01)
    assert math.isclose(keep_from_rate(0), 1.0)
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(LmscopeError):
            kept_rank((4, 4), bad)
    assert Reduction.parse("27:fc_in:0.01") == Reduction(27, "fc_in", 0.01)
    with pytest.raises(LmscopeError):
        Reduction.parse("27-fc_in")


def test_reduced_matrix_is_the_best_rank_k_approximation(tiny_model_dir):
    src = open_model(tiny_model_dir("llama"))
    w = src.load("1.fc_out")
    edits = laser_edits(src, [Reduction(1, "down", 0.25)], SVDCache(enabled=False))
    k = kept_rank(tuple(w.shape), 0.25)
    assert torch.linalg.matrix_rank(edits["1.fc_out"]).item() == k
    U, S, Vh = torch.linalg.svd(w, full_matrices=False)
    best = (U[:, :k] * S[:k]) @ Vh[:k]
    torch.testing.assert_close(edits["1.fc_out"], best, atol=1e-5, rtol=1e-4)
    # Eckart-Young: the error is the norm of the dropped singular values
    err = torch.linalg.norm(w - edits["1.fc_out"])
    assert math.isclose(err.item(), torch.linalg.norm(S[k:]).item(), rel_tol=1e-4)


def test_apply_writes_a_loadable_checkpoint_and_leaves_the_input(tiny_model_dir, tmp_path, load_tiny_model):
    base = tiny_model_dir("gpt2")  # fused, transposed q/k/v
    before = _hashes(base)
    res = apply_laser(base, [Reduction(0, "k", 0.25), Reduction(1, "fc_in", 0.5)], tmp_path / "out", quiet=True)
    assert _hashes(base) == before
    out = open_model(tmp_path / "out")
    src = open_model(base)
    assert torch.linalg.matrix_rank(out.load("0.k")).item() == res["reductions"][0]["rank"]
    for key in ("0.q", "0.v", "1.q", "0.fc_out"):
        assert torch.equal(out.load(key), src.load(key)), key
    load_tiny_model(tmp_path / "out")  # transformers loads it


def test_bad_reductions(tiny_model_dir, tmp_path):
    src = tiny_model_dir("llama")
    for reds, msg in (([Reduction(7, "q", 0.5)], "layer 7"), ([Reduction(0, "nope", 0.5)], "unknown role"),
                      ([], "no reduction"),
                      ([Reduction(0, "q", 0.5), Reduction(0, "q", 0.1)], "twice")):
        with pytest.raises(LmscopeError, match=msg):
            apply_laser(src, reds, tmp_path / "out", quiet=True)
        assert not (tmp_path / "out").exists()
    for keep in (0.0, 1.5, float("nan")):  # the kept fraction is checked when a reduction is made
        with pytest.raises(LmscopeError, match="keep"):
            Reduction(0, "q", keep)
    with pytest.raises(LmscopeError, match="layer"):
        Reduction(-1, "q", 0.5)


def test_cli_laser_apply(tiny_model_dir, tmp_path, capsys):
    src = tiny_model_dir("llama")
    rc = main(["laser", "apply", str(src), "--layer", "1", "--role", "down", "--rate", "5",
               "--reduce", "0:q:0.1", "--out", str(tmp_path / "o"), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert '"rank"' in out and (tmp_path / "o" / "config.json").is_file()
    rc = main(["laser", "apply", str(src), "--layer", "1", "--role", "down", "--out", str(tmp_path / "p")])
    _, err = capsys.readouterr()
    assert rc == 2 and err.startswith("lmscope: error:") and not (tmp_path / "p").exists()
