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

The trace of sqrtm(C1 C2) is computed from the eigenvalues of L^T C2 L, C1 = L L^T its Cholesky
factorisation with complete pivoting stopped at the numerical rank (LAPACK dpstrf: singular C1,
e.g. energy fractions that sum to one, included), or of C1^1/2 C2 C1^1/2 where that fails (equal
in exact arithmetic, stable and faster than scipy.linalg.sqrtm). Where every normalised |value| is
within FLOAT32_BOUND, FPD's resamples are gathered from a float32 copy of the sample minus its
mean and multiplied in float32 (``ShiftedRows``), and KPD's kernel dot products and their fourth
power are float32; means, covariances, kernel sums and the rest stay float64. KPD moves by ~1e-6
relative; FPD by up to ~1e-4 relative (20k vs 20k dataset 2: 0.00891719 -> 0.00891766, std
0.00086), because every resample shares the same rounding of the float32 rows, so it does not
average out over the 200 resamples: half a thousandth of the std. A resample drawn with
replacement is handled as its distinct rows weighted by their counts (``resample_moments``,
``mmd_poly_batches``): the same statistics, with ~20-40 % fewer rows in each covariance and each
kernel value computed once per pair of distinct rows (for KPD, over the rows of all batches
together when that is cheaper); kernel blocks are 2048 x 2048 (32 MB).
"""

from __future__ import annotations

import numpy as np

from calobench.metrics.result import Result
from calobench.metrics.stage import HighLevelVectorStage, Log, quiet

# Largest |normalised feature| for which the covariance products (FPD) and the kernel dot
# products (KPD) run in float32. Normalised reference features are within [-1, 1]; a generated
# sample (or the other reference half) far outside makes sums of huge terms that nearly cancel,
# and there float64 keeps today's numbers.
FLOAT32_BOUND = 10.0


def float32_safe(*samples: np.ndarray) -> bool:
    """Whether every |value| of the normalised samples is <= FLOAT32_BOUND (and finite)."""
    return all(len(a) == 0 or float(np.max(np.abs(a))) <= FLOAT32_BOUND for a in samples)


def normalise(real: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide both samples by the per-feature maximum |value| of ``real`` (0 -> 1)."""
    maxes = np.max(np.abs(real), axis=0)
    maxes[maxes == 0] = 1.0
    return real / maxes, gen / maxes


def normalise_in_place(real: np.ndarray, gen: np.ndarray) -> None:
    """``normalise`` without copies: both float64 arrays divided in place (the same values)."""
    maxes = np.max(np.abs(real), axis=0)
    maxes[maxes == 0] = 1.0
    real /= maxes
    gen /= maxes


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _factor_psd(c: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(order, L) with c[order][:, order] = L L^T, L (d, rank): a Cholesky factorisation with
    complete pivoting (LAPACK dpstrf) that stops at the numerical rank, so a singular C (features
    that are linear combinations of others, e.g. energy fractions summing to one) still has a
    factor; None where LAPACK reports an error."""
    from scipy.linalg import lapack  # imported here: scipy.linalg costs 0.1 s of every process's start

    factor, pivots, rank, info = lapack.dpstrf(c, lower=1, tol=-1.0)
    if info < 0 or rank == 0:
        return None
    return pivots - 1, np.tril(factor)[:, :rank]


def frechet_distance(mu1: np.ndarray, c1: np.ndarray, mu2: np.ndarray, c2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^1/2) of two Gaussians."""
    c1, c2 = np.atleast_2d(c1), np.atleast_2d(c2)
    # features constant in sample 1 (zero rows and columns of C1) add only zero eigenvalues to C1 C2
    used = np.flatnonzero(np.diag(c1) > 0)
    factor = _factor_psd(c1[np.ix_(used, used)]) if len(used) else None
    if factor is not None:
        # C1 = P L L^T P^T: C1 C2 has the eigenvalues of L^T (P^T C2 P) L (rank x rank)
        order, lower = factor
        keep = used[order]
        lam = np.linalg.eigvalsh(lower.T @ c2[np.ix_(keep, keep)] @ lower)
    else:  # through the square root of C1
        s1 = _sqrt_psd(c1)
        lam = np.linalg.eigvalsh(s1 @ c2 @ s1)
    tr_covmean = np.sum(np.sqrt(np.clip(lam, 0.0, None)))
    diff = np.atleast_1d(mu1) - np.atleast_1d(mu2)
    return float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_covmean)


