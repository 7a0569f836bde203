"""LM segmentation of demos (lmscope.skills.segment): the answer reader's repairs and rejections, the
fallback, the ablations, the segmentation files, boundary quality, and a real language model end to end."""

from __future__ import annotations

import hashlib
import json
import random
import sys

import numpy as np
import pytest
from conftest import free_port

from lmscope._io import write_json
from lmscope.errors import LmscopeError
from lmscope.lm.base import LanguageModel
from lmscope.skills import segment as sg
from lmscope.skills.types import Demo, Segmentation


# ------------------------------------------------------------------------------------------ helpers
def make_demo(parts, mission="go to the red ball, then open the green door", seed=0) -> Demo:
    """A hand-built demo: ``parts`` is ``[(subgoal, [step texts])]``; images are zeros."""
    steps, subgoals = [], []
    for subgoal, texts in parts:
        steps += texts
        subgoals += [subgoal] * len(texts)
    names = {"turn left": 0, "turn right": 1, "move forward": 2}
    actions = [names.get(t, 3 if t.startswith("pick") else 5 if t.startswith("open") else 4) for t in steps]
    T = len(steps)
    return Demo(level="BabyAI-GoToLocal-v0", seed=seed, mission=mission,
                images=np.zeros((T, 7, 7, 3), np.uint8), directions=np.zeros(T, np.int8),
                actions=np.array(actions, np.int8), steps=steps, subgoals=subgoals)


DEMO_A = make_demo([("GoNextTo(red ball)", ["turn left", "move forward", "move forward"]),
                    ("Explore", ["turn right", "move forward", "move forward"]),
                    ("Open", ["turn left", "move forward", "open the green door"])])  # T=9, gold 0,3,6
DEMO_B = make_demo([("GoNextTo(blue key)", ["turn right", "move forward", "move forward", "move forward"]),
                    ("Pickup", ["turn left", "pick up the blue key"])], mission="pick up the blue key", seed=1)


def valid(seg: Segmentation, length: int) -> bool:
    """Starts at 0, strictly increasing, below T; 2-5 actions per segment (one segment when T < 2)."""
    s = seg.starts
    if not s or s[0] != 0 or any(b <= a for a, b in zip(s, s[1:])) or s[-1] >= length:
        return False
    if len(seg.descriptions) != len(s):
        return False
    return len(s) == 1 if length < 2 else all(2 <= n <= 5 for n in seg.lengths(length))


class ScriptedLM(LanguageModel):
    """Test double: answers generate calls from a fixed list, records prompts; ``fail_at`` raises there."""

    spec = "scripted"

    def __init__(self, answers, fail_at=None):
        self.answers, self.fail_at, self.calls = list(answers), fail_at, []

    def identity(self):
        return {"backend": "scripted", "answers": self.answers}

    def generate(self, prompts, *, max_tokens=64, temperature=0.0, top_p=1.0, n=1, stop=None, seed=0):
        out = []
        for p in prompts:
            if self.fail_at is not None and len(self.calls) == self.fail_at:
                raise LmscopeError("cannot reach the server: connection refused")
            self.calls.append({"prompt": p, "max_tokens": max_tokens, "temperature": temperature, "stop": stop})
            out.append([self.answers[(len(self.calls) - 1) % len(self.answers)]])
        return out

    def score(self, requests):
        raise NotImplementedError("the scripted test model does not score")


# ------------------------------------------------------------------------------------------ prompt
def test_prompt_has_instruction_examples_and_the_numbered_demo():
    p = sg.segment_prompt(DEMO_A)
    assert p.startswith(sg.INSTRUCTION) and "2 to 5 actions" in p
    assert p.count("Mission:") == len(sg.EXAMPLES) + 1 and p.count("Skills:") == len(sg.EXAMPLES) + 1
    tail = p[p.rindex("Mission:"):]
    assert tail.splitlines()[0] == f"Mission: {DEMO_A.mission}"
    assert [ln for ln in tail.splitlines() if ln[:1].isdigit() and ". " in ln] == \
        [f"{t}. {s}" for t, s in enumerate(DEMO_A.steps, 1)]
    assert p.endswith("Skills:\n" + sg.ANSWER_PREFIX)
    for _, steps, answer in sg.EXAMPLES:  # the worked examples are themselves valid answers
        seg, why = sg.parse_segments("\n".join(answer), len(steps))
        assert why is None and seg.source == "lm" and valid(seg, len(steps))


