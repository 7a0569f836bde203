"""Running drawing code to an image, always in the sandbox (:mod:`lmscope.sandbox`).

>>> r = render("import matplotlib.pyplot as plt\\nplt.plot([0, 1])", "python")
>>> r.outcome, r.image.shape
('image', (256, 256, 3))

Languages
---------
``python``
    The code runs as a script with matplotlib's Agg backend. It is compiled first inside the sandbox (a
    ``SyntaxError`` is its own outcome). ``plt.show`` does nothing. The image is ``image.png`` if the code
    saved one, else the newest ``*.png`` it saved, else its last open figure saved at 100 dpi.
``svg``
    The model writes the SVG document itself; it is rasterized inside the sandbox as well (a rasterizer
    follows external references and allocates whatever canvas a file asks for), by resvg at a fixed
    256 x 256 canvas on white, whatever size the file declares. A document that does not parse is a
    syntax error.

Outcomes
--------
``image`` (rendered and not blank), ``blank`` (rendered, but every pixel within 8 grey levels of the
median colour), ``syntax-error``, ``runtime-error``, ``timeout``, ``limit`` (killed by the CPU, memory,
file-size or process limit) and ``sandbox-error`` (the supervisor itself failed or returned no usable
image: an oversized, corrupt or absent PNG). Every image returned is RGB, letterboxed on white to
``SIZE x SIZE``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import numpy as np

from lmscope.errors import LmscopeError
from lmscope.sandbox import PYTHON, Limits, SandboxResult, run_many, run_sandboxed

LANGUAGES = ("python", "svg")
OUTCOMES = ("image", "blank", "syntax-error", "runtime-error", "timeout", "limit", "sandbox-error")
SIZE = 256
MAX_PIXELS = 4096 * 4096
SYNTAX_EXIT = 65
DEFAULT_LIMITS = Limits(cpu_seconds=20, wall_seconds=40, memory_mb=2048, file_mb=32, processes=32)

_PYTHON_RUNNER = r'''
import glob, os, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
src = open("sample.py", encoding="utf-8", errors="replace").read()
try:
    code = compile(src, "sample.py", "exec")
except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
    print(f"{type(e).__name__}: {e}", file=sys.stderr)
    raise SystemExit(65)
plt.show = lambda *a, **k: None
exec(code, {"__name__": "__main__", "__file__": "sample.py"})
if not os.path.isfile("image.png") or os.path.islink("image.png"):
    pngs = sorted((p for p in glob.glob("*.png") if os.path.isfile(p) and not os.path.islink(p)),
                  key=os.path.getmtime)
    if pngs:
        os.replace(pngs[-1], "image.png")
    elif plt.get_fignums():
        fig = plt.figure(plt.get_fignums()[-1])
        w, h = fig.get_size_inches()
        fig.savefig("image.png", dpi=min(100, 2048 / max(w, h, 1e-3)))
'''

_SVG_RUNNER = r'''
import sys
data = open("sample.svg", "rb").read()
try:
    import resvg_py
except ImportError:
    print("the SVG rasterizer resvg-py is not installed (pip install resvg-py)", file=sys.stderr)
    raise SystemExit(70)
try:
    png = resvg_py.svg_to_bytes(svg_string=data.decode("utf-8", "replace"), width=256, height=256,
                                background="white")
except ValueError as e:
    print(f"SVG error: {e}", file=sys.stderr)
    raise SystemExit(65)
open("image.png", "wb").write(bytes(png))
'''


@dataclass
class Render:
    outcome: str
    detail: str = ""
    image: np.ndarray | None = field(default=None, repr=False)   # SIZE x SIZE x 3 uint8
    seconds: float = 0.0
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "image"

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "detail": self.detail, "seconds": round(self.seconds, 3),
                "stderr": self.stderr[-2000:]}


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise LmscopeError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    return language


def sandbox_job(code: str, language: str, limits: Limits | None = None) -> dict:
    """The :func:`lmscope.sandbox.run_sandboxed` arguments that render ``code``."""
    check_language(language)
    runner, name = (_PYTHON_RUNNER, "sample.py") if language == "python" else (_SVG_RUNNER, "sample.svg")
    return {"argv": [PYTHON, "-I", "-B", "-c", runner], "files": {name: code.encode("utf-8", "replace")},
            "outputs": ("image.png",), "limits": limits or DEFAULT_LIMITS}


def letterbox(img, size: int = SIZE) -> np.ndarray:
    """A PIL image or an image array (see :func:`lmscope.vision.images.to_rgb`) → ``size x size x 3`` uint8,
    aspect kept, transparency and padding white."""
    from PIL import Image

    from lmscope.vision.images import to_rgb

    if isinstance(img, Image.Image):
        img.load()
    img = Image.fromarray(to_rgb(img))
    scale = size / max(img.size)
    new = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
    img = img.resize(new, Image.LANCZOS)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(img, ((size - new[0]) // 2, (size - new[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8).copy()


def decode_png(data: bytes) -> np.ndarray:
    """Checked decoding of a PNG the sandbox returned: its header's size is read before any pixel."""
    from PIL import Image
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 33:
        raise ValueError("not a PNG")
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if w * h > MAX_PIXELS or w < 1 or h < 1:
        raise ValueError(f"image of {w} x {h} pixels is over the {MAX_PIXELS}-pixel limit")
    img = Image.open(io.BytesIO(data))
    if img.size != (w, h):
        raise ValueError("inconsistent PNG header")
    return letterbox(img)


