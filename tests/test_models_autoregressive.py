"""The autoregressive cell transformer (cepc point clouds) on small synthetic showers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calobench.errors import CalobenchError
from calobench.datasets import get_geometry
from calobench.baselines.autoregressive.cell_tokens import decode, encode, fit_frame, nominal_frame
from calobench.baselines.autoregressive.cell_transformer import CellTransformer
from calobench.data.showerset import CellList, ShowerSet

GEOMETRY = get_geometry("cepc")
HALF = 32


def synthetic_cepc(n: int, seed: int = 0, scale: float = 0.3) -> tuple[ShowerSet, np.ndarray]:
    """Gaussian photon-like showers on flat-stave pads rotated to phi (the calobench simulate
    convention): a known pad layout and stave offsets delta (rad) to test the tokenisation."""
    rng = np.random.default_rng(seed)
    frame = nominal_frame(GEOMETRY)
    energy = rng.uniform(30000, 50000, n)
    theta = rng.uniform(73.6, 106.4, n)
    phi = rng.uniform(0, 360, n)
    delta = rng.uniform(-0.9, 0.9, n) * 2.5 / 1800
    parts: dict[str, list] = {"layer": [], "v": [], "u": [], "e": [], "event": []}
    for i in range(n):
        per_layer = np.round(scale * 60 * np.exp(-0.5 * ((np.arange(30) - 9) / 6) ** 2) * energy[i] / 40000)
        for layer in range(30):
            if per_layer[layer] == 0:
                continue
            pads = np.unique(np.round(rng.normal(0, 1 + 0.15 * layer, (int(per_layer[layer]), 2))).astype(int), axis=0)
            pads = pads[(np.abs(pads) <= 20).all(1)]
            parts["layer"].append(np.full(len(pads), layer))
            parts["v"].append(pads[:, 0] + HALF)
            parts["u"].append(pads[:, 1] + HALF)
            parts["e"].append(np.exp(rng.normal(np.log(5.0) - 0.3 * np.hypot(*pads.T), 0.7)) + 0.06)
            parts["event"].append(np.full(len(pads), i))
    layer, v, u, e, event = (np.concatenate(parts[k]) for k in ("layer", "v", "u", "e", "event"))
    cells = decode(frame, layer, v, u, e, event, theta, phi, delta, HALF, GEOMETRY.barrel.half_length)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(event, minlength=n), out=offsets[1:])
    showers = ShowerSet(GEOMETRY, energy, CellList(cells, offsets), conditions={"theta": theta, "phi": phi},
                        particle="gamma", dataset="cepc")
    return showers, delta


@pytest.fixture(scope="module")
def data() -> tuple[ShowerSet, np.ndarray]:
    return synthetic_cepc(36, seed=3)


@pytest.fixture(scope="module")
def trained(data):
    showers, _ = data
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    model = CellTransformer("cepc", "tiny", seed=5)
    history = model.fit(showers.take(np.arange(28)), showers.take(np.arange(28, 36)), progress=False)
    return model, history


def _sorted_cells(cells: np.ndarray) -> np.ndarray:
    return cells[np.lexsort(np.round(cells[:, :3], 2).T)]


def test_tokens_round_trip_onto_the_same_pads(data):
    showers, delta = data
    cl = showers.showers
    frame = fit_frame(GEOMETRY, cl.cells, cl.offsets, showers.conditions["phi"])
    assert frame.residual < 1e-3  # mm: every synthetic cell sits on a pad centre
    assert frame.z_phase == pytest.approx(2.5, abs=1e-3)
    tokens = encode(GEOMETRY, frame, cl.cells, cl.offsets, showers.conditions["theta"], showers.conditions["phi"], HALF)
    np.testing.assert_allclose(tokens.delta, delta, atol=1e-7)
    assert tokens.dropped.sum() == 0 and np.array_equal(tokens.counts, cl.counts)
    for i in range(len(showers)):  # raster order: strictly increasing (layer, v, u)
        sl = slice(tokens.offsets[i], tokens.offsets[i + 1])
        key = (tokens.layer[sl] * 100 + tokens.v[sl]) * 100 + tokens.u[sl]
        assert np.all(np.diff(key) > 0)
    event = np.repeat(np.arange(len(showers)), tokens.counts)
    back = decode(frame, tokens.layer, tokens.v, tokens.u, np.exp(tokens.log_e.astype(np.float64)), event,
                  showers.conditions["theta"], showers.conditions["phi"], tokens.delta, HALF,
                  GEOMETRY.barrel.half_length)
    for i in range(len(showers)):
        a = _sorted_cells(cl[i])
        b = _sorted_cells(back[tokens.offsets[i]:tokens.offsets[i + 1]])
        np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-2)
        np.testing.assert_allclose(a[:, 3], b[:, 3], rtol=1e-5)


def test_window_drops_far_cells_and_counts_them(data):
    showers, _ = data
    cl = showers.showers
    frame = fit_frame(GEOMETRY, cl.cells, cl.offsets, showers.conditions["phi"])
    tokens = encode(GEOMETRY, frame, cl.cells, cl.offsets, showers.conditions["theta"], showers.conditions["phi"], 3)
    assert tokens.dropped.sum() > 0
    np.testing.assert_array_equal(tokens.counts + tokens.dropped, cl.counts)
    assert tokens.u.max() <= 6 and tokens.v.max() <= 6


def test_training_lowers_the_validation_likelihood(trained):
    _, history = trained
    epochs = history["per_epoch"]
    assert history["epochs"] == len(epochs) == 2
    assert epochs[-1]["valid_nll"] < epochs[0]["valid_nll"]
    assert all(np.isfinite(e["loss"]) for e in epochs)
    assert {"nll", "js", "energy", "center", "tail"} <= set(epochs[0])


def test_samples_are_valid_point_clouds_inside_the_barrel(trained, data):
    model, _ = trained
    showers, _ = data
    out = model.sample(showers.energies[:12], {k: v[:12] for k, v in showers.conditions.items()}, batch_size=5)
    cl = out.showers
    assert isinstance(cl, CellList) and len(cl) == 12 and cl.cells.shape[1] == 4
    assert cl.cells.dtype == np.float32 and len(cl.offsets) == 13
    assert np.all(np.isfinite(cl.cells))
    radius = np.hypot(cl.cells[:, 0], cl.cells[:, 1])
    barrel = GEOMETRY.barrel
    assert radius.min() >= barrel.inner_radius and radius.max() <= barrel.outer_radius
    assert np.abs(cl.cells[:, 2]).max() <= barrel.half_length
    assert cl.cells[:, 3].min() > 0
    # stops on its own: every shower ends (EOS) before the maximum length, none is empty
    assert np.all(cl.counts >= 1) and np.all(cl.counts < model.config["max_cells"])
    # every generated cell sits on a distinct pad
    for i in range(len(cl)):
        assert len(np.unique(np.round(cl[i][:, :3], 1), axis=0)) == len(cl[i])


def test_same_seed_same_samples_and_save_load(trained, data, tmp_path):
    model, _ = trained
    showers, _ = data
    energies, conditions = showers.energies[:6], {k: v[:6] for k, v in showers.conditions.items()}
    a = model.sample(energies, conditions).showers
    b = model.sample(energies, conditions).showers
    np.testing.assert_array_equal(a.cells, b.cells)
    model.save(tmp_path / "m")
    loaded = CellTransformer.load(tmp_path / "m")
    c = loaded.sample(energies, conditions).showers
    np.testing.assert_array_equal(a.cells, c.cells)
    assert loaded.parameter_count() == model.parameter_count() > 0
    other = CellTransformer.load(tmp_path / "m")
    other.seed = 99
    d = other.sample(energies, conditions).showers
    assert len(d.cells) != len(a.cells) or not np.array_equal(d.cells, a.cells)


def test_resume_ends_with_the_same_weights(data, tmp_path):
    showers, _ = data
    train = showers.take(np.arange(16))
    torch.set_num_threads(1)
    straight = CellTransformer("cepc", "tiny", seed=2, max_train_showers=16)
    straight.fit(train, epochs=2, progress=False)

    class Stop(Exception):
        pass

    def interrupt(epoch, history):
        raise Stop

    first = CellTransformer("cepc", "tiny", seed=2, max_train_showers=16)
    first.epoch_callback = interrupt
    with pytest.raises(Stop):
        first.fit(train, epochs=2, checkpoint_dir=tmp_path, progress=False)
    second = CellTransformer("cepc", "tiny", seed=2, max_train_showers=16)
    history = second.fit(train, epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert history["epochs"] == len(history["per_epoch"]) == 2
    for key, value in straight.state_arrays().items():
        np.testing.assert_array_equal(value, second.state_arrays()[key], err_msg=key)


def test_bad_inputs_raise_clear_errors(trained, data):
    model, _ = trained
    showers, _ = data
    with pytest.raises(CalobenchError, match="theta"):
        model.sample(showers.energies[:2], {"phi": showers.conditions["phi"][:2]})
    with pytest.raises(CalobenchError, match="positive"):
        model.sample(np.array([-1.0]), {"theta": np.array([90.0]), "phi": np.array([0.0])})
    with pytest.raises(CalobenchError, match="fit"):
        CellTransformer("cepc", "tiny").sample(np.array([4e4]), {"theta": np.array([90.0]), "phi": np.array([0.0])})
    with pytest.raises(CalobenchError, match="does not support"):
        CellTransformer("stcf11x11", "tiny")


def test_cached_generation_steps_match_the_training_pass(trained, data):
    """The block-local attention with a key/value cache equals the full teacher-forcing pass."""
    model, _ = trained
    showers, _ = data
    tokens, energies, theta, phi = model._encode_set(showers.take(np.arange(2)))
    batch = model._batch(tokens, energies, theta, phi, np.arange(2))
    net = model.net.eval()
    with torch.no_grad():
        x = net.embed(batch["in_layer"], batch["in_v"], batch["in_u"], batch["feats"], batch["cond"],
                      batch["position"])
        full = net.trunk(x)
        caches = [{} for _ in net.blocks]
        steps = torch.cat([net.trunk_step(x[:, t:t + 1], caches, t) for t in range(x.shape[1])], dim=1)
    assert x.shape[1] > 2 * model.config["window"]  # crosses block boundaries
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-4)
