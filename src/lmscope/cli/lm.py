"""Language models as components: `lmscope lm generate|score|cache`, and the --lm options every
LM-using command shares (:func:`add_lm_arguments`, :func:`lm_from_args`)."""

from __future__ import annotations

from pathlib import Path

from lmscope.cli._numbers import (
    integer,
    non_negative_number,
    positive_int,
    positive_number,
    probability,
    seed,
)
from lmscope.cli._output import emit, logger
from lmscope.errors import LmscopeError
from lmscope.lm.base import MAX_COMPLETIONS, MAX_GENERATE_TOKENS


def add_lm_arguments(parser) -> None:
    """Add --lm SPEC, --offline, --no-cache, --lm-cache, --lm-device, --lm-timeout, --lm-concurrency, --api-key."""
    from lmscope.lm import DEFAULT_LM

    g = parser.add_argument_group("language model")
    g.add_argument("--lm", default=DEFAULT_LM, metavar="SPEC",
                   help=f"local:NAME_OR_PATH (a bundled name, a Hugging Face causal-LM directory or a .gguf) or an "
                        f"OpenAI-compatible server http(s)://HOST[:PORT]/v1[#MODEL] (default {DEFAULT_LM})")
    g.add_argument("--offline", action="store_true", help="answer from the LM cache only; a miss is an error")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the LM cache")
    g.add_argument("--lm-cache", metavar="PATH", help="the LM cache file (default: lm/lm.sqlite in the lmscope cache)")
    g.add_argument("--lm-device", default="auto", help="local models: auto (a GPU when there is one), cpu, cuda, cuda:N")
    g.add_argument("--lm-timeout", type=positive_number, metavar="SECONDS", help="HTTP servers: seconds to wait for a reply")
    g.add_argument("--lm-concurrency", type=positive_int, metavar="N", help="HTTP servers: requests in flight at once")
    g.add_argument("--api-key", help="HTTP servers: the API key")


def lm_from_args(args):
    """The LanguageModel that the options of :func:`add_lm_arguments` describe (cached unless --no-cache)."""
    from lmscope.lm import open_lm

    spec = args.lm
    options = {}
    if spec.startswith(("http://", "https://")):
        if args.lm_timeout is not None and not args.lm_timeout > 0:
            raise LmscopeError(f"--lm-timeout must be positive, got {args.lm_timeout}")
        if args.lm_concurrency is not None and args.lm_concurrency < 1:
            raise LmscopeError(f"--lm-concurrency must be at least 1, got {args.lm_concurrency}")
        for opt, key in (("lm_timeout", "timeout"), ("lm_concurrency", "concurrency"), ("api_key", "api_key")):
            if getattr(args, opt, None) is not None:
                options[key] = getattr(args, opt)
    else:
        options["device"] = args.lm_device
    if args.offline and args.no_cache:
        raise LmscopeError("--offline answers from the LM cache, so it cannot be used with --no-cache")
    if args.lm_cache and not args.no_cache:  # the cache file is written: the output policy applies to it
        from lmscope.cli._output import command_inputs
        from lmscope.outputs import check_output

        own = Path(args.lm_cache).expanduser()
        check_output(own, [p for p in command_inputs(args) if p != own], kind="file", what="--lm-cache",
                     cache_is_input=False)
    return open_lm(spec, cache=False if args.no_cache else (args.lm_cache or True), offline=args.offline, **options)


def cache_stats(lm) -> dict | None:
    stats = getattr(lm, "stats", None)
    return None if stats is None else {**stats.to_dict(), "path": str(lm.path)}


def log_cache(args, lm) -> None:
    """A status line with the LM cache's hits and misses of this command."""
    stats = cache_stats(lm)
    if stats is not None:
        logger(args)(f"LM cache: {stats['hits']} hits, {stats['misses']} computed ({stats['path']})")


def _generate_prompts(args) -> list:
    from lmscope._io import read_jsonl_numbered
    from lmscope.lm.base import check_prompt

    def as_chat(text):
        return [{"role": "user", "content": text}] if args.chat else text

    prompts = [as_chat(p) for p in args.prompts]
    if args.file:
        path = Path(args.file)
        if path.suffix == ".jsonl":
            for lineno, row in read_jsonl_numbered(path):
                if "messages" in row:
                    prompts.append(check_prompt(row["messages"], f"{path}:{lineno}"))
                elif isinstance(row.get("prompt"), str):
                    prompts.append(as_chat(row["prompt"]))
                else:
                    raise LmscopeError(f"{path}:{lineno}: expected {{\"prompt\": text}} or {{\"messages\": [...]}}")
        else:
            from lmscope._io import read_lines_numbered

            lines = [ln for _, ln in read_lines_numbered(path) if ln.strip()]
            if not lines:
                raise LmscopeError(f"{path}: the file holds no prompts")
            prompts += [as_chat(ln) for ln in lines]
    if not prompts:
        raise LmscopeError("give a prompt, or --file with prompts (JSONL or one per line)")
    return prompts


