"""Geant4 events/s per geometry and GFlash showers/s on the same geometry, in one run.

usage: python benchmarks/studies/simulation_speed.py [--datasets a,b] [--events N] [--preset quick] [--json OUT]

Geant4: one worker process, particles at one energy per dataset (ENERGY below), the set-up's conditions law; events/s from the CPU time of each event
(physics tables built before). Both are timed in process CPU time (one core), so other load
on the machine does not distort the ratio. GFlash: fitted to the embedded reference, then timed on the same
energies (mean of 3 calls after a warm-up call of the same size, calobench.timing.time_batch).
Target: GFlash at least 1000x faster than Geant4.

A second ratio covers the dataset's whole energy range: GFlash on the embedded sample's own
energies and conditions against the mean Geant4 CPU time per event stored with that sample
(calobench.datasets.reference_timing, measured when the sample was simulated).
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

import calobench
from calobench.baselines.parametric.gflash import GFlash
from calobench.datasets import PDG, geant4_ms_per_event, get_dataset
from calobench.simulation import runner
from calobench.simulation.setups import make_setup
from calobench.timing import TimingOptions, time_batch

EVENTS = {"stcf11x11": 200, "bes3-11x11": 200, "darkshine": 60, "cepc": 4, "calochallenge-2": 6,
          "calochallenge-3": 6}
ENERGY = {"stcf11x11": 1000.0, "bes3-11x11": 1000.0, "darkshine": 4000.0, "cepc": 40000.0,
          "calochallenge-2": 10000.0, "calochallenge-3": 10000.0}


#: one warm-up call of the timed size (it builds the cell maps and lets the allocator keep its
#: pages), then 3 timed calls in process CPU time
GFLASH_TIMING = TimingOptions(warmup=1, repeats=3, budget_s=math.inf, cpu_time=True)


def gflash_showers_per_s(model: GFlash, energies: np.ndarray, conditions: dict[str, np.ndarray]) -> float:
    """GFlash showers per CPU second: all ``energies`` (MeV) in one ``sample`` call."""
    t = time_batch(model, energies, conditions, len(energies), "cpu", GFLASH_TIMING)
    return 1000.0 / t["ms_per_shower"]


def bench(name: str, events: int | None, preset: str) -> dict:
    n = events or EVENTS[name]
    energy = ENERGY[name]
    setup = make_setup(get_dataset(name))
    particle = PDG[get_dataset(name).particles[0]]
    prim = setup.sample(np.random.default_rng(0), np.full(n, particle), np.full(n, energy))
    _, ms = runner.simulate_primaries(name, prim, seed=11)
    g4_rate = 1000.0 / ms.mean()
    row = {"dataset": name, "energy_MeV": energy, "geant4_events": n, "geant4_ms_per_event": float(ms.mean()),
           "geant4_events_per_s": g4_rate}
    if name in GFlash.datasets:
        ref = calobench.load(name)
        model = GFlash(name, preset, seed=0)
        model.fit(ref.take(np.arange(min(len(ref), model.config["max_events"]))))
        m = 2000 if name != "calochallenge-3" else 500
        cond = {k: np.resize(v, m) for k, v in prim.conditions.items()} if prim.conditions else {}
        if name == "stcf11x11":
            cond = {k: np.resize(v, m) for k, v in ref.conditions.items()}
        rate = gflash_showers_per_s(model, np.full(m, energy), cond)
        row.update(gflash_preset=preset, gflash_showers_per_s=rate, speedup=rate / g4_rate)
        stored_ms = geant4_ms_per_event(name)
        if stored_ms is not None:
            pick = np.arange(m) % len(ref)
            sample_rate = gflash_showers_per_s(model, ref.energies[pick],
                                               {k: v[pick] for k, v in ref.conditions.items()})
            row.update(sample_geant4_ms_per_event=stored_ms, sample_gflash_showers_per_s=sample_rate,
                       sample_speedup=sample_rate * stored_ms / 1000.0)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default=",".join(EVENTS))
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [bench(name, args.events, args.preset) for name in args.datasets.split(",")]
    nan = float("nan")
    print(f"{'dataset':18s} {'E/MeV':>8s} {'G4 ev/s':>10s} {'G4 ms/ev':>10s} {'GFlash sh/s':>12s} {'speed-up':>9s}"
          f" | {'sample G4 ms/ev':>15s} {'GFlash sh/s':>12s} {'speed-up':>9s}")
    for r in rows:
        print(f"{r['dataset']:18s} {r['energy_MeV']:8.0f} {r['geant4_events_per_s']:10.2f} "
              f"{r['geant4_ms_per_event']:10.1f} {r.get('gflash_showers_per_s', nan):12.0f} "
              f"{r.get('speedup', nan):9.0f} | {r.get('sample_geant4_ms_per_event', nan):15.1f} "
              f"{r.get('sample_gflash_showers_per_s', nan):12.0f} {r.get('sample_speedup', nan):9.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
