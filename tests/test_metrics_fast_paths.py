"""The fast paths of the metrics (issue 19) against the straightforward computations they replace:
grid-position binning equals numpy's binary search, one sparse fill equals a fill per feature,
resample moments equal np.cov of the resample, weighted kernel sums equal the plain MMD, the
block-diagonal moments equal the dense product, chunks follow the files' HDF5 chunking, and the
reader thread gives the chunks of the plain loop."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from calobench.data.showerfile import ShowerFileReader
from calobench.datasets import get_geometry
from calobench.metrics.evaluate import aligned_chunk_size, read_ahead
from calobench.metrics.features import feature_extractor
from calobench.metrics.fpd import ShiftedRows, float32_safe, mmd_poly_batches, resample_moments, weighted_kernel_sums
from calobench.metrics.distances import DISTANCES, chi2_ndf
from calobench.metrics.histograms import (HistogramState, _bin_index, _spacing, fill_events, poisson_weights)


def _searched(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="right") - 1


@pytest.mark.parametrize("edges", [np.logspace(np.log10(0.015), np.log10(3e4), 50), np.linspace(0.5, 1.5, 101),
                                   np.linspace(-3.0, 3.0, 31), np.array([0.0, 1.0, 3.0, 7.0])])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bin_index_equals_binary_search(edges, dtype):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(1.0, 2.0, 20000), np.exp(rng.normal(0.0, 4.0, 20000)),
                             edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf),
                             [0.0, -1.0, np.inf, -np.inf, 1e30]]).astype(dtype)
    got = _bin_index(edges, values, _spacing(edges))
    np.testing.assert_array_equal(got, _searched(edges, values))


def _hostile_float32(edges: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 values around and on the edges, signed zeros, huge values, NaN and infinities."""
    e32 = edges.astype(np.float32)
    return np.concatenate([rng.normal(1.0, 2.0, 20000), np.exp(rng.normal(0.0, 4.0, 20000)), -np.exp(rng.normal(0.0, 4.0, 2000)),
                           edges, e32, np.nextafter(e32, np.float32(-np.inf)), np.nextafter(e32, np.float32(np.inf)),
                           [0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 1e-45, 3.4e38]]).astype(np.float32)


@pytest.mark.parametrize("edges", [np.logspace(np.log10(0.015), np.log10(3e4), 50), np.linspace(0.5, 1.5, 101),
                                   np.linspace(-3.0, 3.0, 31), np.array([0.0, 1.0, 3.0, 7.0]),
                                   np.array([1.0, np.nextafter(np.float32(1.0), np.float32(2.0)), 1.5])])
@pytest.mark.parametrize("clip", [False, True])
def test_float32_lookup_bins_equal_the_searched_bins(edges, clip):
    values = _hostile_float32(edges, np.random.default_rng(2))
    assert values.dtype == np.float32 and len(values) >= 4096  # the lookup path
    state = HistogramState(edges, 2, clip=clip)
    expected = _searched(edges, values)
    nb = len(edges) - 1
    if clip:
        expected = np.clip(expected, 0, nb - 1)
    else:
        expected[(expected < 0) | (expected >= nb)] = -1
    expected[np.searchsorted(edges, values.astype(np.float64), side="right") == len(edges)] = nb - 1 if clip else -1
    expected[values.astype(np.float64) == edges[-1]] = nb - 1  # the last bin is closed
    expected[~np.isfinite(values)] = -1
    np.testing.assert_array_equal(state.bins(values), expected)
    np.testing.assert_array_equal(state.bins(values), state.bins(values.astype(np.float64)))


