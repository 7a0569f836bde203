"""Whole training lines as trees and attachments (lmscope.pushdown.data): a worked line by hand, the round
trip on every line of every suite, bracketed tree files and their errors."""

from __future__ import annotations

import pytest

from lmscope.data.suites import make_suite
from lmscope.data.trees import is_binary, leaves, parse_bracketed, to_bracketed
from lmscope.errors import LmscopeError
from lmscope.pushdown.data import (
    line_attachments,
    line_text,
    line_tree,
    line_words,
    output_tree,
    tree_file_rows,
)
from lmscope.pushdown.tape import attachments, depth_matrix, model_tape, tree_from_attachments
from lmscope.train.loop import suite_lines

QF_ROW = {"text": "the dog does sleep . quest", "target": "does the dog sleep ?", "tree": "((the dog) (does sleep))",
          "target_tree": "(does ((the dog) sleep))", "split": "train", "task": "quest"}


def test_a_question_formation_line_by_hand():
    words, att = line_attachments(QF_ROW, "question-formation")
    assert words == "the dog does sleep . quest does the dog sleep ?".split()
    # the:shift, dog:(the dog), does:shift, sleep:(does sleep) then ((the dog) ..) -> 1, '.' closes (3),
    # 'quest' closes (4), does:shift, the:shift, dog:(the dog) -> 7, sleep:((the dog) sleep) then (does ..) -> 6,
    # '?' closes everything: the prefix ends at 5
    assert att == [0, 0, 2, 1, 3, 4, 6, 7, 7, 6, 5]
    assert to_bracketed(line_tree(QF_ROW, "question-formation")) == \
        "(((((the dog) (does sleep)) .) quest) ((does ((the dog) sleep)) ?))"
    # depths after the last word = the constituents holding each word: the declarative's words 2 inside it,
    # +3 for (DECL .), (.. quest) and the whole line; the question's words 1-2 inside it, +2 for (OUT ?) and the line
    assert depth_matrix(att)[-1].tolist() == [5, 5, 5, 5, 3, 2, 3, 5, 5, 4, 2]
    assert line_text(QF_ROW, "question-formation").split() == suite_lines([QF_ROW], None)[0].split()


def test_arith_and_dyck_lines_by_hand():
    row = {"text": "( 8 * 7 )", "target": "6", "tree": "(-LRB- ((8 (* 7)) -RRB-))", "split": "train"}
    words, att = line_attachments(row, "arith")
    assert words == "( 8 * 7 ) = 6".split()
    assert att == [0, 1, 2, 1, 0, 4, 5]
    assert line_tree(row, "arith") == ((("(", (("8", ("*", "7")), ")")), "="), "6")
    dyck = {"text": "( [ ] ) ( )", "target": ") ] ) _ ) _"}
    assert line_words(dyck, "dyck") == "( [ ] ) ( )".split()
    # a pair around C is ((open C) close); the top-level pairs combine left-branching
    assert line_tree(dyck, "dyck") == ((("(", ("[", "]")), ")"), ("(", ")"))
    # ']' ends ([ ]) and (( ([ ])): reduces up to '(' at 0; ')' merges with that (ends at 2); the last ')'
    # closes ( ) (4) and then the first pair (ends at 3)
    assert line_attachments(dyck, "dyck")[1] == [0, 1, 0, 2, 4, 3]


SUITE_CASES = [
    ("question-formation", "question-formation", {}),
    ("tense-inflection", "tense-inflection", {}),
    ("dyck", "dyck", {}),
    ("dyck", "dyck", {"max_depth": 8, "train_max_depth": 4}),
    ("dyck", "dyck", {"k": 6, "max_depth": 5}),
    ("arith", "arith", {}),
    ("arith", "arith", {"split_rule": "composition"}),
]


