"""`calobench simulate`: Geant4 reference samples as Dask tasks, resumable part files.

Events are cut into chunks (blocks) of ``chunk`` events; chunk k has its own primaries (numpy
seed derived from (seed, k)) and Geant4 seed, so the result does not depend on the number of
workers or the order the blocks finish in. The blocks run as Dask tasks (calobench.cluster: a
LocalCluster of ``workers`` processes, or a user's scheduler), each worker process running
Geant4 (calobench.simulation.g4worker); a block whose worker dies is re-run by the scheduler.
Finished chunks are written to ``<output>.parts/chunk-XXXXX.npz`` (temp file then rename) as
they arrive; a rerun with the same arguments skips them; the final file is merged from the
parts with ShowerFileWriter (atomic) and the parts folder is removed.
"""

from __future__ import annotations

import hashlib
import math
import json
import multiprocessing
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from calobench.hardware import cpu_name

from calobench.datasets import PDG, get_dataset
from calobench.data.validation import check_output_file
from calobench.errors import CalobenchError
from calobench.data.showerfile import ShowerFileWriter
from calobench.data.showerset import ShowerSet
from calobench.simulation.g4env import NODATA_LIST, check_nodata_symbols, geant4_version, import_geant4, setup_env
from calobench.simulation import portable_math
from calobench.simulation.setups import Primaries, make_setup, setup_names

TIMING_BINS = 8


def parse_energy(text: str) -> tuple[str, list[float]]:
    """'50:2000' (range) or '1000,2000' (list) in MeV; a number may end in MeV or GeV."""
    def number(token: str) -> float:
        m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(MeV|GeV|TeV)?\s*", token)
        if not m:
            raise CalobenchError(f"--energy: expected a number in MeV (or with GeV/TeV), found {token!r}")
        try:
            value = float(m.group(1)) * {"MeV": 1.0, "GeV": 1e3, "TeV": 1e6, None: 1.0}[m.group(2)]
        except ValueError:
            raise CalobenchError(f"--energy: expected a number, found {token!r}") from None
        if not value > 0:
            raise CalobenchError(f"--energy: expected positive energies, found {token!r}")
        return value
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 2:
            raise CalobenchError(f"--energy: expected LOW:HIGH, found {text!r}")
        low, high = number(parts[0]), number(parts[1])
        if high < low:
            raise CalobenchError(f"--energy: range {text!r} ends below its start")
        return "range", [low, high]
    return "list", [number(t) for t in text.split(",")]


def default_energy(dataset: str) -> str:
    """The dataset's default --energy range, 'LOW:HIGH' in MeV."""
    ds = get_dataset(dataset)
    low, high = ds.simulation_energy_range or ds.energy_range
    return f"{low:g}:{high:g}"


def sample_chunk(dataset: str, seed: int, chunk: int, size: int, particles: list[str],
                 energy_mode: str, energy_values: list[float]) -> Primaries:
    """The primaries of one chunk (deterministic in seed and chunk number)."""
    rng = np.random.default_rng([seed, chunk])
    setup = make_setup(get_dataset(dataset))
    pdg = np.array([PDG[p] for p in particles])[rng.integers(0, len(particles), size)]
    if energy_mode == "list":
        energy = np.asarray(energy_values)[rng.integers(0, len(energy_values), size)]
    elif setup.log_energy:
        energy = portable_math.exp(rng.uniform(math.log(energy_values[0]), math.log(energy_values[1]), size))
    else:
        energy = rng.uniform(energy_values[0], energy_values[1], size)
    return setup.sample(rng, pdg, energy.astype(np.float64))


def _g4_seed(seed: int, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, chunk, 4]).generate_state(1)[0] % 2_000_000_000) + 1


