"""Where lmscope keeps its caches: ``$LMSCOPE_CACHE`` or ``~/.cache/lmscope``; what is in them; clearing.

The parts of the cache (``lmscope cache`` shows each with its size):

- ``svd``: cached singular value decompositions;
- ``models``: models converted from GGUF to Hugging Face directories (float32) and the assembled
  files of bundled models shipped in several packages (``models/bundled/NAME/``); both are made
  again on next use after clearing;
- ``laser-search``: the progress of LASER searches;
- ``lm``: the LM answer cache (an SQLite file; ``lmscope lm cache`` inspects or prunes it);
- ``planner``: classical planners' results (one small JSON file per domain, problem, planner and time
  limit; :mod:`lmscope.planning.planner`).

Size cap. The ``svd`` and ``laser-search`` parts together are kept under a cap, 5 GB by default
(``$LMSCOPE_CACHE_MAX_SIZE``: a size such as ``500MB``, ``2GB`` or ``1.5G``; ``none`` turns the automatic
pruning off): after lmscope writes a new entry there and the two parts exceed the cap, the entries
used least recently are deleted until they fit; ``lmscope cache prune --max-size SIZE`` does the same
on demand. Last use is recorded by lmscope itself: every hit touches a stamp file beside the entry
(``ENTRY.used``); an entry never hit since it was written counts from its writing. Models (conversions and
bundled files), the LM answers and the planner results are never pruned this way.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from pathlib import Path

CATEGORIES = ("svd", "models", "laser-search", "lm", "planner")
PRUNED_PARTS = ("svd", "laser-search")  # the parts kept under the size cap, least recently used first
DEFAULT_MAX_SIZE = 5_000_000_000  # bytes (5 GB)
MAX_SIZE_ENV = "LMSCOPE_CACHE_MAX_SIZE"
USED_SUFFIX = ".used"
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")


def cache_root() -> Path:
    """The cache's root folder, not created."""
    return Path(os.environ.get("LMSCOPE_CACHE") or Path.home() / ".cache" / "lmscope")


def cache_dir(*parts: str) -> Path:
    """The cache folder ``parts`` under the root, created; one LmscopeError line when it cannot be made."""
    p = cache_root().joinpath(*parts)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from lmscope.errors import LmscopeError

        above = next((a for a in (p, *p.parents) if a.exists() and not a.is_dir()), None)
        if above is not None:
            why = f"{above} is a file, not a folder (set LMSCOPE_CACHE to another folder)"
        else:
            why = (e.strerror or str(e)).lower()
        raise LmscopeError(f"cannot make the cache folder {p}: {why}") from None
    return p


def file_fingerprint(path: Path) -> dict:
    """What a verified file's stamp records: any write moves ``ctime``; a copy or replacement has another inode."""
    st = path.stat()
    return {"size": st.st_size, "dev": st.st_dev, "ino": st.st_ino, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns}


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def read_stamp(path: Path) -> dict | None:
    """The stamp of ``path`` if the file is unchanged since it was stamped, else None."""
    import json

    try:
        stamp = json.loads(stamp_path(path).read_text())
        fp = file_fingerprint(path)
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or any(stamp.get(k) != v for k, v in fp.items()):
        return None
    return stamp


def _usage(path: Path) -> dict:
    if path.is_file():
        return {"files": 1, "bytes": path.stat().st_size}
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def model_entries() -> list[dict]:
    """Every model copy in the cache with its size: assembled bundled files and converted directories."""
    root = cache_root() / "models"
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if d.name == "bundled" and d.is_dir():
            for f in sorted(d.glob("*/*")):
                if not f.is_file() or f.name in (".lock",) or f.name.endswith(".verified"):
                    continue
                if f.name.endswith(".tmp"):
                    kind = "incomplete assembly (removed by the next one)"
                else:
                    kind = "assembled bundled model" + ("" if read_stamp(f) else ", not verified yet")
                out.append({"name": f.parent.name, "kind": kind, "path": str(f), "bytes": f.stat().st_size})
        elif d.is_dir():
            out.append({"name": d.name, "kind": "converted model (float32)", "path": str(d), **_usage(d)})
    return out


