"""Known-answer tests of the metrics: distances, FPD, features of hand-built showers,
resolution fit, reproducibility and streaming."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.data.geometry import read_binning
from calobench.datasets import get_geometry
from calobench.datasets.calochallenge import binning_file
from calobench.metrics.distances import chi2_ndf, jensen_shannon, separation_power, wasserstein1
from calobench.metrics.features import feature_extractor
from calobench.metrics.fpd import fpd, frechet_distance, kpd
from calobench.metrics.histograms import HistogramState, poisson_weights
from calobench.metrics.prdc import prdc
from calobench.metrics.resolution import ResponseState, fit_resolution
from calobench.data.showerset import CellList, ShowerSet


def test_separation_power_identical_and_disjoint():
    h = np.array([1.0, 5.0, 3.0, 0.0])
    assert separation_power(h, 2 * h) == pytest.approx(0.0, abs=1e-15)
    assert separation_power([1, 2, 0, 0], [0, 0, 3, 4]) == pytest.approx(1.0, rel=1e-12)
    assert jensen_shannon(h, h) == pytest.approx(0.0, abs=1e-12)
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert chi2_ndf(h, h) == pytest.approx(0.0)
    edges = np.arange(5.0)
    # moving all the mass by one bin moves it by one unit
    assert wasserstein1([1, 0, 0, 0], [0, 1, 0, 0], edges) == pytest.approx(1.0)
    assert wasserstein1([1, 0, 0, 0], [0, 0, 0, 1], edges) == pytest.approx(3.0)


def test_fpd_matches_analytic_frechet_distance():
    rng = np.random.default_rng(1)
    d = 4
    mu1, mu2 = np.zeros(d), np.array([0.5, -0.2, 0.1, 0.0])
    a = rng.normal(size=(d, d))
    c1, c2 = np.eye(d), a @ a.T / d + 0.5 * np.eye(d)
    x = rng.multivariate_normal(mu1, c1, size=60000)
    y = rng.multivariate_normal(mu2, c2, size=60000)
    s1 = np.linalg.cholesky(c1)
    ev = np.linalg.eigvals(c1 @ c2)
    exact = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.sum(np.sqrt(ev.real)))
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(exact, rel=1e-10)
    value, err = fpd(x, y, min_samples=5000, max_samples=50000, num_batches=5, num_points=5,
                     normalise_features=False, seed=3)
    assert value == pytest.approx(exact, abs=max(5 * err, 0.01))
    assert s1.shape == (d, d)
    same, _ = fpd(x[:30000], x[30000:], min_samples=5000, max_samples=30000, num_batches=5, num_points=5)
    assert same < 0.01 * exact


def test_kpd_and_prdc_floors_and_ceilings():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3))
    far = rng.normal(size=(4000, 3)) + 3.0
    v_same, e_same = kpd(x, y, num_batches=5, batch_size=2000)
    v_far, _ = kpd(x, far, num_batches=5, batch_size=2000)
    assert abs(v_same) < 5 * e_same + 1e-3 and v_far > 100 * abs(v_same)
    same = prdc(x[:2000], y[:2000], k=5)
    assert 0.8 < same["precision"] <= 1 and 0.8 < same["recall"] <= 1 and 0.8 < same["coverage"] <= 1
    assert 0.7 < same["density"] < 1.3
    apart = prdc(x[:2000], far[:2000], k=5)
    assert apart["precision"] < 0.1 and apart["coverage"] < 0.1


def _one(geometry, cell, energy=100.0, e_inc=200.0):
    x = np.zeros((1, geometry.n_cells), dtype=np.float32)
    x[0, cell] = energy
    return ShowerSet(geometry, [e_inc], x)


def test_one_hot_cell_in_crystal_grid():
    g = get_geometry("bes3-11x11")
    fx = feature_extractor(g)
    centre = 5 * 11 + 5
    f = dict(zip(fx.names, fx.compute(_one(g, centre))[0]))
    assert f["etot"] == 100 and f["etot_einc"] == 0.5 and f["n_hit"] == 1
    for k in range(1, 12, 2):
        assert f[f"e{k}x{k}"] == pytest.approx(1.0)
    assert f["ec_x_0"] == pytest.approx(0) and f["width_x_0"] == 0 and f["second_moment"] == pytest.approx(0)
    assert f["sparsity_0"] == pytest.approx(1 - 1 / 121)
    assert f["zernike_a20"] == pytest.approx(1.0) and f["zernike_a42"] == pytest.approx(0.0, abs=1e-12)
    off = dict(zip(fx.names, fx.compute(_one(g, centre + 2))[0]))  # two crystals to the right
    assert off["ec_x_0"] == pytest.approx(104.0) and off["e1x1"] == 0 and off["e5x5"] == pytest.approx(1.0)


def test_symmetric_ring_in_crystal_grid():
    g = get_geometry("bes3-11x11")
    fx = feature_extractor(g)
    x = np.zeros((1, 121), dtype=np.float32)
    c = 5 * 11 + 5
    x[0, [c - 1, c + 1, c - 11, c + 11]] = 25.0
    f = dict(zip(fx.names, fx.compute(ShowerSet(g, [100.0], x))[0]))
    pitch = 52.0
    rho = pitch / 150.0
    assert f["ec_x_0"] == pytest.approx(0, abs=1e-9) and f["ec_y_0"] == pytest.approx(0, abs=1e-9)
    assert f["e1x1"] == 0 and f["e3x3"] == pytest.approx(1.0)
    assert f["width_x_0"] == pytest.approx(pitch / np.sqrt(2))
    assert f["second_moment"] == pytest.approx(pitch ** 2)
    assert f["lateral_moment"] == pytest.approx(0.5)
    assert f["zernike_a20"] == pytest.approx(abs(2 * rho ** 2 - 1))
    assert f["zernike_a42"] == pytest.approx(0.0, abs=1e-9)


def test_one_hot_cell_cylindrical_matches_binning():
    g = get_geometry("calochallenge-2")
    fx = feature_extractor(g)
    b = g.layers[3]
    start = g.layer_slices[3].start
    ia, ir = 5, 2
    f = dict(zip(fx.names, fx.compute(_one(g, start + ia * b.n_r + ir))[0]))
    r = b.r_centres[ir]
    alpha = -np.pi + (ia + 0.5) * 2 * np.pi / b.n_alpha
    assert f["ec_r_3"] == pytest.approx(r) and f["width_r_3"] == 0
    assert f["ec_eta_3"] == pytest.approx(r * np.cos(alpha)) and f["ec_phi_3"] == pytest.approx(r * np.sin(alpha))
    assert f["e_layer_3"] == 100 and f["e_layer_4"] == 0 and f["sparsity_3"] == pytest.approx(1 - 1 / 144)
    assert f["ec_r_4"] == 0  # empty layer: the challenge's 0 / (0 + 1e-16)


def test_point_cloud_barycenter():
    g = get_geometry("cepc")
    cells = np.array([[1800.0, 0, 10, 2.0], [1810.0, 0, -10, 2.0], [1820.0, 5, 0, 4.0]], dtype=np.float32)
    ss = ShowerSet(g, [1000.0], CellList(cells, np.array([0, 3])))
    fx = feature_extractor(g)
    f = dict(zip(fx.names, fx.compute(ss)[0]))
    assert f["etot"] == pytest.approx(8.0) and f["n_hit"] == 3 and f["etot_einc"] == pytest.approx(0.008)
    assert f["bary_x"] == pytest.approx((1800 * 2 + 1810 * 2 + 1820 * 4) / 8)
    assert f["bary_y"] == pytest.approx(2.5) and f["bary_z"] == pytest.approx(0.0, abs=1e-9)
    assert fx.low_level(ss).shape == (1, fx.low_dim)


def _challenge_features_by_loops(xml: str, showers: np.ndarray, threshold: float) -> dict:
    """The challenge's definitions written out layer by layer from the XML (independent check)."""
    _, _, layers = read_binning(binning_file(xml))
    x = np.where(showers < threshold, 0.0, showers).astype(np.float64)
    out, start = {}, 0
    for b in layers:
        n = b.n_cells
        e = x[:, start:start + n]
        r_mid = [(b.r_edges[i] + b.r_edges[i + 1]) / 2 for i in range(b.n_r)]
        a_mid = [-np.pi + (j + 0.5) * 2 * np.pi / b.n_alpha for j in range(b.n_alpha)]
        r = np.array([r_mid[i] for j in range(b.n_alpha) for i in range(b.n_r)])
        a = np.array([a_mid[j] for j in range(b.n_alpha) for i in range(b.n_r)])
        eta, phi = r * np.cos(a), r * np.sin(a)
        tot = e.sum(1) + 1e-16
        out[f"e_layer_{b.layer_id}"] = e.sum(1)
        out[f"sparsity_{b.layer_id}"] = 1 - (e > 0).mean(1)
        ecr = (r * e).sum(1) / tot
        out[f"ec_r_{b.layer_id}"] = ecr
        out[f"width_r_{b.layer_id}"] = np.sqrt(np.clip((r * r * e).sum(1) / tot - ecr ** 2, 0, None))
        if b.n_alpha > 1:
            ec = (eta * e).sum(1) / tot
            out[f"ec_eta_{b.layer_id}"] = ec
            out[f"width_eta_{b.layer_id}"] = np.sqrt(np.clip((eta * eta * e).sum(1) / tot - ec ** 2, 0, None))
            ecp = (phi * e).sum(1) / tot
            out[f"ec_phi_{b.layer_id}"] = ecp
        start += n
    return out


