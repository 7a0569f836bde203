"""Action segmentation: a hidden semi-Markov model whose action order takes a prior from a language model.

Videos of everyday tasks (making tea, coffee, a sandwich, a bowl of cereal) are sequences of
actions; each frame is a low-dimensional feature vector drawn around its action's mean (actions of
the same kind of motion, such as pouring water or milk, have close means), and each action lasts a
Poisson-distributed number of frames. An HSMM per task (:mod:`lmscope.priors.hsmm`) is fit on
labelled training videos: Gaussian emissions, Poisson durations, and initial and transition
distributions with Dirichlet priors::

    init[a]      ∝ count(a first)   + alpha · K · p(a | task)
    trans[b, a]  ∝ count(b then a)  + alpha · K · p(a | b, task)       (alpha = 10, K = task's actions)

The benchmark's out-of-distribution split uses orderings of the steps that never occur in training
(for instance milk before sugar, or boiling the water before taking a cup), so transitions and first
steps that are natural but unseen get probability only from the prior.

The language model is asked as in the LaMPP reference: three worked tasks (an *unordered* set of
their actions, then lines "The first step can be ..." / "The step after X can be ..."), then the
task at hand with its own actions listed (alphabetically, so the list gives no order away), and
"The first step is" or "The step after {previous} is", each action scored as the continuation and
softmaxed over the task's actions. ``query="next-token"`` keeps the older prompts ("To {task}, the
first step is to" / "To {task}, after you {previous}, you", no examples, no action list). Methods: no prior (maximum likelihood counts), a uniform prior
(add-alpha smoothing), the language model's prior, the generator's own script distribution
("true prior"), and model chaining (the language model picks each segment's action among the
emission model's best candidates from the previous one, with no probabilistic combination).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmscope.errors import LmscopeError
from lmscope.priors.hsmm import (
    GaussianEmissions,
    dirichlet_rows,
    edit_score,
    poisson_log_durations,
    segment_actions,
    semi_markov_viterbi,
)
from lmscope.priors.queries import PriorQuery, PriorTable

ALPHA = 10.0  # the reference's smoothing weight in the paper's held-out-transition runs
QUERY_MODES = ("reference", "next-token")

# worked tasks shown before every question (not among the benchmark's tasks): (task, actions, lines)
EXAMPLE_TASKS = (
    ("make lemonade", ("add ice", "add sugar", "cut lemons", "pour water", "squeeze lemons", "stir"),
     ("The first step can be cut lemons", "The step after cut lemons can be squeeze lemons",
      "The step after squeeze lemons can be add sugar", "The step after squeeze lemons can be pour water",
      "The step after add sugar can be pour water", "The step after pour water can be stir",
      "The step after stir can be add ice")),
    ("plant a tree", ("dig a hole", "fill the hole", "place the tree", "water the tree"),
     ("The first step can be dig a hole", "The step after dig a hole can be place the tree",
      "The step after place the tree can be fill the hole", "The step after fill the hole can be water the tree")),
    ("wash the dishes", ("add soap", "dry the dishes", "fill the sink", "rinse the dishes", "scrub the dishes"),
     ("The first step can be fill the sink", "The step after fill the sink can be add soap",
      "The first step can be add soap", "The step after add soap can be scrub the dishes",
      "The step after scrub the dishes can be rinse the dishes",
      "The step after rinse the dishes can be dry the dishes")),
)

# action -> (kind of motion, mean duration in frames)
ACTIONS = {
    "take a cup": ("take", 5), "take a bowl": ("take", 5), "take a plate": ("take", 5), "take bread": ("take", 6),
    "take a spoon": ("take", 4),
    "boil water": ("heat", 12),
    "pour the water": ("pour", 7), "add milk": ("pour", 5), "pour cereal": ("pour", 6),
    "add a teabag": ("add", 4), "add coffee": ("add", 5), "add sugar": ("add", 4),
    "stir": ("stir", 6),
    "spread butter": ("assemble", 9), "add cheese": ("assemble", 5), "add ham": ("assemble", 5),
    "close the sandwich": ("assemble", 4), "cut the sandwich": ("cut", 7),
}

# task -> (scripts seen in training, scripts of the out-of-distribution split)
TASKS = {
    "make tea": (
        [["take a cup", "boil water", "add a teabag", "pour the water", "add sugar", "stir"],
         ["take a cup", "boil water", "add a teabag", "pour the water", "stir"],
         ["take a cup", "add a teabag", "boil water", "pour the water", "add sugar", "add milk", "stir"],
         ["take a cup", "boil water", "add a teabag", "pour the water", "add sugar", "add milk", "stir"]],
        [["take a cup", "boil water", "add a teabag", "pour the water", "add milk", "add sugar", "stir"],
         ["take a cup", "boil water", "pour the water", "add a teabag", "add milk", "stir"],
         ["boil water", "take a cup", "add a teabag", "pour the water", "stir"]],
    ),
    "make coffee": (
        [["take a cup", "add coffee", "boil water", "pour the water", "stir"],
         ["take a cup", "boil water", "add coffee", "pour the water", "add sugar", "stir"],
         ["take a cup", "add coffee", "boil water", "pour the water", "add sugar", "add milk", "stir"]],
        [["take a cup", "boil water", "add coffee", "pour the water", "add milk", "stir"],
         ["take a cup", "add coffee", "boil water", "pour the water", "add milk", "add sugar", "stir"],
         ["boil water", "take a cup", "add coffee", "pour the water", "add sugar", "stir"]],
    ),
    "make a sandwich": (
        [["take a plate", "take bread", "spread butter", "add cheese", "close the sandwich", "cut the sandwich"],
         ["take a plate", "take bread", "spread butter", "add ham", "add cheese", "close the sandwich"],
         ["take a plate", "take bread", "add ham", "close the sandwich", "cut the sandwich"]],
        [["take bread", "take a plate", "spread butter", "add cheese", "add ham", "close the sandwich",
          "cut the sandwich"],
         ["take a plate", "take bread", "add cheese", "add ham", "close the sandwich"]],
    ),
    "make cereal": (
        [["take a bowl", "pour cereal", "add milk", "take a spoon"],
         ["take a bowl", "pour cereal", "add sugar", "add milk", "take a spoon"]],
        [["take a bowl", "pour cereal", "add milk", "add sugar", "take a spoon"],
         ["take a spoon", "take a bowl", "pour cereal", "add milk"]],
    ),
}

SIZES = {"small": dict(n_train=6, n_test=3), "default": dict(n_train=25, n_test=8)}


def task_actions(task: str) -> tuple[str, ...]:
    """The task's actions, in order of first appearance in its scripts."""
    seen: list[str] = []
    for script in TASKS[task][0] + TASKS[task][1]:
        for a in script:
            if a not in seen:
                seen.append(a)
    return tuple(seen)


