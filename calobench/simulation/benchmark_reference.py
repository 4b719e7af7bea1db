"""Building a dataset's benchmark reference from its recipe with Geant4 (see
calobench.datasets.benchmark_reference for the recipe, the fingerprint and the cache).

``build_reference`` runs ``calobench simulate`` with the recipe's seed, event count and
chunking into the cache folder (resumable: an interrupted build continues from its finished
chunks), fingerprints the showers and only then moves the file into place. A fingerprint
that differs from the recipe's (another Geant4 build, another physics list) is an error; the
file is kept beside the cache as ``*.unverified.h5`` so the work is not lost.
"""

from __future__ import annotations

import os
from pathlib import Path

from calobench.datasets import get_dataset, open_showers
from calobench.datasets.benchmark_reference import cached_path, content_fingerprint, verified, write_stamp
from calobench.errors import CalobenchError


def build_reference(name: str, workers: int = 1, progress: bool = True, force: bool = False) -> Path:
    """Build (or find) the verified benchmark reference of dataset ``name``; returns its path.

    workers: Geant4 processes. force: rebuild even when a verified file is cached.
    """
    from calobench.simulation.g4env import NODATA_LIST
    from calobench.simulation.runner import simulate

    dataset = get_dataset(name)
    recipe = dataset.recipe
    if recipe is None:
        raise CalobenchError(f"dataset {name}: no reference recipe; its benchmark reference is the embedded sample")
    path = cached_path(name, dataset.version)
    if not force and verified(path, recipe.fingerprint):
        return path
    if recipe.physics != NODATA_LIST:
        raise CalobenchError(f"dataset {name}: recipe physics list {recipe.physics!r} is not supported here")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalobenchError(f"{path.parent}: cannot create the reference cache ({exc}); "
                             f"set CALOBENCH_DATA_DIR to a writable folder") from None
    building = path.with_name(f".building-{path.name}")
    # the recipe's fingerprint was made with the data-free EM list: keep a user's G4EMLOW out of it
    saved = os.environ.pop("G4LEDATA", None)
    try:
        simulate(name, recipe.events, building, seed=recipe.seed, workers=workers, chunk=recipe.chunk,
                 cut_mm=recipe.cut_mm, command=recipe.command(name, str(path)), progress=progress)
    finally:
        if saved is not None:
            os.environ["G4LEDATA"] = saved
    fingerprint = content_fingerprint(open_showers(building, name))
    if fingerprint != recipe.fingerprint:
        kept = path.with_name(path.stem + ".unverified.h5")
        os.replace(building, kept)
        raise CalobenchError(
            f"dataset {name}: the built reference has fingerprint {fingerprint[:16]}, the recipe expects "
            f"{recipe.fingerprint[:16]} (a different Geant4 build or CPU?); the file is kept as {kept} "
            f"and can be passed with --reference, but its numbers are not comparable with the leaderboard's")
    os.replace(building, path)
    write_stamp(path, fingerprint)
    return path


def benchmark_reference_path(name: str, build: bool = True, workers: int | None = None,
                             progress: bool = True) -> Path:
    """The file dataset ``name`` ranks against: the embedded sample when it has no recipe, else
    the cached build; when not built yet, build it now (``build``; workers default: all cores)
    or fall back to the embedded sample (the recipe's first events)."""
    dataset = get_dataset(name)
    if dataset.recipe is None or dataset.built_path is not None:
        return dataset.reference_path
    if not build:
        return dataset.embedded_path
    workers = workers or os.cpu_count() or 1
    if progress:
        import sys

        print(f"{name}: building the benchmark reference ({dataset.recipe.events} Geant4 showers, about "
              f"{dataset.recipe.core_minutes:.0f} core-minutes on {workers} worker(s)); it is cached in "
              f"{cached_path(name, dataset.version).parent}", file=sys.stderr)
    return build_reference(name, workers=workers, progress=progress)
