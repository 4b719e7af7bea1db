"""Generation timing: milliseconds per shower at several batch sizes on every available device.

For each device (cpu always; cuda and mps when torch sees them and the model runs on
accelerators) and each batch size (1, 100, 10000 by default) the model generates showers for
conditions drawn from a given sample (cycled to the batch size): ``warmup`` untimed calls,
then timed calls until ``repeats`` calls are done or ``budget_s`` seconds are used (at least
one timed call). A batch size above 100 whose single call is estimated (from the previous batch
size) to take longer than ``max_call_s`` is not run: it is recorded as skipped with the estimate, so that
slow samplers (diffusion, autoregressive) can be timed at all on a CPU. Reported: mean and standard deviation of ms per shower over the timed calls,
and the speed-up over the dataset's Geant4 time per event (calobench.simulation), when known.
A timed call includes everything ``sample`` does (noise, network, moving the result to host
memory, building the ShowerSet), since that is what a user waits for. Calls are timed in wall
seconds, or in process CPU seconds with ``TimingOptions(cpu_time=True)`` (all threads together;
insensitive to other load on a shared machine).

CPU timing runs at a fixed number of torch threads, ``TimingOptions.threads`` (default
``TIMING_THREADS`` = 1, what the leaderboard's entries use: on a shared machine torch's default
thread count measures the load of the others as much as the model; one thread is the most
reproducible figure). The threads are set for the measurement and restored afterwards. The record
says what the numbers were measured under: ``threads``, ``cpu_model``, ``cores`` (logical CPUs of the
machine) and the 1-minute load average before and after (``load_1min_before``,
``load_1min_after``; None where the platform has none); ``load_warning`` is a one-line text (also
printed on stderr) when the load before left fewer idle cores than the threads timing uses
(``cores - load_1min_before < threads``), else None. Each batch size is measured ``repeats`` times
(at least ``min_repeats`` unless one call exceeds the budget) and reports the mean (``ms_per_shower``,
``std``) and the robust pair ``median_ms_per_shower`` and ``iqr_ms_per_shower`` (interquartile range,
the spread); ``speedup_vs_geant4`` is Geant4's time over the median.

``fake_inputs`` draws incident energies and conditions for a dataset without its reference
sample: generation speed does not depend on the condition values.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from calobench.datasets import PDG, get_dataset
from calobench.hardware import available_devices, check_device
from calobench.models.base import Generator

BATCH_SIZES = (1, 100, 10000)
#: Torch CPU threads of every timing unless asked otherwise (`--threads`); leaderboard entries use it.
TIMING_THREADS = 1


@dataclass(frozen=True)
class TimingOptions:
    """batch_sizes: showers per call. warmup: untimed calls per batch size.
    repeats: timed calls at most. budget_s: stop timing a batch size after this many seconds.
    max_call_s: skip a batch size whose one call is estimated to take longer (no warm-up call is
    made when warm-up plus one call would exceed it).
    cpu_time: time calls (and count budget_s) in process CPU seconds (time.process_time) instead of
    wall seconds. threads: torch CPU threads during the CPU measurement (restored after).
    min_repeats: timed calls at least, budget permitting (a single call over budget_s stops)."""

    batch_sizes: tuple[int, ...] = BATCH_SIZES
    warmup: int = 1
    repeats: int = 5
    budget_s: float = 20.0
    max_call_s: float = 120.0
    cpu_time: bool = False
    threads: int = TIMING_THREADS
    min_repeats: int = 3


def load_average() -> float | None:
    """The 1-minute load average of the machine, None where the platform has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def load_warning(load: float | None, threads: int, cores: int | None) -> str | None:
    """A one-line warning when the load leaves fewer idle cores than ``threads``, else None."""
    if load is None or cores is None or cores - load >= threads:
        return None
    return (f"timing: the 1-minute load average {load:.2f} leaves fewer than the {threads} idle core(s) "
            f"that timing uses ({cores} cores): the times will be inflated by other work")


def _warn(message: str) -> None:
    print(f"calobench: warning: {message}", file=sys.stderr, flush=True)


def device_name(device: str) -> str:
    """Human-readable name of a device (CPU model, GPU name)."""
    kind, _, index = str(device).partition(":")
    if kind == "cuda":
        import torch

        return torch.cuda.get_device_name(int(index or 0))
    if device == "mps":
        return "Apple MPS"
    from calobench.hardware import cpu_name

    return cpu_name()


