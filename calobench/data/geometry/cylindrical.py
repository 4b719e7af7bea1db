"""Cylindrical (layer, alpha, r) readouts built from a CaloChallenge binning XML file.

Cell order is the challenge's: layer outermost, then alpha, then r (r fastest).
Alpha bins are equal bins over [-pi, pi); a layer with ``r_edges="0"`` has no cells.
The (x, y) of a cell is (r cos alpha, r sin alpha) at the bin centres, as in the
challenge's XMLHandler ("eta" = x, "phi" = y).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import numpy as np

from calobench.errors import CalobenchError
from calobench.data.geometry.base import CYLINDRICAL, Geometry, LayerBinning


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
    name: str,
    xml_path: str | Path,
    threshold: float,
    description: str,
    depth_of_layer: Callable[[int], float],
    layer_thickness: float,
    histogram_ranges: Callable[[int], dict[str, tuple[float, float]]] | None = None,
) -> Geometry:
    """Build a cylindrical Geometry from a binning XML.

    depth_of_layer(layer_id) -> depth (mm) of the cell centres of that layer; layer_thickness:
    depth extent (mm) of every cell; threshold in MeV; histogram_ranges(layer_id) -> the
    challenge's histogram ranges (Geometry.histogram_ranges), for the CaloChallenge datasets only.
    """
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
        sizes.append(np.stack([ddr.ravel(), rr.ravel() * dalpha, np.full(rr.size, layer_thickness)], axis=1))
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
