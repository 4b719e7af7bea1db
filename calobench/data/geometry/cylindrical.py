"""CaloChallenge 2022 geometries, built by reading the official binning XML files.

Cell order is the challenge's: layer outermost, then alpha, then r (r fastest).
Alpha bins are equal bins over [-pi, pi); a layer with ``r_edges="0"`` has no cells.
The (x, y) of a cell is (r cos alpha, r sin alpha) at the bin centres, as in the
challenge's XMLHandler ("eta" = x, "phi" = y).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from calobench.errors import CalobenchError
from calobench.data.geometry.base import CYLINDRICAL, Geometry, LayerBinning

#: Depth of one readout layer in the Par04 W/Si geometry of datasets 2 and 3:
#: two physical layers of 1.4 mm W + 0.3 mm Si (reference/calochallenge/README.md).
PAR04_LAYER_DEPTH_MM = 3.4

#: Nominal depth (mm) of the ATLAS layers of dataset 1, measured from the presampler,
#: for drawing and point-cloud views only (the challenge gives no depths).
ATLAS_LAYER_DEPTH_MM = {0: 0.0, 1: 95.0, 2: 240.0, 3: 455.0, 12: 1000.0, 13: 1500.0, 14: 2000.0}

#: The challenge's histogram ranges in mm (evaluate_plotting_helper.py) of the centres of energy
#: and widths in eta / phi ("ec", "width") and in r ("ec_r", "width_r"): datasets 2 and 3 ...
PAR04_HISTOGRAM_RANGES = {"ec": (-30.0, 30.0), "width": (0.0, 30.0), "ec_r": (0.0, 42.0), "width_r": (0.0, 20.0)}
#: ... and dataset 1, whose outer layers get wider ranges: 12 and 13 in eta / phi, 12 to 14 in r.
ATLAS_HISTOGRAM_RANGES = {"ec": (-100.0, 100.0), "width": (0.0, 100.0), "ec_r": (0.0, 500.0), "width_r": (0.0, 500.0)}
ATLAS_OUTER_HISTOGRAM_RANGES = {"ec": (-500.0, 500.0), "width": (0.0, 400.0), "ec_r": (0.0, 1500.0),
                                "width_r": (0.0, 1500.0)}


def read_binning(path: str | Path) -> tuple[str, int, tuple[LayerBinning, ...]]:
    """Read an official binning XML. Returns (particle name, pid, layers with cells)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise CalobenchError(f"{path}: not a readable binning XML ({exc})") from None
    bins = root.findall("Bin")
    if len(bins) != 1:
        raise CalobenchError(f"{path}: expected one <Bin> element, found {len(bins)}")
    node = bins[0]
    layers = []
    for layer in node.findall("Layer"):
        edges = tuple(float(v) for v in layer.attrib["r_edges"].split(","))
        binning = LayerBinning(int(layer.attrib["id"]), edges, int(layer.attrib["n_bin_alpha"]))
        if binning.n_r > 0:
            layers.append(binning)
    return node.attrib.get("name", ""), int(node.attrib.get("pid", 0)), tuple(layers)


def from_binning(
    name: str, xml_path: str | Path, threshold: float, description: str, depth_of_layer,
    histogram_ranges: Callable[[int], dict[str, tuple[float, float]]] | None = None,
) -> Geometry:
    """Build a cylindrical Geometry from a binning XML; depth_of_layer(layer_id) -> mm;
    histogram_ranges(layer_id) -> the challenge's ranges (Geometry.histogram_ranges), for the
    CaloChallenge datasets only."""
    particle, _, layers = read_binning(xml_path)
    centres, sizes, layer_index = [], [], []
    for index, binning in enumerate(layers):
        r = binning.r_centres
        dr = np.diff(binning.r_edges)
        alpha = binning.alpha_centres
        dalpha = 2 * np.pi / binning.n_alpha
        aa, rr = np.meshgrid(alpha, r, indexing="ij")  # alpha outer, r inner
        _, ddr = np.meshgrid(alpha, dr, indexing="ij")
        z = depth_of_layer(binning.layer_id)
        centres.append(np.stack([rr.ravel() * np.cos(aa.ravel()), rr.ravel() * np.sin(aa.ravel()),
                                 np.full(rr.size, z)], axis=1))
        sizes.append(np.stack([ddr.ravel(), rr.ravel() * dalpha, np.full(rr.size, PAR04_LAYER_DEPTH_MM)], axis=1))
        layer_index.append(np.full(rr.size, index))
    centres = np.concatenate(centres)
    return Geometry(
        name=name,
        kind=CYLINDRICAL,
        description=description,
        threshold=threshold,
        shape=(centres.shape[0],),
        centres=centres,
        sizes=np.concatenate(sizes),
        layer_index=np.concatenate(layer_index),
        layers=layers,
        materials=f"binning of {Path(xml_path).name} ({particle})",
        histogram_ranges=None if histogram_ranges is None else {b.layer_id: histogram_ranges(b.layer_id)
                                                                for b in layers},
    )


def binning_file(filename: str) -> Path:
    """Path of a shipped official binning XML."""
    return Path(str(resources.files("calobench.data.geometry") / "binning" / filename))


def _par04_depth(layer_id: int) -> float:
    return (layer_id + 0.5) * PAR04_LAYER_DEPTH_MM


def _atlas_depth(layer_id: int) -> float:
    return ATLAS_LAYER_DEPTH_MM.get(layer_id, 100.0 * layer_id)


def _par04_ranges(layer_id: int) -> dict[str, tuple[float, float]]:
    return PAR04_HISTOGRAM_RANGES


def _atlas_ranges(layer_id: int) -> dict[str, tuple[float, float]]:
    eta_phi = ATLAS_OUTER_HISTOGRAM_RANGES if layer_id in (12, 13) else ATLAS_HISTOGRAM_RANGES
    radial = ATLAS_OUTER_HISTOGRAM_RANGES if layer_id in (12, 13, 14) else ATLAS_HISTOGRAM_RANGES
    return {"ec": eta_phi["ec"], "width": eta_phi["width"], "ec_r": radial["ec_r"], "width_r": radial["width_r"]}


def calochallenge_1_photons() -> Geometry:
    return from_binning("calochallenge-1-photons", binning_file("binning_dataset_1_photons.xml"), 1.0,
                        "CaloChallenge dataset 1 photons: ATLAS calorimeter, 368 voxels in 5 layers", _atlas_depth,
                        _atlas_ranges)


def calochallenge_1_pions() -> Geometry:
    return from_binning("calochallenge-1-pions", binning_file("binning_dataset_1_pions.xml"), 1.0,
                        "CaloChallenge dataset 1 pions: ATLAS calorimeter, 533 voxels in 7 layers", _atlas_depth,
                        _atlas_ranges)


def calochallenge_2() -> Geometry:
    return from_binning("calochallenge-2", binning_file("binning_dataset_2.xml"), 0.01515,
                        "CaloChallenge dataset 2: Par04 W/Si, 45 layers x 16 alpha x 9 r", _par04_depth,
                        _par04_ranges)


def calochallenge_3() -> Geometry:
    return from_binning("calochallenge-3", binning_file("binning_dataset_3.xml"), 0.01515,
                        "CaloChallenge dataset 3: Par04 W/Si, 45 layers x 50 alpha x 18 r", _par04_depth,
                        _par04_ranges)
