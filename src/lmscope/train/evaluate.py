"""Evaluations used around fine-tuning: task accuracy, LM loss, and forgetting of pre-training.

Forgetting is measured on the bundled held-out general text: for a causal LM, its mean per-token
LM loss; for an encoder without an LM head (such as the bundled sentence encoder MiniLM), the
in-batch contrastive loss of matching each passage's first half to its second half by embedding
similarity (the sentence encoder's own pre-training objective), with mean pooling and scale 20.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lmscope.data.general import general_text_pairs, load_general_text
from lmscope.errors import LmscopeError
from lmscope.models.sources import is_causal


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _batches(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


@torch.no_grad()
def lm_loss(model, tokenizer, texts: list[str], max_length: int = 256, batch_size: int = 8) -> float:
    """Mean next-token cross-entropy (nats per token) of a causal LM over ``texts``."""
    model.eval()
    dev = _device(model)
    total, count = 0.0, 0
    for batch in _batches(texts, batch_size):
        enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
        ids, mask = enc["input_ids"].to(dev), enc["attention_mask"].to(dev)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        lp = F.log_softmax(logits[:, :-1], dim=-1)
        tgt = ids[:, 1:]
        m = mask[:, 1:].bool() & mask[:, :-1].bool()
        nll = -lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        total += float(nll[m].sum())
        count += int(m.sum())
    if count == 0:
        raise LmscopeError("no tokens to score")
    return total / count


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


@torch.no_grad()
def embed(model, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 32) -> torch.Tensor:
    """Mean-pooled, L2-normalized last hidden states of an encoder."""
    model.eval()
    dev = _device(model)
    out = []
    for batch in _batches(texts, batch_size):
        enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=max_length).to(dev)
        o = model(**enc, output_hidden_states=True)
        hidden = o.hidden_states[-1] if getattr(o, "hidden_states", None) is not None else o.last_hidden_state
        out.append(F.normalize(_mean_pool(hidden.float(), enc["attention_mask"]), dim=-1))
    return torch.cat(out)


@torch.no_grad()
def contrastive_loss(model, tokenizer, pairs: list[tuple[str, str]], scale: float = 20.0) -> float:
    """In-batch InfoNCE loss of matching each first half to its own second half (lower is better)."""
    a = embed(model, tokenizer, [p[0] for p in pairs])
    b = embed(model, tokenizer, [p[1] for p in pairs])
    logits = scale * a @ b.t()
    target = torch.arange(len(pairs))
    return float((F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2)


def forgetting_loss(model, tokenizer, n: int | None = None) -> dict:
    """Loss on held-out general text: LM loss for causal LMs, contrastive loss for encoders."""
    if is_causal(model):
        return {"metric": "general_lm_loss", "value": lm_loss(model, tokenizer, load_general_text(n))}
    base = getattr(model, "base_model", model)
    encoder = getattr(base, base.base_model_prefix, base) if hasattr(base, "base_model_prefix") else base
    return {"metric": "general_contrastive_loss", "value": contrastive_loss(encoder, tokenizer, general_text_pairs(n))}


@torch.no_grad()
def classification_accuracy(model, tokenizer, rows: list[dict], label2id: dict[str, int],
                            max_length: int = 128, batch_size: int = 32) -> float:
    model.eval()
    dev = _device(model)
    correct = 0
    for batch in _batches(rows, batch_size):
        enc = tokenizer([r["text"] for r in batch], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length).to(dev)
        pred = model(**enc).logits.argmax(-1).cpu()
        gold = torch.tensor([label2id[r["label"]] for r in batch])
        correct += int((pred == gold).sum())
    return correct / len(rows)


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else math.inf
