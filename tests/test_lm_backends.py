"""The LM backend interface, the local transformers backend, open_lm and the `lmscope lm` commands.

Most tests use a tiny random Llama with a small byte-level BPE tokenizer (like SmolLM2's) saved to a
temporary directory; the numbers are checked against log-probabilities and greedy decoding computed
by hand from the model's own logits. A few tests run the bundled SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import hashlib
import json
import sys
import types

import pytest
import torch
from conftest import assert_clean_error, build_tiny_model

from lmscope.cli import main
from lmscope.errors import LmscopeError
from lmscope.lm import ContinuationScore, LanguageModel, open_backend, open_lm
from lmscope.lm.local import LocalLM, chat_fallback

CONTEXT = 64  # the tiny model's context (max_position_embeddings)
CORPUS = ["hello world, the world is wide.", "The capital of France is Paris.", "Once upon a time there was a cat.",
          "A kitchen has a sink and an oven; a bathroom has a toilet."] * 40
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
REQUESTS = [("The capital of France is", [" Paris", " banana", "Paris", " the world"]),
            ("hello wor", ["ld", "ld, the world", " cat"]),   # "world" is one token: it straddles the boundary
            ("", ["Once upon a time"]),                         # an empty prompt: the BOS token starts it
            ("A kitchen has a", [" sink"]),
            ("Once upon a time there was a", [" cat.", " cat", " dog", " kitchen", " world"])]


def _tokenizer(chat_template: str | None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


def _save_tiny_lm(out, chat_template: str | None = CHAT_TEMPLATE, seed: int = 0, context: int = CONTEXT):
    tok = _tokenizer(chat_template)
    model = build_tiny_model("llama", seed=seed, vocab_size=len(tok), max_position_embeddings=context,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
    # spread the logits out a little, so greedy choices are not near-ties of a nearly uniform model
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return _save_tiny_lm(tmp_path_factory.mktemp("tiny-lm") / "model")


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    """The same kind of model, its tokenizer without a chat template."""
    return _save_tiny_lm(tmp_path_factory.mktemp("tiny-lm-plain") / "model", chat_template=None, seed=1)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    lm = LocalLM(str(tiny_dir), device="cpu")
    yield lm
    lm.close()


# ------------------------------------------------------------------------------------------ by hand
@torch.no_grad()
def manual_scores(lm: LocalLM, prompt: str, cont: str) -> tuple[list[float], list[str]]:
    """Per-token log-probs of ``cont`` after ``prompt`` from one full forward pass, by the boundary rule."""
    tok, model = lm.tokenizer, lm.model
    text = prompt + cont
    enc = tok(text, return_offsets_mapping=True)
    ids, offs = list(enc["input_ids"]), enc["offset_mapping"]
    mine = [i for i, (s, e) in enumerate(offs) if e > len(prompt) and e > s]
    if mine and mine[0] == 0:
        ids, offs, mine = [tok.bos_token_id] + ids, [(0, 0)] + list(offs), [i + 1 for i in mine]
    logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    lp = torch.log_softmax(logits, -1)
    return [float(lp[i - 1, ids[i]]) for i in mine], [text[offs[i][0]:offs[i][1]] for i in mine]


@torch.no_grad()
def manual_greedy(lm: LocalLM, prompt_ids: list[int], steps: int) -> list[int]:
    ids = list(prompt_ids)
    out = []
    for _ in range(steps):
        nxt = int(lm.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        if nxt == lm.tokenizer.eos_token_id:
            break
        out.append(nxt)
        ids.append(nxt)
    return out


# ------------------------------------------------------------------------------------------ scoring
@pytest.mark.parametrize("strategy", ["auto", "shared", "flat"])
def test_score_equals_manual_per_token_logprobs(tiny_dir, tiny, strategy):
    lm = LocalLM(str(tiny_dir), device="cpu", strategy=strategy, batch_size=3, max_batch_tokens=48)  # many batches
    out = lm.score(REQUESTS)
    assert [len(r) for r in out] == [len(c) for _, c in REQUESTS]
    worst = 0.0
    for (prompt, conts), row in zip(REQUESTS, out):
        for c, sc in zip(conts, row):
            ref, toks = manual_scores(tiny, prompt, c)
            assert isinstance(sc, ContinuationScore) and sc.text == c
            assert sc.tokens == toks
            assert len(sc.token_logprobs) == len(ref)
            worst = max([worst] + [abs(a - b) for a, b in zip(sc.token_logprobs, ref)])
            assert sc.logprob == pytest.approx(sum(sc.token_logprobs), abs=1e-9)
    assert worst < 1e-4


def test_full_logits_path_when_the_head_shortcut_does_not_apply(tiny_dir, tiny):
    lm = LocalLM(str(tiny_dir), device="cpu")
    lm._load()
    assert lm._split is not None  # a Llama's head is a plain projection: the shortcut applies
    lm._split = None  # what a model whose head does more (scaling, soft-capping) gets
    a, b = lm.score(REQUESTS), tiny.score(REQUESTS)
    assert max(abs(x.logprob - y.logprob) for ra, rb in zip(a, b) for x, y in zip(ra, rb)) < 1e-4
    assert lm.generate(["hello", "The capital"], max_tokens=6) == tiny.generate(["hello", "The capital"], max_tokens=6)


def test_batched_equals_unbatched(tiny):
    batched = tiny.score(REQUESTS)
    one_by_one = [tiny.score([(p, [c])])[0][0] for p, conts in REQUESTS for c in conts]
    flat = [s for row in batched for s in row]
    assert max(abs(a.logprob - b.logprob) for a, b in zip(flat, one_by_one)) < 1e-4
    assert [a.tokens for a in flat] == [b.tokens for b in one_by_one]


def test_boundary_rule(tiny):
    # "hello wor" + "ld": the tokenizer makes " world" one token, which straddles the boundary
    sc = tiny.score([("hello wor", ["ld"]), ("hello", [" world"]), ("hello world", [""])])
    straddle, clean, empty = sc[0][0], sc[1][0], sc[2][0]
    assert straddle.tokens == [" world"] and clean.tokens == [" world"]
    assert straddle.logprob == pytest.approx(clean.logprob, abs=1e-5)  # the same token after the same context
    assert empty == ContinuationScore("", 0.0, [], [])
    # the continuation's tokens spell it (plus the straddled part of the prompt, if any)
    for (prompt, conts), row in zip(REQUESTS, tiny.score(REQUESTS)):
        for c, s in zip(conts, row):
            joined = "".join(s.tokens)
            assert joined.endswith(c) and (prompt + c).endswith(joined)


def test_score_bad_requests(tiny):
    with pytest.raises(LmscopeError, match="list of continuations is empty"):
        tiny.score([("The capital", [])])
    with pytest.raises(LmscopeError, match="not one string"):
        tiny.score([("The capital", " Paris")])
    with pytest.raises(LmscopeError, match="wrap one in a list"):
        tiny.score(("The capital", [" Paris"]))
    long_prompt = "hello world " * 40
    with pytest.raises(LmscopeError, match=rf"tokens, longer than the model's context of {CONTEXT} tokens"):
        tiny.score([(long_prompt, [" cat"])])


# ------------------------------------------------------------------------------------------ generation
def test_greedy_generation_matches_manual_decoding(tiny):
    prompts = ["The capital of France is", "hello", "Once upon a time there was a cat. The"]
    out = tiny.generate(prompts, max_tokens=8, n=2)
    assert out == tiny.generate(prompts, max_tokens=8, n=2)
    for p, comps in zip(prompts, out):
        assert comps[0] == comps[1]  # greedy: n identical completions
        ids = tiny.tokenizer(p)["input_ids"]
        ref = tiny.tokenizer.decode(manual_greedy(tiny, ids, 8), skip_special_tokens=True)
        assert comps[0] == ref
    # a prompt alone gives what it gives in a batch of prompts of other lengths (left padding is exact)
    assert tiny.generate([prompts[1]], max_tokens=8) == [out[1][:1]]


def test_seeded_sampling_is_reproducible(tiny):
    prompts = ["The capital of France is", "hello"]
    a = tiny.generate(prompts, max_tokens=10, temperature=1.0, n=3, seed=7)
    assert a == tiny.generate(prompts, max_tokens=10, temperature=1.0, n=3, seed=7)
    assert len({*a[0]}) > 1  # the samples differ from each other
    assert a != tiny.generate(prompts, max_tokens=10, temperature=1.0, n=3, seed=8)
    # a sample depends on (seed, prompt, sample index), not on the other prompts of the call
    assert tiny.generate([prompts[1]], max_tokens=10, temperature=1.0, n=3, seed=7) == [a[1]]
    # a vanishing nucleus keeps only the most likely token: greedy decoding
    assert tiny.generate(prompts, max_tokens=10, temperature=1.0, top_p=1e-9, seed=3) == \
        tiny.generate(prompts, max_tokens=10)


def test_stop_strings_cut_and_stop(tiny):
    full = tiny.generate(["Once upon a time"], max_tokens=16)[0][0]
    assert len(full) > 6
    stop = full[3:5]
    cut = tiny.generate(["Once upon a time"], max_tokens=16, stop=[stop, "\x00never"])[0][0]
    assert cut == full[:full.index(stop)]
    assert tiny.generate(["Once upon a time"], max_tokens=16, stop=[full[:1]])[0][0] == ""


def test_generation_bad_input(tiny):
    with pytest.raises(LmscopeError, match=rf"prompt 1 is \d+ tokens, which leaves no room in the model's "
                                           rf"context of {CONTEXT} tokens"):
        tiny.generate(["hello world " * 40])
    with pytest.raises(LmscopeError, match="wrap a single prompt"):
        tiny.generate("hello")
    with pytest.raises(LmscopeError, match="top_p"):
        tiny.generate(["hello"], top_p=0)
    with pytest.raises(LmscopeError, match="message 1"):
        tiny.generate([[{"role": "user"}]])
    # generation stops at the end of the context
    near = "hello"
    while len(tiny.tokenizer(near + " world")["input_ids"]) < CONTEXT - 3:
        near += " world"
    n_prompt = len(tiny.tokenizer(near)["input_ids"])
    assert CONTEXT - 5 < n_prompt < CONTEXT
    text = tiny.generate([near], max_tokens=50)[0][0]
    room = manual_greedy(tiny, tiny.tokenizer(near)["input_ids"], CONTEXT - n_prompt)
    assert text == tiny.tokenizer.decode(room, skip_special_tokens=True)


def test_chat_template_and_fallback(tiny, plain_dir):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    assert tiny.render(msgs) == "<s>system\nBe brief.\n<s>user\nhello\n<s>assistant\n"
    plain = LocalLM(str(plain_dir), device="cpu")
    assert plain.render(msgs) == chat_fallback(msgs) == "System: Be brief.\nUser: hello\nAssistant:"
    for lm in (tiny, plain):
        chat = lm.generate([msgs], max_tokens=6)[0][0]
        ids = lm.tokenizer(lm.render(msgs), add_special_tokens=lm is plain)["input_ids"]
        assert chat == lm.tokenizer.decode(manual_greedy(lm, ids, 6), skip_special_tokens=True)


def test_chat_format_says_which_template_a_chat_goes_through(tiny, plain_dir, tiny_dir, tmp_path, capsys):
    fmt = tiny.chat_format()
    assert fmt["applied_by"] == "tokenizer" and fmt["example"] == "<s>user\n{prompt}\n<s>assistant\n"
    assert fmt["template_sha256"] == hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()
    plain = LocalLM(str(plain_dir), device="cpu")
    assert plain.chat_format() == {"applied_by": "fallback", "example": "User: {prompt}\nAssistant:"}
    assert plain._model is None  # the tokenizer alone was read
    lm = ["--lm", f"local:{tiny_dir}", "--lm-cache", tmp_path / "c.sqlite", "--lm-device", "cpu"]
    rc, out, err = run_cli(capsys, "lm", "generate", "hello", "--chat", "--max-tokens", "3", *lm, "--json")
    assert rc == 0, err
    assert json.loads(out)["chat_format"] == fmt
    rc, out, err = run_cli(capsys, "lm", "generate", "hello", "--chat", "--max-tokens", "3", *lm)
    assert rc == 0 and "chat: the model's chat template; one user message is sent as '<s>user" in err
    rc, out, err = run_cli(capsys, "lm", "generate", "hello", "--max-tokens", "3", *lm, "--json")
    assert rc == 0 and "chat_format" not in json.loads(out)  # a plain completion uses no template


# ------------------------------------------------------------------------------------------ open_lm
def test_open_lm_specs(tiny_dir, tmp_path, monkeypatch):
    lm = open_lm(f"local:{tiny_dir}", cache=tmp_path / "c.sqlite")
    assert lm.spec == f"local:{tiny_dir}" and isinstance(lm, LanguageModel)
    ident = lm.identity()
    assert ident["backend"] == "local" and ident["path"] == str(tiny_dir.resolve())
    assert {f[0] for f in ident["files"]} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert lm.backend._model is None  # nothing loaded until it is used
    lm.close()
    assert open_backend(str(tiny_dir)).spec == f"local:{tiny_dir}"  # a bare existing path means local
    assert isinstance(open_lm(f"local:{tiny_dir}", cache=False), LocalLM)
    with pytest.raises(LmscopeError, match="unknown LM spec 'foo:bar'"):
        open_lm("foo:bar", cache=False)
    with pytest.raises(LmscopeError, match="no such model"):
        open_lm("local:/no/such/dir", cache=False)
    with pytest.raises(LmscopeError, match="local backend has no option timeout"):
        open_lm(f"local:{tiny_dir}", cache=False, timeout=3)
    with pytest.raises(LmscopeError, match="cannot be used without the cache"):
        open_lm(f"local:{tiny_dir}", cache=False, offline=True)
    with pytest.raises(LmscopeError, match="unknown device"):
        open_lm(f"local:{tiny_dir}", cache=False, device="tpu")

    # the HTTP backend is imported on demand; its absence is a clear error
    monkeypatch.setitem(sys.modules, "lmscope.lm.http", None)
    with pytest.raises(LmscopeError, match="HTTP backend"):
        open_lm("http://127.0.0.1:9/v1#m", cache=False)
    seen = {}

    class FakeHTTP(LanguageModel):
        def __init__(self, base_url, model, **options):
            seen.update(base_url=base_url, model=model, options=options)
            self.spec = f"{base_url}#{model}"

        def identity(self):
            return {"backend": "http"}

        def generate(self, prompts, **kw):
            return [["x"] for _ in prompts]

        def score(self, requests):
            return []

    monkeypatch.setitem(sys.modules, "lmscope.lm.http", types.SimpleNamespace(HTTPLM=FakeHTTP))
    lm = open_lm("https://example.org/v1#some-model", cache=tmp_path / "c.sqlite", timeout=5.0, api_key="k")
    assert seen == {"base_url": "https://example.org/v1", "model": "some-model",
                    "options": {"timeout": 5.0, "api_key": "k"}}
    lm.close()
    open_backend("http://127.0.0.1:8080/v1")
    assert seen["model"] is None


# ------------------------------------------------------------------------------------------ CLI
def run_cli(capsys, *argv):
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_score_and_generate(tiny_dir, tmp_path, capsys):
    lm = ["--lm", f"local:{tiny_dir}", "--lm-cache", tmp_path / "c.sqlite", "--lm-device", "cpu"]
    rc, out, err = run_cli(capsys, "lm", "score", "The capital of France is", "--continuation", " Paris",
                           "--continuation", " banana", *lm, "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["lm"] == f"local:{tiny_dir}" and res["cache"]["misses"] == 2
    scores = res["results"][0]["scores"]
    assert [s["text"] for s in scores] == [" Paris", " banana"]
    assert sum(s["p_among"] for s in scores) == pytest.approx(1.0)
    # the same from the cache, offline, and from a JSONL file
    f = tmp_path / "req.jsonl"
    f.write_text(json.dumps({"prompt": "The capital of France is", "continuations": [" banana", " Paris"]}) + "\n")
    rc, out, err = run_cli(capsys, "lm", "score", "--file", f, *lm, "--offline", "--json")
    assert rc == 0, err
    again = json.loads(out)
    assert again["cache"] == {"hits": 2, "misses": 0, "path": str(tmp_path / "c.sqlite")}
    assert again["results"][0]["scores"][1]["logprob"] == scores[0]["logprob"]
    rc, out, err = run_cli(capsys, "lm", "score", "The capital of France is", "--continuation", " Paris", *lm)
    assert rc == 0 and "' Paris'" in out and "logprob" in out

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n\nThe capital of France is\n")
    rc, out, err = run_cli(capsys, "lm", "generate", "--file", prompts, "--max-tokens", "5", "--n", "2",
                           "--temperature", "0.9", "--seed", "3", *lm, "--json")
    assert rc == 0, err
    gen = json.loads(out)
    assert [r["prompt"] for r in gen["results"]] == ["hello", "The capital of France is"]
    assert all(len(r["completions"]) == 2 for r in gen["results"])
    rc, out2, err = run_cli(capsys, "lm", "generate", "--file", prompts, "--max-tokens", "5", "--n", "2",
                            "--temperature", "0.9", "--seed", "3", *lm, "--json", "--offline")
    assert rc == 0 and json.loads(out2)["results"] == gen["results"]
    rc, out, err = run_cli(capsys, "lm", "generate", "hello", "--chat", "--max-tokens", "4", *lm, "--no-cache",
                           "--lm-cache", tmp_path / "unused.sqlite")
    assert rc == 0, err
    assert not (tmp_path / "unused.sqlite").exists()
    chats = tmp_path / "chats.jsonl"
    chats.write_text(json.dumps({"messages": [{"role": "user", "content": "hello"}]}) + "\n")
    rc, out2, err = run_cli(capsys, "lm", "generate", "--file", chats, "--max-tokens", "4", *lm)
    assert rc == 0 and out2 == out


def test_cli_bad_input_is_one_line(tiny_dir, tmp_path, capsys):
    lm = ["--lm", f"local:{tiny_dir}", "--lm-cache", tmp_path / "c.sqlite", "--lm-device", "cpu"]
    f = tmp_path / "empty.jsonl"
    f.write_text(json.dumps({"prompt": "hello", "continuations": []}) + "\n")
    assert_clean_error(*run_cli(capsys, "lm", "score", "--file", f, *lm), "the list of continuations is empty")
    assert_clean_error(*run_cli(capsys, "lm", "score", "hello", *lm), "at least one --continuation")
    assert_clean_error(*run_cli(capsys, "lm", "score", "hello world " * 40, "--continuation", " x", *lm),
                       f"longer than the model's context of {CONTEXT} tokens")
    assert_clean_error(*run_cli(capsys, "lm", "generate", "hello world " * 40, *lm),
                       f"model's context of {CONTEXT} tokens")
    assert_clean_error(*run_cli(capsys, "lm", "score", "hi", "--continuation", " x", "--lm", "nope:x"),
                       "unknown LM spec 'nope:x'")
    assert_clean_error(*run_cli(capsys, "lm", "generate", "hi", *lm, "--offline"), "not in the LM cache (offline)")
    assert_clean_error(*run_cli(capsys, "lm", "generate", *lm), "give a prompt")
    assert_clean_error(*run_cli(capsys, "lm", "generate", "hi", "--top-p", "2", *lm),
                       "argument --top-p: must be a number > 0 and <= 1, got '2'")
    assert_clean_error(*run_cli(capsys, "lm", "generate", "hi", *lm, "--offline", "--no-cache"), "--no-cache")
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database at all" * 100)
    assert_clean_error(*run_cli(capsys, "lm", "score", "hi", "--continuation", " x", *lm[:2], "--lm-cache", bad),
                       f"the LM cache {bad} is not a readable SQLite database")
    assert bad.exists()  # never removed behind the user's back


# ------------------------------------------------------------------------------------------ SmolLM2
@pytest.fixture(scope="module")
def smol():
    from lmscope.models import bundled_path

    try:
        bundled_path("smollm2-135m")
    except LmscopeError as e:
        pytest.skip(str(e))
    lm = LocalLM("smollm2-135m", device="cpu")
    yield lm
    lm.close()


def test_smollm2_scores_facts(smol):
    (paris, banana, london), = smol.score([("The capital of France is", [" Paris", " banana", " London"])])
    assert paris.tokens == [" Paris"]
    assert paris.logprob > london.logprob > banana.logprob
    assert paris.logprob > -1.0


def test_smollm2_greedy_matches_transformers_generate(smol):
    prompts = ["The capital of France is", "def fibonacci(n):"]
    out = smol.generate(prompts, max_tokens=12)
    assert out == smol.generate(prompts, max_tokens=12)
    for p, (text,) in zip(prompts, out):
        ids = smol.tokenizer(p, return_tensors="pt")["input_ids"]
        ref = smol.model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=smol._pad)
        assert text == smol.tokenizer.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)


def test_smollm2_chat(smol):
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    rendered = smol.render(msgs)
    assert rendered.startswith("<|im_start|>system") and rendered.endswith("<|im_start|>assistant\n")
    (answer,), = smol.generate([msgs], max_tokens=24)
    assert "Paris" in answer
    assert "<|im_end|>" not in answer
