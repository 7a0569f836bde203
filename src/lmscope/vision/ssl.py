"""Self-supervised vision models trained only on generated images (Sharma et al. 2024, "A Vision Check-up
for Language Models", representation learning), at CPU size.

Model
    An encoder f of four 3x3 convolutions (channels w, 2w, 4w, d with strides 1, 2, 2, 2, each followed
    by batch normalization and ReLU) and a global average pool gives a d-dimensional feature h = f(x)
    of an RGB image x in [0, 1] (shifted to (x - 0.5) / 0.25 first). A projection head
    g(h) = W2·ReLU(BN(W1·h)) maps it to z in R^p; the head is used only for training.

Training (SimCLR, Chen et al. 2020)
    Each batch of n images gets two independent random views t(x), t'(x) per image; the 2n projections
    are L2-normalized and compared by cosine similarity s_ij = z_i·z_j. With temperature tau, the
    NT-Xent loss of the positive pair (i, j) (the two views of one image) is

        l(i, j) = -log( exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau) )

    and the batch loss is the mean of l over all 2n ordered positive pairs (:func:`nt_xent`). Its
    minimum for a batch is reached when each pair coincides and the other projections are as far as
    possible; for identical pairs and mutually orthogonal images it is -log(e^(1/tau) / (e^(1/tau) + 2n - 2)).

Augmentations (:func:`augment`), drawn per image from a torch generator (in training: torch's global
generator, which the training loop seeds and restores on resume)
    - random resized crop: area fraction a ~ U[crop_min, 1], aspect r = e^u with u ~ U[ln 3/4, ln 4/3],
      crop width sqrt(a·r) and height sqrt(a/r) of the image (a side that would exceed the image is
      set to 1 and the other to a), its centre uniform inside the image; resampled bilinearly back to
      the full size (one affine grid per image);
    - horizontal flip with probability 1/2 (a sign of the grid's x scale);
    - colour jitter with probability p_jitter, in this order: brightness x·b, contrast (x - m)·c + m
      (m: the image's mean gray level), saturation g + (x - g)·s (g: the pixel's gray level
      0.299 R + 0.587 G + 0.114 B), with b, c, s ~ U[1 - jitter, 1 + jitter], and a hue rotation of the
      chroma plane of YIQ by the angle 2·pi·h, h ~ U[-hue, hue]; clamped to [0, 1] after each;
    - grayscale with probability p_gray.

Evaluation (frozen encoder, features h; the head is dropped)
    - linear probe: features standardized with the training set's mean and deviation, then a multinomial
      logistic regression (scikit-learn, L2 penalty C); the test accuracy (:func:`linear_probe`);
    - k-nearest neighbours: cosine similarity to every training feature, majority vote of the k most
      similar (ties go to the class with the larger summed similarity) (:func:`knn_accuracy`).
    Real sets (:mod:`lmscope.vision.realdata`) are resized to the encoder's size, gray copied to RGB; a
    seeded sample of ``n_train`` images of the train split and ``n_test`` of the test split
    (:func:`evaluate_encoder`). :func:`compare` trains one model per image source (LM drawings,
    procedural baselines) on the same number of images with the same configuration and evaluates each
    beside a randomly initialized encoder (the "random-init" row, the same initialization training starts from).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lmscope.errors import LmscopeError, check_int, check_number
from lmscope.train.loop import (
    RUN_FILE,
    TRAINER_JSON,
    TrainConfig,
    latest_checkpoint,
    load_weights,
    read_metrics,
    train,
)
from lmscope.vision.realdata import DATASETS, load_real, resize_images

RANDOM_INIT = "random-init"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SSLConfig:
    """Settings of a contrastive run; checked when made (LmscopeError). The defaults train in a few
    minutes on two CPU cores."""

    size: int = 32  # images are resized to size x size
    width: int = 32  # channels of the first convolution (then 2w, 4w, feature_dim)
    feature_dim: int = 128  # d, the encoder's output
    proj_dim: int = 64  # p, the projection head's output
    temperature: float = 0.2
    steps: int = 600
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 30
    crop_min: float = 0.2
    jitter: float = 0.4
    hue: float = 0.1
    p_jitter: float = 0.8
    p_gray: float = 0.2
    seed: int = 0
    ckpt_every: int = 100
    eval_every: int = 50

    def __post_init__(self):
        check_int("size", self.size, 16, 256)
        check_int("width", self.width, 1, 512)
        check_int("feature_dim", self.feature_dim, 1, 4096)
        check_int("proj_dim", self.proj_dim, 1, 4096)
        check_number("temperature", self.temperature, above=0.0, maximum=10.0)
        check_int("steps", self.steps, 1)
        check_int("batch_size", self.batch_size, 2)
        check_number("lr", self.lr, above=0.0, maximum=10.0)
        check_number("weight_decay", self.weight_decay, 0.0)
        check_int("warmup", self.warmup, 0)
        check_number("crop_min", self.crop_min, above=0.0, maximum=1.0)
        check_number("jitter", self.jitter, 0.0, below=1.0)
        check_number("hue", self.hue, 0.0, 0.5)
        check_number("p_jitter", self.p_jitter, 0.0, 1.0)
        check_number("p_gray", self.p_gray, 0.0, 1.0)
        check_int("seed", self.seed, 0)
        check_int("ckpt_every", self.ckpt_every, 0)
        check_int("eval_every", self.eval_every, 0)

    def train_config(self) -> TrainConfig:
        """The settings of the project's training loop: AdamW, linear warmup, then cosine decay."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup=self.warmup,
                           schedule="cosine", weight_decay=self.weight_decay, grad_clip=5.0,
                           eval_every=self.eval_every, ckpt_every=self.ckpt_every, seed=self.seed)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> SSLConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise LmscopeError(f"SSL config: unknown setting {unknown[0]!r}")
        return cls(**dict(d))