def resample_moments(x: np.ndarray, index: np.ndarray, float32: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d), ddof 1, of the rows ``x[index]`` of x (n, d) float64, a
    resample with repeats: as ``a = x[index]; a.mean(axis=0), np.cov(a, rowvar=False)``, from the
    distinct rows weighted by their counts (fewer rows to multiply; one symmetric product).

    The mean and the centring are float64; with ``float32`` the product of the centred rows is
    float32 (twice the throughput; each centred value keeps 24 bits relative to itself), returned
    as float64."""
    counts = np.bincount(index, minlength=len(x))
    rows = np.flatnonzero(counts)
    weights = counts[rows].astype(np.float64)
    centred = x[rows]
    mean = weights @ centred / len(index)
    centred -= mean
    scaled = np.empty(centred.shape, dtype=np.float32 if float32 else np.float64)
    np.multiply(centred, np.sqrt(weights)[:, None], out=scaled, casting="same_kind")
    return mean, (scaled.T @ scaled).astype(np.float64, copy=False) / (len(index) - 1)


class ShiftedRows:
    """A sample prepared once for many float32 resample covariances: the rows minus the whole
    sample's mean (float64), stored as float32 (n, d). A resample's covariance is then
    [sum_r c_r (x_r - s)(x_r - s)^T - N o o^T] / (N - 1) with s the shift and o = mean - s, an
    identity: each resample gathers float32 rows (half the bytes) and is not centred again, and
    o, of order std / sqrt(N), costs no precision in the rank-one correction (float64)."""

    def __init__(self, x: np.ndarray) -> None:
        self.shift = x.mean(axis=0)
        self.rows = np.empty(x.shape, dtype=np.float32)
        np.subtract(x, self.shift, out=self.rows, casting="same_kind")
        # the gathered rows of each resample go here: no fresh pages per resample (~10 % of its time)
        self._gathered = np.empty_like(self.rows)

    def moments(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (d,) and covariance (d, d), ddof 1, float64, of the resample ``index`` (as
        ``resample_moments(x, index, float32=True)``, to float32 precision)."""
        counts = np.bincount(index, minlength=len(self.rows))
        rows = np.flatnonzero(counts)
        weights = counts[rows].astype(np.float32)  # small integers: exact
        a = np.take(self.rows, rows, axis=0, out=self._gathered[:len(rows)])
        n = len(index)
        offset = (weights @ a).astype(np.float64) / n
        a *= np.sqrt(weights)[:, None]
        gram = (a.T @ a).astype(np.float64)
        gram -= n * np.outer(offset, offset)
        return self.shift + offset, gram / (n - 1)


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
    float32 = float32_safe(x, y)  # bounded values (normalised, or already small): float32 products
    if float32:
        moments_x, moments_y = ShiftedRows(x).moments, ShiftedRows(y).moments
    else:
        moments_x, moments_y = (lambda index: resample_moments(x, index)), (lambda index: resample_moments(y, index))
    rng = np.random.default_rng(seed)
    vals, points_all = [], []
    for size in batches:
        points = []
        for _ in range(num_batches):
            mu_a, cov_a = moments_x(rng.choice(len(x), size=size))
            mu_b, cov_b = moments_y(rng.choice(len(y), size=size))
            points.append(frechet_distance(mu_a, cov_a, mu_b, cov_b))
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
    from scipy.optimize import curve_fit  # imported here (0.1 s), as in calobench.metrics.resolution

    params, covs = curve_fit(lambda t, c, s: c + s * t, t, vals, p0=start,
                             bounds=([0, 0], [np.inf, np.inf]))
    return float(params[0]), float(np.sqrt(np.diag(covs)[0]))


