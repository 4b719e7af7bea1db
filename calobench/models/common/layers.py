"""Small network building blocks shared by several models."""

from __future__ import annotations

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
