"""Structural grokking: metrics on models with planted behaviour, tiny training runs, the CLI."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from lmscope.cli import main
from lmscope.data.dyck import closing_targets
from lmscope.data.suites import make_suite
from lmscope.errors import LmscopeError
from lmscope.grokking import (
    attention_sparsity,
    dyck_closing_accuracy,
    grok_train,
    main_verb_index,
    make_eval_fn,
    pos_sequence,
    qf_first_word_accuracy,
    tense_accuracy,
    tense_correct,
    weight_norm,
)
from lmscope.models.small import SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import WordTokenizer
from lmscope.train.loop import read_metrics, suite_lines


class TableModel(torch.nn.Module):
    """Logits at each position depend only on the token there: a fixed random (vocab, vocab) table."""

    def __init__(self, vocab_size: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = torch.nn.Parameter(torch.randn(vocab_size, vocab_size, generator=g))
        self.config = SimpleNamespace(pad_id=0)

    def forward(self, ids, attention_mask=None):
        return SimpleNamespace(logits=self.table[ids])


class DyckOracle(torch.nn.Module):
    """Puts the highest logit on the closing bracket matching the stack top (read from the prefix)."""

    def __init__(self, tok: WordTokenizer):
        super().__init__()
        self.tok = tok
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(pad_id=0)

    def forward(self, ids, attention_mask=None):
        B, T = ids.shape
        logits = torch.zeros(B, T, self.tok.vocab_size)
        for b in range(B):
            n = int(attention_mask[b].sum())
            words = [self.tok.tokens[i] for i in ids[b, 1:n].tolist()]
            for i, target in enumerate(closing_targets(words, 2)):
                if target in self.tok.token_to_id:
                    logits[b, i + 1, self.tok.token_to_id[target]] = 5.0
        return SimpleNamespace(logits=logits)


class ScriptedGenerator(torch.nn.Module):
    """generate() returns a fixed word sequence per prompt (looked up by the prompt's text)."""

    def __init__(self, tok: WordTokenizer, answers: dict[str, str]):
        super().__init__()
        self.tok, self.answers = tok, answers
        self.w = torch.nn.Parameter(torch.zeros(1))

    def generate(self, prompts, max_new_tokens, stop_id=None, allowed=None):
        outs = []
        for p in prompts:
            text = self.tok.decode(p)
            outs.append((self.tok.encode(self.answers[text]) + [self.tok.eos_id])[:max_new_tokens])
        return outs


def _suite(task, n=40):
    rows = make_suite(task, n, 20, 20, seed=3)
    tok = WordTokenizer.build([r["text"] for r in rows] + [r["target"] for r in rows])
    return rows, tok


# ------------------------------------------------------------------------------------------ metrics
def test_qf_first_word_matches_manual_computation():
    rows, tok = _suite("question-formation")
    model = TableModel(tok.vocab_size, seed=1)
    auxes = ["do", "does", "don't", "doesn't"]
    aux_ids = [tok.token_to_id[a] for a in auxes]
    quest = [r for r in rows if r["task"] == "quest"]
    manual = 0
    for r in quest:
        last = tok.encode(r["text"])[-1]  # the logits after "<bos> text" depend on its last token here
        pick = auxes[int(model.table[last, aux_ids].argmax())]
        manual += pick == r["target"].split()[0]
    assert qf_first_word_accuracy(model, tok, rows) == pytest.approx(manual / len(quest))

    # planted: always "do" -> the share of questions starting with "do"
    model.table.data[:] = 0
    model.table.data[:, tok.token_to_id["do"]] = 1.0
    want = sum(r["target"].split()[0] == "do" for r in quest) / len(quest)
    assert qf_first_word_accuracy(model, tok, rows) == pytest.approx(want)
    assert qf_first_word_accuracy(model, tok, [r for r in rows if r["task"] == "decl"]) is None


def test_dyck_closing_accuracy_manual_and_oracle():
    rows, tok = _suite("dyck")
    model = TableModel(tok.vocab_size, seed=2)
    closers = [")", "]"]
    cids = [tok.token_to_id[c] for c in closers]
    total = correct = 0
    for r in rows:
        words = r["text"].split()
        for i in range(len(words) - 1):
            if words[i + 1] in closers:
                total += 1
                correct += closers[int(model.table[tok.token_to_id[words[i]], cids].argmax())] == words[i + 1]
    assert dyck_closing_accuracy(model, tok, rows) == pytest.approx(correct / total)
    assert dyck_closing_accuracy(DyckOracle(tok), tok, rows) == 1.0
    assert dyck_closing_accuracy(model, tok, []) is None


def test_tense_pos_and_main_verb_logic():
    tree = "(((your yaks) (who ((your hare) amused))) (amused (her hares)))"
    assert main_verb_index(tree) == 6
    gold = "your yaks who your hare amuses amuse her hares .".split()
    assert pos_sequence(gold) == ["DET", "N", "REL", "DET", "N", "V", "V", "DET", "N", "."]
    assert tense_correct(gold, gold, 6)
    # the embedded verb wrong, the main verb right: still correct (only the main verb is judged)
    assert tense_correct("your yaks who your hare amuse amuse her hares .".split(), gold, 6)
    # main verb agreeing with the attractor: wrong number
    assert not tense_correct("your yaks who your hare amuses amuses her hares .".split(), gold, 6)
    # past tense main verb
    assert not tense_correct("your yaks who your hare amuses amused her hares .".split(), gold, 6)
    # a different POS sequence (noun dropped)
    assert not tense_correct("your yaks who your amuses amuse her hares .".split(), gold, 6)
    # a different noun with the same POS is fine
    assert tense_correct("your yaks who your cat amuses amuse her hares .".split(), gold, 6)
    assert main_verb_index("((the cats) slept)") == 2


def test_tense_accuracy_with_scripted_outputs():
    rows, tok = _suite("tense-inflection")
    present = [r for r in rows if r["task"] == "PRESENT"][:6]
    oracle = ScriptedGenerator(tok, {r["text"]: r["target"] for r in present})
    assert tense_accuracy(oracle, tok, present) == {"acc": 1.0, "exact": 1.0, "n": 6}
    # the past-tense input sentence as output: same POS, wrong tense of the main verb
    echo = ScriptedGenerator(tok, {r["text"]: r["text"].rsplit(" ", 1)[0] for r in present})
    res = tense_accuracy(echo, tok, present)
    assert res["acc"] == 0.0 and res["exact"] == 0.0


def test_weight_norm_and_attention_sparsity():
    torch.manual_seed(0)
    tok = WordTokenizer.build(["a b c d e"])
    model = SmallTransformer(SmallConfig(vocab_size=tok.vocab_size, d_model=8, n_layers=1, n_heads=2, d_ff=16,
                                         norm="post"), seed=0)
    manual = math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in model.parameters()))
    assert weight_norm(model) == pytest.approx(manual)
    # queries zeroed: uniform attention over the t + 1 visible keys
    with torch.no_grad():
        model.layers[0].attn.q.weight.zero_()
        model.layers[0].attn.q.bias.zero_()
    texts = ["a b c", "a b c d e"]
    lengths = [4, 6]  # with <bos>
    ents = [math.log(t + 1) for n in lengths for t in range(n)] * 2  # two heads
    tops = [1 / (t + 1) for n in lengths for t in range(n)] * 2
    res = attention_sparsity(model, tok, texts)
    assert res["entropy"] == pytest.approx(sum(ents) / len(ents), abs=1e-5)
    assert res["top1"] == pytest.approx(sum(tops) / len(tops), abs=1e-5)


