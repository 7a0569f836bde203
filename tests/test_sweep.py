"""Sweeps of grokking runs: local processes and a local Ray instance run the same command lines
into the same run folders, failures are isolated, finished runs are not retrained, bad input."""

from __future__ import annotations

import json

import pytest

from lmscope.cli import main
from lmscope.errors import LmscopeError
from lmscope.grokking import grok_sweep_jobs, grok_train
from lmscope.train.loop import read_metrics
from lmscope.train.sweep import SWEEP_FILE, run_sweep

TINY = {"d_model": 16, "heads": 2, "d_ff": 32, "eval_every": 5, "ckpt_every": 5, "n_train": 60, "n_val": 20,
        "n_gen": 20, "sample_size": 10, "tree_sample": 4}
TINY_ARGS = ["--d-model", "16", "--heads", "2", "--d-ff", "32", "--eval-every", "5", "--ckpt-every", "5",
             "--n-train", "60", "--n-val", "20", "--n-gen", "20", "--sample-size", "10", "--tree-sample", "4"]


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 1-layer, seed-0 run trained in this process, uninterrupted."""
    d = tmp_path_factory.mktemp("ref") / "run"
    grok_train("question-formation", d, layers=1, steps=10, seed=0, quiet=True, **TINY)
    return _strip(read_metrics(d))


def test_jobs_names_and_command_lines(tmp_path):
    jobs = grok_sweep_jobs("question-formation", tmp_path, [2, 4], [0, 1], 100, lr=3e-4)
    assert [j.name for j in jobs] == ["qf-l2-s0", "qf-l2-s1", "qf-l4-s0", "qf-l4-s1"]
    argv = jobs[3].argv
    assert argv[:2] == ["grok", "train"] and argv[-2:] == ["--out", str(tmp_path / "qf-l4-s1")]
    assert argv[argv.index("--layers") + 1] == "4" and argv[argv.index("--seed") + 1] == "1"
    assert argv[argv.index("--lr") + 1] == "0.0003" and all(j.status == "pending" for j in jobs)
    assert grok_sweep_jobs("dyck", tmp_path, [2], [0], 10)[0].name == "dyck-l2-s0"


def test_local_sweep_cli_matches_direct_runs_and_isolates_failures(tmp_path, capsys, reference):
    root = tmp_path / "sweep"
    bad = root / "qf-l2-s0"  # not a run folder: this run must fail, the other must finish
    bad.mkdir(parents=True)
    (bad / "junk.txt").write_text("x")
    rc = main(["grok", "sweep", "--task", "question-formation", "--layers", "1,2", "--n-seeds", "1",
               "--steps", "10", *TINY_ARGS, "--out", str(root), "--jobs", "2", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert err.strip().count("\n") == 0 and "1 run(s) failed: qf-l2-s0" in err
    assert "qf-l1-s0: step 10" in out and "[done]" in out and "not empty" in out
    assert _strip(read_metrics(root / "qf-l1-s0")) == reference  # same run as in-process, same numbers
    info = json.loads((root / SWEEP_FILE).read_text())
    status = {j["name"]: j for j in info["jobs"]}
    assert status["qf-l1-s0"]["status"] == "done" and status["qf-l2-s0"]["status"] == "failed"
    assert "not empty" in status["qf-l2-s0"]["error"]
    assert "lmscope grok train" in (root / "qf-l1-s0.log").read_text()
    assert (root / "plots" / "index.html").is_file()

    # started again: the finished run resumes at its end (same metrics), a longer run is not shortened
    rc = main(["grok", "sweep", "--task", "question-formation", "--layers", "1", "--seeds", "0-0",
               "--steps", "10", *TINY_ARGS, "--out", str(root), "--quiet", "--no-plot"])
    assert rc == 0 and _strip(read_metrics(root / "qf-l1-s0")) == reference
    jobs = grok_sweep_jobs("question-formation", root, [1], [0], 5, **TINY)
    assert jobs[0].status == "skipped" and "--steps 10" in jobs[0].error
    res = run_sweep(jobs, root, quiet=True)
    assert res["jobs"][0]["status"] == "skipped" and not res["failed"]


def test_ray_local_instance_same_folders_and_resume(tmp_path, reference):
    pytest.importorskip("ray", reason="ray is part of the dev extra")
    root = tmp_path / "ray"
    # a run killed half-way (no final checkpoint), to be finished by a Ray task
    grok_train("question-formation", root / "qf-l1-s0", layers=1, steps=10, seed=0, quiet=True, stop_after=7,
               **TINY)
    assert len(read_metrics(root / "qf-l1-s0")) == 1
    jobs = grok_sweep_jobs("question-formation", root, [1], [0], 10, **TINY)
    res = run_sweep(jobs, root, ray="local", workers=1, quiet=True)
    assert res["backend"] == "ray:local" and res["jobs"][0]["status"] == "done", res
    assert _strip(read_metrics(root / "qf-l1-s0")) == reference
    assert "resuming" in (root / "qf-l1-s0.log").read_text() or "trained" in (root / "qf-l1-s0.log").read_text()


def test_sweep_refuses_to_resume_into_other_configuration(tmp_path, capsys):
    root = tmp_path / "s"
    grok_train("question-formation", root / "qf-l1-s0", layers=1, steps=5, seed=0, quiet=True, **TINY)
    other = [a if a != "16" else "32" for a in TINY_ARGS]  # another width
    rc = main(["grok", "sweep", "--task", "question-formation", "--layers", "1", "--steps", "5", *other,
               "--out", str(root), "--quiet", "--no-plot"])
    out, err = capsys.readouterr()
    assert rc == 2 and "different configuration: model.d_model" in out


@pytest.mark.parametrize("argv, msg", [
    (["--task", "nope", "--layers", "2"], "unknown task"),
    (["--task", "question-formation", "--layers", "0"], "layers must be an integer >= 1"),
    (["--task", "question-formation", "--layers", "2,x"], "--layers must be integers"),
    (["--task", "question-formation", "--layers", "2", "--seeds", "3"], "--seeds takes a list of seeds such as 0,1,2"),
    (["--task", "question-formation", "--layers", "2", "--seeds", "0"], "use --n-seeds N; got --seeds 0"),
    (["--task", "question-formation", "--layers", "2", "--seeds", "0,1", "--n-seeds", "2"], "not both"),
    (["--task", "question-formation", "--layers", "2", "--n-seeds", "0"], "--n-seeds must be an integer from 1"),
    (["--task", "question-formation", "--layers", "2", "--n-seeds", "2.5"], "--n-seeds must be an integer"),
    (["--task", "question-formation", "--layers", "2", "--seeds", "2-1"], "the range 2-1 is empty"),
    (["--task", "question-formation", "--layers", "2", "--steps", "-5"], "argument --steps: must be an integer >= 1"),
    (["--task", "question-formation", "--layers", "2", "--jobs", "0"], "argument --jobs: must be an integer >= 1"),
])
def test_sweep_bad_input_one_line(tmp_path, capsys, argv, msg):
    rc = main(["grok", "sweep", *argv, "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and err.count("\n") == 1


@pytest.mark.parametrize("seeds, n_seeds, expect", [
    (None, None, [0]), ("0,1,2", None, [0, 1, 2]), ("0-2", None, [0, 1, 2]), ("3-3", None, [3]),
    ("5,7", None, [5, 7]), ("1-2,9", None, [1, 2, 9]), (None, "3", [0, 1, 2]), (None, "1", [0]),
])
def test_sweep_seeds_list_or_count(seeds, n_seeds, expect):
    from lmscope.cli.grok import sweep_seeds

    assert sweep_seeds(seeds, n_seeds) == expect


def test_sweep_seeds_name_the_runs(tmp_path, capsys):
    """--seeds 2,5 trains seeds 2 and 5 (not 0..4 nor 0..1); --n-seeds 2 trains seeds 0 and 1."""
    from lmscope.cli import build_parser
    from lmscope.cli.grok import sweep_seeds

    for argv, names in ((["--seeds", "2,5"], ["qf-l1-s2", "qf-l1-s5"]), (["--n-seeds", "2"], ["qf-l1-s0", "qf-l1-s1"])):
        args = build_parser().parse_args(["grok", "sweep", "--task", "question-formation", "--layers", "1",
                                          *argv, "--out", str(tmp_path)])
        jobs = grok_sweep_jobs(args.task, args.out, [1], sweep_seeds(args.seeds, args.n_seeds), 5)
        assert [j.name for j in jobs] == names


def test_run_sweep_bad_jobs(tmp_path):
    with pytest.raises(LmscopeError, match="no runs"):
        run_sweep([], tmp_path)
    jobs = grok_sweep_jobs("question-formation", tmp_path, [1], [0], 5)
    with pytest.raises(LmscopeError, match="same name"):
        run_sweep(jobs + jobs, tmp_path)
    with pytest.raises(LmscopeError, match="unknown grok_train option"):
        grok_sweep_jobs("question-formation", tmp_path, [1], [0], 5, width=3)


@pytest.mark.slow
def test_ray_cluster_auto_address(tmp_path, reference):
    """`--ray auto` joins a cluster started with `ray start --head` (here: on this machine)."""
    import os
    import shutil
    import subprocess

    pytest.importorskip("ray")
    ray_bin = shutil.which("ray") or os.path.join(os.path.dirname(os.sys.executable), "ray")
    import tempfile

    short = tempfile.mkdtemp(prefix="ray")  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_TMPDIR": short}
    subprocess.run([ray_bin, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false",
                    "--disable-usage-stats"], check=True, env=env, capture_output=True)
    try:
        root = tmp_path / "cluster"
        rc = main(["grok", "sweep", "--task", "question-formation", "--layers", "1", "--n-seeds", "1",
                   "--steps", "10", *TINY_ARGS, "--out", str(root), "--ray", "auto", "--quiet", "--no-plot"])
        assert rc == 0
        assert _strip(read_metrics(root / "qf-l1-s0")) == reference
        assert json.loads((root / SWEEP_FILE).read_text())["backend"] == "ray:auto"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(short, ignore_errors=True)


def _sweep_stopped_by_sigterm(root, sweep_args: str, start_s: float, stop_s: float, settle_s: float):
    """Start a one-run sweep in a separate process, send it SIGTERM once its run has logged metrics,
    and check it ends as interrupted with its training process gone; returns the run folder."""
    import signal
    import subprocess
    import sys
    import time

    from lmscope.train.sweep import run_step

    code = ("import sys; from lmscope.grokking import grok_sweep_jobs; from lmscope.train.sweep import run_sweep; "
            f"jobs = grok_sweep_jobs('question-formation', {str(root)!r}, [1], [0], 100000, **{TINY!r}); "
            f"run_sweep(jobs, jobs[0].run_dir.parent, {sweep_args}quiet=True, poll=0.2)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    run = root / "qf-l1-s0"
    deadline = time.time() + start_s
    while run_step(run) < 10 and time.time() < deadline:
        time.sleep(0.5)
    assert run_step(run) >= 10, "the run never logged metrics"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=stop_s) != 0
    assert json.loads((root / SWEEP_FILE).read_text())["jobs"][0]["status"] == "interrupted"
    time.sleep(settle_s)
    stopped = run_step(run)
    time.sleep(settle_s)
    assert run_step(run) == stopped  # the training process is gone too
    return run


def test_sigterm_stops_the_sweep_and_its_runs_which_resume_later(tmp_path):
    """A sweep stopped with SIGTERM (kill, a batch scheduler) stops its runs and records them as
    interrupted; started again, the run resumes from its checkpoint."""
    run = _sweep_stopped_by_sigterm(tmp_path / "term", "", start_s=120, stop_s=60, settle_s=1)
    assert any((run / "checkpoints").iterdir())


# ------------------------------------------------------------------------------ one config definition
def test_grok_config_is_the_one_definition_of_the_command_line_options():
    """Every option field is an option of grok train (and, except layers and seed, of grok sweep) with
    the field's default; a configuration survives to_argv -> the parser -> from_args unchanged."""
    from lmscope.cli import build_parser
    from lmscope.grokking import GrokConfig
    from lmscope.grokking.run import SWEEP_OPTIONS

    parser = build_parser()
    defaults = parser.parse_args(["grok", "train", "--task", "dyck", "--out", "r"])
    assert GrokConfig.from_args(defaults) == GrokConfig()
    names = [f.name for f in GrokConfig.options()]
    assert names[:3] == ["layers", "steps", "seed"] and "max_len" not in names
    assert set(SWEEP_OPTIONS) == set(names) - {"layers", "steps", "seed"}
    sweep = parser.parse_args(["grok", "sweep", "--task", "dyck", "--layers", "2", "--out", "s"])
    assert {k: getattr(sweep, k) for k in SWEEP_OPTIONS} == {k: getattr(GrokConfig(), k) for k in SWEEP_OPTIONS}

    planted = GrokConfig(layers=3, steps=77, seed=5, d_model=24, heads=3, d_ff=40, batch_size=5, lr=3.5e-4,
                         eval_every=7, ckpt_every=0, n_train=33, n_val=11, n_gen=12, sample_size=9, tree_sample=0,
                         n_test=4, warmup=3, dropout=0.1, weight_decay=0.01, keep_checkpoints=0)
    argv = planted.to_argv()
    assert argv[argv.index("--lr") + 1] == "0.00035" and argv[argv.index("--d-model") + 1] == "24"
    assert len(argv) == 2 * len(names)
    # a None default (warmup: the loop's own) is left to the command line's default
    assert "--warmup" not in GrokConfig().to_argv()
    parsed = parser.parse_args(["grok", "train", "--task", "dyck", "--out", "r", *argv])
    assert GrokConfig.from_args(parsed) == planted


