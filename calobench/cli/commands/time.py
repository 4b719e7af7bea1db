"""`calobench time`: generation time per shower of a model on every available device (no training)."""

from __future__ import annotations

import argparse
import sys

from calobench.cli.console import console
from calobench.cli.output import add_format_argument, emit, output_format

NAME = "time"
HELP = "time generation (ms per shower at batch 1, 100, 10000) of a fresh or saved model on every device"
ORDER = 35


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--dataset", required=True, help="registered dataset name")
    parser.add_argument("--preset", default="quick", help="preset of a freshly initialised model (default quick)")
    parser.add_argument("--load", help="saved model folder (config.json + weights.safetensors), e.g. <run>/model")
    parser.add_argument("--reference", help="reference shower file for the conditions (and a fresh model's "
                                            "normalisation) instead of the dataset's embedded sample")
    parser.add_argument("--batch-sizes", default="1,100,10000", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per batch size at most")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per batch size at most")
    parser.add_argument("--devices", help="comma-separated devices (default: every available one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="settings",
                        help="a model setting (repeatable), e.g. --set sampling_precision=bfloat16")
    add_format_argument(parser)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads while timing (default 1, what leaderboard entries use)")


def run(args: argparse.Namespace) -> int:
    from calobench.allocator import keep_freed_memory

    keep_freed_memory()  # this process generates: no page faults per pass (see calobench/allocator.py)
    from calobench.data.validation import check_float_option, check_int_option
    from calobench.errors import CalobenchError
    from calobench.models.registry import check_supported
    from calobench.runner import load_reference, split_reference
    from calobench.timing import TIMING_THREADS, TimingOptions, time_model
    from calobench.cli.settings import parse_settings, preset_settings
    from calobench.cli.commands.run import timing_table

    cls = check_supported(args.model, args.dataset)
    try:
        sizes = tuple(int(s) for s in args.batch_sizes.split(",") if s.strip())
    except ValueError:
        raise CalobenchError(f"--batch-sizes: expected integers separated by commas, found {args.batch_sizes!r}") from None
    if not sizes or min(sizes) < 1:
        raise CalobenchError(f"--batch-sizes: expected positive integers, found {args.batch_sizes!r}")
    check_int_option(args.repeats, "--repeats")
    check_float_option(args.budget, "--budget")
    threads = TIMING_THREADS if args.threads is None else args.threads
    check_int_option(threads, "--threads")
    ref = load_reference(args.dataset, args.reference)
    train, _, test = split_reference(ref)
    if args.load:
        model = cls.load(args.load, overrides=parse_settings(args.settings))
        state = "saved"
        what = f"saved model {args.load}"
    else:
        model = cls(args.dataset, args.preset, args.seed, "cpu",
                    **preset_settings(args.settings, args.model, args.dataset, args.preset))
        # a fresh model still needs its normalisation constants: fit them without training
        state = "fresh"
        what = f"freshly initialised {args.preset} model (untrained weights; timing only)"
        model.prepare(train.slice(0, min(len(train), 512)))
    devices = args.devices.split(",") if args.devices else None
    options = TimingOptions(batch_sizes=sizes, repeats=args.repeats, budget_s=args.budget, threads=threads)
    timing = time_model(model, test.energies, test.conditions, devices=devices, options=options)
    timing["model_state"] = state
    fmt = output_format(args)
    if fmt == "table":
        console.print(f"timing the {what}")
        console.print(timing_table(timing, f"{args.model} on {args.dataset}: generation time"))
        return 0
    from calobench.timing_results import Timing

    print(f"timing the {what}", file=sys.stderr)
    rows = Timing(timing).rows()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    emit(fmt, columns, [[row.get(c) for c in columns] for row in rows],
         data={"model": args.model, "dataset": args.dataset, "timed": what, "timing": timing})
    return 0
