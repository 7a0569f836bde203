"""The LM-priors graphical models with planted ground truth: HSMM decoding, label correction, object search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lmscope.errors import LmscopeError
from lmscope.priors import PriorsConfig, actions, navigation, run_benchmark, segmentation
from lmscope.priors.hsmm import (
    dirichlet_rows,
    edit_score,
    poisson_log_durations,
    segment_actions,
    segmentation_score,
    semi_markov_viterbi,
)


# ------------------------------------------------------------------------------------------------
# Semi-Markov Viterbi
# ------------------------------------------------------------------------------------------------
def _compositions(T, D):
    if T == 0:
        yield []
        return
    for d in range(1, min(D, T) + 1):
        for rest in _compositions(T - d, D):
            yield [d] + rest


def brute_force(x, log_init, log_trans, log_dur):
    """The best score over every segmentation and labelling, by enumeration."""
    T, K = x.shape
    best, best_segs = -np.inf, None
    for comp in _compositions(T, log_dur.shape[1]):
        for acts in itertools.product(range(K), repeat=len(comp)):
            segs, s = [], 0
            for a, d in zip(acts, comp):
                segs.append((a, s, s + d))
                s += d
            score = segmentation_score(x, log_init, log_trans, log_dur, segs)
            if score > best:
                best, best_segs = score, segs
    return best, best_segs


@pytest.mark.parametrize("no_self", [False, True])
def test_semi_markov_viterbi_equals_brute_force(no_self):
    rng = np.random.default_rng(1 + no_self)
    for _ in range(60):
        T, K, D = int(rng.integers(1, 7)), int(rng.integers(1, 4)), int(rng.integers(1, 5))
        x = rng.normal(size=(T, K))
        log_init = np.log(rng.dirichlet(np.ones(K)))
        with np.errstate(divide="ignore"):
            trans = rng.dirichlet(np.ones(K), size=K)
            if no_self:
                np.fill_diagonal(trans, 0.0)
            log_trans = np.log(trans)
        log_dur = np.log(rng.dirichlet(np.ones(D), size=K))
        best, _ = brute_force(x, log_init, log_trans, log_dur)
        if not np.isfinite(best):  # e.g. one action, no self-transition, T longer than D
            with pytest.raises(LmscopeError, match="no segmentation"):
                semi_markov_viterbi(x, log_init, log_trans, log_dur)
            continue
        seg = semi_markov_viterbi(x, log_init, log_trans, log_dur)
        assert seg.score == pytest.approx(best)
        assert segmentation_score(x, log_init, log_trans, log_dur, seg.segments) == pytest.approx(best)
        assert [s for _, s, _ in seg.segments][0] == 0 and seg.segments[-1][2] == T
        assert all(e == s2 for (_, _, e), (_, s2, _) in zip(seg.segments, seg.segments[1:]))


def test_viterbi_recovers_a_planted_segmentation():
    truth = [(0, 0, 5), (2, 5, 9), (1, 9, 15)]
    T, K = 15, 3
    x = np.full((T, K), -3.0)
    for a, s, e in truth:
        x[s:e, a] = 0.0
    seg = semi_markov_viterbi(x, np.log(np.full(K, 1 / K)), np.log(np.full((K, K), 1 / K)),
                              poisson_log_durations(np.full(K, 5.0), 12))
    assert seg.segments == truth
    with pytest.raises(LmscopeError, match="shapes do not match"):
        semi_markov_viterbi(x, np.zeros(2), np.zeros((K, K)), np.zeros((K, 3)))


def test_durations_dirichlet_rows_and_edit_score():
    ld = poisson_log_durations(np.array([1.0, 4.0, 9.0]), 30)
    np.testing.assert_allclose(np.exp(ld).sum(axis=1), 1.0)
    assert np.exp(ld[0, 0]) == pytest.approx(1.0, abs=1e-4)  # rate 1: always one frame
    assert float(np.exp(ld[2]) @ np.arange(1, 31)) == pytest.approx(9.0, abs=0.05)  # mean duration = rate
    counts = np.array([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    prior = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [1.0, 1.0, 2.0]])
    rows = dirichlet_rows(counts, prior, alpha=10.0, no_self=True, floor=0.0)
    p = prior.copy()
    np.fill_diagonal(p, 0)
    p /= p.sum(1, keepdims=True)
    want = counts + 10.0 * 3 * p
    np.testing.assert_allclose(rows, want / want.sum(1, keepdims=True))
    assert np.all(np.diag(rows) == 0)
    # uniform prior = add alpha to every allowed cell; no prior = maximum likelihood
    np.testing.assert_allclose(dirichlet_rows(np.array([3.0, 1.0]), np.full(2, 0.5), 10.0, floor=0.0), [13 / 24, 11 / 24])
    np.testing.assert_allclose(dirichlet_rows(np.array([3.0, 1.0]), None, 10.0, floor=0.0), [0.75, 0.25])
    assert edit_score(list("abc"), list("abc")) == 100.0
    assert edit_score(list("abd"), list("abc")) == pytest.approx(100 * 2 / 3)
    assert edit_score(list("ab"), list("abcd")) == 50.0
    assert segment_actions([1, 1, 2, 2, 2, 1]) == [1, 2, 1]


# ------------------------------------------------------------------------------------------------
# Label correction
# ------------------------------------------------------------------------------------------------
def _acc(rows, method, slice_="all", metric="accuracy"):
    return next(r["value"] for r in rows if r["method"] == method and r["slice"] == slice_ and r["metric"] == metric)


def test_true_cooccurrence_prior_improves_labels():
    for seed in (0, 1):
        bench = segmentation.make_label_benchmark(seed, "default")
        rows = segmentation.classifier_rows(bench)
        rows += segmentation.evaluate_prior(bench, *segmentation.true_tables(bench), "true prior")[0]
        assert _acc(rows, "true prior") > _acc(rows, "no prior") + 0.04
        assert _acc(rows, "true prior", "rare") > _acc(rows, "no prior", "rare") + 0.1
        assert _acc(rows, "true prior", metric="room_accuracy") > 0.8
        # the classifier is what the benchmark promises: good on common objects, poor on rare ones
        assert _acc(rows, "no prior", "common") > 0.7 > 0.4 > _acc(rows, "no prior", "rare")


def test_uniform_prior_changes_no_label():
    bench = segmentation.make_label_benchmark(3, "small")
    C, S = segmentation.uniform_tables(bench)
    for T in segmentation.TEMPERATURES:
        labels, _ = segmentation.relabel(bench.test, C, S, T)
        np.testing.assert_array_equal(labels, bench.test.posteriors.argmax(-1))
    # a co-occurrence table that says nothing about rooms changes nothing either, whatever its scale
    labels, _ = segmentation.relabel(bench.test, 5 * C, S, 2.0)
    np.testing.assert_array_equal(labels, bench.test.posteriors.argmax(-1))


def test_correct_labels_is_the_reference_formula():
    """Planted tables: the labels and room posterior equal the module docstring's formulas, computed here
    from scratch (κ = 10, w = C · p(room), the diagonal of S set to 1)."""
    rng = np.random.default_rng(7)
    n_obj, n_room, n_reg = 6, 3, 4
    for _ in range(20):
        C = rng.uniform(0.01, 1, size=(n_obj, n_room))
        S = rng.uniform(0.01, 1, size=(n_obj, n_obj))
        post = rng.dirichlet(np.ones(n_obj) * 0.5, size=n_reg)
        T = float(rng.choice([1.0, 9.0, 16.0]))
        cond = C / C.sum(0)
        room = 10 * np.log(post @ cond).mean(0) + np.log(C.sum(0) / C.sum())
        p_room = np.exp(room - room.max())
        p_room /= p_room.sum()
        w = C @ p_room
        S1 = S.copy()
        np.fill_diagonal(S1, 1.0)
        want = (np.log(post) / T + np.log(w) + np.log(S1[post.argmax(1)])).argmax(1)
        labels, got_room = segmentation.correct_labels(post, C, S, T)
        np.testing.assert_allclose(got_room, p_room, rtol=1e-6)
        np.testing.assert_array_equal(labels, want)
    # the sharpness κ weighs the regions' evidence against the rooms' mass
    C = np.array([[0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.1, 0.9]])  # room 1 holds more plausible objects
    post = np.array([[0.6, 0.2, 0.1, 0.1]])
    assert segmentation.room_posterior(post, C, 10.0).argmax() == 0
    assert segmentation.room_posterior(post, C, 0.0).argmax() == 1


def _scenes(objects, posterior):
    n = len(objects)
    return segmentation.Scenes(np.zeros(n, dtype=int), np.array(objects)[:, None],
                               np.tile(np.asarray(posterior, dtype=float), (n, 1, 1)))


def test_temperature_is_chosen_on_validation_scenes_only():
    """Planted: the classifier says object 0 (log-odds 2.20), the room favours object 1 by log 2.5 = 0.92
    nats and the look-alike step costs log(1 / 0.6) = 0.51, so the label flips to 1 exactly when
    2.20 / T < 0.41, T > 5.4. Validation scenes whose truth is 1 pick T = 8 (the smallest temperature of
    the grid that flips); test scenes, whatever their truth, cannot change that choice."""
    C = np.array([[0.4], [1.0]])
    S = np.array([[1.0, 0.6], [0.6, 1.0]])
    post = [[0.9, 0.1]]
    val = _scenes([1] * 5, post)
    T, acc = segmentation.choose_temperature(val, C, S)
    assert (T, acc) == (8.0, 1.0)
    for test_truth in (0, 1):
        bench = segmentation.LabelBenchmark(("a", "b"), ("room",), ("b",), val, _scenes([test_truth] * 7, post), {})
        rows, info = segmentation.evaluate_prior(bench, C, S, "LM prior", segmentation.TEMPERATURES)
        assert info == {"temperature": 8.0, "val_accuracy": 1.0}
        assert _acc(rows, "LM prior") == float(test_truth == 1)
        # the fixed reference temperature 9 flips as well; T = 1 keeps the classifier's label
        assert segmentation.evaluate_prior(bench, C, S, "x")[1]["temperature"] == 9.0
        assert _acc(segmentation.evaluate_prior(bench, C, S, "x", (1.0,))[0], "x") == float(test_truth == 0)
    with pytest.raises(LmscopeError, match="temperatures must be positive"):
        segmentation.choose_temperature(val, C, S, (0.0, 1.0))


def test_label_queries_ask_as_the_reference():
    bench = segmentation.make_label_benchmark(0, "small")
    C_q, S_q = segmentation.label_queries(bench)
    assert C_q.binary and S_q.binary and C_q.positive == "plausible"
    assert C_q.axes == ("room", "object") and S_q.axes == ("object", "other")
    head = ("A bedroom has a lamp: plausible\nA kitchen has a kettle: plausible\nA garage has a toolbox: plausible\n"
            "An office has a bathrobe: implausible\nA kitchen has a shower curtain: implausible\n"
            "A living room has a dishwasher: implausible\n")
    prompts = C_q.prompts()
    assert prompts[0] == head + "A kitchen has a stove:"
    assert prompts[C_q.combinations().index(("office", "toaster"))].endswith("\nAn office has a toaster:")
    assert S_q.prompts()[1].endswith("implausible\nThe stove looks like the refrigerator:")
    assert C_q.continuations() == [" plausible", " implausible"]
    # the worked examples name no object of the benchmark
    from lmscope.priors.world import OBJECTS
    for o in OBJECTS:
        assert f" {o}:" not in head and f"the {o}:" not in S_q.prefix()
    old = segmentation.label_queries(bench, "next-token")
    assert old[0].prompts()[0] == "The kitchen has a" and not old[0].binary
    with pytest.raises(LmscopeError, match="unknown prior query mode"):
        segmentation.label_queries(bench, "chat")


def test_room_posterior_and_label_errors():
    C = np.array([[0.9, 0.1], [0.1, 0.9]])  # object 0 belongs in room 0, object 1 in room 1
    post = np.array([[0.8, 0.2], [0.7, 0.3]])
    p = segmentation.room_posterior(post, C)
    assert p.sum() == pytest.approx(1.0) and p[0] > p[1]
    with pytest.raises(LmscopeError, match="objects x rooms"):
        segmentation.correct_labels(post, np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(LmscopeError, match="temperature must be positive"):
        segmentation.correct_labels(post, C, np.ones((2, 2)), temperature=0)
    with pytest.raises(LmscopeError, match="unknown size"):
        segmentation.make_label_benchmark(0, "huge")


# ------------------------------------------------------------------------------------------------
# Action segmentation
# ------------------------------------------------------------------------------------------------
def test_action_benchmark_holds_out_transitions():
    bench = actions.make_action_benchmark(0, "small")
    models = actions.fit_task_models(bench)
    held = bench.held_out()
    assert all(held.values())
    for task, pairs in held.items():
        acts = bench.tasks[task]
        m = models[task]
        for pair in pairs:
            a, b = pair.split(" → ")
            if a == "start":
                assert m.init_counts[acts.index(b)] == 0
            else:
                assert m.trans_counts[acts.index(a), acts.index(b)] == 0
    again = actions.make_action_benchmark(0, "small")
    np.testing.assert_array_equal(again.ood[3].features, bench.ood[3].features)


def test_action_queries_ask_as_the_reference():
    bench = actions.make_action_benchmark(0, "small")
    qs = {q.name: q for q in actions.action_queries(bench)}
    first, nxt = qs["first:make tea"], qs["next:make tea"]
    listed = ("Your task is to make tea. Here is an *unordered* set of possible actions: {add a teabag, add milk, "
              "add sugar, boil water, pour the water, stir, take a cup}. Please order these actions for your task.\n")
    assert first.prompts()[0].endswith("\n\n" + listed + "The first step is")
    assert nxt.prompts()[nxt.combinations().index(("boil water",))].endswith(listed + "The step after boil water is")
    assert first.prompts()[0].startswith("Your task is to make lemonade.")
    assert "The first step can be cut lemons\n" in first.prompts()[0]
    assert first.continuations() == [" " + a for a in bench.tasks["make tea"]]
    assert nxt.axes == ("previous", "action")
    for task in bench.tasks:  # the worked tasks are other tasks
        assert f"Your task is to {task}." not in first.prefix()
    old = {q.name: q for q in actions.action_queries(bench, "next-token")}
    assert old["first:make tea"].prompts() == ["To make tea, the first step is to"]
    # a sensible order unseen in training: boiling the water before taking a cup
    held = bench.held_out()
    assert "start → boil water" in held["make tea"] and "start → boil water" in held["make coffee"]


def test_true_order_prior_helps_out_of_distribution():
    bench = actions.make_action_benchmark(0, "default")
    models = actions.fit_task_models(bench)
    rows = actions.evaluate_prior(bench, models, None, "no prior")
    rows += actions.evaluate_prior(bench, models, actions.true_prior(bench), "true prior")
    for metric in ("frame_accuracy", "edit_score"):
        assert _acc(rows, "true prior", "ood", metric) > _acc(rows, "no prior", "ood", metric)
    # in distribution the counts alone are already good
    assert _acc(rows, "no prior", "id", "frame_accuracy") > 0.85


# ------------------------------------------------------------------------------------------------
# Object search
# ------------------------------------------------------------------------------------------------
def test_search_true_prior_helps_rare_targets():
    from lmscope.priors.world import object_room_table

    bench = navigation.make_search_benchmark(0, "default")
    rows = navigation.evaluate_prior(bench, None, "no prior")
    rows += navigation.evaluate_prior(bench, np.ones_like(bench.train_counts), "uniform prior")
    rows += navigation.evaluate_prior(bench, object_room_table(), "true prior")
    # counts from training houses are fine for common targets, weak for rare ones; the true prior fills in
    assert _acc(rows, "true prior", "rare", "success_at_1") > _acc(rows, "no prior", "rare", "success_at_1") + 0.1
    assert _acc(rows, "true prior", metric="rooms_visited") < _acc(rows, "uniform prior", metric="rooms_visited")
    # with no counts at all, a uniform prior ties every room: a random search (4 rooms: 2.5 visits on average)
    bench.train_counts[:] = 0
    blind = navigation.evaluate_prior(bench, np.ones_like(bench.train_counts), "uniform prior")
    assert 2.2 < _acc(blind, "uniform prior", metric="rooms_visited") < 2.8
    truth = object_room_table()
    np.testing.assert_allclose(navigation.posterior_table(bench.train_counts, truth), truth, atol=1e-9)


def test_search_alpha_is_chosen_on_validation_seeds():
    """Planted: the true table deserves more weight than a table that gives each object another object's
    rooms; the choice uses the validation seeds alone, and a validation seed cannot be a test seed."""
    from lmscope.priors.world import object_room_table

    truth = object_room_table()
    scrambled = truth[np.random.default_rng(0).permutation(len(truth))]
    a_true, scores = navigation.choose_alpha(truth, "small")
    a_bad, bad_scores = navigation.choose_alpha(scrambled, "small")
    assert a_bad == min(navigation.ALPHAS) < a_true
    assert set(scores) == set(navigation.ALPHAS) and scores[a_true] == min(scores.values())
    # the scores are the mean visits over exactly the validation seeds' searches
    want = np.mean([navigation.mean_visits(navigation.make_search_benchmark(s, "small"), truth, a_true)
                    for s in navigation.VALIDATION_SEEDS])
    assert scores[a_true] == pytest.approx(want)
    res = run_benchmark("search", None, seed=0, size="small")
    assert set(res.info["alpha"]) == {"uniform prior", "true prior"}
    assert res.info["alpha"]["true prior"] == a_true
    with pytest.raises(LmscopeError, match="seed 101 is a validation seed"):
        run_benchmark("search", None, seed=101, size="small")
    with pytest.raises(LmscopeError, match="alphas must be positive"):
        navigation.choose_alpha(truth, "small", alphas=(-1.0,))


def test_search_ranks_rooms_by_landmarks():
    cond = np.array([[0.8, 0.1], [0.1, 0.8], [0.1, 0.1]])  # objects x room kinds
    scores = navigation.room_scores(cond, np.array([[1], [0]]), target=0)
    assert scores[1] > scores[0]  # the target (object 0) lives where landmark 0 does
    ep = navigation.Episode(np.array([0, 1]), np.array([[1], [0]]), 0, 1, np.array([0, 1]))
    assert navigation.visits(scores, ep) == 1
    assert navigation.visits(np.zeros(2), ep) == 2  # a tie: the episode's order, room 0 first


def test_run_benchmark_without_a_language_model():
    for name in ("labels", "actions", "search"):
        res = run_benchmark(name, None, seed=0, size="small")
        methods = list(res.wide()["method"])
        extra = ["true prior (T from validation)"] if name == "labels" else []
        assert methods == ["no prior", "uniform prior", "true prior"] + extra
        assert res.to_dict()["rows"] and not res.tables
        assert res.info["config"] == PriorsConfig().to_dict()
    labels = run_benchmark("labels", None, seed=0, size="small")
    assert labels.info["temperatures"]["true prior"] == 9.0  # the reference's fixed temperature
    assert labels.info["temperatures"]["true prior (T from validation)"] in segmentation.TEMPERATURES
    with pytest.raises(LmscopeError, match="unknown benchmark"):
        run_benchmark("cooking", None)
    with pytest.raises(LmscopeError, match="unknown query mode 'chat'"):
        PriorsConfig(query="chat")
    with pytest.raises(LmscopeError, match="temperature must be a positive number"):
        PriorsConfig(temperature=0)
    with pytest.raises(LmscopeError, match="search_alphas must be positive"):
        PriorsConfig(search_alphas=())