# ------------------------------------------------------------------------------------------ the reader
# (answer, T, expected starts or None, source or rejection code, repair codes)
CASES = [
    ("1-3: go to the ball\n4-6: turn around\n7-9: open the door", 9, [0, 3, 6], "lm", None),
    ("1-3: a\n4-6: b\n7-9: c\nThat is all.", 9, [0, 3, 6], "repaired", "trailing-text"),
    ("Here are the skills:\n1-4: a\n5-9: b", 9, [0, 4], "repaired", "leading-text"),
    ("0-2: a\n3-5: b\n6-8: c", 9, [0, 3, 6], "repaired", "zero-based"),
    ("1-3: a\n4-6: b\n7-12: c", 9, [0, 3, 6], "repaired", "clipped"),
    ("1-4: a\n5-8: b", 9, [0, 4], "repaired", "tail-joined"),
    ("1-3: a", 7, [0, 3], "repaired", "tail-added"),
    ("1-3: a\n4: b\n5-7: c", 7, [0, 4], "repaired", "single-step,merged-short"),
    ("1-2: a\n3-3: b\n4-8: c", 8, [0, 3], "repaired", "merged-short"),
    ("1-3: a\n2-3: a again\n4-6: b", 6, [0, 3], "repaired", "duplicate"),
    ("Steps 1-3: a\n- 4 to 6: b", 6, [0, 3], "lm", None),
    ("1\u20133: a\n4\u20136: b", 6, [0, 3], "lm", None),
    ("1-1: the only step", 1, [0], "lm", None),
    ("", 5, None, "empty", None),
    ("   \n\t", 5, None, "empty", None),
    ("go to the ball and then open the door", 5, None, "no-ranges", None),
    ("3-1: backwards\n4-5: b", 5, None, "out-of-order", None),
    ("1-3: a\n5-7: b", 7, None, "gap", None),
    ("3-5: a\n6-7: b", 7, None, "gap", None),
    ("1-3: a\n3-5: b", 5, None, "overlap", None),
    ("1-6: a\n7-8: b", 8, None, "too-long", None),
    ("1-2: a\n3-20: b\n21-22: c", 8, None, "out-of-range", None),
    ("1-3: a\n9-10: b", 8, None, "out-of-range", None),
    ("1-4: a\n5-8: b\n9-11: c", 4, [0], "repaired", "beyond-end"),
    ("1-2: a", 9, None, "incomplete", None),
    ("1-5: a\n6: b\n7-11: c", 11, None, "too-short", None),
    ("1-3: a\n4-5: b\n6-6: c", 6, [0, 3], "repaired", "merged-short"),
    ("1-2: a", 0, None, "empty-demo", None),
]


@pytest.mark.parametrize("answer,length,starts,outcome,codes", CASES)
def test_answer_is_repaired_or_rejected_with_its_code(answer, length, starts, outcome, codes):
    seg, why = sg.parse_segments(answer, length)
    if starts is None:
        assert seg is None and why == outcome and why in sg.REJECTIONS
    else:
        assert why is None and seg.starts == starts and seg.source == outcome and seg.reason == codes
        assert valid(seg, length) and seg.answer == answer
        for code in (codes or "").split(","):
            assert not code or code in sg.REPAIRS


def test_reader_keeps_descriptions_and_never_raises_on_non_text():
    seg, _ = sg.parse_segments("1-3: go to the red ball\n4-5: open it", 5)
    assert seg.descriptions == ["go to the red ball", "open it"]
    for junk in (None, 3, b"1-3: a", ["1-3"], "\x00" * 50, "9" * 5000 + "-1: x"):
        seg, why = sg.parse_segments(junk, 5)
        assert seg is None and why in sg.REJECTIONS


