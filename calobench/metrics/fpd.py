"""The ``fpd`` stage: FPD and KPD of the high-level feature vectors.

FPD and KPD follow the definitions of jetnet 0.2.5 (jetnet.evaluation.fpd / kpd, after
arXiv:2211.10295), reimplemented here:

- both divide every feature by its maximum absolute value in the reference sample;
- FPD: for ``num_points`` batch sizes equally spaced in 1/N between ``min_samples`` and
  ``max_samples``, the Frechet distance of Gaussians fitted to ``num_batches`` pairs of
  random subsamples (drawn with replacement by ``numpy.random.default_rng(seed)``) is
  averaged; a straight line in 1/N (intercept and slope bounded to be >= 0) is fitted and
  its intercept (the value at infinite N) and the intercept's fit error are returned;
- KPD: the unbiased quadratic MMD estimate with the kernel (x.y / d + 1)^4 on ``num_batches``
  pairs of subsamples of ``batch_size`` (batch i drawn by default_rng(seed + 1000 i));
  returns the median and half of the 16.275-83.725 percentile range.

The trace of sqrtm(C1 C2) is computed from the eigenvalues of C1^1/2 C2 C1^1/2 (equal in
exact arithmetic, stable and faster than scipy.linalg.sqrtm); kernel sums are formed in
blocks so that memory stays at a few hundred MB at batch size 10 000.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import iqr

from calobench.metrics.result import Result
from calobench.metrics.stage import GENERATED, REFERENCE, HighLevelVectorStage, Log, quiet


def normalise(real: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide both samples by the per-feature maximum |value| of ``real`` (0 -> 1)."""
    maxes = np.max(np.abs(real), axis=0)
    maxes[maxes == 0] = 1.0
    return real / maxes, gen / maxes


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, c1: np.ndarray, mu2: np.ndarray, c2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^1/2) of two Gaussians."""
    c1, c2 = np.atleast_2d(c1), np.atleast_2d(c2)
    s1 = _sqrt_psd(c1)
    lam = np.linalg.eigvalsh(s1 @ c2 @ s1)
    tr_covmean = np.sum(np.sqrt(np.clip(lam, 0.0, None)))
    diff = np.atleast_1d(mu1) - np.atleast_1d(mu2)
    return float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_covmean)


def fpd(real: np.ndarray, gen: np.ndarray, min_samples: int = 20_000, max_samples: int = 50_000,
        num_batches: int = 20, num_points: int = 10, normalise_features: bool = True,
        seed: int = 42) -> tuple[float, float]:
    """Frechet physics distance extrapolated to infinite sample size: (value, error).

    real, gen: (n, d) feature arrays. Defaults are jetnet 0.2.5's; the CaloChallenge calls it
    with min_samples=10 000.
    """
    x, y = np.asarray(real, dtype=np.float64), np.asarray(gen, dtype=np.float64)
    if normalise_features:
        x, y = normalise(x, y)
    batches = (1.0 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    vals, points_all = [], []
    for size in batches:
        points = []
        for _ in range(num_batches):
            a = x[rng.choice(len(x), size=size)]
            b = y[rng.choice(len(y), size=size)]
            points.append(frechet_distance(a.mean(axis=0), np.cov(a, rowvar=False),
                                           b.mean(axis=0), np.cov(b, rowvar=False)))
        vals.append(np.mean(points))
        points_all.extend(points)
    t = 1.0 / batches
    if t[0] == t[-1]:
        # one batch size only (a sample smaller than min_samples): nothing to extrapolate,
        # report the mean over the batches and its spread
        return float(np.mean(points_all)), float(np.std(points_all))
    # start the fit from the two end points (curve_fit's default start (1, 1) stalls when the
    # distances are far from 1, returning the start value unchanged)
    slope0 = max((vals[0] - vals[-1]) / (t[0] - t[-1]), 0.0)
    start = (max(vals[-1] - slope0 * t[-1], 0.0), slope0)
    params, covs = curve_fit(lambda t, c, s: c + s * t, t, vals, p0=start,
                             bounds=([0, 0], [np.inf, np.inf]))
    return float(params[0]), float(np.sqrt(np.diag(covs)[0]))


def _kernel_sum(a: np.ndarray, b: np.ndarray, block: int = 2048, exclude_diagonal: bool = False) -> float:
    """Sum of (a.b / d + 1)^4 over all pairs (optionally without the diagonal of a with itself)."""
    gamma = 1.0 / a.shape[1]
    total = 0.0
    for lo in range(0, len(a), block):
        k = (a[lo:lo + block] @ b.T * gamma + 1.0) ** 4
        total += k.sum()
        if exclude_diagonal:
            rows = np.arange(k.shape[0])
            total -= k[rows, lo + rows].sum()
    return float(total)


def mmd_poly_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased quadratic MMD^2 estimate with the polynomial kernel of degree 4."""
    m, n = len(x), len(y)
    return (_kernel_sum(x, x, exclude_diagonal=True) / (m * (m - 1))
            + _kernel_sum(y, y, exclude_diagonal=True) / (n * (n - 1))
            - 2.0 * _kernel_sum(x, y) / (m * n))


