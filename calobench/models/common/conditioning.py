"""Condition encoding of the learned models: (E_inc, named conditions) -> network inputs.

``ConditionEncoder`` turns incident energies (N,) in MeV and a dataset's conditions
{name: (N,)} into an (N, n_features) float32 matrix. Its columns, in order:

- log(E_inc / MeV);
- each encoded condition (default: every condition of the dataset except ``particle``): as
  given, as sign(x) log(1 + |x|) for the names in ``signed_log``, or as cos and sin of the
  angle for the names in ``angles`` (degrees);
- all of the above standardised, (x - mean) / spread, with constants that ``fit`` computes from
  the training sample by the ``stats`` rule (mean 0, spread 1 until fitted);
- ``particle`` (a PDG code) one-hot over the dataset's particles, in ``particle_codes`` order.

``check`` validates raw inputs through calobench.data.validation. The fitted constants travel
in the model's ``extra`` arrays as ``cond_mean`` and ``cond_std`` (``state`` / ``load``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from calobench.data.validation import check_conditions, check_energies, check_particles
from calobench.datasets import PDG, Dataset

#: raw columns (N, k) float64 -> (mean (k,), spread (k,)) of the standardisation
Stats = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def particle_codes(dataset: Dataset) -> list[int]:
    """PDG codes of the dataset's particles (the one-hot order)."""
    return [PDG[p] for p in dataset.particles]


def mean_std(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column; a constant column (std <= 1e-12) keeps spread 1."""
    std = raw.std(axis=0)
    return raw.mean(axis=0), np.where(std > 1e-12, std, 1.0)


def mean_std_plus_epsilon(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation + 1e-6 of each column (the rule of dcgan)."""
    return raw.mean(axis=0), raw.std(axis=0) + 1e-6


def float32_mean_std(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column as float32 (the rule of the GAN family): the
    spread at least 1e-3 for log E_inc (computed on that column alone) and 1e-6 for the others."""
    log_e, rest = np.ascontiguousarray(raw[:, 0]), np.ascontiguousarray(raw[:, 1:])
    mean = np.concatenate([[log_e.mean()], rest.mean(axis=0)])
    std = np.concatenate([[max(log_e.std(), 1e-3)], np.maximum(rest.std(axis=0), 1e-6)])
    return mean.astype(np.float32), std.astype(np.float32)


class ConditionEncoder:
    """Standardised condition features of one dataset (see the module docstring)."""

    def __init__(self, dataset: Dataset, *, conditions: Sequence[str] | None = None,
                 signed_log: Sequence[str] = (), angles: Sequence[str] = (), stats: Stats = mean_std) -> None:
        self.dataset = dataset
        self.names = tuple(c for c in dataset.conditions if c != "particle") if conditions is None \
            else tuple(conditions)
        self.signed_log = frozenset(signed_log)
        self.angles = frozenset(angles)
        self.stats = stats
        self.codes = particle_codes(dataset) if "particle" in dataset.conditions else []
        width = 1 + sum(2 if name in self.angles else 1 for name in self.names)
        self.mean = np.zeros(width)
        self.std = np.ones(width)

    @property
    def n_features(self) -> int:
        """Width of ``encode``'s output: the standardised columns and the particle one-hot."""
        return len(self.mean) + len(self.codes)

    def check(self, energies: np.ndarray, conditions: Mapping[str, np.ndarray] | None,
              what: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Validated energies (N,) float64 MeV and the dataset's conditions {name: (N,)} (CalobenchError
        naming ``what`` otherwise: a bad energy, a missing or bad condition, an unknown PDG code)."""
        energies = check_energies(energies, what)
        given = check_conditions(conditions, len(energies), what, required=self.dataset.conditions)
        out = {name: given[name] for name in self.dataset.conditions}
        if self.codes:
            check_particles(out["particle"], self.codes, what)
        return energies, out

    def columns(self, energies: np.ndarray, conditions: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N, k) float64 columns before standardisation: log E_inc, then the encoded conditions."""
        cols = [np.log(np.asarray(energies, np.float64))]
        for name in self.names:
            values = np.asarray(conditions[name], np.float64)
            if name in self.angles:
                radians = np.radians(values)
                cols += [np.cos(radians), np.sin(radians)]
            elif name in self.signed_log:
                cols.append(np.log(np.abs(values) + 1.0) * np.sign(values))
            else:
                cols.append(values)
        return np.stack(cols, axis=1)

    def fit(self, energies: np.ndarray, conditions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fit the standardisation on a training sample; returns ``state()``."""
        self.mean, self.std = self.stats(self.columns(energies, conditions))
        return self.state()

    def set_standardisation(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Use fixed constants (one per column of ``columns``) instead of fitted ones."""
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)

    def encode(self, energies: np.ndarray, conditions: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N, n_features) float32 network inputs of validated energies and conditions."""
        parts = [(self.columns(energies, conditions) - self.mean) / self.std]
        if self.codes:
            particle = np.asarray(conditions["particle"], np.float64)
            parts.append((particle[:, None] == np.asarray(self.codes)[None, :]).astype(np.float64))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """The standardisation constants, for the model's ``extra`` arrays."""
        return {"cond_mean": self.mean.copy(), "cond_std": self.std.copy()}

    def load(self, extra: Mapping[str, np.ndarray]) -> None:
        """Restore what ``state`` returned."""
        self.mean, self.std = np.asarray(extra["cond_mean"]), np.asarray(extra["cond_std"])
