"""Fine-tuning a model on a JSONL task: full fine-tuning, LoRA, or rank-stabilized LoRA (PEFT).

Hyper-parameter conventions follow the intruder-dimensions paper: LoRA alpha = 2r, LoRA on all
linear layers of the transformer blocks (or a chosen subset), AdamW, linear schedule with 6% warmup,
shuffled data. The output directory is a PEFT adapter (LoRA) or a full model (full fine-tuning),
plus ``lmscope.json`` recording the base model, settings and measured metrics.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lmscope._io import atomic_dir
from lmscope.data.tasks import infer_task_kind, load_task_file, split_rows
from lmscope.errors import LmscopeError
from lmscope.models import ModelSource, open_model
from lmscope.progress import progress
from lmscope.train.evaluate import classification_accuracy, forgetting_loss, lm_loss

METHODS = ("lora", "rslora", "full")
# the reference settings: LoRA r = 1 at 3e-4, higher ranks at 1.5e-4, full fine-tuning at 1e-5
DEFAULT_LR = {"lora": 1.5e-4, "rslora": 1.5e-4, "full": 1e-5}


@dataclass
class FinetuneConfig:
    method: str = "lora"
    rank: int = 8
    alpha: float | None = None          # default 2 * rank
    targets: str | list[str] = "all-linear"
    lr: float | None = None             # default per method (DEFAULT_LR)
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 16
    warmup: float = 0.06
    weight_decay: float = 0.0
    max_length: int = 128
    test_fraction: float = 0.2
    seed: int = 0
    task: str = "auto"                  # auto | classification | lm
    general_texts: int | None = None    # how many general-text passages measure forgetting (None: all)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise LmscopeError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.rank < 1:
            raise LmscopeError(f"rank must be >= 1, got {self.rank}")
        if self.epochs <= 0 and not self.max_steps:
            raise LmscopeError("epochs must be > 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise LmscopeError(f"max-steps must be >= 1, got {self.max_steps}")
        if self.batch_size < 1:
            raise LmscopeError(f"batch size must be >= 1, got {self.batch_size}")
        if not (0 < self.test_fraction < 1):
            raise LmscopeError(f"test fraction must be in (0, 1), got {self.test_fraction}")
        if self.task not in ("auto", "classification", "lm"):
            raise LmscopeError(f"task must be auto, classification or lm, got {self.task!r}")

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha) if self.alpha is not None else 2.0 * self.rank

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 3e-4 if self.method == "lora" and self.rank <= 1 else DEFAULT_LR[self.method]


@dataclass
class FinetuneResult:
    out: str
    base: str
    config: dict
    task: str
    metrics: dict = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _target_modules(targets, family: str | None):
    """``all-linear``, or roles (q, v, fc_out, ...) turned into a module regex, or raw module names."""
    if targets in ("all-linear", "all", None):
        return "all-linear"
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    if family is None:
        return list(targets)
    from lmscope.models.roles import module_regex

    return module_regex(family, targets)


def _load_for_task(src: ModelSource, kind: str, labels: list[str]):
    tok = src.load_tokenizer()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if kind == "classification":
        model = src.load_model(task="seq-cls", num_labels=len(labels),
                               id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)})
        model.config.pad_token_id = tok.pad_token_id
    else:
        from lmscope.models.sources import task_from_config

        if task_from_config(src.config) != "causal-lm" and src.kind != "gguf":
            raise LmscopeError(f"plain-text (LM) fine-tuning needs a causal LM; {src.spec} is not one")
        model = src.load_model(task="causal-lm")
    return model, tok


def finetune(model: str | ModelSource, data, out: str | Path, config: FinetuneConfig | None = None,
             quiet: bool | None = None) -> FinetuneResult:
    """Fine-tune ``model`` on ``data`` (a JSONL path or a list of rows) and write the result to ``out``."""
    cfg = config or FinetuneConfig()
    cfg.validate()
    src = open_model(model)
    from lmscope.models.checkpoint import check_output_path

    check_output_path(src, out)
    if isinstance(data, (str, Path)):
        rows, kind = load_task_file(data)
    else:
        rows = list(data)
        kind = infer_task_kind(rows)
    if cfg.task != "auto" and cfg.task != kind:
        raise LmscopeError(f"the data is a {kind} task but --task {cfg.task} was asked for")
    train_rows, test_rows = split_rows(rows, cfg.test_fraction, cfg.seed)
    if not train_rows or not test_rows:
        raise LmscopeError("too few examples to split into train and test")
    labels = sorted({r["label"] for r in rows}) if kind == "classification" else []
    if kind == "classification" and len(labels) < 2:
        raise LmscopeError("a classification task needs at least two labels")

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model_obj, tok = _load_for_task(src, kind, labels)
    label2id = {lab: i for i, lab in enumerate(labels)}

    def task_metric(m) -> dict:
        if kind == "classification":
            return {"task_accuracy": classification_accuracy(m, tok, test_rows, label2id, cfg.max_length)}
        loss = lm_loss(m, tok, [r["text"] for r in test_rows], cfg.max_length)
        return {"task_loss": loss}

    metrics: dict = {"general_before": forgetting_loss(model_obj, tok, cfg.general_texts)}
    if kind == "lm":
        metrics["task_before"] = task_metric(model_obj)

    if cfg.method in ("lora", "rslora"):
        from peft import LoraConfig, TaskType, get_peft_model

        lcfg = LoraConfig(
            r=cfg.rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, use_rslora=cfg.method == "rslora",
            target_modules=_target_modules(cfg.targets, src.family),
            task_type=TaskType.SEQ_CLS if kind == "classification" else TaskType.CAUSAL_LM,
        )
        try:
            model_obj = get_peft_model(model_obj, lcfg)
        except ValueError as e:
            raise LmscopeError(f"cannot apply LoRA: {str(e).splitlines()[0]}") from None
    model_obj.train()
    params = [p for p in model_obj.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_rows) / cfg.batch_size)
    total = cfg.max_steps or max(1, int(round(cfg.epochs * steps_per_epoch)))
    warm = int(round(cfg.warmup * total))

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / max(1, warm)
        return max(0.0, (total - step) / max(1, total - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    rng = random.Random(cfg.seed)
    order: list[int] = []
    losses: list[float] = []
    t0 = time.time()
    bar = progress(range(total), desc=f"finetune {cfg.method}", quiet=quiet)
    for step in bar:
        if len(order) < cfg.batch_size:
            perm = list(range(len(train_rows)))
            rng.shuffle(perm)
            order.extend(perm)
        idx, order = order[: cfg.batch_size], order[cfg.batch_size:]
        batch = [train_rows[i] for i in idx]
        enc = tok([r["text"] for r in batch], return_tensors="pt", padding=True, truncation=True,
                  max_length=cfg.max_length)
        if kind == "classification":
            out_ = model_obj(**enc, labels=torch.tensor([label2id[r["label"]] for r in batch]))
        else:
            lab = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            out_ = model_obj(**enc, labels=lab)
        loss = out_.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if hasattr(bar, "set_postfix") and step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
    metrics["train_seconds"] = round(time.time() - t0, 1)
    metrics["steps"] = total
    metrics["trainable_parameters"] = int(n_trainable)
    model_obj.eval()
    metrics["task_after"] = task_metric(model_obj)
    metrics["general_after"] = forgetting_loss(model_obj, tok, cfg.general_texts)

    info = {
        "base": src.spec, "method": cfg.method, "task": kind, "labels": labels,
        "config": {**asdict(cfg), "alpha": cfg.lora_alpha, "lr": cfg.learning_rate}, "metrics": metrics,
        "n_train": len(train_rows), "n_test": len(test_rows),
    }
    with atomic_dir(out) as tmp:
        model_obj.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "lmscope.json").write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "losses.json").write_text(json.dumps(losses) + "\n")
    return FinetuneResult(str(out), src.spec, info["config"], kind, metrics, losses)
