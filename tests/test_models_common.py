"""The parts the learned models share: the condition encoder and the one training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from calobench.datasets import get_dataset
from calobench.errors import CalobenchError
from calobench.models.base import load_checkpoint
from calobench.models.common.conditioning import (ConditionEncoder, float32_mean_std, mean_std,
                                                  mean_std_plus_epsilon, particle_codes)
from calobench.models.common.trainer import Trainer, shuffled_batches
from calobench.models.torch_base import TorchGenerator

# ---- conditioning ----------------------------------------------------------------------


def bes3_inputs(n: int = 6) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    energies = rng.uniform(100.0, 2000.0, n)
    conditions = {"particle": np.array([22.0, 11.0, -11.0] * (n // 3)), "px": rng.normal(0, 100, n),
                  "py": rng.normal(0, 100, n), "pz": rng.normal(0, 100, n), "E": energies.copy()}
    return energies, conditions


def test_encoder_columns_standardisation_and_one_hot():
    energies, conditions = bes3_inputs()
    encoder = ConditionEncoder(get_dataset("bes3-11x11"), signed_log=("E",))
    assert encoder.n_features == 5 + 3
    raw = encoder.columns(energies, conditions)
    np.testing.assert_array_equal(raw[:, 0], np.log(energies))
    np.testing.assert_array_equal(raw[:, 4], np.log(energies + 1.0))  # sign(E) log(1 + |E|)
    encoder.fit(energies, conditions)
    out = encoder.encode(energies, conditions)
    assert out.dtype == np.float32 and out.shape == (6, 8)
    np.testing.assert_allclose(out[:, :5].mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, :5].std(0), 1.0, rtol=1e-5)
    codes = particle_codes(get_dataset("bes3-11x11"))
    assert codes == [22, 11, -11]
    np.testing.assert_array_equal(out[:, 5:], (conditions["particle"][:, None] == np.array(codes)).astype(np.float32))
    again = ConditionEncoder(get_dataset("bes3-11x11"), signed_log=("E",))
    again.load(encoder.state())
    np.testing.assert_array_equal(again.encode(energies, conditions), out)


def test_encoder_angles_and_fixed_standardisation():
    encoder = ConditionEncoder(get_dataset("cepc"), conditions=("theta",), angles=("theta",))
    encoder.set_standardisation([10.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    out = encoder.encode(np.array([np.exp(10.0)]), {"theta": np.array([60.0])})
    np.testing.assert_allclose(out, [[0.0, 0.5, np.sqrt(3) / 2]], atol=1e-6)


def test_stats_rules():
    raw = np.stack([np.log([100.0, 100.0, 100.0]), [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], axis=1)
    mean, spread = mean_std(raw)
    np.testing.assert_array_equal(spread[[0, 2]], 1.0)  # constant columns keep spread 1
    np.testing.assert_allclose(spread[1], np.std([1.0, 2.0, 3.0]))
    _, spread = mean_std_plus_epsilon(raw)
    np.testing.assert_allclose(spread, raw.std(0) + 1e-6)
    mean, spread = float32_mean_std(raw)
    assert mean.dtype == spread.dtype == np.float32
    np.testing.assert_allclose(spread, [1e-3, np.std([1.0, 2.0, 3.0]), 1e-6], rtol=1e-6)


def test_encoder_check_names_what_is_wrong():
    energies, conditions = bes3_inputs()
    encoder = ConditionEncoder(get_dataset("bes3-11x11"))
    checked_e, checked = encoder.check(energies, {**conditions, "other": np.zeros(6)}, "sample")
    assert list(checked) == ["particle", "px", "py", "pz", "E"]  # the dataset's conditions only
    with pytest.raises(CalobenchError, match=r"sample: missing condition\(s\) px"):
        encoder.check(energies, {k: v for k, v in conditions.items() if k != "px"}, "sample")
    with pytest.raises(CalobenchError, match="sample: condition 'particle': PDG code.s. 211 not among"):
        encoder.check(energies, {**conditions, "particle": np.full(6, 211.0)}, "sample")
    with pytest.raises(CalobenchError, match="sample: energies must be finite and positive"):
        encoder.check(-energies, conditions, "sample")
    with pytest.raises(CalobenchError, match="condition 'py': expected finite values"):
        encoder.check(energies, {**conditions, "py": np.full(6, np.nan)}, "sample")


# ---- the training loop -----------------------------------------------------------------


class Toy(TorchGenerator):
    """A linear regression trained through the Trainer, with noise from the model's stream."""

    name = "toy"
    family = "gan"
    datasets = ("stcf11x11",)
    presets = {"tiny": {}}
    scores = [3.0, 1.0, 2.0, 4.0]  # the monitored value per epoch: epoch 2 is the best

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.net = nn.Linear(3, 1)

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def fit(self, train=None, valid=None, *, epochs=None, checkpoint_dir=None, resume=False, progress=False):
        x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
        y = x.sum(1, keepdim=True)
        opt = torch.optim.SGD(self.net.parameters(), lr=0.05)

        def step(idx):
            noise = torch.randn(len(idx), 1, generator=self.rng)
            loss = ((self.net(x[idx]) - y[idx] - 0.1 * noise) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"loss": loss.item()}

        trainer = Trainer(self, {"sgd": opt}, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress,
                          monitor="score", keep_best=["net"])
        return trainer.run(epochs, lambda epoch: shuffled_batches(40, 8, self.rng), step,
                           end_epoch=lambda epoch: {"score": self.scores[epoch]},
                           pretrain=lambda: {"ran": True})

    def sample(self, energies, conditions=None, batch_size=10000):
        raise NotImplementedError


