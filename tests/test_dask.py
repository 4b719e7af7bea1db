"""Dask: simulate blocks on 1 and 2 workers, a killed worker, --resume, a sweep, compare --workers.

Every test uses a LocalCluster of at most 2 worker processes (CI has 2 cores); the Geant4
productions are small stcf11x11 samples (seconds).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import calobench
from calobench.errors import CalobenchError
from calobench.simulation import runner

distributed = pytest.importorskip("distributed")
HAS_G4 = importlib.util.find_spec("geant4_pybind") is not None
needs_g4 = pytest.mark.skipif(not HAS_G4, reason="geant4_pybind not installed (pip install calobench[geant4])")

#: 120 stcf11x11 photons in 6 blocks of 20.
ARGS = dict(dataset="stcf11x11", n=120, particles=["gamma"], energy="200:1000", seed=11, chunk=20, progress=False)


def _same_showers(a_path, b_path) -> None:
    a, b = calobench.load(str(a_path), "stcf11x11"), calobench.load(str(b_path), "stcf11x11")
    np.testing.assert_array_equal(a.showers, b.showers)
    np.testing.assert_array_equal(a.energies, b.energies)
    for name in a.conditions:
        np.testing.assert_array_equal(a.conditions[name], b.conditions[name])
    assert a.provenance["geant4_seeds"] == b.provenance["geant4_seeds"]


@pytest.fixture(scope="module")
def cluster_address():
    """One LocalCluster of 2 worker processes shared by the sweep and compare tests (starting the
    workers and importing calobench in them is most of a small task's cost)."""
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def one_worker_file(tmp_path_factory):
    """The production on one worker: what every other way of running it must reproduce."""
    path = runner.simulate(output=tmp_path_factory.mktemp("one") / "one.h5", workers=1, **ARGS)
    assert calobench.load(str(path), "stcf11x11").showers.sum() > 0
    return path


@needs_g4
def test_one_and_two_workers_give_identical_showers(one_worker_file, tmp_path):
    two = runner.simulate(output=tmp_path / "two.h5", workers=2, **ARGS)
    _same_showers(one_worker_file, two)
    assert not (tmp_path / "two.h5.parts").exists()


@needs_g4
def test_a_killed_worker_has_its_block_rerun_to_the_same_file(one_worker_file, tmp_path):
    out = tmp_path / "killed.h5"
    parts = tmp_path / "killed.h5.parts"
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") \
            as cluster, distributed.Client(cluster) as client:
        errors = []

        def produce():
            try:
                runner.simulate(output=out, scheduler=cluster.scheduler_address, **ARGS)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=produce)
        thread.start()
        deadline = time.time() + 300
        while not list(parts.glob("chunk-*.npz")) and time.time() < deadline and thread.is_alive():
            time.sleep(0.05)
        written = len(list(parts.glob("chunk-*.npz")))
        before = client.run(os.getpid)
        victim = sorted(before.values())[0]
        os.kill(victim, signal.SIGKILL)
        thread.join(300)
        assert not thread.is_alive() and not errors, errors
        assert 1 <= written < 6, "the worker was not killed mid-production"
        client.wait_for_workers(2, timeout=60)
        assert victim not in client.run(os.getpid).values()  # the nanny started a new worker
    _same_showers(one_worker_file, out)


@needs_g4
def test_interrupt_and_resume_gives_the_same_file(one_worker_file, tmp_path, monkeypatch):
    out = tmp_path / "resumed.h5"
    with pytest.raises(CalobenchError, match="--resume: nothing to resume"):
        runner.simulate(output=out, workers=1, resume=True, **ARGS)
    real_write = runner._write_part
    written = []

    def interrupt_after_two(path, *a, **k):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(path.name)
        return real_write(path, *a, **k)

    monkeypatch.setattr(runner, "_write_part", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        runner.simulate(output=out, workers=2, **ARGS)
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "resumed.h5.parts").glob("chunk-*")) == sorted(written)
    with pytest.raises(CalobenchError, match="--resume: .* other arguments"):
        runner.simulate(output=out, workers=1, resume=True, **{**ARGS, "seed": 12})
    # the mismatched --resume did not touch the parts
    assert len(list((tmp_path / "resumed.h5.parts").glob("chunk-*"))) == 2
    resumed = []
    monkeypatch.setattr(runner, "_write_part", lambda path, *a, **k: (resumed.append(path.name),
                                                                        real_write(path, *a, **k)))
    runner.simulate(output=out, workers=2, resume=True, **ARGS)
    assert len(resumed) == 4 and not set(resumed) & set(written)  # only the missing blocks ran
    _same_showers(one_worker_file, out)


