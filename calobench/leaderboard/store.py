"""Leaderboard files: one JSON file per dataset, validated against schema.json.

Layout: ``<leaderboard_dir>/<dataset>.json`` holding ``schema_version``, ``dataset`` and
``entries``; ``<leaderboard_dir>/schema.json`` is a copy of the schema kept beside them.
Writes take a file lock (filelock, ``<dataset>.json.lock``), re-read the file, add the entry
and replace the file atomically, so two runs finishing at once both keep their entry.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import lru_cache
from importlib import resources
from pathlib import Path

from filelock import FileLock

from calobench.errors import CalobenchError

SCHEMA_VERSION = "1.0"
DEFAULT_DIR = "leaderboards"


@lru_cache(maxsize=1)
def schema() -> dict:
    """The leaderboard JSON Schema shipped with calobench."""
    return json.loads((resources.files("calobench.leaderboard") / "schema.json").read_text())


def _validator():
    import jsonschema

    cls = jsonschema.validators.validator_for(schema())
    return cls(schema(), format_checker=cls.FORMAT_CHECKER)


def _where(error) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


def validation_errors(data: object) -> list[str]:
    """Every schema violation of a leaderboard document, as 'location: message' lines."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    out = [f"{_where(e)}: {e.message}" for e in errors]
    if isinstance(data, dict) and isinstance(data.get("entries"), list):
        seen: set[str] = set()
        for i, entry in enumerate(data["entries"]):
            ident = entry.get("id") if isinstance(entry, dict) else None
            if ident in seen:
                out.append(f"entries[{i}].id: duplicate id {ident}")
            seen.add(ident)
    return out


def validate_entry(entry: dict) -> None:
    """Raise CalobenchError (one line) when ``entry`` does not follow the schema."""
    errors = validation_errors({"schema_version": SCHEMA_VERSION, "dataset": "check", "entries": [entry]})
    if errors:
        first = errors[0].replace("entries[0].", "entry.").replace("entries[0]", "entry")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CalobenchError(f"invalid leaderboard entry: {first}{more}")


def leaderboard_path(directory: str | Path, dataset: str) -> Path:
    return Path(directory) / f"{dataset}.json"


def read_leaderboard(directory: str | Path, dataset: str, validate: bool = True) -> dict:
    """The leaderboard document of ``dataset`` (an empty one when the file does not exist)."""
    path = leaderboard_path(directory, dataset)
    if not path.exists():
        return {"schema_version": SCHEMA_VERSION, "dataset": dataset, "entries": []}
    data = _read_json(path)
    if validate:
        errors = validation_errors(data)
        if errors:
            raise CalobenchError(f"{path}: {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    return data


def _read_json(path: Path) -> object:
    """A JSON file's content; a one-line CalobenchError when it is a folder, unreadable, not UTF-8 or not JSON."""
    if path.is_dir():
        raise CalobenchError(f"{path}: is a folder, expected a JSON file")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise CalobenchError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise CalobenchError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CalobenchError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise CalobenchError(f"{path}: JSON nested too deeply") from None


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _same_run(a: dict, b: dict) -> bool:
    keys = ("model", "preset", "benchmark_version")
    return all(a.get(k) == b.get(k) for k in keys) and \
        a["provenance"].get("config_hash") == b["provenance"].get("config_hash") and \
        a["provenance"].get("seed") == b["provenance"].get("seed")


def add_entry(directory: str | Path, dataset: str, entry: dict, timeout_s: float = 120.0) -> Path:
    """Validate ``entry`` and add it to ``<directory>/<dataset>.json`` (locked, atomic).

    An entry of the same model, preset, benchmark version, config hash and seed replaces
    the earlier one (a re-run); any other entry is appended.
    """
    validate_entry(entry)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ensure_schema_copy(directory)
    path = leaderboard_path(directory, dataset)
    with FileLock(str(path) + ".lock", timeout=timeout_s):
        data = read_leaderboard(directory, dataset)
        entries = [e for e in data["entries"] if not _same_run(e, entry)]
        entries.append(entry)
        data["entries"] = entries
        _write_atomic(path, data)
    return path


def ensure_schema_copy(directory: Path) -> None:
    """Keep ``<directory>/schema.json`` identical to the shipped schema."""
    target = directory / "schema.json"
    source = resources.files("calobench.leaderboard") / "schema.json"
    text = source.read_text()
    if not target.exists() or target.read_text() != text:
        tmp = target.with_name(f".schema.json.partial-{os.getpid()}")
        with resources.as_file(source) as src:
            shutil.copyfile(src, tmp)
        os.replace(tmp, target)


def validate_directory(directory: str | Path) -> dict[str, list[str]]:
    """Check every ``*.json`` leaderboard in ``directory``: file name -> problems (empty when valid)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CalobenchError(f"{directory}: no such leaderboard folder")
    report: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name == "schema.json":
            try:
                copy = _read_json(path)
            except CalobenchError as exc:
                report[path.name] = [str(exc).split(": ", 1)[1]]
                continue
            if copy != schema():
                report[path.name] = ["differs from the schema shipped with calobench (re-copy it)"]
            else:
                report[path.name] = []
            continue
        try:
            data = _read_json(path)
        except CalobenchError as exc:
            report[path.name] = [str(exc).split(": ", 1)[1]]
            continue
        problems = validation_errors(data)
        if isinstance(data, dict) and data.get("dataset") not in (None, path.stem):
            problems.append(f"dataset: file is named {path.name} but holds dataset {data.get('dataset')!r}")
        report[path.name] = problems
    return report


__all__ = ["DEFAULT_DIR", "SCHEMA_VERSION", "add_entry", "ensure_schema_copy", "leaderboard_path",
           "read_leaderboard", "schema", "validate_directory", "validate_entry", "validation_errors"]
