"""scripts/check_imports.py on small fake calobench packages: cycles and upward imports are
reported, a clean package gives no problem."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_imports.py"


@pytest.fixture(scope="module")
def check_imports() -> ModuleType:
    """scripts/check_imports.py imported by path."""
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_package(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` ({path under calobench/: source}) under folder/calobench; returns that root."""
    root = folder / "calobench"
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


CLEAN = {
    "__init__.py": "from calobench.metrics.stats import mean\n",
    "data/__init__.py": "",
    "data/geometry.py": "CELLS = 4\n",
    "metrics/__init__.py": "",
    "metrics/stats.py": "from calobench.data.geometry import CELLS\n\n\ndef mean(x):\n    return sum(x) / CELLS\n",
}


def test_clean_package_has_no_problem(check_imports, tmp_path):
    found, graph = check_imports.problems(write_package(tmp_path, CLEAN))
    assert found == []
    assert graph["calobench.metrics.stats"] == {"calobench.data.geometry"}
    assert graph["calobench"] == {"calobench.metrics.stats"}


def test_cycle_through_a_lazy_import_is_reported(check_imports, tmp_path):
    files = dict(CLEAN)
    files["metrics/binning.py"] = "from calobench.metrics import stats\n"
    files["metrics/stats.py"] += "\n\ndef edges():\n    from calobench.metrics.binning import stats\n    return stats\n"
    found, _ = check_imports.problems(write_package(tmp_path, files))
    assert found == ["import cycle: calobench.metrics.binning <-> calobench.metrics.stats"]


def test_upward_imports_are_reported(check_imports, tmp_path):
    files = dict(CLEAN)
    files["data/geometry.py"] = "import calobench.metrics.stats\n"
    files["data/showerset.py"] = "import calobench\n"
    found, _ = check_imports.problems(write_package(tmp_path, files))
    assert "upward import: calobench.data.geometry (layer 1) imports calobench.metrics.stats (layer 4)" in found
    assert "upward import: calobench.data.showerset imports the top-level package calobench" in found
    # data.geometry -> metrics.stats -> data.geometry is also a cycle
    assert "import cycle: calobench.data.geometry <-> calobench.metrics.stats" in found
    assert len(found) == 3


def test_the_checkout_is_checked_by_default(check_imports):
    _, graph = check_imports.problems()
    assert "calobench.timing" in graph and "calobench.cli" in graph
