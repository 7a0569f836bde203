"""Procedural images: the baselines that a vision model trained on language-model drawings is compared with.

Every generator returns ``n`` RGB images as a uint8 array of shape ``(n, size, size, 3)`` and is a
pure function of ``(n, size, seed)`` (numpy's default generator), computed for whole blocks of images
at once on pixel-coordinate grids.

Random shapes (:func:`random_shapes`)
    A background (a random colour plus a random linear gradient of amplitude up to 0.5), then
    ``max_shapes`` shape slots painted in order; each slot is present with probability 0.8 and holds
    one of four primitives with a uniform random colour, centre (cx, cy) and size r in
    [0.08, 0.35]·size:

    - circle: (x - cx)² + (y - cy)² ≤ r²
    - rectangle rotated by θ: with u = cos θ·(x - cx) + sin θ·(y - cy), v = -sin θ·(x - cx) + cos θ·(y - cy),
      |u| ≤ r·a and |v| ≤ r/a (aspect a = e^g, g uniform in [-0.7, 0.7])
    - triangle: three vertices at distance r·[0.5, 1.5] from the centre; a pixel is inside when the three
      edge functions e_ij(p) = (p_j - p_i) × (p - p_i) have the same sign
    - line: distance from the pixel to the segment of half-length 2r through the centre at angle θ at
      most t/2 (thickness t in [1, max(1.5, size/16)] pixels).

Dead leaves (:func:`dead_leaves`, Lee, Mumford and Huang 2001)
    A stack of occluding discs ("leaves") with uniform random centres, uniform random RGB colours and
    radii from a power law p(r) ∝ r^-alpha on [r_min, r_max]·size (alpha = 3 gives the scale-invariant
    statistics of natural images), drawn by inverting the CDF:
    r = (r_min^(1-alpha) + u·(r_max^(1-alpha) - r_min^(1-alpha)))^(1/(1-alpha)).
    Leaves are laid front to back: a pixel takes the colour of the first leaf that covers it. Laying
    stops when every pixel is covered or after ``max_leaves`` leaves; the pixels still bare (rare with
    the defaults) show the image's own background colour.
"""

from __future__ import annotations

import numpy as np

from lmscope.errors import LmscopeError, check_int, check_number

BLOCK = 1024  # images generated at once: bounds the memory of the (block, size, size) masks

# the image sources a procedural baseline can be asked for by name (see :func:`generate`)
GENERATORS = ("random-shapes", "dead-leaves")


def _check(n, size, seed) -> tuple[int, int, int]:
    n = check_int("number of images", n, 1)
    size = check_int("image size", size, 8, 512)
    seed = check_int("seed", seed, 0)
    return n, size, seed


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as (1, size, 1) rows y and (1, 1, size) columns x."""
    c = np.arange(size, dtype=np.float32) + 0.5
    return c[None, :, None], c[None, None, :]


def _col(v: np.ndarray) -> np.ndarray:
    """Per-image values (m,) as (m, 1, 1) for broadcasting against the pixel grid."""
    return v.astype(np.float32)[:, None, None]


def _shape_masks(rng: np.random.Generator, m: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One shape slot for m images: its (m, size, size) mask and its (m, 3) colour."""
    y, x = _grid(size)
    kind = rng.integers(0, 4, m)
    cx, cy = rng.uniform(0, size, m), rng.uniform(0, size, m)
    r = rng.uniform(0.08, 0.35, m) * size
    theta = rng.uniform(0, np.pi, m)
    aspect = np.exp(rng.uniform(-0.7, 0.7, m))
    dx, dy = x - _col(cx), y - _col(cy)
    c, s = _col(np.cos(theta)), _col(np.sin(theta))
    u, v = c * dx + s * dy, -s * dx + c * dy

    circle = dx * dx + dy * dy <= _col(r) ** 2
    rect = (np.abs(u) <= _col(r * aspect)) & (np.abs(v) <= _col(r / aspect))

    angles = rng.uniform(0, 2 * np.pi, (m, 3))
    dist = rng.uniform(0.5, 1.5, (m, 3)) * r[:, None]
    vx, vy = cx[:, None] + dist * np.cos(angles), cy[:, None] + dist * np.sin(angles)
    signs = []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        ex, ey = _col(vx[:, j] - vx[:, i]), _col(vy[:, j] - vy[:, i])
        signs.append(ex * (y - _col(vy[:, i])) - ey * (x - _col(vx[:, i])) >= 0)
    triangle = (signs[0] == signs[1]) & (signs[1] == signs[2])

    thick = rng.uniform(1.0, max(1.5, size / 16), m)
    half = 2 * r
    along = np.clip(u, -_col(half), _col(half))
    line = (u - along) ** 2 + v * v <= (_col(thick) / 2) ** 2

    mask = np.where(_col(kind) == 0, circle, np.where(_col(kind) == 1, rect,
                                                      np.where(_col(kind) == 2, triangle, line)))
    colour = rng.integers(0, 256, (m, 3))
    return mask, colour


