"""Rendering drawing code in the sandbox: known code draws a known image, SVG rasterization, each outcome,
code extraction from LM answers, and scoring of planted drawings."""

from __future__ import annotations

import numpy as np
import pytest

from lmscope.errors import LmscopeError
from lmscope.sandbox import SandboxUnavailable, sandbox_backend
from lmscope.vision.render import SIZE, decode_png, extract_code, is_blank, render, render_many

try:
    sandbox_backend()
    HAVE, WHY = True, ""
except SandboxUnavailable as e:
    HAVE, WHY = False, str(e)
needs_sandbox = pytest.mark.skipif(not HAVE, reason=f"no sandbox here: {WHY}")

RED_SQUARE_PY = """
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(2, 2), dpi=64)
ax = fig.add_axes([0, 0, 1, 1])
ax.set_xlim(0, 1); ax.set_ylim(0, 1); ax.axis('off')
ax.add_patch(plt.Rectangle((0.25, 0.25), 0.5, 0.5, color=(1, 0, 0)))
fig.savefig('image.png', dpi=64)
"""
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
       '<rect x="0" y="0" width="50" height="100" fill="#0000ff"/><circle cx="75" cy="50" r="20" fill="lime"/></svg>')


@needs_sandbox
def test_known_python_draws_a_known_image():
    r = render(RED_SQUARE_PY, "python")
    assert r.outcome == "image", r.stderr
    img = r.image
    assert img.shape == (SIZE, SIZE, 3)
    assert tuple(img[128, 128]) == (255, 0, 0)          # the centre is red
    assert tuple(img[10, 10]) == (255, 255, 255)        # the corner is white
    red = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert abs(red.mean() - 0.25) < 0.02                 # a square of half the side: a quarter of the area


@needs_sandbox
def test_svg_is_rasterized_at_a_fixed_canvas():
    r = render(SVG, "svg")
    assert r.outcome == "image", r.stderr
    assert tuple(r.image[128, 40]) == (0, 0, 255)        # the left half is blue
    assert tuple(r.image[128, 192]) == (0, 255, 0)       # the circle's centre is lime
    assert tuple(r.image[10, 240]) == (255, 255, 255)
    huge = SVG.replace('width="100" height="100"', 'width="1000000" height="1000000" viewBox="0 0 100 100"')
    r2 = render(huge, "svg")                             # the canvas is ours, not the file's
    assert r2.outcome == "image" and np.array_equal(r2.image, r.image)


@needs_sandbox
def test_every_outcome_is_told_apart():
    cases = [("def f(:\n", "python"), ("1 / 0", "python"), ("import matplotlib.pyplot as plt\nplt.figure()", "python"),
             ("x = 1", "python"), ("while True: pass", "python"), ("<svg><circle", "svg"),
             ('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "svg"),
             ("import os\nos.symlink('/etc/ld.so.cache', 'image.png')", "python"),
             ("open('image.png', 'wb').write(b'not a png')", "python")]
    from lmscope.sandbox import Limits
    rs = render_many(cases, limits=Limits(cpu_seconds=2, wall_seconds=10), jobs=2)
    got = [(r.outcome, r.detail) for r in rs]
    assert got[0][0] == "syntax-error" and "SyntaxError" in got[0][1]
    assert got[1][0] == "runtime-error" and "ZeroDivisionError" in got[1][1]
    assert got[2][0] == "blank"
    assert got[3][0] == "runtime-error" and "drew nothing" in got[3][1]
    assert got[4][0] == "limit"
    assert got[5][0] == "syntax-error"
    assert got[6][0] == "blank"
    assert got[7][0] == "runtime-error"                  # a link is never followed out of the sandbox
    assert got[8][0] == "sandbox-error" and "unusable image" in got[8][1]


def test_png_decoding_refuses_huge_headers_before_decoding():
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="over the"):
        decode_png(bomb)
    with pytest.raises(ValueError, match="not a PNG"):
        decode_png(b"GIF89a")


def test_blank_images():
    img = np.full((32, 32, 3), 240, np.uint8)
    assert is_blank(img)
    img[5, 5] = (0, 0, 0)
    assert not is_blank(img)


def test_code_is_taken_out_of_answers():
    answer = "Sure! Here it is:\n```python\nimport matplotlib\nprint(1)\n```\nEnjoy."
    assert extract_code(answer, "python") == "import matplotlib\nprint(1)\n"
    svg = 'Here:\n```xml\n<?xml version="1.0"?>\n<svg width="1"><rect/></svg>\n```'
    assert extract_code(svg, "svg") == '<svg width="1"><rect/></svg>\n'
    assert extract_code('text <svg a="1"><g/></svg> more', "svg") == '<svg a="1"><g/></svg>\n'
    assert extract_code("```\nx = 1", "python") == "x = 1\n"      # an unclosed fence
    with pytest.raises(LmscopeError, match="unknown language"):
        extract_code("x", "tikz")


@needs_sandbox
def test_planted_drawings_score_as_expected(tmp_path):
    """A red circle passes the shapes check of 'a red circle' and a blue square fails it; a real photo of
    a cat gets its fidelity from the classifier, and far more than the null reference."""
    from skimage import data as skdata

    from lmscope.vision.classifier import open_classifier
    from lmscope.vision.concepts import concept_by_id
    from lmscope.vision.draw import Sample, load_drawing, write_drawing
    from lmscope.vision.render import Render, letterbox
    from lmscope.vision.score import score_drawing

    circle = render("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.set_aspect('equal')\n"
                    "ax.add_patch(plt.Circle((.5, .5), .3, color='red'))\nax.axis('off')", "python")
    square = render('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                    '<rect x="2" y="2" width="6" height="6" fill="blue"/></svg>', "svg")
    from PIL import Image
    cat = Render("image", image=letterbox(Image.fromarray(skdata.chelsea())))
    red_circle, tabby = concept_by_id("shape-red-circle"), concept_by_id("object-tabby-cat")
    samples = [Sample(red_circle, "python", 0, [], "", "x", circle), Sample(red_circle, "svg", 0, [], "", "y", square),
               Sample(tabby, "python", 0, [], "", "z", cat),
               Sample(concept_by_id("object-coffee-mug"), "svg", 0, [], "", "w",
                      Render("image", image=letterbox(Image.fromarray(skdata.coffee()))))]
    write_drawing(tmp_path / "d", samples, {"lm": "planted"})
    result = score_drawing(load_drawing(tmp_path / "d"), open_classifier())
    rows = {(r["concept"], r["language"]): r for r in result.rows}
    assert rows[("shape-red-circle", "python")]["shapes_pass"] is True
    assert rows[("shape-red-circle", "svg")]["shapes_pass"] is False
    cat_row = rows[("object-tabby-cat", "python")]
    assert cat_row["top5_hit"] and cat_row["fidelity"] > 0.1 and cat_row["fidelity"] > 20 * cat_row["null_fidelity"]

