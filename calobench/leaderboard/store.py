"""Leaderboard storage: one JSON file per entry, ``<dir>/<dataset>/<entry-id>.json``.

Each entry is validated alone against schema.json (entry schema 2.0) and created atomically:
it is written to ``<dir>/<dataset>/.tmp/<id>.<pid>.<random>.tmp`` and hard-linked to its final
name, which fails if that name exists (create-exclusive), so an entry is never half-written and
never replaced. There is no lock: writers never wait on each other, and adding an entry costs the
same at 10 or 10 000 entries (it touches only its own file and the small ``.tmp`` folder).
Readers build the per-dataset view from the ``*.json`` files and ignore ``.tmp``; every writer
first sweeps temporary files whose writer process is gone or that are older than STALE_S.

The one-file-per-dataset layout of schema 1.0 (``<dir>/<dataset>.json``) is refused with a message
naming ``calobench leaderboard migrate`` (calobench/leaderboard/migrate.py).
"""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

from calobench.errors import CalobenchError
from calobench.leaderboard.jsonio import dumps, first_non_finite, loads, read_json

SCHEMA_VERSION = "2.0"
TEMP_DIR = ".tmp"
STALE_S = 300.0  # a temporary file this old is debris even if its pid is alive (pid reuse)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@lru_cache(maxsize=1)
def schema() -> dict:
    """The leaderboard entry JSON Schema shipped with calobench."""
    return loads((resources.files("calobench.leaderboard") / "schema.json").read_text(encoding="utf-8"))


def _check_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))  # ValueError: not a real time
    return True


def _check_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE.match(value):
        return False
    date.fromisoformat(value)
    return True


def _inline_refs(node: object, defs: dict) -> object:
    """The schema with every local '#/$defs/NAME' reference replaced by its definition (this schema
    has no recursive definitions); validating then resolves no reference, about twice as fast."""
    if isinstance(node, dict):
        rest = {k: _inline_refs(v, defs) for k, v in node.items() if k not in ("$defs", "$ref")}
        if "$ref" in node:
            return {**_inline_refs(defs[node["$ref"].removeprefix("#/$defs/")], defs), **rest}
        return rest
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


@lru_cache(maxsize=1)
def _validator():
    """A schema validator whose 'date-time' and 'date' formats are really checked (jsonschema's own
    need optional packages and otherwise accept anything, e.g. "yesterday")."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_check_date_time)
    checker.checks("date", raises=ValueError)(_check_date)
    cls = jsonschema.validators.validator_for(schema())
    return cls(_inline_refs(schema(), schema().get("$defs", {})), format_checker=checker)


def _where(error) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


#: The schema's metric definition that _metric_is_valid implements; when schema.json's differs, the
#: fast path is off and every metric goes through jsonschema.
METRIC_SCHEMA = {"type": "object", "required": ["value", "std"], "additionalProperties": False,
                 "properties": {"value": {"$ref": "#/$defs/number_or_null"}, "std": {"$ref": "#/$defs/number_or_null"},
                                "floor": {"$ref": "#/$defs/number_or_null"}, "within_floor": {"type": "boolean"},
                                "failed": {"type": "string", "minLength": 1},
                                "unreliable": {"type": "string", "minLength": 1}}}
_METRIC_KEYS = frozenset(METRIC_SCHEMA["properties"])


def _number_or_null(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _metric_is_valid(m: object) -> bool:
    """True only when ``m`` satisfies METRIC_SCHEMA (a sufficient check: False sends it to jsonschema)."""
    return (type(m) is dict and "value" in m and "std" in m and _METRIC_KEYS.issuperset(m)
            and _number_or_null(m["value"]) and _number_or_null(m["std"]) and _number_or_null(m.get("floor"))
            and isinstance(m.get("within_floor", False), bool)
            and all(key not in m or (isinstance(m[key], str) and len(m[key]) >= 1) for key in ("failed", "unreliable")))


def _fast_metrics(entry: object) -> object:
    """``entry`` with its metrics reduced to one, when every metric passes _metric_is_valid (jsonschema
    costs ~0.15 ms a metric, and entries hold hundreds); else ``entry`` itself."""
    if schema().get("$defs", {}).get("metric") != METRIC_SCHEMA or not isinstance(entry, dict):
        return entry
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or not metrics or not all(_metric_is_valid(m) for m in metrics.values()):
        return entry
    first = next(iter(metrics))
    return {**entry, "metrics": {first: metrics[first]}}


def validation_errors(entry: object) -> list[str]:
    """Every problem of one entry, as 'field: problem' lines (empty when valid)."""
    out = []
    bad = first_non_finite(entry)
    if bad:
        out.append(f"{bad}: number is not finite")
    errors = sorted(_validator().iter_errors(_fast_metrics(entry)), key=lambda e: list(map(str, e.absolute_path)))
    out += [f"{_where(e)}: {e.message}" for e in errors]
    return out


def _one_line(prefix: str, errors: list[str]) -> str:
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{prefix}: {errors[0]}{more}"


def validate_entry(entry: dict) -> None:
    """Raise CalobenchError ('invalid leaderboard entry: field: problem') unless ``entry`` is valid."""
    errors = validation_errors(entry)
    if errors:
        raise CalobenchError(_one_line("invalid leaderboard entry", errors))


def dataset_dir(directory: str | Path, dataset: str) -> Path:
    """The folder holding the entry files of ``dataset``."""
    return Path(directory) / dataset


def old_layout_file(directory: str | Path, dataset: str) -> Path:
    """Where the schema-1.0 layout kept a dataset's entries (one file per dataset)."""
    return Path(directory) / f"{dataset}.json"


