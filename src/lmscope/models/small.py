"""The small from-scratch transformer that the grammar tasks train, in one readable file.

A plain transformer: token embedding plus positions (sinusoidal or learned), ``n_layers`` blocks of
multi-head self-attention and a GELU MLP (pre- or post-LayerNorm), and an output projection onto the
vocabulary (tied to the embedding by default). ``causal=True`` gives a left-to-right language model,
``causal=False`` a bidirectional encoder whose head predicts (masked) tokens over the vocabulary.

>>> cfg = SmallConfig(vocab_size=40, d_model=64, n_layers=2, n_heads=4, d_ff=256)
>>> model = SmallTransformer(cfg, seed=0)
>>> out = model(ids, attention_mask=mask)           # out.logits: (batch, time, vocab)
>>> model.save("runs/qf/model")                      # config.json + model.safetensors
>>> model = SmallTransformer.load("runs/qf/model")   # or open_model("runs/qf/model").load_model()

Parameter names are short and stable (``layers.{i}.attn.q.weight``, ``layers.{i}.mlp.fc_in.weight``,
...), and the saved folder is a Hugging Face-style directory whose config says
``"model_type": "lmscope-small"``, so ``open_model`` lists its matrices by role like any checkpoint.

Attention masks
---------------
Every layer attends through one boolean mask per example, True = the query may attend to the key.
It is the AND of three parts:

* padding: keys where ``attention_mask`` is 0 are never attended;
* causality: for a causal model a query never attends to a later position;
* ``key_mask``: an optional extra restriction per layer (see :meth:`SmallTransformer.forward`). Tree
  projections use it to hide the keys outside a span from a threshold layer upward.

A query left with no key at all attends to itself alone (its own position, whether or not that is
padding or masked), so every output stays finite. Outputs at such positions carry no information
from other tokens at that layer; callers normally ignore them (padding, positions outside a span).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lmscope._io import atomic_dir, write_json
from lmscope.errors import LmscopeError
from lmscope.models.small_tokenizer import pad_batch

MODEL_TYPE = "lmscope-small"
ARCHITECTURE = "SmallTransformer"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

NORMS = ("pre", "post")
POSITIONS = ("sinusoidal", "learned")


def write_model_folder(path: str | os.PathLike, model: nn.Module, config: dict, tokenizer=None,
                       drop: tuple[str, ...] = ()) -> Path:
    """Write ``model``'s weights (``model.safetensors``, without the tensors named in ``drop``, e.g. a
    tied head), ``config`` (``config.json``) and the ``tokenizer``'s files (anything with
    ``save(dir)``) to the folder ``path``, replacing it as a whole and atomically: it appears complete
    or not at all. The from-scratch models of lmscope save this way."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items() if k not in drop}
    with atomic_dir(path) as tmp:
        write_json(tmp / CONFIG_FILE, config)
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        if tokenizer is not None:
            tokenizer.save(tmp)
    return path


