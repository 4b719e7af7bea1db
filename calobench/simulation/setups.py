"""Generic Geant4 set-ups: one builder per kind of set-up record (calobench.datasets.detector).

A dataset names its set-up record (``Dataset.geant4``: the numbers and materials); the builder
of that record's kind knows
- ``build(g4)``: the Geant4 world (geant4_pybind module passed in), returning the world
  volume and the scorers {name: (primitive spec, sensitive logical volumes)}: a C++
  G4MultiFunctionalDetector primitive numbers every readout cell; cells are plain volumes
  (placements or replicas), never Python hit code;
- ``sample(rng, pdg, energy)``: primaries (particle, energy, position, direction) and the
  dataset's conditions, picked by name from the event quantities the builder knows;
- ``showers(raw, primaries)``: raw per-cell deposits turned into the dataset's readout
  (threshold applied; a barrel patch rotated to the sampled phi).
Units: mm and MeV throughout (Geant4's internal units), angles in degrees in conditions.
Dimensions and their sources: docs/geometries.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calobench.errors import CalobenchError
from calobench.datasets import Dataset, dataset_names, get_dataset
from calobench.datasets.detector import BarrelPatch, BeamOnGrid, CrystalBarrel, Material, SamplingSlabs
from calobench.data.showerset import CellList
from calobench.simulation import portable_math

MASS = {22: 0.0, 11: 0.51099895, -11: 0.51099895}
G4NAME = {22: "gamma", 11: "e-", -11: "e+"}


@dataclass
class Primaries:
    """n primaries: pdg (n,), energy (n,) total MeV, position (n,3) mm, direction (n,3) unit,
    conditions {name: (n,)}, extra {name: (n,)} (set-up specific, e.g. the barrel-patch rotation)."""

    pdg: np.ndarray
    energy: np.ndarray
    position: np.ndarray
    direction: np.ndarray
    conditions: dict[str, np.ndarray]
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kinetic(self) -> np.ndarray:
        return self.energy - np.vectorize(MASS.get)(self.pdg)

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        out = {"pdg": self.pdg, "energy": self.energy, "position": self.position, "direction": self.direction}
        out.update({f"cond_{k}": v for k, v in self.conditions.items()})
        out.update({f"extra_{k}": v for k, v in self.extra.items()})
        return {prefix + k: v for k, v in out.items()}

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray], prefix: str = "") -> "Primaries":
        get = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        return Primaries(get["pdg"], get["energy"], get["position"], get["direction"],
                         {k[5:]: v for k, v in get.items() if k.startswith("cond_")},
                         {k[6:]: v for k, v in get.items() if k.startswith("extra_")})


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _momentum(pdg: np.ndarray, energy: np.ndarray) -> np.ndarray:
    m = np.vectorize(MASS.get)(pdg)
    return np.sqrt(np.maximum(energy ** 2 - m ** 2, 0.0))


def build_material(g4, material: Material):
    """The Geant4 material: a NIST one by name, or the mixture of its components by mass."""
    nist = g4.G4NistManager.Instance()
    if not material.components:
        return nist.FindOrBuildMaterial(material.name)
    mat = g4.G4Material(material.name, material.density * g4.g / g4.cm3, len(material.components))
    for name, fraction in material.components:
        if name.startswith("G4_"):
            mat.AddMaterial(nist.FindOrBuildMaterial(name), fraction)
        else:
            mat.AddElement(nist.FindOrBuildElement(name), fraction)
    return mat


class Setup:
    """Base class of the builders: a dataset's Geant4 application. ``keep`` holds every Geant4
    object so Python never frees them."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.record = dataset.geant4
        self.geometry = dataset.geometry
        self.keep: list = []

    @property
    def log_energy(self) -> bool:
        return self.record.log_energy

    @property
    def sparse_output(self) -> bool:
        return self.record.sparse_output

    @property
    def energy_scale(self) -> str:
        """What the readout energies are, for the provenance."""
        return "deposited energy"

    def _k(self, obj):
        self.keep.append(obj)
        return obj

    def conditions_of(self, quantities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The dataset's conditions, in its order, from the event quantities the builder knows."""
        missing = [c for c in self.dataset.conditions if c not in quantities]
        if missing:
            raise CalobenchError(f"dataset {self.dataset.name}: the {type(self).__name__} set-up does not "
                                 f"know condition(s) {', '.join(missing)}; it knows: {', '.join(quantities)}")
        return {c: quantities[c] for c in self.dataset.conditions}

    def build(self, g4):  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, pdg: np.ndarray, energy: np.ndarray) -> Primaries:
        raise NotImplementedError

    def showers(self, raw_index: list[np.ndarray], raw_energy: list[np.ndarray], prim: Primaries):
        """Dense (n, cells) float32 readout (voxel set-ups): raw index = cell index."""
        n = len(raw_index)
        out = np.zeros((n, self.geometry.n_cells), dtype=np.float32)
        for i, (idx, e) in enumerate(zip(raw_index, raw_energy)):
            np.add.at(out[i], idx, e)
        out[out < self.geometry.threshold] = 0.0
        return out


