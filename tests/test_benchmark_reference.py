"""Benchmark references built from a recipe: fingerprint, cache, fallback, and a real Geant4 build."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import numpy as np
import pytest

import calobench
from calobench.data.showerset import ShowerSet
from calobench.datasets import get_dataset, registry
from calobench.datasets.benchmark_reference import (ReferenceRecipe, cached_path, content_fingerprint, verified,
                                                    write_stamp)
from calobench.errors import CalobenchError

HAS_G4 = importlib.util.find_spec("geant4_pybind") is not None


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CALOBENCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _with_recipe(monkeypatch, name: str, recipe: ReferenceRecipe):
    dataset = dataclasses.replace(get_dataset(name), recipe=recipe)
    monkeypatch.setitem(registry._DATASETS, name, dataset)
    return dataset


def test_fingerprint_ignores_file_layout_but_not_content(tmp_path):
    ref = calobench.load("stcf11x11").slice(0, 300)
    first = content_fingerprint(ref)
    calobench.save(ref, tmp_path / "copy.h5")  # other chunking / compression settings than the embedded file
    assert content_fingerprint(calobench.load(tmp_path / "copy.h5", dataset="stcf11x11")) == first
    showers = ref.showers.copy()
    showers[17, 60] += 0.001
    changed = ShowerSet(ref.geometry, ref.energies, showers, ref.conditions, dataset=ref.dataset)
    assert content_fingerprint(changed) != first
    assert len(first) == 64


def test_point_cloud_fingerprint_is_stable(tmp_path):
    ref = calobench.load("cepc").slice(0, 40)
    calobench.save(ref, tmp_path / "cepc.h5")
    assert content_fingerprint(calobench.load(tmp_path / "cepc.h5", dataset="cepc")) == content_fingerprint(ref)


def test_stamp_detects_a_changed_file(tmp_path):
    path = tmp_path / "ref.h5"
    path.write_bytes(b"x" * 100)
    assert not verified(path, "abc")
    write_stamp(path, "abc")
    assert verified(path, "abc")
    assert not verified(path, "abd")
    path.write_bytes(b"y" * 101)
    assert not verified(path, "abc")


def test_unbuilt_reference_falls_back_to_the_embedded_sample(data_dir, monkeypatch):
    ds = _with_recipe(monkeypatch, "cepc", ReferenceRecipe(events=10000, seed=1, chunk=20, fingerprint="0" * 64,
                                                            physics="x", geant4_version="y", core_minutes=48))
    assert ds.built_path is None
    assert ds.reference_path == ds.embedded_path
    assert len(calobench.load("cepc")) == 300
    # a verified cache file takes over
    path = cached_path("cepc", ds.version)
    path.parent.mkdir(parents=True)
    calobench.save(calobench.load("cepc").slice(0, 50), path)
    write_stamp(path, "0" * 64)
    assert ds.built_path == path
    assert len(calobench.load("cepc")) == 50
    assert len(registry.load_reference("cepc", embedded=True)) == 300


def test_benchmark_version_uses_the_content_fingerprint(data_dir, monkeypatch):
    from calobench.leaderboard.entry import benchmark_version

    ds = _with_recipe(monkeypatch, "cepc", ReferenceRecipe(events=50, seed=1, chunk=20, fingerprint="ab" * 32,
                                                            physics="x", geant4_version="y"))
    recipe_version = f"cepc/data-v{ds.version}-abababab/metrics-v2"
    # the current benchmark is the recipe's, before and after it is built here
    assert benchmark_version("cepc") == recipe_version
    embedded = benchmark_version("cepc", ds.embedded_path)  # a run on the embedded sample (tiny)
    assert embedded != recipe_version and embedded.startswith(f"cepc/data-v{ds.version}-")
    path = cached_path("cepc", ds.version)
    path.parent.mkdir(parents=True)
    calobench.save(calobench.load("cepc").slice(0, 50), path)
    write_stamp(path, "ab" * 32)
    assert benchmark_version("cepc") == recipe_version
    assert benchmark_version("cepc", path) == recipe_version
    assert benchmark_version("cepc", ds.embedded_path) == embedded


def test_status_lists_every_dataset(cli):
    result = cli("reference", "status")
    assert result.returncode == 0, result.stderr
    assert "stcf11x11" in result.stdout and "embedded" in result.stdout


def test_build_refuses_a_dataset_without_recipe(data_dir):
    from calobench.simulation.benchmark_reference import build_reference

    with pytest.raises(CalobenchError, match="no reference recipe"):
        build_reference("stcf11x11")


@pytest.mark.skipif(not HAS_G4, reason="geant4_pybind not installed")
@pytest.mark.geant4
def test_geant4_build_reproduces_the_embedded_prefix_and_checks_the_fingerprint(data_dir, monkeypatch):
    """A recipe of the first 200 darkshine events (seed 1, chunk 200: the embedded file's own
    recipe, one whole chunk) rebuilt with Geant4 must give exactly the embedded file's first 200 showers."""
    from calobench.simulation.benchmark_reference import build_reference
    from calobench.simulation.g4env import NODATA_LIST

    embedded = calobench.load("darkshine")
    recipe = ReferenceRecipe(events=200, seed=1, chunk=200, fingerprint=content_fingerprint(embedded.slice(0, 200)),
                             physics=NODATA_LIST, geant4_version="geant4-11-04-patch-01")
    ds = _with_recipe(monkeypatch, "darkshine", recipe)
    path = build_reference("darkshine", progress=False)
    assert path == cached_path("darkshine", ds.version) and ds.built_path == path
    assert np.array_equal(calobench.load(path, dataset="darkshine").showers, embedded.slice(0, 200).showers)
    # a recipe whose fingerprint does not match: an error, and the work is kept aside
    _with_recipe(monkeypatch, "darkshine", dataclasses.replace(recipe, fingerprint="f" * 64))
    with pytest.raises(CalobenchError, match="fingerprint .*unverified"):
        build_reference("darkshine", progress=False, force=True)
    assert path.with_name(path.stem + ".unverified.h5").is_file()
    assert not list(path.parent.glob(".building-*"))
    json.loads(path.with_name(path.name + ".verified.json").read_text())