def _edit(rng: random.Random, answer: str) -> str:
    lines = answer.split("\n")
    op = rng.randrange(7)
    k = rng.randrange(len(lines))
    if op == 0:
        del lines[k]
    elif op == 1:
        lines.insert(k, lines[rng.randrange(len(lines))])
    elif op == 2 and len(lines) > 1:
        j = rng.randrange(len(lines))
        lines[k], lines[j] = lines[j], lines[k]
    elif op == 3:
        lines[k] = "".join(str(rng.randrange(12)) if c.isdigit() else c for c in lines[k])
    elif op == 4:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(["", "ok", "5: x", "Mission: next", "0-1: y"]))
    elif op == 5:
        lines[k] = lines[k][: rng.randrange(len(lines[k]) + 1)]
    else:
        lines = [ln.replace(":", rng.choice([".", ")", " -", ""])) for ln in lines]
    return "\n".join(lines)


def test_property_every_accepted_answer_covers_all_actions_in_segments_of_2_to_5():
    rng = random.Random(1234)
    alphabet = "0123456789-:.) \nabto"
    accepted = rejected = 0
    codes = set()
    for trial in range(3000):
        length = rng.randrange(1, 25)
        if trial % 3 == 0:
            answer = "".join(rng.choice(alphabet) for _ in range(rng.randrange(60)))
        else:
            good = sg.random_segments(length, rng.randrange(10**6))
            ends = good.starts[1:] + [length]
            answer = "\n".join(f"{s + 1}-{e}: skill {j}" for j, (s, e) in enumerate(zip(good.starts, ends)))
            for _ in range(rng.randrange(1, 4)):
                answer = _edit(rng, answer)
        seg, why = sg.parse_segments(answer, length)
        if seg is None:
            rejected += 1
            assert why in sg.REJECTIONS
        else:
            accepted += 1
            assert why is None and valid(seg, length), (answer, length, seg)
            assert seg.source in ("lm", "repaired") and (seg.source == "repaired") == bool(seg.reason)
            codes.update((seg.reason or "").split(","))
    assert accepted > 500 and rejected > 500  # both branches were exercised
    assert {"merged-short", "tail-joined", "tail-added", "duplicate", "trailing-text"} <= codes


# ------------------------------------------------------------------------------------------ ablations
@pytest.mark.parametrize("length", range(1, 40))
def test_ablation_invariants(length):
    fixed = sg.fixed_segments(length, 3)
    assert fixed.source == "fixed" and valid(fixed, length)
    assert all(n == 3 for n in fixed.lengths(length)[:-1]) or length < 3
    for size in (2, 4):
        assert valid(sg.fixed_segments(length, size), length)
    a = sg.random_segments(length, np.random.default_rng(length))
    b = sg.random_segments(length, np.random.default_rng(length))
    assert a.source == "random" and valid(a, length) and a.starts == b.starts
    none = sg.all_boundaries(length)
    assert none.source == "none" and none.starts == list(range(length)) and len(none.descriptions) == length


def test_random_segments_vary_with_the_seed_and_use_all_lengths():
    draws = [tuple(sg.random_segments(30, seed).starts) for seed in range(50)]
    assert len(set(draws)) > 40
    lengths = {n for seed in range(50) for n in sg.random_segments(30, seed).lengths(30)}
    assert set(lengths) == {2, 3, 4, 5}


def test_fixed_remainders_and_bad_arguments():
    assert sg.fixed_segments(7, 3).starts == [0, 3]  # remainder 1 joins the last: 3 + 4
    assert sg.fixed_segments(8, 3).starts == [0, 3, 6]  # remainder 2 stays a segment
    for bad in [lambda: sg.fixed_segments(0), lambda: sg.fixed_segments(5, 1), lambda: sg.fixed_segments(5, 5),
                lambda: sg.random_segments(-1, 0), lambda: sg.all_boundaries(0)]:
        with pytest.raises(LmscopeError):
            bad()


