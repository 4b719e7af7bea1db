"""Shared building blocks of the GAN family: condition encoding, energy transforms,
minibatch discrimination, and the seeded, checkpointed training loop.

A GAN plugin subclasses ``ConditionalGAN`` and provides:
  ``build()``: create its networks (called from ``__init__``).
  ``networks()``: name -> nn.Module (from TorchGenerator).
  ``generate(z, cond, energies, raw)``: showers in MeV, (B, cells), non-negative.
  ``train_step(x, cond, energies, raw, rng)``: one optimisation step on a batch of real
    showers (MeV), returns {loss name: float}.
  ``make_optimizers()``: name -> torch optimizer.
Conditions are encoded as [standardised log E_inc, standardised continuous conditions,
one-hot particle] (the standardisation constants are fitted on the training set and saved
in ``self.extra``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.datasets import PDG
from calobench.errors import CalobenchError
from calobench.data.showerset import ShowerSet
from calobench.models.base import load_checkpoint, save_checkpoint
from calobench.models.torch_base import TorchGenerator


# ---- layers --------------------------------------------------------------------------
class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, arXiv:1606.03498).

    For each sample, ``n_kernels`` features measure how close it is to the other samples of
    the batch (L1 distance of learned projections), which lets the discriminator detect a
    generator that collapses to few modes. Input (B, in_features) -> output (B, n_kernels).
    """

    def __init__(self, in_features: int, n_kernels: int = 8, kernel_dim: int = 4) -> None:
        super().__init__()
        self.n_kernels = n_kernels
        self.kernel_dim = kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T).view(-1, self.n_kernels, self.kernel_dim)  # (B, K, D)
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # (B, B, K)
        return torch.exp(-dist).sum(1) - 1.0  # exclude self (exp(0) = 1)


