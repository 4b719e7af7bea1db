"""`calobench run`: train a registered model, generate, evaluate, time, add a leaderboard entry.

Steps (``run_benchmark``):
1. the reference (the dataset's embedded sample, or a file) is split into train / validation /
   test by a fixed seed (SPLIT_SEED, the same for every model, so every model is tested on the
   same showers) in the fractions SPLIT_FRACTIONS;
2. the model is trained on train (monitoring on validation) with checkpoints in
   ``<out>/checkpoint`` after every epoch; ``resume`` continues from there, or reuses the
   saved model when training had finished;
3. the trained model is saved to ``<out>/model`` (config.json + weights.safetensors);
4. one shower is generated per test event (its incident energy and conditions) and written
   to ``<out>/generated.h5`` in the dataset's layout;
5. calobench.api.compare evaluates generated against the test split (``<out>/metrics.json``);
6. generation is timed on every available device (calobench.timing), at `--threads` CPU threads
   (default TIMING_THREADS = 1, whatever the training used);
7. an entry is added as ``<leaderboard_dir>/<dataset>/<entry-id>.json`` (default: the user's
   leaderboard folder, calobench.leaderboard.locations.user_dir(); never the curated one).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from calobench.api import compare, load, save
from calobench.data.validation import check_int_option, check_output_dir
from calobench.errors import CalobenchError
from calobench.hardware import check_device
from calobench.models.base import CONFIG_FILE, Generator, write_json_atomic
from calobench.models.registry import check_supported
from calobench.data.showerset import ShowerSet
from calobench.timing import TIMING_THREADS, TimingOptions, schema_keys, time_model

if TYPE_CHECKING:
    from calobench.metrics.result import Result

SPLIT_SEED = 20241121
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, validation, test

#: compare() options per preset. Leaderboard entries record the options they were measured with.
EVALUATION = {
    "tiny": {"metrics": "hist,fpd,cls-high", "repeats": 1, "cls_min_steps": 20, "cls_max_steps": 40, "replicas": 4,
             "cls_hidden": 64,
             "fpd_min_samples": 200},
    "quick": {"repeats": 3, "replicas": 20},
    "full": {"repeats": 5, "replicas": 20},
}
TIMING = {
    "tiny": TimingOptions(batch_sizes=(1, 100), warmup=1, repeats=2, budget_s=2.0),
    "quick": TimingOptions(warmup=1, repeats=5, budget_s=15.0),
    "full": TimingOptions(warmup=2, repeats=10, budget_s=60.0),
}


@dataclass
class RunOptions:
    """What to run. reference: a shower file instead of the dataset's embedded sample.
    out: the run folder (default runs/<dataset>/<model>-<preset>-seed<seed>).
    leaderboard_dir: where the entry is recorded (default: $CALOBENCH_LEADERBOARD_DIR, else the
    per-user data folder); None: no entry."""

    model: str
    dataset: str
    preset: str = "quick"
    device: str = "auto"
    seed: int = 0
    epochs: int | None = None
    out: str | Path | None = None
    resume: bool = False
    reference: str | Path | None = None
    leaderboard_dir: str | Path | None = field(default_factory=lambda: _user_leaderboard_dir())
    progress: bool = True
    timing: bool = True
    overrides: dict = field(default_factory=dict)
    command: str = ""
    threads: int | None = None
    reference_tree: str | None = None
    reference_branches: dict[str, str] = field(default_factory=dict)

    def torch_threads(self) -> int | None:
        """Torch CPU threads for training and evaluation: ``threads``, else 1 for the tiny and
        quick presets (small batches: a second thread costs more than it gains, and far more on a
        busy machine), else torch's default (None). Timing always uses torch's default."""
        if self.threads is not None:
            return self.threads
        return 1 if self.preset in ("tiny", "quick") else None

    def out_dir(self) -> Path:
        if self.out is not None:
            return Path(self.out)
        return Path("runs") / self.dataset / f"{self.model}-{self.preset}-seed{self.seed}"


def _user_leaderboard_dir() -> Path:
    from calobench.leaderboard.locations import user_dir

    return user_dir()


@dataclass
class RunOutcome:
    model: Generator
    history: dict
    result: Result
    timing: dict
    entry: dict
    out: Path
    leaderboard: Path | None
    trained: bool
    seconds: dict


def split_indices(n: int, seed: int = SPLIT_SEED,
                  fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic (train, validation, test) index arrays (each sorted) of ``n`` events."""
    if n < 3:
        raise CalobenchError(f"reference sample: {n} events; at least 3 are needed to split train/validation/test")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(fractions[2] * n)))
    n_valid = max(1, int(round(fractions[1] * n)))
    test, valid, train = order[:n_test], order[n_test:n_test + n_valid], order[n_test + n_valid:]
    return np.sort(train), np.sort(valid), np.sort(test)


