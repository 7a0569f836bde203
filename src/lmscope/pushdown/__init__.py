"""Pushdown layers: attention with a stack tape, an attachment head, beam search over parses.

``tape`` (trees -> attachments -> stack tape; numpy only), ``config`` and ``model`` (:class:`PushdownLM`, its
config), ``train`` (:func:`train_pushdown` on the shared training loop), ``beam`` (beam search over
attachments, greedy parsing and generation). The names below are imported on first use, so that
``lmscope.pushdown.tape`` does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "beam": ("BeamResult", "Generation", "beam_search", "beam_search_reference", "greedy_generate",
             "greedy_parse", "joint_log_probs", "lm_log_likelihood"),
    "model": ("PushdownCache", "PushdownConfig", "PushdownLM", "PushdownOutput"),
    "train": ("example_from_tree", "pushdown_loss", "train_pushdown"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"lmscope.pushdown.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lmscope.pushdown' has no attribute {name!r}")
