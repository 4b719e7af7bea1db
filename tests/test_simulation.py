"""Geant4 simulation (calobench simulate): physics checks, files, resume, errors.

Geant4 runs are small (seconds each) and skip cleanly without geant4_pybind.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import h5py
import numpy as np
import pytest

import calobench
from calobench.datasets import geant4_ms_per_event, get_dataset, get_geometry
from calobench.errors import CalobenchError
from calobench.simulation import g4env, runner
from calobench.simulation.setups import Primaries, make_setup

HAS_G4 = importlib.util.find_spec("geant4_pybind") is not None
needs_g4 = pytest.mark.skipif(not HAS_G4, reason="geant4_pybind not installed (pip install calobench[geant4])")
EMBEDDED = ["stcf11x11", "bes3-11x11", "darkshine", "cepc", "calochallenge-2", "calochallenge-3"]


def _axis_photons(dataset: str, n: int, energy: float, pdg: int = 22) -> Primaries:
    """n particles along the grid axis through the middle of the hit cell."""
    setup = make_setup(get_dataset(dataset))
    if dataset == "darkshine":
        return setup.sample(np.random.default_rng(0), np.full(n, pdg), np.full(n, energy))
    position = np.tile([0.0, 0.0, -1.0], (n, 1))
    direction = np.tile([0.0, 0.0, 1.0], (n, 1))
    return Primaries(np.full(n, pdg), np.full(n, energy), position, direction, {})


@needs_g4
def test_stcf_containment_of_1gev_photons():
    showers, ms = runner.simulate_primaries("stcf11x11", _axis_photons("stcf11x11", 150, 1000.0), seed=3)
    frac = showers.sum(axis=1) / 1000.0
    centre = showers[:, 60] / 1000.0
    assert 0.93 <= frac.mean() <= 0.99
    assert 0.70 <= centre.mean() <= 0.85
    assert np.all(ms > 0)


@needs_g4
def test_darkshine_longitudinal_maximum_of_4gev_electrons():
    showers, _ = runner.simulate_primaries("darkshine", _axis_photons("darkshine", 40, 4000.0, 11), seed=4)
    profile = showers.reshape(40, 11, -1).sum(axis=(0, 2))
    assert int(np.argmax(profile)) < 3
    assert 0.97 < showers.sum() / (40 * 4000.0) <= 1.0


@needs_g4
def test_cepc_cell_counts_and_barycenter_radius():
    setup = make_setup(get_dataset("cepc"))
    prim = setup.sample(np.random.default_rng(5), np.full(4, 22), np.full(4, 40000.0))
    cells, _ = runner.simulate_primaries("cepc", prim, seed=5)
    counts = cells.counts
    assert np.all((counts >= 800) & (counts <= 2100)), counts
    event = cells.event_index
    e = cells.cells[:, 3].astype(np.float64)
    r = np.hypot(cells.cells[:, 0], cells.cells[:, 1])
    bary = np.bincount(event, r * e) / np.bincount(event, e)
    assert np.all((bary > 1850) & (bary < 1950)), bary
    # the output is rotated to the sampled phi
    phi = np.degrees(np.arctan2(np.bincount(event, cells.cells[:, 1] * e), np.bincount(event, cells.cells[:, 0] * e)))
    dphi = (phi - prim.conditions["phi"] + 180.0) % 360.0 - 180.0
    assert np.all(np.abs(dphi) < 1.0)
    # cells sit on the layer radii
    radii = np.asarray(get_geometry("cepc").barrel.layer_radii)
    assert np.allclose(radii[np.argmin(np.abs(r[:, None] - radii[None, :]), axis=1)], r, atol=0.01)


@needs_g4
def test_simulate_resume_and_determinism(tmp_path, monkeypatch):
    args = dict(dataset="stcf11x11", n=12, particles=["gamma"], energy="100:500", seed=7, chunk=6,
                progress=False)
    first = runner.simulate(output=tmp_path / "a.h5", workers=2, **args)
    calls = {"n": 0}
    real_write = runner._write_part

    def interrupt_after_first(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_write(*a, **k)

    monkeypatch.setattr(runner, "_write_part", interrupt_after_first)
    with pytest.raises(KeyboardInterrupt):
        runner.simulate(output=tmp_path / "b.h5", workers=1, **args)
    assert not (tmp_path / "b.h5").exists()
    assert sorted(p.name for p in (tmp_path / "b.h5.parts").glob("chunk-*")) == ["chunk-00000.npz"]
    monkeypatch.setattr(runner, "_write_part", real_write)
    second = runner.simulate(output=tmp_path / "b.h5", workers=1, **args)
    assert not (tmp_path / "b.h5.parts").exists()
    a, b = calobench.load(str(first), "stcf11x11"), calobench.load(str(second), "stcf11x11")
    np.testing.assert_array_equal(a.showers, b.showers)
    np.testing.assert_array_equal(a.energies, b.energies)
    assert list(a.conditions) == list(get_dataset("stcf11x11").conditions)
    prov = a.provenance
    assert "Geant4" in prov["simulator"] and prov["physics_list"] and prov["seed"] == 7
    assert prov["geant4_timing"]["mean_ms"] > 0
    assert np.all((a.energies >= 100) & (a.energies <= 500))


def test_energy_parsing_and_bad_input(tmp_path):
    assert runner.parse_energy("50:2GeV") == ("range", [50.0, 2000.0])
    assert runner.parse_energy("1000,2000") == ("list", [1000.0, 2000.0])
    for bad in ("abc", "5:1", "-3", "1:2:3"):
        with pytest.raises(CalobenchError):
            runner.parse_energy(bad)
    with pytest.raises(CalobenchError, match="no Geant4 set-up"):
        runner.simulate("calochallenge-1-pions", 10, tmp_path / "x.h5")
    with pytest.raises(CalobenchError, match="particle"):
        runner.simulate("stcf11x11", 10, tmp_path / "x.h5", particles=["e-"])
    from calobench.cli import main
    assert main(["simulate", "--dataset", "nope", "-n", "3", "-o", str(tmp_path / "x.h5")]) == 2
    assert not (tmp_path / "x.h5").exists()


def test_missing_geant4_pybind_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "geant4_pybind", None)
    with pytest.raises(CalobenchError, match=r"pip install calobench\[geant4\]"):
        g4env.import_geant4()


@needs_g4
def test_missing_ctypes_symbols_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(g4env.SYMBOLS, "brem_model", "_ZN99NoSuchSymbolC1Ev")
    with pytest.raises(CalobenchError, match="geant4-pybind==0.1.3"):
        g4env.check_nodata_symbols()


def test_env_setup_uses_a_writable_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CALOBENCH_CACHE", str(tmp_path))
    for var in ("G4ENSDFSTATEDATA", "G4LEDATA", "GEANT4_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert g4env.setup_env() == g4env.NODATA_LIST
    assert (tmp_path / "geant4-nodata" / "ENSDFSTATE" / "ENSDFSTATE.dat").is_file()
    fake = tmp_path / "emlow"
    (fake / "livermore").mkdir(parents=True)
    (fake / "brem_SB").mkdir()
    monkeypatch.setenv("G4LEDATA", str(fake))
    assert g4env.setup_env() == g4env.STANDARD_LIST


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_reference(name):
    ref = calobench.load(name)
    prov = ref.provenance
    assert "Geant4" in prov["simulator"]
    assert prov["physics_list"] in (g4env.STANDARD_LIST, g4env.NODATA_LIST)
    assert prov["command"].startswith("calobench simulate") and f"--dataset {name}" in prov["command"]
    assert list(ref.conditions) == list(get_dataset(name).conditions)
    assert len(ref) >= 100
    ms = geant4_ms_per_event(name)
    assert ms is not None and ms > 0
    assert geant4_ms_per_event(name, float(np.median(ref.energies))) > 0


@pytest.mark.parametrize("name", EMBEDDED)
def test_response_is_linear_within_two_percent(name):
    """Mean deposited energy in four energy bins lies within 2 % of one straight line a E + b
    (plus two standard errors of each bin mean, for the few hundred events of the sampling
    calorimeters)."""
    ref = calobench.load(name)
    e, dep = ref.energies, ref.total_energy()
    edges = np.quantile(e, np.linspace(0, 1, 5))
    which = np.clip(np.searchsorted(edges, e, side="right") - 1, 0, 3)
    mean_e = np.array([e[which == k].mean() for k in range(4)])
    mean_dep = np.array([dep[which == k].mean() for k in range(4)])
    sem = np.array([dep[which == k].std() / np.sqrt((which == k).sum()) for k in range(4)]) / mean_dep
    slope, intercept = np.polyfit(mean_e, mean_dep, 1, w=1.0 / np.maximum(sem * mean_dep, 1e-9))
    deviation = np.abs(mean_dep - (slope * mean_e + intercept)) / mean_dep
    assert np.all(deviation < 0.02 + 2 * sem), (deviation, sem)
    assert slope > 0


def test_timing_unknown_is_none():
    assert geant4_ms_per_event("calochallenge-1-pions") is None
