"""Training a pushdown LM on parsed sentences, through the project's one training loop.

>>> examples = [example_from_tree(tok, tree) for tree in trees]     # (ids with BOS/EOS, attachments)
>>> cfg = PushdownConfig(vocab_size=tok.vocab_size, d_model=64, n_layers=2)
>>> summary = train_pushdown("runs/pd", cfg, tok, examples, TrainConfig(steps=2000, lr=1e-3))

The loss is the LM cross-entropy (mean over every non-pad target token) plus the attachment
cross-entropy (mean over every word's attachment, teacher-forced on the gold tape; EOS is forced, not
scored). For the plain relative-position baseline (``pushdown_layers=()``) it is the LM loss alone,
so both train on the same items with the same function. Runs resume, checkpoint and log metrics as
:func:`lmscope.train.loop.train` does; a checkpoint's ``model/`` folder is a :meth:`PushdownLM.save`
folder with the tokenizer, loadable on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lmscope.data.trees import Tree, leaves
from lmscope.errors import LmscopeError
from lmscope.pushdown.model import PushdownConfig, PushdownLM
from lmscope.pushdown.tape import ModelTape, attachments, binary_tree, model_tape
from lmscope.train.loop import TrainConfig, train, vocab_fingerprint


def example_from_tree(tokenizer, tree: Tree) -> tuple[list[int], list[int]]:
    """``(ids, attachments)`` of a tree's sentence: ``[BOS, words.., EOS]`` and the gold attachments
    (a non-binary tree is binarized right-branching first)."""
    tree = binary_tree(tree)
    ids = tokenizer.encode(" ".join(leaves(tree)), add_bos=True, add_eos=True)
    return ids, attachments(tree)


def prepare(examples: Sequence, config: PushdownConfig, tokenizer=None) -> list[tuple[list[int], ModelTape | None]]:
    """Check ``(ids, attachments)`` pairs and make their tapes (None for the plain model); LmscopeError
    naming the first bad example."""
    bos = getattr(tokenizer, "bos_id", None)
    eos = getattr(tokenizer, "eos_id", None)
    out = []
    for i, ex in enumerate(examples):
        try:
            ids, attach = ex
            ids = [int(t) for t in ids]
        except (TypeError, ValueError):
            raise LmscopeError(f"training example {i} is not a pair (token ids, attachments)") from None
        if len(ids) < 3:
            raise LmscopeError(f"training example {i} has fewer than 3 tokens (BOS, a word, EOS)")
        if min(ids) < 0 or max(ids) >= config.vocab_size:
            raise LmscopeError(f"training example {i} has a token id outside the model's vocabulary "
                               f"(0..{config.vocab_size - 1})")
        if (bos is not None and ids[0] != bos) or (eos is not None and ids[-1] != eos):
            raise LmscopeError(f"training example {i} does not start with BOS and end with EOS")
        tape = None
        if config.has_tape:
            if attach is None or len(attach) != len(ids) - 2:
                got = "no" if attach is None else len(attach)
                raise LmscopeError(f"training example {i}: {got} attachments for {len(ids) - 2} words")
            try:
                tape = model_tape([int(a) for a in attach], config.depth_cap)
            except LmscopeError as e:
                raise LmscopeError(f"training example {i}: {e}") from None
        out.append((ids, tape))
    if not out:
        raise LmscopeError("train_pushdown needs at least one training example")
    return out


def collate(items: Sequence[tuple[list[int], ModelTape | None]], pad_id: int) -> dict[str, torch.Tensor | None]:
    """A right-padded batch: ``ids``, ``mask`` (B, T); with tapes also ``depth`` (B, T, T, zeros in the
    padding), ``allowed`` (B, T, T, False in the padding) and ``targets`` (B, T, -100 in the padding)."""
    B, T = len(items), max(len(ids) for ids, _ in items)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    with_tape = items[0][1] is not None
    depth = np.zeros((B, T, T), dtype=np.int64) if with_tape else None
    allowed = np.zeros((B, T, T), dtype=bool) if with_tape else None
    targets = np.full((B, T), -100, dtype=np.int64) if with_tape else None
    for b, (row, tape) in enumerate(items):
        n = len(row)
        ids[b, :n] = torch.tensor(row)
        mask[b, :n] = 1
        if with_tape:
            depth[b, :n, :n] = tape.depth
            allowed[b, :n, :n] = tape.allowed
            targets[b, :n] = tape.targets
    t = (lambda a: torch.from_numpy(a)) if with_tape else (lambda a: None)
    return {"ids": ids, "mask": mask, "depth": t(depth), "allowed": t(allowed), "targets": t(targets)}


def batch_losses(model: PushdownLM, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(LM loss, attachment loss or None): mean cross-entropies over the batch's non-pad targets."""
    device = model.embed.weight.device
    b = {k: (v.to(device) if v is not None else None) for k, v in batch.items()}
    ids, mask = b["ids"], b["mask"]
    out = model(ids, attention_mask=mask, depth=b["depth"], allowed=b["allowed"])
    logits = out.logits[:, :-1]
    lm_targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lm_targets.reshape(-1), ignore_index=-100)
    if out.attach_logits is None:
        return lm, None
    targets = b["targets"][:, 1:]            # row p predicts token p + 1's attachment
    rows = targets != -100
    logp = out.attach_logits[:, :-1][rows]   # (N, T), -inf where not allowed
    attach = -logp.gather(1, targets[rows][:, None]).mean()
    return lm, attach


