"""PDDL dataclasses, parsing and the operator validator (planted candidates with known verdicts)."""

from dataclasses import replace

import pytest
from _planning_domains import CRAFTING, CRAFTING_PROBLEM, DELIVERY, DELIVERY_PROBLEM

from lmscope.errors import LmscopeError
from lmscope.planning import (
    REASONS,
    Atom,
    Domain,
    Literal,
    Operator,
    Predicate,
    Problem,
    Rejected,
    parse_domain,
    parse_operators,
    parse_problem,
    validate,
)


@pytest.fixture(scope="module")
def delivery():
    return parse_domain(DELIVERY)


def test_parse_domain_reads_types_predicates_statics_and_operators(delivery):
    assert delivery.name == "delivery"
    assert dict(delivery.types) == {"room": "object", "robot": "object", "item": "object", "package": "item"}
    assert delivery.predicate("door").arg_types == ("room", "room")
    assert delivery.static == ("door",)  # the only predicate no operator changes
    pick = delivery.operator("pick")
    assert pick.parameters == (("?r", "robot"), ("?p", "item"), ("?x", "room"))
    assert Literal(Atom("free", ("?r",))) in pick.preconditions
    assert pick.add == (Atom("holding", ("?r", "?p")),)
    assert set(pick.delete) == {Atom("at", ("?p", "?x")), Atom("free", ("?r",))}
    assert delivery.is_subtype("package", "item") and not delivery.is_subtype("item", "package")


@pytest.mark.parametrize("text", [DELIVERY, CRAFTING])
def test_domain_round_trip(text):
    dom = parse_domain(text)
    again = parse_domain(dom.to_pddl())
    assert again == dom
    assert again.to_pddl() == dom.to_pddl()


@pytest.mark.parametrize("text", [DELIVERY_PROBLEM, CRAFTING_PROBLEM])
def test_problem_round_trip(text):
    prob = parse_problem(text)
    assert parse_problem(prob.to_pddl()) == prob


def test_built_objects_write_pddl_that_parses_back():
    dom = Domain("tiny", types=(("cell", "object"),), predicates=(Predicate("at", ("cell",)),
                 Predicate("next", ("cell", "cell"))), static=("next",),
                 operators=(Operator("step", (("?a", "cell"), ("?b", "cell")),
                                     (Literal(Atom("at", ("?a",))), Literal(Atom("next", ("?a", "?b")))),
                                     (Atom("at", ("?b",)),), (Atom("at", ("?a",)),)),))
    assert parse_domain(dom.to_pddl()) == dom
    prob = Problem("p", "tiny", {"c1": "cell", "c2": "cell"}, (Atom("at", ("c1",)), Atom("next", ("c1", "c2"))),
                   (Atom("at", ("c2",)),))
    assert parse_problem(prob.to_pddl()) == prob


def test_negative_preconditions_state_their_requirement(delivery):
    op = Operator("wait", (("?r", "robot"),), (Literal(Atom("free", ("?r",)), False),), (Atom("free", ("?r",)),))
    assert validate(op, delivery).code == "negative-precondition"
    text = delivery.with_operators((*delivery.operators, op)).to_pddl()
    assert ":negative-preconditions" in text
    again = parse_domain(text)
    assert validate(op, again, max_arity=4).ok


GOOD = """Here is the operator:
```pddl
(:action carry-through
  :parameters (?r - robot ?p - package ?a - room ?b - room)
  :precondition (and (robot-at ?r ?a) (holding ?r ?p) (door ?a ?b))
  :effect (and (robot-at ?r ?b) (not (robot-at ?r ?a))))
```"""

