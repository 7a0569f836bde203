"""A language-model backend for any OpenAI-compatible HTTP server (vLLM, llama.cpp, Ollama, hosted APIs).

>>> from lmscope.lm.http import HTTPLM
>>> lm = HTTPLM("http://127.0.0.1:8080/v1")            # the server's only model
>>> lm.generate(["The capital of France is"], max_tokens=8)
>>> lm.score([("The capital of France is", [" Paris", " banana"])])

Endpoints used: ``/chat/completions`` for prompts given as chat messages, ``/completions`` for plain
prompts and for scoring, ``/models`` when no model is named. Only the standard library is used.

Configuration: the base URL, model and API key come from the arguments, else from the environment
(``LMSCOPE_LM_BASE_URL``, ``LMSCOPE_LM_MODEL``, ``LMSCOPE_LM_API_KEY`` then ``OPENAI_API_KEY``).

Failures:

- HTTP 429 and 5xx replies, dropped connections and read timeouts are retried ``retries`` times
  with exponential backoff (``backoff * 2**attempt`` seconds, or the server's ``Retry-After`` when
  that is longer, at most 60 s);
- a server that cannot be reached at all (connection refused, unknown host, connect timeout)
  fails at once with an :class:`LmscopeError` naming the URL;
- other 4xx replies fail at once with the server's own message; a reply that is not JSON or lacks
  a field the API defines fails with a message naming the URL and the field.

Scoring (``score``) sends prompt + continuation as one text to ``/completions`` with
``echo=true``, ``logprobs=1`` and ``max_tokens=1``, and reads ``choices[0].logprobs``
(``tokens``, ``token_logprobs``, ``text_offset``). A token belongs to the continuation when it
ends after the prompt, i.e. its character offset is >= ``len(prompt)`` or it straddles the
boundary; the one generated token (offset >= the length of the whole text) is dropped. Chat
endpoints return no prompt log-probabilities, so scoring needs a completions endpoint.

Before its first score, an instance checks once that the server's echoed log-probabilities agree
with its generation log-probabilities: it generates one greedy token after a fixed prompt (no
echo), then echoes prompt + that token, and compares the two log-probabilities of the token
(within ``ECHO_TOLERANCE`` nats). A server that fails the check is refused with an error rather
than trusted to give wrong scores; ``check_echo=False`` skips the check.

What the llama.cpp server of llama-cpp-python 0.3.36 (``python -m llama_cpp.server``) returns,
checked by hand with the bundled SmolLM2-135M-Instruct GGUF:

- ``/completions`` with ``echo=true, logprobs=k``: ``choices[0].logprobs`` has ``tokens``,
  ``text_offset``, ``token_logprobs`` and ``top_logprobs`` for the prompt's tokens followed by the
  generated ones; ``text`` is prompt + generated text. The first entry's log-probability and top
  list are ``null``. ``text_offset`` counts characters (not bytes) from the start of the prompt.
- The echoed log-probabilities are shifted by one token for models whose tokenizer adds no
  beginning-of-sequence token (SmolLM2's GGUF says ``tokenizer.ggml.add_bos_token = false``):
  entry i reports the probability of token i given the text up to and including token i (its
  ``top_logprobs`` is the distribution of the next token), and the last token is missing. After
  "The capital of France is", " Paris" is reported as -8.45 while generating it reports -0.264.
  (Its source pairs logits row i with echoed token i, which lines up only when the prompt began
  with a BOS token that it then leaves out.)
  Started with ``--kv_overrides tokenizer.ggml.add_bos_token=bool:true`` the server prepends BOS
  (``<|im_start|>`` here, which then conditions every prompt) and the echoed values equal the
  generated ones to the last digit. Without echo, generation log-probabilities are right either
  way. The check above catches the shift.
- Echoed scoring is slow there: for every prompt token its completion code sorts the whole
  vocabulary in Python to build ``top_logprobs`` (whatever ``logprobs`` asks for), tens of seconds
  per 500-token prompt on 2 CPU cores. Nothing a client sends avoids it; the local backend, or a
  server that computes prompt log-probabilities natively (vLLM), scores the same requests quickly.
- ``max_tokens=0`` is accepted but means "no limit" (it generates until the context is full), so
  scoring asks for one token and drops it.
- ``n`` is ignored (one choice comes back), so further samples are requested one at a time with
  seeds ``seed + 1``, ``seed + 2``, ... so that they differ.
- ``/chat/completions`` accepts ``logprobs=true, top_logprobs=k`` and returns OpenAI-style
  ``logprobs.content[]`` for the generated tokens only; ``echo`` there is ignored.
- ``/models`` lists one model whose id is the path of the served file (or ``--model_alias``);
  the ``model`` field of requests is not checked.
- Invalid parameters (``top_p=7``, ``max_tokens=-3``) are answered with HTTP 500 and a validation
  message, so they are retried before the message is reported.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from lmscope.errors import LmscopeError
from lmscope.lm.base import ContinuationScore, LanguageModel
from lmscope.progress import progress

ENV_BASE_URL = "LMSCOPE_LM_BASE_URL"
ENV_MODEL = "LMSCOPE_LM_MODEL"
ENV_API_KEY = "LMSCOPE_LM_API_KEY"
MAX_RETRY_AFTER = 60.0
ECHO_PROBE = "The capital of France is"
ECHO_TOLERANCE = 0.3  # nats; the shifted llama.cpp values above differ by about 8

# Errors meaning a request was cut off after the server was reached; worth trying again.
_DROPPED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.RemoteDisconnected,
            http.client.IncompleteRead, TimeoutError)


class _Unreachable(Exception):
    """The server could not be reached (connection refused, unknown host, connect timeout)."""


class _Retryable(Exception):
    """A reply or failure worth another attempt; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _server_message(body: bytes) -> str:
    """The error message in a reply body (OpenAI, FastAPI or plain-text style)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return text[:500] or "(empty reply)"
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj.get("message")))
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:500]
        if isinstance(err, list):  # FastAPI validation errors: [{"loc": [...], "msg": ...}, ...]
            parts = [f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" if isinstance(e, dict) else str(e)
                     for e in err]
            return "; ".join(parts)[:500]
        if err is not None:
            return str(err)[:500]
    return text[:500]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the computed backoff is used instead


class HTTPLM(LanguageModel):
    """An OpenAI-compatible server as a :class:`LanguageModel`.

    ``base_url`` ends with the API prefix, e.g. ``http://127.0.0.1:8080/v1``; a spec of the form
    ``http://host:port/v1#model`` names the model too. ``timeout`` is (connect, read) in seconds, or
    one number for both (the connect timeout then at most 10 s).
    Batches run at most ``concurrency`` requests at once. ``check_echo`` verifies once, before
    the first score, that the server's echoed log-probabilities can be trusted (see the module notes).
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, *, api_key: str | None = None,
                 timeout: float | tuple[float, float] = (10.0, 120.0), retries: int = 4, backoff: float = 0.5,
                 concurrency: int = 4, check_echo: bool = True):
        base_url = base_url or os.environ.get(ENV_BASE_URL)
        if not base_url:
            raise LmscopeError(f"no server URL: give one such as http://127.0.0.1:8080/v1 or set {ENV_BASE_URL}")
        if "#" in base_url:
            base_url, _, named = base_url.partition("#")
            model = model or named or None
        self.base_url = base_url.rstrip("/")
        try:
            parts = urllib.parse.urlsplit(self.base_url)
        except ValueError as e:  # e.g. an unclosed [IPv6 address
            raise LmscopeError(f"bad server URL {base_url!r}: {e}; expected http(s)://host[:port]/path") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in self.base_url):
            raise LmscopeError(f"bad server URL {base_url!r}: expected http(s)://host[:port]/path")
        try:
            port = parts.port
        except ValueError:
            raise LmscopeError(f"bad port in server URL {base_url!r}") from None
        self._scheme, self._host, self._port, self._prefix = parts.scheme, parts.hostname, port, parts.path
        self._model = model or os.environ.get(ENV_MODEL) or None
        self._api_key = api_key or os.environ.get(ENV_API_KEY) or os.environ.get("OPENAI_API_KEY") or None
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
            timeout = (min(10.0, float(timeout)), float(timeout))
        try:
            self.connect_timeout, self.read_timeout = (float(t) for t in timeout)
        except (TypeError, ValueError):
            raise LmscopeError(f"timeout must be seconds or (connect seconds, read seconds), got {timeout!r}") from None
        if not (self.connect_timeout > 0 and self.read_timeout > 0):
            raise LmscopeError(f"timeouts must be positive, got {timeout!r}")
        if retries < 0 or backoff < 0 or concurrency < 1:
            raise LmscopeError("retries and backoff must be >= 0 and concurrency >= 1, "
                               f"got {retries}, {backoff}, {concurrency}")
        self.retries, self.backoff, self.concurrency = int(retries), float(backoff), int(concurrency)
        self._local = threading.local()  # one keep-alive connection per thread
        self._conns: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()  # guards the pool and the set of connections
        self._model_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._sleep: Callable[[float], None] = time.sleep
        self._echo_lock = threading.Lock()
        self._echo_problem: str | None = None if check_echo else ""  # None: not checked yet; "": fine

    # -------------------------------------------------------------------------------------------
    # Identity
    # -------------------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        """The model named in requests; asked of ``/models`` on first use when none was given."""
        with self._model_lock:
            if self._model is None:
                self._model = self._only_model()
            return self._model

    @property
    def spec(self) -> str:
        return f"{self.base_url}#{self.model}"

    def identity(self) -> dict:
        return {"backend": "http", "base_url": self.base_url, "model": self.model}

    def _only_model(self) -> str:
        reply = self._request("GET", "/models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list) or not all(isinstance(m, dict) and "id" in m for m in data):
            raise LmscopeError(f"{self._url('/models')}: the reply lacks the list data[].id of models")
        ids = [str(m["id"]) for m in data]
        if len(ids) != 1:
            listed = ", ".join(ids) if ids else "none"
            raise LmscopeError(f"{self._url('/models')} lists {len(ids)} models ({listed}): name one as "
                               f"{self.base_url}#MODEL or with {ENV_MODEL}")
        return ids[0]

    # -------------------------------------------------------------------------------------------
    # Generation
    # -------------------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str | list[dict]], *, max_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, stop: Sequence[str] | None = None,
                 seed: int = 0) -> list[list[str]]:
        if n < 1:
            raise LmscopeError(f"n must be >= 1, got {n}")
        if isinstance(stop, str):
            stop = [stop]
        params = {"max_tokens": int(max_tokens), "temperature": float(temperature), "top_p": float(top_p)}
        if stop:
            params["stop"] = list(stop)
        prompts = list(prompts)
        for p in prompts:
            if not isinstance(p, str) and not (isinstance(p, list) and all(isinstance(m, dict) for m in p)):
                raise LmscopeError(f"a prompt is a string or a list of chat messages (dicts), got {type(p).__name__}")
        _ = self.model  # asked of the server once, before the batch
        return self._map(lambda p: self._generate_one(p, params, n, int(seed)), prompts, "generate")

    def _generate_one(self, prompt: str | list[dict], params: dict, n: int, seed: int) -> list[str]:
        texts = self._complete(prompt, {**params, "n": n, "seed": seed})
        # Servers that ignore n (llama.cpp) return one choice: ask for the rest one at a time, each
        # with its own seed so that the samples differ.
        extra = 1
        while len(texts) < n:
            texts += self._complete(prompt, {**params, "n": 1, "seed": seed + extra})[:1]
            extra += 1
        return texts[:n]

    def _complete(self, prompt: str | list[dict], params: dict) -> list[str]:
        chat = not isinstance(prompt, str)
        path = "/chat/completions" if chat else "/completions"
        body = {"model": self.model, ("messages" if chat else "prompt"): prompt, **params}
        reply = self._request("POST", path, body)
        choices = self._choices(reply, path)
        texts = []
        for i, c in enumerate(sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)):
            if chat:
                msg = c.get("message") if isinstance(c, dict) else None
                text = msg.get("content") if isinstance(msg, dict) else None
                if text is None and isinstance(msg, dict) and "content" in msg:
                    text = ""  # a message with no text (e.g. only a refusal or a tool call)
            else:
                text = c.get("text") if isinstance(c, dict) else None
            if not isinstance(text, str):
                field = "message.content" if chat else "text"
                raise LmscopeError(f"{self._url(path)}: the reply lacks choices[{i}].{field}")
            texts.append(text)
        return texts

    def _choices(self, reply, path: str) -> list:
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not isinstance(choices, list) or not choices:
            raise LmscopeError(f"{self._url(path)}: the reply lacks the list 'choices'")
        return choices

    # -------------------------------------------------------------------------------------------
    # Scoring
    # -------------------------------------------------------------------------------------------
    def score(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[ContinuationScore]]:
        flat: list[tuple[str, str]] = []
        sizes = []
        for req in requests:
            try:
                prompt, conts = req
            except (TypeError, ValueError):
                raise LmscopeError("score takes (prompt, [continuations]) pairs") from None
            if isinstance(conts, str):
                raise LmscopeError("score takes (prompt, [continuations]) pairs: the continuations "
                                   f"must be a list, got the string {conts!r}")
            if not isinstance(prompt, str) or not all(isinstance(c, str) for c in conts):
                raise LmscopeError("score takes text prompts and continuations (chat messages cannot be scored)")
            flat += [(prompt, c) for c in conts]
            sizes.append(len(conts))
        if any(c for _, c in flat):
            _ = self.model  # asked of the server once, before the batch
            self._check_echo()
        scores = self._map(lambda pc: self._score_one(*pc), flat, "score")
        out, i = [], 0
        for k in sizes:
            out.append(scores[i:i + k])
            i += k
        return out

    def _check_echo(self) -> None:
        """Refuse a server whose echoed log-probabilities disagree with its generation log-probabilities."""
        with self._echo_lock:
            if self._echo_problem is None:
                self._echo_problem = self._echo_disagreement() or ""
        if self._echo_problem:
            raise LmscopeError(self._echo_problem)

    def _echo_disagreement(self) -> str | None:
        path = "/completions"
        body = {"model": self.model, "prompt": ECHO_PROBE, "max_tokens": 1, "temperature": 0.0, "logprobs": 1}
        gen = self._choices(self._request("POST", path, body), path)[0]
        lp = gen.get("logprobs") if isinstance(gen, dict) else None
        try:
            token, generated = str(lp["tokens"][0]), float(lp["token_logprobs"][0])
            text = str(gen["text"])
        except (TypeError, KeyError, IndexError, ValueError):
            return None  # no generation log-probabilities to compare with: nothing to check
        body = {**body, "prompt": ECHO_PROBE + text, "echo": True}
        echo = self._choices(self._request("POST", path, body), path)[0]
        lp = echo.get("logprobs") if isinstance(echo, dict) else None
        try:
            at = [i for i, off in enumerate(lp["text_offset"]) if off == len(ECHO_PROBE)]
            if not at or str(lp["tokens"][at[0]]) != token:
                return None  # tokenized differently when echoed: nothing to compare
            echoed = float(lp["token_logprobs"][at[0]])
        except (TypeError, KeyError, IndexError, ValueError):
            return None  # no echoed log-probabilities: the score request reports that clearly
        if abs(echoed - generated) <= ECHO_TOLERANCE:
            return None
        return (f"{self._url(path)} echoes log-probabilities that disagree with its generation log-probabilities "
                f"({token!r} after {ECHO_PROBE!r}: {echoed:.3f} echoed, {generated:.3f} generated), so its scores "
                "would be wrong. llama-cpp-python's server shifts echoed log-probabilities by one token for "
                "models whose tokenizer adds no beginning-of-sequence token: start it with --kv_overrides "
                "tokenizer.ggml.add_bos_token=bool:true, or score with another backend")

    def _score_one(self, prompt: str, cont: str) -> ContinuationScore:
        if not cont:
            return ContinuationScore(cont, 0.0, [], [])
        text = prompt + cont
        body = {"model": self.model, "prompt": text, "echo": True, "logprobs": 1, "max_tokens": 1,
                "temperature": 0.0}
        path = "/completions"
        reply = self._request("POST", path, body)
        lp = self._choices(reply, path)[0]
        lp = lp.get("logprobs") if isinstance(lp, dict) else None
        need = ("tokens", "token_logprobs", "text_offset")
        if not isinstance(lp, dict) or not all(isinstance(lp.get(k), list) for k in need):
            raise LmscopeError(
                f"{self._url(path)} returned no prompt log-probabilities: scoring needs a completions "
                "endpoint that accepts echo=true with logprobs (chat endpoints and many hosted APIs do not)")
        tokens, logprobs, offsets = (lp[k] for k in need)
        if not (len(tokens) == len(logprobs) == len(offsets)):
            raise LmscopeError(f"{self._url(path)}: logprobs.tokens, token_logprobs and text_offset differ in length")
        # The echoed text spans offsets [0, len(text)); later tokens were generated and are dropped.
        echoed = [i for i, off in enumerate(offsets) if isinstance(off, int) and off < len(text)]
        if not echoed or offsets[echoed[0]] != 0:
            raise LmscopeError(
                f"{self._url(path)} returned no prompt log-probabilities (the text was not echoed): scoring "
                "needs a completions endpoint that accepts echo=true with logprobs")
        picked = []
        for j, i in enumerate(echoed):
            end = offsets[echoed[j + 1]] if j + 1 < len(echoed) else len(text)
            if end > len(prompt):  # starts in the continuation, or straddles the boundary
                picked.append(i)
        toks = [str(tokens[i]) for i in picked]
        lps = [logprobs[i] for i in picked]
        if not picked or any(not isinstance(v, (int, float)) for v in lps):
            raise LmscopeError(
                f"{self._url(path)} gave no log-probability for the text's first token, which belongs to the "
                f"continuation {cont!r} (the prompt {prompt!r} ends inside or before it); give a longer prompt")
        lps = [float(v) for v in lps]
        return ContinuationScore(cont, float(sum(lps)), lps, toks)

    # -------------------------------------------------------------------------------------------
    # Batches
    # -------------------------------------------------------------------------------------------
    def _map(self, fn, items: list, what: str) -> list:
        """``[fn(x) for x in items]`` with at most ``concurrency`` calls at once; the first error stops the rest."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in progress(items, desc=f"http {what}", quiet=True if len(items) < 2 else None)]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="lmscope-http")
            pool = self._pool
        futures = [pool.submit(fn, x) for x in items]
        try:
            return [f.result() for f in progress(futures, desc=f"http {what}")]
        finally:
            for f in futures:
                f.cancel()  # no-op for finished ones; stops queued ones after an error

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> HTTPLM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------------------------------------
    # HTTP
    # -------------------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return self.base_url + path

    def _request(self, method: str, path: str, body: dict | None = None):
        """Send one request, retrying transient failures; the decoded JSON reply."""
        url = self._url(path)
        data = json.dumps(body).encode() if body is not None else None
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(method, path, data)
            except _Unreachable as e:
                raise LmscopeError(f"cannot reach the server at {url}: {e}") from None
            except _Retryable as e:
                if attempt + 1 >= attempts:
                    tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
                    raise LmscopeError(f"{url}: {e} (gave up after {tries})") from None
                delay = self.backoff * 2 ** attempt
                if e.retry_after is not None:
                    delay = max(delay, min(e.retry_after, MAX_RETRY_AFTER))
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(self, method: str, path: str, data: bytes | None):
        url = self._url(path)
        headers = {"Accept": "application/json", "User-Agent": "lmscope"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        conn, reused = self._connection()
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
            retry_after = _retry_after(resp.getheader("Retry-After"))
            if resp.will_close:
                self._drop_connection()
        except _DROPPED as e:
            self._drop_connection()
            if reused and not isinstance(e, TimeoutError):
                return self._attempt(method, path, data)  # a stale keep-alive connection: try a fresh one now
            what = "timed out" if isinstance(e, TimeoutError) else "dropped the connection"
            raise _Retryable(f"the server {what} ({type(e).__name__})") from None
        except (OSError, http.client.HTTPException) as e:
            self._drop_connection()
            raise _Retryable(f"request failed: {type(e).__name__}: {e}") from None
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}: {_server_message(raw)}", retry_after)
        if status >= 400:
            raise LmscopeError(f"{url}: HTTP {status}: {_server_message(raw)}")
        if status >= 300:
            raise LmscopeError(f"{url}: HTTP {status} (redirects are not followed; check the URL)")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            snippet = raw[:200].decode("utf-8", "replace")
            raise LmscopeError(f"{url}: the server's reply is not JSON: {snippet!r}") from None

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's open connection (reused = True), or a new one (connect timeout, then read timeout)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        if self._scheme == "https":
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.connect_timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except (ConnectionRefusedError, socket.gaierror, TimeoutError) as e:
            conn.close()
            reason = {ConnectionRefusedError: "connection refused", socket.gaierror: "unknown host",
                      TimeoutError: f"no answer within {self.connect_timeout:g} s"}
            why = next(v for k, v in reason.items() if isinstance(e, k))
            raise _Unreachable(f"{why}; is the server running?") from None
        except OSError as e:
            conn.close()
            raise _Unreachable(f"{type(e).__name__}: {e}") from None
        conn.sock.settimeout(self.read_timeout)
        self._local.conn = conn
        with self._lock:
            self._conns.add(conn)
        return conn, False

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
            with self._lock:
                self._conns.discard(conn)
