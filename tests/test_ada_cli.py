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
