"""ConditionalGAN: the base of the GAN plugins (bes3-gan, nnls-cgan, wgan-gp).

A GAN plugin subclasses ``ConditionalGAN`` and provides:
  ``build()``: create its networks (called from ``__init__``).
  ``networks()``: name -> nn.Module (from TorchGenerator).
  ``generate(z, cond, energies, raw)``: showers in MeV, (B, cells), non-negative.
  ``train_step(x, cond, energies, raw, rng)``: one optimisation step on a batch of real
    showers (MeV), returns {loss name: float}; ``self.batch_index`` is the step's position in
    the epoch (for n_critic schedules).
  ``make_optimizers()``: name -> torch optimizer.
  optionally ``prepare_fit(train)`` (constants fitted from the training data before the first
  epoch) and ``pretrain(x, cond, energies, raw)`` (networks trained before the adversarial
  epochs, e.g. a regressor).
Tensors: x (B, cells) MeV; cond (B, cond_dim) the encoded conditions; energies (B,) MeV; raw
{"E_inc": (B,), condition name: (B,)} float32 physical conditions.
Conditions are encoded by models/common/conditioning.py (standardised log E_inc and continuous
conditions, ``float32_mean_std`` constants fitted on the training set, one-hot particle).
Training runs through models/common/trainer.py; every epoch reseeds from (seed, epoch), so a
resumed run ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from calobench.data.showerset import ShowerSet
from calobench.data.validation import check_cell_energies
from calobench.errors import CalobenchError
from calobench.models.common.conditioning import ConditionEncoder, float32_mean_std
from calobench.models.common.trainer import Trainer
from calobench.models.torch_base import TorchGenerator


def raw_arrays(energies: np.ndarray, conditions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{"E_inc": (N,) MeV, condition name: (N,)} float64 arrays of validated energies and conditions."""
    return {"E_inc": energies, **{k: np.asarray(v, np.float64) for k, v in conditions.items()}}


