"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import pytest

# Tests never read or write the user's data folder (built benchmark references): a fresh one per
# test session, inherited by the CLI subprocesses.
os.environ["CALOBENCH_DATA_DIR"] = tempfile.mkdtemp(prefix="calobench-test-data-")


@pytest.fixture(autouse=True)
def private_leaderboard_dir(tmp_path_factory, monkeypatch):
    """Every test (and every CLI it starts) records leaderboard entries in a temporary folder,
    never in the user's own (CALOBENCH_LEADERBOARD_DIR)."""
    folder = tmp_path_factory.mktemp("user-leaderboard")
    monkeypatch.setenv("CALOBENCH_LEADERBOARD_DIR", str(folder))
    return folder


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, timeout: float = 600) -> CliResult:
    """Run `calobench ARGS` in a fresh interpreter; return status and output."""
    proc = subprocess.run([sys.executable, "-m", "calobench", *args], capture_output=True, text=True,
                          timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    """The `run_cli` function as a fixture."""
    return run_cli


def assert_user_error(result: CliResult, *needles: str) -> None:
    """Exit status 2, one line on stderr, no traceback, and the given words in it."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small networks train faster on one thread on a shared CI runner; restored afterwards.
    A test module uses it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
