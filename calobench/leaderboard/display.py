"""Display columns of the leaderboard DataFrame: 'value ± std [floor]' strings and Markdown tables.

Used by `calobench leaderboard show` (table and markdown formats) and scripts/leaderboard_markdown.py.
Times are CPU ms per shower, with the torch thread count of the measurement beside each one, and
GPU (cuda) ms per shower, from the entry's own timing or its ``device_timings`` (measured apart).
"""

from __future__ import annotations

import math

COLUMNS = ["rank", "source", "model", "family", "preset", "params", "AUC low [floor]", "AUC high [floor]",
           "score", "unranked: why", "FPD [floor]", "sep E_tot/E_inc", "cpu ms @1", "cpu ms @10000",
           "gpu ms @1", "gpu ms @10000", "seed", "date", "id"]


def is_missing(value) -> bool:
    """None, NaN, pandas.NA or an infinite number."""
    import pandas as pd

    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and not math.isfinite(value)


def metric_text(row, name: str, digits: int = 4, floor: bool = True) -> str:
    """'value ± std [floor]' of metric ``name`` in a DataFrame row ('' when absent)."""
    value = row.get(name)
    if is_missing(value):
        return ""
    text = f"{value:.{digits}g}"
    std = row.get(f"{name}_std")
    if not is_missing(std) and std > 0:
        text += f" ± {std:.2g}"
    lo = row.get(f"{name}_floor")
    if floor and not is_missing(lo):
        text += f" [{lo:.{digits}g}]"
    return text


def time_text(row, device: str = "cpu", batch: str = "1") -> str:
    """'ms (N threads)' of one timing column; 'skipped' when the batch was too slow to measure."""
    value = row.get(f"ms_{device}_bs{batch}")
    threads = row.get(f"threads_{device}") if device == "cpu" else None
    if is_missing(value):
        skipped = row.get(f"ms_{device}_bs{batch}_skipped")
        return "skipped" if isinstance(skipped, str) else ""
    text = f"{value:.3g}"
    if not is_missing(threads):
        text += f" ({int(threads)} thr)"
    return text


def display_row(row) -> list[str]:
    """The COLUMNS strings of one DataFrame row."""
    score = row.get("score")
    return ["-" if is_missing(row.get("rank")) else str(int(row["rank"])), row["source"], row["model"], row["family"],
            row["preset"], f"{int(row['parameters']):,}", metric_text(row, "auc_low"), metric_text(row, "auc_high"),
            "" if is_missing(score) else f"{score:.3f}", row.get("unranked") or "", metric_text(row, "fpd", 3),
            metric_text(row, "sep_etot_einc", 3, floor=False), time_text(row, "cpu", "1"),
            time_text(row, "cpu", "10000"), time_text(row, "cuda", "1"), time_text(row, "cuda", "10000"),
            str(row["seed"]), str(row["date"])[:10], row["id"]]


def display_rows(frame) -> list[list[str]]:
    """Display rows of a leaderboard DataFrame, in its order."""
    return [display_row(row) for _, row in frame.iterrows()]


def markdown(columns: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table ('|' inside cells escaped)."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


__all__ = ["COLUMNS", "display_row", "display_rows", "is_missing", "markdown", "metric_text", "time_text"]