def test_update_counts_equal_a_histogram_per_event_row():
    """HistogramState.update against numpy's histogram of each row's weighted values: dropped
    values (NaN, outside the edges) count nowhere, float32 and float64 give the same counts."""
    rng = np.random.default_rng(3)
    n, per_event = 40, 300
    values = np.exp(rng.normal(0.0, 2.0, n * per_event)).astype(np.float32)
    values[::97] = np.nan
    event = np.repeat(np.arange(n), per_event)
    weights = rng.uniform(0.5, 2.0, n * per_event)
    edges = np.logspace(-1, 1, 25)
    boot = poisson_weights(5, 0, 0, n, 4)
    for w in (None, weights):
        states = [HistogramState(edges, 4) for _ in range(2)]
        states[0].update(values, event, boot, weights=w)
        states[1].update(values.astype(np.float64), event, boot, weights=w)
        np.testing.assert_array_equal(states[0].counts, states[1].counts)
        finite = np.isfinite(values)
        ones = np.ones(n * per_event) if w is None else w
        nominal = np.histogram(values[finite], edges, weights=ones[finite])[0]
        np.testing.assert_allclose(states[0].nominal, nominal, rtol=1e-12)
        replica = np.histogram(values[finite], edges, weights=(ones * boot[event, 0])[finite])[0]
        np.testing.assert_allclose(states[0].boot[0], replica, rtol=1e-12)


def test_distances_row_by_row_equal_one_pair_at_a_time():
    rng = np.random.default_rng(4)
    edges = np.linspace(0.0, 1.0, 13)
    gen = rng.poisson(rng.uniform(0, 30, (6, 12))).astype(float)
    ref = rng.poisson(rng.uniform(0, 30, (6, 12))).astype(float)
    gen[1] = 0.0  # an empty histogram: chi2 NaN
    gen[2], ref[2] = 0.0, 0.0
    gen[2, 3], ref[2, 3] = 5.0, 7.0  # one bin with entries: ndf 0, chi2 0
    gen[3, :6], ref[3, 6:] = 0.0, 0.0  # disjoint halves
    for kind, fn in DISTANCES.items():
        rows = fn(gen, ref, edges)
        assert rows.shape == (6,)
        single = [fn(g, r, edges) for g, r in zip(gen, ref)]
        assert all(isinstance(v, float) for v in single)
        np.testing.assert_allclose(rows, single, rtol=1e-13, atol=0.0, equal_nan=True)
    assert np.isnan(chi2_ndf(gen[1], ref[1])) and chi2_ndf(gen[2], ref[2]) == 0.0
    # known answer: sum (N_r g - N_g r)^2 / (g + r) / (N_g N_r) over 2 bins, ndf 1
    assert chi2_ndf([1.0, 1.0], [2.0, 0.0]) == pytest.approx((2 * 1 - 2 * 2) ** 2 / 3 / 4 + (2 * 1 - 2 * 0) ** 2 / 1 / 4)


def test_spacing_recognises_only_regular_grids():
    assert _spacing(np.linspace(0.0, 1.0, 11))[0] == "linear"
    assert _spacing(np.logspace(-2.0, 3.0, 40))[0] == "log"
    assert _spacing(np.array([0.0, 1.0, 3.0, 7.0])) is None
    assert _spacing(np.array([1.0, 1.0, 2.0])) is None


def test_fill_events_equals_one_state_per_column():
    rng = np.random.default_rng(1)
    table = np.stack([rng.normal(size=5000), rng.exponential(size=5000), rng.uniform(-1, 2, 5000)], axis=1)
    table[7, 1] = np.nan
    edges = [np.linspace(-2, 2, 21), np.logspace(-2, 1, 30), np.linspace(0, 1, 11)]
    boot = poisson_weights(4, 0, 100, 100 + len(table), 6)
    fast = [HistogramState(e, 6, clip=(k == 2)) for k, e in enumerate(edges)]
    fill_events(fast, table, boot, first_event=100)
    for k, e in enumerate(edges):
        slow = HistogramState(e, 6, clip=(k == 2))
        slow.update_events(table[:, k], boot, first_event=100)
        np.testing.assert_array_equal(fast[k].counts, slow.counts)
    # known answers: the nominal row is numpy's histogram, the halves add up to it
    np.testing.assert_array_equal(fast[0].nominal, np.histogram(table[:, 0], edges[0])[0])
    np.testing.assert_array_equal(fast[0].halves.sum(axis=0), fast[0].nominal)


