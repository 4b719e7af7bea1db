"""calobench selftest: known distortions of held-out reference showers and the power table of
which metric detects which (see docs/power-tables.md)."""

from calobench.selftest.distortions import DISTORTIONS, distort, parse_distortions
from calobench.selftest.power import PowerTable, detects, run_selftest, selftest_samples

__all__ = ["DISTORTIONS", "PowerTable", "detects", "distort", "parse_distortions", "run_selftest",
           "selftest_samples"]
