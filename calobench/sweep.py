"""`calobench sweep`: every (model, dataset, seed) `calobench run` as a Dask task.

``run_sweep(SweepOptions)`` submits one task per run to a Dask cluster (calobench.cluster: a
LocalCluster of ``workers`` processes, one thread each, or a user's scheduler); each task calls
``calobench.runner.run_benchmark`` in its worker process, so entries reach the leaderboard
through the runner's own (locked, concurrent-safe) write. A run that fails, or whose worker
dies, is reported with its error in its ``SweepRun``; the other runs go on.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

from calobench.errors import CalobenchError


@dataclass(frozen=True)
class SweepOptions:
    """What to sweep. out: root of the run folders (``<out>/<dataset>/<model>-<preset>-seed<seed>``).
    threads_per_run: torch CPU threads of each run (None: the runner's default for the preset).
    leaderboard_dir: where entries go (None: no entries)."""

    models: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    preset: str = "quick"
    workers: int = 1
    scheduler: str | None = None
    threads_per_run: int | None = None
    leaderboard_dir: str | Path | None = "leaderboards"
    out: str | Path = "runs"
    device: str = "auto"
    timing: bool = True
    resume: bool = False
    command: str = ""


@dataclass
class SweepRun:
    """How one (model, dataset, seed) run ended. error: one line (None when it succeeded)."""

    model: str
    dataset: str
    seed: int
    error: str | None = None
    entry_id: str | None = None
    leaderboard: str | None = None
    out: str | None = None
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_list(text: str, option: str) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'); an empty list is an error naming ``option``."""
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise CalobenchError(f"{option}: expected a comma-separated list, found {text!r}")
    return items


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2), each a non-negative integer."""
    seeds = []
    for item in parse_list(text, "--seeds"):
        if not item.isdigit():
            raise CalobenchError(f"--seeds: expected non-negative integers, found {item!r}")
        seeds.append(int(item))
    return tuple(seeds)


def _check(options: SweepOptions) -> None:
    from calobench.datasets import dataset_names
    from calobench.models.registry import model_names

    known_models, known_datasets = model_names(), dataset_names()
    for model in options.models:
        if model not in known_models:
            raise CalobenchError(f"--models: unknown model {model!r}; registered: {', '.join(known_models)}")
    for dataset in options.datasets:
        if dataset not in known_datasets:
            raise CalobenchError(f"--datasets: unknown dataset {dataset!r}; registered: {', '.join(known_datasets)}")
    if options.threads_per_run is not None and options.threads_per_run < 1:
        raise CalobenchError(f"--threads-per-run: expected at least 1, found {options.threads_per_run}")


def _run_one(model: str, dataset: str, seed: int, options: SweepOptions) -> SweepRun:
    """One run, in a worker process; every failure becomes the SweepRun's one-line error."""
    from calobench.runner import RunOptions, run_benchmark

    run = SweepRun(model, dataset, seed)
    out = Path(options.out) / dataset / f"{model}-{options.preset}-seed{seed}"
    run.out = str(out)
    t0 = time.perf_counter()
    try:
        outcome = run_benchmark(RunOptions(
            model=model, dataset=dataset, preset=options.preset, device=options.device, seed=seed, out=out,
            resume=options.resume, leaderboard_dir=options.leaderboard_dir, progress=False, timing=options.timing,
            command=options.command, threads=options.threads_per_run))
    except CalobenchError as exc:
        run.error = str(exc)
    except Exception as exc:  # a bug in one run must not stop the sweep; its last frame is kept
        where = traceback.extract_tb(exc.__traceback__)[-1]
        run.error = f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})"
    else:
        run.entry_id = outcome.entry.get("id")
        run.leaderboard = str(outcome.leaderboard) if outcome.leaderboard is not None else None
        run.metrics = {name: m.get("value") for name, m in outcome.result.metrics.items()}
    run.seconds = time.perf_counter() - t0
    return run


def run_sweep(options: SweepOptions) -> list[SweepRun]:
    """Run every (model, dataset, seed) as a Dask task; the runs in sweep order, failed ones
    with their error."""
    from distributed import as_completed

    from calobench.cluster import dask_client

    _check(options)
    # the workers may not share the client's working directory (a remote cluster): absolute paths
    options = replace(options, out=Path(options.out).resolve(),
                      leaderboard_dir=None if options.leaderboard_dir is None else Path(options.leaderboard_dir).resolve())
    plan = [(m, d, s) for d in options.datasets for m in options.models for s in options.seeds]
    runs: dict[int, SweepRun] = {}
    with dask_client(min(options.workers, len(plan)), options.scheduler) as client:
        futures = {client.submit(_run_one, m, d, s, options, pure=False, key=f"run-{m}-{d}-seed{s}-{i}"): i
                   for i, (m, d, s) in enumerate(plan)}
        for future in as_completed(futures):
            i = futures[future]
            try:
                runs[i] = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task could not start
                runs[i] = SweepRun(*plan[i], error=f"{type(exc).__name__}: {exc}")
    return [runs[i] for i in range(len(plan))]


__all__ = ["SweepOptions", "SweepRun", "parse_list", "parse_seeds", "run_sweep"]
