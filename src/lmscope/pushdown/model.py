"""The pushdown-layers language model (Murty et al. 2023): relative-position attention that reads the
stack tape, and an attachment head that predicts, with each next word, where that word attaches.

>>> cfg = PushdownConfig(vocab_size=40, d_model=64, n_layers=2)          # every layer a pushdown layer
>>> model = PushdownLM(cfg, seed=0)
>>> out = model(ids, attention_mask=mask, depth=depth, allowed=allowed)  # batches of ModelTape fields
>>> out.logits         # (B, T, V) next-token logits
>>> out.attach_logits  # (B, T, T) log-probs of the attachment of token p + 1 over model positions

Attention. No absolute positions: layer ``l`` scores query ``i`` against key ``j <= i`` as

    (q_i . k_j + q_i . R_l[min(i - j, max_relative)] + q_i . E_l[depth(i, j)]) / sqrt(d_head)

with ``R_l`` (max_relative + 1, d_head) and ``E_l`` (depth_cap, d_head) learned and shared across
heads; the depth term is only in the pushdown layers (``config.pushdown_layers``; the empty tuple is
the plain relative-position baseline). ``depth(i, j)`` is the tape's row of the *query*:
``ModelTape.depth[i, j]``, the depth of token ``j`` right after token ``i`` attached. ``E`` starts at
zero, where a pushdown layer computes exactly what the plain layer with the same weights computes.

Attachment head (pushdown models only), on the final hidden states ``h`` (after the final norm): at
position ``p``, given the (scaled) embedding ``e`` of the next token ``ids[p + 1]``, the query is
``u = W2 gelu(W1 [h_p; e])``; reducing with the constituent ending at model position ``q <= p``
scores ``u . (K h_q + D[depth(p, q)]) / sqrt(d)`` and the shift (``q = p + 1``) scores
``u . S e / sqrt(d)``. Positions not allowed by the tape get probability 0 (a -inf log-prob).

Incremental decoding (beam search): :meth:`PushdownLM.new_cache`, :meth:`~PushdownLM.step` (one
token per row, with its own tape row; returns next-token log-probs), :meth:`~PushdownLM.attach_logprobs`
and :meth:`~PushdownLM.reorder`. A position's hidden states are computed once, with the tape row of its
own time, which is what the teacher-forced :meth:`~PushdownLM.forward` computes too.

Saved as a Hugging Face-style folder (``config.json`` with ``"model_type": "lmscope-pushdown"`` and
``model.safetensors``); parameter names are short and stable (``layers.{i}.attn.rel``,
``layers.{i}.attn.depth``, ``attach.key.weight``, ...).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lmscope.errors import LmscopeError
from lmscope.pushdown.config import MODEL_TYPE, PushdownConfig, read_config

__all__ = ["MODEL_TYPE", "PushdownCache", "PushdownConfig", "PushdownLM", "PushdownOutput", "read_config"]

@dataclass
class PushdownOutput:
    """What :meth:`PushdownLM.forward` returns: ``logits`` (B, T, V); ``attach_logits`` (B, T, T), row
    ``p`` the log-probs of token ``p + 1``'s attachment (None for the plain model or without
    ``allowed``); ``final_hidden`` (B, T, d_model), what both heads read."""

    logits: torch.Tensor
    attach_logits: torch.Tensor | None
    final_hidden: torch.Tensor

    def __getitem__(self, key: str):
        return getattr(self, key)


@dataclass
class PushdownCache:
    """The state of incremental decoding: per layer the keys and values (B, heads, t, d_head) of the
    ``t`` positions read so far, their final hidden states (B, t, d_model) and, for a pushdown model,
    the attachment head's keys of those states (B, t, d_model)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    hidden: torch.Tensor
    attach_keys: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return self.hidden.shape[1]

    @property
    def batch(self) -> int:
        return self.hidden.shape[0]


