"""Bad command lines as a hostile but realistic user types them, over every command group.

Each row must end as a user error: exit status 2, one ``lmscope: error:`` line (argparse's usage
message, whose last line is the error, only for an unknown choice), no traceback, no output folder created and every input file
byte-identical. The rows share one small set of inputs (a tiny causal LM with its LM head, an encoder
without one, a LoRA adapter and one whose config disagrees with its weights, task / text / tree /
transcript files, some with invalid UTF-8) and are all refused before any model is loaded or trained.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import ERROR_PREFIX, build_tiny_model, save_tiny_model

from lmscope.cli import main

BAD_UTF8 = b"\xff\xfe not text \xc3\x28"


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """The inputs every row may point at (read-only: the rows check that they stay byte-identical)."""
    from peft import LoraConfig, get_peft_model

    w = tmp_path_factory.mktemp("hostile")
    save_tiny_model(build_tiny_model("llama"), w / "llama")
    save_tiny_model(build_tiny_model("bert-encoder"), w / "enc")
    peft_model = get_peft_model(build_tiny_model("llama"), LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                                                      target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(w / "adapter")
    cfg_path = w / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(w / "llama")
    cfg_path.write_text(json.dumps(cfg))
    shutil.copytree(w / "adapter", w / "badadapter")
    (w / "badadapter" / "adapter_config.json").write_text(json.dumps({**cfg, "r": 16}))
    shutil.copytree(w / "adapter", w / "clsadapter")  # a classifier's adapter: its head is a label layer
    (w / "clsadapter" / "lmscope.json").write_text(json.dumps({"task": "classification", "labels": ["a", "b"],
                                                               "base": str(w / "llama")}))
    (w / "task.jsonl").write_text('{"prompt": "The sky is", "answer": " blue"}\n'
                                  '{"prompt": "Grass is", "answer": " green"}\n')
    (w / "ft.jsonl").write_text('{"text": "a b c"}\n{"text": "d e f"}\n')
    (w / "utf8.jsonl").write_bytes(b'{"prompt": "ok", "answer": " yes"}\n{"prompt": "' + BAD_UTF8 + b'"}\n')
    (w / "utf8.txt").write_bytes(b"the cat sat\n" + BAD_UTF8 + b"\n")
    (w / "utf8.trees").write_bytes(b"(S (NP the cat) (VP sat))\n(S " + BAD_UTF8 + b")\n")
    (w / "utf8.json").write_bytes(b'{"name": "' + BAD_UTF8 + b'"}\n')
    (w / "transcript.jsonl").write_bytes(b'{"type": "header", "format": 1}\n' + BAD_UTF8 + b"\n")
    (w / "sentences.txt").write_text("the cat sat\nthe dog ran\n")
    (w / "empty.jsonl").write_text("")
    (w / "malformed.jsonl").write_text('{"prompt": "a", "answer": "b"}\n{not json\n')
    (w / "folder").mkdir()
    (w / "folder" / "x.jsonl").write_text('{"prompt": "a", "answer": "b"}\n')
    return w


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# Numeric options and the bad values each must refuse. A prefix is a command line that parses apart
# from the option under test.
NUMERIC = [
    ("checkup {llama} --out {out}", "--steps", ["0", "-5", "x"]),
    ("checkup {llama} --out {out}", "--rank", ["0", "1.5"]),
    ("checkup {llama} --out {out}", "--seed", ["-1", "nan"]),
    ("intruders {llama} {llama} --out {out}", "--k", ["0", "-2", "x"]),
    ("intruders {llama} {llama} --out {out}", "--eps", ["nan", "0", "1.5", "inf"]),
    ("intruders {llama} {llama} --out {out}", "--scale", ["-0.5", "nan", "2"]),
    ("finetune {llama} --data {ft} --out {out}", "--lr", ["nan", "-1", "0", "inf", "abc"]),
    ("finetune {llama} --data {ft} --out {out}", "--alpha", ["nan", "-8", "0"]),
    ("finetune {llama} --data {ft} --out {out}", "--rank", ["0", "-4"]),
    ("finetune {llama} --data {ft} --out {out}", "--epochs", ["0", "-1", "nan"]),
    ("finetune {llama} --data {ft} --out {out}", "--max-steps", ["0", "-3"]),
    ("finetune {llama} --data {ft} --out {out}", "--batch-size", ["0", "-1"]),
    ("finetune {llama} --data {ft} --out {out}", "--max-length", ["0", "1", "-7"]),
    ("finetune {llama} --data {ft} --out {out}", "--test-fraction", ["0", "1", "1.5", "nan"]),
    ("finetune {llama} --data {ft} --out {out}", "--seed", ["-1", "99999999999"]),
    ("finetune {llama} --data {ft} --out {out}", "--ckpt-every", ["0"]),
    ("finetune {llama} --task sentiment --out {out}", "--n", ["0", "-10"]),
    ("forgetting {llama}", "--n", ["0", "-1"]),
    ("laser apply {llama} --role q --keep 0.5 --out {out}", "--layer", ["-1", "x"]),
    ("laser apply {llama} --layer 0 --role q --out {out}", "--keep", ["0", "1.5", "nan", "-0.2"]),
    ("laser apply {llama} --layer 0 --role q --out {out}", "--rate", ["11", "10", "-1", "nan"]),
    ("laser search {llama} --task {task} --out {out}", "--val-fraction", ["0", "1", "nan"]),
    ("laser search {llama} --task {task} --out {out}", "--limit", ["0", "-5"]),
    ("laser search {llama} --task {task} --out {out}", "--batch-size", ["0"]),
    ("laser search {llama} --task {task} --out {out}", "--top-k", ["0", "-1"]),
    ("laser search {llama} --task {task} --out {out}", "--seed", ["-3"]),
    ("eval {llama} --task {task} --out {out}", "--top-k", ["0", "-5"]),
    ("eval {llama} --task {task} --out {out}", "--batch-size", ["0", "-1"]),
    ("eval {llama} --task {task} --out {out}", "--limit", ["0"]),
    ("eval {llama} --task {task} --out {out}", "--seed", ["-1"]),
    ("eval game --capability reverse --model truth --evaluator static --out {out}", "--games", ["0", "-1"]),
    ("eval game --capability reverse --model truth --evaluator static --out {out}", "--samples", ["0"]),
    ("eval game --capability reverse --model truth --evaluator static --out {out}", "--rounds", ["0"]),
    ("eval game --capability reverse --model truth --evaluator static --out {out}", "--queries", ["-2"]),
    ("eval game --capability reverse --model truth --evaluator static --out {out}", "--seed", ["-1"]),
    ("data task sentiment --out {out}/t.jsonl", "--n", ["0", "-1", "1e3", "1000000000000"]),
    ("data task sentiment --out {out}/t.jsonl", "--seed", ["-1"]),
    ("data make dyck --out {out}", "--n-train", ["-1", "99999999999"]),
    ("data make dyck --out {out}", "--n-val", ["-1"]),
    ("data make dyck --out {out}", "--n-gen", ["-5", "x"]),
    ("data make dyck --out {out}", "--k", ["0"]),
    ("data make dyck --out {out}", "--max-depth", ["-1"]),
    ("trees {llama} --data {sentences} --out {out}", "--limit", ["0", "-1"]),
    ("trees {llama} --data {sentences} --out {out}", "--batch-size", ["0"]),
    ("trees {llama} --data {sentences} --out {out}", "--sentence", ["-1"]),
    ("trees {llama} --data {sentences} --out {out}", "--threshold", ["-1"]),
    ("trees {llama} --data {sentences} --out {out}", "--seed", ["-1"]),
    ("grok train --task dyck --out {out}", "--lr", ["nan", "-1", "0"]),
    ("grok train --task dyck --out {out}", "--tree-sample", ["-1"]),
    ("grok train --task dyck --out {out}", "--sample-size", ["0"]),
    ("grok train --task dyck --out {out}", "--steps", ["0", "x"]),
    ("grok train --task dyck --out {out}", "--layers", ["0"]),
    ("grok train --task dyck --out {out}", "--seed", ["-1"]),
    ("grok train --task dyck --out {out}", "--batch-size", ["0"]),
    ("grok sweep --task dyck --layers 2 --out {out}", "--jobs", ["0", "-1"]),
    ("grok sweep --task dyck --layers 2 --out {out}", "--threads", ["0"]),
    ("grok sweep --task dyck --layers 2 --out {out}", "--lr", ["inf"]),
    ("pushdown train --task dyck --out {out}", "--steps", ["0", "x"]),
    ("pushdown train --task dyck --out {out}", "--depth-cap", ["1", "-1"]),
    ("pushdown train --task dyck --out {out}", "--lr", ["nan", "0"]),
    ("pushdown train --task dyck --out {out}", "--parse-sample", ["-1"]),
    ("pushdown eval {folder} --out {out}", "--beam", ["0", "-2"]),
    ("pushdown parse {folder} 'the cat'", "--beam", ["0"]),
    ("lm generate hi --lm local:{llama} --no-cache", "--n", ["0", "100000000"]),
    ("lm generate hi --lm local:{llama} --no-cache", "--max-tokens", ["0", "-1", "10000000000"]),
    ("lm generate hi --lm local:{llama} --no-cache", "--temperature", ["-1", "nan"]),
    ("lm generate hi --lm local:{llama} --no-cache", "--top-p", ["0", "1.5", "nan"]),
    ("lm generate hi --lm local:{llama} --no-cache", "--seed", ["-1"]),
    ("lm generate hi --lm http://127.0.0.1:9/v1 --no-cache", "--lm-timeout", ["0", "-1", "nan"]),
    ("lm generate hi --lm http://127.0.0.1:9/v1 --no-cache", "--lm-concurrency", ["0"]),
    ("lm cache prune", "--older-than", ["-1", "nan"]),
    ("priors run labels --no-lm --out {out}", "--seed", ["-1", "x"]),
    ("ada tasks --domain minecraft --out {out}", "--n-train", ["0", "x"]),
    ("ada tasks --domain household --out {out}", "--seed", ["-1"]),
    ("ada plan --domain minecraft --task mc-train-000", "--time-limit", ["0", "nan"]),
    ("skills demos --level GoToLocal --out {out}", "--n", ["0", "x", "1000001"]),
    ("skills train {folder} --out {out}", "--skills", ["0", "-1"]),
    ("skills train {folder} --out {out}", "--tau", ["0", "nan"]),
    ("skills transfer {folder} --level GoToLocal --out {out}", "--episodes", ["0"]),
    ("vision draw --lm local:smollm2-135m --out {out}", "--samples", ["0", "x", "1001"]),
    ("vision draw --lm local:smollm2-135m --out {out}", "--temperature", ["-1", "nan"]),
    ("vision run {sentences} --language python --out {out}", "--timeout", ["0", "inf"]),
    ("vision correct {folder} --out {out}", "--rounds", ["0", "21"]),
    ("vision recognize {folder} --out {out}", "--k", ["1"]),
]

# Other causes: bad lists, bad files (invalid UTF-8, missing, folders, empty, malformed), wrong model
# kinds, bounded work, malformed URLs and addresses. (command line, text the error line must contain)
OTHER = [
    # bad lists
    ("models show {llama} --layers abc", "--layers"),
    ("models show {llama} --layers 5-2", "--layers"),
    ("models show {llama} --roles ,", "--roles"),
    ("spectrum {llama} --layers -3 --out {out}", "--layers"),
    ("spectrum {llama} --layers 2x --out {out}", "--layers"),
    ("intruders {llama} {llama} --layers , --out {out}", "--layers"),
    ("laser search {llama} --task {task} --keeps 0.5,nan --out {out}", "--keeps"),
    ("laser search {llama} --task {task} --layers 9-3 --out {out}", "--layers"),
    ("trees {llama} --data {sentences} --layer 1,-2 --out {out}", "--layer"),
    ("grok sweep --task dyck --layers 4-2 --out {out}", "--layers"),
    # missing files and folders given for files
    ("eval {llama} --task {missing}.jsonl --out {out}", "no such task file"),
    ("eval {llama} --task {folder} --out {out}", "is a folder"),
    ("laser search {llama} --task {folder} --out {out}", "is a folder"),
    ("finetune {llama} --data {folder} --out {out}", "is a folder"),
    ("finetune {llama} --data {missing} --out {out}", "no such file"),
    ("trees {llama} --data {folder} --out {out}", "is a folder"),
    ("trees {llama} --data {missing} --out {out}", "no such file"),
    ("lm generate --file {folder} --lm local:{llama} --no-cache", "is a folder"),
    ("lm generate --file {missing}.txt --lm local:{llama} --no-cache", "no such file"),
    ("lm score --file {folder} --lm local:{llama} --no-cache", "is a folder"),
    ("priors query {folder} --out {out}", "is a folder"),
    ("priors query {missing}.json --out {out}", "no such file"),
    ("eval game --replay {folder} --out {out}", "is a folder"),
    ("eval game --replay {missing} --out {out}", "no such transcript"),
    ("spectrum {missing} --out {out}", "no such model"),
    ("intruders {llama} {missing} --out {out}", "no such model"),
    ("models show {missing}", "no such model"),
    ("grok plot {missing} --out {out}", ""),
    # invalid UTF-8, named by line
    ("eval {llama} --task {utf8jsonl} --out {out}", ":2: not valid UTF-8"),
    ("laser search {llama} --task {utf8jsonl} --out {out}", ":2: not valid UTF-8"),
    ("finetune {llama} --data {utf8jsonl} --out {out}", ":2: not valid UTF-8"),
    ("trees {llama} --data {utf8txt} --out {out}", ":2: not valid UTF-8"),
    ("trees {llama} --data {utf8trees} --format trees --out {out}", ":2: not valid UTF-8"),
    ("trees {llama} --data {utf8jsonl} --format jsonl --out {out}", ":2: not valid UTF-8"),
    ("lm generate --file {utf8jsonl} --lm local:{llama} --no-cache", ":2: not valid UTF-8"),
    ("lm generate --file {utf8txt} --lm local:{llama} --no-cache", ":2: not valid UTF-8"),
    ("lm score --file {utf8jsonl} --lm local:{llama} --no-cache", ":2: not valid UTF-8"),
    ("priors query {utf8json} --out {out}", ":1: not valid UTF-8"),
    ("eval game --replay {transcript} --out {out}", ":2: not valid UTF-8"),
    # empty and malformed files
    ("eval {llama} --task {empty} --out {out}", "no examples"),
    ("eval {llama} --task {malformed} --out {out}", ":2: malformed JSON"),
    ("finetune {llama} --data {empty} --out {out}", "no examples"),
    ("lm score --file {malformed} --lm local:{llama} --no-cache", ":2: malformed JSON"),
    # models that cannot do what the command needs
    ("eval {enc} --task {task} --out {out}", "no language-model head"),
    ("laser search {enc} --task {task} --out {out}", "no language-model head"),
    ("lm score hi --continuation there --lm local:{enc} --no-cache", "no language-model head"),
    ("lm generate hi --lm local:{enc} --no-cache", "no language-model head"),
    ("lm generate hi --lm local:{adapter} --no-cache --max-tokens 65", "context length"),
    ("eval {clsadapter} --task {task} --out {out}", "no language-model head"),
    ("laser search {clsadapter} --task {task} --out {out}", "no language-model head"),
    ("lm generate hi --lm local:{clsadapter} --no-cache", "no language-model head"),
    ("eval {badadapter} --task {task} --out {out}", "disagree with adapter_config.json"),
    ("checkup {badadapter} --out {out}", "disagree with adapter_config.json"),
    ("checkup {missing} --out {out}", "no such model"),
    ("priors query {malformed} --out {out}", "malformed JSON"),
    ("priors query {utf8jsonl} --out {out}", ":2: not valid UTF-8"),
    ("spectrum {badadapter} --out {out}", "disagree with adapter_config.json"),
    ("models show {badadapter}", "disagree with adapter_config.json"),
    ("intruders {llama} {badadapter} --out {out}", "disagree with adapter_config.json"),
    # bounded work
    ("eval {llama} --task {task} --top-k 1000000000 --out {out}", "<= 100"),
    ("eval {llama} --task {task} --top-k 101 --out {out}", "vocabulary"),
    ("laser search {llama} --task {task} --top-k 5000 --out {out}", "vocabulary"),
    ("lm generate hi --lm local:{llama} --no-cache --max-tokens 65", "context length"),
    # malformed URLs and addresses
    ("lm generate hi --lm http://[::1 --no-cache", "bad server URL"),
    ("lm generate hi --lm http://:99/v1 --no-cache", "bad server URL"),
    ("lm generate hi --lm http://host:99999/v1 --no-cache", "port"),
    ("lm generate hi --lm 'http://a b/v1' --no-cache", "bad server URL"),
    ("lm score hi --continuation x --lm ftp://x --no-cache", "unknown LM spec"),
    ("grok sweep --task dyck --layers 2 --ray 127.0.0.1:1 --out {out}", "no Ray cluster"),
    ("grok sweep --task dyck --layers 2 --ray 'ray://[::1' --out {out}", "bad Ray address"),
    ("grok sweep --task dyck --layers 2 --ray host:notaport --out {out}", "bad Ray address"),
    # unknown names
    ("eval {llama} --task nonsense_set --out {out}", "no such task file"),
    ("data task nonsense --out {out}/t.jsonl", ""),
    ("data make nonsense --out {out}", ""),
    ("priors run nonsense --no-lm --out {out}", ""),
    ("eval game --capability nonsense --model truth --evaluator static --out {out}", ""),
    ("eval profile --capability reverse --model truth --evaluator static --values 8,,-1 --out {out}", "--values"),
    ("cache clear --what nonsense", ""),
    ("grok train --task nonsense --out {out}", ""),
    ("pushdown train --task nonsense --out {out}", "unknown task 'nonsense'"),
    ("pushdown train --trees {utf8trees} --out {out}", ":2: not valid UTF-8"),
    ("pushdown train --trees {sentences} --out {out}", "sentences.txt:1:"),
    ("pushdown train --trees {missing} --out {out}", "no such tree file"),
    ("pushdown train --task dyck --pushdown-layers 0,x --out {out}", "--pushdown-layers"),
    ("pushdown train --task dyck --layers 2 --pushdown-layers 5 --out {out}", "layer 5 does not exist"),
    ("pushdown train --task dyck --dyck-train-depth 10 --out {out}", "dyck_train_depth"),
    ("pushdown eval {folder} --out {out}", "not a pushdown run folder"),
    ("pushdown eval {missing} --data {utf8jsonl} --out {out}", ":2: not valid UTF-8"),
    ("pushdown parse {missing} 'the cat'", "no such run folder"),
    ("ada tasks --domain chess --out {out}", "unknown world 'chess'"),
    ("ada tasks --domain minecraft --out {folder}", "--out"),
    ("ada plan --domain minecraft --task mc-train-999", "unknown task 'mc-train-999'"),
    ("skills demos --level GoToMars --n 2 --out {out}", "GoToMars"),
    ("skills segment {folder} --method fixed --out {out}", "manifest.json"),
    ("skills segment {missing} --method fixed --out {out}", "missing"),
    ("skills segment {folder} --method psychic --out {out}", "psychic"),
    ("skills segment {task} --method none --out {out}", "not a folder"),
    ("skills train {folder} --out {out}", "manifest.json"),
    ("skills train {folder} --warm 2 --out {out}", "warm"),
    ("skills transfer {folder} --level GoToLocal --out {out}", "run.json"),
    ("skills transfer {missing} --level GoToLocal --out {out}", "no such run folder"),
    ("vision concepts --tier landscapes", "landscapes"),
    ("vision draw --tier landscapes --out {out}", "unknown tier landscapes"),
    ("vision draw --language fortran --out {out}", "unknown language fortran"),
    ("vision score {folder} --out {out}", "not a drawing folder"),
    ("vision score {missing} --out {out}", "no such drawing folder"),
    ("vision score {task} --out {out}", "not a folder"),
    ("vision recognize {folder} --out {out}", "not a drawing folder"),
    ("vision correct {folder} --feedback psychic --out {out}", "psychic"),
    ("vision ssl {folder} --out {out}", "not a drawing folder"),
    ("vision run {missing} --out {out}", "no such code file"),
    ("vision run {sentences} --out {out}", "cannot tell the language"),
    ("vision run {sentences} --language python --out {sentences}", "refusing to overwrite the input"),
]


def _rows():
    rows = []
    for prefix, option, values in NUMERIC:
        for value in values:
            rows.append(pytest.param(f"{prefix} {option} {value}", option, True,
                                     id=f"{prefix.split()[0]}{option}={value}"))
    for i, (line, match) in enumerate(OTHER):
        words = [w for w in line.split() if not w.startswith("{")]
        rows.append(pytest.param(line, match, False, id=f"{i:02d}-" + "-".join(words[:2])))
    return rows


ROWS = _rows()


def test_the_table_covers_every_command_group_and_has_150_rows():
    import shlex

    from lmscope.cli import COMMANDS

    assert len(ROWS) >= 150
    used = {shlex.split(p.values[0])[0] for p in ROWS}
    assert {name for name, _ in COMMANDS} <= used, {name for name, _ in COMMANDS} - used


@pytest.mark.parametrize("line, match, numeric", ROWS)
def test_a_bad_command_line_is_one_clean_error(world, tmp_path, monkeypatch, capsys, line, match, numeric):
    import shlex

    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    names = {"llama": world / "llama", "enc": world / "enc", "adapter": world / "adapter",
             "badadapter": world / "badadapter", "task": world / "task.jsonl", "ft": world / "ft.jsonl",
             "utf8jsonl": world / "utf8.jsonl", "utf8txt": world / "utf8.txt", "utf8trees": world / "utf8.trees",
             "utf8json": world / "utf8.json", "transcript": world / "transcript.jsonl",
             "sentences": world / "sentences.txt", "empty": world / "empty.jsonl",
             "malformed": world / "malformed.jsonl", "folder": world / "folder", "missing": world / "missing",
             "clsadapter": world / "clsadapter", "out": out}
    argv = [w.format(**names) for w in shlex.split(line)]
    before = _hashes(world)
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's usage error (an unknown choice); never a numeric option's value
        rc = e.code
        _, err = capsys.readouterr()
        assert rc == 2, err
        lines = err.strip().splitlines()
        assert lines[0].startswith("usage: lmscope"), err
        assert ": error: " in lines[-1], err
        assert match in lines[-1], lines[-1]
        assert "must be" not in lines[-1], "a bad number is one lmscope: error: line, not a usage message"
    else:
        stdout, err = capsys.readouterr()
        assert rc == 2, (rc, stdout, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), err
        assert match in lines[0], lines[0]
        if numeric:  # names the option and the allowed range
            assert f"argument {match}: must be" in lines[0], lines[0]
        assert "Traceback" not in stdout
    assert "Traceback" not in err
    assert not out.exists(), f"{out} was created"
    assert _hashes(world) == before


# ------------------------------------------------------------------------------------------------
# The Python API refuses the same values (LmscopeError naming the setting), so scripts get the same
# protection as the command line.
# ------------------------------------------------------------------------------------------------
def _finetune(**kw):
    from lmscope.train.finetune import FinetuneConfig

    FinetuneConfig(**kw).validate()


def _grok(**kw):
    from lmscope.grokking.run import GrokConfig

    GrokConfig(**kw)


def _search(**kw):
    from lmscope.spectral.laser_search import SearchConfig

    SearchConfig(**kw)


def _generate(**kw):
    from lmscope.lm.base import check_generate_args

    args = {"max_tokens": 4, "temperature": 0.0, "top_p": 1.0, "n": 1, "stop": None, "seed": 0, **kw}
    check_generate_args(["hi"], **args)


def _reduction(layer=0, keep=0.5):
    from lmscope.spectral.laser import Reduction

    Reduction(layer, "q", keep)


def _rate(rate):
    from lmscope.spectral.laser import keep_from_rate

    keep_from_rate(rate)


NAN, INF = float("nan"), float("inf")
API_ROWS = [
    (_finetune, {"lr": NAN}, "lr"), (_finetune, {"lr": -1.0}, "lr"), (_finetune, {"alpha": NAN}, "alpha"),
    (_finetune, {"alpha": 0}, "alpha"), (_finetune, {"epochs": NAN}, "epochs"), (_finetune, {"rank": 0}, "rank"),
    (_finetune, {"max_length": 0}, "max-length"), (_finetune, {"seed": -1}, "seed"),
    (_finetune, {"test_fraction": NAN}, "test fraction"), (_finetune, {"warmup": INF}, "warmup"),
    (_finetune, {"batch_size": 2.5}, "batch size"),
    (_grok, {"lr": NAN}, "lr"), (_grok, {"lr": 0.0}, "lr"), (_grok, {"tree_sample": -1}, "tree_sample"),
    (_grok, {"sample_size": 0}, "sample_size"), (_grok, {"dropout": 1.0}, "dropout"), (_grok, {"seed": -1}, "seed"),
    (_grok, {"max_len": 0}, "max_len"),
    (_search, {"top_k": 0}, "top_k"), (_search, {"val_fraction": NAN}, "val_fraction"),
    (_search, {"keeps": (0.5, NAN)}, "keep"), (_search, {"limit": 0}, "limit"), (_search, {"layers": [-1]}, "layer"),
    (_generate, {"n": 0}, "n must"), (_generate, {"n": 100_000_000}, "n must"), (_generate, {"top_p": NAN}, "top_p"),
    (_generate, {"temperature": NAN}, "temperature"), (_generate, {"max_tokens": 10**9}, "max_tokens"),
    (_reduction, {"keep": NAN}, "keep"), (_reduction, {"keep": 0.0}, "keep"), (_reduction, {"layer": -2}, "layer"),
    (_rate, {"rate": 11}, "rate"), (_rate, {"rate": NAN}, "rate"),
]


@pytest.mark.parametrize("fn, kwargs, name", API_ROWS,
                         ids=[f"{f.__name__.strip('_')}-{next(iter(k))}={next(iter(k.values()))}" for f, k, _ in API_ROWS])
def test_the_api_refuses_the_same_values(fn, kwargs, name):
    from lmscope.errors import LmscopeError

    with pytest.raises(LmscopeError, match=name) as exc:
        fn(**kwargs)
    assert "\n" not in str(exc.value)


def test_good_values_pass_the_same_checks():
    from lmscope.errors import check_int, check_number

    _finetune(lr=1e-4, alpha=16.0, epochs=0.5, max_length=2, test_fraction=0.1)
    _grok(lr=3e-4, tree_sample=0, sample_size=None)
    _search(top_k=1, val_fraction=0.5, keeps=(1.0, 0.01))
    _generate(n=128, top_p=1.0, temperature=0.7)
    _reduction(layer=0, keep=1.0)
    _rate(9.9)
    assert check_int("x", 3, 1, 3) == 3 and check_number("x", "0.25", above=0, below=1) == 0.25


# ------------------------------------------------------------------------------------------------
# Every reader of text a user gives: invalid UTF-8 is an error naming the file and the line; a folder
# says it is a folder.
# ------------------------------------------------------------------------------------------------
def _readers():
    from lmscope._io import read_jsonl_numbered
    from lmscope.data.evalsets import load_eval_task
    from lmscope.data.suites import load_suite_file
    from lmscope.data.tasks import load_task_file
    from lmscope.data.trees import read_tree_file
    from lmscope.evaluation.game import read_transcript
    from lmscope.priors.queries import PriorTable, read_queries
    from lmscope.trees.inputs import read_sentence_file

    return {"jsonl": (read_jsonl_numbered, b'{"a": 1}\n{"a": "\xff"}\n', ".jsonl"),
            "eval task": (load_eval_task, b'{"prompt": "a", "answer": "b"}\n{"prompt": "\xc3("}\n', ".jsonl"),
            "suite": (load_suite_file, b'{"text": "a b"}\n{"text": "\xfe"}\n', ".jsonl"),
            "fine-tuning data": (load_task_file, b'{"text": "a b"}\n{"text": "\xfe"}\n', ".jsonl"),
            "trees": (read_tree_file, b"(S a b)\n(S \xff)\n", ".txt"),
            "sentences": (read_sentence_file, b"a b\n\xe2\x82\n", ".txt"),
            "transcript": (read_transcript, b'{"type": "header"}\n\xff\n', ".jsonl"),
            "queries": (read_queries, b'{"name": "q",\n "template": "\xff"}', ".json"),
            "prior table": (PriorTable.load, b"x,p\n\xff,1\n", ".csv")}


@pytest.mark.parametrize("reader", ["jsonl", "eval task", "suite", "fine-tuning data", "trees", "sentences",
                                    "transcript", "queries", "prior table"])
def test_every_text_reader_names_the_line_of_invalid_utf8_and_refuses_a_folder(tmp_path, reader):
    from lmscope.errors import LmscopeError

    fn, data, suffix = _readers()[reader]
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    with pytest.raises(LmscopeError, match=r":2: not valid UTF-8"):
        fn(path)
    assert path.read_bytes() == data
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    with pytest.raises(LmscopeError, match="is a folder"):
        fn(folder)


def test_a_bad_number_in_a_real_process_is_one_line(tmp_path):
    """As a shell user sees it: stderr is exactly one line, exit status 2, nothing written."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "LMSCOPE_CACHE": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, "-m", "lmscope", "grok", "train", "--task", "dyck", "--lr", "nan",
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == "lmscope: error: argument --lr: must be a finite number, got 'nan'\n"
    assert not (tmp_path / "run").exists()
