"""Shared console and table helpers for the command line (see calobench/cli/output.py for --format).

``console.print(x)`` prints a rich renderable or text to the current stdout: at the terminal's
width on a terminal (table cells wrap, never ellipsized), at the natural width otherwise, so
that piped output (``| cat``, ``| grep``) keeps full names.
"""

from __future__ import annotations

from calobench.cli.output import print_table, rich_table


class StdoutConsole:
    """The ``print`` of a rich Console, to whatever sys.stdout is when called (pipe-safe widths)."""

    def print(self, renderable="") -> None:
        print_table(renderable)


console = StdoutConsole()


def table(title: str, columns: list[str], rows: list[list], justify_numbers: bool = True):
    """A rich table with the given columns; cells are converted with str() (None: empty); cells wrap."""
    return rich_table(title, columns, [["" if v is None else str(v) for v in row] for row in rows])