def test_resample_moments_equal_numpy_of_the_resample():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 7)) * np.arange(1, 8)
    index = rng.choice(len(x), size=600)
    mean, cov = resample_moments(x, index)
    np.testing.assert_allclose(mean, x[index].mean(axis=0), rtol=1e-12, atol=1e-12)
    plain = np.cov(x[index], rowvar=False)
    np.testing.assert_allclose(cov, plain, rtol=1e-11, atol=1e-12)
    # the float32 product of the centred rows: equal to float32 precision of the largest entry,
    # closer than one event more or less
    mean32, cov32 = resample_moments(x, index, float32=True)
    np.testing.assert_allclose(mean32, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cov32, plain, rtol=0, atol=1e-6 * np.abs(plain).max())
    assert not np.allclose(np.cov(x[index][:-1], rowvar=False), plain, rtol=0, atol=1e-6 * np.abs(plain).max())


def test_shifted_rows_give_the_resample_moments_to_float32_precision():
    rng = np.random.default_rng(5)
    # a feature far from zero with a small spread: the shift keeps its float32 rows precise
    x = rng.normal(size=(500, 6)) * np.array([1, 2, 3, 0.01, 5, 6]) + np.array([0, 0, 0, 3.0, 0, 0])
    index = rng.choice(len(x), size=700)
    mean, cov = resample_moments(x, index)
    mean32, cov32 = ShiftedRows(x).moments(index)
    np.testing.assert_allclose(mean32, mean, rtol=0, atol=1e-6 * np.abs(x).max())
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))  # each entry against its own features' spread
    assert np.max(np.abs(cov32 - cov) / scale) < 1e-5
    # and clearly different from the covariance without one event
    assert np.max(np.abs(np.cov(x[index][:-1], rowvar=False) - cov) / scale) > 1e-5
    # the gathered-row buffer is reused: a smaller resample after a larger one, and the larger
    # one again, equal the moments of a fresh ShiftedRows
    rows = ShiftedRows(x)
    small = rng.choice(len(x), size=50)
    for idx in (index, small, index):
        for got, want in zip(rows.moments(idx), ShiftedRows(x).moments(idx)):
            np.testing.assert_array_equal(got, want)


def _mmd_plain(a: np.ndarray, b: np.ndarray) -> float:
    k = lambda u, v: (u @ v.T / u.shape[1] + 1.0) ** 4  # noqa: E731
    kxx, kyy = k(a, a), k(b, b)
    m, n = len(a), len(b)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2.0 * k(a, b).sum() / (m * n))


