"""Prior queries and tables (lmscope.priors.queries), with a tiny real transformers model for the scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _priors_lm import tiny_lm

from lmscope.errors import LmscopeError
from lmscope.priors import (
    PriorQuery,
    PriorTable,
    class_probabilities,
    query_prior,
    query_priors,
    uniform_table,
)
from lmscope.priors.queries import read_queries, template_fields

ROOMS = ["kitchen", "garage"]
OBJECTS = ["stove", "car", "lawn mower"]


def binary_query(**kw) -> PriorQuery:
    d = dict(name="has", template="Statement: the {room} has a {object}.\nAnswer:",
             inputs={"room": ROOMS, "object": OBJECTS}, classes=["plausible", "implausible"], positive="plausible",
             examples=[{"room": "bathroom", "object": "toilet", "answer": "plausible"},
                       {"room": "bedroom", "object": "car", "answer": "implausible"}])
    d.update(kw)
    return PriorQuery(**d)


# ------------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------------
def test_prompts_examples_and_continuations():
    q = binary_query(instruction="Say whether each statement is plausible.")
    prompts = q.prompts()
    assert len(prompts) == q.size() == 6
    head = ("Say whether each statement is plausible.\n"
            "Statement: the bathroom has a toilet.\nAnswer: plausible\n"
            "Statement: the bedroom has a car.\nAnswer: implausible\n")
    assert prompts[0] == head + "Statement: the kitchen has a stove.\nAnswer:"
    assert prompts[-1].endswith("the garage has a lawn mower.\nAnswer:")  # row-major: room, then object
    assert q.continuations() == [" plausible", " implausible"]
    assert q.axes == ("room", "object") and q.binary
    # a template ending in whitespace takes the class as is; no inputs means one prompt
    q2 = PriorQuery("first", "Steps to make tea:\n1.", {}, ["boil water", "take a cup"], class_axis="step")
    assert q2.prompts() == ["Steps to make tea:\n1."] and q2.continuations() == [" boil water", " take a cup"]
    q3 = PriorQuery("x", "Room: {room}\nObject: ", {"room": ROOMS}, OBJECTS)
    assert q3.continuations() == OBJECTS and q3.axes == ("room", "class")


def test_dict_form_round_trip(tmp_path):
    q = binary_query()
    again = PriorQuery.from_dict(json.loads(json.dumps(q.to_dict())))
    assert again == q
    path = tmp_path / "q.json"
    path.write_text(json.dumps([q.to_dict(), {**q.to_dict(), "name": "other"}]))
    assert [x.name for x in read_queries(path)] == ["has", "other"]


@pytest.mark.parametrize("change, message", [
    (dict(classes=[]), "class list is empty"),
    (dict(template="the {place} has a {object}"), r"\{place\} have no input values"),
    (dict(template="the {room} has a thing"), "do not appear in the template"),
    (dict(template="the {} has a {object}"), "not a plain name"),
    (dict(template="the {room!r} has a {object:>5}"), "format spec or conversion"),
    (dict(positive="yes"), "positive class 'yes' is not one of the classes"),
    (dict(classes=["plausible", "plausible"]), "repeat 'plausible'"),
    (dict(inputs={"room": [], "object": OBJECTS}), "input 'room' has no values"),
    (dict(inputs={"room": "kitchen", "object": OBJECTS}), "must be a list of strings"),
    (dict(examples=[{"room": "x", "object": "y", "answer": "maybe"}]), "answer 'maybe' is not one of"),
    (dict(examples=[{"room": "x", "answer": "plausible"}]), "lacks 'object'"),
    (dict(examples=[{"room": "x", "object": "y", "colour": "red", "answer": "plausible"}]), "'colour'"),
    (dict(name=""), "non-empty name"),
])
def test_bad_configs(change, message):
    with pytest.raises(LmscopeError, match=message):
        binary_query(**change)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LmscopeError, match="malformed JSON"):
        read_queries(bad)
    bad.write_text(json.dumps({"name": "q", "template": "x {a}", "inputs": {"a": ["1"]}, "classes": ["b"],
                               "colour": "red"}))
    with pytest.raises(LmscopeError, match="unknown prior query key"):
        read_queries(bad)
    bad.write_text(json.dumps({"name": "q", "template": "x {a}"}))
    with pytest.raises(LmscopeError, match="lacks 'inputs', 'classes'"):
        read_queries(bad)
    with pytest.raises(LmscopeError, match="no such file"):
        read_queries(tmp_path / "missing.json")
    assert template_fields("a {x} b {y} {x}") == ["x", "y"]


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------
def test_table_files_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    t = PriorTable(rng.dirichlet(np.ones(3), size=2), ("room", "object"), (ROOMS, OBJECTS), "t", {"k": 1})
    for suffix in (".json", ".csv"):
        back = PriorTable.load(t.save(tmp_path / f"t{suffix}"))
        assert back.axes == t.axes and back.labels == t.labels
        np.testing.assert_allclose(back.values, t.values, rtol=1e-9)
    assert t.get(room="garage", object="car") == pytest.approx(t.values[1, 1])
    np.testing.assert_allclose(t.array("object", "room", room=["garage", "kitchen"]), t.values[::-1].T)
    np.testing.assert_allclose(t.normalized("room").values.sum(axis=0), 1.0)
    # calibration removes a class's overall preference: a table that only prefers one class everywhere becomes uniform
    flat = PriorTable(np.tile([0.7, 0.2, 0.1], (2, 1)), ("room", "object"), (ROOMS, OBJECTS))
    np.testing.assert_allclose(flat.calibrated("object").values, 1 / 3)


def test_table_errors(tmp_path):
    with pytest.raises(LmscopeError, match="do not match labels"):
        PriorTable(np.ones((2, 2)), ("room", "object"), (ROOMS, OBJECTS))
    with pytest.raises(LmscopeError, match="non-negative"):
        PriorTable(-np.ones((2, 3)), ("room", "object"), (ROOMS, OBJECTS))
    t = PriorTable(np.ones((2, 3)), ("room", "object"), (ROOMS, OBJECTS))
    with pytest.raises(LmscopeError, match="no axis 'colour'"):
        t.get(colour="red")
    with pytest.raises(LmscopeError, match="no room 'attic'"):
        t.get(room="attic")
    (tmp_path / "t.csv").write_text("room,object,p\nkitchen,stove,0.5\n garage,car,0.5\n")
    with pytest.raises(LmscopeError, match="incomplete"):
        PriorTable.load(tmp_path / "t.csv")
    (tmp_path / "t.csv").write_text("room,object,p\nkitchen,stove,lots\n")
    with pytest.raises(LmscopeError, match="not a number"):
        PriorTable.load(tmp_path / "t.csv")
    with pytest.raises(LmscopeError, match=r"\.json or \.csv"):
        t.save(tmp_path / "t.txt")


def test_class_probabilities_is_a_stable_softmax():
    lp = np.array([[-1000.0, -1001.0, -1003.0], [0.0, 0.0, 0.0]])
    p = class_probabilities(lp)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    np.testing.assert_allclose(p[0], np.exp([0, -1, -3]) / np.exp([0, -1, -3]).sum())
    np.testing.assert_allclose(p[1], 1 / 3)


# ------------------------------------------------------------------------------------------------
# Scoring with a tiny real model
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return tiny_lm(tmp_path_factory.mktemp("priors-lm"))


def _direct_logprob(lm, prompt: str, cont: str) -> float:
    """Sum of the continuation's token log-probs, one unpadded sequence at a time."""
    tok, model = lm.inner.tokenizer, lm.inner.model
    p = tok(prompt)["input_ids"]
    full = tok(prompt + cont)["input_ids"]
    assert full[:len(p)] == p
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].double(), -1)
    return float(sum(logp[i - 1, full[i]] for i in range(len(p), len(full))))