@pytest.mark.parametrize("name,xml", [("calochallenge-1-pions", "binning_dataset_1_pions.xml"),
                                      ("calochallenge-2", "binning_dataset_2.xml")])
def test_cylindrical_features_equal_challenge_definitions(name, xml):
    g = get_geometry(name)
    rng = np.random.default_rng(5)
    showers = (rng.exponential(2.0, size=(50, g.n_cells)) * (rng.random((50, g.n_cells)) < 0.3)).astype(np.float32)
    fx = feature_extractor(g)
    table = fx.compute(ShowerSet(g, np.full(50, 1000.0), showers))
    expected = _challenge_features_by_loops(xml, showers, g.threshold)
    for key, values in expected.items():
        np.testing.assert_allclose(table[:, fx.index[key]], values, rtol=1e-9, atol=1e-9, err_msg=key)
    hlf = fx.hlf(table, np.full(50, 1000.0))
    assert hlf.shape[1] == len(fx.hlf_names)
    alpha_layers = sum(1 for b in g.layers if b.n_alpha > 1)
    assert hlf.shape[1] == 1 + 2 * len(g.layers) + 4 * alpha_layers + 1 + 2 * len(g.layers)


def test_resolution_fit_recovers_injected_terms():
    rng = np.random.default_rng(7)
    a, b = 0.10, 0.01
    energies = np.repeat([1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5], 20000).astype(float)
    sigma = np.sqrt((a / np.sqrt(energies / 1e3)) ** 2 + b ** 2)
    ratio = 0.95 * (1 + sigma * rng.normal(size=len(energies)))
    state = ResponseState(np.array([500, 1500, 3000, 7000, 15000, 30000, 70000, 2e5]))
    for lo in range(0, len(energies), 30000):  # streamed and merged
        part = ResponseState(state.edges)
        part.update(energies[lo:lo + 30000], ratio[lo:lo + 30000])
        state.merge(part)
    r = state.compute()
    fit = fit_resolution(r["energy"], r["rel"], r["rel_err"], with_noise=False)
    assert fit["a"] == pytest.approx(a, abs=3 * fit["a_err"] + 0.002)
    assert fit["b"] == pytest.approx(b, abs=3 * fit["b_err"] + 0.001)
    np.testing.assert_allclose(r["mean"], 0.95, atol=0.002)


