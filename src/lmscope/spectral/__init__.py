"""Weight spectra: per-matrix spectrum summaries, intruder dimensions (and, later, LASER)."""

from lmscope.spectral.intruders import IntruderResult, find_intruders, intruder_scores, mitigate_intruders
from lmscope.spectral.metrics import METRICS, powerlaw_fit, spectrum_metrics
from lmscope.spectral.spectrum import SpectrumResult, analyze_spectrum
from lmscope.spectral.svd import SVD, SVDCache, content_key, topk_svd

__all__ = [
    "METRICS", "SVD", "IntruderResult", "SVDCache", "SpectrumResult", "analyze_spectrum", "content_key",
    "find_intruders", "intruder_scores", "mitigate_intruders", "powerlaw_fit", "spectrum_metrics", "topk_svd",
]
