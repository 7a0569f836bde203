"""A local transformers causal LM as a :class:`~lmscope.lm.base.LanguageModel`.

``LocalLM("smollm2-135m")`` (the bundled SmolLM2-135M-Instruct) or ``LocalLM("path/to/hf-dir")``. The
model and tokenizer load on first use, so a cached or offline run never pays for them.

Scoring (see :meth:`LanguageModel.score` for the shared definition) runs the tokens that a
prompt's continuations have in common once, for a batch of prompts in one forward pass, keeps their
keys and values, and then runs every continuation after them in a second pass (``shared``); a
prompt with a single continuation has nothing to share and runs as one padded row among others
(``flat``). ``strategy="auto"`` (the default) picks per prompt that way; ``shared`` and ``flat``
force one. All give the same numbers within float rounding (``tests/test_lm_backends.py`` checks
them against one forward pass per continuation); ``benchmarks/bench_lm_score.py`` measures the
speed of each (figures in ``BENCHMARKS.md``). The vocabulary projection runs only at the positions
that predict continuation tokens.

Generation decodes greedily at temperature 0; otherwise it samples with temperature and nucleus
(top-p) filtering, each sample from its own ``torch.Generator`` seeded from (seed, prompt, sample
index), so a sample does not depend on the other prompts of the call. Chat messages go through the
tokenizer's chat template; a tokenizer without one gets a plain ``Role: content`` transcript that
ends with ``Assistant:``.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from lmscope.errors import LmscopeError
from lmscope.lm.base import (
    CHAT_PLACEHOLDER,
    ContinuationScore,
    LanguageModel,
    Prompt,
    canonical_json,
    check_generate_args,
    check_score_requests,
)
from lmscope.models.hooks import find_body_head, log_probs_at, project, resolve_device, run_body
from lmscope.models.small_tokenizer import pad_batch, pad_id_of

DEFAULT_LOCAL_MODEL = "smollm2-135m"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_HEAD_CHUNK = 1024  # positions projected onto the vocabulary at once


def _config_context_length(config: dict) -> int | None:
    """The positions a model's config says it holds, when it says so."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "max_len"):
        v = config.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _fingerprint(path: Path) -> list:
    """Name, size and modification time of a file, or of every visible file directly in a directory."""
    path = path.resolve()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    out = []
    for f in files:
        st = f.stat()
        out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def _source_identity(src) -> dict:
    ident = {"path": str(Path(src.path).resolve()), "files": _fingerprint(Path(src.path))}
    base = getattr(src, "base", None)
    if base is not None and hasattr(base, "path"):  # a LoRA adapter: its base model matters too
        ident["base"] = _source_identity(base)
    return ident