def test_histogram_state_streams_and_merges():
    rng = np.random.default_rng(3)
    v = rng.normal(size=10000)
    edges = np.linspace(-3, 3, 31)
    whole = HistogramState(edges, 10)
    whole.update_events(v, poisson_weights(1, 0, 0, 10000, 10))
    parts = [HistogramState(edges, 10) for _ in range(3)]
    bounds = [0, 1234, 7000, 10000]
    for p, lo, hi in zip(parts, bounds[:-1], bounds[1:]):
        p.update_events(v[lo:hi], poisson_weights(1, 0, lo, hi, 10), first_event=lo)
    merged = parts[0].merge(parts[1]).merge(parts[2])
    np.testing.assert_allclose(merged.counts, whole.counts)
    np.testing.assert_array_equal(whole.nominal, np.histogram(v, edges)[0])


def test_fpd_extrapolation_is_not_stuck_at_the_fit_start():
    """Distances far from 1 must still be fitted (curve_fit's default start is (1, 1))."""
    rng = np.random.default_rng(5)
    a = rng.normal(0.0, 1.0, (3000, 3))
    value, _ = fpd(a, rng.normal(10.0, 1.0, (3000, 3)), min_samples=500, max_samples=3000,
                   normalise_features=False)
    assert value == pytest.approx(300.0, rel=0.05)


