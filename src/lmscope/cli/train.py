"""`lmscope finetune` (full fine-tuning, LoRA, rsLoRA) and `lmscope forgetting` (loss on general text)."""

from __future__ import annotations

import json

from lmscope.cli._help import MODEL_HELP
from lmscope.cli._numbers import fraction, integer, number, positive_int, positive_number, seed
from lmscope.cli._output import add_force, check_out, emit
from lmscope.errors import LmscopeError


def cmd_finetune(args) -> None:
    from lmscope.data.tasks import make_task
    from lmscope.train import FinetuneConfig, finetune

    if bool(args.data) == bool(args.task):
        raise LmscopeError("give exactly one of --data FILE.jsonl or --task NAME (a bundled task)")
    check_out(args)
    data = args.data if args.data else make_task(args.task, args.n, seed=args.seed)
    cfg = FinetuneConfig(method=args.method, rank=args.rank, alpha=args.alpha, targets=args.targets, lr=args.lr,
                         epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                         max_length=args.max_length, seed=args.seed, test_fraction=args.test_fraction,
                         ckpt_every=args.ckpt_every, train_set=args.train_set, grad_clip=args.grad_clip,
                         keep_checkpoints=args.keep_checkpoints)
    res = finetune(args.model, data, args.out, cfg, quiet=args.quiet, force=args.force)
    m = res.metrics
    lines = [f"wrote {res.out} ({cfg.method}, {m['steps']} steps, {m['trainable_parameters']} trainable parameters)",
             f"task: {json.dumps(m['task_after'])}",
             f"{m['general_before']['metric']}: {m['general_before']['value']:.4f} -> {m['general_after']['value']:.4f}"]
    emit(args, res.to_dict(), lines)


def cmd_forgetting(args) -> None:
    from lmscope.models import open_model
    from lmscope.train.evaluate import forgetting_loss

    src = open_model(args.model, base=args.base)
    model = src.load_model()
    res = forgetting_loss(model, src.load_tokenizer(), args.n)
    emit(args, {"model": src.spec, **res}, [f"{res['metric']}: {res['value']:.4f}"])


def add_finetune(sub, common) -> None:
    f = sub.add_parser("finetune", parents=[common], help="full fine-tuning, LoRA or rsLoRA on a JSONL task",
                       description="JSONL rows {\"text\", \"label\"} (classification) or {\"text\"} (plain text). "
                                   "LoRA uses alpha = 2r and all linear layers unless told otherwise.")
    f.add_argument("model", help=MODEL_HELP)
    f.add_argument("--data", help="JSONL training data")
    f.add_argument("--task", help="a bundled task instead of --data (see `lmscope data task`)")
    f.add_argument("--n", type=positive_int, default=2000, help="examples generated for a bundled task (default 2000)")
    f.add_argument("--method", default="lora", choices=["lora", "rslora", "full"])
    f.add_argument("--rank", type=positive_int, default=8)
    f.add_argument("--alpha", type=positive_number, help="LoRA alpha (default 2 * rank)")
    f.add_argument("--targets", default="all-linear", help="all-linear, or roles/module names: q,v,fc_out")
    f.add_argument("--lr", type=positive_number, help="learning rate (default: LoRA r=1 3e-4, LoRA/rsLoRA 1.5e-4, full 1e-5)")
    f.add_argument("--epochs", type=positive_number, default=1.0)
    f.add_argument("--max-steps", type=positive_int)
    f.add_argument("--batch-size", type=positive_int, default=16)
    f.add_argument("--max-length", type=integer(2), default=128)
    f.add_argument("--test-fraction", type=fraction, default=0.2)
    f.add_argument("--seed", type=seed, default=0)
    f.add_argument("--ckpt-every", type=positive_int, default=100,
                   help="steps between checkpoints in OUT.partial/, from which an interrupted run resumes")
    f.add_argument("--keep-checkpoints", action="store_true",
                   help="also keep the model of every checkpoint, in OUT/checkpoints/step-N/ "
                        "(for `lmscope intruders --checkpoints`)")
    f.add_argument("--train-set", default="all", choices=["all", "weights"],
                   help="full fine-tuning: train all parameters (default), or only the weight matrices and "
                        "the task head, with embeddings, norms and biases frozen (the paper's reference code)")
    f.add_argument("--grad-clip", type=number(0.0), default=1.0,
                   help="clip the gradient norm at this value; 0 turns clipping off (default 1.0)")
    f.add_argument("--out", required=True, help="output folder (adapter or full model)")
    add_force(f)
    f.set_defaults(func=cmd_finetune)


def add_forgetting(sub, common) -> None:
    g = sub.add_parser("forgetting", parents=[common], help="loss on the bundled held-out general text",
                       description="LM loss for causal LMs; contrastive loss for sentence encoders.")
    g.add_argument("model", help=MODEL_HELP)
    g.add_argument("--base", help="base model of a LoRA adapter")
    g.add_argument("--n", type=positive_int, help="number of passages (default all)")
    g.set_defaults(func=cmd_forgetting)


COMMANDS = {"finetune": add_finetune, "forgetting": add_forgetting}