def timing_table(energies: np.ndarray, ms: np.ndarray, bins: int = TIMING_BINS, log: bool = False) -> dict:
    """Mean Geant4 ms per event in energy bins: {edges_MeV, ms_per_event, events, mean_ms}."""
    lo, hi = float(energies.min()), float(energies.max())
    if hi <= lo:
        hi = lo * 1.0001
    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    which = np.clip(np.searchsorted(edges, energies, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=ms, minlength=bins)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return {"edges_MeV": edges.tolist(), "ms_per_event": [None if np.isnan(v) else float(v) for v in mean],
            "events": counts.tolist(), "mean_ms": float(ms.mean())}


def _write_part(path: Path, prim: Primaries, index: list, energy: list, ms: np.ndarray) -> None:
    counts = np.array([len(i) for i in index], dtype=np.int64)
    arrays = prim.arrays("p_")
    arrays.update(raw_index=np.concatenate(index) if index else np.zeros(0, np.int64),
                  raw_energy=np.concatenate(energy) if energy else np.zeros(0),
                  raw_counts=counts, ms=ms)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _read_part(path: Path):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    prim = Primaries.from_arrays(arrays, "p_")
    bounds = np.concatenate([[0], np.cumsum(arrays["raw_counts"])])
    index = [arrays["raw_index"][a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    energy = [arrays["raw_energy"][a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return prim, index, energy, arrays["ms"]


def simulate(dataset: str, n: int, output: str | Path, particles: list[str] | None = None,
             energy: str | None = None, seed: int = 1, workers: int = 1, chunk: int = 200,
             cut_mm: float = 0.7, command: str | None = None, progress: bool = True,
             scheduler: str | None = None, resume: bool = False) -> Path:
    """Simulate ``n`` events of ``dataset`` with Geant4 and write them to ``output``.

    particles: names (default: the dataset's); energy: '50:2000' / '1000,2000' MeV (default:
    the dataset's range). The blocks run as Dask tasks on a LocalCluster of ``workers``
    processes, or on the cluster at ``scheduler`` (default ``$CALOBENCH_SCHEDULER``). A parts
    folder left by an earlier run with the same arguments is always resumed; ``resume`` also
    makes it an error when there is none to resume. Returns the output path.
    """
    if dataset not in setup_names():
        raise CalobenchError(f"--dataset: no Geant4 set-up for {dataset!r}; simulate supports: "
                             f"{', '.join(setup_names())}")
    if n < 1:
        raise CalobenchError(f"-n: expected at least 1 event, found {n}")
    if workers < 1:
        raise CalobenchError(f"--workers: expected at least 1, found {workers}")
    ds = get_dataset(dataset)
    particles = list(particles or ds.particles)
    bad = [p for p in particles if p not in ds.particles]
    if bad:
        raise CalobenchError(f"--particle: {bad[0]!r} is not simulated for {dataset}; choose from "
                             f"{', '.join(ds.particles)}")
    energy = energy or default_energy(dataset)
    mode, values = parse_energy(energy)
    output = check_output_file(output, "-o")
    if chunk < 1:
        raise CalobenchError(f"--chunk: expected at least 1 event, found {chunk}")
    if not cut_mm > 0 or cut_mm == float("inf"):
        raise CalobenchError(f"--cut: expected a positive length in mm, found {cut_mm}")

    physics = setup_env()
    import_geant4()
    if physics == NODATA_LIST:
        check_nodata_symbols()
    g4_version = geant4_version()
    setup = make_setup(ds)

    key = {"dataset": dataset, "n": n, "particles": particles, "energy": energy, "seed": seed,
           "chunk": chunk, "cut_mm": cut_mm, "physics": physics, "geant4": g4_version, "format": 1}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    parts = output.with_name(output.name + ".parts")
    manifest = parts / "manifest.json"
    if parts.exists():
        try:
            same = json.loads(manifest.read_text()).get("digest") == digest
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            if resume:
                raise CalobenchError(f"--resume: {parts} was made with other arguments (or is damaged); "
                                     f"rerun with the same arguments or without --resume")
            shutil.rmtree(parts)
    elif resume:
        raise CalobenchError(f"--resume: nothing to resume, {parts} does not exist")
    parts.mkdir(exist_ok=True)
    if not manifest.exists():
        manifest.write_text(json.dumps({"digest": digest, "key": key}, indent=1))

    n_chunks = (n + chunk - 1) // chunk
    sizes = [min(chunk, n - k * chunk) for k in range(n_chunks)]
    part_path = [parts / f"chunk-{k:05d}.npz" for k in range(n_chunks)]
    todo = [k for k in range(n_chunks) if not part_path[k].exists()]
    tasks = []
    for k in todo:
        prim = sample_chunk(dataset, seed, k, sizes[k], particles, mode, values)
        tasks.append((k, dataset, physics, cut_mm, prim.arrays(), _g4_seed(seed, k)))

    start = time.time()
    if tasks:
        _run_blocks(tasks, part_path, sizes, n, dataset, workers, scheduler, progress)
    wall = time.time() - start

    # merge: timing first (it goes into the provenance), then the showers chunk by chunk
    energies, ms = [], []
    for path in part_path:
        with np.load(path) as f:
            energies.append(f["p_energy"])
            ms.append(f["ms"])
    energies, ms = np.concatenate(energies), np.concatenate(ms)
    timing = timing_table(energies, ms, log=setup.log_energy)
    timing["host_cpu"] = cpu_name()
    timing["note"] = "Geant4 CPU time per event, one core (primary generation to end of event)"
    provenance = {
        "generator": "calobench simulate",
        "simulator": f"Geant4 {g4_version} via geant4_pybind",
        "geant4_version": g4_version,
        "physics_list": physics,
        "production_cut_mm": cut_mm,
        "scoring": "G4MultiFunctionalDetector energy deposit per readout volume",
        "seed": seed,
        "geant4_seeds": [_g4_seed(seed, k) for k in range(n_chunks)],
        "chunk": chunk,
        "particles": particles,
        "energy": energy,
        "energy_sampling": "list" if mode == "list" else ("log-uniform" if setup.log_energy else "uniform"),
        "command": command or " ".join(["calobench", "simulate", "--dataset", dataset, "-n", str(n),
                                        "--energy", energy, "--particle", ",".join(particles),
                                        "--seed", str(seed), "-o", str(output)]),
        "threshold_MeV": setup.geometry.threshold,
        "energy_scale": setup.energy_scale,
        "events": n,
        "geant4_timing": timing,
        "wall_s": wall,
    }
    with ShowerFileWriter(output, setup.geometry, list(ds.conditions),
                          "+".join(particles), provenance, dataset, sparse=setup.sparse_output,
                          energy_dtype=np.float64) as writer:
        for path in part_path:
            prim, index, energy_dep, _ = _read_part(path)
            showers = setup.showers(index, energy_dep, prim)
            writer.append(ShowerSet(setup.geometry, prim.energy, showers, prim.conditions,
                                    "+".join(particles), provenance, dataset))
        writer.f.create_dataset("geant4_ms_per_event", data=ms.astype(np.float32), compression="gzip")
    shutil.rmtree(parts, ignore_errors=True)
    return output


def _run_blocks(tasks: list[tuple], part_path: list[Path], sizes: list[int], n: int, dataset: str,
                workers: int, scheduler: str | None, progress: bool) -> None:
    """Run the blocks as Dask tasks and write each block's part file as it finishes.

    A block that dies with its worker is re-run by the scheduler (the part only depends on the
    block's primaries and seed, so the file does not change).
    """
    from distributed import as_completed

    from calobench.cluster import dask_client
    from calobench.progress import stage

    done = sum(sizes) - sum(sizes[task[0]] for task in tasks)
    with dask_client(min(workers, len(tasks)), scheduler) as client, \
            stage(f"simulate {dataset}: Geant4 events", total=n, enabled=progress) as bar:
        bar.update(completed=done)
        # pure=False: a block is never taken from another production's cache on a shared cluster
        futures = [client.submit(_run_task, task, key=f"g4-{dataset}-block-{task[0]:05d}-{uuid.uuid4().hex[:8]}",
                                 pure=False) for task in tasks]
        arrays = {task[0]: task[4] for task in tasks}
        try:
            for future in as_completed(futures):
                k, index, energy_dep, ms = future.result()
                _write_part(part_path[k], Primaries.from_arrays(arrays.pop(k)), index, energy_dep, ms)
                future.release()
                bar.advance(sizes[k])
        except BaseException:
            client.cancel(futures)
            raise


def _run_task(task):
    from calobench.simulation.g4worker import worker_task
    return worker_task(task)




def simulate_primaries(dataset: str, primaries: Primaries, seed: int = 1, cut_mm: float = 0.7):
    """Simulate given primaries in a fresh worker process; returns (showers, ms per event).

    showers: (n, cells) float32 MeV for voxel set-ups, a CellList for point clouds.
    """
    physics = setup_env()
    import_geant4()
    if physics == NODATA_LIST:
        check_nodata_symbols()
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        _, index, energy, ms = pool.apply(_run_task, ((0, dataset, physics, cut_mm, primaries.arrays(), seed),))
    return make_setup(get_dataset(dataset)).showers(index, energy, primaries), ms
