"""CaloFlow-style two-stage conditional normalizing flow (Krause & Shih, arXiv:2106.05285).

Built on zuko (a maintained PyTorch flow library): both stages are zuko neural spline flows
(monotonic rational-quadratic splines whose parameters come from masked MLPs, i.e. MADE).

Flow I models the layer energies given the conditions (log E_inc and the dataset's own):
  v_0 = log(E_tot / E_inc); v_k = logit(E_k / sum_{j>=k} E_j) for k < L - 1 (stick breaking),
  each standardised. With one layer (stcf11x11, bes3-11x11) flow I is the 1-D density of
  E_tot / E_inc.
Flow II models the normalised voxels given the conditions and log layer energies:
  x_i = (E_i + n_i) / sum_{j in layer(i)} (E_j + n_j), n_i ~ U(0, noise * threshold) during
  training (CaloFlow's noise, scaled to this readout threshold), y_i = logit(alpha + (1 - 2 alpha) x_i),
  standardised per cell.
Generation inverts both without any clipping: E_k from exp and sigmoids (> 0), cell fractions
sigmoid(y_i) normalised within each layer (> 0), E_i = E_k * fraction. Cells below the readout
threshold are zeroed and the survivors of each layer rescaled to keep the layer energy of flow I
(the most energetic cell of a layer always survives).
Flow II defaults to two masks per transform (``passes=2``: coupling-like), so sampling costs two
network passes per transform instead of one per cell (CaloFlow's MAF samples cell by cell);
``passes: null`` in a config gives the fully autoregressive MADE of the paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import zuko
from torch import nn

from calobench.data.showerset import ShowerSet
from calobench.baselines.vae_flow.conditional_voxel_generator import ConditionalVoxelGenerator
from calobench.models.common.transforms import apply_threshold, layer_sums


def logit(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """logit(alpha + (1 - 2 alpha) x) for x in [0, 1] (CaloFlow's preprocessing)."""
    y = alpha + (1.0 - 2.0 * alpha) * x
    return torch.log(y) - torch.log1p(-y)


class CaloFlow(ConditionalVoxelGenerator):
    """Two-stage conditional flow: layer energies (flow I) then normalised voxels (flow II)."""

    name = "flow"
    family = "flow"
    seed_document = ""
    datasets = ("stcf11x11", "bes3-11x11", "calochallenge-1-photons")
    description = "CaloFlow-style two-stage conditional spline flow (zuko)"
    presets: dict[str, dict[str, Any]] = {
        "tiny": {"flow1_transforms": 2, "flow1_hidden": [16, 16], "flow2_transforms": 2,
                 "flow2_hidden": [32, 32], "bins": 4, "passes": 2, "alpha": 1e-6, "noise": 0.5,
                 "epochs": 3, "batch_size": 64, "lr": 2e-3, "grad_clip": 5.0},
        "quick": {"flow1_transforms": 4, "flow1_hidden": [64, 64], "flow2_transforms": 4,
                  "flow2_hidden": [128, 128], "bins": 8, "passes": 2, "alpha": 1e-6, "noise": 0.5,
                  "epochs": 8, "batch_size": 256, "lr": 2e-3, "grad_clip": 5.0},
        "full": {"flow1_transforms": 6, "flow1_hidden": [128, 128], "flow2_transforms": 8,
                 "flow2_hidden": [512, 512], "bins": 8, "passes": 2, "alpha": 1e-6, "noise": 0.5,
                 "epochs": 300, "batch_size": 256, "lr": 5e-4, "grad_clip": 5.0},
    }

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        cfg = self.config
        k = self.encoder.n_features
        L = self.n_layers
        passes = cfg.get("passes")
        self.flow1 = zuko.flows.NSF(L, context=k, bins=int(cfg["bins"]), transforms=int(cfg["flow1_transforms"]),
                                    hidden_features=tuple(cfg["flow1_hidden"])).to(self.torch_device)
        self.flow2 = zuko.flows.NSF(self.n_cells, context=k + L, bins=int(cfg["bins"]),
                                    transforms=int(cfg["flow2_transforms"]),
                                    hidden_features=tuple(cfg["flow2_hidden"]),
                                    passes=None if passes is None else int(passes)).to(self.torch_device)
        self.extra = {"v_mean": np.zeros(L), "v_std": np.ones(L), "le_mean": np.zeros(L), "le_std": np.ones(L),
                      "y_mean": np.zeros(self.n_cells), "y_std": np.ones(self.n_cells), **self.encoder.state()}
        self._set_constants()

    def networks(self) -> dict[str, nn.Module]:
        return {"flow1": self.flow1, "flow2": self.flow2}

    def _set_constants(self) -> None:
        dev = self.torch_device
        self._c = {k: torch.as_tensor(np.asarray(self.extra[k]), dtype=torch.float32, device=dev)
                   for k in ("v_mean", "v_std", "le_mean", "le_std", "y_mean", "y_std")}
        self._layer_id = self.layer_id.to(dev)

    def after_load(self) -> None:
        super().after_load()
        self._set_constants()

    def after_move(self) -> None:
        self._set_constants()

    # ---- preprocessing ------------------------------------------------------------------
    def _layer_variables(self, layers: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """(N, L) flow-I variables (unstandardised) from layer energies (N, L) > 0 and E_inc (N,)."""
        alpha = float(self.config["alpha"])
        etot = layers.sum(dim=1)
        cols = [torch.log(etot / e_inc)]
        remaining = etot
        for k in range(self.n_layers - 1):
            cols.append(logit((layers[:, k] / remaining).clamp(0.0, 1.0), alpha))
            remaining = (remaining - layers[:, k]).clamp_min(0.0)
        return torch.stack(cols, dim=1)

    def _layers_from_variables(self, v: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """Inverse of _layer_variables: (N, L) layer energies, positive by construction."""
        remaining = e_inc * torch.exp(v[:, 0])
        out = []
        for k in range(self.n_layers - 1):
            out.append(remaining * torch.sigmoid(v[:, k + 1]))
            remaining = remaining * torch.sigmoid(-v[:, k + 1])
        out.append(remaining)
        return torch.stack(out, dim=1)

    def _noisy(self, showers: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(cell energies + U(0, noise*threshold) noise, layer energies + one such noise per layer)."""
        scale = float(self.config["noise"]) * self.geometry.threshold
        cells = showers + scale * torch.rand(showers.shape, generator=generator, device=showers.device)
        layers = layer_sums(showers, self._layer_id, self.n_layers)
        layers = layers + scale * torch.rand(layers.shape, generator=generator, device=showers.device)
        return cells, layers

    def _voxel_variables(self, cells: torch.Tensor) -> torch.Tensor:
        """(N, cells) logit of layer-normalised cell energies (unstandardised)."""
        per_layer = layer_sums(cells, self._layer_id, self.n_layers)
        frac = cells / per_layer[:, self._layer_id]
        return logit(frac.clamp(0.0, 1.0), float(self.config["alpha"]))

    def training_tensors(self, showers: ShowerSet, fit: bool) -> dict[str, torch.Tensor]:
        features = self.features_of(showers, fit)
        x = torch.from_numpy(self.dense_showers(showers))
        e_inc = torch.from_numpy(np.asarray(showers.energies, dtype=np.float32))
        if fit:  # standardisation constants from one fixed noise draw of the training sample
            cells, layers = self._noisy(x.to(self.torch_device), self._generator(self.seed + 12345))
            layers = layers.cpu()
            v = self._layer_variables(layers, e_inc).double()
            y = self._voxel_variables(cells).double().cpu()
            le = torch.log(layers).double()
            self.extra.update({
                "v_mean": v.mean(0).numpy(), "v_std": v.std(0).clamp_min(1e-6).numpy(),
                "le_mean": le.mean(0).numpy(), "le_std": le.std(0).clamp_min(1e-6).numpy(),
                "y_mean": y.mean(0).numpy(), "y_std": y.std(0).clamp_min(1e-6).numpy()})
            self._set_constants()
        return {"x": x, "e": e_inc, "c": torch.from_numpy(features)}

    def loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        c = self._c
        cells, layers = self._noisy(batch["x"], generator)
        v = (self._layer_variables(layers, batch["e"]) - c["v_mean"]) / c["v_std"]
        y = (self._voxel_variables(cells) - c["y_mean"]) / c["y_std"]
        le = (torch.log(layers) - c["le_mean"]) / c["le_std"]
        nll1 = -self.flow1(batch["c"]).log_prob(v)
        nll2 = -self.flow2(torch.cat([batch["c"], le], dim=1)).log_prob(y)
        return (nll1 + nll2).mean() / (self.n_layers + self.n_cells)

    # ---- generation ---------------------------------------------------------------------
    def generate(self, features: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        c = self._c
        v = self.flow1(features).sample() * c["v_std"] + c["v_mean"]
        layers = self._layers_from_variables(v, energies)
        le = (torch.log(layers) - c["le_mean"]) / c["le_std"]
        y = self.flow2(torch.cat([features, le], dim=1)).sample() * c["y_std"] + c["y_mean"]
        frac = torch.sigmoid(y)
        lid = self._layer_id
        frac = frac / layer_sums(frac, lid, self.n_layers)[:, lid]
        cells = frac * layers[:, lid]
        # readout threshold: cells below it are zeroed, each layer keeps the energy of flow I
        return apply_threshold(cells, lid, self.n_layers, self.geometry.threshold, layers)
