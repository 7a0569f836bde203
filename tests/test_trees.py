"""Tree projections: span masks (small, HF causal, HF encoder), charts, decoding, scores and the CLI, on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import build_tiny_model

from lmscope._io import dumps
from lmscope.cli import main
from lmscope.data.trees import balanced, leaves, left_branching, parse_bracketed, right_branching, spans
from lmscope.errors import LmscopeError
from lmscope.models.small import SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import WordTokenizer
from lmscope.trees import (
    LayerSweepResult,
    bracket_match,
    decode,
    make_adapter,
    prf,
    read_sentence_file,
    t_score,
    tree_projection,
)
from lmscope.trees.adapters import SmallAdapter, _span_mask, align
from lmscope.trees.chart import compute_charts
from lmscope.trees.decode import greedy_splits, tree_from_splits

WORDS = "the a dog cat dogs cats barks sleeps saw near big small red that who".split()
SENTENCES = ["the dog barks", "the big dog saw a small cat", "a cat that the dog saw sleeps near the red dogs",
             "cats sleep", "dog"]
HF_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>"]


def _small(causal: bool, seed: int = 0, layers: int = 3, scale: float = 10.0, max_len: int = 64, vocab=None):
    """A random small transformer whose attention matters (weights scaled up from the tiny default init)."""
    tok = WordTokenizer(vocab or WORDS + ["sleep"])
    model = SmallTransformer(SmallConfig(vocab_size=len(tok), d_model=32, n_layers=layers, n_heads=4, d_ff=64,
                                         causal=causal, max_len=max_len), seed=seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and name.startswith("layers."):
                p.mul_(scale)
    return model.eval(), tok


def _hf_tokenizer(with_cls: bool):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(HF_SPECIAL + WORDS + ["sleep"])}
    t = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = Whitespace()
    if with_cls:  # BERT style: [CLS] words [SEP]
        t.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
        return PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]")
    return PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>")


@pytest.fixture(scope="module")
def hf_models():
    """Tiny random Llama (causal), GPT-2 (causal) and BERT (encoder) over a word-level vocabulary."""
    V = len(HF_SPECIAL) + len(WORDS) + 1
    with torch.random.fork_rng(devices=[]):  # the three models from one seeded stream
        torch.manual_seed(0)
        llama = build_tiny_model("llama", seed=None, vocab_size=V, num_hidden_layers=3)
        gpt2 = build_tiny_model("gpt2", seed=None, vocab_size=V, bos_token_id=5, eos_token_id=5)
        bert = build_tiny_model("bert-encoder", seed=None, vocab_size=V, num_hidden_layers=3)
    return {"llama": (llama.eval(), _hf_tokenizer(False)), "gpt2": (gpt2.eval(), _hf_tokenizer(False)),
            "bert": (bert.eval(), _hf_tokenizer(True))}


def _max_chart_diff(a: dict, b: dict) -> float:
    return max(float(np.nanmax(np.abs(x - y))) for layer in a for x, y in zip(a[layer], b[layer], strict=True))


# ------------------------------------------------------------------------------------------------
# A model that is tree-structured by construction
# ------------------------------------------------------------------------------------------------
class PlantedAdapter(SmallAdapter):
    """A small encoder whose attention is confined, at every layer, to the constituents of ``tree``.

    On top of the span mask, a fixed key mask lets word q attend only to BOS, itself and the words of
    its *parent*: the smallest constituent with at least two words that contains q. In every pass
    (ordinary or masked) q's vector then depends only on the words of its parent, whose words' parents
    lie inside it again. So for a constituent C of two or more words, the span mask of C hides no key
    that any word of C attends to: the masked pass computes exactly the ordinary vectors over C, and
    ṽ(C) = v(C), s = 1. A span that is not a union of parents loses some key, so s < 1. A single
    word always has s < 1 here (it attends to its parent); no model can make every word *and* only the
    constituents exact, because spans whose words' vectors are unchanged are closed under union.
    """

    def __init__(self, model, tok, tree):
        super().__init__(model, tok, add_bos=True)
        n = len(leaves(tree))
        nodes = sorted(spans(tree), key=lambda s: s[1] - s[0])
        planted = torch.eye(n + 1, dtype=torch.bool)
        planted[:, 0] = True  # BOS
        for w in range(n):
            i, j = next(s for s in nodes if s[0] <= w <= s[1])
            planted[w + 1, i + 1:j + 2] = True  # token w + 1 is word w (after BOS)
        self.planted = planted

    def hidden(self, ids, attention_mask, visible, layers, threshold):
        B, T = ids.shape
        m = self.planted.expand(B, T, T)
        key_mask = [m] * self.n_layers
        if visible is not None:
            key_mask = [m] * threshold + [m & _span_mask(visible)] * (self.n_layers - threshold)
        out = self.model(ids, attention_mask=attention_mask, key_mask=key_mask, return_hidden=True)
        return {layer: out.hidden_states[layer] for layer in layers}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_tree_is_recovered_with_the_maximal_split_score(seed):
    """((a b) (c d)): s = 1 exactly on its constituents, below 1 on every other span; greedy returns it.

    At the root the gold split scores s(a b) + s(c d) = 2, the largest possible value of a cosine
    split score, and every other split has a part that is not a constituent (score < 2); the two
    lower nodes have one split only. So decoding must return the tree, with the maximal split score
    at every node that has a choice, and the t-score is 2 minus the random split's score.
    """
    tree = parse_bracketed("((the dog) (saw cats))")
    words = leaves(tree)
    model, tok = _small(causal=False, seed=seed, layers=2)
    res = tree_projection(PlantedAdapter(model, tok, tree), [words], gold_trees=[tree], seed=seed)
    s = res.sentences[0]
    chart = s.chart
    for i in range(4):
        for j in range(i, 4):
            if (i, j) in spans(tree):
                assert chart[i, j] == pytest.approx(1.0, abs=1e-9)
            else:
                assert chart[i, j] < 1 - 1e-4, (i, j, chart[i, j])
    assert s.tree == tree and res.f1 == 1.0
    root = s.nodes[0]
    assert root == (0, 3, 1) and chart[0, 1] + chart[2, 3] == pytest.approx(2.0, abs=1e-9)
    r = int(np.random.default_rng([seed, 0, 0]).integers(0, 3))
    assert s.t_score == pytest.approx(2.0 - (chart[0, r] + chart[r + 1, 3]), abs=1e-12)


def test_planted_constituents_are_exact_and_other_spans_are_not():
    """A larger planted tree: s = 1 exactly for all its constituents of two or more words, < 1 elsewhere.

    (((a b) c) (d (e f))): the parents are {a b}, {a b c}, {d e f}, {e f}; every union of parents that
    is contiguous is a constituent, so exactly the internal nodes are exact.
    """
    tree = parse_bracketed("(((the dog) barks) (near (the cat)))")
    model, tok = _small(causal=False, seed=3, layers=2)
    chart = tree_projection(PlantedAdapter(model, tok, tree), [leaves(tree)]).sentences[0].chart
    gold = spans(tree)
    for i in range(6):
        for j in range(i + 1, 6):
            if (i, j) in gold:
                assert chart[i, j] == pytest.approx(1.0, abs=1e-9)
            else:
                assert chart[i, j] < 1 - 1e-4, (i, j)


def test_greedy_decoding_of_a_constituent_chart():
    """A chart that is 1 on the constituents (leaves included) of a tree and 0.5 elsewhere decodes to it."""
    tree = parse_bracketed("(((a b) (c (d e))) ((f g) (h (i (j k)))))")
    words = leaves(tree)
    n = len(words)
    chart = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i, n):
            chart[i, j] = 1.0 if (i, j) in spans(tree) or i == j else 0.5
    got, nodes = decode(chart, words)
    assert got == tree
    assert tree_from_splits(words, greedy_splits(chart)) == tree
    assert all(chart[i, k] + chart[k + 1, j] == 2.0 for i, j, k in nodes)
    assert t_score(chart, nodes, 0) > 0


# ------------------------------------------------------------------------------------------------
# Fast charts equal the reference charts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0, 1])
def test_fast_causal_chart_equals_reference_small(seed, threshold):
    model, tok = _small(causal=True, seed=seed)
    ad = make_adapter(model, tok)
    encs = [ad.encode_checked(s.split()) for s in SENTENCES]
    fast, fs = compute_charts(ad, encs, [3, 2], threshold, fast=True, batch_size=5)
    ref, rs = compute_charts(ad, encs, [3, 2], threshold, fast=False)
    assert _max_chart_diff(fast, ref) < 1e-5
    assert fs.passes == sum(len(s.split()) for s in SENTENCES)  # one ordinary pass + one per start > 0
    assert rs.passes == sum(1 + n * (n + 1) // 2 for n in (len(s.split()) for s in SENTENCES))
    assert np.nanmin(ref[3][2]) < 0.99  # the masks do change something


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("threshold", [0, 1])
def test_fast_causal_chart_equals_reference_hf(hf_models, family, threshold):
    model, tok = hf_models[family]
    ad = make_adapter(model, tok)
    encs = [ad.encode_checked(s.split()) for s in SENTENCES[:4]]
    assert encs[0].ids[0] == tok.bos_token_id and encs[0].word_of.tolist() == [-1, 0, 1, 2]
    L = ad.n_layers
    fast, _ = compute_charts(ad, encs, [L, 1] if threshold == 0 else [L], threshold, fast=True, batch_size=4)
    ref, _ = compute_charts(ad, encs, [L, 1] if threshold == 0 else [L], threshold, fast=False)
    assert _max_chart_diff(fast, ref) < 1e-5
    assert np.nanmin(ref[L][2]) < 0.999


@pytest.mark.parametrize("kind", ["small", "bert"])
def test_fast_encoder_chart_equals_reference(hf_models, kind):
    model, tok = _small(causal=False, seed=4) if kind == "small" else hf_models["bert"]
    ad = make_adapter(model, tok)
    encs = [ad.encode_checked(s.split()) for s in SENTENCES[:3]]
    for threshold in (0, 2):
        fast, _ = compute_charts(ad, encs, [3], threshold, fast=True, batch_size=16)
        ref, _ = compute_charts(ad, encs, [3], threshold, fast=False)
        assert _max_chart_diff(fast, ref) < 1e-5


def test_eager_attention_gets_the_same_span_mask(hf_models):
    import transformers as T

    model, tok = hf_models["llama"]
    eager = T.LlamaForCausalLM(model.config)
    eager.load_state_dict(model.state_dict())
    eager.eval().set_attn_implementation("eager")
    sents = [s.split() for s in SENTENCES[:3]]
    a = tree_projection((model, tok), sents).sentences
    b = tree_projection((eager, tok), sents).sentences
    assert max(float(np.nanmax(np.abs(x.chart - y.chart))) for x, y in zip(a, b, strict=True)) < 1e-5


# ------------------------------------------------------------------------------------------------
# Exactness of the span mask
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["small", "bert"])
def test_encoder_span_vectors_ignore_words_outside_the_span(hf_models, kind):
    model, tok = _small(causal=False, seed=5) if kind == "small" else hf_models["bert"]
    ad = make_adapter(model, tok)
    one = "the big dog saw a small cat".split()
    two = "red cats dog saw a that who".split()  # the same words 2..4, others changed
    masked = ad.word_vectors([one, two], spans=[(2, 4), (2, 4)], threshold=0)
    assert np.abs(masked[0][2:5] - masked[1][2:5]).max() < 1e-5
    ordinary = ad.word_vectors([one, two])
    assert np.abs(ordinary[0][2:5] - ordinary[1][2:5]).max() > 1e-3
    # from a threshold up only: the blocks below still see the whole sentence
    late = ad.word_vectors([one, two], spans=[(2, 4), (2, 4)], threshold=2)
    assert np.abs(late[0][2:5] - late[1][2:5]).max() > 1e-4
    if kind == "bert":
        assert ad.encode(one).word_of.tolist() == [-1, 0, 1, 2, 3, 4, 5, 6, -1]  # [CLS] ... [SEP]


def test_causal_span_vectors_ignore_words_before_the_span(hf_models):
    model, tok = hf_models["llama"]
    ad = make_adapter(model, tok)
    one, two = "the big dog saw a small cat".split(), "red cats that saw a small cat".split()
    masked = ad.word_vectors([one, two], spans=[(3, 6), (3, 6)])
    assert np.abs(masked[0][3:] - masked[1][3:]).max() < 1e-5
    ordinary = ad.word_vectors([one, two])
    assert np.abs(ordinary[0][3:] - ordinary[1][3:]).max() > 1e-3


def test_layers_and_thresholds_are_checked(hf_models):
    model, tok = _small(causal=True)
    ad = make_adapter(model, tok)
    assert ad.check_layer(None) == 3 and ad.check_layer(-1) == 3 and ad.check_layer(0) == 0
    for bad in (4, -5):
        with pytest.raises(LmscopeError, match="out of range"):
            tree_projection(ad, ["the dog"], layer=bad)
    with pytest.raises(LmscopeError, match="threshold"):
        tree_projection(ad, ["the dog"], threshold=3)
    with pytest.raises(LmscopeError, match="not above the threshold"):
        tree_projection(ad, ["the dog"], layer=1, threshold=1)
    with pytest.raises(LmscopeError, match="out of range"):
        make_adapter(*hf_models["bert"]).check_layer(7)
    with pytest.raises(LmscopeError, match="distance"):
        tree_projection(ad, ["the dog"], distance="manhattan")


# ------------------------------------------------------------------------------------------------
# Sub-word alignment
# ------------------------------------------------------------------------------------------------
def test_subword_alignment_with_offsets_and_without():
    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "do", "##g", "##s", "bark",
                                         ",", "un", "##real"])}
    t = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = Whitespace()
    t.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]")
    enc = align(fast, ["the", "dogs,", "bark", "unreal"])
    assert enc.word_of.tolist() == [-1, 0, 1, 1, 1, 1, 2, 3, 3, -1]  # 'dogs,' = do ##g ##s ,

    class Slow:  # no offsets: every word tokenized on its own
        is_fast = False
        bos_token_id = None

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": fast(text.strip(), add_special_tokens=False)["input_ids"]}

        def build_inputs_with_special_tokens(self, ids):
            return [2] + ids + [3]

    assert align(Slow(), ["the", "dogs,", "bark"]).word_of.tolist() == [-1, 0, 1, 1, 1, 1, 2, -1]
    word = align(WordTokenizer(["the", "dog"]), ["the", "dog", "zebra"], add_bos=True)
    assert word.ids[0] == WordTokenizer.bos_id and word.word_of.tolist() == [-1, 0, 1, 2]


# ------------------------------------------------------------------------------------------------
# Scores
# ------------------------------------------------------------------------------------------------
def test_f1_of_a_tree_against_itself_and_branching_baselines():
    words = "a b c d".split()
    tree = balanced(words)
    assert prf([bracket_match(tree, tree)])["f1"] == 1.0
    # left {(0,1),(0,2),(0,3)} vs right {(2,3),(1,3),(0,3)}: only the whole sentence is shared
    p = prf([bracket_match(right_branching(words), left_branching(words))])
    assert (p["matched"], p["predicted"], p["gold"]) == (1, 3, 3)
    assert p["f1"] == pytest.approx(1 / 3)
    # pooled over the corpus, not averaged per sentence
    pooled = prf([bracket_match(right_branching(words), left_branching(words)),
                  bracket_match(left_branching("a b".split()), right_branching("a b".split()))])
    assert pooled["precision"] == pytest.approx(2 / 4) and pooled["f1"] == pytest.approx(0.5)
    assert prf([bracket_match("a", "a")])["f1"] is None


def test_parse_f1_lives_in_the_base_and_pools_like_prf():
    import lmscope.data.trees as base
    import lmscope.trees as tp

    assert tp.prf is base.prf and tp.bracket_match is base.bracket_match and tp.parse_f1 is base.parse_f1
    words = "a b c d".split()
    pred = [right_branching(words), left_branching("a b".split())]
    gold = [left_branching(words), right_branching("a b".split())]
    got = base.parse_f1(pred, gold)
    assert got == prf([bracket_match(p, g) for p, g in zip(pred, gold)])
    assert (got["matched"], got["predicted"], got["gold"]) == (2, 4, 4) and got["f1"] == pytest.approx(0.5)
    with pytest.raises(LmscopeError, match="2 predicted trees but 1 gold"):
        base.parse_f1(pred, gold[:1])
    with pytest.raises(LmscopeError, match="tree 1: the predicted tree's words"):
        base.parse_f1([("a", "x")], [("a", "b")])


def test_t_score_is_zero_when_all_splits_are_equally_good():
    n = 7
    chart = np.triu(np.full((n, n), 0.8))
    chart[np.tril_indices(n, -1)] = np.nan
    tree, nodes = decode(chart, list("abcdefg"))
    assert len(nodes) == n - 1
    for seed in range(5):
        assert t_score(chart, nodes, seed) == 0.0


def test_result_api_baselines_table_and_layer_sweep():
    model, tok = _small(causal=True, seed=6)
    golds = ["(the (dog barks))", "(((the (big dog)) saw) (a (small cat)))", None, "(cats sleep)", "dog"]
    res = tree_projection((model, tok), SENTENCES, gold_trees=golds, seed=3)
    assert set(res.baseline_f1) == {"left", "right", "balanced", "random"}
    gold_trees = [parse_bracketed(g) for g in golds if g is not None]
    expected = prf([bracket_match(right_branching(leaves(g)), g) for g in gold_trees])["f1"]
    assert res.baseline_f1["right"] == pytest.approx(expected)
    table = res.table()
    assert list(table["index"]) == [0, 1, 2, 3, 4] and "f1_random" in table.columns
    assert np.isnan(table["f1"][2]) or table["f1"][2] is None
    d = json.loads(dumps(res.to_dict()))  # strict JSON: NaN below the diagonal becomes null
    assert d["sentences"] == 5 and len(d["per_sentence"][1]["chart"]) == 7
    again = tree_projection((model, tok), SENTENCES, gold_trees=golds, seed=3)
    assert again.t_score == res.t_score and [s.bracketed for s in again.sentences] == [s.bracketed for s in res.sentences]
    sweep = tree_projection((model, tok), SENTENCES, gold_trees=golds, layer=[1, 2, 3])
    assert isinstance(sweep, LayerSweepResult) and list(sweep.table()["layer"]) == [1, 2, 3]
    for layer in (1, 2, 3):  # one set of passes for all layers gives each layer's own charts
        alone = tree_projection((model, tok), SENTENCES, layer=layer)
        assert all(np.allclose(a.chart, b.chart, equal_nan=True, atol=1e-9)
                   for a, b in zip(alone.sentences, sweep.results[layer].sentences, strict=True))
    eu = tree_projection((model, tok), SENTENCES[:2], distance="euclidean")
    assert np.nanmax(eu.sentences[1].chart) <= 1.0 + 1e-12
    with pytest.raises(LmscopeError, match="sentence 1: the gold tree's leaves"):
        tree_projection((model, tok), SENTENCES[:2], gold_trees=[None, "(the dog)"])


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------
def _one_error_line(capsys, argv) -> str:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmscope: error:") and "Traceback" not in err + out
    return lines[0]


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    model, tok = _small(causal=True, seed=7, max_len=16)
    return model.save(tmp_path_factory.mktemp("trees") / "small", tokenizer=tok)


def test_cli_writes_trees_table_summary_plots_and_report(tmp_path, capsys, small_dir):
    from lmscope.data.suites import make_suite

    rows = make_suite("tense-inflection", 6, 0, 0, seed=0)
    data = tmp_path / "ti.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    out = tmp_path / "report"
    rc = main(["trees", str(small_dir), "--data", str(data), "--sentence", "2", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0 and "t-score" in printed and "induced:" in printed
    for name in ("index.html", "trees.jsonl", "trees.csv", "trees_summary.json", "trees_chart_2.png",
                 "trees_tree_2.png"):
        assert (out / name).is_file(), name
    recs = [json.loads(line) for line in (out / "trees.jsonl").read_text().splitlines()]
    assert len(recs) == 6 and recs[2]["gold"] == rows[2]["tree"]
    assert parse_bracketed(recs[2]["tree"]) and recs[2]["where"].endswith("ti.jsonl:3")
    summary = json.loads((out / "trees_summary.json").read_text())
    assert summary["sentences"] == 6 and 0 <= summary["f1"] <= 1 and "random" in summary["baseline_f1"]
    # --json, plain text and bracketed-tree files, --limit, a per-layer table
    text = tmp_path / "plain.txt"
    text.write_text("the dog barks\n\n  \nthe big dog saw a small cat\n")
    assert main(["trees", str(small_dir), "--data", str(text), "--json", "--layer", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layer"] == 2 and doc["sentences"] == 2 and doc["per_sentence"][1]["where"].endswith("plain.txt:4")
    trees = tmp_path / "trees.txt"
    trees.write_text("((the dog) barks)\n(cats sleep)\n((a cat) sleeps)\n")
    read = read_sentence_file(trees)
    assert read.kind == "trees" and read.sentences[0] == ["the", "dog", "barks"] and read.where[2].endswith(":3")
    assert main(["trees", str(small_dir), "--data", str(trees), "--json", "--limit", "2", "--layer", "1,3",
                 "--out", str(tmp_path / "layers")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["layer"] for r in doc["layers"]] == [1, 3] and doc["sentences"] == 2
    assert (tmp_path / "layers" / "trees_layers.png").is_file()


def test_cli_bad_inputs_give_one_line(tmp_path, capsys, small_dir):
    good = tmp_path / "good.txt"
    good.write_text("the dog barks\n")
    assert "layer 9 is out of range" in _one_error_line(capsys, ["trees", small_dir, "--data", good, "--layer", 9])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "the dog barks"}) + "\n\n"
                   + json.dumps({"text": "the dog barks", "tree": "((the cat) barks)"}) + "\n")
    line = _one_error_line(capsys, ["trees", small_dir, "--data", bad])
    assert "bad.jsonl:3" in line and "do not match" in line
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    assert "holds no sentences" in _one_error_line(capsys, ["trees", small_dir, "--data", empty])
    long = tmp_path / "long.txt"
    long.write_text("the dog\n" + " ".join(["dog"] * 20) + "\n")
    line = _one_error_line(capsys, ["trees", small_dir, "--data", long])
    assert "long.txt:2" in line and "context of 16 tokens" in line
    assert "--sentence 5 is out of range" in _one_error_line(capsys, ["trees", small_dir, "--data", good,
                                                                      "--sentence", 5])
    assert "no such file" in _one_error_line(capsys, ["trees", small_dir, "--data", tmp_path / "nope.txt"])
    treefile = tmp_path / "t.txt"
    treefile.write_text("((the dog) barks)\n((the dog) barks\n")
    assert "t.txt:2" in _one_error_line(capsys, ["trees", small_dir, "--data", treefile])


def test_cli_on_a_hugging_face_encoder_directory(tmp_path, capsys, hf_models):
    model, tok = hf_models["bert"]
    d = tmp_path / "bert"
    model.save_pretrained(d)
    tok.save_pretrained(d)
    text = tmp_path / "s.txt"
    text.write_text("the dog barks\nthe big dog saw a small cat\n")
    assert main(["trees", str(d), "--data", str(text), "--layer", "1,3", "--threshold", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["causal"] is False and [r["layer"] for r in doc["layers"]] == [1, 3]
    assert "layer 4 is out of range" in _one_error_line(capsys, ["trees", d, "--data", text, "--layer", 4])


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_last_layer_is_the_models_own_last_hidden_state(hf_models, family):
    """Layer L includes the final norm of pre-LN models, like transformers' hidden_states[-1]."""
    model, tok = hf_models[family]
    ad = make_adapter(model, tok)
    words = "the big dog saw a small cat".split()
    enc = ad.encode(words)
    ids = torch.tensor([enc.ids])
    with torch.no_grad():
        ref = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
    got = ad.hidden(ids, torch.ones_like(ids), None, [ad.n_layers], 0)[ad.n_layers][0]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_a_bare_decoder_body_is_treated_as_causal(hf_models):
    """A LlamaModel without its LM head is still causal: a span pass over every word is the ordinary pass."""
    import transformers as T

    from lmscope.models.sources import is_causal

    model, tok = hf_models["llama"]
    body = model.model
    assert is_causal(body) and is_causal(model) and not is_causal(hf_models["bert"][0])
    assert isinstance(body, T.LlamaModel)
    ad = make_adapter(body, tok)
    assert ad.causal
    words = "the big dog saw a small cat".split()
    full = ad.word_vectors([words], spans=[(0, len(words) - 1)])[0]
    plain = ad.word_vectors([words])[0]
    assert np.abs(full - plain).max() < 1e-5