class GridSetup(Setup):
    """The dataset's box grid (layers, ny, nx) made of its ``medium``; copy number = cell index (x fastest)."""

    def build(self, g4):
        layers, ny, nx = self.geometry.shape
        dx, dy, dz = self.geometry.sizes[0]
        nist = g4.G4NistManager.Instance()
        mat = self._k(build_material(g4, self.dataset.medium))
        world_mat = nist.FindOrBuildMaterial("G4_Galactic")
        depth = layers * dz
        world = self._k(g4.G4Box("World", nx * dx, ny * dy, depth + 1000.0))
        lworld = self._k(g4.G4LogicalVolume(world, world_mat, "World"))
        pworld = self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(), lworld, "World", None, False, 0))
        cell = self._k(g4.G4Box("Cell", dx / 2, dy / 2, dz / 2))
        lcell = self._k(g4.G4LogicalVolume(cell, mat, "Cell"))
        for index, (x, y, z) in enumerate(self.geometry.centres):
            self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(float(x), float(y), float(z)), lcell, "Cell",
                                     lworld, False, index))
        return pworld, {"Cell": (("1d",), [lcell])}


class CrystalBarrelSetup(GridSetup):
    """A crystal grid around the hit crystal of a crystal barrel (a CrystalBarrel record).

    The global hit point is sampled on the barrel (z uniform in +-half_z, phi uniform); the
    incidence angles follow from where the crystal axes point (towards ``(0, 0, +-z_point)``,
    tilted by ``phi_tilt`` deg in phi) plus a flat spread ``spread`` deg (beam spot,
    non-pointing crystals); the impact offset inside the hit crystal is uniform within
    +-offset_fraction of its pitch, so the hit crystal is always the centre of the image. Local
    frame: x along phi, y along the beam axis z, local z along the crystal axis.

    Event quantities: p (MeV), dtheta_mom, dphi_mom (deg, incidence angles to the crystal axis),
    dz_pos (mm), dphi_pos (deg, impact offset), z (mm, hit z), particle (PDG code), the global
    momentum px, py, pz and the total energy E (MeV).
    """

    def sample(self, rng, pdg, energy):
        s: CrystalBarrel = self.record
        n = len(pdg)
        dx, dy, _ = self.geometry.sizes[0]
        z_hit = rng.uniform(-s.half_z_mm, s.half_z_mm, n)
        dz_pos = rng.uniform(-s.offset_fraction * dy, s.offset_fraction * dy, n)
        dphi_pos = np.degrees(rng.uniform(-s.offset_fraction * dx, s.offset_fraction * dx, n) / s.radius_mm)
        theta_ip = portable_math.arctan2(s.radius_mm, z_hit)
        theta_axis = portable_math.arctan2(s.radius_mm, z_hit - np.sign(z_hit) * s.z_point_mm)
        dtheta = np.degrees(theta_ip - theta_axis) + rng.uniform(-s.spread_deg, s.spread_deg, n)
        dphi = s.phi_tilt_deg + rng.uniform(-s.spread_deg, s.spread_deg, n)
        position = np.stack([np.radians(dphi_pos) * s.radius_mm, dz_pos, np.zeros(n)], axis=1)
        # local direction: +x is +phi, +y is +z (beam axis); a larger theta points to -z
        direction = _unit(np.stack([portable_math.tan(np.radians(dphi)), -portable_math.tan(np.radians(dtheta)), np.ones(n)], axis=1))
        position[:, :2] -= direction[:, :2] / direction[:, 2:3] * 1.0  # start 1 mm in front of the face
        position[:, 2] = -1.0
        # the global momentum: momentum theta = crystal axis theta + dtheta_mom, and the crystal
        # axis is tilted by phi_tilt from the hit phi
        phi_hit = rng.uniform(-np.pi, np.pi, n)
        theta = theta_axis + np.radians(dtheta)
        phi = phi_hit + np.radians(dphi - s.phi_tilt_deg)
        p = _momentum(pdg, energy)
        quantities = {"p": p, "dtheta_mom": dtheta, "dphi_mom": dphi, "dz_pos": dz_pos, "dphi_pos": dphi_pos,
                      "z": z_hit, "particle": pdg.astype(np.float64), "px": p * np.sin(theta) * np.cos(phi),
                      "py": p * np.sin(theta) * np.sin(phi), "pz": p * np.cos(theta), "E": energy}
        return Primaries(pdg, energy, position, direction, self.conditions_of(quantities))


