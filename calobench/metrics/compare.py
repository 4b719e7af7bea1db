"""compare(generated, reference) -> Result: every metric of calobench in one call.

Stages (``metrics`` selects them; default all):
  hist        features and one-dimensional distances (sep, chi2, js, w1) per feature, streamed
  resolution  energy response and resolution fit
  fpd         FPD and KPD on the high-level vector (jetnet 0.2.5 definitions)
  prdc        precision, recall, density, coverage (k = 5) on a bounded subsample
  cls-high    DNN classifier on the high-level vector, repeated ``repeats`` times
  cls-xgb     gradient-boosted trees (xgboost) on the high-level vector, repeated
  cls-low     DNN classifier on cells / E_inc, streamed from the samples block by block

Memory: the feature pass reads ``chunk_size`` events at a time and keeps per event only the
feature table (events x features float64); cell spectra go into fixed-size histograms.
The multivariate stages hold the high-level vectors; cls-low holds two read blocks.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from calobench.errors import CalobenchError
from calobench.data.geometry import POINTCLOUD
from calobench.data.showerset import ShowerSet
from calobench.metrics import binning
from calobench.metrics.classifier import ClassifierOptions, Source, dnn_test, xgb_test
from calobench.metrics.distances import distances
from calobench.metrics.features import FeatureExtractor
from calobench.metrics.histogram import HistogramState, poisson_weights
from calobench.metrics.multivariate import fpd as fpd_fn
from calobench.metrics.multivariate import kpd as kpd_fn
from calobench.metrics.multivariate import prdc as prdc_fn
from calobench.metrics.resolution import ResponseState, energy_bins, fit_resolution
from calobench.metrics.result import Result

STAGES = ("hist", "resolution", "fpd", "prdc", "cls-high", "cls-xgb", "cls-low")
GEN, REF = 0, 1


def _as_showerset(obj, dataset: str | None, what: str) -> ShowerSet:
    if isinstance(obj, ShowerSet):
        return obj
    if isinstance(obj, (str, Path)):
        from calobench import load

        return load(obj, dataset)
    raise CalobenchError(f"{what}: expected a ShowerSet or a file path, found {type(obj).__name__}")


def _check_energies(ss: ShowerSet, what: str, n: int) -> None:
    e = ss.energies[:n]
    if n == 0:
        raise CalobenchError(f"{what}: no events")
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise CalobenchError(f"{what}: incident_energies: expected finite positive energies (MeV)")


class _Log:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def compare(
    generated,
    reference,
    *,
    dataset: str | None = None,
    metrics: list[str] | str | None = None,
    repeats: int = 3,
    seed: int = 0,
    json_path: str | Path | None = None,
    report_dir: str | Path | None = None,
    progress: bool = True,
    max_events: int | None = None,
    chunk_size: int | None = None,
    replicas: int = 20,
    cls_epochs: int = 50,
    cls_patience: int | None = 5,
    cls_hidden: int = 512,
    cls_layers: int = 2,
    cls_batch_size: int = 1000,
    cls_lr: float = 2e-4,
    cls_max_events: int | None = None,
    xgb_estimators: int = 400,
    prdc_max_events: int = 10_000,
    fpd_min_samples: int = 10_000,
    fpd_max_samples: int = 50_000,
    kpd_batch_size: int = 10_000,
) -> Result:
    """Evaluate ``generated`` against ``reference`` (ShowerSets or HDF5 paths) -> Result.

    metrics: stage names (see module docstring) as a list or comma-separated string.
    repeats: classifier repetitions (mean and std reported). seed: every random choice.
    max_events: use the first N events of each sample. chunk_size: events per read (default
    about 64 MB of showers). replicas: Poisson-bootstrap replicas of the 1-d distances.
    cls_*: classifier options (cheap settings for quick runs: cls_epochs=3, cls_max_events=2000).
    json_path / report_dir: also write the JSON result / the HTML report there.
    """
    options = dict(locals())
    from threadpoolctl import threadpool_limits

    # numpy's BLAS works on small matrices here; its thread pool only costs time (and far more
    # on a shared machine, where idle BLAS threads spin), so it runs single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        return _compare(**options)


def _compare(generated, reference, *, dataset, metrics, repeats, seed, json_path, report_dir, progress,
             max_events, chunk_size, replicas, cls_epochs, cls_patience, cls_hidden, cls_layers,
             cls_batch_size, cls_lr, cls_max_events, xgb_estimators, prdc_max_events, fpd_min_samples,
             fpd_max_samples, kpd_batch_size) -> Result:
    log = _Log(progress)
    stages = _parse_stages(metrics)
    gen = _as_showerset(generated, dataset, "generated")
    ref = _as_showerset(reference, dataset, "reference")
    if gen.geometry.name != ref.geometry.name:
        raise CalobenchError(f"generated showers are {gen.geometry.name}, reference showers are "
                             f"{ref.geometry.name}: compare needs the same geometry")
    geometry = ref.geometry
    n_gen = len(gen) if max_events is None else min(len(gen), max_events)
    n_ref = len(ref) if max_events is None else min(len(ref), max_events)
    _check_energies(gen, "generated", n_gen)
    _check_energies(ref, "reference", n_ref)
    conditions = tuple(c for c in ref.conditions if c in gen.conditions)
    fx = FeatureExtractor(geometry, conditions)
    if chunk_size is None:
        cells = geometry.n_cells or 2000
        chunk_size = max(256, (64 << 20) // (4 * cells))
    result = Result()
    result.info = {"geometry": geometry.name, "events": {"generated": n_gen, "reference": n_ref},
                   "stages": {}, "seed": seed, "repeats": repeats, "chunk_size": chunk_size,
                   "features": fx.names, "hlf": fx.hlf_names, "conditions": list(conditions), "notes": []}
    samples = {GEN: (gen, n_gen), REF: (ref, n_ref)}

    # ---- feature pass ------------------------------------------------------------------
    t0 = time.perf_counter()
    tables, spectra_max, sums = {}, {}, {}
    spectra_states = {GEN: {}, REF: {}}
    spectrum_edges = None

    def feature_pass(sample: int, fill_tables: bool, edges: dict | None) -> None:
        ss, n = samples[sample]
        parts = []
        total = np.zeros(geometry.n_cells) if geometry.is_voxel else None
        for start in range(0, n, chunk_size):
            chunk = ss.slice(start, min(start + chunk_size, n))
            if fill_tables:
                parts.append(fx.compute(chunk))
                if total is not None:
                    total += np.asarray(chunk.showers, dtype=np.float64).sum(axis=0)
            if "hist" in stages:
                spec = fx.cell_spectra(chunk)
                if edges is None:
                    for name, (values, _, _) in spec.items():
                        if len(values):
                            spectra_max[name] = max(spectra_max.get(name, 0.0), float(values.max()))
                else:
                    boot = poisson_weights(seed, 100 + sample, start, start + len(chunk), replicas)
                    for name, (values, weights, ev) in spec.items():
                        state = spectra_states[sample].setdefault(name, HistogramState(edges[name], replicas))
                        state.update(values, ev, boot, weights, first_event=start)
        if fill_tables:
            tables[sample] = np.concatenate(parts)
            if total is not None:
                sums[sample] = total / max(n, 1)

    log(f"features: reference ({n_ref} events, chunks of {chunk_size})")
    feature_pass(REF, True, None)
    if "hist" in stages:
        spectrum_edges = {name: binning.spectrum_edges(geometry, name, spectra_max.get(name, 1.0))
                          for name in fx.spectra}
    log(f"features: generated ({n_gen} events)")
    feature_pass(GEN, True, spectrum_edges)
    if "hist" in stages:
        log("spectra: reference")
        feature_pass(REF, False, spectrum_edges)
    result.averages = {"generated": sums.get(GEN), "reference": sums.get(REF)}
    table_bytes = sum(t.nbytes for t in tables.values())
    result.info["stages"]["features"] = {"seconds": time.perf_counter() - t0,
                                         "holds": f"feature tables, {table_bytes / 1e6:.1f} MB"}

    # ---- one-dimensional distances -----------------------------------------------------------
    if "hist" in stages:
        t0 = time.perf_counter()
        log("one-dimensional distances")
        states = {}
        step = 65536
        boots = {sample: [poisson_weights(seed, sample, lo, min(lo + step, len(tables[sample])), replicas)
                          for lo in range(0, len(tables[sample]), step)] for sample in (GEN, REF)}
        for name, index in fx.index.items():
            column_ref = tables[REF][:, index]
            edges = binning.challenge_edges(geometry, name, float(np.max(column_ref)))
            clip = edges is None
            if edges is None:
                edges = binning.quantile_edges(column_ref)
            pair = []
            for sample in (GEN, REF):
                state = HistogramState(edges, replicas, clip=clip)
                col = tables[sample][:, index]
                for k, start in enumerate(range(0, len(col), step)):
                    state.update_events(col[start:start + step], boots[sample][k], first_event=start)
                pair.append(state)
            states[name] = pair
        for name in fx.spectra:
            states[name] = [spectra_states[GEN][name], spectra_states[REF][name]]
        seps = []
        for name, (g, r) in states.items():
            for kind, d in distances(g, r).items():
                result.add(f"{kind}_{name}", d["value"], d["std"], d["floor"])
            seps.append(result.value(f"sep_{name}"))
            result.histograms[name] = {"edges": r.edges, "generated": g.nominal.copy(),
                                       "reference": r.nominal.copy()}
        result.add("sep_mean", float(np.nanmean(seps)),
                   float(np.sqrt(np.nansum([result.metrics[f"sep_{n}"]["std"] ** 2 for n in states])) / len(states)),
                   float(np.nanmean([result.metrics[f"sep_{n}"]["floor"] for n in states])))
        result.info["stages"]["hist"] = {"seconds": time.perf_counter() - t0,
                                         "holds": f"{len(states)} histograms x {replicas + 3} rows"}

    # ---- energy response and resolution ---------------------------------------------------------
    if "resolution" in stages:
        t0 = time.perf_counter()
        edges = energy_bins(ref.energies[:n_ref])
        fits = {}
        for sample, label in ((GEN, "gen"), (REF, "ref")):
            state = ResponseState(edges)
            state.update(samples[sample][0].energies[:samples[sample][1]].astype(np.float64),
                         tables[sample][:, fx.index["etot_einc"]])
            resp = state.compute()
            result.response[label] = resp
            fits[label] = fit_resolution(resp["energy"], resp["rel"], resp["rel_err"])
        for p in ("a", "b", "c"):
            g, r = fits["gen"], fits["ref"]
            result.add(f"resolution_{p}_gen", g[p], g[f"{p}_err"])
            result.add(f"resolution_{p}_ref", r[p], r[f"{p}_err"])
            result.add(f"resolution_{p}_diff", g[p] - r[p], float(np.hypot(g[f"{p}_err"], r[f"{p}_err"])))
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
        result.info["resolution_bins_MeV"] = edges
        result.info["stages"]["resolution"] = {"seconds": time.perf_counter() - t0, "holds": "per-bin sums"}

    # ---- high-level vectors ----------------------------------------------------------------------
    hlf = {}
    if stages & {"fpd", "prdc", "cls-high", "cls-xgb"}:
        for sample in (GEN, REF):
            ss, n = samples[sample]
            cond = ss.condition_matrix(list(conditions))[:n] if conditions else None
            hlf[sample] = fx.hlf(tables[sample], ss.energies[:n], cond)
            if not np.all(np.isfinite(hlf[sample])):
                raise CalobenchError(f"{'generated' if sample == GEN else 'reference'}: high-level features "
                                     f"are not finite (check for negative cell energies)")
    hlf_mb = sum(h.nbytes for h in hlf.values()) / 1e6

    if "fpd" in stages:
        t0 = time.perf_counter()
        n_min = min(len(hlf[GEN]), len(hlf[REF]))
        lo, hi = min(fpd_min_samples, n_min), min(fpd_max_samples, n_min)
        log(f"FPD (batches {lo}..{hi}) and KPD (batch {min(kpd_batch_size, n_min)})")
        v, e = fpd_fn(hlf[REF], hlf[GEN], min_samples=lo, max_samples=max(hi, lo), seed=seed)
        result.add("fpd", v, e)
        v, e = kpd_fn(hlf[REF], hlf[GEN], batch_size=min(kpd_batch_size, n_min), seed=seed)
        half = n_ref // 2
        if half >= 50:
            floor, _ = kpd_fn(hlf[REF][0::2], hlf[REF][1::2], batch_size=min(kpd_batch_size, half), seed=seed,
                              num_batches=5)
            result.add("kpd", v, e, floor)
        else:
            result.add("kpd", v, e)
        result.info["stages"]["fpd"] = {"seconds": time.perf_counter() - t0,
                                        "holds": f"high-level vectors, {hlf_mb:.1f} MB"}

    if "prdc" in stages:
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, 3])
        pick = lambda x: x[np.sort(rng.permutation(len(x))[:prdc_max_events])]  # noqa: E731
        r, g = pick(hlf[REF]), pick(hlf[GEN])
        mu, sd = r.mean(axis=0), r.std(axis=0)
        sd[sd == 0] = 1.0
        log(f"PRDC on {len(r)} + {len(g)} events")
        for k, v in prdc_fn((r - mu) / sd, (g - mu) / sd, k=5).items():
            result.add(k, v)
        result.info["stages"]["prdc"] = {"seconds": time.perf_counter() - t0,
                                         "holds": f"subsample of {len(r)} + {len(g)} vectors"}

    opts = ClassifierOptions(epochs=cls_epochs, batch_size=cls_batch_size, lr=cls_lr, hidden=cls_hidden,
                             n_layer=cls_layers, patience=cls_patience, max_events=cls_max_events)
    if "cls-high" in stages:
        t0 = time.perf_counter()
        runs = []
        for r in range(repeats):
            log(f"cls-high: run {r + 1}/{repeats}")
            runs.append(dnn_test(Source.of_array(hlf[GEN]), Source.of_array(hlf[REF]), seed + r, opts,
                                 progress=log if progress else None))
        _add_runs(result, "high", runs)
        result.info["stages"]["cls-high"] = {"seconds": time.perf_counter() - t0,
                                             "holds": f"high-level vectors, {hlf_mb:.1f} MB"}

    if "cls-xgb" in stages:
        t0 = time.perf_counter()
        runs = []
        for r in range(repeats):
            log(f"cls-xgb: run {r + 1}/{repeats}")
            runs.append(xgb_test(hlf[GEN], hlf[REF], seed + r, cls_max_events, xgb_estimators))
        _add_runs(result, "high_xgb", runs)
        result.info["stages"]["cls-xgb"] = {"seconds": time.perf_counter() - t0,
                                            "holds": f"high-level vectors, {hlf_mb:.1f} MB"}

    if "cls-low" in stages:
        t0 = time.perf_counter()
        sources = [Source(n, fx.low_dim, (lambda ss: (lambda a, b: fx.low_level(ss.slice(a, b))))(ss))
                   for ss, n in (samples[GEN], samples[REF])]
        scale = np.zeros(fx.low_dim, dtype=bool)
        if conditions:
            scale[-len(conditions):] = True
        if geometry.kind == POINTCLOUD:
            # rasterised pads / E_inc are ~1e-5 for a sampling calorimeter: standardise every
            # input column, or the network only sees the (identical) conditions
            scale[:] = True
        runs = []
        for r in range(repeats):
            log(f"cls-low: run {r + 1}/{repeats} (input dimension {fx.low_dim})")
            runs.append(dnn_test(sources[0], sources[1], seed + r, opts, scale_columns=scale,
                                 progress=log if progress else None))
        _add_runs(result, "low", runs)
        block_mb = 2 * opts.block_events * fx.low_dim * 4 / 1e6
        result.info["stages"]["cls-low"] = {"seconds": time.perf_counter() - t0,
                                            "holds": f"two read blocks of {opts.block_events} events, "
                                                     f"{block_mb:.0f} MB"}
        if geometry.kind == POINTCLOUD:
            result.info["notes"].append("cls-low on point clouds: cells rasterised into a (layers, 15, 15) pad "
                                        "grid around the barycentre")

    if json_path is not None:
        result.to_json(json_path)
    if report_dir is not None:
        from calobench.report import write_report

        log("report")
        result.info["report"] = str(write_report(result, report_dir))
    log("done")
    return result


def _parse_stages(metrics) -> set[str]:
    if metrics is None:
        return set(STAGES)
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    aliases = {"kpd": "fpd", "cls-high-xgb": "cls-xgb", "xgb": "cls-xgb", "all": None}
    out = set()
    for name in names:
        name = aliases.get(name, name)
        if name is None:
            return set(STAGES)
        if name not in STAGES:
            raise CalobenchError(f"--metrics: unknown stage {name!r}; valid: {', '.join(STAGES)}, all")
        out.add(name)
    if not out:
        raise CalobenchError("--metrics: no stage given")
    return out


def _add_runs(result: Result, suffix: str, runs: list[dict]) -> None:
    for key in ("auc", "jsd"):
        values = np.array([r[key] for r in runs])
        result.add(f"{key}_{suffix}", float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan"))
    result.info.setdefault("classifier_runs", {})[suffix] = runs
