"""CPU generation throughput of the ``vae`` and ``flow`` models at batch 10000.

Builds each model (preset ``quick`` by default, or loads saved models given with --model-dir),
fits it for one epoch on a small synthetic sample when it is not a saved model (throughput
does not depend on the weights' values, only on the architecture), then times
``sample(energies, conditions, batch_size=10000)`` (which runs under torch.inference_mode) on
fake conditions (calobench.timing.fake_inputs) with calobench.timing.time_batch: one warm-up
call, then --repeat timed calls; prints the mean and standard deviation of the wall ms per shower.

usage: python benchmarks/studies/models_vae_flow.py [--preset quick] [--threads 1] [--repeat 3]
       [--case vae:stcf11x11 --case flow:calochallenge-1-photons ...] [--model-dir DIR ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from calobench.allocator import keep_freed_memory
from calobench.baselines.vae_flow.flow import CaloFlow
from calobench.baselines.vae_flow.vae import ConditionalVAE
from calobench.data.showerset import ShowerSet
from calobench.datasets import get_dataset
from calobench.models.base import Generator
from calobench.timing import TimingOptions, fake_inputs, time_batch

MODELS = {"vae": ConditionalVAE, "flow": CaloFlow}
DEFAULT_CASES = ["vae:stcf11x11", "vae:calochallenge-2", "flow:stcf11x11", "flow:bes3-11x11",
                 "flow:calochallenge-1-photons"]
BATCH = 10000


def warm_fit(model: Generator, name: str) -> None:
    """One epoch on 256 exponential-profile showers (MeV) so that the preprocessing constants exist."""
    ds = get_dataset(name)
    geometry = ds.geometry
    energies, conditions = fake_inputs(name, 256, 1)
    radius = np.hypot(geometry.centres[:, 0], geometry.centres[:, 1])
    profile = np.exp(-radius / 20.0)
    rng = np.random.default_rng(2)
    showers = rng.exponential(profile[None] / profile.sum() * energies[:, None] * 0.9).astype(np.float32)
    showers[showers < geometry.threshold] = 0.0
    model.fit(ShowerSet(geometry, energies, showers, conditions, ds.particles[0]), epochs=1, progress=False)


def timed(model: Generator, repeat: int) -> dict:
    """One row: model, dataset, preset, parameters, batch, threads, ms_per_shower and std (wall ms)."""
    energies, conditions = fake_inputs(model.dataset.name, BATCH, 3)
    t = time_batch(model, energies, conditions, BATCH, "cpu",
                   TimingOptions(warmup=1, repeats=repeat, budget_s=math.inf))
    return {"model": model.name, "dataset": model.dataset.name, "preset": model.preset,
            "parameters": model.parameter_count(), "batch": BATCH, "threads": torch.get_num_threads(),
            "ms_per_shower": t["ms_per_shower"], "std": t["std"], "repeats": t["repeats"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", action="append", help="model:dataset (default: the main cases)")
    parser.add_argument("--model-dir", action="append", default=[], help="a saved vae or flow model")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as calobench run and calobench time do (calobench/allocator.py)
    results = []
    for directory in args.model_dir:
        info = json.loads((Path(directory) / "config.json").read_text())
        model = MODELS[info["model"]].load(directory)
        results.append(timed(model, args.repeat))
        print(results[-1], flush=True)
    for case in ([] if args.model_dir and not args.case else (args.case or DEFAULT_CASES)):
        model_name, name = case.split(":")
        model = MODELS[model_name](name, args.preset, seed=0)
        warm_fit(model, name)
        results.append(timed(model, args.repeat))
        print(results[-1], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
