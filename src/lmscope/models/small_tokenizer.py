"""A word-level tokenizer for the synthetic suites: one token per whitespace-separated word.

>>> tok = WordTokenizer.build(["the cat sleeps .", "the dogs sleep ."])
>>> ids = tok.encode("the cat sleep .", add_bos=True, add_eos=True)
>>> tok.decode(ids)
'the cat sleep .'
>>> ids, mask = tok.batch_encode(["the cat", "the dogs sleep"])   # right-padded (2, 3) tensors

The special tokens come first, with fixed ids: ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3,
``<mask>`` 4; words follow. ``save(dir)`` writes ``vocab.json`` (``{"type": "lmscope-word",
"tokens": [...]}``), which ``open_model(dir).load_tokenizer()`` recognizes.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from lmscope._io import write_json
from lmscope.errors import LmscopeError

VOCAB_FILE = "vocab.json"
VOCAB_TYPE = "lmscope-word"
PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<bos>", "<eos>", "<mask>"
SPECIALS = (PAD, UNK, BOS, EOS, MASK)


def pad_batch(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)`` of token-id lists: (B, T) long tensors, right-padded with ``pad_id``;
    mask 1 = real token."""
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[b, : len(r)] = 1
    return ids, mask


def pad_id_of(tokenizer) -> int:
    """The id to pad a tokenizer's sequences with: its pad token, else its end-of-sequence token, else 0
    (padding is masked out, so only a valid id is needed)."""
    for name in ("pad_token_id", "eos_token_id"):
        t = getattr(tokenizer, name, None)
        if t is not None:
            return int(t)
    return 0


class WordTokenizer:
    """Maps whitespace-separated words to ids; unknown words become ``<unk>``.

    ``vocab``: the words (special tokens are placed first automatically; any in ``vocab`` are
    skipped). A repeated word, an empty one or one containing whitespace raises LmscopeError.
    """

    pad_id, unk_id, bos_id, eos_id, mask_id = range(len(SPECIALS))

    def __init__(self, vocab: Iterable[str]):
        tokens = list(SPECIALS)
        seen = set(SPECIALS)
        for w in vocab:
            if not isinstance(w, str) or w.split() != [w]:
                raise LmscopeError(f"a word-level vocabulary entry must be one non-empty word, got {w!r}")
            if w in SPECIALS:
                continue
            if w in seen:
                raise LmscopeError(f"the word {w!r} appears twice in the vocabulary")
            seen.add(w)
            tokens.append(w)
        self.tokens: list[str] = tokens
        self.token_to_id: dict[str, int] = {t: i for i, t in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"WordTokenizer({len(self.tokens)} tokens)"

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> WordTokenizer:
        """The vocabulary of ``texts``: every word seen at least ``min_count`` times, sorted (so the
        ids do not depend on the order of the texts)."""
        counts = Counter(w for text in texts for w in text.split())
        return cls(sorted(w for w, c in counts.items() if c >= min_count and w not in SPECIALS))

    # --- encoding -----------------------------------------------------------------------------------
    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.token_to_id.get(w, self.unk_id) for w in text.split()]
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids, skip_special: bool = True) -> str:
        """Words joined by single spaces; ``skip_special`` drops ``<pad>``, ``<bos>`` and ``<eos>``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        skip = {self.pad_id, self.bos_id, self.eos_id} if skip_special else set()
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise LmscopeError(f"token id {i} is outside the vocabulary (0..{len(self.tokens) - 1})")
            if i not in skip:
                out.append(self.tokens[i])
        return " ".join(out)

    def batch_encode(self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, attention_mask)``: (B, T) long tensors, right-padded with ``<pad>``; mask 1 = real token."""
        if isinstance(texts, str):
            texts = [texts]
        rows = [self.encode(t, add_bos=add_bos, add_eos=add_eos) for t in texts]
        if not rows:
            raise LmscopeError("batch_encode needs at least one text")
        return pad_batch(rows, self.pad_id)

    # --- files --------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``vocab.json`` into the folder ``path`` (created if needed); returns the file."""
        return write_json(Path(path) / VOCAB_FILE, {"type": VOCAB_TYPE, "tokens": self.tokens})

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordTokenizer:
        """Read a folder's ``vocab.json`` (or that file itself); LmscopeError if missing or not ours."""
        p = Path(path)
        f = p / VOCAB_FILE if p.is_dir() else p
        if not f.is_file():
            raise LmscopeError(f"no word-level vocabulary: {f} does not exist")
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise LmscopeError(f"corrupt {f}: {getattr(e, 'msg', str(e))}") from None
        if not is_word_vocab(d):
            raise LmscopeError(f"{f} is not a word-level vocabulary (expected \"type\": \"{VOCAB_TYPE}\")")
        tokens = d.get("tokens")
        if not isinstance(tokens, list) or tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise LmscopeError(f"corrupt {f}: the tokens must be a list starting with {', '.join(SPECIALS)}")
        return cls(tokens[len(SPECIALS):])


def is_word_vocab(data) -> bool:
    """Whether parsed ``vocab.json`` contents are a :class:`WordTokenizer`'s (not, e.g., a BPE vocab)."""
    return isinstance(data, dict) and data.get("type") == VOCAB_TYPE


def has_word_vocab(path: str | os.PathLike) -> bool:
    """Whether the folder ``path`` holds a word-level ``vocab.json`` (a BPE one, or none, gives False)."""
    f = Path(path) / VOCAB_FILE
    if not f.is_file():
        return False
    try:
        with open(f, "rb") as fh:  # ours names its type first: skip parsing a large BPE vocabulary
            if VOCAB_TYPE.encode() not in fh.read(256):
                return False
        return is_word_vocab(json.loads(f.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return False
