"""Benchmark of `calobench compare` (pytest-benchmark): the `hist` and `fpd` stages on 2000
against 2000 embedded stcf11x11 showers, ``rounds`` timed rounds (benchmarks/conftest.py).

Wall time and peak memory per stage on 100k-event files: benchmarks/studies/compare_memory.py.
"""

from __future__ import annotations

import calobench


def test_compare_hist_fpd_throughput(benchmark, rounds):
    ref = calobench.load("stcf11x11")
    a, b = ref.slice(0, 2000), ref.slice(2000, 4000)
    a.showers, b.showers  # read once, outside the timed part
    result = benchmark.pedantic(calobench.compare, args=(a, b),
                                kwargs={"metrics": "hist,fpd", "progress": False, "fpd_min_samples": 500},
                                rounds=rounds, iterations=1)
    benchmark.extra_info["events"] = len(a)
    assert result.metrics["sep_etot_einc"]["value"] < 0.05  # two halves of one Geant4 sample
