"""Tests for the generated fine-tuning tasks, task-file loading and the bundled general text."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lmscope._io import write_jsonl
from lmscope.data.general import general_text_pairs, general_text_topics, load_general_text, split_halves
from lmscope.data.tasks import (
    TASKS,
    infer_task_kind,
    load_task_file,
    make_task,
    split_rows,
    task_kind,
)
from lmscope.errors import LmscopeError

CLASSIFICATION = ["sentiment", "topic"]


# ---------------------------------------------------------------------------- generated tasks


@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_seed_gives_identical_rows(name):
    assert make_task(name, 200, seed=3) == make_task(name, 200, seed=3)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_different_seed_gives_different_rows(name):
    assert make_task(name, 200, seed=0) != make_task(name, 200, seed=1)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_row_format_matches_kind(name):
    rows = make_task(name, 50)
    assert len(rows) == 50
    for row in rows:
        assert isinstance(row["text"], str) and row["text"].strip()
        if task_kind(name) == "classification":
            assert set(row) == {"text", "label"} and isinstance(row["label"], str)
        else:
            assert set(row) == {"text"}
    assert infer_task_kind(rows) == task_kind(name)


def test_task_kinds():
    assert task_kind("sentiment") == "classification"
    assert task_kind("topic") == "classification"
    assert task_kind("recipes-lm") == "lm"


@pytest.mark.parametrize("name,labels", [("sentiment", 2), ("topic", 4)])
@pytest.mark.parametrize("n", [2000, 7, 1])
def test_labels_exactly_balanced(name, labels, n):
    counts = Counter(r["label"] for r in make_task(name, n, seed=5))
    if n >= labels:
        assert len(counts) == labels
    assert max(counts.values()) - min(counts.values()) <= 1 or len(counts) == 1
    assert sum(counts.values()) == n


def test_label_sets():
    assert {r["label"] for r in make_task("sentiment", 40)} == {"negative", "positive"}
    assert {r["label"] for r in make_task("topic", 40)} == {"sports", "science", "business", "cooking"}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_generated_texts_are_diverse(name):
    rows = make_task(name, 2000, seed=0)
    assert len({r["text"] for r in rows}) >= 1000


def test_labels_are_not_in_cycled_order():
    labels = [r["label"] for r in make_task("sentiment", 100)]
    assert labels != ["negative", "positive"] * 50
    assert labels != ["positive", "negative"] * 50


def test_sentiment_uses_negation_and_mixed_clauses():
    texts = " ".join(r["text"] for r in make_task("sentiment", 500))
    assert "not bad at all" in texts or "never disappointing" in texts
    assert ", but " in texts and "Although " in texts


def test_sentiment_label_is_not_given_away_by_a_single_word():
    # Words that are "positive" in isolation also occur in negative reviews and vice versa.
    rows = make_task("sentiment", 2000)
    neg = " ".join(r["text"] for r in rows if r["label"] == "negative")
    pos = " ".join(r["text"] for r in rows if r["label"] == "positive")
    assert "excellent" in neg or "superb" in neg
    assert "disappointing" in pos or "terrible" in pos


def test_unknown_task_lists_known_ones():
    with pytest.raises(LmscopeError) as e:
        make_task("nope", 10)
    for name in TASKS:
        assert name in str(e.value)
    with pytest.raises(LmscopeError):
        task_kind("nope")


@pytest.mark.parametrize("n", [0, -3])
def test_bad_n_rejected(n):
    with pytest.raises(LmscopeError):
        make_task("sentiment", n)


# ---------------------------------------------------------------------------- split_rows


def test_split_rows_is_seeded_and_complete():
    rows = make_task("topic", 100)
    train, test = split_rows(rows, test_fraction=0.2, seed=4)
    assert len(test) == 20 and len(train) == 80
    assert sorted(json.dumps(r) for r in train + test) == sorted(json.dumps(r) for r in rows)
    assert split_rows(rows, 0.2, seed=4) == (train, test)
    assert split_rows(rows, 0.2, seed=5) != (train, test)


def test_split_rows_keeps_both_sides_non_empty():
    rows = [{"text": "a"}, {"text": "b"}]
    train, test = split_rows(rows, test_fraction=0.01)
    assert len(train) == 1 and len(test) == 1
    with pytest.raises(LmscopeError):
        split_rows(rows[:1])
    with pytest.raises(LmscopeError):
        split_rows(rows, test_fraction=1.0)


# ---------------------------------------------------------------------------- task files


def test_infer_task_kind():
    assert infer_task_kind([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]) == "classification"
    assert infer_task_kind([{"text": "a"}, {"text": "b"}]) == "lm"


def test_mixed_labelled_rows_rejected_with_row_number():
    rows = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"text": "c"}]
    with pytest.raises(LmscopeError, match="row 3"):
        infer_task_kind(rows)
    with pytest.raises(LmscopeError, match="row 2"):
        infer_task_kind([{"text": "a"}, {"text": "b", "label": "y"}])


@pytest.mark.parametrize(
    "bad_row",
    [{"label": "x"}, {"text": ""}, {"text": "   "}, {"text": 5}, {"text": None}, {"text": ["a"]}],
)
def test_row_without_usable_text_rejected_with_row_number(bad_row):
    with pytest.raises(LmscopeError, match="row 2"):
        infer_task_kind([{"text": "fine"}, bad_row])


def test_empty_rows_rejected():
    with pytest.raises(LmscopeError):
        infer_task_kind([])


def test_load_task_file_roundtrip(tmp_path):
    path = write_jsonl(tmp_path / "task.jsonl", make_task("sentiment", 30))
    rows, kind = load_task_file(path)
    assert kind == "classification" and rows == make_task("sentiment", 30)
    path = write_jsonl(tmp_path / "lm.jsonl", make_task("recipes-lm", 10))
    assert load_task_file(path)[1] == "lm"


def test_load_task_file_malformed_json_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n{"text": "ok", "label": "b"}\n{"text": oops}\n')
    with pytest.raises(LmscopeError, match=r"bad\.jsonl:3"):
        load_task_file(path)


def test_load_task_file_missing_text_names_row_and_file(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "a"}, {"body": "b"}])
    with pytest.raises(LmscopeError, match=r"t\.jsonl.*row 2"):
        load_task_file(path)


def test_load_task_file_mixed_labels(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "a", "label": "x"}, {"text": "b"}])
    with pytest.raises(LmscopeError, match="row 2"):
        load_task_file(path)


def test_load_task_file_missing_file(tmp_path):
    with pytest.raises(LmscopeError):
        load_task_file(tmp_path / "absent.jsonl")


# ---------------------------------------------------------------------------- general text


def test_general_text_loads():
    texts = load_general_text()
    assert len(texts) >= 100
    assert len(set(texts)) == len(texts)
    for text in texts:
        assert 40 <= len(text.split()) <= 130
    assert load_general_text(5) == texts[:5]
    assert load_general_text(10_000) == texts
    assert len(general_text_topics()) == len(texts)
    assert len(set(general_text_topics())) >= 10


def test_general_text_bad_n():
    with pytest.raises(LmscopeError):
        load_general_text(0)


def test_general_text_pairs():
    texts = load_general_text()
    pairs = general_text_pairs()
    assert len(pairs) == len(texts)
    for (first, second), text in zip(pairs, texts):
        assert first.strip() and second.strip()
        assert (first + " " + second).split() == text.split()
        # nearest sentence boundary to the middle: neither half is tiny
        assert 0.2 < len(first) / len(text) < 0.8
    assert general_text_pairs(3) == pairs[:3]


def test_split_halves_edge_cases():
    assert split_halves("One sentence here. Another one there.") == (
        "One sentence here.",
        "Another one there.",
    )
    first, second = split_halves("no sentence boundary at all in this text")
    assert first and second
    with pytest.raises(LmscopeError):
        split_halves("word")
