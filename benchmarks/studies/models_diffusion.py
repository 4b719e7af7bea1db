"""Speed / quality trade-off of the diffusion models' samplers, and the two failure measurements
of seed 002 (too many hits at high energy; energy not concentrated at small radius).

Usage (a model saved by ``calobench run`` or by ``model.save``)::

    OMP_NUM_THREADS=1 python benchmarks/studies/models_diffusion.py MODEL_DIR \
        --setting sampler=ddim,sample_steps=10 --setting sampler=ancestral,sample_steps=400 \
        [--reference FILE] [--events 1000] [--json out.json]

For each setting: samples the conditions of the test split of ``calobench run`` (the same fixed
split every model is tested on; at most ``--events`` of them), measures the CPU time of generation
at batch 100 (process CPU time, ms per shower; run with OMP_NUM_THREADS=1 on a shared machine),
and evaluates with ``calobench.compare`` (hist, fpd, cls-high; cheap classifier settings).
For point-cloud models it also prints the cell count per E_inc bin and the radius / cell-energy
correlation, reference against generated.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from calobench.allocator import keep_freed_memory


def parse_setting(text: str) -> dict:
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def cell_counts(showers) -> np.ndarray:
    """(N,) number of cells above zero per shower (voxels or points)."""
    if isinstance(showers, np.ndarray):
        return (showers > 0).sum(1)
    return showers.counts


def count_vs_energy(reference, generated, bins: int = 5) -> list[dict]:
    """Mean cell count in quantile bins of E_inc, reference and generated."""
    edges = np.quantile(reference.energies, np.linspace(0, 1, bins + 1))
    edges[-1] *= 1.0001
    ref_n, gen_n = cell_counts(reference.showers), cell_counts(generated.showers)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        r = (reference.energies >= lo) & (reference.energies < hi)
        g = (generated.energies >= lo) & (generated.energies < hi)
        rows.append({"E_inc_GeV": [round(lo / 1e3, 1), round(hi / 1e3, 1)],
                     "ref_cells": float(ref_n[r].mean()) if r.any() else float("nan"),
                     "gen_cells": float(gen_n[g].mean()) if g.any() else float("nan")})
    return rows


def radius_energy(model, data) -> dict:
    """Transverse distance rho (mm) of every cell from the shower axis against its energy.

    rho: cepc: hypot(arc length, z offset) in the shower-axis frame; voxels: hypot(x, y).
    Returns the Pearson correlation of rho with log(E_cell), the energy-weighted and the plain
    mean rho, and the fraction of the energy within rho < 10 mm.
    """
    feats, _ = model._to_features(data, rng=None)
    rho = np.hypot(feats[:, 0], feats[:, 1])
    log_e = feats[:, 3]
    e = np.exp(log_e)
    return {"corr_rho_logE": float(np.corrcoef(rho, log_e)[0, 1]),
            "mean_rho_Eweighted_mm": float((rho * e).sum() / e.sum()),
            "mean_rho_mm": float(rho.mean()),
            "frac_E_rho_lt_10mm": float(e[rho < 10.0].sum() / e.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--setting", action="append", default=[], help="key=value,... sampler settings")
    parser.add_argument("--reference", default=None, help="reference file (default: the embedded one)")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--metrics", default="hist,fpd,cls-high")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    keep_freed_memory()  # as calobench run and calobench time do (calobench/allocator.py)
    import calobench
    from calobench.models.registry import get_model

    info = json.load(open(f"{args.model_dir}/config.json"))
    model = get_model(info["model"]).load(args.model_dir)
    from calobench.runner import load_reference, split_reference

    _, _, ref = split_reference(load_reference(info["dataset"], args.reference))  # the runner's test split
    ref = ref.slice(0, min(len(ref), args.events))
    results = []
    for text in args.setting or [""]:
        setting = parse_setting(text) if text else {}
        model.config.update(setting)
        t0 = time.process_time()
        gen = model.sample(ref.energies, ref.conditions, batch_size=100)
        ms = 1000.0 * (time.process_time() - t0) / len(ref)
        res = calobench.compare(gen, ref, metrics=args.metrics, repeats=1, progress=False,
                                cls_max_events=4000, replicas=5, fpd_min_samples=min(500, len(ref)),
                                fpd_max_samples=len(ref))
        row = {"setting": setting, "cpu_ms_per_shower_batch100": ms, "metrics": res.to_dict().get("metrics", {})}
        if not gen.geometry.is_voxel or info["model"] == "score-sde":
            row["cells_vs_E_inc"] = count_vs_energy(ref, gen)
            row["radius_energy"] = {"reference": radius_energy(model, ref), "generated": radius_energy(model, gen)}
        results.append(row)
        print(json.dumps(row, default=float)[:4000], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
