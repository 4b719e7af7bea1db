"""Peak memory of `calobench inspect` on a large calochallenge-3 file.

Writes a calochallenge-3-layout file of N events (40500 voxels; 40 000 events = 6.5 GB as
float32) chunk by chunk, then runs `calobench inspect --dataset calochallenge-3` in a child
process and reports its wall time and peak resident memory (ru_maxrss of the child).

The showers are a pool of 64 exponential-profile showers (sparse, like real ones) scaled
by the incident energy (log-uniform over the dataset's range): they only need the file's size
and sparsity, not physics.

usage: python benchmarks/studies/inspect_memory.py [--events 40000] [--keep FILE]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from calobench import ShowerSet, get_dataset
from calobench.data.showerfile import ShowerFileWriter

DATASET = "calochallenge-3"


def shower_pool(size: int, seed: int = 0) -> np.ndarray:
    """(size, cells) float32 showers, MeV per 1 GeV incident, ~15 % of cells above the threshold."""
    geometry = get_dataset(DATASET).geometry
    rng = np.random.default_rng(seed)
    depth = geometry.layer_index.astype(np.float64)
    radius = np.hypot(geometry.centres[:, 0], geometry.centres[:, 1])
    profile = depth ** 2 * np.exp(-depth / 4.0) * np.exp(-radius / 8.0)
    profile /= profile.sum()
    pool = rng.exponential(profile * 1000.0, (size, geometry.n_cells))
    pool[pool < geometry.threshold] = 0.0
    return pool.astype(np.float32)


def write_file(path: Path, events: int, chunk: int = 500) -> float:
    """Write ``events`` showers chunk by chunk; returns the seconds taken."""
    ds = get_dataset(DATASET)
    geometry = ds.geometry
    low, high = ds.energy_range
    pool = shower_pool(64)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    with ShowerFileWriter(path, geometry, dataset=DATASET,
                          provenance={"generator": "benchmarks/studies/inspect_memory.py"}) as writer:
        for lo in range(0, events, chunk):
            n = min(chunk, events - lo)
            energies = np.exp(rng.uniform(np.log(low), np.log(high), n))
            showers = pool[rng.integers(0, len(pool), n)] * (energies[:, None] / 1000.0).astype(np.float32)
            writer.append(ShowerSet(geometry, energies, showers))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40000)
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    args = parser.parse_args()
    cells = get_dataset(DATASET).geometry.n_cells
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / f"{DATASET}_big.h5"
        if not path.exists():
            seconds = write_file(path, args.events)
            print(f"wrote {args.events} events ({args.events * cells * 4 / 1e9:.2f} GB as float32, "
                  f"{path.stat().st_size / 1e9:.2f} GB on disk) in {seconds:.0f} s")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "calobench", "inspect", str(path),
                               "--dataset", DATASET, "--json"], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"inspect failed: {proc.stderr}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        print(f"calobench inspect: {wall:.1f} s wall, peak memory {peak_mb:.0f} MB (target < 500 MB)")


if __name__ == "__main__":
    main()
