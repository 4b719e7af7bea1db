"""The golden outputs of scripts/golden.py: compare per geometry kind and a tiny run of every
model give the recorded numbers (tests/golden/*.json; relative tolerance golden.RTOL)."""

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
    assert golden.differences(recorded, golden.plain(golden.compare_case(kind))) == []


@pytest.mark.parametrize("path", MODEL_FILES, ids=[p.stem for p in MODEL_FILES])
def test_tiny_run_matches_golden(path: Path):
    recorded = json.loads(path.read_text())
    model = path.stem.removeprefix("model-")
    assert golden.differences(recorded, golden.plain(golden.model_case(model))) == []
