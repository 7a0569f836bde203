"""`lmscope pushdown train|eval|parse` end to end on tiny models: every suite, a user's tree file, the
plain baseline, resume and refusal, a smoke check of the parses, and bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import assert_clean_error

from lmscope.cli import main
from lmscope.data.trees import is_binary, leaves, parse_bracketed

TINY = ["--d-model", "32", "--d-ff", "64", "--heads", "2", "--n-train", "60", "--n-val", "12", "--n-gen", "12",
        "--n-test", "6", "--sample-size", "6", "--parse-sample", "4", "--lr", "3e-3", "--batch-size", "8"]
SUITES = ("question-formation", "tense-inflection", "dyck", "arith")


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per suite (12 steps, metrics at 6 and 12), trained on first use."""
    root = tmp_path_factory.mktemp("pushdown")
    made: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in made:
            run = root / task
            rc = main(["pushdown", "train", "--task", task, "--out", str(run), "--steps", "12", "--eval-every", "6",
                       "--quiet", *TINY])
            assert rc == 0
            made[task] = run
        return made[task]

    return get


TREEBANK = [
    "(S (NP (DT the) (NN dog)) (VP (VBZ barks)))",
    "((the cat) (sees (a dog)))",
    "((a dog) (sees (the cat)))",
    "((the dog) (chases (the cat)))",
    "(S (NP (DT a) (NN cat)) (VP (VBZ sleeps)))",
    "((the cat) sleeps)",
    "((a dog) (chases (a cat)))",
    "((the dog) (sees (a cat)))",
    "((a cat) barks)",
    "((the cat) (chases (the dog)))",
    "",
    "((a cat) (sees (the dog)))",
]


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.parametrize("cmd", [["pushdown"], ["pushdown", "train"], ["pushdown", "eval"], ["pushdown", "parse"]])
def test_help(capsys, cmd):
    with pytest.raises(SystemExit) as exc:
        main([*cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lmscope " + " ".join(cmd))
    if len(cmd) == 2:
        assert "--json" in out and "--quiet" in out and "--out" in out
        wanted = ("--pushdown-layers", "--depth-cap", "--trees") if cmd[1] == "train" else ("--beam",)
        assert all(w in out for w in wanted)


@pytest.mark.parametrize("task", SUITES)
def test_train_eval_parse_on_every_suite(capsys, runs, tmp_path, task):
    run = runs(task)
    rows = metrics(run)
    assert [r["step"] for r in rows] == [6, 12]
    last = rows[-1]
    assert last["val_loss"] > 0 and last["val_ppl"] > 1
    for key in ("id_acc", "gen_acc", "f1", "test_id_acc", "test_gen_acc"):
        assert last[key] is None or 0.0 <= last[key] <= 1.0, key
    assert "test_id_acc" not in rows[0]  # the held-out rows are scored at the final step only
    meta = json.loads((run / "run.json").read_text())["meta"]
    assert meta["task"] == task and meta["config"]["pushdown_layers"] == "all"
    if task == "dyck":
        assert meta["gen_split"] == "deep"

    rc, out, err = run_cli(capsys, "pushdown", "eval", run, "--beam", "2", "--limit", "3", "--json",
                           "--out", tmp_path / "ev")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["model"] == "pushdown" and doc["beam"] == 2 and doc["perplexity"] > 1
    assert "upper bound" in doc["perplexity_is"]
    assert set(doc["task_accuracy"]) == {"test-id", "test-gen"}
    assert 0 <= doc["parse_f1"] <= 1 and set(doc["baseline_f1"]) == {"left", "right", "balanced", "random"}
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["perplexity"] == doc["perplexity"]
    assert (tmp_path / "ev" / "index.html").is_file() and (tmp_path / "ev" / "parse-0.png").is_file()

    sentence = doc["parses"][0]["words"]
    rc, out, err = run_cli(capsys, "pushdown", "parse", run, sentence, "--beam", "3", "--json")
    assert rc == 0, err
    parsed = json.loads(out)
    tree = parse_bracketed(parsed["tree"], labeled=False)
    assert leaves(tree) == sentence.split() and is_binary(tree)
    assert parsed["log_prob"] <= parsed["log_likelihood"] <= 0


def test_a_tree_file_end_to_end(capsys, tmp_path):
    trees = tmp_path / "bank.txt"
    trees.write_text("\n".join(TREEBANK) + "\n")
    run = tmp_path / "run"
    rc, out, err = run_cli(capsys, "pushdown", "train", "--trees", trees, "--out", run, "--steps", "8",
                           "--eval-every", "4", "--quiet", *TINY)
    assert rc == 0, err
    assert "trained trees" in out
    last = metrics(run)[-1]
    assert last["val_ppl"] > 1 and 0 <= last["f1"] <= 1 and "id_acc" not in last
    rc, out, err = run_cli(capsys, "pushdown", "eval", run, "--beam", "2", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["task"] == "trees" and doc["lines"] == 1 and doc["task_accuracy"] == {}
    rc, out, err = run_cli(capsys, "pushdown", "parse", run, "the dog sees the cat", "--beam", "4")
    assert rc == 0, err
    tree = parse_bracketed(out.splitlines()[0], labeled=False)
    assert leaves(tree) == "the dog sees the cat".split() and is_binary(tree)
    trees.write_text("\n".join(TREEBANK[::-1]) + "\n")  # the held-out lines would no longer be known
    rc, out, err = run_cli(capsys, "pushdown", "eval", run)
    assert_clean_error(rc, out, err, "changed since")


def test_the_plain_baseline_has_exact_perplexity_and_no_parse(capsys, tmp_path):
    run = tmp_path / "plain"
    rc, out, err = run_cli(capsys, "pushdown", "train", "--task", "question-formation", "--pushdown-layers", "none",
                           "--out", run, "--steps", "6", "--eval-every", "6", "--quiet", *TINY)
    assert rc == 0, err
    assert "plain relative-position" in out
    assert "f1" not in metrics(run)[-1]
    docs = []
    for beam in ("1", "5"):
        rc, out, err = run_cli(capsys, "pushdown", "eval", run, "--beam", beam, "--limit", "3", "--json")
        assert rc == 0, err
        docs.append(json.loads(out))
    assert docs[0]["perplexity_is"] == "exact" and docs[0]["parse_f1"] is None
    assert docs[0]["perplexity"] == pytest.approx(docs[1]["perplexity"], rel=1e-9)  # no beam involved
    assert "no parse" in docs[0]["note"] and docs[0]["baseline_f1"]["left"] is not None
    rc, out, err = run_cli(capsys, "pushdown", "parse", run, "her bees sleep")
    assert_clean_error(rc, out, err, "has no attachments")


def test_resume_continues_and_another_configuration_is_refused(capsys, tmp_path):
    from lmscope.pushdown.run import PushdownRunConfig, pushdown_train

    args = ["--steps", "8", "--eval-every", "4", "--ckpt-every", "4", "--quiet", *TINY]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["pushdown", "train", "--task", "dyck", "--out", str(whole), *args]) == 0
    import argparse

    from lmscope.cli import build_parser

    parsed = build_parser().parse_args(["pushdown", "train", "--task", "dyck", "--out", str(parts), *args])
    assert isinstance(parsed, argparse.Namespace)
    config = PushdownRunConfig.from_args(parsed)
    pushdown_train("dyck", parts, config, quiet=True, stop_after=5)  # killed after step 5: resumes from step 4
    assert [r["step"] for r in metrics(parts)] == [4]
    rc, out, err = run_cli(capsys, "pushdown", "train", "--task", "dyck", "--out", parts, *args)
    assert rc == 0, err
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in metrics(parts)] == \
        [{k: v for k, v in r.items() if k not in drop} for r in metrics(whole)]

    before = hashes(parts)
    rc, out, err = run_cli(capsys, "pushdown", "train", "--task", "dyck", "--out", parts,
                           *args[:-len(TINY)], *TINY[:1], "48", *TINY[2:])
    assert_clean_error(rc, out, err, "d_model")
    rc, out, err = run_cli(capsys, "pushdown", "train", "--task", "arith", "--out", parts, *args)
    assert_clean_error(rc, out, err)
    assert hashes(parts) == before

    # more steps continue the run when the warmup in effect is the same (8 steps took the default, 0)
    rc, out, err = run_cli(capsys, "pushdown", "train", "--task", "dyck", "--out", parts, *args[:1], "12", *args[2:])
    assert_clean_error(rc, out, err, "steps")  # the default warmup of 12 steps would be 1
    longer = [*args[:1], "12", *args[2:], "--warmup", "0"]
    assert main(["pushdown", "train", "--task", "dyck", "--out", str(parts), *longer]) == 0
    assert main(["pushdown", "train", "--task", "dyck", "--out", str(tmp_path / "long"), *longer]) == 0
    def rows(run):  # the extended run also kept its step-8 held-out scores, from when 8 was the last step
        got = metrics(run)
        return [{k: v for k, v in r.items() if k not in drop and (i == len(got) - 1 or not k.startswith("test_"))}
                for i, r in enumerate(got)]

    assert rows(parts) == rows(tmp_path / "long") and [r["step"] for r in rows(parts)] == [4, 8, 12]


# ------------------------------------------------------------------------------------------ smoke check
def test_a_trained_model_parses_into_binary_trees_and_a_wider_beam_is_no_worse(tmp_path):
    from lmscope.data.suites import make_suite
    from lmscope.pushdown.beam import beam_search
    from lmscope.pushdown.evaluate import load_run, pushdown_parse, sentence_ids
    from lmscope.pushdown.run import pushdown_train

    run = tmp_path / "qf"
    pushdown_train("question-formation", run, quiet=True, steps=60, eval_every=0, n_train=200, n_val=10, n_gen=10,
                   n_test=0, sample_size=4, parse_sample=0, d_model=32, d_ff=64, heads=2, lr=3e-3)
    loaded = load_run(run)
    rows = [r for r in make_suite("question-formation", 0, 40, 0, seed=0) if r["split"] == "val"][:5]
    for r in rows:
        words = leaves(parse_bracketed(r["tree"], labeled=False))
        res = pushdown_parse(run, " ".join(words), beam=4)
        assert leaves(res.tree) == words and is_binary(res.tree)
        ids = sentence_ids(loaded.tokenizer, words)
        one, eight = beam_search(loaded.model, ids, 1, words), beam_search(loaded.model, ids, 8, words)
        # the same hypothesis scored in batches of another size differs by float32 rounding only
        assert eight.scores[0] >= one.scores[0] - 1e-4
        assert eight.log_likelihood >= one.log_likelihood - 1e-4


# ------------------------------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    w = tmp_path_factory.mktemp("bad")
    (w / "unbalanced.txt").write_text("((the dog) barks)\n((the cat) (sees (a dog))\n")
    (w / "stray.txt").write_text("((the dog) barks)\n(the cat))\n")
    (w / "leaves.jsonl").write_text('{"text": "her bees sleep . quest", "tree": "((her bees) sleep)"}\n'
                                    '{"text": "her bees sleep . quest", "tree": "((her cats) sleep)"}\n')
    return w


@pytest.mark.parametrize("argv, match", [
    (["train", "--task", "grammar", "--out", "{tmp}/o"], "unknown task 'grammar'"),
    (["train", "--out", "{tmp}/o"], "--task TASK or --trees FILE"),
    (["train", "--task", "dyck", "--trees", "{bad}/stray.txt", "--out", "{tmp}/o"], "--task TASK or --trees FILE"),
    (["train", "--trees", "{bad}/unbalanced.txt", "--out", "{tmp}/o"], "unbalanced.txt:2"),
    (["train", "--trees", "{bad}/stray.txt", "--out", "{tmp}/o"], "stray.txt:2"),
    (["train", "--trees", "{tmp}/none.txt", "--out", "{tmp}/o"], "no such tree file"),
    (["train", "--task", "dyck", "--pushdown-layers", "2", "--out", "{tmp}/o"], "layer 2 does not exist"),
    (["train", "--task", "dyck", "--pushdown-layers", "x", "--out", "{tmp}/o"], "--pushdown-layers"),
    (["train", "--task", "dyck", "--depth-cap", "1", "--out", "{tmp}/o"], "--depth-cap"),
    (["train", "--task", "dyck", "--out", "{bad}"], "refusing to replace"),
    (["train", "--trees", "{bad}/unbalanced.txt", "--out", "{bad}"], "refusing to overwrite the input"),
    (["eval", "{run}", "--beam", "0"], "--beam"),
    (["eval", "{run}", "--beam", "-3"], "--beam"),
    (["eval", "{run}", "--task", "grammar"], "unknown task 'grammar'"),
    (["eval", "{run}", "--task", "arith"], "trained on question-formation"),
    (["eval", "{run}", "--data", "{bad}/leaves.jsonl"], "leaves.jsonl:2"),
    (["eval", "{run}", "--out", "{run}/report"], "refusing to overwrite the input"),
    (["eval", "{bad}"], "not a pushdown run folder"),
    (["eval", "{tmp}/nope"], "no such run folder"),
    (["parse", "{run}", "her zebras sleep quietly", "--beam", "2"], "'zebras', 'quietly'"),
    (["parse", "{run}", "her bees sleep", "--beam", "0"], "--beam"),
    (["parse", "{run}", "   "], "the sentence is empty"),
    (["parse", "{run}", "her bees sleep", "--out", "{run}/picture"], "refusing to overwrite the input"),
])
def test_bad_input_is_one_error_line_and_nothing_written(capsys, runs, bad_files, tmp_path, argv, match):
    run = runs("question-formation")
    before, bad_before = hashes(run), hashes(bad_files)
    argv = [a.format(tmp=tmp_path, bad=bad_files, run=run) for a in argv]
    rc, out, err = run_cli(capsys, "pushdown", *argv)
    assert_clean_error(rc, out, err, match)
    assert hashes(run) == before and hashes(bad_files) == bad_before
    assert not (tmp_path / "o").exists() and not (run / "report").exists() and not (run / "picture").exists()


# ------------------------------------------------------------------------------------------ the API's parts
def test_eval_on_a_suite_file_scores_each_split(capsys, runs, tmp_path):
    run = runs("question-formation")
    assert main(["data", "make", "question-formation", "--n-train", "0", "--n-val", "4", "--n-gen", "4",
                 "--out", str(tmp_path / "suite"), "--quiet"]) == 0
    capsys.readouterr()
    for split in ("val", "gen"):
        rc, out, err = run_cli(capsys, "pushdown", "eval", run, "--data", tmp_path / "suite" / f"{split}.jsonl",
                               "--beam", "1", "--json")
        assert rc == 0, err
        doc = json.loads(out)
        assert list(doc["task_accuracy"]) == [split] and doc["lines"] == 4
        assert all(p["words"].split() == leaves(parse_bracketed(p["gold"], labeled=False)) for p in doc["parses"])


def test_batched_greedy_reading_equals_one_sentence_greedy_parsing(runs):
    """The batched reader of the evaluation picks the attachments beam.greedy_parse picks, sentence by
    sentence, and its next-token log-probs are the incremental model's."""
    import torch

    from lmscope.pushdown.beam import greedy_parse
    from lmscope.pushdown.evaluate import greedy_read, load_run, sentence_ids
    from lmscope.pushdown.tape import model_tape

    run = load_run(runs("question-formation"))
    sentences = [s.split() for s in ("her bees sleep", "our toads do visit my dog", "your yaks sleep",
                                     "some moles that don't run don't sleep")]
    reads = greedy_read(run.model, [sentence_ids(run.tokenizer, ws)[:-1] for ws in sentences])
    for ws, (lp, attach) in zip(sentences, reads, strict=True):
        ids = sentence_ids(run.tokenizer, ws)
        assert attach == greedy_parse(run.model, ids, ws)[0]
        # the log-probs read incrementally = the teacher-forced pass over the tape of those attachments
        tape = model_tape(attach, run.model.config.depth_cap)
        x = torch.tensor([ids])
        full = run.model(x, depth=torch.from_numpy(tape.depth)[None]).logits[0].log_softmax(-1)
        assert torch.allclose(lp, full[:-1], atol=1e-4)


def test_the_plain_models_eval_perplexity_is_its_exact_teacher_forced_one(tmp_path):
    """Two routes to the plain model's perplexity agree: beam search's LM log-likelihood line by line,
    and the padded teacher-forced batch (the tape plays no part without pushdown layers)."""
    import math

    from lmscope.pushdown.evaluate import (
        eval_rows_of_run,
        line_words,
        load_run,
        pushdown_eval,
        sentence_ids,
        teacher_forced_nll,
    )
    from lmscope.pushdown.run import pushdown_train

    run = tmp_path / "plain"
    pushdown_train("arith", run, quiet=True, steps=4, eval_every=0, n_train=40, n_val=6, n_gen=6, n_test=5,
                   pushdown_layers="none", d_model=16, d_ff=32, heads=2)
    res = pushdown_eval(run, beam=3, limit=5)
    assert res.exact and res.parse is None and res.model_kind == "plain"
    assert res.parses == [] and "no parse" in res.note
    loaded = load_run(run)

    lines = [line_words(r, "arith") for r in eval_rows_of_run(loaded, 5)]
    nll, n = teacher_forced_nll(loaded.model, [(sentence_ids(loaded.tokenizer, ws), None) for ws in lines])
    assert n == res.n_tokens == sum(len(ws) + 1 for ws in lines)
    assert res.perplexity == pytest.approx(math.exp(nll / n), rel=1e-6)


def test_run_settings_are_command_line_options_and_checked():
    from lmscope.errors import LmscopeError
    from lmscope.pushdown.run import PushdownRunConfig, parse_layers

    assert parse_layers(" 2,0,2 ") == "0,2" and parse_layers("ALL") == "all" and parse_layers([]) == "none"
    c = PushdownRunConfig(layers=3, pushdown_layers="2, 0", steps=7, lr=5e-4)
    assert c.pushdown_layers == "0,2" and c.layer_indices() == (0, 2)
    assert PushdownRunConfig().layer_indices() is None and PushdownRunConfig(pushdown_layers="none").layer_indices() == ()
    from lmscope.cli import build_parser

    parsed = build_parser().parse_args(["pushdown", "train", "--task", "dyck", "--out", "x", *c.to_argv()])
    assert PushdownRunConfig.from_args(parsed) == c
    for bad, match in [({"pushdown_layers": "1,x"}, "pushdown layers"), ({"layers": 2, "pushdown_layers": "2"},
                       "layer 2 does not exist"), ({"depth_cap": 1}, "depth_cap"), ({"width": 3}, "unknown")]:
        with pytest.raises(LmscopeError, match=match):
            PushdownRunConfig.make(**bad)
