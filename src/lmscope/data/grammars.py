"""Question formation and tense inflection from a small weighted grammar (after McCoy et al., 2020).

Both suites draw declarative sentences from one probabilistic context-free grammar::

    S    -> NP_subj PRED
    PRED -> AUX VP                 (question formation: do / does / don't / doesn't + bare verb)
    PRED -> VP                     (tense inflection: the verb carries the tense)
    VP   -> V_intrans | V_trans NP_obj
    NP   -> Det N | Det N PP | Det N RC          (subject and object NPs; weights 0.4 / 0.3 / 0.3)
    PP   -> P NP_bare
    RC   -> Rel PRED                            (subject gap: "who doesn't sleep", "that admired the owl")
    RC   -> Rel NP_bare AUX V_trans | Rel NP_bare V_trans   (object gap: "that the owls don't admire")
    NP_bare -> Det N

Nouns are singular or plural with probability 1/2 each, the auxiliary is negated with probability
1/2, intransitive and transitive verbs are equally likely, relative clauses have a subject or an
object gap with probability 1/2, and words are uniform within their category (:data:`WEIGHTS`).
Every auxiliary and verb agrees in number with its own subject: the main clause's with the subject's
head noun, a subject-gap relative clause's with the noun it modifies, an object-gap relative clause's
with the relative clause's own subject. NPs inside a PP or a relative clause are bare (one level of
modification), so every embedded verb directly follows its subject's noun, or the relative pronoun
right after it.

Gold trees: the derivation above with the categories dropped, which is already binary::

    S = (NP_subj PRED)        PRED = (AUX VP) or VP      VP = V or (V NP_obj)
    NP = (Det N) or ((Det N) PP) or ((Det N) RC)        PP = (P NP)
    RC = (Rel PRED) or (Rel (NP AUX V)) -> (Rel (NP (AUX V)))   [tense: (Rel (NP V))]

The tree of a row covers exactly the declarative sentence, i.e. the words of ``text`` before the
final `` . quest`` / `` . decl`` / `` . PRESENT`` / `` . PAST`` (neither the ``.`` nor the task
marker). For tense inflection it is the tree of the past-tense input sentence.

Every row also has ``"target_tree"``, the gold tree of the output sentence, over exactly the words of
``target`` before its final ``?`` / ``.`` (the final punctuation is outside the tree, as the ``.`` is
outside ``tree``). A question is the declarative's tree with the main auxiliary moved out to the
front, ``(AUX (SUBJECT VP))`` (e.g. ``(does ((the dog) (admire (the owl))))``); a present-tense
sentence has the past sentence's tree with the present verbs in place; an identity row's
``target_tree`` is its ``tree``.

Rows (each also has ``"split"`` and ``"task"``, the task marker):

* question formation: ``{"text": "<decl> . quest", "target": "<question> ?"}``, the question formed
  by moving the main clause's auxiliary to the front; identity rows ``"<decl> . decl"`` ->
  ``"<decl> ."``;
* tense inflection: ``{"text": "<past decl> . PRESENT", "target": "<present decl> ."}`` with every
  verb in the present tense, agreeing with its own subject; identity rows ``"<past decl> . PAST"``
  -> ``"<past decl> ."``.

Splits: see :data:`QF_RULES` and :data:`TENSE_RULES`. The identity rows of ``train`` and ``val`` are
drawn from the whole grammar (as in McCoy et al.), so relative clauses on the subject do occur in
training, but only ever in identity rows; ``gen`` holds transformation rows only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lmscope.data._sampling import check_count, check_seed, choose, draw_rows, flip, mix, pick, split_rng
from lmscope.data.trees import Tree, leaves, parse_bracketed, to_bracketed
from lmscope.errors import LmscopeError

# ------------------------------------------------------------------------------------------ lexicon
DETERMINERS = ("the", "some", "my", "your", "our", "her")
NOUNS = (  # (singular, plural)
    ("cat", "cats"), ("dog", "dogs"), ("fox", "foxes"), ("owl", "owls"), ("yak", "yaks"), ("bee", "bees"),
    ("crow", "crows"), ("mole", "moles"), ("wolf", "wolves"), ("hare", "hares"), ("toad", "toads"),
    ("lynx", "lynxes"),
)
INTRANSITIVE = (  # (plural / bare, singular present, past)
    ("sleep", "sleeps", "slept"), ("smile", "smiles", "smiled"), ("wait", "waits", "waited"),
    ("swim", "swims", "swam"), ("laugh", "laughs", "laughed"), ("run", "runs", "ran"),
)
TRANSITIVE = (
    ("admire", "admires", "admired"), ("follow", "follows", "followed"), ("greet", "greets", "greeted"),
    ("tickle", "tickles", "tickled"), ("visit", "visits", "visited"), ("amuse", "amuses", "amused"),
)
PREPOSITIONS = ("near", "with", "behind", "above", "below", "beside")
RELATIVES = ("who", "that")
AUXILIARIES = {(False, False): "does", (False, True): "doesn't", (True, False): "do", (True, True): "don't"}
"""(plural subject, negated) -> auxiliary."""
AUXILIARY_WORDS = tuple(sorted(set(AUXILIARIES.values())))
"""The auxiliaries as words: do, does, doesn't, don't."""

WEIGHTS = {
    "modifier": {"none": 0.4, "pp": 0.3, "rc": 0.3},  # of subject and object NPs
    "verb": {"intransitive": 0.5, "transitive": 0.5},
    "gap": {"subject": 0.5, "object": 0.5},  # of relative clauses
    "plural": 0.5,
    "negated": 0.5,
}

QF_RULES = {
    "train": "quest rows: no relative clause on the subject, so the first auxiliary of the sentence is the "
             "main clause's and moving the first (linear rule) or the main (hierarchical rule) auxiliary "
             "gives the same question; decl (identity) rows: any sentence of the grammar",
    "val": "same distribution as train (in-distribution), texts disjoint from train",
    "gen": "quest rows only; a relative clause with its own auxiliary modifies the subject, so the first "
           "auxiliary is not the main one, and the two auxiliaries are different words (as in McCoy et al.'s "
           "generalization set): only the hierarchical rule gives the target, and fronting the first "
           "auxiliary never gives the right first word",
}
TENSE_RULES = {
    "train": "PRESENT rows: the noun nearest before the main verb has the subject's number (no agreement "
             "attractor), so agreeing with the most recent noun (linear rule) or with the subject "
             "(hierarchical rule) gives the same sentence; PAST (identity) rows: any sentence of the grammar",
    "val": "same distribution as train (in-distribution), texts disjoint from train",
    "gen": "PRESENT rows only; a noun of the other number sits between the subject and the main verb (in a "
           "PP or relative clause on the subject), so only the hierarchical rule gives the target",
}

_NOUN_PLURAL = {w: bool(i) for pair in NOUNS for i, w in enumerate(pair)}
_PAST_TO_PRESENT = {past: (sg, pl) for pl, sg, past in INTRANSITIVE + TRANSITIVE}  # past -> (sg, pl)
_DETERMINERS = frozenset(DETERMINERS)
_PREPOSITIONS = frozenset(PREPOSITIONS)
_RELATIVES = frozenset(RELATIVES)


def vocabulary(task: str) -> list[str]:
    """The words of ``"question-formation"`` or ``"tense-inflection"`` sentences, markers included."""
    common = [*DETERMINERS, *(w for pair in NOUNS for w in pair), *PREPOSITIONS, *RELATIVES, "."]
    if task == "question-formation":
        return common + [*AUXILIARIES.values(), *(v[0] for v in INTRANSITIVE + TRANSITIVE), "?", "quest", "decl"]
    if task == "tense-inflection":
        return common + [w for v in INTRANSITIVE + TRANSITIVE for w in v] + ["PRESENT", "PAST"]
    raise LmscopeError(f"unknown grammar task {task!r}")


# ------------------------------------------------------------------------------------------ derivations
@dataclass(frozen=True)
class NP:
    det: str
    noun: int  # index into NOUNS
    plural: bool
    mod: PP | RC | None = None

    @property
    def word(self) -> str:
        return NOUNS[self.noun][int(self.plural)]


@dataclass(frozen=True)
class PP:
    prep: str
    np: NP


@dataclass(frozen=True)
class Verb:
    transitive: bool
    index: int

    def form(self, tense: str, plural: bool) -> str:
        """``tense``: "bare" (after an auxiliary), "past" or "present"."""
        pl, sg, past = (TRANSITIVE if self.transitive else INTRANSITIVE)[self.index]
        if tense == "past":
            return past
        if tense == "bare":
            return pl
        return pl if plural else sg


@dataclass(frozen=True)
class RC:
    rel: str
    gap: str  # "subject" or "object"
    verb: Verb
    negated: bool
    obj: NP | None = None  # subject gap with a transitive verb
    subj: NP | None = None  # object gap


@dataclass(frozen=True)
class Clause:
    subj: NP
    verb: Verb
    negated: bool
    obj: NP | None = None


def _sample_verb(rng: np.random.Generator, transitive: bool | None = None) -> Verb:
    if transitive is None:
        transitive = choose(rng, WEIGHTS["verb"]) == "transitive"
    return Verb(transitive, int(rng.integers(len(TRANSITIVE if transitive else INTRANSITIVE))))


def _sample_np(rng: np.random.Generator, modified: bool) -> NP:
    det, noun, plural = pick(rng, DETERMINERS), int(rng.integers(len(NOUNS))), flip(rng, WEIGHTS["plural"])
    mod: PP | RC | None = None
    kind = choose(rng, WEIGHTS["modifier"]) if modified else "none"
    if kind == "pp":
        mod = PP(pick(rng, PREPOSITIONS), _sample_np(rng, False))
    elif kind == "rc":
        rel = pick(rng, RELATIVES)
        if choose(rng, WEIGHTS["gap"]) == "subject":
            verb = _sample_verb(rng)
            obj = _sample_np(rng, False) if verb.transitive else None
            mod = RC(rel, "subject", verb, flip(rng, WEIGHTS["negated"]), obj=obj)
        else:
            subj = _sample_np(rng, False)
            mod = RC(rel, "object", _sample_verb(rng, True), flip(rng, WEIGHTS["negated"]), subj=subj)
    return NP(det, noun, plural, mod)


def sample_clause(rng: np.random.Generator) -> Clause:
    """One declarative sentence's derivation, drawn from the grammar."""
    subj = _sample_np(rng, True)
    verb = _sample_verb(rng)
    negated = flip(rng, WEIGHTS["negated"])
    obj = _sample_np(rng, True) if verb.transitive else None
    return Clause(subj, verb, negated, obj)


