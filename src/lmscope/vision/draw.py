"""Drawing: a language model writes code that draws each concept; the code runs in the sandbox to an image.

For each concept and language, ``samples`` answers are sampled at ``temperature`` from the chat prompt of
:func:`draw_prompt` (sample ``k`` with seed ``seed + k``, so a rerun gives the same answers, and the LM cache
makes it free); the code is taken out of the answer (:func:`lmscope.vision.render.extract_code`) and
rendered in the sandbox pool (:func:`lmscope.vision.render.render_many`).

The drawing folder
------------------
``drawing.json``
    The manifest: the LM's identity and spec, languages, tiers, concepts, samples, temperature, seed, the
    prompt templates, the sandbox limits and backend, and counts of every outcome.
``samples.jsonl``
    One row per sample: ``concept``, ``tier``, ``text``, ``imagenet``, ``language``, ``sample``, ``prompt``
    (the chat messages), ``answer`` (the LM's whole reply), ``code`` (a path), ``outcome``, ``detail``,
    ``seconds`` and ``image`` (a path, when there is one).
``code/<concept>-<language>-<k>.py|svg`` and ``images/<tier>/<concept>-<language>-<k>.png``
    The code as it was run, and the image (RGB, 256 x 256, letterboxed on white).
``<tier>/index.html``
    A gallery per tier (written by the report layer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmscope._io import write_json, write_text
from lmscope.errors import LmscopeError
from lmscope.progress import progress
from lmscope.sandbox import Limits, sandbox_backend
from lmscope.vision.concepts import Concept
from lmscope.vision.render import (
    DEFAULT_LIMITS,
    LANGUAGES,
    OUTCOMES,
    Render,
    check_language,
    extract_code,
    render_many,
)

MANIFEST = "drawing.json"
ROWS = "samples.jsonl"
EXTENSIONS = {"python": "py", "svg": "svg"}

SYSTEM = "You are an expert programmer who draws pictures with code."
TEMPLATES = {
    "python": ("Write a complete Python program that uses matplotlib to draw {text}. Make the drawing "
               "recognisable, with colours and shapes. Save the figure to 'image.png'. Reply with the code "
               "only, in one ```python block."),
    "svg": ("Write an SVG image, 256 by 256 pixels, that draws {text}. Make the drawing recognisable, with "
            "colours and shapes. Reply with the SVG document only, in one ```svg block."),
}


def draw_prompt(concept: Concept, language: str) -> list[dict]:
    """The chat messages that ask for a drawing of ``concept`` in ``language``."""
    check_language(language)
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": TEMPLATES[language].format(text=concept.text)}]


@dataclass
class Sample:
    concept: Concept
    language: str
    sample: int
    prompt: list[dict]
    answer: str
    code: str
    render: Render | None = None
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        rnd = self.extra.get("round")
        return f"{self.concept.id}-{self.language}-{self.sample}" + (f"-r{rnd}" if rnd is not None else "")

    def row(self) -> dict:
        r = self.render
        return {"concept": self.concept.id, "tier": self.concept.tier, "text": self.concept.text,
                "imagenet": list(self.concept.imagenet), "language": self.language, "sample": self.sample,
                "prompt": self.prompt, "answer": self.answer, "code": f"code/{self.name}.{EXTENSIONS[self.language]}",
                "outcome": r.outcome if r else None, "detail": r.detail if r else "",
                "seconds": round(r.seconds, 3) if r else None,
                "image": (f"images/{self.concept.tier}/{self.name}.png" if r is not None and r.image is not None
                          else None), **self.extra}


def check_draw_args(samples: int, temperature: float, max_tokens: int) -> None:
    if not 1 <= samples <= 1000:
        raise LmscopeError(f"--samples must be between 1 and 1000, got {samples}")
    if not (temperature == temperature and 0.0 <= temperature <= 5.0):
        raise LmscopeError(f"--temperature must be between 0 and 5, got {temperature}")
    if not 16 <= max_tokens <= 8192:
        raise LmscopeError(f"--max-tokens must be between 16 and 8192, got {max_tokens}")


def generate_code(lm, concepts: list[Concept], languages: list[str], samples: int, *, temperature: float = 0.8,
                  seed: int = 0, max_tokens: int = 768, quiet: bool = False) -> list[Sample]:
    """Ask ``lm`` (anything with ``.generate``) for ``samples`` drawings of each concept in each language."""
    check_draw_args(samples, temperature, max_tokens)
    for lang in languages:
        check_language(lang)
    out: list[Sample] = []
    jobs = [(c, lang) for c in concepts for lang in languages]
    with progress(total=len(jobs) * samples, desc="drawing code", unit="sample", quiet=quiet or None) as bar:
        for concept, lang in jobs:
            prompt = draw_prompt(concept, lang)
            for k in range(samples):
                answer = lm.generate([prompt], max_tokens=max_tokens, temperature=temperature,
                                     n=1, seed=seed + k)[0][0]
                out.append(Sample(concept, lang, k, prompt, answer, extract_code(answer, lang)))
                bar.update(1)
    return out


def render_samples(samples: list[Sample], *, limits: Limits | None = None, jobs: int | None = None,
                   unsafe: bool = False, quiet: bool = False) -> list[Sample]:
    """Render every sample's code in the sandbox pool (sets ``sample.render``)."""
    with progress(total=len(samples), desc="rendering", unit="sample", quiet=quiet or None) as bar:
        renders = render_many([(s.code, s.language) for s in samples], limits=limits or DEFAULT_LIMITS,
                              jobs=jobs, unsafe=unsafe, on_done=lambda i, r: bar.update(1))
    for s, r in zip(samples, renders):
        s.render = r
    return samples


