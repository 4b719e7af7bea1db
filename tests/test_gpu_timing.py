"""benchmarks/gpu_timing.py on the CPU: its code path, its JSON, its refusal of an absent device,
and that it runs without calobench's optional dependencies (the GPU machine's image lacks them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from calobench.hardware import available_devices

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_timing.py"
#: Not on the GPU machine's image (torch, numpy, scipy, h5py, scikit-learn, pandas, rich,
#: matplotlib and safetensors are).
ABSENT = ("zuko", "xgboost", "uproot", "awkward", "dask", "distributed", "jsonschema", "mplhep", "platformdirs",
          "geant4_pybind", "cramjam", "xxhash")
#: A meta-path finder that refuses the ABSENT modules, except from a wheel on sys.path (--wheels).
BLOCKER = """
import importlib.abc, importlib.machinery, runpy, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition('.')[0] not in {absent!r}:
            return None
        search = list(path) if path is not None else [p for p in sys.path if p.endswith('.whl')]
        spec = importlib.machinery.PathFinder.find_spec(name, [p for p in search if '.whl' in p])
        if spec is not None:
            return spec
        raise ImportError(f"No module named {{name!r}} (blocked by the test)")
sys.meta_path.insert(0, Absent())
sys.argv = [{script!r}] + sys.argv[1:]
runpy.run_path({script!r}, run_name='__main__')
"""


def run_script(*args: str, block: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    code = BLOCKER.format(absent=set(ABSENT), script=str(SCRIPT)) if block else None
    command = [sys.executable, "-c", code, *args] if block else [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.skipif("cuda" in available_devices(), reason="this machine has a GPU")
def test_absent_cuda_is_one_line_and_exit_2(tmp_path):
    proc = run_script("--device", "cuda", "-o", str(tmp_path / "out.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "gpu_timing: --device 'cuda': not available on this machine; devices present: cpu"]
    assert not (tmp_path / "out.json").exists()


def test_bad_options_exit_2(tmp_path):
    proc = run_script("--device", "cpu", "--batch-sizes", "1,x")
    assert proc.returncode == 2 and "--batch-sizes" in proc.stderr
    proc = run_script("--device", "cpu", "--models", "nosuchmodel")
    assert proc.returncode == 2 and "unknown nosuchmodel" in proc.stderr


def test_cpu_run_without_the_optional_dependencies(tmp_path):
    out = tmp_path / "gpu.json"
    proc = run_script("--device", "cpu", "--models", "dcgan,flow,mean-shower", "--datasets", "stcf11x11",
                      "--preset", "tiny", "--batch-sizes", "1,50,20000", "--check-batch", "3000", "--repeats", "2",
                      "--budget", "0.5", "--max-output-gb", "0.005", "-o", str(out), block=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["torch_version"] and report["device_name"]
    assert "--device cpu" in report["command"]
    runs = {run["model"]: run for run in report["runs"]}
    assert runs["flow"]["status"] == "skipped" and "zuko" in runs["flow"]["reason"]
    for name in ("dcgan", "mean-shower"):
        run = runs[name]
        assert run["status"] == "timed" and run["dataset"] == "stcf11x11" and run["misplaced_tensors"] == []
        assert run["agreement"]["agrees"] and run["agreement"]["relative_difference"] <= 0.01
        batches = run["timing"]["devices"]["cpu"]["batches"]
        assert batches["1"]["ms_per_shower"] > 0 and batches["50"]["repeats"] >= 1
        # 20000 x 121 float32 cells = 9.7 MB > 5 MB: skipped, with the reason
        assert "--max-output-gb" in batches["20000"]["skipped"]
    assert runs["dcgan"]["timing"]["devices"]["cpu"]["device_name"] == report["device_name"]


@pytest.mark.slow
def test_flow_runs_from_a_carried_wheel(tmp_path):
    """--wheels puts pure-Python wheels on sys.path: flow runs although zuko is not installed."""
    import zipfile

    import zuko

    package = Path(zuko.__file__).parent
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "zuko-0-py3-none-any.whl", "w") as archive:  # the package's own files
        for path in package.rglob("*.py"):
            archive.write(path, str(path.relative_to(package.parent)))
    out = tmp_path / "gpu.json"
    proc = run_script("--device", "cpu", "--models", "flow", "--datasets", "stcf11x11", "--preset", "tiny",
                      "--batch-sizes", "1,10", "--check-batch", "500", "--repeats", "2", "--budget", "0.5",
                      "--wheels", str(wheels), "-o", str(out), block=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["wheels"] == ["zuko-0-py3-none-any.whl"]
    run = report["runs"][0]
    assert run["model"] == "flow" and run["status"] == "timed", run
    proc = run_script("--device", "cpu", "--wheels", str(tmp_path), "-o", str(out))
    assert proc.returncode == 2 and "no pure-Python wheel" in proc.stderr
