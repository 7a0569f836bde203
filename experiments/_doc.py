"""Shared by the experiment scripts: write a results page, keeping its hand-written reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PLACEHOLDER = "READING_PLACEHOLDER"


def write_keeping_reading(doc: Path, text: str) -> None:
    """Write ``text`` to ``doc``; its ``## Reading`` placeholder takes the reading ``doc`` already has."""
    if doc.is_file():
        old = doc.read_text()
        if "## Reading" in old and PLACEHOLDER not in old.split("## Reading", 1)[1]:
            text = text.replace(PLACEHOLDER, old.split("## Reading", 1)[1].strip())
    doc.write_text(text)


def md_table(header, rows) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def mean_range(values) -> str:
    """``mean [min, max]`` of the values that are not None (the value alone for one, "–" for none)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return "–"
    if len(v) == 1:
        return f"{v[0]:.2f}"
    return f"{v.mean():.2f} [{v.min():.2f}, {v.max():.2f}]"
