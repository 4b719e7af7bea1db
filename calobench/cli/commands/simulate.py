"""`calobench simulate`: real Geant4 showers of a dataset's geometry (needs calobench[geant4])."""

from __future__ import annotations

import argparse
import shlex
import sys

from calobench.cli.console import console

NAME = "simulate"
HELP = "simulate showers of a dataset's geometry with Geant4 (pip install calobench[geant4])"
ORDER = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset whose geometry to simulate")
    parser.add_argument("-n", type=int, required=True, help="number of events")
    parser.add_argument("--particle", default=None,
                        help="particle name(s), comma separated (gamma, e-, e+); default: the dataset's")
    parser.add_argument("--energy", default=None,
                        help="LOW:HIGH range or a comma list, in MeV (numbers may end in GeV); "
                             "default: the dataset's range")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--workers", type=int, default=1,
                        help="Geant4 worker processes of a local Dask cluster (default 1)")
    parser.add_argument("--scheduler", default=None,
                        help="address of a running Dask scheduler to run the blocks on, e.g. tcp://host:8786 "
                             "(default $CALOBENCH_SCHEDULER; unset: a local cluster of --workers processes)")
    parser.add_argument("--resume", action="store_true",
                        help="require a parts folder (<output>.parts) to resume; without it a matching parts "
                             "folder is resumed anyway and a stale one is started afresh")
    parser.add_argument("--chunk", type=int, default=200, help="events per resumable part (default 200)")
    parser.add_argument("--cut", type=float, default=0.7, help="production cut in mm (default 0.7)")
    parser.add_argument("-o", "--output", required=True, help="output HDF5 file")


def run(args: argparse.Namespace) -> int:
    from calobench.simulation.runner import simulate

    particles = args.particle.split(",") if args.particle else None
    command = "calobench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["simulate"] \
        else None
    path = simulate(args.dataset, args.n, args.output, particles, args.energy, args.seed, args.workers,
                    args.chunk, args.cut, command=command, scheduler=args.scheduler, resume=args.resume)
    from calobench.datasets import open_showers

    prov = open_showers(path, args.dataset).provenance
    console.print(f"wrote {path}: {args.n} events, {prov['physics_list']}, Geant4 "
                  f"{prov['geant4_timing']['mean_ms']:.1f} ms/event")
    return 0
