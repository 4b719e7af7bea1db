"""Geant4 time per event of the embedded reference samples (the speed-up denominator).

`calobench simulate` stores it in the provenance of the file it writes (``geant4_timing``).
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from calobench.datasets.registry import get_dataset


def timing_table(dataset_name: str) -> dict | None:
    """The ``geant4_timing`` table stored in the embedded file's provenance, or None."""
    dataset = get_dataset(dataset_name)
    if not dataset.has_embedded:
        return None
    with h5py.File(dataset.embedded_path, "r") as f:
        raw = f.attrs.get("provenance")
    if raw is None:
        return None
    try:
        return json.loads(raw if isinstance(raw, str) else raw.decode()).get("geant4_timing")
    except json.JSONDecodeError:
        return None


def geant4_ms_per_event(dataset_name: str, energy_mev: float | None = None) -> float | None:
    """Geant4 CPU time in ms per event for ``dataset_name`` (one CPU core).

    energy_mev: None gives the mean over the embedded sample; a value gives the mean of its
    energy bin (linear interpolation between bin centres, clamped at the ends).
    Returns None when no embedded sample with timing exists.
    """
    table = timing_table(dataset_name)
    if not table:
        return None
    if energy_mev is None:
        return float(table["mean_ms"])
    edges = np.asarray(table["edges_MeV"], dtype=np.float64)
    values = np.array([np.nan if v is None else v for v in table["ms_per_event"]], dtype=np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    ok = np.isfinite(values)
    if not ok.any():
        return float(table["mean_ms"])
    return float(np.interp(float(energy_mev), centres[ok], values[ok]))
