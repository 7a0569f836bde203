"""The shapes check: does an image show the primitives a shapes-tier spec asks for?

Used to score drawings of the ``shapes`` tier of the vision check-up (Sharma et al., "A Vision
Check-up for Language Models") without an image-text model. The image is an HxWx3 uint8 array (HxW
grey and HxWx4 RGBA are converted; RGBA over white). Images larger than 512 px on a side are first
reduced by block averaging with the integer factor ceil(max(H, W) / 512).

1. Background. bg = mean colour of the most frequent bin of the border pixels (2 px frame, channels
   quantised to 16 levels). A pixel p is background when ||p - bg|| <= BG_TOL (40, RGB Euclidean).
2. Colours. Every other pixel gets the named colour of its nearest shade in
   :data:`lmscope.vision.concepts.PALETTE_SHADES` when ||p - s|| <= max_colour_dist (70). Otherwise,
   as an antialiased edge, the colour whose blend with the background explains it best:
   alpha = <p - bg, s - bg> / ||s - bg||^2, residual r = ||p - bg - alpha (s - bg)||; accepted when
   alpha >= 0.3 and r <= max_colour_dist / 2. Pixels left over are ignored.
3. Components. 8-connected components of each colour with at least min_area_frac (0.2 %) of the
   image's pixels (raw area). Holes are filled (an outline and a shape with another shape inside count
   as the whole shape). A *fringe* is dropped: a thin component (under 20 % of its pixels survive a 3x3
   erosion) whose neighbouring pixels (its 3x3 dilation minus itself) are mostly (>= 60 %) of other
   named colours, i.e. the blended rim between two shapes of different colours (red on yellow leaves
   an orange rim); an outline around a filled shape touches the background on one side and stays.
   A *frame* is dropped too: a thin outline classified (step 4) as a square or rectangle whose filled
   area is at least 30 % of the image, such as the box of a plot's axes.
4. Shape of a component, from its hole-filled mask: A = pixel count; the convex hull of the pixels'
   corner points (area H); the minimum-area enclosing rectangle of the hull (sides w >= h, area R,
   found over the hull's edge directions); extent = A / R, solidity = A / H, elongation = w / h;
   vertices = corners of the hull polygon simplified by Douglas-Peucker with tolerance 2 % of its
   perimeter. Ideal extents: triangle 1/2, circle and ellipse pi/4, square and rectangle 1.

       elongation >= 5                                   -> line
       solidity < 0.8:  4 <= vertices <= 8               -> star, else other
       extent < 0.64, or extent < 0.70 and vertices == 3 -> triangle
       extent < 0.83, or extent < 0.92 and vertices >= 6 -> circle (elongation < 1.25) / ellipse
       otherwise                                         -> square (elongation < 1.25) / rectangle

5. Checks. For each primitive (shape S, colour C, count n): colour (some component is C), shape (some
   C component is S) and count (exactly n components are C and S). For each relation, on the centroids
   (x right, y down, in units of max(H, W)) of the instances (the C-and-S components) of primitives a
   and b, over all pairs, with tol = 0.02:

       left_of(a, b):  x_b - x_a > max(tol, |y_b - y_a| / 2)     right_of(a, b) = left_of(b, a)
       above(a, b):    y_b - y_a > max(tol, |x_b - x_a| / 2)     below(a, b)    = above(b, a)
       inside(a, b):   every a lies in the filled mask of some b with a smaller area than it
       row(a):         >= 2 instances and |dx| > |dy| for every pair;   column(a): |dy| > |dx|

   With strict=True one more check: no component has a (colour, shape) that no primitive names.
   score = checks passed / checks made; passed = every check passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from lmscope.errors import LmscopeError, check_number
from lmscope.vision.concepts import PAIR_RELATIONS, PALETTE, PALETTE_SHADES, Concept, validate_spec

MAX_SIDE = 512
BG_TOL = 40.0
BLEND_MIN_ALPHA = 0.3
FRINGE_THIN = 0.2
FRINGE_COVER = 0.6
FRAME_AREA = 0.3
LINE_ELONG = 5.0
STAR_SOLIDITY = 0.8
TRIANGLE_EXTENT, TRIANGLE_EXTENT_HI = 0.64, 0.70
ROUND_EXTENT, ROUND_EXTENT_HI = 0.83, 0.92
ROUND_ASPECT = 1.25
REL_TOL = 0.02

COLOURS = tuple(PALETTE)
_SHADE_RGB = np.array([s for name in COLOURS for s in PALETTE_SHADES[name]], dtype=np.float64)
_SHADE_COLOUR = np.array([i for i, name in enumerate(COLOURS) for _ in PALETTE_SHADES[name]], dtype=np.int64)


@dataclass
class Component:
    """One connected region of one named colour."""
    colour: str
    shape: str
    area: float                      # hole-filled area as a fraction of the image
    centroid: tuple[float, float]    # (x, y) in units of max(H, W), x right, y down
    bbox: tuple[int, int, int, int]  # (row0, col0, row1, col1), end exclusive, in the analysed image
    extent: float
    solidity: float
    elongation: float
    vertices: int
    mask: np.ndarray = field(repr=False, default=None)  # hole-filled mask over bbox

    def to_dict(self) -> dict:
        return {"colour": self.colour, "shape": self.shape, "area": round(self.area, 5),
                "centroid": [round(self.centroid[0], 4), round(self.centroid[1], 4)], "bbox": list(self.bbox),
                "extent": round(self.extent, 4), "solidity": round(self.solidity, 4),
                "elongation": round(self.elongation, 4), "vertices": self.vertices}


@dataclass
class ShapesCheck:
    passed: bool
    score: float
    primitives: list[dict]           # shape, colour, expected, found (count of that colour and shape)
    checks: list[dict]               # name, ok, detail
    components: list[Component]
    reason: str
    background: tuple[int, int, int] = (255, 255, 255)

    def summary(self) -> dict:
        return {"passed": self.passed, "score": round(self.score, 4), "reason": self.reason,
                "primitives": [dict(p) for p in self.primitives]}

    def to_dict(self) -> dict:
        return {**self.summary(), "checks": [dict(c) for c in self.checks],
                "components": [c.to_dict() for c in self.components], "background": list(self.background)}


def as_rgb(image) -> np.ndarray:
    """``image`` (array-like or PIL image) as an HxWx3 uint8 array; an LmscopeError when it is none."""
    try:
        arr = np.asarray(image)
    except Exception as e:  # noqa: BLE001 - anything that is not array-like
        raise LmscopeError(f"not an image: {e}") from None
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise LmscopeError(f"an image must hold numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise LmscopeError("an image must not contain NaN or infinite values")
        arr = arr * 255.0 if arr.size and arr.max() <= 1.0 else arr
    arr = np.clip(arr, 0, 255).astype(np.float64)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise LmscopeError(f"an image must be HxWx3 (or HxW, HxWx4), got shape {tuple(arr.shape)}")
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4] / 255.0
        arr = arr[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise LmscopeError(f"an image must be at least 8x8 pixels, got {arr.shape[1]}x{arr.shape[0]}")
    return np.rint(arr).astype(np.uint8)


def _reduce(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    f = math.ceil(max(h, w) / MAX_SIDE)
    if f <= 1:
        return img.astype(np.float64)
    h2, w2 = (h // f) * f, (w // f) * f
    return img[:h2, :w2].astype(np.float64).reshape(h2 // f, f, w2 // f, f, 3).mean(axis=(1, 3))


def background_colour(img: np.ndarray) -> np.ndarray:
    """The dominant colour of the 2-pixel border (mean of its most frequent 16-level bin)."""
    border = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3),
                             img[:, :2].reshape(-1, 3), img[:, -2:].reshape(-1, 3)])
    q = (np.asarray(border, dtype=np.int64) // 16)
    codes = q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2]
    mode = np.bincount(codes).argmax()
    return border[codes == mode].mean(axis=0)


def colour_labels(img: np.ndarray, bg: np.ndarray, max_colour_dist: float = 70.0) -> np.ndarray:
    """An HxW array of indices into :data:`COLOURS` (-1: background or no named colour)."""
    h, w = img.shape[:2]
    px = np.rint(img.reshape(-1, 3)).astype(np.int64)
    # name each distinct colour once (a drawing has few), then spread the names over the pixels
    uniq, inverse = np.unique(px[:, 0] * 65536 + px[:, 1] * 256 + px[:, 2], return_inverse=True)
    p = np.stack([uniq // 65536, (uniq // 256) % 256, uniq % 256], axis=1).astype(np.float64)
    names = np.full(len(p), -1, dtype=np.int64)
    fg = np.linalg.norm(p - bg, axis=1) > BG_TOL
    usable = np.linalg.norm(_SHADE_RGB - bg, axis=1) > BG_TOL   # a shade like the background cannot be seen
    shades, owner = _SHADE_RGB[usable], _SHADE_COLOUR[usable]
    for lo in range(0, len(p), 16384):
        chunk = np.flatnonzero(fg[lo:lo + 16384]) + lo
        if not len(chunk) or not len(shades):
            continue
        q = p[chunk]
        d2 = (q * q).sum(1)[:, None] + (shades * shades).sum(1)[None] - 2 * q @ shades.T
        d = np.sqrt(np.maximum(d2, 0))
        nearest = d.argmin(axis=1)
        direct = d[np.arange(len(q)), nearest] <= max_colour_dist
        out = np.where(direct, owner[nearest], -1)
        todo = ~direct
        if todo.any():
            qb, sv = q[todo] - bg, shades - bg
            sv2 = (sv * sv).sum(axis=1)
            alpha = np.clip(qb @ sv.T / sv2, 0.0, 1.0)
            resid2 = (qb * qb).sum(1)[:, None] - 2 * alpha * (qb @ sv.T) + alpha ** 2 * sv2[None]
            resid = np.sqrt(np.maximum(resid2, 0))
            resid[alpha < BLEND_MIN_ALPHA] = np.inf
            best = resid.argmin(axis=1)
            ok = resid[np.arange(len(qb)), best] <= max_colour_dist / 2
            out[np.flatnonzero(todo)[ok]] = owner[best[ok]]
        names[chunk] = out
    return names[inverse.reshape(-1)].reshape(h, w)


def _hull_points(mask: np.ndarray) -> np.ndarray:
    """The corner points (x, y) of the mask's boundary pixels."""
    edge = mask & ~ndimage.binary_erosion(mask)
    ys, xs = np.nonzero(edge)
    offs = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)
    pts = (np.stack([xs, ys], axis=1)[:, None, :] + offs[None]).reshape(-1, 2)
    return np.unique(pts, axis=0)


