"""Plots and the HTML report. Knows result types, not the methods' internals.

It sits above the method packages and may import their result types (never the reverse):
:mod:`lmscope.report.plots` (figures, written atomically by :func:`save_figure`),
:mod:`lmscope.report.sections` (report sections per method), :mod:`lmscope.report.grokking` (the plots
and page of grokking runs) and :mod:`lmscope.report.html` (the page itself).
"""

from lmscope.report.html import Report
from lmscope.report.plots import (
    plot_intruder_heatmap,
    plot_loss_curve,
    plot_metric_heatmap,
    plot_profile_result,
    plot_similarity,
    plot_singular_values,
    save_figure,
)

__all__ = ["Report", "plot_intruder_heatmap", "plot_loss_curve", "plot_metric_heatmap", "plot_profile_result",
           "plot_similarity", "plot_singular_values", "save_figure"]
