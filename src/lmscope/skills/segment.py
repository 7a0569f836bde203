"""LM segmentation of demonstrations into short skills, and the segmentations the ablations use instead.

Method (LAST, step 1). A language model reads a demo's mission and its ``T`` numbered step texts and
answers one line per segment, ``FIRST-LAST: description`` (1-based, inclusive). The answer is accepted
when its segments cover actions ``1..T`` in order, each of 2 to 5 actions (a demo of one action: one
segment). Segment ``k`` covers actions ``[s_k, s_{k+1})`` (0-based), so a segmentation is its list of
starts ``0 = s_0 < s_1 < ... < s_{K-1} < T``; temporal variational inference may later open a new skill
only at one of these starts, i.e. it can merge LM segments but never split them.

Reading an answer (:func:`parse_segments`) never raises. It repairs only what has one reading, each
repair named by a code from :data:`REPAIRS` (the segmentation's ``source`` becomes ``"repaired"`` and
its ``reason`` lists the codes, comma-separated), and rejects everything else with one code from
:data:`REJECTIONS`. A rejected answer falls back to the stated rule ``fixed_segments(T, 3)`` (source
``"fallback"``, reason: the rejection code), so every demo gets a valid segmentation and the fallbacks
are counted.

Ablations: ``fixed`` (every 3 actions), ``random`` (seeded lengths of 2 to 5), ``none`` (every step is
a start: the no-LM ablation, where inference may open a skill anywhere).

Quality (:func:`segmentation_quality`): boundary precision / recall / F1 of the starts against the
expert bot's subgoal changes (``Demo.subgoal_starts``) within a tolerance, macro (mean over demos) and
micro (pooled counts), with the mean segment length and counts by source and reason.

Files: the segmentation folder of :mod:`lmscope.skills.types` (``manifest.json`` + ``segments.jsonl``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from lmscope._io import read_jsonl_numbered, read_text, write_json, write_jsonl
from lmscope.errors import LmscopeError
from lmscope.lm.base import LanguageModel
from lmscope.progress import progress
from lmscope.skills.types import Demo, Segmentation, boundary_f1, pooled_f1

MIN_LEN, MAX_LEN = 2, 5  # actions per segment
FALLBACK_SIZE = 3  # the fallback rule: fixed_segments(T, 3)
METHODS = ("lm", "fixed", "random", "none")
MAX_TOKENS = 160  # tokens of one answer (about 12 segment lines)
ANSWER_PREFIX = "1-"  # the prompt ends with the start of the first line; the answer is this + completion
STOP = ("\n\n", "\nMission:", "\nSkills:", "\nActions:")
MAX_DESCRIPTION = 120  # characters of a description kept

# Repairs (the answer is kept, source "repaired"); reason = the codes applied, in order, comma-separated.
REPAIRS = {
    "leading-text": "text before the first range line was ignored",
    "trailing-text": "text from the first non-range line after the ranges on was ignored",
    "zero-based": "the ranges were numbered from 0 throughout; shifted to 1-based",
    "duplicate": "a line whose range lies inside the previous line's was dropped",
    "clipped": "the last range ran past the last action and was cut at T",
    "beyond-end": "ranges after all actions were covered, starting past the last action, were ignored",
    "tail-joined": "one action missing at the end was joined to the last segment",
    "tail-added": "2 to 5 actions missing at the end became one more segment (no description)",
    "single-step": "a one-action line (N: ...) was read as a one-action segment",
    "merged-short": "a one-action segment was merged into the previous (else the next) segment",
}
# Rejections (the fallback rule is used instead, reason = the code).
REJECTIONS = {
    "empty-demo": "the demo has no actions",
    "empty": "the answer is empty or only white space (or not text)",
    "no-ranges": "no line of the form FIRST-LAST: description",
    "out-of-order": "a range runs backwards (FIRST > LAST) or starts before the previous one",
    "gap": "actions are skipped between two ranges (or before the first)",
    "overlap": "a range overlaps the previous one without lying inside it",
    "out-of-range": "a range starts past the last action before all are covered, or a range before the last "
                    "ends past it",
    "incomplete": "more than 5 actions are missing at the end",
    "too-short": "a one-action segment could not be merged into a neighbour within 5 actions",
    "too-long": "a segment has more than 5 actions",
}

_RANGE = re.compile(r"^\s*(?:[-*\u2022]\s*)?(?:(?:steps?|actions?)\s*)?\(?(\d{1,6})\s*(?:-|\u2013|\u2014|to|\.\.)\s*"
                    r"(\d{1,6})\)?\s*(?:[:.)=]|-(?!\d))\s*(.*)$", re.IGNORECASE)
_SINGLE = re.compile(r"^\s*(?:[-*\u2022]\s*)?(?:(?:steps?|actions?)\s*)?\(?(\d{1,6})\)?\s*[:)=]\s*(.*)$",
                     re.IGNORECASE)

INSTRUCTION = (
    "An agent in a grid world carried out a mission step by step. Split its numbered actions into "
    "consecutive skills of 2 to 5 actions each. Cover every action exactly once and in order, from the "
    "first to the last. Write one line per skill, FIRST-LAST: a short description of what the skill does."
)

# Hand-written BabyAI-like episodes (not from any generated demo): (mission, steps, answer lines).
EXAMPLES = (
    ("pick up the blue key",
     ("turn left", "move forward", "move forward", "turn right", "move forward", "pick up the blue key"),
     ("1-3: turn left and walk toward the key", "4-6: face the key, step up to it and pick it up")),
    ("open the red door, then put the yellow ball next to the grey box",
     ("turn right", "move forward", "move forward", "open the red door", "move forward", "move forward",
      "turn left", "pick up the yellow ball", "turn right", "move forward", "drop the yellow ball"),
     ("1-4: go to the red door and open it", "5-8: go through the door and pick up the yellow ball",
      "9-11: carry the ball next to the grey box and drop it")),
)


# ------------------------------------------------------------------------------------------ prompt
def _episode(mission: str, steps) -> str:
    lines = [f"Mission: {mission}", "Actions:"]
    lines += [f"{t}. {text}" for t, text in enumerate(steps, 1)]
    return "\n".join(lines)


def segment_prompt(demo: Demo) -> str:
    """A few-shot completion prompt: the instruction, worked examples, the demo's mission and numbered
    steps, and the start of the answer (:data:`ANSWER_PREFIX`)."""
    parts = [INSTRUCTION, ""]
    for mission, steps, answer in EXAMPLES:
        parts += [_episode(mission, steps), "Skills:", *answer, ""]
    parts += [_episode(demo.mission, demo.steps), "Skills:", ANSWER_PREFIX]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ reading answers
def _items(answer: str, repairs: list[str]) -> list[tuple[int, int, str, bool]]:
    """The range lines ``(first, last, description, single)`` up to the first other line after them."""
    items: list[tuple[int, int, str, bool]] = []
    leading = False
    lines = answer.splitlines()
    for k, line in enumerate(lines):
        if not line.strip():
            if items:
                if any(rest.strip() for rest in lines[k:]):
                    repairs.append("trailing-text")
                break
            continue
        m = _RANGE.match(line)
        if m:
            items.append((int(m[1]), int(m[2]), m[3].strip(), False))
            continue
        m = _SINGLE.match(line)
        if m:
            items.append((int(m[1]), int(m[1]), m[2].strip(), True))
            continue
        if items:
            repairs.append("trailing-text")
            break
        leading = True
    if leading and items:
        repairs.insert(0, "leading-text")
    return items


def _note(repairs: list[str], code: str) -> None:
    if code not in repairs:
        repairs.append(code)


def parse_segments(answer, length: int) -> tuple[Segmentation | None, str | None]:
    """Read an LM answer for a demo of ``length`` actions: ``(segmentation, None)`` when accepted (source
    ``"lm"``, or ``"repaired"`` with the repair codes in ``reason``), ``(None, code)`` when rejected (a
    code of :data:`REJECTIONS`). Never raises."""
    try:
        return _parse(answer, int(length))
    except Exception:  # noqa: BLE001 - a reader of model output must not raise; a bug here is a rejection
        return None, "no-ranges"


def _parse(answer, length: int) -> tuple[Segmentation | None, str | None]:
    if length < 1:
        return None, "empty-demo"
    if not isinstance(answer, str) or not answer.strip():
        return None, "empty"
    repairs: list[str] = []
    items = _items(answer, repairs)
    if not items:
        return None, "no-ranges"
    if any(single for *_, single in items):
        _note(repairs, "single-step")
    base = 0 if items[0][0] == 0 else 1
    if base == 0:
        _note(repairs, "zero-based")
    # half-open 0-based spans, in the answer's order
    spans: list[list] = []  # [start, end, description]
    for k, (a, b, desc, _) in enumerate(items):
        start, end = a - base, b - base + 1
        if start < 0 or end <= start:
            return None, "out-of-order"
        if start >= length:
            if spans and spans[-1][1] == length:
                _note(repairs, "beyond-end")
                break
            return None, "out-of-range"
        if end > length:
            if k != len(items) - 1:
                return None, "out-of-range"
            end = length
            _note(repairs, "clipped")
        desc = desc[:MAX_DESCRIPTION]
        if not spans:
            if start != 0:
                return None, "gap"
            spans.append([start, end, desc])
            continue
        ps, pe, _ = spans[-1]
        if start == pe:
            spans.append([start, end, desc])
        elif start >= ps and end <= pe:
            _note(repairs, "duplicate")
        elif start < ps:
            return None, "out-of-order"
        elif start < pe:
            return None, "overlap"
        else:
            return None, "gap"
    missing = length - spans[-1][1]
    if missing > 0:
        last_len = spans[-1][1] - spans[-1][0]
        if missing == 1 and last_len + 1 <= MAX_LEN:
            spans[-1][1] = length
            _note(repairs, "tail-joined")
        elif MIN_LEN <= missing <= MAX_LEN:
            spans.append([spans[-1][1], length, ""])
            _note(repairs, "tail-added")
        else:
            return None, "incomplete"
    if length >= MIN_LEN:
        k = 0
        while k < len(spans):
            s, e, _ = spans[k]
            if e - s >= MIN_LEN:
                k += 1
                continue
            if k > 0 and spans[k - 1][1] - spans[k - 1][0] + 1 <= MAX_LEN:
                spans[k - 1][1] = e
                del spans[k]
            elif k + 1 < len(spans) and spans[k + 1][1] - spans[k + 1][0] + 1 <= MAX_LEN:
                spans[k + 1][0] = s
                del spans[k]
            else:
                return None, "too-short"
            _note(repairs, "merged-short")
        if any(e - s > MAX_LEN for s, e, _ in spans):
            return None, "too-long"
    elif len(spans) != 1:  # pragma: no cover - one action admits one span only
        return None, "overlap"
    seg = Segmentation(starts=[s for s, _, _ in spans], descriptions=[d for *_, d in spans],
                       source="repaired" if repairs else "lm", reason=",".join(repairs) or None, answer=answer)
    return seg, None


# ------------------------------------------------------------------------------------------ ablations
def _check_length(length) -> int:
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise LmscopeError(f"a demo must have at least one action, got length {length!r}")
    return int(length)


def fixed_segments(length: int, size: int = FALLBACK_SIZE) -> Segmentation:
    """Segments of ``size`` actions (source ``"fixed"``); a remainder of one action joins the last segment,
    so every segment has 2 to 5 actions when ``length >= 2``."""
    length = _check_length(length)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_LEN <= size <= MAX_LEN - 1:
        raise LmscopeError(f"fixed segment size must be an integer from {MIN_LEN} to {MAX_LEN - 1}, got {size!r}")
    starts = list(range(0, length, int(size)))
    if len(starts) > 1 and length - starts[-1] == 1:
        starts.pop()
    return Segmentation(starts=starts, descriptions=[""] * len(starts), source="fixed")


def random_segments(length: int, rng: np.random.Generator | int) -> Segmentation:
    """Segments of random lengths 2 to 5 (uniform among the lengths that leave a coverable rest), source
    ``"random"``; ``rng`` is a numpy Generator or a seed."""
    length = _check_length(length)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    starts, pos = [], 0
    while pos < length:
        starts.append(pos)
        rest = length - pos
        if rest < MIN_LEN:
            break
        choices = [n for n in range(MIN_LEN, MAX_LEN + 1) if n == rest or rest - n >= MIN_LEN]
        pos += int(choices[int(rng.integers(len(choices)))])
    return Segmentation(starts=starts, descriptions=[""] * len(starts), source="random")


def all_boundaries(length: int) -> Segmentation:
    """Every step is a start (source ``"none"``): the no-LM ablation, inference may open a skill anywhere."""
    length = _check_length(length)
    return Segmentation(starts=list(range(length)), descriptions=[""] * length, source="none")


# ------------------------------------------------------------------------------------------ segmenting demos
def lm_segment(lm: LanguageModel, demo: Demo, *, max_tokens: int = MAX_TOKENS) -> Segmentation:
    """One LM call for ``demo``; a rejected answer falls back to ``fixed_segments(T, 3)`` (source
    ``"fallback"``, reason: the rejection code, ``answer`` kept)."""
    out = lm.generate([segment_prompt(demo)], max_tokens=max_tokens, temperature=0.0, stop=list(STOP))
    text = out[0][0] if out and out[0] else ""
    answer = ANSWER_PREFIX + (text if isinstance(text, str) else "")
    seg, why = parse_segments(answer, len(demo))
    if seg is None:
        seg = fixed_segments(len(demo), FALLBACK_SIZE)
        seg.source, seg.reason, seg.answer = "fallback", why, answer
    return seg


def segment_demos(demos, method: str, *, lm: LanguageModel | None = None, seed: int = 0,
                  max_tokens: int = MAX_TOKENS, quiet: bool | None = None) -> list[Segmentation]:
    """A segmentation per demo by ``method`` (``lm``, ``fixed``, ``random``, ``none``). ``lm``: one
    generate call per demo (a cached LM keeps each answer as it comes, so a stopped run resumes);
    ``random``: demo ``i`` draws from ``default_rng([seed, i])``."""
    if method not in METHODS:
        raise LmscopeError(f"unknown segmentation method {method!r} (choose from {', '.join(METHODS)})")
    if method == "lm" and not isinstance(lm, LanguageModel):
        raise LmscopeError("segmentation method 'lm' needs a language model")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise LmscopeError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    demos = list(demos)
    for i, demo in enumerate(demos):
        if len(demo) < 1:
            raise LmscopeError(f"demo {i} has no actions")
    out = []
    for i, demo in enumerate(progress(demos, desc=f"segment ({method})", quiet=quiet)):
        if method == "lm":
            out.append(lm_segment(lm, demo, max_tokens=max_tokens))
        elif method == "fixed":
            out.append(fixed_segments(len(demo), FALLBACK_SIZE))
        elif method == "random":
            out.append(random_segments(len(demo), np.random.default_rng([int(seed), i])))
        else:
            out.append(all_boundaries(len(demo)))
    return out


# ------------------------------------------------------------------------------------------ files
def _read_manifest(path: Path, what: str, fmt: str) -> tuple[dict, str]:
    """A manifest JSON object of format ``fmt`` and its text; errors name the file."""
    text = read_text(path, what)
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise LmscopeError(f"{path}: malformed JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        raise LmscopeError(f"{path}: not a {what} (format is not {fmt!r})")
    return manifest, text


def _demos_manifest(demos_dir: Path) -> tuple[dict, str]:
    """The demo folder's manifest and the sha256 of its bytes; errors name the file."""
    path = Path(demos_dir) / "manifest.json"
    manifest, text = _read_manifest(path, "demos manifest", "lmscope-demos")
    count = manifest.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise LmscopeError(f"{path}: 'count' must be a non-negative integer, got {count!r}")
    return manifest, hashlib.sha256(text.encode("utf-8")).hexdigest()


