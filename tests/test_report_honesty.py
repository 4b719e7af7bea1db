"""The report shows mismodelling: ranges cover both samples, no empty panels, axes with units."""

from __future__ import annotations

import re

import numpy as np
import pytest

import calobench
from calobench.selftest.distortions import energy_scale
from calobench.metrics.features.labels import axis_label, feature_label
from calobench.metrics.display import display_histograms


@pytest.fixture(scope="module")
def shifted_result(tmp_path_factory):
    ref = calobench.load("stcf11x11")
    a, b = ref.slice(0, 1500), ref.slice(1500, 3000)
    gen = energy_scale(1.05)(a, np.random.default_rng(0))
    out = tmp_path_factory.mktemp("report")
    result = calobench.compare(gen, b, dataset="stcf11x11", metrics=["hist"], progress=False, report_dir=out)
    return result, (out / "report.html").read_text()


def test_a_five_percent_scale_is_a_shifted_peak_not_an_edge_spike(shifted_result):
    result, _ = shifted_result
    shown = result.histograms["etot_einc"]["display"]
    gen, ref = shown["generated"], shown["reference"]
    assert shown["generated_overflow"] < 0.005 * gen.sum()  # nearly everything inside the range
    centres = 0.5 * (shown["edges"][1:] + shown["edges"][:-1])
    peak_gen, peak_ref = centres[np.argmax(gen)], centres[np.argmax(ref)]
    assert peak_gen / peak_ref == pytest.approx(1.05, abs=0.02)
    assert np.argmax(gen) < len(gen) - 1  # the peak is not the last bin
    # the metric's own histogram (the challenge's convention, reference quantiles) is unchanged
    assert result.histograms["etot_einc"]["edges"][-1] < shown["edges"][-1]


def test_constant_features_get_no_panel(shifted_result):
    result, page = shifted_result
    assert result.histograms["e11x11"]["display"] is None  # the whole 11x11 image: always 1
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", page)
    assert "e11x11" not in captions and "etot_einc" in captions


def test_display_histogram_counts_outside_entries():
    gen = np.concatenate([np.linspace(0, 1, 1000), [50.0]])
    ref = np.linspace(0, 1, 1000)
    shown = display_histograms(gen, ref, bins=10)
    assert shown["generated"].sum() + shown["generated_overflow"] + shown["generated_underflow"] == len(gen)
    assert shown["generated_overflow"] == 1
    assert display_histograms(np.ones(5), np.ones(5)) is None
    spread = display_histograms(np.geomspace(1, 1e5, 1000), np.geomspace(1, 1e5, 1000))
    assert spread["log_x"]


def test_labels_have_units():
    assert axis_label("etot") == "total deposited energy E_tot [MeV]"
    assert feature_label("width_x_3") == ("shower width in x, layer 3", "mm")
    assert feature_label("e5x5")[1] == ""
    assert feature_label("some_new_feature") == ("some_new_feature", "")
    for name in ("ec_eta_12", "sparsity_0", "profile_radial", "bary_phi", "e_layer_44"):
        assert feature_label(name)[0] != name


def test_unconstrained_resolution_fits_are_marked():
    from calobench.metrics.resolution import unreliable_fit

    assert unreliable_fit({"value": 2.62e-10, "std": 1.095e7}, "b").startswith("fit uncertainty")
    assert unreliable_fit({"value": float("nan"), "std": float("nan")}, "a") == "fit did not converge"
    assert unreliable_fit({"value": 0.02, "std": 0.001}, "a") == ""
    assert unreliable_fit({"value": 0.0, "std": 0.0}, "c") == ""
    assert "bound 0" in unreliable_fit({"value": 3.7e-12, "std": 0.0}, "c")  # at the bound: no uncertainty


def test_per_energy_views_bin_by_incident_energy():
    from calobench.metrics.display import per_energy_histograms

    rng = np.random.default_rng(0)
    e = rng.uniform(100, 3000, 6000)
    ref = np.stack([e, rng.normal(0.95, 0.02, 6000)], axis=1)
    gen = np.stack([e, rng.normal(0.95, 0.02, 6000) * np.where(e > 2500, 1.05, 1.0)], axis=1)
    views = per_energy_histograms(gen, ref, bins=6)
    assert len(views) == 6
    assert views[0]["range_MeV"][0] == pytest.approx(e.min()) and views[-1]["range_MeV"][1] == pytest.approx(e.max())
    total = sum(v["histograms"]["reference"].sum() + v["histograms"]["reference_underflow"]
                + v["histograms"]["reference_overflow"] for v in views)
    assert total == 6000

    def peak(view, label):
        h = view["histograms"]
        return 0.5 * (h["edges"][1:] + h["edges"][:-1])[np.argmax(h[label])]

    assert peak(views[-1], "generated") / peak(views[-1], "reference") > 1.03  # the distorted top bin shows
    assert peak(views[0], "generated") / peak(views[0], "reference") == pytest.approx(1.0, abs=0.02)
    assert per_energy_histograms(gen, np.stack([np.full(10, 500.0), np.ones(10)], axis=1)) == []


def test_shower_shapes_are_drawn_in_bins_of_incident_energy(shifted_result):
    result, page = shifted_result
    shapes = result.response["per_energy_shapes"]
    assert "second_moment" in shapes and len(shapes["second_moment"]) == 6
    assert "second_moment in bins of incident energy" in page
