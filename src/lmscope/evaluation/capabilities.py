"""Capabilities with programmatic ground truth: the oracle μ of the pseudointelligence game.

A capability draws queries (text), answers any of its queries exactly (:meth:`Capability.answer`,
the ground truth μ), and judges a response (:meth:`Capability.is_correct`). It also carries what
evaluators and planted models need:

* ``kind(query)``: a category read off the query text alone (e.g. "add3", "subj-rc"), the handle an
  adaptive evaluator uses to learn where a model fails;
* ``heuristic(query)``: a plausible shallow rule that is right on part of the distribution (carry-less
  addition, the linear rule of question formation, ...), used by the ``heuristic`` and ``memorizer``
  oracles;
* ``corrupt(query, answer, rng)``: a wrong answer, for planted wrong models and for calibrating judges;
* ``checks(query, response)``: cheap features of a response that need no ground truth (is it a
  number, a permutation of the input, ...), the input of the learned discriminator.

Queries come from two splits: ``id`` (in-distribution) and ``gen`` (harder or structurally novel:
longer numbers and strings, relative clauses on the subject, agreement attractors); ``mix`` draws
``gen`` with probability ``gen_fraction`` and is what evaluators sample by default.

Registry: :data:`CAPABILITIES`; :func:`get_capability` raises LmscopeError for an unknown name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from lmscope.data import grammars as G
from lmscope.data.trees import leaves
from lmscope.errors import LmscopeError

SPLITS = ("id", "gen", "mix")
BENCHMARK_SEED = 20231  # the public static benchmark of every capability is drawn with this seed


class Capability:
    """Base class. Subclasses set ``name``, ``description``, ``instruction`` and implement
    :meth:`sample`, :meth:`answer`, :meth:`kind`; the rest has sensible defaults."""

    name = ""
    description = ""
    instruction = ""  # one line telling a language model the task (few-shot prompts)
    kinds: tuple[str, ...] = ()  # every value of kind(query)
    gen_fraction = 0.25
    max_answer_tokens = 32  # generation budget of LM oracles
    version = 1  # raised when the queries a seed draws change; a transcript of another version is not resumed

    # -- to implement ---------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, split: str) -> str:
        raise NotImplementedError

    def answer(self, query: str) -> str:
        raise NotImplementedError

    def kind(self, query: str) -> str:
        raise NotImplementedError

    def heuristic(self, query: str) -> str:
        return self.answer(query)

    def corrupt(self, query: str, answer: str, rng: np.random.Generator) -> str:
        words = answer.split()
        if len(words) >= 2:
            i = int(rng.integers(len(words) - 1))
            words[i], words[i + 1] = words[i + 1], words[i]
            if words != answer.split():
                return " ".join(words)
        return answer + " " + answer

    def checks(self, query: str, response: str) -> dict[str, float]:
        return {}

    # -- shared ---------------------------------------------------------------------------------
    def normalize(self, response: str) -> str:
        """The comparable form of a response: its first line, lowercased, whitespace collapsed, a
        final ``.`` or ``?`` dropped."""
        lines = [ln for ln in str(response).strip().splitlines() if ln.strip()]
        text = " ".join((lines[0] if lines else "").lower().split())
        return re.sub(r"\s*[.?]$", "", text).strip()

    def is_correct(self, query: str, response: str | None) -> bool:
        if response is None:
            return False
        return self.normalize(response) == self.normalize(self.answer(query))

    def sample_queries(self, rng: np.random.Generator, n: int, split: str = "mix",
                       exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """``n`` distinct queries of ``split`` (id, gen or mix), none of them in ``exclude``.

        LmscopeError when the split has too few distinct queries for ``n`` (a budget that cannot be met).
        """
        if split not in SPLITS:
            raise LmscopeError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        out: list[str] = []
        seen = set(exclude)
        tries, limit = 0, 200 * n + 2000
        while len(out) < n:
            if tries >= limit:
                raise LmscopeError(f"capability {self.name} has too few distinct {split} queries: drew {len(out)} "
                                   f"of {n} in {limit} tries; ask for fewer samples or queries")
            tries += 1
            s = split if split != "mix" else ("gen" if rng.random() < self.gen_fraction else "id")
            q = self.sample(rng, s)
            if q not in seen:
                seen.add(q)
                out.append(q)
        return out

    def benchmark(self, n: int) -> list[str]:
        """The public static benchmark: the first ``n`` queries of one fixed seeded list (prefixes agree)."""
        return self.sample_queries(np.random.default_rng(BENCHMARK_SEED), n, "mix")

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "gen_fraction": self.gen_fraction,
                "kinds": list(self.kinds), "version": self.version}


# ------------------------------------------------------------------------------------------ arithmetic
def _digits(rng, lo: int, hi: int) -> int:
    """A number with lo..hi digits (uniform number of digits, then uniform value)."""
    d = int(rng.integers(lo, hi + 1))
    return int(rng.integers(10 ** (d - 1) if d > 1 else 0, 10 ** d))


class Arithmetic(Capability):
    name = "arithmetic"
    description = ("exact integer addition and multiplication; id: 2-digit sums and 1-by-2-digit products; "
                   "gen: 3-4-digit sums and 2-by-2-digit products")
    instruction = "Compute the exact value."
    kinds = ("add2", "add3", "add4", "mul1x2", "mul2x2")
    max_answer_tokens = 8
    _RE = re.compile(r"^(\d+) ([+*]) (\d+)$")

    def sample(self, rng, split):
        if rng.random() < 0.5:  # addition
            a, b = (_digits(rng, 2, 2), _digits(rng, 2, 2)) if split == "id" else (_digits(rng, 3, 4), _digits(rng, 3, 4))
            return f"{a} + {b}"
        if split == "id":
            return f"{int(rng.integers(2, 10))} * {_digits(rng, 2, 2)}"
        return f"{_digits(rng, 2, 2)} * {_digits(rng, 2, 2)}"

    def _parse(self, query: str) -> tuple[int, str, int]:
        m = self._RE.match(query.strip())
        if not m:
            raise LmscopeError(f"not an arithmetic query of the form 'A + B' or 'A * B': {query!r}")
        return int(m.group(1)), m.group(2), int(m.group(3))

    def answer(self, query):
        a, op, b = self._parse(query)
        return str(a + b if op == "+" else a * b)

    def kind(self, query):
        a, op, b = self._parse(query)
        if op == "+":
            return f"add{max(len(str(a)), len(str(b)))}"
        return f"mul{len(str(min(a, b)))}x{len(str(max(a, b)))}"

    def heuristic(self, query):
        """Digit-wise sums without carrying; products rounded to the nearest ten."""
        a, op, b = self._parse(query)
        if op == "*":
            return str(int(round(a * b, -1)))
        sa, sb = str(a)[::-1], str(b)[::-1]
        out = [str((int(sa[i]) if i < len(sa) else 0) + (int(sb[i]) if i < len(sb) else 0)) [-1]
               for i in range(max(len(sa), len(sb)))]
        return str(int("".join(reversed(out))))

    _NUMBER = re.compile(r"[+-]?(\d+|\d{1,3}(,\d{3})+)")

    def normalize(self, response):
        """A whole-number answer as its canonical digits (``" 083."``, ``"+83"`` and ``"83!"`` -> ``"83"``;
        thousands separators in groups of three are accepted). Strict: like every capability it reads
        the first non-empty line, and that whole line (surrounding whitespace and one final ``.``, ``!``
        or ``?`` aside) must be the number, so ``"83.9"``, ``"83 or 84"``, ``"= 83"`` and
        ``"38 + 45 = 83"`` are not the answer 83; any other line is returned as written (stripped), and
        is wrong."""
        lines = [ln for ln in str(response).strip().splitlines() if ln.strip()]
        text = lines[0].strip() if lines else ""
        m = self._NUMBER.fullmatch(re.sub(r"\s*[.!?]$", "", text))
        if not m:
            return text
        digits = m.group(0).lstrip("+-").replace(",", "").lstrip("0") or "0"
        return "-" + digits if m.group(0).startswith("-") and digits != "0" else digits

    def corrupt(self, query, answer, rng):
        value = int(self.normalize(answer))
        options = [value + d for d in (-10, -2, -1, 1, 2, 10) if value + d >= 0]
        return str(options[int(rng.integers(len(options)))])

    def checks(self, query, response):
        a, op, b = self._parse(query)
        r = self.normalize(response)
        is_num = bool(re.fullmatch(r"\d+", r))
        last = (a % 10 + b % 10) % 10 if op == "+" else (a % 10) * (b % 10) % 10
        want_len = len(str(max(a, b))) if op == "+" else len(str(a)) + len(str(b))
        return {"number": float(is_num),
                "last_digit_ok": float(is_num and int(r[-1]) == last),
                "length_ok": float(is_num and len(r) in (want_len - 1, want_len, want_len + 1)),
                "round": float(is_num and r.endswith("0"))}


# ------------------------------------------------------------------------------------------ reversal
class Reverse(Capability):
    name = "reverse"
    description = "reverse a string of lowercase letters; id: 3-6 letters; gen: 7-12 letters"
    instruction = "Write the letters in reverse order."
    kinds = ("len3-4", "len5-6", "len7-9", "len10-12")
    max_answer_tokens = 16
    _RE = re.compile(r"^[a-z]+$")

    def sample(self, rng, split):
        n = int(rng.integers(3, 7)) if split == "id" else int(rng.integers(7, 13))
        return "".join(chr(97 + int(i)) for i in rng.integers(26, size=n))

    def _check(self, query):
        if not self._RE.match(query):
            raise LmscopeError(f"not a reverse query (lowercase letters only): {query!r}")
        return query

    def answer(self, query):
        return self._check(query)[::-1]

    def kind(self, query):
        n = len(self._check(query))
        return "len3-4" if n <= 4 else "len5-6" if n <= 6 else "len7-9" if n <= 9 else "len10-12"

    def heuristic(self, query):
        """Reverse only the first and the last four letters correctly: swap the ends, keep the middle."""
        q = self._check(query)
        if len(q) <= 6:
            return q[::-1]
        return q[-3:][::-1] + q[3:-3] + q[:3][::-1]

    def normalize(self, response):
        return re.sub(r"[^a-z]", "", super().normalize(response))

    def corrupt(self, query, answer, rng):
        if len(set(answer)) < 2:
            return answer + answer[:1]
        chars = list(answer)
        while "".join(chars) == answer:
            i, j = (int(x) for x in rng.choice(len(chars), size=2, replace=False))
            chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)

    def checks(self, query, response):
        r = self.normalize(response)
        return {"same_length": float(len(r) == len(query)), "same_letters": float(sorted(r) == sorted(query)),
                "first_is_last": float(bool(r) and r[0] == query[-1]),
                "last_is_first": float(bool(r) and r[-1] == query[0]),
                "is_input": float(r == query)}


# ------------------------------------------------------------------------------------------ Dyck membership
_PAIRS = {"(": ")", "[": "]"}
_CLOSERS = {")": "(", "]": "["}


def balanced(tokens: Sequence[str]) -> bool:
    """Whether the bracket tokens form a balanced Dyck-2 string."""
    stack: list[str] = []
    for t in tokens:
        if t in _PAIRS:
            stack.append(t)
        elif t in _CLOSERS:
            if not stack or stack[-1] != _CLOSERS[t]:
                return False
            stack.pop()
        else:
            raise LmscopeError(f"not a bracket token: {t!r} (use ( ) [ ])")
    return not stack


class DyckMembership(Capability):
    name = "dyck-membership"
    description = ("is this string of brackets ( ) [ ] balanced? yes/no; half the queries are Dyck-2 strings "
                   "(lmscope.data.dyck), half are one edit away; id: up to 12 tokens; gen: 14-30 tokens")
    instruction = "Answer yes if the brackets are balanced, no otherwise."
    kinds = ("len2-6", "len7-12", "len13-20", "len21-30")
    max_answer_tokens = 3

    def sample(self, rng, split):
        from lmscope.data.dyck import sample_dyck

        lo, hi, depth = (2, 12, 4) if split == "id" else (14, 30, 8)
        while True:
            s = sample_dyck(rng, 2, depth, hi)
            if s is not None and lo <= len(s) <= hi:
                break
        if rng.random() < 0.5:
            return " ".join(s)
        while True:  # one edit: swap two neighbours, change a bracket's type, or drop a token
            t = list(s)
            op = int(rng.integers(3))
            i = int(rng.integers(len(t) - 1))
            if op == 0:
                t[i], t[i + 1] = t[i + 1], t[i]
            elif op == 1:
                t[i] = {"(": "[", "[": "(", ")": "]", "]": ")"}[t[i]]
            else:
                del t[i]
            if t and not balanced(t):
                return " ".join(t)

    def answer(self, query):
        return "yes" if balanced(query.split()) else "no"

    def kind(self, query):
        n = len(query.split())
        return "len2-6" if n <= 6 else "len7-12" if n <= 12 else "len13-20" if n <= 20 else "len21-30"

    def heuristic(self, query):
        """Counting: yes when there are as many closing as opening brackets."""
        t = query.split()
        return "yes" if sum(x in _PAIRS for x in t) * 2 == len(t) else "no"

    def normalize(self, response):
        text = super().normalize(response)
        m = re.match(r"^\W*(yes|no)\b", text)
        return m.group(1) if m else text

    def corrupt(self, query, answer, rng):
        return "no" if answer == "yes" else "yes"

    def checks(self, query, response):
        t = query.split()
        r = self.normalize(response)
        counts = float(sum(x in _PAIRS for x in t) * 2 == len(t))
        yes = float(r == "yes")
        return {"yes_no": float(r in ("yes", "no")), "yes": yes, "counts_match": counts,
                "yes_and_counts": yes * counts, "ends_open": float(t[-1] in _PAIRS), "starts_close": float(t[0] in _CLOSERS)}


# ------------------------------------------------------------------------------------------ grammar tasks
_AUX = frozenset(G.AUXILIARY_WORDS)
_DET = frozenset(G.DETERMINERS)
_PREP = frozenset(G.PREPOSITIONS)
_REL = frozenset(G.RELATIVES)
_TRANS = {"aux": frozenset(v[0] for v in G.TRANSITIVE), "past": frozenset(v[2] for v in G.TRANSITIVE)}
_VERBS = {"aux": frozenset(v[0] for v in G.TRANSITIVE + G.INTRANSITIVE),
          "past": frozenset(v[2] for v in G.TRANSITIVE + G.INTRANSITIVE)}
_NOUN_PLURAL = {w: bool(i) for pair in G.NOUNS for i, w in enumerate(pair)}
_PRESENT = frozenset(v[j] for v in G.TRANSITIVE + G.INTRANSITIVE for j in (0, 1))


def parse_declarative(words: Sequence[str], mode: str):
    """The gold tree (as :mod:`lmscope.data.grammars` builds it) of a declarative of the grammar.

    ``mode``: "aux" (question formation: auxiliary + bare verb) or "past" (tense inflection). The
    grammar is unambiguous given its lexicon, so a left-to-right reading recovers the derivation.
    LmscopeError when ``words`` is not a sentence of the grammar.
    """
    words = list(words)
    n = len(words)

    def fail(i):
        raise LmscopeError(f"not a {'question-formation' if mode == 'aux' else 'tense-inflection'} declarative "
                           f"of the grammar (at word {i + 1}): {' '.join(words)!r}")

    def word(i, allowed):
        if i >= n or words[i] not in allowed:
            fail(i)
        return words[i]

    def noun_phrase(i, modified):
        base = (word(i, _DET), word(i + 1, _NOUN_PLURAL))
        i += 2
        if not modified or i >= n:
            return base, i
        if words[i] in _PREP:
            inner, j = noun_phrase(i + 1, False)
            return (base, (words[i], inner)), j
        if words[i] in _REL:
            rel = words[i]
            if i + 1 < n and words[i + 1] in _DET:  # object gap: Rel NP [AUX] V
                inner, j = noun_phrase(i + 1, False)
                if mode == "aux":
                    pred = (word(j, _AUX), word(j + 1, _TRANS["aux"]))
                    return (base, (rel, (inner, pred))), j + 2
                return (base, (rel, (inner, word(j, _TRANS["past"])))), j + 1
            pred, j = predicate(i + 1, False)
            return (base, (rel, pred)), j
        return base, i

    def predicate(i, object_modified):
        aux = None
        if mode == "aux":
            aux = word(i, _AUX)
            i += 1
        verb = word(i, _VERBS[mode])
        i += 1
        vp = verb
        if verb in _TRANS[mode]:
            obj, i = noun_phrase(i, object_modified)
            vp = (verb, obj)
        return ((aux, vp) if aux else vp), i

    subj, i = noun_phrase(0, True)
    pred, i = predicate(i, True)
    if i != n:
        fail(i)
    return (subj, pred)


def _subject_kind(words: Sequence[str]) -> str:
    if len(words) > 2 and words[2] in _PREP:
        return "subj-pp"
    if len(words) > 2 and words[2] in _REL:
        return "subj-rc"
    return "subj-none"


def _first_aux(words: Sequence[str]) -> str | None:
    """The first auxiliary of a sentence: what the linear rule of question formation fronts."""
    i = G.first_auxiliary(words)
    return None if i is None else words[i]


class _GrammarCapability(Capability):
    mode = "aux"
    suite = ""  # the lmscope.data suite
    marker = ""  # the task marker of the suite's transformation rows

    def sample(self, rng, split):
        while True:
            clause = G.sample_clause(rng)
            if self._in_gen(clause) == (split == "gen"):  # None (in neither split) is never drawn
                return " ".join(leaves(G.clause_tree(clause, self.mode)))

    def _words(self, query: str) -> list[str]:
        return G.declarative_words(query)

    def tree(self, query: str):
        return parse_declarative(self._words(query), self.mode)


class QuestionFormation(_GrammarCapability):
    name = "question-formation"
    description = ("declarative -> yes/no question by fronting the main auxiliary (the question-formation "
                   "suite of lmscope.data); gen: a relative clause on the subject whose auxiliary is another "
                   "word than the main one, so fronting the first auxiliary never gives the right first word")
    instruction = "Turn the sentence into a yes/no question."
    kinds = ("subj-none", "subj-pp", "subj-rc")
    mode, suite, marker = "aux", "question-formation", "quest"
    version = 2  # 2: gen is the suite's gen split (the two auxiliaries differ)

    def _in_gen(self, clause):
        """The suite's split of a sentence: True for gen (a relative clause on the subject with an auxiliary
        other than the main one), False for id (no relative clause on the subject), None for neither (a
        relative clause on the subject with the main auxiliary's word; never drawn)."""
        return G._qf_generalizes(clause)

    def answer(self, query):
        return " ".join(G.hierarchical_question(self.tree(query))) + " ?"

    def kind(self, query):
        return _subject_kind(self._words(query))

    def heuristic(self, query):
        """The linear rule: front the first auxiliary of the sentence."""
        return " ".join(G.linear_question(self._words(query))) + " ?"

    def corrupt(self, query, answer, rng):
        lin = self.heuristic(query)
        return lin if self.normalize(lin) != self.normalize(answer) else super().corrupt(query, answer, rng)

    def checks(self, query, response):
        q = self._words(query)
        r = self.normalize(response).split()
        first_aux = _first_aux(q)
        # only what is_correct also sees: features of the raw text (case, final punctuation) would let
        # a discriminator tell a correct model from μ by formatting alone
        return {"permutation": float(sorted(r) == sorted(q)),
                "first_is_aux": float(bool(r) and r[0] in _AUX),
                "fronts_first_aux": float(bool(r) and r[0] == first_aux),
                "linear_rule": float(r == self.normalize(self.heuristic(query)).split()),
                "same_length": float(len(r) == len(q))}


class QuestionFormationAux(QuestionFormation):
    """Question formation judged on the auxiliary that starts the question (the paper's metric).

    The same queries as ``question-formation``; a response is right when its first word is the main
    auxiliary (do/does/don't/doesn't). A model may answer with the whole question or the word alone.
    """

    name = "question-formation-aux"
    description = ("question formation judged by the first word of the question only: the auxiliary a "
                   "yes/no question starts with (the grokking papers' metric); gen: a relative clause on "
                   "the subject with another auxiliary than the main one (the linear rule is always wrong)")
    instruction = "Which auxiliary (do, does, don't, doesn't) starts the yes/no question of this sentence?"
    max_answer_tokens = 8

    def normalize(self, response):
        words = super().normalize(response).split()
        return words[0] if words else ""

    def answer(self, query):
        return super().answer(query).split()[0]

    def heuristic(self, query):
        """The linear rule: the first auxiliary of the sentence."""
        return super().heuristic(query).split()[0]

    def corrupt(self, query, answer, rng):
        lin = self.heuristic(query)
        if lin != answer:
            return lin
        others = sorted(_AUX - {answer})
        return others[int(rng.integers(len(others)))]

    def checks(self, query, response):
        q = self._words(query)
        r = self.normalize(response)
        first_aux = _first_aux(q)
        return {"is_aux": float(r in _AUX),
                "first_aux": float(r == first_aux),
                "aux_in_sentence": float(r in q),
                "negated": float(r.endswith("n't"))}


class TenseInflection(_GrammarCapability):
    name = "tense-inflection"
    description = ("past -> present tense with subject-verb agreement (the tense-inflection suite of "
                   "lmscope.data); gen: a noun of the other number between the subject and its verb")
    instruction = "Rewrite the sentence in the present tense."
    kinds = ("subj-none", "subj-pp", "subj-rc", "subj-pp-attractor", "subj-rc-attractor")
    mode, suite, marker = "past", "tense-inflection", "PRESENT"

    def _in_gen(self, clause):
        return G._subject_attracted(clause)

    def answer(self, query):
        return " ".join(G.hierarchical_agreement_present(self.tree(query))) + " ."

    def kind(self, query):
        words = self._words(query)
        k = _subject_kind(words)
        if k == "subj-none":
            return k
        self.tree(query)
        subject_plural = _NOUN_PLURAL[words[1]]
        # the noun nearest before the main verb: the last noun of the subject
        main = self._main_verb_index(words)
        last_noun = [w for w in words[:main] if w in _NOUN_PLURAL][-1]
        return k + ("-attractor" if _NOUN_PLURAL[last_noun] != subject_plural else "")

    def _main_verb_index(self, words):
        return G.main_verb_index(self.tree(" ".join(words)))

    def heuristic(self, query):
        """The linear rule: each verb agrees with the nearest noun before it."""
        return " ".join(G.linear_agreement_present(self._words(query))) + " ."

    def corrupt(self, query, answer, rng):
        lin = self.heuristic(query)
        if self.normalize(lin) != self.normalize(answer):
            return lin
        words = answer.split()
        i = self._main_verb_index(self._words(query))
        flip = {f: o for v in G.TRANSITIVE + G.INTRANSITIVE for f, o in ((v[0], v[1]), (v[1], v[0]))}
        words[i] = flip.get(words[i], words[i])
        return " ".join(words)

    def checks(self, query, response):
        q = self._words(query)
        r = self.normalize(response).split()
        lin = self.normalize(self.heuristic(query)).split()
        return {"same_length": float(len(r) == len(q)),
                "all_present": float(bool(r) and not any(w in _VERBS["past"] for w in r)
                                     and sum(w in _PRESENT for w in r) == sum(w in _VERBS["past"] for w in q)),
                "agrees_with_nearest_noun": float(r == lin),
                "keeps_nouns": float([w for w in r if w in _NOUN_PLURAL] == [w for w in q if w in _NOUN_PLURAL])}


CAPABILITIES: dict[str, type[Capability]] = {
    c.name: c for c in (Arithmetic, Reverse, DyckMembership, QuestionFormation, QuestionFormationAux,
                         TenseInflection)
}


def get_capability(name: str) -> Capability:
    """The capability called ``name``; LmscopeError naming the known ones otherwise."""
    if name not in CAPABILITIES:
        raise LmscopeError(f"unknown capability {name!r}; choose one of {', '.join(CAPABILITIES)}")
    return CAPABILITIES[name]()