def soft_sparsity(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Differentiable fraction of non-empty cells: mean over cells of tanh(x / scale). x: (B, cells)."""
    return torch.tanh(x / scale).mean(1, keepdim=True)


class LogRatioTransform:
    """Cell energy <-> network space: u = log1p(E / (eps E_inc)) / log1p(1 / eps).

    u >= 0 for E >= 0, u = 1 for a cell holding all of E_inc; the inverse of any u >= 0 is a
    non-negative energy. Compresses the many orders of magnitude of cell energies.
    """

    def __init__(self, eps: float) -> None:
        self.eps = float(eps)
        self.scale = math.log1p(1.0 / self.eps)

    def forward(self, showers: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        return torch.log1p(showers.clamp_min(0) / (self.eps * energies[:, None])) / self.scale

    def inverse(self, u: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        return torch.expm1(u * self.scale) * (self.eps * energies[:, None])


# ---- condition encoding --------------------------------------------------------------
def particle_codes(particles: tuple[str, ...]) -> list[int]:
    return [PDG[p] for p in particles]


class ConditionalGAN(TorchGenerator):
    """Base of the GAN plugins: conditions, training loop with checkpoints, batched sampling."""

    family = "gan"
    checkpoint_every = 1  # epochs between checkpoints

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        names = self.dataset.conditions
        self.continuous = [n for n in names if n != "particle"]
        self.pdg_codes = particle_codes(self.dataset.particles) if "particle" in names else []
        self.cond_dim = 1 + len(self.continuous) + len(self.pdg_codes)
        lo, hi = self.dataset.energy_range
        self.extra = {
            "logE_mean": np.array([0.5 * (math.log(lo) + math.log(hi))], np.float32),
            "logE_std": np.array([max((math.log(hi) - math.log(lo)) / math.sqrt(12.0), 1e-3)], np.float32),
            "cond_mean": np.zeros(len(self.continuous), np.float32),
            "cond_std": np.ones(len(self.continuous), np.float32),
        }
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

    def prepare_fit(self, train: ShowerSet, epoch_start: int) -> None:
        """Hook: fit fixed constants from the training data before the first epoch."""

    def pretrain(self, x, cond, energies, raw, progress: bool) -> dict:
        """Hook: networks trained before the adversarial epochs (e.g. a regressor)."""
        return {}

    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    # ---- conditions -------------------------------------------------------------------
    def _raw_conditions(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        conditions = conditions or {}
        missing = [n for n in self.dataset.conditions if n not in conditions]
        if missing:
            raise CalobenchError(
                f"model {self.name} on {self.dataset.name}: missing condition(s) {', '.join(missing)}; "
                f"expected: {', '.join(self.dataset.conditions)}")
        raw = {"E_inc": np.asarray(energies, np.float64).reshape(-1)}
        for n in self.dataset.conditions:
            raw[n] = np.asarray(conditions[n], np.float64).reshape(-1)
            if len(raw[n]) != len(raw["E_inc"]):
                raise CalobenchError(f"condition {n!r}: {len(raw[n])} values for {len(raw['E_inc'])} energies")
        if not np.all(np.isfinite(raw["E_inc"])) or np.any(raw["E_inc"] <= 0):
            raise CalobenchError("energies: incident energies must be finite and positive (MeV)")
        if self.pdg_codes:
            unknown = sorted(set(np.unique(raw["particle"]).astype(int)) - set(self.pdg_codes))
            if unknown:
                raise CalobenchError(
                    f"condition 'particle': PDG code(s) {unknown} not in dataset {self.dataset.name} "
                    f"(expected {self.pdg_codes})")
        return raw

    def fit_condition_stats(self, raw: dict[str, np.ndarray]) -> None:
        loge = np.log(raw["E_inc"])
        self.extra["logE_mean"] = np.array([loge.mean()], np.float32)
        self.extra["logE_std"] = np.array([max(loge.std(), 1e-3)], np.float32)
        if self.continuous:
            m = np.stack([raw[n] for n in self.continuous], 1)
            self.extra["cond_mean"] = m.mean(0).astype(np.float32)
            self.extra["cond_std"] = np.maximum(m.std(0), 1e-6).astype(np.float32)

    def encode(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """(N, cond_dim) float32 network conditions from raw conditions (MeV, PDG codes ...)."""
        cols = [(np.log(raw["E_inc"]) - self.extra["logE_mean"][0]) / self.extra["logE_std"][0]]
        for i, n in enumerate(self.continuous):
            cols.append((raw[n] - self.extra["cond_mean"][i]) / self.extra["cond_std"][i])
        for code in self.pdg_codes:
            cols.append((np.rint(raw["particle"]) == code).astype(np.float64))
        return np.stack(cols, 1).astype(np.float32)

    # ---- training ---------------------------------------------------------------------
    def _tensors(self, raw: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in raw.items()}

    def fit(self, train: ShowerSet, valid: ShowerSet | None = None, *, epochs: int | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
        if train.dataset and train.dataset != self.dataset.name and train.geometry.name != self.dataset.geometry.name:
            raise CalobenchError(f"training set is for {train.dataset}, model is for {self.dataset.name}")
        epochs = int(self.config["epochs"] if epochs is None else epochs)
        limit = self.config.get("max_train_events")
        if limit and len(train) > int(limit):
            train = train.slice(0, int(limit))
        showers = np.asarray(train.showers, np.float32)
        if not np.all(np.isfinite(showers)) or np.any(showers < 0):
            raise CalobenchError("training showers: must be finite and non-negative (MeV)")
        raw = self._raw_conditions(train.energies, train.conditions)
        self.fit_condition_stats(raw)
        self.particle_name = train.particle
        dev = self.torch_device
        x = torch.from_numpy(showers).to(dev)
        cond = torch.from_numpy(self.encode(raw)).to(dev)
        rawt = {k: v.to(dev) for k, v in self._tensors(raw).items()}
        energies = rawt["E_inc"]

        history: dict[str, Any] = {"epochs": 0, "losses": [], "pretrain": {}}
        start = 0
        torch.manual_seed(self.seed)
        self.prepare_fit(train, 0)
        optimizers = self.make_optimizers()
        state = load_checkpoint(checkpoint_dir) if (resume and checkpoint_dir is not None) else None
        if state is not None:
            if state.get("model") != self.name:
                raise CalobenchError(f"{checkpoint_dir}: checkpoint is for model {state.get('model')}, not {self.name}")
            for name, net in self.networks().items():
                net.load_state_dict(state["nets"][name])
            for name, opt in optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            self.extra.update({k: v.numpy() for k, v in state["extra"].items()})
            history = state["history"]
            start = int(state["epoch"])
        else:
            torch.manual_seed(self.seed + 7919)
            history["pretrain"] = self.pretrain(x, cond, energies, rawt, progress)

        n = len(x)
        batch = min(int(self.config["batch_size"]), n)
        # an epoch is one pass over the data, but at least ``min_steps`` batches (small samples)
        steps = max(n // batch, int(self.config.get("min_steps", 1)))
        passes = -(-steps * batch // n)
        for net in self.networks().values():
            net.train()
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(f"[bold]{self.name}[/] {{task.description}}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} epochs"), TimeRemainingColumn(),
                      disable=not progress, transient=True) as bar:
            task = bar.add_task("training", total=epochs, completed=start)
            for epoch in range(start, epochs):
                epoch_seed = self.seed * 1_000_003 + epoch
                torch.manual_seed(epoch_seed)  # dropout etc.: epoch-deterministic, so resume is exact
                rng = torch.Generator(device=dev).manual_seed(epoch_seed)
                shuffle = torch.Generator().manual_seed(epoch_seed)
                perm = torch.cat([torch.randperm(n, generator=shuffle) for _ in range(passes)]).to(dev)
                sums: dict[str, float] = {}
                for s in range(steps):
                    idx = perm[s * batch:(s + 1) * batch]
                    self.batch_index = s  # position in the epoch (e.g. for n_critic schedules)
                    out = self.train_step(x[idx], cond[idx], energies[idx], {k: v[idx] for k, v in rawt.items()}, rng)
                    for k, v in out.items():
                        sums[k] = sums.get(k, 0.0) + v
                record = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}}
                history["losses"].append(record)
                history["epochs"] = epoch + 1
                bar.update(task, advance=1, description=" ".join(f"{k}={v:.3g}" for k, v in list(record.items())[1:4]))
                if checkpoint_dir is not None and ((epoch + 1) % self.checkpoint_every == 0 or epoch + 1 == epochs):
                    save_checkpoint(checkpoint_dir, {
                        "model": self.name, "epoch": epoch + 1,
                        "nets": {k: v.state_dict() for k, v in self.networks().items()},
                        "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
                        "extra": {k: torch.from_numpy(np.asarray(v)) for k, v in self.extra.items()},
                        "history": history,
                    })
        for net in self.networks().values():
            net.eval()
        return history

    # ---- sampling ---------------------------------------------------------------------
    def sample(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               batch_size: int = 10000) -> ShowerSet:
        energies = np.asarray(energies, np.float64).reshape(-1)
        raw = self._raw_conditions(energies, conditions)
        cond_all = torch.from_numpy(self.encode(raw))
        rawt = self._tensors(raw)
        n = len(energies)
        out = np.empty((n, self.dataset.geometry.n_cells), np.float32)
        dev = self.torch_device
        gen = torch.Generator().manual_seed(self.seed + 104729)
        threshold = float(self.dataset.geometry.threshold)
        for net in self.networks().values():
            net.eval()
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                z = torch.randn(stop - start, self.latent_dim, generator=gen).to(dev)
                c = cond_all[start:stop].to(dev)
                r = {k: v[start:stop].to(dev) for k, v in rawt.items()}
                showers = self.generate(z, c, r["E_inc"], r)
                showers = torch.where(showers >= threshold, showers, torch.zeros((), device=dev))
                out[start:stop] = showers.float().cpu().numpy()
        particle = getattr(self, "particle_name", "") or ",".join(self.dataset.particles)
        return ShowerSet(self.dataset.geometry, energies, out,
                         {k: np.asarray(conditions[k]) for k in self.dataset.conditions} if conditions else {},
                         particle=particle,
                         provenance={"generator": self.name, "preset": self.preset, "seed": self.seed},
                         dataset=self.dataset.name)

    def generation_networks(self) -> list[str]:
        return ["generator"]


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor,
                     rng: torch.Generator) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, arXiv:1704.00028): E[(||grad D(x_hat)|| - 1)^2]
    at random interpolates x_hat between real and generated samples."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=rng, device=real.device)
    xhat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(xhat, cond)
    grad, = torch.autograd.grad(score.sum(), xhat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