# ------------------------------------------------------------------------------------------------
# Images in, tensors out
# ------------------------------------------------------------------------------------------------
def check_images(images, what: str = "images") -> np.ndarray:
    """``images`` as a uint8 numpy array ``(N, H, W)`` or ``(N, H, W, 3)`` with N >= 1; else LmscopeError."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray):
        raise LmscopeError(f"{what} must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise LmscopeError(f"{what} must be uint8 (0..255), got dtype {images.dtype}")
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise LmscopeError(f"{what} must have shape (N, H, W) or (N, H, W, 3), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise LmscopeError(f"{what}: the set is empty")
    if min(images.shape[1:3]) < 4:
        raise LmscopeError(f"{what} are too small ({images.shape[1]}x{images.shape[2]} pixels)")
    return images


def to_uint8_chw(images, size: int) -> torch.Tensor:
    """Checked uint8 images as a ``(N, 3, size, size)`` uint8 tensor (resized; gray copied to RGB)."""
    images = resize_images(check_images(images), size)
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def images_fingerprint(images: np.ndarray) -> str:
    h = hashlib.sha256(json.dumps([list(images.shape), str(images.dtype)]).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    """Four conv-BN-ReLU layers and a global average pool: float images ``(N, 3, S, S)`` in [0, 1] ->
    features ``(N, feature_dim)``."""

    def __init__(self, config: SSLConfig):
        super().__init__()
        w = config.width
        channels = (3, w, 2 * w, 4 * w, config.feature_dim)
        layers: list[nn.Module] = []
        for cin, cout, stride in zip(channels[:-1], channels[1:], (1, 2, 2, 2)):
            layers += [nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.size = config.size
        self.feature_dim = config.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - 0.5) / 0.25).mean(dim=(2, 3))


class SimCLR(nn.Module):
    """The encoder and its projection head (Linear, BN, ReLU, Linear)."""

    def __init__(self, config: SSLConfig):
        super().__init__()
        d = config.feature_dim
        self.encoder = Encoder(config)
        self.head = nn.Sequential(nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(inplace=True),
                                  nn.Linear(d, config.proj_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def build_model(config: SSLConfig, seed: int) -> SimCLR:
    """A freshly initialized :class:`SimCLR`, a function of ``(config, seed)`` only (torch's global RNG
    is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SimCLR(config)


def random_encoder(config: SSLConfig | None = None, seed: int = 0) -> Encoder:
    """A randomly initialized encoder (eval mode): the "random-init" baseline. With ``seed =
    config.seed`` it is the initialization that :func:`train_ssl` starts from."""
    config = config or SSLConfig()
    seed = check_int("seed", seed, 0)
    return build_model(config, seed).encoder.eval()


# ------------------------------------------------------------------------------------------------
# Loss and augmentations
# ------------------------------------------------------------------------------------------------
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """The NT-Xent loss of n positive pairs (rows of ``z1`` and ``z2``, shape ``(n, p)``), averaged over
    the 2n ordered pairs (see the module docstring)."""
    if z1.ndim != 2 or z1.shape != z2.shape or z1.shape[0] < 1:
        raise LmscopeError(f"nt_xent needs two (n, p) tensors of one shape, got {tuple(z1.shape)} and "
                           f"{tuple(z2.shape)}")
    check_number("temperature", temperature, above=0.0)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.t()) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the (I, Q) chroma of YIQ by ``angle`` (radians, per image)."""
    yiq = torch.einsum("ij,njhw->nihw", _YIQ.to(x), x)
    c, s = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], dim=1)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_YIQ).to(x), yiq)


def augment(x: torch.Tensor, config: SSLConfig | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """One random view of each image of a float batch ``(N, 3, H, W)`` in [0, 1] (same shape, dtype and
    range); the random draws come from ``generator`` (default: torch's global one)."""
    config = config or SSLConfig()
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise LmscopeError("augment needs a float tensor of shape (N, 3, H, W)")
    n = x.shape[0]

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape or (n,), generator=generator, dtype=x.dtype).to(x.device)

    # random resized crop + horizontal flip, as one affine resampling per image
    area = uniform(config.crop_min, 1.0)
    ratio = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
    w, h = torch.sqrt(area * ratio), torch.sqrt(area / ratio)
    w, h = torch.where(w > 1, 1.0, w), torch.where(w > 1, area, h)  # w·h = area <= 1: at most one exceeds 1
    w, h = torch.where(h > 1, area, w), torch.where(h > 1, 1.0, h)
    cx = (1 - w) * uniform(-1.0, 1.0)
    cy = (1 - h) * uniform(-1.0, 1.0)
    flip = torch.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0).to(x)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # colour jitter (identity factors where it is not applied)
    apply = (uniform(0.0, 1.0) < config.p_jitter).to(x)
    j = config.jitter

    def factor() -> torch.Tensor:
        return (1 + apply * (uniform(1 - j, 1 + j) - 1)).view(n, 1, 1, 1)

    b, c, s = factor(), factor(), factor()
    angle = apply * uniform(-config.hue, config.hue) * 2 * math.pi
    out = (out * b).clamp(0, 1)
    mean = _gray(out).mean(dim=(1, 2, 3), keepdim=True)
    out = ((out - mean) * c + mean).clamp(0, 1)
    g = _gray(out)
    out = (g + (out - g) * s).clamp(0, 1)
    out = _rotate_hue(out, angle).clamp(0, 1)

    # random grayscale
    gray = (uniform(0.0, 1.0) < config.p_gray).view(n, 1, 1, 1)
    return torch.where(gray, _gray(out).expand_as(out), out).contiguous()


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------
def ssl_loss(model: SimCLR, batch: torch.Tensor, config: SSLConfig) -> torch.Tensor:
    """NT-Xent of two augmented views of a uint8 batch ``(n, 3, S, S)`` (both views in one forward pass)."""
    x = batch.float() / 255.0
    views = torch.cat([augment(x, config), augment(x, config)])
    z = model(views)
    return nt_xent(z[: len(x)], z[len(x):], config.temperature)


