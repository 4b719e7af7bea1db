"""Result of a comparison: metrics (name -> value, std, floor), details, and output helpers."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calobench.errors import CalobenchError


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _merge_info(into: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge_info(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key].extend(value)
        else:
            into[key] = value


@dataclass
class Result:
    """metrics: name -> {"value": float, "std": float[, "floor": float]} (see docs/metrics.md).
    info: stages (seconds, what each held), events, options, notes. histograms / response /
    average showers are kept for the report and not written to JSON."""

    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    histograms: dict = field(default_factory=dict, repr=False)
    response: dict = field(default_factory=dict, repr=False)
    averages: dict = field(default_factory=dict, repr=False)

    def add(self, name: str, value: float, std: float = float("nan"), floor: float | None = None,
            failed: str | None = None) -> None:
        """Record a metric. floor: its value for Geant4 against Geant4 (the reference halves);
        ``within_floor`` is set when value and floor differ by less than 2 std (std known).
        failed: why the metric has no value (its test could not be done); the value is then NaN."""
        entry = {"value": float(value), "std": float(std)}
        if floor is not None and math.isfinite(float(floor)):
            entry["floor"] = float(floor)
            if math.isfinite(entry["std"]) and math.isfinite(entry["value"]):
                entry["within_floor"] = bool(abs(entry["value"] - entry["floor"]) <= 2.0 * entry["std"])
        if failed:
            entry["failed"] = str(failed)
        self.metrics[name] = entry

    def value(self, name: str) -> float:
        return self.metrics[name]["value"]

    def include(self, other: "Result") -> None:
        """Add another result's metrics, report data and info (nested dicts merged, lists extended)."""
        self.metrics.update(other.metrics)
        self.histograms.update(other.histograms)
        self.response.update(other.response)
        self.averages.update(other.averages)
        _merge_info(self.info, other.info)

    def to_dict(self) -> dict:
        return _plain({"metrics": self.metrics, "info": self.info})

    def to_json(self, path: str | Path) -> Path:
        """Write to_dict() as JSON atomically (temporary file, then rename)."""
        path = Path(path)
        if not path.parent.exists():
            raise CalobenchError(f"{path}: folder {path.parent} does not exist")
        tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False))
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    def headline(self) -> list[str]:
        """Metric names shown first in tables: the summary numbers."""
        first = ["auc_low", "auc_high", "auc_high_xgb", "jsd_low", "jsd_high", "jsd_high_xgb", "fpd", "kpd",
                 "precision", "recall", "density", "coverage", "sep_etot_einc", "chi2_etot_einc",
                 "js_etot_einc", "w1_etot_einc", "sep_voxel_energy", "sep_cell_energy", "sep_mean",
                 "resolution_a_diff", "resolution_b_diff", "resolution_c_diff"]
        return [n for n in first if n in self.metrics]

    def table(self, full: bool = False, title: str = "calobench compare"):
        """A rich Table: metric, value, uncertainty, reference floor (headline metrics unless full)."""
        from rich.table import Table

        out = Table(title=title, title_justify="left")
        for col in ("metric", "value", "+-", "floor (ref vs ref)"):
            out.add_column(col, justify="left" if col == "metric" else "right")
        names = self.headline() + ([n for n in self.metrics if n not in self.headline()] if full else [])
        for name in names:
            m = self.metrics[name]
            fmt = lambda v: "" if v is None or not math.isfinite(v) else f"{v:.4g}"  # noqa: E731
            out.add_row(name, fmt(m["value"]), fmt(m.get("std")), fmt(m.get("floor")))
        return out

    def print(self, full: bool = False) -> None:
        from rich.console import Console

        Console().print(self.table(full))
