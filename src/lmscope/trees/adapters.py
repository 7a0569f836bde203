"""Per-word vectors from a model, in ordinary passes and in passes with a span mask from a threshold layer up.

One interface, :class:`SpanAdapter`, over three kinds of models:

* lmscope's :class:`~lmscope.models.small.SmallTransformer` (causal or encoder), masked through its
  ``key_mask`` argument;
* Hugging Face causal LMs (Llama family, GPT-2, ...) and bidirectional encoders (BERT family),
  masked by forward pre-hooks on the transformer blocks (see :class:`HFAdapter`).

Words and sub-tokens
--------------------
A sentence is a list of words. :meth:`SpanAdapter.encode` tokenizes it and records, for every token,
the word it belongs to (``-1`` for special tokens such as BOS, EOS, ``[CLS]``, ``[SEP]``). A word's
vector is the sum of its tokens' vectors at the chosen layer.

Span masks
----------
A *job* is one forward pass over one sentence with a set of *visible* tokens: special tokens are
always visible, and so are the tokens of the words ``i..j`` of a span. From the threshold block ``t``
upward (blocks ``t .. n_layers - 1``), every query may attend only to visible keys (and to itself,
so that no query is left without a key; outputs outside the span are never read). Blocks below ``t``
attend as usual (the "T-shaped" mask). Padding and causality apply as in the ordinary pass. A job
with every token visible is the ordinary pass.

Layers are numbered like ``hidden_states``: layer 0 is the embedding output, layer ``l`` (1..L)
the output of block ``l - 1``; the default is the last layer, ``L``. As in transformers'
``hidden_states[-1]``, layer ``L`` of a Hugging Face model includes the model's final norm when it
has one (pre-LN models such as Llama and GPT-2).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import numpy as np
import torch

from lmscope.errors import LmscopeError
from lmscope.models.hooks import capture_blocks, find_layers, resolve_device
from lmscope.models.small_tokenizer import pad_batch, pad_id_of


# ------------------------------------------------------------------------------------------------
# Encoded sentences and jobs
# ------------------------------------------------------------------------------------------------
@dataclass
class Encoded:
    """One tokenized sentence: token ids and, per token, its word (``-1`` for special tokens)."""

    ids: list[int]
    word_of: np.ndarray  # (T,) int
    n_words: int

    @property
    def special(self) -> np.ndarray:
        return self.word_of < 0

    def visible(self, span: tuple[int, int] | None) -> np.ndarray:
        """Which tokens a pass restricted to ``span`` (inclusive word indices) may attend to."""
        if span is None:
            return np.ones(len(self.ids), dtype=bool)
        i, j = span
        return self.special | ((self.word_of >= i) & (self.word_of <= j))


@dataclass
class Job:
    """One forward pass: a sentence and the span its keys are restricted to (None: ordinary pass)."""

    enc: Encoded
    span: tuple[int, int] | None


def _word_text(words) -> list[str]:
    if isinstance(words, str):
        words = words.split()
    words = [str(w) for w in words]
    if not words:
        raise LmscopeError("an empty sentence has no words")
    for w in words:
        if not w or w.split() != [w]:
            raise LmscopeError(f"not a word: {w!r} (words are non-empty and have no white space)")
    return words


# ------------------------------------------------------------------------------------------------
# Sub-word alignment
# ------------------------------------------------------------------------------------------------
def _char_words(words: list[str]) -> tuple[str, np.ndarray]:
    """The sentence joined by single spaces and, per character, its word (-1 for a space)."""
    text = " ".join(words)
    owner = np.full(len(text), -1, dtype=np.int64)
    pos = 0
    for w_idx, w in enumerate(words):
        owner[pos:pos + len(w)] = w_idx
        pos += len(w) + 1
    return text, owner


def _fill_unassigned(word_of: np.ndarray, special: np.ndarray, n_words: int) -> np.ndarray:
    """Give tokens that are neither special nor inside a word (e.g. a lone space) to the next word."""
    out = word_of.copy()
    nxt = -1
    for t in range(len(out) - 1, -1, -1):
        if special[t]:
            out[t] = -1
            continue
        if out[t] < 0:
            out[t] = nxt if nxt >= 0 else n_words - 1
        nxt = out[t]
    return out


def _is_word_tokenizer(tok) -> bool:
    from lmscope.models.small_tokenizer import WordTokenizer

    return isinstance(tok, WordTokenizer)


def align(tokenizer, words: list[str], add_bos: bool = False) -> Encoded:
    """Tokenize ``words`` and map every token to its word.

    * lmscope's word-level tokenizer: one token per word (plus ``<bos>`` when ``add_bos``);
    * a Hugging Face fast tokenizer: the sentence joined by single spaces, with the tokenizer's own
      special tokens; each token belongs to the word its character offsets fall in;
    * another Hugging Face tokenizer: each word tokenized on its own (with a leading space after the
      first), then the tokenizer's special tokens added around them.

    ``add_bos`` prepends the tokenizer's BOS token when the tokenizer does not add one itself.
    """
    n = len(words)
    if _is_word_tokenizer(tokenizer):
        ids = [tokenizer.token_to_id.get(w, tokenizer.unk_id) for w in words]
        word_of = list(range(n))
        if add_bos:
            ids, word_of = [tokenizer.bos_id] + ids, [-1] + word_of
        return Encoded(ids, np.asarray(word_of, dtype=np.int64), n)
    if getattr(tokenizer, "is_fast", False):
        text, owner = _char_words(words)
        enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        ids = list(enc["input_ids"])
        special = np.asarray(enc["special_tokens_mask"], dtype=bool)
        word_of = np.full(len(ids), -1, dtype=np.int64)
        for t, (s, e) in enumerate(enc["offset_mapping"]):
            if special[t] or e <= s:
                continue
            inside = owner[s:e]
            inside = inside[inside >= 0]
            if len(inside):
                word_of[t] = inside[0]
        word_of = _fill_unassigned(word_of, special, n)
    else:
        ids, word_of_list = [], []
        for w_idx, w in enumerate(words):
            piece = tokenizer(w if w_idx == 0 else " " + w, add_special_tokens=False)["input_ids"]
            if not piece:
                raise LmscopeError(f"the tokenizer turns the word {w!r} into no tokens")
            ids += list(piece)
            word_of_list += [w_idx] * len(piece)
        full = list(tokenizer.build_inputs_with_special_tokens(ids))
        # locate the words' tokens inside the sequence with special tokens (added before and/or after)
        start = next((s for s in range(len(full) - len(ids) + 1) if full[s:s + len(ids)] == ids), None)
        if start is None:
            raise LmscopeError("cannot align the tokenizer's special tokens with the words' tokens")
        word_of = np.full(len(full), -1, dtype=np.int64)
        word_of[start:start + len(ids)] = word_of_list
        ids = full
    bos = getattr(tokenizer, "bos_token_id", None)
    if add_bos and bos is not None and (not ids or ids[0] != bos):
        ids = [int(bos)] + ids
        word_of = np.concatenate([[-1], word_of]).astype(np.int64)
    seen = set(word_of[word_of >= 0].tolist())
    if len(seen) != n:
        missing = next(i for i in range(n) if i not in seen)
        raise LmscopeError(f"the tokenizer gives the word {words[missing]!r} no token of its own")
    return Encoded([int(i) for i in ids], word_of, n)


# ------------------------------------------------------------------------------------------------
# The interface
# ------------------------------------------------------------------------------------------------
class SpanAdapter:
    """Base class: encoding, batching and word pooling; subclasses run the model (:meth:`hidden`).

    Attributes set by subclasses: ``causal`` (bool), ``n_layers`` (int), ``max_tokens`` (int or
    None), ``device``, ``name``.
    """

    causal: bool
    n_layers: int
    max_tokens: int | None
    name: str = "model"
    device: torch.device = torch.device("cpu")
    pad_id: int = 0

    # --- to implement ---------------------------------------------------------------------------------
    def encode(self, words: list[str]) -> Encoded:  # pragma: no cover - abstract
        raise NotImplementedError

    def hidden(self, ids: torch.Tensor, attention_mask: torch.Tensor, visible: torch.Tensor | None,
               layers: list[int], threshold: int) -> dict[int, torch.Tensor]:  # pragma: no cover - abstract
        """Hidden states (B, T, d) at each of ``layers``; ``visible`` (B, T) bool or None (ordinary)."""
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------------------
    def check_layer(self, layer: int | None) -> int:
        """``layer`` as an index 0..n_layers (None: the last; negative: counted from the end)."""
        L = self.n_layers
        if layer is None:
            return L
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise LmscopeError(f"layer must be an integer, got {layer!r}")
        layer = int(layer)
        if not -L <= layer <= L:
            raise LmscopeError(f"layer {layer} is out of range: {self.name} has layers 0..{L} "
                               f"(0 = embeddings, {L} = last block; negative counts from the end)")
        return layer + L + 1 if layer < 0 else layer

    def check_threshold(self, threshold: int) -> int:
        L = self.n_layers
        if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)):
            raise LmscopeError(f"threshold must be an integer, got {threshold!r}")
        if not 0 <= threshold < L:
            raise LmscopeError(f"threshold {threshold} is out of range: the span mask starts at a block "
                               f"0..{L - 1} of {self.name}")
        return int(threshold)

    def encode_checked(self, words, where: str = "sentence") -> Encoded:
        enc = self.encode(_word_text(words))
        if self.max_tokens is not None and len(enc.ids) > self.max_tokens:
            raise LmscopeError(f"{where}: {len(enc.ids)} tokens, longer than {self.name}'s context of "
                               f"{self.max_tokens} tokens")
        return enc

    def collate(self, jobs: list[Job]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Right-padded ids, attention mask and (if any job has a span) the visible-key mask."""
        ids, mask = pad_batch([job.enc.ids for job in jobs], int(self.pad_id))
        visible = torch.ones(ids.shape, dtype=torch.bool)
        for b, job in enumerate(jobs):
            visible[b, :len(job.enc.ids)] = torch.from_numpy(job.enc.visible(job.span))
        any_span = any(j.span is not None for j in jobs)
        dev = self.device
        return ids.to(dev), mask.to(dev), (visible.to(dev) if any_span else None)

    @torch.no_grad()
    def run_jobs(self, jobs: list[Job], layers: list[int], threshold: int) -> dict[int, list[np.ndarray]]:
        """Per layer, per job: the word vectors (n_words, d), float64, of one batched forward pass."""
        ids, mask, visible = self.collate(jobs)
        states = self.hidden(ids, mask, visible, layers, threshold)
        out: dict[int, list[np.ndarray]] = {}
        for layer in layers:
            h = states[layer].double()
            rows = []
            for b, job in enumerate(jobs):
                wo = torch.from_numpy(job.enc.word_of).to(h.device)
                keep = wo >= 0
                w = torch.zeros(job.enc.n_words, h.shape[-1], dtype=h.dtype, device=h.device)
                w.index_add_(0, wo[keep], h[b, : len(job.enc.ids)][keep])
                rows.append(w.cpu().numpy())
            out[layer] = rows
        return out

    def word_vectors(self, sentences, layer: int | None = None, spans=None, threshold: int = 0,
                     batch_size: int = 32) -> list[np.ndarray]:
        """Per sentence, the (n_words, d) word vectors at ``layer``.

        ``spans``: None for ordinary passes, or one ``(i, j)`` (or None) per sentence: keys outside
        words ``i..j`` (special tokens excepted) are masked from block ``threshold`` upward.
        """
        layer = self.check_layer(layer)
        threshold = self.check_threshold(threshold)
        encs = [self.encode_checked(s, where=f"sentence {k}") for k, s in enumerate(sentences)]
        if spans is None:
            spans = [None] * len(encs)
        if len(spans) != len(encs):
            raise LmscopeError(f"{len(spans)} spans for {len(encs)} sentences")
        jobs = [Job(e, None if s is None else (int(s[0]), int(s[1]))) for e, s in zip(encs, spans, strict=True)]
        for job in jobs:
            if job.span is not None and not 0 <= job.span[0] <= job.span[1] < job.enc.n_words:
                raise LmscopeError(f"span {job.span} does not fit a sentence of {job.enc.n_words} words")
        out = []
        for s in range(0, len(jobs), max(1, int(batch_size))):
            out += self.run_jobs(jobs[s:s + batch_size], [layer], threshold)[layer]
        return out


