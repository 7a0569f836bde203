"""Self-correction: the language model improves its own drawing code for R rounds.

Round 0 is the drawing folder as given. In round r >= 1 every sample's code of round r - 1 goes back to the
LM with the concept (:func:`correction_prompt`): if the code failed, the failure's one line is quoted; with
``feedback="classifier"`` (the ablation) the classifier's top-3 labels of the current image are quoted
too. The answer's code is rendered in the sandbox pool and scored like round 0, so the curve of rendering
rate, fidelity, top-5 rate and shapes pass over rounds is measured on the same samples. Sample ``k`` of
round ``r`` uses seed ``seed + 1000 r + k``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmscope.errors import LmscopeError
from lmscope.progress import progress
from lmscope.vision.concepts import Concept
from lmscope.vision.draw import SYSTEM, Drawing, Sample, render_samples
from lmscope.vision.render import Render, extract_code
from lmscope.vision.score import _mean, score_images
from lmscope.vision.shapes import check_shapes

FEEDBACK = ("none", "classifier")
FENCE = {"python": "python", "svg": "svg"}


def correction_prompt(concept: Concept, language: str, code: str, failure: str | None,
                      labels: list[str] | None) -> list[dict]:
    """The chat messages asking to improve ``code`` (see the module docstring)."""
    lang_name = "Python (matplotlib)" if language == "python" else "SVG"
    parts = [f"Here is {lang_name} code that is meant to draw {concept.text}:",
             f"```{FENCE[language]}\n{code.rstrip()}\n```"]
    if failure:
        parts.append(f"Running it failed: {failure}")
    if labels:
        parts.append("An image classifier sees the current drawing as: " + ", ".join(labels) + ".")
    parts.append(f"Improve the code so that the drawing shows {concept.text} more clearly and faithfully. "
                 f"Reply with the complete improved code only, in one ```{FENCE[language]} block.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


@dataclass
class CorrectionResult:
    rows: list[dict]           # every sample of every round
    curve: list[dict]          # one row per (round, tier, language)

    def summary(self) -> list[str]:
        def f(x, pct=False):
            return "-" if x is None else (f"{x:.0%}" if pct else f"{x:.3f}")
        lines = [f"{'round':>5} {'tier/language':<18} {'rendered':>8} {'fidelity':>8} {'top-5':>6} {'shapes':>7}"]
        for c in self.curve:
            lines.append(f"{c['round']:>5} {c['tier'] + '/' + c['language']:<18} {f(c['rendered'], True):>8} "
                         f"{f(c['fidelity_all']):>8} {f(c['top5'], True):>6} {f(c['shapes_pass'], True):>7}")
        return lines

    def to_dict(self) -> dict:
        return {"curve": self.curve}


def _score_round(samples: list[Sample], classifier) -> list[dict]:
    """Per sample: fidelity (0 when it failed), top-5 hit, shapes pass, top labels."""
    ok = [i for i, s in enumerate(samples) if s.render is not None and s.render.outcome == "image"]
    scored = score_images([samples[i].render.image for i in ok], [samples[i].concept.imagenet for i in ok],
                          classifier) if ok else []
    out = [{} for _ in samples]
    for j, i in enumerate(ok):
        out[i] = scored[j]
        spec = samples[i].concept.spec
        if samples[i].concept.tier == "shapes" and spec:
            out[i]["shapes_pass"] = bool(check_shapes(samples[i].render.image, spec).passed)
    return out


def _curve(rows: list[dict]) -> list[dict]:
    curve = []
    for rnd, tier, lang in sorted({(r["round"], r["tier"], r["language"]) for r in rows}):
        sel = [r for r in rows if (r["round"], r["tier"], r["language"]) == (rnd, tier, lang)]
        ok = [r for r in sel if r["outcome"] == "image"]
        cls = [r for r in sel if r.get("imagenet")]
        curve.append({"round": rnd, "tier": tier, "language": lang, "samples": len(sel),
                      "rendered": len(ok) / len(sel),
                      "fidelity_all": _mean((r.get("fidelity") or 0.0) for r in cls) if cls else None,
                      "top5": _mean(float(bool(r.get("top5_hit"))) for r in cls) if cls else None,
                      "shapes_pass": (_mean(float(bool(r.get("shapes_pass"))) for r in sel)
                                      if tier == "shapes" else None)})
    return curve


def _from_drawing(drawing: Drawing, first: int | None = None) -> list[Sample]:
    concepts = drawing.concepts()
    out = []
    last = max((int(r.get("round", 0)) for r in drawing.rows), default=0)   # a corrected folder: its last round
    for r in drawing.rows:
        if first is not None and int(r["sample"]) >= first or int(r.get("round", 0)) != last:
            continue
        image = drawing.image(r)
        out.append(Sample(concepts[r["concept"]], r["language"], int(r["sample"]), r.get("prompt") or [], r.get("answer", ""),
                          drawing.code(r), Render(r["outcome"], r.get("detail", ""), image=image)))
    return out


def self_correct(lm, drawing: Drawing, rounds: int, classifier, *, feedback: str = "none",
                 temperature: float = 0.8, seed: int = 0, max_tokens: int = 768, limits=None, jobs=None,
                 unsafe: bool = False, quiet: bool = False, first: int | None = None
                 ) -> tuple[list[Sample], CorrectionResult]:
    """Run ``rounds`` rounds of self-correction on every sample of ``drawing`` (with ``first``: on samples
    0 .. first-1 of each concept and language only)."""
    if feedback not in FEEDBACK:
        raise LmscopeError(f"unknown feedback {feedback!r}; choose one of {', '.join(FEEDBACK)}")
    if not 1 <= rounds <= 20:
        raise LmscopeError(f"--rounds must be between 1 and 20, got {rounds}")
    current = _from_drawing(drawing, first)
    if not current:
        raise LmscopeError(f"{drawing.folder}: no samples to correct")
    all_samples: list[Sample] = []
    rows: list[dict] = []

    def record(samples: list[Sample], rnd: int, scores: list[dict]) -> None:
        for s, sc in zip(samples, scores):
            s.extra = {"round": rnd, **{k: sc.get(k) for k in ("fidelity", "top5_hit", "shapes_pass")}}
            all_samples.append(s)
            rows.append({"round": rnd, "tier": s.concept.tier, "language": s.language,
                         "imagenet": list(s.concept.imagenet), "outcome": s.render.outcome, **sc})

    scores = _score_round(current, classifier)
    record(current, 0, scores)
    for rnd in range(1, rounds + 1):
        nxt = []
        with progress(total=len(current), desc=f"round {rnd} code", unit="sample", quiet=quiet or None) as bar:
            for s, sc in zip(current, scores):
                failure = None if s.render.outcome == "image" else f"{s.render.outcome}: {s.render.detail}"[:300]
                labels = [t[1] for t in sc.get("top5", [])[:3]] if feedback == "classifier" else None
                prompt = correction_prompt(s.concept, s.language, s.code, failure, labels)
                answer = lm.generate([prompt], max_tokens=max_tokens, temperature=temperature, n=1,
                                     seed=seed + 1000 * rnd + s.sample)[0][0]
                nxt.append(Sample(s.concept, s.language, s.sample, prompt, answer, extract_code(answer, s.language)))
                bar.update(1)
        render_samples(nxt, limits=limits, jobs=jobs, unsafe=unsafe, quiet=quiet)
        scores = _score_round(nxt, classifier)
        record(nxt, rnd, scores)
        current = nxt
    return all_samples, CorrectionResult(rows, _curve(rows))
