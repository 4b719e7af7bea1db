"""Timing rows measured apart from an entry's training run: the entry's ``device_timings``.

A training run times its model on the machine it ran on (the entry's ``timing``). GPU figures
usually come from another machine and another command, ``benchmarks/gpu_timing.py``, which times
a fresh model of the same preset (generation time does not depend on the weights' values). Each
such measurement becomes one record of ``device_timings`` (schema.json ``timing_record``):
``device`` ("cuda", "cuda:1", "mps", "cpu"), ``device_name`` (the GPU's name), ``batch_sizes``
asked for, ``command`` that measured them, ``batches`` (as in ``timing``: ms per shower, or
skipped with the estimate), plus ``measured`` (UTC), ``model_state``, ``preset``, torch and CUDA
versions and the git commit. ``leaderboard show`` reads them into the ``ms_<device kind>_bs<N>``
columns where the entry's own timing has no such device (the GPU columns).
"""

from __future__ import annotations

from pathlib import Path

from calobench.errors import CalobenchError

#: The keys of a gpu_timing.json report copied into a record (record key -> report key).
REPORT_KEYS = {"device": "device", "device_name": "device_name", "command": "command", "measured": "started_utc",
               "torch_version": "torch_version", "cuda_version": "cuda_version", "git_commit": "git_commit"}


def _batch(record: dict, properties: dict) -> dict:
    return {k: v for k, v in record.items() if k in properties and v is not None}


def record_from_run(report: dict, run: dict) -> dict:
    """The ``timing_record`` of one timed run of a benchmarks/gpu_timing.py report.

    Batches skipped without an estimate (out of memory, output too large, time limit) are left
    out of ``batches``; ``batch_sizes`` still lists every size that was asked for.
    """
    from calobench.leaderboard.store import schema

    defs = schema()["$defs"]
    measured, skipped = defs["batch_measured"]["properties"], defs["batch_skipped"]["properties"]
    device = report["device"]
    info = run["timing"]["devices"][device]
    batches = {}
    for size, b in info["batches"].items():
        if "skipped" in b:
            if b.get("estimated_s") is not None:
                batches[size] = _batch(b, skipped)
        else:
            batches[size] = _batch(b, measured)
    record = {key: report.get(source) for key, source in REPORT_KEYS.items()}
    record.update(batch_sizes=[int(s) for s in report["settings"]["batch_sizes"]], batches=batches,
                  model_state=run.get("model_state", "fresh"), preset=run["preset"],
                  threads=info.get("threads"), geant4_ms_per_event=run["timing"].get("geant4_ms_per_event"))
    if record.get("measured") is None:
        record.pop("measured")
    return record


def record_for(report: dict, model: str, dataset: str, preset: str | None = None, where: str = "report") -> dict:
    """The record of ``model`` on ``dataset`` (and ``preset`` when given) in a gpu_timing report;
    a one-line CalobenchError naming ``where`` when it holds no such timed run."""
    if not isinstance(report, dict) or not isinstance(report.get("runs"), list) or "device" not in report:
        raise CalobenchError(f"{where}: not a benchmarks/gpu_timing.py report (expected 'device' and 'runs')")
    runs = [r for r in report["runs"] if isinstance(r, dict) and r.get("model") == model and r.get("dataset") == dataset]
    if not runs:
        raise CalobenchError(f"{where}: no run of {model} on {dataset}")
    run = runs[0]
    if run.get("status") != "timed":
        raise CalobenchError(f"{where}: {model} on {dataset}: {run.get('status')} ({run.get('reason', 'no reason')})")
    if preset is not None and run.get("preset") != preset:
        raise CalobenchError(f"{where}: {model} on {dataset} was timed with preset {run.get('preset')!r}, "
                             f"the entry is preset {preset!r}")
    return record_from_run(report, run)


def attach(entry: dict, record: dict) -> dict:
    """A copy of ``entry`` with ``record`` in its ``device_timings`` (a record of the same device
    and command is replaced); validated against the schema."""
    from calobench.leaderboard.store import validate_entry

    kept = [r for r in entry.get("device_timings", [])
            if (r.get("device"), r.get("command")) != (record["device"], record["command"])]
    out = {**entry, "device_timings": kept + [record]}
    validate_entry(out)
    return out


def attach_to_file(entry_path: str | Path, report_path: str | Path) -> dict:
    """Add the matching run of a gpu_timing.json report to an entry file (rewritten atomically);
    returns the record."""
    import os

    from calobench.leaderboard.jsonio import dumps, read_json
    from calobench.leaderboard.store import read_entry

    entry_path = Path(entry_path)
    entry = read_entry(entry_path)
    record = record_for(read_json(Path(report_path)), entry["model"], entry["dataset"], entry["preset"],
                        str(report_path))
    updated = attach(entry, record)
    tmp = entry_path.with_name(f".{entry_path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(dumps(updated), encoding="utf-8")
        os.replace(tmp, entry_path)
    except OSError as exc:
        raise CalobenchError(f"{entry_path}: cannot rewrite the entry ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return record


def flat_columns(entry: dict, row: dict) -> None:
    """Add the ``device_timings`` figures to a leaderboard row in place: ``ms_<kind>_bs<N>``,
    ``..._std``, ``..._skipped`` and ``device_name_<kind>`` (kind: 'cuda' for 'cuda:1'), where the
    entry's own timing has none for that device kind; the newest record of a kind wins."""
    records = sorted(entry.get("device_timings", []), key=lambda r: r.get("measured", ""), reverse=True)
    own = {device.partition(":")[0] for device in entry.get("timing", {}).get("devices", {})}
    done: set[str] = set()
    for record in records:
        kind = record["device"].partition(":")[0]
        if kind in own or kind in done:
            continue
        done.add(kind)
        row[f"device_name_{kind}"] = record["device_name"]
        row[f"threads_{kind}"] = record.get("threads")
        for batch, t in record["batches"].items():
            row[f"ms_{kind}_bs{batch}"] = t.get("ms_per_shower")
            row[f"ms_{kind}_bs{batch}_std"] = t.get("std")
            if "skipped" in t:
                row[f"ms_{kind}_bs{batch}_skipped"] = t["skipped"]


__all__ = ["attach", "attach_to_file", "flat_columns", "record_for", "record_from_run"]
