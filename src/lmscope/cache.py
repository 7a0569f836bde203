"""Where lmscope keeps its caches: ``$LMSCOPE_CACHE`` or ``~/.cache/lmscope``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("LMSCOPE_CACHE") or Path.home() / ".cache" / "lmscope")
    p = root.joinpath(*parts)
    p.mkdir(parents=True, exist_ok=True)
    return p
