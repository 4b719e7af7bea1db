"""Transcendental functions whose results do not depend on the CPU, for Geant4 primaries and hit
positions (what a benchmark reference's fingerprint covers).

numpy dispatches ``exp``, ``log``, ``tan`` and ``arctan2`` to AVX-512 (SVML) loops on CPUs that
have it, and these round differently from its other loops and from the C library in about 1 in
20-200 values (measured on an Intel Xeon: 9235 of 200 000 ``exp`` values differ in the last bit).
One last bit of a primary's energy is enough for Geant4 to follow another history, so a
reference built from its recipe on such a CPU did not reproduce the fingerprint made on an AMD
EPYC. These functions apply Python's ``math`` (the C library's libm, the same on every x86_64
CPU) element by element: ~0.1 us per value, nothing next to Geant4. They equal numpy's results
on CPUs without AVX-512, so references made there keep their fingerprints.
"""

from __future__ import annotations

import math

import numpy as np

_exp = np.frompyfunc(math.exp, 1, 1)
_log = np.frompyfunc(math.log, 1, 1)
_tan = np.frompyfunc(math.tan, 1, 1)
_atan2 = np.frompyfunc(math.atan2, 2, 1)


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def exp(x) -> np.ndarray:
    """e**x, float64 array of the shape of ``x``."""
    return _exp(_f64(x)).astype(np.float64)


def log(x) -> np.ndarray:
    """Natural logarithm (x > 0), float64 array."""
    return _log(_f64(x)).astype(np.float64)


def tan(x) -> np.ndarray:
    """Tangent of x in radians, float64 array."""
    return _tan(_f64(x)).astype(np.float64)


def arctan2(y, x) -> np.ndarray:
    """atan2(y, x) in radians, broadcast float64 array."""
    return _atan2(_f64(y), _f64(x)).astype(np.float64)