class RelativeAttention(nn.Module):
    """Causal multi-head attention with relative positions and, in a pushdown layer, the tape."""

    def __init__(self, cfg: PushdownConfig, pushdown: bool):
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.d_head, self.dropout = cfg.n_heads, cfg.d_head, cfg.dropout
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.rel = nn.Parameter(torch.zeros(cfg.max_relative + 1, cfg.d_head))
        self.depth = nn.Parameter(torch.zeros(cfg.depth_cap, cfg.d_head)) if pushdown else None

    def forward(self, x, dist, depth, mask=None, past=None):
        """``x`` (B, Tq, d): the new positions; ``dist`` (Tq, Tk) clipped distances; ``depth`` (B, Tq, Tk)
        or None; ``mask`` (B, 1, Tq, Tk) bool or None; ``past``: cached (keys, values) of earlier
        positions. Returns the output and the keys and values of every position."""
        B, Tq, d = x.shape

        def heads(t):
            return t.view(B, Tq, self.n_heads, self.d_head).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        Tk = k.shape[2]
        s = q @ k.transpose(-1, -2)
        s = s + (q @ self.rel.T).gather(-1, dist.expand(B, self.n_heads, Tq, Tk))
        if self.depth is not None:
            s = s + (q @ self.depth.T).gather(-1, depth[:, None].expand(B, self.n_heads, Tq, Tk))
        s = s / math.sqrt(self.d_head)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        p = F.dropout(s.softmax(-1), self.dropout, self.training)
        return self.o((p @ v).transpose(1, 2).reshape(B, Tq, d)), (k, v)


class Block(nn.Module):
    """Attention then a GELU MLP, each in a residual branch, LayerNorm before (pre) or after (post)."""

    def __init__(self, cfg: PushdownConfig, pushdown: bool):
        super().__init__()
        self.pre = cfg.norm == "pre"
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = RelativeAttention(cfg, pushdown)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc_in", nn.Linear(cfg.d_model, cfg.d_ff))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("fc_out", nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, dist, depth, mask=None, past=None):
        if self.pre:
            a, kv = self.attn(self.ln1(x), dist, depth, mask, past)
            x = x + self.drop(a)
            return x + self.drop(self.mlp(self.ln2(x))), kv
        a, kv = self.attn(x, dist, depth, mask, past)
        x = self.ln1(x + self.drop(a))
        return self.ln2(x + self.drop(self.mlp(x))), kv


class AttachmentHead(nn.Module):
    """Scores the next token's attachment over the model positions (see the module docstring)."""

    def __init__(self, cfg: PushdownConfig):
        super().__init__()
        d = cfg.d_model
        self.query_in = nn.Linear(2 * d, d)
        self.query_out = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.shift = nn.Linear(d, d)
        self.depth = nn.Embedding(cfg.depth_cap, d)

    def forward(self, h_query, e_next, keys, depth):
        """Scores (B, P, K) of reducing at key positions and (B, P) of shifting, for ``P`` query rows
        (``h_query``, ``e_next``: (B, P, d)) over ``K`` positions (``keys`` = ``self.key(h)`` (B, K, d),
        ``depth`` (B, P, K))."""
        u = self.query_out(F.gelu(self.query_in(torch.cat([h_query, e_next], -1))))
        scale = math.sqrt(u.shape[-1])
        reduce = u @ keys.transpose(-1, -2)
        reduce = reduce + (u @ self.depth.weight.T).gather(-1, depth)
        shift = (u * self.shift(e_next)).sum(-1)
        return reduce / scale, shift / scale


