"""The ``hist`` stage: one-dimensional distances (sep, chi2, js, w1) of every feature and
per-cell spectrum, with Poisson-bootstrap uncertainties and the reference's own floor.

Histograms are mergeable streaming states. A ``HistogramState`` is filled chunk by chunk (``update``), combined across chunks or
processes (``merge``) and read out (``compute``); its memory is fixed by the binning and
the number of replicas, not by the number of events. Every event carries, besides its
nominal weight 1, an independent Poisson(1) weight per bootstrap replica, drawn from a
generator keyed on (seed, sample, block of events), so the replicas do not depend on how
the events were chunked. Events are also split by the parity of their index into two
halves, which gives the reference-against-itself floor of any distance for free.

Bins come from the reference (calobench.metrics.binning). The features have one value per
event: the stage keeps the feature tables and histograms them in ``compute``, when the reference
column (its quantiles) is known. The per-cell spectra are too large to keep: they are filled
while streaming, on edges that ``spectrum_edges`` sets beforehand from one pass over the
reference (the largest cell energy).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import numpy as np
from scipy import sparse

from calobench.data.showerset import ShowerSet
from calobench.metrics import binning, equivalent_statistics
from calobench.metrics.display import display_histograms, per_energy_histograms
from calobench.metrics.distances import DISTANCES
from calobench.metrics.features import FeatureExtractor
from calobench.metrics.result import Result
from calobench.metrics.stage import GENERATED, REFERENCE, SAMPLES, Chunk, EventRows, Stage

#: Events per block of Poisson weights (the weights of an event depend only on its index).
WEIGHT_BLOCK = 4096
#: Shower-shape features drawn in bins of incident energy by the report, in order of preference
#: (then the per-layer widths), and how many.
SHAPE_PREFERENCE = ("second_moment", "width_lateral", "depth_mean", "ec_z")
SHAPE_FEATURES_PER_ENERGY = 2
#: Events per fill when the feature tables are histogrammed (a multiple of WEIGHT_BLOCK).
TABLE_STEP = 16384


def poisson_weights(seed: int, sample: int, start: int, stop: int, replicas: int) -> np.ndarray:
    """(stop - start, replicas) Poisson(1) bootstrap weights of events start..stop-1."""
    if replicas == 0 or stop <= start:
        return np.zeros((max(stop - start, 0), replicas))
    first, last = start // WEIGHT_BLOCK, (stop - 1) // WEIGHT_BLOCK
    blocks = [np.random.default_rng([seed, sample, b]).poisson(1.0, size=(WEIGHT_BLOCK, replicas))
              for b in range(first, last + 1)]
    out = np.concatenate(blocks)
    lo = start - first * WEIGHT_BLOCK
    return out[lo:lo + stop - start].astype(np.float64)


#: Largest distance (in bins) of a position (x - origin) / step from an integer for which the
#: estimate of _bin_index is trusted; closer values are searched. The edges themselves must lie
#: within EDGE_DEVIATION of the grid, float64 estimates are good to ~1e-12 bins.
NEAR_EDGE = 1e-6
EDGE_DEVIATION = 1e-8


def _spacing(edges: np.ndarray) -> tuple[str, float, float] | None:
    """("linear" | "log", origin, 1 / step) where the edges lie on a grid equally spaced in x or in
    log x (within EDGE_DEVIATION bins), else None."""
    if len(edges) < 2 or not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
        return None
    for kind in ("linear", "log"):
        if kind == "log" and edges[0] <= 0:
            continue
        x = np.log(edges) if kind == "log" else edges
        origin, scale = float(x[0]), float((len(x) - 1) / (x[-1] - x[0]))
        if np.max(np.abs((x - origin) * scale - np.arange(len(x)))) < EDGE_DEVIATION:
            return kind, origin, scale
    return None


def _bin_index(edges: np.ndarray, values: np.ndarray, spacing: tuple[str, float, float] | None) -> np.ndarray:
    """``np.searchsorted(edges, values, side="right") - 1`` (int64, -1 .. len(edges) - 1), exactly
    (NaN values may get any bin: callers drop them).

    For equally spaced edges (``spacing``) the bin is the integer part of ((log) x - origin) / step
    in float64, some three times faster than the binary search; the few values within NEAR_EDGE
    of an edge are searched."""
    if spacing is None or len(values) < 4096:
        return np.searchsorted(edges, values, side="right") - 1
    kind, origin, scale = spacing
    nb = len(edges) - 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        guess = np.log(values, dtype=np.float64) if kind == "log" else values.astype(np.float64)
        guess -= origin
        guess *= scale
    np.clip(guess, -0.5, nb + 0.5, out=guess)  # below the first edge: bin -1, above the last: nb
    floor = np.floor(guess)
    guess -= floor
    near = ~((guess >= NEAR_EDGE) & (guess <= 1.0 - NEAR_EDGE))  # NaN (log of a negative value): searched
    with np.errstate(invalid="ignore"):
        idx = floor.astype(np.int64)
    idx[near] = np.searchsorted(edges, values[near], side="right") - 1
    return idx


#: Bits of a float32 that key the lookup table of HistogramState.bins (sign, exponent and the top
#: 7 mantissa bits: 65536 cells, each an interval of values 1/128 of an octave wide): the upper
#: 16-bit half of each value, read in place.
LOOKUP_SHIFT = 16
_UPPER_HALF = 1 if sys.byteorder == "little" else 0


def _float32_lookup(edges: np.ndarray, clip: bool) -> tuple[np.ndarray, int]:
    """(table, unsure): the bin of every float32 value, keyed by its top 32 - LOOKUP_SHIFT bits.

    A key covers a closed interval [lo, hi] of float32 values. Where ``searchsorted`` puts lo and
    hi in the same place and the last edge is not inside, every value of the interval has that
    bin, which the table holds (with HistogramState.bins's rules: -1 where dropped, clipped with
    ``clip``); the few keys with an edge inside, and those of NaN and infinity, hold ``unsure``
    (their values are searched)."""
    keys = np.arange(1 << (32 - LOOKUP_SHIFT), dtype=np.uint32) << LOOKUP_SHIFT
    with np.errstate(invalid="ignore"):  # the NaN keys
        ends = [keys.view(np.float32).astype(np.float64),
                (keys | np.uint32((1 << LOOKUP_SHIFT) - 1)).view(np.float32).astype(np.float64)]
    lo, hi = np.minimum(*ends), np.maximum(*ends)  # negative values count down as their bits count up
    place_lo, place_hi = (np.searchsorted(edges, v, side="right") for v in (lo, hi))
    nb = len(edges) - 1
    idx = place_lo - 1
    if clip:
        np.clip(idx, 0, nb - 1, out=idx)
    else:
        idx[(idx < 0) | (idx >= nb)] = -1
    unsure = nb + 1
    sure = (place_lo == place_hi) & ~((lo <= edges[-1]) & (edges[-1] <= hi)) & np.isfinite(lo) & np.isfinite(hi)
    table = np.where(sure, idx, unsure).astype(np.int16 if nb < 32000 else np.int32)
    return table, unsure


def row_weights(boot: np.ndarray, first_event: int = 0) -> np.ndarray:
    """(n, replicas + 3) weight of each event of a chunk in every row of HistogramState.counts:
    1 in the even or odd half (by the global index, ``first_event`` + i), its Poisson weights
    ``boot`` (n, replicas), 1 in the nominal row."""
    n = len(boot)
    odd = (np.arange(n) + first_event) % 2
    out = np.empty((n, boot.shape[1] + 3))
    out[:, 0] = 1 - odd
    out[:, 1] = odd
    out[:, 2:-1] = boot
    out[:, -1] = 1.0
    return out


def fill_events(states: list["HistogramState"], table: np.ndarray, boot: np.ndarray, first_event: int = 0) -> None:
    """Add one value per event to every state at once: column j of ``table`` (n, len(states))
    to ``states[j]``; ``boot`` (n, replicas) Poisson weights of the n events. Equal to
    ``states[j].update_events(table[:, j], boot, first_event)`` for every j (the counts are
    sums of integers, exact in any order), as one sparse (events x all bins) product."""
    n = len(table)
    offsets = np.cumsum([0] + [len(s.edges) - 1 for s in states])
    bins = np.empty((n, len(states)), dtype=np.int64)
    for j, state in enumerate(states):
        idx = state.bins(np.asarray(table[:, j], dtype=np.float64))
        bins[:, j] = np.where(idx >= 0, idx + offsets[j], -1)
    keep = bins >= 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    onehot = sparse.csr_matrix((np.ones(indptr[-1]), bins[keep], indptr), shape=(n, int(offsets[-1])))
    counts = np.asarray(onehot.T @ row_weights(boot, first_event)).T
    for j, state in enumerate(states):
        state.counts += counts[:, offsets[j]:offsets[j + 1]]


class HistogramState:
    """Counts of one quantity in fixed bins: nominal, bootstrap replicas and two halves.

    edges: (nbins + 1,) increasing. clip: put values outside the edges into the first / last
    bin (otherwise they are dropped, as the CaloChallenge histograms drop them).
    ``counts`` has shape (2 + replicas + 1, nbins): rows 0 and 1 are the even / odd halves,
    rows 2.. the replicas, the last row the nominal counts.
    """

    def __init__(self, edges: np.ndarray, replicas: int = 20, clip: bool = False) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.replicas = replicas
        self.clip = clip
        self.counts = np.zeros((replicas + 3, len(self.edges) - 1))
        self._spacing = _spacing(self.edges)
        self._lookup: tuple[np.ndarray, int] | None = None

    def bins(self, values: np.ndarray) -> np.ndarray:
        """(n,) bin of each value (float (n,)), -1 where it is dropped: not finite, or outside
        the edges without ``clip`` (the last bin is closed, as in numpy). float32 values are
        looked up by their leading bits (_float32_lookup), the rest searched: the same bins."""
        if values.dtype == np.float32 and len(values) >= 4096:
            return self._bins_float32(values)
        nb = len(self.edges) - 1
        idx = _bin_index(self.edges, values, self._spacing)
        if self.clip:
            np.clip(idx, 0, nb - 1, out=idx)
        else:
            idx[values == self.edges[-1]] = nb - 1
            idx[(idx < 0) | (idx >= nb)] = -1
        idx[~np.isfinite(values)] = -1
        return idx

    def _bins_float32(self, values: np.ndarray) -> np.ndarray:
        if self._lookup is None:
            self._lookup = _float32_lookup(self.edges, self.clip)
        table, unsure = self._lookup
        # np.take with the uint16 keys: twice as fast as indexing, which converts them to intp first
        idx = np.take(table, np.ascontiguousarray(values).view(np.uint16)[_UPPER_HALF::2])
        searched = np.flatnonzero(idx == unsure)
        if len(searched):
            idx[searched] = self.bins(values[searched].astype(np.float64))
        return idx

    def update(self, values: np.ndarray, event: np.ndarray, boot: np.ndarray, weights: np.ndarray | None = None,
               first_event: int = 0) -> None:
        """Add values; ``event`` (n,) index of each value's event inside the chunk,
        ``boot`` (events in chunk, replicas) Poisson weights, ``first_event`` the global index
        of the chunk's first event, ``weights`` optional per-value weights (None: 1)."""
        values = np.asarray(values)
        if values.dtype.kind != "f":
            values = values.astype(np.float64)
        idx = self.bins(values)
        n, nb = len(boot), len(self.edges) - 1
        # column 0 of each event's nb + 1 counts takes the dropped values (bin -1)
        flat = np.asarray(event, dtype=np.int64) * (nb + 1)
        flat += idx
        flat += 1
        if weights is None:
            per_event = np.bincount(flat, minlength=n * (nb + 1)).astype(np.float64)
        else:
            per_event = np.bincount(flat, weights=np.asarray(weights, dtype=np.float64), minlength=n * (nb + 1))
        self.counts += row_weights(boot, first_event).T @ per_event.reshape(n, nb + 1)[:, 1:]

    def update_events(self, values: np.ndarray, boot: np.ndarray, first_event: int = 0) -> None:
        """Add one value per event (values (n,), boot (n, replicas))."""
        self.update(values, np.arange(len(values)), boot, None, first_event)

    def merge(self, other: "HistogramState") -> "HistogramState":
        """Add the counts of another state with the same binning (in place; returns self)."""
        if not np.array_equal(self.edges, other.edges) or self.counts.shape != other.counts.shape:
            raise ValueError("cannot merge histograms with different binning or replicas")
        self.counts += other.counts
        return self

    def compute(self) -> np.ndarray:
        """Nominal counts (nbins,)."""
        return self.counts[-1].copy()

    @property
    def nominal(self) -> np.ndarray:
        return self.counts[-1]

    @property
    def boot(self) -> np.ndarray:
        return self.counts[2:-1]

    @property
    def halves(self) -> np.ndarray:
        return self.counts[:2]


