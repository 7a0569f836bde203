"""Object search: where in a house to look for an object, with a room prior.

A simulated house has a few rooms of different kinds; the searcher does not know which room is which,
but from the hallway it sees a couple of objects in each (its landmarks). Asked to find a target
object, it ranks the rooms by

    p(target in room j) = Σ_r p(target | r) · p(r | landmarks of j),   p(r | landmarks) ∝ Π_l p(l | r)

(rooms of each kind equally likely a priori) and visits them in that order until it finds the
target. The table behind both factors is p(object | room); a language model gives it as
p(room | "The {object} is in the") turned around by Bayes' rule with every object equally likely.

The searcher also has counts of objects per kind of room from a few training houses, in which rare
objects seldom appear; a prior enters as Dirichlet pseudo-counts, as in the action model::

    p(object | room) ∝ count(object, room) + alpha · N · prior(object | room)     (N = objects)

with alpha chosen per method from a grid by the fewest rooms visited on the searches of separate
validation seeds (:func:`choose_alpha`; a test seed never takes part, and a validation seed cannot
be run as a test seed).

Methods: no prior (the counts alone), a uniform prior (add-alpha smoothing), the language model's
prior, the generator's own table ("true prior"), and model chaining (the language model is asked
which landmark the target is usually near; rooms are visited in the order of their landmark's
answer, no counts). A search that ties is broken in the episode's own random order.
Metrics: rooms visited until the target is found, and success at the first visit (a budget of one
room), on all targets and on rare and common targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmscope.errors import LmscopeError
from lmscope.priors.queries import PriorQuery, PriorTable
from lmscope.priors.world import OBJECTS, RARE, ROOMS, object_room_table, training_frequency

SIZES = {"small": dict(n_episodes=24, n_train_houses=10), "default": dict(n_episodes=160, n_train_houses=30)}
ROOMS_PER_HOUSE = 4
LANDMARKS = 1
ALPHA = 1.0  # the default of evaluate_prior when no alpha is chosen
ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)  # the grid alpha is chosen from
VALIDATION_SEEDS = (100, 101, 102)  # the seeds alpha is chosen on; never test seeds
_TINY = 1e-12


@dataclass
class Episode:
    rooms: np.ndarray  # (n_rooms,) the kind of each room (hidden from the searcher)
    landmarks: np.ndarray  # (n_rooms, LANDMARKS) objects seen in each room from the hallway
    target: int
    target_room: int  # index into rooms
    order: np.ndarray  # a seeded random permutation of the rooms, to break ties


@dataclass
class SearchBenchmark:
    objects: tuple[str, ...]
    rooms: tuple[str, ...]
    rare: tuple[str, ...]
    episodes: list[Episode]
    train_counts: np.ndarray  # (objects, rooms) how often each object was seen in each kind of room
    settings: dict

    def rare_mask(self) -> np.ndarray:
        return np.array([o in self.rare for o in self.objects])


def make_search_benchmark(seed: int = 0, size: str = "default") -> SearchBenchmark:
    """Seeded houses and search episodes; half the targets are rare objects."""
    if size not in SIZES:
        raise LmscopeError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    sz = SIZES[size]
    rng = np.random.default_rng([seed, 303])
    truth = object_room_table()
    n_obj, n_room = truth.shape
    rare = np.array([o in RARE for o in OBJECTS])

    # training houses: every room's objects are seen, drawn from a distribution where rare objects are rare
    biased = truth * (training_frequency() / training_frequency().max())[:, None]
    biased /= biased.sum(axis=0, keepdims=True)
    counts = np.zeros((n_obj, n_room))
    for _ in range(sz["n_train_houses"]):
        for r in rng.choice(n_room, size=ROOMS_PER_HOUSE, replace=False):
            for o in set(rng.choice(n_obj, size=4, p=biased[:, r]).tolist()):
                counts[o, r] += 1

    episodes = []
    while len(episodes) < sz["n_episodes"]:
        want_rare = len(episodes) % 2 == 1
        target = int(rng.choice(np.flatnonzero(rare == want_rare)))
        rooms = rng.choice(n_room, size=ROOMS_PER_HOUSE, replace=False)
        w = truth[target, rooms]
        if w.sum() == 0:
            continue
        where = int(rng.choice(len(rooms), p=w / w.sum()))
        landmarks = np.empty((len(rooms), LANDMARKS), dtype=int)
        for j, r in enumerate(rooms):
            p = truth[:, r].copy()
            p[target] = 0.0  # the target itself is not visible from the hallway
            landmarks[j] = rng.choice(n_obj, size=LANDMARKS, replace=False, p=p / p.sum()) \
                if np.count_nonzero(p) >= LANDMARKS else rng.choice(n_obj, size=LANDMARKS, p=p / p.sum())
        episodes.append(Episode(rooms, landmarks, target, where, rng.permutation(len(rooms))))
    settings = {"seed": seed, "size": size, **sz, "rooms_per_house": ROOMS_PER_HOUSE, "landmarks": LANDMARKS}
    return SearchBenchmark(OBJECTS, ROOMS, RARE, episodes, counts, settings)


# ------------------------------------------------------------------------------------------------
# The searcher
# ------------------------------------------------------------------------------------------------
def room_scores(cond: np.ndarray, landmarks: np.ndarray, target: int) -> np.ndarray:
    """p(target in room j) for each room of a house, from p(object | room kind) (objects x kinds)."""
    cond = np.asarray(cond, dtype=float)
    logp = np.log(cond[landmarks] + _TINY).sum(axis=1)  # (rooms, kinds): log Π_l p(l | kind)
    logp -= logp.max(axis=1, keepdims=True)
    p_kind = np.exp(logp)
    p_kind /= p_kind.sum(axis=1, keepdims=True)
    return p_kind @ cond[target]


def visits(scores: np.ndarray, ep: Episode) -> int:
    """Rooms visited until the target's room, going by decreasing score (ties in the episode's random order)."""
    rank = sorted(range(len(scores)), key=lambda j: (-round(float(scores[j]), 12), int(np.flatnonzero(ep.order == j)[0])))
    return rank.index(ep.target_room) + 1


def conditional(table: np.ndarray) -> np.ndarray:
    """Normalize an (objects x rooms) table to p(object | room)."""
    t = np.asarray(table, dtype=float) + _TINY
    return t / t.sum(axis=0, keepdims=True)


def _metrics(bench: SearchBenchmark, n_visits: np.ndarray) -> list[tuple[str, str, float, int]]:
    rare = bench.rare_mask()[[ep.target for ep in bench.episodes]]
    out = []
    for name, mask in (("all", np.ones_like(rare)), ("rare", rare), ("common", ~rare)):
        v = n_visits[mask]
        if len(v) == 0:
            continue
        out += [(name, "rooms_visited", float(v.mean()), len(v)), (name, "success_at_1", float(np.mean(v == 1)), len(v))]
    return out


def _rows(method: str, bench: SearchBenchmark, n_visits) -> list[dict]:
    return [{"method": method, "slice": s, "metric": m, "value": v, "n": n}
            for s, m, v, n in _metrics(bench, np.asarray(n_visits))]


def evaluate_prior(bench: SearchBenchmark, prior: np.ndarray | None, method: str, alpha: float = ALPHA) -> list[dict]:
    """Search every episode with p(object | room) from the training counts and ``prior`` (objects x rooms,
    normalized over objects per room; None: the counts alone)."""
    table = posterior_table(bench.train_counts, prior, alpha)
    n = [visits(room_scores(table, ep.landmarks, ep.target), ep) for ep in bench.episodes]
    return _rows(method, bench, n)


def mean_visits(bench: SearchBenchmark, prior: np.ndarray | None, alpha: float) -> float:
    """Rooms visited on average over the benchmark's searches."""
    table = posterior_table(bench.train_counts, prior, alpha)
    return float(np.mean([visits(room_scores(table, ep.landmarks, ep.target), ep) for ep in bench.episodes]))


