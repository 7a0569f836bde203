"""A persistent cache of LM results in one SQLite file, shared by runs and processes.

:class:`CachedLM` wraps any backend. Each result is one entry whose key is the SHA-256 of the
canonical JSON of what determines it: the kind (``generate`` or ``score``), the backend's
``identity()``, the prompt (text or chat messages), the continuation (scoring) or every generation
parameter. Scores are stored per (prompt, continuation), so requests that overlap a cached one only
compute what is new; generations are stored per (prompt, parameters) holding all ``n`` samples. At
temperature 0 the seed and top-p do not change a greedy completion and are left out of the key.

Only misses reach the backend, in batches; each batch's results are written in one transaction, so
an interrupted run keeps every batch it completed. The file is in WAL mode with a busy timeout, so
several processes can read and write it at once. With ``offline=True`` a miss is an error and the
backend is never called.

The default file is ``lm/lm.sqlite`` in the lmscope cache directory (``$LMSCOPE_CACHE`` or
``~/.cache/lmscope``). :func:`cache_info`, :func:`prune_cache` and :func:`clear_cache` inspect and
trim it (``lmscope lm cache info|prune|clear``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmscope.errors import LmscopeError
from lmscope.lm.base import (
    ContinuationScore,
    LanguageModel,
    Prompt,
    canonical_json,
    check_generate_args,
    check_score_requests,
)

FORMAT = "1"  # bump when the key definition or the stored values change
_BUSY_MS = 60_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    identity TEXT NOT NULL,
    request TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_model ON entries (model, kind);
CREATE INDEX IF NOT EXISTS entries_created ON entries (created);
"""


def default_cache_path() -> Path:
    """``lm/lm.sqlite`` in the lmscope cache directory."""
    from lmscope.cache import cache_dir

    return cache_dir("lm") / "lm.sqlite"


def _clear_hint(path: Path) -> str:
    default = path == default_cache_path()
    return "lmscope lm cache clear" + ("" if default else f" --lm-cache {path}")


def _corrupt(path: Path, err: Exception) -> LmscopeError:
    return LmscopeError(f"the LM cache {path} is not a readable SQLite database ({err}); remove it with "
                        f"`{_clear_hint(path)}`")


