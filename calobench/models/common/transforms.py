"""Shower transforms shared by several models: layer sums, the readout threshold, a log ratio.

Shapes: showers are (N, cells) tensors of cell energies in MeV; ``layer_id`` (cells,) int64 gives
each cell's layer.
"""

from __future__ import annotations

import math

import torch


def layer_sums(showers: torch.Tensor, layer_id: torch.Tensor, n_layers: int) -> torch.Tensor:
    """(N, L) summed energy of each layer of (N, cells) showers; layer_id (cells,) int64."""
    out = torch.zeros(showers.shape[0], n_layers, dtype=showers.dtype, device=showers.device)
    return out.index_add_(1, layer_id, showers)


def apply_threshold(cells: torch.Tensor, layer_id: torch.Tensor, n_layers: int, threshold: float,
                    layers: torch.Tensor | None = None) -> torch.Tensor:
    """Zero the cells below ``threshold`` MeV and rescale the survivors of each layer.

    cells: (N, cells) >= 0 MeV; layers: (N, L) layer energies to keep (default: the sums
    before the cut). The most energetic cell of each layer always survives, so a layer's
    energy is never lost (a layer whose energy is below threshold is cut later by the caller).
    """
    if layers is None:
        layers = layer_sums(cells, layer_id, n_layers)
    index = layer_id.expand(cells.shape[0], -1)
    hottest = torch.zeros_like(layers).scatter_reduce_(1, index, cells, reduce="amax", include_self=False)
    keep = (cells >= threshold) | (cells >= hottest.gather(1, index))
    cells = torch.where(keep, cells, torch.zeros_like(cells))
    kept = layer_sums(cells, layer_id, n_layers)
    scale = torch.where(kept > 0, layers / kept.clamp_min(1e-30), torch.zeros_like(kept))
    return cells * scale[:, layer_id]


class LogRatioTransform:
    """Cell energy <-> network space: u = log1p(E / (eps E_inc)) / log1p(1 / eps).

    u >= 0 for E >= 0, u = 1 for a cell holding all of E_inc; the inverse of any u >= 0 is a
    non-negative energy. Compresses the many orders of magnitude of cell energies.
    Shapes: showers and u (B, cells), energies (B,) MeV.
    """

    def __init__(self, eps: float) -> None:
        self.eps = float(eps)
        self.scale = math.log1p(1.0 / self.eps)

    def forward(self, showers: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        return torch.log1p(showers.clamp_min(0) / (self.eps * energies[:, None])) / self.scale

    def inverse(self, u: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        return torch.expm1(u * self.scale) * (self.eps * energies[:, None])
