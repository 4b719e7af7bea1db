"""The GAN family (bes3-gan, nnls-cgan, wgan-gp): tiny presets train, save, load and sample;
energies are non-negative; conditions are honoured; seeds reproduce; resume is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from calobench.datasets import PDG, get_dataset
from calobench.errors import CalobenchError
from calobench.baselines.gan.bes3_gan import Bes3GAN, MinibatchDiscrimination
from calobench.baselines.gan.conditional_gan import raw_tensors
from calobench.baselines.gan.nnls_cgan import NNLSCGAN, fit_nnls_template, hat_basis
from calobench.baselines.gan.wgan_gp import WGANGP
from calobench.data.showerset import ShowerSet

CASES = [(Bes3GAN, "bes3-11x11"), (NNLSCGAN, "darkshine"), (WGANGP, "stcf11x11")]
FAST = {"max_train_events": 192}


def synthetic(name: str, n: int = 192, seed: int = 0) -> ShowerSet:
    """Gaussian-profile showers holding ~90% of E_inc, with plausible conditions."""
    d = get_dataset(name)
    g = d.geometry
    rng = np.random.default_rng(seed)
    lo, hi = d.energy_range
    e = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    c = g.centres
    w = np.exp(-(c[:, 0] ** 2 + c[:, 1] ** 2) / (2 * (1.5 * g.sizes[:, 0].mean()) ** 2))
    w = w * np.exp(-((c[:, 2] - c[:, 2].mean()) ** 2) / (2 * (c[:, 2].std() + 1.0) ** 2))
    w /= w.sum()
    showers = (0.9 * e[:, None] * w[None, :] * rng.gamma(4.0, 0.25, (n, len(w)))).astype(np.float32)
    showers[showers < g.threshold] = 0.0
    cond = {}
    for k in d.conditions:
        cond[k] = rng.choice([PDG[p] for p in d.particles], n).astype(float) if k == "particle" else rng.normal(0, 50, n)
    if name == "bes3-11x11":
        u = rng.normal(size=(n, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        cond["px"], cond["py"], cond["pz"] = (u * e[:, None]).T
        cond["E"] = e
    return ShowerSet(g, e, showers, cond, particle=",".join(d.particles), dataset=name)


def conditions_at(name: str, energies: np.ndarray) -> dict[str, np.ndarray]:
    d = get_dataset(name)
    n = len(energies)
    out = {k: np.zeros(n) for k in d.conditions}
    if "particle" in out:
        out["particle"] = np.full(n, float(PDG[d.particles[0]]))
    if name == "bes3-11x11":
        out["px"], out["E"] = energies.copy(), energies.copy()
    return out


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=CASES, ids=[c[1] for c in CASES])
def trained(request, tmp_path_factory):
    cls, name = request.param
    model = cls(name, "tiny", seed=3, **FAST)
    history = model.fit(synthetic(name), progress=False)
    folder = tmp_path_factory.mktemp(cls.name)
    model.save(folder)
    return cls, name, model, history, folder


def test_train_save_load_sample(trained):
    cls, name, model, history, folder = trained
    assert history["epochs"] == len(history["per_epoch"]) == model.config["epochs"]
    assert all(np.isfinite(v) for r in history["per_epoch"] for v in r.values())
    e = np.array([100.0, 500.0, 1500.0, 2000.0])
    cond = conditions_at(name, e)
    out = model.sample(e, cond, batch_size=3)  # batching across a remainder
    geometry = get_dataset(name).geometry
    assert out.showers.shape == (4, geometry.n_cells)
    assert out.showers.dtype == np.float32
    assert np.all(out.showers >= 0) and np.all(np.isfinite(out.showers))
    nonzero = out.showers[out.showers > 0]
    assert nonzero.size == 0 or nonzero.min() >= geometry.threshold  # readout threshold applied
    np.testing.assert_array_equal(out.energies, e)
    for k, v in cond.items():
        np.testing.assert_array_equal(out.conditions[k], v)
    loaded = cls.load(folder)
    np.testing.assert_array_equal(loaded.sample(e, cond).showers, model.sample(e, cond).showers)
    assert loaded.parameter_count() == model.parameter_count() > 0


def test_energy_follows_incident_energy(trained):
    _, name, model, _, _ = trained
    low, high = np.full(300, 200.0), np.full(300, 1600.0)
    e_low = model.sample(low, conditions_at(name, low)).showers.sum(1).mean()
    e_high = model.sample(high, conditions_at(name, high)).showers.sum(1).mean()
    assert e_high > 3.0 * e_low > 0


def test_missing_and_unknown_conditions(trained):
    _, name, model, _, _ = trained
    e = np.array([100.0, 200.0])
    if get_dataset(name).conditions:
        with pytest.raises(CalobenchError, match="missing condition"):
            model.sample(e, {})
    if "particle" in get_dataset(name).conditions:
        bad = conditions_at(name, e)
        bad["particle"] = np.array([211.0, 211.0])
        with pytest.raises(CalobenchError, match="PDG"):
            model.sample(e, bad)
    with pytest.raises(CalobenchError, match="positive"):
        model.sample(np.array([-1.0, 5.0]), conditions_at(name, e))


@pytest.mark.parametrize("cls,name", CASES, ids=[c[1] for c in CASES])
def test_same_seed_same_weights_and_samples(cls, name):
    e = np.array([300.0, 900.0, 1200.0])
    a, b, c = cls(name, "tiny", seed=5), cls(name, "tiny", seed=5), cls(name, "tiny", seed=6)
    sa = a.sample(e, conditions_at(name, e)).showers
    np.testing.assert_array_equal(sa, b.sample(e, conditions_at(name, e)).showers)
    wa, wc = a.state_arrays(), c.state_arrays()
    assert any(not np.array_equal(wa[k], wc[k]) for k in wa if not k.startswith("extra."))


def test_unsupported_dataset_and_preset():
    with pytest.raises(CalobenchError, match="does not support"):
        Bes3GAN("stcf11x11", "tiny")
    with pytest.raises(CalobenchError, match="unknown preset"):
        WGANGP("stcf11x11", "huge")


def test_wgan_fit_is_seeded_and_resume_is_exact(tmp_path):
    data = synthetic("stcf11x11", 128, seed=1)
    opts = {"max_train_events": 128, "epochs": 2}
    full = WGANGP("stcf11x11", "tiny", seed=2, **opts)
    full.fit(data, progress=False)
    again = WGANGP("stcf11x11", "tiny", seed=2, **opts)
    again.fit(data, epochs=1, checkpoint_dir=tmp_path, progress=False)
    resumed = WGANGP("stcf11x11", "tiny", seed=2, **opts)
    history = resumed.fit(data, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert [r["epoch"] for r in history["per_epoch"]] == [1, 2]
    wf, wr = full.state_arrays(), resumed.state_arrays()
    for k in wf:
        np.testing.assert_array_equal(wf[k], wr[k], err_msg=k)


def test_nnls_template_recovers_a_known_non_negative_solution():
    rng = np.random.default_rng(0)
    knots = np.linspace(0.0, 3.0, 4)
    log_e = rng.uniform(0.0, 3.0, 500)
    basis = hat_basis(log_e, knots)
    np.testing.assert_allclose(basis.sum(1), 1.0)
    truth = rng.uniform(0.0, 1.0, (4, 6))
    truth[1, 2] = 0.0
    fit = fit_nnls_template(basis @ truth, basis)
    np.testing.assert_allclose(fit, truth, atol=1e-8)
    # a target whose unconstrained least-squares solution is negative stays non-negative
    target = basis @ np.array([1.0, -2.0, 1.0, 1.0])
    fit = fit_nnls_template(target[:, None], basis)
    assert np.all(fit >= 0)
    unconstrained = np.linalg.lstsq(basis, target, rcond=None)[0]
    assert unconstrained.min() < -1.0


def test_nnls_cgan_template_tracks_the_training_mean():
    model = NNLSCGAN("darkshine", "tiny", seed=0)
    data = synthetic("darkshine", 300, seed=4)
    model.prepare_fit(data)
    assert np.all(model.extra["nnls_coef"] >= 0)
    template = model.template(data.energies, data.conditions)
    ratio = template.sum(1).mean() / data.showers.sum(1).mean()
    assert 0.9 < ratio < 1.1


def _nnls_model_and_batch():
    model = NNLSCGAN("darkshine", "tiny", seed=0)
    data = synthetic("darkshine", 300, seed=4)
    model.prepare_fit(data)
    raw = model.raw_conditions(data.energies, data.conditions, "test")
    model.encoder.fit(raw["E_inc"], raw)
    cond = torch.from_numpy(model.encoder.encode(raw["E_inc"], raw))
    energies = torch.as_tensor(raw["E_inc"], dtype=torch.float32)
    z = torch.randn(len(cond), model.latent_dim, generator=torch.Generator().manual_seed(1))
    return model, data, raw, cond, energies, z, raw_tensors(raw)


def test_nnls_cgan_total_energy_is_the_ratio_head():
    """E_tot / E_inc of a generated shower is the NNLS map's E_tot / E_inc times exp(ratio head),
    also after the readout threshold (the surviving cells are rescaled)."""
    model, data, raw, cond, energies, z, rawt = _nnls_model_and_batch()
    latent = int(model.config["latent_dim"])
    assert model.latent_dim == latent + get_dataset("darkshine").geometry.n_cells  # + per-cell noise
    with torch.no_grad():
        showers = model.generate(z, cond, energies, rawt)
        base = model.base_ratio(rawt).squeeze(1)
        head = base * torch.exp(model.generator.ratio(torch.cat([z[:, :latent], cond], 1))).squeeze(1)
    assert torch.all(showers >= 0)
    threshold = get_dataset("darkshine").geometry.threshold
    assert torch.all((showers == 0) | (showers >= threshold))
    ratio = showers.sum(1) / energies
    np.testing.assert_allclose(ratio.numpy(), head.numpy(), rtol=1e-3)
    # the base is the NNLS map's E_tot / E_inc, which tracks the training showers' ratio
    train_ratio = (data.showers.sum(1) / data.energies).mean()
    assert abs(float(base.mean()) - train_ratio) < 0.05 * train_ratio
    assert abs(float(ratio.mean()) - train_ratio) < 0.05 * train_ratio
    assert float(ratio.std()) < 0.05 * train_ratio  # the untrained head starts narrow


def test_nnls_cgan_shape_is_built_on_the_nnls_map():
    """With the generator's fluctuation heads switched off (last layers zero) the generated
    cell fractions are the NNLS map itself; the plain CGAN (nnls_weight = 0) starts uniform."""
    model, data, raw, cond, energies, z, rawt = _nnls_model_and_batch()
    g = model.generator
    with torch.no_grad():
        for head in (g.out[-1], g.longitudinal[-1], g.ratio[-1]):
            head.weight.zero_()
        g.out[-1].bias.zero_()
        z[:, int(model.config["latent_dim"]):] = 0.0  # no per-cell noise
        fractions = model.fractions(z, cond, rawt).numpy()
    template = model.template(data.energies, data.conditions) / data.energies[:, None]
    assert np.count_nonzero(template[:, -400:]) > 0  # the deepest layer is not structurally empty
    np.testing.assert_allclose(fractions, template, rtol=1e-3, atol=1e-7)
    plain = NNLSCGAN("darkshine", "tiny", seed=0, nnls_weight=0.0)
    plain.prepare_fit(data)
    with torch.no_grad():
        for head in (plain.generator.out[-1], plain.generator.longitudinal[-1], plain.generator.ratio[-1]):
            head.weight.zero_()
        plain.generator.out[-1].bias.zero_()
        uniform = plain.fractions(z, cond, rawt).numpy()
    np.testing.assert_allclose(uniform, 1.0 / uniform.shape[1], rtol=1e-4)


def test_minibatch_discrimination_sees_collapse():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(10, n_kernels=3, kernel_dim=2)
    collapsed = layer(torch.ones(8, 10))
    spread = layer(torch.randn(8, 10) * 10)
    assert collapsed.shape == (8, 3)
    np.testing.assert_allclose(collapsed.detach().numpy(), 7.0, rtol=1e-6)  # 7 identical neighbours
    assert float(spread.detach().mean()) < 1.0


def test_bes3_generator_size_matches_seed():
    assert 44_000 < Bes3GAN("bes3-11x11", "quick").parameter_count() < 48_000  # seed 004: ~46k


def test_bes3_fast_sampling_path_is_the_training_function():
    """The no-autograd path (chunks, channels-last, in-place) computes what training computes."""
    torch.manual_seed(1)
    gen = Bes3GAN("bes3-11x11", "tiny", seed=2).generator.eval()
    gen.chunk = 7  # several passes and a remainder
    with torch.no_grad():
        gen.cell_bias.normal_()
    z, c = torch.randn(30, 16), torch.randn(30, 8)
    with torch.no_grad():
        fast = gen(z, c)
    slow = gen(z, c).detach()  # autograd on: the plain Sequential path
    assert fast.shape == slow.shape == (30, 1, 11, 11)
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-5, atol=1e-9)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # passes shared out to two Python threads
    try:
        with torch.no_grad():
            pooled = gen(z, c)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(pooled.numpy(), slow.numpy(), rtol=1e-5, atol=1e-9)
    # the shower in MeV (scale = |p|) is the map times the scale on both paths
    scale = torch.linspace(100.0, 3000.0, 30)
    with torch.no_grad():
        fast_scaled = gen(z, c, scale)
    slow_scaled = gen(z, c, scale).detach()
    np.testing.assert_allclose(fast_scaled.numpy(), (slow * scale[:, None, None, None]).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(slow_scaled.numpy(), (slow * scale[:, None, None, None]).numpy(), rtol=1e-6)


def test_bes3_bfloat16_sampling_is_close_to_float32():
    """bfloat16 convolutions move cells by about a percent and keep E_tot (the ratio unit is float32)."""
    torch.manual_seed(4)
    model = Bes3GAN("bes3-11x11", "tiny", seed=2)
    gen = model.generator.eval()
    z, c, p = torch.randn(300, 16), torch.randn(300, 8), torch.full((300,), 1000.0)
    others = {k: v.clone() for k, v in {**model.discriminator.state_dict(), **model.regressor.state_dict()}.items()}
    with torch.no_grad():
        gen.cell_bias.normal_()
        full = gen(z, c, p)
        model.set_sampling_precision("bfloat16")
        low = gen(z, c, p)
    # only the sampling changes: the other networks keep their weights
    after = {**model.discriminator.state_dict(), **model.regressor.state_dict()}
    assert all(torch.equal(after[k], v) for k, v in others.items())
    assert low.dtype == torch.float32 and low.shape == full.shape
    rel = ((low - full).abs() / full).flatten()
    assert 1e-5 < float(rel.median()) < 0.03  # really bfloat16, and close
    np.testing.assert_allclose(low.sum((1, 2, 3)).numpy(), full.sum((1, 2, 3)).numpy(), rtol=1e-4)
    with pytest.raises(CalobenchError, match="sampling_precision 'float16'"):
        model.set_sampling_precision("float16")


def test_bes3_saved_model_with_a_bad_sampling_precision_is_refused(tmp_path):
    model = Bes3GAN("bes3-11x11", "tiny", seed=1, sampling_precision="bfloat16")
    folder = model.save(tmp_path / "m")
    assert Bes3GAN.load(folder).generator.sampling_dtype == torch.bfloat16  # the saved choice is kept
    config = folder / "config.json"
    info = json.loads(config.read_text())
    info["config"]["sampling_precision"] = "float16"
    config.write_text(json.dumps(info))
    with pytest.raises(CalobenchError, match=r"config\.json: model bes3-gan: sampling_precision 'float16'"):
        Bes3GAN.load(folder)


def test_bes3_fast_sampling_follows_weight_changes():
    """The rearranged sampling weights are cached, and rebuilt after an in-place weight update."""
    torch.manual_seed(3)
    gen = Bes3GAN("bes3-11x11", "tiny", seed=2).generator.eval()
    z, c = torch.randn(12, 16), torch.randn(12, 8)
    with torch.no_grad():
        before = gen(z, c)
        assert gen.sampling_weights() is gen.sampling_weights()  # cached while nothing changes
        first = [m for m in gen.convs if isinstance(m, torch.nn.Conv2d)][0]
        first.weight.mul_(1.5)  # what an optimizer step does: an in-place update
        after = gen(z, c)
    expected = gen(z, c).detach()  # the autograd path reads the weights directly
    assert not np.allclose(after.numpy(), before.numpy(), rtol=1e-3)
    np.testing.assert_allclose(after.numpy(), expected.numpy(), rtol=1e-5, atol=1e-9)


def test_bes3_prepare_fit_starts_at_the_data_means():
    """Before any adversarial step the generator's mean E_tot / |p| and its seed-cell fraction
    are those of the training showers (ratio bias and per-cell bias fitted from the data)."""
    train = synthetic("bes3-11x11", n=300)
    model = Bes3GAN("bes3-11x11", "tiny", seed=0, **FAST)
    model.fit(train, epochs=0, progress=False)
    e = train.energies
    out = model.sample(e, train.conditions).showers
    p = np.sqrt(sum(train.conditions[k] ** 2 for k in ("px", "py", "pz")))
    real_ratio = float(np.mean(train.showers.sum(1) / p))
    assert abs(float(np.mean(out.sum(1) / p)) - real_ratio) < 0.1 * real_ratio
    centre = 60  # cell (5, 5)
    real_c = float(np.mean(train.showers[:, centre] / train.showers.sum(1)))
    gen_c = float(np.mean(out[:, centre] / np.maximum(out.sum(1), 1e-9)))
    assert abs(gen_c - real_c) < 0.5 * real_c


def test_bes3_energy_ratio_head_bounds_the_map_sum():
    """map / |p| sums to sigmoid(ratio logit) in (0, 1): E_tot <= |p| before the threshold."""
    torch.manual_seed(1)
    gen = Bes3GAN("bes3-11x11", "tiny", seed=2).generator
    with torch.no_grad():
        gen.dense.bias[0] = 2.0  # the ratio unit
        z, c = torch.randn(50, 16), torch.randn(50, 8)
        m = gen(z, c)
        ratio = torch.sigmoid(gen.dense(torch.cat([z, c], 1))[:, 0])
    assert torch.all(m >= 0)
    np.testing.assert_allclose(m.sum((1, 2, 3)).numpy(), ratio.numpy(), rtol=1e-5)
    assert float(ratio.max()) < 1.0
