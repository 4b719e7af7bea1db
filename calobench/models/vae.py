"""Conditional variational autoencoder for grid and CaloChallenge voxel datasets.

Representation of a shower (E_inc in MeV, cell energies E_i in MeV, E_tot = sum E_i):
  u   = log(E_tot / E_inc), standardised over the training sample;
  t_i = log(E_i / E_tot + eps), standardised per cell; eps (unless configured) is half the
  readout threshold over the median training E_tot, so that an empty cell sits just below a
  threshold-level hit instead of many orders of magnitude away.
The total energy comes from a small conditional model: a one-dimensional zuko spline flow of u
given the conditions (as flow I of CaloFlow). The VAE models the shape given u: the encoder maps
(t, u, conditions) to a Gaussian latent z, the decoder maps (z, u, conditions) to softmax logits
over all cells (the energy fractions) and a noise scale per cell (a heteroscedastic Gaussian
decoder of t). Generation draws u from the flow, z from N(0, 1), then t from the decoder's
Gaussian (not its mean: that draw gives the cell-to-cell fluctuations and the sparsity of real
showers); the drawn log-fractions go through a softmax, so f_i > 0 and sum to one, and
E_i = E_inc * exp(u) * f_i: non-negative by construction. Cells below the readout threshold are
then zeroed, as in the reference, and the survivors of each layer rescaled so that the layer
keeps its generated energy.
Conditions: log E_inc plus the dataset's conditions (standardised, particle one-hot).
Loss: [Gaussian NLL of standardised t + beta * KL(q(z|x) || N(0, 1))] / cells + NLL of u under the flow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import zuko
from torch import nn

from ..showerset import ShowerSet
from .layers import mlp
from .preprocessing import ConditionalVoxelGenerator, apply_threshold




class ConditionalVAE(ConditionalVoxelGenerator):
    """Conditional VAE (softmax energy fractions x total-energy head) for voxel datasets."""

    name = "vae"
    family = "vae"
    seed_document = ""
    datasets = ("stcf11x11", "bes3-11x11", "darkshine", "calochallenge-1-photons",
                "calochallenge-1-pions", "calochallenge-2", "calochallenge-3")
    description = "Conditional VAE: softmax energy fractions times a learned E_tot/E_inc"
    presets: dict[str, dict[str, Any]] = {
        "tiny": {"energy_transforms": 2, "energy_hidden": [16, 16], "hidden": 32, "depth": 2, "latent": 4, "epochs": 3, "batch_size": 64, "lr": 3e-3,
                 "beta": 0.1, "eps": None, "sigma_floor": 0.05, "checkpoint_every": 1, "grad_clip": 10.0},
        "quick": {"energy_transforms": 3, "energy_hidden": [64, 64], "hidden": 256, "depth": 2, "latent": 16, "epochs": 30, "batch_size": 128, "lr": 1e-3,
                  "beta": 0.1, "eps": None, "sigma_floor": 0.05, "checkpoint_every": 1, "grad_clip": 10.0},
        "full": {"energy_transforms": 4, "energy_hidden": [128, 128], "hidden": 1024, "depth": 3, "latent": 64, "epochs": 400, "batch_size": 256, "lr": 5e-4,
                 "beta": 0.1, "eps": None, "sigma_floor": 0.05, "checkpoint_every": 10, "grad_clip": 10.0},
    }

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        cfg = self.config
        k = self.encoder.n_features
        hidden, depth, latent = int(cfg["hidden"]), int(cfg["depth"]), int(cfg["latent"])
        self.latent = latent
        self.encoder_net = mlp(self.n_cells + 1 + k, hidden, 2 * latent, depth).to(self.torch_device)
        self.decoder_net = mlp(latent + 1 + k, hidden, 2 * self.n_cells, depth).to(self.torch_device)
        self.energy_flow = zuko.flows.NSF(1, context=k, bins=8, transforms=int(cfg["energy_transforms"]),
                                          hidden_features=tuple(cfg["energy_hidden"])).to(self.torch_device)
        self.extra = {"t_mean": np.zeros(self.n_cells), "t_std": np.ones(self.n_cells),
                      "u_mean": np.zeros(1), "u_std": np.ones(1), "eps": np.array([1e-6]), **self.encoder.state()}
        self._set_constants()

    def networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder_net, "decoder": self.decoder_net, "energy_flow": self.energy_flow}

    def generation_networks(self) -> list[str]:
        return ["decoder", "energy_flow"]

    def _set_constants(self) -> None:
        dev = self.torch_device
        self._t_mean = torch.as_tensor(self.extra["t_mean"], dtype=torch.float32, device=dev)
        self._t_std = torch.as_tensor(self.extra["t_std"], dtype=torch.float32, device=dev)
        self._u_mean = float(np.asarray(self.extra["u_mean"]).reshape(-1)[0])
        self._u_std = float(np.asarray(self.extra["u_std"]).reshape(-1)[0])

    def after_load(self) -> None:
        super().after_load()
        self._set_constants()

    def to(self, device: str) -> "ConditionalVAE":
        super().to(device)
        self._set_constants()
        return self

    # ---- preprocessing ----------------------------------------------------------------
    def prepare(self, showers: ShowerSet, fit: bool) -> dict[str, torch.Tensor]:
        features = self.features_of(showers, fit)
        x = self.dense_showers(showers).astype(np.float64)
        etot = x.sum(axis=1)
        if fit:
            eps = self.config.get("eps")
            if eps is None:  # half a threshold-level hit in a median shower
                eps = 0.5 * self.geometry.threshold / max(float(np.median(etot)), self.geometry.threshold)
            self.extra["eps"] = np.array([float(np.clip(eps, 1e-8, 1e-2))])
        eps = self._eps()
        frac = np.divide(x, etot[:, None], out=np.zeros_like(x), where=etot[:, None] > 0)
        t = np.log(frac + eps)
        u = np.log(np.maximum(etot, 1e-3 * self.geometry.threshold) / showers.energies)
        if fit:
            std = t.std(axis=0)
            self.extra.update({"t_mean": t.mean(axis=0), "t_std": np.maximum(std, 0.5),
                               "u_mean": np.array([u.mean()]), "u_std": np.array([max(u.std(), 1e-6)])})
            self._set_constants()
        t = (t - self.extra["t_mean"]) / self.extra["t_std"]
        u = (u - self._u_mean) / self._u_std
        return {"t": torch.from_numpy(t.astype(np.float32)), "u": torch.from_numpy(u.astype(np.float32)),
                "c": torch.from_numpy(features)}

    def _eps(self) -> float:
        return float(np.asarray(self.extra["eps"]).reshape(-1)[0])

    def _decode(self, z: torch.Tensor, u: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell logits (B, cells) and the decoder's noise sigma of each t_i (B, cells)."""
        out = self.decoder_net(torch.cat([z, u[:, None], c], dim=1))
        n = self.n_cells
        sigma = float(self.config["sigma_floor"]) + nn.functional.softplus(out[:, n:] - 1.0)
        return out[:, :n], sigma

    def loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        t, u, c = batch["t"], batch["u"], batch["c"]
        stats = self.encoder_net(torch.cat([t, u[:, None], c], dim=1))
        mu, logvar = stats[:, :self.latent], stats[:, self.latent:].clamp(-12.0, 8.0)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * noise
        logits, sigma = self._decode(z, u, c)
        log_frac = torch.log(torch.softmax(logits, dim=1) + self._eps())
        t_hat = (log_frac - self._t_mean) / self._t_std
        nll_t = (0.5 * ((t_hat - t) / sigma) ** 2 + torch.log(sigma)).sum(dim=1)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
        nll_u = -self.energy_flow(c).log_prob(u[:, None])
        return ((nll_t + float(self.config["beta"]) * kl) / self.n_cells + nll_u).mean()

    # ---- generation ---------------------------------------------------------------------
    def generate(self, features: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        u = self.energy_flow(features).sample()[:, 0]
        z = torch.randn(features.shape[0], self.latent, device=features.device)
        logits, sigma = self._decode(z, u, features)
        # draw from the Gaussian decoder p(t | z, u) (not its mean): cell fluctuations and sparsity
        log_frac = torch.log(torch.softmax(logits, dim=1) + self._eps())
        log_frac = log_frac + sigma * self._t_std * torch.randn_like(log_frac)
        etot = energies * torch.exp(u * self._u_std + self._u_mean)
        cells = torch.softmax(log_frac, dim=1) * etot[:, None]
        # readout threshold: cells below it are zeroed, each layer keeps its generated energy
        return apply_threshold(cells, self.layer_id.to(cells.device), self.n_layers, self.geometry.threshold)
