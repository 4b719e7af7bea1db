"""Equivalent Geant4 statistics: known answers, a floor (Geant4 vs Geant4) and ceilings (distortions)."""

from __future__ import annotations

import numpy as np
import pytest

import calobench
from calobench.selftest.distortions import energy_scale
from calobench.metrics.equivalent_statistics import KOLMOGOROV_MEAN, equivalent_events, ks_distance, ks_excess, summary


def test_known_answer_inverts_the_noise_model():
    n, m, true_n = 4000, 4000, 250.0
    noise = KOLMOGOROV_MEAN ** 2 * (1 / n + 1 / m)
    distance = np.sqrt(noise + KOLMOGOROV_MEAN ** 2 / true_n)
    assert equivalent_events(distance, n, m, cap=1e9) == pytest.approx(true_n)
    assert equivalent_events(np.sqrt(noise) * 0.9, n, m, cap=4000) == 4000  # within the noise: at the cap


def test_same_distribution_reaches_the_cap_and_a_shift_does_not():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5000, 20)), rng.normal(size=(5000, 20))
    combined, worst, per_feature = summary(*ks_excess(a, b), cap=5000.0)
    assert combined == 5000.0
    assert per_feature.shape == (20,) and worst <= combined
    shifted = a + 0.1
    combined_shift, _, _ = summary(*ks_excess(shifted, b), cap=5000.0)
    # a shift of 0.1 sigma: D ~ 0.04, N ~ c^2 / D^2 ~ 500
    assert 150 < combined_shift < 1500


def test_compare_reports_it_and_ranks_distortions():
    ref = calobench.load("stcf11x11")
    a, b = ref.slice(0, 3000), ref.slice(3000, 6000)

    values = {label: calobench.compare(gen, b, dataset="stcf11x11", metrics=["hist"], progress=False)
              .value("g4_equivalent_events") for label, gen in [("same", a), ("x1.02", energy_scale(1.02)(a, None)),
                                                                ("x1.05", energy_scale(1.05)(a, None))]}
    assert values["same"] == 3000.0
    assert values["x1.05"] < values["x1.02"] < 300


def test_ks_distance_equals_scipy_with_ties_and_different_sizes():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(4)
    cases = [(rng.normal(size=300), rng.normal(0.3, 1.0, size=200)),
             (rng.integers(0, 5, size=400).astype(float), rng.integers(0, 6, size=333).astype(float)),  # ties
             (np.zeros(50), np.zeros(70)),  # identical: 0
             (np.zeros(10), np.ones(10)),  # disjoint: 1
             (rng.normal(size=1), rng.normal(size=5))]
    for g, r in cases:
        assert ks_distance(g, r) == ks_2samp(g, r, method="asymp").statistic
    assert ks_distance(np.zeros(50), np.zeros(70)) == 0.0
    assert ks_distance(np.zeros(10), np.ones(10)) == 1.0