def _is_corruption(err: sqlite3.DatabaseError) -> bool:
    msg = str(err).lower()
    return not isinstance(err, sqlite3.OperationalError) or "not a database" in msg or "malformed" in msg


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating when needed) an LM cache file; a non-cache or damaged file is an error, never replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(str(path), timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise LmscopeError(f"cannot open the LM cache {path}: {e}") from None
    try:
        con.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and not {"meta", "entries"} <= tables:
            con.close()
            raise LmscopeError(f"{path} is a SQLite database but not an lmscope LM cache; choose another file")
        _set_wal(con)
        con.execute("PRAGMA synchronous = NORMAL")
        if not tables:  # a new file (another process may be creating it too: IF NOT EXISTS / OR IGNORE)
            con.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('format', ?)", (FORMAT,))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        row = con.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    except sqlite3.DatabaseError as e:
        con.close()
        if _is_corruption(e):
            raise _corrupt(path, e) from None
        raise LmscopeError(f"cannot use the LM cache {path}: {e}") from None
    if row is None or row[0] != FORMAT:
        con.close()
        raise LmscopeError(f"the LM cache {path} has format {row[0] if row else 'unknown'}, this lmscope writes "
                           f"format {FORMAT}; remove it with `{_clear_hint(path)}`")
    return con


def _set_wal(con: sqlite3.Connection) -> None:
    """Switch to WAL (persistent in the file); another process switching at the same moment may hold a lock."""
    deadline = time.monotonic() + _BUSY_MS / 1000
    while True:
        try:
            con.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class CacheStats:
    """``hits``: entries served from the cache; ``misses``: entries the backend computed."""

    hits: int = 0
    misses: int = 0

    def to_dict(self) -> dict:
        return {"hits": self.hits, "misses": self.misses}


def _short(prompt: Prompt, limit: int = 60) -> str:
    text = prompt if isinstance(prompt, str) else " / ".join(f"{m['role']}: {m['content']}" for m in prompt)
    text = text.replace("\n", " ")
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")


class CachedLM(LanguageModel):
    """``backend`` with its results kept in the SQLite file ``path`` (default: :func:`default_cache_path`).

    ``offline=True`` never calls the backend: a miss raises LmscopeError. ``batch_size`` bounds what
    one backend call (and one write transaction) holds: prompts for ``generate``, continuations for
    ``score``. ``stats`` counts hits and misses since the wrapper was made.
    """

    def __init__(self, backend: LanguageModel, path: str | os.PathLike | None = None, offline: bool = False,
                 *, batch_size: int = 64):
        if not isinstance(backend, LanguageModel):
            raise LmscopeError(f"CachedLM wraps a LanguageModel, got {type(backend).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise LmscopeError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.backend = backend
        self.spec = backend.spec
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.offline = bool(offline)
        self.batch_size = batch_size
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._con = _connect(self.path)
        self._ident: dict | None = None
        self._ident_json: str | None = None

    def identity(self) -> dict:
        if self._ident is None:
            self._ident = self.backend.identity()
            self._ident_json = canonical_json(self._ident)
        return dict(self._ident)

    def chat_format(self) -> dict:
        return self.backend.chat_format()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
        self.backend.close()

    # ------------------------------------------------------------------ storage
    def _key(self, kind: str, request: dict) -> tuple[str, str]:
        self.identity()
        req = canonical_json(request)
        full = f'{{"format":{FORMAT},"identity":{self._ident_json},"kind":"{kind}","request":{req}}}'
        return hashlib.sha256(full.encode("utf-8")).hexdigest(), req

    def _db(self) -> sqlite3.Connection:
        if self._con is None:
            raise LmscopeError(f"the LM cache {self.path} is closed")
        return self._con

    def _get(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            con = self._db()
            try:
                for s in range(0, len(uniq), 500):
                    part = uniq[s:s + 500]
                    q = f"SELECT key, value FROM entries WHERE key IN ({','.join('?' * len(part))})"
                    found.update(con.execute(q, part).fetchall())
            except sqlite3.DatabaseError as e:
                raise (_corrupt(self.path, e) if _is_corruption(e) else
                       LmscopeError(f"cannot read the LM cache {self.path}: {e}")) from None
        return found

    def _put(self, kind: str, rows: list[tuple[str, str, str]]) -> None:
        """Write (key, request JSON, value JSON) rows in one transaction."""
        now = time.time()
        with self._lock:
            con = self._db()
            try:
                con.execute("BEGIN IMMEDIATE")
                try:
                    con.executemany(
                        "INSERT OR REPLACE INTO entries (key, kind, model, identity, request, value, created) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(k, kind, self.spec, self._ident_json, req, val, now) for k, req, val in rows])
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as e:
                raise (_corrupt(self.path, e) if _is_corruption(e) else
                       LmscopeError(f"cannot write the LM cache {self.path}: {e}")) from None

    def _offline_miss(self, what: str, missing: int, total: int, example: Prompt) -> LmscopeError:
        return LmscopeError(f"not in the LM cache (offline): {missing} of {total} {what} for {self.spec} are missing, "
                            f"e.g. prompt {_short(example)} (cache {self.path})")

    # ------------------------------------------------------------------ generate
    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, stop: Sequence[str] | None = None,
                 seed: int = 0) -> list[list[str]]:
        prompts, stop = check_generate_args(prompts, max_tokens, temperature, top_p, n, stop, seed)
        greedy = temperature == 0
        params = {"max_tokens": max_tokens, "temperature": float(temperature), "top_p": 1.0 if greedy else float(top_p),
                  "n": n, "stop": sorted(set(stop)), "seed": 0 if greedy else seed}
        keyed = [self._key("generate", {"prompt": p, **params}) for p in prompts]
        found = {k: json.loads(v) for k, v in self._get([k for k, _ in keyed]).items()}
        missing: dict[str, tuple[Prompt, str]] = {}
        for p, (k, req) in zip(prompts, keyed):
            if k in found:
                self.stats.hits += 1
            elif k not in missing:
                missing[k] = (p, req)
        if missing and self.offline:
            raise self._offline_miss("generations", len(missing), len(dict.fromkeys(k for k, _ in keyed)),
                                     next(iter(missing.values()))[0])
        todo = list(missing.items())
        for s in range(0, len(todo), self.batch_size):
            part = todo[s:s + self.batch_size]
            out = self.backend.generate([p for _, (p, _) in part], max_tokens=max_tokens, temperature=temperature,
                                        top_p=top_p, n=n, stop=stop or None, seed=seed)
            if len(out) != len(part) or any(len(o) != n or not all(isinstance(t, str) for t in o) for o in out):
                raise LmscopeError(f"{self.spec} returned a malformed generate result ({len(out)} lists for "
                                   f"{len(part)} prompts, {n} completions each expected)")
            self._put("generate", [(k, req, canonical_json(list(o))) for (k, (_, req)), o in zip(part, out)])
            for (k, _), o in zip(part, out):
                found[k] = list(o)
            self.stats.misses += len(part)
        return [list(found[k]) for k, _ in keyed]

    # ------------------------------------------------------------------ score
    def score(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[ContinuationScore]]:
        requests = check_score_requests(requests)
        keyed = [[self._key("score", {"prompt": p, "continuation": c}) for c in conts] for p, conts in requests]
        found = {k: json.loads(v) for k, v in self._get([k for row in keyed for k, _ in row]).items()}
        by_prompt: dict[str, list[tuple[str, str, str]]] = {}  # prompt -> [(continuation, key, request)]
        seen = set()
        for (p, conts), row in zip(requests, keyed):
            for c, (k, req) in zip(conts, row):
                if k in found:
                    self.stats.hits += 1
                elif k not in seen:
                    seen.add(k)
                    by_prompt.setdefault(p, []).append((c, k, req))
        if seen and self.offline:
            total = len({k for row in keyed for k, _ in row})
            raise self._offline_miss("scores", len(seen), total, next(iter(by_prompt)))
        for batch in self._score_batches(by_prompt):
            out = self.backend.score([(p, [c for c, _, _ in items]) for p, items in batch])
            if len(out) != len(batch) or any(len(o) != len(items) for o, (_, items) in zip(out, batch)):
                raise LmscopeError(f"{self.spec} returned a malformed score result")
            rows = []
            for o, (_, items) in zip(out, batch):
                for sc, (_, k, req) in zip(o, items):
                    val = {"logprob": float(sc.logprob), "token_logprobs": [float(x) for x in sc.token_logprobs],
                           "tokens": list(sc.tokens)}
                    found[k] = val
                    rows.append((k, req, canonical_json(val)))
            self._put("score", rows)
            self.stats.misses += len(rows)
        return [[ContinuationScore(c, f["logprob"], list(f["token_logprobs"]), list(f["tokens"]))
                 for c, f in ((c, found[k]) for c, (k, _) in zip(conts, row))]
                for (_, conts), row in zip(requests, keyed)]

    def _score_batches(self, by_prompt: dict[str, list]):
        """Groups of (prompt, items) holding about batch_size continuations; a long group is split."""
        batch, size = [], 0
        for p, items in by_prompt.items():
            for s in range(0, len(items), self.batch_size):
                part = items[s:s + self.batch_size]
                if batch and size + len(part) > self.batch_size:
                    yield batch
                    batch, size = [], 0
                batch.append((p, part))
                size += len(part)
        if batch:
            yield batch


# ------------------------------------------------------------------------------------------------
# Inspecting and trimming a cache file
# ------------------------------------------------------------------------------------------------
def _files(path: Path) -> list[Path]:
    return [p for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")) if p.exists()]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in _files(path))


def cache_info(path: str | os.PathLike | None = None) -> dict:
    """Entries by model and kind (count, oldest, newest), total entries and bytes on disk."""
    path = Path(path).expanduser() if path is not None else default_cache_path()
    if not path.exists():
        return {"path": str(path), "exists": False, "entries": 0, "bytes": 0, "models": []}
    con = _connect(path)
    try:
        rows = con.execute("SELECT model, kind, COUNT(*), MIN(created), MAX(created) FROM entries "
                           "GROUP BY model, kind ORDER BY model, kind").fetchall()
    except sqlite3.DatabaseError as e:
        raise _corrupt(path, e) from None
    finally:
        con.close()
    models = [{"model": m, "kind": k, "entries": c, "oldest": lo, "newest": hi} for m, k, c, lo, hi in rows]
    return {"path": str(path), "exists": True, "entries": sum(r["entries"] for r in models),
            "bytes": _size(path), "models": models}


def prune_cache(path: str | os.PathLike | None = None, *, model: str | None = None,
                older_than_days: float | None = None) -> dict:
    """Delete the entries of ``model`` (a spec; glob patterns allowed; a bare local name matches
    ``local:NAME``) and/or those older than ``older_than_days``; both given: entries matching both."""
    path = Path(path).expanduser() if path is not None else default_cache_path()
    if model is None and older_than_days is None:
        raise LmscopeError("prune needs a model or an age (older than N days); clear removes everything")
    if older_than_days is not None and not older_than_days >= 0:
        raise LmscopeError(f"the age must be >= 0 days, got {older_than_days}")
    if not path.exists():
        return {"path": str(path), "deleted": 0, "bytes_before": 0, "bytes_after": 0}
    before = _size(path)
    where, args = [], []
    if model is not None:
        where.append("(model GLOB ? OR model GLOB ?)")
        args += [model, f"local:{model}"]
    if older_than_days is not None:
        where.append("created < ?")
        args.append(time.time() - older_than_days * 86400)
    con = _connect(path)
    try:
        con.execute("BEGIN IMMEDIATE")
        deleted = con.execute(f"DELETE FROM entries WHERE {' AND '.join(where)}", args).rowcount
        con.execute("COMMIT")
        if deleted:
            try:  # give the space back; skipped while another process has the file open for writing
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                con.execute("VACUUM")
            except sqlite3.OperationalError:
                pass
    except sqlite3.DatabaseError as e:
        raise _corrupt(path, e) if _is_corruption(e) else LmscopeError(f"cannot prune {path}: {e}") from None
    finally:
        con.close()
    return {"path": str(path), "deleted": deleted, "bytes_before": before, "bytes_after": _size(path)}


def clear_cache(path: str | os.PathLike | None = None) -> dict:
    """Delete the cache file (with its WAL files), readable or not."""
    path = Path(path).expanduser() if path is not None else default_cache_path()
    files = _files(path)
    freed = sum(p.stat().st_size for p in files)
    if path.exists() and path.is_dir():
        raise LmscopeError(f"{path} is a directory, not an LM cache file")
    for p in files:
        p.unlink()
    return {"path": str(path), "removed": bool(files), "bytes": freed}
