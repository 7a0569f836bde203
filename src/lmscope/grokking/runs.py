"""Reading a grokking run folder: its configuration, task and metrics rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lmscope.errors import LmscopeError
from lmscope.train.loop import RUN_FILE, read_metrics


def load_run(run_dir: str | os.PathLike) -> dict:
    """``{"name", "path", "task", "layers", "rows"}`` of a grokking run folder (LmscopeError if it is
    not one or has no metrics)."""
    path = Path(run_dir)
    run_file = path / RUN_FILE
    if not run_file.is_file():
        raise LmscopeError(f"{path} is not a training run (no {RUN_FILE})")
    try:
        info = json.loads(run_file.read_text(encoding="utf-8"))
        layers = int(info["model"]["n_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LmscopeError(f"{run_file} is unreadable") from None
    task = (info.get("meta") or {}).get("task") if isinstance(info.get("meta"), dict) else None
    grok = path / "grok.json"
    if task is None and grok.is_file():
        try:
            task = json.loads(grok.read_text(encoding="utf-8")).get("task")
        except (OSError, ValueError):
            task = None
    rows = read_metrics(path)
    if not rows:
        raise LmscopeError(f"{path} has no metrics rows yet")
    return {"name": path.name, "path": str(path), "task": task, "layers": layers, "rows": rows}
