"""Name weight matrices by (layer, role), per architecture family.

Every method speaks one vocabulary of roles:

=========  ===========================================================
role       meaning
=========  ===========================================================
q, k, v    attention query / key / value projections (fused ones split)
o          attention output projection
fc_in      first MLP matrix (Llama ``gate_proj``, GPT-2 ``c_fc``, BERT ``intermediate``)
up         Llama-style ``up_proj`` (no counterpart elsewhere)
fc_out     last MLP matrix (Llama ``down_proj``, GPT-2 ``mlp.c_proj``, BERT ``output.dense``)
=========  ===========================================================

``gate`` is accepted as an alias of ``fc_in`` and ``down`` of ``fc_out``.
Architectures without a table fall back to every 2-D ``*.weight`` with a layer index in its path,
named by that path (role = the part after the layer index).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmscope.errors import LmscopeError

ROLES = ("q", "k", "v", "o", "fc_in", "up", "fc_out")
ROLE_ALIASES = {"gate": "fc_in", "down": "fc_out", "in": "fc_in", "out": "fc_out", "mlp_in": "fc_in",
                "mlp_out": "fc_out", "query": "q", "key": "k", "value": "v", "out_proj": "o"}

# family -> list of (regex on the parameter path after the layer index, role or fused spec)
# A fused spec is a tuple of roles, split along the output dimension.
_LLAMA = [
    (r"self_attn\.q_proj\.weight$", "q"),
    (r"self_attn\.k_proj\.weight$", "k"),
    (r"self_attn\.v_proj\.weight$", "v"),
    (r"self_attn\.o_proj\.weight$", "o"),
    (r"mlp\.gate_proj\.weight$", "fc_in"),
    (r"mlp\.up_proj\.weight$", "up"),
    (r"mlp\.down_proj\.weight$", "fc_out"),
]
_GPTJ = [
    (r"attn\.q_proj\.weight$", "q"),
    (r"attn\.k_proj\.weight$", "k"),
    (r"attn\.v_proj\.weight$", "v"),
    (r"attn\.out_proj\.weight$", "o"),
    (r"mlp\.fc_in\.weight$", "fc_in"),
    (r"mlp\.fc_out\.weight$", "fc_out"),
]
_GPT2 = [
    (r"attn\.c_attn\.weight$", ("q", "k", "v")),
    (r"attn\.c_proj\.weight$", "o"),
    (r"mlp\.c_fc\.weight$", "fc_in"),
    (r"mlp\.c_proj\.weight$", "fc_out"),
]
_NEOX = [
    (r"attention\.query_key_value\.weight$", ("q", "k", "v")),
    (r"attention\.dense\.weight$", "o"),
    (r"mlp\.dense_h_to_4h\.weight$", "fc_in"),
    (r"mlp\.dense_4h_to_h\.weight$", "fc_out"),
]
_BERT = [
    (r"attention\.self\.query\.weight$", "q"),
    (r"attention\.self\.key\.weight$", "k"),
    (r"attention\.self\.value\.weight$", "v"),
    (r"attention\.output\.dense\.weight$", "o"),
    (r"intermediate\.dense\.weight$", "fc_in"),
    (r"(?<!attention\.)output\.dense\.weight$", "fc_out"),
]

# lmscope's own small transformer (models/small.py) and pushdown models (pushdown/model.py)
_SMALL = [
    (r"attn\.q\.weight$", "q"),
    (r"attn\.k\.weight$", "k"),
    (r"attn\.v\.weight$", "v"),
    (r"attn\.o\.weight$", "o"),
    (r"mlp\.fc_in\.weight$", "fc_in"),
    (r"mlp\.fc_out\.weight$", "fc_out"),
]

FAMILIES: dict[str, list] = {"llama": _LLAMA, "gptj": _GPTJ, "gpt2": _GPT2, "neox": _NEOX, "bert": _BERT,
                             "small": _SMALL}

MODEL_TYPE_FAMILY = {
    "llama": "llama", "mistral": "llama", "qwen2": "llama", "qwen3": "llama", "mixtral": "llama",
    "gemma": "llama", "gemma2": "llama", "olmo": "llama", "olmo2": "llama", "granite": "llama",
    "smollm3": "llama", "phi3": "llama",
    "gptj": "gptj",
    "gpt2": "gpt2",
    "gpt_neox": "neox",
    "bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "camembert": "bert", "electra": "bert",
    "lmscope-small": "small",
    "lmscope-pushdown": "small",  # lmscope.pushdown's models: the same weight names (plus depth tables)
}

# Conv1D families store weights as (in, out); we always present (out, in).
TRANSPOSED_FAMILIES = {"gpt2"}

_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block|blk)\.(\d+)\.")
_ANY_INDEX_RE = re.compile(r"\.(\d+)\.")


def canonical_role(role: str) -> str:
    """Map a user-given role (or alias) to the canonical vocabulary (unknown names pass through)."""
    r = role.strip().lower()
    r = ROLE_ALIASES.get(r, r)
    return r


def family_for(model_type: str | None) -> str | None:
    if model_type is None:
        return None
    return MODEL_TYPE_FAMILY.get(model_type.lower())


@dataclass(frozen=True)
class RoleMatch:
    layer: int | None
    role: str          # canonical role, or the generic path-based name
    fused: tuple[str, ...] | None = None  # roles of the blocks of a fused matrix
    transposed: bool = False


def layer_index(name: str) -> int | None:
    m = _LAYER_RE.search(name)
    if m is None:
        m = _ANY_INDEX_RE.search(name)
    return int(m.group(1)) if m else None


def classify(name: str, family: str | None) -> RoleMatch | None:
    """Classify a parameter path. Returns None for tensors that are not analyzed weight matrices.

    With a known family only table entries match; with ``family=None`` the generic fallback is used.
    """
    layer = layer_index(name)
    if family is not None:
        table = FAMILIES[family]
        for pattern, role in table:
            if re.search(pattern, name):
                if layer is None:
                    return None
                if isinstance(role, tuple):
                    return RoleMatch(layer, role[0], fused=role, transposed=family in TRANSPOSED_FAMILIES)
                return RoleMatch(layer, role, transposed=family in TRANSPOSED_FAMILIES)
        return None
    # generic fallback: any "*.weight" under an indexed block; the role is the path after the index
    if layer is None or not name.endswith(".weight"):
        return None
    m = _LAYER_RE.search(name) or _ANY_INDEX_RE.search(name)
    rest = name[m.end():]
    rest = rest[: -len(".weight")]
    if not rest or "norm" in rest.lower() or rest.lower().startswith("ln"):
        return None
    return RoleMatch(layer, rest)


def check_roles(roles, available) -> list[str]:
    """Canonicalize requested roles and check they exist in ``available``."""
    out = []
    for r in roles:
        c = canonical_role(r)
        if c not in available:
            raise LmscopeError(
                f"unknown role {r!r} for this model; it has: {', '.join(sorted(available))}"
            )
        out.append(c)
    return out


def module_regex(family: str, roles) -> str:
    """A regex that fully matches the module paths holding ``roles`` (e.g. for PEFT ``target_modules``)."""
    want = {canonical_role(r) for r in roles}
    parts = []
    for pattern, role in FAMILIES[family]:
        have = set(role) if isinstance(role, tuple) else {role}
        if have & want:
            parts.append(".*" + pattern[: -len(r"\.weight$")])
    if not parts:
        raise LmscopeError(f"none of the roles {sorted(want)} exist in the {family} family")
    missing = want - {r for _, role in FAMILIES[family] for r in (role if isinstance(role, tuple) else (role,))}
    if missing:
        raise LmscopeError(f"unknown role(s) {', '.join(sorted(missing))} for the {family} family")
    return "(" + "|".join(parts) + ")"
