"""Dask scaling on this machine: Geant4 events/s and compare's hist-stage time, 1 and 2 workers.

    python benchmarks/bench_dask.py                                   # the issue's sizes
    python benchmarks/bench_dask.py --g4-events 400 --events 4000      # a modest check on a busy machine
    python benchmarks/bench_dask.py --skip-compare --json out.json

Geant4: ``calobench simulate`` of ``--g4-dataset`` (default calochallenge-2) with 1 and then 2
workers (a LocalCluster each, started inside the timed call), the same events and seeds; reports
wall events/s, the speed-up, the Geant4 CPU time per event (process CPU time, so load from
others does not inflate it) and the load average before each run, and checks that both files
hold the same showers. compare: two calochallenge-3-shaped files of ``--events`` events
(written chunk by chunk, benchmarks/studies/compare_memory.py's write_file), ``compare
--metrics hist`` with 1 process, then with ``--workers 1`` and ``--workers 2``; reports wall
seconds and the hist stage's seconds (summed over the workers when distributed).

Not collected by pytest (no test functions); run it as a script.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench_geant4(dataset: str, n: int, chunk: int, folder: Path) -> dict:
    """Wall events/s of one production with 1 and 2 workers, and whether the showers agree."""
    import numpy as np

    import calobench
    from calobench.simulation.runner import simulate

    out = {"dataset": dataset, "events": n, "chunk": chunk, "cores": os.cpu_count(), "runs": {}}
    files = {}
    for workers in (1, 2):
        path = folder / f"g4-{dataset}-{workers}w.h5"
        path.unlink(missing_ok=True)
        load = _load()
        cpu0 = os.times()
        t0 = time.perf_counter()
        simulate(dataset, n, path, seed=5, workers=workers, chunk=chunk, progress=False)
        wall = time.perf_counter() - t0
        cpu1 = os.times()
        ss = calobench.load(str(path), dataset)
        g4_ms = float(np.asarray(ss.provenance["geant4_timing"]["mean_ms"]))
        out["runs"][workers] = {
            "wall_s": round(wall, 2), "events_per_s": round(n / wall, 3),
            "geant4_cpu_ms_per_event": round(g4_ms, 2), "cpu_events_per_s_per_core": round(1000.0 / g4_ms, 3),
            "production_wall_s": round(ss.provenance["wall_s"], 2),
            "children_cpu_s": round((cpu1.children_user + cpu1.children_system)
                                    - (cpu0.children_user + cpu0.children_system), 2),
            "load_before": load}
        files[workers] = ss
    out["speedup"] = round(out["runs"][1]["wall_s"] / out["runs"][2]["wall_s"], 3)
    out["identical_showers"] = bool(np.array_equal(files[1].showers, files[2].showers))
    return out


def bench_compare(n: int, folder: Path) -> dict:
    """compare --metrics hist on two calochallenge-3-shaped files: 1 process, --workers 1, --workers 2."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "studies"))
    from compare_memory import write_file

    import calobench

    gen, ref = folder / f"cc3-gen-{n}.h5", folder / f"cc3-ref-{n}.h5"
    t0 = time.perf_counter()
    for path, seed in ((gen, 1), (ref, 2)):
        if not path.exists():
            write_file(path, n, seed, dataset="calochallenge-3", chunk=500)
    out = {"dataset": "calochallenge-3", "events": n, "write_s": round(time.perf_counter() - t0, 1), "runs": {}}
    results = {}
    for label, workers in (("single-process", None), ("workers=1", 1), ("workers=2", 2)):
        load = _load()
        t0 = time.perf_counter()
        result = calobench.compare(str(gen), str(ref), dataset="calochallenge-3", metrics="hist", progress=False,
                                   workers=workers)
        wall = time.perf_counter() - t0
        stages = result.info["stages"]
        out["runs"][label] = {"wall_s": round(wall, 2), "hist_s": round(stages["hist"]["seconds"], 2),
                              "features_s": round(stages["features"]["seconds"], 2),
                              "chunk_size": result.info["chunk_size"], "load_before": load}
        results[label] = json.dumps(result.metrics, sort_keys=True)  # NaN-aware: NaN != NaN as floats
    out["identical_metrics"] = all(m == results["single-process"] for m in results.values())
    out["speedup_2_vs_1_workers"] = round(out["runs"]["workers=1"]["wall_s"] / out["runs"]["workers=2"]["wall_s"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--g4-dataset", default="calochallenge-2")
    parser.add_argument("--g4-events", type=int, default=1000, help="Geant4 events per production (default 1000)")
    parser.add_argument("--chunk", type=int, default=50, help="events per block (default 50)")
    parser.add_argument("--events", type=int, default=40_000, help="events per calochallenge-3 file (default 40000)")
    parser.add_argument("--dir", default="/tmp/calobench-bench-dask", help="folder of the files")
    parser.add_argument("--skip-geant4", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    report = {"cpu_count": os.cpu_count(), "load_at_start": _load()}
    if not args.skip_geant4:
        report["geant4"] = bench_geant4(args.g4_dataset, args.g4_events, args.chunk, folder)
        print(json.dumps(report["geant4"], indent=1), flush=True)
    if not args.skip_compare:
        report["compare"] = bench_compare(args.events, folder)
        print(json.dumps(report["compare"], indent=1), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
