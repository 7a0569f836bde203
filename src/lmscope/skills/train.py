"""Training a LAST model on segmented demonstrations, through the project's one training loop, and reading
the skill library out of it.

>>> summary = train_skills("runs/last", demos, segmentations, SkillConfig(skills=8, steps=1500))
>>> run = load_skill_run("runs/last")          # model (eval mode), mission vocabulary, config
>>> library = skill_library(run, demos, segmentations)

Each step draws ``batch_size`` training demos (a seeded tenth, ``heldout``, is kept apart for the metrics),
computes :meth:`SkillModel.terms` and takes an AdamW step. Every ``eval_every`` steps ``metrics.jsonl`` gets
the held-out demos' behaviour-cloning NLL and action accuracy with the decoded (not sampled) skills, the
segments per demo and the skills used, and the KL and description-length terms. A checkpoint's ``model/``
folder holds ``model.safetensors`` and ``skills.json`` (config and vocabulary), so it loads on its own. At
the end ``library.json`` is written into the run folder (atomically).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lmscope.errors import LmscopeError
from lmscope.skills.config import SkillConfig
from lmscope.skills.encode import MissionVocab, make_batch
from lmscope.skills.model import SkillModel, infer
from lmscope.skills.types import Demo, Segmentation, boundary_f1, pooled_f1

MODEL_FILE = "skills.json"
SPLIT_SEED = 20_240_521  # the held-out demos do not depend on the run's seed


def check_inputs(demos: list[Demo], segmentations: list[Segmentation]) -> None:
    if not demos:
        raise LmscopeError("no demonstrations to train on")
    if len(demos) != len(segmentations):
        raise LmscopeError(f"{len(demos)} demos but {len(segmentations)} segmentations")
    for i, (d, s) in enumerate(zip(demos, segmentations)):
        if not s.starts or s.starts[0] != 0 or any(b <= a for a, b in zip(s.starts, s.starts[1:])) \
                or s.starts[-1] >= len(d):
            raise LmscopeError(f"segmentation {i} does not fit demo {i} ({len(d)} steps): starts {s.starts}")


def split(n: int, heldout: float) -> tuple[list[int], list[int]]:
    """(training, held-out) demo indices: a fixed seeded permutation, ``ceil(heldout n)`` held out (none
    when n < 2 or heldout is 0)."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n).tolist()
    k = 0 if n < 2 or heldout <= 0 else min(n - 1, int(np.ceil(heldout * n)))
    return sorted(perm[k:]), sorted(perm[:k])


def _fingerprint(demos: list[Demo], segmentations: list[Segmentation]) -> str:
    h = hashlib.sha256()
    for d, s in zip(demos, segmentations):
        h.update(d.mission.encode())
        h.update(np.ascontiguousarray(d.actions).tobytes())
        h.update(np.ascontiguousarray(d.images).tobytes())
        h.update(json.dumps(list(map(int, s.starts))).encode())
    return h.hexdigest()


def save_skill_model(model: SkillModel, vocab: MissionVocab, folder: Path) -> None:
    from lmscope._io import write_json
    from lmscope.train.loop import save_weights

    save_weights(model, folder)
    write_json(Path(folder) / MODEL_FILE, {"format": "lmscope-skills", "config": model.config.to_dict(),
                                           "vocab": vocab.to_dict(), "n_words": model.n_words})


@torch.no_grad()
def evaluate(model: SkillModel, demos, segmentations, vocab, indices: list[int]) -> dict:
    """Held-out metrics with decoded skills (see the module docstring)."""
    if not indices:
        return {}
    nll = correct = steps = segments = 0.0
    used: set[int] = set()
    terms = Counter()
    for lo in range(0, len(indices), 64):
        batch = make_batch(demos, segmentations, vocab, indices[lo:lo + 64])
        b, z = model.decode(batch)
        o, m = model.encode(batch)
        logits, _ = model.heads(o, m, F.one_hot(z, model.config.skills).float())
        mask = batch.mask
        nll += float(F.cross_entropy(logits[mask], batch.actions[mask], reduction="sum"))
        correct += float((logits.argmax(-1)[mask] == batch.actions[mask]).sum())
        steps += float(mask.sum())
        segments += float(b.sum())
        used |= set(z[b].tolist())
        t = model.terms(batch)
        for k in ("kl", "dl"):
            terms[k] += float(t[k]) * float(mask.sum())
    return {"heldout_bc_nll": nll / steps, "heldout_action_acc": correct / steps,
            "segments_per_demo": segments / len(indices), "skills_used": len(used),
            "kl": terms["kl"] / steps, "dl": terms["dl"] / steps}