def test_make_eval_fn_keys_and_bad_task():
    rows = make_suite("question-formation", 20, 10, 10, seed=0)
    tok = WordTokenizer.build(suite_lines(rows, None))
    model = SmallTransformer(SmallConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                                         norm="post"), seed=0)
    by = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "gen")}
    out = make_eval_fn("question-formation", tok, by, sample_size=5, tree_sample=3)(model.eval(), 0)
    for key in ("id_acc", "gen_acc", "t_score", "f1", "weight_norm", "attn_entropy", "attn_top1"):
        assert key in out
    assert 0 <= out["id_acc"] <= 1 and out["t_score"] is not None
    with pytest.raises(LmscopeError):
        make_eval_fn("arith", tok, by)


# ------------------------------------------------------------------------------------------ runs
TINY = dict(layers=1, d_model=16, heads=2, d_ff=32, steps=30, eval_every=10, ckpt_every=10, n_train=60,
            n_val=10, n_gen=10, sample_size=6, tree_sample=3, quiet=True)
KEYS = {"step", "loss", "id_acc", "gen_acc", "t_score", "f1", "weight_norm", "attn_entropy"}


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_grok_train_writes_metrics_and_resumes(tmp_path):
    full = grok_train("question-formation", tmp_path / "full", **TINY)
    assert full["step"] == 30
    rows = read_metrics(tmp_path / "full")
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert KEYS <= set(rows[0])
    assert json.loads((tmp_path / "full" / "grok.json").read_text())["task"] == "question-formation"

    part = grok_train("question-formation", tmp_path / "part", **TINY, stop_after=15)
    assert part["step"] == 15
    again = grok_train("question-formation", tmp_path / "part", **TINY)
    assert again["resumed_from"] is not None and again["step"] == 30
    assert _strip(read_metrics(tmp_path / "part")) == _strip(rows)


@pytest.mark.parametrize("kwargs", [dict(task="arith"), dict(layers=0), dict(steps=0)])
def test_grok_train_bad_input(tmp_path, kwargs):
    args = dict(TINY, task="dyck") | kwargs
    task = args.pop("task")
    with pytest.raises(LmscopeError):
        grok_train(task, tmp_path / "r", **args)


def test_cli_train_and_plot(tmp_path, capsys):
    common = ["--d-model", "16", "--heads", "2", "--d-ff", "32", "--steps", "20", "--eval-every", "10",
              "--ckpt-every", "10", "--n-train", "60", "--n-val", "10", "--n-gen", "10", "--sample-size", "6",
              "--tree-sample", "3", "--quiet"]
    for layers in (1, 2):
        code = main(["grok", "train", "--task", "dyck", "--layers", str(layers), "--out",
                     str(tmp_path / f"L{layers}"), *common])
        assert code == 0
    capsys.readouterr()
    assert main(["grok", "plot", str(tmp_path / "L1"), str(tmp_path / "L2"), "--out", str(tmp_path / "plots"),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for name in ("accuracy.png", "t_score.png", "depth.png", "index.html"):
        assert (tmp_path / "plots" / name).is_file()
    assert [r["layers"] for r in res["runs"]] == [1, 2]


@pytest.mark.parametrize("argv", [
    ["grok", "train", "--task", "nonsense", "--out", "{tmp}/x"],
    ["grok", "train", "--task", "dyck", "--layers", "0", "--out", "{tmp}/x"],
    ["grok", "train", "--task", "dyck", "--steps", "0", "--out", "{tmp}/x"],
    ["grok", "train", "--task", "dyck"],
    ["grok", "plot", "{tmp}/missing", "--out", "{tmp}/p"],
])
def test_cli_bad_input_exit_2_one_line(tmp_path, capsys, argv):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lmscope: error:")
