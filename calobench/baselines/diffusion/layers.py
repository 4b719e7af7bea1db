"""Network parts of the diffusion models (ddpm-unet, score-sde).

- ConditionalGMM: a small MLP giving a Gaussian mixture for one scalar given the conditions
  (used for E_tot / E_inc and for the log cell count).
- GaussianFourierProjection: random Fourier features of a scalar (time, energy).
Shapes: conditions are (N, k) float32 feature matrices (models/common/conditioning.py).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from calobench.models.common.layers import mlp


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