def _min_rect(hull_xy: np.ndarray) -> tuple[float, float]:
    """Sides (w >= h) of the minimum-area rectangle enclosing a convex polygon."""
    best = (math.inf, 0.0, 0.0)
    edges = np.roll(hull_xy, -1, axis=0) - hull_xy
    for ex, ey in edges:
        n = math.hypot(ex, ey)
        if n == 0:
            continue
        ux, uy = ex / n, ey / n
        a = hull_xy @ np.array([ux, uy])
        b = hull_xy @ np.array([-uy, ux])
        w, h = a.max() - a.min(), b.max() - b.min()
        if w * h < best[0]:
            best = (w * h, max(w, h), min(w, h))
    return best[1], best[2]


def _simplified_vertices(poly: np.ndarray, frac: float = 0.02) -> int:
    """Corners of a closed polygon after Douglas-Peucker with tolerance ``frac`` of its perimeter."""
    perim = float(np.linalg.norm(np.roll(poly, -1, axis=0) - poly, axis=1).sum())
    eps = frac * perim
    if len(poly) <= 3:
        return len(poly)

    def dp(pts: np.ndarray) -> list[int]:
        a, b = pts[0], pts[-1]
        ab = b - a
        n = math.hypot(*ab)
        if n == 0:
            dist = np.linalg.norm(pts - a, axis=1)
        else:
            dist = np.abs(ab[0] * (pts[:, 1] - a[1]) - ab[1] * (pts[:, 0] - a[0])) / n
        i = int(dist.argmax())
        if dist[i] <= eps or len(pts) <= 2:
            return [0, len(pts) - 1]
        left, right = dp(pts[: i + 1]), dp(pts[i:])
        return left[:-1] + [j + i for j in right]

    # split the closed polygon at the first vertex and the vertex farthest from it
    far = int(np.linalg.norm(poly - poly[0], axis=1).argmax())
    ring = np.concatenate([poly, poly[:1]])
    first = dp(ring[: far + 1])
    second = dp(ring[far:])
    return len(first) - 1 + len(second) - 1


