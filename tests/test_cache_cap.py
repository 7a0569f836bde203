"""The size cap of the SVD and LASER-search caches: sizes, least-recently-used pruning with planted
entries of known sizes and use order, the automatic prune after a new entry, and `lmscope cache prune`."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

from lmscope import cache as cache_mod
from lmscope.cache import DEFAULT_MAX_SIZE, cache_entries, mark_used, max_size, parse_size, prune
from lmscope.cli import main
from lmscope.errors import LmscopeError
from lmscope.spectral.svd import SVDCache, content_key


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LMSCOPE_CACHE_MAX_SIZE", raising=False)
    return tmp_path / "cache"


@pytest.mark.parametrize("text, expected", [
    ("500MB", 500 * 10**6), ("2GB", 2 * 10**9), ("1.5G", 1_500_000_000), ("2 GiB", 2 * 2**30), ("1024", 1024),
    ("0", 0), (".5k", 500), ("700B", 700), ("3mib", 3 * 2**20), ("1T", 10**12), (" 10 kb ", 10_000), (42, 42),
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1GB", "2XB", "nan", "1e9", "1,5G", "GB", "1.2.3G", "inf"])
def test_bad_sizes(text):
    with pytest.raises(LmscopeError, match="--max-size must be a size such as 500MB, 2GB or 1.5G"):
        parse_size(text)


def test_default_cap_and_its_variable(monkeypatch):
    assert max_size() == DEFAULT_MAX_SIZE == 5 * 10**9
    monkeypatch.setenv("LMSCOPE_CACHE_MAX_SIZE", "1.5G")
    assert max_size() == 1_500_000_000
    monkeypatch.setenv("LMSCOPE_CACHE_MAX_SIZE", "none")
    assert max_size() is None
    monkeypatch.setenv("LMSCOPE_CACHE_MAX_SIZE", "lots")
    with pytest.raises(LmscopeError, match="LMSCOPE_CACHE_MAX_SIZE must be a size"):
        max_size()


class _Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _plant(root, monkeypatch):
    """Entries of known sizes written at t = 1000..1004, then A used at 2000 and C at 2001 (through
    mark_used on a fake clock). Least recently used first: B, D, L, A, C. B's access time is made the
    newest of all: access times must not count."""
    files = {"A": root / "svd" / "aa" / "a.safetensors", "B": root / "svd" / "bb" / "b-s.npy",
             "C": root / "svd" / "cc" / "c.safetensors", "D": root / "svd" / "dd" / "d.safetensors",
             "L": root / "laser-search" / "l.jsonl"}
    sizes = {"A": 100, "B": 200, "C": 300, "D": 400, "L": 50}
    for i, (name, path) in enumerate(files.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * sizes[name])
        os.utime(path, (1000 + i, 1000 + i))
    clock = _Clock(2000.0)
    monkeypatch.setattr(cache_mod.time, "time", clock)
    mark_used(files["A"])
    clock.t = 2001.0
    mark_used(files["C"])
    os.utime(files["B"], (5000, 1001))  # read most recently by something else: irrelevant
    others = [root / "models" / "m" / "model.safetensors", root / "lm" / "lm.sqlite"]
    for p in others:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"y" * 10_000)
        os.utime(p, (1, 1))  # the oldest files of all, but not in the capped parts
    return files, others


def test_prune_removes_least_recently_used_first(_own_cache, monkeypatch):
    files, others = _plant(_own_cache, monkeypatch)
    order = [e["path"] for e in cache_entries()]
    assert order == [str(files[n]) for n in "BDLAC"]
    assert sum(e["bytes"] for e in cache_entries()) == 1050
    res = prune(1050)  # fits: nothing removed
    assert res["removed"] == [] and res["bytes_after"] == 1050
    res = prune(700)  # B (200) and D (400) go: 1050 -> 450
    assert [e["path"] for e in res["removed"]] == [str(files["B"]), str(files["D"])]
    assert res["bytes_before"] == 1050 and res["bytes_after"] == 450 and res["removed_bytes"] == 600
    assert {n for n, p in files.items() if p.exists()} == {"A", "C", "L"}
    res = prune(350)  # then L (50) and A (100, with its stamp): 450 -> 300
    assert [e["path"] for e in res["removed"]] == [str(files["L"]), str(files["A"])]
    assert not (files["A"].parent / "a.safetensors.used").exists()  # the stamp went with its entry
    assert files["C"].exists() and (files["C"].parent / "c.safetensors.used").exists()
    prune(0)
    assert not any(p.exists() for p in files.values()) and cache_entries() == []
    assert all(p.stat().st_size == 10_000 for p in others)  # models and LM answers are managed apart


def test_prune_keeps_the_entry_just_written_and_drops_orphan_stamps(_own_cache, monkeypatch):
    files, _ = _plant(_own_cache, monkeypatch)
    res = prune(0, keep=(files["B"],))
    assert files["B"].exists() and res["bytes_after"] == 200
    orphan = _own_cache / "svd" / "zz" / "gone.safetensors.used"
    orphan.parent.mkdir(parents=True)
    orphan.touch()
    prune(10**9)
    assert not orphan.exists() and files["B"].exists()


def test_svd_cache_hits_record_use_and_a_new_entry_prunes_the_least_recently_used(_own_cache, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    w1, w2, w3 = (torch.randn(24, 16, generator=gen) for _ in range(3))
    cache = SVDCache()
    path = {i: cache._paths(content_key(w))[0] for i, w in ((1, w1), (2, w2), (3, w3))}
    cache.full(w1)
    size = path[1].stat().st_size
    # room for two entries and a half: the third new one makes the least recently used go
    monkeypatch.setenv("LMSCOPE_CACHE_MAX_SIZE", str(int(2.5 * size)))
    time.sleep(0.05)
    cache.full(w2)
    time.sleep(0.05)
    cache.full(w1)  # a hit: w1 is now used more recently than w2
    assert cache.hits == 1 and (path[1].parent / (path[1].name + ".used")).is_file()
    time.sleep(0.05)
    cache.full(w3)
    assert path[1].exists() and path[3].exists() and not path[2].exists()
    assert sum(e["bytes"] for e in cache_entries()) <= 2.5 * size
    # the values of a pruned matrix are simply computed again
    assert torch.allclose(cache.full(w2).S, torch.linalg.svdvals(w2), atol=1e-5)


def test_a_private_svd_folder_is_never_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE_MAX_SIZE", "1")
    cache = SVDCache(tmp_path / "mine")
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        cache.full(torch.randn(8, 8, generator=gen))
    assert len(list((tmp_path / "mine").rglob("*.safetensors"))) == 3


def test_cli_cache_prune(_own_cache, monkeypatch, capsys):
    files, _ = _plant(_own_cache, monkeypatch)
    assert main(["cache", "prune", "--max-size", "700B", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["max_bytes"] == 700 and doc["bytes_after"] == 450 and len(doc["removed"]) == 2
    assert main(["cache", "prune", "--max-size", "1GB"]) == 0
    assert capsys.readouterr().out.startswith("nothing to prune: svd and laser-search hold 450 bytes (max 1.00 GB)")
    assert main(["cache", "prune", "--max-size", "0"]) == 0
    assert "pruned 3 entries" in capsys.readouterr().out and cache_entries() == []
    assert main(["cache"]) == 0
    assert "cap on svd + laser-search: 5 GB, least recently used entries pruned first" in capsys.readouterr().out
    for argv, msg in ((["cache", "prune", "--max-size", "2XB"], "--max-size must be a size such as 500MB"),
                      (["cache", "info", "--max-size", "1GB"], "--max-size goes with `lmscope cache prune`")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err and err.startswith("lmscope: error:")


def test_cli_prune_that_cannot_delete_says_so(_own_cache, monkeypatch, capsys):
    """A cache lmscope may not write to: prune names the entry it could not delete, exit 2."""
    files, _ = _plant(_own_cache, monkeypatch)
    real_unlink = type(files["B"]).unlink

    def refuse(self, missing_ok=False):
        if self.name == "b-s.npy":
            raise PermissionError(13, "Permission denied")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(type(files["B"]), "unlink", refuse)
    assert main(["cache", "prune", "--max-size", "900B"]) == 0  # D went instead of B: it fits
    assert files["B"].exists() and not files["D"].exists() and "pruned 1 entries" in capsys.readouterr().out
    assert main(["cache", "prune", "--max-size", "100B"]) == 2  # only B is left, and it stays
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"could not delete 1 cache entries ({files['B']}: Permission denied)" in err
    assert "still hold 200 bytes, more than 100 bytes" in err