def masked_log_softmax(scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the allowed entries of the last dimension, -inf elsewhere (a row with none
    allowed is all -inf, and passes no gradient)."""
    any_allowed = allowed.any(-1, keepdim=True)
    safe = scores.masked_fill(~allowed, float("-inf")).masked_fill(~any_allowed, 0.0)
    return safe.log_softmax(-1).masked_fill(~allowed, float("-inf"))


class PushdownLM(nn.Module):
    """A relative-position transformer LM with pushdown layers and an attachment head (see the module
    docstring). ``seed`` makes the initialization reproducible without touching the global RNG."""

    def __init__(self, config: PushdownConfig, seed: int | None = None):
        super().__init__()
        if not isinstance(config, PushdownConfig):
            raise LmscopeError("PushdownLM needs a PushdownConfig")
        self.config = cfg = config
        with torch.random.fork_rng(devices=[]):
            self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
            self.drop = nn.Dropout(cfg.dropout)
            self.layers = nn.ModuleList(Block(cfg, i in cfg.pushdown_layers) for i in range(cfg.n_layers))
            self.norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else None
            self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
            self.attach = AttachmentHead(cfg) if cfg.has_tape else None
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None) -> None:
        """Embedding N(0, 1/d_model), linear weights N(0, 0.02²) (residual outputs scaled down by
        sqrt(2 n_layers)), biases 0, relative-position tables N(0, 0.02²), depth tables 0."""
        g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        cfg = self.config

        def normal(t, std):  # drawn on the CPU, so a seed gives the same weights on any device
            t.copy_(torch.randn(t.shape, generator=g) * std)

        normal(self.embed.weight, cfg.d_model ** -0.5)
        for module in self.modules():
            if isinstance(module, nn.Linear) and module is not self.head:
                normal(module.weight, 0.02)
                module.bias.zero_()
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        for block in self.layers:
            block.attn.o.weight.div_(math.sqrt(2 * cfg.n_layers))
            block.mlp.fc_out.weight.div_(math.sqrt(2 * cfg.n_layers))
            normal(block.attn.rel, 0.02)
            if block.attn.depth is not None:
                block.attn.depth.zero_()
        if self.attach is not None:
            self.attach.depth.weight.zero_()
        if not cfg.tie_embeddings:
            normal(self.head.weight, 0.02)

    # --- full (teacher-forced) pass -------------------------------------------------------------------
    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(ids) * math.sqrt(self.config.d_model)

    def _lm_logits(self, final: torch.Tensor) -> torch.Tensor:
        logits = self.head(final)
        return logits / math.sqrt(self.config.d_model) if self.config.tie_embeddings else logits

    def _distances(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        return (q_pos[:, None] - k_pos[None, :]).clamp(0, self.config.max_relative)

    def _depth(self, depth, shape: tuple, what: str = "depth") -> torch.Tensor | None:
        if not self.config.has_tape:
            return None
        if depth is None:
            raise LmscopeError("a pushdown model needs the depth tape (ModelTape.depth rows)")
        depth = torch.as_tensor(depth, device=self.embed.weight.device)
        if tuple(depth.shape) != shape:
            raise LmscopeError(f"{what} has shape {tuple(depth.shape)}, expected {shape}")
        return depth.long().clamp(0, self.config.depth_cap - 1)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, depth=None,
                allowed=None) -> PushdownOutput:
        """Teacher-forced pass over right-padded ``ids`` (B, T) with ``attention_mask`` (B, T), 1 = real.

        ``depth`` (B, T, T): :attr:`ModelTape.depth` of each row (required by a pushdown model, ignored
        by the plain one); ``allowed`` (B, T, T) bool: :attr:`ModelTape.allowed`; without it (or for the
        plain model) ``attach_logits`` is None."""
        cfg = self.config
        if ids.dim() != 2:
            raise LmscopeError(f"ids must be (batch, time), got shape {tuple(ids.shape)}")
        B, T = ids.shape
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= cfg.vocab_size):
            raise LmscopeError(f"token ids must be in 0..{cfg.vocab_size - 1}")
        device = ids.device
        pos = torch.arange(T, device=device)
        mask = torch.ones(T, T, dtype=torch.bool, device=device).tril()[None].expand(B, T, T)
        if attention_mask is not None:
            if tuple(attention_mask.shape) != (B, T):
                raise LmscopeError(f"attention_mask has shape {tuple(attention_mask.shape)}, ids {(B, T)}")
            keep = attention_mask.to(device).bool()
            mask = mask & keep[:, None, :]
            mask = mask | (~mask.any(-1, keepdim=True) & torch.eye(T, dtype=torch.bool, device=device))
        depth = self._depth(depth, (B, T, T))
        dist = self._distances(pos, pos)
        x = self.drop(self._embed(ids))
        for i, block in enumerate(self.layers):
            x, _ = block(x, dist, depth if i in cfg.pushdown_layers else None, mask[:, None])
        final = self.norm(x) if self.norm is not None else x
        attach_logits = None
        if self.attach is not None and allowed is not None:
            allowed = torch.as_tensor(allowed, device=device)
            if tuple(allowed.shape) != (B, T, T) or allowed.dtype != torch.bool:
                raise LmscopeError(f"allowed must be a bool tensor of shape {(B, T, T)}")
            nxt = torch.cat([ids[:, 1:], ids.new_full((B, 1), cfg.pad_id)], 1)
            e_next = self._embed(nxt)
            reduce, shift = self.attach(final, e_next, self.attach.key(final), depth)
            is_shift = (pos[None, :] == pos[:, None] + 1)[None]
            scores = torch.where(is_shift, shift[:, :, None], reduce)
            attach_logits = masked_log_softmax(scores, allowed)
        return PushdownOutput(self._lm_logits(final), attach_logits, final)

    # --- incremental decoding -------------------------------------------------------------------------
    def new_cache(self, batch: int) -> PushdownCache:
        """An empty cache for ``batch`` rows."""
        cfg, w = self.config, self.embed.weight
        empty = w.new_zeros(batch, cfg.n_heads, 0, cfg.d_head)
        states = w.new_zeros(batch, 0, cfg.d_model)
        return PushdownCache([empty] * cfg.n_layers, [empty] * cfg.n_layers, states,
                             states if self.attach is not None else None)

    def step(self, cache: PushdownCache, ids_t: torch.Tensor, depth_row=None) -> torch.Tensor:
        """Read one token per row (``ids_t`` (B,)) at position ``t = cache.length``, with its tape row
        ``depth_row`` (B, t + 1) (the depths of positions 0..t right after it attached; ignored by the
        plain model). Appends to ``cache`` in place; returns the next-token log-probs (B, V)."""
        cfg = self.config
        t, B = cache.length, cache.batch
        ids_t = torch.as_tensor(ids_t, device=self.embed.weight.device).long().view(-1)
        if ids_t.shape[0] != B:
            raise LmscopeError(f"step got {ids_t.shape[0]} token ids for a cache of {B} rows")
        depth = self._depth(depth_row, (B, t + 1), "depth_row")
        depth = depth[:, None] if depth is not None else None
        pos = torch.arange(t + 1, device=ids_t.device)
        dist = self._distances(pos[-1:], pos)
        x = self._embed(ids_t)[:, None]
        for i, block in enumerate(self.layers):
            x, (k, v) = block(x, dist, depth if i in cfg.pushdown_layers else None,
                              past=(cache.keys[i], cache.values[i]))
            cache.keys[i], cache.values[i] = k, v
        final = self.norm(x) if self.norm is not None else x
        cache.hidden = torch.cat([cache.hidden, final], 1)
        if self.attach is not None:
            cache.attach_keys = torch.cat([cache.attach_keys, self.attach.key(final)], 1)
        return self._lm_logits(final[:, 0]).log_softmax(-1)

    def attach_logprobs(self, cache: PushdownCache, next_ids: torch.Tensor, depth_row, allowed_row
                        ) -> torch.Tensor:
        """Log-probs (B, t + 2) of the attachment of the next token ``next_ids`` (B,), read after the
        ``t + 1`` positions in ``cache``: columns 0..t reduce, t + 1 shifts. ``depth_row`` (B, t + 1):
        the current depths (the row given to the last :meth:`step`); ``allowed_row`` (B, t + 2) bool."""
        if self.attach is None:
            raise LmscopeError("the plain relative-position model has no attachment head")
        B, t1 = cache.batch, cache.length
        device = cache.hidden.device
        depth = self._depth(depth_row, (B, t1), "depth_row")
        allowed_row = torch.as_tensor(allowed_row, device=device)
        if tuple(allowed_row.shape) != (B, t1 + 1) or allowed_row.dtype != torch.bool:
            raise LmscopeError(f"allowed_row must be a bool tensor of shape {(B, t1 + 1)}")
        e_next = self._embed(torch.as_tensor(next_ids, device=device).long().view(B, 1))
        reduce, shift = self.attach(cache.hidden[:, -1:], e_next, cache.attach_keys, depth[:, None])
        scores = torch.cat([reduce[:, 0], shift], 1)
        return masked_log_softmax(scores, allowed_row)

    @staticmethod
    def reorder(cache: PushdownCache, index) -> PushdownCache:
        """The cache's rows in the order ``index`` (a row may repeat: a hypothesis with several
        children), in place; returns the cache."""
        index = torch.as_tensor(index, device=cache.hidden.device).long()
        cache.keys = [k.index_select(0, index) for k in cache.keys]
        cache.values = [v.index_select(0, index) for v in cache.values]
        cache.hidden = cache.hidden.index_select(0, index)
        if cache.attach_keys is not None:
            cache.attach_keys = cache.attach_keys.index_select(0, index)
        return cache

    # --- saving and loading ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, tokenizer=None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (and the ``tokenizer``'s files, if given) to
        ``path``, atomically replacing it as a whole. A tied head is not stored."""
        from lmscope.models.small import write_model_folder

        return write_model_folder(path, self, self.config.hf_dict(), tokenizer=tokenizer,
                                  drop=("head.weight",) if self.config.tie_embeddings else ())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PushdownLM:
        """Load a folder written by :meth:`save`, in eval mode; LmscopeError if it is missing, corrupt,
        of another model type, or its weights do not fit its config."""
        from lmscope.models.small import read_model_weights

        path = Path(path)
        model = cls(read_config(path), seed=0)
        read_model_weights(path, model, skip=("head.weight",) if model.config.tie_embeddings else ())
        return model.eval()
