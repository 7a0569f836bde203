"""Small typed STRIPS domains with known answers, shared by the planning tests and the planner benchmark."""

DELIVERY = """
(define (domain delivery)
  (:requirements :strips :typing)
  (:types room robot item - object package - item)
  (:predicates (robot-at ?r - robot ?x - room) (at ?p - item ?x - room) (holding ?r - robot ?p - item)
               (free ?r - robot) (door ?a - room ?b - room))
  (:action move :parameters (?r - robot ?a - room ?b - room)
    :precondition (and (robot-at ?r ?a) (door ?a ?b))
    :effect (and (robot-at ?r ?b) (not (robot-at ?r ?a))))
  (:action pick :parameters (?r - robot ?p - item ?x - room)
    :precondition (and (robot-at ?r ?x) (at ?p ?x) (free ?r))
    :effect (and (holding ?r ?p) (not (at ?p ?x)) (not (free ?r))))
  (:action drop :parameters (?r - robot ?p - item ?x - room)
    :precondition (and (robot-at ?r ?x) (holding ?r ?p))
    :effect (and (at ?p ?x) (free ?r) (not (holding ?r ?p)))))
"""

# three rooms in a row (kitchen - hall - office); the letter goes from the kitchen to the office
DELIVERY_PROBLEM = """
(define (problem deliver-letter) (:domain delivery)
  (:objects kitchen hall office garden - room bot - robot letter - package)
  (:init (robot-at bot office) (at letter kitchen) (free bot)
         (door kitchen hall) (door hall kitchen) (door hall office) (door office hall))
  (:goal (and (at letter office) (robot-at bot hall))))
"""
# the garden has no door: unsolvable
DELIVERY_UNSOLVABLE = DELIVERY_PROBLEM.replace("(at letter office)", "(at letter garden)")

CRAFTING = """
(define (domain crafting)
  (:requirements :strips :typing)
  (:types place item)
  (:predicates (agent-at ?l - place) (source ?l - place ?i - item) (bench ?l - place) (have ?i - item)
               (recipe1 ?a - item ?out - item) (recipe2 ?a - item ?b - item ?out - item))
  (:action go :parameters (?a - place ?b - place)
    :precondition (agent-at ?a) :effect (and (agent-at ?b) (not (agent-at ?a))))
  (:action mine :parameters (?l - place ?i - item)
    :precondition (and (agent-at ?l) (source ?l ?i)) :effect (have ?i))
  (:action craft1 :parameters (?l - place ?a - item ?out - item)
    :precondition (and (agent-at ?l) (bench ?l) (have ?a) (recipe1 ?a ?out))
    :effect (and (have ?out) (not (have ?a))))
  (:action craft2 :parameters (?l - place ?a - item ?b - item ?out - item)
    :precondition (and (agent-at ?l) (bench ?l) (have ?a) (have ?b) (recipe2 ?a ?b ?out))
    :effect (and (have ?out) (not (have ?a)) (not (have ?b)))))
"""

# wood -> plank -> stick; stick + plank -> ladder (wood is mined twice)
CRAFTING_PROBLEM = """
(define (problem make-ladder) (:domain crafting)
  (:objects home forest workshop - place wood plank stick ladder iron - item)
  (:init (agent-at home) (source forest wood) (bench workshop)
         (recipe1 wood plank) (recipe1 plank stick) (recipe2 stick plank ladder))
  (:goal (have ladder)))
"""
# iron has no source and no recipe: unsolvable
CRAFTING_UNSOLVABLE = CRAFTING_PROBLEM.replace("(:goal (have ladder))", "(:goal (and (have ladder) (have iron)))")


def pigeonhole(holes: int) -> tuple[str, str]:
    """holes + 1 pigeons into ``holes`` holes, one each: unsolvable, but only an exhaustive search can
    tell (the delete relaxation is solvable), so planners run long on it."""
    dom = """
(define (domain pigeons)
  (:requirements :strips :typing)
  (:types pigeon hole)
  (:predicates (free ?h - hole) (unplaced ?p - pigeon) (placed ?p - pigeon) (in ?p - pigeon ?h - hole))
  (:action put :parameters (?p - pigeon ?h - hole)
    :precondition (and (free ?h) (unplaced ?p))
    :effect (and (in ?p ?h) (placed ?p) (not (free ?h)) (not (unplaced ?p)))))
"""
    ps = [f"p{i}" for i in range(holes + 1)]
    hs = [f"h{i}" for i in range(holes)]
    prob = (f"(define (problem pigeons-{holes}) (:domain pigeons)\n"
            f"  (:objects {' '.join(ps)} - pigeon {' '.join(hs)} - hole)\n"
            f"  (:init {' '.join(f'(free {h})' for h in hs)} {' '.join(f'(unplaced {p})' for p in ps)})\n"
            f"  (:goal (and {' '.join(f'(placed {p})' for p in ps)})))\n")
    return dom, prob
