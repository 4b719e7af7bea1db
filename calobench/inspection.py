"""Summaries of what a shower file holds, computed chunk by chunk (bounded memory)."""

from __future__ import annotations

import numpy as np

from calobench.data.showerset import ShowerSet


CHUNK_BYTES = 64 * 2**20


def default_chunk_size(showers: ShowerSet) -> int:
    """Events per chunk so that one chunk of dense showers holds about 64 MB."""
    cells = showers.geometry.n_cells or 2000
    return max(1, CHUNK_BYTES // (4 * cells))


def summarize(showers: ShowerSet, chunk_size: int | None = None) -> dict:
    """Streamed summary: events, energy range, sparsity, negative cells, cell counts.

    sparsity: fraction of cells that are zero (voxel geometries); cells_per_shower: mean
    number of non-zero cells. Memory: one chunk of ``chunk_size`` events at a time
    (default: about 64 MB of showers).
    """
    geometry = showers.geometry
    chunk_size = chunk_size or default_chunk_size(showers)
    n_cells = geometry.n_cells
    nonzero = 0
    negative = 0
    negative_events = 0
    total_energy_sum = 0.0
    response_sum = 0.0
    min_cell = np.inf
    max_cell = -np.inf
    for chunk in showers.iter_chunks(chunk_size):
        values = chunk.showers if geometry.is_voxel else chunk.showers.cells[:, 3]
        if values.size:
            min_cell = min(min_cell, float(values.min()))
            max_cell = max(max_cell, float(values.max()))
        nonzero += int(np.count_nonzero(values))
        neg = values < 0
        negative += int(neg.sum())
        if geometry.is_voxel:
            negative_events += int(neg.any(axis=1).sum())
        else:
            negative_events += len(np.unique(chunk.showers.event_index[neg]))
        etot = chunk.total_energy()
        total_energy_sum += float(etot.sum())
        response_sum += float((etot / chunk.energies).sum())
    n = len(showers)
    out = {
        "events": n,
        "geometry": geometry.name,
        "geometry_kind": geometry.kind,
        "cells_per_shower": nonzero / n if n else 0.0,
        "negative_cells": negative,
        "events_with_negative_cells": negative_events,
        "mean_total_energy_MeV": total_energy_sum / n if n else 0.0,
        "mean_response": response_sum / n if n else 0.0,
        "min_cell_MeV": None if not np.isfinite(min_cell) else min_cell,
        "max_cell_MeV": None if not np.isfinite(max_cell) else max_cell,
        "energy_min_MeV": float(showers.energies.min()) if n else None,
        "energy_max_MeV": float(showers.energies.max()) if n else None,
        "conditions": list(showers.conditions),
    }
    if n_cells:
        out["sparsity"] = 1.0 - nonzero / (n * n_cells) if n else 0.0
    return out
