"""Label correction for segmentation: a room ↔ object prior rescoring a noisy region classifier.

The graphical model: an image shows one room; each region shows one object drawn from p(object |
room); a classifier (trained on data where some objects were rare) gives each region a posterior
over objects. Two priors come from a language model (or anywhere else), asked as the LaMPP
reference asks them, binary questions after three plausible and three implausible worked examples:

- ``C[object, room]``, how plausible it is that a room holds an object: p(plausible | "A kitchen
  has a stove:");
- ``S[object, object']``, how plausible it is that one object looks like another: p(plausible |
  "The towel looks like the pillow:"); the diagonal is 1 (an object looks like itself).

Both are probabilities of plausibility as the model gives them: never calibrated, never
renormalized against anything (``query="next-token"`` keeps the older way: C from p(object | "The
{room} has a"), S from p(object' | "The {object} looks like a"), each calibrated and renormalized).

Inference (:func:`correct_labels`), as in the reference: with ``cond = C / Σ_o C[o, r]`` and
``mass[r] = Σ_o C[o, r]``, the room posterior is

    p(r | image) = softmax_r(κ · mean_i log Σ_o p_i(o) · cond[o, r] + log mass[r])      (κ = 10)

objects are weighted by ``w[o] = Σ_r C[o, r] · p(r | image)``, and each region's label becomes

    argmax_o  log p_i(o) / T + log w[o] + log S[label_i, o]

where ``label_i`` is the classifier's own label and ``T`` softens the classifier: the reference's
fixed T = 9 for the headline, or the best of a grid on the validation scenes (a sensitivity check;
the test scenes never take part in the choice). log p_i(o) / T equals the reference's
log softmax(logits / T) up to a constant per region, and the reference's normalizations of the
prior term (a softmax over o, S divided by a column sum) are constants per region too: neither
changes a label. A uniform C and S leave every label as the classifier had it.

The benchmark (:func:`make_label_benchmark`) draws scenes from the hand-written ground truth of
:mod:`lmscope.priors.world`, and simulates the classifier: evidence for the true object and, less,
for its look-alikes, Gaussian noise, plus the log of its training frequencies (a bias toward
frequent labels, against the rare objects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmscope.errors import LmscopeError
from lmscope.priors.queries import PriorQuery, PriorTable
from lmscope.priors.world import OBJECTS, RARE, ROOMS, look_alike_table, object_room_table, training_frequency

REFERENCE_TEMPERATURE = 9.0  # the reference's fixed classifier temperature
TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)  # the sensitivity grid, chosen on the validation scenes
ROOM_SHARPNESS = 10.0  # κ: the reference's weight on the mean region evidence for a room
QUERY_MODES = ("reference", "next-token")
_TINY = 1e-12

# worked examples shown before every question: objects outside the benchmark's 19, three of each answer,
# the plausible ones first (the reference's order)
COOCCURRENCE_EXAMPLES = (
    ("bedroom", "lamp", "plausible"), ("kitchen", "kettle", "plausible"), ("garage", "toolbox", "plausible"),
    ("office", "bathrobe", "implausible"), ("kitchen", "shower curtain", "implausible"),
    ("living room", "dishwasher", "implausible"),
)
SIMILARITY_EXAMPLES = (
    ("chair", "stool", "plausible"), ("cup", "mug", "plausible"), ("curtain", "blanket", "plausible"),
    ("lamp", "shoe", "implausible"), ("mirror", "broom", "implausible"), ("clock", "ladder", "implausible"),
)


@dataclass
class Scenes:
    """Scenes of one split: the true room, the true object and the classifier's posterior per region."""

    room: np.ndarray  # (n_scenes,)
    objects: np.ndarray  # (n_scenes, n_regions)
    posteriors: np.ndarray  # (n_scenes, n_regions, n_objects)

    def __len__(self) -> int:
        return len(self.room)


@dataclass
class LabelBenchmark:
    objects: tuple[str, ...]
    rooms: tuple[str, ...]
    rare: tuple[str, ...]
    val: Scenes
    test: Scenes
    settings: dict

    def rare_mask(self) -> np.ndarray:
        return np.array([o in self.rare for o in self.objects])


