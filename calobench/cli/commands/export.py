"""`calobench export FILE --to root -o OUT`: write a shower file as a ROOT tree (uproot)."""

from __future__ import annotations

import argparse

from calobench.cli.console import console

NAME = "export"
HELP = "write a shower file (HDF5, or a dataset's embedded reference) as a ROOT tree"
ORDER = 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="HDF5 shower file, or a registered dataset name (its embedded reference)")
    parser.add_argument("--to", choices=["root"], default="root", help="output format (root)")
    parser.add_argument("-o", "--output", required=True, help="output file, e.g. out.root")
    parser.add_argument("--dataset", help="registered dataset of the file (default: declared or inferred)")
    parser.add_argument("--tree", default="showers", help="tree name (default showers)")
    parser.add_argument("--sparse", action="store_true",
                        help="voxel showers as jagged cell_index + cell_energy lists instead of a fixed cells array")


def run(args: argparse.Namespace) -> int:
    from calobench.api import load
    from calobench.data.rootfile import write_root

    showers = load(args.file, args.dataset)
    path = write_root(showers, args.output, tree=args.tree, sparse=args.sparse)
    console.print(f"wrote {len(showers)} {showers.dataset} showers to {path} (tree '{args.tree}')")
    return 0
