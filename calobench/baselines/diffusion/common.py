"""Pieces shared by the diffusion models (ddpm-unet, score-sde).

- condition features: log E_inc and the dataset's conditions, standardised; ``particle``
  (a PDG code) one-hot over the dataset's particles.
- ConditionalGMM: a small MLP giving a Gaussian mixture for one scalar given the conditions
  (used for E_tot / E_inc and for the log cell count).
- GaussianFourierProjection: random Fourier features of a scalar (time, energy).
- DDPM noise schedules and the VE / VP SDEs (Song et al. 2021, as in seed 002 chapter 4).
- a training loop with periodic checkpoints and exact resume.

Shapes: conditions are (N, k) float32 feature matrices; everything runs on torch tensors.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from calobench.datasets import PDG, Dataset
from calobench.errors import CalobenchError
from calobench.models.base import load_checkpoint, save_checkpoint
from calobench.models.common.layers import mlp

# ---------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------


def particle_codes(dataset: Dataset) -> list[int]:
    """PDG codes of the dataset's particles (the one-hot order)."""
    return [PDG[p] for p in dataset.particles]


def condition_width(dataset: Dataset) -> int:
    """Number of condition features: log E_inc, continuous conditions, particle one-hot."""
    width = 1
    for name in dataset.conditions:
        width += len(dataset.particles) if name == "particle" else 1
    return width


def _raw_conditions(dataset: Dataset, energies: np.ndarray, conditions: dict[str, np.ndarray] | None,
                    n: int) -> list[np.ndarray]:
    conditions = conditions or {}
    columns = [np.log(np.clip(np.asarray(energies, dtype=np.float64), 1e-3, None))]
    for name in dataset.conditions:
        if name == "particle":
            continue
        if name not in conditions:
            raise CalobenchError(f"dataset {dataset.name}: condition {name!r} missing; "
                                 f"expected conditions: {', '.join(dataset.conditions)}")
        values = np.asarray(conditions[name], dtype=np.float64).reshape(-1)
        if len(values) != n:
            raise CalobenchError(f"condition {name!r}: expected {n} values, found {len(values)}")
        columns.append(values)
    return columns


