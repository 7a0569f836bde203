"""The settings of a LAST run (``lmscope skills train``): the model's sizes, the loss weights, the training
schedule. Fields with a help text are the command's options. Nothing here imports torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lmscope._settings import Settings, setting
from lmscope.errors import check_number


@dataclass(frozen=True)
class SkillConfig(Settings):
    WHAT = "skills train option"
    COMMAND = "lmscope skills train"

    skills: int = setting(8, "number of skills K (default 8)", minimum=1)
    hidden: int = setting(64, "width of the encoders, the posterior, the prior and the policy (default 64)",
                          minimum=1)
    beta: float = setting(0.1, "weight of KL(posterior || prior) (default 0.1)")
    mdl: float = setting(0.1, "weight of the description-length term (default 0.1)")
    tau: float = setting(1.0, "Gumbel-softmax temperature of the discrete latents (default 1.0)", number_above=0)
    steps: int = setting(1500, "training steps (default 1500)", minimum=1)
    warm: float = setting(0.3, "fraction of the steps trained on behaviour cloning alone before the KL and "
                               "description-length terms ramp up, over the next 0.2 (default 0.3)")
    batch_size: int = setting(32, "demonstrations per step (default 32)", minimum=1)
    lr: float = setting(2e-3, "learning rate (AdamW, default 0.002)", number_above=0)
    eval_every: int = setting(250, "steps between metrics rows (default 250)", minimum=1)
    heldout: float = setting(0.1, "fraction of demos held out for the metrics (default 0.1)")
    seed: int = setting(0, "seed of the model, the batches and the latents (default 0)", minimum=0)

    def __post_init__(self):
        self.check_settings()
        check_number("tau", self.tau, above=0.0)
        check_number("lr", self.lr, above=0.0)
        check_number("beta", self.beta, minimum=0.0)
        check_number("mdl", self.mdl, minimum=0.0)
        check_number("heldout", self.heldout, minimum=0.0, below=1.0)
        check_number("warm", self.warm, minimum=0.0, maximum=1.0)

    def regularization(self, step: int) -> float:
        """The factor of the KL and description-length terms at ``step``: 0 for the first ``warm`` of the
        steps, then rising linearly to 1 over the next fifth of them."""
        start, ramp = self.warm * self.steps, 0.2 * self.steps
        return float(min(1.0, max(0.0, (step - start) / ramp))) if ramp > 0 else 1.0

    def to_dict(self) -> dict:
        return asdict(self)
