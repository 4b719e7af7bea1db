"""The ``resolution`` stage: energy response and resolution versus incident energy.

In bins of incident energy the response is the mean of E_tot / E_inc and the width its
standard deviation; the relative resolution sigma/E = width / mean is fitted with
sigma/E = a / sqrt(E) (+) b (+) c / E (quadrature sum, E in GeV, a in sqrt(GeV), c in GeV).
ResponseStates are mergeable per-bin sums. The stage keeps E_inc and E_tot / E_inc per event
(16 bytes an event) and fills one state per sample in ``compute``, in event order: per-chunk sums
added in another order would move the fit (whose errors are sensitive at a bound) with the chunking.
"""

from __future__ import annotations

import numpy as np

from calobench.metrics.result import Result
from calobench.metrics.stage import GENERATED, REFERENCE, Chunk, EventRows, Stage
from calobench.metrics.display import per_energy_histograms


def energy_bins(energies: np.ndarray, n_bins: int = 8) -> np.ndarray:
    """Edges in MeV: one bin per value when the reference has at most 20 discrete energies,
    otherwise n_bins log-spaced bins over its range."""
    e = np.asarray(energies, dtype=np.float64)
    values = np.unique(e)
    if len(values) <= 20:
        if len(values) == 1:
            return np.array([values[0] * 0.999, values[0] * 1.001])
        mids = np.sqrt(values[1:] * values[:-1])
        return np.concatenate([[values[0] * 0.999], mids, [values[-1] * 1.001]])
    lo, hi = e.min(), e.max()
    return np.logspace(np.log10(lo), np.log10(hi * 1.000001), n_bins + 1)


class ResponseState:
    """Per-bin count, sum and sum of squares of E_tot / E_inc and sum of E_inc."""

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.sums = np.zeros((4, len(self.edges) - 1))

    def update(self, einc: np.ndarray, ratio: np.ndarray) -> None:
        """Add events: incident energies (n,) MeV and their E_tot / E_inc (n,)."""
        nb = len(self.edges) - 1
        idx = np.searchsorted(self.edges, einc, side="right") - 1
        ok = (idx >= 0) & (idx < nb) & np.isfinite(ratio)
        idx, r, e = idx[ok], ratio[ok], einc[ok]
        for k, w in enumerate((np.ones_like(r), r, r * r, e)):
            self.sums[k] += np.bincount(idx, weights=w, minlength=nb)

    def merge(self, other: "ResponseState") -> "ResponseState":
        """Add the sums of a state with the same bins (in place; returns self)."""
        self.sums += other.sums
        return self

    def compute(self) -> dict[str, np.ndarray]:
        """energy (mean E_inc, MeV), mean, mean_err, width, width_err, rel (width/mean), rel_err, n."""
        n, s, ss, se = self.sums
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / n
            width = np.sqrt(np.clip(ss / n - mean ** 2, 0.0, None) * n / np.maximum(n - 1, 1))
            mean_err = width / np.sqrt(n)
            width_err = width / np.sqrt(2.0 * np.maximum(n - 1, 1))
            rel = width / mean
            rel_err = rel * np.sqrt((width_err / width) ** 2 + (mean_err / mean) ** 2)
        return {"energy": se / np.maximum(n, 1), "mean": mean, "mean_err": mean_err, "width": width,
                "width_err": width_err, "rel": rel, "rel_err": rel_err, "n": n}