SIZES = {"small": dict(n_val=10, n_test=24, n_regions=5), "default": dict(n_val=30, n_test=60, n_regions=5)}


def make_label_benchmark(seed: int = 0, size: str = "default", *, evidence: float = 5.0, noise: float = 1.2,
                         alike: float = 0.75) -> LabelBenchmark:
    """Scenes with regions and a simulated classifier's posteriors (seeded)."""
    if size not in SIZES:
        raise LmscopeError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    sz = SIZES[size]
    rng = np.random.default_rng([seed, 101])
    truth = object_room_table()
    sim = look_alike_table(same=1.0, alike=alike, other=0.0)
    bias = np.log(training_frequency())

    def scenes(n: int) -> Scenes:
        room = rng.integers(len(ROOMS), size=n)
        objs = np.stack([rng.choice(len(OBJECTS), size=sz["n_regions"], p=truth[:, r]) for r in room])
        logits = evidence * sim[objs] + noise * rng.standard_normal(objs.shape + (len(OBJECTS),)) + bias
        logits -= logits.max(axis=-1, keepdims=True)
        post = np.exp(logits)
        post /= post.sum(axis=-1, keepdims=True)
        return Scenes(room, objs, post)

    val = scenes(sz["n_val"])
    test = scenes(sz["n_test"])
    settings = {"seed": seed, "size": size, **sz, "evidence": evidence, "noise": noise, "alike": alike,
                "rare_training_factor": 0.1}
    return LabelBenchmark(OBJECTS, ROOMS, RARE, val, test, settings)


# ------------------------------------------------------------------------------------------------
# Inference
# ------------------------------------------------------------------------------------------------
def _check_tables(C: np.ndarray, S: np.ndarray, n_objects: int):
    C = np.asarray(C, dtype=float)
    S = np.asarray(S, dtype=float)
    if C.ndim != 2 or C.shape[0] != n_objects:
        raise LmscopeError(f"the co-occurrence table must be (objects x rooms) = ({n_objects} x R), got {C.shape}")
    if S.shape != (n_objects, n_objects):
        raise LmscopeError(f"the similarity table must be {n_objects} x {n_objects}, got {S.shape}")
    if np.any(C < 0) or np.any(S < 0) or not C.sum() > 0:
        raise LmscopeError("prior tables must be non-negative and not all zero")
    return C, S


def room_posterior(posteriors: np.ndarray, C: np.ndarray, sharpness: float = ROOM_SHARPNESS) -> np.ndarray:
    """p(room | image) for one image's region posteriors (regions x objects) and C (objects x rooms):
    softmax_r(κ · mean_i log Σ_o p_i(o) · cond[o, r] + log mass[r]), κ = ``sharpness``."""
    mass = C.sum(axis=0)
    cond = C / np.maximum(mass, _TINY)
    score = sharpness * np.mean(np.log(posteriors @ cond + _TINY), axis=0) + np.log(mass / mass.sum() + _TINY)
    score -= score.max()
    p = np.exp(score)
    return p / p.sum()


def correct_labels(posteriors: np.ndarray, C: np.ndarray, S: np.ndarray, temperature: float = REFERENCE_TEMPERATURE,
                   sharpness: float = ROOM_SHARPNESS):
    """New labels for one image's regions and the room posterior: see the module docstring."""
    posteriors = np.asarray(posteriors, dtype=float)
    C, S = _check_tables(C, S, posteriors.shape[-1])
    if not temperature > 0:
        raise LmscopeError(f"the temperature must be positive, got {temperature}")
    p_room = room_posterior(posteriors, C, sharpness)
    w = C @ p_room
    S = S.copy()
    np.fill_diagonal(S, 1.0)
    labels = posteriors.argmax(axis=-1)
    score = np.log(posteriors + _TINY) / temperature + np.log(w + _TINY) + np.log(S[labels] + _TINY)
    return score.argmax(axis=-1), p_room


