"""Spectral math with planted ground truth: intruders, top-k SVD, power-law fits, metrics, SVD cache.

The intruder cases are built so that the expected count follows from linear algebra, not from a
lucky seed. One matrix of the tiny Llama base (``0.q``) is planted as ``W = Q1 diag(s) Q2^T`` with
random orthogonal ``Q1, Q2`` and well-separated singular values ``s`` (2.0 down to 0.12, step 0.04),
so its left singular vectors are exactly the columns of ``Q1``. Tuned copies edit that matrix:

* rank-1 intruder: ``W + 3 s_1 u v^T`` with ``u = Q1 c``, ``v = Q2 c`` and ``c`` spread with equal
  weight (random signs) over the base's 8 *lowest* singular directions. In the ``Q1, Q2`` bases the
  matrix is block diagonal: the top 40 directions are untouched (singular vectors exactly those of
  the base), and the bottom 8x8 block is ``D_b + 3 s_1 c c^T`` (symmetric positive definite). That
  block's top eigenvector is ``(lambda - D_b)^-1 c`` with ``lambda > 6`` and ``D_b <= 0.44``: all
  its 8 components have |cos| within 6% of 1/sqrt(8) = 0.354 < 0.5, its eigenvalue (> 6) is the
  largest of the tuned matrix, and the block's other eigenvalues interlace with D_b (<= 0.44), far
  below the untouched s_2..s_9. So among the top-10 exactly one vector (rank 0) is an intruder.
* rotation ``W' = R W`` with ``R`` a rotation by theta in the plane of two base left singular vectors
  ``u_a, u_b``: the singular values are unchanged, the left singular vectors are ``R u_i``; ``R u_a``
  has max |cos| = max(|cos theta|, |sin theta|) >= 0.707, so no rotation is an intruder at eps=0.5,
  while a threshold above that max makes exactly the rotated vectors that lie in the top-k intruders.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import build_tiny_model, edit_copy

from lmscope.errors import LmscopeError
from lmscope.models import open_model
from lmscope.spectral import (
    SVDCache,
    analyze_spectrum,
    content_key,
    find_intruders,
    intruder_scores,
    mitigate_intruders,
    powerlaw_fit,
    spectrum_metrics,
    topk_svd,
)
from lmscope.spectral import svd as svd_mod

HIDDEN, INTER, LAYERS, HEADS, VOCAB = 48, 96, 2, 4, 64
PLANTED = "model.layers.0.self_attn.q_proj.weight"
PLANTED_KEY = "0.q"
S_PLANTED = torch.linspace(2.0, 0.12, HIDDEN, dtype=torch.float64)  # gaps of 0.04
LOW = list(range(40, 48))  # the base's 8 lowest singular directions


@pytest.fixture(autouse=True)
def _lmscope_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path_factory.mktemp("lmscope-cache")))


# ------------------------------------------------------------------------------------------ builders
def _orthogonal(n: int, gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def _save_llama(path: Path, hidden=HIDDEN, layers=LAYERS, seed=0) -> Path:
    torch.manual_seed(seed)
    build_tiny_model("llama", seed=None, hidden_size=hidden, intermediate_size=INTER, num_hidden_layers=layers,
                     num_attention_heads=HEADS, num_key_value_heads=HEADS, vocab_size=VOCAB).save_pretrained(path)
    return path


def _save_gpt2(path: Path) -> Path:
    torch.manual_seed(0)
    build_tiny_model("gpt2", seed=None, n_embd=HIDDEN, n_inner=None, n_layer=LAYERS, n_head=HEADS,
                     vocab_size=VOCAB).save_pretrained(path)
    return path


def _read(path: Path, name: str) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))[name]


def _tree_hash(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def _rotation(a: torch.Tensor, b: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotation by ``degrees`` in the plane of orthonormal a, b (identity on the complement)."""
    t = math.radians(degrees)
    n = a.shape[0]
    return (torch.eye(n, dtype=torch.float64) + (math.cos(t) - 1) * (torch.outer(a, a) + torch.outer(b, b))
            + math.sin(t) * (torch.outer(b, a) - torch.outer(a, b)))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Base checkpoint with a planted 0.q, its factors, and a factory of tuned copies."""
    root = tmp_path_factory.mktemp("planted")
    raw = _save_llama(root / "raw")
    gen = torch.Generator().manual_seed(1234)
    q1, q2 = _orthogonal(HIDDEN, gen), _orthogonal(HIDDEN, gen)
    w0 = (q1 * S_PLANTED) @ q2.t()
    base = edit_copy(raw, root / "base", {PLANTED: w0.float()})
    w0 = _read(base, PLANTED).double()  # exactly what is stored

    signs = torch.where(torch.rand(len(LOW), generator=gen) < 0.5, -1.0, 1.0).double()
    c = torch.zeros(HIDDEN, dtype=torch.float64)
    c[LOW] = signs / math.sqrt(len(LOW))
    u, v = q1 @ c, q2 @ c
    rank1 = edit_copy(base, root / "rank1", {PLANTED: (w0 + 3 * S_PLANTED[0] * torch.outer(u, v)).float()})
    same = shutil.copytree(base, root / "same")

    def rotated(a: int, b: int, degrees: float) -> Path:
        d = root / f"rot-{a}-{b}-{degrees}"
        if not d.exists():
            r = _rotation(q1[:, a], q1[:, b], degrees)
            edit_copy(base, d, {PLANTED: (r @ w0).float()})
        return d

    return {"root": root, "base": base, "rank1": rank1, "same": same, "rotated": rotated,
            "q1": q1, "q2": q2, "c": c, "u": u}


# ------------------------------------------------------------------------------------ intruder_scores
def test_intruder_scores_on_known_vectors():
    U0 = torch.eye(4)
    s2, h = 1 / math.sqrt(2), 0.5
    Ut = torch.tensor([[1.0, s2, h], [0.0, -s2, -h], [0.0, 0.0, h], [0.0, 0.0, h]])
    sim, best = intruder_scores(U0, Ut)
    assert sim.shape == (3, 4)
    np.testing.assert_allclose(sim[1], [s2, s2, 0, 0], atol=1e-7)  # absolute value: signs do not matter
    np.testing.assert_allclose(best, [1.0, s2, 0.5], atol=1e-7)


# ----------------------------------------------------------------------------- planted intruder cases
def test_rank1_update_spread_over_low_directions_is_exactly_one_intruder(planted):
    res = find_intruders(planted["base"], planted["rank1"], k=10, eps=0.5)
    assert res.total == 1
    t = res.table.set_index("key")
    assert len(t) == 7 * LAYERS
    assert t.loc[PLANTED_KEY, "n_intruders"] == 1
    assert t.loc[PLANTED_KEY, "intruder_ranks"] == [0]
    assert (t.drop(PLANTED_KEY)["n_intruders"] == 0).all()
    assert (t.drop(PLANTED_KEY)["delta_fro"] == 0).all()
    # the intruder is the new top direction, with singular value > 3 s_1 = 6
    assert t.loc[PLANTED_KEY, "intruder_singular_values"][0] > 3 * float(S_PLANTED[0])
    mc = t.loc[PLANTED_KEY, "max_cos"]
    assert len(mc) == 10
    # provable: |cos| of the top direction with each of the 8 low base vectors is 1/sqrt(8) +- 6%
    assert 0.354 * 0.94 < mc[0] < 0.354 * 1.06
    assert min(mc[1:]) > 0.999  # s_1..s_9 of the base are untouched
    # the similarity row of the intruder: mass only on the 8 low base vectors, near-equal weights
    sim = res.similarity[PLANTED_KEY]
    assert sim.shape == (10, HIDDEN)
    np.testing.assert_allclose(sim[0, LOW], 1 / math.sqrt(8), rtol=0.06)
    assert sim[0, :40].max() < 1e-4
    # the top left singular vector reported is u (up to sign)
    top_u = res.directions[PLANTED_KEY].U[:, 0].double()
    assert abs(float(top_u @ planted["u"])) > 0.99
    assert res.signature_matrix() == PLANTED_KEY
    summary = res.summary()
    assert summary["total_intruders"] == 1 and summary["matrices_with_intruders"] == 1
    assert summary["by_role"]["q"] == 1
    assert dict(zip(res.by_layer()["layer"], res.by_layer()["n_intruders"])) == {0: 1, 1: 0}


def test_rank1_intruder_respects_layer_and_role_filters(planted):
    assert find_intruders(planted["base"], planted["rank1"], layers=[1]).total == 0
    res = find_intruders(planted["base"], planted["rank1"], roles=["q", "down"], layers=[0])
    assert list(res.table["key"]) == ["0.q", "0.fc_out"]
    assert res.total == 1


def test_rank1_intruder_is_still_found_with_k_1_and_k_larger_than_the_matrix(planted):
    assert find_intruders(planted["base"], planted["rank1"], k=1).total == 1
    res = find_intruders(planted["base"], planted["rank1"], k=500)
    t = res.table.set_index("key")
    assert len(t.loc[PLANTED_KEY, "max_cos"]) == HIDDEN  # k is capped at min(shape)
    assert len(t.loc["0.fc_in", "max_cos"]) == HIDDEN    # 96 x 48
    # the whole bottom 8x8 block is re-mixed: its other 7 vectors may or may not be intruders, but the
    # top direction is one, and the untouched 40 are not
    assert 0 in t.loc[PLANTED_KEY, "intruder_ranks"]
    assert all(r == 0 or r >= 40 for r in t.loc[PLANTED_KEY, "intruder_ranks"])


@pytest.mark.parametrize(
    ("a", "b", "degrees", "eps", "expected_ranks", "expected_cos"),
    [
        (0, 1, 30, 0.5, [], math.cos(math.radians(30))),        # rotation within the top-2 plane
        (0, 1, 30, 0.9, [0, 1], math.cos(math.radians(30))),    # both rotated vectors below 0.9
        (0, 1, 30, 0.85, [], math.cos(math.radians(30))),       # 0.866 > 0.85
        (0, 40, 80, 0.5, [], math.sin(math.radians(80))),       # u1 turned towards low-ranked u_41
        (0, 40, 80, 0.99, [0], math.sin(math.radians(80))),     # only R u1 is in the top 10
        (0, 40, 80, 0.98, [], math.sin(math.radians(80))),      # 0.985 > 0.98
    ],
)
def test_rotations_in_a_plane_of_base_vectors(planted, a, b, degrees, eps, expected_ranks, expected_cos):
    tuned = planted["rotated"](a, b, degrees)
    res = find_intruders(planted["base"], tuned, k=10, eps=eps)
    t = res.table.set_index("key")
    assert res.total == len(expected_ranks)
    assert t.loc[PLANTED_KEY, "intruder_ranks"] == expected_ranks
    mc = t.loc[PLANTED_KEY, "max_cos"]
    assert mc[0] == pytest.approx(expected_cos, abs=1e-4)
    if b == 1:
        assert mc[1] == pytest.approx(expected_cos, abs=1e-4)
    assert min(mc[2:]) > 0.999
    # singular values are those of the base: a rotation changes directions only
    np.testing.assert_allclose(res.directions[PLANTED_KEY].S.double().numpy(), S_PLANTED[:10].numpy(), rtol=1e-5)


def test_identical_checkpoints_have_no_intruders_and_max_cos_1(planted):
    for tuned in (planted["same"], planted["base"]):
        res = find_intruders(planted["base"], tuned)
        assert res.total == 0
        assert (res.table["delta_fro"] == 0).all()
        for mc in res.table["max_cos"]:
            assert len(mc) == 10
            assert mc == pytest.approx([1.0] * 10, abs=1e-5)


def test_tiny_noise_everywhere_gives_no_intruders(planted, tmp_path):
    """Every matrix differs (no equality shortcut), but by 1e-6 relative: still no intruders."""
    src = open_model(planted["base"])
    gen = torch.Generator().manual_seed(7)
    edits = {}
    for ref in src.matrices():
        w = src.load(ref)
        edits[ref.tensor] = w + 1e-6 * w.abs().max() * torch.randn(w.shape, generator=gen)
    tuned = edit_copy(planted["base"], tmp_path / "noisy", edits)
    res = find_intruders(planted["base"], tuned)
    assert (res.table["delta_fro"] > 0).all()
    assert res.total == 0


@pytest.mark.parametrize(("k", "eps"), [(0, 0.5), (-3, 0.5), (2.5, 0.5), (10, 0.0), (10, 1.5), (10, -0.1)])
def test_k_and_eps_are_validated(planted, k, eps):
    with pytest.raises(LmscopeError):
        find_intruders(planted["base"], planted["rank1"], k=k, eps=eps)


# ---------------------------------------------------------------------------------------- mitigation
def test_mitigation_halves_the_intruder_and_leaves_everything_else(planted, tmp_path):
    base, tuned = planted["base"], planted["rank1"]
    res = find_intruders(base, tuned)
    before = {d: _tree_hash(d) for d in (base, tuned)}
    out = tmp_path / "mitigated"
    path = mitigate_intruders(res, out, scale=0.5, quiet=True)
    assert Path(path) == out
    assert {d: _tree_hash(d) for d in (base, tuned)} == before  # inputs untouched

    src = open_model(out)
    assert len(src.matrices()) == 7 * LAYERS
    w_t = open_model(tuned).load(PLANTED_KEY)
    w_m = src.load(PLANTED_KEY)
    s_t = torch.linalg.svdvals(w_t.double())
    s_m = torch.linalg.svdvals(w_m.double())
    # the intruder (rank 0, still the largest after halving: 0.5 * 6.2 > 2) is halved ...
    assert float(s_m[0]) == pytest.approx(0.5 * float(s_t[0]), rel=1e-4)
    # ... and the next singular values are unchanged
    np.testing.assert_allclose(s_m[1:10].numpy(), s_t[1:10].numpy(), rtol=1e-4)
    # the direction is kept: the new top left singular vector is still u
    u_m = torch.linalg.svd(w_m.double())[0][:, 0]
    assert abs(float(u_m @ planted["u"])) > 0.99

    from safetensors.torch import load_file

    sd_t = load_file(str(tuned / "model.safetensors"))
    sd_m = load_file(str(out / "model.safetensors"))
    assert set(sd_t) == set(sd_m)
    for name in sd_t:
        assert sd_m[name].dtype == sd_t[name].dtype
        if name != PLANTED:
            assert torch.equal(sd_m[name], sd_t[name]), name
            assert sd_m[name].numpy().tobytes() == sd_t[name].numpy().tobytes()
    assert (out / "config.json").read_bytes() == (tuned / "config.json").read_bytes()
    import json

    note = json.loads((out / "lmscope_edit.json").read_text())
    assert note["scale"] == 0.5 and note["matrices_edited"] == [PLANTED_KEY]

    # the result is a checkpoint transformers loads, and the intruder count is unchanged (direction kept)
    model = src.load_model()
    assert type(model).__name__ == "LlamaForCausalLM"
    assert find_intruders(base, out).total == 1


def test_mitigation_scale_0_removes_the_intruder(planted, tmp_path):
    base, tuned = planted["base"], planted["rank1"]
    res = find_intruders(base, tuned)
    out = mitigate_intruders(res, tmp_path / "m0", scale=0.0, quiet=True)
    s_t = torch.linalg.svdvals(open_model(tuned).load(PLANTED_KEY).double())
    s_m = torch.linalg.svdvals(open_model(out).load(PLANTED_KEY).double())
    np.testing.assert_allclose(s_m[:9].numpy(), s_t[1:10].numpy(), rtol=1e-4)
    assert float(s_m[-1]) < 1e-5 * float(s_t[0])  # one direction removed entirely
    assert find_intruders(base, out).total == 0


def test_mitigation_scale_1_is_a_no_op(planted, tmp_path):
    res = find_intruders(planted["base"], planted["rank1"])
    out = mitigate_intruders(res, tmp_path / "m1", scale=1.0, quiet=True)
    w_t = open_model(planted["rank1"]).load(PLANTED_KEY)
    torch.testing.assert_close(open_model(out).load(PLANTED_KEY), w_t, rtol=0, atol=1e-6)


@pytest.mark.parametrize("scale", [-0.1, 1.5])
def test_mitigation_scale_out_of_range(planted, tmp_path, scale):
    res = find_intruders(planted["base"], planted["rank1"])
    with pytest.raises(LmscopeError):
        mitigate_intruders(res, tmp_path / "bad", scale=scale, quiet=True)
    assert not (tmp_path / "bad").exists()


def test_mitigation_refuses_to_overwrite_the_tuned_checkpoint(planted, tmp_path):
    tuned = shutil.copytree(planted["rank1"], tmp_path / "tuned")
    res = find_intruders(planted["base"], tuned)
    before = _tree_hash(tuned)
    with pytest.raises(LmscopeError):
        mitigate_intruders(res, tuned, scale=0.5, quiet=True)
    assert _tree_hash(tuned) == before


# ---------------------------------------------------------------------------- architecture mismatch
def test_llama_vs_gpt2_is_an_error(planted, tmp_path):
    gpt2 = _save_gpt2(tmp_path / "gpt2")
    with pytest.raises(LmscopeError, match="architectures disagree"):
        find_intruders(planted["base"], gpt2)
    with pytest.raises(LmscopeError, match="architectures disagree"):
        find_intruders(gpt2, planted["base"])


def test_llama_with_other_hidden_size_is_an_error(planted, tmp_path):
    other = _save_llama(tmp_path / "h32", hidden=32)
    with pytest.raises(LmscopeError):
        find_intruders(planted["base"], other)


def test_llama_with_more_or_fewer_layers_is_an_error(planted, tmp_path):
    deeper = _save_llama(tmp_path / "l3", layers=3)
    with pytest.raises(LmscopeError):
        find_intruders(planted["base"], deeper)
    with pytest.raises(LmscopeError):
        find_intruders(deeper, planted["base"])


# ------------------------------------------------------------------------------------------ topk_svd
def _planted_matrix(m: int, n: int, s: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    qa = torch.linalg.qr(torch.randn(m, len(s), generator=gen, dtype=torch.float64))[0]
    qb = torch.linalg.qr(torch.randn(n, len(s), generator=gen, dtype=torch.float64))[0]
    return ((qa * s.double()) @ qb.t()).float()


def _compare_topk(w: torch.Tensor, k: int) -> None:
    top = topk_svd(w, k)
    U, S, Vh = torch.linalg.svd(w.double(), full_matrices=False)
    assert top.U.shape == (w.shape[0], k) and top.S.shape == (k,) and top.Vh.shape == (k, w.shape[1])
    np.testing.assert_allclose(top.S.double().numpy(), S[:k].numpy(), rtol=1e-4)
    cos_u = (top.U.double() * U[:, :k]).sum(0).abs()
    cos_v = (top.Vh.double() * Vh[:k]).sum(1).abs()
    assert float(cos_u.min()) > 0.999 and float(cos_v.min()) > 0.999


@pytest.mark.parametrize(("shape", "k"), [((30, 20), 5), ((20, 50), 3), ((64, 64), 10), ((40, 40), 40)])
def test_topk_svd_small_matrices_match_full_svd(shape, k):
    gen = torch.Generator().manual_seed(shape[0] * 1000 + shape[1])
    _compare_topk(torch.randn(*shape, generator=gen), k)


@pytest.mark.parametrize(("shape", "k"), [((300, 200), 5), ((200, 320), 10), ((256, 256), 8)])
def test_topk_svd_iterative_path_matches_full_svd(shape, k, monkeypatch):
    """min dim > 3 (k + 10): subspace iteration runs; on a decaying spectrum it converges by itself."""
    assert min(shape) > 3 * (k + 10)
    r = min(shape)
    s = 10.0 * 0.9 ** torch.arange(r, dtype=torch.float64)
    w = _planted_matrix(*shape, s, seed=r)
    calls = []
    real = svd_mod._svd
    monkeypatch.setattr(svd_mod, "_svd", lambda x: calls.append(x.shape) or real(x))
    _compare_topk(w, k)
    assert calls == []  # converged without the full-SVD fallback


@pytest.mark.parametrize(("shape", "k"), [((300, 200), 5), ((150, 400), 10)])
def test_topk_svd_iterative_path_on_gaussian_matrices(shape, k):
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(*shape, generator=gen)
    top = topk_svd(w, k)
    S = torch.linalg.svdvals(w.double())
    np.testing.assert_allclose(top.S.double().numpy(), S[:k].numpy(), rtol=1e-4)
    # the triplets are genuine: W v = s u
    res = (w.double() @ top.Vh.double().t() - top.U.double() * top.S.double()).norm(dim=0)
    assert float(res.max()) < 1e-3 * float(S[0])


def test_topk_svd_k_is_capped_by_the_matrix():
    w = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    top = topk_svd(w, 10)
    assert top.S.shape == (4,)


# ------------------------------------------------------------------------------ power law and metrics
@pytest.mark.parametrize("alpha", [2.5, 4.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_powerlaw_fit_recovers_pareto_alpha(alpha, seed):
    rng = np.random.default_rng(seed)
    # density ~ x^-alpha for x >= 1  <=>  numpy's Lomax with shape alpha - 1, shifted by 1
    x = 1.0 + rng.pareto(alpha - 1.0, size=2000)
    fit = powerlaw_fit(x)
    assert fit["alpha"] == pytest.approx(alpha, abs=0.3)
    assert fit["tail_size"] >= 10 and fit["xmin"] >= 1.0
    assert 0 <= fit["ks_distance"] < 0.1


def test_powerlaw_fit_finds_the_tail_above_a_bulk():
    rng = np.random.default_rng(3)
    tail = 5.0 * (1.0 + rng.pareto(2.0, size=2000))  # alpha = 3 above xmin = 5
    bulk = rng.uniform(0.5, 4.5, size=2000)
    fit = powerlaw_fit(np.concatenate([bulk, tail]))
    assert fit["alpha"] == pytest.approx(3.0, abs=0.3)
    assert fit["xmin"] == pytest.approx(5.0, rel=0.2)


def test_powerlaw_fit_too_few_values_is_nan():
    fit = powerlaw_fit(np.arange(1.0, 6.0))
    assert math.isnan(fit["alpha"]) and fit["tail_size"] == 0
    assert math.isnan(powerlaw_fit(np.array([]))["alpha"])


def _ks_fit_by_loop(x: np.ndarray, min_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """The fit written as the definition reads: one candidate xmin at a time."""
    x = np.sort(x)
    alphas, ds = [], []
    for i in range(len(x) - min_tail + 1):
        tail = x[i:]
        n = len(tail)
        with np.errstate(divide="ignore"):  # a tail of equal values
            a = 1.0 + n / np.sum(np.log(tail / tail[0]))
        alphas.append(a)
        theo = 1.0 - (tail / tail[0]) ** (1.0 - a)
        ds.append(np.max(np.abs(np.arange(n) / n - theo)) if np.isfinite(a) and a > 1 else np.inf)
    return np.array(alphas), np.array(ds)


@pytest.mark.parametrize("min_tail", [2, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_powerlaw_fit_agrees_with_a_loop_over_candidates(seed, min_tail):
    rng = np.random.default_rng(seed)
    n_tail = 40 + 30 * seed                       # alpha = 2 + seed above xmin = 3, under a uniform bulk
    x = np.concatenate([rng.uniform(0.1, 3.0, size=300), 3.0 * (1.0 + rng.pareto(1.0 + seed, size=n_tail))])
    if seed == 2:
        x = np.round(x, 1)                        # ties
    alphas, ds = _ks_fit_by_loop(x, min_tail)
    i = int(np.argmin(ds))
    fit = powerlaw_fit(x, min_tail=min_tail)
    assert fit["tail_size"] == len(x) - i
    assert fit["alpha"] == pytest.approx(alphas[i], rel=1e-12)
    assert fit["ks_distance"] == pytest.approx(ds[i], rel=1e-9, abs=1e-12)
    assert fit["xmin"] == np.sort(x)[i]
    if min_tail == 10 and seed < 2:  # the planted exponent (rounding and 2-point tails can blur it)
        assert fit["alpha"] == pytest.approx(2.0 + seed, abs=0.6)


def test_ks_distances_of_every_candidate_match_the_loop():
    from lmscope.spectral.metrics import ks_distances

    rng = np.random.default_rng(7)
    x = np.sort(np.concatenate([rng.gamma(2.0, 1.0, size=700), 8.0 * (1.0 + rng.pareto(2.0, size=80))]))
    alphas, ds = _ks_fit_by_loop(x, 1)
    got = ks_distances(np.log(x), alphas)
    finite = np.isfinite(ds)
    np.testing.assert_allclose(got[finite], ds[finite], rtol=1e-9, atol=1e-12)
    assert np.isinf(got[~finite]).all()


@pytest.mark.parametrize("seed", range(6))
def test_ks_argmin_skips_candidates_but_picks_the_full_scan_minimum(seed):
    from lmscope.spectral.metrics import _KS_FULL_BELOW, _ks_max, ks_argmin, ks_distances

    rng = np.random.default_rng(seed)
    n_bulk, n_tail = int(rng.integers(150, 900)), int(rng.integers(10, 200))
    x = np.concatenate([rng.gamma(2.0, 1.0, size=n_bulk), 6.0 * (1.0 + rng.pareto(1.0 + seed / 2, size=n_tail))])
    if seed % 2:
        x = np.round(x, 1)                        # ties between candidates
    x = np.sort(x[x > 0])
    assert len(x) >= _KS_FULL_BELOW               # the pruned path
    logx = np.log(x)
    with np.errstate(invalid="ignore", divide="ignore"):  # tails of equal values have no exponent
        alphas, _ = _ks_fit_by_loop(x, 2)
    full = ks_distances(logx, alphas)
    i, d = ks_argmin(logx, alphas)
    assert i == int(np.argmin(full)) and d == full[i]
    # the strided maxima are lower bounds of the full distances (what makes skipping safe)
    rows = np.arange(len(alphas))
    for stride in (2, 5, 17):
        lower = _ks_max(logx, alphas, rows, stride)
        assert np.all(lower[np.isfinite(full)] <= full[np.isfinite(full)])
    # no usable exponent at all: no fit
    assert ks_argmin(logx, np.full(len(alphas), 0.5)) == (-1, math.inf)


def test_powerlaw_fit_on_a_long_planted_tail_uses_the_pruned_scan():
    rng = np.random.default_rng(11)
    tail = 2.0 * (1.0 + rng.pareto(2.5, size=600))  # alpha = 3.5 above xmin = 2
    x = np.concatenate([rng.uniform(0.05, 1.9, size=1400), tail])
    alphas, ds = _ks_fit_by_loop(x, 10)
    i = int(np.argmin(ds))
    fit = powerlaw_fit(x)
    assert fit["tail_size"] == len(x) - i
    assert fit["alpha"] == pytest.approx(alphas[i], rel=1e-12)
    assert fit["alpha"] == pytest.approx(3.5, abs=0.3)
    assert fit["xmin"] == pytest.approx(2.0, rel=0.15)


def test_spectrum_metrics_known_singular_values():
    n = 20
    w = torch.eye(n, dtype=torch.float64)
    w[0, 0] = 10.0
    s = torch.linalg.svdvals(w).numpy()
    m = spectrum_metrics(s, (n, n))
    assert m["rank"] == n
    assert m["spectral_norm"] == pytest.approx(10.0)
    assert m["frobenius_norm"] == pytest.approx(math.sqrt(100 + n - 1))
    assert m["stable_rank"] == pytest.approx((100 + n - 1) / 100)
    p = np.array([10.0] + [1.0] * (n - 1))
    p /= p.sum()
    assert m["effective_rank"] == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    q = np.array([100.0] + [1.0] * (n - 1))
    q /= q.sum()
    assert m["spectral_entropy"] == pytest.approx(-(q * np.log(q)).sum() / math.log(n))
    assert m["log_spectral_norm"] == pytest.approx(2.0)
    # order of the input does not matter
    assert spectrum_metrics(s[::-1].copy(), (n, n)) == pytest.approx(m, nan_ok=True)


def test_spectrum_metrics_rank_deficient_and_flat():
    m = spectrum_metrics(np.array([10.0, 1.0, 1.0, 0.0, 0.0]), (5, 7))
    assert m["rank"] == 3
    assert m["stable_rank"] == pytest.approx(1.02)
    flat = spectrum_metrics(np.ones(16), (16, 16))
    assert flat["stable_rank"] == pytest.approx(16)
    assert flat["effective_rank"] == pytest.approx(16)
    assert flat["spectral_entropy"] == pytest.approx(1.0)


def test_spectrum_metrics_zero_matrix_does_not_crash():
    s = torch.linalg.svdvals(torch.zeros(8, 5)).numpy()
    m = spectrum_metrics(s, (8, 5))
    assert m["rank"] == 0 and m["spectral_norm"] == 0.0 and m["frobenius_norm"] == 0.0
    assert m["stable_rank"] == 0.0 and m["effective_rank"] == 0.0
    assert math.isnan(m["alpha"])


# ------------------------------------------------------------------------------------------- SVDCache
def test_svd_cache_hits_and_misses(tmp_path):
    cache = SVDCache(tmp_path / "svd")
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(12, 9, generator=gen), torch.randn(12, 9, generator=gen)
    s1 = cache.full(a)
    assert (cache.hits, cache.misses) == (0, 1)
    s2 = cache.full(a.clone())
    assert (cache.hits, cache.misses) == (1, 1)
    assert torch.equal(s1.U, s2.U) and torch.equal(s1.S, s2.S) and torch.equal(s1.Vh, s2.Vh)
    torch.testing.assert_close((s1.U * s1.S) @ s1.Vh, a, rtol=0, atol=1e-5)
    cache.full(b)
    assert (cache.hits, cache.misses) == (1, 2)
    # values() after full() is a hit and equals the full SVD's S
    v = cache.values(a)
    assert (cache.hits, cache.misses) == (2, 2)
    np.testing.assert_allclose(v, s1.S.double().numpy())
    # values-only entries
    c = torch.randn(7, 7, generator=gen)
    vc = cache.values(c)
    assert (cache.hits, cache.misses) == (2, 3)
    np.testing.assert_array_equal(cache.values(c), vc)
    assert (cache.hits, cache.misses) == (3, 3)
    np.testing.assert_allclose(vc, torch.linalg.svdvals(c).double().numpy(), rtol=1e-6)
    # a fresh cache object over the same folder sees the entries
    again = SVDCache(tmp_path / "svd")
    again.full(b)
    again.values(c)
    assert (again.hits, again.misses) == (2, 0)
    assert again.cached_full(a) is not None and again.cached_full(c) is None


def test_svd_cache_default_root_follows_lmscope_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "root"))
    cache = SVDCache()
    cache.values(torch.ones(3, 3))
    assert list((tmp_path / "root" / "svd").rglob("*-s.npy"))


def test_svd_cache_disabled_computes_and_writes_nothing(tmp_path):
    cache = SVDCache(tmp_path / "svd", enabled=False)
    w = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    cache.full(w)
    cache.full(w)
    cache.values(w)
    assert cache.hits == 0 and cache.misses == 3
    assert cache.cached_full(w) is None
    assert not (tmp_path / "svd").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty"])
def test_svd_cache_recomputes_a_corrupted_full_entry(tmp_path, damage):
    cache = SVDCache(tmp_path / "svd")
    w = torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    good = cache.full(w)
    (entry,) = list((tmp_path / "svd").rglob("*.safetensors"))
    raw = entry.read_bytes()
    entry.write_bytes({"garbage": b"not a safetensors file at all" * 3, "truncate": raw[: len(raw) // 2],
                       "empty": b""}[damage])
    fresh = SVDCache(tmp_path / "svd")
    assert fresh.cached_full(w) is None
    svd = fresh.full(w)
    assert fresh.misses == 1 and fresh.hits == 0
    torch.testing.assert_close(svd.S, good.S)
    assert SVDCache(tmp_path / "svd").cached_full(w) is not None  # rewritten
    np.testing.assert_allclose(SVDCache(tmp_path / "svd").values(w), good.S.double().numpy())


@pytest.mark.parametrize("damage", [
    "garbage", "truncate",
    "empty",
])
def test_svd_cache_recomputes_a_corrupted_values_entry(tmp_path, damage):
    cache = SVDCache(tmp_path / "svd")
    w = torch.randn(10, 6, generator=torch.Generator().manual_seed(2))
    good = cache.values(w)
    (entry,) = list((tmp_path / "svd").rglob("*-s.npy"))
    raw = entry.read_bytes()
    entry.write_bytes({"garbage": b"\x00garbage" * 10, "truncate": raw[: len(raw) - 8], "empty": b""}[damage])
    fresh = SVDCache(tmp_path / "svd")
    np.testing.assert_allclose(fresh.values(w), good)
    assert fresh.misses == 1
    np.testing.assert_array_equal(SVDCache(tmp_path / "svd").values(w), good)  # rewritten


def test_svd_cache_corrupted_values_entry_is_not_counted_as_a_hit(tmp_path):
    w = torch.randn(10, 6, generator=torch.Generator().manual_seed(3))
    SVDCache(tmp_path / "svd").values(w)
    (entry,) = list((tmp_path / "svd").rglob("*-s.npy"))
    entry.write_bytes(b"\x00garbage" * 10)
    fresh = SVDCache(tmp_path / "svd")
    fresh.values(w)
    assert (fresh.hits, fresh.misses) == (0, 1)


def test_content_key_depends_on_float32_content_and_shape_only():
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(6, 4, generator=gen).to(torch.float16)
    k = content_key(h)
    assert content_key(h.to(torch.float32)) == k
    assert content_key(h.to(torch.float64)) == k
    assert content_key(h.to(torch.float32).t().contiguous().t()) == k  # non-contiguous layout
    assert content_key(h.to(torch.float32).requires_grad_()) == k
    bf = torch.randn(5, 5, generator=gen).to(torch.bfloat16)
    assert content_key(bf) == content_key(bf.float())
    assert content_key(h.reshape(4, 6)) != k      # same bytes, other shape
    h2 = h.clone()
    h2[0, 0] += 1
    assert content_key(h2) != k


def test_content_key_same_matrix_through_fp16_and_fp32_checkpoints(planted, tmp_path):
    """One matrix stored as float16 in one checkpoint and float32 in another: one cache entry."""
    from safetensors.torch import load_file, save_file

    src16 = shutil.copytree(planted["base"], tmp_path / "fp16")
    sd = load_file(str(src16 / "model.safetensors"))
    save_file({k: v.half() for k, v in sd.items()}, str(src16 / "model.safetensors"), metadata={"format": "pt"})
    src32 = shutil.copytree(src16, tmp_path / "fp32")
    sd16 = load_file(str(src16 / "model.safetensors"))
    save_file({k: v.float() for k, v in sd16.items()}, str(src32 / "model.safetensors"), metadata={"format": "pt"})
    a, b = open_model(src16), open_model(src32)
    assert _read(src16, PLANTED).dtype == torch.float16 and _read(src32, PLANTED).dtype == torch.float32
    assert content_key(a.load(PLANTED_KEY)) == content_key(b.load(PLANTED_KEY))
    cache = SVDCache(tmp_path / "svd")
    cache.full(a.load(PLANTED_KEY))
    cache.full(b.load(PLANTED_KEY))
    assert (cache.hits, cache.misses) == (1, 1)


@pytest.mark.parametrize("shape", [(60, 60), (90, 40), (40, 90)])
def test_singular_values_match_a_float64_svd_with_planted_spectrum(shape):
    from lmscope.spectral.svd import singular_values

    m, n = shape
    r = min(m, n)
    rng = np.random.default_rng(r)
    # planted: a spread of 1e-6 .. 10, and five exact zeros (rank r - 5)
    s_true = np.concatenate([np.geomspace(10.0, 1e-6, r - 5), np.zeros(5)])
    u = np.linalg.qr(rng.standard_normal((m, r)))[0]
    v = np.linalg.qr(rng.standard_normal((n, r)))[0]
    w = torch.from_numpy(((u * s_true) @ v.T).astype(np.float32))
    s = singular_values(w)
    ref = np.linalg.svd(w.double().numpy(), compute_uv=False)
    assert s.shape == (r,) and np.all(np.diff(s) <= 0)
    top, mid = ref > 1e-2 * ref[0], ref > 1e-4 * ref[0]
    np.testing.assert_allclose(s[top], ref[top], rtol=1e-9)
    np.testing.assert_allclose(s[mid], ref[mid], rtol=1e-4)  # a float32 SVD: about 1e-3 here
    np.testing.assert_allclose(s, ref, rtol=0, atol=1e-6 * ref[0])
    assert spectrum_metrics(s, shape)["rank"] == spectrum_metrics(ref, shape)["rank"]
    # the float32 rounding of the planted matrix moves no singular value by more than 1e-6 * s_1
    np.testing.assert_allclose(s, s_true, rtol=0, atol=1e-5)


def test_singular_values_refuse_non_finite_matrices():
    from lmscope.spectral.svd import singular_values

    w = torch.ones(4, 3)
    w[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        singular_values(w)
    assert singular_values(torch.zeros(0, 3)).shape == (0,)


# ---------------------------------------------------------------------------------- analyze_spectrum
def test_analyze_spectrum_on_the_tiny_model(planted):
    cache = SVDCache()
    res = analyze_spectrum(planted["base"], cache=cache, quiet=True)
    src = open_model(planted["base"])
    keys = [r.key for r in src.matrices()]
    assert list(res.table["key"]) == keys and len(keys) == 7 * LAYERS
    for col in ("alpha", "stable_rank", "effective_rank", "spectral_entropy", "rank", "spectral_norm",
                "frobenius_norm", "alpha_weighted", "layer", "role", "rows", "cols"):
        assert col in res.table.columns
    assert set(res.values) == set(keys)
    for key in keys:
        w = src.load(key)
        np.testing.assert_allclose(res.values[key], torch.linalg.svdvals(w).double().numpy(), rtol=1e-5,
                                   atol=1e-6)
    row = res.table.set_index("key").loc[PLANTED_KEY]
    assert row["rows"] == HIDDEN and row["cols"] == HIDDEN and row["rank"] == HIDDEN
    assert row["spectral_norm"] == pytest.approx(2.0, rel=1e-5)
    s = S_PLANTED.numpy()
    assert row["stable_rank"] == pytest.approx((s**2).sum() / 4.0, rel=1e-4)
    assert np.isfinite(res.table["alpha"]).all()
    assert res.summary()["matrices"] == len(keys)
    # a second run is served from the cache
    misses = cache.misses
    analyze_spectrum(planted["base"], cache=cache, quiet=True)
    assert cache.misses == misses and cache.hits >= len(keys)


def test_analyze_spectrum_is_the_same_with_any_number_of_workers(planted):
    one = analyze_spectrum(planted["base"], cache=SVDCache(enabled=False), quiet=True, workers=1)
    three = analyze_spectrum(planted["base"], cache=SVDCache(enabled=False), quiet=True, workers=3)
    pd.testing.assert_frame_equal(one.table, three.table, rtol=1e-12)
    for k in one.values:
        np.testing.assert_allclose(one.values[k], three.values[k], rtol=1e-12)


def test_analyze_spectrum_of_a_model_in_memory_equals_its_files(planted):
    from lmscope.models.module_source import ModuleSource

    files = analyze_spectrum(planted["base"], cache=SVDCache(enabled=False), quiet=True)
    model = open_model(planted["base"]).load_model()
    mem = analyze_spectrum(model, cache=SVDCache(enabled=False), quiet=True, workers=2)
    assert list(mem.table["key"]) == list(files.table["key"])
    cols = ["rows", "cols", "rank", "spectral_norm", "alpha", "tail_size", "effective_rank"]
    pd.testing.assert_frame_equal(mem.table[cols], files.table[cols])
    src = ModuleSource(model)
    assert src.load(PLANTED_KEY).data_ptr() == model.get_parameter(PLANTED).data_ptr()  # no copy
    with pytest.raises(LmscopeError):
        src.load_tokenizer()


def test_analyze_spectrum_names_a_matrix_with_non_finite_weights(planted, tmp_path):
    w = open_model(planted["base"]).load(PLANTED_KEY).clone()
    w[3, 4] = float("inf")
    bad = edit_copy(planted["base"], tmp_path / "bad", {PLANTED: w})
    with pytest.raises(LmscopeError, match="q_proj"):
        analyze_spectrum(bad, cache=SVDCache(enabled=False), quiet=True)


def test_analyze_spectrum_filters(planted):
    res = analyze_spectrum(planted["base"], roles=["q", "down"], layers=[1], quiet=True)
    assert list(res.table["key"]) == ["1.q", "1.fc_out"]
    assert tuple(res.table.iloc[1][["rows", "cols"]]) == (HIDDEN, INTER)
    with pytest.raises(LmscopeError):
        analyze_spectrum(planted["base"], layers=[5], quiet=True)
    with pytest.raises(LmscopeError):
        analyze_spectrum(planted["base"], roles=["nope"], quiet=True)


# ----------------------------------------------------------------------------- intruders against eps
def test_counts_by_eps_follow_the_planted_rotation(planted):
    """A 30-degree rotation in the plane of u_1, u_2: both rotated vectors have best match cos 30 = 0.866
    and the other 8 top vectors (and every other matrix's) match exactly; so 0 intruders below 0.866,
    exactly 2 (both in 0.q) from there to just below 1, and the count at the run's eps is its total."""
    res = find_intruders(planted["base"], planted["rotated"](0, 1, 30), k=10, eps=0.5)
    t = res.counts_by_eps([0.3, 0.5, 0.86, 0.87, 0.9, 0.99])
    assert t["n_intruders"].tolist() == [0, 0, 0, 2, 2, 2]
    assert t["matrices_with_intruders"].tolist() == [0, 0, 0, 1, 1, 1]
    assert t["q"].tolist() == [0, 0, 0, 2, 2, 2] and (t["fc_out"] == 0).all()
    roles = [c for c in t.columns if c not in ("eps", "n_intruders", "matrices_with_intruders")]
    assert (t[roles].sum(axis=1) == t["n_intruders"]).all()
    full = res.counts_by_eps()  # the default grid and the run's own eps, in order, never decreasing
    assert res.eps in full["eps"].tolist() and full["eps"].is_monotonic_increasing
    assert full["n_intruders"].is_monotonic_increasing
    assert int(full.loc[full["eps"] == res.eps, "n_intruders"].iloc[0]) == res.total == 0
    vals = res.max_cos_values()
    assert len(vals) == 10 * len(res.table)
    assert sorted(vals)[:2] == pytest.approx([math.cos(math.radians(30))] * 2, abs=1e-4)
    with pytest.raises(LmscopeError, match="eps must be in"):
        res.counts_by_eps([0.5, 1.5])
    one = find_intruders(planted["base"], planted["rank1"], k=10, eps=0.5)
    at = one.counts_by_eps([0.5])
    assert at["n_intruders"].tolist() == [one.total] == [1]


def test_intruder_report_section_shows_the_count_against_eps_and_the_match_distribution(planted, tmp_path):
    from lmscope.report.html import Report
    from lmscope.report.sections import intruder_section

    zero = find_intruders(planted["base"], planted["rotated"](0, 1, 30), k=10, eps=0.5)
    rep = Report(tmp_path / "zero", "t")
    intruder_section(rep, zero, extra={"task loss (base)": 1.25})
    html = rep.write().read_text()
    d = tmp_path / "zero"
    assert (d / "intruders_by_eps.png").is_file() and (d / "intruders_max_cos.png").is_file()
    assert not (d / "intruders_heatmap.png").exists() and "every cell would be 0" in html
    assert "zero means that each of the 140 top-10 directions" in html and "0.866" in html
    assert "<th>task loss (base)</th><td>1.25</td>" in html
    by_eps = (d / "intruders_by_eps.csv").read_text().splitlines()
    assert by_eps[0].startswith("eps,n_intruders,matrices_with_intruders,")
    assert by_eps[1].startswith("0.05,0,0,")

    one = find_intruders(planted["base"], planted["rank1"], k=10, eps=0.5)
    rep = Report(tmp_path / "one", "t")
    intruder_section(rep, one)
    html = rep.write().read_text()
    assert (tmp_path / "one" / "intruders_heatmap.png").is_file()
    assert "1 of the 140 top-10 directions checked here do (in 1 of 14 matrices)" in html


# ------------------------------------------------------------------------------ mitigation control
def test_control_scales_as_many_non_intruder_directions_and_never_the_intruder(planted):
    from lmscope.spectral.intruders import control_edits, control_ranks

    base, tuned = planted["base"], planted["rank1"]
    res = find_intruders(base, tuned)
    src = open_model(tuned)
    seen = set()
    for seed in range(40):
        ranks = control_ranks(res, seed=seed)
        assert list(ranks) == [PLANTED_KEY]  # only the matrix with an intruder, one direction in it
        (r,) = ranks[PLANTED_KEY]
        assert r != 0 and 1 <= r <= 9  # a top-10 direction, never the intruder (rank 0)
        seen.add(r)
    assert len(seen) >= 6  # the draw does vary with the seed ...
    assert control_ranks(res, seed=7) == control_ranks(res, seed=7)  # ... and repeats with it

    edits, ranks = control_edits(res, src, scale=0.5, seed=3)
    (r,) = ranks[PLANTED_KEY]
    s_t = torch.linalg.svdvals(src.load(PLANTED_KEY).double())
    s_c = torch.linalg.svdvals(edits[PLANTED_KEY].double())
    # the spectrum is the tuned one with only the chosen value halved (the intruder at rank 0 keeps its value)
    expected = s_t.clone()
    expected[r] *= 0.5
    np.testing.assert_allclose(s_c.numpy(), np.sort(expected.numpy())[::-1], rtol=1e-4, atol=1e-6)
    assert float(s_c[0]) == pytest.approx(float(s_t[0]), rel=1e-6)
    # the control leaves the intruder's direction where it was: the top left singular vector is still u
    u_c = torch.linalg.svd(edits[PLANTED_KEY].double())[0][:, 0]
    assert abs(float(u_c @ planted["u"])) > 0.99


def test_control_with_every_top_k_direction_an_intruder_has_nothing_to_pick(planted):
    from lmscope.spectral.intruders import control_ranks

    # k=1: the only top direction is the intruder, so there is no non-intruder to scale
    res = find_intruders(planted["base"], planted["rank1"], k=1)
    assert res.total == 1 and control_ranks(res, seed=0) == {PLANTED_KEY: []}
    # no intruders at all: no control either
    assert control_ranks(find_intruders(planted["base"], planted["same"]), seed=0) == {}
