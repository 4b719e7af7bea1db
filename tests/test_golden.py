"""The golden outputs of scripts/golden.py: compare per geometry kind and a tiny run of every
model give the recorded numbers (tests/golden/*.json): exactly (relative golden.RTOL) on the
machine that recorded them, within the portable tolerances on another (scripts/golden.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "golden.py"
GOLDEN = Path(__file__).resolve().parent / "golden"
MODEL_FILES = sorted(GOLDEN.glob("model-*.json"))


def load_golden_script() -> ModuleType:
    """scripts/golden.py imported by path."""
    spec = importlib.util.spec_from_file_location("golden", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden = load_golden_script()


@pytest.mark.parametrize("kind", sorted(golden.COMPARE_CASES))
def test_compare_matches_golden(kind: str):
    recorded = json.loads((GOLDEN / f"compare-{kind}.json").read_text())
    assert golden.check(f"compare-{kind}", recorded, golden.plain(golden.compare_case(kind))) == []


@pytest.mark.parametrize("path", MODEL_FILES, ids=[p.stem for p in MODEL_FILES])
def test_tiny_run_matches_golden(path: Path):
    recorded = json.loads(path.read_text())
    model = path.stem.removeprefix("model-")
    assert golden.check(path.stem, recorded, golden.plain(golden.model_case(model))) == []


def test_the_machine_record_names_cpu_and_libraries():
    recorded = golden.recorded_machine()
    assert recorded is not None and set(recorded) == set(golden.machine())
    assert recorded["cpu"] and recorded["numpy"] and recorded["torch"]


def test_portable_check_catches_moved_numbers_and_ignores_rounding():
    case = {"fpd": {"value": 0.0415, "std": 0.0134, "floor": 0.0801},
            "auc_low": {"value": 0.62, "std": None, "floor": 0.5},
            "resolution_c_gen": {"value": 3.7e-12, "std": 0.0, "unreliable": "at its bound"},
            "resolution_b_gen": {"value": 0.0071, "std": 0.0027}}

    def moved(key, field, factor=None, value=None):
        new = json.loads(json.dumps(case))
        new[key][field] = value if value is not None else new[key][field] * factor
        return new

    portable = lambda new, name="compare-grid": golden.check(name, case, new, exact=False)  # noqa: E731
    assert portable(moved("fpd", "value", 1 + 1e-7)) == []  # BLAS rounding
    assert portable(moved("fpd", "value", 1.05)) == []  # float32 rounding: 0.15 of its std
    assert [line.split(",")[0] for line in portable(moved("fpd", "value", 1.1))] == ["/fpd/value: golden 0.0415"]
    assert portable(moved("auc_low", "value", value=0.625)) == []  # classifier rounding
    assert portable(moved("auc_low", "value", value=0.65))  # a real change of the classifier
    assert portable(moved("resolution_c_gen", "value", value=2.2e-12)) == []  # undetermined term
    assert portable(moved("resolution_b_gen", "std", 1.02)) == [] and portable(moved("resolution_b_gen", "std", 1.5))
    failed = json.loads(json.dumps(case)); failed["auc_low"]["failed"] = "did not train"
    assert any("failed" in line for line in portable(failed))
    missing = {k: v for k, v in case.items() if k != "fpd"}
    assert portable(missing) == ["/fpd: missing"]
    # a model case: the numbers move with the training, the structure may not
    model = {"dataset": "stcf11x11", "metrics": case}
    assert golden.check("model-x", model, {"dataset": "stcf11x11", "metrics": moved("fpd", "value", 2.0)},
                        exact=False) == []
    assert golden.check("model-x", model, {"dataset": "stcf11x11", "metrics": moved("fpd", "value", value=float("nan"))},
                        exact=False) == ["/fpd/value: golden 0.0415, now nan"]
    assert golden.check("model-x", model, {"dataset": "stcf11x11", "metrics": case}, exact=True) == []
