"""`calobench models`: the registered model plugins."""

from __future__ import annotations

import argparse

from calobench.cli.output import add_format_argument, emit, output_format

NAME = "models"
HELP = "list the registered models (name, family, seed document, datasets, presets)"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="only the models that support this dataset")
    add_format_argument(parser)


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
    rows = [[i["name"], i["family"], i["seed_document"] or "-", i["datasets"], i["presets"]] for i in infos]
    emit(output_format(args), ["name", "family", "seed", "datasets", "presets"], rows, title="calobench models",
         data={"models": infos, "skipped": [p.__dict__ for p in problems]})
    return 0
