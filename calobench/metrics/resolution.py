"""Energy response and resolution versus incident energy.

In bins of incident energy the response is the mean of E_tot / E_inc and the width its
standard deviation; the relative resolution sigma/E = width / mean is fitted with
sigma/E = a / sqrt(E) (+) b (+) c / E (quadrature sum, E in GeV, a in sqrt(GeV), c in GeV).
States are mergeable per-bin sums, so they can be filled chunk by chunk.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit


def energy_bins(energies: np.ndarray, n_bins: int = 8) -> np.ndarray:
    """Edges in MeV: one bin per value when the reference has at most 20 discrete energies,
    otherwise n_bins log-spaced bins over its range."""
    e = np.asarray(energies, dtype=np.float64)
    values = np.unique(e)
    if len(values) <= 20:
        if len(values) == 1:
            return np.array([values[0] * 0.999, values[0] * 1.001])
        mids = np.sqrt(values[1:] * values[:-1])
        return np.concatenate([[values[0] * 0.999], mids, [values[-1] * 1.001]])
    lo, hi = e.min(), e.max()
    return np.logspace(np.log10(lo), np.log10(hi * 1.000001), n_bins + 1)


class ResponseState:
    """Per-bin count, sum and sum of squares of E_tot / E_inc and sum of E_inc."""

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.sums = np.zeros((4, len(self.edges) - 1))

    def update(self, einc: np.ndarray, ratio: np.ndarray) -> None:
        nb = len(self.edges) - 1
        idx = np.searchsorted(self.edges, einc, side="right") - 1
        ok = (idx >= 0) & (idx < nb) & np.isfinite(ratio)
        idx, r, e = idx[ok], ratio[ok], einc[ok]
        for k, w in enumerate((np.ones_like(r), r, r * r, e)):
            self.sums[k] += np.bincount(idx, weights=w, minlength=nb)

    def merge(self, other: "ResponseState") -> "ResponseState":
        self.sums += other.sums
        return self

    def compute(self) -> dict[str, np.ndarray]:
        """energy (mean E_inc, MeV), mean, mean_err, width, width_err, rel (width/mean), rel_err, n."""
        n, s, ss, se = self.sums
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / n
            width = np.sqrt(np.clip(ss / n - mean ** 2, 0.0, None) * n / np.maximum(n - 1, 1))
            mean_err = width / np.sqrt(n)
            width_err = width / np.sqrt(2.0 * np.maximum(n - 1, 1))
            rel = width / mean
            rel_err = rel * np.sqrt((width_err / width) ** 2 + (mean_err / mean) ** 2)
        return {"energy": se / np.maximum(n, 1), "mean": mean, "mean_err": mean_err, "width": width,
                "width_err": width_err, "rel": rel, "rel_err": rel_err, "n": n}


def resolution_model(e_gev: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return np.sqrt((a / np.sqrt(e_gev)) ** 2 + b ** 2 + (c / e_gev) ** 2)


def fit_resolution(energy_mev: np.ndarray, rel: np.ndarray, rel_err: np.ndarray,
                   with_noise: bool = True) -> dict[str, float]:
    """Fit sigma/E = a/sqrt(E) (+) b (+) c/E; returns a, b, c and their errors (c = 0 when
    ``with_noise`` is False or fewer than 4 bins are usable)."""
    e = np.asarray(energy_mev) / 1e3
    ok = np.isfinite(rel) & np.isfinite(rel_err) & (rel_err > 0)
    e, y, s = e[ok], np.asarray(rel)[ok], np.asarray(rel_err)[ok]
    nan = {k: float("nan") for k in ("a", "a_err", "b", "b_err", "c", "c_err")}
    if len(e) < 2:
        return nan
    use_c = with_noise and len(e) >= 4
    f = (lambda x, a, b, c: resolution_model(x, a, b, c)) if use_c else (lambda x, a, b: resolution_model(x, a, b, 0.0))
    p0 = [max(y[0] * np.sqrt(e[0]), 1e-3), max(y[-1] * 0.5, 1e-4)] + ([1e-3] if use_c else [])
    try:
        p, cov = curve_fit(f, e, y, p0=p0, sigma=s, absolute_sigma=True, bounds=(0, np.inf), maxfev=20000)
    except (RuntimeError, ValueError):
        return nan
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    out = {"a": p[0], "a_err": err[0], "b": p[1], "b_err": err[1],
           "c": p[2] if use_c else 0.0, "c_err": err[2] if use_c else 0.0}
    return {k: float(v) for k, v in out.items()}
