"""The timing object of calobench.timing.time_model as rows and as a pandas DataFrame.

``time_model`` returns (and the leaderboard stores) a plain dict:
``{"geant4_ms_per_event": float | None, "model_state": str (optional),
"devices": {device: {"device_name", "threads", ..., "batches": {"<batch size>": {...}}}}}``
where a batch holds ``ms_per_shower``, ``std``, ``repeats``, ``warmup``, ``speedup_vs_geant4``
or, when it was not run, ``skipped`` (the reason) and ``estimated_s``. ``Timing`` wraps that
dict without changing it; every scalar key of a device or a batch becomes a column, so keys
added to the timing object later appear in the rows as well.
"""

from __future__ import annotations

from calobench.errors import CalobenchError

#: Columns first in rows(), in this order; other scalar keys follow in the order met.
COLUMNS = ("device", "device_name", "threads", "batch_size", "ms_per_shower", "std", "repeats", "warmup",
           "showers_per_s", "speedup_vs_geant4", "geant4_ms_per_event", "skipped")


class Timing:
    """A timing object (the dict of calobench.timing.time_model, or a leaderboard entry's ``timing``)."""

    def __init__(self, timing: dict) -> None:
        if not isinstance(timing, dict) or not isinstance(timing.get("devices"), dict):
            raise CalobenchError(f"timing: expected a dict with a 'devices' object (calobench.timing.time_model), "
                                 f"found {type(timing).__name__}")
        self.data = timing

    def to_dict(self) -> dict:
        """The wrapped timing dict itself."""
        return self.data

    def rows(self) -> list[dict]:
        """One dict per device and batch size: COLUMNS (batch_size int; ms_per_shower, std and
        speedup_vs_geant4 None for a skipped batch; showers_per_s = 1000 / ms_per_shower), then
        any other scalar key of the device or batch."""
        g4 = self.data.get("geant4_ms_per_event")
        out = []
        for device, info in self.data["devices"].items():
            device_keys = {k: v for k, v in info.items() if k != "batches" and not isinstance(v, (dict, list))}
            for batch, t in info.get("batches", {}).items():
                ms = t.get("ms_per_shower")
                row = {"device": device, "device_name": info.get("device_name"), "threads": info.get("threads"),
                       "batch_size": int(batch), "ms_per_shower": ms, "std": t.get("std"),
                       "repeats": t.get("repeats"), "warmup": t.get("warmup"),
                       "showers_per_s": 1000.0 / ms if ms else None,
                       "speedup_vs_geant4": t.get("speedup_vs_geant4"), "geant4_ms_per_event": g4,
                       "skipped": t.get("skipped")}
                for key, value in {**device_keys, **t}.items():
                    if key not in row and not isinstance(value, (dict, list)):
                        row[key] = value
                out.append(row)
        return out

    def to_pandas(self):
        """A pandas DataFrame of rows(): one row per device and batch size (times in ms per shower)."""
        import pandas as pd

        rows = self.rows()
        columns = list(COLUMNS) + [k for row in rows for k in row if k not in COLUMNS]
        frame = pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))
        for column in ("ms_per_shower", "std", "showers_per_s", "speedup_vs_geant4", "geant4_ms_per_event"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        return frame


def timing_to_pandas(timing: dict):
    """``Timing(timing).to_pandas()``: the timing dict of time_model as a DataFrame."""
    return Timing(timing).to_pandas()


__all__ = ["COLUMNS", "Timing", "timing_to_pandas"]