def outcome_counts(rows: list[dict]) -> dict:
    """Counts of each outcome per (tier, language) and overall."""
    table: dict[str, dict[str, int]] = {}
    for r in rows:
        for key in (f"{r['tier']}/{r['language']}", "all"):
            table.setdefault(key, dict.fromkeys(("samples",) + OUTCOMES, 0))
            table[key]["samples"] += 1
            table[key][r["outcome"]] += 1
    return table


def write_drawing(folder: Path, samples: list[Sample], manifest: dict) -> dict:
    """Write the drawing folder (into ``folder``, normally the temporary folder of an output)."""
    from PIL import Image

    folder = Path(folder)
    (folder / "code").mkdir(parents=True, exist_ok=True)
    rows = []
    for s in samples:
        write_text(folder / "code" / f"{s.name}.{EXTENSIONS[s.language]}", s.code)
        row = s.row()
        if row["image"]:
            path = folder / row["image"]
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(s.render.image).save(path, format="PNG")
        rows.append(row)
    write_text(folder / ROWS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    manifest = {**manifest, "outcomes": outcome_counts(rows), "samples_total": len(rows)}
    write_json(folder / MANIFEST, manifest)
    return manifest


def drawing_manifest(lm, concepts: list[Concept], languages: list[str], samples: int, temperature: float,
                     seed: int, max_tokens: int, limits: Limits | None, unsafe: bool) -> dict:
    from dataclasses import asdict

    return {"lm": getattr(lm, "spec", str(lm)), "lm_identity": lm.identity() if hasattr(lm, "identity") else None,
            "languages": languages, "tiers": sorted({c.tier for c in concepts}), "concepts": [c.id for c in concepts],
            "samples": samples, "temperature": temperature, "seed": seed, "max_tokens": max_tokens,
            "system": SYSTEM, "templates": {k: TEMPLATES[k] for k in languages},
            "limits": asdict(limits or DEFAULT_LIMITS), "sandbox": sandbox_backend(unsafe)}


# ------------------------------------------------------------------------------------------------
# Reading a drawing folder back
# ------------------------------------------------------------------------------------------------
@dataclass
class Drawing:
    folder: Path
    manifest: dict
    rows: list[dict]

    def image(self, row: dict) -> np.ndarray | None:
        from PIL import Image

        if not row.get("image"):
            return None
        with Image.open(self.folder / row["image"]) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()

    def code(self, row: dict) -> str:
        return (self.folder / row["code"]).read_text(encoding="utf-8", errors="replace")

    def concepts(self) -> dict[str, Concept]:
        """The concept of each concept id in the rows: the bundled set's (with its shapes spec), or one rebuilt
        from the row for a concept the bundled set lacks."""
        from lmscope.vision.concepts import concept_by_id

        out: dict[str, Concept] = {}
        for r in self.rows:
            if r["concept"] not in out:
                try:
                    out[r["concept"]] = concept_by_id(r["concept"])
                except LmscopeError:
                    out[r["concept"]] = Concept(r["concept"], r["tier"], r.get("text", r["concept"]),
                                                tuple(r.get("imagenet") or ()))
        return out


def load_drawing(folder) -> Drawing:
    """A drawing folder written by ``lmscope vision draw`` (or ``correct``); damage is one clear error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LmscopeError(f"{folder}: " + ("not a folder; a drawing folder is expected" if folder.exists()
                                            else "no such drawing folder"))
    mpath, rpath = folder / MANIFEST, folder / ROWS
    if not mpath.is_file() or not rpath.is_file():
        raise LmscopeError(f"{folder}: not a drawing folder of lmscope vision draw (no {MANIFEST} / {ROWS})")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise LmscopeError(f"{mpath}: unreadable manifest ({str(e)[:100]})") from None
    rows = []
    need = ("concept", "tier", "language", "sample", "outcome", "code")
    for n, line in enumerate(rpath.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise LmscopeError(f"{rpath}:{n}: not JSON") from None
        if not isinstance(row, dict) or any(k not in row for k in need):
            raise LmscopeError(f"{rpath}:{n}: a sample row needs {', '.join(need)}")
        if row["language"] not in LANGUAGES or row["outcome"] not in OUTCOMES:
            raise LmscopeError(f"{rpath}:{n}: unknown language or outcome")
        for key in ("code", "image"):
            p = row.get(key)
            if p and (Path(p).is_absolute() or ".." in Path(p).parts):
                raise LmscopeError(f"{rpath}:{n}: {key} path {p!r} leaves the folder")
        rows.append(row)
    if not rows:
        raise LmscopeError(f"{folder}: the drawing folder has no samples")
    return Drawing(folder, manifest, rows)


def outcome_lines(counts: dict) -> list[str]:
    lines = []
    for key, c in counts.items():
        if key == "all":
            continue
        rendered = c["image"] / c["samples"] if c["samples"] else 0.0
        failed = ", ".join(f"{k} {v}" for k, v in c.items() if k not in ("samples", "image") and v)
        lines.append(f"{key}: {c['image']}/{c['samples']} rendered ({rendered:.0%})" + (f"; {failed}" if failed else ""))
    return lines
