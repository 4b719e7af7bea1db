"""Geant4 primaries do not depend on the CPU's SIMD extensions (calobench.simulation.portable_math).

numpy's AVX-512 loops round exp, log, tan and arctan2 differently from its other loops; one last
bit of a primary's energy changes the Geant4 history, so a reference built from its recipe on an
AVX-512 CPU did not reproduce the fingerprint recorded on another CPU.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np

import calobench
from calobench.simulation import portable_math
from calobench.simulation.runner import default_energy, parse_energy, sample_chunk

DATASETS = ["stcf11x11", "bes3-11x11", "darkshine", "cepc", "calochallenge-2", "calochallenge-3"]

#: prints a digest of every dataset's chunk-0 and chunk-1 primaries (run in a subprocess)
DIGEST = """
import hashlib, json, sys
import numpy as np
from calobench.datasets import get_dataset
from calobench.simulation.runner import default_energy, parse_energy, sample_chunk
out = {}
for name in sys.argv[1:]:
    mode, values = parse_energy(default_energy(name))
    h = hashlib.sha256()
    for chunk in (0, 1):
        p = sample_chunk(name, 1, chunk, 200, list(get_dataset(name).particles), mode, values)
        for a in (p.energy, p.position, p.direction, *[p.conditions[k] for k in sorted(p.conditions)]):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    out[name] = h.hexdigest()
print(json.dumps(out))
"""


def _digests(env_extra: dict) -> dict:
    env = {**os.environ, **env_extra}
    done = subprocess.run([sys.executable, "-c", DIGEST, *DATASETS], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(done.stdout)


def test_portable_functions_equal_the_c_library():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-3, 3, 2000), rng.uniform(0.1, 5000, 2000)
    assert np.array_equal(portable_math.exp(x), [math.exp(v) for v in x])
    assert np.array_equal(portable_math.log(y), [math.log(v) for v in y])
    assert np.array_equal(portable_math.tan(x), [math.tan(v) for v in x])
    assert np.array_equal(portable_math.arctan2(x, y), [math.atan2(a, b) for a, b in zip(x, y)])
    assert portable_math.exp(np.zeros((2, 3))).shape == (2, 3) and portable_math.exp([0.0]).dtype == np.float64


def test_primaries_do_not_depend_on_numpys_simd_loops():
    # numpy ignores CPU features it does not know or the CPU lacks, so this runs everywhere; on an
    # AVX-512 machine the second run takes other loops, which the primaries must not notice
    default = _digests({})
    without_avx512 = _digests({"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512_SKX AVX512F"})
    assert default == without_avx512


def test_calochallenge_3_primaries_equal_the_embedded_production():
    # the embedded sample is the first 600 showers of the recipe's production (made on an AMD EPYC)
    mode, values = parse_energy(default_energy("calochallenge-3"))
    energies = np.concatenate([sample_chunk("calochallenge-3", 1, c, 50, ["e-"], mode, values).energy
                               for c in range(12)])
    np.testing.assert_array_equal(energies, calobench.load("calochallenge-3").energies[:600])