@dataclass
class Video:
    task: str
    features: np.ndarray  # (T, F)
    labels: np.ndarray  # (T,) index into the task's actions
    script: tuple[str, ...]


@dataclass
class ActionBenchmark:
    tasks: dict[str, tuple[str, ...]]  # task -> its actions
    train: list[Video]
    test: list[Video]  # in distribution
    ood: list[Video]
    kind_means: dict[str, np.ndarray]
    action_means: dict[str, np.ndarray]
    settings: dict

    def held_out(self) -> dict[str, list[str]]:
        """Per task, the first steps and transitions of the out-of-distribution scripts unseen in training."""
        out = {}
        for task in self.tasks:
            train, ood = TASKS[task]
            seen = {("", s[0]) for s in train} | {p for s in train for p in zip(s, s[1:])}
            new = []
            for s in ood:
                for p in [("", s[0])] + list(zip(s, s[1:])):
                    if p not in seen and p not in new:
                        new.append(p)
            out[task] = [f"start → {b}" if not a else f"{a} → {b}" for a, b in new]
        return out


def make_action_benchmark(seed: int = 0, size: str = "default", *, n_features: int = 4, kind_spread: float = 3.0,
                          action_spread: float = 1.0, noise: float = 2.0) -> ActionBenchmark:
    """Seeded videos: ``n_train`` and ``n_test`` per task, plus ``n_test`` out-of-distribution per task."""
    if size not in SIZES:
        raise LmscopeError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    sz = SIZES[size]
    rng = np.random.default_rng([seed, 202])
    kinds = sorted({k for k, _ in ACTIONS.values()})
    kind_means = {k: kind_spread * rng.standard_normal(n_features) for k in kinds}
    action_means = {a: kind_means[k] + action_spread * rng.standard_normal(n_features) for a, (k, _) in ACTIONS.items()}
    tasks = {t: task_actions(t) for t in TASKS}

    def video(task: str, scripts: list[list[str]]) -> Video:
        script = scripts[rng.integers(len(scripts))]
        feats, labels = [], []
        for a in script:
            d = 1 + rng.poisson(ACTIONS[a][1] - 1)
            feats.append(action_means[a] + noise * rng.standard_normal((d, n_features)))
            labels += [tasks[task].index(a)] * d
        return Video(task, np.concatenate(feats), np.array(labels), tuple(script))

    train, test, ood = [], [], []
    for task, (seen, held) in TASKS.items():
        train += [video(task, seen) for _ in range(sz["n_train"])]
        test += [video(task, seen) for _ in range(sz["n_test"])]
        ood += [video(task, held) for _ in range(sz["n_test"])]
    settings = {"seed": seed, "size": size, **sz, "features": n_features, "kind_spread": kind_spread,
                "action_spread": action_spread, "noise": noise, "alpha": ALPHA}
    return ActionBenchmark(tasks, train, test, ood, kind_means, action_means, settings)


