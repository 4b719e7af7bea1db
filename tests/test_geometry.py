"""Geometries: cell counts, cell order, positions, point-cloud view, immutability."""

import numpy as np
import pytest

from calobench import CalobenchError, get_geometry, geometry_names
from calobench.data.geometry import read_binning
from calobench.datasets.calochallenge import binning_file


@pytest.mark.parametrize("name, cells, layers", [
    ("stcf11x11", 121, 1), ("bes3-11x11", 121, 1), ("darkshine", 4400, 11),
    ("calochallenge-1-photons", 368, 5), ("calochallenge-1-pions", 533, 7),
    ("calochallenge-2", 6480, 45), ("calochallenge-3", 40500, 45),
])
def test_cell_and_layer_counts(name, cells, layers):
    geometry = get_geometry(name)
    assert geometry.n_cells == cells
    assert geometry.n_layers == layers
    assert sum(s.stop - s.start for s in geometry.layer_slices) == cells
    assert geometry.centres.shape == (cells, 3) and geometry.sizes.shape == (cells, 3)


def test_calochallenge_2_cell_order_is_layer_alpha_r():
    geometry = get_geometry("calochallenge-2")
    layer, alpha, r = 7, 3, 5  # r fastest
    index = (layer * 16 + alpha) * 9 + r
    x, y, _ = geometry.centres[index]
    assert geometry.layer_index[index] == layer
    assert np.hypot(x, y) == pytest.approx((r + 0.5) * 4.65)
    alpha_centre = -np.pi + (alpha + 0.5) * 2 * np.pi / 16
    assert np.arctan2(y, x) == pytest.approx(alpha_centre)
    assert geometry.threshold == pytest.approx(0.01515)


def test_dataset_1_photons_binning_read_from_official_xml():
    particle, pid, layers = read_binning(binning_file("binning_dataset_1_photons.xml"))
    assert particle == "photon" and pid == 22
    assert [b.layer_id for b in layers] == [0, 1, 2, 3, 12]
    assert [b.n_cells for b in layers] == [8, 160, 190, 5, 5]
    # single alpha bin: centre at alpha = 0, so y = 0
    geometry = get_geometry("calochallenge-1-photons")
    first = geometry.layer_slices[0]
    assert np.all(geometry.centres[first, 1] == 0.0)


def test_grid_centred_on_middle_crystal():
    geometry = get_geometry("stcf11x11")
    centre = geometry.centres[5 * 11 + 5]
    assert centre[0] == 0.0 and centre[1] == 0.0
    assert geometry.centres[5 * 11 + 6][0] == pytest.approx(50.0)  # x fastest
    assert geometry.centres[6 * 11 + 5][1] == pytest.approx(50.0)
    darkshine = get_geometry("darkshine")
    # even grid: no cell centre on the axis, layer depth 40 mm
    assert not np.any((darkshine.centres[:, 0] == 0) & (darkshine.centres[:, 1] == 0))
    assert darkshine.centres[400, 2] == pytest.approx(60.0)


def test_cepc_is_a_barrel_point_cloud():
    geometry = get_geometry("cepc")
    assert geometry.kind == "pointcloud" and geometry.n_cells is None
    radii = np.asarray(geometry.barrel.layer_radii)
    assert len(radii) == 30 and np.all(np.diff(radii) > 0)
    assert 1800.0 <= radii[0] < 1810.0
    assert geometry.barrel.cell_size == 5.0
    layer = geometry.barrel.layer_of(radii + 0.1, np.zeros(30))
    assert np.array_equal(layer, np.arange(30))


def test_point_cloud_view_of_voxels():
    geometry = get_geometry("stcf11x11")
    showers = np.zeros((2, 121), np.float32)
    showers[0, 60] = 100.0
    showers[1, [0, 120]] = [1.0, 2.0]
    cells, offsets = geometry.point_cloud(showers)
    assert offsets.tolist() == [0, 1, 3]
    assert cells[0].tolist() == [0.0, 0.0, 140.0, 100.0]
    assert cells[1, :2].tolist() == [-250.0, -250.0] and cells[2, 3] == 2.0


def test_geometry_is_immutable_and_unknown_name_is_an_error():
    geometry = get_geometry("calochallenge-2")
    with pytest.raises(ValueError):
        geometry.centres[0, 0] = 1.0
    with pytest.raises(Exception):
        geometry.name = "other"
    with pytest.raises(CalobenchError, match="valid names"):
        get_geometry("nope")
    assert "cepc" in geometry_names()
