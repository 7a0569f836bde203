"""`lmscope priors ...` end to end, with a tiny random Llama behind the local language-model backend."""

from __future__ import annotations

import json

import pytest
from _priors_lm import tiny_model_dir
from conftest import assert_clean_error

from lmscope.cli import main
from lmscope.priors import BENCHMARKS, METHODS, PriorTable


def run_cli(capsys, *argv):
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory):
    """``--lm`` of a tiny random Llama directory, opened by the real local backend."""
    return f"local:{tiny_model_dir(tmp_path_factory.mktemp('priors-cli-lm'))}"


def test_priors_list(capsys):
    rc, out, err = run_cli(capsys, "priors", "list", "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert [b["name"] for b in payload["benchmarks"]] == list(BENCHMARKS)
    assert payload["methods"] == list(METHODS)
    rc, out, _ = run_cli(capsys, "priors", "list")
    assert rc == 0 and "labels" in out and "model chaining" in out


def test_priors_run_end_to_end(capsys, tmp_path, tiny_spec):
    out_dir = tmp_path / "report"
    cache = ["--lm-cache", str(tmp_path / "lm.sqlite")]
    rc, out, err = run_cli(capsys, "priors", "run", "labels", "--lm", tiny_spec, *cache, "--size", "small",
                           "--seed", "1", "--out", str(out_dir), "--json", "--quiet")
    assert rc == 0, err
    payload = json.loads(out)
    assert payload["benchmark"] == "labels" and payload["seed"] == 1 and payload["size"] == "small"
    assert payload["lm"]["backend"] == "local" and payload["info"]["lm_requests"] > 0
    methods = {r["method"] for r in payload["rows"]}
    assert methods == set(METHODS) | {"LM prior (T from validation)", "true prior (T from validation)"}
    assert payload["info"]["config"]["query"] == "reference" and payload["info"]["temperatures"]["LM prior"] == 9.0
    for r in payload["rows"]:
        assert r["value"] is None or 0.0 <= r["value"] <= 1.0
    assert set(payload["tables"]) == {"cooccurrence", "similarity", "chaining-room"}
    for name in ("index.html", "priors_labels.csv", "priors_labels_wide.csv", "priors_labels.json",
                 "priors_labels_accuracy.png", "priors_labels_table_cooccurrence.json",
                 "priors_labels_table_cooccurrence.csv", "priors_labels_table_cooccurrence.png"):
        assert (out_dir / name).is_file(), name
    table = PriorTable.load(out_dir / "priors_labels_table_cooccurrence.csv")
    # binary questions: one p(plausible) per (room, object), not a distribution over objects
    assert table.axes == ("room", "object") and table.values.shape == (6, 19)
    assert ((table.values > 0) & (table.values < 1)).all()
    # the same seed gives the same numbers, now from the LM cache alone; the printed table names every method
    rc, out2, err = run_cli(capsys, "priors", "run", "labels", "--lm", tiny_spec, *cache, "--offline", "--size",
                            "small", "--seed", "1", "--json")
    assert rc == 0, err
    assert json.loads(out2)["rows"] == payload["rows"]
    rc, out3, err = run_cli(capsys, "priors", "run", "labels", "--lm", tiny_spec, *cache, "--size", "small",
                            "--seed", "1", "--json", "--query", "next-token", "--temperature", "2")
    assert rc == 0, err
    older = json.loads(out3)
    assert older["info"]["config"]["query"] == "next-token" and older["info"]["temperatures"]["LM prior"] == 2.0
    assert older["tables"]["cooccurrence"]["values"] != payload["tables"]["cooccurrence"]["values"]
    rc, text, err = run_cli(capsys, "priors", "run", "actions", "--lm", tiny_spec, "--no-cache", "--size", "small")
    assert rc == 0, err
    for m in METHODS:
        assert m in text
    assert "frame_accuracy [ood]" in text and "held out of training" in text


def test_priors_run_all_without_a_model(capsys):
    rc, out, err = run_cli(capsys, "priors", "run", "all", "--no-lm", "--size", "small", "--json")
    assert rc == 0, err
    results = json.loads(out)["results"]
    assert [r["benchmark"] for r in results] == list(BENCHMARKS)
    assert all(r["lm"] is None for r in results)


def test_priors_query_config(capsys, tmp_path, tiny_spec):
    cfg = tmp_path / "q.json"
    cfg.write_text(json.dumps({"name": "room", "template": "The {object} is in the", "inputs":
                               {"object": ["stove", "car"]}, "classes": ["kitchen", "garage"]}))
    rc, out, err = run_cli(capsys, "priors", "query", str(cfg), "--lm", tiny_spec, "--no-cache", "--out",
                           str(tmp_path / "o"))
    assert rc == 0, err
    assert "room (object x class)" in out and "kitchen" in out
    t = PriorTable.load(tmp_path / "o" / "room.json")
    assert t.values.shape == (2, 2) and t.values.sum(axis=1) == pytest.approx(1.0)
    assert (tmp_path / "o" / "index.html").is_file()


def test_priors_bad_input(capsys, tmp_path, tiny_spec):
    rc, out, err = run_cli(capsys, "priors", "run", "cooking", "--no-lm")
    assert_clean_error(rc, out, err, "unknown benchmark 'cooking'")
    rc, out, err = run_cli(capsys, "priors", "run", "labels", "--no-lm", "--temperature", "0")
    assert_clean_error(rc, out, err, "--temperature")
    rc, out, err = run_cli(capsys, "priors", "run", "search", "--no-lm", "--seed", "100")
    assert_clean_error(rc, out, err, "seed 100 is a validation seed")
    rc, out, err = run_cli(capsys, "priors", "run", "labels", "--lm", "nowhere:model")
    assert_clean_error(rc, out, err, "unknown LM spec 'nowhere:model'")
    rc, out, err = run_cli(capsys, "priors", "run", "labels", "--lm", tiny_spec, "--no-cache", "--offline")
    assert_clean_error(rc, out, err, "--offline")
    cfg = tmp_path / "q.json"
    cfg.write_text(json.dumps({"name": "q", "template": "The {object} is in the {place}", "inputs":
                               {"object": ["stove"]}, "classes": ["kitchen"]}))
    rc, out, err = run_cli(capsys, "priors", "query", str(cfg), "--lm", tiny_spec, "--no-cache")
    assert_clean_error(rc, out, err, "{place} have no input values")
    cfg.write_text(json.dumps({"name": "q", "template": "The {object} is in the", "inputs": {"object": ["stove"]},
                               "classes": []}))
    rc, out, err = run_cli(capsys, "priors", "query", str(cfg), "--lm", tiny_spec, "--no-cache")
    assert_clean_error(rc, out, err, "class list is empty")
    rc, out, err = run_cli(capsys, "priors", "query", str(tmp_path / "missing.json"), "--lm", tiny_spec)
    assert_clean_error(rc, out, err, "no such file")