class Stop(Exception):
    pass


def test_shuffled_batches():
    batches = shuffled_batches(10, 4, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    assert [len(b) for b in shuffled_batches(10, 4, torch.Generator().manual_seed(0), drop_last=True)] == [4, 4]


def test_trainer_history_checkpoint_and_best_epoch(tmp_path):
    model = Toy("stcf11x11", "tiny", seed=1)
    weights = []
    model.epoch_callback = lambda epoch, history: weights.append(model.net.weight.detach().clone())
    history = model.fit(epochs=4, checkpoint_dir=tmp_path)
    assert history["epochs"] == 4 and history["best_epoch"] == 2 and history["pretrain"] == {"ran": True}
    assert [r["epoch"] for r in history["per_epoch"]] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) for r in history["per_epoch"])
    assert history["seconds"] > 0
    assert torch.equal(model.net.weight, weights[1])  # the best epoch's weights are kept
    state = load_checkpoint(tmp_path)
    assert state["model"] == "toy" and state["dataset"] == "stcf11x11" and state["epoch"] == 4


def test_trainer_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    straight = Toy("stcf11x11", "tiny", seed=1)
    last = {}
    straight.epoch_callback = lambda epoch, history: last.update(straight=straight.net.weight.detach().clone())
    straight.fit(epochs=4)

    def interrupt(epoch, history):
        if epoch == 3:
            raise Stop

    first = Toy("stcf11x11", "tiny", seed=1)
    first.epoch_callback = interrupt
    with pytest.raises(Stop):
        first.fit(epochs=4, checkpoint_dir=tmp_path)
    torch.manual_seed(99)  # nothing may depend on the process state
    second = Toy("stcf11x11", "tiny", seed=1)
    second.epoch_callback = lambda epoch, history: last.update(second=second.net.weight.detach().clone())
    history = second.fit(epochs=4, checkpoint_dir=tmp_path, resume=True)
    assert [r["epoch"] for r in history["per_epoch"]] == [1, 2, 3, 4] and history["best_epoch"] == 2
    assert torch.equal(last["straight"], last["second"])  # the weights after epoch 4
    for key, value in straight.state_arrays().items():  # and the best epoch's, kept by both
        np.testing.assert_array_equal(value, second.state_arrays()[key], err_msg=key)


def test_trainer_refuses_a_checkpoint_of_another_model(tmp_path):
    Toy("stcf11x11", "tiny").fit(epochs=1, checkpoint_dir=tmp_path)

    class Other(Toy):
        name = "other"

    with pytest.raises(CalobenchError, match="checkpoint of toy on stcf11x11, expected other on stcf11x11"):
        Other("stcf11x11", "tiny").fit(epochs=2, checkpoint_dir=tmp_path, resume=True)
