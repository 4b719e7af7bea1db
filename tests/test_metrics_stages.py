"""The stage contract: states filled on disjoint chunks and merged give the numbers of one pass;
evaluate() runs the stages without writing files; features and binning ask the Geometry."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import calobench
from calobench.api import compare
from calobench.data.geometry import make_grid
from calobench.datasets import get_geometry
from calobench.data.showerset import ShowerSet
from calobench.metrics import ClassifierOptions, EvaluationOptions, evaluate, feature_extractor, parse_stages
from calobench.metrics import binning
from calobench.metrics.average import AverageShowerStage
from calobench.metrics.classifiers import HighLevelDNNStage, LowLevelDNNStage, XGBStage
from calobench.metrics.fpd import FPDStage
from calobench.metrics.histograms import HistogramStage, spectrum_edges
from calobench.metrics.prdc import PRDCStage
from calobench.metrics.resolution import ResolutionStage, energy_bins
from calobench.metrics.classifier_tests import v2_low_level
from calobench.metrics.stage import GENERATED, REFERENCE, Chunk


def _sample(name: str, n: int, seed: int, scale: float = 1.0) -> ShowerSet:
    g = get_geometry(name)
    rng = np.random.default_rng(seed)
    e = 10 ** rng.uniform(2.5, 3.5, n)
    r2 = g.centres[:, 0] ** 2 + g.centres[:, 1] ** 2
    prof = np.exp(-r2 / (2 * 40.0 ** 2))
    prof /= prof.sum()
    response = 0.9 * scale * rng.normal(1.0, 0.1 / np.sqrt(e / 1e3) + 0.01)  # a stochastic and a constant term
    x = e[:, None] * prof[None, :] * rng.gamma(5, 0.2, size=(n, g.n_cells)) * response[:, None]
    return ShowerSet(g, e, x.astype(np.float32))


def _chunks(ss: ShowerSet, sample: int, fx, size: int) -> list[Chunk]:
    return [Chunk(sample, start, ss.slice(start, start + size), fx, ss) for start in range(0, len(ss), size)]


def test_merged_states_equal_one_pass():
    gen, ref = _sample("stcf11x11", 300, 1, 1.05), _sample("stcf11x11", 320, 2)
    fx = feature_extractor(gen.geometry)
    chunks = _chunks(gen, GENERATED, fx, 70) + _chunks(ref, REFERENCE, fx, 70)
    cls = ClassifierOptions(min_steps=20, max_steps=30, hidden=8, repeats=1, xgb_estimators=10, block_events=100)
    make = {
        "average": lambda: AverageShowerStage(gen.geometry.n_cells),
        "hist": lambda: HistogramStage(fx, spectrum_edges(fx, ref.iter_chunks(70)), replicas=4, seed=1),
        "resolution": lambda: ResolutionStage(energy_bins(ref.energies), fx.index["etot_einc"]),
        "fpd": lambda: FPDStage(seed=1, min_samples=100, max_samples=200, kpd_batch_size=100),
        "prdc": lambda: PRDCStage(seed=1, max_events=150),
        "cls-high": lambda: HighLevelDNNStage(fx, cls, seed=1),
        "cls-xgb": lambda: XGBStage(fx, cls, seed=1),
        "cls-low": lambda: LowLevelDNNStage(fx, cls, seed=1),
    }
    for name, new in make.items():
        whole = new()
        for chunk in chunks:
            whole.update(chunk)
        odd, even = new(), new()
        for k, chunk in enumerate(chunks):  # disjoint chunks, interleaved, merged in the other order
            (odd if k % 2 else even).update(chunk)
        merged = odd.merge(even)
        a, b = whole.compute(), merged.compute()
        assert a.metrics.keys() == b.metrics.keys(), name
        # integer counts, or rows put back in event order: bit for bit
        assert json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True), name
        for sample in a.averages:  # float sums added in another order
            np.testing.assert_allclose(b.averages[sample], a.averages[sample], rtol=1e-12)
        assert name in a.info["stages"] and "holds" in a.info["stages"][name]


def test_evaluate_writes_nothing_and_equals_compare(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gen, ref = _sample("darkshine", 200, 3, 1.1), _sample("darkshine", 200, 4)
    options = EvaluationOptions(stages=parse_stages("hist,resolution,fpd"), seed=2, replicas=4,
                                fpd_min_samples=50, kpd_batch_size=50)
    result = evaluate(gen, ref, options)
    assert list(tmp_path.iterdir()) == []
    again = compare(gen, ref, metrics="hist,resolution,fpd", seed=2, replicas=4, fpd_min_samples=50,
                    kpd_batch_size=50, progress=False)
    assert json.dumps(result.metrics, sort_keys=True) == json.dumps(again.metrics, sort_keys=True)
    assert {"geometry", "events", "stages", "seed", "repeats", "chunk_size", "features", "hlf", "conditions",
            "notes", "resolution_bins_MeV"} <= set(result.info)
    assert {"features", "hist", "resolution", "fpd"} <= set(result.info["stages"])
    assert all({"seconds", "holds"} <= set(v) for v in result.info["stages"].values())
    assert {"sep_mean", "fpd", "kpd", "resolution_a_diff"} <= set(result.metrics)


def test_parse_stages_order_and_aliases():
    assert parse_stages(None) == parse_stages("all")
    assert parse_stages(["xgb", "hist", "kpd"]) == ("hist", "fpd", "cls-xgb")


def test_features_and_binning_ask_the_geometry():
    crystals = make_grid("c", "", 1, 7, 7, (20.0, 20.0, 100.0), threshold=1.0, materials="", zernike_radius=60.0)
    plain = make_grid("p", "", 1, 7, 7, (20.0, 20.0, 100.0), threshold=1.0, materials="")
    assert crystals.crystal_image and not plain.crystal_image
    assert "zernike_a20" in feature_extractor(crystals).names and "e7x7" in feature_extractor(crystals).names
    assert not any(n.startswith("zernike") for n in feature_extractor(plain).names)
    with pytest.raises(ValueError, match="crystal image"):
        make_grid("bad", "", 2, 7, 7, (20.0, 20.0, 100.0), threshold=1.0, materials="", zernike_radius=60.0)
    ds1 = get_geometry("calochallenge-1-pions")
    assert ds1.histogram_ranges[12]["ec"] == (-500.0, 500.0) and ds1.histogram_ranges[14]["ec"] == (-100.0, 100.0)
    assert ds1.histogram_ranges[14]["ec_r"] == (0.0, 1500.0)
    np.testing.assert_array_equal(binning.challenge_edges(ds1, "width_eta_13", 1.0), np.linspace(0, 400, 101))
    assert binning.challenge_edges(get_geometry("darkshine"), "etot_einc", 1.0) is None


def test_import_calobench_does_not_load_the_metrics():
    code = "import sys, calobench; sys.exit(any(m.startswith(('sklearn', 'calobench.metrics')) for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("dataset", ["stcf11x11", "calochallenge-2", "cepc"])
def test_low_level_inputs_read_in_pieces_equal_one_read(dataset, monkeypatch):
    """cls-low reads its inputs piece by piece (bounded float64 temporaries): every row, and
    every even / odd row of the floor's halves, is what one read of the block gives."""
    import calobench.metrics.classifiers as classifiers

    ss = calobench.load(dataset).slice(0, 61)
    fx = feature_extractor(ss.geometry)
    stage = LowLevelDNNStage(fx, ClassifierOptions(), seed=0)
    whole = [stage._source(ss, 61), stage._source(ss, 61, 0), stage._source(ss, 61, 1)]
    expected = [s.read(0, s.n) for s in whole]
    # one whole read against the plain transform of the slice, a known answer
    n_cells = fx.low_dim - 1 - len(fx.condition_names)
    np.testing.assert_array_equal(expected[0], v2_low_level(fx.low_level(ss), n_cells))
    np.testing.assert_array_equal(expected[1], expected[0][0::2])
    np.testing.assert_array_equal(expected[2], expected[0][1::2])
    monkeypatch.setattr(classifiers, "LOW_LEVEL_PIECE_BYTES", 8 * fx.low_dim * 6)  # 6 events per piece
    pieces = [stage._source(ss, 61), stage._source(ss, 61, 0), stage._source(ss, 61, 1)]
    for source, want in zip(pieces, expected):
        np.testing.assert_array_equal(source.read(0, source.n), want)
        np.testing.assert_array_equal(source.read(3, 17), want[3:17])
