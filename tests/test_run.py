"""`calobench run`: split, tiny end-to-end runs of every registered model, resume, safe checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import calobench
from calobench.cli import main
from calobench.errors import CalobenchError
from calobench.leaderboard import read_leaderboard, validation_errors
from calobench.models import registry
from calobench.models.base import CHECKPOINT_FILE, load_checkpoint
from calobench.baselines.gan.chi2_monitor import chi2_distance
from calobench.baselines.gan.dcgan import DCGAN
from calobench.baselines.parametric.mean_shower import MeanShower
from calobench import runner
from calobench.runner import RunOptions, run_benchmark, split_indices
from calobench.timing import TimingOptions


def _model_dataset_pairs() -> list[tuple[str, str]]:
    pairs = []
    for name, cls in sorted(registry.discover(warn=False)[0].items()):
        dataset = next((d for d in cls.supported_datasets() if calobench.get_dataset(d).has_embedded), None)
        if dataset is not None:
            pairs.append((name, dataset))
    return pairs


@pytest.fixture(scope="module")
def small_refs(tmp_path_factory):
    """dataset -> a file holding the first 200 events of its embedded sample."""
    folder = tmp_path_factory.mktemp("refs")
    cache: dict[str, str] = {}

    def get(dataset: str) -> str:
        if dataset not in cache:
            path = folder / f"{dataset}.h5"
            calobench.save(calobench.load(dataset).slice(0, 200), path)
            cache[dataset] = str(path)
        return cache[dataset]

    return get


def test_split_is_deterministic_and_disjoint():
    a = split_indices(1000)
    b = split_indices(1000)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    train, valid, test = a
    assert (len(train), len(valid), len(test)) == (700, 100, 200)
    assert len(np.unique(np.concatenate(a))) == 1000
    assert not np.array_equal(split_indices(1000, seed=1)[2], test)
    with pytest.raises(CalobenchError, match="at least 3"):
        split_indices(2)


@pytest.mark.parametrize("model, dataset", _model_dataset_pairs())
def test_tiny_run_end_to_end(model, dataset, small_refs, tmp_path, monkeypatch):
    """Every registered model: train (tiny, 1 epoch), generate, evaluate, time, leaderboard entry."""
    monkeypatch.setitem(runner.TIMING, "tiny", TimingOptions(batch_sizes=(1, 100), warmup=0, repeats=1, budget_s=0.1))
    reference = small_refs(dataset)
    options = RunOptions(model=model, dataset=dataset, preset="tiny", device="cpu", seed=3, epochs=1,
                         out=tmp_path / "run", reference=reference, leaderboard_dir=tmp_path / "lb", progress=False)
    outcome = run_benchmark(options)
    generated = calobench.load(tmp_path / "run" / "generated.h5", dataset)
    assert len(generated) == len(split_indices(len(calobench.load(reference, dataset)))[2])
    if generated.geometry.is_voxel:
        showers = generated.showers
        assert np.all(np.isfinite(showers)) and showers.min() >= 0
    assert (tmp_path / "run" / "model" / "weights.safetensors").is_file()
    board = read_leaderboard(tmp_path / "lb", dataset)
    assert [e["model"] for e in board["entries"]] == [model]
    entry = board["entries"][0]
    assert not validation_errors(entry)
    assert (tmp_path / "lb" / dataset / f"{entry['id']}.json").is_file()
    assert json.loads((tmp_path / "run" / "entry.json").read_text()) == entry
    assert 0.0 <= entry["metrics"]["auc_high"]["value"] <= 1.0
    assert "sep_etot_einc" in entry["metrics"]
    assert entry["parameters"] == outcome.model.parameter_count() > 0
    assert entry["timing"]["devices"]["cpu"]["batches"]["100"]["ms_per_shower"] > 0
    # the saved model reloads and generates the same kind of showers
    cls = registry.get_model(model)
    again = cls.load(tmp_path / "run" / "model")
    assert again.parameter_count() == outcome.model.parameter_count()


def _train_set(n: int = 300) -> tuple:
    ref = calobench.load("stcf11x11")
    return ref.slice(0, n), ref.slice(n, n + 100)


def test_dcgan_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    train, valid = _train_set()
    straight = DCGAN("stcf11x11", "tiny", seed=5)
    straight.fit(train, valid, epochs=3, checkpoint_dir=tmp_path / "a", progress=False)

    interrupted = DCGAN("stcf11x11", "tiny", seed=5)

    def stop(epoch, history):
        if epoch == 1:  # after the regressor pre-training and the first GAN epoch
            raise KeyboardInterrupt

    interrupted.epoch_callback = stop
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(train, valid, epochs=3, checkpoint_dir=tmp_path / "b", progress=False)
    assert load_checkpoint(tmp_path / "b")["epoch"] == 1

    torch.manual_seed(12345)  # a fresh process state: nothing may depend on it
    resumed = DCGAN("stcf11x11", "tiny", seed=5)
    history = resumed.fit(train, valid, epochs=3, checkpoint_dir=tmp_path / "b", resume=True, progress=False)
    a, b = straight.state_arrays(), resumed.state_arrays()
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert history["epochs"] == len([r["chi2"] for r in history["per_epoch"]]) == 3
    assert 1 <= history["best_epoch"] <= 3
    # and a different seed gives different weights
    other = DCGAN("stcf11x11", "tiny", seed=6)
    other.fit(train, valid, epochs=1, progress=False)
    assert not np.array_equal(other.state_arrays()["gen.out.weight"], a["gen.out.weight"])


def test_run_resume_reuses_finished_training(small_refs, tmp_path, capsys):
    common = ["--model", "mean-shower", "--dataset", "stcf11x11", "--preset", "tiny", "--out", str(tmp_path / "r"),
              "--reference", small_refs("stcf11x11"), "--leaderboard-dir", str(tmp_path / "lb"), "--quiet",
              "--no-timing"]
    assert main(["run", *common]) == 0
    first = json.loads((tmp_path / "r" / "entry.json").read_text())
    assert main(["run", *common, "--resume"]) == 0
    second = json.loads((tmp_path / "r" / "entry.json").read_text())
    assert second["timing"]["model_state"] == "saved"
    assert second["metrics"]["sep_etot_einc"] == first["metrics"]["sep_etot_einc"]
    # the re-run is kept beside the first entry (nothing is replaced); `show` ranks the newer one
    entries = read_leaderboard(tmp_path / "lb", "stcf11x11")["entries"]
    assert sorted(e["id"] for e in entries) == sorted([first["id"], second["id"]]) and first["id"] != second["id"]
    frame = calobench.leaderboard.table("stcf11x11", user_dir=tmp_path / "lb", curated=False).set_index("id")
    assert not frame.loc[first["id"], "latest"] and frame.loc[second["id"], "latest"]
    # resuming with other settings is refused
    assert main(["run", *common, "--resume", "--seed", "9"]) == 2
    assert "--resume needs the same settings" in capsys.readouterr().err


def test_run_records_into_the_user_folder_and_leaves_the_checkout_clean(small_refs, tmp_path,
                                                                         private_leaderboard_dir):
    """Without --leaderboard-dir the entry goes to $CALOBENCH_LEADERBOARD_DIR (the user's folder),
    never into the checkout's curated leaderboards/: `git status` is unchanged, run from the repo root."""
    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")

    def status() -> str:
        return subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout

    before = status()
    proc = subprocess.run([sys.executable, "-m", "calobench", "run", "--model", "mean-shower", "--dataset", "stcf11x11",
                           "--preset", "tiny", "--reference", small_refs("stcf11x11"), "--out", str(tmp_path / "r"),
                           "--quiet", "--no-timing"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert status() == before
    entries = read_leaderboard(private_leaderboard_dir, "stcf11x11")["entries"]
    assert [e["model"] for e in entries] == ["mean-shower"]


def test_run_model_settings(small_refs, tmp_path, capsys):
    """--set KEY=VALUE changes the model's config (recorded in the entry); unknown keys are refused."""
    common = ["--model", "mean-shower", "--dataset", "stcf11x11", "--preset", "tiny", "--out", str(tmp_path / "r"),
              "--reference", small_refs("stcf11x11"), "--leaderboard-dir", str(tmp_path / "lb"), "--quiet",
              "--no-timing"]
    assert main(["run", *common, "--set", "n_bins=3"]) == 0
    entry = json.loads((tmp_path / "r" / "entry.json").read_text())
    assert entry["provenance"]["config"]["n_bins"] == 3
    assert main(["run", *common, "--set", "bins=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "calobench: error: --set bins: not a setting of mean-shower's tiny preset; its settings: n_bins"


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch " + str(_Exploit.marker),))


def test_checkpoint_with_malicious_pickle_is_refused(tmp_path):
    _Exploit.marker = tmp_path / "pwned"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"epoch": 1, "payload": _Exploit()}, folder / CHECKPOINT_FILE)
    with pytest.raises(CalobenchError, match="not a safe calobench checkpoint"):
        load_checkpoint(folder)
    # a raw pickle file as well
    (folder / CHECKPOINT_FILE).write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(CalobenchError, match="not a safe calobench checkpoint"):
        load_checkpoint(folder)
    assert not _Exploit.marker.exists()
    # resuming a model from it is refused the same way
    train, valid = _train_set(100)
    torch.save({"epoch": 1, "payload": _Exploit()}, folder / CHECKPOINT_FILE)
    with pytest.raises(CalobenchError, match="not a safe calobench checkpoint"):
        DCGAN("stcf11x11", "tiny").fit(train, valid, epochs=1, checkpoint_dir=folder, resume=True, progress=False)
    assert not _Exploit.marker.exists()


def test_saved_model_folder_holds_no_pickle(tmp_path):
    train, _ = _train_set(200)
    model = MeanShower("stcf11x11", "tiny")
    model.fit(train)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "weights.safetensors"]
    again = MeanShower.load(tmp_path / "m")
    a = model.sample(train.energies[:20])
    b = again.sample(train.energies[:20])
    assert np.array_equal(a.showers, b.showers)
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model": "dcgan"}))
    with pytest.raises(CalobenchError, match="expected mean-shower, found dcgan"):
        MeanShower.load(tmp_path / "m")


def test_mean_shower_is_the_scaled_bin_mean():
    train, _ = _train_set(300)
    model = MeanShower("stcf11x11", "tiny")  # 4 bins
    model.fit(train)
    out = model.sample(train.energies[:50])
    # known answer: every generated shower is a bin mean (per unit energy) times its energy
    bins = model._nearest_bin(train.energies[:50])
    expected = model.means[bins] * train.energies[:50, None].astype(np.float32)
    expected[expected < model.dataset.geometry.threshold] = 0
    assert np.allclose(out.showers, expected, rtol=1e-6)
    # E_tot / E_inc is one value per bin: no fluctuations at all
    ratio = out.total_energy() / out.energies
    assert len(np.unique(np.round(ratio[bins == bins[0]], 3))) <= 2


def test_chi2_distance_floor_and_ceiling():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 20000), rng.normal(0, 1, 20000)
    far = rng.normal(1, 1, 20000)
    assert chi2_distance(a, b) < 150.0  # about twice the number of bins (30) when both come from one law
    assert chi2_distance(far, b) > 50 * chi2_distance(a, b)


def test_dcgan_energies_never_negative():
    train, valid = _train_set(200)
    model = DCGAN("stcf11x11", "tiny", seed=1)
    model.fit(train, valid, epochs=1, progress=False)
    out = model.sample(train.energies, train.conditions)
    showers = out.showers
    assert showers.min() >= 0
    nonzero = showers[showers > 0]
    assert nonzero.size == 0 or nonzero.min() >= model.dataset.geometry.threshold


def test_quick_preset_trains_on_at_most_the_datasets_quick_train_events():
    from calobench.runner import split_reference, training_showers

    ref = calobench.load("cepc")  # the embedded 300 showers: training split 210
    train, _, test = split_reference(ref)
    cap = calobench.get_dataset("cepc").quick_train_events
    assert cap == 1000 and len(train) < cap  # below the cap: nothing is cut
    assert len(training_showers(train, "cepc", "quick")) == len(train)
    big = ref.take(np.arange(len(ref)).repeat(5))  # 1500 showers: training split 1050
    big_train, _, big_test = split_reference(big)
    quick = training_showers(big_train, "cepc", "quick")
    assert len(quick) == cap and np.array_equal(quick.energies, big_train.energies[:cap])
    assert len(training_showers(big_train, "cepc", "full")) == len(big_train)  # only quick is capped
    assert len(training_showers(big_train, "stcf11x11", "quick")) == len(big_train)  # no cap on stcf11x11
