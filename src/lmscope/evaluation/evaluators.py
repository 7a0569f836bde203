"""Evaluator learners of increasing strength, each bounded by explicit resources.

An evaluator plays one game through a :class:`Channel`: ``ask`` sends queries to the hidden oracle
(the model g or the ground truth μ, by a fair coin it does not see); ``probe`` sends queries to the
model g openly, during learning (the learner knows which model is under evaluation, as a
distinguisher knows the generator it attacks); ``judge`` asks a language model whether responses are
right. It ends with a guess, ``"model"`` or ``"truth"``.

Resources (:class:`Resources`):

``samples``
    ground-truth examples (query, μ's answer) the learner receives, drawn from the capability's
    ``mix`` distribution. Learners that probe g pose those same queries to g, so probing costs
    samples too.
``rounds`` x ``queries_per_round``
    the interaction: after each round the evaluator may change what it asks next.

The evaluators (:data:`EVALUATORS`):

``static``
    a fixed public benchmark: the first ``samples`` queries of the capability's benchmark list, the
    same in every game; no learning, no adaptation. Asks rounds x queries of them (at most
    ``samples``) and says "model" at ``threshold`` wrong answers. A model that memorized the
    benchmark passes it.
``fresh``
    the same rule on ``samples`` private queries drawn anew for every game.
``adaptive``
    draws ``samples`` private queries; poses half of those it does not need for the game
    (``(samples - rounds x queries) // 2``) to g, to learn which kinds of query g gets wrong (a
    Beta(1, 1) posterior per kind); every round it picks, among the queries it has not used, those of
    the kinds most likely to fail, and updates the posterior with the answers (follow-ups concentrate
    where errors appear). It never asks a probed query again: it learns kinds, not answers. With
    ``samples = rounds x queries`` it has nothing to learn from or choose among and is ``fresh``.
    Its kinds are the capability's own categories, which for question formation are the very split
    the generalization rule turns on; the ablations take that away: ``taxonomy="shuffled"`` permutes
    the category labels among its sampled queries (seeded), ``taxonomy="none"`` gives it no
    categories (a logistic regression on the words of the queries it saw answered predicts which
    unused ones fail), and
    ``probe=False`` drops the pre-game probes (it learns only from the game's own answers).
``discriminator``
    poses its ``samples`` queries to g and fits a logistic regression (L2) that tells g's responses
    from μ's by cheap checks of the response (:meth:`Capability.checks`, crossed with the query
    kind); in the game it asks fresh queries, whose answers it does not know, and says "model" when
    the summed log-odds of the responses are positive. Given a ``threshold``, it instead says
    "model" as soon as ``threshold`` responses have positive log-odds (each classified as the
    model's), like the counting evaluators.
``lm-judge``
    a language model judges each response (log p(" yes") - log p(" no") after a question); two
    samples are shown as solved examples and the rest calibrate the decision threshold on μ's answers
    and corrupted ones; says "model" at ``threshold`` responses judged wrong.
``self``
    the model judges its own answers: an LM oracle answers the judge's question itself (threshold 0,
    no calibration); any other model judges a response right when it is what it would answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lmscope.errors import LmscopeError
from lmscope.evaluation.capabilities import Capability

GUESSES = ("model", "truth")


@dataclass(frozen=True)
class Resources:
    """What an evaluator may use: ground-truth samples, interaction rounds, queries per round."""

    samples: int = 16
    rounds: int = 4
    queries_per_round: int = 2

    def __post_init__(self):
        for name, low in (("samples", 0), ("rounds", 1), ("queries_per_round", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                flag = "--" + name.replace("_", "-").replace("queries-per-round", "queries")
                raise LmscopeError(f"{name} ({flag}) must be a whole number >= {low}, got {v!r}")

    @property
    def queries(self) -> int:
        return self.rounds * self.queries_per_round

    def to_dict(self) -> dict:
        return {k: int(v) for k, v in asdict(self).items()}


class Channel:
    """Every call an evaluator makes to the world; the game runner records them (see game.py)."""

    def ask(self, queries: list[str], round: int) -> list[str]:
        raise NotImplementedError

    def probe(self, queries: list[str]) -> list[str]:
        raise NotImplementedError

    def judge(self, prompts: list[str], by: str = "judge") -> list[float]:
        raise NotImplementedError

    def note(self, **info) -> None:
        raise NotImplementedError

    def has_model_lm(self) -> bool:
        return False


def judge_prompt(cap: Capability, query: str, response: str, shots: list[tuple[str, str, str]] = ()) -> str:
    """The judge's question about one response; ``shots`` are (query, response, "yes"/"no") examples."""
    def block(q, r):
        return [f"Task: {cap.instruction}", f"Input: {q}", f"Proposed output: {r}",
                "Is the proposed output correct? Answer yes or no.", "Answer:"]

    lines = []
    for q, r, verdict in shots:
        lines += block(q, r)
        lines[-1] += f" {verdict}"
        lines.append("")
    return "\n".join(lines + block(query, response))


