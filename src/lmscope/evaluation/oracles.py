"""Model oracles: what answers the evaluator's queries when the hidden coin picks the model g.

An oracle maps a list of queries to a list of responses (text). Specs (:func:`make_oracle`):

``truth``
    μ itself (a planted perfect model: no evaluator should tell it apart).
``heuristic``
    the capability's shallow rule (:meth:`Capability.heuristic`) everywhere.
``memorizer``
    exact on the public static benchmark (its first :data:`MEMORIZED` queries, see
    :meth:`Capability.benchmark`), the shallow rule everywhere else.
``wrong-on:KIND[,KIND...]``
    exact except on queries of those kinds, where it answers :meth:`Capability.corrupt`.
``lm`` or ``lm:SPEC``
    a language model through :mod:`lmscope.lm`, prompted with the capability's instruction and a few
    solved examples (few-shot), greedy, the first line of its completion as the response.
``small:RUN_DIR``
    a small transformer trained by ``lmscope grok train`` on the capability's suite (question
    formation or tense inflection), greedy decoding from its newest checkpoint.

Oracles are deterministic; :class:`Memo` remembers answers so that queries asked again in later
games cost nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lmscope.errors import LmscopeError
from lmscope.evaluation.capabilities import Capability

MEMORIZED = 1000  # the memorizer knows this many queries of the public benchmark
FEW_SHOT_SEED = 7


class Oracle:
    """Base class: ``respond(queries) -> responses``; ``spec`` names it in transcripts."""

    spec = ""

    def respond(self, queries: list[str]) -> list[str]:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"spec": self.spec}

    def close(self) -> None:  # noqa: B027 - optional
        pass


class TruthOracle(Oracle):
    def __init__(self, capability: Capability):
        self.capability, self.spec = capability, "truth"

    def respond(self, queries):
        return [self.capability.answer(q) for q in queries]


class HeuristicOracle(Oracle):
    def __init__(self, capability: Capability):
        self.capability, self.spec = capability, "heuristic"

    def respond(self, queries):
        return [self.capability.heuristic(q) for q in queries]


class MemorizerOracle(Oracle):
    """Exact on the first ``memorized`` public benchmark queries, the shallow rule elsewhere."""

    def __init__(self, capability: Capability, memorized: int = MEMORIZED):
        self.capability, self.spec = capability, "memorizer"
        self.table = {q: capability.answer(q) for q in capability.benchmark(memorized)}

    def respond(self, queries):
        return [self.table[q] if q in self.table else self.capability.heuristic(q) for q in queries]

    def describe(self):
        return {"spec": self.spec, "memorized": len(self.table)}


class WrongOnOracle(Oracle):
    """Exact except on the given kinds of query, where the answer is corrupted (seeded by the query)."""

    def __init__(self, capability: Capability, kinds: list[str]):
        if not kinds:
            raise LmscopeError("wrong-on needs at least one kind, e.g. wrong-on:subj-rc")
        unknown = [k for k in kinds if k not in capability.kinds]
        if unknown:
            raise LmscopeError(f"capability {capability.name} has no query kind {unknown[0]!r}; its kinds: "
                               f"{', '.join(capability.kinds)}")
        self.capability, self.kinds = capability, list(kinds)
        self.spec = "wrong-on:" + ",".join(self.kinds)

    def respond(self, queries):
        out = []
        for q in queries:
            a = self.capability.answer(q)
            if self.capability.kind(q) in self.kinds:
                rng = np.random.default_rng(list(q.encode("utf-8")) or [0])
                a = self.capability.corrupt(q, a, rng)
            out.append(a)
        return out

    def describe(self):
        return {"spec": self.spec, "kinds": self.kinds}


def few_shot_prompt(capability: Capability, query: str, shots: list[tuple[str, str]]) -> str:
    """The plain-text prompt of LM oracles: the instruction, solved examples, then the query."""
    lines = [capability.instruction, ""]
    for q, a in shots:
        lines += [f"Input: {q}", f"Output: {a}", ""]
    lines += [f"Input: {query}", "Output:"]
    return "\n".join(lines)


class LMOracle(Oracle):
    """A language model answering few-shot prompts greedily (through the LM cache when it has one)."""

    def __init__(self, capability: Capability, lm, shots: int = 4, seed: int = FEW_SHOT_SEED):
        self.capability, self.lm = capability, lm
        self.spec = f"lm:{lm.spec}"
        rng = np.random.default_rng(seed)
        qs = capability.sample_queries(rng, shots, "id")
        self.shots = [(q, capability.answer(q)) for q in qs]

    def prompt(self, query: str) -> str:
        return few_shot_prompt(self.capability, query, self.shots)

    def respond(self, queries):
        outs = self.lm.generate([self.prompt(q) for q in queries], max_tokens=self.capability.max_answer_tokens,
                                temperature=0.0, stop=["\n"])
        return [o[0].strip() for o in outs]

    def describe(self):
        return {"spec": self.spec, "shots": self.shots, "decoding": "greedy, first line"}

    def close(self):
        self.lm.close()


class SmallOracle(Oracle):
    """A small transformer of ``lmscope grok train`` on the capability's suite, decoding greedily."""

    def __init__(self, capability: Capability, run_dir: str, device: str = "cpu"):
        from lmscope.models.small import SmallTransformer
        from lmscope.models.small_tokenizer import WordTokenizer
        from lmscope.train.loop import latest_checkpoint

        suite = getattr(capability, "suite", "")
        if not suite:
            raise LmscopeError(f"a small transformer answers question-formation or tense-inflection, not "
                               f"{capability.name}")
        run = Path(run_dir)
        if not run.is_dir():
            raise LmscopeError(f"no such run folder: {run}")
        try:
            task = json.loads((run / "grok.json").read_text(encoding="utf-8"))["task"]
        except (OSError, ValueError, KeyError, TypeError):
            raise LmscopeError(f"{run} is not a run of lmscope grok train (no readable grok.json)") from None
        if task != suite:
            raise LmscopeError(f"the run {run} was trained on {task}; it cannot answer {capability.name}")
        ckpt = latest_checkpoint(run)
        if ckpt is None:
            raise LmscopeError(f"the run {run} has no complete checkpoint yet")
        self.model = SmallTransformer.load(ckpt / "model").to(device)
        self.tokenizer = WordTokenizer.load(ckpt / "model")
        self.capability, self.run, self.step = capability, run, int(ckpt.name[5:])
        self.spec = f"small:{run}"

    def respond(self, queries):
        tok = self.tokenizer
        prompts = [[tok.bos_id] + tok.encode(f"{q} . {self.capability.marker}") for q in queries]
        budget = max(len(q.split()) for q in queries) + 6
        outs = self.model.generate(prompts, budget, stop_id=tok.eos_id) if queries else []
        res = []
        for out in outs:
            if tok.eos_id in out:
                out = out[:out.index(tok.eos_id)]
            res.append(tok.decode(out))
        return res

    def describe(self):
        return {"spec": self.spec, "step": self.step}