def train_ssl(run_dir, images, config: SSLConfig | None = None, *,
              eval_fn: Callable[[SimCLR, int], dict | None] | None = None, meta: dict | None = None,
              quiet: bool | None = None, stop_after: int | None = None) -> dict:
    """Train a :class:`SimCLR` model on ``images`` (uint8 ``(N, H, W[, 3])``, resized to ``config.size``)
    with the project's training loop in ``run_dir``, resuming from its checkpoints (interrupted and
    resumed runs end with the same weights as uninterrupted ones). ``eval_fn(model, step)`` adds
    metrics to ``metrics.jsonl`` (for example :func:`knn_monitor`); ``meta`` (JSON) is recorded in
    ``run.json`` (a different one is refused on resume). ``stop_after`` ends the run early without a
    checkpoint, as if it had been killed.

    Returns the loop's summary (``step``, ``steps``, ``seconds``, ``resumed_from``,
    ``final_checkpoint``, ``last_metrics``, ``run_dir``) with ``n_images``.
    """
    config = config or SSLConfig()
    if not isinstance(config, SSLConfig):
        raise LmscopeError(f"config must be an SSLConfig, got {type(config).__name__}")
    images = check_images(images)
    if len(images) < config.batch_size:
        raise LmscopeError(f"{len(images)} images are fewer than the batch size {config.batch_size}; "
                           "contrastive training needs distinct images in a batch")
    data = to_uint8_chw(images, config.size)
    run_info = {"ssl": config.to_dict(), "data": {"n_images": len(images), "sha256": images_fingerprint(images)}}
    if meta is not None:
        run_info["meta"] = meta
    model = build_model(config, config.seed)

    def loss_fn(m: SimCLR, batch: torch.Tensor) -> torch.Tensor:
        return ssl_loss(m, batch, config)

    summary = train(run_dir, model, loss_fn, data, config.train_config(), collate=torch.stack,
                    eval_fn=eval_fn, run_info=run_info, quiet=quiet, stop_after=stop_after, desc="ssl")
    summary["n_images"] = len(images)
    return summary