def shape_features(mask: np.ndarray) -> dict:
    """extent, solidity, elongation and vertices of a filled region (see the module docstring)."""
    area = float(mask.sum())
    pts = _hull_points(mask)
    try:
        hull = ConvexHull(pts)
    except (QhullError, ValueError):
        return {"extent": 1.0, "solidity": 1.0, "elongation": 1.0, "vertices": 4}
    poly = pts[hull.vertices]
    w, h = _min_rect(poly)
    return {"extent": area / max(w * h, 1e-9), "solidity": area / max(float(hull.volume), 1e-9),
            "elongation": w / max(h, 1e-9), "vertices": _simplified_vertices(poly)}


def classify_shape(extent: float, solidity: float, elongation: float, vertices: int) -> str:
    """The primitive a region's geometry describes (the rules of the module docstring)."""
    if elongation >= LINE_ELONG:
        return "line"
    if solidity < STAR_SOLIDITY:
        return "star" if 4 <= vertices <= 8 else "other"
    if extent < TRIANGLE_EXTENT or (extent < TRIANGLE_EXTENT_HI and vertices == 3):
        return "triangle"
    if extent < ROUND_EXTENT or (extent < ROUND_EXTENT_HI and vertices >= 6):
        return "circle" if elongation < ROUND_ASPECT else "ellipse"
    return "square" if elongation < ROUND_ASPECT else "rectangle"