def _check_threshold(threshold) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
        raise LmscopeError(f"threshold (--threshold) must be a whole number >= 1, got {threshold!r}")


class Evaluator:
    name = ""
    description = ""
    uses = ()  # "probe" and/or "judge"

    def __init__(self, threshold: int | None = 1):
        if threshold is None:
            threshold = 1
        _check_threshold(threshold)
        self.threshold = int(threshold)

    @property
    def label(self) -> str:
        """The name of this evaluator with its options where they change what it is (tables, file names)."""
        return self.name

    def options(self) -> dict:
        return {"threshold": self.threshold}

    def check(self, cap: Capability, res: Resources) -> None:
        """LmscopeError when ``res`` cannot be met by this evaluator."""

    def play(self, cap: Capability, res: Resources, rng: np.random.Generator, ch: Channel) -> str:
        raise NotImplementedError

    def _ask_known(self, cap, res, ch, queries: list[str]) -> str:
        """Ask known-answer queries round by round; "model" as soon as ``threshold`` answers are wrong."""
        wrong = 0
        Q = res.queries_per_round
        for r in range(res.rounds):
            qs = queries[r * Q:(r + 1) * Q]
            if not qs:
                break
            answers = ch.ask(qs, r)
            flags = [not cap.is_correct(q, a) for q, a in zip(qs, answers)]
            wrong += sum(flags)
            ch.note(round=r, wrong=flags)
            if wrong >= self.threshold:
                return "model"
        return "truth"

    def _need_known(self, res: Resources, have: int, what: str) -> None:
        if res.queries > have:
            raise LmscopeError(f"the {self.name} evaluator asks only queries whose answers it knows, and "
                               f"{res.rounds} rounds x {res.queries_per_round} queries = {res.queries} is more "
                               f"than {what} ({have}); raise --samples or lower --rounds / --queries")


class StaticEvaluator(Evaluator):
    name = "static"
    description = "a fixed public benchmark (the same queries every game), no learning, no adaptation"

    def check(self, cap, res):
        self._need_known(res, res.samples, "the benchmark's size, --samples")

    def play(self, cap, res, rng, ch):
        return self._ask_known(cap, res, ch, cap.benchmark(res.samples)[:res.queries])


class FreshEvaluator(Evaluator):
    name = "fresh"
    description = "new private samples every game, asked non-adaptively"

    def check(self, cap, res):
        self._need_known(res, res.samples, "its samples, --samples")

    def play(self, cap, res, rng, ch):
        return self._ask_known(cap, res, ch, cap.sample_queries(rng, res.queries, "mix"))


TAXONOMIES = ("full", "none", "shuffled")


FAILURE_L2 = 1.0


def text_features(query: str) -> list[str]:
    """Task-agnostic features of a query's text: each word, and each word at its position ("3=who")."""
    words = query.split()
    return sorted(set(words) | {f"{i}={w}" for i, w in enumerate(words)})


def failure_scores(answered: list[tuple[str, bool]], candidates: list[str], l2: float = FAILURE_L2) -> np.ndarray:
    """P(wrong) of each candidate query from the queries answered so far, by an L2-penalized logistic
    regression on :func:`text_features` (the features seen among the answered queries). Until both a
    right and a wrong answer have been seen there is nothing to tell apart, and every candidate scores
    0.5 (a regression fitted on one outcome would only rank queries by how many unseen words they have,
    which favours short ones)."""
    if len({bool(bad) for _, bad in answered}) < 2:
        return np.full(len(candidates), 0.5)
    names = sorted({f for q, _ in answered for f in text_features(q)})
    col = {f: i + 1 for i, f in enumerate(names)}

    def design(queries):
        X = np.zeros((len(queries), len(names) + 1))
        X[:, 0] = 1.0
        for r, q in enumerate(queries):
            for f in text_features(q):
                if f in col:
                    X[r, col[f]] = 1.0
        return X

    y = np.array([float(bad) for _, bad in answered])
    w = fit_logistic(design([q for q, _ in answered]), y, l2)
    return 1 / (1 + np.exp(-np.clip(design(candidates) @ w, -30, 30)))


