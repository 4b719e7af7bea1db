"""Generation speed and length control of the autoregressive cell transformer (cepc).

Usage (a model saved by ``calobench run`` or by ``model.save``)::

    OMP_NUM_THREADS=1 python benchmarks/studies/models_autoregressive.py MODEL_DIR \
        [--reference FILE] [--events 100] [--batch 100] [--json out.json]

Samples the conditions of the last ``--events`` reference showers (the part ``calobench run``
holds out when it splits at the end), times generation on the CPU (process time, ms per
shower at ``--batch``) and prints, generated against reference: cells per shower (mean, std),
E_tot / E_inc (mean, std), the mean number of cells per layer and the fraction of showers that
hit ``max_cells`` (the model did not stop by itself). Also times one teacher-forcing training
step on a batch of reference showers.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from calobench.allocator import keep_freed_memory


def summary(showers) -> dict:
    """Cell count, E_tot / E_inc and the mean cell count per layer of a point-cloud ShowerSet."""
    cl = showers.showers
    barrel = showers.geometry.barrel
    ratio = showers.total_energy() / showers.energies
    layers = barrel.layer_of(cl.cells[:, 0], cl.cells[:, 1])
    per_layer = np.bincount(layers, minlength=barrel.n_layers) / max(1, len(showers))
    return {"cells_mean": float(cl.counts.mean()), "cells_std": float(cl.counts.std()),
            "etot_over_einc_mean": float(ratio.mean()), "etot_over_einc_std": float(ratio.std()),
            "cells_per_layer": [round(float(x), 1) for x in per_layer]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--reference", default=None, help="reference file (default: the embedded cepc sample)")
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    keep_freed_memory()  # as calobench run and calobench time do (calobench/allocator.py)
    import torch

    import calobench
    from calobench.baselines.autoregressive.cell_transformer import CellTransformer

    model = CellTransformer.load(args.model_dir)
    ref = calobench.load(args.reference or "cepc", "cepc")
    ref = ref.slice(max(0, len(ref) - args.events), len(ref))
    ref = ref.take(np.arange(len(ref)))  # load the cells
    t0 = time.process_time()
    gen = model.sample(ref.energies, ref.conditions, batch_size=args.batch)
    ms = 1000.0 * (time.process_time() - t0) / len(ref)
    tokens, energies, theta, phi = model._encode_set(ref)
    index = np.arange(min(len(ref), int(model.config["batch_size"])))
    batch = model._batch(tokens, energies, theta, phi, index)
    model.net.train()
    t1 = time.process_time()
    model._losses(batch)["loss"].backward()
    step_s = time.process_time() - t1
    row = {"model_dir": args.model_dir, "events": len(ref), "batch": args.batch,
           "threads": torch.get_num_threads(), "parameters": model.parameter_count(),
           "cpu_ms_per_shower": ms, "train_step_cpu_s": step_s, "train_step_showers": len(index),
           "hit_max_cells_fraction": float(np.mean(gen.showers.counts >= int(model.config["max_cells"]))),
           "generated": summary(gen), "reference": summary(ref)}
    print(json.dumps(row, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=1)


if __name__ == "__main__":
    main()
