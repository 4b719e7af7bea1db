"""The stage contract: every metric of an evaluation is a stage, fed chunk by chunk and mergeable.

As a torchmetrics Metric, a stage is created with its options; ``update(chunk)`` adds a chunk of
events of either sample (generated or reference); ``merge(other)`` adds the state of the same
stage filled with other, disjoint chunks; ``compute()`` gives its metrics. update and merge make
a map-reduce: disjoint ranges of events can be evaluated apart (processes, a Dask cluster) and
merged in any order. Stages that need the whole sample (FPD, PRDC, the classifiers) keep what they
need per event in their state (``EventRows``), in event order, so the numbers do not depend on
how the events were chunked or merged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property

import numpy as np

from calobench.data.showerset import ShowerSet
from calobench.errors import CalobenchError
from calobench.metrics.features import FeatureExtractor
from calobench.metrics.result import Result

#: Sample indices (they also key the bootstrap weights) and their names.
GENERATED, REFERENCE = 0, 1
SAMPLES = ("generated", "reference")

#: Where stages write progress lines.
Log = Callable[[str], None]


def quiet(message: str) -> None:
    """A Log that writes nothing."""


quiet.enabled = False  # type: ignore[attr-defined] - calobench.progress draws no bar for it


class Chunk:
    """Events ``start`` .. ``stop - 1`` of one sample, as every stage sees them.

    sample: GENERATED or REFERENCE. events: the chunk in memory (energies (n,) MeV, conditions,
    cells). features: (n, len(extractor.names)) float64 feature table. hlf: (n, len(hlf_names))
    float64 high-level vector, computed on first use. source: the whole sample, for a stage that
    reads it again (the low-level classifier).
    """

    def __init__(self, sample: int, start: int, events: ShowerSet, extractor: FeatureExtractor,
                 source: ShowerSet) -> None:
        self.sample = sample
        self.start = start
        self.stop = start + len(events)
        self.events = events
        self.extractor = extractor
        self.source = source
        self.features = extractor.compute(events)

    @cached_property
    def hlf(self) -> np.ndarray:
        names = list(self.extractor.condition_names)
        conditions = self.events.condition_matrix(names) if names else None
        out = self.extractor.hlf(self.features, self.events.energies, conditions)
        if not np.all(np.isfinite(out)):
            raise CalobenchError(f"{SAMPLES[self.sample]}: high-level features are not finite "
                                 f"(check for negative cell energies)")
        return out


class Stage(ABC):
    """One stage of an evaluation. ``name``: its name in ``--metrics`` and in Result.info["stages"].

    compute() returns a Result: the stage's metrics (Result.add: name -> value, std[, floor]), its
    report data (histograms, response, averages) and its info, where ``info["stages"][name]
    ["holds"]`` says what the state held; the evaluation adds the seconds spent in the stage and
    merges the other info keys into its own (dicts merged, lists extended).
    """

    name: str

    @abstractmethod
    def update(self, chunk: Chunk) -> None:
        """Add a chunk of either sample."""

    @abstractmethod
    def merge(self, other: "Stage") -> "Stage":
        """Add the state of the same stage, with the same options, filled with other chunks
        (in place; returns self)."""

    @abstractmethod
    def compute(self) -> Result:
        """The metrics of everything added so far."""


class EventRows:
    """Per-event rows (a feature table, high-level vectors) of both samples, kept in event order
    whatever the order of ``add`` and ``merge``."""

    def __init__(self) -> None:
        self.parts: tuple[list, list] = ([], [])

    def add(self, chunk: Chunk, rows: np.ndarray) -> None:
        self.parts[chunk.sample].append((chunk.start, rows))

    def merge(self, other: "EventRows") -> "EventRows":
        for mine, theirs in zip(self.parts, other.parts):
            mine.extend(theirs)
        return self

    def array(self, sample: int) -> np.ndarray:
        """(events, ...) rows of one sample, in event order."""
        return np.concatenate([rows for _, rows in sorted(self.parts[sample], key=lambda part: part[0])])

    @property
    def nbytes(self) -> int:
        return sum(rows.nbytes for part in self.parts for _, rows in part)


class HighLevelVectorStage(Stage):
    """A stage that needs the high-level vectors of both whole samples (FPD/KPD, PRDC, the
    high-level classifiers): it holds them, in event order; subclasses give ``compute``."""

    def __init__(self, log: Log = quiet) -> None:
        self.log = log
        self.vectors = EventRows()
        self.taken_bytes = 0

    def take_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(generated, reference) vectors, each (events, d) in event order, as new arrays; the stage
        holds them no more (``compute`` consumes its state), so that the last stage needing the
        vectors (each stage keeps a reference to the same chunk rows) frees them before its work."""
        self.taken_bytes = self.vectors.nbytes
        arrays = self.vectors.array(GENERATED), self.vectors.array(REFERENCE)
        self.vectors = EventRows()
        return arrays

    def update(self, chunk: Chunk) -> None:
        self.vectors.add(chunk, chunk.hlf)

    def merge(self, other: "HighLevelVectorStage") -> "HighLevelVectorStage":
        self.vectors.merge(other.vectors)
        return self

    def holds(self, detail: str = "") -> dict:
        """Result.info of what the state held."""
        held = max(self.vectors.nbytes, self.taken_bytes)
        return {"stages": {self.name: {"holds": f"high-level vectors, {held / 1e6:.1f} MB{detail}"}}}
