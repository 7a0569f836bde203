"""Atomic file and directory writing, JSONL reading with line numbers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmscope.errors import LmscopeError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_safe(obj: Any) -> Any:
    """Replace NaN and infinities (which JSON lacks) by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    try:
        import numpy as np

        if isinstance(obj, np.floating):
            return json_safe(float(obj))
        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:  # pragma: no cover
        pass
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON (no NaN/Infinity) of results holding numpy values and ``to_dict`` objects."""
    return json.dumps(json_safe(obj), indent=indent, default=_json_default, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, dumps(obj) + "\n")


def write_jsonl(path: str | os.PathLike, rows) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(dumps(row, indent=None) + "\n")
    return Path(path)


def _json_default(o: Any):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def check_input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a Path when it is a readable regular file; else an LmscopeError saying what it is
    (missing, a folder, not a regular file)."""
    path = Path(path)
    if path.is_dir():
        raise LmscopeError(f"{path} is a folder; expected a {what}")
    if not path.exists():
        raise LmscopeError(f"no such {what}: {path}")
    if not path.is_file():
        raise LmscopeError(f"{path} is not a regular file; expected a {what}")
    return path


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The text of a UTF-8 file. A missing file, a folder, an unreadable file or invalid UTF-8 is an
    LmscopeError (invalid bytes name their line: ``path:LINE: not valid UTF-8 ...``)."""
    path = check_input_file(path, what)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise LmscopeError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        lineno = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise LmscopeError(f"{path}:{lineno}: not valid UTF-8 (byte 0x{data[e.start]:02x} at column {column}); "
                           "lmscope reads text files as UTF-8") from None


def read_lines_numbered(path: str | os.PathLike, what: str = "file") -> list[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, line ends removed (see :func:`read_text`)."""
    lines = read_text(path, what).split("\n")  # only \n ends a line (JSON text may hold U+2028)
    if lines and lines[-1] == "":
        lines.pop()
    return [(k, line[:-1] if line.endswith("\r") else line) for k, line in enumerate(lines, 1)]


def read_jsonl_numbered(path: str | os.PathLike) -> list[tuple[int, dict]]:
    """Read a JSONL file as ``(line number, object)`` pairs, skipping blank lines.

    A malformed line (or invalid UTF-8) raises LmscopeError naming the line number; so does a file
    with no examples, and a folder or missing path says which it is.
    """
    path = Path(path)
    rows = []
    for lineno, line in read_lines_numbered(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LmscopeError(f"{path}:{lineno}: malformed JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise LmscopeError(f"{path}:{lineno}: expected a JSON object per line")
        rows.append((lineno, row))
    if not rows:
        raise LmscopeError(f"{path}: the file holds no examples")
    return rows


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file; a malformed line raises LmscopeError naming the line number."""
    return [row for _, row in read_jsonl_numbered(path)]


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path`` as a whole.

    A failure leaves no partial output behind (and leaves an existing ``path`` as it was).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_dir():
        raise LmscopeError(f"output path exists and is not a directory: {path}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise LmscopeError(f"output directory exists: {path}")
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
