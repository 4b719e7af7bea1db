"""TorchGenerator: the Generator base for PyTorch models (save/load/device/parameters).

A subclass builds its networks in ``__init__`` (from ``self.config`` and ``self.dataset``),
returns them from ``networks()``, and keeps fitted constants (normalisation etc.) in
``self.extra`` (name -> numpy array). Weights go through safetensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.errors import CalobenchError
from calobench.hardware import check_device
from calobench.models.base import Generator


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda if available, else mps if available, else cpu; a device this machine
    lacks gives a one-line CalobenchError listing the devices present."""
    check_device(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


class TorchGenerator(Generator):
    """Generator whose learned state lives in torch modules plus ``self.extra`` arrays."""

    accelerated = True

    def __init__(self, dataset: str, preset: str = "quick", seed: int = 0, device: str = "cpu",
                 **overrides: Any) -> None:
        super().__init__(dataset, preset, seed, device, **overrides)
        self.torch_device = resolve_device(device)
        self.extra: dict[str, np.ndarray] = {}
        torch.manual_seed(self.seed)
        #: The model's own random stream (data order, noise); saved in training checkpoints
        #: (models/common/trainer.py).
        self.rng = torch.Generator().manual_seed(self.seed)

    def networks(self) -> dict[str, nn.Module]:
        """All trained networks by name (override)."""
        raise NotImplementedError

    def generation_networks(self) -> list[str]:
        """Names of the networks used to generate (counted in parameter_count)."""
        return list(self.networks())

    def to(self, device: str) -> "TorchGenerator":
        self.device = device
        self.torch_device = resolve_device(device)
        for net in self.networks().values():
            net.to(self.torch_device)
        return self

    def parameter_count(self) -> int:
        nets = self.networks()
        return int(sum(p.numel() for name in self.generation_networks() for p in nets[name].parameters()))

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for name, net in self.networks().items():
            for key, value in net.state_dict().items():
                out[f"{name}.{key}"] = value.detach().cpu().numpy()
        for key, value in self.extra.items():
            out[f"extra.{key}"] = np.asarray(value)
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        nets = self.networks()
        states: dict[str, dict[str, torch.Tensor]] = {name: {} for name in nets}
        self.extra = {}
        for key, value in arrays.items():
            head, _, rest = key.partition(".")
            if head == "extra":
                self.extra[rest] = value
            elif head in states:
                states[head][rest] = torch.from_numpy(np.array(value))
        for name, net in nets.items():
            for key, value in net.state_dict().items():
                found = states[name].get(key)
                if found is None:
                    raise CalobenchError(f"key '{name}.{key}': missing")
                if tuple(found.shape) != tuple(value.shape):
                    raise CalobenchError(f"key '{name}.{key}': expected shape {tuple(value.shape)}, "
                                         f"found {tuple(found.shape)}")
            net.load_state_dict(states[name])
            net.to(self.torch_device)
        self.after_load()

    def after_load(self) -> None:
        """Hook: rebuild derived state from ``self.extra`` after loading (override if needed)."""
