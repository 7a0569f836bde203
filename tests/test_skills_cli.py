"""`lmscope skills demos|segment|train|transfer` end to end on real BabyAI levels, and their bad inputs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from lmscope.cli import main

pytest.importorskip("minigrid")


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_error(capsys, *argv) -> str:
    rc, out, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1, (rc, out, err)
    assert lines[0].startswith("lmscope: error:")
    return lines[0]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Demos of two short levels, fixed segments, a short training run: built once through the CLI."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("skills")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["skills", "demos", "--level", "GoToLocal,PickupLoc", "--n", "6", "--seed", "1", "--jobs", "1",
                     "--out", str(root / "demos"), "--quiet"]) == 0
        assert main(["skills", "segment", str(root / "demos"), "--method", "fixed", "--out", str(root / "seg"),
                     "--quiet"]) == 0
        assert main(["skills", "train", str(root / "seg"), "--skills", "3", "--steps", "40", "--eval-every", "20",
                     "--out", str(root / "run"), "--quiet"]) == 0
    return root


def test_demos_json_is_the_only_stdout(capsys, tmp_path):
    rc, out, err = run_cli(capsys, "skills", "demos", "--level", "PutNextLocal", "--n", "3", "--seed", "4",
                           "--jobs", "1", "--out", tmp_path / "d", "--json")
    doc = json.loads(out)  # nothing but the JSON document on stdout (minigrid's prints are silenced)
    assert rc == 0 and doc["n"] == 3 and doc["level"] == "BabyAI-PutNextLocal-v0"
    assert doc["replayed"] == 3 and doc["steps"] >= 3 * 2
    assert (tmp_path / "d" / "manifest.json").is_file() and (tmp_path / "d" / "arrays.npz").is_file()


def test_pipeline_outputs(pipeline):
    q = json.loads((pipeline / "seg" / "quality.json").read_text())
    assert 0.0 <= q["f1"] <= 1.0 and q["by_source"] == {"fixed": 12}
    lib = json.loads((pipeline / "run" / "library.json").read_text())
    assert lib["skills"] and 0.0 <= lib["boundary_f1"]["f1"] <= 1.0
    covered = sum(g["end"] - g["start"] for s in lib["skills"] for g in s["segments"])
    manifest = json.loads((pipeline / "demos" / "manifest.json").read_text())
    assert covered == manifest["steps"]  # every step of every demo belongs to exactly one skill segment
    page = (pipeline / "run" / "index.html").read_text()
    assert "segmentation-0.png" in page and (pipeline / "run" / "segmentation-0.png").is_file()


def test_transfer_end_to_end(capsys, pipeline, tmp_path):
    rc, out, err = run_cli(capsys, "skills", "transfer", pipeline / "run", "--level", "GoToLocal", "--demos", "2,4",
                           "--episodes", "4", "--steps", "20", "--jobs", "1", "--compare", f"again={pipeline / 'run'}",
                           "--out", tmp_path / "t", "--json")
    doc = json.loads(out)
    assert rc == 0, err
    assert {(r["policy"], r["n_demos"]) for r in doc["rows"]} == {
        (p, n) for p in ("flat", "skills", "again") for n in (2, 4)}
    assert all(r["episodes"] == 4 and 0 <= r["success_rate"] <= 1 for r in doc["rows"])
    # the evaluation episodes are fresh: no demo seed is reused
    assert not set(doc["demo_seeds"]) & set(doc["episode_seeds"])
    for name in ("results.json", "curves.csv", "curves.png", "index.html"):
        assert (tmp_path / "t" / name).is_file()


def test_train_resumes_and_refuses_another_config(capsys, pipeline, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(pipeline / "run", run)
    before = (run / "metrics.jsonl").read_text()
    # the same command again: the finished run is found complete, nothing is retrained
    rc, _, err = run_cli(capsys, "skills", "train", pipeline / "seg", "--skills", "3", "--steps", "40",
                         "--eval-every", "20", "--out", run, "--quiet")
    assert rc == 0, err
    assert (run / "metrics.jsonl").read_text() == before
    # another configuration (the warm-up schedule depends on the step count, so more steps is one too)
    msg = one_error(capsys, "skills", "train", pipeline / "seg", "--skills", "5", "--steps", "40", "--out", run)
    assert "skills.skills" in msg
    msg = one_error(capsys, "skills", "train", pipeline / "seg", "--skills", "3", "--steps", "60", "--out", run)
    assert "skills.steps" in msg


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("argv,message", [
    (["demos", "--level", "GoToMars", "--n", "2", "--out", "{tmp}/x"], "GoToMars"),
    (["demos", "--level", "GoToLocal", "--n", "0", "--out", "{tmp}/x"], "--n"),
    (["segment", "{tmp}/missing", "--method", "fixed", "--out", "{tmp}/s"], "missing"),
    (["segment", "{demos}", "--method", "psychic", "--out", "{tmp}/s"], "psychic"),
    (["segment", "{demos}", "--method", "fixed", "--out", "{demos}"], "--out"),
    (["segment", "{demos}", "--method", "fixed", "--out", "{demos}/inside"], "--out"),
    (["train", "{seg}", "--skills", "0", "--out", "{tmp}/r"], "--skills"),
    (["train", "{demos}", "--out", "{tmp}/r"], "manifest.json"),
    (["train", "{seg}", "--out", "{seg}/r"], "--out"),
    (["transfer", "{tmp}/nothing", "--level", "GoToLocal", "--out", "{tmp}/t"], "nothing"),
    (["transfer", "{run}", "--level", "GoToLocal", "--demos", "0", "--out", "{tmp}/t"], "demonstrations"),
    (["transfer", "{run}", "--level", "GoToLocal", "--out", "{run}"], "--out"),
    (["transfer", "{run}", "--level", "GoToLocal", "--compare", "broken", "--out", "{tmp}/t"], "LABEL=RUN"),
])
def test_bad_input(capsys, pipeline, tmp_path, argv, message):
    argv = [a.format(tmp=tmp_path, demos=pipeline / "demos", seg=pipeline / "seg", run=pipeline / "run") for a in argv]
    msg = one_error(capsys, "skills", *argv)
    assert message in msg, msg
    assert not (tmp_path / "s").exists() and not (tmp_path / "t").exists() and not (tmp_path / "r").exists()


def test_lm_down_is_one_line_and_writes_nothing(capsys, pipeline, tmp_path):
    port = _closed_port()
    msg = one_error(capsys, "skills", "segment", pipeline / "demos", "--lm", f"http://127.0.0.1:{port}/v1#m",
                    "--lm-cache", tmp_path / "c.sqlite", "--out", tmp_path / "seg")
    assert str(port) in msg or "connect" in msg.lower()
    assert not (tmp_path / "seg").exists()


def test_corrupt_demo_folder_names_the_file(capsys, pipeline, tmp_path):
    import shutil

    bad = tmp_path / "demos"
    shutil.copytree(pipeline / "demos", bad)
    (bad / "arrays.npz").write_bytes(b"not a zip file")
    msg = one_error(capsys, "skills", "segment", bad, "--method", "fixed", "--out", tmp_path / "seg")
    assert "arrays.npz" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "manifest.json" in one_error(capsys, "skills", "segment", empty, "--method", "none",
                                        "--out", tmp_path / "seg")


def test_demos_refuses_a_foreign_folder(capsys, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    one_error(capsys, "skills", "demos", "--level", "GoToLocal", "--n", "2", "--out", foreign)
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1


def test_segment_survives_demos_moved(capsys, pipeline, tmp_path):
    """A segmentation whose demos folder is gone cannot be trained on: one line naming it."""
    import shutil

    demos, seg = tmp_path / "demos", tmp_path / "seg"
    shutil.copytree(pipeline / "demos", demos)
    assert main(["skills", "segment", str(demos), "--method", "none", "--out", str(seg), "--quiet"]) == 0
    capsys.readouterr()
    shutil.rmtree(demos)
    msg = one_error(capsys, "skills", "train", seg, "--out", tmp_path / "r")
    assert str(Path(demos).name) in msg
