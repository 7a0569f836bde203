"""The household world shared by the label-correction and object-search benchmarks.

Ground truth written down by hand, from common sense, so that a language model has a chance to know
it: which objects are found in which room (weights of p(object | room)), which objects look alike,
and which objects are rare in the data that the simulated perception models were trained on.
"""

from __future__ import annotations

import numpy as np

ROOMS = ("kitchen", "bathroom", "bedroom", "living room", "office", "garage")

OBJECTS = ("stove", "refrigerator", "sink", "toaster", "toilet", "bathtub", "towel", "bed", "pillow", "dresser",
           "sofa", "television", "bookshelf", "desk", "computer", "printer", "car", "bicycle", "lawn mower")

# p(object | room), up to a constant per room: how often a room of this kind holds the object
ROOM_OBJECTS = {
    "kitchen": {"stove": 6, "refrigerator": 6, "sink": 6, "toaster": 4, "towel": 1},
    "bathroom": {"toilet": 6, "sink": 6, "bathtub": 4, "towel": 5},
    "bedroom": {"bed": 6, "pillow": 5, "dresser": 5, "bookshelf": 1, "television": 1},
    "living room": {"sofa": 6, "television": 6, "bookshelf": 3, "pillow": 3},
    "office": {"desk": 6, "computer": 6, "printer": 4, "bookshelf": 3},
    "garage": {"car": 6, "bicycle": 4, "lawn mower": 4, "refrigerator": 1},
}

# groups of objects that look alike (a classifier confuses them; "the X looks like the Y")
LOOK_ALIKE = (
    ("sink", "bathtub", "toilet"),
    ("towel", "pillow"),
    ("bed", "sofa"),
    ("television", "computer"),
    ("dresser", "bookshelf", "desk"),
    ("refrigerator", "stove"),
    ("toaster", "printer"),
    ("bicycle", "lawn mower"),
)

# objects the perception models saw rarely in training (the rare slice)
RARE = ("toaster", "bathtub", "pillow", "lawn mower", "bookshelf")


def object_room_table(objects=OBJECTS, rooms=ROOMS) -> np.ndarray:
    """p(object | room): an (objects x rooms) array whose columns sum to 1."""
    t = np.array([[ROOM_OBJECTS[r].get(o, 0.0) for r in rooms] for o in objects], dtype=float)
    return t / t.sum(axis=0, keepdims=True)


def look_alike_table(objects=OBJECTS, same: float = 1.0, alike: float = 0.5, other: float = 0.02) -> np.ndarray:
    """Similarity of object pairs (objects x objects): ``same`` on the diagonal, ``alike`` within a group."""
    n = len(objects)
    s = np.full((n, n), float(other))
    for group in LOOK_ALIKE:
        idx = [objects.index(o) for o in group if o in objects]
        for i in idx:
            for j in idx:
                s[i, j] = alike
    np.fill_diagonal(s, same)
    return s


def training_frequency(objects=OBJECTS, rare_factor: float = 0.1) -> np.ndarray:
    """How often each object appeared in the perception models' training data (sums to 1)."""
    q = np.array([rare_factor if o in RARE else 1.0 for o in objects])
    return q / q.sum()