def choose_alpha(prior: np.ndarray, size: str = "default", alphas=ALPHAS, seeds=VALIDATION_SEEDS
                 ) -> tuple[float, dict[float, float]]:
    """The alpha of ``alphas`` with the fewest rooms visited on average over the searches of the
    validation ``seeds`` (the smallest alpha on a tie), and the mean visits of every alpha."""
    alphas = sorted(float(a) for a in alphas)
    if not alphas or not all(a > 0 for a in alphas):
        raise LmscopeError(f"alphas must be positive numbers, got {alphas}")
    if not seeds:
        raise LmscopeError("choosing alpha needs at least one validation seed")
    benches = [make_search_benchmark(s, size) for s in seeds]
    score = {a: float(np.mean([mean_visits(b, prior, a) for b in benches])) for a in alphas}
    best = min(alphas, key=lambda a: (round(score[a], 12), a))
    return best, score


def posterior_table(counts: np.ndarray, prior: np.ndarray | None, alpha: float = ALPHA) -> np.ndarray:
    """p(object | room) ∝ counts + alpha · N · prior(object | room); the counts alone when ``prior`` is None."""
    counts = np.asarray(counts, dtype=float)
    if prior is None:
        return conditional(counts)
    prior = np.asarray(prior, dtype=float)
    if prior.shape != counts.shape:
        raise LmscopeError(f"the prior must be (objects x rooms) = {counts.shape}, got {prior.shape}")
    return conditional(counts + alpha * counts.shape[0] * conditional(prior))


# ------------------------------------------------------------------------------------------------
# Language-model queries
# ------------------------------------------------------------------------------------------------
def search_queries(bench: SearchBenchmark) -> list[PriorQuery]:
    targets = sorted({bench.objects[ep.target] for ep in bench.episodes}, key=bench.objects.index)
    return [
        PriorQuery("location", "The {object} is in the", {"object": bench.objects}, bench.rooms, class_axis="room"),
        PriorQuery("near", "The {target} is usually near the", {"target": targets}, bench.objects,
                   class_axis="object"),
    ]


def location_table(bench: SearchBenchmark, tables: dict[str, PriorTable]) -> np.ndarray:
    """(objects x rooms) p(room | object) from the LM; normalized per room it is p(object | room) (Bayes'
    rule with every object equally likely)."""
    return tables["location"].array("object", "room", object=bench.objects, room=bench.rooms)


def chaining_rows(bench: SearchBenchmark, near: PriorTable) -> list[dict]:
    n = []
    for ep in bench.episodes:
        row = near.get(target=bench.objects[ep.target])
        idx = [near.labels_of("object").index(bench.objects[o]) for o in ep.landmarks.ravel()]
        scores = np.asarray(row)[idx].reshape(ep.landmarks.shape).max(axis=1)
        n.append(visits(scores, ep))
    return _rows("model chaining", bench, n)
