"""Images as the vision check-up passes them around: H x W x 3 uint8 RGB arrays, transparency composited on
white. Needs only numpy and Pillow, so the sandbox-side commands do not load torch."""

from __future__ import annotations

import numpy as np

from lmscope.errors import LmscopeError


def to_rgb(image) -> np.ndarray:
    """An H x W x 3 uint8 RGB array from a PIL image or an H x W, H x W x 1/3/4 array (uint8, bool,
    or floats in [0, 1]); alpha is composited on white."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
        elif image.mode != "RGB":
            image = image.convert("RGB")
        arr = np.asarray(image)
    elif isinstance(image, np.ndarray):
        arr = image
    else:
        raise LmscopeError(f"an image must be a PIL image or a numpy array, got {type(image).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise LmscopeError(f"an image array must be H x W, H x W x 3 or H x W x 4, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise LmscopeError(f"an image must have at least one pixel, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            raise LmscopeError("a floating-point image must hold finite values in [0, 1]")
        arr = np.rint(arr * 255.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise LmscopeError(f"an image array must be uint8, bool or float in [0, 1], got dtype {arr.dtype}")
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        rgb = arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.rint(rgb).astype(np.uint8)
    return np.ascontiguousarray(arr)