def resolution_model(e_gev: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return np.sqrt((a / np.sqrt(e_gev)) ** 2 + b ** 2 + (c / e_gev) ** 2)


def fit_resolution(energy_mev: np.ndarray, rel: np.ndarray, rel_err: np.ndarray,
                   with_noise: bool = True) -> dict[str, float]:
    """Fit sigma/E = a/sqrt(E) (+) b (+) c/E; returns a, b, c and their errors (c = 0 when
    ``with_noise`` is False or fewer than 4 bins are usable)."""
    e = np.asarray(energy_mev) / 1e3
    ok = np.isfinite(rel) & np.isfinite(rel_err) & (rel_err > 0)
    e, y, s = e[ok], np.asarray(rel)[ok], np.asarray(rel_err)[ok]
    nan = {k: float("nan") for k in ("a", "a_err", "b", "b_err", "c", "c_err")}
    if len(e) < 2:
        return nan
    use_c = with_noise and len(e) >= 4
    f = (lambda x, a, b, c: resolution_model(x, a, b, c)) if use_c else (lambda x, a, b: resolution_model(x, a, b, 0.0))
    p0 = [max(y[0] * np.sqrt(e[0]), 1e-3), max(y[-1] * 0.5, 1e-4)] + ([1e-3] if use_c else [])
    from scipy.optimize import curve_fit  # imported here: scipy.optimize costs 0.1 s of every process's start

    try:
        p, cov = curve_fit(f, e, y, p0=p0, sigma=s, absolute_sigma=True, bounds=(0, np.inf), maxfev=20000)
    except (RuntimeError, ValueError):
        return nan
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    out = {"a": p[0], "a_err": err[0], "b": p[1], "b_err": err[1],
           "c": p[2] if use_c else 0.0, "c_err": err[2] if use_c else 0.0}
    return {k: float(v) for k, v in out.items()}


def unreliable_fit(metric: dict, parameter: str) -> str:
    """Why a fitted resolution term (value, std) cannot be read ("" when it can): the fit
    failed, or its uncertainty exceeds the fitted value (a term the data do not constrain)."""
    value, std = metric["value"], metric["std"]
    if not (np.isfinite(value) and np.isfinite(std)):
        return "fit did not converge"
    if parameter == "c" and value == 0.0 and std == 0.0:
        return ""  # the noise term was not fitted (fewer than 4 energy bins)
    if std > abs(value):
        return f"fit uncertainty {std:.3g} exceeds the value {value:.3g}"
    if std == 0.0:
        return f"fit gives no uncertainty for the value {value:.3g} (the term sits at its bound 0)"
    return ""


class ResolutionStage(Stage):
    """``resolution``: ``resolution_{a,b,c}_{gen,ref,diff}`` (fit errors as std, in quadrature for
    diff), ``response_max_diff`` and ``resolution_max_diff`` (the largest per-bin difference of the
    mean of E_tot / E_inc and of sigma / E). edges: bins of E_inc in MeV (``energy_bins`` of the
    reference energies); column: index of etot_einc in the feature table."""

    name = "resolution"

    def __init__(self, edges: np.ndarray, column: int) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.column = column
        self.rows = EventRows()

    def update(self, chunk: Chunk) -> None:
        self.rows.add(chunk, np.stack([chunk.events.energies.astype(np.float64), chunk.features[:, self.column]],
                                      axis=1))

    def merge(self, other: "ResolutionStage") -> "ResolutionStage":
        self.rows.merge(other.rows)
        return self

    def compute(self) -> Result:
        result = Result()
        fits = {}
        for sample, label in ((GENERATED, "gen"), (REFERENCE, "ref")):
            rows = self.rows.array(sample)
            state = ResponseState(self.edges)
            state.update(rows[:, 0], rows[:, 1])
            resp = state.compute()
            result.response[label] = resp
            fits[label] = fit_resolution(resp["energy"], resp["rel"], resp["rel_err"])
        g, r = fits["gen"], fits["ref"]
        for p in ("a", "b", "c"):
            result.add(f"resolution_{p}_gen", g[p], g[f"{p}_err"])
            result.add(f"resolution_{p}_ref", r[p], r[f"{p}_err"])
            result.add(f"resolution_{p}_diff", g[p] - r[p], float(np.hypot(g[f"{p}_err"], r[f"{p}_err"])))
            # a difference is unreliable when either fit is (it may well be small against its error)
            reasons = {label: unreliable_fit(result.metrics[f"resolution_{p}_{label}"], p) for label in ("gen", "ref")}
            for label, reason in reasons.items():
                if reason:
                    result.metrics[f"resolution_{p}_{label}"]["unreliable"] = reason
            if any(reasons.values()):
                result.metrics[f"resolution_{p}_diff"]["unreliable"] = "; ".join(
                    f"{label}: {reason}" for label, reason in reasons.items() if reason)
        rg, rr = result.response["gen"], result.response["ref"]
        ok = (rg["n"] > 1) & (rr["n"] > 1)
        if ok.any():
            dm = (rg["mean"] - rr["mean"])[ok]
            em = np.hypot(rg["mean_err"], rr["mean_err"])[ok]
            k = int(np.argmax(np.abs(dm)))
            result.add("response_max_diff", float(dm[k]), float(em[k]))
            dw = (rg["rel"] - rr["rel"])[ok]
            ew = np.hypot(rg["rel_err"], rr["rel_err"])[ok]
            k = int(np.argmax(np.abs(dw)))
            result.add("resolution_max_diff", float(dw[k]), float(ew[k]))
        result.response["per_energy"] = per_energy_histograms(self.rows.array(GENERATED), self.rows.array(REFERENCE))
        result.info = {"resolution_bins_MeV": self.edges, "stages": {self.name: {
            "holds": f"E_inc and E_tot / E_inc per event, {self.rows.nbytes / 1e6:.1f} MB"}}}
        return result
