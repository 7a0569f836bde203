"""`lmscope vision ...` as a user runs it: draw with the bundled model, score, recognize, correct, ssl, and
`vision run` with its exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ERROR_PREFIX
from test_lm_backends import _save_tiny_lm

from lmscope.cli import main
from lmscope.sandbox import SandboxUnavailable, sandbox_backend

try:
    sandbox_backend()
    HAVE, WHY = True, ""
except SandboxUnavailable as e:
    HAVE, WHY = False, str(e)
pytestmark = pytest.mark.skipif(not HAVE, reason=f"no sandbox here: {WHY}")


def lmscope(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmscope", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    """A tiny random Llama with a chat template: fast, and its answers are real (if useless) generations."""
    out = _save_tiny_lm(tmp_path_factory.mktemp("tiny-lm") / "model", context=2048)
    return "local:" + str(out)


@pytest.fixture(scope="module")
def drawing(tmp_path_factory, tiny_lm) -> Path:
    """One shapes concept and one object, both languages, one sample each."""
    root = tmp_path_factory.mktemp("vision")
    cache = root / "lm.sqlite"
    r = lmscope("vision", "draw", "--lm", tiny_lm, "--lm-cache", str(cache), "--tier", "shapes,objects",
                "--per-tier", "1", "--samples", "1", "--max-tokens", "48", "--out", str(root / "draw"), "--quiet")
    assert r.returncode == 0, r.stderr
    return root / "draw"


@pytest.mark.slow
def test_the_bundled_model_draws_end_to_end(tmp_path):
    r = lmscope("vision", "draw", "--lm", "local:smollm2-135m", "--no-cache", "--tier", "shapes", "--per-tier", "2",
                "--samples", "1", "--language", "python", "--max-tokens", "200", "--out", str(tmp_path / "d"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outcomes"]["all"]["samples"] == 2


def test_draw_writes_the_drawing_folder_and_resumes_from_the_cache(drawing, tmp_path, tiny_lm):
    manifest = json.loads((drawing / "drawing.json").read_text())
    rows = [json.loads(x) for x in (drawing / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and manifest["samples_total"] == 4 and manifest["sandbox"] == "bwrap"
    assert {r["language"] for r in rows} == {"python", "svg"} and {r["tier"] for r in rows} == {"shapes", "objects"}
    for r in rows:
        assert (drawing / r["code"]).is_file() and r["prompt"][-1]["role"] == "user"
        assert r["outcome"] in ("image", "blank", "syntax-error", "runtime-error", "timeout", "limit", "sandbox-error")
        if r["image"]:
            assert (drawing / r["image"]).is_file()
    assert sum(manifest["outcomes"]["all"][k] for k in manifest["outcomes"]["all"] if k != "samples") == 4
    assert (drawing / "shapes" / "index.html").is_file() and (drawing / "index.html").is_file()
    # the same command, offline: every answer comes from the cache, the samples are the same
    again = lmscope("vision", "draw", "--lm", tiny_lm, "--lm-cache", str(drawing.parent / "lm.sqlite"),
                    "--offline", "--tier", "shapes,objects", "--per-tier", "1", "--samples", "1", "--max-tokens", "48",
                    "--out", str(tmp_path / "again"), "--quiet")
    assert again.returncode == 0, again.stderr
    strip = [{k: v for k, v in json.loads(x).items() if k != "seconds"}
             for x in (tmp_path / "again" / "samples.jsonl").read_text().splitlines()]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_an_lm_server_that_is_down_is_one_error_and_writes_nothing(tmp_path):
    r = lmscope("vision", "draw", "--lm", "http://127.0.0.1:9/v1#x", "--lm-timeout", "2", "--tier", "shapes",
                "--per-tier", "1", "--samples", "1", "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and r.stderr.strip().startswith(ERROR_PREFIX) and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_score_recognize_correct_on_the_drawing(drawing, tmp_path, tiny_lm):
    s = lmscope("vision", "score", str(drawing), "--out", str(tmp_path / "scores"), "--json")
    assert s.returncode == 0, s.stderr
    table = json.loads(s.stdout)["table"]
    assert {(t["tier"], t["language"]) for t in table} == {(a, b) for a in ("shapes", "objects")
                                                           for b in ("python", "svg")}
    assert (tmp_path / "scores" / "scores.json").is_file() and (tmp_path / "scores" / "index.html").is_file()
    rows = [json.loads(x) for x in (drawing / "samples.jsonl").read_text().splitlines()]
    if any(r["outcome"] == "image" for r in rows):
        rec = lmscope("vision", "recognize", str(drawing), "--lm", tiny_lm, "--no-cache", "--out",
                      str(tmp_path / "rec"), "--json")
        assert rec.returncode == 0, rec.stderr
        out = json.loads(rec.stdout)
        assert out["k"] == 5 and out["n"] == sum(r["outcome"] == "image" for r in rows)
    c = lmscope("vision", "correct", str(drawing), "--lm", tiny_lm, "--no-cache", "--rounds", "1",
                "--max-tokens", "48", "--samples", "1", "--out", str(tmp_path / "fix"), "--json")
    assert c.returncode == 0, c.stderr
    curve = json.loads(c.stdout)["curve"]
    assert {row["round"] for row in curve} == {0, 1} and all(row["samples"] == 1 for row in curve)
    fixed = [json.loads(x) for x in (tmp_path / "fix" / "samples.jsonl").read_text().splitlines()]
    assert len(fixed) == 8 and {r["round"] for r in fixed} == {0, 1}


def test_ssl_trains_on_the_lm_images_and_compares_with_procedural_images(tmp_path):
    """On a planted drawing folder (rendered by the sandbox from known code), a few steps each."""
    from lmscope.vision.concepts import concept_by_id
    from lmscope.vision.draw import Sample, write_drawing
    from lmscope.vision.render import render_many

    codes = [(f"import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.add_patch(plt.Circle(({x / 10}, .5), "
              f".2, color='C{x}'))\nax.axis('off')", "python") for x in range(3, 7)]
    renders = render_many(codes, jobs=2)
    c = concept_by_id("shape-red-circle")
    write_drawing(tmp_path / "d", [Sample(c, "python", i, [], "", code, r) for i, ((code, _), r)
                                   in enumerate(zip(codes, renders))], {"lm": "planted"})
    r = lmscope("vision", "ssl", str(tmp_path / "d"), "--steps", "4", "--out", str(tmp_path / "run"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_images"] == 4 and set(out["encoders"]) == {"random-init", "lm-images", "random-shapes", "dead-leaves"}
    assert (tmp_path / "run" / "comparison.json").is_file()
    again = lmscope("vision", "ssl", str(tmp_path / "d"), "--steps", "4", "--out", str(tmp_path / "run"), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["datasets"] == out["datasets"]   # resumed: same


def test_run_exit_statuses(tmp_path, capsys):
    good = tmp_path / "good.py"
    good.write_text("import matplotlib.pyplot as plt\nplt.plot([0, 1], [0, 1], color='k')\n")
    main(["vision", "run", str(good), "--out", str(tmp_path / "ok")])
    assert (tmp_path / "ok" / "image.png").is_file()
    for code, kind in (("raise SystemExit(5)", "runtime-error"), ("while True: pass", "limit"),
                       ("import time; time.sleep(30)", "timeout"),
                       ("import matplotlib.pyplot as plt\nplt.figure()", "blank"), ("def (", "syntax-error")):
        f = tmp_path / "bad.py"
        f.write_text(code)
        r = lmscope("vision", "run", str(f), "--timeout", "1", "--out", str(tmp_path / kind))
        assert r.returncode == 3, (kind, r.stderr)
        assert r.stderr.strip().splitlines() == [r.stderr.strip()] and f"failed: {kind}" in r.stderr
        assert json.loads((tmp_path / kind / "result.json").read_text())["outcome"] == kind
    svg = tmp_path / "a.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="2" height="4"/></svg>')
    assert lmscope("vision", "run", str(svg), "--out", str(tmp_path / "svg")).returncode == 0
    assert lmscope("vision", "run", str(svg), "--out", str(svg)).returncode == 2


def test_without_bubblewrap_lm_code_is_refused_unless_unsafe(tmp_path):
    import os

    good = tmp_path / "good.py"
    good.write_text("import matplotlib.pyplot as plt\nplt.plot([0, 1], [0, 1], color='k')\n")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}        # no bwrap on this PATH
    cmd = [sys.executable, "-m", "lmscope", "vision", "run", str(good)]
    r = subprocess.run([*cmd, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and not (tmp_path / "a").exists()
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "refusing to run LM-written code: bubblewrap is not installed" in r.stderr and "--unsafe-no-sandbox" in r.stderr
    r = subprocess.run([*cmd, "--unsafe-no-sandbox", "--out", str(tmp_path / "b")], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b" / "image.png").is_file()
