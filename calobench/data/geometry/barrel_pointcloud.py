"""Sampling barrels read out as point clouds (the ``pointcloud`` kind)."""

from __future__ import annotations

import numpy as np

from calobench.data.geometry.base import POINTCLOUD, BarrelLayout, Geometry


def make_barrel(
    name: str,
    description: str,
    threshold: float,
    inner_radius: float,
    absorber_thickness: np.ndarray,
    sensor_thickness: float,
    gap: float,
    cell_size: float,
    half_length: float,
    absorber: str,
    sensor: str,
    materials: str,
) -> Geometry:
    """A barrel of sensitive layers, each behind its own absorber, from ``inner_radius`` outwards.

    absorber_thickness: (L,) mm of absorber in front of each sensitive layer; sensor_thickness,
    gap (readout board, glue and air after each sensor), cell_size (square pads), half_length
    (along z) and inner_radius in mm; threshold in MeV; absorber, sensor: Geant4 material names.
    """
    absorber_thickness = np.asarray(absorber_thickness, dtype=np.float64)
    pitch = absorber_thickness + sensor_thickness + gap
    front = inner_radius + np.concatenate([[0.0], np.cumsum(pitch)[:-1]])
    radii = front + absorber_thickness + sensor_thickness / 2.0  # the middle of each sensor
    barrel = BarrelLayout(
        inner_radius=inner_radius,
        layer_radii=tuple(float(r) for r in radii),
        absorber_thickness=tuple(float(t) for t in absorber_thickness),
        sensor_thickness=sensor_thickness,
        cell_size=cell_size,
        half_length=half_length,
        absorber=absorber,
        sensor=sensor,
    )
    return Geometry(
        name=name,
        kind=POINTCLOUD,
        description=description,
        threshold=threshold,
        shape=(),
        barrel=barrel,
        materials=materials,
    )
