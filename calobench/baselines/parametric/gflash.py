"""GFlash: the parametric fast simulation (calobench.baselines.parametric.gflash_shower) as a model plugin."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calobench.data.showerset import CellList, ShowerSet
from calobench.baselines.parametric.gflash_shower import (FIT_STEPS_CEPC, Frame, GFlashParams, build_cell_maps,
                                                          build_pad_maps, fit_cepc, fit_gflash, fit_steps_gflash,
                                                          sample_cepc, sample_showers)
from calobench.errors import CalobenchError
from calobench.progress import stage
from calobench.models.base import Generator, sample_inputs


#: Cells simulated per call (bounds the working arrays: about 16 bytes per cell).
CELLS_PER_CALL = 4_000_000


class GFlash(Generator):
    """Grindhammer-Peters longitudinal gamma profile with correlated fluctuations, core + tail
    radial profile integrated over each cell and per-cell sampling fluctuations, fitted to the
    training sample. ``draws``: Monte Carlo draws of the cepc radial fit; ``max_events``: showers fitted."""

    name = "gflash"
    family = "parametric"
    seed_document = ""
    datasets = ("stcf11x11", "bes3-11x11", "darkshine", "calochallenge-2", "calochallenge-3", "cepc")
    description = "GFlash-style parametric shower model fitted to the reference (numpy)"
    presets = {
        "tiny": {"draws": 4000, "max_events": 300},
        "quick": {"draws": 20000, "max_events": 3000},
        "full": {"draws": 60000, "max_events": 20000},
    }

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu", **overrides) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        self.frame = Frame(self.dataset.geometry) if self.dataset.geometry.is_voxel else None
        self.params: GFlashParams | None = None
        self._maps = None  # cell maps integrated from self.params (built on first use)
        self._calls = 0

    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        """Fit the parameters (a deterministic least-squares fit; epochs/checkpoints do not apply)."""
        n = min(len(train), int(self.config["max_events"]))
        rng = np.random.default_rng(self.seed)
        index = np.sort(rng.choice(len(train), n, replace=False)) if n < len(train) else np.arange(n)
        sub = train.take(index)
        title = f"gflash fit: {self.dataset.name} ({n} showers)"
        if self.frame is None:  # point clouds of a barrel
            cells = sub.showers
            with stage(title, total=FIT_STEPS_CEPC, enabled=progress) as bar:
                self.params = fit_cepc(self.dataset.geometry.barrel, sub.energies, cells.cells, cells.offsets,
                                       sub.conditions["theta"], sub.conditions["phi"],
                                       self.dataset.geometry.threshold, int(self.config["draws"]), self.seed, bar)
            self._maps = None
            return {"events": int(n), "response": self.params.response.tolist(), "eps": self.params.eps.tolist()}
        with stage(title, total=fit_steps_gflash(sub.conditions, n), enabled=progress) as bar:
            self.params = fit_gflash(self.dataset, sub.energies, sub.showers, sub.conditions, n, self.seed, bar)
        self._maps = None
        return {"events": int(n), "groups": self.params.codes.tolist(),
                "response": self.params.response.tolist(), "eps": self.params.eps.tolist()}

    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        if self.params is None:
            raise CalobenchError(f"model {self.name}: fit or load it before sampling")
        energies, conditions = sample_inputs(energies, conditions)
        rng = np.random.default_rng([self.seed, self._calls])
        self._calls += 1
        geometry = self.dataset.geometry
        maps = self.cell_maps()
        provenance = {"generator": "gflash", "preset": self.preset, "seed": self.seed}
        if self.frame is None:
            missing = [k for k in ("theta", "phi") if k not in conditions]
            if missing:
                raise CalobenchError(f"model {self.name}: dataset {self.dataset.name} needs condition "
                                     f"{missing[0]!r} (deg)")
            parts = []
            per_batch = max(1, min(batch_size, int(CELLS_PER_CALL // maps.table.shape[2])))
            for lo in range(0, len(energies), per_batch):
                hi = min(lo + per_batch, len(energies))
                cells, offsets = sample_cepc(self.params, maps, geometry.barrel, energies[lo:hi],
                                             conditions["theta"][lo:hi], conditions["phi"][lo:hi],
                                             geometry.threshold, rng)
                parts.append(CellList(cells, offsets))
            return ShowerSet(geometry, energies, CellList.concatenate(parts), conditions,
                             "+".join(self.dataset.particles), provenance, self.dataset.name)
        per_batch = max(1, min(batch_size, int(CELLS_PER_CALL // geometry.n_cells)))
        out = np.zeros((len(energies), geometry.n_cells), dtype=np.float32)
        for lo in range(0, len(energies), per_batch):
            hi = min(lo + per_batch, len(energies))
            sample_showers(self.params, maps, self.dataset, self.frame, energies[lo:hi],
                           {k: v[lo:hi] for k, v in conditions.items()}, rng, out=out[lo:hi])
        return ShowerSet(geometry, energies, out, conditions, "+".join(self.dataset.particles),
                         provenance, self.dataset.name)

    def cell_maps(self):
        """The fitted radial profiles integrated over the cells (cached until the next fit/load)."""
        if self._maps is None:
            geometry = self.dataset.geometry
            self._maps = (build_pad_maps(self.params, geometry.barrel, geometry.threshold) if self.frame is None
                          else build_cell_maps(self.params, self.dataset, self.frame))
        return self._maps

    def state_arrays(self) -> dict[str, np.ndarray]:
        if self.params is None:
            return {}
        return self.params.arrays()

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.params = GFlashParams.from_arrays(arrays)
        self._maps = None
