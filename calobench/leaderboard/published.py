"""The published CaloChallenge 2022 results, shown as reference rows on calochallenge-* datasets.

They are numbers on the challenge's own datasets (not on calobench's Geant4 stand-in samples),
so they are shown beside the leaderboard and never ranked with its entries.
Source: data/calochallenge_2022.csv (see data/SOURCE.md).
"""

from __future__ import annotations

import csv
from importlib import resources

from calobench.datasets import get_dataset

SOURCE = "CaloChallenge 2022 published results (calobench/leaderboard/data/SOURCE.md)"


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def published_rows(dataset: str) -> list[dict]:
    """Rows of the published table for a calobench dataset (empty for other datasets).

    Each row: model, parameters, metrics name -> {value, std} (fpd and kpd converted from
    the published x1e3 units to plain units), timing ms per shower {cpu, gpu} x {1, 100, 10000}.
    """
    key = get_dataset(dataset).challenge_key  # the dataset's name in the challenge's result files
    if not key:
        return []
    text = (resources.files("calobench.leaderboard") / "data" / "calochallenge_2022.csv").read_text()
    rows = []
    for r in csv.DictReader(text.splitlines()):
        if r["dataset"] != key:
            continue

        def metric(value: str, std: str | None = None, scale: float = 1.0) -> dict:
            v, s = _float(value), _float(std) if std is not None else None
            return {"value": None if v is None else v * scale, "std": None if s is None else s * scale}

        params = _float(r["params_generation"])
        rows.append({
            "model": r["model"],
            "parameters": None if params is None else int(params),
            "metrics": {
                "fpd": metric(r["fpd_x1e3"], r["fpd_x1e3_std"], 1e-3),
                "kpd": metric(r["kpd_x1e3"], r["kpd_x1e3_std"], 1e-3),
                "auc_low": metric(r["auc_low"], r["auc_low_std"]),
                "auc_high": metric(r["auc_high"], r["auc_high_std"]),
                "precision": metric(r["precision"]), "recall": metric(r["recall"]),
                "density": metric(r["density"]), "coverage": metric(r["coverage"]),
                "sep_etot_einc": metric(r["sep_etot"]),
            },
            "timing_ms_per_shower": {
                dev: {bs: _float(r[f"ms_per_shower_{dev}_bs{bs}"]) for bs in ("1", "100", "10000")}
                for dev in ("cpu", "gpu")
            },
            "source": SOURCE,
        })
    return rows
