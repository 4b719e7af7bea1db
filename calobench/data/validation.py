"""The one validation layer: checks of incident energies, conditions and shower arrays.

Every entry point (file reader, ShowerSet, Generator.sample, the condition encoders, compare)
calls these functions, so a bad input gets the same one-line CalobenchError wherever it enters.
``what`` names the input in the message (a file path and field, or ``sample``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from calobench.errors import CalobenchError


def check_energies(energies, what: str) -> np.ndarray:
    """Incident energies as a flat (N,) float64 array in MeV; every value finite and positive."""
    try:
        values = np.asarray(energies, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CalobenchError(f"{what}: energies must be numbers (MeV), found {type(energies).__name__}") from None
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise CalobenchError(f"{what}: energies must be finite and positive (MeV), found {values[i]} at index {i}")
    return values


def check_conditions(conditions: Mapping[str, np.ndarray] | None, n: int, what: str,
                     required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Conditions as {name: (n,) array}; each of length ``n``, finite, and every ``required`` name present."""
    out = {}
    for name, values in (conditions or {}).items():
        try:
            flat = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise CalobenchError(f"{what}: condition {name!r}: expected numbers") from None
        if len(flat) != n:
            raise CalobenchError(f"{what}: condition {name!r} has {len(flat)} values for {n} energies")
        if not np.all(np.isfinite(flat)):
            i = int(np.argmax(~np.isfinite(flat)))
            raise CalobenchError(f"{what}: condition {name!r}: expected finite values, found {flat[i]} at index {i}")
        out[name] = np.asarray(values).reshape(-1)
    missing = [name for name in required if name not in out]
    if missing:
        raise CalobenchError(f"{what}: missing condition(s) {', '.join(missing)}; "
                             f"this dataset needs: {', '.join(required)}")
    return out


def check_particles(codes, allowed: Sequence[int], what: str) -> None:
    """Every value of the ``particle`` condition (N,) is one of the ``allowed`` PDG codes."""
    values = np.asarray(codes, dtype=np.float64).reshape(-1)
    unknown = sorted(set(values[~np.isin(values, allowed)].tolist()))
    if unknown:
        raise CalobenchError(f"{what}: condition 'particle': PDG code(s) {', '.join(f'{v:g}' for v in unknown)} "
                             f"not among the dataset's particles ({', '.join(str(c) for c in allowed)})")


def check_cell_energies(showers, what: str) -> np.ndarray:
    """Dense showers as an (N, cells) float32 array whose every cell is finite and >= 0 MeV."""
    array = np.asarray(showers, dtype=np.float32)
    bad = ~(np.isfinite(array) & (array >= 0))
    if bad.any():
        i, j = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise CalobenchError(f"{what}: cell energies must be finite and >= 0 MeV, "
                             f"found {array[i, j]} in shower {i}, cell {j}")
    return array


def check_voxel_showers(showers, n: int, n_cells: int, what: str) -> np.ndarray:
    """Dense showers as an (n, n_cells) float32 array."""
    try:
        array = np.asarray(showers, dtype=np.float32)
    except (TypeError, ValueError):
        raise CalobenchError(f"{what}: showers must be numbers, found {type(showers).__name__}") from None
    if array.ndim != 2 or array.shape != (n, n_cells):
        raise CalobenchError(f"{what}: showers must have shape ({n}, {n_cells}), found {array.shape}")
    return array


def check_int_option(value, name: str, minimum: int = 1, optional: bool = False) -> int | None:
    """An integer option (not a bool) >= ``minimum``; None is allowed when ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CalobenchError(f"{name}: expected an integer >= {minimum}, found {value!r}")
    if value < minimum:
        raise CalobenchError(f"{name}: expected an integer >= {minimum}, found {value}")
    return int(value)


def check_float_option(value, name: str, positive: bool = True) -> float:
    """A finite number option (> 0 when ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or (positive and value <= 0):
        raise CalobenchError(f"{name}: expected a finite {'positive ' if positive else ''}number, found {value!r}")
    return float(value)


def _writable_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise CalobenchError(f"{what}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CalobenchError(f"{what}: folder {folder} is not writable")


def check_output_file(path: str | Path, what: str) -> Path:
    """An output file that can be written: not a folder, in an existing writable folder, and
    writable if it exists. Creates nothing; call it before any work starts."""
    path = Path(path)
    if path.is_dir():
        raise CalobenchError(f"{what}: {path} is a folder, expected a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise CalobenchError(f"{what}: {path} exists and is not writable")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise CalobenchError(f"{what}: {path}: folder {parent} does not exist")
    _writable_folder(parent, what)
    return path


def check_output_dir(path: str | Path, what: str) -> Path:
    """An output folder that exists and is writable, or can be created (its nearest existing
    ancestor is a writable folder). Creates nothing; call it before any work starts."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise CalobenchError(f"{what}: {path} exists and is not a folder")
        _writable_folder(path, what)
        return path
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CalobenchError(f"{what}: cannot create {path}: {ancestor} is not a folder")
    _writable_folder(ancestor, what)
    return path


__all__ = ["check_float_option", "check_int_option", "check_output_dir", "check_output_file", "check_cell_energies", "check_conditions", "check_energies", "check_particles", "check_voxel_showers"]
