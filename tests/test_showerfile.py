"""Shower files: bit-for-bit round trips, plain CaloChallenge files, chunked reading, atomic writes."""

import json

import h5py
import numpy as np
import pytest

import calobench
from calobench import CalobenchError, CellList, ShowerSet, get_geometry, geometry_names
from calobench.data.showerfile import ShowerFileWriter


def random_showerset(name: str, n: int = 25, seed: int = 1) -> ShowerSet:
    """Sparse random showers with float32 values that exercise every bit pattern."""
    rng = np.random.default_rng(seed)
    geometry = get_geometry(name)
    energies = rng.uniform(100.0, 5000.0, n)
    conditions = {"theta": rng.uniform(70, 110, n), "particle": rng.choice([22.0, 11.0], n)}
    if geometry.is_voxel:
        showers = rng.exponential(3.0, (n, geometry.n_cells)).astype(np.float32)
        showers[rng.random(showers.shape) < 0.7] = 0.0
        showers[0, 0] = -0.25  # generated showers may have negative cells
    else:
        counts = rng.integers(0, 40, n)
        showers = CellList.from_showers([rng.normal(0, 100, (c, 4)).astype(np.float32) for c in counts])
    return ShowerSet(geometry, energies, showers, conditions, particle="gamma",
                     provenance={"generator": "test", "seed": seed})


def assert_same(a: ShowerSet, b: ShowerSet) -> None:
    assert a.geometry.name == b.geometry.name
    assert np.array_equal(a.energies, b.energies) and a.energies.dtype == b.energies.dtype
    assert list(a.conditions) == list(b.conditions)
    for key in a.conditions:
        assert np.array_equal(a.conditions[key], b.conditions[key])
    if a.geometry.is_voxel:
        assert a.showers.dtype == b.showers.dtype == np.float32
        assert a.showers.tobytes() == b.showers.tobytes()  # bit for bit
    else:
        assert a.showers.cells.tobytes() == b.showers.cells.tobytes()
        assert np.array_equal(a.showers.offsets, b.showers.offsets)


@pytest.mark.parametrize("name", geometry_names())
@pytest.mark.parametrize("sparse", [False, True])
def test_round_trip_every_geometry_bit_for_bit(tmp_path, name, sparse):
    original = random_showerset(name, n=5 if name == "calochallenge-3" else 25)
    path = calobench.save(original, tmp_path / "s.h5", sparse=sparse)
    loaded = calobench.load(path)
    assert_same(original, loaded)
    assert loaded.particle == "gamma" and loaded.provenance == {"generator": "test", "seed": 1}
    # and once more: a loaded set written again is identical
    again = calobench.load(calobench.save(loaded, tmp_path / "t.h5"))
    assert_same(original, again)


def test_plain_calochallenge_file_opens_without_conversion(tmp_path):
    """Written exactly as the challenge describes: h5py, gzip, (N,1) energies, (N,V) showers."""
    rng = np.random.default_rng(3)
    energies = (1000.0 * 2 ** rng.uniform(0, 10, (40, 1))).astype(np.float32)
    showers = rng.exponential(1.0, (40, 6480)).astype(np.float32)
    path = tmp_path / "dataset_2_1.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=energies, compression="gzip")
        f.create_dataset("showers", data=showers, compression="gzip")
    loaded = calobench.load(path)
    assert loaded.geometry.name == "calochallenge-2"
    assert loaded.source.geometry_source == "inferred"
    assert np.array_equal(loaded.energies, energies[:, 0])
    assert np.array_equal(loaded.showers, showers)
    assert loaded.conditions == {}
    # written back by calobench, the challenge keys keep their shapes and values
    out = calobench.save(loaded, tmp_path / "back.h5")
    with h5py.File(out) as f:
        assert f["incident_energies"].shape == (40, 1) and f["showers"].shape == (40, 6480)
        assert np.array_equal(f["showers"][()], showers)
        assert np.array_equal(f["incident_energies"][()], energies)


@pytest.mark.parametrize("name, sparse", [("calochallenge-2", False), ("darkshine", True), ("cepc", False)])
def test_chunks_concatenate_to_the_whole(tmp_path, name, sparse):
    original = random_showerset(name, n=53)
    path = calobench.save(original, tmp_path / "s.h5", sparse=sparse)
    loaded = calobench.load(path)
    chunks = list(loaded.iter_chunks(10))
    assert [len(c) for c in chunks] == [10, 10, 10, 10, 10, 3]
    assert not loaded.is_loaded  # chunked reading never loaded the whole file
    assert_same(original, ShowerSet.concatenate(chunks))


def test_writer_is_atomic_on_error(tmp_path):
    original = random_showerset("stcf11x11")
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with ShowerFileWriter(target, original.geometry) as writer:
            writer.append(original.slice(0, 10))
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_file_survives_a_failed_overwrite(tmp_path):
    original = random_showerset("stcf11x11")
    target = calobench.save(original, tmp_path / "out.h5")
    before = target.read_bytes()
    with pytest.raises(CalobenchError):
        with ShowerFileWriter(target, original.geometry, ["missing"]) as writer:
            writer.append(original)
    assert target.read_bytes() == before


def test_point_cloud_view_and_take():
    showers = random_showerset("stcf11x11", n=6)
    cloud = showers.point_cloud()
    assert len(cloud) == 6
    assert cloud.counts.tolist() == np.count_nonzero(showers.showers, axis=1).tolist()
    assert np.allclose(np.bincount(cloud.event_index, cloud.cells[:, 3], 6), showers.total_energy(), rtol=1e-5)
    cepc = random_showerset("cepc", n=8)
    picked = cepc.take(np.array([5, 1]))
    assert np.array_equal(picked.showers[0], cepc.showers[5])
    assert np.array_equal(picked.showers[1], cepc.showers[1])


def test_provenance_is_json_in_root_attribute(tmp_path):
    path = calobench.save(random_showerset("bes3-11x11"), tmp_path / "s.h5")
    with h5py.File(path) as f:
        assert json.loads(f.attrs["provenance"]) == {"generator": "test", "seed": 1}
        assert f.attrs["geometry"] == "bes3-11x11"
        assert list(f["conditions"].attrs["names"]) == ["theta", "particle"]