# ------------------------------------------------------------------------------------------ rendering
def _pred_tree(verb: Verb, obj: NP | None, negated: bool, plural: bool, tense: str) -> Tree:
    """tense: "aux" (auxiliary + bare verb, question formation), "past" or "present"."""
    v = verb.form("bare" if tense == "aux" else tense, plural)
    vp: Tree = v if obj is None else (v, _np_tree(obj, tense))
    return (AUXILIARIES[(plural, negated)], vp) if tense == "aux" else vp


def _np_tree(np_: NP, tense: str) -> Tree:
    base = (np_.det, np_.word)
    mod = np_.mod
    if mod is None:
        return base
    if isinstance(mod, PP):
        return (base, (mod.prep, _np_tree(mod.np, tense)))
    if mod.gap == "subject":
        return (base, (mod.rel, _pred_tree(mod.verb, mod.obj, mod.negated, np_.plural, tense)))
    assert mod.subj is not None
    inner = _pred_tree(mod.verb, None, mod.negated, mod.subj.plural, tense)
    return (base, (mod.rel, (_np_tree(mod.subj, tense), inner)))


def clause_tree(clause: Clause, tense: str) -> Tree:
    """The binary gold tree; ``tense`` "aux" (question formation), "past" or "present"."""
    return (_np_tree(clause.subj, tense),
            _pred_tree(clause.verb, clause.obj, clause.negated, clause.subj.plural, tense))


