"""Generation time of every calobench baseline on a GPU, in one prepared run (trains nothing).

Run from a checkout (calobench need not be installed; run as ``python3 benchmarks/gpu_timing.py``)::

    python3 benchmarks/gpu_timing.py --device cuda -o gpu_timing.json

For every baseline of pyproject.toml's ``calobench.models`` entry points and every dataset it
supports that has an embedded sample: a freshly initialised model of ``--preset`` (untrained
weights, normalisation fitted on 512 embedded showers, as `calobench time` does), then

1. placement: every tensor the model holds is on the device after ``to`` (misplaced_tensors);
2. agreement: one batch of ``--check-batch`` showers, same seed and conditions, on the CPU and on
   the device: mean E_tot / E_inc must agree within ``--agreement`` (1 %) relative (or within 3
   standard errors where the batch, capped at ``--check-cpu-s`` of CPU time, cannot resolve 1 %);
3. timing: ms per shower at each ``--batch-sizes`` on the device (calobench.timing: warm-up calls,
   the device synchronised before each clock reading, the copy to host memory included); a batch
   that is estimated to take longer than ``--max-call-s``, would return more than
   ``--max-output-gb`` of showers, or runs out of device memory is recorded as skipped.

A baseline whose import fails (a missing dependency such as zuko) is recorded as skipped with the
reason. The JSON (``-o``) holds the figures, the GPU name, the torch and CUDA versions and the
command; it is rewritten after each model, so a run stopped by ``--time-limit`` (default 400 s)
or killed keeps what was done. Exit 0 when every timed model also agreed, 1 when some check
failed, 2 for bad options or an absent device (one line on stderr).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Showers of the embedded sample that fit a fresh model's normalisation (as `calobench time`).
PREPARE_SHOWERS = 512


def entry_points(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """name -> "module:Class" of the ``[project.entry-points."calobench.models"]`` table (read from
    the checkout, so that an uninstalled calobench still finds its baselines)."""
    text = pyproject.read_text()
    match = re.search(r'^\[project\.entry-points\."calobench\.models"\]\s*$(.*?)(?=^\[|\Z)', text, re.M | re.S)
    if match is None:
        raise SystemExit(f"gpu_timing: {pyproject}: no [project.entry-points.\"calobench.models\"] table")
    out = {}
    for line in match.group(1).splitlines():
        item = re.match(r'\s*([A-Za-z0-9_.-]+)\s*=\s*"([^"]+)"', line)
        if item:
            out[item.group(1)] = item.group(2)
    return out


def load_class(target: str):
    """The class of a "module:Class" target; ImportError when a dependency is missing."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def git_commit() -> str | None:
    """The checkout's commit (None outside a git work tree)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def mean_ratio(showers) -> tuple[float, float]:
    """(mean, standard error of the mean) of E_tot / E_inc over a ShowerSet."""
    import numpy as np

    ratio = np.asarray(showers.total_energy(), np.float64) / np.asarray(showers.energies, np.float64)
    return float(ratio.mean()), float(ratio.std(ddof=1) / np.sqrt(len(ratio))) if len(ratio) > 1 else 0.0


def agreement(model, device: str, n: int, tolerance: float, cpu_seconds: float) -> dict:
    """Mean E_tot / E_inc of one batch on the CPU and on ``device`` (same seed and inputs).

    The batch has ``n`` showers, fewer where the CPU would take longer than ``cpu_seconds``
    (estimated from a call of 20). The means agree when they differ by at most ``tolerance``
    (relative), or, when the batch is too small to resolve that, by at most 3 standard errors of
    the difference (``statistics_limited`` then says so).
    """
    import math

    from calobench.timing import fake_inputs

    model.to("cpu")
    probe = min(n, 20)
    energies, conditions = fake_inputs(model.dataset.name, probe, seed=model.seed)
    began = time.perf_counter()
    model.sample(energies, conditions, batch_size=probe)
    per_shower = (time.perf_counter() - began) / probe
    n = int(max(probe, min(n, cpu_seconds / max(per_shower, 1e-9))))
    energies, conditions = fake_inputs(model.dataset.name, n, seed=model.seed)
    cpu_mean, cpu_err = mean_ratio(model.sample(energies, conditions, batch_size=n))
    model.to(device)
    dev_mean, dev_err = mean_ratio(model.sample(energies, conditions, batch_size=n))
    rel = abs(dev_mean - cpu_mean) / abs(cpu_mean) if cpu_mean else float("inf")
    rel_error = math.hypot(cpu_err, dev_err) / abs(cpu_mean) if cpu_mean else float("inf")
    limited = 3 * rel_error > tolerance
    return {"showers": n, "cpu_mean_etot_over_einc": cpu_mean, "device_mean_etot_over_einc": dev_mean,
            "cpu_standard_error": cpu_err, "device_standard_error": dev_err, "relative_difference": rel,
            "relative_standard_error": rel_error, "tolerance": tolerance, "statistics_limited": bool(limited),
            "agrees": bool(rel <= (3 * rel_error if limited else tolerance))}


def output_bytes(model, batch: int) -> int | None:
    """Bytes of float32 showers one call returns (None for point clouds: data-dependent)."""
    geometry = model.dataset.geometry
    cells = getattr(geometry, "n_cells", None)
    return None if not isinstance(cells, int) else 4 * batch * cells


def time_one(model, device: str, args, deadline: float) -> dict:
    """calobench.timing's record of ``model`` on ``device``, one batch size at a time (skips recorded)."""
    import torch

    from calobench.timing import TimingOptions, fake_inputs, time_model

    energies, conditions = fake_inputs(model.dataset.name, min(max(args.batch_sizes), 10000), seed=1)
    record: dict = {}
    batches: dict = {}
    last_ms = None
    for bs in sorted(args.batch_sizes):
        skip = None
        size = output_bytes(model, bs)
        estimate = None if last_ms is None else last_ms * bs / 1000.0
        if size is not None and size > args.max_output_gb * 1e9:
            skip = f"{size / 1e9:.1f} GB of showers per call (> --max-output-gb {args.max_output_gb:g})"
        elif estimate is not None and bs > 100 and estimate > args.max_call_s:
            skip = f"one call estimated at {estimate:.1f} s (> --max-call-s {args.max_call_s:g})"
        elif time.monotonic() > deadline:
            skip = "the run's --time-limit was reached"
        if skip is None:
            options = TimingOptions(batch_sizes=(bs,), warmup=args.warmup, repeats=args.repeats,
                                    budget_s=args.budget, max_call_s=args.max_call_s, threads=args.threads)
            try:  # the load warning is in the record (load_warning): not printed per batch
                result = time_model(model, energies, conditions, devices=[device], options=options,
                                    warn=lambda message: None)
            except torch.cuda.OutOfMemoryError:
                skip = "out of device memory"
                torch.cuda.empty_cache()
        if skip is not None:
            batches[str(bs)] = {"skipped": skip, "estimated_s": estimate}
            continue
        info = result["devices"][device]
        batches.update(info["batches"])
        last_ms = info["batches"][str(bs)]["ms_per_shower"]
        if not record:
            record = {**result, "devices": {device: {**info, "batches": batches}}}
        record["load_1min_after"] = result["load_1min_after"]
    return record or {"devices": {device: {"device_name": None, "threads": None, "batches": batches}}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="device to time (default cuda; cpu to test the script)")
    parser.add_argument("--models", help="comma-separated baselines (default: every one)")
    parser.add_argument("--datasets", help="comma-separated datasets (default: every supported one with an embedded sample)")
    parser.add_argument("--preset", default="quick", help="preset of the fresh models (default quick)")
    parser.add_argument("--batch-sizes", default="1,100,10000,100000", help="comma-separated batch sizes")
    parser.add_argument("--check-batch", type=int, default=10000, help="showers of the CPU/device agreement check")
    parser.add_argument("--agreement", type=float, default=0.01, help="relative tolerance on mean E_tot/E_inc")
    parser.add_argument("--check-cpu-s", type=float, default=5.0,
                        help="fewer agreement showers where the CPU would take longer than this")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per batch size")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per batch size at most")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of timed calls per batch size at most")
    parser.add_argument("--max-call-s", type=float, default=5.0, help="skip a batch whose one call is estimated longer")
    parser.add_argument("--max-output-gb", type=float, default=6.0, help="skip a batch returning more showers than this")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads while timing (default 1)")
    parser.add_argument("--time-limit", type=float, default=400.0, help="seconds after which remaining work is skipped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wheels", help="folder of pure-Python wheels to import from (e.g. zuko, for flow and vae "
                                         "on a machine without it: pip download zuko --no-deps -d wheels/)")
    parser.add_argument("-o", "--output", default="gpu_timing.json", help="JSON file to write")
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = tuple(int(s) for s in args.batch_sizes.split(",") if s.strip())
    except ValueError:
        parser.exit(2, f"gpu_timing: --batch-sizes: expected integers separated by commas, found {args.batch_sizes!r}\n")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        parser.exit(2, "gpu_timing: --batch-sizes: expected positive integers\n")
    for name in ("check_batch", "warmup", "repeats", "threads"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            parser.exit(2, f"gpu_timing: --{name.replace('_', '-')}: expected a positive integer\n")
    return args


def write(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def add_wheels(folder: str) -> list[str]:
    """Put every pure-Python wheel (``*-none-any.whl``) of ``folder`` on sys.path (a wheel is a zip
    archive Python imports from); their file names."""
    wheels = sorted(Path(folder).glob("*-none-any.whl"))
    for wheel in wheels:
        sys.path.insert(0, str(wheel))
    return [w.name for w in wheels]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wheels = add_wheels(args.wheels) if args.wheels else []
    if args.wheels and not wheels:
        print(f"gpu_timing: --wheels {args.wheels}: no pure-Python wheel (*-none-any.whl) there", file=sys.stderr)
        return 2
    start = time.monotonic()
    deadline = start + args.time_limit
    import torch

    from calobench.datasets import get_dataset
    from calobench.errors import CalobenchError
    from calobench.hardware import check_device
    from calobench.timing import device_name

    try:
        check_device(args.device, "gpu_timing: --device")
    except CalobenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.device == "auto":
        print("gpu_timing: --device: name the device (cuda, cuda:N, mps or cpu), not auto", file=sys.stderr)
        return 2
    targets = entry_points()
    wanted = args.models.split(",") if args.models else list(targets)
    unknown = [m for m in wanted if m not in targets]
    if unknown:
        print(f"gpu_timing: --models: unknown {', '.join(unknown)}; baselines: {', '.join(targets)}", file=sys.stderr)
        return 2
    output = Path(args.output)
    report = {"script": "benchmarks/gpu_timing.py", "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "device": args.device, "device_name": device_name(args.device),
              "torch_version": torch.__version__, "cuda_version": torch.version.cuda,
              "python_version": platform.python_version(), "git_commit": git_commit(),
              "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "settings": {k: v for k, v in vars(args).items() if k != "output"}, "wheels": wheels,
              "runs": [], "wall_s": None}
    failures = 0
    pairs: list[tuple[int, int, str, object, str]] = []
    for order, name in enumerate(wanted):
        try:
            cls = load_class(targets[name])
        except ImportError as exc:
            report["runs"].append({"model": name, "status": "skipped",
                                   "reason": f"import failed: {type(exc).__name__}: {exc}".splitlines()[0]})
            continue
        datasets = [d for d in (args.datasets.split(",") if args.datasets else cls.supported_datasets())
                    if d in cls.supported_datasets()]
        pairs += [(rank, order, name, cls, dataset) for rank, dataset in enumerate(datasets)]
    write(output, report)
    # every baseline's first dataset before any baseline's second: a --time-limit cuts the tail evenly
    for _, _, name, cls, dataset in sorted(pairs, key=lambda p: (p[0], p[1])):
        run = {"model": name, "dataset": dataset, "preset": args.preset, "model_state": "fresh"}
        report["runs"].append(run)
        if time.monotonic() > deadline:
            run.update(status="skipped", reason="the run's --time-limit was reached")
            continue
        if not get_dataset(dataset).has_embedded:
            run.update(status="skipped", reason="no embedded sample to fit the normalisation on")
            continue
        began = time.monotonic()
        try:
            run.update(measure(cls, dataset, args, deadline))
        except CalobenchError as exc:
            run.update(status="failed", reason=str(exc))
        except torch.cuda.OutOfMemoryError:
            run.update(status="failed", reason="out of device memory")
            torch.cuda.empty_cache()
        except Exception as exc:  # noqa: BLE001 - one model's crash (a CUDA error) must not end the run
            run.update(status="failed", reason=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        run["seconds"] = round(time.monotonic() - began, 1)
        failures += run.get("status") == "failed"
        print(f"gpu_timing: {name} on {dataset}: {run.get('status')} ({run['seconds']} s)"
              + (f": {run['reason']}" if run.get("reason") else ""), file=sys.stderr, flush=True)
        report["wall_s"] = round(time.monotonic() - start, 1)
        write(output, report)
    report["wall_s"] = round(time.monotonic() - start, 1)
    write(output, report)
    print(f"gpu_timing: wrote {output} ({len(report['runs'])} runs, {report['wall_s']} s)", file=sys.stderr)
    return 1 if failures else 0


def measure(cls, dataset: str, args, deadline: float) -> dict:
    """Placement, agreement and timing of one fresh model on ``args.device``."""
    import calobench
    from calobench.models.torch_base import TorchGenerator, misplaced_tensors

    if not cls.accelerated and args.device != "cpu":
        return {"accelerated": False, "status": "skipped", "reason": "a numpy model: it runs on the CPU only"}
    ref = calobench.load(dataset)
    model = cls(dataset, args.preset, args.seed, "cpu")
    model.prepare(ref.slice(0, min(len(ref), PREPARE_SHOWERS)))
    out: dict = {"accelerated": bool(model.accelerated), "parameters": int(model.parameter_count())}
    out["agreement"] = agreement(model, args.device, args.check_batch, args.agreement, args.check_cpu_s)
    model.to(args.device)
    # after sampling there, so that the caches sampling builds (rearranged weights) are checked too
    out["misplaced_tensors"] = misplaced_tensors(model, args.device) if isinstance(model, TorchGenerator) else []
    out["timing"] = time_one(model, args.device, args, deadline)
    ok = out["agreement"]["agrees"] and not out["misplaced_tensors"]
    out["status"] = "timed" if ok else "failed"
    if not ok:
        out["reason"] = ("tensors left off the device: " + ", ".join(out["misplaced_tensors"][:3])
                         if out["misplaced_tensors"] else
                         f"CPU and {args.device} disagree: mean E_tot/E_inc differs by "
                         f"{out['agreement']['relative_difference']:.2%}")
    return out


if __name__ == "__main__":
    sys.exit(main())