def test_tables_are_softmaxes_of_summed_class_logprobs(lm):
    multi = PriorQuery("in", "The {object} is in the", {"object": OBJECTS}, ["kitchen", "living room", "garage"],
                       class_axis="room")
    binary = binary_query()
    calls = lm.calls
    t_multi, t_bin = query_priors(lm, [multi, binary])
    assert lm.calls == calls + 1  # every request of both queries in one score call
    assert t_multi.axes == ("object", "room") and t_multi.values.shape == (3, 3)
    np.testing.assert_allclose(t_multi.values.sum(axis=1), 1.0)
    for i, o in enumerate(OBJECTS):
        lps = np.array([_direct_logprob(lm, f"The {o} is in the", " " + r) for r in multi.classes])
        np.testing.assert_allclose(t_multi.values[i], np.exp(lps - np.logaddexp.reduce(lps)), rtol=1e-4)
        np.testing.assert_allclose(t_multi.source["logprobs"][i], lps, atol=1e-4)
    # binary: one number per (room, object), p(plausible) normalized against implausible only
    assert t_bin.axes == ("room", "object") and t_bin.values.shape == (2, 3)
    prompt = binary.prompts()[4]  # garage, car
    lp_yes, lp_no = (_direct_logprob(lm, prompt, c) for c in (" plausible", " implausible"))
    assert t_bin.get(room="garage", object="car") == pytest.approx(1 / (1 + np.exp(lp_no - lp_yes)), rel=1e-4)
    assert query_prior(lm, multi).values == pytest.approx(t_multi.values)
    u = uniform_table(binary)
    assert u.axes == t_bin.axes and np.all(u.values == 0.5)
    np.testing.assert_allclose(uniform_table(multi).values, 1 / 3)


