"""Sweeps: many independent training runs, as parallel local processes or as tasks on a Ray cluster.

A sweep is a list of :class:`SweepJob`, each one ``lmscope`` command line (for example
``grok train ... --out ROOT/NAME``) that trains, or resumes, its own run folder. Both back-ends
run the same command line, so run folders, logs and resume semantics are the same:

- ``local`` (default): at most ``workers`` subprocesses ``python -m lmscope ...`` at a time (default:
  one per core), each with ``threads`` intra-op threads (default: cores // workers, at least 1);
  stdout and stderr go to ``ROOT/NAME.log`` (appended, so a resumed run keeps its history).
- ``ray``: one Ray task per job (``num_cpus=threads``) that starts the same subprocess
  ``python -m lmscope ...`` on its worker (same environment, same log file) and returns its exit
  status; a cancelled task stops its subprocess. ``address`` is passed to ``ray.init``: ``"auto"``
  joins the cluster this machine belongs to (``ray start --head`` / ``ray start --address ...``),
  ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` a given one, ``"local"`` starts a private instance on
  this machine. Workers must see the run folders at the same path (a shared file system) and have
  lmscope installed. A task lost with its node is retried; it resumes from its last checkpoint.

A job that fails does not stop the others; the summary lists it with the last line of its log.
Interrupting the sweep stops the jobs still running (they resume from their last checkpoint when
the sweep is started again). ``ROOT/sweep.json`` records the jobs and how each one ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from lmscope._io import write_json
from lmscope.errors import LmscopeError
from lmscope.progress import progress

SWEEP_FILE = "sweep.json"


@dataclass
class SweepJob:
    """One run of a sweep: ``argv`` is an lmscope command line (without ``lmscope``) that writes
    ``run_dir``; ``steps`` (optional) is the step count it trains to, for the progress bar."""

    name: str
    run_dir: Path
    argv: list[str]
    steps: int | None = None
    status: str = "pending"
    returncode: int | None = None
    error: str | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.run_dir.parent / f"{self.name}.log"

    def to_dict(self) -> dict:
        return {"name": self.name, "run_dir": str(self.run_dir), "argv": self.argv, "steps": self.steps,
                "status": self.status, "returncode": self.returncode, "error": self.error,
                "seconds": round(self.seconds, 1), "log": str(self.log), **self.extra}


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_step(run_dir: Path) -> int:
    """The last step a run logged metrics for (0 when it has none yet)."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def _last_log_line(path: Path) -> str | None:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    errors = [ln for ln in lines if ln.startswith("lmscope: error:")]
    return (errors or lines or [None])[-1]


def _ended(job: SweepJob, rc: int, started: float) -> None:
    job.returncode = rc
    job.seconds += time.time() - started
    if rc == 0:
        job.status, job.error = "done", None
    else:
        job.status = "failed"
        job.error = _last_log_line(job.log) or f"exit status {rc}"


def _save(root: Path, jobs: list[SweepJob], backend: str) -> None:
    write_json(root / SWEEP_FILE, {"backend": backend, "jobs": [j.to_dict() for j in jobs]})


class _Bar:
    """One progress bar over all jobs: steps logged so far out of the steps asked for."""

    def __init__(self, jobs: list[SweepJob], quiet: bool | None):
        self.jobs = jobs
        total = sum(j.steps or 0 for j in jobs)
        self.by_steps = total > 0
        self.bar = progress(total=total if self.by_steps else len(jobs), desc="sweep", quiet=quiet)
        self.done = 0

    def refresh(self) -> None:
        if self.by_steps:
            now = sum(min(run_step(j.run_dir), j.steps or 0) for j in self.jobs)
        else:
            now = sum(j.status in ("done", "failed") for j in self.jobs)
        if now > self.done:
            self.bar.update(now - self.done)
            self.done = now
        states = [j.status for j in self.jobs]
        self.bar.set_postfix(running=states.count("running"), done=states.count("done"),
                             failed=states.count("failed"), refresh=True)

    def close(self) -> None:
        self.bar.close()


