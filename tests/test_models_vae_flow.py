"""Tests of the conditional VAE (``vae``) and the CaloFlow-style flow (``flow``).

Synthetic training showers: an exponential lateral profile around a random centre, the
deposited energy 0.9 E_inc (3 % spread), so that a trained model must learn E_tot ~ E_inc.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calobench.datasets import PDG, get_dataset
from calobench.errors import CalobenchError
from calobench.baselines.vae_flow.flow import CaloFlow
from calobench.baselines.vae_flow.vae import ConditionalVAE
from calobench.models.common.transforms import apply_threshold, layer_sums
from calobench.data.showerset import ShowerSet


def synthetic(name: str, n: int, seed: int) -> ShowerSet:
    """Simple showers whose energy scales with E_inc (MeV), with the dataset's conditions."""
    ds = get_dataset(name)
    geometry = ds.geometry
    rng = np.random.default_rng(seed)
    lo = ds.energy_range[0]
    energies = np.exp(rng.uniform(np.log(lo), np.log(lo * 30), n))
    centres = geometry.centres
    depth = np.exp(-0.5 * ((np.arange(geometry.n_layers) - geometry.n_layers / 3) / max(geometry.n_layers / 4, 0.5)) ** 2)
    depth /= depth.sum()
    x0, y0 = rng.normal(0, 5, n), rng.normal(0, 5, n)
    showers = np.zeros((n, geometry.n_cells), np.float32)
    deposited = 0.9 * energies * rng.normal(1, 0.03, n)
    for s in geometry.layer_slices:
        d = np.hypot(centres[s, 0][None] - x0[:, None], centres[s, 1][None] - y0[:, None])
        profile = np.exp(-d / 20.0)
        profile /= profile.sum(axis=1, keepdims=True)
        showers[:, s] = profile * depth[geometry.layer_index[s.start]] * deposited[:, None]
    showers[showers < geometry.threshold] = 0.0
    conditions = {c: (rng.choice([PDG[p] for p in ds.particles], n).astype(float) if c == "particle"
                      else rng.normal(0, 1, n)) for c in ds.conditions}
    return ShowerSet(geometry, energies, showers, conditions, ds.particles[0], {}, name)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


CASES = [(ConditionalVAE, "stcf11x11"), (CaloFlow, "stcf11x11")]


@pytest.mark.parametrize("cls,name", CASES, ids=["vae", "flow"])
def test_train_save_load_sample(cls, name, tmp_path):
    train, test = synthetic(name, 384, 0), synthetic(name, 300, 1)
    model = cls(name, "tiny", seed=3)
    history = model.fit(train, test, epochs=5, progress=False)
    records = history["per_epoch"]
    assert history["epochs"] == len(records) == 5 and np.isfinite(records[-1]["valid_loss"])
    assert records[-1]["loss"] < records[0]["loss"]
    out = model.sample(test.energies, test.conditions, batch_size=128)
    assert out.showers.shape == (300, 121) and out.showers.dtype == np.float32
    assert np.all(out.showers >= 0) and np.all(np.isfinite(out.showers))
    # cells are zero or at/above the readout threshold
    assert np.all((out.showers == 0) | (out.showers >= model.geometry.threshold))
    assert set(out.conditions) == set(get_dataset(name).conditions)
    etot = out.total_energy()
    low = test.energies < np.median(test.energies)
    assert etot[~low].mean() > 3 * etot[low].mean()  # E_inc spans a factor 30
    ratio = etot / test.energies
    assert 0.3 < np.median(ratio) < 2.0
    # same seed, same samples; batch size does not matter for the per-batch stream of batch 300
    again = model.sample(test.energies, test.conditions, batch_size=128)
    np.testing.assert_array_equal(out.showers, again.showers)
    model.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m")
    assert loaded.parameter_count() == model.parameter_count() > 0
    np.testing.assert_array_equal(loaded.sample(test.energies, test.conditions, batch_size=128).showers,
                                  out.showers)