def relabel(scenes: Scenes, C, S, temperature: float, sharpness: float = ROOM_SHARPNESS
            ) -> tuple[np.ndarray, np.ndarray]:
    """Corrected labels (scenes x regions) and the most likely room of every scene."""
    labels, rooms = [], []
    for post in scenes.posteriors:
        lab, p_room = correct_labels(post, C, S, temperature, sharpness)
        labels.append(lab)
        rooms.append(int(p_room.argmax()))
    return np.stack(labels), np.array(rooms)


def _scores(bench: LabelBenchmark, scenes: Scenes, labels: np.ndarray) -> dict:
    ok = labels == scenes.objects
    rare = bench.rare_mask()[scenes.objects]
    return {"all": (float(ok.mean()), ok.size), "rare": (float(ok[rare].mean()) if rare.any() else float("nan"),
                                                         int(rare.sum())),
            "common": (float(ok[~rare].mean()) if (~rare).any() else float("nan"), int((~rare).sum()))}


def _rows(method: str, scores: dict, extra: dict | None = None) -> list[dict]:
    rows = [{"method": method, "slice": s, "metric": "accuracy", "value": v, "n": n} for s, (v, n) in scores.items()]
    for k, v in (extra or {}).items():
        rows.append({"method": method, "slice": "all", "metric": k, "value": v[0], "n": v[1]})
    return rows


def choose_temperature(scenes: Scenes, C, S, temperatures=TEMPERATURES, sharpness: float = ROOM_SHARPNESS
                       ) -> tuple[float, float]:
    """The temperature of ``temperatures`` with the best region accuracy on ``scenes`` (the smallest on a
    tie), and that accuracy. Only the scenes given take part: pass the validation split."""
    temperatures = tuple(float(t) for t in temperatures)
    if not temperatures or not all(t > 0 for t in temperatures):
        raise LmscopeError(f"temperatures must be positive numbers, got {temperatures}")
    best = None
    for T in sorted(temperatures):
        lab, _ = relabel(scenes, C, S, T, sharpness)
        acc = float(np.mean(lab == scenes.objects))
        if best is None or acc > best[1] + 1e-12:
            best = (T, acc)
    return best


def evaluate_prior(bench: LabelBenchmark, C, S, method: str, temperatures=(REFERENCE_TEMPERATURE,),
                   sharpness: float = ROOM_SHARPNESS) -> tuple[list[dict], dict]:
    """Score the test scenes at the temperature of ``temperatures`` best on the validation scenes (with
    one temperature, the default the reference's T = 9, that one)."""
    T, val_acc = choose_temperature(bench.val, C, S, temperatures, sharpness)
    best = (T, val_acc)
    labels, rooms = relabel(bench.test, C, S, T, sharpness)
    room_acc = float(np.mean(rooms == bench.test.room))
    return (_rows(method, _scores(bench, bench.test, labels), {"room_accuracy": (room_acc, len(rooms))}),
            {"temperature": T, "val_accuracy": best[1]})


def classifier_rows(bench: LabelBenchmark) -> list[dict]:
    return _rows("no prior", _scores(bench, bench.test, bench.test.posteriors.argmax(-1)))


# ------------------------------------------------------------------------------------------------
# Language-model queries
# ------------------------------------------------------------------------------------------------
def _a(word: str, capital: bool = False) -> str:
    art = "an" if word[0].lower() in "aeiou" else "a"
    return f"{art.capitalize() if capital else art} {word}"


