"""Benchmark of `calobench compare` on CaloChallenge-dataset-2-shaped files.

Writes two plain CaloChallenge files (incident_energies (N, 1), showers (N, 6480), h5py,
chunk by chunk, never the whole sample in memory), then runs every stage of compare in its
own process and reports wall time and peak memory (max RSS) per stage and for all stages
except cls-low together (the set to compare with evaluate.py's hist + fpd + cls-high).

    nice -n 10 python benchmarks/bench_compare.py                  # 100k against 100k events
    python benchmarks/bench_compare.py --events 5000 --dir /tmp/b  # CI size
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

CELLS, LAYERS, ALPHA, RADIAL = 6480, 45, 16, 9
R_EDGES = np.array([0, 4.65, 9.3, 13.95, 18.6, 27.9, 37.2, 46.5, 55.8, 65.1])


def write_file(path: Path, n: int, seed: int, scale: float = 1.0, chunk: int = 2000) -> None:
    """Electron-like showers: log-uniform 1 GeV - 1 TeV, gamma longitudinal profile,
    exponential radial profile, Gamma-distributed cell fluctuations, 15.15 keV threshold."""
    rng = np.random.default_rng(seed)
    r = 0.5 * (R_EDGES[1:] + R_EDGES[:-1])
    t = np.arange(LAYERS) + 0.5
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        de = f.create_dataset("incident_energies", shape=(n, 1), dtype=np.float32)
        ds = f.create_dataset("showers", shape=(n, CELLS), dtype=np.float32, chunks=(100, CELLS))
        for lo in range(0, n, chunk):
            m = min(chunk, n - lo)
            e = 10 ** rng.uniform(3, 6, m)
            tmax = np.log(e / 10.0)[:, None] / 2.5 + rng.normal(0, 0.3, (m, 1))
            long = t[None, :] ** 3.0 * np.exp(-t[None, :] * 3.0 / np.maximum(tmax, 1.0))
            long /= long.sum(axis=1, keepdims=True)
            rad = np.exp(-r / (6.0 + 0.05 * t[:, None]))  # (layers, r)
            rad /= rad.sum(axis=1, keepdims=True) * ALPHA
            prof = long[:, :, None, None] * rad[None, :, None, :]  # (m, layers, 1, r)
            cells = np.broadcast_to(prof, (m, LAYERS, ALPHA, RADIAL)).reshape(m, CELLS)
            x = e[:, None] * 0.95 * scale * cells * rng.gamma(4.0, 0.25, size=(m, CELLS))
            x[x < 0.5e-3 / 0.033] = 0.0
            de[lo:lo + m, 0] = e
            ds[lo:lo + m] = x.astype(np.float32)
    tmp.rename(path)


STAGE_CODE = """
import json, resource, sys, time
import calobench
t = time.perf_counter()
r = calobench.compare(sys.argv[1], sys.argv[2], metrics=sys.argv[3], repeats=1, progress=False,
                      **json.loads(sys.argv[4]))
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "stages": r.info["stages"], "headline": {k: r.metrics[k] for k in r.headline()}}))
"""


def run_stage(gen: Path, ref: Path, stages: str, options: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", STAGE_CODE, str(gen), str(ref), stages, json.dumps(options)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000, help="events per file (default 100000)")
    p.add_argument("--dir", default="/tmp/calobench-bench", help="where the files are written")
    p.add_argument("--stages", default="hist,resolution,fpd,prdc,cls-high,cls-xgb,cls-low")
    p.add_argument("--low-epochs", type=int, default=1, help="cls-low epochs (memory check; default 1)")
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = p.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    gen, ref = folder / f"gen_{args.events}.h5", folder / f"ref_{args.events}.h5"
    for path, seed, scale in ((gen, 1, 1.0), (ref, 2, 1.0)):
        if not path.exists():
            t = time.perf_counter()
            write_file(path, args.events, seed, scale)
            print(f"wrote {path} in {time.perf_counter() - t:.0f} s", flush=True)
    report = {"events": args.events, "stages": {}}
    for stage in args.stages.split(","):
        options = {"cls_epochs": args.low_epochs} if stage == "cls-low" else {}
        res = run_stage(gen, ref, stage, options)
        report["stages"][stage] = res
        print(f"{stage:11s} wall {res['wall_s']:8.1f} s  peak RSS {res['peak_rss_MB']:8.0f} MB  "
              f"{json.dumps({k: round(v['seconds'], 1) for k, v in res['stages'].items()})}", flush=True)
    together = ",".join(s for s in args.stages.split(",") if s != "cls-low")
    res = run_stage(gen, ref, together, {})
    report["all_but_cls_low"] = res
    print(f"all but cls-low: wall {res['wall_s']:.1f} s, peak RSS {res['peak_rss_MB']:.0f} MB", flush=True)
    for k, v in res["headline"].items():
        print(f"  {k:20s} {v['value']:.5g} +- {v['std']:.3g}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()


def test_compare_hist_fpd_throughput(benchmark):
    """pytest-benchmark: `hist` + `fpd` stages of compare on 2000 vs 2000 stcf11x11 showers."""
    import calobench

    ref = calobench.load("stcf11x11")
    a, b = ref.slice(0, 2000), ref.slice(2000, 4000)
    a.showers, b.showers  # read once, outside the timed part
    result = benchmark.pedantic(calobench.compare, args=(a, b),
                                kwargs={"metrics": "hist,fpd", "progress": False, "fpd_min_samples": 500},
                                rounds=1, iterations=1)
    assert result.metrics["sep_etot_einc"]["value"] < 0.05  # two halves of one Geant4 sample
