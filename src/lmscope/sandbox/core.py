"""Running one untrusted program in an isolated, resource-limited process.

>>> result = run_sandboxed([PYTHON, "-c", "print(6 * 7)"], limits=Limits(wall_seconds=10))
>>> result.status, result.stdout
('ok', '42\\n')

The program never runs in the lmscope process. With the ``bwrap`` backend (bubblewrap, the Debian package
``bubblewrap``) each run gets:

- its own network, PID, IPC and UTS namespaces: no network at all (a loopback that is down), no view of the
  host's processes, and every process it started killed when it ends (the namespace dies with its first
  process, and the supervisor kills what is left before it reads the results);
- a file system made of read-only views of ``/usr`` (and the ``/bin``, ``/lib*`` links), the linker
  cache, the Python installation and the virtual environment lmscope runs from -- and nothing else of the
  host: not the project's sources, the home folder, its caches or ``/etc``'s secrets. The only writable
  places are two size-limited in-memory folders (``/scratch``, the working folder, and ``/tmp``), which
  vanish with the run: inputs come in and outputs go out through a pipe, so nothing on the host's disks
  can be written or filled;
- a clean environment (``PATH``, ``HOME=/scratch``, a few thread and locale settings; no keys or tokens of
  the parent);
- limits: CPU seconds, wall seconds, address space, file size, processes, open files; stdout and stderr
  are captured up to ``output_bytes`` each, the returned files up to ``result_bytes`` in all;
- when lmscope runs as root (process limits do not bind root): bubblewrap builds the view as root, and the
  supervisor then drops to an unprivileged uid with no account (one per pool slot, so samples do not
  share a process count) and sets no-new-privileges before any sample input is written; every
  capability goes with the uid. As an ordinary user, bubblewrap runs unprivileged in a user namespace.

Where bubblewrap is missing or cannot create namespaces, :func:`sandbox_backend` raises
:class:`SandboxUnavailable` (one line that says what to install) unless the caller asks for
``unsafe=True``: the ``none`` backend, which runs the same supervisor as a plain child process with the
same limits and clean environment in a temporary folder, but with no isolation of files, network or
processes. It exists for machines without namespaces and says so.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lmscope.errors import LmscopeError

PYTHON = "{python}"   # in argv: the interpreter lmscope runs on, as seen inside the sandbox
SCRATCH = "/scratch"
UID_BASE = 1_900_000_000  # sandbox uids when running as root: no account has them
STATUSES = ("ok", "error", "timeout", "limit", "sandbox-error")
_HARNESS = Path(__file__).with_name("_harness.py")


class SandboxUnavailable(LmscopeError):
    """The isolation primitives are missing; LM-written code is refused."""


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use."""

    cpu_seconds: float = 20.0
    wall_seconds: float = 30.0
    memory_mb: int = 2048          # address space (RLIMIT_AS) per process
    file_mb: int = 16              # largest file a process may write (RLIMIT_FSIZE)
    scratch_mb: int = 64           # size of the in-memory /scratch (and of /tmp)
    processes: int = 32            # RLIMIT_NPROC for the sample's uid
    output_bytes: int = 64 * 1024  # stdout and stderr kept, each
    result_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and value > 0) or value != value:
                raise LmscopeError(f"sandbox limit {name} must be a positive number, not {value!r}")


@dataclass
class SandboxResult:
    status: str                        # ok | error | timeout | limit | sandbox-error
    detail: str = ""
    returncode: int | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0              # how much the program wrote (only output_bytes are kept)
    stderr_bytes: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    backend: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> str:
        return f"{self.status}{': ' + self.detail if self.detail else ''} ({self.seconds:.2f} s, {self.backend})"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["files"] = {name: len(data) for name, data in self.files.items()}
        return d


# ------------------------------------------------------------------------------------------------
# Backends
# ------------------------------------------------------------------------------------------------
def _python_roots() -> list[str]:
    """The folders the interpreter and its packages live in: the virtual environment and the base install."""
    roots = []
    for p in (sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))):
        p = os.path.realpath(p)
        if p.startswith("/usr/") or p == "/usr":
            continue
        if not any(p == r or p.startswith(r + "/") for r in roots):
            roots.append(p)
    # the venv itself may be reached through a symlinked path; bind both spellings
    if sys.prefix != os.path.realpath(sys.prefix) and not sys.prefix.startswith("/usr/"):
        roots.append(sys.prefix)
    return roots


def _bwrap_args(limits: Limits, root: bool) -> list[str]:
    args = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/fonts", "/etc/localtime"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    size = str(limits.scratch_mb * 1024 * 1024)
    # the in-memory folders first, so that a Python installation under /tmp is bound on top of them
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", SCRATCH]
    made: set[str] = {"/tmp"}
    for r in _python_roots():
        parents = [str(p) for p in reversed(Path(r).parents) if str(p) != "/"]
        for parent in parents:       # bubblewrap would create them private to root
            if parent not in made and not parent.startswith("/usr"):
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        args += ["--ro-bind", r, r]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv", "--chdir", SCRATCH]
    if root:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_CHOWN"]
    else:
        args += ["--unshare-user"]
    return args