def read_run_config(run_dir) -> SSLConfig:
    """The :class:`SSLConfig` recorded in ``run_dir/run.json``."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise LmscopeError(f"{run_dir} holds no self-supervised training run (no {RUN_FILE})")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return SSLConfig.from_dict(info["ssl"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LmscopeError(f"{path} is not the run file of a self-supervised training run") from None


def load_encoder(run_dir, allow_partial: bool = False) -> Encoder:
    """The trained encoder (eval mode) of the newest valid checkpoint of ``run_dir``; LmscopeError when
    there is none, or when the run has not reached its last step (unless ``allow_partial``)."""
    config = read_run_config(run_dir)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise LmscopeError(f"{run_dir} has no complete checkpoint; run the training first")
    step = int(json.loads((ckpt / TRAINER_JSON).read_text(encoding="utf-8"))["step"])
    if step < config.steps and not allow_partial:
        raise LmscopeError(f"the run in {run_dir} stopped at step {step} of {config.steps}; train it again "
                           "to resume, or pass allow_partial")
    model = build_model(config, config.seed)
    try:
        load_weights(model, ckpt / "model")
    except LmscopeError as e:
        raise LmscopeError(f"checkpoint {ckpt} does not fit its run configuration: {e}") from None
    return model.encoder.eval()


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------
def features(encoder: nn.Module, images, batch_size: int = 256) -> np.ndarray:
    """Frozen features ``(N, feature_dim)`` float32 of uint8 images (resized to the encoder's size, gray
    copied to RGB); the encoder runs in eval mode and is left in the mode it had."""
    if isinstance(encoder, SimCLR):
        encoder = encoder.encoder
    if not isinstance(encoder, Encoder):
        raise LmscopeError(f"features needs an Encoder, got {type(encoder).__name__}")
    images = check_images(images)
    batch_size = check_int("batch_size", batch_size, 1)
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = to_uint8_chw(images[start:start + batch_size], encoder.size)
                out.append(encoder(x.to(device).float() / 255.0).cpu().numpy())
    finally:
        encoder.train(was_training)
    return np.concatenate(out).astype(np.float32)


def _check_features(train_feats, train_labels, test_feats, test_labels):
    arrays = []
    for name, f, y in (("train", train_feats, train_labels), ("test", test_feats, test_labels)):
        f, y = np.asarray(f, dtype=np.float64), np.asarray(y)
        if f.ndim != 2 or f.shape[0] == 0:
            raise LmscopeError(f"{name} features must be a non-empty (N, d) array, got shape {f.shape}")
        if y.shape != (f.shape[0],):
            raise LmscopeError(f"{name} labels must have shape ({f.shape[0]},), got {y.shape}")
        if not np.isfinite(f).all():
            raise LmscopeError(f"{name} features hold NaN or infinite values")
        arrays += [f, y]
    if arrays[0].shape[1] != arrays[2].shape[1]:
        raise LmscopeError(f"train features have {arrays[0].shape[1]} dimensions, test features "
                           f"{arrays[2].shape[1]}")
    if len(np.unique(arrays[1])) < 2:
        raise LmscopeError("the training labels hold a single class; a classifier needs two or more")
    return arrays


def linear_probe(train_feats, train_labels, test_feats, test_labels, seed: int = 0, C: float = 1.0,
                 max_iter: int = 2000) -> float:
    """Test accuracy of a logistic regression on standardized features (see the module docstring)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    xtr, ytr, xte, yte = _check_features(train_feats, train_labels, test_feats, test_labels)
    check_number("C", C, above=0.0)
    scaler = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=C, max_iter=check_int("max_iter", max_iter, 1), random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(xtr), ytr)
    return float((clf.predict(scaler.transform(xte)) == yte).mean())