def _child_env(threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    # the child must import this same lmscope, also when it runs from a source tree
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _start(argv: list[str], log_path: Path, threads: int) -> tuple[subprocess.Popen, object]:
    """Start ``python -m lmscope ARGV`` with ``threads`` threads, its output appended to ``log_path``
    after a ``$ lmscope ...`` line; returns the process and the open log file."""
    log = open(log_path, "a", encoding="utf-8")
    try:
        log.write(f"$ lmscope {' '.join(argv)}\n")
        log.flush()
        proc = subprocess.Popen([sys.executable, "-m", "lmscope", *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_child_env(threads))
    except BaseException:
        log.close()
        raise
    return proc, log


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _run_local(jobs: list[SweepJob], save, workers: int, threads: int, quiet, poll: float) -> None:
    pending = deque(jobs)
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    bar = _Bar(jobs, quiet)
    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.popleft()
                job.run_dir.parent.mkdir(parents=True, exist_ok=True)
                proc, log = _start(job.argv, job.log, threads)
                job.status = "running"
                running[job.name] = (proc, time.time(), log)
                save()
            for name in list(running):
                proc, started, log = running[name]
                rc = proc.poll()
                if rc is None:
                    continue
                log.close()
                job = next(j for j in jobs if j.name == name)
                _ended(job, rc, started)
                del running[name]
                save()
            bar.refresh()
            if running:
                time.sleep(poll)
    finally:
        for proc, _, _ in running.values():  # interrupted: stop what still runs
            proc.terminate()
        for name, (proc, started, log) in running.items():
            _stop(proc)
            log.close()
            job = next(j for j in jobs if j.name == name)
            job.status, job.returncode = "interrupted", proc.returncode
            job.seconds += time.time() - started
        bar.refresh()
        bar.close()
        save()


def _ray_job(argv: list[str], log_path: str, threads: int) -> int:
    """Runs inside a Ray worker: the job's subprocess, as a local sweep starts it; its exit status."""
    proc, log = _start(list(argv), Path(log_path), threads)
    try:
        return proc.wait()
    finally:  # cancelled: the run stops with the task
        _stop(proc)
        log.close()


def _run_ray(jobs: list[SweepJob], save, address: str, workers: int | None, threads: int, quiet,
             poll: float) -> None:
    try:
        import ray
    except ImportError:
        raise LmscopeError("--ray needs the ray package: pip install 'ray>=2.9'") from None
    init = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True,
            "logging_level": "ERROR"}
    started_here = not ray.is_initialized()
    try:
        if address == "local":
            ray.init(num_cpus=(workers or cpu_count()) * threads, **init)
        else:
            ray.init(address=address, **init)
    except ConnectionError as e:
        raise LmscopeError(f"could not connect to the Ray cluster at {address!r}: {e}") from None
    except (RuntimeError, ValueError) as e:
        raise LmscopeError(f"ray.init(address={address!r}) failed: {e}") from None
    task = ray.remote(num_cpus=threads, max_retries=2, retry_exceptions=False)(_ray_job)
    for job in jobs:
        job.run_dir.parent.mkdir(parents=True, exist_ok=True)
    pending = deque(jobs)
    limit = workers or len(jobs)  # Ray's scheduler bounds the rest by the cluster's CPUs
    refs: dict = {}
    bar = _Bar(jobs, quiet)
    try:
        while pending or refs:
            while pending and len(refs) < limit:
                job = pending.popleft()
                job.status = "running"
                refs[task.remote(job.argv, str(job.log.resolve()), threads)] = (job, time.time())
                save()
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=poll)
            for ref in ready:
                job, started = refs.pop(ref)
                try:
                    rc = int(ray.get(ref))
                except Exception as e:  # noqa: BLE001 - a task's failure is recorded, the sweep goes on
                    rc = 1
                    with open(job.log, "a", encoding="utf-8") as log:
                        log.write(f"ray task failed: {type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}\n")
                _ended(job, rc, started)
                save()
            bar.refresh()
    finally:
        for ref, (job, started) in refs.items():
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
            job.status = "interrupted"
            job.seconds += time.time() - started
        bar.refresh()
        bar.close()
        save()
        if started_here:
            ray.shutdown()