# ------------------------------------------------------------------------------------------------
# lmscope's small transformer
# ------------------------------------------------------------------------------------------------
def _span_mask(visible: torch.Tensor) -> torch.Tensor:
    """(B, T, T) bool: query q may attend key k when k is visible or k == q."""
    B, T = visible.shape
    eye = torch.eye(T, dtype=torch.bool, device=visible.device)
    return visible[:, None, :] | eye[None]


class SmallAdapter(SpanAdapter):
    """:class:`~lmscope.models.small.SmallTransformer` with its tokenizer; masks through ``key_mask``.

    ``add_bos`` (default True) starts every sentence with ``<bos>`` (a key visible to every query).
    """

    def __init__(self, model, tokenizer, add_bos: bool = True, name: str = "small transformer"):
        if tokenizer is None:
            raise LmscopeError("a small transformer needs its tokenizer (vocab.json) for tree projections")
        self.model = model.eval()
        self.tok = tokenizer
        cfg = model.config
        self.causal = bool(cfg.causal)
        self.n_layers = cfg.n_layers
        self.max_tokens = cfg.max_len
        self.pad_id = cfg.pad_id
        self.add_bos = add_bos
        self.name = name
        self.device = next(model.parameters()).device

    def encode(self, words: list[str]) -> Encoded:
        return align(self.tok, words, add_bos=self.add_bos)

    def hidden(self, ids, attention_mask, visible, layers, threshold):
        key_mask = None
        if visible is not None:
            m = _span_mask(visible)
            key_mask = [None] * threshold + [m] * (self.n_layers - threshold)
        out = self.model(ids, attention_mask=attention_mask, key_mask=key_mask, return_hidden=True)
        return {layer: out.hidden_states[layer] for layer in layers}


