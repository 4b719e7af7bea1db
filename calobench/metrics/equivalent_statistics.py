"""Equivalent Geant4 statistics: "this model is as good as N Geant4 showers".

For each one-dimensional feature, the two-sample Kolmogorov-Smirnov distance D between the
generated (n events) and the reference (m events) sample is compared with the distance that
sampling noise alone gives. Two samples of one distribution have
E[D] ~= c * sqrt(1/n + 1/m), with c = sqrt(pi/2) ln 2 ~= 0.869 the mean of the Kolmogorov
distribution. Writing the observed distance as the model's own discrepancy delta added in
quadrature to that noise, D^2 = delta^2 + c^2 (1/n + 1/m), and equating delta with the
distance c / sqrt(N) that N Geant4 showers would have from the true distribution gives

    N = c^2 / (D^2 - c^2 (1/n + 1/m)).

This is the KS-scaling idea of the CMS HGCal fast-simulation challenge evaluation; the
quadrature sum is an approximation. When D is within the noise (the denominator is not
positive) or N exceeds ``cap_factor * m``, the reference cannot resolve the model: N is
reported at the cap, meaning "at least this many". The summary ``g4_equivalent_events``
uses the mean excess over all features, N = c^2 / mean_j(D_j^2 - noise_j), so that a few
badly modelled features pull it down while the noise of many good ones averages out;
``g4_equivalent_events_min`` is the worst single feature (biased low by the look-elsewhere
effect: with ~100 features, one of two Geant4 samples of 4000 already gives ~1000).
"""

from __future__ import annotations

import math

import numpy as np

#: Mean of the Kolmogorov distribution, sqrt(pi / 2) * ln 2.
KOLMOGOROV_MEAN = math.sqrt(math.pi / 2.0) * math.log(2.0)


def equivalent_events(distance: float, n_generated: int, n_reference: int, cap: float) -> float:
    """N Geant4 events whose sampling noise equals the excess KS ``distance`` (capped at ``cap``)."""
    noise = KOLMOGOROV_MEAN ** 2 * (1.0 / n_generated + 1.0 / n_reference)
    excess = distance ** 2 - noise
    if not excess > 0:
        return float(cap)
    return float(min(KOLMOGOROV_MEAN ** 2 / excess, cap))


def ks_distance(generated: np.ndarray, reference: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance sup_x |F_g(x) - F_r(x)| of two 1-d samples of finite
    values: ``scipy.stats.ks_2samp(...).statistic`` exactly (both empirical CDFs are evaluated at
    every value of either sample, counting ties as at or below), without its p-value."""
    g, r = np.sort(generated), np.sort(reference)
    at = np.concatenate([g, r])
    diff = np.searchsorted(g, at, side="right") / len(g) - np.searchsorted(r, at, side="right") / len(r)
    return float(max(diff.max(), -diff.min(), 0.0))


def ks_excess(generated: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features,) KS distance D and its pure-noise expectation squared c^2 (1/n + 1/m) per
    column of the (n, features) and (m, features) tables (NaN where a column has no finite value)."""
    distance = np.full(generated.shape[1], np.nan)
    noise = np.full(generated.shape[1], np.nan)
    for j in range(generated.shape[1]):
        g = generated[:, j][np.isfinite(generated[:, j])]
        r = reference[:, j][np.isfinite(reference[:, j])]
        if len(g) == 0 or len(r) == 0:
            continue
        distance[j] = ks_distance(g, r)
        noise[j] = KOLMOGOROV_MEAN ** 2 * (1.0 / len(g) + 1.0 / len(r))
    return distance, noise


def summary(distance: np.ndarray, noise: np.ndarray, cap: float) -> tuple[float, float, np.ndarray]:
    """(N from the mean excess over features, N of the worst feature, (features,) N per feature),
    each capped at ``cap``; NaN when no feature has a value."""
    ok = np.isfinite(distance)
    per_feature = np.full(len(distance), np.nan)
    if not ok.any():
        return float("nan"), float("nan"), per_feature
    excess = distance[ok] ** 2 - noise[ok]
    per_feature[ok] = [cap if not e > 0 else min(KOLMOGOROV_MEAN ** 2 / e, cap) for e in excess]
    mean_excess = float(np.mean(excess))
    combined = cap if not mean_excess > 0 else min(KOLMOGOROV_MEAN ** 2 / mean_excess, cap)
    return float(combined), float(np.nanmin(per_feature)), per_feature
