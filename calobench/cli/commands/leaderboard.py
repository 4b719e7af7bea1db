"""`calobench leaderboard show DATASET` / `calobench leaderboard validate`."""

from __future__ import annotations

import argparse
import json
import math

from calobench.cli.console import console, table

NAME = "leaderboard"
HELP = "show a dataset's ranked leaderboard, or validate every leaderboard file against the schema"
ORDER = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["show", "validate"], help="show DATASET, or validate all files")
    parser.add_argument("dataset", nargs="?", help="dataset name (for show)")
    parser.add_argument("--leaderboard-dir", default="leaderboards", help="leaderboard folder (default ./leaderboards)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _fmt(metric: dict | None, digits: int = 4) -> str:
    if not metric or metric.get("value") is None:
        return ""
    v, s = metric["value"], metric.get("std")
    text = f"{v:.{digits}g}"
    if s is not None and math.isfinite(s) and s > 0:
        text += f" ± {s:.2g}"
    return text


def _fmt_floor(metric: dict | None, digits: int = 4) -> str:
    """value ± std [floor], '(within floor)' when the two agree; 'failed' for a failed test."""
    if metric and metric.get("failed"):
        return "failed"
    text = _fmt(metric, digits)
    if text and metric.get("floor") is not None:
        text += f" [{metric['floor']:.{digits}g}]" + (" ~" if metric.get("within_floor") else "")
    return text


def _ms(entry: dict, device: str = "cpu", batch: str = "10000") -> str:
    t = entry.get("timing", {}).get("devices", {}).get(device, {}).get("batches", {}).get(batch)
    if not t:
        return ""
    return "skipped" if "skipped" in t else f"{t['ms_per_shower']:.3g}"


def _show(args: argparse.Namespace) -> int:
    from calobench.datasets import dataset_names, get_dataset
    from calobench.errors import CalobenchError
    from calobench.leaderboard import benchmark_version, failure, published_rows, rank, read_leaderboard, score

    if not args.dataset:
        raise CalobenchError(f"leaderboard show: give a dataset name; valid names: {', '.join(dataset_names())}")
    get_dataset(args.dataset)
    data = read_leaderboard(args.leaderboard_dir, args.dataset)
    current = benchmark_version(args.dataset)
    ranked, others = rank(data["entries"], current)
    published = published_rows(args.dataset)
    if args.json:
        print(json.dumps({"dataset": args.dataset, "benchmark_version": current,
                          "ranked": [{"rank": r, **e} for r, e in ranked], "other_benchmark_versions": others,
                          "published_reference_rows": published}, indent=2))
        return 0
    rows = []
    for r, e in ranked:
        m = e["metrics"]
        value = score(e)
        rows.append([r or "-", e["model"], e["family"], e["preset"], e["parameters"],
                     _fmt_floor(m.get("auc_low")), _fmt_floor(m.get("auc_high")),
                     "" if value is None else f"{value:.3f}", failure(e) or "",
                     _fmt_floor(m.get("fpd"), 3), _fmt(m.get("sep_etot_einc"), 3), _ms(e),
                     e["provenance"]["seed"], e["provenance"]["date"][:10]])
    columns = ["rank", "model", "family", "preset", "params", "AUC low [floor]", "AUC high [floor]",
               "score", "unranked: why", "FPD [floor]", "sep E_tot/E_inc", "ms/shower cpu@10k", "seed", "date"]
    console.print(table(f"{args.dataset} leaderboard, benchmark {current} "
                        "(score: worst |AUC - 0.5| beyond its floor, low or high level; docs/leaderboard.md)",
                        columns, rows))
    if others:
        console.print(table("entries of other benchmark versions (not ranked)",
                            ["model", "preset", "benchmark version", "AUC high", "date"],
                            [[e["model"], e["preset"], e["benchmark_version"], _fmt(e["metrics"].get("auc_high")),
                              e["provenance"]["date"][:10]] for e in others]))
    if published:
        console.print(table("CaloChallenge 2022 published results on the challenge's own data "
                            "(reference only, not ranked with the entries above)",
                            ["model", "params", "AUC high", "AUC low", "FPD", "sep E_tot/E_inc", "ms/shower cpu@10k"],
                            [[p["model"], p["parameters"] or "", _fmt(p["metrics"]["auc_high"]),
                              _fmt(p["metrics"]["auc_low"]), _fmt(p["metrics"]["fpd"], 3),
                              _fmt(p["metrics"]["sep_etot_einc"], 3),
                              "" if p["timing_ms_per_shower"]["cpu"]["10000"] is None
                              else f"{p['timing_ms_per_shower']['cpu']['10000']:.3g}"] for p in published]))
    if not ranked and not others:
        console.print(f"no entries yet in {args.leaderboard_dir}/{args.dataset}.json "
                      f"(add one with `calobench run --model M --dataset {args.dataset}`)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    import sys

    from calobench.leaderboard import validate_directory

    report = validate_directory(args.leaderboard_dir)
    if args.json:
        print(json.dumps(report, indent=2))
    bad = 0
    for name, problems in report.items():
        if problems:
            bad += 1
            for p in problems:
                print(f"{args.leaderboard_dir}/{name}: {p}", file=sys.stderr)
        elif not args.json:
            console.print(f"{args.leaderboard_dir}/{name}: valid")
    if not report and not args.json:
        console.print(f"{args.leaderboard_dir}: no leaderboard files")
    return 2 if bad else 0


def run(args: argparse.Namespace) -> int:
    return _show(args) if args.action == "show" else _validate(args)