def label_queries(bench: LabelBenchmark, query: str = "reference") -> list[PriorQuery]:
    """The C and S queries. ``reference`` (binary, as the reference asks): "A kitchen has a stove:" and "The towel looks
    like the pillow:", each answered plausible / implausible after six worked examples (table: p(plausible));
    ``next-token``: "The {room} has a" + object and "The {object} looks like a" + object."""
    if query == "next-token":
        return [
            PriorQuery("cooccurrence", "The {room} has a", {"room": bench.rooms}, bench.objects, class_axis="object"),
            PriorQuery("similarity", "The {object} looks like a", {"object": bench.objects}, bench.objects,
                       class_axis="other"),
        ]
    if query != "reference":
        raise LmscopeError(f"unknown prior query mode {query!r}; choose one of {', '.join(QUERY_MODES)}")
    answers = ["plausible", "implausible"]
    c_examples = [{"room": _a(r, capital=True), "object": _a(o), "answer": y} for r, o, y in COOCCURRENCE_EXAMPLES]
    s_examples = [{"object": o, "other": o2, "answer": y} for o, o2, y in SIMILARITY_EXAMPLES]
    return [
        PriorQuery("cooccurrence", "{room} has {object}:", {"room": bench.rooms, "object": bench.objects}, answers,
                   examples=c_examples, positive="plausible",
                   wording={"room": {r: _a(r, capital=True) for r in bench.rooms},
                            "object": {o: _a(o) for o in bench.objects}}),
        PriorQuery("similarity", "The {object} looks like the {other}:", {"object": bench.objects,
                                                                          "other": bench.objects},
                   answers, examples=s_examples, positive="plausible"),
    ]


def tables_to_arrays(bench: LabelBenchmark, tables: dict[str, PriorTable], calibrate: bool = False):
    """C[object, room] and S[object, other] from the LM's tables, as the model gave them.

    ``calibrate=True`` is for ``next-token`` tables: there p(object | room) mostly says how common and
    short an object's name is, whatever the room; calibration divides each object by its average over
    the rooms (likewise for S over the objects), keeping how the room shifts it, then renormalizes.
    Binary tables (probabilities of plausibility) are never calibrated.
    """
    C, S = tables["cooccurrence"], tables["similarity"]
    if calibrate:
        C, S = C.calibrated("object"), S.calibrated("other")
    return (C.array("object", "room", object=bench.objects, room=bench.rooms),
            S.array("object", "other", object=bench.objects, other=bench.objects))


def true_tables(bench: LabelBenchmark) -> tuple[np.ndarray, np.ndarray]:
    """The generator's own tables: p(object | room) and the look-alike groups."""
    return object_room_table(bench.objects, bench.rooms), look_alike_table(bench.objects)


def uniform_tables(bench: LabelBenchmark) -> tuple[np.ndarray, np.ndarray]:
    """Every statement as plausible as not (p = 1/2): the binary queries' null answer."""
    n, r = len(bench.objects), len(bench.rooms)
    return np.full((n, r), 0.5), np.full((n, n), 0.5)


# ------------------------------------------------------------------------------------------------
# Model chaining: the LM names the room from the classifier's labels, then picks among candidates
# ------------------------------------------------------------------------------------------------
def _listing(names: list[str]) -> str:
    names = [f"a {n}" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def chaining_query(bench: LabelBenchmark) -> tuple[PriorQuery, list[str]]:
    """One prompt per test scene: "Objects seen: a sink, a stove and a towel. This room is the" + room."""
    listings = []
    for lab in bench.test.posteriors.argmax(-1):
        names = sorted({bench.objects[i] for i in lab})
        listings.append(_listing(names))
    q = PriorQuery("chaining-room", "Objects seen: {objects}. This room is the", {"objects": sorted(set(listings))},
                   bench.rooms, class_axis="room")
    return q, listings


def chaining_labels(bench: LabelBenchmark, room_table: PriorTable, listings: list[str], C: np.ndarray,
                    top: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The LM's room for each scene; each region takes the candidate (classifier's top ``top``) that the
    LM finds likeliest in that room (C's column), with no probabilistic combination."""
    rooms = np.array([int(np.argmax(room_table.get(objects=s))) for s in listings])
    cand = np.argsort(-bench.test.posteriors, axis=-1)[..., :top]
    labels = np.empty(bench.test.objects.shape, dtype=int)
    for i, r in enumerate(rooms):
        for j in range(labels.shape[1]):
            c = cand[i, j]
            labels[i, j] = c[int(np.argmax(C[c, r]))]
    return labels, rooms


def chaining_rows(bench: LabelBenchmark, room_table: PriorTable, listings: list[str], C: np.ndarray) -> list[dict]:
    labels, rooms = chaining_labels(bench, room_table, listings, C)
    return _rows("model chaining", _scores(bench, bench.test, labels),
                 {"room_accuracy": (float(np.mean(rooms == bench.test.room)), len(rooms))})