def test_grok_config_validation_and_settings_outside_the_command_line():
    from lmscope.grokking import GrokConfig

    for bad, msg in [({"layers": 0}, "layers must be an integer >= 1"), ({"seed": -1}, "seed must be"),
                     ({"d_model": 10, "heads": 4}, "not divisible"), ({"steps": 2.5}, "steps must be"),
                     ({"n_val": True}, "n_val must be"), ({"width": 3}, "unknown grok_train option 'width'")]:
        with pytest.raises(LmscopeError, match=msg):
            GrokConfig.make(**bad)
    with pytest.raises(LmscopeError, match="max_len is not a command-line option"):
        GrokConfig(max_len=128).to_argv()
    for bad, msg in [({"dropout": 1.0}, "dropout"), ({"weight_decay": -0.1}, "weight_decay"),
                     ({"warmup": -1}, "warmup must be")]:
        with pytest.raises(LmscopeError, match=msg):
            GrokConfig.make(**bad)
    with pytest.raises(LmscopeError, match="sample_size=None"):
        GrokConfig(sample_size=None).to_argv()
    with pytest.raises(LmscopeError, match="unknown grok_train option 'width'"):
        grok_train("dyck", "unused", width=3)
    assert GrokConfig.make(GrokConfig(layers=4), seed=2) == GrokConfig(layers=4, seed=2)


