"""Beam search over attachments: brute-force enumeration, the recomputing reference, greedy decoding,
and a tiny trained model's parses and generations."""

from __future__ import annotations

import math

import pytest
import torch

from lmscope.data.trees import parse_bracketed, to_bracketed
from lmscope.errors import LmscopeError
from lmscope.models.small_tokenizer import WordTokenizer
from lmscope.pushdown.beam import (
    beam_search,
    beam_search_reference,
    greedy_generate,
    greedy_parse,
    joint_log_probs,
    lm_log_likelihood,
)
from lmscope.pushdown.model import PushdownConfig, PushdownLM
from lmscope.pushdown.tape import Stack, tree_from_attachments
from lmscope.pushdown.train import example_from_tree, train_pushdown
from lmscope.train.loop import TrainConfig


def random_model(seed=0, pushdown_layers=None) -> PushdownLM:
    """A random model whose depth tables are not zero (so the tape changes every score)."""
    cfg = PushdownConfig(vocab_size=20, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_relative=5,
                         pushdown_layers=pushdown_layers)
    model = PushdownLM(cfg, seed=seed).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g))
            elif p.dim() == 2:  # sharper distributions than the initialization's
                p.mul_(4.0)
    return model


def every_sequence(n: int) -> list[list[int]]:
    out = []

    def grow(stack: Stack, seq: list[int]):
        if len(seq) == n:
            out.append(seq)
            return
        for a in stack.allowed():
            s = stack.copy()
            s.push(a)
            grow(s, seq + [a])

    grow(Stack(), [])
    return out


@pytest.mark.parametrize("n_words", [4, 5])
def test_wide_beam_equals_brute_force_enumeration(n_words):
    model = random_model(seed=n_words)
    ids = [2, *range(5, 5 + n_words), 3]
    seqs = every_sequence(n_words)
    assert len(seqs) == {4: 14, 5: 42}[n_words]  # Catalan numbers: one sequence per binary tree
    scores = torch.tensor(joint_log_probs(model, ids, seqs), dtype=torch.float64)
    assert torch.all(torch.isfinite(scores))
    res = beam_search(model, ids, beam=len(seqs))
    assert len(res.attachments) == len(seqs) and sorted(map(tuple, res.attachments)) == sorted(map(tuple, seqs))
    assert res.log_likelihood == pytest.approx(float(torch.logsumexp(scores, 0)), abs=1e-5)
    assert res.best == seqs[int(scores.argmax())]
    by_seq = {tuple(s): float(v) for s, v in zip(seqs, scores, strict=True)}
    for a, s in zip(res.attachments, res.scores, strict=True):
        assert s == pytest.approx(by_seq[tuple(a)], abs=1e-5)
    assert res.scores == sorted(res.scores, reverse=True)
    # the marginal is a proper distribution's log-prob over the attachments: a narrower beam is a lower bound
    narrow = beam_search(model, ids, beam=3)
    assert len(narrow.attachments) == 3 and narrow.log_likelihood < res.log_likelihood
    assert to_bracketed(res.tree) == to_bracketed(tree_from_attachments([str(i) for i in ids[1:-1]], res.best))


@pytest.mark.parametrize("beam", [1, 3, 8, 40])
def test_reordered_caches_equal_recomputation(beam):
    model = random_model(seed=7)
    ids = [2, 5, 9, 6, 11, 7, 8, 12, 10, 3]
    fast = beam_search(model, ids, beam)
    ref = beam_search_reference(model, ids, beam)
    assert fast.attachments == ref.attachments
    assert max(abs(a - b) for a, b in zip(fast.scores, ref.scores, strict=True)) < 1e-5
    assert fast.log_likelihood == pytest.approx(ref.log_likelihood, abs=1e-5)
    assert len(fast.attachments) == min(beam, 1430)  # 8 words: Catalan(8) = 1430 sequences


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_one_is_greedy(seed):
    model = random_model(seed=seed)
    ids = [2, 5, 6, 7, 8, 9, 10, 3]
    attach, score, tree = greedy_parse(model, ids, words=list("abcdef"))
    res = beam_search(model, ids, 1, words=list("abcdef"))
    assert res.attachments == [attach] and res.scores[0] == pytest.approx(score, abs=1e-9)
    assert res.log_likelihood == pytest.approx(score, abs=1e-9)
    assert to_bracketed(res.tree) == to_bracketed(tree)
    assert joint_log_probs(model, ids, [attach])[0] == pytest.approx(score, abs=1e-5)


