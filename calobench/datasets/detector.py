"""Records of a detector's physics: its materials and the Geant4 set-up that simulates it.

Plain data only (nothing here imports Geant4): each dataset module fills them in, the generic
builders of calobench.simulation.setups turn them into a Geant4 world (one builder per set-up
kind) and GFlash reads the shower constants of the materials. Lengths in mm, energies in MeV,
angles in degrees, densities in g/cm3.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Material:
    """A detector material.

    name: a Geant4 NIST material (``"G4_CESIUM_IODIDE"``), or the name of a mixture of
    ``components`` at ``density``: (NIST material such as ``"G4_..."`` or element symbol, mass
    fraction) pairs. x0_mm, critical_energy_mev, z: radiation length, critical energy and atomic
    number of a homogeneous medium (GFlash's homogeneous parametrisation); None where unused.
    """

    name: str
    density: float | None = None
    components: tuple[tuple[str, float], ...] = ()
    x0_mm: float | None = None
    critical_energy_mev: float | None = None
    z: float | None = None


@dataclass(frozen=True, kw_only=True)
class Geant4Setup:
    """What every set-up kind shares.

    log_energy: `calobench simulate` draws energies log-uniform (else uniform) in a range;
    sparse_output: the simulated file stores voxels sparse (most cells empty).
    """

    log_energy: bool = False
    sparse_output: bool = False


@dataclass(frozen=True, kw_only=True)
class CrystalBarrel(Geant4Setup):
    """The dataset's crystal grid (made of its ``medium``) around the hit crystal of a barrel.

    radius_mm: front radius of the barrel; half_z_mm: half length (the hit z is uniform in it);
    the crystal axes point to (0, 0, +-z_point_mm) and are tilted by phi_tilt_deg in phi;
    spread_deg: flat spread added to both incidence angles; the impact offset inside the hit
    crystal is uniform within +-offset_fraction of the crystal pitch (0.45: 90 % of its face).
    """

    radius_mm: float
    half_z_mm: float
    z_point_mm: float = 0.0
    phi_tilt_deg: float = 0.0
    spread_deg: float
    offset_fraction: float = 0.45


@dataclass(frozen=True, kw_only=True)
class BeamOnGrid(Geant4Setup):
    """The dataset's grid (made of its ``medium``) hit along its axis at entry_mm = (x, y)."""

    entry_mm: tuple[float, float]


@dataclass(frozen=True, kw_only=True)
class SamplingSlabs(Geant4Setup):
    """Flat slabs of ``sublayers`` x (absorber_mm of absorber + sensor_mm of sensor), half width
    half_width_mm; each sensor slab carries the readout disc of the dataset's cylindrical binning
    and consecutive sub-layers share a readout layer. Readout energies are the deposits divided by
    ``sampling_fraction``."""

    absorber: Material
    sensor: Material
    absorber_mm: float
    sensor_mm: float
    sublayers: int
    half_width_mm: float
    sampling_fraction: float


@dataclass(frozen=True, kw_only=True)
class BarrelPatch(Geant4Setup):
    """A flat patch of the dataset's point-cloud barrel: pads_rphi x pads_z pads at phi = 0; the
    particle comes from the interaction point with theta uniform in theta_deg and phi uniform."""

    pads_rphi: int
    pads_z: int
    theta_deg: tuple[float, float]


__all__ = ["BarrelPatch", "BeamOnGrid", "CrystalBarrel", "Geant4Setup", "Material", "SamplingSlabs"]