def test_grok_train_with_a_config_writes_the_run_settings_of_before(tmp_path):
    """run.json records the model, training and evaluation settings (no weight decay, as in the
    reference code; tree projections of training sentences; held-out rows); keywords and a config give
    the same run, and the held-out rows are scored once, at the final step."""
    from lmscope.grokking import GrokConfig

    config = GrokConfig(layers=1, steps=10, seed=3, lr=3e-4, **TINY)
    grok_train("question-formation", tmp_path / "a", config, quiet=True)
    grok_train("question-formation", tmp_path / "b", layers=1, steps=10, seed=3, lr=3e-4, quiet=True, stop_after=5,
               **TINY)
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert info == json.loads((tmp_path / "b" / "run.json").read_text())
    model = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "max_len": 256, "causal": True, "norm": "post",
             "positions": "sinusoidal", "dropout": 0.0}
    train = {"steps": 10, "batch_size": 8, "lr": 0.0003, "warmup": None, "eval_every": 5, "ckpt_every": 5, "seed": 3,
             "weight_decay": 0.0}
    assert {k: info["model"][k] for k in model} == model and {k: info["train"][k] for k in train} == train
    assert info["meta"] == {"task": "question-formation",
                            "eval": {"n_val": 20, "n_gen": 20, "sample_size": 10, "tree_sample": 4,
                                     "tree_split": "train", "n_test": 1000}}
    rows = read_metrics(tmp_path / "a")
    assert [r["step"] for r in rows] == [5, 10]
    assert "test_gen_acc" not in rows[0]
    assert rows[1]["test_gen_n"] == 1000 and rows[1]["test_gen_linear"] == 0.0
    assert 0.0 <= rows[1]["test_gen_first_aux"] <= 1.0 and rows[1]["gen_linear"] == 0.0
    assert json.loads((tmp_path / "a" / "grok.json").read_text()) == {
        "task": "question-formation", "layers": 1, "d_model": 16, "heads": 2, "d_ff": 32, "seed": 3, "gen_split": "gen"}
    # the run interrupted under keywords resumes under the config and ends where the uninterrupted one did
    again = grok_train("question-formation", tmp_path / "b", config, quiet=True)
    assert again["resumed_from"] is not None and again["step"] == 10
    assert _strip(read_metrics(tmp_path / "b")) == _strip(read_metrics(tmp_path / "a"))