def kpd(real: np.ndarray, gen: np.ndarray, num_batches: int = 10, batch_size: int = 5_000,
        normalise_features: bool = True, seed: int = 42) -> tuple[float, float]:
    """Kernel physics distance: (median, half 16-84 % inter-quantile range) over batches.

    Defaults are jetnet 0.2.5's; the CaloChallenge calls it with batch_size=10 000.
    """
    x, y = np.asarray(real, dtype=np.float64), np.asarray(gen, dtype=np.float64)
    if normalise_features:
        x, y = normalise(x, y)
    vals = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        a = x[rng.choice(len(x), size=batch_size)]
        b = y[rng.choice(len(y), size=batch_size)]
        vals.append(mmd_poly_unbiased(a, b))
    return float(np.median(vals)), float(iqr(vals, rng=(16.275, 83.725)) / 2)


class FPDStage(HighLevelVectorStage):
    """``fpd`` and ``kpd`` as the CaloChallenge calls them: FPD batches from ``min_samples`` to
    ``max_samples`` events, KPD batches of ``kpd_batch_size``, all capped by the sample size; each
    with its floor, the same distance between the reference halves (even / odd events, when the
    reference has >= 100 events). Holds the high-level vectors."""

    name = "fpd"

    def __init__(self, seed: int = 0, min_samples: int = 10_000, max_samples: int = 50_000,
                 kpd_batch_size: int = 10_000, log: Log = quiet) -> None:
        super().__init__(log)
        self.seed = seed
        self.min_samples, self.max_samples, self.kpd_batch_size = min_samples, max_samples, kpd_batch_size

    def _distances(self, ref: np.ndarray, gen: np.ndarray, kpd_batches: int = 10) -> tuple[tuple, tuple]:
        n_min = min(len(gen), len(ref))
        lo, hi = min(self.min_samples, n_min), min(self.max_samples, n_min)
        return (fpd(ref, gen, min_samples=lo, max_samples=max(hi, lo), seed=self.seed),
                kpd(ref, gen, batch_size=min(self.kpd_batch_size, n_min), seed=self.seed, num_batches=kpd_batches))

    def compute(self) -> Result:
        gen, ref = self.vectors.array(GENERATED), self.vectors.array(REFERENCE)
        self.log(f"FPD and KPD on {len(gen)} + {len(ref)} events")
        (fpd_value, fpd_std), (kpd_value, kpd_std) = self._distances(ref, gen)
        fpd_floor = kpd_floor = None
        if len(ref) // 2 >= 50:
            (fpd_floor, _), (kpd_floor, _) = self._distances(ref[0::2], ref[1::2], kpd_batches=5)
        result = Result(info=self.holds())
        result.add("fpd", fpd_value, fpd_std, fpd_floor)
        result.add("kpd", kpd_value, kpd_std, kpd_floor)
        return result
