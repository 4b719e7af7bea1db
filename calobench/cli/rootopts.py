"""The ROOT-input options shared by the commands that read a shower file: ``--tree`` and ``--branch``."""

from __future__ import annotations

import argparse
from pathlib import Path

from calobench.data.rootfile import is_root_file, parse_branch_options
from calobench.errors import CalobenchError


def add_root_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--tree NAME`` and repeatable ``--branch ROLE=EXPR`` (see docs/root.md)."""
    parser.add_argument("--tree", help="ROOT input: the TTree to read (default: the file's only tree, else 'showers')")
    parser.add_argument("--branch", action="append", metavar="ROLE=EXPR", dest="branches",
                        help="ROOT input: the branch or uproot expression of a role (repeatable), e.g. "
                             "--branch energy=E_mc*1000 --branch cells=hitmap (roles: energy, the dataset's "
                             "conditions, cells or cell_index+cell_energy, cell_x/y/z/e; see docs/root.md)")


def root_options(args: argparse.Namespace, *paths: str) -> tuple[str | None, dict[str, str], bool]:
    """(tree, branches, whether any of ``paths`` is a ROOT file); --tree/--branch without a ROOT file
    is a CalobenchError."""
    branches = parse_branch_options(args.branches)
    is_root = any(Path(p).suffix.lower() == ".root" or is_root_file(p) for p in paths)
    if (args.tree is not None or branches) and not is_root:
        named = ", ".join(paths) or "the inputs"
        raise CalobenchError(f"--tree/--branch: apply to ROOT files only; none of {named} is one")
    return args.tree, branches, is_root
