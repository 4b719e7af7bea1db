"""Shared rich console and table helpers for the command line."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console()


def table(title: str, columns: list[str], rows: list[list], justify_numbers: bool = True) -> Table:
    """A rich table with the given columns; cells are converted with str()."""
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*["" if v is None else str(v) for v in row])
    return out
