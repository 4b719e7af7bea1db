"""Shared pieces of the conditional voxel models (``vae`` and ``flow``).

- ``ConditionEncoder``: turns (E_inc in MeV, named dataset conditions) into a standardised
  float32 feature matrix (N, k): log E_inc, each continuous condition standardised, the
  ``particle`` PDG code one-hot over the dataset's particles.
- ``logit`` / ``layer_sums``: voxel transforms used by the models.
- ``ConditionalVoxelGenerator``: a TorchGenerator with the common seeded training loop
  (exact resume from periodic checkpoints, rich progress bar, cosine learning rate) and
  batched, seeded generation. A subclass implements ``prepare``, ``loss`` and ``generate``.
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


def logit(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """logit(alpha + (1 - 2 alpha) x) for x in [0, 1] (CaloFlow's preprocessing)."""
    y = alpha + (1.0 - 2.0 * alpha) * x
    return torch.log(y) - torch.log1p(-y)


def layer_sums(showers: torch.Tensor, layer_id: torch.Tensor, n_layers: int) -> torch.Tensor:
    """(N, L) summed energy of each layer of (N, cells) showers; layer_id (cells,) int64."""
    out = torch.zeros(showers.shape[0], n_layers, dtype=showers.dtype, device=showers.device)
    return out.index_add_(1, layer_id, showers)


def apply_threshold(cells: torch.Tensor, layer_id: torch.Tensor, n_layers: int, threshold: float,
                    layers: torch.Tensor | None = None) -> torch.Tensor:
    """Zero the cells below ``threshold`` MeV and rescale the survivors of each layer.

    cells: (N, cells) >= 0 MeV; layers: (N, L) layer energies to keep (default: the sums
    before the cut). The most energetic cell of each layer always survives, so a layer's
    energy is never lost (a layer whose energy is below threshold is cut later by the caller).
    """
    if layers is None:
        layers = layer_sums(cells, layer_id, n_layers)
    index = layer_id.expand(cells.shape[0], -1)
    hottest = torch.zeros_like(layers).scatter_reduce_(1, index, cells, reduce="amax", include_self=False)
    keep = (cells >= threshold) | (cells >= hottest.gather(1, index))
    cells = torch.where(keep, cells, torch.zeros_like(cells))
    kept = layer_sums(cells, layer_id, n_layers)
    scale = torch.where(kept > 0, layers / kept.clamp_min(1e-30), torch.zeros_like(kept))
    return cells * scale[:, layer_id]


class ConditionEncoder:
    """Standardised conditioning features for a dataset (fitted on the training sample).

    Features, in order: log(E_inc / MeV) standardised; each continuous condition
    standardised; ``particle`` (PDG code) one-hot over the dataset's particles.
    """

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.continuous = [c for c in dataset.conditions if c != "particle"]
        self.pdg = [PDG[p] for p in dataset.particles] if "particle" in dataset.conditions else []
        self.mean = np.zeros(1 + len(self.continuous))
        self.std = np.ones(1 + len(self.continuous))

    @property
    def n_features(self) -> int:
        return 1 + len(self.continuous) + len(self.pdg)

    def check(self, energies: np.ndarray, conditions: dict[str, np.ndarray] | None) -> tuple[np.ndarray, dict]:
        """Validated (N,) energies and condition arrays; CalobenchError naming what is wrong."""
        energies = np.asarray(energies, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(energies)) or np.any(energies <= 0):
            raise CalobenchError("incident energies: expected finite values > 0 MeV, found NaN, inf or <= 0")
        conditions = dict(conditions or {})
        missing = [c for c in self.dataset.conditions if c not in conditions]
        if missing:
            raise CalobenchError(
                f"dataset {self.dataset.name}: missing condition(s) {', '.join(missing)}; "
                f"expected {', '.join(self.dataset.conditions)}")
        out = {}
        for name in self.dataset.conditions:
            values = np.asarray(conditions[name], dtype=np.float64).reshape(-1)
            if len(values) != len(energies):
                raise CalobenchError(f"condition {name!r}: expected {len(energies)} values, found {len(values)}")
            if not np.all(np.isfinite(values)):
                raise CalobenchError(f"condition {name!r}: found NaN or inf")
            if name == "particle":
                unknown = sorted(set(values.astype(int).tolist()) - set(self.pdg))
                if unknown:
                    raise CalobenchError(
                        f"condition 'particle': PDG code(s) {unknown} not in this dataset ({self.pdg})")
            out[name] = values
        return energies, out

    def raw(self, energies: np.ndarray, conditions: dict[str, np.ndarray]) -> np.ndarray:
        cols = [np.log(energies)] + [conditions[c] for c in self.continuous]
        return np.stack(cols, axis=1)

    def fit(self, energies: np.ndarray, conditions: dict[str, np.ndarray]) -> None:
        raw = self.raw(energies, conditions)
        self.mean = raw.mean(axis=0)
        self.std = np.where(raw.std(axis=0) > 1e-12, raw.std(axis=0), 1.0)

    def transform(self, energies: np.ndarray, conditions: dict[str, np.ndarray]) -> np.ndarray:
        """(N, n_features) float32 features."""
        parts = [(self.raw(energies, conditions) - self.mean) / self.std]
        if self.pdg:
            codes = conditions["particle"].astype(int)
            parts.append(np.stack([codes == p for p in self.pdg], axis=1).astype(np.float64))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {"cond_mean": self.mean.copy(), "cond_std": self.std.copy()}

    def load(self, extra: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(extra["cond_mean"], dtype=np.float64)
        self.std = np.asarray(extra["cond_std"], dtype=np.float64)


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[info]}"), disable=not enabled,
                    transient=False)


