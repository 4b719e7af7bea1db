"""`calobench leaderboard show|validate|migrate|submit`.

show DATASET      the curated rows and yours, ranked together (column `source`: curated / yours)
validate          every entry file of the curated leaderboard and of your folder (or --leaderboard-dir)
migrate           convert a schema-1.0 folder (<dataset>.json files) into one file per entry
submit ENTRY_FILE --to CHECKOUT   copy an entry into a checkout's leaderboards/<dataset>/ for a pull request
site OUT_DIR      a static, self-contained website of every dataset's leaderboard (calobench.report.site)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from calobench.cli.console import console, table

NAME = "leaderboard"
HELP = "show a dataset's leaderboard (curated rows and yours), validate, migrate or submit entries"
ORDER = 40
FORMATS = ("table", "json", "csv", "markdown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["show", "validate", "migrate", "submit", "site", "attach-timing"],
                        help="show DATASET, validate, migrate, submit ENTRY_FILE --to CHECKOUT, site OUT_DIR, or "
                             "attach-timing ENTRY_FILE --from GPU_TIMING_JSON")
    parser.add_argument("dataset", nargs="?", metavar="DATASET|ENTRY_FILE|OUT_DIR",
                        help="dataset name (show), entry file (submit) or output folder (site)")
    parser.add_argument("--leaderboard-dir",
                        help="your leaderboard folder (default: $CALOBENCH_LEADERBOARD_DIR, else the per-user data "
                             "folder, see docs/leaderboard.md); validate and migrate: only this folder")
    parser.add_argument("--no-curated", action="store_true", help="show: leave out the curated rows")
    parser.add_argument("--format", choices=FORMATS, default="table", help="show: output format (default table)")
    parser.add_argument("--json", action="store_true", help="same as --format json")
    parser.add_argument("--to", metavar="CHECKOUT", help="submit: the calobench checkout to copy the entry into")
    parser.add_argument("--from", dest="from_report", metavar="GPU_TIMING_JSON",
                        help="attach-timing: the JSON of benchmarks/gpu_timing.py whose run of the entry's model, "
                             "dataset and preset becomes a row of the entry's device_timings")


def _output_console():
    """The shared console on a terminal; without one, a console wide enough that no cell is cut."""
    from rich.console import Console

    return console if sys.stdout.isatty() else Console(width=100_000, soft_wrap=True)


def _show(args: argparse.Namespace) -> int:
    from calobench.datasets import dataset_names
    from calobench.errors import CalobenchError
    from calobench.leaderboard import benchmark_version, curated_dir, published_rows, user_dir
    from calobench.leaderboard.display import COLUMNS, display_rows, markdown
    from calobench.leaderboard.frame import sourced_entries
    from calobench.leaderboard.frame import table as frame_table

    if not args.dataset:
        raise CalobenchError(f"leaderboard show: give a dataset name; valid names: {', '.join(dataset_names())}")
    yours = Path(args.leaderboard_dir) if args.leaderboard_dir else user_dir()
    frame = frame_table(args.dataset, user_dir=yours, curated=not args.no_curated)
    current = benchmark_version(args.dataset)
    fmt = "json" if args.json else args.format
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
        return 0
    if fmt == "json":
        entries = {e["id"]: (s, e) for s, e in sourced_entries(args.dataset, yours, not args.no_curated)}
        listed = [{"rank": None if r != r or r is None else int(r), "source": s, "unranked": why, **entries[i][1]}
                  for r, s, why, i in zip(frame["rank"], frame["source"], frame["unranked"], frame["id"])]
        print(json.dumps({"dataset": args.dataset, "benchmark_version": current,
                          "curated_dir": None if curated_dir() is None else str(curated_dir()),
                          "user_dir": str(yours),
                          "ranked": [x for x in listed if x["benchmark_version"] == current],
                          "other_benchmark_versions": [x for x in listed if x["benchmark_version"] != current],
                          "published_reference_rows": published_rows(args.dataset)}, indent=2))
        return 0
    now = frame[frame["current"].astype(bool)] if len(frame) else frame
    other = frame[~frame["current"].astype(bool)] if len(frame) else frame
    title = (f"{args.dataset} leaderboard, benchmark {current} (score: worst |AUC - 0.5| beyond its floor, "
             "low or high level; times: ms per shower on the CPU (torch threads) and on a GPU; docs/leaderboard.md)")
    if fmt == "markdown":
        print(f"**{title}**\n\n" + markdown(COLUMNS, display_rows(now)))
        if len(other):
            print("\n**entries of other benchmark versions (not ranked)**\n\n"
                  + markdown(["source", "benchmark version"] + COLUMNS[2:], _with_version(other)))
        return 0
    out = _output_console()
    if len(now):
        out.print(table(title, COLUMNS, display_rows(now)))
    if len(other):
        out.print(table("entries of other benchmark versions (not ranked with the above)",
                        ["source", "benchmark version"] + COLUMNS[2:], _with_version(other)))
    published = published_rows(args.dataset)
    if published:
        out.print(table("CaloChallenge 2022 published results on the challenge's own data "
                        "(reference only, not ranked with the entries above)",
                        ["model", "params", "AUC high", "AUC low", "FPD", "sep E_tot/E_inc", "ms/shower cpu@10k"],
                        [[p["model"], p["parameters"] or "", _fmt(p["metrics"]["auc_high"]),
                          _fmt(p["metrics"]["auc_low"]), _fmt(p["metrics"]["fpd"], 3),
                          _fmt(p["metrics"]["sep_etot_einc"], 3),
                          "" if p["timing_ms_per_shower"]["cpu"]["10000"] is None
                          else f"{p['timing_ms_per_shower']['cpu']['10000']:.3g}"] for p in published]))
    if not len(frame):
        print(f"no entries for {args.dataset}: none curated, none in your folder {yours} "
              f"(add one with `calobench run --model M --dataset {args.dataset}`)", file=sys.stderr)
    return 0


def _with_version(frame) -> list[list[str]]:
    """Display rows without rank, with the benchmark version after the source."""
    from calobench.leaderboard.display import display_rows

    return [[row[1], version, *row[2:]] for row, version in zip(display_rows(frame), frame["benchmark_version"])]


def _fmt(metric: dict | None, digits: int = 4) -> str:
    if not metric or metric.get("value") is None:
        return ""
    text = f"{metric['value']:.{digits}g}"
    if metric.get("std"):
        text += f" ± {metric['std']:.2g}"
    return text


def _folders(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """(label, folder) to validate: --leaderboard-dir alone, else the curated one and yours (if it exists)."""
    from calobench.leaderboard import curated_dir, user_dir

    if args.leaderboard_dir:
        return [("leaderboard", Path(args.leaderboard_dir))]
    out = [("curated leaderboard", curated_dir())] if curated_dir() is not None else []
    if user_dir().is_dir():
        out.append(("your leaderboard", user_dir()))
    return out


def _validate(args: argparse.Namespace) -> int:
    from calobench.leaderboard import validate_directory

    bad = 0
    summary = {}
    for label, folder in _folders(args):
        report = validate_directory(folder)
        summary[str(folder)] = report
        problems = {name: p for name, p in report.items() if p}
        for name, lines in problems.items():
            for line in lines:
                print(f"{folder / name}: {line}", file=sys.stderr)
        bad += len(problems)
        if not args.json:
            entries = sum(1 for name in report if "/" in name)
            print(f"{label} {folder}: {entries} entry files, "
                          + (f"{len(problems)} with problems" if problems else "all valid"))
    if args.json:
        print(json.dumps(summary, indent=2))
    return 2 if bad else 0


def _migrate(args: argparse.Namespace) -> int:
    from calobench.leaderboard import migrate_directory, user_dir

    folder = Path(args.leaderboard_dir) if args.leaderboard_dir else user_dir()
    if not args.leaderboard_dir and not folder.is_dir():
        print(f"{folder}: no leaderboard folder yet, nothing to migrate")
        return 0
    done = migrate_directory(folder)
    for name, count in done.items():
        print(f"{folder / name}: {count} entries -> {folder / Path(name).stem}/<id>.json; old file removed")
    if not done:
        print(f"{folder}: already in the one-file-per-entry layout, nothing to migrate")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from calobench.errors import CalobenchError
    from calobench.leaderboard.jsonio import read_json
    from calobench.leaderboard.store import dataset_dir, validation_errors, write_entry_file

    if not args.dataset or not args.to:
        raise CalobenchError("leaderboard submit: usage: calobench leaderboard submit ENTRY_FILE --to CHECKOUT")
    source = Path(args.dataset)
    entry = read_json(source)
    errors = validation_errors(entry)
    if errors:
        raise CalobenchError(f"{source}: {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    board = Path(args.to) / "leaderboards"
    if not board.is_dir():
        raise CalobenchError(f"{args.to}: --to: not a calobench checkout (no leaderboards/ folder)")
    target = write_entry_file(dataset_dir(board, entry["dataset"]), entry)
    print(f"copied {source} to {target}; now `git -C {args.to} add {target.relative_to(Path(args.to))}` "
                  "and open a pull request")
    return 0


def _site(args: argparse.Namespace) -> int:
    from calobench.errors import CalobenchError
    from calobench.report.site import write_site

    if not args.dataset:
        raise CalobenchError("leaderboard site: name the output folder (calobench leaderboard site OUT_DIR)")
    index = write_site(args.dataset, user_dir=args.leaderboard_dir)
    print(f"wrote the leaderboard site: {index} (open it in a browser; it needs no network)")
    return 0


def _attach_timing(args: argparse.Namespace) -> int:
    from calobench.errors import CalobenchError
    from calobench.leaderboard.device_timing import attach_to_file

    if not args.dataset or not args.from_report:
        raise CalobenchError("leaderboard attach-timing: give the entry file and --from GPU_TIMING_JSON")
    record = attach_to_file(args.dataset, args.from_report)
    measured = ", ".join(f"{b}: {t['ms_per_shower']:.3g} ms" for b, t in record["batches"].items()
                         if "ms_per_shower" in t)
    print(f"{args.dataset}: added {record['device']} timing on {record['device_name']} ({measured})")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"attach-timing": _attach_timing, "show": _show, "validate": _validate, "migrate": _migrate, "submit": _submit,
            "site": _site}[args.action](args)
