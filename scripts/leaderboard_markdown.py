"""Print the ranked curated leaderboards as Markdown tables for the README, from the DataFrames of
``calobench.leaderboard.table``.

usage: python scripts/leaderboard_markdown.py [DATASET ...] [--version current|newest|VERSION]

--version: current (default) ranks calobench's current benchmark version; newest ranks the newest
benchmark version that has entries (e.g. metrics-v1 rows not yet re-run); or name one. Times are CPU
ms per shower with the torch thread count of the measurement.
"""

from __future__ import annotations

import argparse

from calobench.datasets import dataset_names
from calobench.leaderboard import benchmark_version, table
from calobench.leaderboard.display import metric_text, time_text

COLUMNS = ["rank", "model", "family", "params", "AUC high", "AUC low", "FPD", "sep E_tot/E_inc",
           "ms @1", "ms @100", "ms @10000"]


def _version(dataset: str, choice: str) -> str:
    if choice == "current":
        return benchmark_version(dataset)
    if choice == "newest":
        frame = table(dataset, yours=False)
        return frame.sort_values("date")["benchmark_version"].iloc[-1] if len(frame) else benchmark_version(dataset)
    return choice


def markdown(dataset: str, choice: str = "current") -> str:
    """The Markdown table of the ranked curated entries of ``dataset`` ('' when none)."""
    version = _version(dataset, choice)
    frame = table(dataset, yours=False, version=version)
    frame = frame[frame["source"].eq("curated") & frame["rank"].notna()]
    if frame.empty:
        return ""
    lines = [f"**{dataset}** (`{version}`; CPU ms per shower, torch threads in brackets)", "",
             "| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for _, row in frame.iterrows():
        cells = [str(int(row["rank"])), row["model"], row["family"], f"{int(row['parameters']):,}",
                 metric_text(row, "auc_high", 3, floor=False), metric_text(row, "auc_low", 3, floor=False),
                 metric_text(row, "fpd", 3, floor=False), metric_text(row, "sep_etot_einc", 3, floor=False),
                 time_text(row, "cpu", "1"), time_text(row, "cpu", "100"), time_text(row, "cpu", "10000")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*")
    parser.add_argument("--version", default="current")
    args = parser.parse_args()
    for name in args.datasets or dataset_names():
        text = markdown(name, args.version)
        if text:
            print(text + "\n")


if __name__ == "__main__":
    main()
