"""Helpers shared by the benchmark scripts: machine info, result files, plain-text tables."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO = BENCH_DIR.parent


def command_line() -> str:
    """The command that started this script, as typed from the repo root."""
    exe = sys.executable
    try:
        exe = os.path.relpath(exe, REPO) if Path(exe).is_relative_to(REPO) else exe
    except ValueError:
        pass
    script = os.path.relpath(Path(sys.argv[0]).resolve(), REPO)
    return shlex.join([exe, script, *sys.argv[1:]])


def machine_info(threads: int | None = None) -> dict:
    import torch

    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
    }
    try:
        import psutil

        info["memory_total_gb"] = round(psutil.virtual_memory().total / 1e9, 1)
        info["load_avg_1m_at_start"] = round(os.getloadavg()[0], 2)
    except (ImportError, OSError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def write_result(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_default) + "\n")
    tmp.replace(path)
    return path


def _default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def table(rows: list[list], header: list[str]) -> str:
    """A plain monospace table (also valid Markdown)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.1f} MB"