def train_skills(run_dir, demos: list[Demo], segmentations: list[Segmentation], config: SkillConfig | None = None,
                 *, quiet: bool | None = None, device: str = "cpu", stop_after: int | None = None) -> dict:
    """Train (or resume) a LAST model in ``run_dir``; returns the loop's summary plus ``library``."""
    from lmscope._io import write_json
    from lmscope.models.hooks import resolve_device
    from lmscope.train.loop import TrainConfig, train

    config = config or SkillConfig()
    check_inputs(demos, segmentations)
    dev = resolve_device(device)
    vocab = MissionVocab.build([d.mission for d in demos])
    train_idx, held_idx = split(len(demos), config.heldout)
    torch.manual_seed(config.seed)
    model = SkillModel(config, vocab.size).to(dev)
    tc = TrainConfig(steps=config.steps, batch_size=config.batch_size, lr=config.lr, warmup=min(100, config.steps // 10),
                     eval_every=config.eval_every, ckpt_every=max(config.eval_every, config.steps // 4),
                     seed=config.seed, weight_decay=0.0)
    run_info = {"skills": config.to_dict(), "data": {"demos": len(demos), "sha256": _fingerprint(demos, segmentations)}}

    def loss_fn(m: SkillModel, batch) -> torch.Tensor:
        return m.terms(batch.to(dev))["loss"]

    def eval_fn(m: SkillModel, step: int) -> dict:
        return _eval_on(m, dev, demos, segmentations, vocab, held_idx)

    summary = train(run_dir, model, loss_fn, train_idx, tc,
                    collate=lambda items: make_batch(demos, segmentations, vocab, items), eval_fn=eval_fn,
                    save_model=lambda m, folder: save_skill_model(m, vocab, folder), run_info=run_info,
                    quiet=quiet, stop_after=stop_after, desc="skills")
    summary.pop("seconds", None)
    if summary.get("final_checkpoint"):
        run = load_skill_run(run_dir)
        library = skill_library(run, demos, segmentations)
        write_json(Path(run_dir) / "library.json", library)
        summary["library"] = library
    return summary


def _eval_on(model, dev, demos, segmentations, vocab, indices) -> dict:
    """:func:`evaluate` on the CPU (the batches are made there), the model moved back afterwards."""
    if dev.type == "cpu":
        return evaluate(model, demos, segmentations, vocab, indices)
    model.cpu()
    try:
        return evaluate(model, demos, segmentations, vocab, indices)
    finally:
        model.to(dev)


@dataclass
class SkillRun:
    """A trained LAST model (eval mode, CPU), its mission vocabulary and configuration."""

    model: SkillModel
    vocab: MissionVocab
    config: SkillConfig
    path: Path


def load_skill_run(path) -> SkillRun:
    """The newest valid checkpoint of a run folder of :func:`train_skills` (or a checkpoint's ``model/``
    folder); one-line errors for anything else."""
    from lmscope.train.loop import latest_checkpoint, load_weights

    path = Path(path)
    if not path.exists():
        raise LmscopeError(f"{path}: no such run folder")
    folder = path if (path / MODEL_FILE).is_file() else None
    if folder is None:
        if not (path / "run.json").is_file():
            raise LmscopeError(f"{path}: not a run folder of lmscope skills train (no run.json)")
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise LmscopeError(f"{path}: the run has no complete checkpoint yet")
        folder = ckpt / "model"
    meta_path = folder / MODEL_FILE
    try:
        meta = json.loads(meta_path.read_text())
        config = SkillConfig.make(**meta["config"])
        vocab = MissionVocab.from_dict(meta["vocab"])
        model = SkillModel(config, int(meta["n_words"]))
    except LmscopeError as e:
        raise LmscopeError(f"{meta_path}: {e}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LmscopeError(f"{meta_path}: unreadable or damaged ({type(e).__name__})") from None
    try:
        load_weights(model, folder)
    except LmscopeError:
        raise
    except Exception as e:  # safetensors' own errors for a damaged file
        raise LmscopeError(f"{folder}: the weights do not load ({type(e).__name__})") from None
    return SkillRun(model.eval(), vocab, config, path)


def decode_all(run: SkillRun, demos: list[Demo], segmentations: list[Segmentation]) -> list[tuple[np.ndarray, list[int]]]:
    """:func:`lmscope.skills.model.infer` over every demo, in batches."""
    out = []
    for lo in range(0, len(demos), 64):
        out += infer(run.model, make_batch(demos, segmentations, run.vocab, range(lo, min(lo + 64, len(demos)))))
    return out


def skill_library(run: SkillRun, demos: list[Demo], segmentations: list[Segmentation]) -> dict:
    """For each skill: its segments, the descriptions of the given segments they cover, usage, the bot
    subgoals of its steps; and the inferred starts' boundary F1 against the bot's subgoal starts."""
    check_inputs(demos, segmentations)
    decoded = decode_all(run, demos, segmentations)
    k = run.config.skills
    skills = [{"skill": j, "segments": [], "descriptions": [], "subgoals": Counter(), "uses": 0} for j in range(k)]
    scores = []
    for i, ((z, starts), d, seg) in enumerate(zip(decoded, demos, segmentations)):
        ends = starts[1:] + [len(d)]
        seg_ends = list(seg.starts[1:]) + [len(d)]
        for a, e in zip(starts, ends):
            s = skills[int(z[a])]
            s["segments"].append({"demo": i, "start": a, "end": e})
            s["uses"] += 1
            s["subgoals"].update(g.split("(")[0] for g in d.subgoals[a:e])
            for j, (sa, se) in enumerate(zip(seg.starts, seg_ends)):
                if sa < e and se > a and j < len(seg.descriptions) and seg.descriptions[j]:
                    s["descriptions"].append(seg.descriptions[j])
        scores.append(boundary_f1(starts, d.subgoal_starts(), len(d)))
    for s in skills:
        s["subgoals"] = dict(s["subgoals"].most_common())
    return {"k": k, "demos": len(demos), "skills": skills,
            "boundary_f1": {**pooled_f1(scores), "tolerance": 1},
            "segments": sum(s["uses"] for s in skills)}


__all__ = ["SkillRun", "decode_all", "evaluate", "load_skill_run", "skill_library", "split", "train_skills"]