def detect_components(image, *, max_colour_dist: float = 70.0, min_area_frac: float = 0.002
                      ) -> tuple[list[Component], tuple[int, int, int]]:
    """The coloured components of ``image`` with their shapes, and the background colour."""
    max_colour_dist = check_number("max_colour_dist", max_colour_dist, above=0.0)
    min_area_frac = check_number("min_area_frac", min_area_frac, above=0.0, below=1.0)
    img = _reduce(as_rgb(image))
    h, w = img.shape[:2]
    bg = background_colour(img)
    labels = colour_labels(img, bg, max_colour_dist)
    scale = float(max(h, w))
    min_px = max(4, int(math.ceil(min_area_frac * h * w)))
    found: list[Component] = []
    eight = np.ones((3, 3), dtype=bool)
    for ci, name in enumerate(COLOURS):
        cmask = labels == ci
        if cmask.sum() < min_px:
            continue
        comp, n = ndimage.label(cmask, structure=eight)
        for k, sl in enumerate(ndimage.find_objects(comp), start=1):
            if sl is None:
                continue
            r0, r1 = max(sl[0].start - 1, 0), min(sl[0].stop + 1, h)
            c0, c1 = max(sl[1].start - 1, 0), min(sl[1].stop + 1, w)
            raw = comp[r0:r1, c0:c1] == k
            n_raw = int(raw.sum())
            if n_raw < min_px:
                continue
            filled = ndimage.binary_fill_holes(raw)
            holes = filled & ~raw
            thin = ndimage.binary_erosion(raw, structure=eight).sum() < FRINGE_THIN * n_raw
            if thin:
                around = labels[r0:r1, c0:c1][ndimage.binary_dilation(raw, structure=eight) & ~raw]
                if ((around >= 0) & (around != ci)).mean() >= FRINGE_COVER:
                    continue
            f = shape_features(filled)
            shape = classify_shape(f["extent"], f["solidity"], f["elongation"], f["vertices"])
            area = float(filled.sum()) / (h * w)
            if thin and holes.any() and area >= FRAME_AREA and shape in ("square", "rectangle"):
                continue
            ys, xs = np.nonzero(filled)
            found.append(Component(
                colour=name, shape=shape, area=area,
                centroid=((xs.mean() + c0 + 0.5) / scale, (ys.mean() + r0 + 0.5) / scale),
                bbox=(r0, c0, r1, c1), extent=float(f["extent"]), solidity=float(f["solidity"]),
                elongation=float(f["elongation"]), vertices=int(f["vertices"]), mask=filled))
    return found, tuple(int(round(v)) for v in bg)


def _contains(outer: Component, inner: Component, scale_hw: tuple[int, int]) -> bool:
    h, w = scale_hw
    s = float(max(h, w))
    x, y = int(inner.centroid[0] * s), int(inner.centroid[1] * s)
    r0, c0, r1, c1 = outer.bbox
    if not (r0 <= y < r1 and c0 <= x < c1):
        return False
    return bool(outer.mask[y - r0, x - c0]) and inner.area < outer.area


