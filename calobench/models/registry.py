"""The model registry: Generator plugins discovered through the ``calobench.models`` entry points.

Built-in models are declared in calobench's own pyproject.toml under the same entry-point
group as any third-party package, so a group's package plugs in exactly like them::

    [project.entry-points."calobench.models"]
    mymodel = "mypackage.model:MyModel"

A plugin whose import fails (or that is not a Generator subclass) is skipped with a
one-line warning on stderr; the rest of the registry keeps working.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import entry_points

from calobench.datasets import get_dataset
from calobench.errors import CalobenchError
from calobench.models.base import FAMILIES, Generator

GROUP = "calobench.models"


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that could not be loaded: its entry-point name, target and the reason."""

    name: str
    target: str
    reason: str


_cache: tuple[dict[str, type[Generator]], list[PluginProblem]] | None = None


def _check_class(name: str, obj: object) -> str | None:
    """Why ``obj`` is not a usable Generator class, or None."""
    if not (isinstance(obj, type) and issubclass(obj, Generator)):
        return "not a calobench Generator subclass"
    if obj.name != name:
        return f"class attribute name is {obj.name!r}, the entry point says {name!r}"
    if obj.family not in FAMILIES:
        return f"family {obj.family!r} is not one of {', '.join(FAMILIES)}"
    if not obj.supported_datasets():
        return "supports no registered dataset"
    missing = [p for p in ("tiny", "quick", "full") if p not in obj.presets]
    if missing:
        return f"missing presets: {', '.join(missing)}"
    return None


def discover(refresh: bool = False, warn: bool = True) -> tuple[dict[str, type[Generator]], list[PluginProblem]]:
    """Load every plugin of the entry-point group; returns (name -> class, problems).

    Results are cached; ``refresh=True`` re-reads the entry points (e.g. after sys.path changed).
    """
    global _cache
    if _cache is not None and not refresh:
        return _cache
    models: dict[str, type[Generator]] = {}
    problems: list[PluginProblem] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(ep.name)
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
            reason = f"import failed: {type(exc).__name__}: {exc}".splitlines()[0]
            problems.append(PluginProblem(ep.name, ep.value, reason))
            continue
        reason = _check_class(ep.name, obj)
        if reason:
            problems.append(PluginProblem(ep.name, ep.value, reason))
            continue
        models[ep.name] = obj
    if warn:
        for p in problems:
            print(f"calobench: warning: model plugin {p.name} ({p.target}) skipped: {p.reason}", file=sys.stderr)
    _cache = (models, problems)
    return _cache


def model_names() -> list[str]:
    """Names of all loadable models, sorted."""
    return sorted(discover()[0])


def get_model(name: str) -> type[Generator]:
    """The Generator class registered as ``name``; a CalobenchError listing valid names otherwise."""
    models, problems = discover()
    if name in models:
        return models[name]
    broken = {p.name: p for p in problems}
    if name in broken:
        raise CalobenchError(f"model {name!r} is registered but could not be loaded ({broken[name].reason})")
    raise CalobenchError(f"unknown model {name!r}; valid names: {', '.join(sorted(models))} (--model)")


def check_supported(model: str, dataset: str) -> type[Generator]:
    """The model class after checking both names and that the model supports the dataset."""
    cls = get_model(model)
    if not cls.supports(get_dataset(dataset)):
        raise CalobenchError(f"model {model} does not support dataset {dataset!r}; it supports: "
                             f"{', '.join(cls.supported_datasets())} (choose with --dataset; "
                             f"`calobench models --dataset {dataset}` lists the models for {dataset})")
    return cls


def models_for_dataset(dataset: str) -> list[str]:
    """Names of the models that support ``dataset``."""
    info = get_dataset(dataset)
    return [n for n, c in sorted(discover()[0].items()) if c.supports(info)]


__all__ = ["GROUP", "PluginProblem", "check_supported", "discover", "get_model", "model_names",
           "models_for_dataset"]