@pytest.mark.parametrize("seed", [0, 11])
@pytest.mark.parametrize(("suite", "task", "options"), SUITE_CASES)
def test_round_trip_on_every_suite_line(suite, task, options, seed):
    rows = make_suite(suite, 300, 50, 200, seed=seed, **options)
    assert len({r["split"] for r in rows}) == 3
    for r in rows:
        words, att = line_attachments(r, task)
        tree = line_tree(r, task)
        assert is_binary(tree) and leaves(tree) == words
        assert attachments(tree) == att  # the tree the segments compose is the one the attachments build
        assert tree_from_attachments(words, att) == tree
        model_tape(att)  # every attachment allowed where it is made
        text = r["text"].split()
        if task == "dyck":
            assert words == text
        elif task == "arith":
            assert words == [*text, "=", r["target"]]
            assert tree == ((parse_bracketed(r["tree"], labeled=False), "="), r["target"])
        else:
            assert words == suite_lines([r], None)[0].split()
            decl = parse_bracketed(r["tree"], labeled=False)
            out = parse_bracketed(r["target_tree"], labeled=False)
            assert tree == (((decl, "."), r["task"]), (out, r["target"].split()[-1]))


@pytest.mark.parametrize("task", ["question-formation", "tense-inflection"])
def test_rows_without_target_tree_get_it_from_the_grammar(task):
    for r in make_suite(task, 200, 20, 100, seed=3):
        old = {k: v for k, v in r.items() if k != "target_tree"}
        assert output_tree(old) == parse_bracketed(r["target_tree"], labeled=False)
        assert line_attachments(old, task) == line_attachments(r, task)
    with pytest.raises(LmscopeError, match="no 'target_tree' and its task 'x'"):
        line_tree({**{k: v for k, v in QF_ROW.items() if k != "target_tree"}, "task": "x"}, "question-formation")


def test_bad_rows_name_their_line():
    with pytest.raises(LmscopeError, match="unknown task 'parse'; choose one of question-formation"):
        line_tree(QF_ROW, "parse")
    bad = {**QF_ROW, "tree": "((the cat) (does sleep))", "line": 4}
    with pytest.raises(LmscopeError) as exc:
        line_attachments(bad, "question-formation")
    assert str(exc.value) == ("line 4: tree leaves 'the cat does sleep' are not the first words of the text "
                              "'the dog does sleep . quest'")
    with pytest.raises(LmscopeError, match="^line 2: bad target_tree: unbalanced parentheses"):
        line_tree({**QF_ROW, "target_tree": "(does ((the dog) sleep)", "line": 2}, "question-formation")
    with pytest.raises(LmscopeError, match="^the row has no 'tree'$"):
        line_tree({"text": "a b", "target": "c"}, "arith")
    with pytest.raises(LmscopeError, match="^line 7: not a Dyck-4 string"):
        line_tree({"text": "( ]", "line": 7}, "dyck")
    with pytest.raises(LmscopeError, match="needs a non-empty string 'text'"):
        line_tree({"text": " "}, "trees")


def test_tree_files(tmp_path):
    p = tmp_path / "trees.txt"
    p.write_text("((the dog) barks)\n\n(S (NP (DT the) (JJ big) (NN cat)) (VP (VBZ sleeps)))\n(a b c d)\n")
    rows = tree_file_rows(p)
    assert [r["line"] for r in rows] == [1, 3, 4]
    assert [r["text"] for r in rows] == ["the dog barks", "the big cat sleeps", "a b c d"]
    assert rows[1]["tree"] == "((the (big cat)) sleeps)" and rows[2]["tree"] == "(a (b (c d)))"  # binarized
    for r in rows:
        words, att = line_attachments(r, "trees")
        assert words == r["text"].split()
        assert tree_from_attachments(words, att) == line_tree(r, "trees") == parse_bracketed(r["tree"])
    # a target without a target tree: its words close everything
    words, att = line_attachments({**rows[0], "target": "x y"}, "trees")
    assert words == "the dog barks x y".split() and att == [0, 0, 1, 2, 3]

    p.write_text("((the dog) barks)\n\n((a b) (c d)\n(x y)\n")
    with pytest.raises(LmscopeError) as exc:
        tree_file_rows(p)
    assert str(exc.value).startswith(f"{p}:3: unbalanced parentheses")
    p.write_text("(x y)\n(a b))\n")
    with pytest.raises(LmscopeError, match=r":2: unbalanced parentheses: '\)' at character 6 closes nothing"):
        tree_file_rows(p)
    p.write_text("\n  \n")
    with pytest.raises(LmscopeError, match="the file holds no trees"):
        tree_file_rows(p)
    with pytest.raises(LmscopeError):
        tree_file_rows(tmp_path / "missing.txt")
