"""`calobench reference`: the benchmark references (status; build from a dataset's recipe with Geant4)."""

from __future__ import annotations

import argparse

from calobench.cli.console import console

NAME = "reference"
HELP = "the benchmark reference of each dataset: status, or build one from its Geant4 recipe"
ORDER = 55


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    sub.add_parser("status", help="where each dataset's benchmark reference is, and whether it is built")
    build = sub.add_parser("build", help="build a dataset's benchmark reference with Geant4 (cached, resumable)")
    build.add_argument("dataset", help="dataset name (one with a reference recipe)")
    build.add_argument("--workers", type=int, default=1, help="Geant4 worker processes (default 1)")
    build.add_argument("--force", action="store_true", help="rebuild even when a verified file is cached")


def rows() -> list[dict]:
    """One row per dataset: embedded events, benchmark reference, built or not, path."""
    from calobench.datasets import dataset_names, get_dataset, load_reference

    out = []
    for name in dataset_names():
        ds = get_dataset(name)
        embedded = len(load_reference(name, embedded=True)) if ds.has_embedded else 0
        if ds.recipe is None:
            state, events = ("embedded" if ds.has_embedded else "none"), embedded
        else:
            state, events = ("built" if ds.built_path else "not built"), ds.recipe.events
        out.append({"dataset": name, "embedded_events": embedded, "benchmark_events": events,
                    "state": state, "path": str(ds.reference_path) if state != "none" else ""})
    return out


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        from calobench.data.validation import check_int_option
        from calobench.simulation.benchmark_reference import build_reference

        check_int_option(args.workers, "reference build: --workers", 1)
        path = build_reference(args.dataset, workers=args.workers, force=args.force)
        console.print(f"{args.dataset}: benchmark reference verified against its recipe's fingerprint: {path}")
        return 0
    from rich.table import Table

    table = Table(title="benchmark references")
    for column in ("dataset", "embedded", "benchmark", "state", "path"):
        table.add_column(column, overflow="fold")
    for row in rows():
        table.add_row(row["dataset"], str(row["embedded_events"]), str(row["benchmark_events"]), row["state"],
                      row["path"])
    console.print(table)
    return 0
