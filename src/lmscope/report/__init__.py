"""Plots and the HTML report. Knows result types, not the methods' internals."""

from lmscope.report.html import Report
from lmscope.report.plots import (
    plot_intruder_heatmap,
    plot_loss_curve,
    plot_metric_heatmap,
    plot_similarity,
    plot_singular_values,
)

__all__ = ["Report", "plot_intruder_heatmap", "plot_loss_curve", "plot_metric_heatmap", "plot_similarity",
           "plot_singular_values"]