def load_reference(dataset: str, reference: str | Path | None = None, tree: str | None = None,
                   branches: dict[str, str] | None = None) -> ShowerSet:
    """The dataset's embedded sample, or ``reference`` read as a file of that dataset (a ROOT file
    from ``tree`` with ``branches``, see calobench.data.rootfile)."""
    if reference is None:
        return load(dataset, dataset)
    return load(reference, dataset, tree, branches)


def _reference_name(options: "RunOptions") -> str:
    """What the run ranks against: the file given, the embedded sample, or the dataset's
    benchmark reference built from its recipe (``benchmark:<dataset>``)."""
    from calobench.datasets import get_dataset

    if options.reference is not None:
        return str(options.reference)
    dataset = get_dataset(options.dataset)
    if options.preset == "tiny" and dataset.quick_events is not None:
        return f"embedded:{options.dataset}:first-{dataset.quick_events}"
    if dataset.recipe is None or options.preset == "tiny":
        return f"embedded:{options.dataset}"
    return f"benchmark:{options.dataset}"


def split_reference(ref: ShowerSet) -> tuple[ShowerSet, ShowerSet, ShowerSet]:
    train, valid, test = split_indices(len(ref))
    return ref.take(train), ref.take(valid), ref.take(test)


def training_showers(train: ShowerSet, dataset: str, preset: str) -> ShowerSet:
    """The showers a preset trains on: the ``quick`` preset at most the dataset's
    ``quick_train_events`` (the first ones of the training split, itself a random part of the
    reference), every other preset all of ``train``."""
    from calobench.datasets import get_dataset

    cap = get_dataset(dataset).quick_train_events
    return train.slice(0, cap) if preset == "quick" and cap is not None and len(train) > cap else train


