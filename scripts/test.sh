#!/usr/bin/env bash
# The test command of the README: the import check, the test suite, then the benchmarks with light settings.
set -euo pipefail
python scripts/check_imports.py
python -m pytest -q -m "not slow" tests
CALOBENCH_BENCH_LIGHT=1 python -m pytest -q benchmarks --benchmark-only --benchmark-min-rounds=1 \
    --benchmark-max-time=0.5 --benchmark-warmup=off -p no:cacheprovider
