"""`calobench inspect FILE`: what a shower file holds."""

from __future__ import annotations

import argparse
import json

from calobench.errors import CalobenchError
from calobench.inspection import summarize
from calobench.datasets import open_dataset_file, open_root_file
from calobench.cli.output import add_format_argument, emit, output_format
from calobench.cli.rootopts import add_root_arguments, root_options

NAME = "inspect"
HELP = "show what a shower file holds (geometry, events, energies, sparsity, negative cells, provenance)"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="HDF5 shower file (CaloChallenge layout or calobench extras) or ROOT tree (see --tree, --branch)")
    parser.add_argument("--dataset", help="registered dataset the file belongs to (default: declared or inferred)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="events read at a time (default: about 64 MB of showers)")
    add_format_argument(parser)
    add_root_arguments(parser)


def run(args: argparse.Namespace) -> int:
    tree, branches, is_root = root_options(args, args.file)
    reader = open_root_file(args.file, args.dataset, tree, branches) if is_root \
        else open_dataset_file(args.file, args.dataset)
    info = {"file": str(reader.path), "dataset": reader.dataset,
            "geometry_source": reader.geometry_source, "layout": reader.layout,
            "format_version": reader.format_version or "(plain CaloChallenge file)",
            "particle": reader.particle}
    if args.chunk_size is not None and args.chunk_size < 1:
        raise CalobenchError(f"--chunk-size: expected a positive number of events, found {args.chunk_size}")
    info.update(summarize(reader.showerset(), args.chunk_size))
    info["provenance"] = reader.provenance
    fmt = output_format(args)
    rows = []
    for key, value in info.items():
        if key == "provenance":
            continue
        if isinstance(value, float) and fmt in ("table", "markdown"):
            value = f"{value:.6g}"
        rows.append([key, value])
    for key, value in reader.provenance.items():
        rows.append([f"provenance.{key}", value if not isinstance(value, (dict, list)) else json.dumps(value)])
    emit(fmt, ["field", "value"], rows, title=f"{reader.path.name}", data=info)
    return 0
