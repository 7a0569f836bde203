"""Training: fine-tuning (full, LoRA, rsLoRA) and the evaluations that go with it."""

from lmscope.train.evaluate import classification_accuracy, contrastive_loss, forgetting_loss, lm_loss
from lmscope.train.finetune import FinetuneConfig, FinetuneResult, finetune

__all__ = ["FinetuneConfig", "FinetuneResult", "classification_accuracy", "contrastive_loss", "finetune",
           "forgetting_loss", "lm_loss"]