@pytest.mark.parametrize("cls", [ConditionalVAE, CaloFlow], ids=["vae", "flow"])
def test_same_seed_same_weights_and_exact_resume(cls, tmp_path):
    train = synthetic("bes3-11x11", 192, 0)
    a = cls("bes3-11x11", "tiny", seed=5)
    a.fit(train, epochs=3, progress=False)
    b = cls("bes3-11x11", "tiny", seed=5)
    b.fit(train, epochs=1, checkpoint_dir=tmp_path, progress=False)  # "interrupted" after epoch 1
    c = cls("bes3-11x11", "tiny", seed=5)
    history = c.fit(train, epochs=3, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert [r["epoch"] for r in history["per_epoch"]] == [1, 2, 3]
    for key, value in a.state_arrays().items():
        np.testing.assert_array_equal(value, c.state_arrays()[key], err_msg=key)
    d = cls("bes3-11x11", "tiny", seed=6)
    d.fit(train, epochs=3, progress=False)
    assert any(not np.array_equal(v, d.state_arrays()[k]) for k, v in a.state_arrays().items())
    e = np.full(50, 500.0)
    cond = {k: v[:50] for k, v in train.conditions.items()}
    np.testing.assert_array_equal(a.sample(e, cond).showers, c.sample(e, cond).showers)


def test_multilayer_models_sample():
    """calochallenge geometries: the VAE on dataset 2 and the flow on dataset 1 (368 voxels, 5 layers)."""
    for cls, name in [(ConditionalVAE, "calochallenge-2"), (CaloFlow, "calochallenge-1-photons")]:
        train = synthetic(name, 192, 0)
        model = cls(name, "tiny", seed=0)
        model.fit(train, epochs=1, progress=False)
        out = model.sample(train.energies[:64], batch_size=32)
        n_cells = get_dataset(name).geometry.n_cells
        assert out.showers.shape == (64, n_cells)
        assert np.all(out.showers >= 0) and np.all(np.isfinite(out.showers))


def test_flow_layer_variables_round_trip():
    model = CaloFlow("calochallenge-1-photons", "tiny", seed=0)
    rng = np.random.default_rng(0)
    layers = torch.from_numpy(rng.uniform(1.0, 100.0, (20, 5)))
    e_inc = torch.from_numpy(rng.uniform(500.0, 1000.0, 20))
    v = model._layer_variables(layers, e_inc)
    back = model._layers_from_variables(v, e_inc)
    # the inverse is a plain sigmoid (positive by construction): it ignores alpha = 1e-6
    np.testing.assert_allclose(back.numpy(), layers.numpy(), rtol=1e-3)
    assert torch.all(model._layers_from_variables(v * 20.0, e_inc) >= 0)


def test_apply_threshold_keeps_layer_energy():
    rng = np.random.default_rng(1)
    cells = torch.from_numpy(rng.exponential(1.0, (30, 12)))
    layer_id = torch.arange(12) // 4
    out = apply_threshold(cells, layer_id, 3, threshold=1.0)
    # a cell below threshold survives only as the single (hottest) cell of its layer
    alone = (layer_sums((out > 0).double(), layer_id, 3) == 1)[:, layer_id]
    assert torch.all((out == 0) | (out >= 1.0) | alone)
    assert torch.any(out == 0) and torch.any(out >= 1.0)
    torch.testing.assert_close(layer_sums(out, layer_id, 3), layer_sums(cells, layer_id, 3))


def test_user_errors():
    with pytest.raises(CalobenchError, match="does not support"):
        CaloFlow("calochallenge-2", "tiny")
    model = ConditionalVAE("stcf11x11", "tiny")
    with pytest.raises(CalobenchError, match="before sample"):
        model.sample(np.ones(3) * 100.0)
    train = synthetic("stcf11x11", 64, 0)
    model.fit(train, epochs=1, progress=False)
    with pytest.raises(CalobenchError, match="missing condition"):
        model.sample(np.ones(3) * 100.0, {"p": np.ones(3)})
    with pytest.raises(CalobenchError, match="energies must be finite and positive"):
        model.sample(np.array([100.0, -1.0]), {k: v[:2] for k, v in train.conditions.items()})
    bad = ShowerSet(train.geometry, train.energies, train.showers * -1.0, train.conditions)
    with pytest.raises(CalobenchError, match="showers"):
        ConditionalVAE("stcf11x11", "tiny").fit(bad, epochs=1, progress=False)
    bes = ConditionalVAE("bes3-11x11", "tiny")
    bes_train = synthetic("bes3-11x11", 64, 0)
    bes.fit(bes_train, epochs=1, progress=False)
    cond = {k: v[:2] for k, v in bes_train.conditions.items()}
    cond["particle"] = np.array([22.0, 2212.0])
    with pytest.raises(CalobenchError, match="PDG"):
        bes.sample(np.array([100.0, 200.0]), cond)


def test_vae_occupancy_decoder_sparsity_and_reload(tmp_path):
    """Cylindrical voxels use the zero-inflated decoder: the fraction of hit cells of generated
    showers follows the training sample (the plain Gaussian decoder filled ~98% of the cells of
    calochallenge-2 showers whose reference occupancy is ~9%), and it survives save / load."""
    dense = synthetic("calochallenge-2", 256, 0)
    x = np.asarray(dense.showers).copy()
    x[x < 2e-4 * dense.energies[:, None]] = 0.0  # ~25% of the cells hit
    train = ShowerSet(dense.geometry, dense.energies, x, dense.conditions, dense.particle, {}, dense.dataset)
    model = ConditionalVAE("calochallenge-2", "tiny", seed=0)
    assert model.config["hurdle"] is True
    assert ConditionalVAE("stcf11x11", "tiny", seed=0).config["hurdle"] is False
    model.fit(train, epochs=20, progress=False)
    out = model.sample(train.energies[:128], {k: v[:128] for k, v in train.conditions.items()})
    occ_ref = float((train.showers > 0).mean())
    occ_gen = float((out.showers > 0).mean())
    assert 0.5 * occ_ref < occ_gen < 0.5 * (occ_ref + 1.0), (occ_gen, occ_ref)  # Gaussian decoder: ~1.0
    ratio = out.showers.sum(axis=1) / out.energies
    ratio_ref = train.showers.sum(axis=1) / train.energies
    assert abs(np.median(ratio) - np.median(ratio_ref)) < 0.15
    model.save(tmp_path / "m")
    again = ConditionalVAE.load(tmp_path / "m")
    assert again.hurdle
    np.testing.assert_array_equal(again.sample(train.energies[:16], {k: v[:16] for k, v in train.conditions.items()}).showers,
                                  model.sample(train.energies[:16], {k: v[:16] for k, v in train.conditions.items()}).showers)