def test_sweep_of_two_models_and_two_seeds_gives_four_entries(tmp_path, cluster_address):
    from calobench.sweep import SweepOptions, run_sweep

    # darkshine: its tiny preset uses the first 3000 showers of the embedded sample (the cheapest tiny runs)
    options = SweepOptions(models=("mean-shower", "gflash"), datasets=("darkshine",), seeds=(0, 1), preset="tiny",
                           workers=2, scheduler=cluster_address, leaderboard_dir=tmp_path / "lb", out=tmp_path / "runs",
                           device="cpu", timing=False)
    runs = run_sweep(options)
    assert [(r.model, r.seed) for r in runs] == [("mean-shower", 0), ("mean-shower", 1), ("gflash", 0), ("gflash", 1)]
    assert all(r.ok for r in runs), [r.error for r in runs]
    assert len({r.entry_id for r in runs}) == 4 and None not in {r.entry_id for r in runs}
    for r in runs:
        entry = json.loads((tmp_path / "runs" / "darkshine" / f"{r.model}-tiny-seed{r.seed}" / "entry.json").read_text())
        assert entry["id"] == r.entry_id and entry["provenance"]["seed"] == r.seed and entry["model"] == r.model
        assert r.leaderboard is not None and str(tmp_path / "lb") in r.leaderboard


def test_a_failed_sweep_run_is_reported_and_the_others_finish(tmp_path, cluster_address):
    from calobench.sweep import SweepOptions, run_sweep

    # mean-shower has no "nonsense" preset: both runs fail with the runner's own error, and finish
    options = SweepOptions(models=("mean-shower",), datasets=("stcf11x11",), seeds=(0, 1), preset="nonsense",
                           workers=2, scheduler=cluster_address, leaderboard_dir=None, out=tmp_path / "runs", device="cpu",
                           timing=False)
    runs = run_sweep(options)
    assert len(runs) == 2 and not any(r.ok for r in runs)
    assert all("unknown preset 'nonsense'" in r.error for r in runs)
    with pytest.raises(CalobenchError, match="--models: unknown model 'nope'"):
        run_sweep(SweepOptions(models=("nope",), datasets=("stcf11x11",)))


def test_sweep_cli_user_errors_exit_2(capsys):
    from calobench.cli import main

    for args, needle in ((["--models", "nope", "--datasets", "stcf11x11"], "--models: unknown model"),
                         (["--models", "gflash", "--datasets", "nope"], "--datasets: unknown dataset"),
                         (["--models", "gflash", "--datasets", "stcf11x11", "--seeds", "a"], "--seeds"),
                         (["--models", ",", "--datasets", "stcf11x11"], "--models: expected")):
        assert main(["sweep", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


def _challenge_file(path, n: int, seed: int) -> None:
    import h5py

    from calobench.datasets import get_geometry

    g = get_geometry("calochallenge-2")
    rng = np.random.default_rng(seed)
    e = 10 ** rng.uniform(3, 4, n)
    r2 = g.centres[:, 0] ** 2 + g.centres[:, 1] ** 2
    prof = np.exp(-r2 / (2 * 40.0 ** 2)) * np.exp(-g.centres[:, 2] / (g.centres[:, 2].max() + 1))
    prof /= prof.sum()
    x = e[:, None] * prof[None, :] * rng.gamma(5, 0.2, size=(n, g.n_cells)) * 0.9
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=e.reshape(-1, 1).astype(np.float32))
        f.create_dataset("showers", data=x.astype(np.float32))


def test_compare_with_two_workers_gives_the_single_process_numbers(tmp_path, cluster_address):
    from calobench.cli import main

    _challenge_file(tmp_path / "gen.h5", 240, 1)
    _challenge_file(tmp_path / "ref.h5", 240, 2)
    common = dict(metrics="hist,resolution,fpd,prdc,cls-low", repeats=1, cls_max_steps=10, cls_hidden=8,
                  progress=False, fpd_min_samples=100)
    gen, ref = str(tmp_path / "gen.h5"), str(tmp_path / "ref.h5")
    # 50-event chunks: 10 tasks whose states are merged
    calobench.compare(gen, ref, chunk_size=50, json_path=tmp_path / "one.json", **common)
    calobench.compare(gen, ref, chunk_size=50, json_path=tmp_path / "two.json", workers=2,
                      scheduler=cluster_address, **common)
    one, two = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("one", "two"))
    assert len(one["metrics"]) > 100 and "fpd" in one["metrics"] and "auc_low" in one["metrics"]
    assert json.dumps(one["metrics"], sort_keys=True) == json.dumps(two["metrics"], sort_keys=True)  # NaN-aware
    # the CLI: the default chunks (one per file), without and with the 2-worker cluster
    for name, extra in (("cli-one", []), ("cli-two", ["--scheduler", cluster_address])):
        assert main(["compare", gen, ref, "--metrics", "hist,resolution,fpd", "--quiet",
                     "--json", str(tmp_path / f"{name}.json"), *extra]) == 0
    cli_one, cli_two = (json.loads((tmp_path / f"cli-{k}.json").read_text())["metrics"] for k in ("one", "two"))
    assert "fpd" in cli_one and json.dumps(cli_one, sort_keys=True) == json.dumps(cli_two, sort_keys=True)


def test_compare_workers_needs_files_and_a_good_count(tmp_path):
    ss = calobench.load("stcf11x11").slice(0, 50)
    with pytest.raises(CalobenchError, match="not read from a file"):
        calobench.compare(ss, "stcf11x11", metrics="hist", workers=1, progress=False)
    with pytest.raises(CalobenchError, match="workers"):
        calobench.compare("stcf11x11", "stcf11x11", metrics="hist", workers=0, progress=False)