def _relation_ok(kind: str, A: list[Component], B: list[Component], hw: tuple[int, int]) -> tuple[bool, str]:
    if kind in PAIR_RELATIONS and (not A or not B):
        return False, "a primitive of the relation is missing"
    if kind in ("right_of", "below"):
        A, B = B, A
        kind = {"right_of": "left_of", "below": "above"}[kind]
    if kind in ("left_of", "above"):
        for a in A:
            for b in B:
                dx, dy = b.centroid[0] - a.centroid[0], b.centroid[1] - a.centroid[1]
                main, other = (dx, dy) if kind == "left_of" else (dy, dx)
                if not main > max(REL_TOL, abs(other) / 2):
                    return False, f"centroids ({a.centroid[0]:.2f}, {a.centroid[1]:.2f}) and " \
                                  f"({b.centroid[0]:.2f}, {b.centroid[1]:.2f})"
        return True, ""
    if kind == "inside":
        for a in A:
            if not any(_contains(b, a, hw) for b in B):
                x, y = a.centroid
                return False, f"the {a.colour} {a.shape} at ({x:.2f}, {y:.2f}) is not inside"
        return True, ""
    # row / column over the instances of one primitive
    if len(A) < 2:
        return False, f"{len(A)} instance(s)"
    for i in range(len(A)):
        for j in range(i + 1, len(A)):
            dx = abs(A[i].centroid[0] - A[j].centroid[0])
            dy = abs(A[i].centroid[1] - A[j].centroid[1])
            if (kind == "row" and not dx > dy) or (kind == "column" and not dy > dx):
                return False, "instances not aligned"
    return True, ""


def check_shapes(image, spec, *, max_colour_dist: float = 70.0, min_area_frac: float = 0.002,
                 strict: bool = False) -> ShapesCheck:
    """Whether ``image`` shows what ``spec`` (a shapes-tier spec or a :class:`Concept` holding one) asks
    for, with the per-primitive counts, every check and a score in [0, 1]. ``strict`` adds one check:
    nothing else is drawn (no component whose colour and shape no primitive names)."""
    if isinstance(spec, Concept):
        if spec.spec is None:
            raise LmscopeError(f"concept {spec.id!r} has no shapes spec (tier {spec.tier})")
        spec = spec.spec
    spec = validate_spec(spec)
    img = as_rgb(image)
    comps, bg = detect_components(img, max_colour_dist=max_colour_dist, min_area_frac=min_area_frac)
    hw = _reduce(img).shape[:2]
    checks: list[dict] = []
    prims: list[dict] = []
    instances: list[list[Component]] = []
    for p in spec["primitives"]:
        shape, colour, n = p["shape"], p["colour"], int(p.get("count", 1))
        of_colour = [c for c in comps if c.colour == colour]
        inst = [c for c in of_colour if c.shape == shape]
        instances.append(inst)
        prims.append({"shape": shape, "colour": colour, "expected": n, "found": len(inst)})
        seen = ", ".join(sorted({c.shape for c in of_colour})) or "nothing"
        checks.append({"name": f"colour {colour}", "ok": bool(of_colour),
                       "detail": f"{len(of_colour)} {colour} component(s)"})
        checks.append({"name": f"shape {colour} {shape}", "ok": bool(inst), "detail": f"{colour}: {seen}"})
        checks.append({"name": f"count {colour} {shape}", "ok": len(inst) == n,
                       "detail": f"expected {n}, found {len(inst)}"})
    for r in spec.get("relations", []):
        kind = r["type"]
        a = instances[r["a"]]
        b = instances[r["b"]] if kind in PAIR_RELATIONS else []
        ok, detail = _relation_ok(kind, a, b, hw)
        pa = spec["primitives"][r["a"]]
        name = f"{kind} {pa['colour']} {pa['shape']}"
        if kind in PAIR_RELATIONS:
            pb = spec["primitives"][r["b"]]
            name += f", {pb['colour']} {pb['shape']}"
        checks.append({"name": name, "ok": ok, "detail": detail})
    if strict:
        wanted = {(p["colour"], p["shape"]) for p in spec["primitives"]}
        extra = [c for c in comps if (c.colour, c.shape) not in wanted]
        checks.append({"name": "nothing else", "ok": not extra,
                       "detail": ", ".join(f"{c.colour} {c.shape}" for c in extra)})
    n_ok = sum(c["ok"] for c in checks)
    passed = n_ok == len(checks)
    if passed:
        reason = "all checks passed"
    elif not comps:
        reason = "no coloured shapes found"
    else:
        reason = "; ".join(f"{c['name']}: {c['detail']}" for c in checks if not c["ok"])
    return ShapesCheck(passed=passed, score=n_ok / len(checks), primitives=prims, checks=checks,
                       components=comps,
                       reason=reason, background=bg)
