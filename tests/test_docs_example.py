"""docs/examples/pandas_example.py (the notebook-style example of docs/notebook-example.md) runs and plots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "pandas_example.py"


def test_pandas_example_runs_and_writes_plots(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path)], capture_output=True, text=True,
                          timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("auc_high", "sep_etot_einc", "metrics per stage", "ms_per_shower", "speedup_vs_geant4"):
        assert name in proc.stdout, name
    for png in ("metrics.png", "timing.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
