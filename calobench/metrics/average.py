"""The average shower of each sample (voxel geometries), for the report: a stage with no metrics."""

from __future__ import annotations

import numpy as np

from calobench.metrics.result import Result
from calobench.metrics.stage import GENERATED, REFERENCE, SAMPLES, Chunk, Stage


class AverageShowerStage(Stage):
    """Mean cell energies (cells,) in MeV of each sample, in Result.averages."""

    name = "average"

    def __init__(self, n_cells: int) -> None:
        self.sums = np.zeros((2, n_cells))
        self.events = [0, 0]

    def update(self, chunk: Chunk) -> None:
        self.sums[chunk.sample] += np.asarray(chunk.events.showers).sum(axis=0, dtype=np.float64)  # no float64 copy
        self.events[chunk.sample] += len(chunk.events)

    def merge(self, other: "AverageShowerStage") -> "AverageShowerStage":
        self.sums += other.sums
        self.events = [a + b for a, b in zip(self.events, other.events)]
        return self

    def compute(self) -> Result:
        result = Result(info={"stages": {self.name: {"holds": "the summed showers of each sample"}}})
        result.averages = {SAMPLES[s]: self.sums[s] / max(self.events[s], 1) for s in (GENERATED, REFERENCE)}
        return result