def _probe_bwrap() -> str | None:
    """None when bubblewrap can build a sandbox here, else why not (one line)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian package bubblewrap: apt-get install bubblewrap)"
    args = _bwrap_args(Limits(), os.geteuid() == 0) + [sys.executable, "-I", "-c", "pass"]
    try:
        r = subprocess.run(args, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap could not start: {e}"
    if r.returncode != 0:
        line = (r.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        return f"bubblewrap cannot create namespaces here ({line})"
    return None


@functools.lru_cache(maxsize=1)
def _bwrap_problem() -> str | None:
    return _probe_bwrap()


def sandbox_backend(unsafe: bool = False) -> str:
    """``bwrap`` when the isolation works here; ``none`` only when ``unsafe``; else SandboxUnavailable."""
    problem = _bwrap_problem()
    if problem is None:
        return "bwrap"
    if unsafe:
        return "none"
    raise SandboxUnavailable(f"refusing to run LM-written code: {problem}; "
                             "--unsafe-no-sandbox runs it without isolation")


# ------------------------------------------------------------------------------------------------
# One run
# ------------------------------------------------------------------------------------------------
_slot_lock = threading.Lock()
_slot_counter = 0


def _uid_for(slot: int | None) -> int:
    global _slot_counter
    if slot is None:
        with _slot_lock:
            slot = _slot_counter
            _slot_counter += 1
    return UID_BASE + (os.getpid() % 65_536) * 64 + slot % 64


def _env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "USER": "sandbox", "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.mpl", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0"}


def _collect(proc: subprocess.Popen, timeout: float, cap: int) -> tuple[bytes, bytes, bool]:
    """Read the supervisor's stdout (at most ``cap`` bytes kept) and stderr until it ends or ``timeout``."""
    out, err = bytearray(), bytearray()
    overflow = [False]

    def reader(stream, buf, limit):
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                return
            if len(buf) + len(chunk) > limit:
                overflow[0] = True
                buf.extend(chunk[: max(0, limit - len(buf))])
            else:
                buf.extend(chunk)

    threads = [threading.Thread(target=reader, args=(proc.stdout, out, cap), daemon=True),
               threading.Thread(target=reader, args=(proc.stderr, err, 64 * 1024), daemon=True)]
    for t in threads:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        proc.wait()
    for t in threads:
        t.join(timeout=5)
    return bytes(out), bytes(err), timed_out or overflow[0]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except OSError:
        pass


def run_sandboxed(argv: list[str], *, files: dict[str, bytes] | None = None, outputs: tuple[str, ...] = (),
                  limits: Limits | None = None, unsafe: bool = False, slot: int | None = None) -> SandboxResult:
    """Run ``argv`` (``PYTHON`` stands for the interpreter) in the sandbox with ``files`` in its working folder.

    Returns the outcome, what it printed (bounded) and the bytes of each of ``outputs`` that it wrote there.
    Never raises for anything the program does; raises :class:`SandboxUnavailable` when there is no sandbox
    (and not ``unsafe``).
    """
    limits = limits or Limits()
    backend = sandbox_backend(unsafe)
    root = os.geteuid() == 0
    python = sys.executable
    argv = [python if a == PYTHON else a for a in argv]
    files = files or {}
    workdir = None
    if backend == "bwrap":
        scratch = SCRATCH
        drop = [_uid_for(slot)] * 2 if root else None
        cmd = _bwrap_args(limits, root) + [python, "-I", "-B", "-c", _HARNESS.read_text()]
    else:
        workdir = tempfile.mkdtemp(prefix="lmscope-unsafe-")
        scratch, drop = workdir, None
        cmd = [python, "-I", "-B", "-c", _HARNESS.read_text()]
    request = {"argv": argv, "files": {k: base64.b64encode(v).decode() for k, v in files.items()},
               "outputs": list(outputs), "scratch": scratch, "drop": drop, "pidns": backend == "bwrap",
               "env": _env(scratch), "limits": {**asdict(limits), "wall_seconds": limits.wall_seconds}}
    start = time.monotonic()
    try:
        with tempfile.TemporaryFile() as stdin:
            stdin.write(json.dumps(request).encode())
            stdin.seek(0)
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True, env=_env(scratch) if backend == "none" else {})
        cap = 2 * limits.output_bytes * 2 + limits.result_bytes * 4 // 3 + 65536
        out, err, broke = _collect(proc, limits.wall_seconds + 20.0, cap)
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - start
    try:
        reply = json.loads(out.decode("utf-8").strip().splitlines()[-1]) if out.strip() and not broke else None
    except (ValueError, UnicodeDecodeError, IndexError):
        reply = None
    if reply is None:
        why = err.decode("utf-8", "replace").strip().splitlines()
        return SandboxResult("sandbox-error", detail=(why[-1] if why else "the supervisor gave no result")[:300],
                             returncode=proc.returncode, seconds=seconds, backend=backend)
    return SandboxResult(
        status=reply["status"], detail=reply.get("detail", ""), returncode=reply.get("returncode"),
        seconds=reply.get("seconds", seconds), cpu_seconds=reply.get("cpu_seconds", 0.0),
        stdout=base64.b64decode(reply.get("stdout", "")).decode("utf-8", "replace"),
        stderr=base64.b64decode(reply.get("stderr", "")).decode("utf-8", "replace"),
        stdout_bytes=reply.get("stdout_bytes", 0), stderr_bytes=reply.get("stderr_bytes", 0),
        files={k: base64.b64decode(v) for k, v in reply.get("files", {}).items()},
        missing=reply.get("missing", {}), backend=backend)
