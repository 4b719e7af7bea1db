"""Golden outputs: the numbers that a restructure must not move.

    python scripts/golden.py record   # write tests/golden/*.json from the current code
    python scripts/golden.py check    # recompute and compare (exit 1 on a difference)

Two kinds of golden output:
- compare: ``calobench.compare`` of two fixed halves of an embedded reference, one dataset per
  geometry kind (grid: stcf11x11, cylindrical: calochallenge-2, point cloud: cepc), every stage
  with light classifier settings;
- models: the metrics of a ``tiny`` run (``calobench run --preset tiny``, no timing, no
  leaderboard) of every registered model on its first supported dataset.

Recorded before the restructure of issue 13 (metrics-v1) and checked identical after it; recorded
again with metrics-v2 (the classifier protocol v2 and the floors moved the classifier values and
added floor keys; every other value stayed the same). Recorded again on 2026-12-04 from unchanged
code (commit 5f77860) on a machine that named itself 'AMD EPYC' like the first but was another
generation (family 26): its BLAS rounding moved FPD and KPD and one trained model (nnls-cgan), so
the machine record now names the CPU generation and the kernels BLAS and torch chose.

On the machine that recorded them (tests/golden/machine.json: CPU model and generation, BLAS and
torch kernels, the versions of the numerical libraries) values must agree to a relative 1e-9 (bit for bit is the expectation; the
tolerance is there for summation-order changes, which must then be named in the change).

On another machine the floating-point rounding of BLAS/LAPACK and of torch differs (seen between
an AMD EPYC and an Intel Xeon: FPD's matrix square root moves by a relative 1e-7, a classifier's
JSD by 1e-5, and a model trained for a few epochs ends elsewhere, its metrics moving by up to ~5
of their std). There the check is *portable*: the compare cases agree to a relative 1e-5
(classifier AUC/JSD to 0.01 absolute; the std of a fitted resolution term to 5 %, seen 2 %;
resolution terms that either record marks ``unreliable`` are not compared: their value is not
determined by the data; FPD and KPD, whose products are float32 where the features allow it
(issue 19), to a quarter of their std (seen between the two AMD EPYC generations: FPD 0.002 std,
a floor of KPD, a near-cancelling sum over a few hundred showers, 0.18 std), and their std to a
relative 1e-3); the model cases keep their
structure (the same metrics, the same failed ones, the same finite ones), their numbers are only
compared on the recording machine.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
COMPARE_CASES = {"grid": ("stcf11x11", 600), "cylindrical": ("calochallenge-2", 400), "pointcloud": ("cepc", 120)}
COMPARE_OPTIONS = {"repeats": 1, "cls_min_steps": 50, "cls_max_steps": 100, "replicas": 4, "cls_hidden": 32,
                   "xgb_estimators": 20,
                   "fpd_min_samples": 100, "kpd_batch_size": 50, "seed": 3, "progress": False}
RTOL = 1e-9
PORTABLE_RTOL = 1e-5
CLASSIFIER_ATOL = 0.01
RESOLUTION_STD_RTOL = 0.05
STD_RTOL = 1e-3
FLOAT32_STD_FRACTION = 0.25
MACHINE_FILE = "machine.json"
LIBRARIES = ("numpy", "scipy", "torch", "sklearn", "xgboost", "h5py")


def machine() -> dict:
    """What decides the floating-point rounding: CPU model and generation, the kernels BLAS and
    torch chose for it, architecture, Python and library versions."""
    import importlib

    from calobench.hardware import cpu_generation, cpu_name

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = None
    return {"cpu": cpu_name(), "cpu_generation": cpu_generation(), "blas_core": blas_core(),
            "torch_cpu_capability": torch_cpu_capability(), "arch": platform.machine(),
            "python": platform.python_version(), **versions}


def blas_core() -> str | None:
    """The kernel set numpy's BLAS chose at run time (threadpoolctl: OpenBLAS 'Haswell',
    'SkylakeX', 'Zen', ...): it decides the rounding of FPD's and KPD's products."""
    import numpy  # noqa: F401 (loads the BLAS that threadpoolctl inspects)
    from threadpoolctl import threadpool_info  # scikit-learn's dependency

    found = {f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info() if i.get("user_api") == "blas"}
    return ", ".join(sorted(found)) or None


def torch_cpu_capability() -> str | None:
    """The vector instruction set torch's CPU kernels use ('AVX2', 'AVX512', ...)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def recorded_machine() -> dict | None:
    path = GOLDEN / MACHINE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def same_machine() -> bool:
    """Whether this machine is the one that recorded the golden files (exact check) or not (portable)."""
    return recorded_machine() == machine()


def _one_thread() -> None:
    """One torch thread, as recorded: torch's CPU kernels sum in an order that depends on the
    thread count (a classifier's JSD moved by 2e-6 between 1 and 2 threads)."""
    import torch

    torch.set_num_threads(1)


def compare_case(kind: str) -> dict:
    """name -> {value, std[, floor]} of compare(first half, second half) for one geometry kind."""
    import numpy as np

    import calobench
    from calobench.datasets.registry import load_reference

    _one_thread()
    dataset, n = COMPARE_CASES[kind]
    ref = load_reference(dataset, embedded=True)  # the same showers whether or not a recipe is built here
    half = n // 2
    first, second = ref.take(np.arange(half)), ref.take(np.arange(half, n))
    return calobench.compare(first, second, dataset=dataset, **COMPARE_OPTIONS).metrics


