"""The classifier stages ``cls-high``, ``cls-xgb``, ``cls-low``: each runs its test (calobench.metrics.
classifier_tests: protocol v2 by default, or the CaloChallenge's) ``repeats`` times (seeds seed,
seed + 1, ...; value = mean, std = std) and once between the reference halves (even and odd
events: the floor, the Geant4-against-Geant4 value at this sample size). A failed run makes the
metric ``failed`` (value null), never 0.5.
"""

from __future__ import annotations

import numpy as np

from calobench.data.geometry import POINTCLOUD
from calobench.data.showerset import ShowerSet
from calobench.metrics.classifier_tests import (ClassifierOptions, Source, dnn_test, v2_high_level, v2_low_level,
                                                xgb_test)
from calobench.metrics.features import FeatureExtractor
from calobench.metrics.result import Result
from calobench.metrics.stage import GENERATED, REFERENCE, Chunk, HighLevelVectorStage, Log, Stage, quiet


# ---- results ---------------------------------------------------------------------------------
def _add_runs(result: Result, suffix: str, runs: list[dict], floor_run: dict | None) -> None:
    """auc_<suffix> and jsd_<suffix>: mean and std over the runs, the floor from ``floor_run``; a
    metric whose run failed has no value and says why (``failed``). The runs go to
    info["classifier_runs"], the floor run to info["classifier_floor_runs"]."""
    failed = next((r["failed"] for r in runs if r.get("failed")), None)
    floor_ok = floor_run is not None and not floor_run.get("failed")
    for key in ("auc", "jsd"):
        name = f"{key}_{suffix}"
        if failed:
            result.add(name, float("nan"), float("nan"), failed=failed)
            continue
        values = np.array([r[key] for r in runs])
        std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        result.add(name, float(values.mean()), std, floor_run[key] if floor_ok else None)
    result.info.setdefault("classifier_runs", {})[suffix] = runs
    if floor_run is not None:
        result.info.setdefault("classifier_floor_runs", {})[suffix] = floor_run


def _halves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The even and the odd events of a sample (the two halves of a floor)."""
    return x[0::2], x[1::2]


# ---- stages ----------------------------------------------------------------------------------

#: float64 bytes of one piece of the low-level inputs read at a time (LowLevelDNNStage._source)
LOW_LEVEL_PIECE_BYTES = 64e6

class HighLevelDNNStage(HighLevelVectorStage):
    """``cls-high``: ``auc_high``, ``jsd_high`` of the DNN on the high-level vectors (v2: relative
    energies, ``v2_high_level``), with the floor of the reference halves."""

    name = "cls-high"

    def __init__(self, extractor: FeatureExtractor, options: ClassifierOptions, seed: int = 0,
                 log: Log = quiet) -> None:
        super().__init__(log)
        self.extractor, self.options, self.seed = extractor, options, seed

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """The classifier's inputs from x, a copy of the vectors that this stage owns (overwritten)."""
        return v2_high_level(x, self.extractor.hlf_names, in_place=True) if self.options.protocol == "v2" else x

    def test(self, gen: np.ndarray, ref: np.ndarray, seed: int) -> dict:
        return dnn_test(Source.of_array(gen), Source.of_array(ref), seed, self.options, progress=self.log)

    def compute(self) -> Result:
        gen, ref = (self.inputs(x) for x in self.take_arrays())
        runs = []
        for r in range(self.options.repeats):
            self.log(f"{self.name}: run {r + 1}/{self.options.repeats}")
            runs.append(self.test(gen, ref, self.seed + r))
        floor = None
        if self.options.floors:
            self.log(f"{self.name}: floor (reference halves)")
            floor = self.test(*_halves(ref), self.seed)
        result = Result(info=self.holds())
        _add_runs(result, self.suffix, runs, floor)
        return result

    suffix = "high"


class XGBStage(HighLevelDNNStage):
    """``cls-xgb``: ``auc_high_xgb``, ``jsd_high_xgb`` of gradient-boosted trees on the high-level
    vectors (the same inputs as cls-high), with the floor of the reference halves."""

    name = "cls-xgb"
    suffix = "high_xgb"

    def test(self, gen: np.ndarray, ref: np.ndarray, seed: int) -> dict:
        return xgb_test(gen, ref, seed, self.options)


