"""LaMPP: language models as probabilistic priors for perception and action.

A language model parameterizes prior distributions in small graphical models; observations come
from a (here simulated) task model. :mod:`~lmscope.priors.queries` turns prompt templates into
probability tables; :mod:`~lmscope.priors.segmentation`, :mod:`~lmscope.priors.actions` and
:mod:`~lmscope.priors.navigation` hold the three models and their generated benchmarks;
:func:`run_benchmark` compares no prior, a uniform prior, the LM prior, model chaining and the
true prior on one of them.
"""

from lmscope.priors.benchmarks import BENCHMARKS, METHODS, BenchmarkResult, PriorsConfig, run_benchmark
from lmscope.priors.hsmm import semi_markov_viterbi
from lmscope.priors.queries import (
    PriorQuery,
    PriorTable,
    class_probabilities,
    query_prior,
    query_priors,
    read_queries,
    uniform_table,
)

__all__ = [
    "BENCHMARKS", "METHODS", "BenchmarkResult", "PriorQuery", "PriorsConfig", "PriorTable", "class_probabilities", "query_prior",
    "query_priors", "read_queries", "run_benchmark", "semi_markov_viterbi", "uniform_table",
]
