"""The figures behind metrics v2's acceptance tests (tests/test_metrics_v2.py), printed.

On the stcf11x11 and bes3-11x11 test splits (4000 Geant4 showers) against a disjoint Geant4
sample of the same size: auc_low of the mean shower, Geant4 against Geant4 with the floors, a
x1.02 energy scale, cells of 1e30; and on 10 000 vs 10 000 calochallenge-2-shaped showers with a
x1.05 energy scale, auc_high beside the AUC of E_tot / E_inc alone (scikit-learn).

    OMP_NUM_THREADS=1 python benchmarks/studies/metrics_v2_checks.py [--skip-calochallenge-2]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

import h5py
import numpy as np
from sklearn.metrics import roc_auc_score

import calobench
from calobench.baselines.parametric.mean_shower import MeanShower
from calobench.data.showerset import ShowerSet
from calobench.runner import split_reference

CLASSIFIERS = "cls-low,cls-high,cls-xgb"


def samples(dataset: str) -> tuple[ShowerSet, ShowerSet]:
    """(test split, a disjoint Geant4 sample of the same size from the training split)."""
    train, _, test = split_reference(calobench.load(dataset))
    return test, train.take(np.arange(len(test)))


def with_cells(ss: ShowerSet, cells: np.ndarray) -> ShowerSet:
    return ShowerSet(ss.geometry, ss.energies, cells, ss.conditions)


def show(label: str, result, names) -> None:
    for name in names:
        m = result.metrics[name]
        extra = f"  FAILED: {m['failed']}" if m.get("failed") else ""
        print(f"{label:28s} {name:13s} {m['value']:.4f} +- {m['std']:.4f}  floor {m.get('floor', float('nan')):.4f}{extra}",
              flush=True)


def small_datasets() -> None:
    for dataset in ("stcf11x11", "bes3-11x11"):
        test, other = samples(dataset)
        print(f"{dataset}: {len(test)} vs {len(other)} events", flush=True)
        model = MeanShower(dataset, "quick", 0, "cpu")
        model.fit(other, other, progress=False)
        mean = model.sample(test.energies, test.conditions)
        show(f"{dataset} mean shower", calobench.compare(mean, test, dataset=dataset, metrics="cls-low", repeats=1,
                                                       progress=False, cls_floors=False), ["auc_low"])
        show(f"{dataset} Geant4 vs Geant4", calobench.compare(other, test, dataset=dataset, metrics=CLASSIFIERS,
                                                            repeats=1, progress=False),
             ["auc_low", "auc_high", "auc_high_xgb"])
        scaled = with_cells(other, np.asarray(other.showers) * 1.02)
        show(f"{dataset} x1.02", calobench.compare(scaled, test, dataset=dataset, metrics="cls-high", repeats=2,
                                                 progress=False), ["auc_high"])
        cells = np.asarray(other.showers).copy()
        cells[cells > 0] = 1e30
        show(f"{dataset} cells of 1e30", calobench.compare(with_cells(other, cells), test, dataset=dataset,
                                                         metrics=CLASSIFIERS, repeats=1, progress=False,
                                                         cls_floors=False),
             ["auc_low", "auc_high", "auc_high_xgb"])


def calochallenge_2_scale() -> None:
    spec = importlib.util.spec_from_file_location("compare_memory", Path(__file__).resolve().parent / "compare_memory.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    with tempfile.TemporaryDirectory() as folder:
        ref_path, gen_path = Path(folder) / "ref.h5", Path(folder) / "gen.h5"
        study.write_file(ref_path, 10_000, 1)
        study.write_file(gen_path, 10_000, 2)
        with h5py.File(gen_path, "r+") as f:
            for lo in range(0, 10_000, 2000):
                f["showers"][lo:lo + 2000] = f["showers"][lo:lo + 2000] * 1.05
        result = calobench.compare(gen_path, ref_path, dataset="calochallenge-2", metrics="hist,cls-high",
                                   repeats=1, progress=False)
        ratio = {name: np.concatenate([np.asarray(c.showers).sum(axis=1) / c.energies
                                       for c in calobench.load(p, "calochallenge-2").iter_chunks(2000)])
                 for name, p in (("gen", gen_path), ("ref", ref_path))}
    single = roc_auc_score(np.r_[np.zeros(10_000), np.ones(10_000)], np.r_[ratio["gen"], ratio["ref"]])
    single = max(single, 1 - single)
    show("calochallenge-2 x1.05", result, ["auc_high", "sep_etot_einc"])
    print(f"{'calochallenge-2 x1.05':28s} E_tot/E_inc alone (roc_auc_score) {single:.4f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-calochallenge-2", action="store_true")
    args = p.parse_args()
    small_datasets()
    if not args.skip_calochallenge_2:
        calochallenge_2_scale()


if __name__ == "__main__":
    main()