def _prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


# default --max-tokens: a plain completion is cut short; a chat answer ends at the model's end of turn,
# so it gets room for a whole answer (e.g. a function with its docstring)
MAX_TOKENS, CHAT_MAX_TOKENS = 64, 512


def _chat_line(fmt: dict) -> str:
    """A status line saying which chat template the messages went through."""
    if fmt["applied_by"] == "server":
        return "chat: messages sent as they are; the server applies its chat template"
    what = ("the model's chat template" if fmt["applied_by"] == "tokenizer"
            else "lmscope's Role: content transcript (the tokenizer has no chat template)")
    return f"chat: {what}; one user message is sent as {fmt['example']!r}"


def cmd_lm_generate(args) -> None:
    prompts = _generate_prompts(args)
    max_tokens = args.max_tokens
    if max_tokens is None:
        max_tokens = CHAT_MAX_TOKENS if any(not isinstance(p, str) for p in prompts) else MAX_TOKENS
    lm = lm_from_args(args)
    try:
        out = lm.generate(prompts, max_tokens=max_tokens, temperature=args.temperature, top_p=args.top_p,
                          n=args.n, stop=args.stop, seed=args.seed)
        log_cache(args, lm)
        payload = {"lm": lm.spec, "results": [{"prompt": p, "completions": c} for p, c in zip(prompts, out)],
                   "cache": cache_stats(lm)}
        if any(not isinstance(p, str) for p in prompts):
            payload["chat_format"] = fmt = lm.chat_format()
            logger(args)(_chat_line(fmt))
    finally:
        lm.close()
    if len(prompts) == 1 and args.n == 1:
        lines = [out[0][0]]
    else:
        lines = []
        for i, (p, comps) in enumerate(zip(prompts, out)):
            lines.append(f"=== prompt {i + 1}: {_prompt_text(p)}")
            for j, c in enumerate(comps):
                if args.n > 1:
                    lines.append(f"--- sample {j + 1}")
                lines.append(c)
    emit(args, payload, lines)


def _score_requests(args) -> list[tuple[str, list[str]]]:
    from lmscope._io import read_jsonl_numbered

    if args.file:
        if args.prompt is not None or args.continuation:
            raise LmscopeError("give either PROMPT with --continuation, or --file, not both")
        reqs = []
        for lineno, row in read_jsonl_numbered(args.file):
            conts = row.get("continuations")
            if not isinstance(row.get("prompt"), str) or not isinstance(conts, list):
                raise LmscopeError(f"{args.file}:{lineno}: expected {{\"prompt\": text, \"continuations\": [text, ...]}}")
            if not conts:
                raise LmscopeError(f"{args.file}:{lineno}: the list of continuations is empty")
            if not all(isinstance(c, str) for c in conts):
                raise LmscopeError(f"{args.file}:{lineno}: every continuation must be a string")
            reqs.append((row["prompt"], conts))
        return reqs
    if args.prompt is None:
        raise LmscopeError("give a PROMPT with --continuation, or --file with {prompt, continuations} rows")
    if not args.continuation:
        raise LmscopeError("give at least one --continuation to score after the prompt")
    return [(args.prompt, list(args.continuation))]


def cmd_lm_score(args) -> None:
    import math

    reqs = _score_requests(args)
    lm = lm_from_args(args)
    try:
        out = lm.score(reqs)
        log_cache(args, lm)
        cache = cache_stats(lm)
        spec = lm.spec
    finally:
        lm.close()
    results, lines = [], []
    for i, ((prompt, _), scores) in enumerate(zip(reqs, out)):
        top = max(s.logprob for s in scores)
        z = top + math.log(sum(math.exp(s.logprob - top) for s in scores))
        rows = [{**s.to_dict(), "p_among": math.exp(s.logprob - z)} for s in scores]
        results.append({"prompt": prompt, "scores": rows})
        if len(reqs) > 1:
            lines.append(f"=== prompt {i + 1}: {prompt}")
        lines.append(f"{'logprob':>10s}  {'tokens':>6s}  {'p_among':>7s}  continuation")
        lines += [f"{r['logprob']:10.4f}  {len(r['tokens']):6d}  {r['p_among']:7.4f}  {r['text']!r}" for r in rows]
    emit(args, {"lm": spec, "results": results, "cache": cache}, lines)