# ------------------------------------------------------------------------------------------ segment_demos
def test_segment_demos_parses_repairs_and_falls_back_through_a_scripted_lm():
    demos = [DEMO_A, DEMO_B, DEMO_A]
    lm = ScriptedLM(["3: a\n4-6: b\n7-9: c", "4: x\n5-6: y", "the model rambles"])  # after the "1-" prefix
    segs = sg.segment_demos(demos, "lm", lm=lm, max_tokens=50, quiet=True)
    assert len(lm.calls) == 3 and all(c["temperature"] == 0.0 and c["max_tokens"] == 50 for c in lm.calls)
    assert lm.calls[1]["prompt"] == sg.segment_prompt(DEMO_B) and lm.calls[0]["stop"]
    assert segs[0].starts == [0, 3, 6] and segs[0].source == "lm" and segs[0].answer == "1-3: a\n4-6: b\n7-9: c"
    assert segs[1].starts == [0, 4] and segs[1].source == "lm"
    assert segs[2].source == "fallback" and segs[2].reason == "no-ranges"
    assert segs[2].starts == sg.fixed_segments(9, 3).starts and segs[2].answer == "1-the model rambles"
    assert all(valid(s, len(d)) for s, d in zip(segs, demos))


def test_segment_demos_ablation_methods_and_seeding():
    demos = [DEMO_A, DEMO_B]
    assert [s.source for s in sg.segment_demos(demos, "fixed", quiet=True)] == ["fixed", "fixed"]
    assert sg.segment_demos(demos, "none", quiet=True)[1].starts == list(range(6))
    r1 = sg.segment_demos(demos, "random", seed=3, quiet=True)
    r2 = sg.segment_demos(demos, "random", seed=3, quiet=True)
    assert [s.starts for s in r1] == [s.starts for s in r2]
    assert any([s.starts for s in sg.segment_demos(demos, "random", seed=k, quiet=True)] != [s.starts for s in r1]
               for k in range(4, 12))


def test_segment_demos_user_errors():
    with pytest.raises(LmscopeError, match="unknown segmentation method 'llm'"):
        sg.segment_demos([DEMO_A], "llm")
    with pytest.raises(LmscopeError, match="needs a language model"):
        sg.segment_demos([DEMO_A], "lm")
    with pytest.raises(LmscopeError, match="max_tokens"):
        sg.segment_demos([DEMO_A], "lm", lm=ScriptedLM(["x"]), max_tokens=0)


def test_an_interrupted_lm_run_resumes_from_the_cache(tmp_path):
    from lmscope.lm.cache import CachedLM

    answers = ["3: a\n4-6: b\n7-9: c", "4: x\n5-6: y"]
    first = CachedLM(ScriptedLM(answers, fail_at=1), tmp_path / "c.sqlite")
    with pytest.raises(LmscopeError, match="connection refused"):
        sg.segment_demos([DEMO_A, DEMO_B], "lm", lm=first, quiet=True)
    first.close()
    backend = ScriptedLM(answers)
    backend.calls.append({})  # its next answer is the second one, as the interrupted run's would have been
    again = CachedLM(backend, tmp_path / "c.sqlite")
    segs = sg.segment_demos([DEMO_A, DEMO_B], "lm", lm=again, quiet=True)
    assert again.stats.to_dict() == {"hits": 1, "misses": 1} and len(backend.calls) == 2
    assert [s.starts for s in segs] == [[0, 3, 6], [0, 4]]
    again.close()


def test_closed_http_port_is_one_error_line(tmp_path):
    from lmscope.lm import open_lm

    lm = open_lm(f"http://127.0.0.1:{free_port()}/v1#m", cache=tmp_path / "c.sqlite")
    with pytest.raises(LmscopeError) as e:
        sg.segment_demos([DEMO_B], "lm", lm=lm, quiet=True)
    lm.close()
    assert "cannot reach the server" in str(e.value) and "\n" not in str(e.value)


def test_bundled_smollm_segments_validly_and_the_second_run_hits_the_cache(tmp_path):
    from lmscope.lm import open_lm
    from lmscope.models import bundled_path

    try:
        bundled_path("smollm2-135m")
    except LmscopeError as e:
        pytest.skip(str(e))
    short = [make_demo([("GoNextTo(red ball)", ["turn left", "move forward", "move forward"]),
                        ("Pickup", ["pick up the red ball"])], mission="pick up the red ball"),
             DEMO_B]
    lm = open_lm("local:smollm2-135m", cache=tmp_path / "c.sqlite")
    segs = sg.segment_demos(short, "lm", lm=lm, max_tokens=40, quiet=True)
    assert lm.stats.misses == 2 and lm.stats.hits == 0
    for seg, demo in zip(segs, short):
        assert valid(seg, len(demo)) and seg.source in ("lm", "repaired", "fallback")
        assert seg.answer.startswith(sg.ANSWER_PREFIX)
        assert (seg.reason in sg.REJECTIONS) if seg.source == "fallback" else True
    again = sg.segment_demos(short, "lm", lm=lm, max_tokens=40, quiet=True)
    assert lm.stats.hits == 2 and [s.to_dict() for s in again] == [s.to_dict() for s in segs]
    lm.close()