class ConditionalVoxelGenerator(TorchGenerator):
    """Common training and sampling machinery of the conditional voxel models.

    Subclasses implement:
      prepare(showerset, fit) -> dict of CPU tensors with a common first dimension N
        (fit=True also fits the preprocessing constants into self.extra);
      loss(batch, generator) -> scalar tensor (batch on self.torch_device; all randomness
        drawn from ``generator`` so that training is reproducible and resumable);
      generate(features, energies) -> (B, cells) non-negative showers in MeV.
    Config keys used here: epochs, batch_size, lr, checkpoint_every, grad_clip.
    """

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
    def prepare(self, showers: ShowerSet, fit: bool) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def generate(self, features: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # ---- shared helpers -------------------------------------------------------------
    def features_of(self, showers: ShowerSet, fit: bool) -> np.ndarray:
        """Validated, standardised condition features of a sample (fits the encoder if asked)."""
        energies, conditions = self.encoder.check(showers.energies, showers.conditions)
        if fit:
            self.encoder.fit(energies, conditions)
            self.extra.update(self.encoder.state())
        return self.encoder.transform(energies, conditions)

    def dense_showers(self, showers: ShowerSet) -> np.ndarray:
        """(N, cells) float32 showers, checked for NaN and negative energies."""
        if showers.geometry.name != self.geometry.name:
            raise CalobenchError(
                f"model {self.name} was built for geometry {self.geometry.name}, found {showers.geometry.name}")
        x = np.asarray(showers.showers, dtype=np.float32)
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise CalobenchError("showers: expected finite cell energies >= 0 MeV, found NaN, inf or < 0")
        return x

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
        data = self.prepare(train, fit=True)
        vdata = self.prepare(valid, fit=False) if valid is not None and len(valid) else None
        self.fitted = True
        n = next(iter(data.values())).shape[0]
        batch_size = int(min(cfg["batch_size"], n))
        opt = torch.optim.Adam(self._parameters(), lr=float(cfg["lr"]))
        history: dict[str, list] = {"epoch": [], "train_loss": [], "valid_loss": [], "lr": []}
        start = 0
        if resume and checkpoint_dir is not None:
            ckpt = load_checkpoint(checkpoint_dir)
            if ckpt is not None:
                if ckpt.get("model") != self.name or ckpt.get("dataset") != self.dataset.name:
                    raise CalobenchError(
                        f"{Path(checkpoint_dir) / 'checkpoint.pt'}: checkpoint of {ckpt.get('model')} on "
                        f"{ckpt.get('dataset')}, expected {self.name} on {self.dataset.name}")
                for name, net in self.networks().items():
                    net.load_state_dict(ckpt["networks"][name])
                opt.load_state_dict(ckpt["optimizer"])
                history = {k: list(v) for k, v in ckpt["history"].items() if isinstance(v, list)}
                start = int(ckpt["epoch"])
        every = int(cfg.get("checkpoint_every", 1))
        clip = float(cfg.get("grad_clip", 10.0))
        with _progress(progress) as bar:
            task = bar.add_task(f"{self.name} {self.dataset.name}", total=epochs, completed=start, info="")
            for epoch in range(start, epochs):
                lr = float(cfg["lr"]) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1))))
                for group in opt.param_groups:
                    group["lr"] = lr
                for net in self.networks().values():
                    net.train()
                gen = self._generator(self.seed * 1_000_003 + epoch)
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
                total, count = 0.0, 0
                for lo in range(0, n - batch_size + 1, batch_size):  # drop the ragged last batch
                    idx = perm[lo:lo + batch_size]
                    batch = {k: v[idx].to(self.torch_device) for k, v in data.items()}
                    loss = self.loss(batch, gen)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(self._parameters(), clip)
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                    count += len(idx)
                train_loss = total / max(count, 1)
                valid_loss = self._evaluate(vdata, epoch) if vdata is not None else None
                history["epoch"].append(epoch + 1)
                history["train_loss"].append(train_loss)
                history["valid_loss"].append(valid_loss)
                history["lr"].append(lr)
                info = f"loss {train_loss:.4g}" + (f" valid {valid_loss:.4g}" if valid_loss is not None else "")
                bar.update(task, advance=1, info=info)
                if checkpoint_dir is not None and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
                    save_checkpoint(checkpoint_dir, {
                        "model": self.name, "dataset": self.dataset.name, "epoch": epoch + 1,
                        "networks": {k: v.state_dict() for k, v in self.networks().items()},
                        "optimizer": opt.state_dict(),
                        "history": history,
                    })
        for net in self.networks().values():
            net.eval()
        history["epochs"] = epochs
        return history

    @torch.no_grad()
    def _evaluate(self, data: dict[str, torch.Tensor], epoch: int) -> float:
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
        energies, conditions = self.encoder.check(energies, conditions)
        features = torch.from_numpy(self.encoder.transform(energies, conditions))
        e_inc = torch.from_numpy(energies.astype(np.float32))
        for net in self.networks().values():
            net.eval()
        out = np.empty((len(energies), self.n_cells), dtype=np.float32)
        devices = [self.torch_device] if self.torch_device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(self.seed)
            for lo in range(0, len(energies), max(int(batch_size), 1)):
                hi = min(lo + int(batch_size), len(energies))
                showers = self.generate(features[lo:hi].to(self.torch_device), e_inc[lo:hi].to(self.torch_device))
                out[lo:hi] = showers.float().cpu().numpy()
        out[out < self.geometry.threshold] = 0.0  # readout threshold, as in the reference
        particle = self.dataset.particles[0] if len(self.dataset.particles) == 1 else ",".join(self.dataset.particles)
        return ShowerSet(self.geometry, energies, out, conditions, particle,
                         {"generator": self.name, "preset": self.preset, "seed": self.seed},
                         self.dataset.name)
