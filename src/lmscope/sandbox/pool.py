"""Many sandboxed runs in parallel: each job is its own sandbox (a process tree), so a thread per slot only
waits on it. Slots get distinct uids when lmscope runs as root, so one job's processes never count against
another's process limit.

>>> results = run_many([dict(argv=[PYTHON, "-c", "print(1)"])] * 8, jobs=4)
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from lmscope.sandbox.core import SandboxResult, run_sandboxed, sandbox_backend


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_many(jobs_spec: Sequence[dict], *, jobs: int | None = None, unsafe: bool = False,
             on_done: Callable[[int, SandboxResult], None] | None = None) -> list[SandboxResult]:
    """Run each ``dict`` of :func:`run_sandboxed` keyword arguments; results in the order given.

    ``on_done(index, result)`` is called (from the caller's thread) as each finishes, e.g. to save it.
    """
    sandbox_backend(unsafe)                       # refuse before starting anything
    jobs = max(1, min(jobs or default_jobs(), len(jobs_spec) or 1))
    slots: queue.Queue[int] = queue.Queue()
    for s in range(jobs):
        slots.put(s)

    def one(spec: dict) -> SandboxResult:
        slot = slots.get()
        try:
            return run_sandboxed(**spec, unsafe=unsafe, slot=slot)
        finally:
            slots.put(slot)

    results: list[SandboxResult | None] = [None] * len(jobs_spec)
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        futures = {ex.submit(one, spec): i for i, spec in enumerate(jobs_spec)}
        from concurrent.futures import as_completed
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if on_done is not None:
                on_done(i, results[i])
    return results  # type: ignore[return-value]
