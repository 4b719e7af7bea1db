"""`calobench metrics [NAME ...]`: what every metric name means (stage, better direction, definition, source)."""

from __future__ import annotations

import argparse

from calobench.cli.output import add_format_argument, emit, output_format

NAME = "metrics"
HELP = ("list the metrics of `calobench compare` (stage, which direction is better, definition, source), "
        "or explain names")
ORDER = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="metric names to explain, e.g. jsd_high_xgb sep_e_layer_3 (default: list every pattern)")
    parser.add_argument("--features", action="store_true",
                        help="list the <feature> names of the hist metrics (sep_<feature>, chi2_, js_, w1_)")
    add_format_argument(parser)


def run(args: argparse.Namespace) -> int:
    from calobench.metrics.catalogue import catalogue_rows, describe, feature_rows

    fmt = output_format(args)
    if args.names:
        infos = [describe(name).to_dict() for name in args.names]
        columns = ["name", "stage", "direction", "description", "source"]
        emit(fmt, columns, [[i[c] for c in columns] for i in infos], title="calobench metrics", data=infos)
        return 0
    if args.features:
        rows = feature_rows()
        emit(fmt, ["feature", "description"], [[r["feature"], r["description"]] for r in rows],
             title="features of the hist metrics (<feature> in sep_<feature>, chi2_, js_, w1_)", data=rows)
        return 0
    rows = catalogue_rows()
    columns = ["pattern", "stage", "direction", "description", "source"]
    emit(fmt, columns, [[r[c] for c in columns] for r in rows],
         title="calobench metrics (`calobench metrics --features` lists <feature>)", data=rows)
    return 0