def question_tree(clause: Clause) -> Tree:
    """The question's gold tree, built from the derivation: ``(AUX (SUBJECT VP))``, the main auxiliary
    moved out of the declarative's ``(SUBJECT (AUX VP))``."""
    subj, (aux, vp) = clause_tree(clause, "aux")
    return (aux, (subj, vp))


# ------------------------------------------------------------------------------------------ the two rules
def declarative_words(text: str | Sequence[str]) -> list[str]:
    """The declarative's words: ``text`` without a final ``. MARKER`` (or ``.``), split on spaces."""
    words = text.split() if isinstance(text, str) else list(text)
    if len(words) >= 2 and words[-2] == ".":
        return words[:-2]
    if words and words[-1] == ".":
        return words[:-1]
    return words


def _as_tree(tree: Tree | str) -> Tree:
    if isinstance(tree, str):
        return parse_bracketed(tree, labeled=False)
    return tree


def first_auxiliary(words: Sequence[str]) -> int | None:
    """The position of the first auxiliary in ``words`` (what the linear rule fronts), or None."""
    return next((i for i, w in enumerate(words) if w in AUXILIARY_WORDS), None)


def main_verb_index(tree: Tree | str) -> int:
    """The position of the main clause's verb in a tense-inflection sentence, from its gold tree.

    The tree is ``(SUBJECT PRED)`` with ``PRED`` the verb or ``(VERB OBJECT)``: the main verb is the
    first word after the subject's words.
    """
    t = _as_tree(tree)
    if not (isinstance(t, tuple) and len(t) == 2):
        raise LmscopeError("not a clause tree (SUBJECT PRED)")
    return len(leaves(t[0]))


