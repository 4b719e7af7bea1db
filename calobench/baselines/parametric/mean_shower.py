"""mean-shower: the trivial baseline every real model must beat.

The training sample is cut into bins of incident energy (equal-population bins in
log E_inc). For each bin the model stores the mean shower per unit incident energy
(cell energy / E_inc, averaged over the bin). A generated shower is the mean of the
nearest bin scaled by its incident energy, with the geometry's readout threshold
applied (cells below it read zero). It has no randomness and ignores every condition
except the incident energy, so each bin produces one shower shape.

Point clouds (cepc): the readout cells sit on a fixed global grid, so the mean of a bin
is taken cell by cell over the union of the bin's hit cells (sum of energies / number
of showers), then scaled and thresholded like the voxel case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calobench.datasets import Dataset
from calobench.data.showerset import CellList, ShowerSet
from calobench.models.base import Generator


class MeanShower(Generator):
    """Average shower of the nearest incident-energy bin, scaled to the incident energy."""

    name = "mean-shower"
    family = "parametric"
    seed_document = ""
    presets = {
        "tiny": {"n_bins": 4},
        "quick": {"n_bins": 20},
        "full": {"n_bins": 40},
    }
    description = "trivial baseline: mean shower of the nearest incident-energy bin, scaled"

    @classmethod
    def supports(cls, dataset: Dataset) -> bool:
        """Every dataset, registered before or after this class (voxels and point clouds)."""
        return True

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        self.log_centres = np.zeros(0)          # (B,) mean log E_inc of each bin
        self.means = np.zeros((0, 0), np.float32)  # voxel: (B, cells) mean fraction per cell
        self.cloud_cells = np.zeros((0, 4), np.float32)  # point cloud: mean cells per bin, x y z E/E_inc
        self.cloud_offsets = np.zeros(1, np.int64)       # (B + 1,)

    # ---- training -----------------------------------------------------------------
    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        """One pass over ``train``: bin by log E_inc, average E_cell / E_inc per bin."""
        log_e = np.log(train.energies.astype(np.float64))
        n_bins = max(1, min(int(self.config["n_bins"]), len(np.unique(log_e))))
        edges = np.quantile(log_e, np.linspace(0.0, 1.0, n_bins + 1))
        edges = np.unique(edges)
        which = np.clip(np.searchsorted(edges, log_e, side="right") - 1, 0, len(edges) - 2)
        used = np.unique(which)
        self.log_centres = np.array([log_e[which == b].mean() for b in used])
        if train.geometry.is_voxel:
            fractions = train.showers.astype(np.float64) / train.energies[:, None]
            self.means = np.stack([fractions[which == b].mean(axis=0) for b in used]).astype(np.float32)
        else:
            clouds = [self._mean_cloud(train, np.flatnonzero(which == b)) for b in used]
            self.cloud_offsets = np.zeros(len(clouds) + 1, np.int64)
            np.cumsum([len(c) for c in clouds], out=self.cloud_offsets[1:])
            self.cloud_cells = np.concatenate(clouds).astype(np.float32)
        history = {"bins": len(used), "train_events": len(train)}
        self.on_epoch_end(1, history)
        return history

    @staticmethod
    def _mean_cloud(train: ShowerSet, events: np.ndarray) -> np.ndarray:
        """(K, 4) union of the cells hit in ``events``: x, y, z and mean E_cell / E_inc."""
        part = train.showers.take(events)
        cells = part.cells.astype(np.float64)
        frac = cells[:, 3] / np.repeat(train.energies[events], part.counts)
        keys, inverse = np.unique(np.round(cells[:, :3], 1), axis=0, return_inverse=True)
        energy = np.bincount(inverse.reshape(-1), weights=frac, minlength=len(keys)) / len(events)
        return np.concatenate([keys, energy[:, None]], axis=1)

    # ---- generation ---------------------------------------------------------------
    def _nearest_bin(self, energies: np.ndarray) -> np.ndarray:
        log_e = np.log(np.asarray(energies, dtype=np.float64))
        return np.abs(log_e[:, None] - self.log_centres[None, :]).argmin(axis=1)

    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        """The scaled mean shower of the nearest bin for each incident energy (MeV, (N,))."""
        if len(self.log_centres) == 0:
            from calobench.errors import CalobenchError
            raise CalobenchError(f"model {self.name}: not fitted (train it or load a saved model)")
        energies = np.asarray(energies, dtype=np.float64).reshape(-1)
        geometry = self.dataset.geometry
        bins = self._nearest_bin(energies)
        threshold = geometry.threshold
        if geometry.is_voxel:
            showers = np.empty((len(energies), self.means.shape[1]), np.float32)
            for start in range(0, len(energies), batch_size):
                stop = start + batch_size
                block = self.means[bins[start:stop]] * energies[start:stop, None].astype(np.float32)
                block[block < threshold] = 0.0
                showers[start:stop] = block
        else:
            parts = []
            for b, e in zip(bins, energies):
                cells = self.cloud_cells[self.cloud_offsets[b]:self.cloud_offsets[b + 1]].copy()
                cells[:, 3] *= e
                parts.append(cells[cells[:, 3] >= threshold])
            showers = CellList.from_showers(parts)
        conditions = {k: np.asarray(v) for k, v in (conditions or {}).items()}
        return ShowerSet(geometry, energies, showers, conditions, particle=",".join(self.dataset.particles),
                         provenance={"generator": self.name, "preset": self.preset}, dataset=self.dataset.name)

    # ---- state --------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {"log_centres": np.asarray(self.log_centres, np.float64)}
        if self.dataset.geometry.is_voxel:
            out["means"] = np.asarray(self.means, np.float32)
        else:
            out["cloud_cells"] = np.asarray(self.cloud_cells, np.float32)
            out["cloud_offsets"] = np.asarray(self.cloud_offsets, np.int64)
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.log_centres = np.asarray(arrays["log_centres"], np.float64)
        if "means" in arrays:
            self.means = np.asarray(arrays["means"], np.float32)
        if "cloud_cells" in arrays:
            self.cloud_cells = np.asarray(arrays["cloud_cells"], np.float32)
            self.cloud_offsets = np.asarray(arrays["cloud_offsets"], np.int64)
