"""Closed-form integrals of the GFlash radial profile over readout cells.

One radial component of scale R (mm) has the transverse density (per mm^2)

    rho(x, y) = R^2 / (pi (x^2 + y^2 + R^2)^2),

i.e. f(r) = 2 r R^2 / (r^2 + R^2)^2 in r (Grindhammer & Peters, hep-ex/0001020), normalised to 1.
Its integral over the rectangle [0, X] x [0, Y] is (checked against numerical quadrature in
tests/test_gflash.py)

    H(X, Y) = ( X/a atan(Y/a) + Y/b atan(X/b) ) / (2 pi),   a = sqrt(X^2 + R^2), b = sqrt(Y^2 + R^2),

odd in X and in Y, so any axis-aligned cell is four corner terms; its integral over a ring
r1 < r < r2 is r2^2/(r2^2 + R^2) - r1^2/(r1^2 + R^2). GFlash's profile is a mixture of a core and
a tail component: p * core + (1 - p) * tail. All lengths in mm.
"""

from __future__ import annotations

import numpy as np


def corner_integral(x: np.ndarray, y: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """H(x, y): fraction of one component (scale mm) in [0, x] x [0, y] (signed, broadcasts)."""
    a = np.sqrt(x * x + scale * scale)
    b = np.sqrt(y * y + scale * scale)
    return (x / a * np.arctan(y / a) + y / b * np.arctan(x / b)) / (2.0 * np.pi)


def rectangle_fraction(x1, x2, y1, y2, scale) -> np.ndarray:
    """Fraction of one component (axis at 0, scale mm) in the cells [x1, x2] x [y1, y2] (mm)."""
    return (corner_integral(x2, y2, scale) - corner_integral(x1, y2, scale)
            - corner_integral(x2, y1, scale) + corner_integral(x1, y1, scale))


def ring_fraction(r1, r2, scale) -> np.ndarray:
    """Fraction of one component (scale mm) in the rings r1 < r < r2 (mm)."""
    r1, r2 = np.asarray(r1, dtype=np.float64), np.asarray(r2, dtype=np.float64)
    return r2 ** 2 / (r2 ** 2 + scale ** 2) - r1 ** 2 / (r1 ** 2 + scale ** 2)


def mixture(core: np.ndarray, tail: np.ndarray, p: float) -> np.ndarray:
    """Core + tail mixture of per-cell fractions: p * core + (1 - p) * tail."""
    return p * core + (1.0 - p) * tail


def unpack(theta: np.ndarray) -> tuple[float, float, float]:
    """(ln Rc, ln Rt, logit p) -> (Rc mm, Rt mm, p)."""
    return float(np.exp(theta[0])), float(np.exp(theta[1])), float(1.0 / (1.0 + np.exp(-theta[2])))
