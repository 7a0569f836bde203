"""Looking inside a loaded transformers model: its blocks, hidden states at a block, its output head.

Shared by the language-model scorers (:mod:`lmscope.lm`) and the tree projections (:mod:`lmscope.trees`):

* :func:`find_layers`: the model's stack of transformer blocks;
* :func:`capture_blocks`: run a forward pass with hooks that keep the hidden states entering and/or
  leaving chosen blocks, and stop the pass as soon as the last of them is captured (the blocks
  above it and the output head never run);
* :func:`find_body_head` and :func:`run_body` / :func:`project` / :func:`log_probs_at`: run the
  model's body once and project only the positions that are scored through its output head, when
  that reproduces the model's own logits (otherwise the full model runs and its logits are used);
* :func:`resolve_device`: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a ``torch.device``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from lmscope.errors import LmscopeError


# ------------------------------------------------------------------------------------------------
# Devices and blocks
# ------------------------------------------------------------------------------------------------
def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (a CUDA GPU when PyTorch sees one), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise LmscopeError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LmscopeError(f"device {device} asked for, but PyTorch sees no CUDA GPU")
    return dev


def find_layers(model) -> torch.nn.ModuleList:
    """The model's stack of transformer blocks (the largest ModuleList with one entry per layer)."""
    n = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    best = None
    for _, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) > 0:
            if n is not None and len(mod) != n:
                continue
            size = sum(p.numel() for p in mod.parameters())
            if best is None or size > best[0]:
                best = (size, mod)
    if best is None:
        raise LmscopeError(f"cannot find the stack of layers in a {type(model).__name__}")
    return best[1]


# ------------------------------------------------------------------------------------------------
# Hidden states at blocks, with an early stop
# ------------------------------------------------------------------------------------------------
class StopForward(Exception):
    """Raised by a capture hook once the last requested hidden state is kept (the rest is skipped)."""


def block_input(args, kwargs) -> torch.Tensor:
    """The hidden states a block receives (its first positional argument or ``hidden_states``)."""
    return args[0] if args else kwargs["hidden_states"]


def block_output(output) -> torch.Tensor:
    """The hidden states a block returns (a tensor, or the first item of a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def capture_blocks(blocks, run: Callable[[], object], *, inputs: Iterable[int] = (), outputs: Iterable[int] = (),
                   on_output: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
                   ) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Call ``run()`` (a forward pass through ``blocks``) and keep hidden states at chosen blocks.

    ``inputs``: indices of blocks whose input is kept; ``outputs``: indices of blocks whose output is
    kept (after ``on_output(index, hidden)`` when given). The pass stops once the last of them (in
    the order the blocks run) is captured. Returns ``(inputs by index, outputs by index)``; a block
    the pass never reached is missing from them.
    """
    ins, outs = sorted(set(inputs)), sorted(set(outputs))
    events = [(i, 0) for i in ins] + [(i, 1) for i in outs]
    if not events:
        run()
        return {}, {}
    last = max(events)
    got_in: dict[int, torch.Tensor] = {}
    got_out: dict[int, torch.Tensor] = {}

    def pre_hook(i):
        def hook(module, args, kwargs):
            got_in[i] = block_input(args, kwargs)
            if (i, 0) == last:
                raise StopForward
        return hook

    def post_hook(i):
        def hook(module, args, output):
            h = block_output(output)
            got_out[i] = on_output(i, h) if on_output is not None else h
            if (i, 1) == last:
                raise StopForward
        return hook

    handles = [blocks[i].register_forward_pre_hook(pre_hook(i), with_kwargs=True) for i in ins]
    handles += [blocks[i].register_forward_hook(post_hook(i)) for i in outs]
    try:
        run()
    except StopForward:
        pass
    finally:
        for h in handles:
            h.remove()
    return got_in, got_out


# ------------------------------------------------------------------------------------------------
# Body, then the output head at the scored positions only
# ------------------------------------------------------------------------------------------------
def _head_candidates(model):
    for head in (getattr(model, "cls", None), getattr(model, "lm_head", None), model.get_output_embeddings()):
        if isinstance(head, torch.nn.Module):
            yield head


@torch.no_grad()
def find_body_head(model, check: dict, at=None):
    """``(body, head)`` when ``head(body(...).last_hidden_state)`` reproduces the model's logits, else None.

    ``check``: keyword arguments of one forward pass to compare on (e.g. ``input_ids`` and
    ``attention_mask``); ``at``: an index into the logits (such as ``(rows, positions)``) to compare
    only there. A masked LM's prediction head (``cls``) counts as its head, since the output embedding
    alone skips its transform; a model whose head does more than project (logit scaling or soft-capping)
    fails the comparison and keeps its full forward pass.
    """
    body = getattr(model, "base_model", None)
    if body is None or body is model:
        return None
    head = next(_head_candidates(model), None)
    if head is None:
        return None
    try:
        full = model(**check).logits
        mine = head(body(**check).last_hidden_state)
        if at is not None:
            full, mine = full[at], mine[at]
    except Exception:  # noqa: BLE001 - any failure of the shortcut means: use the full model
        return None
    ok = full.shape == mine.shape and torch.allclose(mine.float(), full.float(), atol=1e-4, rtol=1e-4)
    return (body, head) if ok else None


def run_body(model, split, **kwargs):
    """One forward pass: ``(states, output)``, the states being the body's last hidden states when
    ``split`` (from :func:`find_body_head`) is given, else the model's logits."""
    out = (split[0] if split is not None else model)(**kwargs)
    return (out.last_hidden_state if split is not None else out.logits), out


def project(split, states: torch.Tensor) -> torch.Tensor:
    """Float logits of ``states`` from :func:`run_body` (through the head, or already logits)."""
    return (split[1](states) if split is not None else states).float()


def log_probs_at(split, states: torch.Tensor, targets: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """log p(target) for each row of ``states`` (N, H) and ``targets`` (N,), projected ``chunk`` rows
    at a time; float64 on the CPU."""
    out = []
    for s in range(0, states.shape[0], chunk):
        lp = F.log_softmax(project(split, states[s:s + chunk]), dim=-1)
        out.append(lp.gather(-1, targets[s:s + chunk, None]).squeeze(-1).double().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
