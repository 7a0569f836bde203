"""Where lmscope writes: one policy for every output path.

An output path (``--out``, ``--report``, a checkpoint folder, a JSONL file) is refused with one
:class:`~lmscope.errors.LmscopeError` line, before anything is written, when it

- is, contains, or is inside one of the command's inputs (model folders and files, an adapter and its
  base, task, data and config files, transcripts) or lmscope's cache folder (symlinks resolved);
- exists and is neither a regular file nor a folder (a fifo, a device, a socket);
- is a folder that exists, is not empty and was not written by lmscope (a folder lmscope writes bears
  the marker file :data:`MARKER`), unless ``force`` is given; ``force`` never overrides the first rule;
- lies under a regular file, or in a folder lmscope may not write to.

One-shot outputs are built in a temporary sibling and renamed into place only when complete
(:func:`output_dir`, :func:`output_file`), so a failing or interrupted command leaves either nothing
or the previous complete output. Run folders that are resumed in place (training runs, sweeps, game
transcripts) are checked with :func:`check_output` too (``kind="run"``) but follow their own run
marker (``run.json`` and the like), which only a run of the same configuration resumes.

An OS error while writing (permission denied, read-only file system, disk full, a path under a file,
a folder where a file is expected) becomes one LmscopeError line naming the output path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from lmscope.errors import LmscopeError

MARKER = ".lmscope-output.json"

# errno of a failed write -> what the message says
WRITE_ERRORS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder where a file is expected",
    errno.ENAMETOOLONG: "file name too long",
    errno.EEXIST: "a file of that name already exists",
    errno.ENOTEMPTY: "a folder of that name is in the way",
    errno.ENOENT: "no such file or folder can be made there",
}

PathLike = str | os.PathLike


def write_error(e: OSError, path: PathLike | None = None) -> LmscopeError:
    """One-line error for an OS error while writing ``path`` (default: the error's own file name)."""
    where = path if path is not None else (e.filename or "the output")
    why = WRITE_ERRORS.get(e.errno) or (e.strerror or str(e)).lower()
    return LmscopeError(f"cannot write {where}: {why}")


def _real(p: PathLike) -> Path:
    """Absolute path with every symlink of its existing part resolved."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(p)))).resolve()


def overlap(a: PathLike, b: PathLike) -> bool:
    """Whether two paths are the same, or one is inside the other (symlinks resolved)."""
    ra, rb = _real(a), _real(b)
    return ra == rb or ra.is_relative_to(rb) or rb.is_relative_to(ra)


def _special_kind(mode: int) -> str | None:
    for test, name in ((stat.S_ISFIFO, "a fifo"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "not a regular file or folder"
    return None


def read_marker(folder: PathLike) -> dict | None:
    """The marker lmscope left in ``folder`` when it wrote it, or None."""
    try:
        doc = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "lmscope" in doc else None


def write_marker(folder: PathLike, command: str | None, kind: str = "output") -> Path:
    """Mark ``folder`` as written by lmscope (``kind`` output: replaced by a later output; run: resumed)."""
    from lmscope import __version__

    doc = {"lmscope": __version__, "kind": kind, "command": command,
           "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = Path(folder) / MARKER
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return path


def _cache_root() -> Path:
    from lmscope.cache import cache_root

    return cache_root()


def check_output(out: PathLike, inputs: Iterable[PathLike | None] = (), *, kind: str = "dir",
                 force: bool = False, what: str = "--out", own: Iterable[str] = (),
                 run_markers: Iterable[str] = (), cache_is_input: bool = True) -> Path:
    """Apply the output policy (see the module docstring) to ``out`` and return it as a Path.

    ``kind``: ``dir`` (a folder replaced as a whole), ``file`` (one file, replaced) or ``run`` (a run
    folder resumed in place: an existing folder is accepted when it bears lmscope's marker, holds one of
    the run's own marker files ``run_markers`` (such as ``run.json``) or only the names in ``own``, or
    with ``force``; nothing in it is deleted). ``what`` names the option in messages; ``cache_is_input``
    False lets the path lie in lmscope's cache (for a file of the cache itself). Nothing is written.
    """
    if kind not in ("dir", "file", "run"):
        raise ValueError(kind)
    path = Path(os.path.expanduser(os.fspath(out)))
    if not os.fspath(out):
        raise LmscopeError(f"{what} is empty; give a path")
    try:
        real = _real(path)
    except (OSError, RuntimeError) as e:  # a symlink loop, an unreadable folder on the way
        raise LmscopeError(f"cannot use {what} {out}: {e.strerror if isinstance(e, OSError) else e}") from None
    _check_inputs(out, real, inputs, what, cache_is_input)
    _check_existing(out, path, real, kind, force, what, set(own), set(run_markers))
    if not (kind == "run" and real.is_dir()):  # a run folder is resumed in place; its parent is not written
        _check_parent(out, real, what)
    return path


def _check_inputs(out: PathLike, real: Path, inputs: Iterable[PathLike | None], what: str,
                  cache_is_input: bool = True) -> None:
    named = [(i, _real(i)) for i in inputs if i is not None and os.fspath(i)]
    cache = _real(_cache_root())
    for given, r in named:
        if real == r:
            rel = "is that input"
        elif r.is_relative_to(real):
            rel = "holds it"
        elif real.is_relative_to(r):
            rel = "is inside it"
        else:
            continue
        raise LmscopeError(f"refusing to overwrite the input {given}: {what} {out} {rel}; choose another "
                           "output path")
    if cache_is_input and (real == cache or cache.is_relative_to(real) or real.is_relative_to(cache)):
        rel = "is" if real == cache else "holds" if cache.is_relative_to(real) else "is inside"
        raise LmscopeError(f"refusing to write {what} {out}: it {rel} lmscope's cache folder {cache}; choose "
                           "another output path")


def _check_existing(out, path: Path, real: Path, kind: str, force: bool, what: str, own: set[str],
                    run_markers: set[str]) -> None:
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise LmscopeError(f"cannot write {what} {out}: {_file_above(real) or 'a part of the path'} is a file, "
                           "not a folder") from None
    except OSError as e:
        raise write_error(e, out) from None
    special = _special_kind(st.st_mode)
    if special:
        raise LmscopeError(f"refusing to write {what} {out}: it is {special}, not a regular file or folder")
    if kind == "file":
        if stat.S_ISDIR(st.st_mode):
            raise LmscopeError(f"cannot write {what} {out}: it is a folder, and a file is expected")
        return
    if stat.S_ISREG(st.st_mode):
        raise LmscopeError(f"cannot write {what} {out}: it is a file, and a folder is expected")
    if kind == "dir":
        try:
            here = _real(os.getcwd())
        except OSError:
            here = None
        if here is not None and here.is_relative_to(real):
            raise LmscopeError(f"refusing to replace {what} {out}: it is or holds the current folder; choose "
                               "another path")
    try:
        names = set(os.listdir(real))
    except OSError as e:
        raise write_error(e, out) from None
    if not names or force:
        return
    marker = read_marker(real)
    if kind == "dir" and marker is not None and marker.get("kind", "output") == "output":
        return
    if kind == "run" and (marker is not None or names <= own or names & run_markers):
        return
    written = "is an lmscope run folder" if marker is not None else "was not written by lmscope"
    raise LmscopeError(f"refusing to replace {what} {out}: the folder is not empty and {written}; choose "
                       "another path, or give --force to replace it and everything in it")


def _file_above(real: Path) -> Path | None:
    for p in real.parents:
        if p.is_file():
            return p
    return None


def _check_parent(out, real: Path, what: str) -> None:
    above = real.parent
    while not above.exists():
        if above.parent == above:
            break
        above = above.parent
    if above.exists() and not above.is_dir():
        raise LmscopeError(f"cannot write {what} {out}: {above} is a file, not a folder")
    f = _file_above(real)
    if f is not None:
        raise LmscopeError(f"cannot write {what} {out}: {f} is a file, not a folder")
    try:
        if os.statvfs(above).f_flag & os.ST_RDONLY:
            raise LmscopeError(f"cannot write {what} {out}: {above} is on a read-only file system")
    except OSError:
        pass
    if not os.access(above, os.W_OK | os.X_OK):
        raise LmscopeError(f"cannot write {what} {out}: permission denied in the folder {above}")


def _rename_for_message(e: OSError, tmp: Path, final: Path) -> Path | str | None:
    """The user's path for an error on the temporary copy; None when the error is about another file."""
    name = e.filename
    if name is None:
        return final
    name = os.fspath(name)
    t = os.fspath(tmp)
    if name == t or name.startswith(t + os.sep):
        return final / os.path.relpath(name, t) if name != t else final
    parent = os.fspath(final.parent)
    if os.path.dirname(name) == parent and os.path.basename(name).startswith(f".{final.name}."):
        return final
    if name == os.fspath(final) or name.startswith(os.fspath(final) + os.sep):
        return name
    return None


@contextlib.contextmanager
def _named_write_errors(path: Path, written: list[Path]) -> Iterator[None]:
    """Turn a failed write of ``path`` (through the temporary in ``written``, once there is one) into
    its one-line error; other OS errors pass through unchanged."""
    try:
        yield
    except OSError as e:
        where = _rename_for_message(e, written[0] if written else path, path) if e.errno in WRITE_ERRORS else None
        if where is None:
            raise
        raise write_error(e, where) from None


@contextlib.contextmanager
def output_dir(out: PathLike, inputs: Iterable[PathLike | None] = (), *, command: str | None = None,
               force: bool = False, what: str = "--out", checked: bool = False) -> Iterator[Path]:
    """Check ``out`` (unless ``checked``), then yield a temporary sibling folder bearing lmscope's
    marker; when the block ends without error it replaces ``out`` as a whole. A failure leaves ``out``
    as it was and removes the temporary folder; an OS error on the output becomes one clear line."""
    from lmscope._io import atomic_dir

    path = Path(out) if checked else check_output(out, inputs, kind="dir", force=force, what=what)
    written: list[Path] = []
    with _named_write_errors(path, written), atomic_dir(path) as tmp:
        written.append(tmp)
        write_marker(tmp, command)
        yield tmp


@contextlib.contextmanager
def output_file(out: PathLike, inputs: Iterable[PathLike | None] = (), *, force: bool = False,
                what: str = "--out", checked: bool = False) -> Iterator[Path]:
    """Check ``out`` as a file output (unless ``checked``) and yield a temporary sibling file that
    replaces it when the block ends without error."""
    from lmscope._io import atomic_path

    path = Path(out) if checked else check_output(out, inputs, kind="file", force=force, what=what)
    written: list[Path] = []
    with _named_write_errors(path, written), atomic_path(path) as tmp:
        written.append(tmp)
        yield tmp