def test_weighted_kernel_sums_and_mmd_equal_the_plain_sums():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 4)), rng.normal(0.2, 1.1, size=(250, 4))
    w = rng.integers(0, 3, size=(300, 2)).astype(np.float64)
    k = (x @ x.T / 4 + 1.0) ** 4
    np.testing.assert_allclose(weighted_kernel_sums(x, w, block=64), np.einsum("ib,ij,jb->b", w, k, w), rtol=1e-12)
    # float32 dot products, the power and the sums float64
    np.testing.assert_allclose(weighted_kernel_sums(x, w, block=64, float32=True), np.einsum("ib,ij,jb->b", w, k, w),
                               rtol=1e-6)
    v = rng.integers(0, 3, size=(250, 2)).astype(np.float64)
    kxy = (x @ y.T / 4 + 1.0) ** 4
    np.testing.assert_allclose(weighted_kernel_sums(x, w, y, v, block=64), np.einsum("ib,ij,jb->b", w, kxy, v),
                               rtol=1e-12)
    # resamples with repeats, one batch at a time and several together
    draws_x = [rng.choice(300, size=200) for _ in range(3)]
    draws_y = [rng.choice(250, size=200) for _ in range(3)]
    expected = [_mmd_plain(x[dx], y[dy]) for dx, dy in zip(draws_x, draws_y)]
    # the values are within FLOAT32_BOUND, so the dot products are float32: a difference of sums
    # of ~1e5 kernel values of order 10 moves by ~1e-6 of its size
    np.testing.assert_allclose(mmd_poly_batches(x, y, draws_x, draws_y), expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(mmd_poly_batches(x, y, draws_x[:1], draws_y[:1]), expected[:1], rtol=1e-4, atol=1e-7)
    # far outside the bound (an outlier 1e6 times the rest) the sums stay float64
    far = y.copy()
    far[0] *= 1e6
    assert not float32_safe(far)
    np.testing.assert_allclose(mmd_poly_batches(x, far, draws_x[:1], draws_y[:1]),
                               [_mmd_plain(x[draws_x[0]], far[draws_y[0]])], rtol=1e-9)


@pytest.mark.parametrize("name", ["calochallenge-1-photons", "stcf11x11"])
def test_layer_moments_equal_the_dense_product(name):
    fx = feature_extractor(get_geometry(name))
    assert fx._block_diagonal
    e = np.random.default_rng(4).exponential(size=(50, fx.geometry.n_cells))
    np.testing.assert_allclose(fx._layer_moments(e), e @ fx._moments, rtol=1e-12, atol=1e-9)


def _write(path, n: int, cells: int, rows: int | None) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=np.full((n, 1), 1000.0, dtype=np.float32))
        data = np.random.default_rng(5).exponential(size=(n, cells)).astype(np.float32)
        f.create_dataset("showers", data=data, chunks=(rows, cells) if rows else None)


def test_chunks_follow_the_hdf5_chunking_and_read_ahead_gives_the_plain_chunks(tmp_path):
    geometry = get_geometry("calochallenge-1-photons")
    _write(tmp_path / "a.h5", 1000, geometry.n_cells, 96)
    _write(tmp_path / "b.h5", 1000, geometry.n_cells, None)
    a = ShowerFileReader(tmp_path / "a.h5", geometry).showerset()
    b = ShowerFileReader(tmp_path / "b.h5", geometry).showerset()
    assert a.source.chunk_rows == 96 and b.source.chunk_rows is None
    assert aligned_chunk_size(1000, (a, b)) == 960
    assert aligned_chunk_size(50, (a,)) == 50  # file chunks larger than the read: unchanged
    assert aligned_chunk_size(1000, (b,)) == 1000
    chunks = list(read_ahead(a, 1000, 300))
    assert [start for start, _ in chunks] == [0, 300, 600, 900]
    for start, chunk in chunks:
        np.testing.assert_array_equal(chunk.showers, a.slice(start, start + 300).showers)


