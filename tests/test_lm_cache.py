"""The persistent LM cache: keys, hits and misses, offline mode, damaged files, several processes at once.

A fake backend (no model) makes its answers from the request itself and counts what it was asked, so
every test can tell a cache hit (the backend not called) from a miss.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lmscope.cli import main
from lmscope.errors import LmscopeError
from lmscope.lm import CachedLM, ContinuationScore, LanguageModel, cache_info, clear_cache, prune_cache

SRC = Path(__file__).resolve().parents[1] / "src"


def _num(*parts) -> float:
    h = hashlib.sha256(json.dumps(parts).encode()).digest()
    return -int.from_bytes(h[:4], "little") / 2**32 * 10


class FakeLM(LanguageModel):
    """Deterministic answers derived from the request; records every call."""

    def __init__(self, name: str = "fake", fail_after: int | None = None):
        self.spec = f"fake:{name}"
        self.name = name
        self.calls: list[tuple] = []
        self.fail_after = fail_after
        self.closed = False

    def identity(self) -> dict:
        return {"backend": "fake", "name": self.name}

    def _tick(self):
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise KeyboardInterrupt  # as if the run were interrupted mid-way

    def generate(self, prompts, *, max_tokens=64, temperature=0.0, top_p=1.0, n=1, stop=None, seed=0):
        self.calls.append(("generate", list(prompts)))
        self._tick()
        return [[f"{json.dumps(p)}|{max_tokens}|{temperature}|{top_p}|{seed}|{j}" for j in range(n)] for p in prompts]

    def score(self, requests):
        self.calls.append(("score", [(p, list(c)) for p, c in requests]))
        self._tick()
        return [[ContinuationScore(c, _num(self.name, p, c), [_num(self.name, p, c)], [c]) for c in conts]
                for p, conts in requests]

    def close(self):
        self.closed = True


@pytest.fixture
def db(tmp_path):
    return tmp_path / "lm.sqlite"


# ------------------------------------------------------------------------------------------ hits and misses
def test_score_hits_are_free_and_partial_overlaps_compute_only_what_is_new(db):
    fake = FakeLM()
    lm = CachedLM(fake, db)
    first = lm.score([("A kitchen has a", [" sink", " oven"]), ("A bathroom has a", [" toilet"])])
    assert len(fake.calls) == 1 and lm.stats.to_dict() == {"hits": 0, "misses": 3}
    again = lm.score([("A kitchen has a", [" sink", " oven"]), ("A bathroom has a", [" toilet"])])
    assert again == first and len(fake.calls) == 1 and lm.stats.hits == 3
    # an overlapping request: only the new continuation reaches the backend, grouped under its prompt
    mixed = lm.score([("A kitchen has a", [" oven", " bed", " sink"])])
    assert fake.calls[-1] == ("score", [("A kitchen has a", [" bed"])])
    assert mixed[0][0] == first[0][1] and mixed[0][2] == first[0][0]
    assert mixed[0][1] == ContinuationScore(" bed", _num("fake", "A kitchen has a", " bed"),
                                            [_num("fake", "A kitchen has a", " bed")], [" bed"])
    # duplicates inside one call are computed once
    lm.score([("x", [" a", " a"]), ("x", [" a"])])
    assert fake.calls[-1] == ("score", [("x", [" a"])])
    # a new process (a new wrapper) reads the same file: values are exact (floats round-trip)
    fake2 = FakeLM()
    lm2 = CachedLM(fake2, db)
    assert lm2.score([("A kitchen has a", [" sink", " oven"])]) == [first[0]]
    assert fake2.calls == []
    lm.close()
    assert fake.closed


def test_generate_entries_hold_n_samples_and_keys_cover_every_parameter(db):
    fake = FakeLM()
    lm = CachedLM(fake, db)
    chat = [{"role": "user", "content": "hi"}]
    a = lm.generate(["p1", chat], temperature=0.7, n=3, seed=1, stop=["\n", "."])
    assert len(fake.calls) == 1 and all(len(x) == 3 for x in a)
    assert lm.generate(["p1", chat], temperature=0.7, n=3, seed=1, stop=[".", "\n"]) == a  # stop order is moot
    assert len(fake.calls) == 1
    for change in ({"seed": 2}, {"n": 2}, {"temperature": 0.8}, {"top_p": 0.9}, {"max_tokens": 10}, {"stop": ["."]}):
        kw = {"temperature": 0.7, "n": 3, "seed": 1, "stop": ["\n", "."], **change}
        before = len(fake.calls)
        lm.generate(["p1"], **kw)
        assert len(fake.calls) == before + 1, change
    # greedy decoding ignores seed and top-p, so they are not part of its key
    g = lm.generate(["p1"], seed=5, top_p=0.5)
    calls = len(fake.calls)
    assert lm.generate(["p1"], seed=9) == g and len(fake.calls) == calls
    # a different model (identity) never shares entries
    other = CachedLM(FakeLM("other"), db)
    other.generate(["p1"], seed=5)
    assert len(other.backend.calls) == 1


def test_results_are_written_per_batch_so_an_interrupted_run_keeps_them(db):
    reqs = [(f"prompt {i}", [" a", " b"]) for i in range(5)]
    fake = FakeLM(fail_after=1)  # the second backend call is interrupted
    lm = CachedLM(fake, db, batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        lm.score(reqs)
    assert len(fake.calls) == 2
    fresh = FakeLM()
    lm2 = CachedLM(fresh, db, batch_size=4)
    lm2.score(reqs)
    done_first = {p for p, _ in fake.calls[0][1]}
    assert len(done_first) == 2 and lm2.stats.hits == 4  # the first batch (2 prompts x 2) was kept
    assert {p for call in fresh.calls for p, _ in call[1]} == {p for p, _ in reqs} - done_first


def test_offline_mode(db):
    lm = CachedLM(FakeLM(), db)
    lm.score([("p", [" a"])])
    lm.generate(["q"], max_tokens=5)
    fake = FakeLM()
    off = CachedLM(fake, db, offline=True)
    assert off.score([("p", [" a"])])[0][0].text == " a"
    assert off.generate(["q"], max_tokens=5) == lm.generate(["q"], max_tokens=5)
    with pytest.raises(LmscopeError, match=r"not in the LM cache \(offline\): 1 of 2 scores for fake:fake"):
        off.score([("p", [" a", " b"])])
    with pytest.raises(LmscopeError, match=r"not in the LM cache \(offline\): 1 of 1 generations .* prompt 'q'"):
        off.generate(["q"], max_tokens=6)
    assert fake.calls == []


def test_bad_requests_are_rejected_before_the_cache(db):
    lm = CachedLM(FakeLM(), db)
    with pytest.raises(LmscopeError, match="request 1: the list of continuations is empty"):
        lm.score([("p", [])])
    with pytest.raises(LmscopeError, match="n must be an integer >= 1"):
        lm.generate(["p"], n=0)
    assert lm.backend.calls == []


# ------------------------------------------------------------------------------------------ damaged files
def test_a_damaged_or_foreign_file_is_an_error_and_is_kept(db, tmp_path):
    db.write_bytes(b"this is not SQLite" * 50)
    with pytest.raises(LmscopeError, match=rf"the LM cache {db} is not a readable SQLite database .* "
                                           rf"`lmscope lm cache clear --lm-cache {db}`"):
        CachedLM(FakeLM(), db)
    with pytest.raises(LmscopeError, match="not a readable SQLite database"):
        cache_info(db)
    assert db.read_bytes() == b"this is not SQLite" * 50
    assert clear_cache(db)["removed"] and not db.exists()
    CachedLM(FakeLM(), db).score([("p", [" a"])])  # a fresh cache in its place

    foreign = tmp_path / "other.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(LmscopeError, match="not an lmscope LM cache"):
        CachedLM(FakeLM(), foreign)
    # a cache damaged after it was opened (a truncated page) reads as an error, not as misses
    good = tmp_path / "good.sqlite"
    lm = CachedLM(FakeLM(), good)
    lm.score([(f"p{i}", [" a" * 200]) for i in range(200)])
    lm.close()
    raw = bytearray(good.read_bytes())
    raw[100:4096] = b"\xff" * (4096 - 100)
    good.write_bytes(bytes(raw))
    with pytest.raises(LmscopeError, match="is not a readable SQLite database"):
        CachedLM(FakeLM(), good).score([("p1", [" a" * 200])])


# ------------------------------------------------------------------------------------------ several processes
ROUNDS = 60
WORKER = textwrap.dedent("""
    import sys
    import time
    sys.path.insert(0, {src!r})
    from lmscope.lm import CachedLM, ContinuationScore, LanguageModel

    class Slow(LanguageModel):
        spec = "fake:shared"
        def identity(self):
            return {{"backend": "fake", "name": "shared"}}
        def generate(self, prompts, **kw):
            return [["g:" + p] * kw.get("n", 1) for p in prompts]
        def score(self, requests):
            return [[ContinuationScore(c, -float(len(p) + len(c)), [-float(len(p) + len(c))], [c]) for c in cs]
                    for p, cs in requests]

    worker = int(sys.argv[1])
    lm = CachedLM(Slow(), sys.argv[2], batch_size=5)
    # a barrier: start writing only when every worker has opened the cache, so they write together
    # even when the machine is too busy to start them at once
    open(sys.argv[3] + f"/ready-{{worker}}", "w").close()
    t0 = time.time()
    while len(__import__("os").listdir(sys.argv[3])) < 4:
        time.sleep(0.005)
    for round in range({rounds}):
        # every worker writes its own prompts and a share of everyone's
        lm.score([(f"w{{worker}} r{{round}}", [" a", " b"]), (f"shared r{{round}}", [" x", " y"])])
        lm.generate([f"w{{worker}} g{{round}}", f"shared g{{round}}"], max_tokens=3)
    print(t0, time.time(), lm.stats.hits, lm.stats.misses)
