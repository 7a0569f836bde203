"""`lmscope ada tasks|plan` end to end, and its bad inputs."""

from __future__ import annotations

import json

import pytest

from lmscope.cli import main
from lmscope.planning.planner import available_planners


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("domain,prefix", [("minecraft", "mc"), ("household", "hh")])
def test_ada_tasks(capsys, domain, prefix):
    rc, out, _ = run_cli(capsys, "ada", "tasks", "--domain", domain, "--n-train", 5, "--n-heldout", 3,
                         "--seed", 2)
    assert rc == 0
    rows = [line for line in out.splitlines() if line.startswith(prefix + "-")]
    assert len(rows) == 8 and sum(" heldout " in r for r in rows) == 3
    rc, out, _ = run_cli(capsys, "ada", "tasks", "--domain", domain, "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["world"] == domain and len(doc["tasks"]) == 60
    assert {t["split"] for t in doc["tasks"]} == {"train", "heldout"}
    assert all(t["instruction"] for t in doc["tasks"])


@pytest.mark.skipif(not available_planners(), reason="no planner installed")
@pytest.mark.parametrize("domain,task", [("minecraft", "mc-heldout-001"), ("household", "hh-train-002")])
def test_ada_plan(capsys, domain, task):
    rc, out, _ = run_cli(capsys, "ada", "plan", "--domain", domain, "--task", task, "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["success"] and doc["plan"]["status"] == "solved"
    assert doc["execution"]["steps"] == len(doc["plan"]["actions"]) > 0
    rc, out, err = run_cli(capsys, "ada", "plan", "--domain", domain, "--task", task, "--planner", "auto")
    assert rc == 0 and "execution: success" in out and f"{task} (" in out
    assert f"plan ({len(doc['plan']['actions'])} actions)" in out


@pytest.mark.parametrize("argv,message", [
    (["tasks", "--domain", "chess"], "unknown world 'chess'"),
    (["plan", "--domain", "chess", "--task", "mc-train-000"], "unknown world 'chess'"),
    (["plan", "--domain", "minecraft", "--task", "mc-train-999"], "unknown task 'mc-train-999'"),
    (["plan", "--domain", "household", "--task", "mc-train-000"], "unknown task 'mc-train-000'"),
    (["plan", "--domain", "minecraft", "--task", "mc-train-000", "--time-limit", "0"], "--time-limit"),
    (["plan", "--domain", "minecraft", "--task", "mc-train-000", "--time-limit", "-3"], "--time-limit"),
    (["plan", "--domain", "minecraft", "--task", "mc-train-000", "--planner", "lama"], "unknown planner 'lama'"),
    (["tasks", "--domain", "minecraft", "--n-train", "0"], "--n-train"),
])
def test_ada_bad_input(capsys, argv, message):
    rc, out, err = run_cli(capsys, "ada", *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1
    assert lines[0].startswith("lmscope: error:") and message in lines[0]


def test_ada_tasks_out(capsys, tmp_path):
    from lmscope.planning.pddl import parse_domain, parse_problem

    out = tmp_path / "tasks"
    rc, stdout, _ = run_cli(capsys, "ada", "tasks", "--domain", "household", "--n-train", 3, "--n-heldout", 2,
                            "--out", out)
    assert rc == 0 and "wrote tasks.jsonl" in stdout
    rows = [json.loads(line) for line in (out / "tasks.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"hh-train-00{i}" for i in range(3)] + ["hh-heldout-000", "hh-heldout-001"]
    dom = parse_domain((out / "domain.pddl").read_text())
    assert dom.name == "household"
    for r in rows:
        prob = parse_problem((out / "problems" / f"{r['id']}.pddl").read_text())
        assert len(prob.goal) == len(r["goal"])
    # the folder lmscope wrote is replaced by a rerun; a folder of the user's is refused without --force
    rc, _, _ = run_cli(capsys, "ada", "tasks", "--domain", "minecraft", "--n-train", 2, "--n-heldout", 1,
                       "--out", out)
    assert rc == 0 and len(list((out / "problems").iterdir())) == 3
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    rc, _, err = run_cli(capsys, "ada", "tasks", "--domain", "minecraft", "--out", mine)
    assert rc == 2 and err.startswith("lmscope: error:") and (mine / "notes.txt").read_text() == "keep"


# ------------------------------------------------------------------------------------------ ada run / baseline
@pytest.mark.skipif(not available_planners(), reason="no planner installed")
def test_ada_run_with_the_bundled_model_end_to_end_and_resume(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    argv = ["ada", "run", "--domain", "household", "--lm", "local:smollm2-135m", "--n-train", 2, "--n-heldout", 1,
            "--n-test", 1, "--iterations", 1, "--definition-samples", 1, "--out", out]
    rc, text, err = run_cli(capsys, *argv, "--json")
    assert rc == 0, err
    doc = json.loads(text)
    assert len(doc["history"]) == 1 and doc["history"][0]["train_tasks"] == 2
    assert doc["history"][0]["heldout_tasks"] == 1 and doc["history"][0]["test_tasks"] == 1
    assert doc["counters"]["lm_calls"] >= 2  # a goal per training task at least
    for f in ("index.html", "library.pddl", "log.jsonl", "state.json", "history.csv", "rejected.csv",
              "candidates.csv", "solved.png"):
        assert (out / f).is_file(), f
    events = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert {"lm", "goal", "task", "eval", "iteration"} <= {e["event"] for e in events}
    assert "(define (domain household)" in (out / "library.pddl").read_text()
    # the same command again: the finished run is read back, nothing is recomputed
    rc, text2, _ = run_cli(capsys, *argv, "--json")
    assert rc == 0 and json.loads(text2)["history"] == doc["history"]
    # another configuration in that folder is refused
    rc, o, e = run_cli(capsys, *argv[:-2], "--seed", 3, "--out", out)
    assert_clean(rc, o, e, "another configuration")


def assert_clean(rc, out, err, match):
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (rc, err)
    assert match in err, err


@pytest.mark.skipif(not available_planners(), reason="no planner installed")
def test_ada_run_with_a_server_that_is_down_keeps_the_run(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    argv = ["ada", "run", "--domain", "minecraft", "--lm", "http://127.0.0.1:9/v1#nothing", "--lm-timeout", 2,
            "--n-train", 2, "--n-heldout", 1, "--out", out]
    rc, o, e = run_cli(capsys, *argv)
    assert_clean(rc, o, e, "run the same command again to resume")
    assert (out / "state.json").is_file()
    rc, o, e = run_cli(capsys, *argv)  # still down: the same clear error, the folder is accepted as the run's
    assert_clean(rc, o, e, "run the same command again to resume")


@pytest.mark.parametrize("argv,message", [
    (["ada", "run", "--domain", "chess", "--out", "X"], "unknown world 'chess'"),
    (["ada", "run", "--domain", "minecraft", "--threshold", "1.5", "--out", "X"], "between 0 and 1"),
    (["ada", "run", "--domain", "minecraft", "--planner", "graphplan", "--out", "X"], "unknown planner"),
    (["ada", "run", "--domain", "minecraft", "--iterations", "0", "--out", "X"], "--iterations"),
    (["ada", "baseline", "voyager", "--domain", "minecraft"], "unknown baseline 'voyager'"),
    (["ada", "baseline", "no-learning", "--domain", "minecraft"], "give its run folder with --out"),
])
def test_ada_run_bad_input(capsys, tmp_path, argv, message):
    argv = [str(tmp_path / "X") if a == "X" else a for a in argv]
    rc, o, e = run_cli(capsys, *argv)
    assert_clean(rc, o, e, message)
    assert not (tmp_path / "X").exists()


def test_ada_run_refuses_a_folder_it_did_not_write(capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    rc, o, e = run_cli(capsys, "ada", "run", "--domain", "minecraft", "--out", mine)
    assert_clean(rc, o, e, "not written by lmscope")
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    target = tmp_path / "file.txt"
    target.write_text("x")
    rc, o, e = run_cli(capsys, "ada", "baseline", "oracle", "--domain", "household", "--out", target)
    assert rc == 2 and target.read_text() == "x"


@pytest.mark.skipif(not available_planners(), reason="no planner installed")
def test_ada_baseline_oracle_cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))
    rc, text, err = run_cli(capsys, "ada", "baseline", "oracle", "--domain", "household", "--n-train", 3,
                            "--n-heldout", 2, "--out", tmp_path / "b", "--json")
    assert rc == 0, err
    doc = json.loads(text)
    assert doc["by_split"] == {"heldout": {"solved": 2, "tasks": 2}, "train": {"solved": 3, "tasks": 3}}
    assert json.loads((tmp_path / "b" / "result.json").read_text())["by_split"] == doc["by_split"]
