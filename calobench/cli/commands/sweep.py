"""`calobench sweep`: `calobench run` for every (model, dataset, seed), as Dask tasks, and a summary."""

from __future__ import annotations

import argparse
import sys

from calobench.cli.console import console, table

NAME = "sweep"
HELP = "run every (model, dataset, seed) of a grid as Dask tasks (a local cluster or --scheduler) and summarise"
ORDER = 35

#: Metrics shown in the summary table when the runs computed them.
SUMMARY_METRICS = ("fpd", "sep_mean", "cls_high_auc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", required=True, help="comma-separated registered model names")
    parser.add_argument("--datasets", required=True, help="comma-separated registered dataset names")
    parser.add_argument("--seeds", default="0", help="comma-separated model seeds (default 0)")
    parser.add_argument("--preset", default="quick", help="tiny, quick (default) or full")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs at a time: worker processes of a local Dask cluster (default 1)")
    parser.add_argument("--scheduler", default=None,
                        help="address of a running Dask scheduler, e.g. tcp://host:8786 "
                             "(default $CALOBENCH_SCHEDULER; unset: a local cluster of --workers processes)")
    parser.add_argument("--threads-per-run", type=int, default=None,
                        help="torch CPU threads of each run (default: the preset's, 1 for tiny and quick)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="training device of each run (default auto)")
    parser.add_argument("--out", default="runs", help="root of the run folders (default ./runs)")
    parser.add_argument("--leaderboard-dir", default="leaderboards", help="leaderboard folder (default ./leaderboards)")
    parser.add_argument("--no-leaderboard", action="store_true", help="do not add leaderboard entries")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing step of each run")
    parser.add_argument("--resume", action="store_true", help="continue interrupted runs in their folders")


def _value(run, name: str) -> str:
    value = run.metrics.get(name)
    return "" if value is None else f"{value:.4g}"


def run(args: argparse.Namespace) -> int:
    from calobench.sweep import SweepOptions, parse_list, parse_seeds, run_sweep

    options = SweepOptions(models=parse_list(args.models, "--models"), datasets=parse_list(args.datasets, "--datasets"),
                           seeds=parse_seeds(args.seeds), preset=args.preset, workers=args.workers,
                           scheduler=args.scheduler, threads_per_run=args.threads_per_run,
                           leaderboard_dir=None if args.no_leaderboard else args.leaderboard_dir, out=args.out,
                           device=args.device, timing=not args.no_timing, resume=args.resume,
                           command="calobench " + " ".join(sys.argv[1:]))
    runs = run_sweep(options)
    shown = [m for m in SUMMARY_METRICS if any(m in r.metrics for r in runs)]
    rows = [[r.model, r.dataset, r.seed, "ok" if r.ok else "failed", f"{r.seconds:.0f}",
             *[_value(r, m) for m in shown], r.entry_id or "", r.error or ""] for r in runs]
    console.print(table(f"sweep ({options.preset}): {sum(r.ok for r in runs)} of {len(runs)} runs ok",
                        ["model", "dataset", "seed", "status", "s", *shown, "entry", "error"], rows))
    return 0 if all(r.ok for r in runs) else 1
