"""A detector added in one module (tests/toy_detector.py): files, compare and a model work on it."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import calobench
from calobench.baselines.parametric.mean_shower import MeanShower
from calobench.datasets import dataset_names, get_dataset, get_geometry, unregister


@pytest.fixture(scope="module")
def toy():
    """The toy detector module, registered for the tests of this file only."""
    import toy_detector  # registers toy5x5 on import

    yield toy_detector
    unregister(toy_detector.TOY.name)


def test_registered_like_a_builtin(toy):
    assert "toy5x5" in dataset_names() and get_dataset("toy5x5") is toy.TOY
    assert get_geometry("toy5x5").n_cells == 25
    assert get_dataset("toy5x5").summary()["cells"] == 25
    with pytest.raises(calobench.CalobenchError, match="already registered"):
        calobench.datasets.register(toy.TOY)


def test_save_and_load(toy, tmp_path):
    showers = toy.synthetic_showers(40, seed=1)
    path = calobench.save(showers, tmp_path / "toy.h5")
    for loaded in (calobench.load(path), calobench.load(path, "toy5x5")):
        assert loaded.geometry is toy.GEOMETRY and loaded.dataset == "toy5x5"
        assert loaded.showers.tobytes() == showers.showers.tobytes()
        assert np.array_equal(loaded.conditions["particle"], showers.conditions["particle"])
    # a plain CaloChallenge-layout file: the geometry is inferred from its 25 cells
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("incident_energies", data=showers.energies[:, None])
        f.create_dataset("showers", data=showers.showers)
    inferred = calobench.load(plain)
    assert inferred.geometry is toy.GEOMETRY and inferred.source.geometry_source == "inferred"
    with pytest.raises(calobench.CalobenchError, match="expected stcf11x11 for dataset stcf11x11"):
        calobench.load(path, "stcf11x11")


def test_compare_two_samples(toy):
    result = calobench.compare(toy.synthetic_showers(300, seed=2), toy.synthetic_showers(300, seed=3),
                               repeats=1, cls_epochs=2, replicas=4, cls_hidden=32, xgb_estimators=20,
                               fpd_min_samples=100, kpd_batch_size=50, seed=3, progress=False)
    assert result.metrics and all(np.isfinite(m["value"]) for m in result.metrics.values()
                                  if m["value"] is not None)
    assert 0.3 < result.metrics["auc_high"]["value"] < 0.7  # two samples of one law


def test_mean_shower_trains_and_samples(toy, tmp_path):
    train = toy.synthetic_showers(200, seed=4)
    model = MeanShower("toy5x5", "tiny")
    assert "toy5x5" in MeanShower.supported_datasets()
    model.fit(train)
    energies = np.array([150.0, 500.0, 900.0])
    out = model.sample(energies, {"particle": np.full(3, 22.0)})
    assert out.geometry is toy.GEOMETRY and out.showers.shape == (3, 25)
    assert np.allclose(out.total_energy() / energies, 0.95, atol=0.05)
    again = MeanShower.load(model.save(tmp_path / "model"))
    assert np.array_equal(again.sample(energies).showers, out.showers)
