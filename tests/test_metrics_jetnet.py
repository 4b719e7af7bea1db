"""Cross-check of FPD / KPD against jetnet 0.2.5 (skipped where jetnet cannot be imported)."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.metrics.fpd import fpd, kpd

gen_metrics = pytest.importorskip("jetnet.evaluation.gen_metrics", exc_type=ImportError)


def test_fpd_kpd_equal_jetnet():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12000, 5)), rng.normal(0.1, 1.1, size=(12000, 5))
    ours = fpd(x, y, min_samples=2000, max_samples=10000, num_batches=4, num_points=4)
    theirs = gen_metrics.fpd(x, y, min_samples=2000, max_samples=10000, num_batches=4, num_points=4)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-6)
    assert kpd(x, y, batch_size=2000)[0] == pytest.approx(gen_metrics.kpd(x, y, batch_size=2000)[0], rel=1e-6)
