"""Ranking rule of the leaderboard (ranking v2; see docs/leaderboard.md for the reasons).

Within one benchmark version an entry's score is its worst classifier excess:

    excess_c = max(0, |auc_c - 0.5| - |floor_c - 0.5|)      for c in (low, high)
    score    = max(excess_low, excess_high)                  smaller is better

where floor_c is the AUC of the same classifier between two halves of the Geant4 reference (the
value Geant4 itself gets at this sample size; 0.5 when the entry has no floor). Both views must be
good: a mean shower that the high-level classifier misses but the low-level one sees ranks by the
low-level excess. Ties (e.g. several entries at zero excess) are broken by the FPD excess over its
floor, then by |auc_high - 0.5|.

An entry whose classifier failed (metric ``failed``, or a value that is missing or not finite) is
never ranked: it is listed after the ranked entries. A failed test can therefore not rank first.
Entries of other benchmark versions are never ranked with the current ones.
"""

from __future__ import annotations

import math

CLASSIFIERS = ("auc_low", "auc_high")
TIE_METRIC = "fpd"


def _metric(entry: dict, name: str) -> dict | None:
    m = entry.get("metrics", {}).get(name)
    if not m or m.get("failed") or m.get("value") is None or not math.isfinite(m["value"]):
        return None
    return m


def _excess(m: dict, centre: float | None) -> float:
    """Distance of the value beyond its floor (from ``centre``; None: distance from the floor)."""
    floor = m.get("floor")
    if centre is None:
        return max(0.0, float(m["value"]) - (float(floor) if floor is not None else 0.0))
    base = abs(float(floor) - centre) if floor is not None and math.isfinite(floor) else 0.0
    return max(0.0, abs(float(m["value"]) - centre) - base)


def failure(entry: dict) -> str | None:
    """Why an entry cannot be ranked (a classifier failed or is missing), or None."""
    for name in CLASSIFIERS:
        m = entry.get("metrics", {}).get(name)
        if not m:
            return f"{name} missing"
        if m.get("failed"):
            return f"{name} failed: {m['failed']}"
        if m.get("value") is None or not math.isfinite(m["value"]):
            return f"{name} has no value"
    return None


def score(entry: dict) -> float | None:
    """The ranking score of an entry (smaller is better), or None when it cannot be ranked."""
    if failure(entry) is not None:
        return None
    return max(_excess(_metric(entry, name), 0.5) for name in CLASSIFIERS)


def _tie_break(entry: dict) -> tuple[float, float]:
    fpd = _metric(entry, TIE_METRIC)
    high = _metric(entry, "auc_high")
    return (_excess(fpd, None) if fpd else math.inf, abs(high["value"] - 0.5) if high else math.inf)


def rank(entries: list[dict], version: str | None = None) -> tuple[list[tuple[int | None, dict]], list[dict]]:
    """(ranked, other_versions): ranked is [(rank or None, entry)] of ``version`` (default: the
    version of the newest entry), best first, then the unranked ones; other_versions are the rest."""
    if not entries:
        return [], []
    if version is None:
        version = max(entries, key=lambda e: e["provenance"]["date"])["benchmark_version"]
    current = [e for e in entries if e["benchmark_version"] == version]
    others = [e for e in entries if e["benchmark_version"] != version]
    scored = [e for e in current if score(e) is not None]
    unscored = [e for e in current if score(e) is None]
    scored.sort(key=lambda e: (score(e), *_tie_break(e)))
    out: list[tuple[int | None, dict]] = [(i + 1, e) for i, e in enumerate(scored)]
    out += [(None, e) for e in unscored]
    return out, others
