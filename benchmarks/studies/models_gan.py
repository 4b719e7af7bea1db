"""CPU generation throughput of the GAN family at batch 10000 (showers per second).

Usage: python benchmarks/studies/models_gan.py [--repeats 3] [--threads N] [--preset quick]
       [--default-malloc]
       python benchmarks/studies/models_gan.py --nnls-ablation [--seed 0] [--out runs/nnls-ablation]
         trains nnls-cgan (quick) on darkshine with and without the NNLS term through the
         runner (same split, same compare options, no leaderboard entry) and prints both rows.
       python benchmarks/studies/models_gan.py --bes3-batches [--threads N]
         bes3-gan showers/s and ms/shower at batch 1, 100 and 10000 (repeats x 200, 50 and 3
         timed ``sample`` calls of one batch), float32 and bfloat16.

Generation speed does not depend on the trained weights, so the models are timed freshly
initialised from their preset (same architecture as after training) on fake conditions
(calobench.timing.fake_inputs). Each figure is the mean and standard deviation over ``repeats``
timed calls of ``model.sample`` (which runs under torch.inference_mode) for 10000 showers at
batch 10000, after one warm-up call (calobench.timing.time_batch, wall time). Target for the 11x11
GANs: at least 100 000 showers/s on the 2-core CI CPU (seed 004 reports 50k BESIII showers in
~2 s on CPU).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from calobench.allocator import keep_freed_memory
from calobench.baselines.gan.bes3_gan import Bes3GAN
from calobench.baselines.gan.nnls_cgan import NNLSCGAN
from calobench.baselines.gan.wgan_gp import WGANGP
from calobench.models.base import Generator
from calobench.timing import TimingOptions, fake_inputs, time_batch

#: (model class, dataset, overrides); bes3-gan also with bfloat16 sampling convolutions
CASES = [(Bes3GAN, "bes3-11x11", {}), (Bes3GAN, "bes3-11x11", {"sampling_precision": "bfloat16"}),
         (WGANGP, "bes3-11x11", {}), (WGANGP, "stcf11x11", {}),
         (NNLSCGAN, "darkshine", {}), (WGANGP, "darkshine", {}), (WGANGP, "calochallenge-2", {})]


BATCH = 10000
#: timed calls per repeat of --bes3-batches at each batch size
BES3_CALLS = {1: 200, 100: 50, 10000: 3}


def timed(model: Generator, dataset: str, batch: int, calls: int) -> dict:
    """calobench.timing.time_batch of ``calls`` calls of ``batch`` showers after one warm-up call:
    {"ms_per_shower", "std", "repeats", "warmup"} (wall milliseconds per shower)."""
    energies, conditions = fake_inputs(dataset, batch)
    return time_batch(model, energies, conditions, batch, "cpu",
                      TimingOptions(warmup=1, repeats=calls, budget_s=math.inf))


def nnls_ablation(seed: int, out: str) -> None:
    """nnls-cgan with nnls_weight = 1 (default) and 0 (plain CGAN) on the darkshine split."""
    from calobench import load
    from calobench.runner import RunOptions, load_reference, run_benchmark, split_reference

    keys = ["auc_high", "auc_high_xgb", "fpd", "kpd", "sep_etot_einc", "w1_etot_einc", "sep_mean"]
    rows, looks = [], []
    # the NNLS variant is the preset itself and uses the run folder of `calobench run`, so that
    # `calobench run --model nnls-cgan --dataset darkshine --resume` can reuse its trained model
    variants = [("NNLS + CGAN", f"runs/darkshine/nnls-cgan-quick-seed{seed}", {}),
                ("plain CGAN (nnls_weight = 0)", f"{out}/nnls_weight-0", {"nnls_weight": 0.0})]
    for label, folder, overrides in variants:
        outcome = run_benchmark(RunOptions(model="nnls-cgan", dataset="darkshine", preset="quick", device="cpu",
                                           seed=seed, out=folder, leaderboard_dir=None, timing=False,
                                           progress=False, overrides=overrides, resume=True))
        m = outcome.result.metrics
        rows.append((label, {k: (m[k]["value"], m[k].get("std", float("nan"))) for k in keys if k in m}))
        last = (outcome.history.get("per_epoch") or [{}])[-1]
        looks.append((label, load(outcome.out / "generated.h5", dataset="darkshine"), last.get("nnls", float("nan"))))
    print("| variant | " + " | ".join(keys) + " |")
    print("| --- " * (len(keys) + 1) + "|")
    for label, vals in rows:
        cells = [f"{vals[k][0]:.4g} ± {vals[k][1]:.2g}" if k in vals else "-" for k in keys]
        print(f"| {label} | " + " | ".join(cells) + " |")
    # direct look at the generated test showers against the Geant4 test split
    test = split_reference(load_reference("darkshine"))[2]
    print("\n| | E_tot / E_inc mean | std | non-zero cells | mean fraction in layers 0-8 | final NNLS distance |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, showers, distance in [("Geant4", test, float("nan"))] + looks:
        s = np.asarray(showers.showers, np.float64)
        ratio = s.sum(1) / showers.energies
        layers = s.reshape(len(s), 11, -1).sum(2) / np.maximum(s.sum(1), 1e-12)[:, None]
        profile = " ".join(f"{v:.3f}" for v in layers.mean(0)[:9])
        print(f"| {label} | {ratio.mean():.4f} | {ratio.std():.4f} | {100 * (s > 0).mean():.2f} % | {profile} "
              f"| {distance:.3g} |")


def bes3_batches(repeats: int) -> None:
    """bes3-gan generation rate at batch 1, 100 and 10000 (``repeats`` x BES3_CALLS timed calls),
    with float32 and with bfloat16 sampling convolutions."""
    print(f"{'precision':>9s} {'batch':>6s} {'calls':>6s} {'showers/s':>11s} {'ms/shower':>10s} {'std':>8s}")
    for precision in ("float32", "bfloat16"):
        model = Bes3GAN("bes3-11x11", "quick", seed=0, sampling_precision=precision)
        for batch, calls in BES3_CALLS.items():
            t = timed(model, "bes3-11x11", batch, repeats * calls)
            print(f"{precision:>9s} {batch:6d} {t['repeats']:6d} {1000.0 / t['ms_per_shower']:11.0f} "
                  f"{t['ms_per_shower']:10.4f} {t['std']:8.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--nnls-ablation", action="store_true")
    parser.add_argument("--bes3-batches", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/nnls-ablation")
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's default malloc thresholds (see calobench/allocator.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    malloc = "glibc defaults" if args.default_malloc else f"keep_freed_memory: {keep_freed_memory()}"
    if args.nnls_ablation:
        nnls_ablation(args.seed, args.out)
        return
    if args.bes3_batches:
        print(f"torch {torch.__version__}, {args.threads} thread(s), malloc {malloc}")
        bes3_batches(args.repeats)
        return
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {BATCH}, {args.repeats} timed calls, "
          f"malloc {malloc}")
    print(f"{'model':16s} {'dataset':18s} {'params':>9s} {'showers/s':>11s} {'ms/shower':>10s} {'std':>8s}")
    for cls, name, overrides in CASES:
        model = cls(name, args.preset, seed=0, **overrides)
        label = cls.name + (" (bf16)" if overrides.get("sampling_precision") == "bfloat16" else "")
        t = timed(model, name, BATCH, args.repeats)
        print(f"{label:16s} {name:18s} {model.parameter_count():9d} {1000.0 / t['ms_per_shower']:11.0f} "
              f"{t['ms_per_shower']:10.4f} {t['std']:8.4f}")


if __name__ == "__main__":
    main()