PLANTED = {  # candidate -> expected reason code
    "(:action grab :parameters (?r - robot ?p - item) :precondition (holdz ?r ?p) :effect (holding ?r ?p))":
        "unknown-predicate",
    "(:action grab :parameters (?r - robot ?p - item) :precondition (free ?r ?p) :effect (holding ?r ?p))":
        "wrong-arity",
    "(:action grab :parameters (?r - robot ?p - gizmo) :precondition (free ?r) :effect (holding ?r ?p))":
        "unknown-type",
    # a room where the predicate wants an item
    "(:action grab :parameters (?r - robot ?x - room) :precondition (free ?r) :effect (holding ?r ?x))":
        "type-mismatch",
    # a parameter of a wider type (object) than the predicate's (item)
    "(:action grab :parameters (?r - robot ?p - object) :precondition (free ?r) :effect (holding ?r ?p))":
        "type-mismatch",
    "(:action grab :parameters (?r - robot) :precondition (free ?r) :effect (holding ?r ?p))":
        "unknown-variable",
    "(:action dig :parameters (?a - room ?b - room) :precondition () :effect (door ?a ?b))":
        "static-effect",
    "(:action big :parameters (?r - robot ?a ?b ?c ?d - room) :precondition (robot-at ?r ?a)"
    " :effect (robot-at ?r ?d))": "arity-over-bound",
    "(:action grab :parameters (?r - robot ?r - robot) :precondition (free ?r) :effect (not (free ?r)))":
        "duplicate-parameter",
    "(:action grab :parameters (?r - robot) :precondition (or (free ?r)) :effect (not (free ?r)))":
        "unsupported",
    "(:action grab :parameters (?r - robot) :precondition (free ?r) :effect (and))": "no-effect",
    "(:action move :parameters (?r - robot) :precondition (free ?r) :effect (not (free ?r)))":
        "duplicate-name",
    "(:action grab :parameters (?r - robot) :precondition (and (free ?r) (not (free ?r)))"
    " :effect (holding ?r ?r))": "type-mismatch",  # a robot where an item is wanted
    "(:action grab :parameters (?r - robot ?p - item) :precondition (and (free ?r) (not (free ?r)))"
    " :effect (holding ?r ?p))": "negative-precondition",
    "(:action grab :parameters (?r - robot :precondition (free ?r) :effect (holding ?r ?p))": "unparsable",
    "(:action grab (?r) (free ?r))": "unparsable",
}


def test_validator_accepts_a_correct_operator_from_prose(delivery):
    [op] = parse_operators(GOOD, delivery)
    assert isinstance(op, Operator), op
    assert op.name == "carry-through" and len(op.parameters) == 4
    assert validate(op, delivery, max_arity=4).ok


def test_validator_accepts_the_domains_own_operators(delivery):
    for op in delivery.operators:
        v = validate(op, delivery.with_operators(()), max_arity=3)
        assert v.ok and v.reason is None, (op.name, v)


@pytest.mark.parametrize("text,code", list(PLANTED.items()))
def test_validator_rejects_each_planted_candidate_with_its_reason(delivery, text, code):
    [res] = parse_operators(text, delivery, max_arity=4)
    assert isinstance(res, Rejected), res
    assert res.code == code, res.reason
    assert code in REASONS
    assert res.reason.startswith(code + ": ") and len(res.reason) > len(code) + 2


def test_contradicting_preconditions_are_unsatisfiable(delivery):
    neg = replace(delivery, requirements=(":strips", ":typing", ":negative-preconditions"))
    [res] = parse_operators("(:action grab :parameters (?r - robot ?p - item) :precondition "
                            "(and (free ?r) (not (free ?r))) :effect (holding ?r ?p))", neg)
    assert isinstance(res, Rejected) and res.code == "unsatisfiable"


def test_several_blocks_in_one_answer_get_one_verdict_each(delivery):
    text = GOOD + "\nand also\n" + list(PLANTED)[0] + "\n(:action broken :parameters (?r - robot"
    res = parse_operators(text, delivery)
    assert [type(r).__name__ for r in res] == ["Operator", "Rejected", "Rejected"]
    assert [getattr(r, "code", None) for r in res[1:]] == ["unknown-predicate", "unparsable"]
    assert res[1].name == "grab"


@pytest.mark.parametrize("garbage", ["", "no pddl here", "(((", ")(:action", "\x00\x01 (:action )", 12345])
def test_garbage_is_rejected_with_a_reason_never_a_crash(delivery, garbage):
    res = parse_operators(garbage, delivery)
    assert res and all(isinstance(r, Rejected) and r.code == "unparsable" for r in res)


@pytest.mark.parametrize("garbage", ["", "(define (domain x)", "(define (problem p) (:domain d))",
                                     "(define (domain d) (:requirements :fluents))", "hello (world"])
def test_garbage_domain_text_is_one_lmscope_error(garbage):
    with pytest.raises(LmscopeError) as e:
        parse_domain(garbage)
    assert "\n" not in str(e.value)


def test_garbage_problem_text_is_one_lmscope_error():
    with pytest.raises(LmscopeError, match="not a PDDL problem"):
        parse_problem("(define (problem p) (:objects a - b))")


@pytest.mark.parametrize("name", ["x.y", "1go", "at"])
def test_unified_planning_parser_confirms_what_is_accepted(delivery, name):
    """Names the real PDDL parser refuses (bad characters, a clash with a predicate) are rejected."""
    pytest.importorskip("unified_planning", reason="unified-planning is part of the planning extra")
    text = f"(:action {name} :parameters (?r - robot) :precondition (free ?r) :effect (not (free ?r)))"
    [res] = parse_operators(text, delivery)
    assert isinstance(res, Rejected) and res.code == "unparsable", res
    [op] = parse_operators(text, delivery, confirm=False)
    assert isinstance(op, Operator)