def _kernel_block(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """(len(a), len(b)) float64 kernel values (a.b gamma + 1)^4, squared twice in place (the power
    function is some 40 times slower). float64 a and b: all in float64. float32 a and b (twice the
    throughput): ``gamma`` already multiplied into ``a`` by the caller, the dot products and the
    power float32 (a value of at most (FLOAT32_BOUND^2 + 1)^4 to 24 bits, like the dot product it
    comes from; half the bytes per pass), returned as float64 for the sums."""
    k = a @ b.T
    if k.dtype == np.float64:
        k *= gamma
    k += 1.0
    np.square(k, out=k)
    np.square(k, out=k)
    return k.astype(np.float64, copy=False)


def weighted_kernel_sums(x: np.ndarray, wx: np.ndarray, y: np.ndarray | None = None, wy: np.ndarray | None = None,
                         block: int = 512, float32: bool = False) -> np.ndarray:
    """(B,) sums over all pairs sum_ij wx[i, b] k(x_i, y_j) wy[j, b] of the kernel (x.y / d + 1)^4,
    for each column b of the weights wx (len(x), B) and wy (len(y), B). With y None: y = x,
    wy = wx, computed on the blocks of the upper triangle only (the kernel is symmetric).
    Kernel blocks are formed block x block at a time (2 MB at 512: the passes of the power and
    the conversion stay in the cache; 2048 took twice the CPU time); with ``float32`` their dot
    products are float32, the power and the sums float64."""
    gamma = 1.0 / x.shape[1]
    total = np.zeros(wx.shape[1])
    dtype = np.float32 if float32 else np.float64
    x = x.astype(dtype, copy=False)
    # float32: gamma goes into the left factor once (see _kernel_block)
    left = (x * np.float32(gamma)) if float32 else x
    if y is None:
        for lo in range(0, len(x), block):
            w_lo = wx[lo:lo + block]
            for hi in range(lo, len(x), block):
                k = _kernel_block(left[lo:lo + block], x[hi:hi + block], gamma)
                part = ((k @ wx[hi:hi + block]) * w_lo).sum(axis=0)
                total += part if hi == lo else 2.0 * part
        return total
    y = y.astype(dtype, copy=False)
    for lo in range(0, len(x), block):
        w_lo = wx[lo:lo + block]
        for hi in range(0, len(y), block):
            k = _kernel_block(left[lo:lo + block], y[hi:hi + block], gamma)
            total += ((k @ wy[hi:hi + block]) * w_lo).sum(axis=0)
    return total


def _self_kernel(x: np.ndarray) -> np.ndarray:
    """(n,) k(x_i, x_i) of every row."""
    return (np.einsum("ij,ij->i", x, x) / x.shape[1] + 1.0) ** 4


def _counts(n: int, draws: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows drawn by any of the B draws (indices into 0..n-1) and (rows, B) how often each draw took each."""
    counts = np.stack([np.bincount(d, minlength=n) for d in draws], axis=1)
    rows = np.flatnonzero(counts.any(axis=1))
    return rows, counts[rows].astype(np.float64)


def mmd_poly_batches(x: np.ndarray, y: np.ndarray, draws_x: list[np.ndarray], draws_y: list[np.ndarray]) -> np.ndarray:
    """(B,) unbiased quadratic MMD^2 of the polynomial kernel of degree 4 between the resamples
    ``x[draws_x[b]]`` and ``y[draws_y[b]]`` (index arrays, repeats allowed): equal to
    ``mmd_poly_unbiased(x[draws_x[b]], y[draws_y[b]])``.

    The kernel is evaluated once per pair of distinct rows, weighted by how often each draw took
    them; sum over pairs of positions p != q of k(a_p, a_q) = c^T K c - sum_r c_r k(x_r, x_r).
    The dot products are float32 where every drawn |value| is within FLOAT32_BOUND.
    The rows of all draws together are used when that needs fewer kernel values than each draw
    on its own rows."""
    m = np.array([len(d) for d in draws_x], dtype=np.float64)
    n = np.array([len(d) for d in draws_y], dtype=np.float64)
    rows_x, cx = _counts(len(x), draws_x)
    rows_y, cy = _counts(len(y), draws_y)
    each = [(_counts(len(x), [dx]), _counts(len(y), [dy])) for dx, dy in zip(draws_x, draws_y)]
    cost_each = sum(len(ex[0]) ** 2 / 2 + len(ey[0]) ** 2 / 2 + len(ex[0]) * len(ey[0]) for ex, ey in each)
    cost_all = len(rows_x) ** 2 / 2 + len(rows_y) ** 2 / 2 + len(rows_x) * len(rows_y)
    if cost_all <= cost_each:
        parts = [((rows_x, cx), (rows_y, cy))]
    else:
        parts = each
    sxx, syy, sxy = [], [], []
    float32 = float32_safe(x[rows_x], y[rows_y])
    for (rx, wx), (ry, wy) in parts:
        a, b = x[rx], y[ry]
        sxx.append(weighted_kernel_sums(a, wx, float32=float32) - _self_kernel(a) @ wx)
        syy.append(weighted_kernel_sums(b, wy, float32=float32) - _self_kernel(b) @ wy)
        sxy.append(weighted_kernel_sums(a, wx, b, wy, float32=float32))
    sxx, syy, sxy = (np.concatenate(v) for v in (sxx, syy, sxy))
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * sxy / (m * n)


def mmd_poly_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased quadratic MMD^2 estimate with the polynomial kernel of degree 4."""
    return float(mmd_poly_batches(x, y, [np.arange(len(x))], [np.arange(len(y))])[0])


def kpd(real: np.ndarray, gen: np.ndarray, num_batches: int = 10, batch_size: int = 5_000,
        normalise_features: bool = True, seed: int = 42) -> tuple[float, float]:
    """Kernel physics distance: (median, half 16-84 % inter-quantile range) over batches.

    Defaults are jetnet 0.2.5's; the CaloChallenge calls it with batch_size=10 000.
    """
    x, y = np.asarray(real, dtype=np.float64), np.asarray(gen, dtype=np.float64)
    if normalise_features:
        x, y = normalise(x, y)
    draws_x, draws_y = [], []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        draws_x.append(rng.choice(len(x), size=batch_size))
        draws_y.append(rng.choice(len(y), size=batch_size))
    vals = mmd_poly_batches(x, y, draws_x, draws_y)
    from scipy.stats import iqr  # imported here: scipy.stats costs 0.2-0.5 s of every process's start

    return float(np.median(vals)), float(iqr(vals, rng=(16.275, 83.725)) / 2)


class FPDStage(HighLevelVectorStage):
    """``fpd`` and ``kpd`` as the CaloChallenge calls them: FPD batches from ``min_samples`` to
    ``max_samples`` events, KPD batches of ``kpd_batch_size``, all capped by the sample size; each
    with its floor, the same distance between the reference halves (even / odd events, when the
    reference has >= 100 events and ``floors``). Holds the high-level vectors."""

    name = "fpd"

    def __init__(self, seed: int = 0, min_samples: int = 10_000, max_samples: int = 50_000,
                 kpd_batch_size: int = 10_000, log: Log = quiet, floors: bool = True) -> None:
        super().__init__(log)
        self.seed, self.floors = seed, floors
        self.min_samples, self.max_samples, self.kpd_batch_size = min_samples, max_samples, kpd_batch_size

    def _distances(self, ref: np.ndarray, gen: np.ndarray, kpd_batches: int = 10) -> tuple[tuple, tuple]:
        """FPD and KPD of ``gen`` against ``ref``, both already normalised (``normalise``)."""
        n_min = min(len(gen), len(ref))
        lo, hi = min(self.min_samples, n_min), min(self.max_samples, n_min)
        return (fpd(ref, gen, min_samples=lo, max_samples=max(hi, lo), seed=self.seed, normalise_features=False),
                kpd(ref, gen, batch_size=min(self.kpd_batch_size, n_min), seed=self.seed, num_batches=kpd_batches,
                    normalise_features=False))

    def compute(self) -> Result:
        # The stage owns these copies of the vectors: the floor's halves are normalised copies
        # (half the reference), then the samples themselves are normalised in place (the values of
        # fpd()/kpd()'s own normalisation, bit for bit, without another copy of both samples).
        gen, ref = (x.astype(np.float64, copy=False) for x in self.take_arrays())
        self.log(f"FPD and KPD on {len(gen)} + {len(ref)} events")
        fpd_floor = kpd_floor = None
        if self.floors and len(ref) // 2 >= 50:
            (fpd_floor, _), (kpd_floor, _) = self._distances(*normalise(ref[0::2], ref[1::2]), kpd_batches=5)
        normalise_in_place(ref, gen)
        (fpd_value, fpd_std), (kpd_value, kpd_std) = self._distances(ref, gen)
        result = Result(info=self.holds())
        result.add("fpd", fpd_value, fpd_std, fpd_floor)
        result.add("kpd", kpd_value, kpd_std, kpd_floor)
        return result
