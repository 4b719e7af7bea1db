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
added floor keys; every other value stayed the same).

Values must agree to a relative 1e-9 (bit for bit is the expectation; the tolerance is there for
summation-order changes, which must then be named in the change).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
COMPARE_CASES = {"grid": ("stcf11x11", 600), "cylindrical": ("calochallenge-2", 400), "pointcloud": ("cepc", 120)}
COMPARE_OPTIONS = {"repeats": 1, "cls_min_steps": 50, "cls_max_steps": 100, "replicas": 4, "cls_hidden": 32,
                   "xgb_estimators": 20,
                   "fpd_min_samples": 100, "kpd_batch_size": 50, "seed": 3, "progress": False}
RTOL = 1e-9


def compare_case(kind: str) -> dict:
    """name -> {value, std[, floor]} of compare(first half, second half) for one geometry kind."""
    import numpy as np

    import calobench

    dataset, n = COMPARE_CASES[kind]
    ref = calobench.load(dataset)
    half = n // 2
    first, second = ref.take(np.arange(half)), ref.take(np.arange(half, n))
    return calobench.compare(first, second, dataset=dataset, **COMPARE_OPTIONS).metrics


def model_case(model: str) -> dict:
    """name -> {value, std[, floor]} of a tiny run of ``model`` on its first dataset."""
    from calobench.models.registry import get_model
    from calobench.runner import RunOptions, run_benchmark

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
    if isinstance(golden, (int, float)) or isinstance(new, (int, float)) or golden is None or new is None:
        def num(v):
            return float("nan") if v is None else float(v)
        a, b = num(golden), num(new)
        if math.isnan(a) and math.isnan(b):
            return []
        if a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= RTOL * max(abs(a), abs(b))):
            return []
        return [f"{path}: golden {a!r}, now {b!r}"]
    return [] if golden == new else [f"{path}: golden {golden!r}, now {new!r}"]


def plain(obj):
    return json.loads(json.dumps(obj, default=float, allow_nan=True))


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "check"
    only = set(argv[1:])
    GOLDEN.mkdir(parents=True, exist_ok=True)
    failed = 0
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
        diff = differences(json.loads(path.read_text()), new)
        print(f"{name}: {'identical' if not diff else f'{len(diff)} differences'}")
        for line in diff[:20]:
            print("   ", line)
        failed += bool(diff)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