def bootstrap_distances(gen: HistogramState, ref: HistogramState) -> dict[str, dict[str, float]]:
    """Every distance of two filled states: kind -> {value, std, floor}.

    value: on the nominal counts. std: spread over the paired bootstrap replicas (replica i
    of the generated sample against replica i of the reference). floor: the reference's
    even-index events against its odd-index events (the value two samples of the same
    distribution reach at half the statistics).
    """
    k = min(gen.replicas, ref.replicas)
    # every distance of the nominal pair, the k replica pairs and the two reference halves at once,
    # row by row: rows 0, 1..k, k + 1
    gen_rows = np.concatenate([gen.nominal[None], gen.boot[:k], ref.halves[:1]])
    ref_rows = np.concatenate([ref.nominal[None], ref.boot[:k], ref.halves[1:]])
    out = {}
    for kind, fn in DISTANCES.items():
        values = fn(gen_rows, ref_rows, ref.edges)
        std = float(np.std(values[1:k + 1], ddof=1)) if k > 1 else float("nan")
        out[kind] = {"value": float(values[0]), "std": std, "floor": float(values[-1])}
    return out


def spectrum_edges(extractor: FeatureExtractor, reference: Iterable[ShowerSet]) -> dict[str, np.ndarray]:
    """Edges of every per-cell spectrum, from one pass over the reference chunks (the largest
    value of each spectrum sets the top of the energy spectra)."""
    maxima: dict[str, float] = {}
    for chunk in reference:
        for name, top in extractor.spectrum_maxima(chunk).items():
            maxima[name] = max(maxima.get(name, 0.0), top)
    return {name: binning.spectrum_edges(extractor.geometry, name, maxima.get(name, 1.0))
            for name in extractor.spectra}


