"""Histograms drawn by the report, never used by a metric: ranges that cover both samples
(with under/overflow counts) and views in bins of incident energy."""

from __future__ import annotations

import numpy as np


def display_histograms(generated: np.ndarray, reference: np.ndarray, bins: int = 50) -> dict | None:
    """Histograms for the report on edges that cover both samples (their 0.1-99.9 % quantiles),
    log-spaced when the range is positive and spans more than two decades, with the entries
    outside counted as underflow / overflow. None when both samples are one and the same
    constant (a panel that could carry no information). Not used by any metric."""
    g, r = generated[np.isfinite(generated)], reference[np.isfinite(reference)]
    if len(g) == 0 or len(r) == 0:
        return None
    both = np.concatenate([g, r])
    if both.min() == both.max():
        return None
    lo = min(np.quantile(g, 0.001), np.quantile(r, 0.001))
    hi = max(np.quantile(g, 0.999), np.quantile(r, 0.999))
    if not hi > lo:
        lo, hi = float(both.min()), float(both.max())
    log = lo > 0 and hi / lo > 100
    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    out = {"edges": edges, "log_x": bool(log)}
    for label, values in (("generated", g), ("reference", r)):
        out[label] = np.histogram(values, edges)[0].astype(np.float64)
        # np.histogram's last bin is closed: entries equal to hi are inside
        out[f"{label}_underflow"] = int(np.sum(values < lo))
        out[f"{label}_overflow"] = int(np.sum(values > hi))
    return out


#: Incident-energy bins of the per-energy views of the report.
PER_ENERGY_BINS = 6


def per_energy_histograms(generated: np.ndarray, reference: np.ndarray, bins: int = PER_ENERGY_BINS) -> list[dict]:
    """E_tot / E_inc of both samples in bins of incident energy, for the report (as the
    challenge's published plots show it). generated / reference: (n, 2) rows (E_inc MeV,
    E_tot / E_inc). Bins: equal-population quantiles of the reference energies; none when the
    reference has a single energy. Each item: ``range_MeV`` and
    ``display_histograms`` of the bin (None for a bin without entries)."""
    energies = reference[:, 0]
    if len(energies) == 0 or energies.min() == energies.max():
        return []
    edges = np.unique(np.quantile(energies, np.linspace(0.0, 1.0, bins + 1)))
    out = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2

        def inside(rows):
            e = rows[:, 0]
            return rows[(e >= lo) & ((e <= hi) if last else (e < hi)), 1]

        out.append({"range_MeV": (float(lo), float(hi)),
                    "histograms": display_histograms(inside(generated), inside(reference), bins=30)})
    return out