# ------------------------------------------------------------------------------------------ metrics' parts
_POS: dict[str, str] = {}
for _w in DETERMINERS:
    _POS[_w] = "DET"
for _pair in NOUNS:
    for _w in _pair:
        _POS[_w] = "N"
for _forms in INTRANSITIVE + TRANSITIVE:
    for _w in _forms:
        _POS[_w] = "V"
for _w in PREPOSITIONS:
    _POS[_w] = "P"
for _w in RELATIVES:
    _POS[_w] = "REL"
for _w in AUXILIARY_WORDS:
    _POS[_w] = "AUX"
_POS["."] = "."
_POS["?"] = "?"


def pos_tag(word: str) -> str:
    """The part of speech of a grammar word (DET, N, V, P, REL, AUX, '.', '?'), or ``X`` for others."""
    return _POS.get(word, "X")


def pos_sequence(words: Sequence[str]) -> list[str]:
    return [pos_tag(w) for w in words]


def tense_correct(output: Sequence[str], gold: Sequence[str], main_index: int) -> bool:
    """Whether ``output`` has the part-of-speech sequence of ``gold`` and the same main verb (the word
    at ``main_index``, which fixes tense and number)."""
    output, gold = list(output), list(gold)
    if pos_sequence(output) != pos_sequence(gold):
        return False
    return 0 <= main_index < len(gold) and output[main_index] == gold[main_index]


def linear_question(decl: str | Sequence[str]) -> list[str]:
    """The linear rule: move the FIRST auxiliary of the word sequence to the front."""
    words = declarative_words(decl)
    i = first_auxiliary(words)
    if i is None:
        raise LmscopeError(f"no auxiliary in {' '.join(words)!r}")
    return [words[i], *words[:i], *words[i + 1:]]


def hierarchical_question(tree: Tree | str) -> list[str]:
    """The hierarchical rule: move the MAIN clause's auxiliary, found from the gold tree, to the front.

    ``tree`` (a Tree or its bracketed string) is ``(SUBJECT (AUX VP))``: the auxiliary is the first
    child of the root's second child, whatever precedes it inside the subject.
    """
    t = _as_tree(tree)
    if not (isinstance(t, tuple) and len(t) == 2 and isinstance(t[1], tuple) and len(t[1]) == 2
            and t[1][0] in AUXILIARY_WORDS):
        raise LmscopeError(f"not a question-formation declarative tree (SUBJECT (AUX VP)): {to_bracketed(t)}")
    subject, (aux, vp) = t
    return [aux, *leaves(subject), *leaves(vp)]