def random_shapes(n: int, size: int = 32, seed: int = 0, max_shapes: int = 6) -> np.ndarray:
    """``n`` images of random coloured circles, rotated rectangles, triangles and lines on random
    gradient backgrounds, shape ``(n, size, size, 3)`` uint8 (see the module docstring)."""
    n, size, seed = _check(n, size, seed)
    max_shapes = check_int("max_shapes", max_shapes, 1, 64)
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        base = rng.uniform(0, 255, (m, 3)).astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi, m)
        amp = rng.uniform(0, 0.5, m)
        ramp = (_col(np.cos(ang)) * (x / size - 0.5) + _col(np.sin(ang)) * (y / size - 0.5)) * _col(amp)
        img = np.clip(base[:, None, None, :] * (1 + ramp[..., None]), 0, 255).astype(np.uint8)
        for _ in range(max_shapes):
            mask, colour = _shape_masks(rng, m, size)
            present = rng.random(m) < 0.8
            mask &= present[:, None, None]
            img = np.where(mask[..., None], colour[:, None, None, :].astype(np.uint8), img)
        out[start:start + m] = img
    return out


def dead_leaves(n: int, size: int = 32, seed: int = 0, alpha: float = 3.0, r_min: float = 0.03,
                r_max: float = 0.6, max_leaves: int = 400) -> np.ndarray:
    """``n`` dead-leaves images: occluding discs with power-law radii (exponent ``alpha``, radii in
    ``[r_min, r_max]`` as fractions of ``size``) and random colours, shape ``(n, size, size, 3)`` uint8
    (see the module docstring)."""
    n, size, seed = _check(n, size, seed)
    alpha = check_number("alpha", alpha, above=1.0, maximum=10.0)
    r_min = check_number("r_min", r_min, above=0.0, maximum=1.0)
    r_max = check_number("r_max", r_max, above=0.0, maximum=4.0)
    if r_max <= r_min:
        raise LmscopeError(f"r_max ({r_max:g}) must be larger than r_min ({r_min:g})")
    max_leaves = check_int("max_leaves", max_leaves, 1, 100_000)
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    lo, hi = (r_min * size) ** (1 - alpha), (r_max * size) ** (1 - alpha)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        background = rng.integers(0, 256, (m, 3))
        leaf = np.full((m, size, size), -1, dtype=np.int16)  # index of the leaf seen at each pixel
        colours = rng.integers(0, 256, (m, max_leaves, 3)).astype(np.uint8)
        centres = rng.uniform(0, size, (m, max_leaves, 2)).astype(np.float32)
        radii = ((lo + rng.random((m, max_leaves)) * (hi - lo)) ** (1 / (1 - alpha))).astype(np.float32)
        for k in range(max_leaves):
            bare = leaf < 0
            if k % 16 == 0 and not bare.any():
                break
            dy2 = (y - centres[:, k, 1, None, None]) ** 2
            dx2 = (x - centres[:, k, 0, None, None]) ** 2
            covered = (dy2 + dx2) <= (radii[:, k, None, None] ** 2)
            np.copyto(leaf, k, where=bare & covered)
        idx = np.maximum(leaf, 0).reshape(m, -1).astype(np.int64)
        img = np.take_along_axis(colours, idx[..., None], axis=1).reshape(m, size, size, 3)
        img = np.where((leaf < 0)[..., None], background[:, None, None, :].astype(np.uint8), img)
        out[start:start + m] = img
    return out


def generate(name: str, n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """The procedural images of the generator ``name`` (one of :data:`GENERATORS`) with its defaults."""
    if name == "random-shapes":
        return random_shapes(n, size, seed)
    if name == "dead-leaves":
        return dead_leaves(n, size, seed)
    raise LmscopeError(f"unknown procedural image generator {name!r}; choose one of {', '.join(GENERATORS)}")
