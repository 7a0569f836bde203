"""`lmscope priors ...` end to end, with a tiny random Llama standing in as the language model backend."""

from __future__ import annotations

import json

import pytest
from _priors_lm import tiny_lm

from lmscope.cli import main
from lmscope.priors import BENCHMARKS, METHODS, PriorTable


def run_cli(capsys, *argv):
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_clean_error(rc, out, err, match):
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmscope: error:"), err
    assert match in lines[0], lines[0]
    assert "Traceback" not in out + err


@pytest.fixture
def tiny_backend(monkeypatch):
    """``--lm test:tiny`` opens the tiny model (other specs are an error, as an unknown backend would be)."""
    import lmscope.lm
    from lmscope.errors import LmscopeError

    lm = tiny_lm()

    def open_lm(spec=None, **options):
        if spec != "test:tiny":
            raise LmscopeError(f"unknown language model {spec!r}")
        return lm

    monkeypatch.setattr(lmscope.lm, "open_lm", open_lm, raising=False)
    return lm


def test_priors_list(capsys):
    rc, out, err = run_cli(capsys, "priors", "list", "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert [b["name"] for b in payload["benchmarks"]] == list(BENCHMARKS)
    assert payload["methods"] == list(METHODS)
    rc, out, _ = run_cli(capsys, "priors", "list")
    assert rc == 0 and "labels" in out and "model chaining" in out


def test_priors_run_end_to_end(capsys, tmp_path, tiny_backend):
    out_dir = tmp_path / "report"
    calls = tiny_backend.calls
    rc, out, err = run_cli(capsys, "priors", "run", "labels", "--lm", "test:tiny", "--size", "small", "--seed", "1",
                           "--out", str(out_dir), "--json", "--quiet")
    assert rc == 0, err
    assert tiny_backend.calls == calls + 1  # the whole benchmark asks the model once
    payload = json.loads(out)
    assert payload["benchmark"] == "labels" and payload["seed"] == 1 and payload["size"] == "small"
    assert payload["lm"]["spec"] == "test:tiny-llama"
    methods = {r["method"] for r in payload["rows"]}
    assert methods == set(METHODS)
    for r in payload["rows"]:
        assert r["value"] is None or 0.0 <= r["value"] <= 1.0
    assert set(payload["tables"]) == {"cooccurrence", "similarity", "chaining-room"}
    for name in ("index.html", "priors_labels.csv", "priors_labels_wide.csv", "priors_labels.json",
                 "priors_labels_accuracy.png", "priors_labels_table_cooccurrence.json",
                 "priors_labels_table_cooccurrence.csv", "priors_labels_table_cooccurrence.png"):
        assert (out_dir / name).is_file(), name
    table = PriorTable.load(out_dir / "priors_labels_table_cooccurrence.csv")
    assert table.axes == ("room", "object") and table.values.sum(axis=1) == pytest.approx(1.0)
    # the same seed gives the same numbers; the printed table names every method
    rc, out2, err = run_cli(capsys, "priors", "run", "labels", "--lm", "test:tiny", "--size", "small", "--seed", "1",
                            "--json")
    assert rc == 0 and json.loads(out2)["rows"] == payload["rows"]
    rc, text, err = run_cli(capsys, "priors", "run", "actions", "--lm", "test:tiny", "--size", "small")
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


def test_priors_query_config(capsys, tmp_path, tiny_backend):
    cfg = tmp_path / "q.json"
    cfg.write_text(json.dumps({"name": "room", "template": "The {object} is in the", "inputs":
                               {"object": ["stove", "car"]}, "classes": ["kitchen", "garage"]}))
    rc, out, err = run_cli(capsys, "priors", "query", str(cfg), "--lm", "test:tiny", "--out", str(tmp_path / "o"))
    assert rc == 0, err
    assert "room (object x class)" in out and "kitchen" in out
    t = PriorTable.load(tmp_path / "o" / "room.json")
    assert t.values.shape == (2, 2) and t.values.sum(axis=1) == pytest.approx(1.0)
    assert (tmp_path / "o" / "index.html").is_file()


def test_priors_bad_input(capsys, tmp_path, tiny_backend):
    rc, out, err = run_cli(capsys, "priors", "run", "cooking", "--no-lm")
    assert_clean_error(rc, out, err, "unknown benchmark 'cooking'")
    rc, out, err = run_cli(capsys, "priors", "run", "labels", "--lm", "nowhere:model")
    assert_clean_error(rc, out, err, "unknown language model")
    cfg = tmp_path / "q.json"
    cfg.write_text(json.dumps({"name": "q", "template": "The {object} is in the {place}", "inputs":
                               {"object": ["stove"]}, "classes": ["kitchen"]}))
    rc, out, err = run_cli(capsys, "priors", "query", str(cfg), "--lm", "test:tiny")
    assert_clean_error(rc, out, err, "{place} have no input values")
    cfg.write_text(json.dumps({"name": "q", "template": "The {object} is in the", "inputs": {"object": ["stove"]},
                               "classes": []}))
    rc, out, err = run_cli(capsys, "priors", "query", str(cfg), "--lm", "test:tiny")
    assert_clean_error(rc, out, err, "class list is empty")
    rc, out, err = run_cli(capsys, "priors", "query", str(tmp_path / "missing.json"), "--lm", "test:tiny")
    assert_clean_error(rc, out, err, "no such file")


def test_missing_backend_is_a_clean_error(capsys, monkeypatch):
    import lmscope.lm

    monkeypatch.delattr(lmscope.lm, "open_lm", raising=False)
    if hasattr(lmscope.lm, "open_lm"):
        pytest.skip("open_lm cannot be removed")
    rc, out, err = run_cli(capsys, "priors", "run", "labels", "--size", "small")
    assert_clean_error(rc, out, err, "no language-model backends")
