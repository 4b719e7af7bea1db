"""Benchmark references too large to embed: the recipe, the content fingerprint and the cache.

A dataset whose benchmark reference would not fit the repository's budget ships a
``ReferenceRecipe`` instead: the Geant4 command (seed, number of events, chunking) and the
SHA-256 fingerprint of the showers it makes. ``calobench reference build DATASET`` (or the
first ``calobench run`` that needs it) runs Geant4 with the recorded seeds, checks the
fingerprint and caches the file in the user's data folder, so every user ranks against
bit-identical showers. The build itself lives in calobench.simulation.benchmark_reference;
this module only finds, fingerprints and describes cached files.

The embedded sample of such a dataset is the first events of the same recipe (same seeds and
chunking), so it is a bit-identical prefix of the benchmark reference.

Cache folder: ``$CALOBENCH_DATA_DIR/references`` if set, else the platform's user data folder
(``~/.local/share/calobench/references`` on Linux).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calobench.data.showerset import CellList, ShowerSet
from calobench.errors import CalobenchError

#: events per fingerprint block (does not change the fingerprint: bytes are hashed in order).
_FINGERPRINT_CHUNK = 2000


@dataclass(frozen=True)
class ReferenceRecipe:
    """How a dataset's benchmark reference is made with ``calobench simulate``.

    events: showers in the reference; seed, chunk: ``--seed`` and ``--chunk`` (the Geant4 seed
    of chunk k follows from both); cut_mm: production cut; physics: the Geant4 EM list the
    fingerprint was made with; fingerprint: SHA-256 hex of the showers' content
    (``content_fingerprint``); core_minutes: measured Geant4 cost on one core of the 2-core
    development machine (a guide for users, not a check).
    """

    events: int
    seed: int
    chunk: int
    fingerprint: str
    physics: str
    geant4_version: str
    cut_mm: float = 0.7
    core_minutes: float = 0.0

    def command(self, dataset: str, output: str = "FILE.h5") -> str:
        return (f"calobench simulate --seed {self.seed} --dataset {dataset} -n {self.events} "
                f"--chunk {self.chunk} --cut {self.cut_mm:g} -o {output}")


def data_dir() -> Path:
    """calobench's user data folder: ``$CALOBENCH_DATA_DIR`` or the platform's user data dir."""
    env = os.environ.get("CALOBENCH_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("calobench", appauthor=False))


def references_dir() -> Path:
    """Where built benchmark references are cached."""
    return data_dir() / "references"


def cached_path(name: str, version: str) -> Path:
    """The cache file of dataset ``name`` at dataset version ``version``."""
    return references_dir() / f"{name}-v{version}.h5"


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def content_fingerprint(showers: ShowerSet) -> str:
    """SHA-256 hex of a sample's content, independent of the file's compression and chunking.

    Hashed in order: the number of events, the incident energies (float64), each condition in
    name order (float64), then the showers: dense (N, cells) float32 rows, or for point clouds
    the (M, 4) float32 cells and the per-event counts (int64).
    """
    digest = hashlib.sha256()
    digest.update(f"events={len(showers)};conditions={','.join(sorted(showers.conditions))}".encode())
    for chunk in showers.iter_chunks(_FINGERPRINT_CHUNK):
        digest.update(np.ascontiguousarray(chunk.energies, dtype=np.float64).tobytes())
        for name in sorted(chunk.conditions):
            digest.update(np.ascontiguousarray(chunk.conditions[name], dtype=np.float64).tobytes())
        data = chunk.showers
        if isinstance(data, CellList):
            digest.update(np.ascontiguousarray(data.cells, dtype=np.float32).tobytes())
            digest.update(np.ascontiguousarray(data.counts, dtype=np.int64).tobytes())
        else:
            digest.update(np.ascontiguousarray(data, dtype=np.float32).tobytes())
    return digest.hexdigest()


def write_stamp(path: Path, fingerprint: str) -> None:
    """Record that ``path`` was checked against ``fingerprint`` (its size and mtime with it)."""
    stat = path.stat()
    stamp = {"fingerprint": fingerprint, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    tmp = _stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(path))


def verified(path: Path, fingerprint: str) -> bool:
    """Whether ``path`` exists and was verified against ``fingerprint`` and is unchanged since."""
    if not path.is_file():
        return False
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return (isinstance(stamp, dict) and stamp.get("fingerprint") == fingerprint
            and stamp.get("size") == stat.st_size and stamp.get("mtime_ns") == stat.st_mtime_ns)


def built_path(name: str, version: str, recipe: ReferenceRecipe | None) -> Path | None:
    """The verified cached benchmark reference, or None when it is not built (or no recipe)."""
    if recipe is None:
        return None
    path = cached_path(name, version)
    return path if verified(path, recipe.fingerprint) else None


def not_built_error(name: str, recipe: ReferenceRecipe) -> CalobenchError:
    return CalobenchError(
        f"dataset {name}: its benchmark reference ({recipe.events} Geant4 showers) is not built yet; "
        f"run `calobench reference build {name} --workers N` (about {recipe.core_minutes:.0f} core-minutes), "
        f"or pass --reference FILE")
