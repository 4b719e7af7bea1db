"""Diffusion models (ddpm-unet, score-sde): tiny presets train, save, load and sample; layouts,
physical ranges, seeds, exact resume and the point <-> voxel mappings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calobench.errors import CalobenchError
from calobench.datasets import get_geometry
from calobench.models.base import load_checkpoint
from calobench.baselines.diffusion.ddpm_unet import DDPMUNet, decode_maps, encode_maps
from calobench.baselines.diffusion.score_sde import ScoreSDE
from calobench.data.showerset import CellList, ShowerSet


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def bes3_like(n: int, seed: int) -> ShowerSet:
    """Exponential-profile 11x11 showers with the bes3-11x11 conditions."""
    rng = np.random.default_rng(seed)
    g = get_geometry("bes3-11x11")
    e = rng.uniform(50, 3000, n)
    th, ph = rng.uniform(0.5, 2.6, n), rng.uniform(0, 2 * np.pi, n)
    cond = {"particle": rng.choice([22, 11, -11], n), "px": e * np.sin(th) * np.cos(ph),
            "py": e * np.sin(th) * np.sin(ph), "pz": e * np.cos(th), "E": e}
    c = g.centres[:, :2]
    cx, cy = rng.normal(0, 10, n), rng.normal(0, 10, n)
    d = np.hypot(c[None, :, 0] - cx[:, None], c[None, :, 1] - cy[:, None])
    prof = np.exp(-d / 20.0)
    s = prof / prof.sum(1, keepdims=True) * (0.9 * e)[:, None]
    s[s < 1.0] = 0
    return ShowerSet(g, e, s.astype(np.float32), cond, "gamma", {}, "bes3-11x11")


def cepc_like(n: int, seed: int) -> ShowerSet:
    """Point clouds on the cepc barrel around the axis given by (theta, phi)."""
    rng = np.random.default_rng(seed)
    g = get_geometry("cepc")
    radii = np.asarray(g.barrel.layer_radii)
    e = rng.uniform(30000, 50000, n)
    theta, phi = rng.uniform(60, 120, n), rng.uniform(-180, 180, n)
    showers = []
    for i in range(n):
        k = int(e[i] / 400)
        layer = np.clip(rng.gamma(3, 2.5, k).astype(int), 0, 29)
        r = radii[layer]
        a = np.radians(phi[i]) + rng.normal(0, 15, k) / r
        z = r / np.tan(np.radians(theta[i])) + rng.normal(0, 15, k)
        showers.append(np.stack([r * np.cos(a), r * np.sin(a), z, 0.05 + rng.exponential(0.3, k)], 1))
    return ShowerSet(g, e, CellList.from_showers(showers), {"theta": theta, "phi": phi}, "gamma", {}, "cepc")


def cc2_like(n: int, seed: int) -> ShowerSet:
    rng = np.random.default_rng(seed)
    g = get_geometry("calochallenge-2")
    e = np.exp(rng.uniform(np.log(1e3), np.log(3e4), n))
    r, z = np.hypot(g.centres[:, 0], g.centres[:, 1]), g.centres[:, 2]
    prof = np.exp(-r / 8.0)[None] * np.exp(-((z[None] - 40) / 20) ** 2) * rng.gamma(5, 0.2, (n, g.n_cells))
    s = prof / prof.sum(1, keepdims=True) * 0.5 * e[:, None]
    s[s < 0.5] = 0
    return ShowerSet(g, e, s.astype(np.float32), {}, "e-", {}, "calochallenge-2")


# ---- ddpm-unet -------------------------------------------------------------------------

def test_hit_map_encoding_round_trip():
    frac = np.random.default_rng(0).dirichlet(np.full(121, 0.3), 5)
    back = decode_maps(torch.from_numpy(encode_maps(frac))).numpy()
    np.testing.assert_allclose(back, frac, atol=2e-6)


def test_ddpm_trains_saves_loads_and_samples(tmp_path):
    train, valid = bes3_like(256, 0), bes3_like(40, 1)
    model = DDPMUNet("bes3-11x11", "tiny", seed=3)
    history = model.fit(train, valid, epochs=1, checkpoint_dir=tmp_path / "ck", progress=False)
    assert history["epochs"] == len(history["per_epoch"]) == 1 and np.isfinite(history["per_epoch"][0]["loss"])
    out = model.sample(valid.energies, valid.conditions, batch_size=16)
    assert out.showers.shape == (40, 121)
    assert np.isfinite(out.showers).all() and (out.showers >= 0).all()
    nonzero = out.showers[out.showers > 0]
    assert nonzero.size and nonzero.min() >= 1.0  # readout threshold of bes3-11x11
    np.testing.assert_array_equal(out.conditions["particle"], valid.conditions["particle"])
    model.save(tmp_path / "m")
    loaded = DDPMUNet.load(tmp_path / "m")
    again = loaded.sample(valid.energies, valid.conditions, batch_size=16)
    np.testing.assert_array_equal(again.showers, out.showers)  # same seed, same samples
    other = DDPMUNet.load(tmp_path / "m")
    other.seed = 4
    assert not np.array_equal(other.sample(valid.energies, valid.conditions, 16).showers, out.showers)
    loaded.config.update(sampler="ancestral", sample_steps=10)
    anc = loaded.sample(valid.energies, valid.conditions, batch_size=40)
    assert (anc.showers >= 0).all() and anc.provenance["sampler"] == "ancestral"
    loaded.config["sampler"] = "euler"
    with pytest.raises(CalobenchError, match="sampler"):
        loaded.sample(valid.energies[:2], {k: v[:2] for k, v in valid.conditions.items()})


def test_ddpm_resume_is_exact(tmp_path):
    train = bes3_like(128, 0)
    full = DDPMUNet("bes3-11x11", "tiny", seed=1)
    full.fit(train, epochs=2, progress=False)
    part = DDPMUNet("bes3-11x11", "tiny", seed=1)
    part.fit(train, epochs=1, checkpoint_dir=tmp_path, progress=False)
    assert load_checkpoint(tmp_path)["epoch"] == 1
    resumed = DDPMUNet("bes3-11x11", "tiny", seed=1)
    resumed.fit(train, epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False)
    a, b = full.state_arrays(), resumed.state_arrays()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_ddpm_rejects_missing_condition_and_untrained():
    model = DDPMUNet("bes3-11x11", "tiny")
    with pytest.raises(CalobenchError, match="not trained"):
        model.sample(np.array([100.0]))
    model.fit(bes3_like(64, 0), epochs=1, progress=False)
    with pytest.raises(CalobenchError, match=r"missing condition\(s\) px"):
        model.sample(np.array([100.0]), {"particle": np.array([22])})


# ---- score-sde -------------------------------------------------------------------------

def test_point_frames_round_trip_without_dequantisation():
    """Features of reference points map back to the same cells / voxels (known answer)."""
    data = cc2_like(4, 0)
    model = ScoreSDE("calochallenge-2", "tiny")
    feats, offsets = model._to_features(data, rng=None)
    back = model._from_features(feats, np.diff(offsets), data.energies, {})
    np.testing.assert_allclose(back, data.showers, rtol=1e-5, atol=1e-4)
    data = cepc_like(3, 0)
    model = ScoreSDE("cepc", "tiny")
    feats, offsets = model._to_features(data, rng=None)
    back = model._from_features(feats, np.diff(offsets), data.energies, data.conditions)
    np.testing.assert_array_equal(back.offsets, data.showers.offsets)
    np.testing.assert_allclose(back.cells, data.showers.cells, rtol=1e-5, atol=1e-2)


def test_score_sde_cepc_point_clouds(tmp_path):
    train, valid = cepc_like(48, 0), cepc_like(6, 1)
    model = ScoreSDE("cepc", "tiny", seed=2)
    model.fit(train, epochs=1, checkpoint_dir=tmp_path / "ck", progress=False)
    out = model.sample(valid.energies, valid.conditions, batch_size=4)
    cl = out.showers
    assert isinstance(cl, CellList) and len(cl) == 6 and cl.cells.shape[1] == 4
    assert cl.offsets[0] == 0 and cl.offsets[-1] == len(cl.cells)
    barrel = get_geometry("cepc").barrel
    assert np.isfinite(cl.cells).all()
    r = np.hypot(cl.cells[:, 0], cl.cells[:, 1])
    assert np.abs(r[:, None] - np.asarray(barrel.layer_radii)[None, :]).min(1).max() < 1e-2
    assert np.abs(cl.cells[:, 2]).max() <= barrel.half_length
    assert cl.cells[:, 3].min() >= get_geometry("cepc").threshold
    model.save(tmp_path / "m")
    again = ScoreSDE.load(tmp_path / "m").sample(valid.energies, valid.conditions, batch_size=4)
    np.testing.assert_array_equal(again.showers.cells, cl.cells)
    np.testing.assert_array_equal(again.showers.offsets, cl.offsets)


@pytest.mark.parametrize("overrides", [
    {"sde": "ve", "sampler": "pc", "predictor": "reverse-diffusion"},
    {"sde": "vp", "sampler": "pc", "predictor": "euler-maruyama"},
    {"sde": "vp", "sampler": "ode"},
])
def test_score_sde_calochallenge_voxels(overrides):
    train, valid = cc2_like(24, 0), cc2_like(4, 1)
    model = ScoreSDE("calochallenge-2", "tiny", seed=5, max_points=300, **overrides)
    model.fit(train, epochs=1, progress=False)
    out = model.sample(valid.energies, batch_size=4)
    assert out.showers.shape == (4, 6480)
    assert np.isfinite(out.showers).all() and (out.showers >= 0).all()
    assert (out.showers.sum(1) <= 1.001 * 300 * valid.energies).all()
    np.testing.assert_array_equal(model.sample(valid.energies, batch_size=4).showers, out.showers)


def test_score_sde_bad_config():
    with pytest.raises(CalobenchError, match="'sde'"):
        ScoreSDE("cepc", "tiny", sde="subvp")
