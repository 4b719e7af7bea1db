"""Building leaderboard entries: benchmark version, provenance, config hash.

The benchmark version names what a number was measured against: the dataset's reference
version and the version of the metric definitions. Entries of different benchmark
versions are listed but never ranked together.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from calobench.datasets import get_dataset
from calobench.hardware import cpu_name
from calobench.leaderboard.store import SCHEMA_VERSION
from calobench.version import __version__


def metrics_version() -> str:
    """Version of the metric definitions used for leaderboard numbers (calobench.metrics.METRICS_VERSION)."""
    from calobench.metrics import METRICS_VERSION

    return METRICS_VERSION


def reference_fingerprint(path: str | Path | None) -> str | None:
    """First 8 hex digits of the SHA-256 of a reference file's bytes (None when there is no file)."""
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:8]


def benchmark_version(dataset: str, reference: str | Path | None = None) -> str:
    """'<dataset>/data-v<dataset version>[-<reference fingerprint>]/metrics-v<metric definitions version>'.

    reference: the reference file the numbers were measured on (default: the dataset's benchmark
    reference: the recipe's showers for a dataset with a recipe, built here or not, else the
    embedded sample). Its fingerprint makes any change of the reference data a new benchmark
    version, even when the dataset's version string was not bumped.
    """
    ds = get_dataset(dataset)
    if ds.recipe is not None and (reference is None or Path(reference) == ds.built_path):
        # the benchmark reference is defined by its recipe: the content fingerprint (the file's
        # bytes hold machine-dependent timing provenance), so a user who has not built it yet sees
        # the curated entries ranked as the current benchmark
        fingerprint = ds.recipe.fingerprint[:8]
    else:
        fingerprint = reference_fingerprint(reference if reference is not None else ds.embedded_path)
    data = f"data-v{ds.version}" + (f"-{fingerprint}" if fingerprint else "")
    return f"{dataset}/{data}/metrics-v{metrics_version()}"


def config_hash(config: dict) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of ``config``."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_commit() -> str | None:
    """The commit of the calobench checkout (None when not run from a git checkout)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out + ("-dirty" if dirty else "")


def hardware() -> dict:
    """CPU, core count, OS, torch version and accelerators of this machine."""
    info = {"machine": platform.machine(), "system": platform.system(), "python": platform.python_version(),
            "cpu": cpu_name(), "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["cuda"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info




def new_entry_id(model: str, preset: str, seed: int, when: datetime | None = None) -> str:
    """A unique entry id, also its file name: '<model>-<preset>-seed<seed>-<UTC time>-<8 random hex>'."""
    when = when or datetime.now(timezone.utc)
    stem = re.sub(r"[^a-z0-9.]+", "-", f"{model}-{preset}".lower()).strip("-.") or "entry"
    return f"{stem[:80]}-seed{int(seed)}-{when.strftime('%Y%m%dT%H%M%SZ')}-{os.urandom(4).hex()}"


def make_entry(*, model: str, family: str, seed_document: str, preset: str, parameters: int, dataset: str,
               metrics: dict, timing: dict, seed: int, config: dict, training: dict | None = None,
               evaluation: dict | None = None, command: str = "", split_seed: int | None = None,
               reference: str = "", reference_path: str | Path | None = None) -> dict:
    """A leaderboard entry (see schema.json): schema version, dataset, a new unique id, benchmark
    version, metrics (name -> {value, std[, floor]}), timing, provenance."""
    now = datetime.now(timezone.utc)
    date = now.isoformat()  # with microseconds: two runs in one second still have an order (``latest``)
    chash = config_hash({"model": model, "dataset": dataset, "preset": preset, "config": config,
                         "split_seed": split_seed, "reference": reference})
    provenance = {"calobench_version": __version__, "git_commit": git_commit(), "config_hash": chash,
                  "seed": int(seed), "hardware": hardware(), "date": date, "config": config}
    if split_seed is not None:
        provenance["split_seed"] = int(split_seed)
    if reference:
        provenance["reference"] = reference
    if command:
        provenance["command"] = command
    return {
        "schema_version": SCHEMA_VERSION, "dataset": dataset, "id": new_entry_id(model, preset, seed, now),
        "model": model, "family": family, "seed_document": seed_document, "preset": preset,
        "parameters": int(parameters), "benchmark_version": benchmark_version(dataset, reference_path),
        "dataset_version": get_dataset(dataset).version, "metrics_version": metrics_version(),
        "metrics": {k: {kk: _num(vv) for kk, vv in v.items() if kk in ("value", "std", "floor")}
                    for k, v in metrics.items()},
        "timing": timing, "training": training or {}, "evaluation": evaluation or {}, "provenance": provenance,
    }


def _num(value) -> float | None:
    import math

    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