def test_train_imports_nothing_above_it():
    """Sweeps (local and Ray) start `python -m lmscope` subprocesses: nothing in lmscope.train imports
    the command line or a method package."""
    import ast
    from pathlib import Path

    import lmscope.train

    above = ("lmscope.cli", "lmscope.grokking", "lmscope.report", "lmscope.trees", "lmscope.evaluation")
    found = []
    for path in sorted(Path(lmscope.train.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n.startswith(above)]
    assert found == []


def test_sigterm_stops_a_ray_sweep_and_the_runs_its_workers_started(tmp_path):
    """On Ray each run is a subprocess of a worker: stopping the sweep stops the training process too."""
    pytest.importorskip("ray", reason="ray is part of the dev extra")
    root = tmp_path / "rayterm"
    _sweep_stopped_by_sigterm(root, "ray='local', workers=1, ", start_s=180, stop_s=120, settle_s=3)
    assert (root / "qf-l1-s0.log").read_text().startswith("$ lmscope grok train --task question-formation")


def test_ray_failed_run_is_recorded_with_its_log_line(tmp_path):
    """A Ray task's run that fails ends like a local one: exit status 2, the error line of its log."""
    pytest.importorskip("ray", reason="ray is part of the dev extra")
    root = tmp_path / "rayfail"
    bad = root / "qf-l1-s0"
    bad.mkdir(parents=True)
    (bad / "junk.txt").write_text("x")
    res = run_sweep(grok_sweep_jobs("question-formation", root, [1], [0], 5, **TINY), root, ray="local",
                    workers=1, quiet=True)
    job = res["jobs"][0]
    assert res["failed"] == ["qf-l1-s0"] and job["status"] == "failed" and job["returncode"] == 2
    assert job["error"].startswith("lmscope: error:") and "not empty" in job["error"]
