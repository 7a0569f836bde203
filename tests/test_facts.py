"""Tests for the curated fact tables and the bundled factual-recall / true-false evaluation sets."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pytest

from lmscope.data.evalsets import EVAL_SETS, load_eval_set, load_factual_recall, load_true_false
from lmscope.data.facts import (
    FACTUAL_RECALL_FILE,
    TRUE_FALSE_FILE,
    facts,
    factual_recall_rows,
    resources_dir,
    true_false_rows,
    write_bundled,
)
from lmscope.errors import LmscopeError


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = " ".join(re.sub(r"[^\w\s]", "", text).split())
    return text[4:] if text.startswith("the ") else text


@pytest.fixture(scope="module")
def recall():
    return load_factual_recall()


@pytest.fixture(scope="module")
def true_false():
    return load_true_false()


@pytest.fixture(scope="module")
def gold():
    """(relation, subject) -> normalized forms of every accepted answer."""
    return {(f["relation"], f["subject"]): {_norm(a) for a in [f["answer"], *f["aliases"]]} for f in facts()}


# ---------------------------------------------------------------------------- factual recall


def test_size_and_relations(recall):
    assert len(recall) >= 1000
    counts = Counter(r["relation"] for r in recall)
    assert len(counts) >= 10
    assert min(counts.values()) >= 15


def test_row_format(recall):
    for r in recall:
        assert set(r) == {"id", "relation", "prompt", "answer", "aliases"}
        assert isinstance(r["aliases"], list) and all(isinstance(a, str) and a for a in r["aliases"])


def test_ids_and_prompts_unique(recall):
    assert len({r["id"] for r in recall}) == len(recall)
    prompts = [r["prompt"] for r in recall]
    assert len(set(prompts)) == len(prompts)


def test_sorted_by_relation(recall):
    relations = [r["relation"] for r in recall]
    assert relations == sorted(relations)


def test_prompt_and_answer_spacing(recall):
    for r in recall:
        assert r["prompt"] == r["prompt"].strip() and r["prompt"]
        assert r["answer"] == r["answer"].strip() and r["answer"]
        assert "\n" not in r["prompt"]


def test_answer_not_in_prompt(recall):
    for r in recall:
        answer, prompt = r["answer"], r["prompt"]
        assert answer not in prompt, r
        assert not re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", prompt, re.I), r


def test_aliases_do_not_repeat_answer(recall):
    for r in recall:
        folded = [a.casefold() for a in r["aliases"]]
        assert r["answer"].casefold() not in folded, r
        assert len(set(folded)) == len(folded), r


def test_recall_matches_facts(recall):
    rows = facts()
    assert len(rows) == len(recall)
    for f, r in zip(rows, recall):
        assert (f["relation"], f["answer"], f["aliases"]) == (r["relation"], r["answer"], r["aliases"])


def _lookup(recall, relation, prompt):
    (row,) = [r for r in recall if r["relation"] == relation and r["prompt"] == prompt]
    return row


@pytest.mark.parametrize(
    "relation,prompt,answer",
    [
        ("country_capital", "The capital of France is", "Paris"),
        ("country_capital", "The capital of Australia is", "Canberra"),
        ("country_capital", "The capital of Canada is", "Ottawa"),
        ("country_capital", "The capital of Turkey is", "Ankara"),
        ("country_capital", "The capital of Nigeria is", "Abuja"),
        ("country_capital", "The capital of Brazil is", "Brasília"),
        ("country_currency", "The currency of Japan is the", "yen"),
        ("country_currency", "The currency of Germany is the", "euro"),
        ("country_language", "The main language spoken in Brazil is", "Portuguese"),
        ("country_continent", "Kenya is located on the continent of", "Africa"),
        ("element_symbol", "The chemical symbol for gold is", "Au"),
        ("symbol_element", "The chemical element with the symbol Au is", "gold"),
        ("element_symbol", "The chemical symbol for sodium is", "Na"),
        ("book_author", "The book Pride and Prejudice was written by", "Jane Austen"),
        ("play_author", "Hamlet is a play written by", "William Shakespeare"),
        ("painting_artist", "Mona Lisa was painted by", "Leonardo da Vinci"),
        ("invention_inventor", "Dynamite was invented by", "Alfred Nobel"),
        ("city_country", "Toronto is located in the country of", "Canada"),
        ("landmark_city", "The Eiffel Tower is located in the city of", "Paris"),
        ("animal_young", "A baby kangaroo is called a", "joey"),
        ("past_tense", "The past tense of go is", "went"),
        ("opposite", "The opposite of hot is", "cold"),
    ],
)
def test_spot_checks(recall, relation, prompt, answer):
    assert _lookup(recall, relation, prompt)["answer"] == answer


def test_spot_check_aliases(recall):
    assert "Brasilia" in _lookup(recall, "country_capital", "The capital of Brazil is")["aliases"]
    painter = _lookup(recall, "painting_artist", "Mona Lisa was painted by")["aliases"]
    assert {"da Vinci", "Leonardo"} <= set(painter)
    usa = _lookup(recall, "city_country", "Chicago is located in the country of")
    assert usa["answer"] == "the United States" and {"United States", "USA"} <= set(usa["aliases"])


def test_excluded_ambiguous_capitals(recall):
    prompts = {r["prompt"] for r in recall if r["relation"] == "country_capital"}
    for country in ("Switzerland", "Bolivia", "South Africa", "Israel", "Sri Lanka", "Tanzania", "Myanmar"):
        assert f"The capital of {country} is" not in prompts


# ---------------------------------------------------------------------------- true / false


def test_true_false_format_and_balance(true_false):
    assert 250 <= len(true_false) <= 350
    assert len({r["id"] for r in true_false}) == len(true_false)
    labels = Counter(r["label"] for r in true_false)
    assert labels[True] == labels[False]
    for relation, n in Counter(r["relation"] for r in true_false).items():
        rows = [r for r in true_false if r["relation"] == relation]
        assert sum(r["label"] for r in rows) * 2 == n
    for r in true_false:
        assert r["choices"] == ["true", "false"]
        assert r["answer"] == ("true" if r["label"] else "false")
        assert r["prompt"] == f"{r['statement']} True or false? Answer:"
        assert r["statement"].endswith(".") and not r["statement"].endswith("..")


def test_true_false_objects(true_false, gold):
    for r in true_false:
        forms = gold[(r["relation"], r["subject"])]
        if r["label"]:
            assert _norm(r["object"]) in forms, r
        else:
            assert _norm(r["object"]) not in forms, r
        assert r["object"] in r["statement"]


def test_shared_objects_never_make_false_statements(true_false):
    """A one-to-many object (the euro, the dollar, Arabic, ...) is never swapped onto a subject it fits."""
    by_relation_object: dict[tuple[str, str], set[str]] = {}
    for f in facts():
        for form in [f["answer"], *f["aliases"]]:
            by_relation_object.setdefault((f["relation"], _norm(form)), set()).add(f["subject"])
    for r in true_false:
        if not r["label"]:
            fits = by_relation_object.get((r["relation"], _norm(r["object"])), set())
            assert r["subject"] not in fits, r


def test_true_false_statements_use_recall_prompts(true_false, recall):
    prompts = {(r["relation"], r["prompt"]) for r in recall}
    for r in true_false:
        stem = r["statement"][: -len(r["object"]) - 2] if not r["object"].endswith(".") else None
        if stem is not None:
            assert (r["relation"], stem) in prompts, r


def test_true_false_seeded():
    assert true_false_rows(seed=0) == true_false_rows(seed=0)
    assert true_false_rows(seed=0) != true_false_rows(seed=1)
    with pytest.raises(LmscopeError):
        true_false_rows(per_relation=3)


# ---------------------------------------------------------------------------- files and loaders


def test_regenerated_files_are_byte_identical(tmp_path):
    write_bundled(tmp_path)
    for name in (FACTUAL_RECALL_FILE, TRUE_FALSE_FILE):
        assert (tmp_path / name).read_bytes() == (resources_dir() / name).read_bytes(), name


def test_bundled_files_small():
    total = sum((resources_dir() / name).stat().st_size for name in (FACTUAL_RECALL_FILE, TRUE_FALSE_FILE))
    assert total < 400_000


def test_loaders_match_generators():
    assert load_factual_recall() == factual_recall_rows()
    assert load_true_false() == true_false_rows()


def test_loaders_return_copies():
    rows = load_factual_recall()
    rows[0]["answer"] = "changed"
    rows[0]["aliases"].append("changed")
    fresh = load_factual_recall()
    assert fresh[0]["answer"] != "changed" and "changed" not in fresh[0]["aliases"]


def test_eval_sets_registry():
    assert set(EVAL_SETS) == {"factual_recall", "true_false"}
    for name in EVAL_SETS:
        assert load_eval_set(name)
    with pytest.raises(LmscopeError, match="unknown evaluation set"):
        load_eval_set("nope")
