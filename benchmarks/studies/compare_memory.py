"""Wall time and peak memory of `calobench compare` per stage on large cylindrical-dataset files.

Writes two plain CaloChallenge files of the dataset's layout (incident_energies (N, 1) MeV,
showers (N, cells) MeV; h5py, chunk by chunk, never the whole sample in memory), then runs every
stage of compare in its own process and reports wall time and peak memory (max RSS) per stage
and for all stages except cls-low together (the set to compare with evaluate.py's hist + fpd +
cls-high).

    nice -n 10 python benchmarks/studies/compare_memory.py                  # 100k against 100k events
    python benchmarks/studies/compare_memory.py --events 5000 --dir /tmp/b  # a quick check
    python benchmarks/studies/compare_memory.py --together-only ...         # one process only
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

import calobench

DATASET = "calochallenge-2"


def cell_profile(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of a cylindrical geometry: (layer index (cells,), radial weight (cells,)).

    Radial weight: exp(-r / (6 mm + 0.05 mm * (layer + 0.5))) at the bin's mid radius r (mm),
    normalised to 1 over each layer's cells.
    """
    geometry = calobench.get_dataset(dataset).geometry
    weights = []
    for index, binning in enumerate(geometry.layers):
        rad = np.exp(-binning.r_centres / (6.0 + 0.05 * (index + 0.5)))
        rad /= rad.sum() * binning.n_alpha
        weights.append(np.tile(rad, binning.n_alpha))  # cells: alpha outer, r inner
    return geometry.layer_index, np.concatenate(weights)


def write_file(path: Path, n: int, seed: int, dataset: str = DATASET, chunk: int = 2000) -> None:
    """Electron-like showers: log-uniform over the dataset's energy range (MeV), gamma longitudinal
    profile, exponential radial profile, Gamma-distributed cell fluctuations, the geometry's
    readout threshold."""
    ds = calobench.get_dataset(dataset)
    geometry = ds.geometry
    layer, radial = cell_profile(dataset)
    lo_e, hi_e = ds.energy_range
    rng = np.random.default_rng(seed)
    t = np.arange(geometry.n_layers) + 0.5
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        de = f.create_dataset("incident_energies", shape=(n, 1), dtype=np.float32)
        ds_showers = f.create_dataset("showers", shape=(n, geometry.n_cells), dtype=np.float32,
                                      chunks=(100, geometry.n_cells))
        for lo in range(0, n, chunk):
            m = min(chunk, n - lo)
            e = np.exp(rng.uniform(np.log(lo_e), np.log(hi_e), m))
            tmax = np.log(e / 10.0)[:, None] / 2.5 + rng.normal(0, 0.3, (m, 1))
            long = t[None, :] ** 3.0 * np.exp(-t[None, :] * 3.0 / np.maximum(tmax, 1.0))
            long /= long.sum(axis=1, keepdims=True)
            cells = long[:, layer] * radial[None, :]
            x = e[:, None] * 0.95 * cells * rng.gamma(4.0, 0.25, size=(m, geometry.n_cells))
            x[x < geometry.threshold] = 0.0
            de[lo:lo + m, 0] = e
            ds_showers[lo:lo + m] = x.astype(np.float32)
    tmp.rename(path)


STAGE_CODE = """
import json, resource, sys, time
import calobench
from calobench.allocator import return_freed_memory
if json.loads(sys.argv[5]):
    return_freed_memory()  # as calobench compare does (calobench/allocator.py)
t = time.perf_counter()
r = calobench.compare(sys.argv[1], sys.argv[2], metrics=sys.argv[3], repeats=1, progress=False,
                      **json.loads(sys.argv[4]))
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "stages": r.info["stages"], "headline": {k: r.metrics[k] for k in r.headline()}}))
"""


def run_stage(gen: Path, ref: Path, stages: str, options: dict, compare_malloc: bool = True) -> dict:
    """compare(gen, ref) with ``stages`` in a child process: wall_s, peak_rss_MB, stages, headline.
    ``compare_malloc``: the child sets glibc's malloc as ``calobench compare`` does."""
    out = subprocess.run([sys.executable, "-c", STAGE_CODE, str(gen), str(ref), stages, json.dumps(options),
                          json.dumps(compare_malloc)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000, help="events per file (default 100000)")
    p.add_argument("--dataset", default=DATASET, help=f"a cylindrical dataset (default {DATASET})")
    p.add_argument("--dir", default="/tmp/calobench-bench", help="where the files are written")
    p.add_argument("--stages", default="hist,resolution,fpd,prdc,cls-high,cls-xgb,cls-low")
    p.add_argument("--low-steps", type=int, default=300, help="cls-low optimiser steps at most (memory check; default 300)")
    p.add_argument("--together-only", action="store_true",
                   help="skip the one-process-per-stage runs: only all stages but cls-low in one process "
                        "(per stage: its seconds, compute CPU seconds and the peak memory when it finished)")
    p.add_argument("--default-malloc", action="store_true",
                   help="leave glibc's malloc at its defaults (calobench compare sets a 1 MiB mmap threshold)")
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = p.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    gen, ref = (folder / f"{kind}_{args.dataset}_{args.events}.h5" for kind in ("gen", "ref"))
    for path, seed in ((gen, 1), (ref, 2)):
        if not path.exists():
            t = time.perf_counter()
            write_file(path, args.events, seed, args.dataset)
            print(f"wrote {path} in {time.perf_counter() - t:.0f} s", flush=True)
    report = {"dataset": args.dataset, "events": args.events, "compare_malloc": not args.default_malloc, "stages": {}}
    for stage in ([] if args.together_only else args.stages.split(",")):
        options = {"cls_min_steps": min(300, args.low_steps), "cls_max_steps": args.low_steps} if stage == "cls-low" else {}
        res = run_stage(gen, ref, stage, options, not args.default_malloc)
        report["stages"][stage] = res
        print(f"{stage:11s} wall {res['wall_s']:8.1f} s  peak RSS {res['peak_rss_MB']:8.0f} MB  "
              f"{json.dumps({k: round(v['seconds'], 1) for k, v in res['stages'].items()})}", flush=True)
    together = ",".join(s for s in args.stages.split(",") if s != "cls-low")
    res = run_stage(gen, ref, together, {}, not args.default_malloc)
    report["all_but_cls_low"] = res
    print(f"all but cls-low: wall {res['wall_s']:.1f} s, peak RSS {res['peak_rss_MB']:.0f} MB", flush=True)
    for name, info in res["stages"].items():
        print(f"  {name:11s} {info['seconds']:8.1f} s (compute CPU {info.get('compute_cpu_seconds', float('nan')):7.1f} s)"
              f"  peak RSS when done {info.get('peak_rss_MB_after') or float('nan'):7.0f} MB", flush=True)
    for k, v in res["headline"].items():
        print(f"  {k:20s} {v['value']:.5g} +- {v['std']:.3g}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
