"""The output policy as a user meets it: every command with --out refuses an output that is, holds or is
inside one of its inputs (or lmscope's cache), a fifo or device node, a path under a file, an unwritable
folder and a non-empty folder lmscope did not write (unless --force) -- with one error line, exit status 2,
its inputs byte-identical and nothing new written; one-shot outputs appear complete or not at all."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import assert_clean_error, edit_copy

from lmscope.cli import main
from lmscope.errors import LmscopeError
from lmscope.outputs import MARKER, output_dir, read_marker

ROOT = os.geteuid() == 0


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(autouse=True)
def _lmscope_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path_factory.mktemp("policy-cache")))


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with the hash of its content (folders and special files by kind)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                found[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                found[str(p.relative_to(root))] = f"mode {stat.S_IFMT(st.st_mode):o}"
    return found


@pytest.fixture
def work(tmp_path, tiny_model_dir):
    """A folder with everything the commands read: two models (base and an edited copy), a JSONL
    fine-tuning file, an evaluation task, sentences and a priors config, each in its own subfolder."""
    import torch

    w = tmp_path / "work"
    w.mkdir()
    shutil.copytree(tiny_model_dir("llama"), w / "model")
    name = "model.layers.0.self_attn.q_proj.weight"
    from safetensors.torch import load_file

    q = load_file(str(w / "model" / "model.safetensors"))[name]
    g = torch.Generator().manual_seed(1)
    edit_copy(w / "model", w / "tuned", {name: q + 0.5 * torch.randn(q.shape, generator=g)})
    (w / "data").mkdir()
    (w / "data" / "train.jsonl").write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(8)))
    (w / "task").mkdir()
    (w / "task" / "t.jsonl").write_text("".join(json.dumps({"prompt": f"{i} plus one is", "answer": f" {i + 1}"})
                                                + "\n" for i in range(4)))
    (w / "sents").mkdir()
    (w / "sents" / "s.txt").write_text("the cat sat\nthe dog ran far\n")
    (w / "cfg").mkdir()
    (w / "cfg" / "q.json").write_text(json.dumps({"name": "room", "template": "The {object} is in the",
                                                  "inputs": {"object": ["stove"]}, "classes": ["kitchen"]}))
    return w


# command -> (argv with {M} base model, {M2} tuned model, {OUT}; the folder of its data/config input or None)
COMMANDS = {
    "spectrum": (["spectrum", "{M}", "--out", "{OUT}"], None),
    "intruders": (["intruders", "{M}", "{M2}", "--out", "{OUT}"], None),
    "intruders-scale": (["intruders", "{M}", "{M2}", "--scale", "0.5", "--out", "{OUT}"], None),
    "laser-apply": (["laser", "apply", "{M}", "--layer", "0", "--role", "q", "--keep", "0.5", "--out", "{OUT}"], None),
    "laser-search": (["laser", "search", "{M}", "--task", "{W}/task/t.jsonl", "--out", "{OUT}"], "task"),
    "laser-study": (["laser", "study", "{M}", "--task", "{W}/task/t.jsonl", "--out", "{OUT}"], "task"),
    "finetune": (["finetune", "{M}", "--data", "{W}/data/train.jsonl", "--max-steps", "1", "--out", "{OUT}"], "data"),
    "eval": (["eval", "{M}", "--task", "{W}/task/t.jsonl", "--out", "{OUT}"], "task"),
    "priors-query": (["priors", "query", "{W}/cfg/q.json", "--lm", "local:{M}", "--no-cache", "--out", "{OUT}"],
                     "cfg"),
    "checkup": (["checkup", "{M}", "--no-finetune", "--no-laser", "--no-trees", "--out", "{OUT}"], None),
    "trees": (["trees", "{M}", "--data", "{W}/sents/s.txt", "--out", "{OUT}"], "sents"),
}


def argv_for(cmd: str, w: Path, out) -> list[str]:
    return [a.format(M=w / "model", M2=w / "tuned", W=w, OUT=out) for a in COMMANDS[cmd][0]]


def refused(capsys, tmp_path, argv, match=None) -> str:
    """Run ``argv``; assert one error line, exit 2, and that nothing under tmp_path changed."""
    before = snapshot(tmp_path)
    rc, out, err = run_cli(capsys, *argv)
    assert_clean_error(rc, out, err, match)
    assert snapshot(tmp_path) == before
    return err


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_output_is_holds_or_is_inside_an_input(capsys, tmp_path, work, cmd):
    model_out = work / ("tuned" if cmd == "intruders" else "model")
    refused(capsys, tmp_path, argv_for(cmd, work, model_out), "refusing to overwrite the input")
    refused(capsys, tmp_path, argv_for(cmd, work, model_out / "report"), "is inside it")
    refused(capsys, tmp_path, argv_for(cmd, work, work), "holds it")
    folder = COMMANDS[cmd][1]
    if folder:  # the folder that holds the command's data, task or config file
        refused(capsys, tmp_path, argv_for(cmd, work, work / folder), "holds it")


def test_scaled_checkpoint_over_the_base_is_refused(capsys, tmp_path, work):
    argv = ["intruders", work / "model", work / "tuned", "--scale", "0.5", "--out", work / "model"]
    refused(capsys, tmp_path, argv, "refusing to overwrite the input")


@pytest.mark.parametrize("cmd", ["spectrum", "intruders-scale", "laser-apply", "finetune", "eval", "checkup",
                                 "trees", "priors-query"])
def test_special_files_and_paths_under_a_file(capsys, tmp_path, work, cmd):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(capsys, tmp_path, argv_for(cmd, work, fifo), "it is a fifo")
    plain = tmp_path / "plain.txt"
    plain.write_text("keep me\n")
    refused(capsys, tmp_path, argv_for(cmd, work, plain / "out"), "is a file, not a folder")
    refused(capsys, tmp_path, argv_for(cmd, work, plain), "it is a file")
    if ROOT:  # a device node made here, never a real /dev entry
        dev = tmp_path / "null-device"
        os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        refused(capsys, tmp_path, argv_for(cmd, work, dev), "character device")


@pytest.mark.parametrize("cmd", ["spectrum", "laser-apply", "eval", "checkup", "trees", "finetune"])
def test_unrelated_folder_needs_force(capsys, tmp_path, work, cmd):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work\n")
    refused(capsys, tmp_path, argv_for(cmd, work, other), "give --force")
    # --force never lets an output replace an input
    refused(capsys, tmp_path, argv_for(cmd, work, work) + ["--force"], "refusing to overwrite the input")


def test_force_replaces_and_marks_and_a_marked_folder_is_replaced(capsys, tmp_path, work):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work\n")
    inputs = snapshot(work)
    rc, _, err = run_cli(capsys, *argv_for("spectrum", work, other), "--force", "--quiet")
    assert rc == 0, err
    assert not (other / "thesis.tex").exists() and (other / "index.html").is_file()
    assert read_marker(other)["kind"] == "output"
    # a folder lmscope wrote is replaced without --force, by another command too
    rc, _, err = run_cli(capsys, *argv_for("laser-apply", work, other), "--quiet")
    assert rc == 0, err
    assert (other / "model.safetensors").is_file() and not (other / "index.html").exists()
    assert read_marker(other) is not None
    assert snapshot(work) == inputs
    # no temporary siblings are left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "work"]


@pytest.mark.skipif(ROOT, reason="root writes into a read-only folder anyway")
def test_read_only_parent(capsys, tmp_path, work):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        refused(capsys, tmp_path, argv_for("spectrum", work, ro / "out"), "permission denied")
    finally:
        ro.chmod(0o755)


def test_data_outputs(capsys, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    plain = tmp_path / "plain.txt"
    plain.write_text("x\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a").write_text("a\n")
    task = ["data", "task", "sentiment", "--n", "4"]
    refused(capsys, tmp_path, [*task, "--out", tmp_path / "fifo"], "it is a fifo")
    refused(capsys, tmp_path, [*task, "--out", tmp_path / "folder"], "it is a folder")
    refused(capsys, tmp_path, [*task, "--out", plain / "x.jsonl"], "is a file, not a folder")
    make = ["data", "make", "dyck", "--n-train", "4", "--n-val", "2", "--n-gen", "2"]
    refused(capsys, tmp_path, [*make, "--out", tmp_path / "folder"], "give --force")
    refused(capsys, tmp_path, [*make, "--out", tmp_path / "fifo"], "it is a fifo")
    refused(capsys, tmp_path, [*make, "--out", Path(os.environ["LMSCOPE_CACHE"]) / "suite"], "cache folder")
    if ROOT:
        os.mknod(tmp_path / "dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        refused(capsys, tmp_path, [*task, "--out", tmp_path / "dev"], "character device")
        assert stat.S_ISCHR(os.lstat(tmp_path / "dev").st_mode)
    rc, _, err = run_cli(capsys, *make, "--out", tmp_path / "suite", "--quiet")
    assert rc == 0, err
    assert read_marker(tmp_path / "suite") is not None
    rc, _, err = run_cli(capsys, *make, "--seed", "1", "--out", tmp_path / "suite", "--quiet")
    assert rc == 0, err  # lmscope's own earlier output is replaced
    assert json.loads((tmp_path / "suite" / "info.json").read_text())["seed"] == 1
    rc, _, err = run_cli(capsys, *task, "--out", tmp_path / "t.jsonl", "--quiet")
    assert rc == 0, err and len((tmp_path / "t.jsonl").read_text().splitlines()) == 4


def test_intruders_report_checked_before_the_checkpoint_is_written(capsys, tmp_path, work):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("mine\n")
    base = ["intruders", work / "model", work / "tuned", "--scale", "0.5", "--out", tmp_path / "ckpt"]
    refused(capsys, tmp_path, [*base, "--report", notes], "--report")
    refused(capsys, tmp_path, [*base, "--report", work / "tuned"], "refusing to overwrite the input")
    refused(capsys, tmp_path, [*base, "--report", tmp_path / "ckpt" / "report"], "overlap")
    rc, _, err = run_cli(capsys, *base, "--report", tmp_path / "rep", "--quiet")
    assert rc == 0, err
    assert (tmp_path / "ckpt" / "model.safetensors").is_file() and (tmp_path / "rep" / "index.html").is_file()


def test_interrupted_checkup_leaves_no_report_that_looks_complete(tmp_path, work, monkeypatch):
    from lmscope import checkup

    out = tmp_path / "report"
    cfg = checkup.CheckupConfig(finetune=False, laser=False, trees=True)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkup, "_trees_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkup.run_checkup(str(work / "model"), out, cfg, quiet=True, log=lambda m: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # nothing, not even a temporary folder
    # an earlier complete report stays as it was
    monkeypatch.undo()
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))
    done = checkup.run_checkup(str(work / "model"), out, checkup.CheckupConfig(finetune=False, laser=False,
                                                                               trees=False), quiet=True,
                               log=lambda m: None)
    assert done == out / "index.html" and done.is_file()
    complete = snapshot(out)
    monkeypatch.setattr(checkup, "_trees_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkup.run_checkup(str(work / "model"), out, cfg, quiet=True, log=lambda m: None)
    assert snapshot(out) == complete


def test_write_errors_name_the_output(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(LmscopeError, match=f"cannot write {out}: no space left"), output_dir(out) as tmp:
        (tmp / "a.txt").write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(LmscopeError, match=f"cannot write {out / 'b.txt'}: permission denied"), \
            output_dir(out) as tmp:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp / "b.txt"))
    assert list(tmp_path.iterdir()) == []
    with output_dir(out, command="test") as tmp:
        (tmp / "a.txt").write_text("done")
    assert (out / "a.txt").read_text() == "done" and read_marker(out)["command"] == "test"
    assert (out / MARKER).is_file()


def test_cache_folder_that_is_a_file(capsys, tmp_path, work, monkeypatch):
    cache = tmp_path / "cache-file"
    cache.write_text("not a folder\n")
    monkeypatch.setenv("LMSCOPE_CACHE", str(cache))
    refused(capsys, tmp_path, ["spectrum", work / "model", "--quiet"], "cache")


@pytest.mark.skipif(ROOT, reason="root deletes from a read-only folder anyway")
def test_cache_clear_reports_what_it_could_not_clear(capsys, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "svd" / "x").mkdir(parents=True)
    (cache / "svd" / "x" / "a.npz").write_text("x")
    monkeypatch.setenv("LMSCOPE_CACHE", str(cache))
    (cache / "svd" / "x").chmod(0o555)
    try:
        rc, out, err = run_cli(capsys, "cache", "clear")
        assert_clean_error(rc, out, err, "could not clear svd")
        assert "cleared" not in out
    finally:
        (cache / "svd" / "x").chmod(0o755)


def test_symlinks_are_resolved(capsys, tmp_path, work):
    (tmp_path / "link").symlink_to(work / "model")
    refused(capsys, tmp_path, argv_for("spectrum", work, tmp_path / "link"), "refusing to overwrite the input")
    (tmp_path / "up").symlink_to(work)
    refused(capsys, tmp_path, argv_for("laser-apply", work, tmp_path / "up" / "model" / "x"), "is inside it")


def test_a_bundled_name_stands_for_its_files(capsys, tmp_path):
    from lmscope.models import bundled_path

    try:
        where = bundled_path("minilm-l6")
    except LmscopeError:
        pytest.skip("the bundled MiniLM package is not installed")
    listing = sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in where.rglob("*"))
    refused(capsys, tmp_path, ["spectrum", "minilm-l6", "--out", where], "refusing to overwrite the input")
    refused(capsys, tmp_path, ["spectrum", "minilm-l6", "--out", where.parent], "holds it")
    assert sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in where.rglob("*")) == listing


def test_run_folders(capsys, tmp_path):
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "run.json").write_text("{}")
    refused(capsys, tmp_path, ["grok", "plot", runs / "a", "--out", runs / "a"], "refusing to overwrite the input")
    refused(capsys, tmp_path, ["grok", "plot", runs / "a", "--out", runs], "holds it")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "summary.json").write_text("mine\n")
    (notes / "thesis.tex").write_text("mine\n")
    refused(capsys, tmp_path, ["eval", "game", "--capability", "arithmetic", "--model", "truth", "--evaluator",
                               "static", "--games", "2", "--out", notes], "give --force")
    refused(capsys, tmp_path, ["grok", "sweep", "--task", "dyck", "--layers", "1", "--out", notes], "give --force")
    refused(capsys, tmp_path, ["grok", "train", "--task", "dyck", "--out", Path(os.environ["LMSCOPE_CACHE"]) / "r"],
            "cache folder")


def test_cache_clear_that_fails_does_not_say_it_cleared(capsys, tmp_path, monkeypatch):
    """The deletion fails as it would in a folder the user may not write to (which root always may)."""
    import lmscope.cache

    cache = tmp_path / "cache"
    (cache / "svd").mkdir(parents=True)
    (cache / "svd" / "a.npz").write_text("x")
    monkeypatch.setenv("LMSCOPE_CACHE", str(cache))

    def rmtree(path, onerror):
        onerror(os.unlink, str(Path(path) / "a.npz"), (PermissionError, PermissionError(errno.EACCES,
                                                                                          "Permission denied"), None))

    monkeypatch.setattr(lmscope.cache.shutil, "rmtree", rmtree)
    rc, out, err = run_cli(capsys, "cache", "clear")
    assert_clean_error(rc, out, err, f"could not clear svd in {cache}: {cache / 'svd' / 'a.npz'}: permission denied")
    assert "cleared" not in out


def test_lm_cache_file_follows_the_policy(capsys, tmp_path, work):
    os.mkfifo(tmp_path / "fifo")
    score = ["lm", "score", "The cat", "--continuation", " sat", "--lm", f"local:{work / 'model'}"]
    refused(capsys, tmp_path, [*score, "--lm-cache", tmp_path / "fifo"], "it is a fifo")
    refused(capsys, tmp_path, [*score, "--lm-cache", work / "model" / "model.safetensors"],
            "refusing to overwrite the input")
    refused(capsys, tmp_path, [*score, "--lm-cache", work / "model"], "it is a folder")


def test_current_folder_is_never_replaced(capsys, tmp_path, work, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "a.txt").write_text("mine\n")
    monkeypatch.chdir(here)
    refused(capsys, tmp_path, ["spectrum", work / "model", "--out", ".", "--force"], "current folder")
    refused(capsys, tmp_path, ["spectrum", work / "model", "--out", "..", "--force"], "refusing")
