"""The `calobench` command line: a thin layer over the Python API.

Each verb lives in its own module under calobench/cli/commands/ and defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; verbs are
discovered at start-up. Exit status: 0 success, 2 user error (one line, no
traceback), 1 bug, 141 output pipe closed early (``calobench inspect --json | head``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from calobench.errors import CalobenchError
from calobench.cli import commands


def build_parser() -> argparse.ArgumentParser:
    from calobench.version import __version__

    parser = argparse.ArgumentParser(
        prog="calobench",
        description="Benchmark for machine-learning calorimeter fast simulation.",
    )
    parser.add_argument("--version", action="version", version=f"calobench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = []
    for info in pkgutil.iter_modules(commands.__path__):
        modules.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 50)):
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.handler(args)
    except CalobenchError as exc:
        print(f"calobench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("calobench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()
    return int(status or 0)


def _closed_pipe() -> int:
    """The reader of stdout went away (``| head``): stop quietly, without a traceback at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file (captured in tests)
        pass
    return 141


def entry() -> None:
    sys.exit(main())
