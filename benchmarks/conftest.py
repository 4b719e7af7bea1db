"""Shared fixtures of the pytest-benchmark benchmarks: `pytest benchmarks/ --benchmark-only`.

pyproject.toml collects ``bench_*.py`` files. Each benchmark keeps its own light settings
(``benchmark.pedantic`` with a few rounds) so that the folder runs in CI in about a minute.
"""

from __future__ import annotations

import pytest

import calobench

GENERATION_BATCH = 10000


@pytest.fixture(scope="session")
def stcf_generation_inputs():
    """(fit sample of <= 2000 events, energies (10000,), conditions) from the embedded stcf11x11."""
    ref = calobench.load("stcf11x11")
    sample = ref.take([i % len(ref) for i in range(GENERATION_BATCH)])
    return ref.slice(0, min(len(ref), 2000)), sample.energies, sample.conditions