# ------------------------------------------------------------------------------------------------
# Fitting and decoding
# ------------------------------------------------------------------------------------------------
@dataclass
class TaskModel:
    actions: tuple[str, ...]
    emissions: GaussianEmissions
    log_dur: np.ndarray
    init_counts: np.ndarray
    trans_counts: np.ndarray


def fit_task_models(bench: ActionBenchmark) -> dict[str, TaskModel]:
    """Emissions (shared across tasks by action name), durations and counts from the training videos."""
    names = list(ACTIONS)
    feats, labs, durs = [], [], {a: [] for a in names}
    for v in bench.train:
        acts = bench.tasks[v.task]
        feats.append(v.features)
        labs.append(np.array([names.index(acts[i]) for i in v.labels]))
        start = 0
        for t in range(1, len(v.labels) + 1):
            if t == len(v.labels) or v.labels[t] != v.labels[start]:
                durs[acts[v.labels[start]]].append(t - start)
                start = t
    em = GaussianEmissions.fit(feats, labs, len(names))
    max_d = int(1.5 * max(max(d) for d in durs.values() if d)) + 1
    models = {}
    for task, acts in bench.tasks.items():
        idx = [names.index(a) for a in acts]
        rates = np.array([np.mean(durs[a]) if durs[a] else ACTIONS[a][1] for a in acts])
        K = len(acts)
        init, trans = np.zeros(K), np.zeros((K, K))
        for v in bench.train:
            if v.task != task:
                continue
            seq = segment_actions(v.labels)
            init[seq[0]] += 1
            for a, b in zip(seq, seq[1:]):
                trans[a, b] += 1
        models[task] = TaskModel(acts, GaussianEmissions(em.means[idx], em.var), poisson_log_durations(rates, max_d),
                                 init, trans)
    return models


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


def decode(model: TaskModel, video: Video, init: np.ndarray, trans: np.ndarray) -> np.ndarray:
    seg = semi_markov_viterbi(model.emissions.loglik(video.features), _log(init), _log(trans), model.log_dur)
    return seg.labels