def is_blank(image: np.ndarray, tolerance: int = 8) -> bool:
    """Every pixel within ``tolerance`` grey levels of the median colour."""
    med = np.median(image.reshape(-1, 3), axis=0)
    return bool(np.abs(image.astype(np.int16) - med.astype(np.int16)).max() <= tolerance)


def outcome_of(result: SandboxResult) -> Render:
    """Map a sandbox result to a rendering outcome."""
    base = {"seconds": result.seconds, "stderr": result.stderr}
    if result.status in ("timeout", "limit", "sandbox-error"):
        return Render(result.status, result.detail, **base)
    if result.status == "error":
        if result.returncode == SYNTAX_EXIT:
            last = (result.stderr.strip().splitlines() or [""])[-1]
            return Render("syntax-error", last[:200], **base)
        last = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        return Render("runtime-error", (last[-1] if last else result.detail)[:200], **base)
    data = result.files.get("image.png")
    if data is None:
        return Render("runtime-error", "the code drew nothing (no figure, no image.png)", **base)
    try:
        image = decode_png(data)
    except Exception as e:   # a PNG the sample wrote itself can be anything  # noqa: BLE001
        return Render("sandbox-error", f"unusable image: {str(e)[:150]}", **base)
    if is_blank(image):
        return Render("blank", "every pixel is the same colour", image=image, **base)
    return Render("image", image=image, **base)


def render(code: str, language: str, *, limits: Limits | None = None, unsafe: bool = False) -> Render:
    """Run one piece of drawing code in the sandbox and return its outcome (and image)."""
    return outcome_of(run_sandboxed(**sandbox_job(code, language, limits), unsafe=unsafe))


def render_many(codes: list[tuple[str, str]], *, limits: Limits | None = None, jobs: int | None = None,
                unsafe: bool = False, on_done=None) -> list[Render]:
    """Render ``(code, language)`` pairs with the sandbox pool; ``on_done(i, render)`` as each ends."""
    specs = [sandbox_job(code, lang, limits) for code, lang in codes]
    callback = None if on_done is None else (lambda i, r: on_done(i, outcome_of(r)))
    return [outcome_of(r) for r in run_many(specs, jobs=jobs, unsafe=unsafe, on_done=callback)]


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(text: str, language: str) -> str:
    """The code in an LM's answer: the first fenced block (preferring one tagged with the language), else
    for SVG the ``<svg ...</svg>`` element, else the whole answer."""
    check_language(language)
    blocks = _FENCE.findall(text)
    tagged = [body for tag, body in blocks if tag.lower() in (language, "xml" if language == "svg" else "py")]
    if tagged or blocks:
        code = (tagged or [body for _, body in blocks])[0]
    else:
        code = text
    if language == "svg":
        m = re.search(r"<svg\b.*?</svg\s*>", code, re.S | re.I) or re.search(r"<svg\b.*", code, re.S | re.I)
        if m:
            code = m.group(0)
    return code.strip() + "\n"