def knn_accuracy(train_feats, train_labels, test_feats, test_labels, k: int = 20) -> float:
    """Test accuracy of a cosine k-nearest-neighbour majority vote (see the module docstring)."""
    xtr, ytr, xte, yte = _check_features(train_feats, train_labels, test_feats, test_labels)
    k = min(check_int("k", k, 1), len(xtr))
    classes, ytr_idx = np.unique(ytr, return_inverse=True)
    xtr = xtr / np.maximum(np.linalg.norm(xtr, axis=1, keepdims=True), 1e-12)
    xte = xte / np.maximum(np.linalg.norm(xte, axis=1, keepdims=True), 1e-12)
    correct = 0
    for start in range(0, len(xte), 1024):
        sim = xte[start:start + 1024] @ xtr.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_sim = np.take_along_axis(sim, top, axis=1)
        votes = np.zeros((len(sim), len(classes)))
        rows = np.repeat(np.arange(len(sim)), k)
        np.add.at(votes, (rows, ytr_idx[top].ravel()), 1.0 + top_sim.ravel() / (4.0 * k))  # ties: similarity
        correct += int((classes[votes.argmax(axis=1)] == yte[start:start + 1024]).sum())
    return correct / len(xte)


def _sample(n_total: int, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(rng.choice(n_total, n, replace=False))


def evaluate_encoder(encoder: nn.Module, dataset: str = "digits", n_train: int | None = 1000,
                     n_test: int | None = 500, seed: int = 0, k: int = 20, root=None) -> dict:
    """Linear-probe and kNN accuracy of a frozen encoder on a real set (``"digits"`` or
    ``"fashion-mnist"``; ``root``: Fashion-MNIST's folder): a seeded sample of ``n_train`` training and
    ``n_test`` test images (None: all). Returns ``{dataset, n_train, n_test, probe_acc, knn_acc, chance}``
    (``chance``: the share of the test sample's most frequent class)."""
    if dataset not in DATASETS:
        raise LmscopeError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    for name, v in (("n_train", n_train), ("n_test", n_test)):
        if v is not None:
            check_int(name, v, 1)
    seed = check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    train_set, test_set = load_real(dataset, "train", root), load_real(dataset, "test", root)
    itr, ite = _sample(len(train_set.labels), n_train, rng), _sample(len(test_set.labels), n_test, rng)
    ftr, fte = features(encoder, train_set.images[itr]), features(encoder, test_set.images[ite])
    ytr, yte = train_set.labels[itr], test_set.labels[ite]
    return {"dataset": dataset, "n_train": len(itr), "n_test": len(ite),
            "probe_acc": linear_probe(ftr, ytr, fte, yte, seed=seed),
            "knn_acc": knn_accuracy(ftr, ytr, fte, yte, k=k),
            "chance": float(np.bincount(yte).max() / len(yte))}


def knn_monitor(dataset: str = "digits", n_train: int = 500, n_test: int = 300, k: int = 20, seed: int = 0,
                root=None) -> Callable[[nn.Module, int], dict]:
    """An ``eval_fn`` for :func:`train_ssl`: the kNN accuracy (``knn_acc``) of the encoder being trained on
    a fixed seeded sample of a real set, at every metrics row."""
    rng = np.random.default_rng(check_int("seed", seed, 0))
    train_set, test_set = load_real(dataset, "train", root), load_real(dataset, "test", root)
    itr, ite = _sample(len(train_set.labels), n_train, rng), _sample(len(test_set.labels), n_test, rng)
    xtr, ytr = train_set.images[itr], train_set.labels[itr]
    xte, yte = test_set.images[ite], test_set.labels[ite]

    def eval_fn(model: nn.Module, step: int) -> dict:
        return {"knn_acc": knn_accuracy(features(model, xtr), ytr, features(model, xte), yte, k=k)}

    return eval_fn


# ------------------------------------------------------------------------------------------------
# Comparison of image sources
# ------------------------------------------------------------------------------------------------
@dataclass
class SSLComparison:
    """Accuracies of encoders trained on different image sources (and a random one) on real sets:
    ``table`` has one row per (encoder, dataset) with ``probe_acc``, ``knn_acc``, ``chance``,
    ``n_train``, ``n_test``; ``training`` the training summary of each trained encoder."""

    config: SSLConfig
    n_images: int
    table: pd.DataFrame
    training: dict[str, dict] = field(default_factory=dict)

    def accuracy(self, encoder: str, dataset: str, metric: str = "probe_acc") -> float:
        rows = self.table[(self.table["encoder"] == encoder) & (self.table["dataset"] == dataset)]
        if rows.empty:
            raise LmscopeError(f"no result for encoder {encoder!r} on {dataset!r}")
        return float(rows.iloc[0][metric])

    def summary(self) -> dict:
        datasets = {}
        for ds, rows in self.table.groupby("dataset", sort=False):
            datasets[ds] = {r.encoder: {"probe_acc": float(r.probe_acc), "knn_acc": float(r.knn_acc)}
                            for r in rows.itertuples()}
            datasets[ds]["best_probe"] = str(rows.sort_values("probe_acc", ascending=False,
                                                              kind="stable").iloc[0]["encoder"])
        return {"n_images": self.n_images, "encoders": list(dict.fromkeys(self.table["encoder"])),
                "datasets": datasets,
                "train_seconds": {k: v.get("seconds") for k, v in self.training.items()}}

    def to_dict(self) -> dict:
        return {**self.summary(), "config": self.config.to_dict(),
                "rows": self.table.to_dict(orient="records"), "training": self.training}


def compare(run_root, sources: Mapping[str, np.ndarray], config: SSLConfig | None = None,
            datasets: Sequence[str] = ("digits",), n_images: int | None = None, n_train: int | None = 1000,
            n_test: int | None = 500, seed: int = 0, include_random: bool = True, quiet: bool | None = None,
            root=None) -> SSLComparison:
    """Train one encoder per image source (``{name: uint8 images}``, in ``run_root/name``, resumable) on
    the same number of images (``n_images``, default the smallest source; a seeded sample of each
    source) with the same ``config``, and evaluate each (and, with ``include_random``, the
    :func:`random_encoder` it started from, as ``"random-init"``) on every real set of ``datasets``.

    >>> from lmscope.vision.procedural import generate
    >>> sources = {name: generate(name, 10_000, 32, seed=1) for name in ("random-shapes", "dead-leaves")}
    >>> result = compare("runs/ssl", sources, SSLConfig(), datasets=("digits", "fashion-mnist"))
    """
    config = config or SSLConfig()
    if not isinstance(sources, Mapping) or not sources:
        raise LmscopeError("compare needs at least one image source ({name: images})")
    for name in sources:
        if not isinstance(name, str) or not _NAME.match(name) or name == RANDOM_INIT:
            raise LmscopeError(f"bad image source name {name!r}: use letters, digits, '.', '_' or '-' "
                               f"(and not {RANDOM_INIT!r})")
    for ds in datasets:
        if ds not in DATASETS:
            raise LmscopeError(f"unknown dataset {ds!r}; choose one of {', '.join(DATASETS)}")
    checked = {name: check_images(imgs, f"images of {name!r}") for name, imgs in sources.items()}
    smallest = min(len(v) for v in checked.values())
    n_images = smallest if n_images is None else check_int("n_images", n_images, 1)
    if n_images > smallest:
        short = min(checked, key=lambda k: len(checked[k]))
        raise LmscopeError(f"source {short!r} has {smallest} images, fewer than n_images {n_images}")
    seed = check_int("seed", seed, 0)
    run_root = Path(run_root)

    encoders: dict[str, Encoder] = {}
    training: dict[str, dict] = {}
    if include_random:
        encoders[RANDOM_INIT] = random_encoder(config, config.seed)
    for name, imgs in checked.items():
        if len(imgs) > n_images:
            imgs = imgs[np.sort(np.random.default_rng(seed).choice(len(imgs), n_images, replace=False))]
        summary = train_ssl(run_root / name, imgs, config, quiet=quiet)
        rows = read_metrics(run_root / name)
        training[name] = {"seconds": summary["seconds"], "steps": summary["steps"],
                          "final_loss": rows[-1]["loss"] if rows else None, "run_dir": str(run_root / name)}
        encoders[name] = load_encoder(run_root / name)

    rows = []
    for ds in datasets:
        for name, enc in encoders.items():
            rows.append({"encoder": name, **evaluate_encoder(enc, ds, n_train, n_test, seed=seed, root=root)})
    return SSLComparison(config, n_images, pd.DataFrame(rows), training)
