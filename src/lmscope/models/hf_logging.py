"""Quieting transformers' own logs and progress bars (shared by model loading and GGUF conversion)."""

from __future__ import annotations

import os


def quiet_transformers() -> None:
    """Silence transformers' logs and progress bars when the CLI asked for it (``LMSCOPE_QUIET_TRANSFORMERS``)."""
    if os.environ.get("LMSCOPE_QUIET_TRANSFORMERS"):
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
