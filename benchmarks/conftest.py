"""Shared settings and fixtures of the pytest-benchmark benchmarks: `pytest benchmarks --benchmark-only`.

pyproject.toml collects ``bench_*.py`` files; the argparse measurement and ablation scripts in
``studies/`` are run by hand and never collected (``collect_ignore``). Each benchmark times with
``benchmark.pedantic``: one warm-up round where it generates, then ``rounds`` timed rounds (1 with
CALOBENCH_BENCH_LIGHT=1, as scripts/test.sh and CI run them; else 5). Every benchmark's
extra_info records torch's thread count and the machine's load average when it started (see
--benchmark-json).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import calobench

collect_ignore = ["studies", "bench_vs_evaluate.py"]  # run by hand: it needs evaluate.py set up

GENERATION_BATCH = 10000


@pytest.fixture(scope="session")
def rounds() -> int:
    """Timed rounds of every benchmark: 1 with CALOBENCH_BENCH_LIGHT=1, else 5."""
    return 1 if os.environ.get("CALOBENCH_BENCH_LIGHT") == "1" else 5


@pytest.fixture(autouse=True)
def machine_info(request: pytest.FixtureRequest) -> None:
    """extra_info["threads"]: torch.get_num_threads(); extra_info["load_average"]: the 1, 5 and
    15-minute load averages (os.getloadavg()), for every test that uses the benchmark fixture."""
    if "benchmark" in request.fixturenames:
        benchmark = request.getfixturevalue("benchmark")
        benchmark.extra_info["threads"] = torch.get_num_threads()
        benchmark.extra_info["load_average"] = list(os.getloadavg())


@pytest.fixture(scope="session")
def stcf_generation_inputs() -> tuple[calobench.ShowerSet, np.ndarray, dict[str, np.ndarray]]:
    """(fit sample of <= 2000 events, energies (10000,) MeV, conditions {name: (10000,)}) from the
    embedded stcf11x11 sample."""
    ref = calobench.load("stcf11x11")
    sample = ref.take([i % len(ref) for i in range(GENERATION_BATCH)])
    return ref.slice(0, min(len(ref), 2000)), sample.energies, sample.conditions