def read_model_weights(path: str | os.PathLike, model: nn.Module, skip: tuple[str, ...] = ()) -> None:
    """Load ``path/model.safetensors`` (written by :func:`write_model_folder`) into ``model``: every
    tensor of its state dict but those in ``skip`` must be there with the same shape, and nothing else;
    LmscopeError naming the first tensor that does not fit."""
    from lmscope.models.safetensors_io import SafetensorsFile

    path = Path(path)
    f = SafetensorsFile(path / WEIGHTS_FILE)
    expected = {k: v for k, v in model.state_dict().items() if k not in skip}
    missing = [k for k in expected if k not in f.keys()]
    extra = [k for k in f.keys() if k not in expected]
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has an unexpected tensor {extra[0]}"
        raise LmscopeError(f"{path / WEIGHTS_FILE} does not match its config.json: it {what}")
    state = {}
    for name, want in expected.items():
        if tuple(f.shape(name)) != tuple(want.shape):
            raise LmscopeError(f"{path / WEIGHTS_FILE}: {name} has shape {tuple(f.shape(name))}, "
                               f"config.json implies {tuple(want.shape)}")
        state[name] = f.read(name)
    model.load_state_dict(state, strict=False)  # only the skipped tensors (a tied head) are left out


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
@dataclass
class SmallConfig:
    """Sizes and choices of a :class:`SmallTransformer`; checked on construction (LmscopeError)."""

    vocab_size: int
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 512
    max_len: int = 256
    causal: bool = True            # False: bidirectional encoder with an MLM-style head
    norm: str = "pre"              # "pre" or "post" LayerNorm
    positions: str = "sinusoidal"  # or "learned"
    dropout: float = 0.0
    tie_embeddings: bool = True
    pad_id: int = 0

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_len", "pad_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise LmscopeError(f"small model config: {name} must be an integer, got {value!r}")
            if name != "pad_id" and value <= 0:
                raise LmscopeError(f"small model config: {name} must be positive, got {value}")
        for name in ("causal", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise LmscopeError(f"small model config: {name} must be true or false, got {getattr(self, name)!r}")
        if self.d_model % self.n_heads:
            raise LmscopeError(f"small model config: d_model {self.d_model} is not divisible by "
                               f"n_heads {self.n_heads}")
        if self.norm not in NORMS:
            raise LmscopeError(f"small model config: norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.positions not in POSITIONS:
            raise LmscopeError(f"small model config: positions must be one of {', '.join(POSITIONS)}, "
                               f"got {self.positions!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise LmscopeError(f"small model config: dropout must be in [0, 1), got {self.dropout!r}")
        self.dropout = float(self.dropout)
        if not 0 <= self.pad_id < self.vocab_size:
            raise LmscopeError(f"small model config: pad_id {self.pad_id} is outside the vocabulary "
                               f"(0..{self.vocab_size - 1})")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SmallConfig:
        """Build from a dict; keys that are not config fields (e.g. ``model_type``) are ignored."""
        if not isinstance(d, dict):
            raise LmscopeError("small model config must be a JSON object")
        if "vocab_size" not in d:
            raise LmscopeError("small model config lacks vocab_size")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def hf_dict(self) -> dict:
        """The contents of ``config.json``: our fields plus the names generic readers look for."""
        return {
            "model_type": MODEL_TYPE,
            "architectures": [ARCHITECTURE],
            **self.to_dict(),
            "hidden_size": self.d_model,
            "num_hidden_layers": self.n_layers,
            "num_attention_heads": self.n_heads,
            "intermediate_size": self.d_ff,
            "max_position_embeddings": self.max_len,
            "is_decoder": self.causal,
        }


# HF-style alias -> our field; on loading they must agree (a hand-edited config is caught)
_ALIASES = {"hidden_size": "d_model", "num_hidden_layers": "n_layers", "num_attention_heads": "n_heads",
            "intermediate_size": "d_ff", "max_position_embeddings": "max_len", "is_decoder": "causal"}


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------
@dataclass
class SmallOutput:
    """What :meth:`SmallTransformer.forward` returns; also readable as ``out["logits"]``.

    ``hidden_states`` (with ``return_hidden=True``): ``n_layers + 1`` tensors (B, T, d_model): the
    embedding output (token + position, after dropout), then each block's output. For pre-LN models
    the last one is the residual stream *before* the final LayerNorm. ``final_hidden`` is always what
    the output head sees: after the final LayerNorm for pre-LN, the last block's output for post-LN.
    """

    logits: torch.Tensor
    final_hidden: torch.Tensor
    hidden_states: list[torch.Tensor] | None = None

    def __getitem__(self, key: str):
        return getattr(self, key)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q, k, v, o projections (all with bias)."""

    def __init__(self, cfg: SmallConfig):
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.d_head, self.dropout = cfg.n_heads, cfg.d_head, cfg.dropout
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, d); ``mask``: bool (B, 1, T, T), True = may attend, no row all False."""
        B, T, d = x.shape

        def heads(t):  # (B, T, d) -> (B, heads, T, d_head)
            return t.view(B, T, self.n_heads, self.d_head).transpose(1, 2)

        y = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)),
                                           attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.o(y.transpose(1, 2).reshape(B, T, d))


class MLP(nn.Module):
    def __init__(self, cfg: SmallConfig):
        super().__init__()
        self.fc_in = nn.Linear(cfg.d_model, cfg.d_ff)
        self.fc_out = nn.Linear(cfg.d_ff, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(F.gelu(self.fc_in(x)))


class Block(nn.Module):
    """Attention then MLP, each in a residual branch; LayerNorm before (pre) or after (post) it."""

    def __init__(self, cfg: SmallConfig):
        super().__init__()
        self.pre = cfg.norm == "pre"
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = x + self.drop(self.attn(self.ln1(x), mask))
            return x + self.drop(self.mlp(self.ln2(x)))
        x = self.ln1(x + self.drop(self.attn(x, mask)))
        return self.ln2(x + self.drop(self.mlp(x)))


def sinusoidal_table(max_len: int, d: int) -> torch.Tensor:
    """(max_len, d): sin at even dimensions, cos at odd ones, wavelengths 2π .. 10000·2π."""
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(max_len, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return table


KeyMask = torch.Tensor | list | tuple | None


class SmallTransformer(nn.Module):
    """A small transformer LM (causal) or encoder (``causal=False``); see the module docstring.

    ``seed`` makes the initialization reproducible without touching the global random state.
    Scales: the token embedding starts with standard deviation 1/sqrt(d_model) and is multiplied by
    sqrt(d_model) before positions are added (as in Vaswani et al.), so tokens and positions start
    at a similar scale. A tied head divides its logits by sqrt(d_model): the final hidden state has
    norm about sqrt(d_model) and, at initialization, points along its own token's embedding, so
    unscaled logits would start far from uniform (an initial loss of ~19 nats instead of ~ln V at
    d_model 512). Linear weights start N(0, 0.02²) (the residual outputs ``o`` and ``fc_out`` scaled
    down by sqrt(2 n_layers)), biases at zero; an untied head starts N(0, 0.02²).
    """

    def __init__(self, config: SmallConfig, seed: int | None = None):
        super().__init__()
        self.config = config
        cfg = config
        with torch.random.fork_rng(devices=[]):  # torch's default inits, replaced by reset_parameters
            self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
            if cfg.positions == "learned":
                self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
            else:
                self.register_buffer("pos_table", sinusoidal_table(cfg.max_len, cfg.d_model), persistent=False)
            self.drop = nn.Dropout(cfg.dropout)
            self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
            self.norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else None
            self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None) -> None:
        g = None
        if seed is not None:
            g = torch.Generator().manual_seed(int(seed))
        cfg = self.config

        def normal(t, std):  # drawn on the CPU, so a seed gives the same weights on any device
            t.copy_(torch.randn(t.shape, generator=g) * std)

        normal(self.embed.weight, cfg.d_model ** -0.5)
        if cfg.positions == "learned":
            normal(self.pos.weight, 0.5 ** 0.5)  # the RMS of a sinusoidal table's entries
        for module in self.layers.modules():
            if isinstance(module, nn.Linear):
                normal(module.weight, 0.02)
                module.bias.zero_()
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        for block in self.layers:
            block.attn.o.weight.div_(math.sqrt(2 * cfg.n_layers))
            block.mlp.fc_out.weight.div_(math.sqrt(2 * cfg.n_layers))
        if self.norm is not None:
            self.norm.reset_parameters()
        if not cfg.tie_embeddings:
            normal(self.head.weight, 0.02)

    # --- masks --------------------------------------------------------------------------------------
    def attention_masks(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                        key_mask: KeyMask = None) -> list[torch.Tensor]:
        """The boolean mask (B, T, T) that each layer attends through, True = may attend.

        Padding, causality and ``key_mask`` combined, with the self-attention fallback for rows
        that would otherwise be empty (see the module docstring). Layers that share a mask share
        one tensor.
        """
        B, T = input_ids.shape
        device = input_ids.device
        allowed = torch.ones(B, T, T, dtype=torch.bool, device=device)
        if attention_mask is not None:
            if tuple(attention_mask.shape) != (B, T):
                raise LmscopeError(f"attention_mask has shape {tuple(attention_mask.shape)}, "
                                   f"input_ids {(B, T)}")
            allowed = allowed & attention_mask.to(device).bool()[:, None, :]
        if self.config.causal:
            allowed = allowed & torch.ones(T, T, dtype=torch.bool, device=device).tril()
        eye = torch.eye(T, dtype=torch.bool, device=device)

        def finish(m):  # a query with no key left attends to itself alone
            empty = ~m.any(dim=-1, keepdim=True)
            return m | (empty & eye)

        base = finish(allowed)
        done: dict[int, torch.Tensor] = {}
        out = []
        for extra in self._layer_key_masks(key_mask, B, T, device):
            if extra is None:
                out.append(base)
            else:
                if id(extra) not in done:
                    done[id(extra)] = finish(allowed & extra)
                out.append(done[id(extra)])
        return out

    def _layer_key_masks(self, key_mask: KeyMask, B: int, T: int, device) -> list[torch.Tensor | None]:
        L = self.config.n_layers
        if key_mask is None:
            return [None] * L
        if isinstance(key_mask, torch.Tensor):
            if key_mask.dim() == 4:
                if key_mask.shape[0] != L:
                    raise LmscopeError(f"a 4-D key_mask needs one (B, T, T) mask per layer: got "
                                       f"{key_mask.shape[0]} for {L} layers")
                entries = list(key_mask.unbind(0))
            else:
                entries = [key_mask] * L
        elif isinstance(key_mask, (list, tuple)):
            if len(key_mask) != L:
                raise LmscopeError(f"key_mask list has {len(key_mask)} entries; the model has {L} layers")
            entries = list(key_mask)
        else:
            raise LmscopeError(f"key_mask must be a bool tensor or a list of them, not {type(key_mask).__name__}")
        checked: dict[int, torch.Tensor] = {}
        out = []
        for m in entries:
            if m is None:
                out.append(None)
                continue
            if id(m) not in checked:
                checked[id(m)] = _check_key_mask(m, B, T, device)
            out.append(checked[id(m)])
        return out

    # --- forward ------------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                key_mask: KeyMask = None, return_hidden: bool = False) -> SmallOutput:
        """Logits (B, T, vocab) for token ids (B, T).

        ``attention_mask`` (B, T): 1 = real token, 0 = padding; padding keys are never attended.

        ``key_mask`` restricts, per layer, which keys each query may attend to (True = may attend),
        on top of padding and causality:

        * a bool tensor (B, T, T) (or (T, T), or (1, T, T), broadcast over the batch): every layer;
        * a bool tensor (n_layers, B, T, T): one mask per layer;
        * a list of n_layers entries, each such a tensor or None (None = no extra restriction at
          that layer), e.g. ``[None] * t + [m] * (n_layers - t)`` masks from layer ``t`` upward.

        Layer ``l`` is the ``l``-th block, whose output is ``hidden_states[l + 1]``; a mask that
        starts at layer ``t`` leaves ``hidden_states[0..t]`` unchanged.
        """
        cfg = self.config
        if input_ids.dim() != 2:
            raise LmscopeError(f"input_ids must be (batch, time), got shape {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        if T > cfg.max_len:
            raise LmscopeError(f"sequence of {T} tokens is longer than the model's max_len {cfg.max_len}")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= cfg.vocab_size):
            raise LmscopeError(f"token ids must be in 0..{cfg.vocab_size - 1}")
        masks = self.attention_masks(input_ids, attention_mask, key_mask)

        x = self.embed(input_ids) * math.sqrt(cfg.d_model)
        x = x + (self.pos.weight[:T] if cfg.positions == "learned" else self.pos_table[:T])
        x = self.drop(x)
        hidden = [x]
        for block, mask in zip(self.layers, masks):
            x = block(x, mask[:, None])  # the same mask for every head
            hidden.append(x)
        final = self.norm(x) if self.norm is not None else x
        logits = self.head(final)
        if cfg.tie_embeddings:
            logits = logits / math.sqrt(cfg.d_model)  # see the class docstring
        return SmallOutput(logits=logits, final_hidden=final, hidden_states=hidden if return_hidden else None)

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int, stop_id: int | None = None,
                 allowed: list[int] | None = None) -> list[list[int]]:
        """Greedy continuation of each prompt (token id lists), at most ``max_new_tokens`` tokens each.

        A sequence stops after producing ``stop_id`` (included in its output); ``allowed`` restricts
        the argmax to those token ids. Prompts of different lengths are batched with right padding
        (the logits at each sequence's own last token are used), so the result does not depend on
        the batch. Returns only the new tokens. Requires a causal model.
        """
        if not self.config.causal:
            raise LmscopeError("generate needs a causal model; this one is a bidirectional encoder")
        if max_new_tokens < 0:
            raise LmscopeError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if any(len(p) == 0 for p in prompts):
            raise LmscopeError("every prompt needs at least one token")
        device = next(self.parameters()).device
        seqs = [list(p) for p in prompts]
        out: list[list[int]] = [[] for _ in prompts]
        live = [i for i in range(len(seqs))]
        allow = torch.tensor(sorted(set(allowed)), device=device) if allowed is not None else None
        for _ in range(max_new_tokens):
            if not live:
                break
            T = max(len(seqs[i]) for i in live)
            if T > self.config.max_len:
                raise LmscopeError(f"generation reached the model's max_len {self.config.max_len}")
            ids, mask = pad_batch([seqs[i] for i in live], self.config.pad_id)
            ids, mask = ids.to(device), mask.to(device)
            logits = self(ids, attention_mask=mask).logits
            last = logits[torch.arange(len(live), device=device), mask.sum(1) - 1]
            if allow is not None:
                nxt = allow[last[:, allow].argmax(-1)]
            else:
                nxt = last.argmax(-1)
            still = []
            for r, i in enumerate(live):
                t = int(nxt[r])
                seqs[i].append(t)
                out[i].append(t)
                if stop_id is None or t != stop_id:
                    still.append(i)
            live = still
        return out

    # --- saving and loading -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, tokenizer=None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``path``, replacing it as a whole.

        The write is atomic: the folder appears complete or not at all. Because the folder is
        replaced, pass the ``tokenizer`` (anything with ``save(dir)``) to keep one with the model.
        A tied head is not stored (it is the embedding).
        """
        return write_model_folder(path, self, self.config.hf_dict(), tokenizer=tokenizer,
                                  drop=("head.weight",) if self.config.tie_embeddings else ())

    @classmethod
    def load(cls, path: str | os.PathLike, task: str | None = None) -> SmallTransformer:
        """Load a folder written by :meth:`save` (or an edited copy of one); LmscopeError if it is
        missing, corrupt, or its weights do not fit its config. The model is returned in eval mode.

        ``task`` (as in ``open_model(...).load_model(task)``), if given, must fit the model:
        "causal-lm" for a causal model, "masked-lm" for an encoder, or "base".
        """
        from lmscope.models.lowrank import LowRankLinear, factored_modules

        path = Path(path)
        config = read_config(path)
        if task not in (None, "base", "causal-lm" if config.causal else "masked-lm"):
            kind = "a causal language model" if config.causal else "a bidirectional encoder with an MLM head"
            raise LmscopeError(f"{path} is {kind}; it cannot be loaded for the task {task!r}")
        model = cls(config, seed=0)  # the weights are overwritten; a seed keeps the global RNG untouched
        # a checkpoint written with some matrices stored as two low-rank factors
        for module, info in factored_modules(path).items():
            try:
                parent, _, child = module.rpartition(".")
                owner = model.get_submodule(parent) if parent else model
                if not isinstance(getattr(owner, child), nn.Linear):
                    raise AttributeError(module)
            except AttributeError:
                raise LmscopeError(f"{path}: factored module {module} is not a linear layer of the model") from None
            try:
                low = LowRankLinear(int(info["in"]), int(info["out"]), int(info["rank"]), bias=bool(info.get("bias")))
            except (KeyError, TypeError, ValueError):
                raise LmscopeError(f"{path}: corrupt entry for the factored module {module}") from None
            setattr(owner, child, low)
        read_model_weights(path, model, skip=("head.weight",) if config.tie_embeddings else ())
        return model.eval()


def _check_key_mask(m, B: int, T: int, device) -> torch.Tensor:
    if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
        raise LmscopeError("key_mask entries must be bool tensors (True = may attend)")
    if m.dim() == 2:
        m = m[None]
    if m.dim() != 3 or m.shape[0] not in (1, B) or tuple(m.shape[1:]) != (T, T):
        raise LmscopeError(f"key_mask of shape {tuple(m.shape)} does not fit a batch of {B} x {T} tokens "
                           f"(expected ({B}, {T}, {T}))")
    return m.to(device).expand(B, T, T)


def read_config(path: str | os.PathLike) -> SmallConfig:
    """The :class:`SmallConfig` of a saved folder; LmscopeError if missing, corrupt or inconsistent."""
    path = Path(path)
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise LmscopeError(f"no {CONFIG_FILE} in {path}")
    try:
        d = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LmscopeError(f"corrupt {cfg_path}: {getattr(e, 'msg', str(e))}") from None
    if not isinstance(d, dict) or d.get("model_type") != MODEL_TYPE:
        got = d.get("model_type") if isinstance(d, dict) else None
        raise LmscopeError(f"{path} is not a small lmscope model (model_type {got!r}, expected {MODEL_TYPE!r})")
    config = SmallConfig.from_dict(d)
    for alias, name in _ALIASES.items():
        if alias in d and d[alias] != getattr(config, name):
            raise LmscopeError(f"inconsistent {cfg_path}: {alias}={d[alias]!r} but {name}={getattr(config, name)!r}")
    return config
