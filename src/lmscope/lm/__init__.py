"""Language models as components: backends behind one interface, and a persistent cache.

>>> from lmscope.lm import open_lm
>>> lm = open_lm()                                   # local:smollm2-135m, cached on disk
>>> lm.score([("The capital of France is", [" Paris", " banana"])])[0][0].logprob
>>> lm.generate(["Write a haiku about rain."], max_tokens=40, temperature=0.7, n=2, seed=1)

Specs: ``local:NAME_OR_PATH`` (a bundled name such as ``smollm2-135m``, a Hugging Face causal-LM
directory or a GGUF file; a bare bundled name or existing path means the same), or an
OpenAI-compatible server ``http://HOST:PORT/v1`` / ``https://...`` with an optional ``#MODEL``.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from lmscope.errors import LmscopeError
from lmscope.lm.base import ContinuationScore, LanguageModel
from lmscope.lm.cache import CachedLM, CacheStats, cache_info, clear_cache, default_cache_path, prune_cache

DEFAULT_LM = "local:smollm2-135m"


def _local_name(spec: str) -> str | None:
    """The model of a local spec (``local:X``, or a bare bundled name / existing path), else None."""
    if spec.startswith("local:"):
        return spec[len("local:"):] or DEFAULT_LM[len("local:"):]
    from lmscope.models import BUNDLED

    if spec in BUNDLED or (spec and "://" not in spec and Path(spec).expanduser().exists()):
        return spec
    return None


def open_backend(spec: str | None = None, **options) -> LanguageModel:
    """The backend named by ``spec``, without the cache (see :func:`open_lm`)."""
    spec = DEFAULT_LM if spec is None else str(spec).strip()
    if spec.startswith(("http://", "https://")):
        base_url, _, model = spec.partition("#")
        try:
            from lmscope.lm.http import HTTPLM
        except ModuleNotFoundError as e:
            if e.name == "lmscope.lm.http":
                raise LmscopeError("the HTTP backend (lmscope.lm.http) is not available in this installation") from None
            raise
        return HTTPLM(base_url, model or None, **options)
    name = _local_name(spec)
    if name is None:
        raise LmscopeError(f"unknown LM spec {spec!r}: use local:NAME_OR_PATH (e.g. {DEFAULT_LM}) or "
                           "http(s)://HOST[:PORT]/v1[#MODEL]")
    from lmscope.lm.local import LocalLM

    allowed = [p for p in inspect.signature(LocalLM.__init__).parameters if p not in ("self", "model")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise LmscopeError(f"the local backend has no option {', '.join(unknown)} (options: {', '.join(allowed)})")
    return LocalLM(name, **options)


def open_lm(spec: str | None = None, *, cache: bool | str | os.PathLike = True, offline: bool = False,
            **options) -> LanguageModel:
    """Open a language model by spec, wrapped in the persistent cache.

    ``spec``: None (``local:smollm2-135m``), ``local:NAME_OR_PATH``, or ``http(s)://...[#MODEL]``
    (an OpenAI-compatible server). ``cache``: True (the default file in the lmscope cache
    directory), a path to another cache file, or False (no cache). ``offline``: answer from the cache
    only; a miss raises LmscopeError (needs the cache). ``options`` go to the backend: for local
    models ``device``, ``dtype``, ``batch_size``, ``max_batch_tokens``, ``strategy``; for HTTP
    servers those of :class:`lmscope.lm.http.HTTPLM` (e.g. ``timeout``, ``concurrency``, ``api_key``).
    The model itself loads on first use, so a run answered from the cache never loads it.
    """
    if cache is None or cache is False:
        if offline:
            raise LmscopeError("offline mode answers from the LM cache, so it cannot be used without the cache")
        return open_backend(spec, **options)
    backend = open_backend(spec, **options)
    try:
        return CachedLM(backend, None if cache is True else Path(cache), offline=offline)
    except BaseException:
        backend.close()
        raise


def __getattr__(name: str):
    if name == "LocalLM":  # imported on demand: it pulls in torch and transformers
        from lmscope.lm.local import LocalLM

        return LocalLM
    raise AttributeError(f"module 'lmscope.lm' has no attribute {name!r}")


__all__ = [
    "DEFAULT_LM", "CacheStats", "CachedLM", "ContinuationScore", "LanguageModel", "LocalLM", "cache_info",
    "clear_cache", "default_cache_path", "open_backend", "open_lm", "prune_cache",
]