class AdaptiveEvaluator(Evaluator):
    """See the module docstring; ``taxonomy`` and ``probe`` are the ablations of what it is handed.

    ``taxonomy="full"``: it groups queries by the capability's own categories (``cap.kind``), which for
    the grammar tasks are the very split the generalization rule turns on. ``"shuffled"``: the same
    category names and sizes, but the labels of its sampled queries are permuted at random (seeded by
    the game), so a category no longer says anything about the query. ``"none"``: it is given no
    categories (it never calls ``cap.kind``) and scores each unused query by a logistic regression,
    fitted on the queries it has seen answered (probes and earlier rounds), that predicts a wrong
    answer from the query's words and words-at-positions (:func:`failure_scores`), the features any
    text has. ``probe=False``: no pre-game probes of g; every sample is a candidate
    query and it learns only from the answers of the game itself.
    """

    name = "adaptive"
    description = ("learns from probes of the model which query kinds fail, then asks and follows up there "
                   "(ablations: --taxonomy none|shuffled, --no-probe)")
    uses = ("probe",)

    def __init__(self, threshold: int | None = 1, taxonomy: str = "full", probe: bool = True):
        super().__init__(threshold)
        if taxonomy not in TAXONOMIES:
            raise LmscopeError(f"unknown taxonomy {taxonomy!r} (--taxonomy); choose one of {', '.join(TAXONOMIES)}")
        if not isinstance(probe, (bool, np.bool_)):
            raise LmscopeError(f"probe must be true or false, got {probe!r}")
        self.taxonomy, self.probe = taxonomy, bool(probe)

    @property
    def label(self) -> str:
        return "-".join([self.name] + ([self.taxonomy] if self.taxonomy != "full" else [])
                        + ([] if self.probe else ["noprobe"]))

    def options(self):
        opts: dict = {"threshold": self.threshold}
        if self.taxonomy != "full":
            opts["taxonomy"] = self.taxonomy
        if not self.probe:
            opts["probe"] = False
        return opts

    def check(self, cap, res):
        self._need_known(res, res.samples, "its samples, --samples")

    def categories(self, cap: Capability, queries: list[str], rng: np.random.Generator) -> dict[str, str]:
        """query -> the category this evaluator files it under (``full`` or ``shuffled``)."""
        kinds = [cap.kind(q) for q in queries]
        if self.taxonomy == "shuffled":
            kinds = [kinds[int(i)] for i in rng.permutation(len(kinds))]
        return dict(zip(queries, kinds))

    def play(self, cap, res, rng, ch):
        pool = cap.sample_queries(rng, res.samples, "mix")
        n_probe = (res.samples - res.queries) // 2 if self.probe else 0
        probes, choices = pool[:n_probe], pool[n_probe:]
        answered: list[tuple[str, bool]] = []  # (query, wrong) of every probe and asked query
        if probes:
            answered += [(q, not cap.is_correct(q, a)) for q, a in zip(probes, ch.probe(probes))]
        if self.taxonomy == "none":
            return self._play_untold(cap, res, rng, ch, answered, choices)
        label = self.categories(cap, pool, rng)
        fail = dict.fromkeys(cap.kinds, 0)
        seen = dict.fromkeys(cap.kinds, 0)
        for q, bad in answered:
            seen[label[q]] += 1
            fail[label[q]] += bad
        ch.note(learned={k: [fail[k], seen[k]] for k in cap.kinds if seen[k]})
        left: dict[str, list[str]] = {}
        for q in choices:
            left.setdefault(label[q], []).append(q)
        wrong = 0
        for r in range(res.rounds):
            qs = []
            for _ in range(res.queries_per_round):
                kinds = [k for k, v in left.items() if v]
                if not kinds:
                    break
                score = {k: (fail[k] + 1) / (seen[k] + 2) for k in kinds}
                best = max(score.values())
                top = [k for k in kinds if score[k] == best]
                k = top[int(rng.integers(len(top)))]
                qs.append(left[k].pop(0))
            if not qs:
                break
            answers = ch.ask(qs, r)
            flags = [not cap.is_correct(q, a) for q, a in zip(qs, answers)]
            for q, bad in zip(qs, flags):
                seen[label[q]] += 1
                fail[label[q]] += bad
            wrong += sum(flags)
            ch.note(round=r, wrong=flags, kinds=[label[q] for q in qs])
            if wrong >= self.threshold:
                return "model"
        return "truth"

    def _play_untold(self, cap, res, rng, ch, answered, choices) -> str:
        """The ``none`` taxonomy: no categories; the text of the queries answered so far predicts failures."""
        ch.note(learned={"probes": len(answered), "wrong": sum(bad for _, bad in answered)})
        left = list(choices)
        wrong = 0
        for r in range(res.rounds):
            if not left:
                break
            # one fit per round (the evidence changes only with the answers); the highest scores are
            # asked, ties (up to rounding) in a random order
            score = np.round(failure_scores(answered, left), 12)
            order = np.lexsort((rng.permutation(len(left)), -score))
            qs = [left[int(i)] for i in order[:res.queries_per_round]]
            left = [q for q in left if q not in set(qs)]
            answers = ch.ask(qs, r)
            flags = [not cap.is_correct(q, a) for q, a in zip(qs, answers)]
            answered += list(zip(qs, flags))
            wrong += sum(flags)
            ch.note(round=r, wrong=flags)
            if wrong >= self.threshold:
                return "model"
        return "truth"