def test_frechet_distance_known_answers_with_and_without_constant_features():
    from calobench.metrics.fpd import frechet_distance

    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 2.0])
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2, one variance zero (Cholesky
    # on the other features), then a full-rank rotated pair
    assert frechet_distance(mu1, np.diag([0.0, 1.0, 4.0]), mu2, np.eye(3)) == pytest.approx(0.25 + 1.0 + 1.0, rel=1e-12)
    assert frechet_distance(mu2, np.eye(3), mu1, np.diag([0.0, 1.0, 4.0])) == pytest.approx(2.25, rel=1e-12)
    q, _ = np.linalg.qr(np.random.default_rng(6).normal(size=(3, 3)))
    c1, c2 = q @ np.diag([1.0, 4.0, 9.0]) @ q.T, q @ np.diag([4.0, 4.0, 1.0]) @ q.T
    assert frechet_distance(mu1, c1, mu1, c2) == pytest.approx(1.0 + 0.0 + 4.0, rel=1e-10)
    # a singular C1 without a constant feature (feature 3 = feature 1 + feature 2, as energy
    # fractions that sum to one): the pivoted Cholesky stops at rank 2; equal to scipy's sqrtm
    from scipy.linalg import sqrtm
    a = np.random.default_rng(7).normal(size=(500, 2))
    s1 = np.cov(np.column_stack([a, a.sum(axis=1)]), rowvar=False)
    s2 = np.cov(np.random.default_rng(8).normal(size=(500, 3)), rowvar=False)
    plain = np.trace(s1) + np.trace(s2) - 2.0 * np.trace(sqrtm(s1 @ s2)).real
    assert frechet_distance(mu1, s1, mu1, s2) == pytest.approx(plain, rel=1e-7)
    assert frechet_distance(mu1, s2, mu1, s1) == pytest.approx(plain, rel=1e-7)


def test_standardiser_by_pieces_equals_one_piece(monkeypatch):
    from calobench.metrics.classifier_tests import _Standardiser

    rng = np.random.default_rng(7)
    x = (rng.normal(size=(300, 5)) * [1, 10, 0.1, 3, 0] + [0, 5, -2, 1, 7]).astype(np.float32)
    x[3, 1], x[10, 2] = np.inf, np.nan
    whole = _Standardiser(x, 6.0)
    monkeypatch.setattr(_Standardiser, "PIECE_BYTES", 8 * 5 * 64)  # 64 rows per piece
    pieces = _Standardiser(x, 6.0)
    np.testing.assert_allclose(pieces.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(pieces.std, whole.std, rtol=1e-12)
    out_whole, out_pieces = whole(x).numpy(), pieces(x).numpy()
    np.testing.assert_allclose(out_pieces, out_whole, rtol=1e-6, atol=1e-6)
    # known answers: the constant column maps to 0, the non-finite values to the clip bounds / 0
    assert np.all(out_pieces[:, 4] == 0) and out_pieces[3, 1] == 6.0 and out_pieces[10, 2] == 0.0
    assert abs(out_pieces[:, 0].mean()) < 1e-6 and abs(out_pieces[:, 0].std() - 1) < 1e-5


def test_read_blocks_of_wide_inputs_are_bounded():
    from calobench.metrics.classifier_tests import BLOCK_BYTES, ClassifierOptions, Source, _Blocks

    def source(n: int, dim: int) -> Source:
        return Source(n, dim, lambda a, b: np.zeros((b - a, dim), np.float32))

    opts = ClassifierOptions()
    # dataset 3's cells: 2048-event blocks at 100k (not 4096: 663 MB per sample), one block at 2000
    assert _Blocks(source(100_000, 40_501), source(100_000, 40_501), 0, opts).n_blocks == 49
    assert _Blocks(source(2000, 40_501), source(2000, 40_501), 0, opts).n_blocks == 1
    # narrower inputs keep block_events (dataset 2's cells, the high-level vectors)
    assert _Blocks(source(100_000, 6481), source(100_000, 6481), 0, opts).n_blocks == 25
    assert 4096 * 6481 * 4 <= BLOCK_BYTES


def test_histogram_stages_do_not_import_scikit_learn():
    """scikit-learn (~1.5 s of CPU to import) is imported by the classifier stages only."""
    import subprocess
    import sys

    code = ("import sys; import numpy as np; import calobench, calobench.metrics, calobench.api; "
            "print('sklearn' in sys.modules); "
            "from calobench.metrics.classifier_tests import _scores; "
            "_scores(np.array([0, 1.0]), np.array([0.2, 0.7]), np.array([0, 1.0]), np.array([0.1, 0.9])); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_histogram_stages_import_neither_scipy_stats_nor_optimize():
    """scipy.stats and scipy.optimize (~0.3 s of CPU to import) wait for the resolution fit."""
    import subprocess
    import sys

    code = ("import sys; import calobench.metrics.evaluate, calobench.metrics.fpd; "
            "print(any(m in sys.modules for m in ('scipy.stats', 'scipy.optimize')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False"]
