"""Peak memory of `calobench inspect` on a large calochallenge-3 file.

Writes a calochallenge-3-layout file of N events (40500 voxels; 40 000 events = 6.5 GB as
float32) chunk by chunk, then runs `calobench inspect --dataset calochallenge-3` in a child
process and reports its wall time and peak resident memory (ru_maxrss of the child).

The showers are a pool of 64 exponential-profile showers (sparse, like real ones) scaled
by the incident energy: they only need the file's size and sparsity, not physics.

usage: python benchmarks/bench_inspect_memory.py [--events 40000] [--keep FILE]
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

from calobench import ShowerSet, get_geometry
from calobench.data.showerfile import ShowerFileWriter


def shower_pool(size: int, seed: int = 0) -> np.ndarray:
    """(size, 40500) float32 showers, MeV per 1 GeV incident, ~15 % of cells hit."""
    geometry = get_geometry("calochallenge-3")
    rng = np.random.default_rng(seed)
    depth = geometry.layer_index.astype(np.float64)
    radius = np.hypot(geometry.centres[:, 0], geometry.centres[:, 1])
    profile = depth ** 2 * np.exp(-depth / 4.0) * np.exp(-radius / 8.0)
    profile /= profile.sum()
    pool = rng.exponential(profile * 1000.0, (size, geometry.n_cells))
    pool[pool < 0.01515] = 0.0
    return pool.astype(np.float32)


def write_file(path: Path, events: int, chunk: int = 500) -> float:
    """Write ``events`` showers chunk by chunk; returns the seconds taken."""
    geometry = get_geometry("calochallenge-3")
    pool = shower_pool(64)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    with ShowerFileWriter(path, geometry, dataset="calochallenge-3",
                          provenance={"generator": "bench_inspect_memory"}) as writer:
        for lo in range(0, events, chunk):
            n = min(chunk, events - lo)
            energies = 1000.0 * 2 ** rng.uniform(0, 10, n)
            showers = pool[rng.integers(0, len(pool), n)] * (energies[:, None] / 1000.0).astype(np.float32)
            writer.append(ShowerSet(geometry, energies, showers))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40000)
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "calochallenge3_big.h5"
        if not path.exists():
            seconds = write_file(path, args.events)
            print(f"wrote {args.events} events ({args.events * 40500 * 4 / 1e9:.2f} GB as float32, "
                  f"{path.stat().st_size / 1e9:.2f} GB on disk) in {seconds:.0f} s")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "calobench", "inspect", str(path),
                               "--dataset", "calochallenge-3", "--json"], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"inspect failed: {proc.stderr}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        print(f"calobench inspect: {wall:.1f} s wall, peak memory {peak_mb:.0f} MB (target < 500 MB)")


if __name__ == "__main__":
    main()
