"""One-dimensional distances between two binned distributions.

All functions take counts (nbins,) of the generated and the reference sample on the same
edges; counts are normalised to unit sum over the bins (entries outside the edges do not
count), as in the CaloChallenge, where histograms drawn with ``density=True`` are
multiplied by the bin widths.
"""

from __future__ import annotations

import numpy as np


def _normalised(h: np.ndarray) -> np.ndarray:
    """Rows of h (..., nbins) divided by their sums (rows that sum to zero left as they are)."""
    h = np.asarray(h, dtype=np.float64)
    total = h.sum(axis=-1, keepdims=True)
    return h / np.where(total > 0, total, 1.0)


def _scalar(values: np.ndarray) -> float | np.ndarray:
    """A float for 0-d results (one pair of histograms), else the (rows,) array."""
    return float(values) if np.ndim(values) == 0 else values


def separation_power(gen: np.ndarray, ref: np.ndarray) -> float | np.ndarray:
    """Triangular discrimination 0.5 * sum (p - q)^2 / (p + q) of normalised histograms
    (0 for identical shapes, 1 for disjoint ones; eq. 15 of arXiv:2009.03796, with the
    challenge's 1e-16 in the denominator). gen, ref: (nbins,) -> float, or (rows, nbins) ->
    (rows,), row by row (as every function here)."""
    p, q = _normalised(gen), _normalised(ref)
    return _scalar(0.5 * np.sum((p - q) ** 2 / (p + q + 1e-16), axis=-1))


def chi2_ndf(gen: np.ndarray, ref: np.ndarray) -> float | np.ndarray:
    """Two-sample chi2 of unnormalised histograms per degree of freedom.

    chi2 = sum_i (N_r g_i - N_g r_i)^2 / (N_g N_r (g_i + r_i)) over bins with entries,
    ndf = (bins with entries) - 1 (the homogeneity test of two histograms, as ROOT's
    TH1::Chi2Test with option "UU"); NaN when either histogram is empty, 0 when ndf < 1.
    """
    g, r = np.asarray(gen, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    ng, nr = g.sum(axis=-1, keepdims=True), r.sum(axis=-1, keepdims=True)
    both = g + r
    used = both > 0
    ndf = np.count_nonzero(used, axis=-1) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(used, (nr * g - ng * r) ** 2 / np.where(used, both, 1.0), 0.0)
        chi2 = np.sum(terms, axis=-1) / (ng * nr)[..., 0] / np.maximum(ndf, 1)
    chi2 = np.where(ndf < 1, 0.0, chi2)
    return _scalar(np.where((ng[..., 0] <= 0) | (nr[..., 0] <= 0), np.nan, chi2))


def jensen_shannon(gen: np.ndarray, ref: np.ndarray) -> float | np.ndarray:
    """Jensen-Shannon divergence of the normalised histograms in bits (0 .. 1)."""
    p, q = _normalised(gen), _normalised(ref)
    m = 0.5 * (p + q)

    def kl(a):
        s = a > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(np.where(s, a * np.log2(np.where(s, a, 1.0) / np.where(s, m, 1.0)), 0.0), axis=-1)

    return _scalar(np.maximum(0.5 * kl(p) + 0.5 * kl(q), 0.0))


def wasserstein1(gen: np.ndarray, ref: np.ndarray, edges: np.ndarray) -> float | np.ndarray:
    """Wasserstein-1 distance of the binned distributions, in the units of the edges:
    the integral of |CDF_gen - CDF_ref|, with the mass of each bin at its centre."""
    p, q = _normalised(gen), _normalised(ref)
    diff = np.abs(np.cumsum(p - q, axis=-1))[..., :-1]
    centres = 0.5 * (edges[1:] + edges[:-1])
    return _scalar(np.sum(diff * np.diff(centres), axis=-1))


#: kind -> fn(gen counts, ref counts, edges) -> float (or (rows,) for (rows, nbins) counts);
#: metric names are ``<kind>_<feature>``.
DISTANCES = {
    "sep": lambda g, r, e: separation_power(g, r),
    "chi2": lambda g, r, e: chi2_ndf(g, r),
    "js": lambda g, r, e: jensen_shannon(g, r),
    "w1": wasserstein1,
}