def test_fpd_of_samples_smaller_than_min_samples_is_finite():
    """With one batch size there is nothing to extrapolate: the mean over batches is reported."""
    rng = np.random.default_rng(6)
    value, error = fpd(rng.normal(0.0, 1.0, (200, 3)), rng.normal(3.0, 1.0, (200, 3)),
                       min_samples=200, max_samples=200, normalise_features=False)
    assert np.isfinite(value) and np.isfinite(error)
    assert value == pytest.approx(27.0, rel=0.15)


def test_point_cloud_low_level_classifier_sees_the_cells():
    """cepc cells carry ~1e-5 of E_inc per pad: the low-level inputs are standardised, so a
    clearly different cloud (cell energies x 3) is separated, and the same cloud is not."""
    import calobench
    from calobench.data.showerset import CellList, ShowerSet

    ref = calobench.load("cepc").slice(0, 200)
    cells = ref.showers.cells.copy()
    cells[:, 3] *= 3.0
    scaled = ShowerSet(ref.geometry, ref.energies, CellList(cells, ref.showers.offsets), ref.conditions)
    options = dict(metrics=["cls-low"], repeats=1, seed=1, progress=False, cls_epochs=15, cls_hidden=64,
                   cls_batch_size=50, cls_lr=1e-3)
    assert calobench.compare(scaled, ref, **options).metrics["auc_low"]["value"] > 0.9
    same = calobench.compare(ref, ref, **options).metrics["auc_low"]["value"]
    assert abs(same - 0.5) < 0.15


def test_fpd_stage_without_floors_gives_the_same_distances():
    import calobench
    from calobench.datasets.registry import load_reference

    ref = load_reference("stcf11x11", embedded=True)
    first, second = ref.take(np.arange(300)), ref.take(np.arange(300, 700))
    opts = {"metrics": "fpd", "fpd_min_samples": 100, "kpd_batch_size": 100, "progress": False, "seed": 1}
    with_floors = calobench.compare(first, second, dataset="stcf11x11", **opts).metrics
    without = calobench.compare(first, second, dataset="stcf11x11", fpd_floors=False, **opts).metrics
    assert with_floors["fpd"]["floor"] > 0 and with_floors["kpd"]["floor"] is not None
    assert without["fpd"].get("floor") is None and without["kpd"].get("floor") is None
    for key in ("fpd", "kpd"):
        assert without[key]["value"] == with_floors[key]["value"] and without[key]["std"] == with_floors[key]["std"]
