"""`calobench compare GENERATED REFERENCE`: every metric, a table, JSON and an HTML report."""

from __future__ import annotations

import argparse
import sys

from calobench.errors import CalobenchError
from calobench.cli.console import console
from calobench.cli.output import add_format_argument, emit, output_format
from calobench.cli.rootopts import add_root_arguments, root_options

NAME = "compare"
HELP = "evaluate generated showers against reference showers (any two shower files of one geometry)"
ORDER = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("generated", help="HDF5 or ROOT file of generated showers (CaloChallenge layout works; ROOT: see --tree, --branch)")
    parser.add_argument("reference", help="HDF5 or ROOT file of reference showers, or a registered dataset name")
    parser.add_argument("--dataset", help="registered dataset of both files (default: declared or inferred)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated stages: hist,resolution,fpd,prdc,cls-high,cls-xgb,cls-low "
                             "(default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="classifier repetitions (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    parser.add_argument("--json", dest="json_path", help="write the result as JSON to this file")
    parser.add_argument("--report", dest="report_dir", help="write report.html into this folder")
    parser.add_argument("--max-events", type=int, default=None, help="use the first N events of each file")
    parser.add_argument("--cls-protocol", choices=["v2", "challenge"], default="v2",
                        help="classifier protocol: v2 (default: step budget, robust inputs, floors) or challenge "
                             "(the CaloChallenge evaluate.py protocol, to compare with published numbers)")
    parser.add_argument("--cls-epochs", type=int, default=None,
                        help="classifier epochs at most (challenge protocol; default 50)")
    parser.add_argument("--cls-max-steps", type=int, default=None,
                        help="classifier optimiser steps at most (v2 protocol; default 6000)")
    parser.add_argument("--cls-max-events", type=int, default=None, help="classifier events per sample at most")
    parser.add_argument("--cls-hidden", type=int, default=None,
                        help="classifier hidden nodes (default 256 in v2, 2048 in challenge)")
    parser.add_argument("--full", action="store_true",
                        help="table: print every metric, not only the headline ones (json, csv, markdown: always all)")
    add_format_argument(parser, json_alias=False)
    parser.add_argument("--workers", type=int, default=None,
                        help="run the feature and histogram pass as Dask tasks on a local cluster of this many "
                             "worker processes (the numbers do not change)")
    parser.add_argument("--scheduler", default=None,
                        help="run the feature and histogram pass on the Dask scheduler at this address, "
                             "e.g. tcp://host:8786 (the workers must see both files)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    add_root_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from calobench.allocator import return_freed_memory
    from calobench.api import compare

    for flag in ("workers", "repeats", "cls_epochs", "cls_max_steps", "max_events", "cls_max_events", "cls_hidden"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise CalobenchError(f"--{flag.replace('_', '-')}: expected a positive number, found {value}")
    tree, branches, _ = root_options(args, args.generated, args.reference)
    return_freed_memory()  # this process holds a few large arrays: freed ones go back (calobench/allocator.py)
    result = compare(args.generated, args.reference, dataset=args.dataset, metrics=args.metrics,
                     repeats=args.repeats, seed=args.seed, json_path=args.json_path, report_dir=args.report_dir,
                     progress=not args.quiet, max_events=args.max_events, cls_protocol=args.cls_protocol,
                     cls_epochs=args.cls_epochs, cls_max_steps=args.cls_max_steps, cls_max_events=args.cls_max_events,
                     cls_hidden=args.cls_hidden, tree=tree, branches=branches,
                     workers=args.workers, scheduler=args.scheduler)
    fmt = output_format(args)
    if fmt == "table":
        console.print(result.table(full=args.full))
    else:
        emit(fmt, RESULT_COLUMNS, [[row[c] for c in RESULT_COLUMNS] for row in result.rows(full=True)],
             data=result.to_dict())
    # with a machine-readable format, stdout holds only that output: the notes go to stderr
    say = console.print if fmt == "table" else (lambda text: print(text, file=sys.stderr))
    for note in result.info.get("notes", []):
        say(f"note: {note}")
    if args.json_path:
        say(f"JSON: {args.json_path}")
    if args.report_dir:
        say(f"report: {result.info['report']}")
    return 0


#: Columns of `compare --format csv|markdown`: one row per metric (Result.rows).
RESULT_COLUMNS = ["name", "stage", "value", "std", "floor", "within_floor", "direction", "failed", "description"]
