"""Cross-check calobench's FPD and KPD against jetnet 0.2.5 on the same feature arrays.

jetnet 0.2.5 needs numpy < 2 and numba, so it runs in its own interpreter:

    python3 -m venv /tmp/jetvenv && /tmp/jetvenv/bin/pip install torch==2.13.0 jetnet==0.2.5 \
        "numpy<2" "pandas<2.3" "pyarrow<17"
    python benchmarks/studies/crosscheck_jetnet.py --jetnet-python /tmp/jetvenv/bin/python

Both sides get the same (n, d) arrays: a reference and three distorted copies (same
distribution, shifted mean, wider spread). Printed: value and error of each implementation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from calobench.metrics.fpd import fpd, kpd

JETNET_SNIPPET = """
import json, sys
import numpy as np
from jetnet.evaluation import gen_metrics as g
out = {}
real = np.load(sys.argv[1])
for name in sys.argv[2:]:
    gen = np.load(name)
    out[name] = {"fpd": list(g.fpd(real, gen, min_samples=5000, max_samples=20000)),
                 "kpd": list(g.kpd(real, gen))}
print(json.dumps(out))
"""


def samples(n: int = 20000, d: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.normal(0, 0.3, (d, d))
    base = lambda: rng.normal(0, 1, (n, d)) @ (np.eye(d) + mix)  # noqa: E731
    return {"real": base(), "same": base(), "shifted": base() + 0.1, "wider": base() * 1.1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jetnet-python", required=True, help="interpreter with jetnet 0.2.5 installed")
    args = parser.parse_args()
    data = samples()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, array in data.items():
            paths[name] = str(Path(tmp) / f"{name}.npy")
            np.save(paths[name], array)
        others = [paths[k] for k in ("same", "shifted", "wider")]
        proc = subprocess.run([args.jetnet_python, "-c", JETNET_SNIPPET, paths["real"], *others],
                              capture_output=True, text=True, check=True)
        theirs = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{'sample':8} {'FPD calobench':>24} {'FPD jetnet':>24} {'KPD calobench':>24} {'KPD jetnet':>24}")
        for name in ("same", "shifted", "wider"):
            ours_f = fpd(data["real"], data[name], min_samples=5000, max_samples=20000)
            ours_k = kpd(data["real"], data[name])
            jf, jk = theirs[paths[name]]["fpd"], theirs[paths[name]]["kpd"]
            print(f"{name:8} {ours_f[0]:13.5f} +- {ours_f[1]:.5f} {jf[0]:13.5f} +- {jf[1]:.5f} "
                  f"{ours_k[0]:13.6f} +- {ours_k[1]:.6f} {jk[0]:13.6f} +- {jk[1]:.6f}")


if __name__ == "__main__":
    main()