class BeamOnGridSetup(GridSetup):
    """A grid hit along its axis at a fixed entry point (a BeamOnGrid record), 1 mm in front of it.

    Event quantities: particle (PDG code).
    """

    def sample(self, rng, pdg, energy):
        n = len(pdg)
        x0, y0 = self.record.entry_mm
        position = np.tile([x0, y0, -1.0], (n, 1))
        direction = np.tile([0.0, 0.0, 1.0], (n, 1))
        return Primaries(pdg, energy, position, direction,
                         self.conditions_of({"particle": pdg.astype(np.float64)}))


class SamplingSlabsSetup(Setup):
    """Flat absorber + sensor slabs (a SamplingSlabs record, the CaloChallenge Par04 W/Si): the
    sensor of each sub-layer carries a readout disc of the dataset's (r, alpha) segments; the
    readout layer k sums the k-th group of consecutive sub-layers. Segment copy number =
    alpha * n_r + r (challenge order). The particle starts 1 mm in front, on the axis within 10 um.

    Event quantities: none.
    """

    @property
    def energy_scale(self) -> str:
        return "deposited energy / sampling fraction %g (CaloChallenge convention)" % self.record.sampling_fraction

    def build(self, g4):
        s: SamplingSlabs = self.record
        nist = g4.G4NistManager.Instance()
        w = self._k(build_material(g4, s.absorber))
        si = self._k(build_material(g4, s.sensor))
        vac = nist.FindOrBuildMaterial("G4_Galactic")
        layers = self.geometry.layers
        n_layers = len(layers)
        n_seg = layers[0].n_cells
        if any(b.n_cells != n_seg or b.r_edges != layers[0].r_edges for b in layers):
            raise ValueError("the sampling-slabs readout expects identical layers")
        per_layer = s.sublayers // n_layers
        pitch = s.absorber_mm + s.sensor_mm
        half = s.half_width_mm
        world = self._k(g4.G4Box("World", 2 * half, 2 * half, 1000.0))
        lworld = self._k(g4.G4LogicalVolume(world, vac, "World"))
        pworld = self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(), lworld, "World", None, False, 0))
        wbox = self._k(g4.G4Box("Absorber", half, half, s.absorber_mm / 2))
        lw = self._k(g4.G4LogicalVolume(wbox, w, "Absorber"))
        sbox = self._k(g4.G4Box("SiLayer", half, half, s.sensor_mm / 2))
        ls = self._k(g4.G4LogicalVolume(sbox, si, "SiLayer"))
        edges = layers[0].r_edges
        disc = self._k(g4.G4Tubs("Disc", 0.0, edges[-1], s.sensor_mm / 2, 0.0, 2 * np.pi))
        ldisc = self._k(g4.G4LogicalVolume(disc, si, "Disc"))
        self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(), ldisc, "Disc", ls, False, 0))
        n_alpha, n_r = layers[0].n_alpha, layers[0].n_r
        width = 2 * np.pi / n_alpha
        segments = []
        for ia in range(n_alpha):
            for ir in range(n_r):
                seg = self._k(g4.G4Tubs(f"Seg{ia}_{ir}", edges[ir], edges[ir + 1], s.sensor_mm / 2,
                                        -np.pi + ia * width, width))
                lseg = self._k(g4.G4LogicalVolume(seg, si, "Segment"))
                segments.append(lseg)
                self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(), lseg, "Segment", ldisc, False,
                                         ia * n_r + ir))
        for sub in range(s.sublayers):
            z0 = sub * pitch
            self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(0, 0, z0 + s.absorber_mm / 2), lw, "Absorber",
                                     lworld, False, sub))
            # copy number of the sensor layer = its readout layer
            self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(0, 0, z0 + s.absorber_mm + s.sensor_mm / 2), ls,
                                     "SiLayer", lworld, False, sub // per_layer))
        # index = sensor layer copy (depth 2) * n_seg + disc copy 0 (depth 1) + segment copy (depth 0)
        return pworld, {"Segment": (("3d", n_layers, 1, n_seg, 2, 1, 0), segments)}

    def showers(self, raw_index, raw_energy, prim):
        """Dense (n, cells) readout in the challenge's energy scale (deposit / sampling fraction)."""
        scaled = [np.asarray(e, dtype=np.float64) / self.record.sampling_fraction for e in raw_energy]
        return super().showers(raw_index, scaled, prim)

    def sample(self, rng, pdg, energy):
        n = len(pdg)
        # never exactly on the axis where all alpha segments meet: a random offset below 10 um
        r = rng.uniform(0.001, 0.01, n)
        a = rng.uniform(-np.pi, np.pi, n)
        position = np.stack([r * np.cos(a), r * np.sin(a), np.full(n, -1.0)], axis=1)
        direction = np.tile([0.0, 0.0, 1.0], (n, 1))
        return Primaries(pdg, energy, position, direction, self.conditions_of({}))


