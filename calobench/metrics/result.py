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
                 "g4_equivalent_events", "resolution_a_diff", "resolution_b_diff", "resolution_c_diff"]
        return [n for n in first if n in self.metrics]

    def explain(self, name: str):
        """The MetricInfo (stage, direction, description, source) of a metric of this result
        (calobench.metrics.catalogue); a CalobenchError when the catalogue does not know the name."""
        from calobench.metrics.catalogue import describe

        if name not in self.metrics:
            raise CalobenchError(f"metric {name!r}: not in this result; it holds {len(self.metrics)} metrics")
        return describe(name)

    def rows(self, full: bool = True) -> list[dict]:
        """One dict per metric, grouped by stage (evaluation order), headline metrics first within a
        stage: name, stage, value, std, floor, within_floor, direction, failed, description, source
        (None where a metric has no such entry; stage/direction/description None for a name the
        catalogue does not know). full=False: only the headline metrics."""
        from calobench.metrics.catalogue import lookup

        head = self.headline()
        names = head + ([n for n in self.metrics if n not in head] if full else [])
        order = {stage: i for i, stage in enumerate(STAGE_ORDER)}
        out = []
        for name in names:
            m = self.metrics[name]
            info = lookup(name)
            out.append({"name": name, "stage": info.stage if info else None, "value": m.get("value"),
                        "std": m.get("std"), "floor": m.get("floor"), "within_floor": m.get("within_floor"),
                        "direction": info.direction if info else None, "failed": m.get("failed"),
                        "unreliable": m.get("unreliable"),
                        "description": info.description if info else None, "source": info.source if info else None})
        out.sort(key=lambda row: order.get(row["stage"], len(order)))  # stable: headline order kept
        return out

    def to_pandas(self):
        """A pandas DataFrame, one row per metric: name, value, std, floor, within_floor, direction,
        stage, description (plus failed, unreliable, source). value/std/floor are floats (NaN where absent);
        within_floor is a nullable boolean. Rows are grouped by stage as in ``table``."""
        import pandas as pd

        columns = ["name", "value", "std", "floor", "within_floor", "direction", "stage", "description",
                   "failed", "unreliable", "source"]
        frame = pd.DataFrame(self.rows(full=True), columns=columns)
        for column in ("value", "std", "floor"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        frame["within_floor"] = frame["within_floor"].astype("boolean")
        return frame

    def table(self, full: bool = False, title: str = "calobench compare"):
        """A rich Table grouped by stage: metric, value (``~``: within the floor), uncertainty,
        reference floor, which direction is better (headline metrics unless full)."""
        from rich.table import Table

        out = Table(title=title, title_justify="left")
        for col in ("metric", "value", "+-", "floor (ref vs ref)", "better"):
            out.add_column(col, justify="right" if col in ("value", "+-", "floor (ref vs ref)") else "left",
                           overflow="fold")

        def fmt(v) -> str:
            return "" if v is None or not math.isfinite(v) else f"{v:.4g}"

        stage = object()
        for row in self.rows(full=full):
            if row["stage"] != stage:
                stage = row["stage"]
                if out.row_count:
                    out.add_section()
                out.add_row(f"[bold]{stage or 'other'}[/bold]", "", "", "", "")
            value = "failed" if row["failed"] else fmt(row["value"]) + (" ~" if row["within_floor"] else "") + \
                (" (unreliable)" if row["unreliable"] else "")
            out.add_row(f"  {row['name']}", value, fmt(row["std"]), fmt(row["floor"]), row["direction"] or "")
        return out

    def print(self, full: bool = False) -> None:
        from rich.console import Console

        Console().print(self.table(full))


#: Stages in evaluation order (calobench.metrics.evaluate.STAGES), for grouping tables.
STAGE_ORDER = ("hist", "resolution", "fpd", "prdc", "cls-high", "cls-xgb", "cls-low")