# ------------------------------------------------------------------------------------------------
# Hugging Face models
# ------------------------------------------------------------------------------------------------
_MASK_IMPLEMENTATIONS = ("sdpa", "eager")


class HFAdapter(SpanAdapter):
    """A Hugging Face causal LM or encoder with its tokenizer.

    How the span mask is imposed: every transformer block receives the attention mask that the model
    built for the ordinary pass (padding, and causality for a causal LM) as an argument named
    ``attention_mask``. For a masked pass, a forward pre-hook on each block from the threshold upward
    replaces that argument with a 4-D mask (batch, 1, query, key) that also hides the keys outside
    the span; blocks below the threshold are untouched. The replacement is a boolean mask for
    PyTorch's scaled-dot-product attention (``sdpa``) and an additive float mask (0 or the dtype's
    minimum) for ``eager`` attention. Other attention implementations (flash, flex) cannot take an
    arbitrary mask: load the model with ``attn_implementation="sdpa"``.

    The chosen layer is read by a forward hook on its block, which then stops the pass, so the blocks
    above it (and the output head) never run. ``add_bos`` (default: True for causal LMs) starts a
    sentence with the tokenizer's BOS token when the tokenizer does not add one itself, so that every
    masked pass keeps a visible first token.
    """

    def __init__(self, model, tokenizer, add_bos: bool | None = None, name: str | None = None):
        from lmscope.models.sources import is_causal

        self.model = model.eval()
        self.tok = tokenizer
        self.causal = is_causal(model)
        self.blocks = find_layers(model)
        self.n_layers = len(self.blocks)
        cfg = model.config
        impl = getattr(cfg, "_attn_implementation", None) or "eager"
        if impl not in _MASK_IMPLEMENTATIONS:
            raise LmscopeError(f"the model uses {impl!r} attention, which cannot take a span mask; load it with "
                               "attn_implementation='sdpa' (or 'eager')")
        self.impl = impl
        limits = [getattr(cfg, k, None) for k in ("max_position_embeddings", "n_positions")]
        self.max_tokens = next((int(v) for v in limits if isinstance(v, int) and v > 0), None)
        if getattr(cfg, "type_vocab_size", None) is not None and self.max_tokens:
            # BERT-style absolute positions: some checkpoints offset them (RoBERTa uses padding_idx + 1)
            offset = (getattr(cfg, "pad_token_id", None) or 0) + 1 if cfg.model_type in ("roberta", "xlm-roberta") else 0
            self.max_tokens -= offset
        self.add_bos = self.causal if add_bos is None else bool(add_bos)
        self.pad_id = pad_id_of(tokenizer)
        self.name = name or getattr(cfg, "_name_or_path", None) or type(model).__name__
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self._mask_arg = [self._mask_position(b) for b in self.blocks]
        body = getattr(model, "base_model", model)
        self.final_norm = next((getattr(body, n) for n in ("norm", "ln_f", "final_layer_norm", "final_layernorm")
                                if isinstance(getattr(body, n, None), torch.nn.Module)), None)

    @staticmethod
    def _mask_position(block) -> int | None:
        params = list(inspect.signature(block.forward).parameters)
        if "attention_mask" not in params:
            raise LmscopeError(f"cannot impose a span mask: a {type(block).__name__} block takes no "
                               "attention_mask argument")
        return params.index("attention_mask")

    def encode(self, words: list[str]) -> Encoded:
        return align(self.tok, words, add_bos=self.add_bos)

    def _full_mask(self, attention_mask: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        B, T = attention_mask.shape
        allowed = attention_mask.bool()[:, None, :].expand(B, T, T)
        if self.causal:
            allowed = allowed & torch.ones(T, T, dtype=torch.bool, device=allowed.device).tril()
        allowed = allowed & _span_mask(visible)
        allowed = allowed | torch.eye(T, dtype=torch.bool, device=allowed.device)[None]  # no empty row
        allowed = allowed[:, None]  # (B, 1, T, T): the same for every head
        if self.impl == "sdpa":
            return allowed
        zero = torch.zeros((), dtype=self.dtype, device=allowed.device)
        return torch.where(allowed, zero, torch.finfo(self.dtype).min)

    def hidden(self, ids, attention_mask, visible, layers, threshold):
        handles = []

        def final(block: int, h: torch.Tensor) -> torch.Tensor:
            if block == self.n_layers - 1 and self.final_norm is not None:
                return self.final_norm(h)  # what the model's own last hidden state is
            return h

        def mask_hook(position):  # position: the index of attention_mask among the positional arguments
            def hook(module, args, kwargs):
                if "attention_mask" in kwargs or position >= len(args):
                    kwargs["attention_mask"] = span_mask
                    return args, kwargs
                args = list(args)
                args[position] = span_mask
                return tuple(args), kwargs
            return hook

        try:
            if visible is not None:
                span_mask = self._full_mask(attention_mask, visible)
                for b in range(threshold, self.n_layers):
                    handles.append(self.blocks[b].register_forward_pre_hook(mask_hook(self._mask_arg[b]),
                                                                            with_kwargs=True))
            ins, outs = capture_blocks(self.blocks, lambda: self.model(input_ids=ids, attention_mask=attention_mask),
                                       inputs=[0] if 0 in layers else [],
                                       outputs=[layer - 1 for layer in layers if layer > 0], on_output=final)
        finally:
            for h in handles:
                h.remove()
        captured = {block + 1: h for block, h in outs.items()}  # layer l is the output of block l - 1
        if 0 in ins:
            captured[0] = ins[0]
        missing = [layer for layer in layers if layer not in captured]
        if missing:
            raise LmscopeError(f"the model's forward pass never reached layer {missing[0]}")
        return captured


# ------------------------------------------------------------------------------------------------
# Construction
# ------------------------------------------------------------------------------------------------
def make_adapter(model, tokenizer=None, *, add_bos: bool | None = None, name: str | None = None) -> SpanAdapter:
    """The adapter for an already loaded model and its tokenizer."""
    from lmscope.models.small import SmallTransformer

    if isinstance(model, SpanAdapter):
        return model
    if isinstance(model, SmallTransformer):
        return SmallAdapter(model, tokenizer, add_bos=True if add_bos is None else add_bos,
                            name=name or "small transformer")
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        PreTrainedModel = ()  # noqa: N806
    if isinstance(model, PreTrainedModel):
        if tokenizer is None:
            raise LmscopeError("a Hugging Face model needs its tokenizer for tree projections")
        return HFAdapter(model, tokenizer, add_bos=add_bos, name=name)
    raise LmscopeError(f"cannot compute tree projections with a {type(model).__name__}; give a model name or path, "
                       "a SmallTransformer or a transformers model (with its tokenizer)")


def load_adapter(spec, *, device: str = "cpu", add_bos: bool | None = None) -> SpanAdapter:
    """Open a model by bundled name or path (anything :func:`lmscope.models.open_model` opens)."""
    from lmscope.models import open_model

    src = open_model(spec)
    dev = resolve_device(device)
    model = src.load_model().to(dev)
    tok = src.load_tokenizer()
    name = str(spec) if isinstance(spec, (str, os.PathLike)) else getattr(src, "spec", None)
    return make_adapter(model, tok, add_bos=add_bos, name=name)
