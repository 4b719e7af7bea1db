"""`calobench models`: the registered model plugins."""

from __future__ import annotations

import argparse
import json

from calobench.cli.console import console, table

NAME = "models"
HELP = "list the registered models (name, family, seed document, datasets, presets)"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="only the models that support this dataset")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from calobench.datasets import get_dataset
    from calobench.models.registry import discover

    models, problems = discover()
    if args.dataset:
        dataset = get_dataset(args.dataset)
        models = {n: c for n, c in models.items() if c.supports(dataset)}
    infos = [{"name": n, "family": c.family, "seed_document": c.seed_document, "datasets": list(c.supported_datasets()),
              "presets": list(c.presets), "description": c.description, "module": c.__module__}
             for n, c in sorted(models.items())]
    if args.json:
        print(json.dumps({"models": infos, "skipped": [p.__dict__ for p in problems]}, indent=2))
        return 0
    rows = [[i["name"], i["family"], i["seed_document"] or "-", ", ".join(i["datasets"]), ", ".join(i["presets"])]
            for i in infos]
    console.print(table("calobench models", ["name", "family", "seed", "datasets", "presets"], rows))
    return 0