def cache_info() -> dict:
    """The cache's root, the files and bytes in each part, and each model copy (``model_files``)."""
    root = cache_root()
    doc: dict = {"root": str(root)}
    for sub in CATEGORIES:
        doc[sub] = _usage(root / sub)
    doc["model_files"] = [{k: v for k, v in e.items() if k != "files"} for e in model_entries()]
    doc["max_size"] = {"bytes": max_size(), "parts": list(PRUNED_PARTS)}
    return doc


def cache_lines(doc: dict) -> list[str]:
    """``cache_info()`` as text."""
    lines = [f"cache: {doc['root']}"]
    for sub in CATEGORIES:
        lines.append(f"  {sub}: {doc[sub]['files']} files, {doc[sub]['bytes'] / 1e6:.1f} MB")
        if sub == "models":
            lines += [f"    {e['bytes'] / 1e6:9.1f} MB  {e['path']}  ({e['kind']})" for e in doc["model_files"]]
    cap = doc.get("max_size", {}).get("bytes")
    lines.append("  cap on svd + laser-search: " + (f"{cap / 1e9:g} GB, least recently used entries pruned first "
                                                     f"(${MAX_SIZE_ENV}; `lmscope cache prune --max-size SIZE`)"
                                                     if cap is not None else f"none (${MAX_SIZE_ENV}=none)"))
    return lines


def clear(what: list[str] | None = None) -> list[str]:
    """Delete parts of the cache (default: ``svd``); returns what was cleared."""
    what = list(what or ["svd"])
    unknown = [w for w in what if w not in CATEGORIES]
    if unknown:
        from lmscope.errors import LmscopeError

        raise LmscopeError(f"unknown cache part {unknown[0]!r}; choose from {', '.join(CATEGORIES)}")
    from lmscope.errors import LmscopeError

    root = cache_root()
    failed: list[tuple[str, OSError]] = []
    for sub in what:  # `lm` holds only the SQLite answer cache and its WAL files (lm/lm.sqlite*)
        path = root / sub
        try:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.exists():
                shutil.rmtree(path, onerror=lambda fn, p, exc: failed.append((p, exc[1])))
        except OSError as e:
            failed.append((e.filename or str(path), e))
    if failed:
        where, err = failed[0]
        why = (err.strerror or str(err)).lower() if isinstance(err, OSError) else str(err)
        raise LmscopeError(f"could not clear {', '.join(what)} in {root}: {where}: {why}"
                           + (f" ({len(failed)} paths left)" if len(failed) > 1 else ""))
    return what


# ------------------------------------------------------------------------------------------ size cap
def parse_size(text: str | int, option: str = "--max-size") -> int:
    """Bytes from a size: ``500MB``, ``2GB``, ``1.5G``, ``2 GiB``, ``1024`` (bytes). K, M, G, T (with or
    without B) are powers of 1000; KiB, MiB, GiB, TiB powers of 1024. LmscopeError otherwise."""
    from lmscope.errors import LmscopeError

    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    m = _SIZE.fullmatch(str(text))
    unit = m and _UNITS.get(m.group(2).lower())
    if not m or unit is None:
        raise LmscopeError(f"{option} must be a size such as 500MB, 2GB or 1.5G, got {text!r}")
    value = float(m.group(1)) * unit
    if not math.isfinite(value) or value > 2**63:
        raise LmscopeError(f"{option} is too large, got {text!r}")
    return int(value)


def max_size() -> int | None:
    """The cap on the ``svd`` and ``laser-search`` parts: ``$LMSCOPE_CACHE_MAX_SIZE`` or 5 GB; None when
    the variable says ``none`` (no automatic pruning)."""
    text = os.environ.get(MAX_SIZE_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_SIZE
    if text.lower() in ("none", "off", "unlimited"):
        return None
    return parse_size(text, MAX_SIZE_ENV)


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + USED_SUFFIX)