def raw_tensors(raw: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The ``raw_arrays`` as float32 tensors (the generators' physical inputs)."""
    return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in raw.items()}


class ConditionalGAN(TorchGenerator):
    """Base of the GAN plugins: conditions, the training step schedule, batched sampling."""

    family = "gan"

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        self.encoder = ConditionEncoder(self.dataset, stats=float32_mean_std)
        self.continuous = list(self.encoder.names)
        self.pdg_codes = self.encoder.codes
        self.cond_dim = self.encoder.n_features
        self.extra = self.encoder.state()
        torch.manual_seed(self.seed)
        self.build()
        self.to(device)

    # ---- hooks ------------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def generate(self, z: torch.Tensor, cond: torch.Tensor, energies: torch.Tensor,
                 raw: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, cond: torch.Tensor, energies: torch.Tensor,
                   raw: dict[str, torch.Tensor], rng: torch.Generator) -> dict[str, float]:
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def prepare_fit(self, train: ShowerSet) -> None:
        """Hook: fit fixed constants from the training data before the first epoch."""

    def pretrain(self, x: torch.Tensor, cond: torch.Tensor, energies: torch.Tensor,
                 raw: dict[str, torch.Tensor]) -> dict:
        """Hook: networks trained before the adversarial epochs (e.g. a regressor)."""
        return {}

    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    def after_load(self) -> None:
        self.encoder.load(self.extra)

    def raw_conditions(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None,
                       what: str) -> dict[str, np.ndarray]:
        """``raw_arrays`` of energies and conditions validated by the condition encoder."""
        return raw_arrays(*self.encoder.check(energies, conditions, what))

    # ---- training ---------------------------------------------------------------------
    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        if train.dataset and train.dataset != self.dataset.name and train.geometry.name != self.dataset.geometry.name:
            raise CalobenchError(f"training set is for {train.dataset}, model is for {self.dataset.name}")
        epochs = int(self.config["epochs"] if epochs is None else epochs)
        limit = self.config.get("max_train_events")
        if limit and len(train) > int(limit):
            train = train.slice(0, int(limit))
        showers = check_cell_energies(train.showers, "training showers")
        energies_np, conditions = self.encoder.check(train.energies, train.conditions, "training sample")
        self.extra.update(self.encoder.fit(energies_np, conditions))
        self.particle_name = train.particle
        dev = self.torch_device
        x = torch.from_numpy(showers).to(dev)
        cond = torch.from_numpy(self.encoder.encode(energies_np, conditions)).to(dev)
        raw = {k: v.to(dev) for k, v in raw_tensors(raw_arrays(energies_np, conditions)).items()}
        energies = raw["E_inc"]

        torch.manual_seed(self.seed)
        self.prepare_fit(train)
        optimizers = self.make_optimizers()
        n = len(x)
        batch = min(int(self.config["batch_size"]), n)
        # an epoch is one pass over the data, but at least ``min_steps`` batches (small samples)
        steps = max(n // batch, int(self.config.get("min_steps", 1)))
        passes = -(-steps * batch // n)
        rng = torch.Generator(device=dev)

        def epoch_batches(epoch: int) -> list[tuple[int, torch.Tensor]]:
            epoch_seed = self.seed * 1_000_003 + epoch
            torch.manual_seed(epoch_seed)  # dropout etc.: epoch-deterministic, so resume is exact
            rng.manual_seed(epoch_seed)
            shuffle = torch.Generator().manual_seed(epoch_seed)
            perm = torch.cat([torch.randperm(n, generator=shuffle) for _ in range(passes)]).to(dev)
            return [(s, perm[s * batch:(s + 1) * batch]) for s in range(steps)]

        def step(position_and_index: tuple[int, torch.Tensor]) -> dict[str, float]:
            self.batch_index, idx = position_and_index
            return self.train_step(x[idx], cond[idx], energies[idx], {k: v[idx] for k, v in raw.items()}, rng)

        def pretrain() -> dict:
            torch.manual_seed(self.seed + 7919)
            return self.pretrain(x, cond, energies, raw)

        trainer = Trainer(self, optimizers, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress)
        return trainer.run(epochs, epoch_batches, step, pretrain=pretrain)

    # ---- sampling ---------------------------------------------------------------------
    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        """One shower (MeV, (N, cells), >= 0, readout threshold applied) per incident energy (MeV, (N,))."""
        energies, conditions = self.encoder.check(energies, conditions, "sample")
        cond_all = torch.from_numpy(self.encoder.encode(energies, conditions))
        raw = raw_tensors(raw_arrays(energies, conditions))
        n = len(energies)
        dev = self.torch_device
        gen = self.noise_generator(self.seed + 104729)  # on the device: noise is drawn where it is used
        threshold = float(self.dataset.geometry.threshold)
        for net in self.networks().values():
            net.eval()
        with torch.inference_mode():
            # inputs go to the device once and the showers come back once (no copy per batch)
            raw = {k: v.to(dev) for k, v in self.sampling_inputs(raw).items()}
            cond_all = cond_all.to(dev)
            result = torch.empty((n, self.dataset.geometry.n_cells), dtype=torch.float32, device=dev)
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                z = torch.randn(stop - start, self.latent_dim, generator=gen, device=dev)
                r = {k: v[start:stop] for k, v in raw.items()}
                showers = self.generate(z, cond_all[start:stop], r["E_inc"], r)
                result[start:stop] = torch.where(showers >= threshold, showers, torch.zeros((), device=dev)).float()
            out = result.cpu().numpy()
        particle = getattr(self, "particle_name", "") or ",".join(self.dataset.particles)
        return ShowerSet(self.dataset.geometry, energies, out, conditions, particle=particle,
                         provenance={"generator": self.name, "preset": self.preset, "seed": self.seed},
                         dataset=self.dataset.name)

    def sampling_inputs(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Hook: the raw condition tensors (host) of a whole ``sample`` call, plus whatever the
        model derives from them on the host before the batches run (default: unchanged)."""
        return raw

    def generation_networks(self) -> list[str]:
        return ["generator"]
