"""The ``prdc`` stage: precision, recall, density and coverage (Naeem et al. 2020,
arXiv:2002.09797) of the high-level feature vectors.

Both samples are subsampled (at most ``max_events`` each, seeded), standardised with the
reference's mean and std, and compared with k = 5 nearest neighbours in Euclidean distance;
distances are formed in blocks so that memory stays bounded.
"""

from __future__ import annotations

import numpy as np

from calobench.metrics.result import Result
from calobench.metrics.stage import HighLevelVectorStage, Log, quiet


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(d2, 0.0, None))


def _knn_radius(a: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """Distance of every row of a to its k-th nearest other row."""
    out = np.empty(len(a))
    for lo in range(0, len(a), block):
        d = _pairwise(a[lo:lo + block], a)
        out[lo:lo + block] = np.partition(d, k, axis=1)[:, k]
    return out


def prdc(real: np.ndarray, gen: np.ndarray, k: int = 5, block: int = 2048) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020, arXiv:2002.09797) with
    k nearest neighbours in Euclidean distance. real, gen: (n, d), already scaled."""
    real, gen = np.asarray(real, dtype=np.float64), np.asarray(gen, dtype=np.float64)
    r_real, r_gen = _knn_radius(real, k, block), _knn_radius(gen, k, block)
    fake_in = np.zeros(len(gen), dtype=bool)
    density = np.zeros(len(gen))
    real_recalled = np.zeros(len(real), dtype=bool)
    real_covered = np.zeros(len(real), dtype=bool)
    for lo in range(0, len(real), block):
        d = _pairwise(real[lo:lo + block], gen)  # (b, n_gen)
        inside = d < r_real[lo:lo + block, None]
        fake_in |= inside.any(axis=0)
        density += inside.sum(axis=0)
        real_recalled[lo:lo + block] = (d < r_gen[None, :]).any(axis=1)
        real_covered[lo:lo + block] = d.min(axis=1) < r_real[lo:lo + block]
    return {"precision": float(fake_in.mean()), "recall": float(real_recalled.mean()),
            "density": float(density.mean() / k), "coverage": float(real_covered.mean())}


class PRDCStage(HighLevelVectorStage):
    """``precision``, ``recall``, ``density``, ``coverage`` (k = 5) on subsamples of at most
    ``max_events`` high-level vectors per sample (``seed``), standardised with the reference;
    each with its floor, the same between the reference halves (even / odd events). Holds the
    high-level vectors."""

    name = "prdc"

    def __init__(self, seed: int = 0, max_events: int = 10_000, log: Log = quiet) -> None:
        super().__init__(log)
        self.seed = seed
        self.max_events = max_events

    def _prdc(self, ref: np.ndarray, gen: np.ndarray, stream: int) -> dict[str, float]:
        rng = np.random.default_rng([self.seed, stream])
        pick = lambda x: x[np.sort(rng.permutation(len(x))[:self.max_events])]  # noqa: E731
        r, g = pick(ref), pick(gen)
        mu, sd = r.mean(axis=0), r.std(axis=0)
        sd[sd == 0] = 1.0
        return prdc((r - mu) / sd, (g - mu) / sd, k=5)

    def compute(self) -> Result:
        gen, ref = self.take_arrays()
        n_r, n_g = min(len(ref), self.max_events), min(len(gen), self.max_events)
        self.log(f"PRDC on {n_r} + {n_g} events")
        values = self._prdc(ref, gen, 3)
        floors = self._prdc(ref[0::2], ref[1::2], 4) if len(ref) // 2 > 5 else {}
        result = Result(info=self.holds(f"; subsample of {n_r} + {n_g}"))
        for k, v in values.items():
            result.add(k, v, floor=floors.get(k))
        return result