def _present(past: str, plural: bool) -> str:
    try:
        sg, pl = _PAST_TO_PRESENT[past]
    except KeyError:
        raise LmscopeError(f"not a past-tense verb of the grammar: {past!r}") from None
    return pl if plural else sg


def linear_agreement_present(decl: str | Sequence[str]) -> list[str]:
    """The linear rule: every past verb to the present, agreeing with the MOST RECENT noun before it."""
    words = declarative_words(decl)
    out, plural = [], None
    for w in words:
        if w in _NOUN_PLURAL:
            plural = _NOUN_PLURAL[w]
        if w in _PAST_TO_PRESENT:
            if plural is None:
                raise LmscopeError(f"verb {w!r} before any noun in {' '.join(words)!r}")
            w = _present(w, plural)
        out.append(w)
    return out


def hierarchical_agreement_present(tree: Tree | str) -> list[str]:
    """The hierarchical rule: every verb to the present, agreeing with ITS OWN subject in the gold tree.

    ``tree`` is the past sentence's tree ``(NP VP)``. The subject of the main verb is the root's first
    child (its head noun: the second word of ``(Det N)``); a relative clause ``(Rel VP)`` takes the
    number of the noun it modifies, ``(Rel (NP V))`` the number of its own subject NP.
    """
    t = _as_tree(tree)

    def fail(node: Tree) -> LmscopeError:
        return LmscopeError(f"not a tense-inflection tree at {to_bracketed(node)!r} (in {to_bracketed(t)})")

    def head_plural(np_: Tree) -> bool:
        base = np_[0] if isinstance(np_, tuple) and isinstance(np_[0], tuple) else np_  # ((Det N) MOD) or (Det N)
        if not (isinstance(base, tuple) and len(base) == 2 and base[0] in _DETERMINERS and base[1] in _NOUN_PLURAL):
            raise fail(np_)
        return _NOUN_PLURAL[base[1]]

    def np_(node: Tree) -> Tree:
        if isinstance(node, tuple) and isinstance(node[0], str):  # (Det N)
            return node
        if not (isinstance(node, tuple) and len(node) == 2 and isinstance(node[1], tuple) and len(node[1]) == 2):
            raise fail(node)
        base, (first, rest) = node
        if first in _PREPOSITIONS:
            return (base, (first, np_(rest)))
        if first in _RELATIVES:
            if isinstance(rest, str) or (isinstance(rest, tuple) and rest[0] in _PAST_TO_PRESENT):
                return (base, (first, vp(rest, head_plural(node))))  # subject gap
            return (base, (first, clause(rest)))  # object gap: (NP V)
        raise fail(node)

    def vp(node: Tree, plural: bool) -> Tree:
        if isinstance(node, str):
            return _present(node, plural)
        if len(node) != 2 or not isinstance(node[0], str):
            raise fail(node)
        return (_present(node[0], plural), np_(node[1]))

    def clause(node: Tree) -> Tree:
        if not (isinstance(node, tuple) and len(node) == 2):
            raise fail(node)
        subject, pred = node
        return (np_(subject), vp(pred, head_plural(subject)))

    return leaves(clause(t))


# ------------------------------------------------------------------------------------------ suites
def _check_fraction(identity_fraction) -> float:
    try:
        f = float(identity_fraction)
    except (TypeError, ValueError):
        f = -1.0
    if not 0.0 <= f <= 1.0:
        raise LmscopeError(f"identity_fraction must be a number in [0, 1], got {identity_fraction!r}")
    return f


def _subject_attracted(clause: Clause) -> bool:
    """True when the noun nearest before the main verb differs in number from the subject."""
    subject_words = leaves(_np_tree(clause.subj, "past"))
    last_noun = [w for w in subject_words if w in _NOUN_PLURAL][-1]
    return _NOUN_PLURAL[last_noun] != clause.subj.plural