class Memo(Oracle):
    """Remembers the answers of a deterministic oracle (and counts the calls that reached it)."""

    def __init__(self, inner: Oracle):
        self.inner, self.spec = inner, inner.spec
        self.memory: dict[str, str] = {}
        self.calls = 0

    def respond(self, queries):
        todo = list(dict.fromkeys(q for q in queries if q not in self.memory))
        if todo:
            self.calls += 1
            answers = self.inner.respond(todo)
            if len(answers) != len(todo):
                raise LmscopeError(f"the oracle {self.spec} gave {len(answers)} answers to {len(todo)} queries")
            self.memory.update(zip(todo, (str(a) for a in answers)))
        return [self.memory[q] for q in queries]

    def describe(self):
        return self.inner.describe()

    def close(self):
        self.inner.close()


ORACLES = {
    "truth": "μ itself (a planted perfect model)",
    "heuristic": "the capability's shallow rule everywhere",
    "memorizer": f"exact on the public static benchmark ({MEMORIZED} queries), the shallow rule elsewhere",
    "wrong-on:KIND[,KIND]": "exact except on those query kinds",
    "lm | lm:SPEC": "a language model through lmscope.lm (--lm, or SPEC), few-shot and greedy",
    "small:RUN_DIR": "a small transformer trained by lmscope grok train on the capability's suite",
}


def make_oracle(spec: str, capability: Capability, lm_factory=None) -> Oracle:
    """The oracle named by ``spec`` (see the module docstring). ``lm_factory(spec_or_None)`` opens
    language models for ``lm`` / ``lm:SPEC`` (default :func:`lmscope.lm.open_lm`)."""
    spec = str(spec).strip()
    if spec == "truth":
        return TruthOracle(capability)
    if spec == "heuristic":
        return HeuristicOracle(capability)
    if spec == "memorizer":
        return MemorizerOracle(capability)
    if spec.startswith("wrong-on:"):
        return WrongOnOracle(capability, [k for k in spec[len("wrong-on:"):].split(",") if k])
    if spec == "lm" or spec.startswith("lm:"):
        if lm_factory is None:
            from lmscope.lm import open_lm

            def lm_factory(s):
                return open_lm(s)
        return LMOracle(capability, lm_factory(spec[3:] or None))
    if spec.startswith("small:"):
        return SmallOracle(capability, spec[len("small:"):])
    raise LmscopeError(f"unknown model {spec!r}; choose one of truth, heuristic, memorizer, wrong-on:KIND, lm, "
                       "lm:SPEC, small:RUN_DIR")
