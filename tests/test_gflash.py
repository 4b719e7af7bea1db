"""GFlash: fitted to the embedded Geant4 references it reproduces response and profiles."""

from __future__ import annotations

import numpy as np
import pytest

import calobench
from calobench.errors import CalobenchError
from calobench.baselines.parametric.gflash import GFlash


def _reference(name: str, n: int):
    ref = calobench.load(name)
    return ref.take(np.arange(min(n, len(ref))))


@pytest.fixture(scope="module")
def stcf():
    ref = _reference("stcf11x11", 600)
    model = GFlash("stcf11x11", "tiny", seed=3)
    model.fit(ref)
    return ref, model


def test_stcf_mean_response_and_core_fraction(stcf):
    ref, model = stcf
    gen = model.sample(ref.energies, ref.conditions)
    r_ref = ref.total_energy() / ref.energies
    r_gen = gen.total_energy() / gen.energies
    assert abs(r_gen.mean() / r_ref.mean() - 1) < 0.02  # stated tolerance: 2 %
    core_ref = (ref.showers[:, 60] / ref.total_energy()).mean()
    core_gen = (gen.showers[:, 60] / np.maximum(gen.total_energy(), 1e-9)).mean()
    assert abs(core_gen - core_ref) < 0.03
    # the image follows the impact offset condition: x barycentre correlates with dphi_pos
    x = ref.geometry.centres[:, 0]
    bary = gen.showers @ x / np.maximum(gen.total_energy(), 1e-9)
    assert np.corrcoef(bary, ref.conditions["dphi_pos"])[0, 1] > 0.5
    # clearly different sample: a model fitted to stcf does not give half the energy
    assert abs((0.5 * r_gen).mean() / r_ref.mean() - 1) > 0.3


def test_shapes_nonnegative_and_seeds(stcf):
    ref, model = stcf
    e, cond = ref.energies[:50], {k: v[:50] for k, v in ref.conditions.items()}
    a = model.sample(e, cond)
    assert a.showers.shape == (50, 121) and a.showers.dtype == np.float32
    assert np.all(a.showers >= 0) and np.all(a.total_energy() > 0)
    np.testing.assert_array_equal(_fresh(model, 3).sample(e, cond).showers,
                                  _fresh(model, 3).sample(e, cond).showers)
    other = _fresh(model, 4).sample(e, cond).showers
    assert not np.array_equal(other, a.showers)


def _fresh(model: GFlash, seed: int) -> GFlash:
    out = GFlash(model.dataset.name, model.preset, seed=seed)
    out.load_state_arrays(model.state_arrays())
    return out


def test_save_load_round_trip(stcf, tmp_path):
    ref, model = stcf
    model.save(tmp_path / "m")
    loaded = GFlash.load(tmp_path / "m")
    e, cond = ref.energies[:20], {k: v[:20] for k, v in ref.conditions.items()}
    np.testing.assert_array_equal(_fresh(model, 9).sample(e, cond).showers,
                                  _fresh(loaded, 9).sample(e, cond).showers)
    assert loaded.parameter_count() == model.parameter_count() > 0


def test_unfitted_model_refuses_to_sample():
    with pytest.raises(CalobenchError, match="fit or load"):
        GFlash("stcf11x11", "tiny").sample(np.array([1000.0]))


@pytest.mark.parametrize("name", ["darkshine", "calochallenge-2"])
def test_longitudinal_profile_and_response(name):
    ref = _reference(name, 300)
    model = GFlash(name, "tiny", seed=1)
    model.fit(ref)
    gen = model.sample(ref.energies, ref.conditions)
    r_ref, r_gen = ref.total_energy() / ref.energies, gen.total_energy() / gen.energies
    assert abs(r_gen.mean() / r_ref.mean() - 1) < 0.03  # stated tolerance: 3 %
    slices = ref.geometry.layer_slices
    p_ref = np.array([ref.showers[:, s].sum() for s in slices])
    p_gen = np.array([gen.showers[:, s].sum() for s in slices])
    p_ref, p_gen = p_ref / p_ref.sum(), p_gen / p_gen.sum()
    assert np.abs(p_ref - p_gen).max() < 0.03  # stated tolerance: 0.03 of the energy per layer
    assert abs(np.argmax(p_ref) - np.argmax(p_gen)) <= 2
    assert np.all(gen.showers >= 0)