def pushdown_loss(model: PushdownLM, batch: dict) -> torch.Tensor:
    """The training loss: LM cross-entropy + attachment cross-entropy (LM alone for the plain model)."""
    lm, attach = batch_losses(model, batch)
    return lm if attach is None else lm + attach


def _fingerprint(prepared) -> str:
    h = hashlib.sha256()
    for ids, tape in prepared:
        h.update(json.dumps([ids, tape.targets.tolist() if tape is not None else None]).encode())
    return h.hexdigest()


def train_pushdown(run_dir: str | os.PathLike, config: PushdownConfig, tokenizer, examples: Sequence,
                   train_config: TrainConfig | None = None,
                   eval_fn: Callable[[PushdownLM, int], dict] | None = None, quiet: bool | None = None,
                   stop_after: int | None = None, meta: dict | None = None, device: str = "cpu") -> dict:
    """Train a :class:`PushdownLM` (or the plain baseline, ``pushdown_layers=()``) on ``examples``,
    ``(token ids with BOS/EOS, attachments)`` pairs (attachments may be None for the plain model), with
    :func:`lmscope.train.loop.train` in ``run_dir``, resuming if it has checkpoints. The model starts
    from ``train_config.seed``. ``meta`` (JSON) is recorded with the configuration (resuming with a
    different one is refused). ``device``: where the model trains (``auto``, ``cpu``, ``cuda``, ``cuda:N``);
    not part of the configuration, so a run may resume on another device (the numbers then differ in the
    last bits). Returns the loop's summary (``step``, ``final_checkpoint``, ...)."""
    from lmscope.models.hooks import resolve_device

    dev = resolve_device(device)
    train_config = (train_config or TrainConfig()).validate()
    if not isinstance(config, PushdownConfig):
        raise LmscopeError("config must be a PushdownConfig")
    pad_id = getattr(tokenizer, "pad_id", config.pad_id)
    if pad_id != config.pad_id:
        raise LmscopeError(f"the tokenizer's pad id {pad_id} differs from the model's pad_id {config.pad_id}")
    size = getattr(tokenizer, "vocab_size", config.vocab_size)
    if size > config.vocab_size:
        raise LmscopeError(f"the tokenizer has {size} tokens; the model's vocab_size is {config.vocab_size}")
    prepared = prepare(examples, config, tokenizer)
    run_info = {"model": config.to_dict(), "data": {"n_examples": len(prepared), "sha256": _fingerprint(prepared)},
                "tokenizer": {"vocab_sha256": vocab_fingerprint(tokenizer)}}
    if meta is not None:
        run_info["meta"] = meta
    saved_tokenizer = tokenizer if hasattr(tokenizer, "save") else None

    def save_model(model: PushdownLM, folder: Path) -> None:
        model.save(folder, tokenizer=saved_tokenizer)

    summary = train(run_dir, PushdownLM(config, seed=train_config.seed).to(dev), pushdown_loss, prepared, train_config,
                    collate=lambda items: collate(items, config.pad_id), eval_fn=eval_fn, save_model=save_model,
                    run_info=run_info, quiet=quiet, stop_after=stop_after, desc="pushdown")
    summary.pop("seconds")
    return summary
