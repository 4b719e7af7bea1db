"""Notebook-style example: a calobench Result and a timing object as pandas DataFrames, and a plot.

Run as a script (``MPLBACKEND=Agg python docs/examples/pandas_example.py [OUTPUT_FOLDER]``) or
paste the cells into a notebook. It compares the two halves of the embedded stcf11x11
reference sample (Geant4 against Geant4: every metric should sit at its floor), times the
mean-shower baseline, and writes ``metrics.png`` and ``timing.png`` into OUTPUT_FOLDER
(default: the current folder). Takes about half a minute on one CPU thread.
"""

# %% imports
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; in a notebook, drop this line
import matplotlib.pyplot as plt
import numpy as np

import calobench

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
out.mkdir(parents=True, exist_ok=True)

# %% a Result: compare two halves of the embedded reference (small classifier settings, to be quick)
ref = calobench.load("stcf11x11")
first, second = ref.take(np.arange(0, 300)), ref.take(np.arange(300, 600))
result = calobench.compare(first, second, dataset="stcf11x11", repeats=1, cls_max_steps=200, cls_hidden=32,
                           xgb_estimators=50, progress=False)

# %% ... as a DataFrame: one row per metric (name, value, std, floor, within_floor, direction, stage, description)
metrics = result.to_pandas()
print(metrics[["name", "stage", "value", "std", "floor", "direction"]].head(10).to_string(index=False))

# filter like any DataFrame: the classifier AUCs (0.5 is best) and the separation powers (lower is better)
aucs = metrics[metrics["name"].str.startswith("auc_")]
seps = metrics[metrics["name"].str.startswith("sep_") & (metrics["name"] != "sep_mean")]
print(aucs[["name", "value", "floor", "within_floor"]].to_string(index=False))
print("metrics per stage:", metrics.groupby("stage").size().to_dict())

# %% plot: separation power of each feature against its Geant4-vs-Geant4 floor, and the AUCs
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
seps = seps.sort_values("value")
x = np.arange(len(seps))
left.errorbar(x, seps["value"], yerr=seps["std"], fmt="o", label="value (first vs second half)")
left.plot(x, seps["floor"], "_", markersize=12, label="floor (reference halves)")
left.set_xticks(x, seps["name"].str.removeprefix("sep_"), rotation=90, fontsize=7)
left.set_ylabel("separation power (lower is better)")
left.legend()
right.bar(aucs["name"], aucs["value"], yerr=aucs["std"].fillna(0.0))
right.axhline(0.5, color="k", linestyle="--", label="indistinguishable")
right.set_ylim(0.3, 1.0)
right.set_ylabel("classifier AUC (closer to 0.5 is better)")
right.tick_params(axis="x", rotation=45)
fig.tight_layout()
fig.savefig(out / "metrics.png", dpi=80)

# %% a timing object (calobench.timing.time_model; a leaderboard entry's "timing" has the same form)
from calobench.baselines.parametric.mean_shower import MeanShower
from calobench.timing import TimingOptions, time_model

model = MeanShower("stcf11x11", "quick", 0, "cpu")
model.prepare(first)
timing = time_model(model, second.energies, second.conditions, devices=["cpu"],
                    options=TimingOptions(batch_sizes=(1, 10, 100), repeats=3, budget_s=2.0))
times = calobench.Timing(timing).to_pandas()  # one row per device and batch size
print(times[["device", "batch_size", "ms_per_shower", "std", "showers_per_s", "speedup_vs_geant4"]].to_string(
    index=False))

fig, ax = plt.subplots(figsize=(5, 4))
for device, rows in times.groupby("device"):
    ax.errorbar(rows["batch_size"], rows["ms_per_shower"], yerr=rows["std"], fmt="o-", label=device)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("batch size")
ax.set_ylabel("ms per shower")
ax.legend()
fig.tight_layout()
fig.savefig(out / "timing.png", dpi=80)
print(f"wrote {out / 'metrics.png'} and {out / 'timing.png'}")