def geant4_ms(dataset: str) -> float | None:
    """The dataset's Geant4 ms per event (mean over its reference), or None when unknown."""
    from calobench.datasets import geant4_ms_per_event

    try:
        value = geant4_ms_per_event(dataset)
    except Exception:  # noqa: BLE001 - missing or unreadable timing table: no speed-up
        return None
    return None if value is None else float(value)


def synchronise(device: str) -> None:
    """Wait until every queued operation of ``device`` ('cpu', 'cuda', 'cuda:N', 'mps') is done;
    a no-op on the CPU. Timing calls it before each clock reading, since accelerators run
    asynchronously and a clock read while kernels are queued measures only their launch."""
    kind = str(device).partition(":")[0]
    if kind == "cuda":
        import torch

        torch.cuda.synchronize(device)
    elif kind == "mps":
        import torch

        torch.mps.synchronize()


def clock_for(options: TimingOptions) -> Callable[[], float]:
    """The clock of a timing: process CPU seconds with ``options.cpu_time``, else wall seconds."""
    return time.process_time if options.cpu_time else time.perf_counter


def fake_inputs(dataset: str, n: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Incident energies (n,) in MeV and conditions {name: (n,)} for timing a model on ``dataset``.

    Energies: log-uniform over the dataset's energy range. ``particle``: PDG codes of the dataset's
    particles. ``px``, ``py``, ``pz`` (MeV): a random direction times the incident energy; ``E``
    (MeV): the incident energy. Every other condition: standard normal draws (in its unit).
    """
    ds = get_dataset(dataset)
    rng = np.random.default_rng(seed)
    lo, hi = ds.energy_range
    energies = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    conditions = {name: rng.normal(0.0, 1.0, n) for name in ds.conditions}
    if "particle" in conditions:
        conditions["particle"] = rng.choice([PDG[p] for p in ds.particles], n).astype(float)
    if {"px", "py", "pz"} <= conditions.keys():
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        conditions["px"], conditions["py"], conditions["pz"] = (direction * energies[:, None]).T
    if "E" in conditions:
        conditions["E"] = energies.copy()
    return energies, conditions


def _inputs(energies: np.ndarray, conditions: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, dict]:
    index = np.arange(n) % len(energies)
    return energies[index], {k: np.asarray(v)[index] for k, v in conditions.items()}


def schema_keys(timing: dict, schema: dict) -> dict:
    """``timing`` with only the keys the leaderboard schema declares (top level, per device, per batch).

    The measurement record may carry keys a leaderboard schema does not know yet (a newer calobench
    writing into an older board): they are kept in the run folder's timing.json and left out of the
    entry until the schema declares them.
    """
    defs = schema.get("$defs", {})

    def keep(record: dict, properties: dict) -> dict:
        return {k: v for k, v in record.items() if k in properties}

    top = defs.get("entry", {}).get("properties", {}).get("timing", {}).get("properties", {})
    device = defs.get("device_timing", {}).get("properties", {})
    measured = defs.get("batch_measured", {}).get("properties", {})
    skipped = defs.get("batch_skipped", {}).get("properties", {})
    out = keep(timing, top)
    out["devices"] = {}
    for name, info in timing.get("devices", {}).items():
        out["devices"][name] = {**keep(info, device), "batches": {
            bs: keep(b, skipped if "skipped" in b else measured) for bs, b in info.get("batches", {}).items()}}
    return out


def time_batch(model: Generator, energies: np.ndarray, conditions: dict[str, np.ndarray], batch_size: int,
               device: str, options: TimingOptions = TimingOptions()) -> dict:
    """Time ``model.sample`` at one batch size on the model's current device.

    ``warmup`` untimed calls first; the device is synchronised before every clock reading
    (``synchronise``), and a call's time includes the copy of its showers to host memory.

    energies (N,) MeV and conditions {name: (N,)} are cycled to ``batch_size`` showers per call.
    Returns {"ms_per_shower": mean, "std": std, "median_ms_per_shower": median, "iqr_ms_per_shower":
    interquartile range, "repeats": timed calls, "warmup": untimed calls} (milliseconds per shower,
    wall or process CPU time as ``options.cpu_time`` says).
    """
    e, c = _inputs(energies, conditions, batch_size)
    clock = clock_for(options)
    warmup = options.warmup
    for _ in range(warmup):
        model.sample(e, c, batch_size=batch_size)
    synchronise(device)
    times = []
    spent = 0.0
    wanted = max(1, options.repeats)
    at_least = min(wanted, max(1, options.min_repeats))

    def more() -> bool:
        if len(times) >= wanted:
            return False
        if len(times) < at_least:  # several repeats, unless one call alone is over the budget
            return not times or times[0] * batch_size / 1000.0 <= options.budget_s
        return spent < options.budget_s

    while more():
        start = clock()
        model.sample(e, c, batch_size=batch_size)  # returns host arrays: the copy back is timed
        synchronise(device)
        elapsed = clock() - start
        times.append(elapsed * 1000.0 / batch_size)
        spent += elapsed
    values = np.asarray(times)
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return {"ms_per_shower": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "median_ms_per_shower": float(median), "iqr_ms_per_shower": float(q75 - q25),
            "repeats": int(len(values)), "warmup": int(warmup)}


def time_model(model: Generator, energies: np.ndarray, conditions: dict[str, np.ndarray] | None = None,
               devices: list[str] | None = None, options: TimingOptions = TimingOptions(),
               progress: bool = False, warn: Callable[[str], None] = _warn) -> dict:
    """Time generation on every device; returns the leaderboard's ``timing`` object.

    energies (N,) MeV and conditions {name: (N,)}: the conditions to generate for (cycled).
    devices: default every available device the model can use (numpy models: cpu only).
    The model is moved back to its original device, and torch to its thread count, afterwards.
    warn: where the load warning goes (default: one line on stderr).
    """
    import torch

    conditions = conditions or {}
    energies = np.asarray(energies, np.float64)
    if devices is None:
        devices = [d for d in available_devices() if d == "cpu" or model.accelerated]
    for device in devices:
        check_device(device, "timing device")
    from calobench.data.validation import check_int_option
    from calobench.hardware import cpu_name

    check_int_option(options.threads, "timing: threads", 1)
    g4 = geant4_ms(model.dataset.name)
    original = model.device
    original_threads = torch.get_num_threads()
    cores = os.cpu_count()
    before = load_average()
    warning = load_warning(before, options.threads, cores)
    if warning is not None:
        warn(warning)
    out: dict = {"geant4_ms_per_event": g4, "devices": {}, "threads": int(options.threads),
                 "cpu_model": cpu_name(), "cores": cores, "load_1min_before": before, "load_1min_after": None,
                 "load_warning": warning}
    try:
        torch.set_num_threads(options.threads)
        for device in devices:
            model.to(device)
            batches = {}
            last_ms = None
            for bs in sorted(options.batch_sizes):
                estimate_s = None if last_ms is None else last_ms * bs / 1000.0
                # batch sizes up to 100 are always measured: per-shower cost at batch 1 is mostly
                # fixed latency (an autoregressive model's sequential steps) and overestimates
                if estimate_s is not None and bs > 100 and estimate_s > options.max_call_s:
                    batches[str(bs)] = {"skipped": f"one call estimated at {estimate_s:.0f} s "
                                                   f"(> {options.max_call_s:g} s limit)",
                                        "estimated_s": float(estimate_s)}
                    continue
                if progress:
                    print(f"timing {model.name} on {device}, batch {bs}", flush=True)
                batch_options = options
                if estimate_s is not None and estimate_s * (options.warmup + 1) > options.max_call_s:
                    batch_options = replace(options, warmup=0)
                result = time_batch(model, energies, conditions, bs, device, batch_options)
                result["speedup_vs_geant4"] = (g4 / result["median_ms_per_shower"]) if g4 else None
                batches[str(bs)] = result
                last_ms = result["ms_per_shower"]
            out["devices"][device] = {"device_name": device_name(device),
                                      "threads": torch.get_num_threads() if device == "cpu" else None,
                                      "batches": batches}
    finally:
        model.to(original)
        torch.set_num_threads(original_threads)
    out["load_1min_after"] = load_average()
    return out


__all__ = ["BATCH_SIZES", "TIMING_THREADS", "TimingOptions", "clock_for", "synchronise", "load_average", "load_warning", "schema_keys", "available_devices", "fake_inputs", "geant4_ms", "time_batch",
           "time_model"]
