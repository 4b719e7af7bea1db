"""Noise schedules of the diffusion models: the DDPM cosine schedule (ddpm-unet) and the VE / VP
SDEs (Song et al. 2021, as in seed 002 chapter 4; score-sde)."""

from __future__ import annotations

import math

import numpy as np
import torch

from calobench.errors import CalobenchError


def cosine_alphas_bar(steps: int, s: float = 0.008) -> np.ndarray:
    """(steps,) cumulative alpha-bar of the cosine schedule (Nichol & Dhariwal 2021)."""
    t = np.arange(steps + 1, dtype=np.float64) / steps
    f = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = np.clip(1 - alpha_bar[1:] / alpha_bar[:-1], 0, 0.999)
    return np.cumprod(1 - betas)


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
