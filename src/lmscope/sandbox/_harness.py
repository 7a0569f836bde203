"""The supervisor that runs first inside the sandbox (passed to ``python -I -c``; never imported by lmscope).

It reads one JSON request from stdin -- ``argv``, ``files`` (name -> base64), ``outputs`` (names to return),
``limits``, ``drop`` ([uid, gid] or null), ``env``, ``scratch`` and ``pidns`` -- and then, in this order:

1. when ``drop`` is set (lmscope runs as root): gives the scratch folder to that uid, sets the groups, gid
   and uid to it (which clears every capability) and sets no-new-privileges, before any sample input is
   written or run;
2. makes itself non-dumpable, so the sample (same uid) cannot open its file descriptors through /proc;
3. writes the input files into the scratch folder and starts ``argv`` there in a new session, with the
   resource limits set in the child before ``exec`` (CPU seconds, address space, file size, processes,
   open files, no core files), stdin empty and stdout/stderr on pipes of which only the first
   ``output_bytes`` are kept;
4. waits up to ``wall_seconds``, then kills the sample's process group; in its own PID namespace it then
   kills every process left (``kill(-1)``, which cannot reach outside the namespace);
5. reads each requested output file (regular files only, no symbolic links, at most ``result_bytes`` in
   all) and writes one JSON line with the outcome to its stdout.
"""

import base64
import ctypes
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time


def _prctl(option: int, arg: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(option, arg, 0, 0, 0)


PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38


def _limits_setter(limits: dict):
    def apply() -> None:
        mb = 1024 * 1024
        cpu = max(1, int(limits["cpu_seconds"] + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb, limits["memory_mb"] * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * mb, limits["file_mb"] * mb))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _drop(uid: int, gid: int, scratch: str) -> None:
    os.chown(scratch, uid, gid)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("could not drop to the sandbox uid")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _safe_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name


def _read_output(scratch: str, name: str, budget: int):
    try:
        fd = os.open(os.path.join(scratch, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None, "missing"
    try:
        st = os.fstat(fd)
        import stat
        if not stat.S_ISREG(st.st_mode):
            return None, "not a regular file"
        if st.st_size > budget:
            return None, f"larger than the {budget}-byte result limit"
        data = b""
        while len(data) <= budget:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            data += chunk
        if len(data) > budget:
            return None, "grew past the result limit"
        return data, None
    finally:
        os.close(fd)


def _classify(returncode: int, timed_out: bool, stderr: bytes, cpu: float, limits: dict):
    if timed_out:
        return "timeout", f"ran past {limits['wall_seconds']:g} wall seconds"
    if returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits["cpu_seconds"] - 0.05):
            return "limit", f"CPU limit ({limits['cpu_seconds']:g} s)"
        if sig == signal.SIGXFSZ:
            return "limit", f"file size limit ({limits['file_mb']} MB)"
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return "error", f"killed by {name}"
    tail = stderr[-600:].decode("utf-8", "replace")
    if returncode != 0 and "MemoryError" in tail:
        return "limit", f"memory limit ({limits['memory_mb']} MB)"
    if returncode != 0 and "File too large" in tail:
        return "limit", f"file size limit ({limits['file_mb']} MB)"
    if returncode != 0 and ("Resource temporarily unavailable" in tail or "BlockingIOError" in tail):
        return "limit", f"process limit ({limits['processes']})"
    if returncode != 0:
        return "error", f"exit status {returncode}"
    return "ok", ""


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    limits = request["limits"]
    scratch = request["scratch"]
    if request.get("drop"):
        _drop(request["drop"][0], request["drop"][1], scratch)
    _prctl(PR_SET_DUMPABLE, 0)
    for name, blob in request["files"].items():
        if not _safe_name(name):
            raise SystemExit(f"bad input file name {name!r}")
        with open(os.path.join(scratch, name), "wb") as fh:
            fh.write(base64.b64decode(blob))
    keep = int(limits["output_bytes"])
    start = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.Popen(request["argv"], cwd=scratch, env=request["env"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                start_new_session=True, preexec_fn=_limits_setter(limits))
    except OSError as e:
        print(json.dumps({"status": "error", "detail": f"could not start: {e.strerror}"}), flush=True)
        return
    captured = {"stdout": b"", "stderr": b""}
    total = {"stdout": 0, "stderr": 0}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    deadline = start + float(limits["wall_seconds"])
    timed_out = False

    def pump(wait: float) -> None:
        for key, _ in sel.select(timeout=wait):
            chunk = os.read(key.fileobj.fileno(), 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            total[key.data] += len(chunk)
            if len(captured[key.data]) < keep:
                captured[key.data] += chunk[: keep - len(captured[key.data])]

    while proc.poll() is None:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        if sel.get_map():
            pump(min(left, 0.2))
        else:
            time.sleep(min(left, 0.02))
    if timed_out:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
    # what the sample wrote just before it ended (a process it left behind may hold the pipes open)
    drain_until = time.monotonic() + 0.2
    while sel.get_map() and time.monotonic() < drain_until:
        pump(0.02)
    seconds = time.monotonic() - start
    if request.get("pidns"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            os.kill(-1, signal.SIGKILL)    # everything the sample left behind in this PID namespace
        except OSError:
            pass
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    status, detail = _classify(proc.returncode, timed_out, captured["stderr"], cpu, limits)
    files, missing = {}, {}
    budget = int(limits["result_bytes"])
    for name in request["outputs"]:
        data, why = _read_output(scratch, name, budget) if _safe_name(name) else (None, "bad name")
        if data is None:
            missing[name] = why
            continue
        budget -= len(data)
        files[name] = base64.b64encode(data).decode()
    out = {"status": status, "detail": detail, "returncode": proc.returncode, "seconds": seconds,
           "cpu_seconds": cpu, "files": files, "missing": missing,
           "stdout": base64.b64encode(captured["stdout"]).decode(),
           "stderr": base64.b64encode(captured["stderr"]).decode(),
           "stdout_bytes": total["stdout"], "stderr_bytes": total["stderr"]}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
