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
