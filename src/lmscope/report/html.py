"""A small self-contained HTML report: headings, text, tables and images in one ``index.html``."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from lmscope._io import write_text

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; } th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; } code { background: #f4f4f4; padding: 0 3px; }
"""


class Report:
    """Collects sections, then writes ``index.html`` (atomically) into the report folder."""

    def __init__(self, out: str | Path, title: str):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def code(self, text: str) -> None:
        self.parts.append(f"<pre><code>{html.escape(text)}</code></pre>")

    def table(self, df: pd.DataFrame, max_rows: int = 60, floatfmt: str = "{:.4g}") -> None:
        shown = df.head(max_rows)
        self.parts.append(shown.to_html(index=False, float_format=lambda v: floatfmt.format(v), border=0))
        if len(df) > max_rows:
            self.text(f"(first {max_rows} of {len(df)} rows; the CSV has them all)", note=True)

    def kv(self, items: dict) -> None:
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in items.items())
        self.parts.append(f"<table>{rows}</table>")

    def image(self, path: str | Path, caption: str = "") -> None:
        rel = Path(path).resolve().relative_to(self.out.resolve())
        self.parts.append(f'<figure><img src="{html.escape(str(rel))}" alt="{html.escape(caption)}">'
                          f"<figcaption class=\"note\">{html.escape(caption)}</figcaption></figure>")

    def link(self, path: str | Path, text: str) -> None:
        rel = Path(path).resolve().relative_to(self.out.resolve())
        self.parts.append(f'<p><a href="{html.escape(str(rel))}">{html.escape(text)}</a></p>')

    def gallery(self, cells: list[tuple[str, str]], width: int = 160) -> None:
        """A grid of images: ``(href relative to the page, caption)`` per cell."""
        items = "".join(f'<figure style="display:inline-block;margin:4px;width:{width}px;vertical-align:top">'
                        f'<img src="{html.escape(href)}" alt="{html.escape(cap)}" style="width:{width}px">'
                        f'<figcaption class="note">{html.escape(cap)}</figcaption></figure>' for href, cap in cells)
        self.parts.append(f"<div>{items}</div>")

    def write(self) -> Path:
        body = "\n".join(self.parts)
        doc = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}</title>"
               f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")
        return write_text(self.out / "index.html", doc)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
