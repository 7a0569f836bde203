"""Real image sets on which a self-supervised vision model is evaluated, read from local files only.

Each loader returns a :class:`RealData` ``(images, labels, classes)``: images as uint8, ``(N, H, W)``
for grayscale sets, labels as int64 ``(N,)``, and the class names. ``split`` picks ``"train"``,
``"test"`` or ``"all"`` (the two concatenated, train first).

``digits``
    scikit-learn's ``load_digits`` (bundled with scikit-learn, always available): 1,797 handwritten
    digits of 8x8 pixels with values 0..16, rescaled to 0..255 (v·255/16, rounded). It has no
    official split; ours is fixed: a permutation of numpy's default generator with seed 0 puts the
    first 1,297 images in ``train`` and the other 500 in ``test``. ``size`` upsamples the images
    (bilinear, antialiased) to ``size`` x ``size``.
``fashion-mnist``
    Fashion-MNIST (Xiao et al. 2017): 60,000 train + 10,000 test grayscale 28x28 images of 10
    clothing classes, read from the gzipped IDX files that the Debian package
    ``dataset-fashion-mnist`` installs in ``/usr/share/datasets/fashion-mnist`` (or ``root``). IDX:
    a big-endian header (magic 2051 for images followed by count, rows, columns; 2049 for labels
    followed by count) and then the uint8 values. The counts and sizes are checked.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lmscope.errors import LmscopeError, check_int

DATASETS = ("digits", "fashion-mnist")
SPLITS = ("train", "test", "all")
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
                 "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000)}
DIGITS_TRAIN = 1297


class RealData(NamedTuple):
    """A labelled image set: uint8 images ``(N, H, W)`` or ``(N, H, W, 3)``, int64 labels, class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise LmscopeError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images ``(N, H, W)`` or ``(N, H, W, C)`` resized to ``size`` x ``size`` (bilinear, antialiased)."""
    import torch
    import torch.nn.functional as F

    size = check_int("image size", size, 1, 4096)
    gray = images.ndim == 3
    x = torch.from_numpy(np.ascontiguousarray(images[..., None] if gray else images)).permute(0, 3, 1, 2)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = x.round().clamp(0, 255).to(torch.uint8)
    out = x.permute(0, 2, 3, 1).contiguous().numpy()
    return out[..., 0] if gray else out


def digits(split: str = "all", size: int | None = None) -> RealData:
    """scikit-learn's 8x8 handwritten digits as uint8 0..255 (upsampled to ``size`` when given); the
    fixed train/test split of the module docstring."""
    from sklearn.datasets import load_digits

    _check_split(split)
    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    if split != "all":
        order = order[:DIGITS_TRAIN] if split == "train" else order[DIGITS_TRAIN:]
        images, labels = images[order], labels[order]
    else:
        images = np.concatenate([images[order[:DIGITS_TRAIN]], images[order[DIGITS_TRAIN:]]])
        labels = np.concatenate([labels[order[:DIGITS_TRAIN]], labels[order[DIGITS_TRAIN:]]])
    if size is not None:
        images = resize_images(images, size)
    return RealData(images, labels, tuple(str(d) for d in range(10)))


def _read_idx(path: Path, magic: int, count: int, shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 values of a gzipped IDX file after checking its magic number, count and shape."""
    if not path.is_file():
        raise LmscopeError(f"Fashion-MNIST file {path} is missing; install the Debian package dataset-fashion-mnist")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise LmscopeError(f"cannot read {path}: {e}") from None
    dims = 1 + len(shape)
    header = 4 * (1 + dims)
    if len(raw) < header:
        raise LmscopeError(f"{path} is not an IDX file (too short)")
    values = np.frombuffer(raw[:header], dtype=">u4")
    if values[0] != magic:
        raise LmscopeError(f"{path} is not an IDX file of this kind (magic {int(values[0])}, expected {magic})")
    found = tuple(int(v) for v in values[1:])
    if found != (count, *shape):
        raise LmscopeError(f"{path} holds shape {found}, expected {(count, *shape)}")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != count * int(np.prod(shape, dtype=np.int64)):
        raise LmscopeError(f"{path} is truncated or has trailing bytes ({data.size} values after the header)")
    return data.reshape(count, *shape).copy()


def fashion_mnist(split: str = "all", root: str | os.PathLike | None = None) -> RealData:
    """Fashion-MNIST from the gzipped IDX files in ``root`` (default: where the Debian package
    ``dataset-fashion-mnist`` puts them); LmscopeError when they are missing or malformed."""
    _check_split(split)
    root = Path(root) if root is not None else FASHION_ROOT
    if not root.is_dir():
        raise LmscopeError(f"Fashion-MNIST not found in {root}; install the Debian package dataset-fashion-mnist")
    parts = ("train", "test") if split == "all" else (split,)
    images, labels = [], []
    for part in parts:
        image_file, label_file, count = FASHION_FILES[part]
        images.append(_read_idx(root / image_file, 2051, count, (28, 28)))
        y = _read_idx(root / label_file, 2049, count, ()).astype(np.int64)
        if y.max() >= len(FASHION_CLASSES):
            raise LmscopeError(f"{root / label_file} holds label {int(y.max())}; Fashion-MNIST has 10 classes")
        labels.append(y)
    return RealData(np.concatenate(images), np.concatenate(labels), FASHION_CLASSES)


def load_real(name: str, split: str = "all", root: str | os.PathLike | None = None) -> RealData:
    """The real image set ``name``: ``"digits"`` or ``"fashion-mnist"`` (``root``: its folder)."""
    if name == "digits":
        return digits(split)
    if name == "fashion-mnist":
        return fashion_mnist(split, root)
    raise LmscopeError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