class LowLevelDNNStage(Stage):
    """``cls-low``: ``auc_low``, ``jsd_low`` of the DNN on log10(E_inc) and the cells
    (``FeatureExtractor.low_level``; v2: ``v2_low_level``), with the floor of the reference halves.
    Its state is each sample and how many of its events were fed: training reads them again block
    by block (two blocks in memory) rather than holding the cells. Challenge protocol on point
    clouds: every input column is standardised."""

    name = "cls-low"

    def __init__(self, extractor: FeatureExtractor, options: ClassifierOptions, seed: int = 0,
                 log: Log = quiet) -> None:
        self.extractor = extractor
        self.options = options
        self.seed = seed
        self.log = log
        self.sources: list[ShowerSet | None] = [None, None]
        self.events = [0, 0]

    def update(self, chunk: Chunk) -> None:
        self.sources[chunk.sample] = chunk.source
        self.events[chunk.sample] = max(self.events[chunk.sample], chunk.stop)

    def merge(self, other: "LowLevelDNNStage") -> "LowLevelDNNStage":
        for sample in (GENERATED, REFERENCE):
            if other.sources[sample] is None:
                continue
            if self.sources[sample] is not None and self.sources[sample] is not other.sources[sample]:
                raise ValueError("cls-low: cannot merge states of different samples")
            self.sources[sample] = other.sources[sample]
            self.events[sample] = max(self.events[sample], other.events[sample])
        return self

    def _source(self, ss: ShowerSet, n: int, parity: int | None = None) -> Source:
        """The low-level inputs of the first n events of ss (parity 0 / 1: only the even / odd ones)."""
        fx = self.extractor
        n_cells = fx.low_dim - 1 - len(fx.condition_names)
        v2 = self.options.protocol == "v2"

        # events per piece: the float64 temporaries of one piece stay within LOW_LEVEL_PIECE_BYTES
        # (dataset 3: 196 events of 40 500 cells); even, so that every piece starts on the parity
        piece = max(2, int(LOW_LEVEL_PIECE_BYTES // (8 * fx.low_dim)) // 2 * 2)

        def rows(a: int, b: int, step: int = 1) -> np.ndarray:
            """float32 inputs of events a, a + step, ... < b, computed piece by piece (each row on
            its own: the same values in any number of pieces)."""
            out = np.empty((len(range(a, b, step)), fx.low_dim), dtype=np.float32)
            done = 0
            for lo in range(a, b, piece):
                x = fx.low_level(ss.slice(lo, min(lo + piece, b)))[::step]
                out[done:done + len(x)] = v2_low_level(x, n_cells) if v2 else x
                done += len(x)
            return out

        if parity is None:
            return Source(n, fx.low_dim, rows)
        return Source((n + 1 - parity) // 2, fx.low_dim,
                      lambda a, b: rows(2 * a + parity, min(2 * b + parity, n), 2))

    def compute(self) -> Result:
        fx = self.extractor
        (gen, n_gen), (ref, n_ref) = zip(self.sources, self.events)
        sources = [self._source(gen, n_gen), self._source(ref, n_ref)]
        scale = np.zeros(fx.low_dim, dtype=bool)
        if fx.condition_names:
            scale[-len(fx.condition_names):] = True
        pointcloud = fx.geometry.kind == POINTCLOUD
        if pointcloud:
            # rasterised pads / E_inc are ~1e-5 for a sampling calorimeter: standardise every
            # input column, or the network only sees the (identical) conditions
            scale[:] = True
        runs = []
        for r in range(self.options.repeats):
            self.log(f"cls-low: run {r + 1}/{self.options.repeats} (input dimension {fx.low_dim})")
            runs.append(dnn_test(sources[GENERATED], sources[REFERENCE], self.seed + r, self.options,
                                 scale_columns=scale, progress=self.log))
        floor = None
        if self.options.floors:
            self.log("cls-low: floor (reference halves)")
            floor = dnn_test(self._source(ref, n_ref, 0), self._source(ref, n_ref, 1), self.seed, self.options,
                             scale_columns=scale, progress=self.log)
        block = self.options.block_events
        result = Result(info={"stages": {self.name: {
            "holds": f"two read blocks of {block} events, {2 * block * fx.low_dim * 4 / 1e6:.0f} MB"}}})
        _add_runs(result, "low", runs, floor)
        if pointcloud:
            result.info["notes"] = ["cls-low on point clouds: cells rasterised into a (layers, 15, 15) pad grid "
                                    "around the barycentre"]
        return result