def _sample_seed(seed: int, prompt: Prompt, index: int) -> int:
    h = hashlib.sha256(canonical_json([int(seed), prompt, int(index)]).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def chat_fallback(messages: list[dict]) -> str:
    """The transcript used for chat messages when a tokenizer has no chat template."""
    lines = [f"{m['role'].strip().capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


class LocalLM(LanguageModel):
    """A transformers causal LM: a bundled name (``smollm2-135m``), a Hugging Face directory, a GGUF file.

    Options: ``device`` (auto, cpu, cuda, cuda:N), ``dtype`` (float32, bfloat16, float16),
    ``batch_size`` (rows per forward pass), ``max_batch_tokens`` (padded tokens per forward pass),
    ``strategy`` (how scoring batches: auto, shared or flat; see the module's docstring).
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_LOCAL_MODEL, *, device: str = "auto",
                 dtype: str = "float32", batch_size: int = 128, max_batch_tokens: int = 8192,
                 strategy: str = "auto"):
        from lmscope.models import open_model

        self.name = str(model)
        self.spec = f"local:{self.name}"
        if dtype not in _DTYPES:
            raise LmscopeError(f"unknown dtype {dtype!r}; choose one of {', '.join(_DTYPES)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise LmscopeError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(max_batch_tokens, int) or max_batch_tokens < 1:
            raise LmscopeError(f"max_batch_tokens must be a positive integer, got {max_batch_tokens!r}")
        if strategy not in ("auto", "shared", "flat"):
            raise LmscopeError(f"unknown scoring strategy {strategy!r}; choose auto, shared or flat")
        self.dtype_name = dtype
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.strategy = strategy
        self.device = resolve_device(device)
        self.source = open_model(self.name)
        if not hasattr(self.source, "path"):
            raise LmscopeError(f"{self.name} is not a model on disk")
        self.source.require_lm_head("a local language model", causal=True)
        self._model = None
        self._tok = None
        self._identity: dict | None = None

    # ------------------------------------------------------------------ loading
    def identity(self) -> dict:
        if self._identity is None:
            self._identity = {"backend": "local", **_source_identity(self.source), "dtype": self.dtype_name}
        return dict(self._identity)

    def _load(self):
        if self._model is not None:
            return
        import transformers

        from lmscope.models.sources import is_causal

        model = self.source.load_model("causal-lm", dtype=_DTYPES[self.dtype_name])
        if not isinstance(model, transformers.PreTrainedModel) or not is_causal(model):
            raise LmscopeError(f"{self.name} is not a transformers causal language model")
        tok = self.source.load_tokenizer()
        if not getattr(tok, "is_fast", False):
            raise LmscopeError(f"the tokenizer of {self.name} is not a fast tokenizer: scoring needs its "
                               "character offsets")
        self._model = model.to(self.device).eval()
        self._tok = tok
        self.context_length = self._context_length()
        self._split = self._find_head()
        fn = self._split[0] if self._split is not None else self._model
        self._cache_arg = "cache" if "cache" in inspect.signature(fn.forward).parameters else "past_key_values"
        eos = getattr(model.generation_config, "eos_token_id", None)
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if tok.eos_token_id is not None:
            eos.append(tok.eos_token_id)
        self._eos = set(eos)
        self._pad = pad_id_of(tok)

    @property
    def model(self):
        self._load()
        return self._model

    @property
    def tokenizer(self):
        self._load()
        return self._tok

    def _context_length(self) -> int | None:
        cfg = self._model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            v = getattr(cfg, attr, None)
            if isinstance(v, int) and v > 0:
                return v
        v = getattr(self._tok, "model_max_length", None)
        return int(v) if isinstance(v, int) and 0 < v < 10**8 else None

    def _find_head(self):
        """(body, head) when projecting the body's hidden states reproduces the model's logits, else None
        (checked on one short sequence of spread-out token ids)."""
        vocab = int(getattr(self._model.config, "vocab_size", 0) or 1)
        ids = (torch.arange(1, 9, device=self.device) * 7919 % vocab).unsqueeze(0)
        return find_body_head(self._model, {"input_ids": ids})

    def _forward(self, cache=None, **kw):
        """Hidden states to project (the body's, or the full logits when the shortcut does not apply)
        and the key/value cache. Newer transformers call the cache argument ``cache``, older ones
        ``past_key_values``."""
        if cache is not None:
            kw[self._cache_arg] = cache
        states, out = run_body(self._model, self._split, **kw)
        keys = out.keys()
        cache = out["cache"] if "cache" in keys else out["past_key_values"] if "past_key_values" in keys else None
        return states, cache

    def _project(self, hidden: torch.Tensor) -> torch.Tensor:
        return project(self._split, hidden)

    def _log_probs_at(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p(target) for each row of ``hidden`` (N, H), projected in chunks; float64 on the CPU."""
        return log_probs_at(self._split, hidden, targets, _HEAD_CHUNK)

    def close(self) -> None:
        self._model = None
        self._tok = None

    # ------------------------------------------------------------------ tokenization
    def _fallback_bos(self) -> int:
        tok = self._tok
        for t in (tok.bos_token_id, tok.eos_token_id):
            if t is not None:
                return int(t)
        raise LmscopeError(f"the tokenizer of {self.name} has no BOS or EOS token to start an empty prompt")

    def _encode_score(self, prompt: str, cont: str, where: str) -> tuple[list[int], int, list[str]]:
        """Token ids of prompt + continuation, the index of the first continuation token, its token texts."""
        text = prompt + cont
        enc = self._tok(text, add_special_tokens=True, return_offsets_mapping=True,
                        return_special_tokens_mask=True)
        ids, offs, special = enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
        b = len(prompt)
        mine = [i for i, ((s, e), sp) in enumerate(zip(offs, special)) if not sp and e > b and e > s]
        if not mine:  # nothing of the continuation survives tokenization (e.g. stripped whitespace)
            return [], 0, []
        first, last = mine[0], mine[-1]
        ids = list(ids[:last + 1])
        tokens = [text[offs[i][0]:offs[i][1]] for i in range(first, last + 1)]
        if first == 0:  # an empty prompt: the first token needs something to be predicted from
            ids = [self._fallback_bos()] + ids
            first = 1
        if self.context_length is not None and len(ids) > self.context_length:
            raise LmscopeError(f"{where}: prompt + continuation is {len(ids)} tokens, longer than the model's "
                               f"context of {self.context_length} tokens")
        return ids, first, tokens

    def _encode_prompt(self, prompt: Prompt, where: str) -> list[int]:
        tok = self._tok
        if isinstance(prompt, str):
            ids = list(tok(prompt, add_special_tokens=True)["input_ids"])
        elif getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            ids = list(tok(text, add_special_tokens=False)["input_ids"])
        else:
            ids = list(tok(chat_fallback(prompt), add_special_tokens=True)["input_ids"])
        if not ids:
            ids = [self._fallback_bos()]
        if self.context_length is not None and len(ids) >= self.context_length:
            raise LmscopeError(f"{where} is {len(ids)} tokens, which leaves no room in the model's context of "
                               f"{self.context_length} tokens")
        return ids

    def render(self, prompt: Prompt) -> str:
        """The text the model sees for a prompt (chat messages rendered with the template or the fallback)."""
        self._load()
        if isinstance(prompt, str):
            return prompt
        if getattr(self._tok, "chat_template", None):
            return self._tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        return chat_fallback(prompt)

    def chat_format(self) -> dict:
        import hashlib

        tok = self._tok if self._tok is not None else self.source.load_tokenizer()  # the tokenizer alone
        example = [{"role": "user", "content": CHAT_PLACEHOLDER}]
        template = getattr(tok, "chat_template", None)
        if not template:
            return {"applied_by": "fallback", "example": chat_fallback(example)}
        template = template if isinstance(template, str) else canonical_json(template)
        return {"applied_by": "tokenizer", "template_sha256": hashlib.sha256(template.encode()).hexdigest(),
                "example": tok.apply_chat_template(example, tokenize=False, add_generation_prompt=True)}

    # ------------------------------------------------------------------ scoring
    def score(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[ContinuationScore]]:
        requests = check_score_requests(requests)
        self._load()
        results: list[list[ContinuationScore | None]] = [[None] * len(c) for _, c in requests]
        units = []  # (request, [(k, ids, first, tokens), ...]) with at most batch_size continuations each
        for r, (prompt, conts) in enumerate(requests):
            items = []
            for k, c in enumerate(conts):
                ids, first, tokens = self._encode_score(prompt, c, f"request {r + 1}, continuation {k + 1}")
                if not ids:
                    results[r][k] = ContinuationScore(c, 0.0, [], [])
                else:
                    items.append((k, ids, first, tokens))
            for s in range(0, len(items), self.batch_size):
                unit = items[s:s + self.batch_size]
                if _shared_prefix(unit) == 0:  # no common first token (merges at the boundary): one by one
                    units.extend((r, [it]) for it in unit)
                else:
                    units.append((r, unit))
        # "auto": a unit of one continuation has nothing to share, so it goes flat (one pass, not two)
        shared = [u for u in units if self.strategy == "shared" or (self.strategy == "auto" and len(u[1]) > 1)]
        flat = [(r, [it]) for r, items in units if self.strategy == "flat" or (self.strategy == "auto" and
                                                                            len(items) == 1) for it in items]
        with torch.inference_mode():
            for batch in self._batches(shared, shared=True):
                self._score_shared(batch, requests, results)
            for batch in self._batches(flat, shared=False):
                self._score_flat(batch, requests, results)
        return results  # type: ignore[return-value]

    def _batches(self, units, shared: bool):
        """Pack units into batches within batch_size rows and max_batch_tokens padded tokens."""
        def size(unit):
            items = unit[1]
            p = _shared_prefix(items) if shared else 0
            return p, max(len(ids) - p for _, ids, _, _ in items), len(items)

        sized = sorted(((size(u), u) for u in units), key=lambda x: (x[0][0], x[0][1]))
        batch, rows, pmax, smax = [], 0, 0, 0
        for (p, s, n), u in sized:
            np_, ns, nr = max(pmax, p), max(smax, s), rows + n
            if batch and (nr > self.batch_size or nr * (np_ + ns) > self.max_batch_tokens):
                yield batch
                batch, rows, np_, ns, nr = [], 0, p, s, n
            batch.append(u)
            rows, pmax, smax = nr, np_, ns
        if batch:
            yield batch

    def _score_flat(self, batch, requests, results) -> None:
        seqs = [(r, it) for r, items in batch for it in items]
        ids, mask = pad_batch([seq for _, (_, seq, _, _) in seqs], self._pad)
        rows, pos, tgt = [], [], []
        for b, (_, (_, seq, first, _)) in enumerate(seqs):
            rows += [b] * (len(seq) - first)
            pos += list(range(first - 1, len(seq) - 1))
            tgt += seq[first:]
        hidden, _ = self._forward(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        sel = hidden[torch.tensor(rows, device=self.device), torch.tensor(pos, device=self.device)]
        lps = self._log_probs_at(sel, torch.tensor(tgt, device=self.device)).tolist()
        at = 0
        for r, (k, seq, first, tokens) in seqs:
            m = len(seq) - first
            self._put(results, requests, r, k, lps[at:at + m], tokens)
            at += m

    def _score_shared(self, batch, requests, results) -> None:
        """One forward over the batch's shared prefixes, one over every continuation row after them."""
        dev = self.device
        P = [_shared_prefix(items) for _, items in batch]
        pre, pmask = pad_batch([items[0][1][:P[u]] for u, (_, items) in enumerate(batch)], self._pad)
        pre, pmask = pre.to(dev), pmask.to(dev)
        hid_pre, cache = self._forward(input_ids=pre, attention_mask=pmask, use_cache=True)
        last = hid_pre[torch.arange(len(batch), device=dev), torch.tensor(P, device=dev) - 1]  # (U, H)

        seqs = [(u, it) for u, (_, items) in enumerate(batch) for it in items]
        suf, smask = pad_batch([seq[P[u]:] for u, (_, seq, _, _) in seqs], self._pad)
        smax = suf.shape[1]
        row_unit = torch.tensor([u for u, _ in seqs], device=dev)
        cache.batch_select_indices(row_unit)
        attn = torch.cat([pmask[row_unit], smask.to(dev)], dim=1)
        position_ids = torch.tensor(P, device=dev)[row_unit, None] + torch.arange(smax, device=dev)[None]
        hid_suf, _ = self._forward(input_ids=suf.to(dev), attention_mask=attn, position_ids=position_ids,
                                   cache=cache, use_cache=True)
        # the hidden state predicting token t is at t - 1: the prefix's last one, or a suffix position
        flat_suf = hid_suf.reshape(-1, hid_suf.shape[-1])
        src, tgt = [], []
        for b, (u, (_, seq, first, _)) in enumerate(seqs):
            for t in range(first, len(seq)):
                src.append(u if t - 1 == P[u] - 1 else len(batch) + b * smax + (t - 1 - P[u]))
                tgt.append(seq[t])
        pool = torch.cat([last, flat_suf], dim=0)
        lps = self._log_probs_at(pool[torch.tensor(src, device=dev)], torch.tensor(tgt, device=dev)).tolist()
        at = 0
        for u, (k, seq, first, tokens) in seqs:
            m = len(seq) - first
            self._put(results, requests, batch[u][0], k, lps[at:at + m], tokens)
            at += m

    @staticmethod
    def _put(results, requests, r, k, lps, tokens) -> None:
        results[r][k] = ContinuationScore(requests[r][1][k], float(sum(lps)), [float(x) for x in lps], list(tokens))

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, stop: Sequence[str] | None = None,
                 seed: int = 0) -> list[list[str]]:
        prompts, stop = check_generate_args(prompts, max_tokens, temperature, top_p, n, stop, seed)
        context = _config_context_length(self.source.config)
        if context is not None and max_tokens > context:  # refused before the model loads
            raise LmscopeError(f"max_tokens must be an integer >= 1 and <= {context:,} (the context length of "
                               f"{self.name}), got {max_tokens}")
        self._load()
        encoded = [self._encode_prompt(p, f"prompt {i + 1}") for i, p in enumerate(prompts)]
        greedy = temperature == 0
        # rows: (prompt index, sample index); greedy decoding gives one row per prompt, copied n times
        rows = [(i, j) for i in range(len(prompts)) for j in range(1 if greedy else n)]
        rows.sort(key=lambda row: len(encoded[row[0]]))
        texts: dict[tuple[int, int], str] = {}
        with torch.inference_mode():
            for s in range(0, len(rows), self.batch_size):
                chunk = rows[s:s + self.batch_size]
                gens = [None if greedy else torch.Generator().manual_seed(_sample_seed(seed, prompts[i], j))
                        for i, j in chunk]
                outs = self._decode([encoded[i] for i, _ in chunk], gens, max_tokens, float(temperature),
                                    float(top_p), stop)
                texts.update(zip(chunk, outs))
        return [[texts[(i, 0 if greedy else j)] for j in range(n)] for i in range(len(prompts))]

    def _decode(self, prompts: list[list[int]], gens, max_tokens, temperature, top_p, stop) -> list[str]:
        """Decode a batch of left-padded prompts step by step with one key/value cache."""
        dev = self.device
        B = len(prompts)
        L = max(len(p) for p in prompts)
        ids = torch.full((B, L), self._pad, dtype=torch.long)
        mask = torch.zeros((B, L), dtype=torch.long)
        for b, p in enumerate(prompts):
            ids[b, L - len(p):] = torch.tensor(p)
            mask[b, L - len(p):] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        limit = [max_tokens if self.context_length is None else min(max_tokens, self.context_length - len(p))
                 for p in prompts]
        hidden, cache = self._forward(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        logits = self._project(hidden[:, -1])
        out_ids: list[list[int]] = [[] for _ in range(B)]
        texts = [""] * B
        live = list(range(B))  # original row of each row still in the batch
        pos = pos[:, -1:]
        while live:
            nxt = self._choose(logits, [gens[b] for b in live], temperature, top_p)
            keep = []
            for i, b in enumerate(live):
                t = int(nxt[i])
                done = t in self._eos
                if not done:
                    out_ids[b].append(t)
                    text = self._tok.decode(out_ids[b], skip_special_tokens=True)
                    cut = min((c for c in (text.find(s) for s in stop) if c >= 0), default=-1)
                    if cut >= 0:
                        text, done = text[:cut], True
                    texts[b] = text
                    done = done or len(out_ids[b]) >= limit[b]
                if not done:
                    keep.append(i)
            if len(keep) < len(live):
                if not keep:
                    break
                idx = torch.tensor(keep, device=dev)
                cache.batch_select_indices(idx)
                mask, pos, nxt = mask[idx], pos[idx], nxt[idx]
                live = [live[i] for i in keep]
            mask = torch.cat([mask, torch.ones((len(live), 1), dtype=mask.dtype, device=dev)], dim=1)
            pos = pos + 1
            hidden, cache = self._forward(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos,
                                          cache=cache, use_cache=True)
            logits = self._project(hidden[:, -1])
        return texts

    @staticmethod
    def _choose(logits: torch.Tensor, gens, temperature: float, top_p: float) -> torch.Tensor:
        if temperature == 0:
            return logits.argmax(-1)
        probs = F.softmax(logits.float() / temperature, dim=-1)
        if top_p < 1:
            sp, si = probs.sort(dim=-1, descending=True)
            drop = (sp.cumsum(-1) - sp) >= top_p  # keep the smallest head of the sorted tokens reaching top_p
            sp = sp.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, si, sp)
        probs = probs.cpu()
        return torch.stack([torch.multinomial(probs[i], 1, generator=g)[0] for i, g in enumerate(gens)]).to(logits.device)


def _shared_prefix(items) -> int:
    """Tokens every continuation of a unit shares before its first scored token (0 when none)."""
    seqs = [ids for _, ids, _, _ in items]
    p = min(first for _, _, first, _ in items)
    ref = seqs[0]
    for s in seqs[1:]:
        i = 0
        while i < p and s[i] == ref[i]:
            i += 1
        p = i
    return p
