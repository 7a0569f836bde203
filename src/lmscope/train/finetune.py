"""Fine-tuning a model on a JSONL task: full fine-tuning, LoRA, or rank-stabilized LoRA (PEFT).

Hyper-parameter conventions follow the intruder-dimensions paper: LoRA alpha = 2r, LoRA on all
linear layers of the transformer blocks (or a chosen subset), AdamW, linear schedule with 6% warmup,
shuffled data. Two settings differ from the paper's reference code by default and can be set to it:
``train_set`` (full fine-tuning trains ``"all"`` parameters, or only ``"weights"``: the matrices and
the task head, with embeddings, norms and biases frozen, as the reference does) and ``grad_clip``
(the gradient norm is clipped at 1; 0 turns clipping off, as the reference does). Training runs on
:func:`lmscope.train.loop.train` (its schedule, data order and exact resume). The output directory is
a PEFT adapter (LoRA) or a full model (full fine-tuning), plus ``lmscope.json`` recording the base
model, settings and measured metrics, and ``losses.json`` (the training loss of every step).

Resume
------
While it runs, a fine-tune to ``OUT`` keeps its run directory beside it, ``OUT.partial/``:
``run.json`` (base model, settings, a fingerprint of the training rows), ``before.json`` (the
metrics of the base model), ``metrics.jsonl`` (one row per step) and ``checkpoints/`` (the
trainable weights, optimizer and data position every ``ckpt_every`` steps; see
:mod:`lmscope.train.loop`). Starting the same fine-tune again resumes from the newest checkpoint and
ends with the same weights as an uninterrupted run; a fine-tune with other settings is refused
while ``OUT.partial/`` is there. On success ``OUT`` is written (atomically) and ``OUT.partial/`` removed.

Checkpoints kept
----------------
With ``keep_checkpoints`` the model at every ``ckpt_every`` steps is also kept, in the same form as
``OUT`` (a PEFT adapter or a full model, with its ``lmscope.json``), in ``OUT/checkpoints/step-N/``
(``OUT`` itself is the last step). :func:`checkpoint_steps` lists them; they open with
:func:`lmscope.models.open_model` like any fine-tuned model (see
:func:`lmscope.spectral.intruders.intruders_over_training`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lmscope._io import atomic_dir, dumps, write_json
from lmscope.data.tasks import infer_task_kind, load_task_file, split_rows
from lmscope.errors import LmscopeError, check_int, check_number
from lmscope.models import ModelSource, open_model
from lmscope.train.evaluate import classification_accuracy, forgetting_loss, lm_loss
from lmscope.train.loop import RunDirMismatch, TrainConfig, check_run_dir, read_metrics, run_record, train

METHODS = ("lora", "rslora", "full")
TRAIN_SETS = ("all", "weights")
# the modules of a task head that transformers adds (sequence classification); always trained
HEAD_MODULES = ("classifier", "score")
CHECKPOINTS_DIR = "checkpoints"
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
    ckpt_every: int = 100               # steps between the checkpoints in OUT.partial/
    train_set: str = "all"              # full fine-tuning: "all" parameters, or "weights" (see set_train_set)
    grad_clip: float = 1.0              # gradient-norm clipping; 0 turns it off
    keep_checkpoints: bool = False      # keep the model of every checkpoint in OUT/checkpoints/step-N/

    def validate(self) -> None:
        if self.method not in METHODS:
            raise LmscopeError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.train_set not in TRAIN_SETS:
            raise LmscopeError(f"unknown train set {self.train_set!r}; choose one of {', '.join(TRAIN_SETS)}")
        if self.train_set != "all" and self.method != "full":
            raise LmscopeError(f"the train set applies to full fine-tuning only; {self.method} trains its "
                               "adapters and the task head")
        check_number("grad-clip", self.grad_clip, 0.0)
        check_int("rank", self.rank, 1)
        if self.alpha is not None:
            check_number("alpha", self.alpha, above=0.0)
        if self.lr is not None:
            check_number("lr", self.lr, above=0.0)
        if self.max_steps is not None:
            check_int("max-steps", self.max_steps, 1)
        else:
            check_number("epochs", self.epochs, above=0.0)
        check_int("batch size", self.batch_size, 1)
        check_int("ckpt-every", self.ckpt_every, 1)
        check_number("warmup (a fraction of the steps)", self.warmup, 0.0, 1.0)
        check_number("weight decay", self.weight_decay, 0.0)
        check_int("max-length", self.max_length, 2)
        check_number("test fraction", self.test_fraction, above=0.0, below=1.0)
        check_int("seed", self.seed, 0)
        if self.general_texts is not None:
            check_int("general_texts", self.general_texts, 1)
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

    def train_config(self, n_train: int) -> TrainConfig:
        """The training loop's settings for ``n_train`` training rows: ``max_steps`` or ``epochs``
        worth of batches, a linear decay after ``warmup`` (a fraction of the steps), a metrics row
        (the loss) every step."""
        total = self.max_steps or max(1, int(round(self.epochs * math.ceil(n_train / self.batch_size))))
        return TrainConfig(steps=total, batch_size=self.batch_size, lr=self.learning_rate,
                           warmup=int(round(self.warmup * total)), schedule="linear",
                           weight_decay=self.weight_decay, grad_clip=float(self.grad_clip), eval_every=1,
                           ckpt_every=self.ckpt_every, keep_checkpoints=2, seed=self.seed)


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


def set_train_set(model: torch.nn.Module, train_set: str = "all") -> int:
    """Choose which parameters of ``model`` full fine-tuning trains; returns how many numbers that is.

    ``"all"``: every parameter. ``"weights"`` (the paper's reference code): the 2-D weight matrices
    (attention, MLP, a pooler, an untied output layer) and every parameter of the task head
    (:data:`HEAD_MODULES`); embeddings (any ``nn.Embedding``, so a tied output layer too), norms and
    biases stay frozen.
    """
    if train_set not in TRAIN_SETS:
        raise LmscopeError(f"unknown train set {train_set!r}; choose one of {', '.join(TRAIN_SETS)}")
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    for name, p in model.named_parameters():
        head = name.split(".", 1)[0] in HEAD_MODULES
        p.requires_grad_(train_set == "all" or head or (p.ndim == 2 and id(p) not in embeddings))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def checkpoint_steps(out: str | Path) -> list[tuple[int, Path]]:
    """The kept checkpoints of a finished fine-tune (``keep_checkpoints``), then ``out`` itself as
    its last step: ``[(step, folder), ...]`` in step order. LmscopeError if ``out`` is no fine-tune."""
    out = Path(out)
    try:
        info = json.loads((out / "lmscope.json").read_text(encoding="utf-8"))
        last = int(info["metrics"]["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LmscopeError(f"{out} is not a finished lmscope fine-tune (no readable lmscope.json)") from None
    steps = []
    root = out / CHECKPOINTS_DIR
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and d.name.startswith("step-") and d.name[5:].isdigit() and (d / "lmscope.json").is_file():
                steps.append((int(d.name[5:]), d))
    return sorted(s for s in steps if s[0] < last) + [(last, out)]


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


def partial_dir(out: str | Path) -> Path:
    """The run directory of an unfinished fine-tune to ``out``: ``OUT.partial`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def _rows_fingerprint(rows: list[dict]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def batch_collator(tokenizer, kind: str, label2id: dict[str, int], max_length: int):
    """``collate(rows) -> (encoding, labels)`` for :func:`batch_loss`: the texts tokenized, padded and
    truncated to ``max_length``; labels are class ids (classification) or the input ids with padding
    masked out (LM)."""
    def collate(batch: list[dict]):
        enc = tokenizer([r["text"] for r in batch], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length)
        if kind == "classification":
            return enc, torch.tensor([label2id[r["label"]] for r in batch])
        return enc, enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)

    return collate


def batch_loss(model, batch) -> torch.Tensor:
    """The transformers model's own loss on a batch of :func:`batch_collator`."""
    enc, labels = batch
    return model(**enc, labels=labels).loss


def finetune(model: str | ModelSource, data, out: str | Path, config: FinetuneConfig | None = None,
             quiet: bool | None = None, stop_after: int | None = None, force: bool = False
             ) -> FinetuneResult | None:
    """Fine-tune ``model`` on ``data`` (a JSONL path or a list of rows) and write the result to ``out``,
    resuming from ``OUT.partial/`` when an earlier run of the same fine-tune was interrupted (see the
    module docstring). ``stop_after`` ends the training after that many steps as if it had been
    killed, leaving ``OUT.partial/`` to resume from (for tests and time-sliced runs); it then returns None.
    ``out`` follows lmscope's output policy (:mod:`lmscope.outputs`): it may not be, hold or be inside the
    model, its base or the data file; ``force`` replaces an existing folder lmscope did not write.
    """
    cfg = config or FinetuneConfig()
    cfg.validate()
    src = open_model(model)
    from lmscope.models.checkpoint import check_output_path, input_paths
    from lmscope.outputs import check_output, output_dir

    data_files = [Path(data)] if isinstance(data, (str, Path)) else []
    check_output_path(src, out, force=force, inputs=data_files)
    # the resumable run folder beside it: its own run.json decides whether it is resumed (check_run_dir)
    check_output(partial_dir(out), [*input_paths(src), *data_files], kind="run", force=True)
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

    settings = {**asdict(cfg), "alpha": cfg.lora_alpha, "lr": cfg.learning_rate}
    tcfg = cfg.train_config(len(train_rows)).validate()
    run_info = {"finetune": {"base": src.spec, "method": cfg.method, "task": kind, "labels": labels,
                             "config": settings},
                "data": {"n_train": len(train_rows), "n_test": len(test_rows),
                         "sha256": _rows_fingerprint(train_rows)}}
    partial = partial_dir(out)
    record = run_record(tcfg, run_info)
    try:
        check_run_dir(partial, record, create=False)  # refuse before the slow part; write nothing yet
    except RunDirMismatch as e:
        raise LmscopeError(f"{partial} holds an unfinished fine-tune with other settings ({e.key} differs); "
                           f"rerun that fine-tune to resume it, or delete {partial} to start over") from None

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model_obj, tok = _load_for_task(src, kind, labels)
    if cfg.method == "full":
        set_train_set(model_obj, cfg.train_set)
    label2id = {lab: i for i, lab in enumerate(labels)}

    def task_metric(m) -> dict:
        if kind == "classification":
            return {"task_accuracy": classification_accuracy(m, tok, test_rows, label2id, cfg.max_length)}
        loss = lm_loss(m, tok, [r["text"] for r in test_rows], cfg.max_length)
        return {"task_loss": loss}

    before_file = partial / "before.json"
    try:  # the base model's metrics, measured when this fine-tune first started
        metrics: dict = json.loads(before_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = {}
    if not isinstance(metrics, dict) or "general_before" not in metrics:
        metrics = {}
        metrics["general_before"] = forgetting_loss(model_obj, tok, cfg.general_texts)
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
    n_trainable = sum(p.numel() for p in model_obj.parameters() if p.requires_grad)

    check_run_dir(partial, record)
    write_json(before_file, metrics)

    collate = batch_collator(tok, kind, label2id, cfg.max_length)
    meta = {"base": src.spec, "method": cfg.method, "task": kind, "labels": labels}
    kept = partial / "kept"

    def keep(m, step: int) -> None:
        # runs after every step (before that step's checkpoint is written); resumed steps rewrite theirs
        if cfg.keep_checkpoints and step % cfg.ckpt_every == 0 and step < tcfg.steps:
            with atomic_dir(kept / f"step-{step:07d}") as tmp:
                m.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                (tmp / "lmscope.json").write_text(dumps({**meta, "step": step}) + "\n")

    summary = train(partial, model_obj, batch_loss, train_rows, tcfg, collate=collate, run_info=run_info,
                    eval_fn=keep if cfg.keep_checkpoints else None, quiet=quiet, stop_after=stop_after,
                    desc=f"finetune {cfg.method}")
    if summary["step"] < tcfg.steps:
        return None
    losses = [float(r["loss"]) for r in read_metrics(partial)]
    metrics["train_seconds"] = round(summary["seconds"], 1)
    metrics["steps"] = tcfg.steps
    metrics["trainable_parameters"] = int(n_trainable)
    model_obj.eval()
    metrics["task_after"] = task_metric(model_obj)
    metrics["general_after"] = forgetting_loss(model_obj, tok, cfg.general_texts)

    info = {
        "base": src.spec, "method": cfg.method, "task": kind, "labels": labels,
        "config": settings, "metrics": metrics, "n_train": len(train_rows), "n_test": len(test_rows),
    }
    with output_dir(out, checked=True, command=f"lmscope finetune {src.spec}") as tmp:
        model_obj.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "lmscope.json").write_text(dumps(info) + "\n")
        (tmp / "losses.json").write_text(json.dumps(losses) + "\n")
        if cfg.keep_checkpoints and kept.is_dir():
            shutil.move(str(kept), str(tmp / CHECKPOINTS_DIR))
    shutil.rmtree(partial, ignore_errors=True)
    return FinetuneResult(str(out), src.spec, info["config"], kind, metrics, losses)