def _log(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


def _check_run_folder(out: Path, info: dict, resume: bool) -> None:
    path = out / "run.json"
    if resume and path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise CalobenchError(f"{path}: not valid JSON; remove the folder or run without --resume") from None
        for key in ("model", "dataset", "preset", "seed", "epochs", "reference", "overrides"):
            if old.get(key) != info.get(key):
                raise CalobenchError(f"{path}: key '{key}': --resume needs the same settings; the folder holds "
                                     f"{old.get(key)!r}, this run asks for {info.get(key)!r}")


def run_benchmark(options: RunOptions) -> RunOutcome:
    """Do every step of `calobench run` (see the module docstring); returns what was produced."""
    import torch

    check_int_option(options.epochs, "run: --epochs", 0, optional=True)
    check_int_option(options.threads, "run: --threads", 1, optional=True)
    check_int_option(options.seed, "run: --seed", 0)

    default_threads = torch.get_num_threads()
    if options.torch_threads():
        torch.set_num_threads(options.torch_threads())
    try:
        return _run(options, default_threads)
    finally:
        torch.set_num_threads(default_threads)


def _run(options: RunOptions, default_threads: int) -> RunOutcome:
    from calobench.leaderboard import check_layout, dataset_dir

    cls = check_supported(options.model, options.dataset)
    if options.preset not in cls.presets:
        raise CalobenchError(f"model {options.model}: unknown preset {options.preset!r} (--preset); "
                             f"valid presets: {', '.join(cls.presets)}")
    seconds: dict[str, float] = {}
    out = options.out_dir()
    reference_name = _reference_name(options)
    info = {"model": options.model, "dataset": options.dataset, "preset": options.preset, "seed": options.seed,
            "epochs": options.epochs, "reference": reference_name, "overrides": options.overrides}
    _check_run_folder(out, info, options.resume)
    # everything a user can get wrong is checked before the run folder is made
    check_output_dir(out, "run: --out")
    if options.leaderboard_dir is not None:
        check_output_dir(options.leaderboard_dir, "run: --leaderboard-dir")
        check_layout(options.leaderboard_dir, options.dataset)
        check_output_dir(dataset_dir(options.leaderboard_dir, options.dataset), "run: --leaderboard-dir")
    check_device(options.device, "run: --device")

    t0 = time.perf_counter()
    from calobench.datasets import get_dataset
    from calobench.simulation.benchmark_reference import benchmark_reference_path

    # the tiny preset (a smoke test) uses the embedded sample, even where the benchmark reference
    # is built; every other preset ranks against the benchmark reference, built from the
    # dataset's recipe on first use
    if options.reference is not None:
        reference_path = Path(options.reference)
    elif options.preset == "tiny":
        reference_path = get_dataset(options.dataset).embedded_path
    else:
        reference_path = benchmark_reference_path(options.dataset, build=True, progress=options.progress)
    ref = load_reference(options.dataset, reference_path, options.reference_tree, options.reference_branches)
    quick = get_dataset(options.dataset).quick_events
    if options.preset == "tiny" and options.reference is None and quick is not None and len(ref) > quick:
        ref = ref.slice(0, quick)
    train, valid, test = split_reference(ref)
    train = training_showers(train, options.dataset, options.preset)
    seconds["load_split"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _run_in(options, default_threads, cls, out, info, reference_name, reference_path,
                       train, valid, test, seconds)
    except (CalobenchError, OSError) as exc:
        message = str(exc) if isinstance(exc, CalobenchError) else f"{type(exc).__name__}: {exc}"
        raise CalobenchError(f"{message} (what the run computed so far is kept in {out})") from None


def _run_in(options: RunOptions, default_threads: int, cls, out: Path, info: dict, reference_name: str,
            reference_path: Path, train: ShowerSet, valid: ShowerSet, test: ShowerSet,
            seconds: dict[str, float]) -> RunOutcome:
    """The steps after the run folder exists: train, generate, evaluate, time, record."""
    import torch
    from calobench.leaderboard import add_entry, make_entry
    from calobench.leaderboard import schema as leaderboard_schema
    _log(options.progress, f"{options.dataset}: {len(train)} train / {len(valid)} validation / {len(test)} test "
                           f"events (split seed {SPLIT_SEED})")

    model_dir = out / "model"
    finished = (out / "run.json").exists() and json.loads((out / "run.json").read_text()).get("trained", False)
    t0 = time.perf_counter()
    if options.resume and finished and (model_dir / CONFIG_FILE).exists():
        model = cls.load(model_dir, device=options.device)
        history = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else {}
        trained = False
        _log(options.progress, f"resume: training had finished; using the saved model in {model_dir}")
    else:
        write_json_atomic(out / "run.json", {**info, "trained": False})
        model = cls(options.dataset, options.preset, options.seed, options.device, **options.overrides)
        history = model.fit(train, valid, epochs=options.epochs, checkpoint_dir=out / "checkpoint",
                            resume=options.resume, progress=options.progress)
        model.save(model_dir)
        write_json_atomic(out / "history.json", history)
        write_json_atomic(out / "run.json", {**info, "trained": True})
        trained = True
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    generated = model.sample(test.energies, test.conditions)
    seconds["generate"] = time.perf_counter() - t0
    generated.provenance = {**generated.provenance, "generator": f"calobench run --model {options.model}",
                            "model": options.model, "preset": options.preset, "seed": options.seed}
    save(generated, out / "generated.h5")

    t0 = time.perf_counter()
    evaluation = dict(EVALUATION.get(options.preset, EVALUATION["quick"]))
    result = compare(generated, test, dataset=options.dataset, seed=options.seed, progress=options.progress,
                     json_path=out / "metrics.json", **evaluation)
    seconds["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    torch.set_num_threads(default_threads)
    timing_options = replace(TIMING.get(options.preset, TIMING["quick"]),
                             threads=options.threads or TIMING_THREADS)
    timing = time_model(model, test.energies, test.conditions, options=timing_options) if options.timing \
        else {"geant4_ms_per_event": None, "devices": {}}
    timing["model_state"] = "trained" if trained else "saved"
    seconds["timing"] = time.perf_counter() - t0

    config = {**model.config}
    if options.epochs is not None:
        config["epochs"] = options.epochs
    entry = make_entry(
        model=cls.name, family=cls.family, seed_document=cls.seed_document, preset=options.preset,
        parameters=model.parameter_count(), dataset=options.dataset, metrics=result.metrics,
        timing=schema_keys(timing, leaderboard_schema()),
        seed=options.seed, config=config, split_seed=SPLIT_SEED, reference=reference_name,
        reference_path=reference_path,
        training={"train_events": len(train), "validation_events": len(valid), "seconds": seconds["train"],
                  "torch_threads": options.torch_threads() or default_threads,
                  "resumed_or_loaded": not trained or options.resume,
                  **{k: v for k, v in history.items() if k in ("epochs", "best_epoch", "bins")}},
        evaluation={"test_events": len(test), "compare_options": evaluation, "split_fractions": list(SPLIT_FRACTIONS)},
        command=options.command,
    )
    write_json_atomic(out / "entry.json", entry)  # kept even if recording it fails
    write_json_atomic(out / "timing.json", timing)  # the whole record: threads, CPU, load, median, spread
    leaderboard = None
    if options.leaderboard_dir is not None:
        leaderboard = add_entry(options.leaderboard_dir, options.dataset, entry)
    return RunOutcome(model, history, result, timing, entry, out, leaderboard, trained, seconds)


__all__ = ["EVALUATION", "RunOptions", "RunOutcome", "SPLIT_FRACTIONS", "SPLIT_SEED", "TIMING", "load_reference",
           "run_benchmark", "split_indices", "split_reference"]
