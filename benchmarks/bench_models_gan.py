"""CPU generation throughput of the GAN family at batch 10000 (showers per second).

Usage: python benchmarks/bench_models_gan.py [--events 10000] [--repeats 3] [--threads N]
       [--preset quick] [--default-malloc]
       python benchmarks/bench_models_gan.py --nnls-ablation [--seed 0] [--out runs/nnls-ablation]
         trains nnls-cgan (quick) on darkshine with and without the NNLS term through the
         runner (same split, same compare options, no leaderboard entry) and prints both rows.
       python benchmarks/bench_models_gan.py --bes3-batches [--threads N]
         bes3-gan showers/s and ms/shower at batch 1, 100 and 10000 (``sample`` calls of one
         batch each: 200 x 1, 50 x 100, 3 x 10000; best of ``repeats``), float32 and bfloat16.

Generation speed does not depend on the trained weights, so the models are timed freshly
initialised from their preset (same architecture as after training). Each figure is the best
of ``repeats`` calls of ``model.sample`` (which runs under torch.inference_mode) for
``events`` showers at batch 10000, after one warm-up call. Target for the 11x11 GANs: at least
100 000 showers/s on the 2-core CI CPU (seed 004 reports 50k BESIII showers in ~2 s on CPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from calobench.allocator import keep_freed_memory
from calobench.datasets import PDG, get_dataset
from calobench.baselines.gan.bes3_gan import Bes3GAN
from calobench.baselines.gan.nnls_cgan import NNLSCGAN
from calobench.baselines.gan.wgan_gp import WGANGP

#: (model class, dataset, overrides); bes3-gan also with bfloat16 sampling convolutions
CASES = [(Bes3GAN, "bes3-11x11", {}), (Bes3GAN, "bes3-11x11", {"sampling_precision": "bfloat16"}),
         (WGANGP, "bes3-11x11", {}), (WGANGP, "stcf11x11", {}),
         (NNLSCGAN, "darkshine", {}), (WGANGP, "darkshine", {}), (WGANGP, "calochallenge-2", {})]


def conditions(name: str, energies: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    d = get_dataset(name)
    n = len(energies)
    out = {k: rng.normal(0.0, 1.0, n) for k in d.conditions}
    if "particle" in out:
        out["particle"] = rng.choice([PDG[p] for p in d.particles], n).astype(float)
    if name == "bes3-11x11":
        u = rng.normal(size=(n, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        out["px"], out["py"], out["pz"] = (u * energies[:, None]).T
        out["E"] = energies
    return out


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
    """bes3-gan generation rate at batch 1, 100 and 10000 (whole ``sample`` calls, best of
    ``repeats``), with float32 and with bfloat16 sampling convolutions."""
    rng = np.random.default_rng(0)
    lo, hi = get_dataset("bes3-11x11").energy_range
    print(f"{'precision':>9s} {'batch':>6s} {'calls':>6s} {'showers/s':>11s} {'ms/shower':>10s}")
    for precision in ("float32", "bfloat16"):
        model = Bes3GAN("bes3-11x11", "quick", seed=0, sampling_precision=precision)
        for batch, calls in ((1, 200), (100, 50), (10000, 3)):
            energies = np.exp(rng.uniform(np.log(lo), np.log(hi), batch))
            cond = conditions("bes3-11x11", energies, rng)
            model.sample(energies, cond, batch_size=batch)  # warm-up
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(calls):
                    model.sample(energies, cond, batch_size=batch)
                best = min(best, (time.perf_counter() - t0) / calls)
            print(f"{precision:>9s} {batch:6d} {calls:6d} {batch / best:11.0f} {1000.0 * best / batch:10.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10000)
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
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.events} showers per call, batch 10000, "
          f"malloc {malloc}")
    print(f"{'model':16s} {'dataset':18s} {'params':>9s} {'showers/s':>11s} {'ms/shower':>10s}")
    for cls, name, overrides in CASES:
        model = cls(name, args.preset, seed=0, **overrides)
        label = cls.name + (" (bf16)" if overrides.get("sampling_precision") == "bfloat16" else "")
        lo, hi = get_dataset(name).energy_range
        energies = np.exp(rng.uniform(np.log(lo), np.log(hi), args.events))
        cond = conditions(name, energies, rng)
        model.sample(energies[:1000], {k: v[:1000] for k, v in cond.items()}, batch_size=10000)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model.sample(energies, cond, batch_size=10000)
            best = min(best, time.perf_counter() - t0)
        rate = args.events / best
        print(f"{label:16s} {name:18s} {model.parameter_count():9d} {rate:11.0f} {1000.0 / rate:10.4f}")


if __name__ == "__main__":
    main()
