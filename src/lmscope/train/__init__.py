"""Training: one resumable loop for any torch module (:func:`train`), fine-tuning (full, LoRA, rsLoRA) and
small LMs from scratch on it, and their evaluations."""

from lmscope.train.evaluate import classification_accuracy, contrastive_loss, forgetting_loss, lm_loss
from lmscope.train.finetune import FinetuneConfig, FinetuneResult, finetune
from lmscope.train.loop import (
           TrainConfig,
           latest_checkpoint,
           load_checkpoint,
           read_metrics,
           suite_lines,
           train,
           train_lm,
)

__all__ = ["FinetuneConfig", "FinetuneResult", "TrainConfig", "classification_accuracy", "contrastive_loss",
           "finetune", "forgetting_loss", "latest_checkpoint", "lm_loss", "load_checkpoint", "read_metrics",
           "suite_lines", "train", "train_lm"]
