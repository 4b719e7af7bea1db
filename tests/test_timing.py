"""Timing: ms per shower per batch size and device, speed-up over Geant4, `calobench time`."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import calobench
from calobench.cli import main
from calobench.baselines.parametric.mean_shower import MeanShower
from calobench.datasets import PDG, get_dataset
from calobench.timing import (TimingOptions, available_devices, fake_inputs, geant4_ms, schema_keys, time_batch,
                              time_model)


@pytest.fixture(scope="module")
def fitted():
    ref = calobench.load("stcf11x11").slice(0, 300)
    model = MeanShower("stcf11x11", "tiny")
    model.fit(ref)
    return model, ref


def test_time_batch_counts_repeats_and_is_positive(fitted):
    model, ref = fitted
    out = time_batch(model, ref.energies, ref.conditions, 50, "cpu", TimingOptions(warmup=1, repeats=4, budget_s=60))
    assert out["repeats"] == 4 and out["warmup"] == 1
    assert out["ms_per_shower"] > 0 and out["std"] >= 0
    # a budget of zero still gives one timed call
    out = time_batch(model, ref.energies, ref.conditions, 10, "cpu", TimingOptions(warmup=0, repeats=5, budget_s=0))
    assert out["repeats"] == 1 and out["std"] == 0.0


class Sleeper:
    """A stand-in generator whose sample() sleeps 20 ms: wall time, next to no CPU time."""

    def sample(self, energies: np.ndarray, conditions: dict, batch_size: int) -> np.ndarray:
        time.sleep(0.02)
        return energies


def test_time_batch_wall_or_process_cpu_time():
    energies = np.full(10, 1000.0)
    wall = time_batch(Sleeper(), energies, {}, 10, "cpu", TimingOptions(warmup=0, repeats=2))
    cpu = time_batch(Sleeper(), energies, {}, 10, "cpu", TimingOptions(warmup=0, repeats=2, cpu_time=True))
    assert wall["ms_per_shower"] >= 1.9  # 20 ms over 10 showers
    assert cpu["ms_per_shower"] < 0.5 and cpu["repeats"] == 2


def test_fake_inputs_follow_the_dataset():
    dataset = get_dataset("bes3-11x11")
    energies, conditions = fake_inputs("bes3-11x11", 500, seed=1)
    low, high = dataset.energy_range
    assert energies.shape == (500,) and low <= energies.min() and energies.max() <= high
    assert set(conditions) == set(dataset.conditions)
    assert set(np.unique(conditions["particle"])) <= {PDG[p] for p in dataset.particles}
    momentum = np.sqrt(conditions["px"] ** 2 + conditions["py"] ** 2 + conditions["pz"] ** 2)
    np.testing.assert_allclose(momentum, energies)
    np.testing.assert_array_equal(conditions["E"], energies)
    again, _ = fake_inputs("bes3-11x11", 500, seed=1)
    np.testing.assert_array_equal(again, energies)
    assert fake_inputs("calochallenge-2", 3)[1] == {}


def test_time_model_devices_and_speedup(fitted):
    model, ref = fitted
    timing = time_model(model, ref.energies, ref.conditions,
                        options=TimingOptions(batch_sizes=(1, 100), warmup=0, repeats=2, budget_s=5))
    assert list(timing["devices"]) == ["cpu"]  # a numpy model is timed on cpu only
    g4 = timing["geant4_ms_per_event"]
    assert g4 == geant4_ms("stcf11x11")
    for bs in ("1", "100"):
        t = timing["devices"]["cpu"]["batches"][bs]
        if g4 is None:
            assert t["speedup_vs_geant4"] is None
        else:
            assert t["speedup_vs_geant4"] == pytest.approx(g4 / t["median_ms_per_shower"])
    assert "cpu" in available_devices()


def test_geant4_time_absent_is_none():
    # no embedded sample (hence no Geant4 timing) for the CaloChallenge dataset 1
    assert geant4_ms("calochallenge-1-photons") is None
    value = geant4_ms("stcf11x11")
    assert value is None or value > 0


def test_torch_model_timed_on_every_available_device():
    from calobench.baselines.gan.dcgan import DCGAN

    ref = calobench.load("stcf11x11").slice(0, 200)
    model = DCGAN("stcf11x11", "tiny")
    model.prepare(ref)
    timing = time_model(model, ref.energies, ref.conditions,
                        options=TimingOptions(batch_sizes=(3,), warmup=0, repeats=1, budget_s=1))
    assert list(timing["devices"]) == available_devices()
    assert model.device == "cpu"  # moved back


def test_time_cli_fresh_model(capsys):
    assert main(["time", "--model", "dcgan", "--dataset", "stcf11x11", "--preset", "tiny", "--batch-sizes", "1,20",
                 "--repeats", "2", "--devices", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["timing"]["model_state"] == "fresh"
    assert "freshly initialised" in out["timed"]
    assert set(out["timing"]["devices"]["cpu"]["batches"]) == {"1", "20"}
    assert main(["time", "--model", "dcgan", "--dataset", "stcf11x11", "--batch-sizes", "0"]) == 2


def test_time_cli_saved_model(tmp_path, capsys, fitted):
    model, _ = fitted
    model.save(tmp_path / "m")
    assert main(["time", "--model", "mean-shower", "--dataset", "stcf11x11", "--load", str(tmp_path / "m"),
                 "--batch-sizes", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["timing"]["model_state"] == "saved"
    assert np.isfinite(out["timing"]["devices"]["cpu"]["batches"]["5"]["ms_per_shower"])


def test_batch_sizes_too_slow_for_the_call_limit_are_skipped_and_valid(fitted):
    import jsonschema

    from calobench.leaderboard.store import schema as load_schema

    model, ref = fitted
    timing = time_model(model, ref.energies, ref.conditions,
                        options=TimingOptions(batch_sizes=(1, 100, 10000), warmup=0, repeats=1,
                                              max_call_s=1e-12))
    batches = timing["devices"]["cpu"]["batches"]
    for bs in ("1", "100"):  # batch sizes up to 100 are always measured
        assert batches[bs]["ms_per_shower"] > 0
    assert "limit" in batches["10000"]["skipped"] and batches["10000"]["estimated_s"] > 0
    schema = load_schema()
    timing_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/batch_timing"}
    # the entry carries the keys the schema declares (schema_keys; the rest stays in timing.json)
    entry_batches = schema_keys(timing, schema)["devices"]["cpu"]["batches"]
    assert entry_batches["100"]["ms_per_shower"] == batches["100"]["ms_per_shower"]
    jsonschema.validate(entry_batches["10000"], timing_schema)
    jsonschema.validate(entry_batches["100"], timing_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"skipped": "too slow"}, timing_schema)  # the estimate is required


def test_time_cli_model_settings(capsys):
    """--set KEY=VALUE reaches the model; a key the preset does not have is a one-line error."""
    base = ["time", "--model", "bes3-gan", "--dataset", "bes3-11x11", "--preset", "tiny", "--batch-sizes", "20",
            "--repeats", "1", "--devices", "cpu", "--json"]
    assert main(base + ["--set", "sampling_precision=bfloat16"]) == 0
    assert json.loads(capsys.readouterr().out)["timing"]["devices"]["cpu"]["batches"]["20"]["ms_per_shower"] > 0
    assert main(base + ["--set", "sampling_precision=float16"]) == 2
    assert capsys.readouterr().err.strip() == ("calobench: error: model bes3-gan: sampling_precision 'float16' "
                                               "is not one of float32, bfloat16")
    assert main(base + ["--set", "sampling_precison=bfloat16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("calobench: error: --set sampling_precison: not a setting of bes3-gan's tiny preset")
    assert len(err.splitlines()) == 1


def test_parse_settings_reads_json_values_and_refuses_bad_items():
    from calobench.cli.settings import parse_settings
    from calobench.errors import CalobenchError

    got = parse_settings(["lr=1e-3", "epochs=4", "threshold_fakes=false", "name=bfloat16", 'quoted="x=y"'])
    assert got == {"lr": 1e-3, "epochs": 4, "threshold_fakes": False, "name": "bfloat16", "quoted": "x=y"}
    with pytest.raises(CalobenchError, match="expected KEY=VALUE"):
        parse_settings(["epochs"])
    with pytest.raises(CalobenchError, match="not a setting of m; its settings: a, b"):
        parse_settings(["c=1"], ["b", "a"], "m")


def test_load_with_overrides(tmp_path):
    from calobench.errors import CalobenchError
    from calobench.baselines.gan.bes3_gan import Bes3GAN

    folder = Bes3GAN("bes3-11x11", "tiny", seed=1).save(tmp_path / "m")
    loaded = Bes3GAN.load(folder, overrides={"sampling_precision": "bfloat16"})
    assert loaded.config["sampling_precision"] == "bfloat16"
    with pytest.raises(CalobenchError, match=r"config\.json: cannot set colour: not a setting of the saved model"):
        Bes3GAN.load(folder, overrides={"colour": 1})


def test_timing_record_carries_threads_cpu_and_load(fitted, capsys):
    import torch

    from calobench.hardware import cpu_name

    model, ref = fitted
    torch.set_num_threads(2)
    warnings: list[str] = []
    timing = time_model(model, ref.energies, ref.conditions, warn=warnings.append,
                        options=TimingOptions(batch_sizes=(1, 10), warmup=0, repeats=5, budget_s=5, threads=1))
    assert torch.get_num_threads() == 2  # restored after the measurement
    assert timing["threads"] == 1 and timing["devices"]["cpu"]["threads"] == 1
    assert timing["cpu_model"] == cpu_name() and timing["cpu_model"]
    assert timing["cores"] >= 1
    for key in ("load_1min_before", "load_1min_after"):
        assert timing[key] is None or timing[key] >= 0
    assert (timing["load_warning"] is None) == (not warnings)
    batch = timing["devices"]["cpu"]["batches"]["10"]
    assert batch["repeats"] == 5
    assert batch["median_ms_per_shower"] > 0 and batch["iqr_ms_per_shower"] >= 0
    torch.set_num_threads(1)


def test_load_warning_when_the_load_leaves_too_few_cores():
    from calobench.timing import load_warning

    assert load_warning(0.5, 1, 2) is None
    assert load_warning(1.5, 1, 2) is not None and "1.50" in load_warning(1.5, 1, 2)
    assert load_warning(1.5, 2, 4) is None and load_warning(2.5, 2, 4) is not None
    assert load_warning(None, 1, 2) is None


def test_several_repeats_even_when_the_budget_is_small(fitted):
    model, ref = fitted
    t = time_batch(model, ref.energies, ref.conditions, 5, "cpu",
                   TimingOptions(warmup=0, repeats=10, budget_s=1e-9, min_repeats=3))
    assert t["repeats"] == 1  # one call already over the budget: no more
    t = time_batch(model, ref.energies, ref.conditions, 5, "cpu",
                   TimingOptions(warmup=0, repeats=10, budget_s=0.5, min_repeats=3))
    assert t["repeats"] >= 3


def test_time_cli_threads_and_load_warning_on_stderr(capsys, monkeypatch):
    import os

    monkeypatch.setattr(os, "getloadavg", lambda: (1000.0, 0.0, 0.0))
    assert main(["time", "--model", "mean-shower", "--dataset", "stcf11x11", "--batch-sizes", "5",
                 "--repeats", "2", "--threads", "1", "--json"]) == 0
    captured = capsys.readouterr()
    timing = json.loads(captured.out)["timing"]
    assert timing["threads"] == 1 and timing["load_1min_before"] == 1000.0
    lines = [line for line in captured.err.splitlines() if "load average" in line]
    assert len(lines) == 1 and "1000.00" in lines[0]
    assert main(["time", "--model", "mean-shower", "--dataset", "stcf11x11", "--threads", "0"]) == 2
