"""The leaderboard as a pandas DataFrame: ``calobench.leaderboard.table(dataset)``.

One row per entry, from the curated leaderboard shipped with calobench (``source`` "curated") and
from the user's own folder (``source`` "yours"). Columns:

- ``rank`` (1 = best; missing for unranked rows), ``source``, ``model``, ``family``, ``preset``,
  ``parameters``, ``seed``, ``date``, ``id``, ``benchmark_version``, ``current`` (the benchmark
  version ranked now), ``score`` (ranking v2, smaller is better), ``unranked`` (why not ranked:
  a failed classifier, another benchmark version, or ``superseded``);
- ``latest``: False for an older run of the same source, model, preset, benchmark version,
  config hash and seed. Every run is kept; only the newest of such a group is ranked;
- one column per metric value (``auc_high``), with ``<metric>_std`` and ``<metric>_floor``;
- timing: ``geant4_ms_per_event``, ``ms_<device>_bs<batch>`` and ``ms_<device>_bs<batch>_std``
  (missing where not measured), ``ms_<device>_bs<batch>_skipped`` (why a batch size was skipped),
  and ``threads_<device>``: the torch thread count of that timing. Rows of the entry's
  ``device_timings`` (measured apart, e.g. on a GPU) fill the columns of a device kind the entry's
  own timing lacks (``ms_cuda_bs1``), with ``device_name_<kind>`` (the GPU's name).
"""

from __future__ import annotations

from pathlib import Path

from calobench.leaderboard.device_timing import flat_columns
from calobench.leaderboard.ranking import failure, rank, score
from calobench.leaderboard.store import read_entries

SOURCES = ("curated", "yours")
FIRST_COLUMNS = ["rank", "source", "model", "family", "preset", "parameters", "score", "unranked", "seed",
                 "date", "benchmark_version", "current", "latest", "id"]


def _run_key(source: str, entry: dict) -> tuple:
    p = entry["provenance"]
    return (source, entry["model"], entry["preset"], entry["benchmark_version"], p.get("config_hash"), p.get("seed"))


def _flat(entry: dict) -> dict:
    row: dict = {}
    for name, m in entry["metrics"].items():
        row[name] = m.get("value")
        row[f"{name}_std"] = m.get("std")
        if "floor" in m:
            row[f"{name}_floor"] = m.get("floor")
    timing = entry["timing"]
    row["geant4_ms_per_event"] = timing.get("geant4_ms_per_event")
    for device, info in timing.get("devices", {}).items():
        row[f"threads_{device}"] = info.get("threads")
        for batch, t in info.get("batches", {}).items():
            row[f"ms_{device}_bs{batch}"] = t.get("ms_per_shower")
            row[f"ms_{device}_bs{batch}_std"] = t.get("std")
            if "skipped" in t:
                row[f"ms_{device}_bs{batch}_skipped"] = t["skipped"]
    flat_columns(entry, row)  # timing measured apart (GPU rows of benchmarks/gpu_timing.py)
    return row


def sourced_entries(dataset: str, user_dir: str | Path | None = None, curated: bool = True,
                    yours: bool = True) -> list[tuple[str, dict]]:
    """(source, entry) of the curated leaderboard (when ``curated``) and of ``user_dir`` (when
    ``yours``; default folder: calobench.leaderboard.locations.user_dir())."""
    from calobench.leaderboard.locations import curated_dir
    from calobench.leaderboard.locations import user_dir as default_user_dir

    out: list[tuple[str, dict]] = []
    shipped = curated_dir() if curated else None
    if shipped is not None:
        out += [("curated", e) for e in read_entries(shipped, dataset)]
    folder = Path(user_dir) if user_dir is not None else default_user_dir()
    if yours and (shipped is None or folder.resolve() != shipped.resolve()):
        out += [("yours", e) for e in read_entries(folder, dataset)]
    return out


def table(dataset: str, user_dir: str | Path | None = None, curated: bool = True, yours: bool = True,
          version: str | None = None):
    """The leaderboard of ``dataset`` as a pandas DataFrame (see the module docstring), best first.

    user_dir: your folder (default: $CALOBENCH_LEADERBOARD_DIR, else the per-user data folder);
    curated / yours: include the curated rows / your rows.
    version: the benchmark version to rank (default: calobench's current one for this dataset).
    """
    import pandas as pd

    from calobench.datasets import get_dataset
    from calobench.leaderboard.entry import benchmark_version

    get_dataset(dataset)
    current = version or benchmark_version(dataset)
    sourced = sourced_entries(dataset, user_dir, curated, yours)
    newest: dict[tuple, str] = {}
    for source, e in sourced:
        key = _run_key(source, e)
        newest[key] = max(newest.get(key, ""), e["provenance"]["date"] + e["id"])
    latest = {id(e): newest[_run_key(s, e)] == e["provenance"]["date"] + e["id"] for s, e in sourced}
    source_of = {id(e): s for s, e in sourced}
    ranked, _ = rank([e for s, e in sourced if latest[id(e)]], current)
    rank_of = {id(e): r for r, e in ranked}
    rows = []
    for source, e in sourced:
        r = rank_of.get(id(e))
        if not latest[id(e)]:
            why = "superseded (an older run of the same configuration)"
        elif e["benchmark_version"] != current:
            why = "other benchmark version"
        else:
            why = failure(e) or ""
        rows.append({"rank": r, "source": source_of[id(e)], "model": e["model"], "family": e["family"],
                     "preset": e["preset"], "parameters": e["parameters"],
                     "score": score(e) if r is not None else None, "unranked": why,
                     "seed": e["provenance"]["seed"], "date": e["provenance"]["date"],
                     "benchmark_version": e["benchmark_version"], "current": e["benchmark_version"] == current,
                     "latest": latest[id(e)], "id": e["id"], **_flat(e)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=FIRST_COLUMNS)
    frame["rank"] = frame["rank"].astype("Int64")
    order = frame.assign(_ranked=frame["rank"].isna(), _current=~frame["current"])
    order = order.sort_values(["_ranked", "rank", "_current", "date"], ascending=[True, True, True, False],
                              kind="stable")
    return order.drop(columns=["_ranked", "_current"]).reset_index(drop=True)


__all__ = ["FIRST_COLUMNS", "SOURCES", "sourced_entries", "table"]
