"""Ranking rule of the leaderboard.

Within one benchmark version, entries are ranked by the distance of the high-level
classifier AUC from 0.5 (``|auc_high - 0.5|``, smaller is better: a classifier that cannot
tell generated from reference showers scores 0.5); ties are broken by FPD (smaller is
better). Entries without an auc_high value are listed after the ranked ones, unranked.
Entries of other benchmark versions are never ranked with the current ones.
"""

from __future__ import annotations

import math

RANK_METRIC = "auc_high"
TIE_METRIC = "fpd"


def _value(entry: dict, name: str) -> float | None:
    m = entry.get("metrics", {}).get(name)
    if not m or m.get("value") is None or not math.isfinite(m["value"]):
        return None
    return float(m["value"])


def score(entry: dict) -> float | None:
    """|auc_high - 0.5| of an entry, or None."""
    auc = _value(entry, RANK_METRIC)
    return None if auc is None else abs(auc - 0.5)


def rank(entries: list[dict], version: str | None = None) -> tuple[list[tuple[int | None, dict]], list[dict]]:
    """(ranked, other_versions): ranked is [(rank or None, entry)] of ``version`` (default: the
    most common version among the newest entries), best first; other_versions are the rest."""
    if not entries:
        return [], []
    if version is None:
        version = max(entries, key=lambda e: e["provenance"]["date"])["benchmark_version"]
    current = [e for e in entries if e["benchmark_version"] == version]
    others = [e for e in entries if e["benchmark_version"] != version]
    scored = [e for e in current if score(e) is not None]
    unscored = [e for e in current if score(e) is None]
    scored.sort(key=lambda e: (score(e), _value(e, TIE_METRIC) if _value(e, TIE_METRIC) is not None else math.inf))
    out: list[tuple[int | None, dict]] = [(i + 1, e) for i, e in enumerate(scored)]
    out += [(None, e) for e in unscored]
    return out, others
