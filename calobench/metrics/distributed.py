"""The evaluation's feature pass as a Dask map-reduce (``compare --workers K | --scheduler ADDR``).

``DaskFeed(client)`` replaces evaluate's local loop over chunks: every chunk of either sample is a
task that reads its slice of the file itself (the ShowerSet sent holds the path and the
metadata, never an open h5py object or the showers), computes the features and feeds fresh
copies of the stages; the client merges the returned states in chunk order, the order of the
single-process loop, so sums are added in the same order and the numbers are identical. The
stages that only note which events they saw and read the samples again when computed
(``CLIENT_STAGES``: the low-level classifier) are fed in the client without reading showers;
every stage computes in the client.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from calobench.data.showerset import ShowerSet
from calobench.errors import CalobenchError
from calobench.metrics.features import FeatureExtractor
from calobench.metrics.stage import SAMPLES, Chunk, Stage

if TYPE_CHECKING:
    from distributed import Client

#: Stages fed in the client: they record the sample and the range only (LowLevelDNNStage).
CLIENT_STAGES = ("cls-low",)


@dataclass
class ChunkRange:
    """What a client-side stage sees of a chunk: the sample, the range and the whole source."""

    sample: int
    start: int
    stop: int
    source: ShowerSet


def file_backed(ss: ShowerSet, what: str) -> ShowerSet:
    """``ss`` without its showers in memory, to send to a worker (CalobenchError when it is not
    read from a file: a worker cannot read its slice)."""
    if ss.source is None or not hasattr(ss.source, "path"):
        raise CalobenchError(f"--workers/--scheduler: the {what} showers are not read from a file; "
                             f"pass file paths (or dataset names) to compare")
    return ShowerSet(ss.geometry, ss.energies, None, ss.conditions, ss.particle, {}, ss.dataset, source=ss.source)


def feed_chunk(stages: list[Stage], source: ShowerSet, sample: int, start: int, stop: int,
               fx: FeatureExtractor) -> tuple[list[Stage], float, dict[str, float]]:
    """A task: read events start..stop-1 of ``source`` and feed fresh copies of ``stages``.
    Returns (the stages, seconds for reading and features, seconds per stage)."""
    stages = copy.deepcopy(stages)
    t0 = time.perf_counter()
    chunk = Chunk(sample, start, source.slice(start, stop), fx, source)
    feature_seconds = time.perf_counter() - t0
    seconds = {}
    for stage in stages:
        t0 = time.perf_counter()
        stage.update(chunk)
        seconds[stage.name] = time.perf_counter() - t0
    return stages, feature_seconds, seconds


class DaskFeed:
    """evaluate's ``feed``: the chunks as tasks on ``client``, merged in chunk order."""

    def __init__(self, client: "Client") -> None:
        self.client = client

    def __call__(self, stages: list[Stage], samples: tuple[ShowerSet, ShowerSet], sizes: list[int],
                 chunk_size: int, fx: FeatureExtractor, seconds: dict[str, float]) -> float:
        """Feed every chunk of both samples to ``stages`` (in place); adds each stage's seconds
        (summed over the workers) to ``seconds`` and returns the feature seconds."""
        mapped = [stage for stage in stages if stage.name not in CLIENT_STAGES]
        local = [stage for stage in stages if stage.name in CLIENT_STAGES]
        remote = [file_backed(ss, what) for ss, what in zip(samples, SAMPLES)]
        ranges = [(sample, start, min(start + chunk_size, n))
                  for sample, n in enumerate(sizes) for start in range(0, n, chunk_size)]
        templates = self.client.scatter(mapped, broadcast=True) if mapped else None
        sources = [self.client.scatter(ss, broadcast=True) for ss in remote]
        extractor = self.client.scatter(fx, broadcast=True)  # geometry tables: sent once per worker
        futures = [self.client.submit(feed_chunk, templates, sources[sample], sample, start, stop, extractor,
                                      pure=False)
                   for sample, start, stop in ranges] if mapped else []
        feature_seconds = 0.0
        for i, (sample, start, stop) in enumerate(ranges):
            for stage in local:
                stage.update(ChunkRange(sample, start, stop, samples[sample]))
            if not futures:
                continue
            parts, chunk_seconds, stage_seconds = futures[i].result()
            futures[i].release()
            feature_seconds += chunk_seconds
            for stage, part in zip(mapped, parts):
                stage.merge(part)
                seconds[stage.name] += stage_seconds[stage.name]
        return feature_seconds
