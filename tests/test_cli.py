"""The command line as a user sees it: help texts, JSON and report outputs, clean one-line errors."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import assert_clean_error, build_tiny_model, edit_copy

from lmscope.cli import main

HIDDEN, INTER, LAYERS, HEADS, VOCAB = 48, 96, 2, 4, 64
PLANTED = "model.layers.0.self_attn.q_proj.weight"
SHARED_CACHE = "/tmp/lmscope-test-cache"  # the bundled GGUF model's conversion and SVDs live here


@pytest.fixture(autouse=True)
def _lmscope_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path_factory.mktemp("lmscope-cache")))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def strict_json(text: str):
    """Parse JSON, rejecting the non-standard NaN / Infinity literals."""
    def bad(const):
        raise ValueError(f"non-standard JSON constant {const}")

    return json.loads(text, parse_constant=bad)


def need_bundled(name: str) -> None:
    from lmscope.errors import LmscopeError
    from lmscope.models import bundled_path

    try:
        bundled_path(name)
    except LmscopeError as e:
        pytest.skip(str(e))


def tree_hash(d: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ builders
def _save_llama(path: Path, hidden=HIDDEN, seed=0) -> Path:
    torch.manual_seed(seed)
    build_tiny_model("llama", seed=None, hidden_size=hidden, intermediate_size=INTER, num_hidden_layers=LAYERS,
                     num_attention_heads=HEADS, num_key_value_heads=HEADS, vocab_size=VOCAB).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llama_pair(tmp_path_factory):
    """A tiny Llama base with a planted 0.q and a tuned copy with exactly one intruder there.

    0.q = Q1 diag(2.0 .. 0.12) Q2^T; tuned adds 6 u v^T with u = Q1 c, v = Q2 c and c spread evenly
    over the 8 lowest singular directions (see tests/test_spectral.py for why that is one intruder).
    """
    root = tmp_path_factory.mktemp("llama")
    raw = _save_llama(root / "raw")
    gen = torch.Generator().manual_seed(1234)
    q1 = torch.linalg.qr(torch.randn(HIDDEN, HIDDEN, generator=gen, dtype=torch.float64))[0]
    q2 = torch.linalg.qr(torch.randn(HIDDEN, HIDDEN, generator=gen, dtype=torch.float64))[0]
    s = torch.linspace(2.0, 0.12, HIDDEN, dtype=torch.float64)
    w0 = ((q1 * s) @ q2.t()).float()
    base = edit_copy(raw, root / "base", {PLANTED: w0})
    c = torch.zeros(HIDDEN, dtype=torch.float64)
    c[40:] = torch.tensor([1, -1, 1, 1, -1, 1, -1, -1], dtype=torch.float64) / math.sqrt(8)
    tuned = edit_copy(base, root / "tuned", {PLANTED: w0.double() + 6.0 * torch.outer(q1 @ c, q2 @ c)})
    return base, tuned


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt2") / "gpt2"
    torch.manual_seed(0)
    build_tiny_model("gpt2", seed=None, n_embd=HIDDEN, n_inner=None, n_layer=LAYERS, n_head=HEADS,
                     vocab_size=VOCAB).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A tiny BERT with a real WordPiece tokenizer (special tokens, letters, ~200 task words)."""
    from transformers import BertTokenizerFast

    from lmscope.data.tasks import make_task

    path = tmp_path_factory.mktemp("bert") / "bert"
    path.mkdir()
    words = Counter(w for row in make_task("sentiment", 400, seed=0)
                    for w in re.findall(r"[a-z]+", row["text"].lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.punctuation, *string.ascii_lowercase,
             *("##" + ch for ch in string.ascii_lowercase), *(w for w, _ in words.most_common(200))]
    vocab = list(dict.fromkeys(vocab))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # from_pretrained on the folder: transformers 5 ignores BertTokenizerFast(vocab_file=...)
    tok = BertTokenizerFast.from_pretrained(str(path))
    assert len(tok) == len(vocab)
    assert tok.unk_token_id not in tok("the food was great")["input_ids"]
    tok.save_pretrained(path)
    torch.manual_seed(0)
    build_tiny_model("bert-encoder", seed=None, vocab_size=len(vocab), num_attention_heads=2,
                     max_position_embeddings=160).save_pretrained(path)
    return path


# ---------------------------------------------------------------------------------------------- help
HELP_COMMANDS = [
    [], ["checkup"], ["models"], ["models", "list"], ["models", "show"], ["spectrum"], ["intruders"],
    ["finetune"], ["forgetting"], ["data"], ["data", "task"], ["cache"], ["laser"], ["laser", "apply"],
    ["laser", "search"], ["eval"], ["data", "make"], ["trees"], ["grok"], ["grok", "train"], ["grok", "plot"],
]


@pytest.mark.parametrize("cmd", HELP_COMMANDS, ids=lambda c: "-".join(c) or "top")
def test_help_for_every_command(capsys, cmd):
    with pytest.raises(SystemExit) as exc:
        main([*cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lmscope" + "".join(" " + c for c in cmd))
    if cmd in (["spectrum"], ["intruders"]):
        assert "--json" in out and "--out" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("lmscope ")


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["intruders", "only-one"], ["spectrum", "x", "--k", "3"]])
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: lmscope" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- lists
@pytest.mark.parametrize("text, expected", [
    ("0", [0]), ("0,1,5-8", [0, 1, 5, 6, 7, 8]), (" 3 , 1-2 ,", [3, 1, 2]), ("4-4", [4]), ("2,2", [2, 2]),
    ("10 - 12", [10, 11, 12]), (None, None),
])
def test_int_list_values_and_ranges(text, expected):
    from lmscope.cli._lists import int_list

    assert int_list(text, "--layers") == expected


@pytest.mark.parametrize("text, msg", [
    ("abc", "must be integers"), ("2x", "must be integers"), ("1,x", "must be integers"), ("1.5", "must be integers"),
    ("-3", "no negative numbers"), ("1,-3", "no negative numbers"), ("5-2", "range 5-2 is empty"),
    ("1-", "must be integers"), ("1-2-3", "must be integers"), (",", "at least one value"), ("", "at least one value"),
    (" , ", "at least one value"), ("0-1000000000", "more than 100,000 values"),
])
def test_int_list_bad_lists_name_the_option(text, msg):
    from lmscope.cli._lists import int_list
    from lmscope.errors import LmscopeError

    with pytest.raises(LmscopeError, match=msg) as exc:
        int_list(text, "--layers")
    assert "--layers" in str(exc.value) and "\n" not in str(exc.value)


def test_float_name_and_layer_lists():
    from lmscope.cli._lists import float_list, layer_arg, name_list
    from lmscope.errors import LmscopeError

    assert float_list("0.9, 0.5,1e-2", "--keeps") == [0.9, 0.5, 0.01] and float_list(None, "--keeps") is None
    assert name_list(" q, down ,", "--roles") == ["q", "down"] and name_list(None, "--roles") is None
    assert layer_arg(None) is None and layer_arg("-1") == -1 and layer_arg("3") == 3 and layer_arg("3,") == 3
    assert layer_arg("2,4,6-8") == [2, 4, 6, 7, 8]
    for fn, text, msg in [(float_list, "abc", "comma-separated numbers"), (float_list, "0.5,nan", "numbers"),
                          (float_list, "inf", "numbers"), (float_list, ",", "at least one"),
                          (name_list, ",", "at least one"), (layer_arg, "2,-1", "no negative"),
                          (layer_arg, "x", "must be integers"), (layer_arg, "4-2", "empty")]:
        with pytest.raises(LmscopeError, match=msg):
            fn(text, "--opt")


@pytest.mark.parametrize("argv", [
    ["models", "show", "{tmp}/nope", "--layers", "abc"],
    ["models", "show", "{tmp}/nope", "--roles", ","],
    ["spectrum", "{tmp}/nope", "--layers", "5-2"],
    ["spectrum", "{tmp}/nope", "--layers", "-3"],
    ["intruders", "{tmp}/a", "{tmp}/b", "--layers", "2x"],
    ["laser", "search", "{tmp}/nope", "--task", "factual_recall", "--layers", ","],
    ["laser", "search", "{tmp}/nope", "--task", "factual_recall", "--keeps", "0.5,x"],
    ["trees", "{tmp}/nope", "--data", "{tmp}/s.txt", "--layer", "1,-2"],
    ["grok", "sweep", "--task", "dyck", "--layers", "4-2", "--out", "{tmp}/sw"],
    ["grok", "sweep", "--task", "dyck", "--layers", "2", "--seeds", "0,x", "--out", "{tmp}/sw"],
    ["eval", "profile", "--capability", "reverse", "--model", "truth", "--evaluator", "static", "--values", "8,,-1",
     "--out", "{tmp}/p"],
    ["eval", "profile", "--capability", "reverse", "--model", "truth", "--evaluator", ",", "--out", "{tmp}/p"],
], ids=lambda a: "-".join(x for x in a[:2] if not x.startswith("{")))
def test_bad_lists_on_the_command_line_are_one_clean_line(capsys, tmp_path, argv):
    (tmp_path / "s.txt").write_text("a b c\n")
    option = next(a for a in reversed(argv) if a.startswith("--") and a not in ("--out", "--task"))
    rc, out, err = run_cli(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert_clean_error(rc, out, err)
    assert option in err, err
    assert not (tmp_path / "sw").exists() and not (tmp_path / "p").exists()


def _env_one_thread():
    return {**os.environ, "OMP_NUM_THREADS": "1", "LMSCOPE_CACHE": os.environ["LMSCOPE_CACHE"]}


@pytest.mark.parametrize("how", ["script", "module"])
def test_help_in_a_real_subprocess(how):
    script = Path(sys.executable).parent / "lmscope"
    if how == "script" and not script.exists():
        pytest.skip("the lmscope console script is not installed next to this python")
    cmd = [str(script), "--help"] if how == "script" else [sys.executable, "-m", "lmscope", "--help"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env_one_thread())
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: lmscope")
    for sub in ("checkup", "models", "spectrum", "intruders", "finetune", "forgetting", "data", "cache"):
        assert sub in p.stdout


def test_building_the_parser_imports_no_training_stack():
    """`lmscope --help` and the light commands start fast: the parser (grok options included) needs no torch."""
    code = ("import sys; from lmscope.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules]; print(heavy)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=_env_one_thread())
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_output_into_a_closed_pipe_is_no_traceback():
    p = subprocess.Popen([sys.executable, "-m", "lmscope", "data", "task", "sentiment", "--n", "50000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env_one_thread())
    assert json.loads(p.stdout.readline())  # the reader takes one row, then stops reading
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == "", err


def test_the_cli_package_stays_one_small_module_per_group():
    """Every module under 300 lines; each top-level command is added by the module COMMANDS names."""
    import importlib

    import lmscope.cli as cli

    folder = Path(cli.__file__).parent
    assert {p.name: len(p.read_text().splitlines()) <= 300 for p in folder.glob("*.py")} == \
        {p.name: True for p in folder.glob("*.py")}
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    listed = [a.dest for a in sub._choices_actions]
    assert listed == [name for name, _ in cli.COMMANDS]
    for name, module in cli.COMMANDS:
        assert name in importlib.import_module(f"lmscope.cli.{module}").COMMANDS


def test_error_in_a_real_subprocess(tmp_path):
    p = subprocess.run([sys.executable, "-m", "lmscope", "intruders", tmp_path / "nope", tmp_path / "nope2"],
                       capture_output=True, text=True, timeout=120, env=_env_one_thread())
    assert p.returncode == 2
    assert_clean_error(p.returncode, p.stdout, p.stderr)
    assert "no such model" in p.stderr


# ------------------------------------------------------------------------------------------ spectrum
def test_spectrum_json_is_one_document(capsys, llama_pair):
    base, _ = llama_pair
    rc, out, err = run_cli(capsys, "spectrum", base, "--json")
    assert rc == 0, err
    doc = strict_json(out)
    assert isinstance(doc["matrices"], list) and len(doc["matrices"]) == 7 * LAYERS
    row = doc["matrices"][0]
    assert row["key"] == "0.q" and row["rows"] == HIDDEN
    for col in ("alpha", "stable_rank", "effective_rank", "spectral_entropy", "spectral_norm"):
        assert isinstance(row[col], float)
    assert row["spectral_norm"] == pytest.approx(2.0, rel=1e-5)
    assert doc["summary"]["matrices"] == 7 * LAYERS
    assert err == ""


def test_spectrum_text_output_and_filters(capsys, llama_pair):
    base, _ = llama_pair
    rc, out, _ = run_cli(capsys, "spectrum", base, "--layers", "1", "--roles", "q,down", "--quiet")
    assert rc == 0
    assert "1.q" in out and "1.fc_out" in out and "0.q" not in out
    rc, out, err = run_cli(capsys, "spectrum", base, "--layers", "7")
    assert_clean_error(rc, out, err)
    rc, out, err = run_cli(capsys, "spectrum", base, "--metric", "bogus")
    assert_clean_error(rc, out, err)


def test_spectrum_report_folder(capsys, llama_pair, tmp_path):
    base, _ = llama_pair
    out_dir = tmp_path / "rep"
    rc, out, err = run_cli(capsys, "spectrum", base, "--out", out_dir, "--quiet")
    assert rc == 0, err
    for name in ("spectrum.csv", "spectrum.json", "index.html"):
        assert (out_dir / name).is_file(), name
    pngs = sorted(out_dir.glob("*.png"))
    assert len(pngs) >= 2
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out_dir / "spectrum.csv").read_text().strip().splitlines()) == 1 + 7 * LAYERS
    assert len(strict_json((out_dir / "spectrum.json").read_text())["matrices"]) == 7 * LAYERS
    html = (out_dir / "index.html").read_text()
    assert "<html" in html.lower() and pngs[0].name in html
    assert str(out_dir / "index.html") in out
    assert not list(tmp_path.glob(".rep.*"))  # no temporary folders left behind


def test_spectrum_json_with_a_zero_matrix_is_standard_json(capsys, llama_pair, tmp_path):
    base, _ = llama_pair
    zero = edit_copy(base, tmp_path / "zero", {"model.layers.0.self_attn.o_proj.weight": torch.zeros(HIDDEN, HIDDEN)})
    rc, out, err = run_cli(capsys, "spectrum", zero, "--layers", "0", "--roles", "o", "--json")
    assert rc == 0, err
    strict_json(out)


def test_models_show_minilm_lists_36_matrices(capsys):
    need_bundled("minilm-l6")
    rc, out, err = run_cli(capsys, "models", "show", "minilm-l6", "--json")
    assert rc == 0, err
    doc = strict_json(out)
    assert doc["matrices"] == 36 and len(doc["matrices_list"]) == 36
    assert doc["family"] == "bert" and doc["layers"] == 6
    assert {m["role"] for m in doc["matrices_list"]} == {"q", "k", "v", "o", "fc_in", "fc_out"}


def test_models_list(capsys):
    rc, out, _ = run_cli(capsys, "models", "list", "--json")
    assert rc == 0
    names = [r["name"] for r in strict_json(out)["bundled"]]
    assert names == ["smollm2-135m", "minilm-l6", "qwen2.5-coder-0.5b"]


def test_models_show_errors(capsys, tmp_path):
    assert_clean_error(*run_cli(capsys, "models", "show", tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    assert_clean_error(*run_cli(capsys, "models", "show", tmp_path / "empty"))


def test_spectrum_on_the_bundled_smollm2(capsys, monkeypatch):
    need_bundled("smollm2-135m")
    monkeypatch.setenv("LMSCOPE_CACHE", SHARED_CACHE)
    rc, out, err = run_cli(capsys, "spectrum", "smollm2-135m", "--layers", "0", "--roles", "q,down", "--json")
    assert rc == 0, err
    doc = strict_json(out)
    assert [m["key"] for m in doc["matrices"]] == ["0.q", "0.fc_out"]
    assert [(m["rows"], m["cols"]) for m in doc["matrices"]] == [(576, 576), (576, 1536)]
    for m in doc["matrices"]:
        assert m["alpha"] is not None and math.isfinite(m["alpha"]) and m["alpha"] > 1


# ----------------------------------------------------------------------------------------- intruders
def test_intruders_json_on_the_planted_pair(capsys, llama_pair):
    base, tuned = llama_pair
    rc, out, err = run_cli(capsys, "intruders", base, tuned, "--json")
    assert rc == 0, err
    doc = strict_json(out)
    assert doc["total_intruders"] == 1
    assert doc["matrices"] == 7 * LAYERS and doc["matrices_with_intruders"] == 1
    assert doc["by_layer"] == {"0": 1, "1": 0}
    rows = {r["key"]: r for r in doc["matrices_table"]}
    assert rows["0.q"]["n_intruders"] == 1 and rows["0.q"]["intruder_ranks"] == [0]
    assert err == ""


def test_intruders_text_output(capsys, llama_pair):
    base, tuned = llama_pair
    rc, out, _ = run_cli(capsys, "intruders", base, tuned, "--quiet")
    assert rc == 0
    assert "total intruders: 1 in 1 of 14 matrices" in out
    assert "per layer: 0:1, 1:0" in out


def test_intruders_mitigation_writes_checkpoint_and_report(capsys, llama_pair, tmp_path):
    base, tuned = llama_pair
    ckpt, rep = tmp_path / "ckpt", tmp_path / "rep"
    before = {d: tree_hash(d) for d in (base, tuned)}
    rc, out, err = run_cli(capsys, "intruders", base, tuned, "--scale", "0.5", "--out", ckpt, "--report", rep,
                           "--json")
    assert rc == 0, err
    assert {d: tree_hash(d) for d in (base, tuned)} == before
    doc = strict_json(out)
    assert doc["total_intruders"] == 1 and Path(doc["mitigated_checkpoint"]) == ckpt
    for name in ("model.safetensors", "config.json", "lmscope_edit.json"):
        assert (ckpt / name).is_file(), name
    note = json.loads((ckpt / "lmscope_edit.json").read_text())
    assert note["scale"] == 0.5 and note["matrices_edited"] == ["0.q"]
    for name in ("index.html", "intruders.csv", "intruders.json"):
        assert (rep / name).is_file(), name
    assert list(rep.glob("*.png"))
    # the mitigated checkpoint is itself a model lmscope reads: the intruder's singular value is halved
    from lmscope.models import open_model

    s_t = torch.linalg.svdvals(open_model(tuned).load("0.q").double())
    s_m = torch.linalg.svdvals(open_model(ckpt).load("0.q").double())
    assert float(s_m[0]) == pytest.approx(0.5 * float(s_t[0]), rel=1e-4)
    rc, out, _ = run_cli(capsys, "models", "show", ckpt, "--json")
    assert rc == 0 and strict_json(out)["matrices"] == 7 * LAYERS


def test_intruders_report_only(capsys, llama_pair, tmp_path):
    base, tuned = llama_pair
    rc, out, err = run_cli(capsys, "intruders", base, tuned, "--out", tmp_path / "rep", "--matrix", "0.q",
                           "--quiet")
    assert rc == 0, err
    assert (tmp_path / "rep" / "index.html").is_file()
    assert (tmp_path / "rep" / "intruders_similarity_0.q.png").is_file()


@pytest.mark.parametrize("case", ["k0", "eps2", "eps0", "scale", "scale-no-out", "missing", "truncated",
                                  "gpt2", "hidden32", "matrix", "role"])
def test_intruders_errors_are_one_clean_line(capsys, llama_pair, gpt2_dir, tmp_path, case):
    base, tuned = llama_pair
    out_dir, rep = tmp_path / "out", tmp_path / "rep"
    extra = ["--scale", "0.5", "--out", out_dir, "--report", rep]
    if case == "truncated":
        bad = shutil.copytree(tuned, tmp_path / "trunc")
        f = bad / "model.safetensors"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    args = {
        "k0": [base, tuned, "--k", "0", *extra],
        "eps2": [base, tuned, "--eps", "2", *extra],
        "eps0": [base, tuned, "--eps", "0", *extra],
        "scale": [base, tuned, "--scale", "1.5", "--out", out_dir, "--report", rep],
        "scale-no-out": [base, tuned, "--scale", "0.5"],
        "missing": [base, tmp_path / "does-not-exist", *extra],
        "truncated": [base, tmp_path / "trunc", *extra],
        "gpt2": [base, gpt2_dir, *extra],
        "hidden32": [base, None, *extra],
        "matrix": [base, tuned, "--matrix", "9.q", *extra],
        "role": [base, tuned, "--roles", "q,bogus", *extra],
    }[case]
    if case == "hidden32":
        args[1] = _save_llama(tmp_path / "h32", hidden=32)
    rc, out, err = run_cli(capsys, "intruders", *args)
    assert_clean_error(rc, out, err)
    assert not out_dir.exists() and not rep.exists()
    assert not list(tmp_path.glob(".out.*")) and not list(tmp_path.glob(".rep.*"))


def test_failed_mitigation_leaves_no_report(capsys, llama_pair, tmp_path):
    base, tuned = llama_pair
    tuned_copy = shutil.copytree(tuned, tmp_path / "tuned")
    before = tree_hash(tuned_copy)
    rc, out, err = run_cli(capsys, "intruders", base, tuned_copy, "--scale", "0.5", "--out", tuned_copy,
                           "--report", tmp_path / "rep")
    assert_clean_error(rc, out, err)
    assert tree_hash(tuned_copy) == before
    assert not (tmp_path / "rep").exists()


# ---------------------------------------------------------------------------------------------- data
def test_data_task_lists_tasks(capsys):
    from lmscope.data.tasks import TASKS

    rc, out, _ = run_cli(capsys, "data", "task")
    assert rc == 0
    for name in TASKS:
        assert name in out
    rc, out, _ = run_cli(capsys, "data", "task", "--json")
    assert set(strict_json(out)["tasks"]) == set(TASKS)


def test_data_task_writes_jsonl(capsys, tmp_path):
    f = tmp_path / "f.jsonl"
    rc, out, err = run_cli(capsys, "data", "task", "sentiment", "--n", "10", "--out", f)
    assert rc == 0, err
    lines = f.read_text().splitlines()
    assert len(lines) == 10
    rows = [json.loads(line) for line in lines]
    assert all(set(r) == {"text", "label"} for r in rows)
    rc, out, _ = run_cli(capsys, "data", "task", "recipes-lm", "--n", "3")
    assert rc == 0 and len(out.splitlines()) == 3
    assert_clean_error(*run_cli(capsys, "data", "task", "no-such-task", "--n", "3"))


# --------------------------------------------------------------------------------------------- cache
def test_cache_info_and_clear(capsys, llama_pair):
    base, _ = llama_pair
    assert run_cli(capsys, "spectrum", base, "--layers", "0", "--quiet")[0] == 0
    rc, out, _ = run_cli(capsys, "cache", "--json")
    assert rc == 0
    doc = strict_json(out)
    assert doc["root"] == os.environ["LMSCOPE_CACHE"]
    assert doc["svd"]["files"] == 7
    rc, out, _ = run_cli(capsys, "cache", "clear", "--json")
    assert rc == 0 and strict_json(out)["cleared"] == ["svd"]
    assert strict_json(run_cli(capsys, "cache", "--json")[1])["svd"]["files"] == 0


def test_cache_lists_and_clears_the_lm_cache(capsys):
    from lmscope.lm import default_cache_path

    path = default_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 10)  # any file there counts; clearing goes through the LM cache's own clear
    doc = strict_json(run_cli(capsys, "cache", "--json")[1])
    assert doc["lm"] == {"files": 1, "bytes": 10}
    rc, out, _ = run_cli(capsys, "cache", "clear", "--what", "lm", "--json")
    assert rc == 0 and not path.exists()
    assert strict_json(run_cli(capsys, "cache", "--json")[1])["lm"]["files"] == 0


# ---------------------------------------------------------------------------------- finetune (tiny)
def test_finetune_lora_on_a_tiny_bert_then_intruders(capsys, bert_dir, tmp_path):
    ad = tmp_path / "adapter"
    rc, out, err = run_cli(capsys, "finetune", bert_dir, "--task", "sentiment", "--n", "64", "--method", "lora",
                           "--rank", "2", "--max-steps", "3", "--batch-size", "8", "--out", ad, "--json")
    assert rc == 0, err
    doc = strict_json(out)
    assert doc["task"] == "classification" and doc["metrics"]["steps"] == 3
    assert len(doc["losses"]) == 3 and all(math.isfinite(x) for x in doc["losses"])
    for key in ("general_before", "general_after"):
        assert doc["metrics"][key]["metric"] == "general_contrastive_loss"
    assert (ad / "adapter_config.json").is_file() and (ad / "lmscope.json").is_file()
    assert (ad / "adapter_model.safetensors").is_file()
    info = json.loads((ad / "lmscope.json").read_text())
    assert info["base"] == str(bert_dir) and info["config"]["rank"] == 2
    assert json.loads((ad / "adapter_config.json").read_text())["r"] == 2

    rc, out, err = run_cli(capsys, "intruders", bert_dir, ad, "--json")
    assert rc == 0, err
    doc = strict_json(out)
    assert doc["matrices"] == 12  # 2 layers x (q, k, v, o, fc_in, fc_out)
    assert doc["total_intruders"] >= 0
    assert all(r["delta_fro"] > 0 for r in doc["matrices_table"])  # all-linear LoRA touched every matrix

    # the adapter is also a model for the other commands
    rc, out, err = run_cli(capsys, "models", "show", ad, "--json")
    assert rc == 0, err
    assert strict_json(out)["kind"] == "peft"


def test_finetune_on_a_bert_without_pooler_gives_a_readable_adapter(capsys, bert_dir, tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    mlm = tmp_path / "mlm"
    mlm.mkdir()
    for f in bert_dir.iterdir():
        if f.name.startswith(("vocab", "tokenizer", "special_tokens")):
            shutil.copy2(f, mlm / f.name)
    cfg = BertConfig.from_pretrained(bert_dir)
    torch.manual_seed(0)
    BertForMaskedLM(cfg).save_pretrained(mlm)
    ad = tmp_path / "ad"
    rc, out, err = run_cli(capsys, "finetune", mlm, "--task", "sentiment", "--n", "32", "--rank", "2",
                           "--max-steps", "2", "--batch-size", "8", "--out", ad, "--quiet")
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "intruders", mlm, ad, "--json")
    assert rc == 0, err
    assert strict_json(out)["matrices"] == 12


def test_finetune_errors(capsys, bert_dir, tmp_path):
    out_dir = tmp_path / "ad"
    for extra in (["--task", "sentiment", "--rank", "0"], [], ["--task", "nope"],
                  ["--data", tmp_path / "missing.jsonl"], ["--task", "sentiment", "--max-steps", "0"]):
        rc, out, err = run_cli(capsys, "finetune", bert_dir, "--n", "16", "--out", out_dir, *extra)
        assert_clean_error(rc, out, err)
        assert not out_dir.exists()


def test_forgetting_on_the_tiny_bert(capsys, bert_dir):
    rc, out, err = run_cli(capsys, "forgetting", bert_dir, "--n", "8", "--json")
    assert rc == 0, err
    doc = strict_json(out)
    assert doc["metric"] == "general_contrastive_loss" and math.isfinite(doc["value"]) and doc["value"] > 0


@pytest.mark.parametrize("method", ["rslora", "full"])
def test_finetune_targets_and_methods(capsys, bert_dir, tmp_path, method):
    """--targets restricts LoRA to the named roles; rsLoRA records its scaling; full writes a whole model."""
    ad = tmp_path / method
    rc, out, err = run_cli(capsys, "finetune", bert_dir, "--task", "sentiment", "--n", "48", "--method", method,
                           "--rank", "4", "--targets", "q,fc_out", "--max-steps", "2", "--batch-size", "8",
                           "--out", ad, "--json")
    assert rc == 0, err
    from lmscope.models import open_model

    src = open_model(ad)
    if method == "rslora":
        cfg = json.loads((ad / "adapter_config.json").read_text())
        assert cfg["use_rslora"] is True and cfg["lora_alpha"] == 8
        roles = {src.base.ref(k).role for k in (r.key for r in src.base.matrices())
                 if any(src.base.ref(k).tensor == t for t in src.targeted())}
        assert roles == {"q", "fc_out"}
    else:
        assert src.kind == "hf" and (ad / "config.json").is_file()
        rc, out, err = run_cli(capsys, "intruders", bert_dir, ad, "--json")
        assert rc == 0, err
        assert strict_json(out)["matrices"] == 12


def test_finetune_unknown_target_role_is_a_clean_error(capsys, bert_dir, tmp_path):
    rc, out, err = run_cli(capsys, "finetune", bert_dir, "--task", "sentiment", "--n", "16", "--targets", "up",
                           "--out", tmp_path / "x")
    assert_clean_error(rc, out, err)


def test_checkup_writes_one_report_folder(capsys, bert_dir, tmp_path):
    rep = tmp_path / "rep"
    rc, out, err = run_cli(capsys, "checkup", bert_dir, "--out", rep, "--steps", "2", "--json")
    assert rc == 0, err
    assert strict_json(out)["report"].endswith("index.html")
    html = (rep / "index.html").read_text()
    assert "Weight spectrum" in html and "Intruder dimensions" in html
    for name in ("spectrum.csv", "intruders.csv", "summary.json", "spectrum_singular_values.png",
                 "intruders_by_eps.png", "intruders_by_eps.csv", "intruders_max_cos.png", "finetune_loss.png"):
        assert (rep / name).is_file(), name
    summary = json.loads((rep / "summary.json").read_text())
    # built in a temporary sibling, renamed when complete: nothing names the temporary folder
    assert ".tmp" not in html and ".tmp" not in (rep / "summary.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    assert summary["spectrum"]["matrices"] == 12
    assert summary["intruders"]["matrices"] == 12
    assert any("general_contrastive_loss" in k for k in summary["forgetting"])
    # the intruder section says what its count means; a heatmap only where there is something to show
    assert "An intruder is one of a tuned matrix&#x27;s top-10 left singular vectors" in html
    assert (rep / "intruders_heatmap.png").is_file() == (summary["intruders"]["total_intruders"] > 0)
    # every figure of the forgetting table is a number, the task metric included (no JSON inside JSON)
    task = {k: v for k, v in summary["forgetting"].items() if "fine-tuning task" in k}
    assert list(task) == ["task accuracy on the fine-tuning task (LoRA r=8)"]
    assert all(isinstance(v, (int, float)) for v in summary["forgetting"].values())
    assert "task accuracy on the fine-tuning task (LoRA r=8)</th><td>" in html and "{&quot;" not in html
    assert "LASER" in html and "no LM head" in html and "laser" not in summary  # a bare encoder: skipped
    assert "Tree projections" in html and summary["trees"]["sentences"] == 40
    assert 0.0 <= summary["trees"]["f1"] <= 1.0
