"""Synthetic suites with gold trees: tree utilities, the split properties each suite promises, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_error

from lmscope.cli import main
from lmscope.data import arith as A
from lmscope.data import dyck as D
from lmscope.data import grammars as G
from lmscope.data.suites import SUITES, load_suite_file, make_suite, suite_info, tree_words
from lmscope.data.trees import (
    balanced,
    binarize,
    is_binary,
    leaves,
    left_branching,
    parse_bracketed,
    random_tree,
    read_tree_file,
    right_branching,
    spans,
    to_bracketed,
)
from lmscope.errors import LmscopeError
from lmscope.outputs import MARKER


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------------------------------------ trees
def test_parse_labeled_and_unlabeled():
    want = (("the", "dog"), "barks")
    assert parse_bracketed("(S (NP (DT the) (NN dog)) (VP (VBZ barks)))") == want
    assert parse_bracketed("((the dog) barks)") == want
    # the treebank wrapper, empty elements and unary chains
    assert parse_bracketed("( (S (NP-SBJ (-NONE- *T*-1)) (NP (DT the) (NN dog)) (VP (VBZ barks)) (. .)) )") \
        == (("the", "dog"), "barks", ".")
    assert parse_bracketed("((dog))") == "dog"
    assert parse_bracketed("dog") == "dog"
    assert parse_bracketed("(the big dog)") == ("the", "big", "dog")


def test_parse_ambiguous_strings_follow_the_documented_rule():
    # every bracket opens with a word but no label has a capital letter: unlabeled
    assert parse_bracketed("(a (b c))") == ("a", ("b", "c"))
    assert parse_bracketed("(a (b c))", labeled=True) == "c"
    # brackets as words (Dyck, arithmetic): never labeled
    assert parse_bracketed("(-LRB- ((3 (+ 4)) -RRB-))") == ("(", (("3", ("+", "4")), ")"))
    assert parse_bracketed("(NN dog)", labeled=False) == ("NN", "dog")
    with pytest.raises(LmscopeError, match="not a labeled"):
        parse_bracketed("((the dog) barks)", labeled=True)


@pytest.mark.parametrize("text", ["((the dog) barks)", "(a (b (c d)))", "(((a b) c) d)", "(x y z)", "word",
                                  "(-LRB- (-LRB- -RRB-) -RRB-)", "((can't stop) (won't stop))"])
def test_bracketed_round_trip(text):
    assert to_bracketed(parse_bracketed(text)) == text


def test_tree_round_trip_random_trees():
    rng = np.random.default_rng(0)
    for n in range(1, 30):
        words = [f"w{i}" for i in range(n - 1)] + ["("]
        t = random_tree(words, rng)
        assert parse_bracketed(to_bracketed(t)) == t
        assert leaves(t) == words and is_binary(t)


@pytest.mark.parametrize("text, msg", [
    ("((the dog) barks", "unbalanced parentheses: 1 '(' not closed (the first at character 1)"),
    ("(the dog))", "unbalanced parentheses: ')' at character 10 closes nothing"),
    ("(the () dog)", "empty node '()' at character 6"),
    ("(the dog) barks", "trailing text after the tree at character 11: 'barks'"),
    ("   ", "empty tree string"),
    ("(-NONE- *T*)", "the tree has no words (only empty elements)"),
])
def test_parse_errors(text, msg):
    with pytest.raises(LmscopeError) as exc:
        parse_bracketed(text)
    assert str(exc.value) == msg
    assert "\n" not in str(exc.value)


def test_binarize_and_spans():
    t = parse_bracketed("(a b (c) (d e f))")
    b = binarize(t)
    assert b == ("a", ("b", ("c", ("d", ("e", "f")))))
    assert is_binary(b) and not is_binary(t) and leaves(b) == leaves(t)
    assert spans(t) == {(0, 5), (3, 5)}
    assert spans(parse_bracketed("((the dog) barks)")) == {(0, 1), (0, 2)}
    assert spans("word") == set()


def test_baselines_on_four_words():
    w = "the dog barks loudly".split()
    assert to_bracketed(left_branching(w)) == "(((the dog) barks) loudly)"
    assert to_bracketed(right_branching(w)) == "(the (dog (barks loudly)))"
    assert to_bracketed(balanced(w)) == "((the dog) (barks loudly))"
    assert spans(left_branching(w)) == {(0, 1), (0, 2), (0, 3)}
    assert spans(right_branching(w)) == {(2, 3), (1, 3), (0, 3)}
    assert spans(balanced(w)) == {(0, 1), (2, 3), (0, 3)}
    assert balanced("a b c") == (("a", "b"), "c")  # the left half gets the extra word
    r1, r2 = random_tree(w, np.random.default_rng(3)), random_tree(w, np.random.default_rng(3))
    assert r1 == r2 and is_binary(r1) and leaves(r1) == w and (0, 3) in spans(r1)
    assert {random_tree(w, np.random.default_rng(s)) for s in range(40)} == {  # all 5 binary trees occur
        left_branching(w), right_branching(w), balanced(w), (("the", ("dog", "barks")), "loudly"),
        ("the", (("dog", "barks"), "loudly"))}
    with pytest.raises(LmscopeError, match="at least one word"):
        left_branching([])


def test_read_tree_file_names_the_line(tmp_path):
    p = tmp_path / "trees.txt"
    p.write_text("((the dog) barks)\n\n(S (NP (DT a) (NN cat)) (VP (VBD slept)))\n((a b) c\n")
    with pytest.raises(LmscopeError) as exc:
        read_tree_file(p)
    assert str(exc.value) == f"{p}:4: unbalanced parentheses: 1 '(' not closed (the first at character 1)"
    p.write_text("((the dog) barks)\n\n(S (NP (DT a) (NN cat)) (VP (VBD slept)))\n")
    assert read_tree_file(p) == [(("the", "dog"), "barks"), (("a", "cat"), "slept")]
    with pytest.raises(LmscopeError, match="no such file"):
        read_tree_file(tmp_path / "missing.txt")


# ------------------------------------------------------------------------------------------ suites
N = {"question-formation": (400, 100, 300), "tense-inflection": (400, 100, 300), "dyck": (300, 60, 120),
     "arith": (400, 100, 200)}


@pytest.fixture(scope="module")
def suites() -> dict[str, list[dict]]:
    return {name: make_suite(name, *N[name], seed=7) for name in SUITES}


def by_split(rows: list[dict], split: str, task: str | None = None) -> list[dict]:
    out = [r for r in rows if r["split"] == split and (task is None or r.get("task") == task)]
    assert out, (split, task)
    return out


@pytest.mark.parametrize("name", list(SUITES))
def test_rows_schema_counts_and_gold_trees(suites, name):
    rows = suites[name]
    splits = SUITES[name].splits
    assert [sum(r["split"] == s for r in rows) for s in splits] == list(N[name])
    assert len({r["text"] for r in rows}) == len(rows)  # distinct within and across splits
    for r in rows:
        assert {"text", "target", "tree", "split"} <= set(r)
        tree = parse_bracketed(r["tree"])
        assert is_binary(tree)
        all_words, before_marker = tree_words(r["text"])
        covered = before_marker if name in ("question-formation", "tense-inflection") else all_words
        assert leaves(tree) == covered


def test_question_formation_split_rules(suites):
    rows = suites["question-formation"]
    for split in ("train", "val"):
        for r in by_split(rows, split, "quest"):
            target = r["target"].split()
            assert target[-1] == "?" and target[0] in G.AUXILIARIES.values()
            assert G.linear_question(r["text"]) + ["?"] == target
            assert G.hierarchical_question(r["tree"]) + ["?"] == target
        for r in by_split(rows, split, "decl"):
            assert r["target"] == r["text"].removesuffix(" decl")
    gen = by_split(rows, "gen")
    assert all(r["task"] == "quest" for r in gen)
    for r in gen:
        target = r["target"].split()
        assert G.hierarchical_question(r["tree"]) + ["?"] == target
        assert G.linear_question(r["text"]) + ["?"] != target
        # fronting the first auxiliary never even gives the right first word (McCoy et al.'s gen set)
        assert G.linear_question(r["text"])[0] != target[0]
        # the first auxiliary sits inside the subject: before the main one
        words = G.declarative_words(r["text"])
        assert sum(w in G.AUXILIARIES.values() for w in words) >= 2
    # identity rows come from the whole grammar: subject relative clauses appear in training only there
    assert any(G.linear_question(r["text"]) != G.hierarchical_question(r["tree"])
               for r in by_split(rows, "train", "decl"))


def test_tense_inflection_split_rules(suites):
    rows = suites["tense-inflection"]
    for split in ("train", "val"):
        for r in by_split(rows, split, "PRESENT"):
            target = r["target"].split()
            assert G.linear_agreement_present(r["text"]) + ["."] == target
            assert G.hierarchical_agreement_present(r["tree"]) + ["."] == target
        for r in by_split(rows, split, "PAST"):
            assert r["target"] == r["text"].removesuffix(" PAST")
    for r in by_split(rows, "gen"):
        assert r["task"] == "PRESENT"
        target = r["target"].split()
        assert G.hierarchical_agreement_present(r["tree"]) + ["."] == target
        assert G.linear_agreement_present(r["text"]) + ["."] != target
    # an example by hand: the attractor "yaks" sits in a PP on the singular subject
    tree = "(((the cat) (near (the yaks))) slept)"
    assert G.hierarchical_agreement_present(tree) == "the cat near the yaks sleeps".split()
    assert G.linear_agreement_present("the cat near the yaks slept") == "the cat near the yaks sleep".split()


def _shape(tree):
    """The tree with every word replaced by '*'."""
    return "*" if isinstance(tree, str) else tuple(_shape(c) for c in tree)


@pytest.mark.parametrize("name", ["question-formation", "tense-inflection"])
@pytest.mark.parametrize("seed", [0, 5])
def test_target_trees_follow_from_the_grammar(name, seed):
    rows = make_suite(name, 300, 50, 150, seed=seed)
    for r in rows:
        tree, out = parse_bracketed(r["tree"], labeled=False), parse_bracketed(r["target_tree"], labeled=False)
        target = r["target"].split()
        assert is_binary(out)
        assert leaves(out) == target[:-1] and target[-1] in ("?", ".")  # exactly the target's words, no final mark
        if r["task"] in ("decl", "PAST"):
            assert out == tree
        elif r["task"] == "quest":  # (SUBJ (AUX VP)) -> (AUX (SUBJ VP))
            subj, (aux, vp) = tree
            assert out == (aux, (subj, vp)) and leaves(out) == G.hierarchical_question(tree)
        else:  # the same shape, every verb in the present, agreeing with its own subject
            assert _shape(out) == _shape(tree) and leaves(out) == G.hierarchical_agreement_present(tree)
    # by hand
    assert to_bracketed(G.question_tree(G.Clause(G.NP("the", 1, False), G.Verb(False, 0), False))) == \
        "(does ((the dog) sleep))"


def test_grammar_vocabularies(suites):
    for name in ("question-formation", "tense-inflection"):
        vocab = set(G.vocabulary(name))
        assert 50 <= len(vocab) <= 80
        used = {w for r in suites[name] for w in (r["text"] + " " + r["target"]).split()}
        assert used <= vocab


def test_dyck_split_rules(suites):
    rows = suites["dyck"]
    k = 2
    train_configs = {c for r in by_split(rows, "train") for c in D.stack_configurations(r["text"], k)}
    for r in by_split(rows, "train") + by_split(rows, "val"):
        configs = D.stack_configurations(r["text"], k)
        assert not any(D.is_heldout(c, 0.1, 3) for c in configs)
        assert max(len(c) for c in configs) <= 10
    for r in by_split(rows, "ood"):
        assert any(c not in train_configs for c in D.stack_configurations(r["text"], k))
    for r in rows:
        tokens, target = r["text"].split(), r["target"].split()
        assert len(target) == len(tokens) and 2 <= len(tokens) <= 100
        assert target == D.closing_targets(tokens, k)
        for i in range(len(tokens) - 1):  # where the next token closes, the target names it
            if tokens[i + 1] in (")", "]"):
                assert target[i] == tokens[i + 1]


@pytest.mark.parametrize("seed", [0, 3])
def test_dyck_split_by_depth(seed):
    rows = make_suite("dyck", 300, 60, 200, seed=seed, k=2, max_depth=8, train_max_depth=4)
    assert {r["split"] for r in rows} == {"train", "val", "deep"}
    depths = {s: [D.nesting_depth(r["text"], 2) for r in rows if r["split"] == s] for s in ("train", "val", "deep")}
    assert [len(d) for d in depths.values()] == [300, 60, 200]
    assert max(depths["train"] + depths["val"]) == 4 and min(depths["train"]) == 1
    assert min(depths["deep"]) == 5 and max(depths["deep"]) <= 8
    assert D.nesting_depth("( [ ] ) ( )", 2) == 2 and D.nesting_depth("( ) ( )", 2) == 1
    info = suite_info("dyck", 3, 2, 1, max_depth=8, train_max_depth=4)
    assert info["counts"] == {"train": 3, "val": 2, "deep": 1} and set(info["rules"]) == {"train", "val", "deep"}
    assert "depth <= 4" in info["rules"]["train"] and "5..8" in info["rules"]["deep"]
    for bad in (0, 8, 2.5, True):
        with pytest.raises(LmscopeError, match="train_max_depth must be a whole number from 1 to max_depth - 1"):
            make_suite("dyck", 1, 1, 1, max_depth=8, train_max_depth=bad)
    with pytest.raises(LmscopeError, match="has no option 'train_max_depth'"):
        make_suite("arith", 1, 1, 1, train_max_depth=3)


def test_cli_make_dyck_split_by_depth(capsys, tmp_path):
    out = tmp_path / "deep"
    rc, stdout, err = run_cli(capsys, "data", "make", "dyck", "--out", out, "--n-train", 20, "--n-val", 5,
                              "--n-gen", 7, "--max-depth", 6, "--train-max-depth", 3)
    assert rc == 0, err
    assert stdout.startswith(f"wrote {out}: train 20, val 5, deep 7")
    rows = load_suite_file(out / "deep.jsonl")
    assert len(rows) == 7 and all(3 < D.nesting_depth(r["text"], 2) <= 6 for r in rows)
    rc, _, err = run_cli(capsys, "data", "make", "arith", "--out", tmp_path / "a", "--train-max-depth", 3)
    assert rc == 2 and err.strip() == "lmscope: error: --train-max-depth applies only to the dyck suite, not arith"


def test_dyck_options_and_tokens():
    rows = make_suite("dyck", 30, 5, 10, seed=1, k=6, max_depth=4)
    vocab = {t for r in rows for t in r["text"].split()}
    assert vocab <= {f"a{i}" for i in range(1, 7)} | {f"b{i}" for i in range(1, 7)}
    assert all(max(len(c) for c in D.stack_configurations(r["text"], 6)) <= 4 for r in rows)
    assert D.bracket_pairs(3) == [("(", ")"), ("[", "]"), ("{", "}")]
    assert to_bracketed(D.dyck_tree("( [ ] ) ( )", 2)) == "(((-LRB- ([ ])) -RRB-) (-LRB- -RRB-))"
    with pytest.raises(LmscopeError, match="not a Dyck-2 string"):
        D.stack_configurations("( ]", 2)
    with pytest.raises(LmscopeError, match="no stack configuration is held out"):
        make_suite("dyck", 5, 5, 5, k=1, max_depth=1)


def test_arith_split_rules(suites):
    rows = suites["arith"]
    train_depth = max(A.depth(r["text"]) for r in by_split(rows, "train"))
    assert train_depth == 3
    assert max(A.depth(r["text"]) for r in by_split(rows, "val")) <= 3
    assert all(4 <= A.depth(r["text"]) <= 5 for r in by_split(rows, "gen"))
    for r in rows:
        assert r["target"] == str(A.evaluate(r["text"]) % 10) == str(A.evaluate(r["text"], None) % 10)
    comp = make_suite("arith", 300, 50, 100, seed=2, split_rule="composition")
    assert not any(A.has_heldout_composition(r["text"]) for r in comp if r["split"] != "gen")
    assert all(A.has_heldout_composition(r["text"]) and A.depth(r["text"]) <= 3 for r in comp if r["split"] == "gen")
    assert A.evaluate("( ( 3 + 4 ) * 2 )") == 4
    assert A.has_heldout_composition("( ( 3 * 4 ) + 2 )") and not A.has_heldout_composition("( 2 + ( 3 * 4 ) )")
    assert spans(A.expression_tree("( 8 * 7 )")) == {(0, 4), (1, 4), (1, 3), (2, 3)}


@pytest.mark.parametrize("name", list(SUITES))
def test_deterministic_by_seed(name):
    a = make_suite(name, 40, 10, 10, seed=5)
    assert make_suite(name, 40, 10, 10, seed=5) == a
    assert make_suite(name, 40, 10, 10, seed=6) != a


def test_split_streams_are_independent_of_other_sizes():
    gen = [r for r in make_suite("question-formation", 20, 5, 30, seed=3) if r["split"] == "gen"]
    assert [r for r in make_suite("question-formation", 60, 0, 30, seed=3) if r["split"] == "gen"] == gen


def test_registry_errors():
    with pytest.raises(LmscopeError, match="unknown suite 'nope'; choose one of question-formation"):
        make_suite("nope", 1, 1, 1)
    with pytest.raises(LmscopeError, match="suite 'arith' has no option 'k'"):
        make_suite("arith", 1, 1, 1, k=3)
    with pytest.raises(LmscopeError, match="n_train must be a whole number >= 0"):
        make_suite("dyck", -1, 1, 1)
    with pytest.raises(LmscopeError, match="identity_fraction"):
        make_suite("tense-inflection", 1, 1, 1, identity_fraction=2)
    with pytest.raises(LmscopeError, match="gen_depth must be"):
        make_suite("arith", 1, 1, 1, train_depth=3, gen_depth=3)
    info = suite_info("dyck", 3, 2, 1, seed=4)
    assert info["counts"] == {"train": 3, "val": 2, "ood": 1} and info["options"]["heldout_min_depth"] == 3


# ------------------------------------------------------------------------------------------ files
def test_load_suite_file(tmp_path):
    p = tmp_path / "mine.jsonl"
    rows = [{"text": "the dog barks . quest", "tree": "((the dog) barks)", "target": "x"},
            {"text": "the dog barks .", "tree": "(S (NP (DT the) (NN dog)) (VP (VBZ barks)) (. .))"},
            {"text": "a b c"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert load_suite_file(p) == rows
    p.write_text(p.read_text() + json.dumps({"text": "the cat barks", "tree": "((the dog) barks)"}) + "\n")
    with pytest.raises(LmscopeError) as exc:
        load_suite_file(p)
    assert str(exc.value) == f"{p}:4: tree leaves 'the dog barks' do not match the words 'the cat barks' of the text"
    p.write_text(json.dumps({"text": "a b", "tree": "(a b"}) + "\n")
    with pytest.raises(LmscopeError, match=r":1: bad tree: unbalanced parentheses"):
        load_suite_file(p)
    good = {"text": "the dog does sleep . quest", "target": "does the dog sleep ?",
            "tree": "((the dog) (does sleep))", "target_tree": "(does ((the dog) sleep))"}
    p.write_text(json.dumps(good) + "\n" + json.dumps({**good, "target_tree": "(does ((the cat) sleep))"}) + "\n")
    with pytest.raises(LmscopeError) as exc:
        load_suite_file(p)
    assert str(exc.value) == (f"{p}:2: target_tree leaves 'does the cat sleep' do not match the words "
                              "'does the dog sleep' of the target")
    for bad, msg in (({**good, "target_tree": "(does (the"}, ":1: bad target_tree: unbalanced"),
                     ({"text": "a b", "target_tree": "(a b)"}, ":1: a 'target_tree' needs a 'target'"),
                     ({**good, "target_tree": 3}, ":1: 'target_tree' must be a string")):
        p.write_text(json.dumps(bad) + "\n")
        with pytest.raises(LmscopeError, match=msg):
            load_suite_file(p)
    p.write_text(json.dumps({"target": "x"}) + "\n")
    with pytest.raises(LmscopeError, match=r":1: 'text' must be a non-empty string"):
        load_suite_file(p)


def test_cli_make_writes_the_split_files(capsys, tmp_path):
    out = tmp_path / "qf"
    rc, stdout, err = run_cli(capsys, "data", "make", "question-formation", "--out", out, "--n-train", 50,
                              "--n-val", 10, "--n-gen", 20, "--seed", 1)
    assert rc == 0, err
    assert stdout.startswith(f"wrote {out}: train 50, val 10, gen 20")
    assert sorted(p.name for p in out.iterdir() if p.name != MARKER) == ["gen.jsonl", "info.json", "train.jsonl",
                                                                        "val.jsonl"]
    info = json.loads((out / "info.json").read_text())
    assert info["suite"] == "question-formation" and info["seed"] == 1
    assert info["counts"] == {"train": 50, "val": 10, "gen": 20} and set(info["rules"]) == {"train", "val", "gen"}
    for split, n in info["counts"].items():
        rows = load_suite_file(out / f"{split}.jsonl")
        assert len(rows) == n and {r["split"] for r in rows} == {split}
    assert load_suite_file(out / "gen.jsonl") == make_suite("question-formation", 50, 10, 20, seed=1)[60:]

    rc, stdout, err = run_cli(capsys, "data", "make", "dyck", "--out", tmp_path / "d", "--n-train", 20,
                              "--n-val", 5, "--n-gen", 5, "--k", 3, "--max-depth", 4, "--json")
    assert rc == 0, err
    payload = json.loads(stdout)
    assert payload["options"]["k"] == 3 and payload["options"]["max_depth"] == 4
    assert (tmp_path / "d" / "ood.jsonl").is_file()


def test_cli_make_lists_suites(capsys):
    rc, stdout, _ = run_cli(capsys, "data", "make")
    assert rc == 0 and [line.split()[0] for line in stdout.splitlines()] == list(SUITES)
    rc, stdout, _ = run_cli(capsys, "data", "make", "--json")
    assert rc == 0 and list(json.loads(stdout)["suites"]) == list(SUITES)


@pytest.mark.parametrize("argv, msg", [
    (["nope", "--out", "X"], "unknown suite 'nope'"),
    (["arith", "--out", "X", "--k", "3"], "--k applies only to the dyck suite"),
    (["dyck"], "give --out DIR"),
    (["arith", "--out", "X", "--n-train", "-3"], "argument --n-train: must be an integer >= 0"),
    (["dyck", "--out", "X", "--max-depth", "0"], "argument --max-depth: must be an integer >= 1"),
])
def test_cli_make_errors(capsys, tmp_path, argv, msg):
    keep = tmp_path / "X"
    keep.mkdir()
    (keep / "old.txt").write_text("kept")
    argv = [str(keep) if a == "X" else a for a in argv]
    rc, out, err = run_cli(capsys, "data", "make", *argv)
    assert_clean_error(rc, out, err)
    assert msg in err
    assert [p.name for p in keep.iterdir()] == ["old.txt"]


def test_cli_make_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "make", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lmscope data make") and "--max-depth" in out and "info.json" in out


def test_files_hold_nothing_outside_the_suite(tmp_path):
    # write_suite through the CLI leaves no temporary folders next to the output
    main(["data", "make", "arith", "--out", str(tmp_path / "a"), "--n-train", "5", "--n-val", "0", "--n-gen", "2",
          "--quiet"])
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["a"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.name != MARKER) == ["gen.jsonl", "info.json",
                                                                                     "train.jsonl"]


def test_grammar_facts_have_one_definition():
    from lmscope.evaluation import capabilities
    from lmscope.grokking import metrics

    assert set(G.AUXILIARY_WORDS) == set(G.AUXILIARIES.values()) == {"do", "does", "don't", "doesn't"}
    assert metrics.QF_AUXILIARIES is G.AUXILIARY_WORDS
    words = "the dog who doesn't smile does admire my cats".split()
    assert G.first_auxiliary(words) == 3  # the relative clause's auxiliary comes first
    assert capabilities._first_aux(words) == "doesn't"
    assert G.first_auxiliary("the dog slept".split()) is None
    tree = "(((the dog) (who (does smile))) (don't (admire (my cats))))"
    assert G.main_verb_index("((the (dog (near (the cats)))) slept)") == 5
    assert G.hierarchical_question(tree)[0] == "don't" and G.linear_question(" ".join(leaves(parse_bracketed(
        tree, labeled=False))))[0] == "does"


def test_question_formation_gen_has_no_linear_floor():
    """Row by row, on a large gen split of several seeds: the linear rule's first word is always wrong,
    and no train or val question has a relative clause on its subject (with the same or another
    auxiliary), so training questions never tell the two rules apart."""
    for seed in (0, 1, 2):
        rows = G.question_formation(2000, 200, 2000, seed=seed)
        for r in rows:
            words = G.declarative_words(r["text"])
            first, main = words[G.first_auxiliary(words)], r["target"].split()[0]
            if r["split"] == "gen":
                assert first != main
            elif r["task"] == "quest":
                assert sum(w in G.AUXILIARY_WORDS for w in words) == 1 or first == main
                assert G.linear_question(r["text"]) == G.hierarchical_question(r["tree"])