def _design(cap: Capability, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, list[str]]:
    """Features of (query, response) pairs: the checks, the kind, and checks x kind."""
    rows, names = [], None
    for q, r in pairs:
        checks = cap.checks(q, r)
        kind = cap.kind(q)
        feats = {"bias": 1.0, **{f"check:{c}": v for c, v in checks.items()}}
        for k in cap.kinds:
            on = float(kind == k)
            feats[f"kind:{k}"] = on
            for c, v in checks.items():
                feats[f"{c}|{k}"] = v * on
        if names is None:
            names = list(feats)
        rows.append([feats[n] for n in names])
    return np.asarray(rows, dtype=float).reshape(len(pairs), len(names or [])), names or []


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> np.ndarray:
    """Weights of an L2-penalized logistic regression (Newton's method; the bias, column 0, unpenalized)."""
    w = np.zeros(X.shape[1])
    pen = np.full(X.shape[1], l2)
    pen[0] = 1e-6
    for _ in range(iters):
        z = np.clip(X @ w, -30, 30)
        p = 1 / (1 + np.exp(-z))
        grad = X.T @ (p - y) + pen * w
        H = (X * (p * (1 - p))[:, None]).T @ X + np.diag(pen)
        step = np.linalg.solve(H, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


class DiscriminatorEvaluator(Evaluator):
    name = "discriminator"
    description = "a logistic regression on cheap checks of responses, trained on μ's and the model's answers"
    uses = ("probe",)

    def __init__(self, threshold: int | None = None, l2: float = 1.0):
        if threshold is not None:
            _check_threshold(threshold)
        self.threshold = None if threshold is None else int(threshold)
        l2 = float(l2)
        if not np.isfinite(l2) or l2 <= 0:
            raise LmscopeError(f"the discriminator's l2 penalty must be a finite number > 0, got {l2!r}")
        self.l2 = l2

    def options(self):
        return {"l2": self.l2} if self.threshold is None else {"l2": self.l2, "threshold": int(self.threshold)}

    def check(self, cap, res):
        if res.samples < 2:
            raise LmscopeError(f"the discriminator learns from at least 2 samples, got --samples {res.samples}")

    def play(self, cap, res, rng, ch):
        train = cap.sample_queries(rng, res.samples, "mix")
        model_answers = ch.probe(train)
        pairs = [(q, cap.answer(q)) for q in train] + list(zip(train, model_answers))
        X, names = _design(cap, pairs)
        y = np.r_[np.zeros(len(train)), np.ones(len(train))]
        w = fit_logistic(X, y, self.l2)
        ch.note(weights={n: round(float(v), 4) for n, v in zip(names, w) if abs(v) > 1e-3})
        queries = cap.sample_queries(rng, res.queries, "mix")
        total, flagged = 0.0, 0
        Q = res.queries_per_round
        for r in range(res.rounds):
            qs = queries[r * Q:(r + 1) * Q]
            answers = ch.ask(qs, r)
            logits = _design(cap, list(zip(qs, answers)))[0] @ w
            total += float(logits.sum())
            flagged += int((logits > 0).sum())
            ch.note(round=r, logits=[float(v) for v in logits])  # exact: their signs decide
            if self.threshold is not None and flagged >= self.threshold:
                return "model"
        if self.threshold is not None:
            return "truth"
        return "model" if total > 0 else "truth"


class LMJudgeEvaluator(Evaluator):
    name = "lm-judge"
    description = "a language model judges every response; its threshold is calibrated on the samples"
    uses = ("judge",)
    shots = 2

    def check(self, cap, res):
        if res.samples < self.shots + 2:
            raise LmscopeError(f"the lm-judge evaluator needs --samples >= {self.shots + 2} ({self.shots} solved "
                               f"examples for its prompt and at least 2 to calibrate), got {res.samples}")

    def play(self, cap, res, rng, ch):
        pool = cap.sample_queries(rng, res.samples, "mix")
        shot_q, calib = pool[:self.shots], pool[self.shots:]
        shots = [(q, cap.answer(q), "yes") if i % 2 == 0 else (q, cap.corrupt(q, cap.answer(q), rng), "no")
                 for i, q in enumerate(shot_q)]
        right = [judge_prompt(cap, q, cap.answer(q), shots) for q in calib]
        wrong = [judge_prompt(cap, q, cap.corrupt(q, cap.answer(q), rng), shots) for q in calib]
        margins = ch.judge(right + wrong)
        tau = _best_threshold(margins[:len(calib)], margins[len(calib):])
        ch.note(threshold=round(tau, 4), calibration_accuracy=round(_accuracy(margins, len(calib), tau), 4))
        queries = cap.sample_queries(rng, res.queries, "mix", exclude=set(pool))
        flagged = 0
        Q = res.queries_per_round
        for r in range(res.rounds):
            qs = queries[r * Q:(r + 1) * Q]
            answers = ch.ask(qs, r)
            m = ch.judge([judge_prompt(cap, q, a, shots) for q, a in zip(qs, answers)])
            flags = [v < tau for v in m]
            flagged += sum(flags)
            ch.note(round=r, margins=[round(v, 4) for v in m], flagged=flags)
            if flagged >= self.threshold:
                return "model"
        return "truth"


def _accuracy(margins, n_right, tau) -> float:
    good = sum(v >= tau for v in margins[:n_right]) + sum(v < tau for v in margins[n_right:])
    return good / max(len(margins), 1)


def _best_threshold(right: list[float], wrong: list[float]) -> float:
    """The cut between margins of right answers (above) and wrong ones (below) that classifies most."""
    values = sorted(set(right) | set(wrong))
    cuts = [values[0] - 1.0] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1.0]
    margins = list(right) + list(wrong)
    scores = [_accuracy(margins, len(right), c) for c in cuts]
    best = max(scores)
    chosen = [c for c, s in zip(cuts, scores) if s == best]
    return float(chosen[len(chosen) // 2])


class SelfEvaluator(Evaluator):
    name = "self"
    description = "the model judges its own answers (its own yes/no, or agreement with its own answer)"
    uses = ("judge", "probe")

    def play(self, cap, res, rng, ch):
        queries = cap.sample_queries(rng, res.queries, "mix")
        flagged = 0
        Q = res.queries_per_round
        for r in range(res.rounds):
            qs = queries[r * Q:(r + 1) * Q]
            answers = ch.ask(qs, r)
            if ch.has_model_lm():
                m = ch.judge([judge_prompt(cap, q, a) for q, a in zip(qs, answers)], by="model")
                flags = [v < 0 for v in m]
            else:
                own = ch.probe(qs)
                flags = [cap.normalize(a) != cap.normalize(o) for a, o in zip(answers, own)]
            flagged += sum(flags)
            ch.note(round=r, flagged=flags)
            if flagged >= self.threshold:
                return "model"
        return "truth"


EVALUATORS: dict[str, type[Evaluator]] = {
    e.name: e for e in (StaticEvaluator, FreshEvaluator, AdaptiveEvaluator, DiscriminatorEvaluator,
                        LMJudgeEvaluator, SelfEvaluator)
}


def make_evaluator(name: str, **options) -> Evaluator:
    """The evaluator called ``name`` with its options (``threshold``; ``l2`` for the discriminator;
    ``taxonomy`` and ``probe`` for the adaptive evaluator; options another evaluator lacks are ignored).

    ``threshold=None`` is each evaluator's default: 1 for the counting evaluators, the summed
    log-odds rule for the discriminator."""
    if name not in EVALUATORS:
        raise LmscopeError(f"unknown evaluator {name!r}; choose one of {', '.join(EVALUATORS)}")
    cls = EVALUATORS[name]
    if cls is DiscriminatorEvaluator:
        options = {k: v for k, v in options.items() if k in ("threshold", "l2")}
    elif cls is AdaptiveEvaluator:
        options = {k: v for k, v in options.items() if k in ("threshold", "taxonomy", "probe")}
    else:
        options = {k: v for k, v in options.items() if k == "threshold"}
    return cls(**options)
