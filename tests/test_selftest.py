"""calobench selftest: the known distortions, the detection rule and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import calobench
from calobench.errors import CalobenchError
from calobench.selftest import DISTORTIONS, detects, distort, parse_distortions, run_selftest
from calobench.selftest.distortions import transverse_second_moment
from tests.conftest import assert_user_error


@pytest.fixture(scope="module")
def samples():
    """Small in-memory slices of embedded references: one layer, many layers, cylinder, point cloud."""
    return {name: calobench.load(name).slice(0, 200) for name in ("stcf11x11", "darkshine", "calochallenge-2", "cepc")}


def rng():
    return np.random.default_rng(0)


def test_every_distortion_runs_or_is_na(samples):
    for name in DISTORTIONS:
        for dataset, ss in samples.items():
            out = distort(name, ss, rng())
            if out is None:
                continue
            assert len(out) == len(ss) and out.geometry is ss.geometry
            np.testing.assert_array_equal(out.energies, ss.energies)
            if ss.geometry.is_voxel:
                assert out.showers.shape == ss.showers.shape and np.all(out.showers >= 0), (name, dataset)


@pytest.mark.parametrize("dataset", ["stcf11x11", "darkshine", "cepc"])
def test_scale_multiplies_total_energy(samples, dataset):
    ss = samples[dataset]
    out = distort("scale_1.05", ss, rng())
    # the threshold may remove a few cells that fell below it; none here, since scaling up keeps them
    np.testing.assert_allclose(out.total_energy(), 1.05 * ss.total_energy(), rtol=1e-5)


@pytest.mark.parametrize("dataset", ["stcf11x11", "darkshine", "cepc"])
def test_threshold_x2_leaves_no_low_cell(samples, dataset):
    ss = samples[dataset]
    out = distort("threshold_x2", ss, rng())
    thr = 2 * ss.geometry.threshold
    e = out.showers[out.showers > 0] if ss.geometry.is_voxel else out.showers.cells[:, 3]
    assert e.min() >= thr
    assert out.total_energy().sum() < ss.total_energy().sum()


def test_one_layer_geometries_have_no_longitudinal_distortions(samples):
    for name in ("longitudinal", "shuffled_layers"):
        assert distort(name, samples["stcf11x11"], rng()) is None
        assert distort(name, samples["cepc"], rng()) is None
    assert distort("mean_shower", samples["cepc"], rng()) is None


def test_shuffled_layers_keep_layer_distributions_and_break_correlation(samples):
    ss = samples["darkshine"]
    out = distort("shuffled_layers", ss, rng())
    slices = ss.geometry.layer_slices
    before = np.stack([ss.showers[:, s].sum(axis=1) for s in slices], axis=1)
    after = np.stack([out.showers[:, s].sum(axis=1) for s in slices], axis=1)
    # per layer the same energies (a permutation of the events)
    np.testing.assert_allclose(np.sort(after, axis=0), np.sort(before, axis=0), rtol=1e-6)
    # the correlation of neighbouring layer fractions E_layer / E_inc (physical showers: strong) is lost
    fb, fa = before / ss.energies[:, None], after / ss.energies[:, None]
    c_before = np.corrcoef(fb[:, 4], fb[:, 5])[0, 1]
    c_after = np.corrcoef(fa[:, 4], fa[:, 5])[0, 1]
    assert c_before > 0.6 and abs(c_after) < 0.4, (c_before, c_after)


@pytest.mark.parametrize("dataset", ["stcf11x11", "darkshine"])
def test_width_grows_second_moment_by_5_percent(samples, dataset):
    ss = samples[dataset]
    out = distort("width_5pct", ss, rng())
    # layers with enough energy, away from the threshold and the grid edge
    e = np.stack([ss.showers[:, s].sum(axis=1) for s in ss.geometry.layer_slices], axis=1)
    m0, m1 = transverse_second_moment(ss), transverse_second_moment(out)
    use = (e > 50 * ss.geometry.threshold) & (m0 > 0)
    ratio = np.median(m1[use] / m0[use])
    assert 1.03 < ratio < 1.06, ratio
    assert out.total_energy().sum() == pytest.approx(ss.total_energy().sum(), rel=0.02)


def test_width_cylinder_and_point_cloud(samples):
    ss = samples["calochallenge-2"]
    out = distort("width_5pct", ss, rng())
    g = ss.geometry
    r2 = g.centres[:, 0] ** 2 + g.centres[:, 1] ** 2
    before = (ss.showers @ r2).sum() / ss.showers.sum()
    after = (out.showers @ r2).sum() / out.showers.sum()
    assert 1.02 < after / before < 1.08
    cloud = samples["cepc"]
    out = distort("width_5pct", cloud, rng())
    z0, z1 = cloud.showers.cells[:, 2], out.showers.cells[:, 2]
    np.testing.assert_array_equal(out.showers.cells[:, 3], cloud.showers.cells[:, 3])
    assert np.std(z1) > np.std(z0)


def test_longitudinal_moves_energy_deeper(samples):
    ss = samples["darkshine"]
    out = distort("longitudinal", ss, rng())
    depth = ss.geometry.centres[:, 2]
    mean_depth = lambda s: (s.showers @ depth).sum() / s.showers.sum()  # noqa: E731
    assert mean_depth(out) > mean_depth(ss) + 0.05 * ss.geometry.sizes[0, 2]


def test_mean_shower_keeps_totals_and_removes_fluctuations(samples):
    ss = samples["stcf11x11"]
    out = distort("mean_shower", ss, rng())
    np.testing.assert_allclose(out.total_energy(), ss.total_energy(), rtol=0.05)
    shape = out.showers / out.showers.sum(axis=1, keepdims=True)
    assert shape.std(axis=0).sum() < (ss.showers / ss.showers.sum(axis=1, keepdims=True)).std(axis=0).sum()


def test_energy_response_is_energy_dependent(samples):
    ss = samples["stcf11x11"]
    out = distort("energy_response", ss, rng())
    ratio = out.total_energy() / ss.total_energy()
    low, high = ss.energies < np.median(ss.energies), ss.energies > np.median(ss.energies)
    assert ratio[high].mean() > 1.0 > ratio[low].mean()


def test_parse_distortions():
    assert parse_distortions(None) == list(DISTORTIONS)
    assert parse_distortions("scale_1.05, threshold_x2") == ["scale_1.05", "threshold_x2"]
    with pytest.raises(CalobenchError, match="unknown distortion"):
        parse_distortions("scale_2")


def test_detection_rule():
    floor = {"value": 0.01, "std": 0.005}
    assert detects("sep_etot_einc", {"value": 0.05, "std": 0.01}, floor)
    assert not detects("sep_etot_einc", {"value": 0.02, "std": 0.01}, floor)
    # AUC: the distance from 0.5 counts (0.45 and 0.55 are equally far)
    assert detects("auc_high", {"value": 0.40, "std": 0.01}, {"value": 0.5, "std": 0.01})
    assert not detects("auc_high", {"value": 0.49, "std": 0.01}, {"value": 0.51, "std": 0.01})
    assert detects("fpd", {"value": float("nan"), "std": 0.0}, floor) is None


def test_power_on_a_few_hundred_events():
    table = run_selftest("stcf11x11", events=400, distortions="scale_1.05,longitudinal", metrics="hist",
                         quick=True, progress=False)
    assert table.cases["none"] is not None and table.detected["longitudinal"] is None
    assert table.detected["scale_1.05"]["sep_etot_einc"] is True
    assert "sep_etot_einc" in table.metrics
    # the undistorted sample against itself as a case: not detected
    assert detects("sep_etot_einc", table.cases["none"]["sep_etot_einc"], table.cases["none"]["sep_etot_einc"]) is False
    md = table.markdown()
    assert "| `sep_etot_einc` |" in md and table.benchmark_version in md and "n/a" in md


def test_undistorted_not_detected_by_a_second_sample():
    """Two disjoint undistorted samples (seeds 0 and 1) do not differ in sep_etot_einc."""
    a = run_selftest("stcf11x11", events=400, distortions="scale_1.01", metrics="hist", quick=True, progress=False,
                     seed=0)
    b = run_selftest("stcf11x11", events=400, distortions="scale_1.01", metrics="hist", quick=True, progress=False,
                     seed=1)
    assert detects("sep_etot_einc", a.cases["none"]["sep_etot_einc"], b.cases["none"]["sep_etot_einc"]) is False


def test_errors():
    with pytest.raises(CalobenchError, match="no embedded reference"):
        run_selftest("calochallenge-1-photons", quick=True, progress=False)
    with pytest.raises(CalobenchError, match="--events"):
        run_selftest("stcf11x11", events=10**6, quick=True, progress=False)


def test_cli(cli, tmp_path):
    out = cli("selftest", "--dataset", "stcf11x11", "-n", "300", "--metrics", "hist", "--quick", "--quiet",
              "--distortions", "scale_1.05,shuffled_layers", "--json", str(tmp_path / "p.json"),
              "--markdown", str(tmp_path / "p.md"))
    assert out.returncode == 0, out.stderr
    assert "sep_etot_einc" in out.stdout and "scale_1.05" in out.stdout and "n/a" in out.stdout
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["detected"]["shuffled_layers"] is None and data["benchmark_version"].startswith("stcf11x11/")
    assert "| metric |" in (tmp_path / "p.md").read_text()


def test_cli_unknown_distortion(cli):
    assert_user_error(cli("selftest", "--dataset", "stcf11x11", "--distortions", "scale_9"), "scale_9")
    assert_user_error(cli("selftest", "--dataset", "nope"), "nope")


def test_partial_tables_after_each_case():
    seen = []
    run_selftest("stcf11x11", events=200, distortions="scale_1.05,threshold_x2", metrics="hist", quick=True,
                 progress=False, on_case=lambda t: seen.append(list(t.detected)))
    assert seen == [[], ["scale_1.05"], ["scale_1.05", "threshold_x2"]]


def test_table_round_trip_and_no_std_marker():
    table = run_selftest("stcf11x11", events=200, distortions="scale_1.05", metrics="hist,prdc", quick=True,
                         progress=False)
    again = type(table).from_dict(json.loads(json.dumps(table.to_dict())))
    assert again.markdown() == table.markdown()
    assert not table.has_std("precision") and table.has_std("sep_etot_einc")
    assert "| `precision` | yes* |" in table.markdown() or "| `precision` | no* |" in table.markdown()


def test_every_dataset_with_a_reference_has_a_published_power_table_of_this_metrics_version():
    from pathlib import Path

    from calobench.datasets.registry import dataset_names, get_dataset
    from calobench.metrics import METRICS_VERSION

    docs = Path(__file__).resolve().parents[1] / "docs"
    page = (docs / "power-tables.md").read_text()
    with_reference = [name for name in dataset_names() if get_dataset(name).has_embedded]
    assert {"stcf11x11", "bes3-11x11", "darkshine", "cepc", "calochallenge-2", "calochallenge-3"} <= set(with_reference)
    for name in with_reference:
        table = json.loads((docs / "power-tables" / f"{name}.json").read_text())
        assert table["dataset"] == name
        assert table["benchmark_version"].endswith(f"/metrics-v{METRICS_VERSION}"), name
        assert set(table["cases"]) >= set(DISTORTIONS), name
        assert f"\n## {name}\n" in page and f"(power-tables/{name}.json)" in page, name
