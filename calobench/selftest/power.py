"""The power table: which metric detects which known distortion at the benchmark's sample size.

Protocol (``run_selftest``): the dataset's benchmark reference is split as ``calobench run`` splits it
(runner.split_reference); the reference sample is the test split, the generated sample a
same-size random part of train + validation (disjoint from it) with the distortion applied, so
that the undistorted case gives the floor. ``calobench.compare`` runs every case with the
leaderboard's quick settings (runner.EVALUATION["quick"]). A metric detects a distortion when
|d - d0| > 2 sqrt(std^2 + std0^2), d the metric of the distorted case and d0 of the undistorted
one; for an AUC d is |AUC - 0.5|.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from calobench.api import compare, load
from calobench.data.showerset import ShowerSet
from calobench.datasets import dataset_names, get_dataset
from calobench.errors import CalobenchError
from calobench.metrics.evaluate import ProgressLog
from calobench.runner import EVALUATION, split_reference
from calobench.selftest.distortions import DISTORTIONS, parse_distortions

UNDISTORTED = "none"
#: Metrics reported in the table (those a run produces, in this order).
HEADLINE = ("auc_low", "auc_high", "auc_high_xgb", "fpd", "kpd", "precision", "recall", "density", "coverage",
            "sep_etot_einc", "chi2_etot_einc", "w1_etot_einc", "sep_mean", "sep_voxel_energy", "sep_cell_energy",
            "resolution_a_diff", "resolution_b_diff", "resolution_c_diff", "response_max_diff",
            "resolution_max_diff")
#: compare() settings of ``--quick`` (a cheap run for tests; the tiny preset without its stage list).
QUICK = {"repeats": 1, "cls_epochs": 2, "replicas": 4, "cls_hidden": 64, "fpd_min_samples": 200}
SIGMAS = 2.0


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def distance(name: str, value: float) -> float:
    """The quantity compared with the undistorted case: |AUC - 0.5| for an AUC, else the value."""
    return abs(value - 0.5) if name.startswith("auc") else value


def detects(name: str, case: dict, floor: dict, sigmas: float = SIGMAS) -> bool | None:
    """Whether metric ``name`` ({value, std}) of a case lies outside the undistorted ``floor``
    ({value, std}) by more than ``sigmas`` combined standard deviations (None: no value).
    A missing std counts as 0."""
    v, v0 = case.get("value"), floor.get("value")
    if v is None or v0 is None or not (math.isfinite(v) and math.isfinite(v0)):
        return None
    s = case.get("std") if case.get("std") is not None and math.isfinite(case.get("std")) else 0.0
    s0 = floor.get("std") if floor.get("std") is not None and math.isfinite(floor.get("std")) else 0.0
    return bool(abs(distance(name, v) - distance(name, v0)) > sigmas * math.hypot(s, s0))


@dataclass
class PowerTable:
    """Outcome of a selftest. cases: distortion -> metric -> {value, std} (None: n/a for the
    geometry); the undistorted case is ``"none"``. detected: distortion -> metric -> True/False/None."""

    dataset: str
    events: int
    seed: int
    benchmark_version: str
    distortions: list[str]
    metrics: list[str]
    cases: dict[str, dict[str, dict] | None]
    detected: dict[str, dict[str, bool | None] | None]
    options: dict
    seconds: dict[str, float] = field(default_factory=dict)
    commit: str | None = None

    def to_dict(self) -> dict:
        """JSON-able (non-finite numbers become None)."""
        return _plain({"dataset": self.dataset, "events": self.events, "seed": self.seed,
                "benchmark_version": self.benchmark_version, "commit": self.commit,
                "rule": f"|d - d_none| > {SIGMAS:g} sqrt(std^2 + std_none^2), d = |AUC - 0.5| for AUCs",
                "distortions": {n: DISTORTIONS[n][1] for n in self.distortions}, "metrics": self.metrics,
                "compare_options": self.options, "detected": self.detected, "cases": self.cases,
                "seconds": self.seconds})

    @classmethod
    def from_dict(cls, data: dict) -> "PowerTable":
        """The table back from to_dict() (e.g. a --json file)."""
        return cls(dataset=data["dataset"], events=data["events"], seed=data["seed"],
                   benchmark_version=data["benchmark_version"], distortions=list(data["distortions"]),
                   metrics=list(data["metrics"]), cases=data["cases"], detected=data["detected"],
                   options=data["compare_options"], seconds=data.get("seconds", {}), commit=data.get("commit"))

    def has_std(self, metric: str) -> bool:
        """Whether the undistorted case gives the metric an uncertainty (PRDC does not)."""
        std = (self.cases.get(UNDISTORTED) or {}).get(metric, {}).get("std")
        return std is not None and math.isfinite(std)

    def _cell(self, distortion: str, metric: str) -> str:
        row = self.detected.get(distortion)
        if row is None:
            return "n/a"
        flag = row.get(metric)
        mark = "" if self.has_std(metric) else "*"
        return "-" if flag is None else ("yes" if flag else "no") + mark

    def rows(self) -> list[list[str]]:
        """One row per metric: the metric, then yes / no / n/a / - per distortion."""
        return [[m] + [self._cell(d, m) for d in self.distortions] for m in self.metrics]

    def table(self):
        """A rich Table of rows()."""
        from rich.table import Table

        out = Table(title=f"calobench selftest {self.dataset}: {self.events} events, detected at "
                          f"{SIGMAS:g} sigma", title_justify="left")
        out.add_column("metric")
        for d in self.distortions:
            out.add_column(d, justify="center")
        for row in self.rows():
            out.add_row(*[c.replace("yes", "[green]yes[/green]").replace("no", "[red]no[/red]")
                          if c in ("yes", "no", "yes*", "no*") else c for c in row])
        return out

    def markdown(self) -> str:
        """The table as markdown (a header with the version, then one row per metric)."""
        lines = [f"Benchmark version `{self.benchmark_version}`, {self.events} vs {self.events} events, "
                 f"seed {self.seed}" + (f", calobench commit `{self.commit}`" if self.commit else "") + ".", "",
                 "| metric | " + " | ".join(self.distortions) + " |",
                 "| --- |" + " :---: |" * len(self.distortions)]
        lines += ["| " + " | ".join(f"`{c}`" if i == 0 else c for i, c in enumerate(row)) + " |" for row in self.rows()]
        if not all(self.has_std(m) for m in self.metrics):
            lines += ["", "\\* no uncertainty (std) for this metric: any change counts as detected; read the "
                          "values in the JSON."]
        return "\n".join(lines) + "\n"


def selftest_samples(dataset: str, events: int | None = None, seed: int = 0,
                     progress: bool = False) -> tuple[ShowerSet, ShowerSet]:
    """(generated base, reference): the reference is the test split of the dataset's benchmark
    reference (what ``calobench run`` ranks against: the embedded sample, or the reference built
    from the dataset's recipe, built now when it is not cached yet), its first ``events``; the base
    ``events`` random events of train + validation."""
    from calobench.simulation.benchmark_reference import benchmark_reference_path

    ds = get_dataset(dataset)
    if not ds.has_embedded:
        embedded = [name for name in dataset_names() if get_dataset(name).has_embedded]
        raise CalobenchError(f"--dataset {dataset}: no embedded reference sample to run the selftest on; "
                             f"datasets with one: {', '.join(embedded)}")
    path = benchmark_reference_path(dataset, build=True, progress=progress)
    train, valid, test = split_reference(load(str(path), dataset))
    pool = ShowerSet.concatenate([train, valid])
    n = len(test) if events is None else events
    if n < 2 or n > len(test) or n > len(pool):
        raise CalobenchError(f"--events: expected 2 to {min(len(test), len(pool))} for {dataset} "
                             f"(its test split), found {n}")
    index = np.sort(np.random.default_rng(seed).choice(len(pool), size=n, replace=False))
    return pool.take(index), test.slice(0, n)


def power_table(dataset: str, events: int, seed: int, version: str, names: list[str], cases: dict[str, dict | None],
                options: dict, seconds: dict[str, float], commit: str | None) -> PowerTable:
    """The PowerTable of the cases measured so far (``cases`` holds "none" and some of ``names``;
    the distortions not measured yet are left out)."""
    floor = cases[UNDISTORTED]
    shown = [m for m in HEADLINE if m in floor]
    done = [n for n in names if n in cases]
    detected = {n: None if cases[n] is None else {m: detects(m, cases[n].get(m, {}), floor[m]) for m in shown}
                for n in done}
    return PowerTable(dataset=dataset, events=events, seed=seed, benchmark_version=version, distortions=done,
                      metrics=shown,
                      cases={k: None if v is None else {m: v[m] for m in shown if m in v} for k, v in cases.items()},
                      detected=detected, options=options, seconds=dict(seconds), commit=commit)


def run_selftest(dataset: str, *, events: int | None = None, seed: int = 0, distortions: list[str] | str | None = None,
                 metrics: list[str] | str | None = None, quick: bool = False, progress: bool = True,
                 on_case: Callable[[PowerTable], None] | None = None, threads: int | None = 1) -> PowerTable:
    """Compare each distorted sample (and the undistorted one) with the reference -> PowerTable.

    events: events per sample (default: the test split). metrics: compare stages (default all).
    quick: tiny classifier settings (QUICK) instead of the leaderboard's quick ones.
    on_case: called with the table so far after each case (e.g. to write partial results of a long run).
    threads: torch CPU threads during the run (default 1, as calobench run's quick preset: on the
    2-core development machine with other jobs one thread made a case 3-6x faster than two);
    None: torch's default."""
    import torch

    default_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run_selftest(dataset, events, seed, distortions, metrics, quick, progress, on_case)
    finally:
        torch.set_num_threads(default_threads)


def _run_selftest(dataset: str, events: int | None, seed: int, distortions: list[str] | str | None,
                  metrics: list[str] | str | None, quick: bool, progress: bool,
                  on_case: Callable[[PowerTable], None] | None) -> PowerTable:
    from calobench.leaderboard import benchmark_version
    from calobench.leaderboard.entry import git_commit

    names = parse_distortions(distortions)
    commit = git_commit()  # before the run: the code that measured
    log = ProgressLog(progress)
    base, reference = selftest_samples(dataset, events, seed, progress)
    version = benchmark_version(dataset)  # after the samples: a reference built just now counts
    options = dict(QUICK if quick else EVALUATION["quick"])
    recorded = {**options, "metrics": metrics or "all"}
    cases: dict[str, dict | None] = {}
    seconds: dict[str, float] = {}
    for name in [UNDISTORTED] + names:
        t0 = time.perf_counter()
        sample = base if name == UNDISTORTED else DISTORTIONS[name][0](base, np.random.default_rng(seed + 1))
        if sample is None:
            log(f"selftest {name}: n/a for {base.geometry.name}")
            cases[name] = None
        else:
            log(f"selftest {name}: compare")
            result = compare(sample, reference, metrics=metrics, seed=seed, progress=False, **options)
            cases[name] = {k: dict(v) for k, v in result.metrics.items()}
            seconds[name] = time.perf_counter() - t0
        if on_case is not None:
            on_case(power_table(dataset, len(reference), seed, version, names, cases, recorded, seconds, commit))
    return power_table(dataset, len(reference), seed, version, names, cases, recorded, seconds, commit)
