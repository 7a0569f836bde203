"""The OpenAI-compatible HTTP backend: against a real llama.cpp server serving the bundled model, and
against a small local server that misbehaves on purpose (errors, retries, concurrency)."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import free_port, llama_cpp_server

from lmscope.errors import LmscopeError
from lmscope.lm.base import ContinuationScore, LanguageModel
from lmscope.lm.http import HTTPLM


# ------------------------------------------------------------------------------------------------
# A real llama.cpp server with the bundled SmolLM2-135M-Instruct
# ------------------------------------------------------------------------------------------------
def _llama_server(tmp_path_factory, *extra: str):
    """Start the llama.cpp server on the bundled GGUF; yields its base URL, stops it after."""
    from lmscope.models import bundled_path

    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_cpp_server(bundled_path("smollm2-135m"), log, *extra) as url:
        yield url


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """The llama.cpp server as started by default."""
    yield from _llama_server(tmp_path_factory)


@pytest.fixture(scope="session")
def llama_server_bos(tmp_path_factory):
    """The llama.cpp server told to prepend BOS, which makes its echoed log-probabilities right."""
    yield from _llama_server(tmp_path_factory, "--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true")


@pytest.fixture(scope="session")
def lm(llama_server):
    model = HTTPLM(llama_server)
    yield model
    model.close()


@pytest.fixture(scope="session")
def lm_bos(llama_server_bos):
    model = HTTPLM(llama_server_bos)
    yield model
    model.close()


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


PROMPT = "The capital of France is"


def test_real_model_identity(lm, llama_server):
    assert isinstance(lm, LanguageModel)
    ident = lm.identity()
    assert ident["backend"] == "http" and ident["base_url"] == llama_server
    assert ident["model"].endswith(".gguf")  # the server's only model: the path of the served file
    json.dumps(ident)
    assert lm.spec == f"{llama_server}#{ident['model']}"


def test_real_generate_plain_greedy(lm):
    a = lm.generate([PROMPT, "1, 2, 3, 4,"], max_tokens=12)
    b = lm.generate([PROMPT, "1, 2, 3, 4,"], max_tokens=12)
    assert a == b and len(a) == 2 and all(len(x) == 1 and x[0].strip() for x in a)
    assert a[0][0].startswith(" Paris") and a[1][0].startswith(" 5,")


def test_real_generate_chat(lm):
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    (out,) = lm.generate([msgs], max_tokens=16)
    assert out == lm.generate([msgs], max_tokens=16)[0]
    assert "Paris" in out[0]
    assert lm.chat_format() == {"applied_by": "server"}  # messages go as they are; the server renders them


def test_real_generate_stop(lm):
    (full,) = lm.generate(["1, 2, 3, 4,"], max_tokens=16)
    assert " 7" in full[0]
    (cut,) = lm.generate(["1, 2, 3, 4,"], max_tokens=16, stop=[" 7"])
    assert cut[0] == full[0][: full[0].index(" 7")]


def test_real_generate_n_samples(lm):
    (greedy,) = lm.generate([PROMPT], max_tokens=8, n=2)
    assert len(greedy) == 2 and greedy[0] == greedy[1]
    (samples,) = lm.generate([PROMPT], max_tokens=8, n=3, temperature=1.0, seed=1)
    assert len(samples) == 3 and len(set(samples)) > 1
    assert lm.generate([PROMPT], max_tokens=8, n=3, temperature=1.0, seed=1) == [samples]


def test_real_score_refused_when_echo_is_shifted(lm):
    # the default server's echoed log-probabilities are one token off for this model (see lmscope.lm.http)
    with pytest.raises(LmscopeError, match=r"disagree with its generation log-probabilities \(' Paris' after "
                                           r"'The capital of France is': -8\.\d+ echoed, -0\.2\d+ generated\)"):
        lm.score([(PROMPT, [" Paris"])])
    with pytest.raises(LmscopeError, match="add_bos_token=bool:true"):  # refused every time, checked once
        lm.score([(PROMPT, [" banana"])])


def test_real_score(lm_bos):
    ((paris, banana),) = lm_bos.score([(PROMPT, [" Paris", " banana"])])
    assert isinstance(paris, ContinuationScore) and paris.text == " Paris"
    assert paris.logprob > banana.logprob + 5
    for s in (paris, banana):
        assert math.isclose(s.logprob, sum(s.token_logprobs), abs_tol=1e-9)
        assert len(s.tokens) == len(s.token_logprobs) >= 1
        assert all(v <= 0 for v in s.token_logprobs)
        assert "".join(s.tokens) == s.text  # the continuation's own tokens, nothing of the prompt
    # the same numbers when batched with other requests
    again = lm_bos.score([("Two plus two is", [" four"]), (PROMPT, [" Paris", " banana", ""])])
    assert again[1][0] == paris and again[1][1] == banana
    assert again[1][2] == ContinuationScore("", 0.0, [], [])


def test_real_score_matches_generation_logprobs(lm_bos, llama_server_bos):
    # the server's own log-probabilities of a greedy continuation, token by token (no echo)
    gen = _post(llama_server_bos + "/completions",
                {"prompt": PROMPT, "max_tokens": 4, "temperature": 0, "logprobs": 1})["choices"][0]
    ((s,),) = lm_bos.score([(PROMPT, [gen["text"]])])
    assert s.tokens == gen["logprobs"]["tokens"]
    assert s.token_logprobs == pytest.approx(gen["logprobs"]["token_logprobs"], abs=1e-4)


def test_real_score_boundary_token_counts_to_continuation(lm_bos):
    # " Paris" is one token; split inside it, the straddling token belongs to the continuation
    ((whole,),) = lm_bos.score([(PROMPT, [" Paris"])])
    ((split,),) = lm_bos.score([(PROMPT + " Par", ["is"])])
    assert split.tokens == whole.tokens == [" Paris"]
    assert split.logprob == whole.logprob
    ((two,),) = lm_bos.score([(PROMPT, [" Paris. It"])])
    assert two.tokens[:2] == [" Paris", "."] and two.token_logprobs[0] == whole.logprob
    # a first token with nothing before it has no log-probability: a clear error
    with pytest.raises(LmscopeError, match="no log-probability for the text's first token"):
        lm_bos.score([("", ["Paris"])])


# ------------------------------------------------------------------------------------------------
# A local server that misbehaves on purpose
# ------------------------------------------------------------------------------------------------
class FakeServer:
    """Replies from ``script`` (a list of (status, body, headers) used first, in order; body ``None``
    drops the connection), then ``default(path, request)``. Counts requests and concurrent ones."""

    def __init__(self, delay: float = 0.0):
        self.script: list[tuple[int, object, dict]] = []
        self.delay = delay
        self.requests: list[tuple[str, dict | None]] = []
        self.active = self.max_active = 0
        self.lock = threading.Lock()
        self.default = self._default
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self, None)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                fake._handle(self, json.loads(self.rfile.read(n)))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @staticmethod
    def _default(path, request):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "fake-model"}]}, {}
        if path.endswith("/chat/completions"):
            return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}, {}
        return 200, {"choices": [{"index": 0, "text": f"ok {request.get('seed')}"}]}, {}

    def _handle(self, h, request):
        with self.lock:
            self.requests.append((h.path, request))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            step = self.script.pop(0) if self.script else None
        try:
            if self.delay:
                time.sleep(self.delay)
            status, body, headers = step or self.default(h.path, request)
            if body is None:  # drop the connection without a reply
                h.close_connection = True
                return
            if isinstance(body, float):  # stall for that many seconds, then reply normally
                time.sleep(body)
                status, body, headers = self.default(h.path, request)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        finally:
            with self.lock:
                self.active -= 1

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.close()


def _lm(url, **kw) -> HTTPLM:
    lm = HTTPLM(url, **{"backoff": 0.01, "check_echo": False, **kw})
    lm.sleeps = []
    lm._sleep = lm.sleeps.append  # record the backoff instead of waiting
    return lm


def test_retry_503_then_success(fake):
    fake.script = [(503, {"error": {"message": "loading"}}, {})] * 2
    lm = _lm(fake.url, model="m", backoff=0.5)
    assert lm.generate(["hello"]) == [["ok 0"]]
    assert len(fake.requests) == 3 and lm.sleeps == [0.5, 1.0]
    assert fake.requests[-1] == ("/v1/completions", {"model": "m", "prompt": "hello", "max_tokens": 64,
                                                      "temperature": 0.0, "top_p": 1.0, "n": 1, "seed": 0})


def test_retry_gives_up_with_server_message(fake):
    fake.script = [(500, {"error": {"message": "out of memory"}}, {})] * 10
    lm = _lm(fake.url, model="m", retries=2)
    with pytest.raises(LmscopeError, match=r"HTTP 500: out of memory \(gave up after 3 attempts\)"):
        lm.generate(["x"])
    assert len(fake.requests) == 3


def test_429_waits_for_retry_after(fake):
    fake.script = [(429, {"error": "slow down"}, {"Retry-After": "3"}), (429, b"busy", {})]
    lm = _lm(fake.url, model="m", backoff=0.25)
    assert lm.generate(["x"]) == [["ok 0"]]
    assert lm.sleeps == [3.0, 0.5] and len(fake.requests) == 3


def test_backoff_really_sleeps(fake):
    fake.script = [(503, b"", {})] * 2
    lm = HTTPLM(fake.url, "m", backoff=0.05)
    t = time.monotonic()
    assert lm.generate(["x"]) == [["ok 0"]]
    assert time.monotonic() - t >= 0.15


def test_dropped_connection_and_read_timeout_are_retried(fake):
    fake.script = [(200, None, {}), (200, 1.0, {})]  # drop, then stall past the read timeout
    lm = _lm(fake.url, model="m", timeout=(5, 0.3))
    assert lm.generate(["x"]) == [["ok 0"]]
    assert len(fake.requests) == 3 and len(lm.sleeps) == 2


def test_4xx_fails_at_once_with_server_message(fake):
    fake.script = [(400, {"error": {"message": "model 'm' does not exist"}}, {})]
    lm = _lm(fake.url, model="m")
    with pytest.raises(LmscopeError, match=r"/v1/completions: HTTP 400: model 'm' does not exist"):
        lm.generate(["x"])
    assert len(fake.requests) == 1
    fake.script = [(422, {"detail": [{"loc": ["body", "max_tokens"], "msg": "must be >= 0"}]}, {})]
    with pytest.raises(LmscopeError, match=r"HTTP 422: body.max_tokens: must be >= 0"):
        lm.generate(["x"])


def test_malformed_json(fake):
    fake.script = [(200, b"<html>gateway</html>", {})]
    with pytest.raises(LmscopeError, match=r"/v1/completions: the server's reply is not JSON: '<html>"):
        _lm(fake.url, model="m").generate(["x"])


def test_missing_fields(fake):
    lm = _lm(fake.url, model="m")
    fake.script = [(200, {"id": "x"}, {})]
    with pytest.raises(LmscopeError, match="lacks the list 'choices'"):
        lm.generate(["x"])
    fake.script = [(200, {"choices": [{"index": 0}]}, {})]
    with pytest.raises(LmscopeError, match=r"lacks choices\[0\]\.text"):
        lm.generate(["x"])
    fake.script = [(200, {"choices": [{"index": 0, "text": "t"}]}, {})]
    with pytest.raises(LmscopeError, match=r"lacks choices\[0\]\.message\.content"):
        lm.generate([[{"role": "user", "content": "x"}]])


def test_unreachable_server_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    lm = _lm(url, model="m")
    with pytest.raises(LmscopeError) as e:
        lm.generate(["x", "y", "z"])
    assert str(e.value) == f"cannot reach the server at {url}/completions: connection refused; is the server running?"
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert lm.sleeps == []  # not retried


def test_scoring_without_prompt_logprobs(fake):
    lm = _lm(fake.url, model="m")
    fake.script = [(200, {"choices": [{"index": 0, "text": "x", "logprobs": None}]}, {})]
    with pytest.raises(LmscopeError, match="scoring needs a completions endpoint that accepts echo=true with logprobs"):
        lm.score([("a", ["b"])])
    # echo ignored: only the generated token comes back, at the end of the text
    only_generated = {"tokens": [" x"], "token_logprobs": [-1.0], "text_offset": [2]}
    fake.script = [(200, {"choices": [{"index": 0, "text": " x", "logprobs": only_generated}]}, {})]
    with pytest.raises(LmscopeError, match="not echoed"):
        lm.score([("a", ["b"])])


def test_scoring_boundary_rule(fake):
    lm = _lm(fake.url, model="m")
    # prompt "ab" + continuation "cd" tokenized as a|bc|d, then one generated token X
    logprobs = {"tokens": ["a", "bc", "d", "X"], "token_logprobs": [None, -1.0, -2.0, -4.0],
                "text_offset": [0, 1, 3, 4], "top_logprobs": None}
    fake.default = lambda path, req: (200, {"choices": [{"index": 0, "text": "abcdX", "logprobs": logprobs}]}, {})
    ((s,),) = lm.score([("ab", ["cd"])])
    assert s == ContinuationScore("cd", -3.0, [-1.0, -2.0], ["bc", "d"])
    assert fake.requests[0][1] == {"model": "m", "prompt": "abcd", "echo": True, "logprobs": 1, "max_tokens": 1,
                                   "temperature": 0.0}
    # a continuation whose first token has no log-probability (empty prompt)
    with pytest.raises(LmscopeError, match="no log-probability for the text's first token"):
        lm.score([("", ["abcd"])])


def _echo_server(fake, generated: float, echoed: float, shifted_top: bool = False):
    """Make ``fake`` answer the echo check: `` Paris`` generated with ``generated``, echoed with ``echoed``."""
    def reply(path, req):
        p = req["prompt"]
        if not req.get("echo"):
            lp = {"tokens": [" Paris"], "token_logprobs": [generated], "text_offset": [len(p)], "top_logprobs": None}
            return 200, {"choices": [{"index": 0, "text": " Paris", "logprobs": lp}]}, {}
        words = p.replace(" ", "\0 ").split("\0")  # "The", " capital", ...
        offsets = [sum(map(len, words[:i])) for i in range(len(words))]
        lps = [None] + [echoed if w == " Paris" else -1.0 for w in words[1:]]
        lp = {"tokens": words + ["."], "token_logprobs": lps + [-0.5], "text_offset": offsets + [len(p)],
              "top_logprobs": None}
        return 200, {"choices": [{"index": 0, "text": p + ".", "logprobs": lp}]}, {}

    fake.default = reply


def test_echo_check_refuses_shifted_server(fake):
    _echo_server(fake, generated=-0.26, echoed=-8.45)
    lm = _lm(fake.url, model="m", check_echo=True)
    with pytest.raises(LmscopeError, match=r"-8\.450 echoed, -0\.260 generated\), so its scores would be wrong"):
        lm.score([("The capital of Spain is", [" Madrid"])])
    assert len(fake.requests) == 2  # the check only
    with pytest.raises(LmscopeError, match="would be wrong"):
        lm.score([("a", ["b"])])
    assert len(fake.requests) == 2  # checked once
    assert lm.generate(["x"]) != []  # generation is not affected
    # nothing to check when no continuation is scored
    assert _lm(fake.url, model="m", check_echo=True).score([("a", [""])]) == [[ContinuationScore("", 0.0, [], [])]]


def test_echo_check_passes_consistent_server(fake):
    _echo_server(fake, generated=-0.26, echoed=-0.27)
    lm = _lm(fake.url, model="m", check_echo=True)
    ((s,),) = lm.score([("The capital of Spain is", [" Madrid"])])
    assert s.tokens == [" Madrid"] and s.logprob == -1.0
    lm.score([("The capital of Spain is", [" Madrid"])])
    assert len(fake.requests) == 4  # two for the check, then one per score


def test_model_from_server_and_environment(fake, monkeypatch):
    for var in ("LMSCOPE_LM_BASE_URL", "LMSCOPE_LM_MODEL", "LMSCOPE_LM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert HTTPLM(fake.url).model == "fake-model"
    assert HTTPLM(fake.url + "#chosen").identity() == {"backend": "http", "base_url": fake.url, "model": "chosen"}
    monkeypatch.setenv("LMSCOPE_LM_BASE_URL", fake.url + "/")
    monkeypatch.setenv("LMSCOPE_LM_MODEL", "from-env")
    assert HTTPLM().spec == f"{fake.url}#from-env"
    assert HTTPLM(model="given").model == "given"  # arguments win
    monkeypatch.delenv("LMSCOPE_LM_MODEL")
    fake.default = lambda path, req: (200, {"data": [{"id": "a"}, {"id": "b"}]}, {})
    with pytest.raises(LmscopeError, match=r"lists 2 models \(a, b\): name one"):
        _ = HTTPLM(fake.url).model
    monkeypatch.delenv("LMSCOPE_LM_BASE_URL")
    with pytest.raises(LmscopeError, match="no server URL"):
        HTTPLM()
    with pytest.raises(LmscopeError, match="bad server URL"):
        HTTPLM("localhost:8080")


def test_api_key_header(fake, monkeypatch):
    seen = []
    default = fake.default
    fake.default = lambda path, req: (seen.append(path), default(path, req))[1]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.delenv("LMSCOPE_LM_API_KEY", raising=False)
    assert HTTPLM(fake.url, "m")._api_key == "sk-openai"
    monkeypatch.setenv("LMSCOPE_LM_API_KEY", "sk-lmscope")
    assert HTTPLM(fake.url, "m")._api_key == "sk-lmscope"
    assert HTTPLM(fake.url, "m", api_key="sk-given")._api_key == "sk-given"
    headers = []
    orig = fake.httpd.RequestHandlerClass.do_POST

    def spy(h):
        headers.append(h.headers.get("Authorization"))
        orig(h)

    fake.httpd.RequestHandlerClass.do_POST = spy
    HTTPLM(fake.url, "m", api_key="sk-given").generate(["x"])
    assert headers == ["Bearer sk-given"]


def test_chat_and_n_fallback(fake):
    lm = _lm(fake.url, model="m")
    msgs = [{"role": "user", "content": "hello"}]
    assert lm.generate([msgs], stop=["\n"], max_tokens=5) == [["hi"]]
    assert fake.requests[-1] == ("/v1/chat/completions", {"model": "m", "messages": msgs, "max_tokens": 5,
                                                          "temperature": 0.0, "top_p": 1.0, "stop": ["\n"],
                                                          "n": 1, "seed": 0})
    # the fake ignores n (as llama.cpp does): the missing samples come from further seeds
    fake.requests.clear()
    assert lm.generate((p for p in ["x"]), n=3, seed=7, temperature=1.0) == [["ok 7", "ok 8", "ok 9"]]
    assert [r[1]["seed"] for r in fake.requests] == [7, 8, 9]
    assert [r[1]["n"] for r in fake.requests] == [3, 1, 1]
    # a server that honours n is asked once
    fake.requests.clear()
    fake.default = lambda path, req: (200, {"choices": [{"index": i, "text": f"s{i}"} for i in (1, 0)]}, {})
    assert lm.generate(["x"], n=2) == [["s0", "s1"]] and len(fake.requests) == 1


def test_concurrency_bound(fake):
    fake.delay = 0.15
    lm = _lm(fake.url, model="m", concurrency=3)
    out = lm.generate([f"p{i}" for i in range(9)])
    assert len(out) == 9 and fake.max_active == 3
    lm.close()
    fake.max_active = 0
    serial = _lm(fake.url, model="m", concurrency=1)
    serial.generate(["a", "b", "c"])
    assert fake.max_active == 1


def test_batch_stops_at_first_error(fake):
    fake.script = [(400, {"error": {"message": "bad prompt"}}, {})]
    fake.delay = 0.05
    lm = _lm(fake.url, model="m", concurrency=2)
    with pytest.raises(LmscopeError, match="bad prompt"):
        lm.generate([f"p{i}" for i in range(40)])
    lm.close()
    assert len(fake.requests) < 40  # queued requests were cancelled


def test_bad_arguments(fake):
    lm = _lm(fake.url, model="m")
    with pytest.raises(LmscopeError, match="n must be"):
        lm.generate(["x"], n=0)
    with pytest.raises(LmscopeError, match="chat messages cannot be scored"):
        lm.score([([{"role": "user", "content": "x"}], ["y"])])
    with pytest.raises(LmscopeError, match="must be a list"):
        lm.score([("x", "y")])
    with pytest.raises(LmscopeError, match="concurrency"):
        HTTPLM(fake.url, "m", concurrency=0)


def test_timeout_as_one_number_and_from_the_cli(fake, tmp_path):
    import argparse

    from lmscope.cli import add_lm_arguments, lm_from_args

    lm = HTTPLM(fake.url, "m", timeout=5)
    assert (lm.connect_timeout, lm.read_timeout) == (5.0, 5.0)
    assert HTTPLM(fake.url, "m", timeout=300).connect_timeout == 10.0
    for bad in (0, (1, -1), "soon"):
        with pytest.raises(LmscopeError, match="timeout"):
            HTTPLM(fake.url, "m", timeout=bad)
    ap = argparse.ArgumentParser()
    add_lm_arguments(ap)
    args = ap.parse_args(["--lm", fake.url + "#m", "--lm-timeout", "7", "--no-cache"])
    lm = lm_from_args(args)
    assert lm.read_timeout == 7.0
    with pytest.raises(SystemExit):  # the option's type refuses it, naming --lm-timeout
        ap.parse_args(["--lm", fake.url + "#m", "--lm-timeout", "0", "--no-cache"])
    args.lm_timeout = 0  # a Namespace built by other code: lm_from_args checks it too
    with pytest.raises(LmscopeError, match="--lm-timeout must be positive"):
        lm_from_args(args)