def test_plain_model_scores_with_the_lm_alone():
    model = random_model(pushdown_layers=())
    ids = [2, 5, 6, 7, 3]
    res = beam_search(model, ids, 4)
    x = torch.tensor([ids])
    with torch.no_grad():
        expected = float(model(x).logits[0, :-1].log_softmax(-1).gather(1, x[0, 1:, None]).sum())
    assert res.log_likelihood == pytest.approx(expected, abs=1e-5) == lm_log_likelihood(model, ids)
    assert res.tree is None and res.attachments == []
    gen = greedy_generate(model, [2, 5], 4, stop_ids=[3])
    assert gen.attachments == [] and 1 <= len(gen.ids) <= 4
    with pytest.raises(LmscopeError, match="no attachment head"):
        greedy_parse(model, ids)


def test_bad_inputs():
    model = random_model()
    with pytest.raises(LmscopeError, match="beam must be an integer >= 1"):
        beam_search(model, [2, 5, 3], 0)
    with pytest.raises(LmscopeError, match="at least one word"):
        beam_search(model, [2, 3], 2)
    with pytest.raises(LmscopeError, match="token ids"):
        beam_search(model, [2, 50, 3], 2)
    with pytest.raises(LmscopeError, match="2 words"):
        beam_search(model, [2, 5, 3], 2, words=["a", "b"])
    with pytest.raises(LmscopeError, match="not allowed"):
        joint_log_probs(model, [2, 5, 6, 3], [[0, 2]])
    with pytest.raises(LmscopeError, match="max_new"):
        greedy_generate(model, [2], -1)


# ------------------------------------------------------------------------------------------------
# A tiny trained model
# ------------------------------------------------------------------------------------------------
TREES = ["(a (b (c d)))", "(((w x) y) z)", "((p q) (r s))", "(e (f (g (h i))))", "((((j k) l) m) n)",
         "((a b) (c d))"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    trees = [parse_bracketed(t, labeled=False) for t in TREES]
    tok = WordTokenizer.build([" ".join("abcdefghijklmnpqrswxyz")])
    examples = [example_from_tree(tok, t) for t in trees]
    cfg = PushdownConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64)
    tc = TrainConfig(steps=300, batch_size=6, lr=3e-3, warmup=20, eval_every=0, ckpt_every=0, seed=1)
    summary = train_pushdown(tmp_path_factory.mktemp("pd") / "run", cfg, tok, examples, tc, quiet=True)
    return PushdownLM.load(f"{summary['final_checkpoint']}/model"), tok, trees, examples


def test_trained_model_parses_its_treebank(trained):
    model, tok, trees, examples = trained
    for (ids, attach), tree in list(zip(examples, trees, strict=True))[1:5]:  # 0 and 5: the same words
        words = tok.decode(ids).split()
        res = beam_search(model, ids, 8, words=words)
        assert res.best == attach and to_bracketed(res.tree) == to_bracketed(tree)
        assert greedy_parse(model, ids, words)[0] == attach
    # the same words under two structures (right-branching and balanced): the two best hypotheses
    ids = tok.encode("a b c d", add_bos=True, add_eos=True)
    top2 = beam_search(model, ids, 14).attachments[:2]
    assert sorted(map(tuple, top2)) == sorted([(0, 1, 2, 0), (0, 0, 2, 1)])


def test_wider_beam_is_never_worse_on_the_trained_model(trained):
    model, tok, trees, _ = trained
    sentences = [t.split() for t in ("a b c d", "w x y z", "a b r s", "e f g h i", "j k l m n", "p q c d w")]
    for words in sentences:
        ids = tok.encode(" ".join(words), add_bos=True, add_eos=True)
        one = beam_search(model, ids, 1).scores[0]
        for beam in (2, 4, 16, 64):
            assert beam_search(model, ids, beam).scores[0] >= one - 1e-5  # batch sizes differ: float rounding


def test_greedy_generation_with_the_models_own_attachments(trained):
    model, tok, trees, examples = trained
    for ids, attach in examples[1:5]:  # the first word decides the rest of the sentence
        gen = greedy_generate(model, ids[:2], max_new=10, stop_ids=[tok.eos_id])
        assert gen.ids == ids[2:]
        assert gen.attachments == attach
    # given attachments for the prefix are used as they are
    gen = greedy_generate(model, ids[:3], max_new=0, prefix_attachments=[0, 1])
    assert gen.ids == [] and gen.attachments == [0, 1]
    assert math.isfinite(beam_search(model, examples[0][0], 4).log_likelihood)