RAY_CONNECT_TIMEOUT = 10.0  # seconds to wait for a Ray head's port to answer before giving up


def check_ray_address(address: str | None, timeout: float = RAY_CONNECT_TIMEOUT) -> None:
    """Refuse a ``--ray`` address that cannot work, within ``timeout`` seconds and before any run starts:
    anything but ``auto``, ``local``, ``HOST:PORT`` or ``ray://HOST:PORT``, a port out of range, or a
    HOST:PORT where nothing accepts a connection (Ray itself would retry it for minutes)."""
    import socket
    import urllib.parse

    if address is None or address in ("auto", "local"):
        return
    text = str(address).strip()
    try:
        parts = urllib.parse.urlsplit(text if "://" in text else f"ray://{text}")
        scheme, host, port, path = parts.scheme, parts.hostname, parts.port, parts.path
    except ValueError:  # an unclosed [IPv6 address, a port that is not a number or out of range
        scheme = host = port = path = None
    if not text or scheme != "ray" or not host or port is None or path not in ("", "/") or any(
            c.isspace() for c in text):
        raise LmscopeError(f"bad Ray address {address!r}: give auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        raise LmscopeError(f"no Ray cluster at {address!r}: {host}:{port} did not answer within {timeout:g} s") from None
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise LmscopeError(f"no Ray cluster at {address!r}: cannot connect to {host}:{port} ({why}); start one "
                           "with `ray start --head`, or use --ray local") from None


def run_sweep(jobs: list[SweepJob], root: str | os.PathLike, *, workers: int | None = None,
              threads: int | None = None, ray: str | None = None, quiet: bool | None = None,
              poll: float = 2.0) -> dict:
    """Run ``jobs`` (see the module docstring; jobs already marked ``skipped`` are listed, not run); returns ``{"backend", "root", "jobs": [...], "failed"}``.
    Raises LmscopeError for an empty sweep, duplicate names or bad worker/thread counts; failed jobs
    are reported in the result, not raised."""
    if not jobs:
        raise LmscopeError("the sweep has no runs")
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise LmscopeError("two runs of the sweep have the same name")
    for name, v in (("workers", workers), ("threads", threads)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise LmscopeError(f"{name} must be a positive integer, got {v!r}")
    check_ray_address(ray)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise LmscopeError(f"sweep folder path exists and is not a directory: {root}")
    root.mkdir(parents=True, exist_ok=True)
    cores = cpu_count()
    todo = [j for j in jobs if j.status != "skipped"]
    backend = "local" if ray is None else f"ray:{ray}"

    def save() -> None:
        _save(root, jobs, backend)

    with _term_as_interrupt():
        workers, threads = _dispatch(todo, save, ray, workers, threads, cores, quiet, poll)
    save()
    return {"backend": backend, "root": str(root), "workers": workers, "threads": threads,
            "jobs": [j.to_dict() for j in jobs], "failed": [j.name for j in jobs if j.status == "failed"]}


@contextlib.contextmanager
def _term_as_interrupt():
    """SIGTERM (a scheduler's or `kill`'s stop) ends the sweep like Ctrl-C: running jobs are stopped
    and recorded as interrupted, so they resume later. Only in the main thread, where handlers live."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _dispatch(todo, save, ray, workers, threads, cores, quiet, poll) -> tuple[int | None, int]:
    if ray is None:
        workers = max(1, min(workers or cores, len(todo)))
        threads = threads or max(1, cores // workers)
        if todo:
            _run_local(todo, save, workers, threads, quiet, poll)
    else:
        threads = threads or 1
        if todo:
            _run_ray(todo, save, ray, workers, threads, quiet, poll)
    return workers, threads
