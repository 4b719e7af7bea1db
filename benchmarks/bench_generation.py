"""Generation throughput benchmarks (pytest-benchmark): `pytest benchmarks/ --benchmark-only`.

- dcgan (quick architecture) at batch 10000 on CPU: target at least 100 000 showers/s on a
  2-core CPU (the seed-001 11x11 GAN; speed does not depend on the trained weights, so the
  model is freshly initialised and only its normalisation is fitted on the embedded sample);
- mean-shower at batch 10000 on CPU (the floor of any generator's cost).

One warm-up round, then ``rounds`` timed rounds (benchmarks/conftest.py). The showers/s and
ms/shower figures are stored in each benchmark's extra_info (see --benchmark-json).
"""

from __future__ import annotations

import numpy as np
from pytest_benchmark.fixture import BenchmarkFixture

from calobench.baselines.gan.dcgan import DCGAN
from calobench.baselines.parametric.mean_shower import MeanShower
from calobench.models.base import Generator


def _run(benchmark: BenchmarkFixture, model: Generator, energies: np.ndarray, conditions: dict[str, np.ndarray],
         rounds: int) -> None:
    """Time one ``sample`` call of all ``energies`` (MeV) as one batch."""
    batch = len(energies)
    result = benchmark.pedantic(model.sample, args=(energies, conditions), kwargs={"batch_size": batch},
                                rounds=rounds, iterations=1, warmup_rounds=1)
    assert len(result) == batch
    benchmark.extra_info["batch_size"] = batch
    benchmark.extra_info["showers_per_s"] = batch / benchmark.stats.stats.mean
    benchmark.extra_info["ms_per_shower"] = 1000.0 * benchmark.stats.stats.mean / batch


def test_dcgan_generation_batch_10000_cpu(benchmark, stcf_generation_inputs, rounds):
    fit_sample, energies, conds = stcf_generation_inputs
    model = DCGAN("stcf11x11", "quick", seed=0, device="cpu")
    model.prepare(fit_sample)
    _run(benchmark, model, energies, conds, rounds)


def test_mean_shower_generation_batch_10000_cpu(benchmark, stcf_generation_inputs, rounds):
    fit_sample, energies, conds = stcf_generation_inputs
    model = MeanShower("stcf11x11", "quick")
    model.fit(fit_sample)
    _run(benchmark, model, energies, conds, rounds)
