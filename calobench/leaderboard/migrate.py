"""Migration from the schema-1.0 layout (``<dir>/<dataset>.json`` holding every entry) to schema 2.0
(``<dir>/<dataset>/<id>.json``, one entry a file).

Each old entry keeps its id, benchmark version, metrics, timing and provenance unchanged and gains
``schema_version`` "2.0" and ``dataset``. All entries of a file are validated before any is written;
an entry file that exists already with the same content is left alone, so an interrupted migration
can simply be run again. The old file is removed once all its entries are in place.
"""

from __future__ import annotations

from pathlib import Path

from calobench.errors import CalobenchError
from calobench.leaderboard.jsonio import read_json
from calobench.leaderboard.store import SCHEMA_VERSION, dataset_dir, validation_errors, write_entry_file


def convert_entry(old: dict, dataset: str) -> dict:
    """A schema-1.0 entry as a schema-2.0 one (same content plus schema_version and dataset)."""
    rest = {k: v for k, v in old.items() if k not in ("schema_version", "dataset")}
    return {"schema_version": SCHEMA_VERSION, "dataset": dataset, **rest}


def old_files(directory: str | Path) -> list[Path]:
    """The old-layout leaderboard files of ``directory`` (``<dataset>.json``, not schema.json)."""
    return [p for p in sorted(Path(directory).glob("*.json")) if p.name != "schema.json" and p.is_file()]


def migrate_file(path: Path) -> list[Path]:
    """Convert one old-layout file into entry files beside it, then remove it; the entry files."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise CalobenchError(f"{path}: entries: missing or not a list (not a schema-1.0 leaderboard file)")
    dataset = data.get("dataset", path.stem)
    if dataset != path.stem:
        raise CalobenchError(f"{path}: dataset: is {dataset!r} but the file is named {path.name}")
    entries = []
    for i, old in enumerate(data["entries"]):
        if not isinstance(old, dict):
            raise CalobenchError(f"{path}: entries[{i}]: not an object")
        entry = convert_entry(old, dataset)
        errors = validation_errors(entry)
        if errors:
            raise CalobenchError(f"{path}: entries[{i}].{errors[0]}")
        entries.append(entry)
    written = []
    folder = dataset_dir(path.parent, dataset)
    for entry in entries:
        target = folder / f"{entry['id']}.json"
        if target.is_file() and read_json(target) == entry:
            written.append(target)
            continue
        written.append(write_entry_file(folder, entry))
    path.unlink()
    return written


def migrate_directory(directory: str | Path) -> dict[str, int]:
    """Migrate every old-layout file in ``directory``: file name -> number of entries written."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CalobenchError(f"{directory}: no such leaderboard folder")
    return {path.name: len(migrate_file(path)) for path in old_files(directory)}


__all__ = ["convert_entry", "migrate_directory", "migrate_file", "old_files"]