def _demo_lengths(demos_dir: Path, count: int) -> list[int]:
    path = Path(demos_dir) / "arrays.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            offsets = np.asarray(z["offsets"], dtype=np.int64)
    except FileNotFoundError:
        raise LmscopeError(f"no such demos arrays file: {path}") from None
    except Exception as e:  # noqa: BLE001 - a damaged npz can raise many kinds
        raise LmscopeError(f"{path}: cannot read the demo offsets ({type(e).__name__}: {e})") from None
    if offsets.ndim != 1 or len(offsets) != count + 1 or (np.diff(offsets) < 0).any():
        raise LmscopeError(f"{path}: 'offsets' does not describe {count} demos")
    return np.diff(offsets).astype(int).tolist()


def write_segments(folder, segmentations, *, demos_dir, method: str, lm_identity=None) -> Path:
    """Write ``segments.jsonl`` and ``manifest.json`` (each atomically) into the existing ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LmscopeError(f"no such folder to write segments into: {folder}")
    if method not in METHODS:
        raise LmscopeError(f"unknown segmentation method {method!r} (choose from {', '.join(METHODS)})")
    demos_dir = Path(demos_dir).expanduser().resolve()
    manifest, sha = _demos_manifest(demos_dir)
    segmentations = list(segmentations)
    if len(segmentations) != manifest["count"]:
        raise LmscopeError(f"{len(segmentations)} segmentations for {manifest['count']} demos in {demos_dir}")
    write_jsonl(folder / "segments.jsonl", ({"index": i, **s.to_dict()} for i, s in enumerate(segmentations)))
    counts = dict(sorted(Counter(s.source for s in segmentations).items()))
    write_json(folder / "manifest.json", {"format": "lmscope-segments", "version": 1, "demos": str(demos_dir),
                                          "demos_sha256": sha, "method": method, "lm": lm_identity,
                                          "counts": counts})
    return folder


def segments_demos_dir(manifest: dict) -> Path:
    """The demo folder a segmentation manifest was made from."""
    return Path(manifest["demos"])


def load_segments(seg_dir) -> tuple[dict, list[Segmentation]]:
    """Read a segmentation folder, checking it against its demos: the demo folder must still exist with
    the same manifest (sha256), one valid row per demo. Errors name the file (and line)."""
    seg_dir = Path(seg_dir)
    if not seg_dir.is_dir():
        raise LmscopeError(f"no such segmentation folder: {seg_dir}")
    path = seg_dir / "manifest.json"
    manifest, _ = _read_manifest(path, "segmentation manifest", "lmscope-segments")
    if manifest.get("version") != 1:
        raise LmscopeError(f"{path}: unsupported version {manifest.get('version')!r} (this lmscope reads 1)")
    for key in ("demos", "demos_sha256", "method"):
        if not isinstance(manifest.get(key), str):
            raise LmscopeError(f"{path}: missing or invalid {key!r}")
    if manifest["method"] not in METHODS:
        raise LmscopeError(f"{path}: unknown method {manifest['method']!r}")
    demos_dir = segments_demos_dir(manifest)
    if not (demos_dir / "manifest.json").is_file():
        raise LmscopeError(f"{path}: the demos folder {demos_dir} is gone (no manifest.json there)")
    demos_manifest, sha = _demos_manifest(demos_dir)
    if sha != manifest["demos_sha256"]:
        raise LmscopeError(f"{path}: the demos folder {demos_dir} changed since it was segmented "
                           "(its manifest.json differs); segment it again")
    lengths = _demo_lengths(demos_dir, demos_manifest["count"])
    rows_path = seg_dir / "segments.jsonl"
    rows = read_jsonl_numbered(rows_path)
    if len(rows) != len(lengths):
        raise LmscopeError(f"{rows_path}: {len(rows)} rows for {len(lengths)} demos in {demos_dir}")
    segs = []
    for i, ((lineno, row), length) in enumerate(zip(rows, lengths)):
        where = f"{rows_path}:{lineno}"
        if row.get("index") != i:
            raise LmscopeError(f"{where}: expected index {i}, got {row.get('index')!r}")
        starts = row.get("starts")
        if (not isinstance(starts, list) or not starts
                or not all(isinstance(s, int) and not isinstance(s, bool) for s in starts)):
            raise LmscopeError(f"{where}: 'starts' must be a non-empty list of integers")
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] >= length:
            raise LmscopeError(f"{where}: invalid starts {starts} for a demo of {length} actions (they must "
                               "begin at 0, increase strictly and stay below the length)")
        descriptions = row.get("descriptions") or []
        if not isinstance(descriptions, list) or not all(isinstance(d, str) for d in descriptions):
            raise LmscopeError(f"{where}: 'descriptions' must be a list of strings")
        if not isinstance(row.get("source", "lm"), str):
            raise LmscopeError(f"{where}: 'source' must be a string")
        segs.append(Segmentation.from_dict(row))
    return manifest, segs


# ------------------------------------------------------------------------------------------ quality
def segmentation_quality(demos, segmentations, tolerance: int = 1) -> dict:
    """Boundary precision / recall / F1 against the bot's subgoal starts (macro: mean over demos;
    micro: from pooled hits), mean segment length, counts by source and by reason code."""
    demos, segmentations = list(demos), list(segmentations)
    if len(demos) != len(segmentations):
        raise LmscopeError(f"{len(segmentations)} segmentations for {len(demos)} demos")
    per = [boundary_f1(s.starts, d.subgoal_starts(), len(d), tolerance) for d, s in zip(demos, segmentations)]
    n_segments = sum(len(s.starts) for s in segmentations)
    n_actions = sum(len(d) for d in demos)
    reasons: Counter = Counter()
    for s in segmentations:
        for code in (s.reason or "").split(","):
            if code:
                reasons[code] += 1

    def mean(key):
        return float(np.mean([p[key] for p in per])) if per else float("nan")

    return {"demos": len(demos), "tolerance": tolerance, "precision": mean("precision"),
            "recall": mean("recall"), "f1": mean("f1"),
            "micro": pooled_f1(per),
            "segments": n_segments,
            "mean_segment_length": n_actions / n_segments if n_segments else float("nan"),
            "by_source": dict(sorted(Counter(s.source for s in segmentations).items())),
            "by_reason": dict(sorted(reasons.items()))}