def test_sentence_file_format_override(tmp_path):
    from lmscope.trees import read_sentence_file

    p = tmp_path / "dyck.txt"
    p.write_text("( [ ] )\n[ ( ) ]\n")
    assert read_sentence_file(p, "text").sentences == [["(", "[", "]", ")"], ["[", "(", ")", "]"]]
    with pytest.raises(LmscopeError):
        read_sentence_file(p)  # auto reads brackets as trees: these lines are not trees of words
    with pytest.raises(LmscopeError, match="unknown sentence-file format"):
        read_sentence_file(p, "csv")


def test_limit_takes_a_seeded_sample_in_file_order(tmp_path, capsys, small_dir):
    """--limit N draws N sentences with --seed (the choice EvalTask.sample makes), kept in file order,
    not the first N; the same seed gives the same sample."""
    from lmscope.data.evalsets import EvalTask, sample_indices

    text = tmp_path / "many.txt"
    lines = [f"the dog {'big ' * (i % 3)}barks" if i % 2 else f"a cat{' sleeps' * (1 + i % 4)}" for i in range(20)]
    text.write_text("\n".join(lines) + "\n")
    full = read_sentence_file(text)
    for seed in (0, 1, 2):
        part = full.sample(5, seed)
        keep = sample_indices(20, 5, seed)
        assert keep == sorted(keep) and len(set(keep)) == 5
        assert part.where == [f"{text}:{i + 1}" for i in keep] and part.sentences == [lines[i].split() for i in keep]
        # the same choice as the evaluation sets' --limit
        task = EvalTask("t", "text", [{"text": s} for s in lines])
        assert [r["text"] for r in task.sample(5, seed).rows] == [lines[i] for i in keep]
    assert {tuple(full.sample(5, s).where) for s in range(5)} != {tuple(full.where[:5])}  # not the first N
    assert full.sample(5, 3).where == full.sample(5, 3).where and full.sample(50, 0).where == full.where
    assert full.sample(None).where == full.where
    with pytest.raises(LmscopeError, match="--limit must be at least 1"):
        full.sample(0)

    assert main(["trees", str(small_dir), "--data", str(text), "--limit", "4", "--seed", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["where"] for s in doc["per_sentence"]] == [f"{text}:{i + 1}" for i in sample_indices(20, 4, 3)]
    assert "argument --limit: must be an integer >= 1" in _one_error_line(capsys, ["trees", small_dir, "--data", text, "--limit", 0])


def test_checkup_tree_sentences_are_those_of_its_printed_command(tmp_path, capsys):
    """The check-up's trees step names `data make ... --n-val 4n` and `trees --limit n --seed S`: that
    command reads exactly the sentences the check-up used."""
    from lmscope.checkup import trees_sentences

    words, golds = trees_sentences(10, 2)
    assert main(["data", "make", "question-formation", "--out", str(tmp_path / "qf"), "--n-train", "0",
                 "--n-val", "40", "--n-gen", "0", "--seed", "2", "--quiet"]) == 0
    capsys.readouterr()
    read = read_sentence_file(tmp_path / "qf" / "val.jsonl").sample(10, 2)
    assert read.sentences == words and read.gold_trees == golds
    assert read.where != read_sentence_file(tmp_path / "qf" / "val.jsonl").where[:10]
