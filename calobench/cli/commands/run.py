"""`calobench run`: train, generate, evaluate, time and add a leaderboard entry."""

from __future__ import annotations

import argparse
import math
import sys

from calobench.cli.console import console, table
from calobench.cli.rootopts import add_root_arguments, root_options

NAME = "run"
HELP = "train a registered model on a dataset, evaluate it on the held-out split, time it, add a leaderboard entry"
ORDER = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name (see `calobench models`)")
    parser.add_argument("--dataset", required=True, help="registered dataset name (see `calobench datasets`)")
    parser.add_argument("--preset", default="quick", help="tiny, quick (default) or full (or a model's own)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="training device (auto: cuda, then mps, then cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice of the model")
    parser.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="settings",
                        help="a model setting on top of the preset (repeatable), e.g. "
                             "--set sampling_precision=bfloat16 (see `calobench models`)")
    parser.add_argument("--out", help="run folder (default runs/<dataset>/<model>-<preset>-seed<seed>)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--reference", help="reference shower file instead of the dataset's embedded sample")
    parser.add_argument("--leaderboard-dir",
                        help="your leaderboard folder, where the entry is recorded (default: "
                             "$CALOBENCH_LEADERBOARD_DIR, else the per-user data folder; see docs/leaderboard.md)")
    parser.add_argument("--no-leaderboard", action="store_true", help="do not add a leaderboard entry")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing step")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads for training, evaluation and timing (default: 1 for tiny and "
                             "quick, torch's default for full; timing: 1, what leaderboard entries use)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_root_arguments(parser)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.4g}"


def timing_table(timing: dict, title: str):
    rows = []
    for device, info in timing["devices"].items():
        for bs, t in info["batches"].items():
            if "skipped" in t:
                rows.append([device, bs, "skipped", "", 0, "", t["skipped"]])
                continue
            median = t.get("median_ms_per_shower", t["ms_per_shower"])
            rows.append([device, bs, _fmt(median), _fmt(t.get("iqr_ms_per_shower")), t["repeats"],
                         _fmt(1000.0 / median), _fmt(t.get("speedup_vs_geant4"))])
    g4 = timing.get("geant4_ms_per_event")
    title = f"{title} (Geant4: {_fmt(g4)} ms/event)" if g4 else f"{title} (Geant4 time unknown: no speed-up)"
    if "threads" in timing:
        load = [timing.get("load_1min_before"), timing.get("load_1min_after")]
        load_text = "/".join("?" if v is None else f"{v:.2f}" for v in load)
        title += (f"; {timing['threads']} CPU thread(s) on {timing.get('cpu_model', '?')}, "
                  f"load {load_text} before/after")
    return table(title, ["device", "batch", "ms/shower (median)", "IQR", "repeats", "showers/s",
                         "speed-up vs Geant4"], rows)


def run(args: argparse.Namespace) -> int:
    from calobench.allocator import keep_freed_memory

    keep_freed_memory()  # this process generates: no page faults per pass (see calobench/allocator.py)
    from calobench.runner import RunOptions, run_benchmark
    from calobench.cli.settings import preset_settings

    tree, branches, _ = root_options(args, *([args.reference] if args.reference else []))
    overrides = preset_settings(args.settings, args.model, args.dataset, args.preset)

    from calobench.leaderboard.locations import user_dir

    leaderboard_dir = None if args.no_leaderboard else (args.leaderboard_dir or user_dir())
    options = RunOptions(model=args.model, dataset=args.dataset, preset=args.preset, device=args.device,
                         seed=args.seed, epochs=args.epochs, out=args.out, resume=args.resume,
                         reference=args.reference, reference_tree=tree, reference_branches=branches,
                         leaderboard_dir=leaderboard_dir,
                         progress=not args.quiet, timing=not args.no_timing,
                         command="calobench " + " ".join(sys.argv[1:]), threads=args.threads,
                         overrides=overrides)
    outcome = run_benchmark(options)
    console.print(outcome.result.table(title=f"{args.model} on {args.dataset} ({args.preset}): test split"))
    if outcome.timing["devices"]:
        console.print(timing_table(outcome.timing, f"{args.model} generation time"))
    where = f"; leaderboard entry {outcome.entry['id']} in {outcome.leaderboard}" if outcome.leaderboard else ""
    console.print(f"run folder {outcome.out}{where}; seconds: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in outcome.seconds.items()))
    return 0
