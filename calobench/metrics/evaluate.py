"""evaluate(generated, reference, options) -> Result: every selected stage in one read of the samples.

Stages (``EvaluationOptions.stages``; default all, in this order):
  hist        features and one-dimensional distances (sep, chi2, js, w1) per feature, streamed
  resolution  energy response and resolution fit
  fpd         FPD and KPD on the high-level vector (jetnet 0.2.5 definitions)
  prdc        precision, recall, density, coverage (k = 5) on a bounded subsample
  cls-high    DNN classifier on the high-level vector, repeated
  cls-xgb     gradient-boosted trees (xgboost) on the high-level vector, repeated
  cls-low     DNN classifier on cells / E_inc, streamed from the samples block by block

The loop reads each sample once, ``chunk_size`` events at a time (by default about 64 MB, a
whole number of the files' HDF5 chunks), computes the chunk's features and feeds it to every
stage (calobench.metrics.stage), then computes each stage; a reader thread reads the next chunk
while the current one is computed. Only ``hist`` reads the reference once more beforehand, for
the largest cell energy that sets the edges of the per-cell spectra. Nothing is written to files
(calobench.api.compare writes the JSON and the report).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from calobench.data.geometry import Geometry
from calobench.data.showerset import ShowerSet
from calobench.data.validation import check_energies
from calobench.errors import CalobenchError
from calobench.progress import log_enabled
from calobench.progress import stage as progress_stage
from calobench.metrics.average import AverageShowerStage
from calobench.metrics.classifier_tests import ClassifierOptions
from calobench.metrics.classifiers import HighLevelDNNStage, LowLevelDNNStage, XGBStage
from calobench.metrics.features import FeatureExtractor, feature_extractor
from calobench.metrics.fpd import FPDStage
from calobench.metrics.histograms import HistogramStage, spectrum_edges
from calobench.metrics.prdc import PRDCStage
from calobench.metrics.resolution import ResolutionStage, energy_bins
from calobench.metrics.result import Result
from calobench.metrics.stage import REFERENCE, SAMPLES, Chunk, Log, Stage, quiet

STAGES = ("hist", "resolution", "fpd", "prdc", "cls-high", "cls-xgb", "cls-low")
#: Events per sample a stage needs at least; with fewer it is skipped, with the reason in
#: Result.info["notes"], and the other stages still run (docs/metrics.md).
MIN_EVENTS = {"fpd": 10, "prdc": 6, "cls-high": 20, "cls-xgb": 20, "cls-low": 20}
#: Feeds every chunk of both samples to the stages in place instead of the local loop:
#: (stages, samples, sizes, chunk_size, extractor, seconds per stage) -> feature seconds.
Feed = Callable[[list[Stage], tuple[ShowerSet, ShowerSet], list[int], int, FeatureExtractor, dict[str, float]],
                float]
#: Other names accepted by ``parse_stages`` (None: every stage).
ALIASES = {"kpd": "fpd", "cls-high-xgb": "cls-xgb", "xgb": "cls-xgb", "all": None}


@dataclass(frozen=True)
class EvaluationOptions:
    """What ``evaluate`` computes (the defaults are compare's).

    stages: stage names (see the module docstring). seed: every random choice. max_events: use
    the first N events of each sample. chunk_size: events per read (None: about 64 MB of showers).
    replicas: Poisson-bootstrap replicas of the 1-d distances. prdc_max_events: events per sample
    in PRDC. fpd_min_samples, fpd_max_samples: FPD batch sizes; kpd_batch_size: KPD batch size;
    fpd_floors: FPD and KPD of the reference halves too. classifier: options of the three classifier stages (repetitions included).
    """

    stages: tuple[str, ...] = STAGES
    seed: int = 0
    max_events: int | None = None
    chunk_size: int | None = None
    replicas: int = 20
    prdc_max_events: int = 10_000
    fpd_min_samples: int = 10_000
    fpd_max_samples: int = 50_000
    kpd_batch_size: int = 10_000
    fpd_floors: bool = True
    classifier: ClassifierOptions = field(default_factory=ClassifierOptions)


def parse_stages(metrics: list[str] | str | None) -> tuple[str, ...]:
    """Stage names from a list or a comma-separated string (None or "all": every stage), in STAGES order."""
    if metrics is None:
        return STAGES
    if not isinstance(metrics, (str, list, tuple)) or not all(isinstance(m, str) for m in metrics):
        raise CalobenchError(f"--metrics: expected stage names (a list or comma-separated text), found {metrics!r}")
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    chosen = set()
    for name in names:
        name = ALIASES.get(name, name)
        if name is None:
            return STAGES
        if name not in STAGES:
            raise CalobenchError(f"--metrics: unknown stage {name!r}; valid: {', '.join(STAGES)}, all")
        chosen.add(name)
    if not chosen:
        raise CalobenchError("--metrics: no stage given")
    return tuple(name for name in STAGES if name in chosen)


class ProgressLog:
    """A Log that writes '[seconds since creation] message' lines to stderr (nothing when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:7.1f} s] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, MB (None where the platform does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, kB on Linux


#: Bytes of float32 showers per read. Small enough that a chunk's float64 working copies
#: (~2 x CHUNK_BYTES) stay below glibc's mmap threshold (32 MiB) and reuse freed heap memory,
#: instead of mapping and zeroing fresh pages for every chunk (64 MB chunks cost 2.5 s of system
#: time in the dataset-2 hist stage at 20k vs 20k, 16 MB ones 1.2 s; docs/performance.md).
CHUNK_BYTES = 16 << 20
#: Fewest events per read (dataset 3's 40 500 cells: 103 events in CHUNK_BYTES).
MIN_CHUNK_EVENTS = 64


def default_chunk_size(geometry: Geometry) -> int:
    """Events per read: about CHUNK_BYTES of float32 showers (2000 cells assumed for point clouds)."""
    cells = geometry.n_cells or 2000
    return max(MIN_CHUNK_EVENTS, CHUNK_BYTES // (4 * cells))


def aligned_chunk_size(size: int, samples: tuple[ShowerSet, ...]) -> int:
    """``size`` rounded down to a whole number of the files' HDF5 chunks (events per chunk of the
    dense showers, ``ShowerFileReader.chunk_rows``), so that no file chunk is read and
    decompressed twice; unchanged for in-memory samples or chunks larger than ``size``."""
    rows = sorted({r for ss in samples if not ss.is_loaded
                   for r in [getattr(ss.source, "chunk_rows", None)] if isinstance(r, int) and 0 < r <= size})
    if not rows:
        return size
    step = math.lcm(*rows)
    if step > size:
        step = rows[-1]
    return size // step * step


def read_ahead(ss: ShowerSet, n: int, chunk_size: int) -> Iterator[tuple[int, ShowerSet]]:
    """(start, events start..start + chunk_size - 1) of the first n events of ``ss``, in order.
    For a file-backed sample the next chunk is read (and decompressed) in a thread while the caller
    works on the current one; at most two chunks are in memory."""
    starts = range(0, n, chunk_size)
    if ss.is_loaded:
        for start in starts:
            yield start, ss.slice(start, min(start + chunk_size, n))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calobench-read") as pool:
        ahead = None
        for start in starts:
            current = ahead if ahead is not None else pool.submit(ss.slice, start, min(start + chunk_size, n))
            following = start + chunk_size
            ahead = pool.submit(ss.slice, following, min(following + chunk_size, n)) if following < n else None
            yield start, current.result()


def _make_stage(name: str, options: EvaluationOptions, fx: FeatureExtractor, reference: ShowerSet, n_ref: int,
                chunk_size: int, log: Log) -> Stage:
    seed, cls = options.seed, options.classifier
    if name == "hist":
        log("spectra: reference (binning)")
        chunks = (chunk for _, chunk in read_ahead(reference, n_ref, chunk_size))
        return HistogramStage(fx, spectrum_edges(fx, chunks), options.replicas, seed)
    if name == "resolution":
        return ResolutionStage(energy_bins(reference.energies[:n_ref]), fx.index["etot_einc"])
    if name == "fpd":
        return FPDStage(seed, options.fpd_min_samples, options.fpd_max_samples, options.kpd_batch_size, log,
                        floors=options.fpd_floors)
    if name == "prdc":
        return PRDCStage(seed, options.prdc_max_events, log)
    if name == "cls-high":
        return HighLevelDNNStage(fx, cls, seed, log)
    if name == "cls-xgb":
        return XGBStage(fx, cls, seed, log)
    if name == "cls-low":
        return LowLevelDNNStage(fx, cls, seed, log)
    raise CalobenchError(f"unknown stage {name!r}; valid: {', '.join(STAGES)}")


def _usable_events(name: str, options: EvaluationOptions, n_min: int) -> int:
    """Events per sample stage ``name`` would use, given ``n_min`` in the smaller sample."""
    if name == "prdc":
        return min(n_min, options.prdc_max_events)
    if name.startswith("cls-") and options.classifier.max_events is not None:
        return min(n_min, options.classifier.max_events)
    return n_min


def _skip_reason(name: str, options: EvaluationOptions, n_min: int) -> str | None:
    """Why stage ``name`` cannot run on these samples (None when it can)."""
    need, have = MIN_EVENTS.get(name, 1), _usable_events(name, options, n_min)
    if have < need:
        return f"{name} skipped: it needs at least {need} events per sample, found {have}"
    return None


def _check_sample(ss: ShowerSet, n: int, what: str) -> None:
    if n == 0:
        raise CalobenchError(f"{what}: no events")
    check_energies(ss.energies[:n], f"{what}: incident_energies")


def evaluate(generated: ShowerSet, reference: ShowerSet, options: EvaluationOptions | None = None, *,
             log: Log = quiet, feed: Feed | None = None) -> Result:
    """Evaluate ``generated`` against ``reference`` showers (the same geometry) -> Result.

    Result.metrics: name -> {value, std[, floor]} of every selected stage (docs/metrics.md);
    Result.info: geometry, events, seed, chunk_size, feature names, per stage its seconds (its
    share of the pass over the data and its compute), the CPU seconds of its compute, the process's
    peak memory when it finished and what it held; notes. log: progress lines (e.g. ProgressLog(True)). feed: feeds every
    chunk to the stages instead of the local loop (calobench.metrics.distributed.DaskFeed).
    """
    from threadpoolctl import threadpool_limits

    # numpy's BLAS works on small matrices here; its thread pool only costs time (and far more
    # on a shared machine, where idle BLAS threads spin), so it runs single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        return _evaluate(generated, reference, options or EvaluationOptions(), log, feed)


def _evaluate(generated: ShowerSet, reference: ShowerSet, options: EvaluationOptions, log: Log,
              feed: Feed | None = None) -> Result:
    if generated.geometry.name != reference.geometry.name:
        raise CalobenchError(f"generated showers are {generated.geometry.name}, reference showers are "
                             f"{reference.geometry.name}: compare needs the same geometry")
    samples = (generated, reference)
    sizes = [len(ss) if options.max_events is None else min(len(ss), options.max_events) for ss in samples]
    for ss, n, what in zip(samples, sizes, SAMPLES):
        _check_sample(ss, n, what)
    geometry = reference.geometry
    conditions = tuple(c for c in reference.conditions if c in generated.conditions)
    fx = feature_extractor(geometry, conditions)
    chunk_size = options.chunk_size
    if chunk_size is None:
        chunk_size = aligned_chunk_size(default_chunk_size(geometry), samples)

    stages: list[Stage] = [AverageShowerStage(geometry.n_cells)] if geometry.is_voxel else []
    seconds = {stage.name: 0.0 for stage in stages}
    notes = []
    for name in options.stages:
        reason = _skip_reason(name, options, min(sizes))
        if reason is not None:
            log(reason)
            notes.append(reason)
            continue
        t0 = time.perf_counter()
        stages.append(_make_stage(name, options, fx, reference, sizes[REFERENCE], chunk_size, log))
        seconds[name] = time.perf_counter() - t0

    feature_seconds = 0.0
    if feed is not None:
        log(f"features: both samples ({sizes[0]} + {sizes[1]} events, chunks of {chunk_size}), as tasks")
        feature_seconds = feed(stages, samples, sizes, chunk_size, fx, seconds)
    for sample, (ss, n) in enumerate(zip(samples, sizes) if feed is None else ()):
        with progress_stage(f"features: {SAMPLES[sample]} ({n} events, chunks of {chunk_size})", total=n,
                            enabled=log_enabled(log), log=log) as bar:
            t0 = time.perf_counter()
            for start, events in read_ahead(ss, n, chunk_size):
                chunk = Chunk(sample, start, events, fx, ss)
                feature_seconds += time.perf_counter() - t0
                for stage in stages:
                    t0 = time.perf_counter()
                    stage.update(chunk)
                    seconds[stage.name] += time.perf_counter() - t0
                bar.advance(len(chunk.events))
                t0 = time.perf_counter()

    result = Result()
    result.info = {"geometry": geometry.name, "events": dict(zip(SAMPLES, sizes)),
                   "stages": {"features": {"seconds": feature_seconds, "peak_rss_MB_after": peak_rss_mb(),
                                           "holds": f"one chunk of at most {chunk_size} events"}},
                   "seed": options.seed, "repeats": options.classifier.repeats, "chunk_size": chunk_size,
                   "features": fx.names, "hlf": fx.hlf_names, "conditions": list(conditions), "notes": notes}
    with progress_stage(f"metrics: {len(stages)} stages", total=len(stages), enabled=log_enabled(log),
                        log=log) as bar:
        while stages:
            # each stage's state (feature tables, high-level vectors) is released once computed
            stage = stages.pop(0)
            bar.update(stage=stage.name)
            t0, cpu0 = time.perf_counter(), time.process_time()
            part = stage.compute()
            seconds[stage.name] += time.perf_counter() - t0
            result.include(part)
            result.info["stages"][stage.name] = {"seconds": seconds[stage.name],
                                                 "compute_cpu_seconds": time.process_time() - cpu0,
                                                 "peak_rss_MB_after": peak_rss_mb(), **part.info["stages"][stage.name]}
            bar.advance()
    return result
