"""Self-supervised vision models on generated images: procedural generators, real sets, NT-Xent, augmentations,
training through the project's loop with exact resume, and the linear-probe / kNN evaluation."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lmscope._io import dumps
from lmscope.errors import LmscopeError
from lmscope.train.loop import read_metrics
from lmscope.vision import procedural, realdata
from lmscope.vision.ssl import (
    SSLComparison,
    SSLConfig,
    augment,
    compare,
    evaluate_encoder,
    features,
    knn_accuracy,
    knn_monitor,
    linear_probe,
    load_encoder,
    nt_xent,
    random_encoder,
    train_ssl,
)

# a small model for the tests: 60 steps take a few seconds on one core
TINY = SSLConfig(size=32, width=8, feature_dim=32, proj_dim=16, steps=60, batch_size=32, lr=3e-3, warmup=5,
                 ckpt_every=20, eval_every=10, seed=3)


# ------------------------------------------------------------------------------------------------
# Procedural images
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", procedural.GENERATORS)
def test_procedural_images_are_seeded_uint8_rgb(name):
    a = procedural.generate(name, 20, 32, seed=5)
    assert a.shape == (20, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, procedural.generate(name, 20, 32, seed=5))
    assert not np.array_equal(a, procedural.generate(name, 20, 32, seed=6))
    # varied content: many distinct colours per image, images differ from each other
    assert np.mean([len(np.unique(im.reshape(-1, 3), axis=0)) for im in a]) >= 3
    assert len({im.tobytes() for im in a}) == 20
    assert procedural.generate(name, 3, 48, seed=0).shape == (3, 48, 48, 3)


def test_dead_leaves_radii_follow_the_power_law():
    # alpha large: nearly all leaves are small, so an image shows many leaves (many colours);
    # alpha near 1: large leaves dominate, few are visible
    small = procedural.dead_leaves(10, 32, seed=0, alpha=5.0)
    large = procedural.dead_leaves(10, 32, seed=0, alpha=1.2)
    colours = [np.mean([len(np.unique(im.reshape(-1, 3), axis=0)) for im in s]) for s in (small, large)]
    assert colours[0] > 3 * colours[1]


def test_procedural_bad_arguments():
    with pytest.raises(LmscopeError, match="number of images"):
        procedural.random_shapes(0, 32)
    with pytest.raises(LmscopeError, match="r_max"):
        procedural.dead_leaves(2, 32, r_min=0.5, r_max=0.2)
    with pytest.raises(LmscopeError, match="unknown procedural"):
        procedural.generate("noise", 2)


# ------------------------------------------------------------------------------------------------
# Real sets
# ------------------------------------------------------------------------------------------------
def test_digits_split_and_upsampling():
    train, test = realdata.digits("train"), realdata.digits("test")
    assert train.images.shape == (1297, 8, 8) and test.images.shape == (500, 8, 8)
    assert train.images.dtype == np.uint8 and train.images.max() == 255 and train.labels.dtype == np.int64
    assert set(train.labels) == set(range(10)) and train.classes == tuple("0123456789")
    both = realdata.load_real("digits")
    assert len(both.labels) == 1797
    assert np.array_equal(both.images[:1297], train.images)
    big = realdata.digits("test", size=32)
    assert big.images.shape == (500, 32, 32) and big.images.dtype == np.uint8


@pytest.mark.skipif(not realdata.FASHION_ROOT.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_package():
    train = realdata.fashion_mnist("train")
    test = realdata.load_real("fashion-mnist", "test")
    assert train.images.shape == (60_000, 28, 28) and test.images.shape == (10_000, 28, 28)
    assert np.array_equal(np.bincount(train.labels), np.full(10, 6000))
    assert len(train.classes) == 10 and train.images.dtype == np.uint8


def test_real_sets_errors(tmp_path):
    with pytest.raises(LmscopeError, match="unknown dataset"):
        realdata.load_real("cifar10")
    with pytest.raises(LmscopeError, match="unknown split"):
        realdata.digits("validation")
    with pytest.raises(LmscopeError, match="install the Debian package dataset-fashion-mnist"):
        realdata.fashion_mnist(root=tmp_path / "nowhere")
    with pytest.raises(LmscopeError, match="install the Debian package dataset-fashion-mnist"):
        realdata.fashion_mnist(root=tmp_path)  # folder without the files
    # a file whose header announces the wrong number of images
    header = np.array([2051, 5, 28, 28], dtype=">u4").tobytes()
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + bytes(5 * 28 * 28))
    with pytest.raises(LmscopeError, match="expected"):
        realdata.fashion_mnist("train", root=tmp_path)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(np.array([2049, 60_000, 28, 28], dtype=">u4").tobytes())
    with pytest.raises(LmscopeError, match="magic"):
        realdata.fashion_mnist("train", root=tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(LmscopeError, match="cannot read"):
        realdata.fashion_mnist("train", root=tmp_path)


# ------------------------------------------------------------------------------------------------
# NT-Xent
# ------------------------------------------------------------------------------------------------
def test_nt_xent_hand_computed_case():
    # views: a = (1, 0), b = (0, 1); a' = (1, 0), b' = (1, 0) (given at length 3: the loss normalizes).
    # tau = 1. Rows a and a': positive 1 against {0, 1} -> -log(e / (1 + 2e)); row b: all similarities 0
    # -> log 3; row b': positive b at 0 against {1, 1} -> log(1 + 2e).
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[3.0, 0.0], [3.0, 0.0]])
    e = math.e
    expected = (2 * (math.log(1 + 2 * e) - 1) + math.log(3) + math.log(1 + 2 * e)) / 4
    assert nt_xent(z1, z2, temperature=1.0).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_identical_pairs_reach_the_minimum():
    n, tau = 8, 0.2
    z = torch.eye(n)  # mutually orthogonal images, each view identical to its partner
    identical = nt_xent(z, z.clone(), tau).item()
    assert identical == pytest.approx(-math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * n - 2)), rel=1e-6)
    assert identical < 0.1
    noisy = z + 0.3 * torch.randn(n, n, generator=torch.Generator().manual_seed(1))
    assert nt_xent(z, noisy, tau).item() > identical
    # pairs that do not match (partners shuffled) cost far more; random projections too
    assert nt_xent(z, z.roll(1, dims=0), tau).item() > 5
    g = torch.Generator().manual_seed(0)
    assert nt_xent(torch.randn(n, 16, generator=g), torch.randn(n, 16, generator=g), tau).item() > 1
    with pytest.raises(LmscopeError):
        nt_xent(torch.zeros(3, 4), torch.zeros(2, 4))


# ------------------------------------------------------------------------------------------------
# Augmentations
# ------------------------------------------------------------------------------------------------
def _batch(n=16, size=32):
    return torch.from_numpy(procedural.random_shapes(n, size, seed=1)).permute(0, 3, 1, 2).float() / 255


def test_augment_keeps_shape_and_is_seeded():
    x = _batch()
    a = augment(x, SSLConfig(), torch.Generator().manual_seed(7))
    b = augment(x, SSLConfig(), torch.Generator().manual_seed(7))
    c = augment(x, SSLConfig(), torch.Generator().manual_seed(8))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)
    with pytest.raises(LmscopeError):
        augment(x[:, :1])


def test_augment_geometry_and_grayscale():
    x = _batch(8)
    # full-size crop, no colour change: each view is the image or its mirror image
    plain = SSLConfig(crop_min=1.0, jitter=0.0, hue=0.0, p_gray=0.0)
    out = augment(x, plain, torch.Generator().manual_seed(0))
    for i in range(len(x)):
        same = torch.allclose(out[i], x[i], atol=1e-5)
        mirrored = torch.allclose(out[i], x[i].flip(-1), atol=1e-5)
        assert same or mirrored
    gray = augment(x, SSLConfig(p_gray=1.0), torch.Generator().manual_seed(0))
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])


# ------------------------------------------------------------------------------------------------
# Probes on planted features
# ------------------------------------------------------------------------------------------------
def _clusters(n, seed):
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 10
    y = rng.integers(0, 3, n)
    return centres[y] + rng.normal(0, 1, (n, 16)), y


def test_probe_and_knn_on_separable_features():
    xtr, ytr = _clusters(300, 0)
    xte, yte = _clusters(100, 1)
    assert linear_probe(xtr, ytr, xte, yte) == 1.0
    assert knn_accuracy(xtr, ytr, xte, yte, k=20) == 1.0
    # noise features: near chance
    rng = np.random.default_rng(2)
    assert knn_accuracy(rng.normal(size=(300, 16)), ytr, rng.normal(size=(100, 16)), yte) < 0.6
    # hand case: k = 1 picks the most similar direction, whatever the length
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert knn_accuracy(train, np.array([4, 7]), np.array([[5.0, 1.0], [0.1, 3.0]]), np.array([4, 7]), k=1) == 1.0
    with pytest.raises(LmscopeError, match="single class"):
        linear_probe(xtr, np.zeros(300), xte, yte)
    with pytest.raises(LmscopeError, match="dimensions"):
        knn_accuracy(xtr, ytr, xte[:, :5], yte)
    with pytest.raises(LmscopeError, match="labels"):
        linear_probe(xtr, ytr[:10], xte, yte)


# ------------------------------------------------------------------------------------------------
# Training through the project's loop
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shapes():
    return procedural.random_shapes(512, 32, seed=11)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes):
    run = tmp_path_factory.mktemp("ssl") / "full"
    summary = train_ssl(run, shapes, TINY, eval_fn=knn_monitor("digits", 300, 200), quiet=True)
    return run, summary


def test_training_writes_metrics_and_learns(trained):
    run, summary = trained
    assert summary["step"] == 60 and summary["final_checkpoint"] and summary["n_images"] == 512
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50, 60]
    assert all(0 <= r["knn_acc"] <= 1 for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    config = json.loads((run / "run.json").read_text())["ssl"]
    assert config["steps"] == 60 and config["width"] == 8


def test_interrupted_training_resumes_exactly(trained, shapes, tmp_path):
    run, _ = trained
    part = tmp_path / "interrupted"
    monitor = knn_monitor("digits", 300, 200)
    first = train_ssl(part, shapes, TINY, eval_fn=monitor, quiet=True, stop_after=30)
    assert first["final_checkpoint"] is None
    with pytest.raises(LmscopeError, match="stopped at step 20 of 60"):
        load_encoder(part)
    assert load_encoder(part, allow_partial=True) is not None
    second = train_ssl(part, shapes, TINY, eval_fn=monitor, quiet=True)
    assert second["resumed_from"].endswith("step-0000020")
    a, b = load_encoder(run).state_dict(), load_encoder(part).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in read_metrics(run)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in read_metrics(part)]
    # a run folder of another configuration or other images is refused
    with pytest.raises(LmscopeError, match="different configuration"):
        train_ssl(part, shapes[::-1].copy(), TINY, quiet=True)


def test_trained_encoder_beats_chance_on_digits(trained):
    run, _ = trained
    encoder = load_encoder(run)
    result = evaluate_encoder(encoder, "digits", n_train=600, n_test=300, seed=0)
    assert result["n_train"] == 600 and result["n_test"] == 300
    assert result["probe_acc"] > 0.5 > 2 * result["chance"]
    assert result["knn_acc"] > 0.3
    f = features(encoder, realdata.digits("test").images[:5])
    assert f.shape == (5, TINY.feature_dim) and f.dtype == np.float32
    assert not encoder.training


def test_random_encoder_is_seeded():
    a, b = random_encoder(TINY, seed=1), random_encoder(TINY, seed=1)
    c = random_encoder(TINY, seed=2)
    imgs = procedural.dead_leaves(4, 32, seed=0)
    assert np.array_equal(features(a, imgs), features(b, imgs))
    assert not np.array_equal(features(a, imgs), features(c, imgs))


def test_compare_runs_every_source_on_the_same_images(tmp_path):
    config = SSLConfig(size=16, width=4, feature_dim=16, proj_dim=8, steps=3, batch_size=16, warmup=1,
                       ckpt_every=0, eval_every=0)
    sources = {"random-shapes": procedural.random_shapes(40, 16, seed=0),
               "dead-leaves": procedural.dead_leaves(32, 16, seed=0)}
    result = compare(tmp_path, sources, config, datasets=("digits",), n_train=100, n_test=50, quiet=True)
    assert isinstance(result, SSLComparison) and result.n_images == 32
    assert list(result.table["encoder"]) == ["random-init", "random-shapes", "dead-leaves"]
    for name in sources:
        run = json.loads((tmp_path / name / "run.json").read_text())
        assert run["data"]["n_images"] == 32
    d = json.loads(dumps(result.to_dict()))
    assert set(d["datasets"]["digits"]) == {"random-init", "random-shapes", "dead-leaves", "best_probe"}
    assert 0 <= result.accuracy("dead-leaves", "digits", "knn_acc") <= 1
    with pytest.raises(LmscopeError, match="fewer than n_images"):
        compare(tmp_path / "x", sources, config, n_images=35)
    with pytest.raises(LmscopeError, match="bad image source name"):
        compare(tmp_path / "y", {"random-init": sources["dead-leaves"]}, config)


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
def test_bad_input_is_a_clear_error(tmp_path, shapes):
    with pytest.raises(LmscopeError, match="empty"):
        train_ssl(tmp_path / "a", np.zeros((0, 32, 32, 3), np.uint8), TINY)
    with pytest.raises(LmscopeError, match="uint8"):
        train_ssl(tmp_path / "b", shapes.astype(np.float32), TINY)
    with pytest.raises(LmscopeError, match="shape"):
        train_ssl(tmp_path / "c", np.zeros((64, 32, 32, 4), np.uint8), TINY)
    with pytest.raises(LmscopeError, match="batch size"):
        train_ssl(tmp_path / "d", shapes[:10], TINY)
    with pytest.raises(LmscopeError, match="unknown dataset"):
        evaluate_encoder(random_encoder(TINY), "imagenet")
    with pytest.raises(LmscopeError, match="temperature"):
        SSLConfig(temperature=0)
    with pytest.raises(LmscopeError, match="no self-supervised training run"):
        load_encoder(tmp_path / "nothing")
    with pytest.raises(LmscopeError, match="Encoder"):
        features(torch.nn.Linear(2, 2), shapes[:2])
    assert not any(Path(tmp_path, p).exists() for p in "abcd")


@pytest.mark.slow
def test_default_config_beats_random_init(tmp_path):
    # the default configuration on 10,000 procedural images per source (about 5-10 minutes per source on
    # two cores): pre-training on either source lifts the digits linear probe above random weights
    sources = {name: procedural.generate(name, 10_000, 32, seed=1) for name in procedural.GENERATORS}
    result = compare(tmp_path, sources, SSLConfig(), datasets=("digits",), quiet=True)
    for name in sources:
        assert result.accuracy(name, "digits") > result.accuracy("random-init", "digits")
