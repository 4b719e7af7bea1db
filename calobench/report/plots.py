"""Plots of a comparison in the HEP style (mplhep), drawn with the Agg backend.

Each function returns a matplotlib Figure; the caller saves and closes it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402

GEN_STYLE = {"color": "tab:red", "label": "generated"}
REF_STYLE = {"color": "black", "label": "reference"}


def use_style() -> None:
    plt.style.use(mplhep.style.CMS)
    plt.rcParams.update({"font.size": 13, "figure.dpi": 80})


def feature_histogram(name: str, edges: np.ndarray, gen: np.ndarray, ref: np.ndarray, sep: float | None = None,
                      log_x: bool | None = None, outside: dict | None = None):
    """Normalised histograms of one feature with the generated / reference ratio below.

    edges (nbins + 1,), gen / ref (nbins,) counts. log_x: None decides from the edges.
    outside: {"generated_underflow": n, "generated_overflow": n, "reference_...": n}, entries
    beyond the edges, written on the plot (never folded into the edge bins).
    """
    from calobench.metrics.features.labels import axis_label

    fig, (ax, rax) = plt.subplots(2, 1, figsize=(6.5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    total_g = gen.sum() + sum((outside or {}).get(f"generated_{k}", 0) for k in ("underflow", "overflow"))
    total_r = ref.sum() + sum((outside or {}).get(f"reference_{k}", 0) for k in ("underflow", "overflow"))
    g = gen / max(total_g, 1e-300)
    r = ref / max(total_r, 1e-300)
    mplhep.histplot(r, edges, ax=ax, histtype="fill", alpha=0.25, **REF_STYLE)
    mplhep.histplot(g, edges, ax=ax, histtype="step", lw=2, **GEN_STYLE)
    ax.set_ylabel("fraction of entries")
    if log_x is None:
        log_x = bool(np.all(edges > 0) and edges[-1] / edges[0] > 100)
    if log_x:
        ax.set_xscale("log")
    if (r > 0).sum() > 2 and r[r > 0].max() / r[r > 0].min() > 1e3:
        ax.set_yscale("log")
    title = name if sep is None else f"{name}  (separation power {sep:.3g})"
    ax.set_title(title, fontsize=12)
    ax.legend(fontsize=11)
    if outside and any(outside.values()):
        text = "\n".join(f"{side}: gen {outside.get(f'generated_{side}', 0)}, ref {outside.get(f'reference_{side}', 0)}"
                         for side in ("underflow", "overflow") if outside.get(f"generated_{side}", 0)
                         or outside.get(f"reference_{side}", 0))
        ax.text(0.02, 0.97, text, transform=ax.transAxes, fontsize=9, va="top")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(r > 0, g / r, np.nan)
        err = np.where((gen > 0) & (ref > 0), ratio * np.sqrt(1 / np.maximum(gen, 1) + 1 / np.maximum(ref, 1)), np.nan)
    centres = np.sqrt(edges[1:] * edges[:-1]) if log_x else 0.5 * (edges[1:] + edges[:-1])
    rax.errorbar(centres, ratio, yerr=err, fmt="o", ms=3, color="tab:red")
    rax.axhline(1.0, color="black", lw=1)
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("gen / ref")
    rax.set_xlabel(axis_label(name))
    fig.tight_layout()
    return fig


def average_showers(geometry, gen_mean: np.ndarray, ref_mean: np.ndarray):
    """Average shower of both samples: longitudinal profile and an image (grid: summed over
    depth, y vs x; cylindrical: summed over alpha, layer vs r bin)."""
    slices = geometry.layer_slices
    profile = len(slices) > 1  # a one-layer readout has no longitudinal profile to draw
    fig, axes = plt.subplots(1, 3 if profile else 2, figsize=(16 if profile else 11, 5))
    if profile:
        lg = np.array([gen_mean[s].sum() for s in slices])
        lr = np.array([ref_mean[s].sum() for s in slices])
        x = np.arange(len(slices))
        axes[0].step(x, lr, where="mid", **REF_STYLE)
        axes[0].step(x, lg, where="mid", **GEN_STYLE)
        axes[0].set_xlabel("layer")
        axes[0].set_ylabel("mean energy per layer [MeV]")
        axes[0].legend(fontsize=11)
    image_axes = axes[1:] if profile else axes
    if geometry.kind == "grid":
        shape = geometry.shape
        images = [m.reshape(shape).sum(axis=0) for m in (ref_mean, gen_mean)]
        labels = ("x cell", "y cell")
    else:
        n_r = max(b.n_r for b in geometry.layers)
        images = []
        for m in (ref_mean, gen_mean):
            img = np.full((len(slices), n_r), np.nan)
            for k, (s, b) in enumerate(zip(slices, geometry.layers)):
                img[k, :b.n_r] = m[s].reshape(b.n_alpha, b.n_r).sum(axis=0)
            images.append(img)
        labels = ("r bin", "layer")
    vmax = np.nanmax(images[0]) if np.isfinite(np.nanmax(images[0])) else 1.0
    vmin = max(vmax * 1e-5, 1e-6)
    from matplotlib.colors import LogNorm

    for ax, img, title in zip(image_axes, images, ("reference", "generated")):
        im = ax.imshow(np.clip(img, vmin, None), origin="lower", aspect="auto", norm=LogNorm(vmin=vmin, vmax=vmax))
        ax.set_title(f"average shower, {title}", fontsize=12)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        fig.colorbar(im, ax=ax, label="MeV")
    fig.tight_layout()
    return fig


def response_resolution(response: dict, fits: dict):
    """Mean E_tot/E_inc and sigma/E versus incident energy with the fitted curves."""
    from calobench.metrics.resolution import resolution_model

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for label, style in (("ref", REF_STYLE), ("gen", GEN_STYLE)):
        r = response[label]
        ok = r["n"] > 1
        e = r["energy"][ok] / 1e3
        axes[0].errorbar(e, r["mean"][ok], yerr=r["mean_err"][ok], fmt="o", **style)
        axes[1].errorbar(e, r["rel"][ok], yerr=r["rel_err"][ok], fmt="o", **style)
        f = fits.get(label)
        if f and np.isfinite(f["a"]) and ok.any():
            grid = np.logspace(np.log10(e.min()), np.log10(e.max()), 100)
            axes[1].plot(grid, resolution_model(grid, f["a"], f["b"], f["c"]), color=style["color"], lw=1,
                         label=f"a={f['a']:.3g}, b={f['b']:.3g}, c={f['c']:.3g}")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(r"$E_{inc}$ [GeV]")
        ax.legend(fontsize=10)
    axes[0].set_ylabel(r"$\langle E_{tot}/E_{inc} \rangle$")
    axes[1].set_ylabel(r"$\sigma/E$")
    fig.tight_layout()
    return fig


def per_energy(views: list[dict], name: str = "etot_einc"):
    """One panel per incident-energy bin: normalised histograms of ``name`` of both samples.
    views: calobench.metrics.resolution.per_energy_histograms items."""
    from calobench.metrics.features.labels import axis_label

    shown = [v for v in views if v["histograms"] is not None]
    cols = min(3, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, view in zip(axes.flat, shown):
        h = view["histograms"]
        total = {label: h[label].sum() + h[f"{label}_underflow"] + h[f"{label}_overflow"]
                 for label in ("generated", "reference")}
        mplhep.histplot(h["reference"] / max(total["reference"], 1), h["edges"], ax=ax, histtype="fill", alpha=0.25,
                        **REF_STYLE)
        mplhep.histplot(h["generated"] / max(total["generated"], 1), h["edges"], ax=ax, histtype="step", lw=2,
                        **GEN_STYLE)
        lo, hi = view["range_MeV"]
        ax.set_title(f"E_inc {lo / 1e3:.3g}-{hi / 1e3:.3g} GeV", fontsize=11)
        ax.set_xlabel(axis_label(name), fontsize=11)
        ax.set_ylabel("fraction of entries", fontsize=11)
    axes.flat[0].legend(fontsize=10)
    fig.tight_layout()
    return fig
