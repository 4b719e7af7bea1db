"""`calobench selftest --dataset D`: the power table (which metric detects which known distortion)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from calobench.cli.console import console
from calobench.errors import CalobenchError

NAME = "selftest"
HELP = "apply known distortions to held-out reference showers and report which metric detects each"
ORDER = 35


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="registered dataset with an embedded reference sample")
    parser.add_argument("-n", "--events", type=int, default=None,
                        help="events per sample (default: the test-split size)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample choice, distortions and metrics")
    parser.add_argument("--distortions", default=None, help="comma-separated distortions (default: all)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated compare stages: hist,resolution,fpd,prdc,cls-high,cls-xgb,cls-low "
                             "(default: all)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1, fastest on a shared machine; 0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="tiny classifier settings (a cheap run, for tests)")
    parser.add_argument("--json", dest="json_path", help="write the power table and every value as JSON here")
    parser.add_argument("--markdown", help="write the power table as markdown here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _check_folder(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise CalobenchError(f"{flag} {path}: folder {Path(path).parent} does not exist")


def run(args: argparse.Namespace) -> int:
    from calobench.selftest import parse_distortions, run_selftest

    parse_distortions(args.distortions)
    _check_folder(args.json_path, "--json")
    _check_folder(args.markdown, "--markdown")
    table = run_selftest(args.dataset, events=args.events, seed=args.seed, distortions=args.distortions,
                         metrics=args.metrics, quick=args.quick, progress=not args.quiet,
                         on_case=lambda partial: _write(partial, args),  # a long run leaves what finished
                         threads=args.threads or None)
    console.print(table.table())
    _write(table, args)
    if args.json_path:
        console.print(f"JSON: {args.json_path}")
    if args.markdown:
        console.print(f"markdown: {args.markdown}")
    return 0


def _write(table, args: argparse.Namespace) -> None:
    """Write the JSON and markdown files asked for (atomically: temporary file, then rename)."""
    for path, text in ((args.json_path, lambda: json.dumps(table.to_dict(), indent=2)),
                       (args.markdown, table.markdown)):
        if path:
            tmp = Path(path).with_name(f".{Path(path).name}.partial")
            tmp.write_text(text())
            os.replace(tmp, path)
