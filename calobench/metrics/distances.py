"""One-dimensional distances between two binned distributions.

All functions take counts (nbins,) of the generated and the reference sample on the same
edges; counts are normalised to unit sum over the bins (entries outside the edges do not
count), as in the CaloChallenge, where histograms drawn with ``density=True`` are
multiplied by the bin widths.
"""

from __future__ import annotations

import numpy as np


def _normalised(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h, dtype=np.float64)
    total = h.sum()
    return h / total if total > 0 else h


def separation_power(gen: np.ndarray, ref: np.ndarray) -> float:
    """Triangular discrimination 0.5 * sum (p - q)^2 / (p + q) of normalised histograms
    (0 for identical shapes, 1 for disjoint ones; eq. 15 of arXiv:2009.03796, with the
    challenge's 1e-16 in the denominator)."""
    p, q = _normalised(gen), _normalised(ref)
    return float(0.5 * np.sum((p - q) ** 2 / (p + q + 1e-16)))


def chi2_ndf(gen: np.ndarray, ref: np.ndarray) -> float:
    """Two-sample chi2 of unnormalised histograms per degree of freedom.

    chi2 = sum_i (N_r g_i - N_g r_i)^2 / (N_g N_r (g_i + r_i)) over bins with entries,
    ndf = (bins with entries) - 1 (the homogeneity test of two histograms, as ROOT's
    TH1::Chi2Test with option "UU").
    """
    g, r = np.asarray(gen, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    ng, nr = g.sum(), r.sum()
    used = (g + r) > 0
    ndf = int(used.sum()) - 1
    if ng <= 0 or nr <= 0 or ndf < 1:
        return float("nan") if ng <= 0 or nr <= 0 else 0.0
    chi2 = np.sum((nr * g[used] - ng * r[used]) ** 2 / (g[used] + r[used])) / (ng * nr)
    return float(chi2 / ndf)


def jensen_shannon(gen: np.ndarray, ref: np.ndarray) -> float:
    """Jensen-Shannon divergence of the normalised histograms in bits (0 .. 1)."""
    p, q = _normalised(gen), _normalised(ref)
    m = 0.5 * (p + q)

    def kl(a):
        s = a > 0
        return np.sum(a[s] * np.log2(a[s] / m[s]))

    return float(max(0.5 * kl(p) + 0.5 * kl(q), 0.0))


def wasserstein1(gen: np.ndarray, ref: np.ndarray, edges: np.ndarray) -> float:
    """Wasserstein-1 distance of the binned distributions, in the units of the edges:
    the integral of |CDF_gen - CDF_ref|, with the mass of each bin at its centre."""
    p, q = _normalised(gen), _normalised(ref)
    diff = np.abs(np.cumsum(p - q))[:-1]
    centres = 0.5 * (edges[1:] + edges[:-1])
    return float(np.sum(diff * np.diff(centres)))


#: kind -> fn(gen counts, ref counts, edges) -> float; metric names are ``<kind>_<feature>``.
DISTANCES = {
    "sep": lambda g, r, e: separation_power(g, r),
    "chi2": lambda g, r, e: chi2_ndf(g, r),
    "js": lambda g, r, e: jensen_shannon(g, r),
    "w1": wasserstein1,
}