def fit_condition_scaler(dataset: Dataset, energies: np.ndarray,
                         conditions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Means and standard deviations of the continuous condition columns (log E_inc first)."""
    columns = np.stack(_raw_conditions(dataset, energies, conditions, len(energies)), axis=1)
    std = columns.std(axis=0)
    return {"cond_mean": columns.mean(axis=0), "cond_std": np.where(std > 0, std, 1.0)}


def condition_features(dataset: Dataset, energies: np.ndarray, conditions: dict[str, np.ndarray] | None,
                       scaler: dict[str, np.ndarray]) -> np.ndarray:
    """(N, condition_width) float32 standardised features; particle one-hot last."""
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    n = len(energies)
    columns = np.stack(_raw_conditions(dataset, energies, conditions, n), axis=1)
    out = [(columns - scaler["cond_mean"]) / scaler["cond_std"]]
    if "particle" in dataset.conditions:
        codes = particle_codes(dataset)
        given = (conditions or {}).get("particle")
        if given is None:
            if len(codes) != 1:
                raise CalobenchError(f"dataset {dataset.name}: condition 'particle' missing")
            given = np.full(n, codes[0])
        given = np.asarray(given).reshape(-1).astype(np.int64)
        unknown = set(np.unique(given).tolist()) - set(codes)
        if unknown:
            raise CalobenchError(f"condition 'particle': PDG codes {sorted(unknown)} not in dataset "
                                 f"{dataset.name} (expected {codes})")
        out.append((given[:, None] == np.asarray(codes)[None, :]).astype(np.float64))
    return np.concatenate(out, axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Small modules
# ---------------------------------------------------------------------------------------




class ConditionalGMM(nn.Module):
    """p(y | c) as a mixture of ``components`` Gaussians whose parameters an MLP predicts.

    y: (N,) scalar targets (already scaled to order one); c: (N, k) condition features.
    """

    def __init__(self, n_cond: int, hidden: int = 64, components: int = 5) -> None:
        super().__init__()
        self.components = components
        self.net = mlp(n_cond, hidden, 3 * components)

    def _params(self, c: torch.Tensor):
        logits, mean, log_std = self.net(c).chunk(3, dim=-1)
        return torch.log_softmax(logits, -1), mean, log_std.clamp(-7.0, 3.0)

    def nll(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Mean negative log likelihood."""
        log_w, mean, log_std = self._params(c)
        z = (y[:, None] - mean) / log_std.exp()
        log_p = log_w - 0.5 * z ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        return -torch.logsumexp(log_p, -1).mean()

    @torch.no_grad()
    def sample(self, c: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        log_w, mean, log_std = self._params(c)
        u = torch.rand(c.shape[0], 1, device=c.device, generator=generator)
        cdf = log_w.exp().cumsum(-1)
        k = (u > cdf).sum(-1).clamp(max=self.components - 1)
        pick = k[:, None]
        eps = torch.randn(c.shape[0], device=c.device, generator=generator)
        return mean.gather(1, pick)[:, 0] + log_std.gather(1, pick)[:, 0].exp() * eps


class GaussianFourierProjection(nn.Module):
    """gamma(v) = [sin(2 pi b v), cos(2 pi b v)] with fixed b ~ N(0, scale^2) (seed 002, eq. 5.2).

    v: (N,) -> (N, 2 * half).
    """

    def __init__(self, half: int, scale: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("b", torch.randn(half, generator=gen) * scale)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * v[:, None] * self.b[None, :]
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style embedding of integer/real time steps t (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


# ---------------------------------------------------------------------------------------
# Schedules and SDEs
# ---------------------------------------------------------------------------------------


def cosine_alphas_bar(steps: int, s: float = 0.008) -> np.ndarray:
    """(steps,) cumulative alpha-bar of the cosine schedule (Nichol & Dhariwal 2021)."""
    t = np.arange(steps + 1, dtype=np.float64) / steps
    f = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = np.clip(1 - alpha_bar[1:] / alpha_bar[:-1], 0, 0.999)
    return np.cumprod(1 - betas)


def linear_alphas_bar(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """(steps,) cumulative alpha-bar of the linear DDPM schedule (Ho et al. 2020)."""
    return np.cumprod(1 - np.linspace(beta_start, beta_end, steps))


class VESDE:
    """Variance exploding: dx = sigma_min (sigma_max/sigma_min)^t sqrt(2 log(sigma_max/sigma_min)) dw."""

    kind = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 10.0) -> None:
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.log_ratio = math.log(sigma_max / sigma_min)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def marginal(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean coefficient, std) of x_t given x_0."""
        return torch.ones_like(t), self.sigma(t)

    def drift_diffusion(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(x, t) (shaped like x) and g(t) (shaped like t)."""
        return torch.zeros_like(x), self.sigma(t) * math.sqrt(2 * self.log_ratio)

    def prior_std(self) -> float:
        return self.sigma_max

    def discretized(self, x: torch.Tensor, t: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
        """SMLD step from t to t - dt: (f_i, G_i) with x_{i-1} = x_i - f_i + G_i^2 score + G_i z."""
        sigma = self.sigma(t)
        prev = torch.where(t - dt > 0, self.sigma(t - dt), torch.zeros_like(t))
        return torch.zeros_like(x), torch.sqrt(sigma ** 2 - prev ** 2)


class VPSDE:
    """Variance preserving: dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw, beta linear in t."""

    kind = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        self.beta_min, self.beta_max = beta_min, beta_max

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def marginal(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_coef = -0.25 * t ** 2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        coef = torch.exp(log_coef)
        return coef, torch.sqrt(1.0 - torch.exp(2.0 * log_coef))

    def drift_diffusion(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        beta = self.beta(t)
        return -0.5 * _expand(beta, x) * x, torch.sqrt(beta)

    def prior_std(self) -> float:
        return 1.0

    def discretized(self, x: torch.Tensor, t: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
        """DDPM step: beta_i = beta(t) dt; f_i = (sqrt(1 - beta_i) - 1) x, G_i = sqrt(beta_i)."""
        b = (self.beta(t) * dt).clamp(max=0.999)
        return (torch.sqrt(1.0 - _expand(b, x)) - 1.0) * x, torch.sqrt(b)


def make_sde(kind: str, config: dict):
    if kind == "ve":
        return VESDE(config.get("sigma_min", 0.01), config.get("sigma_max", 10.0))
    if kind == "vp":
        return VPSDE(config.get("beta_min", 0.1), config.get("beta_max", 20.0))
    raise CalobenchError(f"config key 'sde': expected 've' or 'vp', found {kind!r}")


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-sample (B,) tensor against (B, ...)."""
    return v.reshape(v.shape + (1,) * (like.dim() - v.dim()))


# ---------------------------------------------------------------------------------------
# Training loop with checkpoints
# ---------------------------------------------------------------------------------------


def batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches of one epoch (drawn from ``generator``)."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train_epochs(model, optimizers: dict[str, torch.optim.Optimizer],
                 epoch_fn: Callable[[int, torch.Generator], dict], *, epochs: int,
                 checkpoint_dir: str | Path | None, resume: bool, progress: bool, label: str) -> dict:
    """Run ``epoch_fn(epoch, generator) -> {metric: value}`` for each epoch of a TorchGenerator.

    All randomness of training must come from ``generator`` (the model's ``rng``). After each
    epoch the networks, optimisers, extra arrays and random streams are checkpointed
    (``model.training_state``), so that ``resume=True`` ends with the same weights as an
    uninterrupted run; ``model.on_epoch_end`` is called after the checkpoint.
    """
    history: dict = {"epochs": [], "seconds": 0.0}
    start = 0
    if resume and checkpoint_dir is not None:
        state = load_checkpoint(checkpoint_dir)
        if state is not None:
            model.restore_training_state(state, optimizers)
            start, history = int(state["epoch"]), state["history"]
    t0 = time.perf_counter()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn(f"[bold]{label} training"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task(label, total=epochs, completed=start, info="")
        for epoch in range(start, epochs):
            for net in model.networks().values():
                net.train()
            metrics = epoch_fn(epoch, model.rng)
            history["epochs"].append({"epoch": epoch + 1, **{k: float(v) for k, v in metrics.items()}})
            history["seconds"] = history.get("seconds", 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
            bar.update(task, completed=epoch + 1, info=" ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, model.training_state(optimizers, epoch + 1, history))
            model.on_epoch_end(epoch + 1, history)
    for net in model.networks().values():
        net.eval()
    return history


def sample_generator(device: torch.device, seed: int) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed`` (sampling randomness)."""
    return torch.Generator(device=device).manual_seed(int(seed))