def test_cepc_point_clouds():
    ref = _reference("cepc", 60)
    model = GFlash("cepc", "tiny", seed=2)
    model.fit(ref)
    gen = model.sample(ref.energies, ref.conditions)
    assert len(gen) == len(ref) and np.all(gen.showers.cells[:, 3] >= ref.geometry.threshold)
    r_ref, r_gen = ref.total_energy() / ref.energies, gen.total_energy() / gen.energies
    assert abs(r_gen.mean() / r_ref.mean() - 1) < 0.03
    assert 0.7 < gen.showers.counts.mean() / ref.showers.counts.mean() < 1.3
    cl = gen.showers
    e = cl.cells[:, 3].astype(np.float64)
    bary = np.bincount(cl.event_index, np.hypot(cl.cells[:, 0], cl.cells[:, 1]) * e) / np.bincount(cl.event_index, e)
    assert np.all((bary > 1850) & (bary < 1950))
    phi = np.degrees(np.arctan2(np.bincount(cl.event_index, cl.cells[:, 1] * e), np.bincount(cl.event_index, cl.cells[:, 0] * e)))
    assert np.all(np.abs((phi - ref.conditions["phi"] + 180) % 360 - 180) < 1.0)


def test_cell_integral_matches_quadrature():
    from scipy import integrate

    from calobench.baselines.parametric.radial_profile import rectangle_fraction, ring_fraction
    R = 7.0

    def density(y, x):
        return R * R / np.pi / (x * x + y * y + R * R) ** 2

    for x1, x2, y1, y2 in [(0, 3, 0, 5), (-10, 4, 2, 30), (20, 45, -45, -20)]:
        expected = integrate.dblquad(density, x1, x2, y1, y2)[0]
        assert rectangle_fraction(np.float64(x1), x2, y1, y2, R) == pytest.approx(expected, rel=1e-7)
    # the whole plane holds everything, a ring its closed form
    assert rectangle_fraction(-1e7, 1e7, -1e7, 1e7, R) == pytest.approx(1.0, abs=1e-6)
    ring = integrate.quad(lambda r: 2 * r * R * R / (r * r + R * R) ** 2, 5.0, 12.0)[0]
    assert ring_fraction(5.0, 12.0, R) == pytest.approx(ring, rel=1e-9)


@pytest.mark.parametrize("shape", [0.1, 1.0, 30.0])
def test_cell_fluctuation_is_gamma(shape):
    from scipy import stats

    from calobench.baselines.parametric.gflash_shower import fluctuate
    eps = 0.5
    mean = np.full(400_000, shape * eps, dtype=np.float32)
    x = fluctuate(mean, np.float32(eps), np.random.default_rng(1))
    assert x.min() >= 0
    assert x.mean() == pytest.approx(shape * eps, rel=0.01)
    assert x.var() == pytest.approx(eps * shape * eps, rel=0.03)  # variance eps x mean
    # close to the exact Gamma law: Kolmogorov distance small; a law of twice the scale is far
    assert stats.kstest(x[:20000], stats.gamma(shape, scale=eps).cdf).statistic < 0.02
    assert stats.kstest(x[:20000], stats.gamma(shape, scale=2 * eps).cdf).statistic > 0.04


def test_sparse_hit_rate_and_energies_follow_the_small_shape_limit():
    from scipy.special import gammaincc

    from calobench.baselines.parametric.gflash_shower import fluctuate, sparse_tail_quantiles
    eps, threshold, k = 2.0, 0.5, 0.01
    # exact small-shape Gamma draws: fraction above threshold vs k E1(t/eps)
    x = fluctuate(np.full(2_000_000, k * eps, dtype=np.float32), np.float32(eps), np.random.default_rng(2))
    from scipy.special import exp1
    assert (x > threshold).mean() == pytest.approx(k * exp1(threshold / eps), rel=0.05)
    assert gammaincc(k, threshold / eps) == pytest.approx(k * exp1(threshold / eps), rel=0.02)
    # the tabulated hit energies have the same distribution as the Gamma draws above threshold
    q = sparse_tail_quantiles(eps, threshold)
    above = np.sort(x[x > threshold])
    assert q[0] >= threshold
    assert np.median(q) == pytest.approx(np.median(above), rel=0.05)
    assert np.quantile(q, 0.9) == pytest.approx(np.quantile(above, 0.9), rel=0.05)


def test_sample_refuses_bad_energies_and_conditions(stcf):
    ref, model = stcf
    cond = {k: v[:2] for k, v in ref.conditions.items()}
    for bad in ([1000.0, np.nan], [1000.0, -5.0], [1000.0, 0.0]):
        with pytest.raises(CalobenchError, match="finite and positive"):
            model.sample(np.array(bad), cond)
    with pytest.raises(CalobenchError, match="has 3 values for 2 energies"):
        model.sample(np.array([1000.0, 500.0]), {k: v[:3] for k, v in ref.conditions.items()})
