"""Strict JSON for leaderboard files: UTF-8, no NaN/Infinity literals, finite numbers only.

``read_json`` turns every way a file can be wrong (a folder, unreadable, not UTF-8, not JSON, a
``NaN`` literal, a number too large for a float) into a one-line CalobenchError naming the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from calobench.errors import CalobenchError


class _NonFinite(ValueError):
    """A NaN/Infinity literal or a number that overflows a float."""


def _refuse_constant(name: str) -> float:
    raise _NonFinite(f"{name} literal (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"number {text} is not finite as a float")
    return value


def loads(text: str) -> object:
    """json.loads refusing NaN, Infinity, -Infinity and numbers that overflow to infinity."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def read_json(path: Path) -> object:
    """A JSON file's content; one-line CalobenchError ('<path>: <problem>') when it cannot be one."""
    path = Path(path)
    if path.is_dir():
        raise CalobenchError(f"{path}: is a folder, expected a JSON file")
    try:
        return loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise CalobenchError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise CalobenchError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except _NonFinite as exc:
        raise CalobenchError(f"{path}: not strict JSON ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CalobenchError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise CalobenchError(f"{path}: JSON nested too deeply") from None


def first_non_finite(value: object, where: str = "") -> str | None:
    """The location ('a.b[2]') of the first non-finite float inside ``value``, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (where or "(top level)")
    if isinstance(value, dict):
        for key, item in value.items():
            found = first_non_finite(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = first_non_finite(item, f"{where}[{i}]")
            if found:
                return found
    return None


def dumps(data: object) -> str:
    """Indented JSON text (non-finite numbers refused) ending in a newline."""
    return json.dumps(data, indent=1, allow_nan=False) + "\n"
