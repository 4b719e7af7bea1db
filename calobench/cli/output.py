"""One output helper for every listing and result command: rows as a table, JSON, CSV or markdown.

    add_format_argument(parser)             adds --format table|json|csv|markdown (and --json, its alias)
    emit(fmt, columns, rows, title=..., data=...)   prints rows in the chosen format
    print_table(renderable)                 prints a rich table (never truncated when not on a terminal)
    render(fmt, columns, rows, ...) -> str  the same text as emit, as a string

``rows`` are lists of cell values in ``columns`` order. ``table``, ``csv`` and ``markdown`` print
exactly those rows (csv: a header line, then one line per row, RFC 4180 quoting; markdown: a
GitHub table). ``json`` prints ``data`` when given (the command's documented JSON object, see
docs/output-formats.md), else the rows as a list of {column: value} objects. Cells: None is
empty in table/csv/markdown and null in JSON; booleans yes/no in table and markdown,
true/false in csv; floats are written with repr precision in csv and
JSON, with 4 significant digits in table and markdown; lists are joined with ", " except in JSON.

Without a terminal (``| cat``, ``| grep``, a file) the table is printed at its natural width, so
that names are never cut or ellipsized; on a terminal narrower than the table, cells wrap.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

FORMATS = ("table", "json", "csv", "markdown")


def add_format_argument(parser: argparse.ArgumentParser, json_alias: bool = True) -> None:
    """Add ``--format {table,json,csv,markdown}`` (default table) and, unless json_alias is False,
    ``--json`` as a short form of ``--format json``. Read the choice with ``output_format(args)``."""
    parser.add_argument("--format", choices=FORMATS, default="table", dest="output_format",
                        help="output format: table (default), json, csv or markdown")
    if json_alias:
        parser.add_argument("--json", action="store_const", const="json", dest="json_alias",
                            help="same as --format json")


def output_format(args: argparse.Namespace) -> str:
    """The format asked for on the command line (``--json`` wins over the default table)."""
    if getattr(args, "json_alias", None) == "json":
        return "json"
    return getattr(args, "output_format", "table")


def _text(value, precise: bool) -> str:
    """A cell as text: None empty, floats 4 significant digits (precise: repr), lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("true" if value else "false") if precise else ("yes" if value else "no")
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return repr(value) if precise else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v, precise) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def _json_safe(obj):
    """Non-finite floats become null (JSON has no NaN); numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def rich_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence],
               right: Sequence[str] = ()) -> Table:
    """A rich Table of the rows; columns named in ``right`` are right-justified. Cells wrap
    (overflow fold) instead of being ellipsized."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*[_text(v, precise=False) for v in row])
    return table


def print_table(renderable, file=None) -> None:
    """Print a rich renderable to ``file`` (default stdout). On a terminal: the terminal's width
    (cells wrap). Otherwise: the renderable's natural width, so nothing is cut."""
    file = file if file is not None else sys.stdout
    if file.isatty():
        Console(file=file).print(renderable)
        return
    probe = Console(file=io.StringIO(), width=100_000)
    width = Measurement.get(probe, probe.options, renderable).maximum
    text = io.StringIO()
    Console(file=text, width=max(int(width), 20), no_color=True, highlight=False).print(renderable)
    file.write("".join(line.rstrip() + "\n" for line in text.getvalue().splitlines()))


def markdown(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table: header row, separator row, one row per row ('|' and '<' escaped)."""
    def cell(value) -> str:
        return _text(value, precise=False).replace("|", "\\|").replace("<", "\\<").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """CSV with a header line (RFC 4180 quoting, '\\n' line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(columns))
    for row in rows:
        writer.writerow([_text(v, precise=True) for v in row])
    return out.getvalue()


def render(fmt: str, columns: Sequence[str], rows: Sequence[Sequence], *, data=None) -> str:
    """The text of ``emit`` for json, csv and markdown (table: use print_table)."""
    if fmt == "json":
        payload = data if data is not None else [dict(zip(columns, row)) for row in rows]
        return json.dumps(_json_safe(payload), indent=2, default=str) + "\n"
    if fmt == "csv":
        return csv_text(columns, rows)
    if fmt == "markdown":
        return markdown(columns, rows)
    raise ValueError(f"render: unknown format {fmt!r}; valid: json, csv, markdown")


def emit(fmt: str, columns: Sequence[str], rows: Sequence[Sequence], *, title: str | None = None, data=None,
         right: Sequence[str] = ()) -> None:
    """Print rows (lists in ``columns`` order) to stdout as ``fmt`` (one of FORMATS).

    title: the table's title (table only). data: the JSON object to print instead of the rows
    (json only). right: right-justified columns (table only)."""
    if fmt == "table":
        print_table(rich_table(title, columns, rows, right))
        return
    sys.stdout.write(render(fmt, columns, rows, data=data))


__all__ = ["FORMATS", "add_format_argument", "csv_text", "emit", "markdown", "output_format", "print_table",
           "render", "rich_table"]