def check_layout(directory: str | Path, dataset: str) -> None:
    """Refuse a folder in the old one-file-per-dataset layout, or a dataset path that is a file."""
    old = old_layout_file(directory, dataset)
    if old.is_file():
        raise CalobenchError(f"{old}: old leaderboard layout (one file per dataset, schema 1.0); convert it "
                             f"with `calobench leaderboard migrate --leaderboard-dir {directory}`")
    folder = dataset_dir(directory, dataset)
    if folder.exists() and not folder.is_dir():
        raise CalobenchError(f"{folder}: is a file, expected a folder of leaderboard entry files")


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) is not a probe there: rely on the age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def sweep_temp(temp: Path, now: float | None = None) -> int:
    """Remove debris in a ``.tmp`` folder: files of dead writers or older than STALE_S. Returns the count."""
    now = time.time() if now is None else now
    removed = 0
    try:
        names = os.listdir(temp)
    except OSError:
        return 0
    for name in names:
        parts = name.rsplit(".", 3)  # <id>.<pid>.<random>.tmp
        pid = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None
        if pid == os.getpid():
            continue
        path = temp / name
        try:
            stale = now - path.stat().st_mtime > STALE_S
            if stale or pid is None or not _pid_alive(pid):
                path.unlink()
                removed += 1
        except OSError:
            continue  # another writer swept it first
    return removed


def add_entry(directory: str | Path, dataset: str, entry: dict) -> Path:
    """Validate ``entry`` and create ``<directory>/<dataset>/<id>.json`` atomically; its path.

    Never replaces a file: an existing id is a CalobenchError. Runs of the same model, preset and
    seed are all kept (each has its own id); `leaderboard show` marks the older ones.
    """
    validate_entry(entry)
    if entry["dataset"] != dataset:
        raise CalobenchError(f"invalid leaderboard entry: dataset: is {entry['dataset']!r}, added to {dataset!r}")
    check_layout(directory, dataset)
    return write_entry_file(dataset_dir(directory, dataset), entry)