def mark_used(path: str | os.PathLike) -> None:
    """Record that a cache entry was just used (its ``.used`` stamp gets the current time). A cache
    lmscope cannot write to (read-only, shared) is used without the record."""
    stamp = _stamp(Path(path))
    try:
        stamp.touch()
        now = time.time()
        os.utime(stamp, (now, now))
    except OSError:
        pass


def _is_entry(p: Path) -> bool:
    return p.is_file() and not p.name.endswith(USED_SUFFIX) and not (p.name.startswith(".") and p.name.endswith(".tmp"))


def cache_entries(parts: tuple[str, ...] = PRUNED_PARTS) -> list[dict]:
    """The entries of the capped parts, least recently used first: path, part, bytes (the entry and its
    stamp) and ``last_used`` (the stamp's time, or the entry's own when it was never hit)."""
    root = cache_root()
    out = []
    for part in parts:
        folder = root / part
        if not folder.is_dir():
            continue
        for p in folder.rglob("*"):
            try:
                if not _is_entry(p):
                    continue
                st = p.stat()
                size, used = st.st_size, st.st_mtime
                stamp = _stamp(p)
                if stamp.is_file():
                    sst = stamp.stat()
                    size, used = size + sst.st_size, max(used, sst.st_mtime)
            except OSError:  # removed meanwhile by another process
                continue
            out.append({"path": str(p), "part": part, "bytes": size, "last_used": used})
    out.sort(key=lambda e: (e["last_used"], e["path"]))
    return out


def prune(max_bytes: int | None = None, keep: tuple = ()) -> dict:
    """Delete the least recently used entries of ``svd`` and ``laser-search`` until they hold at most
    ``max_bytes`` (default :func:`max_size`); ``keep``: paths never deleted (an entry just written).
    Stamps left without their entry go too. Returns what was removed, what could not be (``failed``:
    path and reason) and the sizes before and after."""
    cap = max_size() if max_bytes is None else int(max_bytes)
    entries = cache_entries()
    total = sum(e["bytes"] for e in entries)
    before = total
    keep = {str(Path(k)) for k in keep}
    removed, failed = [], []
    if cap is not None:
        for e in entries:
            if total <= cap:
                break
            if e["path"] in keep:
                continue
            p = Path(e["path"])
            try:
                p.unlink(missing_ok=True)
                _stamp(p).unlink(missing_ok=True)
            except OSError as err:
                failed.append({"path": e["path"], "error": err.strerror or str(err)})
                continue
            total -= e["bytes"]
            removed.append(e)
    root = cache_root()
    for part in PRUNED_PARTS:  # stamps whose entry is gone
        folder = root / part
        for stamp in folder.rglob("*" + USED_SUFFIX) if folder.is_dir() else ():
            if not stamp.with_name(stamp.name[:-len(USED_SUFFIX)]).exists():
                try:
                    stamp.unlink(missing_ok=True)
                except OSError:
                    pass
    return {"max_bytes": cap, "bytes_before": before, "bytes_after": total, "removed": removed,
            "removed_bytes": before - total, "failed": failed, "parts": list(PRUNED_PARTS)}


_held: dict[str, int] = {}  # per cache root: this process's running estimate of the capped parts' bytes


def entry_written(path: str | os.PathLike) -> dict | None:
    """Called after lmscope writes a new entry under ``svd`` or ``laser-search``: when the capped parts
    now exceed :func:`max_size`, prune them (never this entry). The first call of a process measures
    the parts; later calls add the new entry's size to that estimate and measure again only when it
    passes the cap. Returns the :func:`prune` result when it pruned."""
    cap = max_size()
    if cap is None:
        return None
    root = str(cache_root())
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0
    if root not in _held:
        _held[root] = sum(e["bytes"] for e in cache_entries())
    else:
        _held[root] += size
    if _held[root] <= cap:
        return None
    res = prune(cap, keep=(path,))
    _held[root] = res["bytes_after"]
    return res
