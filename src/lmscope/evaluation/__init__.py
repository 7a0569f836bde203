"""Pseudointelligence: evaluation as a distinguishing game between a model and learned evaluators.

A capability with programmatic ground truth (μ) is compared with a model (g) by an evaluator
learner with bounded resources; a hidden fair coin picks g or μ, the evaluator interacts and
guesses. The advantage |P(says "model" | g) - P(says "model" | μ)| says how well that class of
evaluators tells g from μ (the signed value, 2 P(correct) - 1, is kept too), and a profile traces it
as the evaluator's resources grow.

>>> from lmscope.evaluation import Resources, get_capability, make_oracle, play_games
>>> cap = get_capability("question-formation")
>>> res = play_games(cap, make_oracle("memorizer", cap), "static", Resources(16, 4, 2), n_games=100)
>>> res.stats()["advantage"]            # 0.0: the memorizer passes the static benchmark

A method package on the base (``data``, ``models``, ``lm``, ``train``); a profile's figure is
:func:`lmscope.report.plots.plot_profile_result`.
"""

from lmscope.evaluation.capabilities import CAPABILITIES, Capability, get_capability
from lmscope.evaluation.evaluators import EVALUATORS, Evaluator, Resources, make_evaluator
from lmscope.evaluation.game import (
           BOOTSTRAP_RESAMPLES,
           GameResult,
           abs_advantage_interval,
           advantage_interval,
           play_games,
           read_transcript,
           replay,
           wilson,
)
from lmscope.evaluation.oracles import ORACLES, Memo, Oracle, make_oracle
from lmscope.evaluation.profile import ProfileResult, profile

__all__ = ["BOOTSTRAP_RESAMPLES", "CAPABILITIES", "EVALUATORS", "ORACLES", "Capability", "Evaluator", "GameResult",
           "Memo", "Oracle", "ProfileResult", "Resources", "abs_advantage_interval", "advantage_interval",
           "get_capability", "make_evaluator", "make_oracle", "play_games", "profile", "read_transcript", "replay",
           "wilson"]
