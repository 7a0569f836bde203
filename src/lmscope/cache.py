"""Where lmscope keeps its caches: ``$LMSCOPE_CACHE`` or ``~/.cache/lmscope``; what is in them; clearing.

The parts of the cache (``lmscope cache`` shows each with its size):

- ``svd``: cached singular value decompositions;
- ``models``: models converted from GGUF to Hugging Face directories (float32) and the assembled
  files of bundled models shipped in several packages (``models/bundled/NAME/``); both are made
  again on next use after clearing;
- ``laser-search``: the progress of LASER searches;
- ``lm``: the LM answer cache (an SQLite file; ``lmscope lm cache`` inspects or prunes it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CATEGORIES = ("svd", "models", "laser-search", "lm")


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
    return doc


def cache_lines(doc: dict) -> list[str]:
    """``cache_info()`` as text."""
    lines = [f"cache: {doc['root']}"]
    for sub in CATEGORIES:
        lines.append(f"  {sub}: {doc[sub]['files']} files, {doc[sub]['bytes'] / 1e6:.1f} MB")
        if sub == "models":
            lines += [f"    {e['bytes'] / 1e6:9.1f} MB  {e['path']}  ({e['kind']})" for e in doc["model_files"]]
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
