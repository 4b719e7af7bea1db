"""Small network building blocks shared by several models."""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(n_in: int, hidden: int, n_out: int, depth: int = 2) -> nn.Sequential:
    """A plain MLP: ``depth`` hidden layers of width ``hidden`` with SiLU, then a linear output."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def sinusoidal_embedding(position: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style embedding of integer or real positions (time steps, token indices):
    (...) -> (..., dim) float32, the sines of dim // 2 frequencies, then their cosines."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=position.device, dtype=torch.float32) / half)
    angle = position.to(torch.float32)[..., None] * freqs
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)