def _metrics(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    frames = sum(len(g) for _, g in pairs)
    correct = sum(int(np.sum(p == g)) for p, g in pairs)
    edits = [edit_score(segment_actions(p), segment_actions(g)) for p, g in pairs]
    return {"frame_accuracy": (correct / max(frames, 1), frames), "edit_score": (float(np.mean(edits)), len(pairs))}


def _rows(method: str, split: str, metrics: dict) -> list[dict]:
    return [{"method": method, "slice": split, "metric": k, "value": v, "n": n} for k, (v, n) in metrics.items()]


def evaluate_prior(bench: ActionBenchmark, models: dict[str, TaskModel], prior: dict[str, tuple] | None,
                   method: str, alpha: float = ALPHA) -> list[dict]:
    """Decode the test and out-of-distribution videos with Dirichlet-smoothed init and transitions.

    ``prior`` maps each task to ``(p_init (K,), p_trans (K, K))``; None means maximum likelihood.
    """
    dists = {}
    for task, m in models.items():
        p_init, p_trans = prior[task] if prior is not None else (None, None)
        dists[task] = (dirichlet_rows(m.init_counts, p_init, alpha),
                       dirichlet_rows(m.trans_counts, p_trans, alpha, no_self=True))
    rows = []
    for split, videos in (("id", bench.test), ("ood", bench.ood)):
        pairs = [(decode(models[v.task], v, *dists[v.task]), v.labels) for v in videos]
        rows += _rows(method, split, _metrics(pairs))
    return rows


def uniform_prior(bench: ActionBenchmark) -> dict[str, tuple]:
    return {t: (np.full(len(a), 1.0 / len(a)), np.full((len(a), len(a)), 1.0 / len(a))) for t, a in bench.tasks.items()}


def true_prior(bench: ActionBenchmark) -> dict[str, tuple]:
    """The generator's own first-step and transition frequencies over all of a task's scripts."""
    out = {}
    for task, acts in bench.tasks.items():
        K = len(acts)
        init, trans = np.zeros(K), np.zeros((K, K))
        for s in TASKS[task][0] + TASKS[task][1]:
            idx = [acts.index(a) for a in s]
            init[idx[0]] += 1
            for a, b in zip(idx, idx[1:]):
                trans[a, b] += 1
        out[task] = (init, trans)
    return out


# ------------------------------------------------------------------------------------------------
# Language-model queries
# ------------------------------------------------------------------------------------------------
def _unordered(task: str, acts) -> str:
    return (f"Your task is to {task}. Here is an *unordered* set of possible actions: {{{', '.join(sorted(acts))}}}. "
            "Please order these actions for your task.")


def action_queries(bench: ActionBenchmark, query: str = "reference") -> list[PriorQuery]:
    """Per task, p(first action | task) and p(next action | previous, task): see the module docstring."""
    if query not in QUERY_MODES:
        raise LmscopeError(f"unknown prior query mode {query!r}; choose one of {', '.join(QUERY_MODES)}")
    qs = []
    if query == "next-token":
        for task, acts in bench.tasks.items():
            qs.append(PriorQuery(f"first:{task}", f"To {task}, the first step is to", {}, acts, class_axis="action"))
            qs.append(PriorQuery(f"next:{task}", f"To {task}, after you {{previous}}, you", {"previous": acts}, acts,
                                 class_axis="action"))
        return qs
    demos = "\n\n".join(_unordered(t, a) + "\n" + "\n".join(lines) for t, a, lines in EXAMPLE_TASKS) + "\n"
    for task, acts in bench.tasks.items():
        head = _unordered(task, acts).replace("{", "{{").replace("}", "}}") + "\n"
        qs.append(PriorQuery(f"first:{task}", head + "The first step is", {}, acts, class_axis="action",
                             instruction=demos))
        qs.append(PriorQuery(f"next:{task}", head + "The step after {previous} is", {"previous": acts}, acts,
                             class_axis="action", instruction=demos))
    return qs


def tables_to_prior(bench: ActionBenchmark, tables: dict[str, PriorTable]) -> dict[str, tuple]:
    out = {}
    for task, acts in bench.tasks.items():
        init = tables[f"first:{task}"].array("action", action=acts)
        trans = tables[f"next:{task}"].array("previous", "action", previous=acts, action=acts)
        out[task] = (init, trans)
    return out


def chaining_rows(bench: ActionBenchmark, models: dict[str, TaskModel], prior: dict[str, tuple],
                  top: int = 3) -> list[dict]:
    """Segments from the uniform-prior decoding; the LM then names each segment's action, left to right,
    among the emission model's ``top`` candidates for it (other than the previous action), from its own
    p(first | task) or p(next | previous, task)."""
    rows = []
    uni = uniform_prior(bench)
    for split, videos in (("id", bench.test), ("ood", bench.ood)):
        pairs = []
        for v in videos:
            m = models[v.task]
            init = dirichlet_rows(m.init_counts, uni[v.task][0], ALPHA)
            trans = dirichlet_rows(m.trans_counts, uni[v.task][1], ALPHA, no_self=True)
            ll = m.emissions.loglik(v.features)
            seg = semi_markov_viterbi(ll, _log(init), _log(trans), m.log_dur)
            p_init, p_trans = prior[v.task]
            labels = np.empty(len(v.labels), dtype=int)
            prev = None
            for _, s, e in seg.segments:
                order = np.argsort(-ll[s:e].sum(axis=0))
                cand = order[order != prev][:top] if prev is not None else order[:top]
                lm = p_init[cand] if prev is None else p_trans[prev, cand]
                a = int(cand[int(np.argmax(lm))])
                labels[s:e] = a
                prev = a
            pairs.append((labels, v.labels))
        rows += _rows("model chaining", split, _metrics(pairs))
    return rows