def write_entry_file(folder: Path, entry: dict) -> Path:
    """Create ``folder/<id>.json`` from a validated entry: temp file, sweep, hard link (exclusive)."""
    temp = folder / TEMP_DIR
    final = folder / f"{entry['id']}.json"
    try:
        temp.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalobenchError(f"{folder}: cannot create the leaderboard folder ({exc.strerror or exc})") from None
    sweep_temp(temp)
    tmp = temp / f"{entry['id']}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        tmp.write_text(dumps(entry), encoding="utf-8")
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise CalobenchError(f"{final}: an entry with id {entry['id']} exists already") from None
        except OSError:  # no hard links on this filesystem: rename, after checking the name is free
            if final.exists():
                raise CalobenchError(f"{final}: an entry with id {entry['id']} exists already") from None
            os.replace(tmp, final)
    except OSError as exc:
        raise CalobenchError(f"{final}: cannot write the leaderboard entry ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return final


def entry_files(directory: str | Path, dataset: str) -> list[Path]:
    """The entry files of ``dataset`` (sorted; temporary files and dot files are not entries)."""
    check_layout(directory, dataset)
    folder = dataset_dir(directory, dataset)
    if not folder.is_dir():
        return []
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise CalobenchError(f"{folder}: unreadable ({exc.strerror or exc})") from None
    return [folder / n for n in names if n.endswith(".json") and not n.startswith(".")]


def entry_problems(path: Path, data: object) -> list[str]:
    """Schema problems of an entry file, plus its name and folder agreeing with its id and dataset."""
    problems = validation_errors(data)
    if isinstance(data, dict):
        if isinstance(data.get("id"), str) and data["id"] != path.stem:
            problems.append(f"id: is {data['id']!r} but the file is named {path.name}")
        if isinstance(data.get("dataset"), str) and data["dataset"] != path.parent.name:
            problems.append(f"dataset: is {data['dataset']!r} but the file is in folder {path.parent.name}/")
    return problems


def read_entry(path: str | Path) -> dict:
    """One entry file, strictly parsed and validated; one-line CalobenchError '<file>: field: problem'."""
    path = Path(path)
    data = read_json(path)
    problems = entry_problems(path, data)
    if problems:
        raise CalobenchError(_one_line(str(path), problems))
    return data


def read_entries(directory: str | Path, dataset: str) -> list[dict]:
    """Every entry of ``dataset`` in ``directory`` (empty when it has none)."""
    return [read_entry(p) for p in entry_files(directory, dataset)]


def read_leaderboard(directory: str | Path, dataset: str) -> dict:
    """The per-dataset view built from the entry files: {schema_version, dataset, entries}."""
    return {"schema_version": SCHEMA_VERSION, "dataset": dataset, "entries": read_entries(directory, dataset)}


def validate_directory(directory: str | Path) -> dict[str, list[str]]:
    """Check every entry file under ``directory``: 'dataset/file.json' -> problems (empty when valid).

    Old-layout files (``<dataset>.json``) are reported as needing migration; a ``schema.json``
    beside the folders must equal the shipped schema.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CalobenchError(f"{directory}: no such leaderboard folder")
    report: dict[str, list[str]] = {}
    for path in sorted(directory.iterdir()):
        name = path.name
        if name.startswith("."):
            continue
        if name == "schema.json":
            try:
                same = read_json(path) == schema()
                report[name] = [] if same else ["differs from the schema shipped with calobench (re-copy it)"]
            except CalobenchError as exc:
                report[name] = [str(exc).split(": ", 1)[1]]
        elif name.endswith(".json") and path.is_dir():
            report[name] = ["is a folder named like a file; expected <dataset>/ folders of entry files"]
        elif name.endswith(".json"):
            report[name] = ["old leaderboard layout (one file per dataset, schema 1.0); convert it with "
                            f"`calobench leaderboard migrate --leaderboard-dir {directory}`"]
        elif path.is_dir():
            for entry in entry_files(directory, name):
                key = f"{name}/{entry.name}"
                try:
                    report[key] = entry_problems(entry, read_json(entry))
                except CalobenchError as exc:
                    report[key] = [str(exc).split(": ", 1)[1]]
    return report


__all__ = ["SCHEMA_VERSION", "STALE_S", "TEMP_DIR", "add_entry", "check_layout", "dataset_dir", "entry_files",
           "entry_problems", "old_layout_file", "read_entries", "read_entry", "read_leaderboard", "schema",
           "sweep_temp", "validate_directory", "write_entry_file", "validate_entry", "validation_errors"]
