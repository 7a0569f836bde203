"""The LAST model on planted skills: inference recovers the true switch points, never opens a skill where the
segmentation does not allow one, the description length prefers the true skills, training resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmscope.errors import LmscopeError
from lmscope.skills.config import SkillConfig
from lmscope.skills.encode import MissionVocab, make_batch
from lmscope.skills.model import SkillModel, description_length, infer
from lmscope.skills.planted import planted_demos, planted_segmentations
from lmscope.skills.train import load_skill_run, skill_library, train_skills
from lmscope.skills.types import Segmentation, boundary_f1


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    torch.set_num_threads(1)
    demos = planted_demos(96, seed=3)
    segs = planted_segmentations(demos, distractors=0.3, seed=4)
    run_dir = tmp_path_factory.mktemp("planted") / "run"
    cfg = SkillConfig(skills=4, steps=600, eval_every=200, lr=3e-3, beta=0.1, mdl=1.0, heldout=0.1)
    summary = train_skills(run_dir, demos, segs, cfg, quiet=True)
    return demos, segs, run_dir, summary


def test_planted_switch_points_are_recovered(planted_run):
    demos, segs, run_dir, summary = planted_run
    run = load_skill_run(run_dir)
    lib = summary["library"]
    assert lib["boundary_f1"]["f1"] >= 0.9, lib["boundary_f1"]
    # every skill that is used stands for one planted skill
    for s in lib["skills"]:
        if s["uses"]:
            names = s["subgoals"]
            assert max(names.values()) / sum(names.values()) >= 0.95, names
    # the distractor boundaries were merged away: as many starts as true switch points, within 10%
    true = sum(len(d.subgoal_starts()) for d in demos)
    assert abs(lib["segments"] - true) <= 0.1 * true
    assert run.config.skills == 4 and summary["step"] == 600


def test_no_skill_starts_where_none_is_allowed(planted_run):
    demos, segs, run_dir, _ = planted_run
    run = load_skill_run(run_dir)
    # coarser segmentations than the model was trained with: starts must stay within them
    rng = np.random.default_rng(0)
    for _trial in range(3):
        coarse = [Segmentation(starts=[0] + sorted(t for t in s.starts[1:] if rng.random() < 0.5)) for s in segs]
        for (z, starts), seg, d in zip(infer(run.model, make_batch(demos, coarse, run.vocab, range(len(demos)))),
                                       coarse, demos):
            assert set(starts) <= set(seg.starts) and starts[0] == 0
            assert len(z) == len(d)
            # the skill is constant between starts
            for a, b in zip(starts, starts[1:] + [len(d)]):
                assert len(set(z[a:b].tolist())) == 1


def test_untrained_model_respects_the_boundaries():
    demos = planted_demos(12, seed=9)
    segs = [Segmentation(starts=[0, len(d) // 2]) for d in demos]
    vocab = MissionVocab.build([d.mission for d in demos])
    torch.manual_seed(1)
    model = SkillModel(SkillConfig(skills=5), vocab.size)
    for (_z, starts), s in zip(infer(model, make_batch(demos, segs, vocab, range(12))), segs):
        assert set(starts) <= set(s.starts)


def test_description_length_prefers_the_true_skills():
    demos = planted_demos(40, seed=5)
    true_starts = [d.subgoal_starts() for d in demos]
    true_skills = [[int(d.subgoals[t][-1]) for t in s] for d, s in zip(demos, true_starts)]
    tiny_starts = [list(range(len(d))) for d in demos]                      # every step its own segment
    tiny_same = [[int(g[-1]) for g in d.subgoals] for d in demos]           # ... labelled with the true skill
    counter = iter(range(10**6))
    tiny_new = [[next(counter) % 12 for _ in d.subgoals] for d in demos]     # ... or with many skills
    merged = [[0] for _ in demos]
    true = description_length(true_starts, true_skills)
    assert true < description_length(tiny_starts, tiny_same)
    assert true < description_length(tiny_starts, tiny_new)
    assert description_length([[0] for _ in demos], merged) == 0.0  # one skill for everything codes nothing
    with pytest.raises(ValueError):
        description_length(true_starts, merged)


def test_library_covers_every_step_once(planted_run):
    demos, segs, run_dir, summary = planted_run
    lib = json.loads((run_dir / "library.json").read_text())
    covered = {i: np.zeros(len(d), dtype=int) for i, d in enumerate(demos)}
    for s in lib["skills"]:
        for g in s["segments"]:
            covered[g["demo"]][g["start"]:g["end"]] += 1
    assert all((c == 1).all() for c in covered.values())
    again = skill_library(load_skill_run(run_dir), demos, segs)
    assert again["boundary_f1"] == lib["boundary_f1"]


def test_resume_equals_an_uninterrupted_run(tmp_path):
    demos = planted_demos(24, seed=2)
    segs = planted_segmentations(demos, seed=2)
    cfg = SkillConfig(skills=3, hidden=16, steps=40, eval_every=10, batch_size=8)
    train_skills(tmp_path / "a", demos, segs, cfg, quiet=True)
    train_skills(tmp_path / "b", demos, segs, cfg, quiet=True, stop_after=20)
    # the interrupted run left a checkpoint at step 10 or 20 at most; resuming finishes it
    train_skills(tmp_path / "b", demos, segs, cfg, quiet=True)
    rows_a = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    rows_b = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(r).items() if k != "seconds"} for r in rows_a]
    assert strip == [{k: v for k, v in json.loads(r).items() if k != "seconds"} for r in rows_b]
    wa = load_skill_run(tmp_path / "a").model.state_dict()
    wb = load_skill_run(tmp_path / "b").model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("settings,message", [
    ({"skills": 0}, "skills"), ({"tau": 0.0}, "tau"), ({"beta": -1.0}, "beta"), ({"mdl": float("nan")}, "mdl"),
    ({"warm": 1.5}, "warm"), ({"heldout": 1.0}, "heldout"), ({"steps": 0}, "steps"),
])
def test_bad_settings(settings, message):
    with pytest.raises(LmscopeError, match=message):
        SkillConfig.make(**settings)


def test_bad_runs(tmp_path):
    with pytest.raises(LmscopeError, match="no such run folder"):
        load_skill_run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmscopeError, match="run.json"):
        load_skill_run(tmp_path / "empty")
    demos = planted_demos(8, seed=1)
    segs = planted_segmentations(demos)
    train_skills(tmp_path / "r", demos, segs, SkillConfig(skills=2, hidden=8, steps=4, eval_every=2), quiet=True)
    ckpts = sorted((tmp_path / "r" / "checkpoints").iterdir())
    assert len(ckpts) == 2
    (ckpts[-1] / "model" / "skills.json").write_text("{broken")
    # the damaged newest checkpoint fails its manifest check: the one before it is loaded
    assert load_skill_run(tmp_path / "r").config.skills == 2
    (ckpts[0] / "model" / "skills.json").write_text("{broken")
    with pytest.raises(LmscopeError, match="no complete checkpoint"):
        load_skill_run(tmp_path / "r")
    ckpt = ckpts[-1]
    with pytest.raises(LmscopeError, match="skills.json"):
        load_skill_run(ckpt / "model")
    with pytest.raises(LmscopeError, match="segmentations"):
        train_skills(tmp_path / "x", demos, segs[:-1], SkillConfig(steps=2), quiet=True)
    bad = [Segmentation(starts=[1])] + segs[1:]
    with pytest.raises(LmscopeError, match="segmentation 0"):
        train_skills(tmp_path / "x", demos, bad, SkillConfig(steps=2), quiet=True)


def test_boundary_f1_tolerance():
    assert boundary_f1([0, 3, 7], [0, 4, 7], 10)["f1"] == 1.0
    assert boundary_f1([0, 3, 7], [0, 5, 7], 10)["f1"] == 0.5
    assert boundary_f1([0], [0], 10)["f1"] == 1.0
