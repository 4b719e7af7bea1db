"""`calobench compare` on every geometry, on plain CaloChallenge files, and on bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from calobench.cli import main
from calobench.datasets import geometry_names, get_geometry
from calobench.data.showerfile import save
from calobench.data.showerset import CellList, ShowerSet

QUICK = ["--metrics", "hist,resolution,fpd,prdc,cls-high,cls-xgb", "--repeats", "1", "--cls-epochs", "2",
         "--cls-hidden", "32", "--quiet"]


def _voxel_set(name: str, n: int, seed: int) -> ShowerSet:
    g = get_geometry(name)
    rng = np.random.default_rng(seed)
    e = 10 ** rng.uniform(3, 4, n)
    r2 = g.centres[:, 0] ** 2 + g.centres[:, 1] ** 2
    prof = np.exp(-r2 / (2 * 40.0 ** 2)) * np.exp(-g.centres[:, 2] / (g.centres[:, 2].max() + 1))
    prof /= prof.sum()
    x = e[:, None] * prof[None, :] * rng.gamma(5, 0.2, size=(n, g.n_cells)) * 0.9
    return ShowerSet(g, e, x.astype(np.float32))


def _cloud_set(n: int, seed: int) -> ShowerSet:
    g = get_geometry("cepc")
    rng = np.random.default_rng(seed)
    radii = np.asarray(g.barrel.layer_radii)
    showers = []
    for _ in range(n):
        m = rng.integers(50, 120)
        layer = rng.integers(0, 30, m)
        phi = rng.normal(0.3, 0.01, m)
        cells = np.stack([radii[layer] * np.cos(phi), radii[layer] * np.sin(phi), rng.normal(0, 20, m),
                          rng.exponential(5.0, m) + 0.1], axis=1)
        showers.append(cells)
    e = rng.uniform(3e4, 5e4, n)
    return ShowerSet(g, e, CellList.from_showers(showers),
                     conditions={"theta": np.full(n, 90.0), "phi": np.full(n, 17.0)})


@pytest.mark.parametrize("name", geometry_names())
def test_compare_runs_on_every_geometry(tmp_path, name, capsys):
    n = 240
    if name == "cepc":
        gen, ref = _cloud_set(n, 1), _cloud_set(n, 2)
    else:
        gen, ref = _voxel_set(name, n, 1), _voxel_set(name, n, 2)
    save(gen, tmp_path / "gen.h5")
    save(ref, tmp_path / "ref.h5")
    out = tmp_path / "r.json"
    args = ["compare", str(tmp_path / "gen.h5"), str(tmp_path / "ref.h5"), "--dataset", name, "--json", str(out)]
    assert main(args + QUICK) == 0
    metrics = json.loads(out.read_text())["metrics"]
    for key in ("auc_high", "auc_high_xgb", "fpd", "kpd", "sep_etot_einc", "w1_etot_einc", "precision"):
        assert key in metrics
    assert "auc_high" in capsys.readouterr().out


def _plain_challenge_file(path, n: int, seed: int, scale: float = 1.0) -> None:
    ss = _voxel_set("calochallenge-2", n, seed)
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=ss.energies.reshape(-1, 1).astype(np.float32))
        f.create_dataset("showers", data=ss.showers * scale)


def test_compare_plain_calochallenge_files_with_low_level_and_report(tmp_path):
    _plain_challenge_file(tmp_path / "a.h5", 300, 1)
    _plain_challenge_file(tmp_path / "b.h5", 300, 2)
    out = tmp_path / "r.json"
    args = ["compare", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "--json", str(out), "--report",
            str(tmp_path / "rep"), "--metrics", "hist,resolution,cls-low", "--repeats", "1", "--cls-epochs", "1",
            "--cls-hidden", "16", "--quiet"]
    assert main(args) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert {"auc_low", "sep_etot_einc", "chi2_etot_einc", "js_etot_einc", "sep_voxel_energy",
            "sep_ec_eta_0", "sep_width_r_44"} <= set(metrics)
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10000


def test_compare_bad_input_exits_2(tmp_path, capsys):
    _plain_challenge_file(tmp_path / "a.h5", 50, 1)
    save(_voxel_set("stcf11x11", 50, 1), tmp_path / "s.h5")
    with h5py.File(tmp_path / "neg.h5", "w") as f:
        f.create_dataset("incident_energies", data=-np.ones((50, 1), np.float32))
        f.create_dataset("showers", data=np.ones((50, 6480), np.float32))
    cases = [
        [str(tmp_path / "missing.h5"), str(tmp_path / "a.h5")],
        [str(tmp_path / "a.h5"), str(tmp_path / "s.h5")],
        [str(tmp_path / "a.h5"), str(tmp_path / "a.h5"), "--metrics", "nonsense"],
        [str(tmp_path / "a.h5"), str(tmp_path / "a.h5"), "--repeats", "0"],
        [str(tmp_path / "neg.h5"), str(tmp_path / "a.h5")],
    ]
    for case in cases:
        assert main(["compare"] + case + ["--quiet"]) == 2, case
        err = capsys.readouterr().err.strip()
        assert err.startswith("calobench: error:") and "\n" not in err, err