def test_no_minigrid_or_torch_at_import():
    import subprocess

    code = ("import sys, lmscope.skills.segment; "
            "print(sorted(m for m in ('minigrid', 'torch', 'gymnasium') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------ files
def write_demo_folder(folder, demos):
    """A demo folder per the types module's format (what the demos writer produces), built by hand."""
    folder.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(d) for d in demos]).astype(np.int64)
    np.savez(folder / "arrays.npz", images=np.concatenate([d.images for d in demos]),
             directions=np.concatenate([d.directions for d in demos]),
             actions=np.concatenate([d.actions for d in demos]), offsets=offsets)
    rows = [{"index": i, "level": d.level, "seed": d.seed, "mission": d.mission, "steps": d.steps,
             "subgoals": d.subgoals} for i, d in enumerate(demos)]
    (folder / "demos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("arrays.npz", "demos.jsonl")}
    write_json(folder / "manifest.json", {"format": "lmscope-demos", "version": 1, "level": demos[0].level,
                                          "n": len(demos), "seed": 0, "count": len(demos),
                                          "steps": int(offsets[-1]), "files": files})
    return folder


@pytest.fixture
def written(tmp_path):
    demos_dir = write_demo_folder(tmp_path / "demos", [DEMO_A, DEMO_B])
    seg_dir = tmp_path / "seg"
    seg_dir.mkdir()
    segs = sg.segment_demos([DEMO_A, DEMO_B], "lm", lm=ScriptedLM(["3: a\n4-6: b\n7-9: c", "zzz"]), quiet=True)
    sg.write_segments(seg_dir, segs, demos_dir=demos_dir, method="lm", lm_identity={"backend": "scripted"})
    return demos_dir, seg_dir, segs


def test_write_then_load_round_trip(written):
    demos_dir, seg_dir, segs = written
    manifest, loaded = sg.load_segments(seg_dir)
    assert [s.to_dict() for s in loaded] == [s.to_dict() for s in segs]
    assert manifest["format"] == "lmscope-segments" and manifest["method"] == "lm"
    assert manifest["counts"] == {"fallback": 1, "lm": 1} and manifest["lm"] == {"backend": "scripted"}
    assert sg.segments_demos_dir(manifest) == demos_dir.resolve()
    assert manifest["demos_sha256"] == hashlib.sha256((demos_dir / "manifest.json").read_bytes()).hexdigest()
    rows = [json.loads(ln) for ln in (seg_dir / "segments.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1]
    assert sorted(p.name for p in seg_dir.iterdir()) == ["manifest.json", "segments.jsonl"]  # no temp files


def test_write_errors(tmp_path, written):
    demos_dir, _, segs = written
    with pytest.raises(LmscopeError, match="no such folder"):
        sg.write_segments(tmp_path / "nope", segs, demos_dir=demos_dir, method="lm")
    with pytest.raises(LmscopeError, match="1 segmentations for 2 demos"):
        sg.write_segments(tmp_path, segs[:1], demos_dir=demos_dir, method="lm")
    with pytest.raises(LmscopeError, match="manifest.json"):
        sg.write_segments(tmp_path, segs, demos_dir=tmp_path / "missing", method="lm")


def _rewrite(path, fn):
    path.write_text(fn(path.read_text()))


@pytest.mark.parametrize("damage,match", [
    (lambda s, d: (s / "manifest.json").unlink(), r"seg/manifest\.json"),
    (lambda s, d: (s / "manifest.json").write_text("{oops"), r"seg/manifest\.json: malformed JSON"),
    (lambda s, d: _rewrite(s / "manifest.json", lambda t: t.replace("lmscope-segments", "other")),
     r"seg/manifest\.json: not a segmentation manifest"),
    (lambda s, d: _rewrite(s / "manifest.json", lambda t: t.replace('"version": 1', '"version": 7')),
     r"seg/manifest\.json: unsupported version 7"),
    (lambda s, d: (s / "segments.jsonl").unlink(), r"seg/segments\.jsonl"),
    (lambda s, d: _rewrite(s / "segments.jsonl", lambda t: t + "{not json\n"), r"seg/segments\.jsonl:3: malformed"),
    (lambda s, d: _rewrite(s / "segments.jsonl", lambda t: t.splitlines()[0] + "\n"),
     r"seg/segments\.jsonl: 1 rows for 2 demos"),
    (lambda s, d: _rewrite(s / "segments.jsonl", lambda t: t.replace('"starts": [0, 3, 6]', '"starts": [0, 6, 3]')),
     r"seg/segments\.jsonl:1: invalid starts \[0, 6, 3\]"),
    (lambda s, d: _rewrite(s / "segments.jsonl", lambda t: t.replace('"starts": [0, 3, 6]', '"starts": [1, 3]')),
     r"seg/segments\.jsonl:1: invalid starts"),
    (lambda s, d: _rewrite(s / "segments.jsonl", lambda t: t.replace('"starts": [0, 3, 6]', '"starts": [0, 9]')),
     r"seg/segments\.jsonl:1: invalid starts \[0, 9\] for a demo of 9 actions"),
    (lambda s, d: _rewrite(s / "segments.jsonl", lambda t: t.replace('"starts": [0, 3, 6]', '"starts": "0"')),
     r"seg/segments\.jsonl:1: 'starts' must be"),
    (lambda s, d: _rewrite(s / "segments.jsonl", lambda t: t.replace('"index": 1', '"index": 5')),
     r"seg/segments\.jsonl:2: expected index 1"),
    (lambda s, d: [p.unlink() for p in d.iterdir()] and d.rmdir(), r"seg/manifest\.json: the demos folder .* is gone"),
    (lambda s, d: _rewrite(d / "manifest.json", lambda t: t.replace('"seed": 0', '"seed": 1')),
     r"seg/manifest\.json: the demos folder .* changed since it was segmented"),
])
def test_each_load_error_names_its_file(written, damage, match):
    demos_dir, seg_dir, _ = written
    damage(seg_dir, demos_dir)
    with pytest.raises(LmscopeError, match=match) as e:
        sg.load_segments(seg_dir)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------ quality
def test_quality_on_a_planted_case():
    # DEMO_A: gold starts 0,3,6 (T=9). DEMO_B: gold 0,4 (T=6).
    segs = [Segmentation([0, 3, 7], ["", "", ""], source="lm"),
            Segmentation([0, 2, 4], ["", "", ""], source="repaired", reason="tail-added,merged-short")]
    q0 = sg.segmentation_quality([DEMO_A, DEMO_B], segs, tolerance=0)
    # demo A: 3 hits, 7 misses 6 -> P=R=1/2; demo B: 4 hits, 2 is extra -> P=1/2, R=1, F1=2/3
    assert q0["precision"] == pytest.approx(0.5) and q0["recall"] == pytest.approx(0.75)
    assert q0["f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert q0["micro"] == pytest.approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "hits": 2,
                                         "predicted": 4, "gold": 3})
    assert q0["segments"] == 6 and q0["mean_segment_length"] == pytest.approx(15 / 6)
    assert q0["by_source"] == {"lm": 1, "repaired": 1}
    assert q0["by_reason"] == {"merged-short": 1, "tail-added": 1}
    q1 = sg.segmentation_quality([DEMO_A, DEMO_B], segs, tolerance=1)  # 7 now matches 6
    assert q1["micro"]["hits"] == 3 and q1["f1"] == pytest.approx((1.0 + 2 / 3) / 2)
    with pytest.raises(LmscopeError, match="1 segmentations for 2 demos"):
        sg.segmentation_quality([DEMO_A, DEMO_B], segs[:1])
