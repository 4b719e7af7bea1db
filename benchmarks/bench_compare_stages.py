"""Benchmark of `calobench compare` per stage (issue 19): CPU time and peak memory of ``hist`` and
``fpd`` (FPD + KPD) on two dataset-2-shaped files (benchmarks/studies/compare_memory.py's
``write_file``: 6480 cells, plain CaloChallenge layout, HDF5 chunks of 100 events).

    OMP_NUM_THREADS=1 nice -n 5 python -m pytest -q benchmarks/bench_compare_stages.py --benchmark-only \\
        --benchmark-json /tmp/stages.json     # 20 000 against 20 000 events (minutes)
    CALOBENCH_BENCH_LIGHT=1 python -m pytest -q benchmarks/bench_compare_stages.py --benchmark-only  # 1000, seconds

Each stage runs in its own child process (as ``calobench.compare(gen, ref, metrics=stage)``), so
that its peak RSS is its own: extra_info holds ``cpu_s`` (process CPU seconds of the compare call),
``process_cpu_s`` (the whole child, imports included), ``peak_rss_MB``, the per-stage seconds of
Result.info and the machine's load average. The figures before and after issue 19 are in
docs/performance.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

STUDY = Path(__file__).resolve().parent / "studies" / "compare_memory.py"
DATASET = "calochallenge-2"

CHILD = """
import json, resource, sys, time
import calobench
t0 = time.process_time()
r = calobench.compare(sys.argv[1], sys.argv[2], dataset=sys.argv[3], metrics=sys.argv[4], progress=False)
cpu = time.process_time() - t0
print(json.dumps({"cpu_s": cpu, "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "stages": {k: v["seconds"] for k, v in r.info["stages"].items()},
                  "values": {k: r.metrics[k]["value"] for k in ("sep_mean", "fpd", "kpd") if k in r.metrics}}))
"""


def _write_file():
    spec = importlib.util.spec_from_file_location("compare_memory", STUDY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_file


@pytest.fixture(scope="module")
def ds2_pair(tmp_path_factory) -> tuple[Path, Path, int]:
    """(generated, reference, events per file): 1000 events with CALOBENCH_BENCH_LIGHT=1, else 20 000."""
    n = 1000 if os.environ.get("CALOBENCH_BENCH_LIGHT") == "1" else 20_000
    folder = tmp_path_factory.mktemp("ds2")
    write_file = _write_file()
    paths = folder / "gen.h5", folder / "ref.h5"
    for path, seed in zip(paths, (1, 2)):
        write_file(path, n, seed, DATASET)
    return paths[0], paths[1], n


def _run_stage(gen: Path, ref: Path, stage: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", CHILD, str(gen), str(ref), DATASET, stage],
                         capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return res


@pytest.mark.parametrize("stage", ["hist", "fpd"])
def test_compare_stage_cpu_and_memory(benchmark, ds2_pair, stage):
    gen, ref, n = ds2_pair
    res = benchmark.pedantic(_run_stage, args=(gen, ref, stage), rounds=1, iterations=1)
    benchmark.extra_info.update({"events": n, "dataset": DATASET, **res})
    print(f"\n{stage}: {n} vs {n} events, CPU {res['cpu_s']:.1f} s (process {res['process_cpu_s']:.1f} s), "
          f"peak RSS {res['peak_rss_MB']:.0f} MB, load {os.getloadavg()[0]:.1f}")
    assert res["cpu_s"] <= res["process_cpu_s"]
    assert all(v == v for v in res["values"].values())  # no NaN headline
