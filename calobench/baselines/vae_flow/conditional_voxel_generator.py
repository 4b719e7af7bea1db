"""ConditionalVoxelGenerator: the base of the conditional voxel models (``vae`` and ``flow``).

A TorchGenerator with the voxel models' seeded training (Adam, cosine learning rate, gradient
clipping, shuffling and noise reseeded from (seed, epoch), through models/common/trainer.py) and
batched, seeded generation. Conditions: models/common/conditioning.py (standardised log E_inc and
continuous conditions, one-hot particle). A subclass implements ``training_tensors``, ``loss``
and ``generate``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from calobench.data.showerset import ShowerSet
from calobench.data.validation import check_cell_energies
from calobench.errors import CalobenchError
from calobench.models.common.conditioning import ConditionEncoder
from calobench.models.common.trainer import Trainer, shuffled_batches
from calobench.models.torch_base import TorchGenerator


class ConditionalVoxelGenerator(TorchGenerator):
    """Common training and sampling machinery of the conditional voxel models.

    Subclasses implement:
      training_tensors(showerset, fit) -> dict of CPU tensors with a common first dimension N
        (fit=True also fits the preprocessing constants into self.extra);
      loss(batch, generator) -> scalar tensor (batch on self.torch_device; all randomness
        drawn from ``generator`` so that training is reproducible and resumable);
      generate(features, energies) -> (B, cells) non-negative showers in MeV.
    Config keys used here: epochs, batch_size, lr, grad_clip.
    """

    #: layer_id stays on the host (the device copy a subclass uses is ``_layer_id``)
    host_tensors: ClassVar[tuple[str, ...]] = ("layer_id",)

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        if not self.dataset.geometry.is_voxel:
            raise CalobenchError(f"model {self.name} needs a voxel geometry; {dataset} is a point cloud")
        self.encoder = ConditionEncoder(self.dataset)
        self.geometry = self.dataset.geometry
        self.n_cells = int(self.geometry.n_cells)
        self.n_layers = int(self.geometry.n_layers)
        self.layer_id = torch.as_tensor(np.array(self.geometry.layer_index), dtype=torch.long)
        self.fitted = False

    # ---- hooks ---------------------------------------------------------------------
    def training_tensors(self, showers: ShowerSet, fit: bool) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def generate(self, features: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # ---- shared helpers -------------------------------------------------------------
    def features_of(self, showers: ShowerSet, fit: bool) -> np.ndarray:
        """Validated, standardised condition features of a training (fit) or validation sample."""
        what = "training sample" if fit else "validation sample"
        energies, conditions = self.encoder.check(showers.energies, showers.conditions, what)
        if fit:
            self.extra.update(self.encoder.fit(energies, conditions))
        return self.encoder.encode(energies, conditions)

    def dense_showers(self, showers: ShowerSet) -> np.ndarray:
        """(N, cells) float32 showers, checked for NaN and negative energies."""
        if showers.geometry.name != self.geometry.name:
            raise CalobenchError(
                f"model {self.name} was built for geometry {self.geometry.name}, found {showers.geometry.name}")
        return check_cell_energies(showers.showers, "training showers")

    def after_load(self) -> None:
        self.encoder.load(self.extra)
        self.fitted = True

    def _parameters(self) -> list[nn.Parameter]:
        return [p for net in self.networks().values() for p in net.parameters()]

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.torch_device).manual_seed(int(seed))

    # ---- training -------------------------------------------------------------------
    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        cfg = self.config
        epochs = int(cfg["epochs"] if epochs is None else epochs)
        data = self.training_tensors(train, fit=True)
        vdata = self.training_tensors(valid, fit=False) if valid is not None and len(valid) else None
        self.fitted = True
        n = next(iter(data.values())).shape[0]
        batch_size = int(min(cfg["batch_size"], n))
        opt = torch.optim.Adam(self._parameters(), lr=float(cfg["lr"]))
        clip = float(cfg.get("grad_clip", 10.0))
        rng = torch.Generator(device=self.torch_device)

        def epoch_batches(epoch: int) -> list[torch.Tensor]:
            lr = float(cfg["lr"]) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1))))
            for group in opt.param_groups:
                group["lr"] = lr
            rng.manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            return shuffled_batches(n, batch_size, order, drop_last=True)  # no ragged last batch

        def step(idx: torch.Tensor) -> dict[str, float]:
            batch = {k: v[idx].to(self.torch_device) for k, v in data.items()}
            loss = self.loss(batch, rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self._parameters(), clip)
            opt.step()
            return {"loss": float(loss.detach())}

        def end_epoch(epoch: int) -> dict:
            out = {"lr": opt.param_groups[0]["lr"]}
            if vdata is not None:
                out["valid_loss"] = self._evaluate(vdata, epoch)
            return out

        trainer = Trainer(self, {"adam": opt}, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress)
        return trainer.run(epochs, epoch_batches, step, end_epoch=end_epoch)

    @torch.no_grad()
    def _evaluate(self, data: dict[str, torch.Tensor], epoch: int) -> float:
        """Mean loss over a prepared validation sample, its noise seeded from (seed, epoch)."""
        for net in self.networks().values():
            net.eval()
        gen = self._generator(self.seed * 1_000_003 + 500_000 + epoch)
        n = next(iter(data.values())).shape[0]
        size = int(self.config["batch_size"])
        total = 0.0
        for lo in range(0, n, size):
            batch = {k: v[lo:lo + size].to(self.torch_device) for k, v in data.items()}
            total += float(self.loss(batch, gen)) * next(iter(batch.values())).shape[0]
        return total / max(n, 1)

    # ---- generation -----------------------------------------------------------------
    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        """One shower (MeV, (N, cells), every cell >= 0) per incident energy (MeV, (N,)).

        Same model, same seed and same inputs give the same showers on CPU.
        """
        if not self.fitted:
            raise CalobenchError(f"model {self.name}: call fit() (or load a trained model) before sample()")
        energies, conditions = self.encoder.check(energies, conditions, "sample")
        features = torch.from_numpy(self.encoder.encode(energies, conditions))
        e_inc = torch.from_numpy(energies.astype(np.float32))
        for net in self.networks().values():
            net.eval()
        dev = self.torch_device
        devices = [dev] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(self.seed)
            # inputs go to the device once and the showers come back once (no copy per batch)
            features, e_inc = features.to(dev), e_inc.to(dev)
            showers = torch.empty((len(energies), self.n_cells), dtype=torch.float32, device=dev)
            for lo in range(0, len(energies), max(int(batch_size), 1)):
                hi = min(lo + int(batch_size), len(energies))
                showers[lo:hi] = self.generate(features[lo:hi], e_inc[lo:hi]).float()
            out = showers.cpu().numpy()
        out[out < self.geometry.threshold] = 0.0  # readout threshold, as in the reference
        particle = self.dataset.particles[0] if len(self.dataset.particles) == 1 else ",".join(self.dataset.particles)
        return ShowerSet(self.geometry, energies, out, conditions, particle,
                         {"generator": self.name, "preset": self.preset, "seed": self.seed},
                         self.dataset.name)