def _qf_generalizes(clause: Clause) -> bool | None:
    """True for a gen sentence: a relative clause on the subject whose auxiliary is a different word from
    the main clause's, so the linear rule's first word (the relative clause's auxiliary) is always wrong;
    False for a train/val sentence (no relative clause on the subject); None for neither (a relative
    clause on the subject with the main clause's auxiliary word: its question still tells the rules
    apart, by position, so it may not be a train question, and it is not in McCoy et al.'s gen set)."""
    if not isinstance(clause.subj.mod, RC):
        return False
    words = leaves(clause_tree(clause, "aux"))
    return True if words[first_auxiliary(words)] != question_tree(clause)[0] else None


def _qf_row(clause: Clause, split: str, task: str) -> dict:
    tree = clause_tree(clause, "aux")
    out, end = (question_tree(clause), "?") if task == "quest" else (tree, ".")
    return {"text": " ".join(leaves(tree)) + f" . {task}", "target": " ".join(leaves(out)) + f" {end}",
            "tree": to_bracketed(tree), "target_tree": to_bracketed(out), "split": split, "task": task}


def _tense_row(clause: Clause, split: str, task: str) -> dict:
    tree = clause_tree(clause, "past")
    out = clause_tree(clause, "present") if task == "PRESENT" else tree
    return {"text": " ".join(leaves(tree)) + f" . {task}", "target": " ".join(leaves(out)) + " .",
            "tree": to_bracketed(tree), "target_tree": to_bracketed(out), "split": split, "task": task}


def _suite(n_train, n_val, n_gen, seed, identity_fraction, salt: int, transform: str, identity: str,
           in_gen: Callable[[Clause], bool | None], row: Callable[[Clause, str, str], dict],
           what: str) -> list[dict]:
    """``in_gen(clause)``: True for a transformation row of the generalization split, False for one of
    train / val, None for a sentence that is a transformation row of neither (identity rows take any)."""
    seed = check_seed(seed)
    counts = {"train": check_count("n_train", n_train), "val": check_count("n_val", n_val),
              "gen": check_count("n_gen", n_gen)}
    frac = _check_fraction(identity_fraction)
    seen: set[str] = set()
    rows: list[dict] = []
    for split, n in counts.items():
        rng = split_rng(seed, split, salt)
        n_identity = 0 if split == "gen" else round(n * frac)
        want_gen = split == "gen"

        def sample_transform(rng=rng, split=split, want_gen=want_gen) -> dict | None:
            clause = sample_clause(rng)
            kind = in_gen(clause)
            return row(clause, split, transform) if kind is not None and kind == want_gen else None

        def sample_identity(rng=rng, split=split) -> dict:
            return row(sample_clause(rng), split, identity)

        part_t = draw_rows(n - n_identity, sample_transform, seen, f"{what} {split} {transform}")
        part_i = draw_rows(n_identity, sample_identity, seen, f"{what} {split} {identity}")
        rows += mix(rng, part_t, part_i)
    return rows


def question_formation(n_train: int, n_val: int, n_gen: int, seed: int = 0,
                       identity_fraction: float = 0.5) -> list[dict]:
    """Rows of the question-formation suite (see the module docstring and :data:`QF_RULES`).

    ``identity_fraction`` of the ``train`` and ``val`` rows (rounded) are identity (``decl``) rows.
    """
    return _suite(n_train, n_val, n_gen, seed, identity_fraction, 1, "quest", "decl",
                  _qf_generalizes, _qf_row, "question-formation")


def tense_inflection(n_train: int, n_val: int, n_gen: int, seed: int = 0,
                     identity_fraction: float = 0.5) -> list[dict]:
    """Rows of the tense-inflection suite (see the module docstring and :data:`TENSE_RULES`).

    ``identity_fraction`` of the ``train`` and ``val`` rows (rounded) are identity (``PAST``) rows.
    """
    return _suite(n_train, n_val, n_gen, seed, identity_fraction, 2, "PRESENT", "PAST",
                  _subject_attracted, _tense_row, "tense-inflection")
