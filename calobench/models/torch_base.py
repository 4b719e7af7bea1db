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
        """Move every network and every tensor the model keeps to ``device`` (a CalobenchError
        when this machine lacks it); see ``place``."""
        torch_device = resolve_device(device)
        self.device = device
        self.place(torch_device)
        return self

    def place(self, torch_device: torch.device) -> None:
        """Put the whole state on ``torch_device`` without checking that it exists: the networks'
        parameters and buffers, then whatever ``after_move`` rebuilds (cached constants).
        ``to`` is the public entry; tests call this with the "meta" device to check placement."""
        self.torch_device = torch.device(torch_device)
        for net in self.networks().values():
            net.to(self.torch_device)
        self.after_move()

    def after_move(self) -> None:
        """Hook: move or rebuild tensors held outside the networks (override when there are any)."""

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

    def noise_generator(self, seed: int) -> torch.Generator:
        """A torch.Generator on the model's device seeded with ``seed``: noise drawn with it is made
        where it is used (no host-to-device copy per batch)."""
        return torch.Generator(device=self.torch_device).manual_seed(int(seed))


def _same_device(tensor: torch.Tensor, device: torch.device) -> bool:
    if tensor.device.type != device.type:
        return False
    return device.index is None or tensor.device.index == device.index


def misplaced_tensors(model: Any, device: str | torch.device, host_ok: tuple[str, ...] = ()) -> list[str]:
    """Paths (``gen.weight``, ``_c['y_std']``, ``_coef_cache[1]``) of the tensors a model holds that
    are not on ``device``: every network's parameters and buffers, and every tensor reachable from
    the model's attributes through dicts, lists, tuples, modules and plain objects (3 levels).

    host_ok: attribute names that stay on the host on purpose (index arrays for numpy work);
    a model lists its own in the class attribute ``host_tensors``. torch.Generators are not tensors.
    """
    device = torch.device(device)
    allowed = set(host_ok) | set(getattr(model, "host_tensors", ()))
    found: list[str] = []
    seen: set[int] = set()

    def walk(value: Any, path: str, depth: int) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            if not _same_device(value, device):
                found.append(f"{path} ({value.device})")
        elif isinstance(value, nn.Module):
            for name, tensor in [*value.named_parameters(), *value.named_buffers()]:
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    if not _same_device(tensor, device):
                        found.append(f"{path}.{name} ({tensor.device})")
            for sub_name, sub in value.named_modules():  # plain tensors set as module attributes
                prefix = f"{path}.{sub_name}" if sub_name else path
                for name, item in vars(sub).items():
                    if not name.startswith("_") and not isinstance(item, nn.Module):
                        walk(item, f"{prefix}.{name}", 1)
        elif isinstance(value, dict) and depth > 0:
            for key, item in value.items():
                walk(item, f"{path}[{key!r}]", depth - 1)
        elif isinstance(value, (list, tuple)) and depth > 0:
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]", depth - 1)
        elif depth > 0 and hasattr(value, "__dict__") and not isinstance(value, (type, torch.Generator, np.ndarray)) \
                and type(value).__module__.startswith("calobench"):
            for name, item in vars(value).items():
                walk(item, f"{path}.{name}", depth - 1)

    for name, item in vars(model).items():
        if name in allowed:
            continue
        walk(item, name, 3)
    return found