def model_case(model: str) -> dict:
    """name -> {value, std[, floor]} of a tiny run of ``model`` on its first dataset."""
    from calobench.models.registry import get_model
    from calobench.runner import RunOptions, run_benchmark

    _one_thread()
    cls = get_model(model)
    dataset = cls.supported_datasets()[0]
    with tempfile.TemporaryDirectory() as tmp:
        outcome = run_benchmark(RunOptions(model=model, dataset=dataset, preset="tiny", out=Path(tmp) / "run",
                                           leaderboard_dir=None, progress=False, timing=False, device="cpu"))
    return {"dataset": dataset, "metrics": outcome.result.metrics}


def cases() -> dict[str, callable]:
    from calobench.models.registry import model_names

    out = {f"compare-{kind}": (lambda k=kind: compare_case(k)) for kind in COMPARE_CASES}
    out.update({f"model-{name}": (lambda m=name: model_case(m)) for name in model_names()})
    return out


def differences(golden, new, path: str = "") -> list[str]:
    """Lines naming every value that differs beyond RTOL (None and NaN equal each other)."""
    if isinstance(golden, dict) and isinstance(new, dict):
        out = [f"{path}/{k}: missing" for k in golden if k not in new]
        out += [f"{path}/{k}: new" for k in new if k not in golden]
        for k in golden:
            if k in new:
                out += differences(golden[k], new[k], f"{path}/{k}")
        return out
    if _is_number(golden) or _is_number(new):
        a, b = _num(golden), _num(new)
        return [] if _close(a, b, RTOL) else [f"{path}: golden {a!r}, now {b!r}"]
    return [] if golden == new else [f"{path}: golden {golden!r}, now {new!r}"]


def _is_number(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _close(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= atol + rtol * max(abs(a), abs(b)))


def _metric_records(case: dict) -> dict:
    """name -> {value, std, ...} of a case (a model case holds them under "metrics")."""
    return case["metrics"] if isinstance(case.get("metrics"), dict) else case


def portable_differences(golden: dict, new: dict, name: str) -> list[str]:
    """The differences that matter between machines (module docstring): for a compare case
    ``compare-*`` the numbers within the portable tolerances, for a model case the structure."""
    out = []
    if "dataset" in golden and golden.get("dataset") != new.get("dataset"):
        out.append(f"/dataset: golden {golden.get('dataset')!r}, now {new.get('dataset')!r}")
    a, b = _metric_records(golden), _metric_records(new)
    out += [f"/{k}: missing" for k in a if k not in b] + [f"/{k}: new" for k in b if k not in a]
    for key in (k for k in a if k in b):
        ra, rb = a[key], b[key]
        if not (isinstance(ra, dict) and isinstance(rb, dict)):
            out += differences(ra, rb, f"/{key}")
            continue
        fields = (set(ra) | set(rb)) - {"unreliable"}
        out += [f"/{key}/{f}: only in one record" for f in sorted(fields) if (f in ra) != (f in rb)]
        if bool(ra.get("failed")) != bool(rb.get("failed")):
            out.append(f"/{key}/failed: golden {ra.get('failed')!r}, now {rb.get('failed')!r}")
        if ra.get("unreliable") or rb.get("unreliable"):
            continue  # a term the data do not determine: its number is rounding
        for f in sorted(fields & set(ra) & set(rb)):
            if not (_is_number(ra[f]) and _is_number(rb[f])):
                continue
            x, y = _num(ra[f]), _num(rb[f])
            if name.startswith("model-"):
                ok = math.isfinite(x) == math.isfinite(y)
            elif key.startswith(("auc_", "jsd_")):
                ok = _close(x, y, 0.0, CLASSIFIER_ATOL)
            elif key.startswith("resolution_") and f == "std":
                ok = _close(x, y, RESOLUTION_STD_RTOL)  # curve_fit's covariance at the last iterate
            elif key in ("fpd", "kpd"):
                # float32 products where the features allow it (calobench/metrics/fpd.py): the value
                # and the floor within a fraction of the recorded std, the std to a relative 1e-3
                std = abs(_num(ra.get("std")))
                ok = _close(x, y, STD_RTOL) if f == "std" else _close(x, y, PORTABLE_RTOL, FLOAT32_STD_FRACTION * std)
            else:
                ok = _close(x, y, PORTABLE_RTOL)
            if not ok:
                out.append(f"/{key}/{f}: golden {x!r}, now {y!r}")
    return out


def check(name: str, golden: dict, new: dict, exact: bool | None = None) -> list[str]:
    """The differences of case ``name``: exact on the recording machine, else portable."""
    exact = same_machine() if exact is None else exact
    return differences(golden, new) if exact else portable_differences(golden, new, name)


def plain(obj):
    return json.loads(json.dumps(obj, default=float, allow_nan=True))


def main(argv: list[str]) -> int:
    # the golden cases must not see a benchmark reference the user has built (as in the tests)
    os.environ["CALOBENCH_DATA_DIR"] = tempfile.mkdtemp(prefix="calobench-golden-data-")
    mode = argv[0] if argv else "check"
    only = set(argv[1:])
    GOLDEN.mkdir(parents=True, exist_ok=True)
    failed = 0
    if mode == "record":
        (GOLDEN / MACHINE_FILE).write_text(json.dumps(machine(), indent=1, sort_keys=True) + "\n")
    else:
        print("exact check (the recording machine)" if same_machine() else
              f"portable check: recorded on {recorded_machine()}, this is {machine()}")
    for name, fn in cases().items():
        if only and name not in only:
            continue
        path = GOLDEN / f"{name}.json"
        new = plain(fn())
        if mode == "record":
            path.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
            print(f"recorded {path.name}")
            continue
        if not path.exists():
            print(f"{name}: no golden file {path}")
            failed += 1
            continue
        diff = check(name, json.loads(path.read_text()), new)
        print(f"{name}: {'identical' if not diff else f'{len(diff)} differences'}")
        for line in diff[:20]:
            print("   ", line)
        failed += bool(diff)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
