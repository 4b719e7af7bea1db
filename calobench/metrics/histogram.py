"""Mergeable streaming histograms with Poisson-bootstrap replicas.

A ``HistogramState`` is filled chunk by chunk (``update``), combined across chunks or
processes (``merge``) and read out (``compute``); its memory is fixed by the binning and
the number of replicas, not by the number of events. Every event carries, besides its
nominal weight 1, an independent Poisson(1) weight per bootstrap replica, drawn from a
generator keyed on (seed, sample, block of events), so the replicas do not depend on how
the events were chunked. Events are also split by the parity of their index into two
halves, which gives the reference-against-itself floor of any distance for free.
"""

from __future__ import annotations

import numpy as np

#: Events per block of Poisson weights (the weights of an event depend only on its index).
WEIGHT_BLOCK = 4096


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

    def update(self, values: np.ndarray, event: np.ndarray, boot: np.ndarray, weights: np.ndarray | None = None,
               first_event: int = 0) -> None:
        """Add values; ``event`` (n,) index of each value's event inside the chunk,
        ``boot`` (events in chunk, replicas) Poisson weights, ``first_event`` the global index
        of the chunk's first event, ``weights`` optional per-value weights."""
        values = np.asarray(values, dtype=np.float64)
        w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
        nb = len(self.edges) - 1
        if self.clip:
            idx = np.searchsorted(self.edges, values, side="right") - 1
            idx = np.clip(idx, 0, nb - 1)
            keep = np.isfinite(values)
        else:
            idx = np.searchsorted(self.edges, values, side="right") - 1
            idx[values == self.edges[-1]] = nb - 1  # the last bin is closed, as in numpy
            keep = (idx >= 0) & (idx < nb) & np.isfinite(values)
        idx, w, event = idx[keep], w[keep], np.asarray(event)[keep]
        n = len(boot)
        per_event = np.bincount(event * nb + idx, weights=w, minlength=n * nb).reshape(n, nb)
        parity = (np.arange(n) + first_event) % 2
        self.counts[0] += per_event[parity == 0].sum(axis=0)
        self.counts[1] += per_event[parity == 1].sum(axis=0)
        if self.replicas:
            self.counts[2:-1] += boot.T @ per_event
        self.counts[-1] += per_event.sum(axis=0)

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
