"""The LAST model: temporal variational inference of discrete skills over demonstrations.

A demonstration is (s_t, a_t), t = 1..T, with mission m; a segmentation gives the set B of steps where a
skill may start (t = 1 always in B). The latent is a skill z_t in {1..K} at every step, and the switch
b_t = [z_t != z_{t-1}] (b_1 = 1): a new skill can start only at a step of B, so inference can only merge
the given segments, never split them. The posterior is mean-field over the segments:

    q(z_t = k | s, a, m) = softmax(f(h_t))_k   for t in B      h = BiGRU over (enc(s_t), emb(a_t), enc(m))
    z_t = z_{t-1}                              for t not in B

so the running skill's distribution is Q_t = q_t for t in B and Q_t = Q_{t-1} otherwise, and the chance
that a skill starts at t in B is w_t = q(b_t = 1) = 1 - sum_k q_t(k) Q_{t-1}(k) (w_1 = 1). Straight-through
Gumbel-softmax samples of the skills (temperature tau) condition the prior and the termination head. The
prior (the high-level policy) reads only the past: p(z_t | s_<=t, a_<t, z_<t, m) from a causal GRU, fed the
sampled previous skill. The low-level policy is pi(a_t | s_t, m, z_t); a termination head beta(s_t, m, z_t)
predicts whether the skill ends after step t (target w_{t+1}; the last step ends).

Loss, per real step (n = number of real steps in the batch; r rises from 0 to 1 after the first ``warm`` of
the training steps, so the skills first learn to explain the actions, as the reference code's two training
phases do):

    L = (1/n) sum_t sum_k Q_t(k) [-log pi(a_t | s_t, m, k)]       behaviour cloning (exact expectation)
      + r beta (1/n) sum_t KL(Q_t || p(z_t | ...))                 posterior against the causal prior
      + r mdl  (1/n) sum_t w_t CE(q_t, u)                          description length
      + (1 - r) sum_k u(k) log u(k)                                spread (warm-up only)
      + (1/n) sum_t BCE(beta(s_t, m, z_t), w_{t+1})                termination

where u(k) = sum_t w_t q_t(k) / sum_t w_t is the batch's skill usage at skill starts. The description-length
term is the expected length of the code that names the skill of every skill start with a code built from the
usage: it grows with the number of skill starts (so it prefers merging segments: compression) and with the
entropy of the usage (so it prefers reusing a few skills: reuse). :func:`description_length` computes it for
a given hard segmentation. During warm-up the spread term (the negative entropy of the usage) keeps every
skill in use, so that no skill's policy is left untrained ("dead" skills) before the description length
starts to concentrate the usage.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmscope.skills.config import SkillConfig
from lmscope.skills.encode import Batch
from lmscope.skills.types import N_ACTIONS, VIEW

EPS = 1e-8
CELL_VALUES = 16
# switch logits stay within +-SWITCH_BOUND (q(b) within [0.018, 0.982]): a saturated switch would no longer
# feel the description-length and KL terms, which are what merge segments
SWITCH_BOUND = 4.0  # object type (0-10), colour (0-5) and state (0-2) indices fit below this


class ObservationEncoder(nn.Module):
    """enc(s): the 7x7 view's object, colour and state indices embedded, flattened, an MLP; plus the
    direction's embedding."""

    def __init__(self, hidden: int, embed: int = 8):
        super().__init__()
        self.cells = nn.ModuleList([nn.Embedding(CELL_VALUES, embed) for _ in range(3)])
        self.direction = nn.Embedding(4, hidden)
        self.mlp = nn.Sequential(nn.Linear(VIEW * VIEW * 3 * embed, hidden), nn.ReLU(), nn.Linear(hidden, hidden))

    def forward(self, images: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([emb(images[..., i].clamp(0, CELL_VALUES - 1)) for i, emb in enumerate(self.cells)], -1)
        return torch.relu(self.mlp(x.flatten(-3)) + self.direction(directions.clamp(0, 3)))


class MissionEncoder(nn.Module):
    """enc(m): a GRU over the mission's word embeddings, its state after the last word."""

    def __init__(self, n_words: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(n_words, hidden, padding_idx=0)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)

    def forward(self, mission: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.embed(mission))
        last = (mission != 0).sum(1).clamp(min=1) - 1
        return out[torch.arange(len(mission)), last]


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


class SkillModel(nn.Module):
    """Posterior, prior, low-level policy and termination head of LAST (see the module docstring)."""

    def __init__(self, config: SkillConfig, n_words: int):
        super().__init__()
        self.config, self.n_words = config, int(n_words)
        H, K = config.hidden, config.skills
        self.obs = ObservationEncoder(H)
        self.mission = MissionEncoder(self.n_words, H)
        self.action = nn.Embedding(N_ACTIONS + 1, H)  # index N_ACTIONS: "no previous action"
        self.posterior = nn.GRU(3 * H, H, batch_first=True, bidirectional=True)
        self.q_head = nn.Linear(2 * H, K)
        self.prior = nn.GRU(3 * H + K, H, batch_first=True)
        self.p_head = nn.Linear(H, K)
        self.skill = nn.Linear(K, H, bias=False)
        self.policy = _mlp(3 * H, H, N_ACTIONS)
        self.end = _mlp(3 * H, H, 1)
        # training steps taken (a buffer: saved with the weights, so a resumed run continues the schedule)
        self.register_buffer("steps_taken", torch.zeros((), dtype=torch.long))

    # ----------------------------------------------------------------------------------- pieces
    def encode(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.obs(batch.images, batch.directions)
        m = self.mission(batch.mission)
        return o, m[:, None].expand(-1, o.shape[1], -1)

    def posterior_logits(self, batch: Batch, o: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """The posterior's skill logits at every step [B, T, K] (used where a skill may start)."""
        h, _ = self.posterior(torch.cat([o, self.action(batch.actions), m], -1))
        return self.q_head(h)

    def heads(self, o: torch.Tensor, m: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action logits, termination logit) given one-hot (or relaxed) skills ``z``."""
        x = torch.cat([o, m, self.skill(z)], -1)
        return self.policy(x), self.end(x)[..., 0]

    def act(self, images: torch.Tensor, directions: torch.Tensor, mission: torch.Tensor,
            skill: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of skill ``skill`` [B] (long): (action logits [B, 7], termination logit [B])."""
        o = self.obs(images, directions)
        m = self.mission(mission)
        z = F.one_hot(skill.long(), self.config.skills).float()
        return self.heads(o, m, z)

    # ----------------------------------------------------------------------------------- the loss
    @staticmethod
    def carry(batch: Batch, x: torch.Tensor) -> torch.Tensor:
        """x_t where a skill may start, else the previous step's value: [B, T, K]."""
        out, prev = [], x[:, 0]
        for t in range(x.shape[1]):
            if t:
                prev = torch.where(batch.allowed[:, t, None], x[:, t], prev)
            out.append(prev)
        return torch.stack(out, 1)

    def all_skill_nll(self, o: torch.Tensor, m: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """-log pi(a_t | s_t, m, z = k) for every skill k: [B, T, K]."""
        K = self.config.skills
        B, T, H = o.shape
        x = torch.cat([o[:, :, None].expand(B, T, K, H), m[:, :, None].expand(B, T, K, H),
                       self.skill.weight.t()[None, None].expand(B, T, K, H)], -1)
        logp = F.log_softmax(self.policy(x), -1)
        return -logp.gather(-1, actions[:, :, None, None].expand(B, T, K, 1))[..., 0]

    @staticmethod
    def start_probs(batch: Batch, q: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
        """w_t = q(b_t = 1): 1 at t = 0; 1 - <q_t, Q_{t-1}> where a skill may start; 0 elsewhere."""
        change = 1 - (q[:, 1:] * Q[:, :-1]).sum(-1)
        w = torch.cat([torch.ones_like(q[:, :1, 0]), change], 1)
        keep = batch.allowed & batch.mask
        keep[:, 0] = True
        return torch.where(keep, w, torch.zeros_like(w))

    def terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The loss's terms (each a mean per real step) and the total ``loss``."""
        cfg = self.config
        mask = batch.mask
        n = mask.sum().clamp(min=1)
        o, m = self.encode(batch)
        logits = self.posterior_logits(batch, o, m)
        log_q = F.log_softmax(logits, -1)
        q = log_q.exp()
        Q = self.carry(batch, q)
        bc_step = (Q * self.all_skill_nll(o, m, batch.actions)).sum(-1)
        bc = torch.where(mask, bc_step, torch.zeros_like(bc_step)).sum() / n
        # sampled skills (straight-through Gumbel-softmax) condition the prior and the termination head
        z = self.carry(batch, F.gumbel_softmax(logits, tau=cfg.tau, hard=True))
        B, T = mask.shape
        prev_a = torch.cat([torch.full((B, 1), N_ACTIONS, dtype=torch.long), batch.actions[:, :-1]], 1)
        prev_z = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], 1)
        hp, _ = self.prior(torch.cat([o, self.action(prev_a), m, prev_z], -1))
        log_p = F.log_softmax(self.p_head(hp), -1)
        log_Q = self.carry(batch, log_q)
        kl_step = (Q * (log_Q - log_p)).sum(-1)
        kl = torch.where(mask, kl_step, torch.zeros_like(kl_step)).sum() / n
        # description length: skill starts coded with the batch's skill usage
        w = self.start_probs(batch, q, Q) * mask
        usage = (w[..., None] * q).sum((0, 1)) / w.sum().clamp(min=EPS)
        dl = (w * -(q * (usage + EPS).log()).sum(-1)).sum() / n
        spread = (usage * (usage + EPS).log()).sum()
        # termination: the skill ends after t when one starts at t + 1 (the last step always ends)
        _, end_logit = self.heads(o, m, z)
        nxt = torch.cat([w[:, 1:].detach(), torch.ones_like(w[:, :1])], 1)
        last = mask & ~torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], 1)
        target = torch.where(last, torch.ones_like(nxt), nxt).clamp(0, 1)
        end = F.binary_cross_entropy_with_logits(end_logit[mask], target[mask], reduction="sum") / n
        reg = cfg.regularization(int(self.steps_taken))
        if self.training and torch.is_grad_enabled():
            self.steps_taken += 1
        loss = bc + reg * (cfg.beta * kl + cfg.mdl * dl) + (1 - reg) * spread + end
        return {"loss": loss, "bc_nll": bc, "kl": kl, "dl": dl, "end": end,
                "starts": w.detach().sum() / B}

    # ----------------------------------------------------------------------------------- decoding
    @torch.no_grad()
    def decode(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic inference: the most probable skill at each step where one may start, carried
        elsewhere; a skill starts where it differs from the previous step's (and at t = 0). Returns
        (starts [B, T] bool, z [B, T] long)."""
        o, m = self.encode(batch)
        z = self.carry(batch, self.posterior_logits(batch, o, m).argmax(-1, keepdim=True).float())[..., 0].long()
        starts = torch.ones_like(batch.mask)
        starts[:, 1:] = z[:, 1:] != z[:, :-1]
        return starts & batch.mask, z


def infer(model: SkillModel, batch: Batch) -> list[tuple[np.ndarray, list[int]]]:
    """For every demo of the batch: (its skill at each real step, the steps where a skill starts)."""
    was = model.training
    model.eval()
    b, z = model.decode(batch)
    model.train(was)
    out = []
    for i in range(len(batch.index)):
        n = int(batch.mask[i].sum())
        out.append((z[i, :n].numpy().astype(np.int64), [int(t) for t in torch.nonzero(b[i, :n]).flatten()]))
    return out


def description_length(starts: list[list[int]], skills: list[list[int]]) -> float:
    """The description-length term for hard segmentations: the nats needed to name the skill of every
    segment (``skills[d][j]``: the skill of segment j of demo d, which starts at ``starts[d][j]``) with a code
    built from the skills' usage over all segments; divided by the number of demos."""
    labels = [int(z) for row in skills for z in row]
    if not labels:
        return 0.0
    counts = np.bincount(labels)
    usage = counts[counts > 0] / len(labels)
    entropy = float(-(usage * np.log(usage)).sum())
    if sum(len(s) for s in starts) != len(labels):
        raise ValueError("one skill per segment start is needed")
    return len(labels) * entropy / max(1, len(starts))


def n_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))

