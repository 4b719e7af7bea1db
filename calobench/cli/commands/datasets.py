"""`calobench datasets [show NAME]`: the registered datasets."""

from __future__ import annotations

import argparse

from calobench.datasets import dataset_names, get_dataset
from calobench.cli.output import add_format_argument, emit, output_format

NAME = "datasets"
HELP = "list the registered datasets, or show one (calobench datasets show NAME)"
ORDER = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list",
                        help="list (default) or show one dataset")
    parser.add_argument("name", nargs="?", help="dataset name for `show`")
    add_format_argument(parser)


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args)
    if args.action == "show":
        if not args.name:
            from calobench.errors import CalobenchError
            raise CalobenchError(f"datasets show: give a dataset name; valid names: {', '.join(dataset_names())}")
        info = get_dataset(args.name).summary()
        geometry = info["geometry"]
        rows = [[k, v] for k, v in info.items() if k != "geometry"]
        rows += [[f"geometry.{k}", v] for k, v in geometry.items()]
        emit(fmt, ["field", "value"], rows, title=f"dataset {args.name}", data=info)
        return 0
    infos = [get_dataset(n).summary() for n in dataset_names()]
    rows = [[i["name"], i["kind"], i["cells"] if i["cells"] is not None else "ragged", i["conditions"],
             i["particles"], i["reference"], i["embedded"]] for i in infos]
    emit(fmt, ["name", "kind", "cells", "conditions", "particles", "reference", "embedded"], rows,
         title="calobench datasets", data=infos)
    return 0
