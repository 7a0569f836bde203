"""Transfer: learned skills as temporally extended actions for a new long-horizon level.

Given the skills of a trained run (its low-level policy pi(a | s, m, z) and termination head beta(s, m, z),
both frozen) and N expert demonstrations of a new level, a **high-level policy** pi_H(z | s, m) is trained by
behaviour cloning on the skills the run's posterior assigns to the new demonstrations (every step allowed as
a skill start, as no segmentation of the new level is given):

    z_1..T = infer(q, demo)                        the run's posterior, decoded without sampling
    L_H = - sum_t log pi_H(z_t | s_t, m)           cross-entropy over the K skills

At test time the agent picks z = argmax pi_H(. | s_t, m) when an episode starts, when the running skill's
termination head says it ended (sigmoid(beta) > 1/2 after its last action) or when it has run
``max_skill_steps`` actions; the skill then acts with a = argmax pi(. | s_t, m, z). The **flat** baseline is
a policy pi_F(a | s, m) of the same architecture trained by behaviour cloning on the same demonstrations'
actions. Each is scored by its success rate in fresh episodes whose seeds no demonstration uses, for every
N of ``demo_counts`` (the first N demonstrations: nested subsets, so the curves share their data).
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmscope.errors import LmscopeError, check_int, check_number
from lmscope.progress import progress
from lmscope.skills.model import MissionEncoder, ObservationEncoder
from lmscope.skills.types import N_ACTIONS, Demo


@dataclass(frozen=True)
class TransferConfig:
    """The settings of :func:`transfer`."""

    demo_counts: tuple[int, ...] = (5, 10, 25, 50, 100)
    episodes: int = 50  # fresh evaluation episodes per (policy, N)
    steps: int = 1500  # behaviour-cloning steps of each policy
    batch_size: int = 64
    lr: float = 1e-3
    hidden: int = 64
    seed: int = 0
    max_skill_steps: int = 12

    def __post_init__(self):
        counts = tuple(self.demo_counts)
        if not counts:
            raise LmscopeError("give at least one number of demonstrations")
        for c in counts:
            check_int("number of demonstrations", c, 1)
        object.__setattr__(self, "demo_counts", tuple(sorted(set(int(c) for c in counts))))
        for name in ("episodes", "steps", "batch_size", "hidden", "max_skill_steps"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        check_number("lr", self.lr, above=0)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------
# the state policies (high-level over skills, flat over actions): one architecture
# ---------------------------------------------------------------------------------------------------------
class StatePolicy(nn.Module):
    """logits(s, m): the skill model's observation and mission encoders (fresh weights), then an MLP to
    ``n_out`` logits; the flat and the high-level policy share this architecture."""

    def __init__(self, n_words: int, n_out: int, hidden: int = 64):
        super().__init__()
        self.obs = ObservationEncoder(hidden)
        self.mission = MissionEncoder(n_words, hidden)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, images: torch.Tensor, directions: torch.Tensor, mission: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([self.obs(images, directions), self.mission(mission)], -1))


def _steps_arrays(demos: list[Demo]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = np.concatenate([d.images for d in demos]).astype(np.int64)
    directions = np.concatenate([d.directions for d in demos]).astype(np.int64)
    owner = np.concatenate([np.full(len(d), i) for i, d in enumerate(demos)])
    return images, directions, owner


def behaviour_clone(demos: list[Demo], targets: list[np.ndarray], n_out: int, vocab, config: TransferConfig,
                    seed: int) -> StatePolicy:
    """A :class:`StatePolicy` trained for ``config.steps`` Adam steps on (state, mission) -> target, one target
    per step of each demo (actions for the flat policy, skill ids for the high-level one)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, directions, owner = _steps_arrays(demos)
    y = torch.as_tensor(np.concatenate(targets).astype(np.int64))
    missions = vocab.encode([d.mission for d in demos])
    img, dirs = torch.as_tensor(images), torch.as_tensor(directions)
    owner_t = torch.as_tensor(owner)
    net = StatePolicy(vocab.size, n_out, config.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    n = len(y)
    for _ in range(config.steps):
        idx = torch.as_tensor(rng.integers(0, n, size=min(config.batch_size, n)))
        loss = F.cross_entropy(net(img[idx], dirs[idx], missions[owner_t[idx]]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def label_skills(run, demos: list[Demo]) -> list[np.ndarray]:
    """The run's posterior skills for each step of ``demos`` (every step allowed as a skill start)."""
    from lmscope.skills.encode import make_batch
    from lmscope.skills.model import infer
    from lmscope.skills.segment import all_boundaries

    segs = [all_boundaries(len(d)) for d in demos]
    out: list[np.ndarray] = []
    for lo in range(0, len(demos), 64):
        idx = list(range(lo, min(lo + 64, len(demos))))
        batch = make_batch(demos, segs, run.vocab, idx)
        with torch.no_grad():
            for skills, _starts in infer(run.model, batch):
                out.append(np.asarray(skills, dtype=np.int64))
    return [o[: len(d)] for o, d in zip(out, demos)]


@torch.no_grad()
def skill_agreement(run, demos: list[Demo], labels: list[np.ndarray]) -> float:
    """The fraction of the demos' actions that the run's frozen skills choose (argmax) under the labels the
    posterior gave them: an upper bound on how well any high-level policy over these skills can imitate the
    demos step by step."""
    agree = total = 0
    for d, z in zip(demos, labels):
        logits, _ = run.model.act(torch.as_tensor(d.images.astype(np.int64)),
                                  torch.as_tensor(d.directions.astype(np.int64)),
                                  run.vocab.encode([d.mission] * len(d)), torch.as_tensor(z))
        agree += int((logits.argmax(-1).numpy() == d.actions).sum())
        total += len(d)
    return agree / max(1, total)


# ---------------------------------------------------------------------------------------------------------
# fresh episodes
# ---------------------------------------------------------------------------------------------------------
def episode_seeds(n: int, seed: int, avoid: set[int]) -> list[int]:
    """``n`` distinct episode seeds drawn from ``seed``'s own stream, none of them in ``avoid``."""
    rng = np.random.default_rng([seed, 7_771])
    out: list[int] = []
    seen = set(avoid)
    while len(out) < n:
        s = int(rng.integers(2**30, 2**31 - 1))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


class _Agent:
    """Chooses actions for a batch of episodes: flat, or skills picked by a high-level policy."""

    def __init__(self, kind: str, net: StatePolicy, vocab, run=None, max_skill_steps: int = 12):
        self.kind, self.net, self.vocab, self.run, self.max_skill_steps = kind, net, vocab, run, max_skill_steps
        self.skill: dict[int, int] = {}
        self.age: dict[int, int] = {}
        self.ended: dict[int, bool] = {}
        self.usage: dict[int, int] = {}

    @torch.no_grad()
    def act(self, ids: list[int], images: np.ndarray, directions: np.ndarray, missions: list[str]) -> list[int]:
        img = torch.as_tensor(images.astype(np.int64))
        dirs = torch.as_tensor(directions.astype(np.int64))
        logits = self.net(img, dirs, self.vocab.encode(missions))
        if self.kind == "flat":
            return logits.argmax(-1).tolist()
        choice = logits.argmax(-1).tolist()
        for j, e in enumerate(ids):
            if e not in self.skill or self.ended[e] or self.age[e] >= self.max_skill_steps:
                self.skill[e], self.age[e] = int(choice[j]), 0
                self.usage[self.skill[e]] = self.usage.get(self.skill[e], 0) + 1
        skills = torch.as_tensor([self.skill[e] for e in ids])
        a_logits, end_logit = self.run.model.act(img, dirs, self.run.vocab.encode(missions), skills)
        for j, e in enumerate(ids):
            self.age[e] += 1
            self.ended[e] = bool(end_logit[j] > 0)
        return a_logits.argmax(-1).tolist()


def rollout(level: str, seeds: list[int], agent: _Agent) -> list[dict]:
    """Run one episode per seed in lockstep, the agent choosing for all live episodes at once."""
    from lmscope.skills.demos import require_minigrid

    require_minigrid()
    import gymnasium as gym

    envs, obs, live, results = [], [], [], []
    with contextlib.redirect_stdout(io.StringIO()):
        for s in seeds:
            env = gym.make(level)
            o, _ = env.reset(seed=s)
            envs.append(env)
            obs.append(o)
            live.append(True)
            results.append({"seed": s, "success": False, "steps": 0})
        while any(live):
            ids = [i for i, v in enumerate(live) if v]
            actions = agent.act(ids, np.stack([obs[i]["image"] for i in ids]),
                                np.array([obs[i]["direction"] for i in ids]), [obs[i]["mission"] for i in ids])
            for i, a in zip(ids, actions):
                o, reward, term, trunc, _ = envs[i].step(int(a))
                obs[i] = o
                results[i]["steps"] += 1
                if term or trunc:
                    live[i] = False
                    results[i]["success"] = bool(reward > 0)
        for env in envs:
            env.close()
    return results


# ---------------------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------------------
@dataclass
class TransferResult:
    """Success rates of the flat policy and of each skill run's high-level policy, per number of demos."""

    level: str
    config: TransferConfig
    rows: list[dict]  # {policy, n_demos, success_rate, successes, episodes, mean_steps, train_seconds, ...}
    demo_seeds: list[int]
    episode_seeds: list[int]

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self) -> dict:
        table: dict[str, dict[int, float]] = {}
        for r in self.rows:
            table.setdefault(r["policy"], {})[r["n_demos"]] = r["success_rate"]
        return {"level": self.level, "episodes": self.config.episodes, "success_rate": table}

    def lines(self) -> list[str]:
        table = self.summary()["success_rate"]
        counts = list(self.config.demo_counts)
        width = max(len(p) for p in table) + 2
        out = [f"{'policy':{width}s}" + "".join(f"{'N=' + str(c):>8s}" for c in counts)]
        for p, by in table.items():
            out.append(f"{p:{width}s}" + "".join(f"{by.get(c, float('nan')):8.2f}" for c in counts))
        return out

    def to_dict(self) -> dict:
        return {"level": self.level, "config": self.config.to_dict(), "rows": self.rows,
                "summary": self.summary(), "demo_seeds": self.demo_seeds, "episode_seeds": self.episode_seeds}


def transfer(runs: dict, level: str, config: TransferConfig = TransferConfig(), *, demos: list[Demo] | None = None,
             quiet: bool | None = None, jobs: int | None = None) -> TransferResult:
    """Flat behaviour cloning vs a high-level policy over each run's skills (``runs``: label -> SkillRun) on
    ``level``, for every N in ``config.demo_counts``; see the module docstring."""
    from lmscope.skills.demos import make_demos
    from lmscope.skills.encode import MissionVocab

    if not runs:
        raise LmscopeError("give at least one skill run")
    need = max(config.demo_counts)
    if demos is None:
        demos = make_demos(level, need, config.seed, jobs=jobs, quiet=quiet)
    if len(demos) < need:
        raise LmscopeError(f"{need} demonstrations are needed, {len(demos)} given")
    seeds = episode_seeds(config.episodes, config.seed, {d.seed for d in demos})
    labels = {name: label_skills(run, demos[:need]) for name, run in runs.items()}
    rows: list[dict] = []
    jobs_list = [(n, p) for n in config.demo_counts for p in ["flat", *runs]]
    for n, policy in progress(jobs_list, desc=f"transfer to {level}", quiet=quiet):
        subset = demos[:n]
        vocab = MissionVocab.build([d.mission for d in subset])
        t0 = time.perf_counter()
        seed = config.seed * 1_000 + n
        if policy == "flat":
            net = behaviour_clone(subset, [d.actions for d in subset], N_ACTIONS, vocab, config, seed)
            agent = _Agent("flat", net, vocab)
        else:
            run = runs[policy]
            k = int(run.config.skills)
            net = behaviour_clone(subset, labels[policy][:n], k, vocab, config, seed)
            agent = _Agent("skills", net, vocab, run=run, max_skill_steps=config.max_skill_steps)
        train_s = time.perf_counter() - t0
        res = rollout(level, seeds, agent)
        wins = sum(r["success"] for r in res)
        row = {"policy": policy, "n_demos": n, "success_rate": wins / len(res), "successes": wins,
               "episodes": len(res), "mean_steps": float(np.mean([r["steps"] for r in res])),
               "train_seconds": round(train_s, 2)}
        if policy != "flat":
            row["skills_used"] = len(agent.usage)
            row["skill_calls"] = sum(agent.usage.values())
            row["label_skills"] = int(len(set(np.concatenate(labels[policy][:n]).tolist())))
            row["skill_action_agreement"] = round(skill_agreement(runs[policy], subset, labels[policy][:n]), 4)
        rows.append(row)
    return TransferResult(level, config, rows, [d.seed for d in demos[:need]], seeds)


__all__ = ["skill_agreement", "StatePolicy", "TransferConfig", "TransferResult", "behaviour_clone", "episode_seeds",
           "label_skills", "rollout", "transfer"]