class BarrelPatchSetup(Setup):
    """A patch of the dataset's point-cloud barrel at phi = 0 (flat stave, normal along +x), of
    pads_rphi pads in r-phi and pads_z along z (a BarrelPatch record); pads are replicas (layer,
    z row, r-phi pad). Particles start at the interaction point; the output is rotated to a
    sampled phi and the pad centres are projected onto the layer cylinders (global x, y, z in mm).

    Event quantities: theta, phi (deg) of the direction.
    """

    def build(self, g4):
        s: BarrelPatch = self.record
        barrel = self.geometry.barrel
        nist = g4.G4NistManager.Instance()
        w, si, vac = (nist.FindOrBuildMaterial(m) for m in (barrel.absorber, barrel.sensor, "G4_Galactic"))
        cell = barrel.cell_size
        half_y, half_z = s.pads_rphi * cell / 2, s.pads_z * cell / 2
        radii = np.asarray(barrel.layer_radii)
        tw = np.asarray(barrel.absorber_thickness)
        ts = barrel.sensor_thickness
        outer = float(radii[-1]) + 50.0
        world = self._k(g4.G4Box("World", outer + 10.0, half_y + 100.0, half_z + 100.0))
        lworld = self._k(g4.G4LogicalVolume(world, vac, "World"))
        pworld = self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(), lworld, "World", None, False, 0))
        sbox = self._k(g4.G4Box("SiLayer", ts / 2, half_y, half_z))
        ls = self._k(g4.G4LogicalVolume(sbox, si, "SiLayer"))
        rbox = self._k(g4.G4Box("Row", ts / 2, half_y, cell / 2))
        lr = self._k(g4.G4LogicalVolume(rbox, si, "Row"))
        pbox = self._k(g4.G4Box("Pad", ts / 2, cell / 2, cell / 2))
        lp = self._k(g4.G4LogicalVolume(pbox, si, "Pad"))
        self._k(g4.G4PVReplica("Row", lr, ls, g4.EAxis.kZAxis, s.pads_z, cell))
        self._k(g4.G4PVReplica("Pad", lp, lr, g4.EAxis.kYAxis, s.pads_rphi, cell))
        absorbers = {}
        for layer, (r_mid, t) in enumerate(zip(radii, tw)):
            t = float(t)
            if t not in absorbers:
                box = self._k(g4.G4Box(f"W{t}", t / 2, half_y, half_z))
                absorbers[t] = self._k(g4.G4LogicalVolume(box, w, f"W{t}"))
            x_w = float(r_mid) - ts / 2 - t / 2
            self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(x_w, 0, 0), absorbers[t], "Absorber", lworld,
                                     False, layer))
            self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(float(r_mid), 0, 0), ls, "SiLayer", lworld,
                                     False, layer))
        return pworld, {"Pad": (("3d", len(radii), s.pads_z, s.pads_rphi, 2, 1, 0), [lp])}

    def sample(self, rng, pdg, energy):
        s: BarrelPatch = self.record
        barrel = self.geometry.barrel
        n = len(pdg)
        theta = np.radians(rng.uniform(*s.theta_deg, n))
        phi = rng.uniform(0.0, 360.0, n)
        # aim anywhere inside the central pad column in r-phi (never along a pad edge)
        half_pad = 0.5 * barrel.cell_size / barrel.inner_radius
        phi_local = rng.uniform(-0.9 * half_pad, 0.9 * half_pad, n)
        direction = np.stack([np.sin(theta) * np.cos(phi_local), np.sin(theta) * np.sin(phi_local),
                              np.cos(theta)], axis=1)
        return Primaries(pdg, energy, np.zeros((n, 3)), direction,
                         self.conditions_of({"theta": np.degrees(theta), "phi": phi}),
                         {"rotation": np.radians(phi) - phi_local})

    def showers(self, raw_index, raw_energy, prim):
        s: BarrelPatch = self.record
        radii = np.asarray(self.geometry.barrel.layer_radii)
        cell = self.geometry.barrel.cell_size
        events = []
        for idx, e, rot in zip(raw_index, raw_energy, prim.extra["rotation"]):
            keep = e >= self.geometry.threshold
            idx, e = idx[keep], e[keep]
            layer, rest = np.divmod(idx, s.pads_z * s.pads_rphi)
            iz, iy = np.divmod(rest, s.pads_rphi)
            r = radii[layer]
            y = (iy - (s.pads_rphi - 1) / 2) * cell
            z = (iz - (s.pads_z - 1) / 2) * cell
            a = portable_math.arctan2(y, r) + rot
            events.append(np.stack([r * np.cos(a), r * np.sin(a), z, e], axis=1))
        return CellList.from_showers(events)


#: The builder of each kind of set-up record.
BUILDERS: dict[type, type[Setup]] = {CrystalBarrel: CrystalBarrelSetup, BeamOnGrid: BeamOnGridSetup,
                                     SamplingSlabs: SamplingSlabsSetup, BarrelPatch: BarrelPatchSetup}


def setup_names() -> list[str]:
    """Names of the registered datasets with a Geant4 set-up."""
    return [name for name in dataset_names() if get_dataset(name).geant4 is not None]


def make_setup(dataset: Dataset) -> Setup:
    """The Geant4 application of ``dataset`` (the builder of its set-up record's kind)."""
    if dataset.geant4 is None:
        raise CalobenchError(f"dataset {dataset.name}: no Geant4 set-up; simulate supports: {', '.join(setup_names())}")
    return BUILDERS[type(dataset.geant4)](dataset)