def test_wording_writes_values_in_the_prompt_not_in_the_table():
    q = binary_query(template="{room} has {object}:", examples=[],
                     wording={"room": {"kitchen": "A kitchen", "garage": "The garage"}, "object": {"car": "a car"}})
    assert q.prompts()[0] == "A kitchen has stove:"
    assert q.prompts()[4] == "The garage has a car:"
    assert q.labels == (tuple(ROOMS), tuple(OBJECTS))
    assert PriorQuery.from_dict(json.loads(json.dumps(q.to_dict()))) == q
    with pytest.raises(LmscopeError, match="wording names 'colour'"):
        binary_query(wording={"colour": {"red": "Red"}})
    with pytest.raises(LmscopeError, match="names value\\(s\\) 'attic'"):
        binary_query(wording={"room": {"attic": "An attic"}})
    with pytest.raises(LmscopeError, match="non-empty strings"):
        binary_query(wording={"room": {"kitchen": ""}})


def test_label_correction_tables_from_the_model_are_plausibilities(lm):
    """The label benchmark's reference queries, scored by a real (tiny) model: every cell is
    p(plausible) against implausible for the prompt with its worked examples, used as is (no calibration)."""
    from lmscope.priors import segmentation as sg

    bench = sg.make_label_benchmark(0, "small")
    queries = sg.label_queries(bench)
    tables = {t.name: t for t in query_priors(lm, queries)}
    C, S = sg.tables_to_arrays(bench, tables)
    assert C.shape == (19, 6) and S.shape == (19, 19)
    assert np.all((C > 0) & (C < 1)) and np.all((S > 0) & (S < 1))
    q = queries[0]
    prompt = q.prompts()[q.combinations().index(("office", "printer"))]
    assert prompt.startswith(q.prefix()) and prompt.endswith("\nAn office has a printer:")
    lp_yes, lp_no = (_direct_logprob(lm, prompt, c) for c in (" plausible", " implausible"))
    want = 1 / (1 + np.exp(lp_no - lp_yes))
    assert C[bench.objects.index("printer"), bench.rooms.index("office")] == pytest.approx(want, rel=1e-4)
    assert tables["cooccurrence"].get(room="office", object="printer") == pytest.approx(want, rel=1e-4)
