"""Planning with PDDL: STRIPS-with-types domains and problems (:mod:`~lmscope.planning.pddl`), checks of
LM-written operators, and classical planners run as separate processes with a cache
(:mod:`~lmscope.planning.planner`). The worlds and the Ada loop build on these."""

from lmscope.planning.pddl import (
    REASONS,
    Atom,
    Domain,
    Literal,
    Operator,
    Predicate,
    Problem,
    Rejected,
    Verdict,
    parse_domain,
    parse_operators,
    parse_problem,
    validate,
)
from lmscope.planning.planner import (
    PLANNERS,
    PlanCheck,
    PlanResult,
    available_planners,
    plan,
    planner_runs,
    validate_plan,
)

__all__ = [
    "PLANNERS", "REASONS", "Atom", "Domain", "Literal", "Operator", "PlanCheck", "PlanResult", "Predicate",
    "Problem", "Rejected", "Verdict", "available_planners", "parse_domain", "parse_operators", "parse_problem",
    "plan", "planner_runs", "validate", "validate_plan",
]
