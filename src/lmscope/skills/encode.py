"""Demonstrations as padded tensors: the mission's words as ids, the steps' views, directions and actions, and
where a new skill may start."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmscope.errors import LmscopeError
from lmscope.skills.types import Demo, Segmentation

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class MissionVocab:
    """Word ids of mission texts: 0 is padding, 1 an unknown word."""

    def __init__(self, vocabulary: Sequence[str]):
        self.words = [PAD, UNK, *[w for w in vocabulary if w not in (PAD, UNK)]]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, missions: Sequence[str]) -> MissionVocab:
        return cls(sorted({w for m in missions for w in words(m)}))

    @property
    def size(self) -> int:
        return len(self.words)

    def ids(self, mission: str) -> list[int]:
        return [self.index.get(w, 1) for w in words(mission)] or [1]

    def encode(self, missions: Sequence[str]) -> torch.Tensor:
        """Right-padded word ids ``[B, L]``."""
        rows = [self.ids(m) for m in missions]
        out = torch.zeros((len(rows), max(len(r) for r in rows)), dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out

    def to_dict(self) -> dict:
        return {"words": self.words[2:]}

    @classmethod
    def from_dict(cls, d: dict) -> MissionVocab:
        if not isinstance(d, dict) or not isinstance(d.get("words"), list):
            raise LmscopeError("a damaged mission vocabulary")
        return cls([str(w) for w in d["words"]])


@dataclass
class Batch:
    """Padded demos: ``images`` long [B, T, 7, 7, 3], ``directions`` / ``actions`` long [B, T], ``mission``
    long [B, L], ``mask`` bool [B, T] (real steps), ``allowed`` bool [B, T] (a skill may start there; always
    at t = 0), ``index``: the demos' positions in the data set."""

    images: torch.Tensor
    directions: torch.Tensor
    actions: torch.Tensor
    mission: torch.Tensor
    mask: torch.Tensor
    allowed: torch.Tensor
    index: list[int]

    def to(self, device) -> Batch:
        return Batch(*(t.to(device) for t in (self.images, self.directions, self.actions, self.mission, self.mask,
                                                self.allowed)), self.index)


def make_batch(demos: Sequence[Demo], segmentations: Sequence[Segmentation], vocab: MissionVocab,
               indices: Sequence[int]) -> Batch:
    """The demos at ``indices`` as one :class:`Batch`; a skill may start where their segmentation starts a
    segment."""
    indices = [int(i) for i in indices]
    B, T = len(indices), max(len(demos[i]) for i in indices)
    images = np.zeros((B, T, 7, 7, 3), dtype=np.int64)
    dirs = np.zeros((B, T), dtype=np.int64)
    actions = np.zeros((B, T), dtype=np.int64)
    mask = np.zeros((B, T), dtype=bool)
    allowed = np.zeros((B, T), dtype=bool)
    for b, i in enumerate(indices):
        d, n = demos[i], len(demos[i])
        images[b, :n] = d.images
        dirs[b, :n] = d.directions
        actions[b, :n] = d.actions
        mask[b, :n] = True
        allowed[b, :n] = segmentations[i].boundaries(n)
        allowed[b, 0] = True
    return Batch(torch.from_numpy(images), torch.from_numpy(dirs), torch.from_numpy(actions),
                 vocab.encode([demos[i].mission for i in indices]), torch.from_numpy(mask),
                 torch.from_numpy(allowed), indices)