def cmd_lm_cache(args) -> None:
    import datetime as dt

    from lmscope.lm import cache_info, clear_cache, prune_cache

    path = args.lm_cache
    if args.action == "clear":
        if args.model or args.older_than is not None:
            raise LmscopeError("clear removes the whole LM cache; use prune with --model or --older-than")
        res = clear_cache(path)
        msg = f"removed {res['path']} ({res['bytes'] / 1e6:.1f} MB)" if res["removed"] else f"no LM cache at {res['path']}"
        emit(args, res, [msg])
        return
    if args.action == "prune":
        res = prune_cache(path, model=args.model, older_than_days=args.older_than)
        emit(args, res, [f"deleted {res['deleted']} entries from {res['path']} "
                         f"({res['bytes_before'] / 1e6:.1f} MB -> {res['bytes_after'] / 1e6:.1f} MB)"])
        return
    if args.model or args.older_than is not None:
        raise LmscopeError("--model and --older-than go with prune")
    res = cache_info(path)

    def day(t):
        return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")

    lines = [f"LM cache: {res['path']}" + ("" if res["exists"] else " (not created yet)"),
             f"  {res['entries']} entries, {res['bytes'] / 1e6:.1f} MB"]
    lines += [f"  {r['model']}  {r['kind']}: {r['entries']} entries ({day(r['oldest'])} .. {day(r['newest'])})"
              for r in res["models"]]
    emit(args, res, lines)


def add_lm(sub, common) -> None:
    lm = sub.add_parser("lm", help="language models as components: generate, score, and the LM cache",
                        description="Generate text and score continuations with a local model or an "
                                    "OpenAI-compatible server; results are kept in a persistent cache, so "
                                    "reruns are free and --offline runs need no model.")
    lmsub = lm.add_subparsers(dest="lm_command", metavar="ACTION", required=True)
    lg = lmsub.add_parser("generate", parents=[common], help="complete prompts (plain text or chat)",
                          description="One or more completions per prompt. Temperature 0 is greedy; otherwise "
                                      "tokens are sampled (temperature, top-p) reproducibly from --seed.")
    lg.add_argument("prompts", nargs="*", metavar="PROMPT", help="prompt text (several allowed)")
    lg.add_argument("--file", help="prompts: JSONL rows {\"prompt\"} or {\"messages\": [{\"role\", \"content\"}]}, "
                                   "or a text file with one prompt per line")
    lg.add_argument("--chat", action="store_true", help="send each text prompt as a user chat message (the "
                                                         "model's chat template)")
    lg.add_argument("--max-tokens", type=integer(1, MAX_GENERATE_TOKENS),
                    help=f"tokens generated at most (default {MAX_TOKENS}; "
                    f"{CHAT_MAX_TOKENS} for chat prompts, which end at the model's end of turn)")
    lg.add_argument("--temperature", type=non_negative_number, default=0.0, help="0 (default) is greedy")
    lg.add_argument("--top-p", type=probability, default=1.0, help="nucleus sampling mass (default 1: off)")
    lg.add_argument("--n", type=integer(1, MAX_COMPLETIONS), default=1,
                    help=f"completions per prompt (default 1, at most {MAX_COMPLETIONS})")
    lg.add_argument("--stop", action="append", metavar="TEXT", help="stop at this text, not included (repeatable)")
    lg.add_argument("--seed", type=seed, default=0, help="seed of the sampling (default 0)")
    add_lm_arguments(lg)
    lg.set_defaults(func=cmd_lm_generate)
    lsc = lmsub.add_parser("score", parents=[common], help="log-probabilities of continuations after a prompt",
                           description="The natural-log probability of each continuation after the prompt (summed "
                                       "over its tokens; tokens straddling the boundary count to the continuation), "
                                       "and its probability among the given continuations (p_among).")
    lsc.add_argument("prompt", nargs="?", metavar="PROMPT")
    lsc.add_argument("--continuation", action="append", metavar="TEXT",
                     help="a continuation to score (repeatable; mind the leading space: \" Paris\")")
    lsc.add_argument("--file", help="JSONL rows {\"prompt\": text, \"continuations\": [text, ...]}")
    add_lm_arguments(lsc)
    lsc.set_defaults(func=cmd_lm_score)
    lc = lmsub.add_parser("cache", parents=[common], help="inspect, prune or clear the LM cache",
                          description="info: entries by model and kind, size on disk. prune: delete the entries "
                                      "of a model (--model SPEC; glob patterns allowed) and/or older than "
                                      "--older-than DAYS. clear: delete the cache file (also a damaged one).")
    lc.add_argument("action", choices=["info", "prune", "clear"], nargs="?", default="info")
    lc.add_argument("--model", help="prune: the model's spec as info lists it, e.g. local:smollm2-135m or 'http*'")
    lc.add_argument("--older-than", type=non_negative_number, metavar="DAYS", help="prune: entries older than this many days")
    lc.add_argument("--lm-cache", metavar="PATH", help="the LM cache file (default: lm/lm.sqlite in the lmscope cache)")
    lc.set_defaults(func=cmd_lm_cache)


COMMANDS = {"lm": add_lm}
