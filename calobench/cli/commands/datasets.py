"""`calobench datasets [show NAME]`: the registered datasets."""

from __future__ import annotations

import argparse
import json

from calobench.datasets import dataset_names, get_dataset
from calobench.cli.console import console, table

NAME = "datasets"
HELP = "list the registered datasets, or show one (calobench datasets show NAME)"
ORDER = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list",
                        help="list (default) or show one dataset")
    parser.add_argument("name", nargs="?", help="dataset name for `show`")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        if not args.name:
            from calobench.errors import CalobenchError
            raise CalobenchError(f"datasets show: give a dataset name; valid names: {', '.join(dataset_names())}")
        info = get_dataset(args.name).summary()
        if args.json:
            print(json.dumps(info, indent=2))
            return 0
        geometry = info.pop("geometry")
        rows = [[k, v] for k, v in info.items()] + [[f"geometry.{k}", v] for k, v in geometry.items()]
        console.print(table(f"dataset {args.name}", ["field", "value"], rows))
        return 0
    infos = [get_dataset(n).summary() for n in dataset_names()]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    rows = [[i["name"], i["kind"], i["cells"] if i["cells"] is not None else "ragged",
             ", ".join(i["conditions"]), ", ".join(i["particles"]), i["reference"],
             "yes" if i["embedded"] else "no"] for i in infos]
    console.print(table("calobench datasets", ["name", "kind", "cells", "conditions", "particles",
                                                "reference", "embedded"], rows))
    return 0
