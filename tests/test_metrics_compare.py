"""compare() on synthetic Gaussian-profile showers: classifier floors and ceilings,
reproducibility, streaming, JSON output and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calobench.api import compare
from calobench.datasets import get_geometry
from calobench.metrics import feature_extractor
from calobench.metrics.classifier_tests import ClassifierOptions, Source, dnn_test
from calobench.data.showerfile import save
from calobench.data.showerset import ShowerSet


def gaussian_showers(name: str, n: int, seed: int, scale: float = 1.0) -> ShowerSet:
    """Showers with a Gaussian lateral profile (20 mm) and a 2 % event-by-event response."""
    g = get_geometry(name)
    rng = np.random.default_rng(seed)
    e = 10 ** rng.uniform(2.5, 3.5, n)
    c = g.centres
    x0 = rng.normal(0, 5.0, size=(n, 1))
    r2 = (c[None, :, 0] - x0) ** 2 + c[None, :, 1] ** 2
    prof = np.exp(-r2 / (2 * 30.0 ** 2))
    prof /= prof.sum(axis=1, keepdims=True)
    response = 0.9 * rng.normal(1.0, 0.02, size=(n, 1))
    x = e[:, None] * prof * response * rng.gamma(50, 1 / 50, size=prof.shape) * scale
    return ShowerSet(g, e, x.astype(np.float32))


FAST = dict(progress=False, cls_epochs=12, cls_patience=4, cls_hidden=64, cls_lr=2e-3, repeats=1, xgb_estimators=150)


def test_classifier_floor_and_ceiling():
    ref = gaussian_showers("stcf11x11", 3000, 1)
    same = gaussian_showers("stcf11x11", 3000, 2)
    scaled = gaussian_showers("stcf11x11", 3000, 3, scale=1.1)
    r_same = compare(same, ref, metrics="cls-high,cls-xgb", **FAST)
    r_far = compare(scaled, ref, metrics="cls-high,cls-xgb", **FAST)
    for key in ("auc_high", "auc_high_xgb"):
        assert abs(r_same.value(key) - 0.5) < 0.03, (key, r_same.value(key))
        assert r_far.value(key) > 0.9, (key, r_far.value(key))


def test_low_level_classifier_sees_energy_scale():
    ref = gaussian_showers("stcf11x11", 2000, 1)
    scaled = gaussian_showers("stcf11x11", 2000, 3, scale=1.1)
    fx = feature_extractor(ref.geometry)
    src = [Source(len(s), fx.low_dim, (lambda s: lambda a, b: fx.low_level(s.slice(a, b)))(s)) for s in (scaled, ref)]
    out = dnn_test(src[0], src[1], 0, ClassifierOptions(epochs=20, hidden=64, lr=2e-3, block_events=700))
    assert out["auc"] > 0.85


def test_same_seed_same_numbers_and_streaming(tmp_path):
    ref = gaussian_showers("calochallenge-1-photons", 600, 1)
    gen = gaussian_showers("calochallenge-1-photons", 600, 4, scale=1.02)
    opts = dict(metrics="hist,resolution,fpd,prdc,cls-high,cls-xgb", seed=3, **FAST)
    a = compare(gen, ref, **opts)
    b = compare(gen, ref, **opts)
    assert json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True)  # NaN-safe
    # streamed from files in small chunks: the same features and the same distances
    save(gen, tmp_path / "gen.h5")
    save(ref, tmp_path / "ref.h5")
    c = compare(tmp_path / "gen.h5", tmp_path / "ref.h5", chunk_size=77, json_path=tmp_path / "r.json",
                report_dir=tmp_path / "report", **opts)
    for name in a.metrics:
        if name.startswith(("sep_", "chi2_", "js_", "w1_", "fpd", "kpd", "resolution")):
            assert c.metrics[name]["value"] == pytest.approx(a.metrics[name]["value"], rel=1e-6, abs=1e-12), name
    assert c.metrics["sep_etot_einc"]["std"] == pytest.approx(a.metrics["sep_etot_einc"]["std"], rel=1e-6)
    data = json.loads((tmp_path / "r.json").read_text())
    for key in ("auc_high", "auc_high_xgb", "fpd", "kpd", "sep_etot_einc", "chi2_etot_einc", "js_etot_einc",
                "w1_etot_einc", "resolution_a_diff", "sep_e_layer_0", "precision"):
        assert key in data["metrics"] and set(data["metrics"][key]) >= {"value", "std"}
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5


def test_features_streamed_equal_in_memory():
    ss = gaussian_showers("darkshine", 300, 5)
    fx = feature_extractor(ss.geometry)
    whole = fx.compute(ss)
    parts = np.concatenate([fx.compute(c) for c in ss.iter_chunks(41)])
    np.testing.assert_array_equal(whole, parts)
    assert {"ec_x", "ec_y", "ec_z"} <= set(fx.names)


def test_distorted_sample_has_larger_distances_than_floor():
    ref = gaussian_showers("bes3-11x11", 3000, 1)
    far = gaussian_showers("bes3-11x11", 3000, 2, scale=1.1)
    r = compare(far, ref, metrics="hist,resolution", **FAST)
    m = r.metrics["sep_etot_einc"]
    assert m["value"] > 0.2 and m["floor"] < 0.05
    # 0.1 x the response 0.9, plus up to ~0.02 in the lowest-energy bins, where the 1 MeV readout
    # threshold removes more of the reference's outer cells than of the 1.1x brighter sample's
    assert 0.085 < r.metrics["response_max_diff"]["value"] < 0.115