""")


def test_several_processes_share_one_cache(db, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(src=str(SRC), rounds=ROUNDS))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, str(script), str(w), str(db), str(barrier)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    spans = [tuple(map(float, out.split()[:2])) for out, _ in outs]
    assert max(a for a, _ in spans) < min(b for _, b in spans)  # all four were writing at the same time
    info = cache_info(db)
    # 4 workers x rounds x (2 own scores + 1 own generation) + rounds x (2 shared scores + 1 shared generation)
    assert info["entries"] == 4 * ROUNDS * 3 + ROUNDS * 3
    fake = FakeLM()
    lm = CachedLM(fake, db, offline=True)
    lm.backend.identity = lambda: {"backend": "fake", "name": "shared"}
    assert lm.score([("shared r7", [" x"])])[0][0].logprob == -float(len("shared r7") + 2)
    assert lm.generate([f"w3 g{ROUNDS - 1}"], max_tokens=3) == [[f"g:w3 g{ROUNDS - 1}"]]
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ------------------------------------------------------------------------------------------ info, prune, clear
def test_info_prune_and_clear(db):
    a = CachedLM(FakeLM("a"), db)
    b = CachedLM(FakeLM("b"), db)
    a.score([("p", [" 1", " 2", " 3"])])
    a.generate(["q"])
    b.score([("p", [" 1"])])
    info = cache_info(db)
    assert info["entries"] == 5 and info["bytes"] > 0
    assert [(r["model"], r["kind"], r["entries"]) for r in info["models"]] == \
        [("fake:a", "generate", 1), ("fake:a", "score", 3), ("fake:b", "score", 1)]
    assert prune_cache(db, older_than_days=1)["deleted"] == 0
    with pytest.raises(LmscopeError, match="prune needs a model or an age"):
        prune_cache(db)
    assert prune_cache(db, model="fake:b")["deleted"] == 1
    assert cache_info(db)["entries"] == 4
    # the age: backdate one entry
    with sqlite3.connect(db) as con:
        con.execute("UPDATE entries SET created = ? WHERE kind = 'generate'", (time.time() - 3 * 86400,))
    assert prune_cache(db, model="fake:*", older_than_days=2)["deleted"] == 1
    assert cache_info(db)["entries"] == 3
    a.close()
    b.close()
    res = clear_cache(db)
    assert res["removed"] and res["bytes"] > 0 and not db.exists()
    assert cache_info(db) == {"path": str(db), "exists": False, "entries": 0, "bytes": 0, "models": []}
    assert clear_cache(db)["removed"] is False


def test_cli_cache_commands(db, capsys):
    lm = CachedLM(FakeLM("a"), db)
    lm.score([("p", [" 1", " 2"])])
    lm.close()

    def run(*argv):
        capsys.readouterr()
        rc = main([str(x) for x in argv])
        out, err = capsys.readouterr()
        return rc, out, err

    rc, out, err = run("lm", "cache", "--lm-cache", db, "--json")
    assert rc == 0 and json.loads(out)["entries"] == 2
    rc, out, err = run("lm", "cache", "info", "--lm-cache", db)
    assert rc == 0 and "fake:a  score: 2 entries" in out
    rc, out, err = run("lm", "cache", "prune", "--lm-cache", db)
    assert rc == 2 and err.strip().count("\n") == 0 and "prune needs a model or an age" in err
    rc, out, err = run("lm", "cache", "prune", "--model", "fake:a", "--lm-cache", db, "--json")
    assert rc == 0 and json.loads(out)["deleted"] == 2
    rc, out, err = run("lm", "cache", "clear", "--model", "x", "--lm-cache", db)
    assert rc == 2 and "use prune" in err
    db.write_text("garbage")
    rc, out, err = run("lm", "cache", "info", "--lm-cache", db)
    assert rc == 2 and err.strip().count("\n") == 0 and "lmscope lm cache clear" in err
    rc, out, err = run("lm", "cache", "clear", "--lm-cache", db)
    assert rc == 0 and "removed" in out and not db.exists()