class HistogramStage(Stage):
    """``hist``: ``sep_F``, ``chi2_F``, ``js_F``, ``w1_F`` of every feature and spectrum F, and
    ``sep_mean``; std over ``replicas`` bootstrap replicas (``seed``), floor from the reference
    halves. spectra: edges of each spectrum (``spectrum_edges``)."""

    name = "hist"

    def __init__(self, extractor: FeatureExtractor, spectra: dict[str, np.ndarray], replicas: int = 20,
                 seed: int = 0) -> None:
        self.extractor = extractor
        self.replicas = replicas
        self.seed = seed
        self.tables = EventRows()
        self.energies = EventRows()
        self.spectra = tuple({name: HistogramState(spectra[name], replicas) for name in extractor.spectra}
                             for _ in SAMPLES)

    def update(self, chunk: Chunk) -> None:
        self.tables.add(chunk, chunk.features)
        self.energies.add(chunk, np.asarray(chunk.events.energies, dtype=np.float64)[:, None])
        boot = poisson_weights(self.seed, 100 + chunk.sample, chunk.start, chunk.stop, self.replicas)
        for name, (values, weights, event) in self.extractor.cell_spectra(chunk.events).items():
            self.spectra[chunk.sample][name].update(values, event, boot, weights, first_event=chunk.start)

    def merge(self, other: "HistogramStage") -> "HistogramStage":
        self.tables.merge(other.tables)
        self.energies.merge(other.energies)
        for mine, theirs in zip(self.spectra, other.spectra):
            for name, state in mine.items():
                state.merge(theirs[name])
        return self

    def _columns(self, table: np.ndarray) -> np.ndarray:
        """The feature columns of a table, in the order of extractor.index (no copy when that is
        every column in order, as the extractors build it)."""
        columns = list(self.extractor.index.values())
        return table if columns == list(range(table.shape[1])) else table[:, columns]

    def _feature_states(self, tables: list[np.ndarray]) -> dict[str, list[HistogramState]]:
        """name -> [generated, reference] states of every feature, on edges from the reference;
        every feature of a block of TABLE_STEP events is filled in one product (fill_events).
        tables: the [generated, reference] feature tables."""
        fx = self.extractor
        names = list(fx.index)
        columns = [fx.index[name] for name in names]
        pairs = []
        for name, index in zip(names, columns):
            column_ref = tables[REFERENCE][:, index]
            edges = binning.challenge_edges(fx.geometry, name, float(np.max(column_ref)))
            clip = edges is None
            if edges is None:
                edges = binning.quantile_edges(column_ref)
            pairs.append([HistogramState(edges, self.replicas, clip=clip) for _ in (GENERATED, REFERENCE)])
        for sample in (GENERATED, REFERENCE):
            table = self._columns(tables[sample])
            for start in range(0, len(table), TABLE_STEP):
                stop = min(start + TABLE_STEP, len(table))
                boot = poisson_weights(self.seed, sample, start, stop, self.replicas)
                fill_events([pair[sample] for pair in pairs], table[start:stop], boot, first_event=start)
        return dict(zip(names, pairs))

    def _per_energy_shapes(self, gen_table: np.ndarray, ref_table: np.ndarray) -> dict[str, list[dict]]:
        """Shower-shape features in bins of incident energy, for the report: feature name ->
        calobench.metrics.resolution.per_energy_histograms views (at most SHAPE_FEATURES_PER_ENERGY)."""
        names = [n for n in SHAPE_PREFERENCE if n in self.extractor.index]
        names += [n for n in self.extractor.names if n.startswith("width_") and n not in names]
        energies = [self.energies.array(sample)[:, 0] for sample in (GENERATED, REFERENCE)]
        out = {}
        for name in names[:SHAPE_FEATURES_PER_ENERGY]:
            column = self.extractor.index[name]
            views = per_energy_histograms(np.stack([energies[0], gen_table[:, column]], axis=1),
                                          np.stack([energies[1], ref_table[:, column]], axis=1))
            if views:
                out[name] = views
        return out

    def compute(self) -> Result:
        gen_table, ref_table = self.tables.array(GENERATED), self.tables.array(REFERENCE)
        states = self._feature_states([gen_table, ref_table])
        for name in self.extractor.spectra:
            states[name] = [self.spectra[GENERATED][name], self.spectra[REFERENCE][name]]
        result = Result()
        seps = []
        for name, (g, r) in states.items():
            for kind, d in bootstrap_distances(g, r).items():
                result.add(f"{kind}_{name}", d["value"], d["std"], d["floor"])
            seps.append(result.value(f"sep_{name}"))
            result.histograms[name] = {"edges": r.edges, "generated": g.nominal.copy(), "reference": r.nominal.copy()}
            if name in self.extractor.index:
                column = self.extractor.index[name]
                result.histograms[name]["display"] = display_histograms(gen_table[:, column], ref_table[:, column])
        result.add("sep_mean", float(np.nanmean(seps)),
                   float(np.sqrt(np.nansum([result.metrics[f"sep_{n}"]["std"] ** 2 for n in states])) / len(states)),
                   float(np.nanmean([result.metrics[f"sep_{n}"]["floor"] for n in states])))
        fx = self.extractor
        result.response["per_energy_shapes"] = self._per_energy_shapes(gen_table, ref_table)
        distance, noise = equivalent_statistics.ks_excess(self._columns(gen_table), self._columns(ref_table))
        combined, worst, per_feature = equivalent_statistics.summary(distance, noise, cap=float(len(ref_table)))
        result.add("g4_equivalent_events", combined)
        result.add("g4_equivalent_events_min", worst)
        result.info = {"g4_equivalent_events": {name: float(v) for name, v in zip(fx.index, per_feature)}}
        holds = (f"feature tables, {self.tables.nbytes / 1e6:.1f} MB; "
                 f"{len(states)} histograms x {self.replicas + 3} rows")
        result.info["stages"] = {self.name: {"holds": holds}}
        return result
