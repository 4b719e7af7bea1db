"""Device plumbing that can be checked without a GPU: every tensor of a torch baseline follows
``to``/``place``, a model moved to a device keeps its samples, timing synchronises the device
before reading its clock, and asking for an absent device is one line and exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import calobench
import calobench.timing as timing
from calobench.cli import main
from calobench.errors import CalobenchError
from calobench.hardware import available_devices
from calobench.models.registry import discover
from calobench.models.torch_base import TorchGenerator, misplaced_tensors
from calobench.timing import TimingOptions, time_batch

TORCH_MODELS = sorted(name for name, cls in discover()[0].items() if issubclass(cls, TorchGenerator))
NO_CUDA = "cuda" not in available_devices()


def prepared(name: str) -> tuple[TorchGenerator, calobench.ShowerSet]:
    """A tiny, untrained ``name`` with its normalisation fitted, and its dataset's reference."""
    cls = discover()[0][name]
    dataset = cls.supported_datasets()[0]
    ref = calobench.load(dataset)
    model = cls(dataset, "tiny", seed=3)
    model.prepare(ref.slice(0, min(len(ref), 256)))
    return model, ref


def test_every_torch_baseline_is_found():
    assert {"dcgan", "bes3-gan", "nnls-cgan", "wgan-gp", "vae", "flow", "ddpm-unet", "score-sde",
            "cell-transformer"} <= set(TORCH_MODELS)


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_every_tensor_follows_a_move(name: str):
    model, ref = prepared(name)
    model.sample(ref.energies[:4], {k: v[:4] for k, v in ref.conditions.items()}, batch_size=4)  # fills caches
    assert misplaced_tensors(model, "cpu") == []
    # the meta device exists on every torch build: a move there shows where each tensor goes
    model.place(torch.device("meta"))
    assert misplaced_tensors(model, "meta") == []
    assert model.torch_device == torch.device("meta")


def test_misplaced_tensors_names_what_was_left_behind():
    model, _ = prepared("flow")
    model.after_move = lambda: None  # a model that forgets its cached constants
    model.place(torch.device("meta"))
    found = misplaced_tensors(model, "meta")
    assert "_c['y_std'] (cpu)" in found and "_layer_id (cpu)" in found
    # networks are moved by place itself: none of their parameters is listed
    assert not any(path.startswith(("flow1.", "flow2.")) for path in found)


def test_misplaced_tensors_walks_attributes_modules_and_containers():
    model, _ = prepared("dcgan")
    assert misplaced_tensors(model, "cpu") == []
    model.scale = torch.ones(3, device="meta")
    model.cache = {"table": [torch.zeros(2), (np.zeros(2), torch.zeros(1, device="meta"))]}
    model.gen.offset = torch.zeros(1, device="meta")  # a plain tensor set on a module
    model.gen.register_buffer("table", torch.zeros(2, device="meta"))
    assert sorted(misplaced_tensors(model, "cpu")) == sorted([
        "scale (meta)", "cache['table'][1][1] (meta)", "gen.offset (meta)", "gen.table (meta)"])
    assert misplaced_tensors(model, "cpu", host_ok=("scale", "cache", "gen")) == []
    # a device with an index only matches that index; without one, any index of the kind
    assert misplaced_tensors(torch.nn.Linear(1, 1), "cpu") == []


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_a_model_moved_to_the_cpu_keeps_its_samples(name: str):
    stay, ref = prepared(name)
    moved, _ = prepared(name)
    moved.to("cpu")
    moved.to("auto")  # resolves to this machine's best device (the CPU here)
    n = 6
    e, c = ref.energies[:n], {k: v[:n] for k, v in ref.conditions.items()}
    a, b = stay.sample(e, c, batch_size=4), moved.sample(e, c, batch_size=4)  # two batches
    cells_a = getattr(a.showers, "cells", a.showers)
    cells_b = getattr(b.showers, "cells", b.showers)
    np.testing.assert_array_equal(np.asarray(cells_a), np.asarray(cells_b))
    assert misplaced_tensors(moved, "cpu") == []


class Recorder:
    """A generator whose sample() writes into a shared log, beside the clock and the sync hook."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def sample(self, energies: np.ndarray, conditions: dict, batch_size: int) -> np.ndarray:
        self.log.append("sample")
        return energies


def test_timing_synchronises_the_device_before_every_clock_reading(monkeypatch):
    log: list[str] = []
    ticks = iter(range(1000))

    def clock() -> float:
        log.append("clock")
        return float(next(ticks))

    monkeypatch.setattr(timing, "synchronise", lambda device: log.append(f"sync {device}"))
    monkeypatch.setattr(timing, "clock_for", lambda options: clock)
    out = time_batch(Recorder(log), np.full(4, 1000.0), {}, 4, "cuda",
                     TimingOptions(warmup=2, repeats=3, min_repeats=3, budget_s=1e9))
    assert log == ["sample", "sample", "sync cuda"] + ["clock", "sample", "sync cuda", "clock"] * 3
    assert out["repeats"] == 3 and out["warmup"] == 2
    assert out["ms_per_shower"] == pytest.approx(1000.0 / 4)  # one tick per call, 4 showers


def test_synchronise_is_a_no_op_on_the_cpu():
    assert timing.synchronise("cpu") is None


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
def test_model_on_an_absent_device_is_a_one_line_error():
    with pytest.raises(CalobenchError, match="'cuda': not available on this machine; devices present: cpu"):
        calobench.models.registry.get_model("dcgan")("stcf11x11", "tiny", device="cuda")
    model, _ = prepared("dcgan")
    with pytest.raises(CalobenchError, match="not available"):
        model.to("cuda")
    assert model.device == "cpu" and misplaced_tensors(model, "cpu") == []  # a refused move changes nothing


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
@pytest.mark.parametrize("argv", [
    ["time", "--model", "dcgan", "--dataset", "stcf11x11", "--preset", "tiny", "--devices", "cuda"],
    ["run", "--model", "dcgan", "--dataset", "stcf11x11", "--preset", "tiny", "--device", "cuda"],
])
def test_cli_absent_cuda_is_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'cuda': not available on this machine" in err
