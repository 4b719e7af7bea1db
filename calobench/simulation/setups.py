"""Simulation set-ups of the calobench datasets: Geant4 geometry, primaries, readout.

Each set-up knows
- ``build(g4)``: the Geant4 world (geant4_pybind module passed in), returning the world
  volume and the scorers {name: (primitive spec, sensitive logical volumes)}: a C++
  G4MultiFunctionalDetector primitive numbers every readout cell; cells are plain volumes (placements or replicas), never Python hit code;
- ``sample(rng, n, particles, energies)``: primaries (particle, energy, position, direction)
  and the dataset's conditions;
- ``showers(raw, primaries)``: raw per-cell deposits turned into the dataset's readout
  (threshold applied; the cepc patch rotated to the sampled phi).
Units: mm and MeV throughout (Geant4's internal units), angles in degrees in conditions.
Dimensions and their sources: docs/geometries.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calobench.datasets import PDG, get_dataset
from calobench.data.geometry import barrel_pointcloud as cepc_barrel, get_geometry
from calobench.data.showerset import CellList

MASS = {22: 0.0, 11: 0.51099895, -11: 0.51099895}
G4NAME = {22: "gamma", 11: "e-", -11: "e+"}


@dataclass
class Primaries:
    """n primaries: pdg (n,), energy (n,) total MeV, position (n,3) mm, direction (n,3) unit,
    conditions {name: (n,)}, extra {name: (n,)} (set-up specific, e.g. the cepc rotation)."""

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


def _lyso(g4):
    """LYSO Lu1.8Y0.2SiO5, 7.1 g/cm3 (mass fractions from the formula)."""
    nist = g4.G4NistManager.Instance()
    weights = {"Lu": 1.8 * 174.967, "Y": 0.2 * 88.906, "Si": 28.086, "O": 5 * 15.999}
    total = sum(weights.values())
    mat = g4.G4Material("LYSO", 7.1 * g4.g / g4.cm3, len(weights))
    for symbol, w in weights.items():
        mat.AddElement(nist.FindOrBuildElement(symbol), w / total)
    return mat


def _csi_tl(g4):
    """CsI(Tl): CsI (4.51 g/cm3) doped with 0.1 % thallium by mass."""
    nist = g4.G4NistManager.Instance()
    mat = g4.G4Material("CsI_Tl", 4.51 * g4.g / g4.cm3, 2)
    mat.AddMaterial(nist.FindOrBuildMaterial("G4_CESIUM_IODIDE"), 0.999)
    mat.AddElement(nist.FindOrBuildElement("Tl"), 0.001)
    return mat


class Setup:
    """Base class; ``keep`` holds every Geant4 object so Python never frees them."""

    dataset: str = ""
    default_particles: tuple[str, ...] = ()
    log_energy: bool = False
    sparse_output: bool = False
    n_raw: int = 0

    def __init__(self) -> None:
        self.geometry = get_geometry(get_dataset(self.dataset).geometry_name)
        self.keep: list = []

    def _k(self, obj):
        self.keep.append(obj)
        return obj

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
    """A box grid (layers, ny, nx) of one material; copy number = cell index (x fastest)."""

    material: str = ""

    def build(self, g4):
        layers, ny, nx = self.geometry.shape
        dx, dy, dz = self.geometry.sizes[0]
        nist = g4.G4NistManager.Instance()
        mat = {"CsI": lambda: nist.FindOrBuildMaterial("G4_CESIUM_IODIDE"), "CsI_Tl": lambda: _csi_tl(g4),
               "LYSO": lambda: _lyso(g4)}[self.material]()
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
        self.n_raw = self.geometry.n_cells
        return pworld, {"Cell": (("1d",), [lcell])}


class BarrelCrystalSetup(GridSetup):
    """11x11 crystals around the hit crystal of a crystal barrel of front radius R (mm).

    The global hit point is sampled on the barrel (z uniform, phi uniform); the incidence
    angles follow from where the crystal axes point (towards ``(0, 0, +-z_point)``, tilted by
    ``phi_tilt`` deg in phi) plus a flat spread ``spread`` deg (beam spot, non-pointing
    crystals); the impact offset inside the hit crystal is uniform over 90 % of its face, so
    the hit crystal is always the centre of the 11x11 image. Local frame: x along phi, y along
    the beam axis z, local z along the crystal axis.
    """

    radius = 1000.0
    half_z = 1300.0
    z_point = 0.0
    phi_tilt = 0.0
    spread = 2.0

    def sample(self, rng, pdg, energy):
        n = len(pdg)
        dx, dy, _ = self.geometry.sizes[0]
        z_hit = rng.uniform(-self.half_z, self.half_z, n)
        dz_pos = rng.uniform(-0.45 * dy, 0.45 * dy, n)
        dphi_pos = np.degrees(rng.uniform(-0.45 * dx, 0.45 * dx, n) / self.radius)
        theta_ip = np.arctan2(self.radius, z_hit)
        theta_axis = np.arctan2(self.radius, z_hit - np.sign(z_hit) * self.z_point)
        dtheta = np.degrees(theta_ip - theta_axis) + rng.uniform(-self.spread, self.spread, n)
        dphi = self.phi_tilt + rng.uniform(-self.spread, self.spread, n)
        position = np.stack([np.radians(dphi_pos) * self.radius, dz_pos, np.zeros(n)], axis=1)
        # local direction: +x is +phi, +y is +z (beam axis); a larger theta points to -z
        direction = _unit(np.stack([np.tan(np.radians(dphi)), -np.tan(np.radians(dtheta)), np.ones(n)], axis=1))
        position[:, :2] -= direction[:, :2] / direction[:, 2:3] * 1.0  # start 1 mm in front of the face
        position[:, 2] = -1.0
        self._angles = (theta_axis, dtheta, dphi, z_hit, dz_pos, dphi_pos)
        return Primaries(pdg, energy, position, direction, {}, {})


class Stcf(BarrelCrystalSetup):
    dataset = "stcf11x11"
    material = "CsI"
    default_particles = ("gamma",)
    radius, half_z, z_point, phi_tilt, spread = 1000.0, 1300.0, 0.0, 0.0, 2.0

    def sample(self, rng, pdg, energy):
        prim = super().sample(rng, pdg, energy)
        _, dtheta, dphi, z_hit, dz_pos, dphi_pos = self._angles
        prim.conditions = {"p": _momentum(pdg, energy), "dtheta_mom": dtheta, "dphi_mom": dphi,
                           "dz_pos": dz_pos, "dphi_pos": dphi_pos, "z": z_hit}
        return prim


class Bes3(BarrelCrystalSetup):
    dataset = "bes3-11x11"
    material = "CsI_Tl"
    default_particles = ("gamma", "e-", "e+")
    radius, half_z, z_point, phi_tilt, spread = 940.0, 1300.0, 50.0, 1.5, 0.5

    def sample(self, rng, pdg, energy):
        prim = super().sample(rng, pdg, energy)
        theta_axis, dtheta, dphi, _, _, _ = self._angles
        n = len(pdg)
        phi_hit = rng.uniform(-np.pi, np.pi, n)
        theta = theta_axis + np.radians(dtheta)  # momentum theta = crystal axis theta + dtheta_mom
        phi = phi_hit + np.radians(dphi - self.phi_tilt)  # the crystal axis is tilted by phi_tilt
        p = _momentum(pdg, energy)
        prim.conditions = {"particle": pdg.astype(np.float64), "px": p * np.sin(theta) * np.cos(phi),
                           "py": p * np.sin(theta) * np.sin(phi), "pz": p * np.cos(theta), "E": energy}
        return prim


class DarkShine(GridSetup):
    """20x20x11 LYSO; the particle enters along the grid axis at the centre of cell (10, 10)."""

    dataset = "darkshine"
    material = "LYSO"
    sparse_output = True
    default_particles = ("e-", "gamma")

    def sample(self, rng, pdg, energy):
        n = len(pdg)
        _, ny, nx = self.geometry.shape
        dx, dy, _ = self.geometry.sizes[0]
        x0, y0 = (nx // 2 - (nx - 1) / 2) * dx, (ny // 2 - (ny - 1) / 2) * dy
        position = np.tile([x0, y0, -1.0], (n, 1))
        direction = np.tile([0.0, 0.0, 1.0], (n, 1))
        return Primaries(pdg, energy, position, direction, {"particle": pdg.astype(np.float64)})


class Par04(Setup):
    """CaloChallenge Par04 W/Si: 90 sub-layers of 1.4 mm W + 0.3 mm Si, flat slabs; the Si of
    each sub-layer carries a readout disc of (r, alpha) segments; readout layer k sums
    sub-layers 2k and 2k+1. Segment copy number = alpha * n_r + r (challenge order)."""

    log_energy = True
    sparse_output = True
    default_particles = ("e-",)
    W_MM, SI_MM, SUBLAYERS, HALF_XY = 1.4, 0.3, 90, 500.0

    def build(self, g4):
        nist = g4.G4NistManager.Instance()
        w, si, vac = (nist.FindOrBuildMaterial(m) for m in ("G4_W", "G4_Si", "G4_Galactic"))
        layers = self.geometry.layers
        n_layers = len(layers)
        n_seg = layers[0].n_cells
        if any(b.n_cells != n_seg or b.r_edges != layers[0].r_edges for b in layers):
            raise ValueError("Par04 readout expects identical layers")
        pitch = self.W_MM + self.SI_MM
        world = self._k(g4.G4Box("World", 2 * self.HALF_XY, 2 * self.HALF_XY, 1000.0))
        lworld = self._k(g4.G4LogicalVolume(world, vac, "World"))
        pworld = self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(), lworld, "World", None, False, 0))
        wbox = self._k(g4.G4Box("Absorber", self.HALF_XY, self.HALF_XY, self.W_MM / 2))
        lw = self._k(g4.G4LogicalVolume(wbox, w, "Absorber"))
        sbox = self._k(g4.G4Box("SiLayer", self.HALF_XY, self.HALF_XY, self.SI_MM / 2))
        ls = self._k(g4.G4LogicalVolume(sbox, si, "SiLayer"))
        edges = layers[0].r_edges
        disc = self._k(g4.G4Tubs("Disc", 0.0, edges[-1], self.SI_MM / 2, 0.0, 2 * np.pi))
        ldisc = self._k(g4.G4LogicalVolume(disc, si, "Disc"))
        self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(), ldisc, "Disc", ls, False, 0))
        n_alpha, n_r = layers[0].n_alpha, layers[0].n_r
        width = 2 * np.pi / n_alpha
        segments = []
        for ia in range(n_alpha):
            for ir in range(n_r):
                seg = self._k(g4.G4Tubs(f"Seg{ia}_{ir}", edges[ir], edges[ir + 1], self.SI_MM / 2,
                                        -np.pi + ia * width, width))
                lseg = self._k(g4.G4LogicalVolume(seg, si, "Segment"))
                segments.append(lseg)
                self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(), lseg, "Segment", ldisc, False,
                                         ia * n_r + ir))
        for sub in range(self.SUBLAYERS):
            z0 = sub * pitch
            self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(0, 0, z0 + self.W_MM / 2), lw, "Absorber",
                                     lworld, False, sub))
            # copy number of the Si layer = readout layer (two sub-layers per readout layer)
            self._k(g4.G4PVPlacement(None, g4.G4ThreeVector(0, 0, z0 + self.W_MM + self.SI_MM / 2), ls,
                                     "SiLayer", lworld, False, sub // 2))
        self.n_raw = n_layers * n_seg
        # index = silicon layer copy (depth 2) * n_seg + disc copy 0 (depth 1) + segment copy (depth 0)
        return pworld, {"Segment": (("3d", n_layers, 1, n_seg, 2, 1, 0), segments)}

    #: The challenge stores silicon deposits divided by the Par04 sampling fraction 0.033, so that
    #: E_tot / E_inc is near 1; its 15.15 keV readout threshold is 0.5 keV of raw silicon deposit
    #: divided by the same factor (reference/calochallenge/README.md).
    SAMPLING_FRACTION = 0.033

    def showers(self, raw_index, raw_energy, prim):
        """Dense (n, cells) readout in the challenge's energy scale (deposit / sampling fraction)."""
        scaled = [np.asarray(e, dtype=np.float64) / self.SAMPLING_FRACTION for e in raw_energy]
        return super().showers(raw_index, scaled, prim)

    def sample(self, rng, pdg, energy):
        n = len(pdg)
        # never exactly on the axis where all alpha segments meet: a random offset below 10 um
        r = rng.uniform(0.001, 0.01, n)
        a = rng.uniform(-np.pi, np.pi, n)
        position = np.stack([r * np.cos(a), r * np.sin(a), np.full(n, -1.0)], axis=1)
        direction = np.tile([0.0, 0.0, 1.0], (n, 1))
        return Primaries(pdg, energy, position, direction, {})


class Par04Dataset2(Par04):
    dataset = "calochallenge-2"


class Par04Dataset3(Par04):
    dataset = "calochallenge-3"


class Cepc(Setup):
    """A patch of the CEPC Si-W barrel at phi = 0 (flat stave, normal along +x), covering
    |z| < HALF_Z and NY pads in r-phi; 5x5 mm pads are replicas (layer, z row, y pad).
    Photons start at the interaction point; the output is rotated to a sampled phi and the
    pad centres are projected onto the layer cylinders (global x, y, z in mm)."""

    dataset = "cepc"
    default_particles = ("gamma",)
    NY, NZ = 49, 300
    THETA_DEG = (73.6, 106.4)

    def build(self, g4):
        nist = g4.G4NistManager.Instance()
        w, si, vac = (nist.FindOrBuildMaterial(m) for m in ("G4_W", "G4_Si", "G4_Galactic"))
        cell = cepc_barrel.CELL_MM
        half_y, half_z = self.NY * cell / 2, self.NZ * cell / 2
        radii = cepc_barrel.layer_radii()
        tw = cepc_barrel.absorber_thickness()
        ts = cepc_barrel.SENSOR_MM
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
        self._k(g4.G4PVReplica("Row", lr, ls, g4.EAxis.kZAxis, self.NZ, cell))
        self._k(g4.G4PVReplica("Pad", lp, lr, g4.EAxis.kYAxis, self.NY, cell))
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
        self.n_raw = len(radii) * self.NZ * self.NY
        return pworld, {"Pad": (("3d", len(radii), self.NZ, self.NY, 2, 1, 0), [lp])}

    def sample(self, rng, pdg, energy):
        n = len(pdg)
        theta = np.radians(rng.uniform(*self.THETA_DEG, n))
        phi = rng.uniform(0.0, 360.0, n)
        # aim anywhere inside the central pad column in r-phi (never along a pad edge)
        half_pad = 0.5 * cepc_barrel.CELL_MM / cepc_barrel.INNER_RADIUS_MM
        phi_local = rng.uniform(-0.9 * half_pad, 0.9 * half_pad, n)
        direction = np.stack([np.sin(theta) * np.cos(phi_local), np.sin(theta) * np.sin(phi_local),
                              np.cos(theta)], axis=1)
        return Primaries(pdg, energy, np.zeros((n, 3)), direction,
                         {"theta": np.degrees(theta), "phi": phi},
                         {"rotation": np.radians(phi) - phi_local})

    def showers(self, raw_index, raw_energy, prim):
        radii = cepc_barrel.layer_radii()
        cell = cepc_barrel.CELL_MM
        events = []
        for idx, e, rot in zip(raw_index, raw_energy, prim.extra["rotation"]):
            keep = e >= self.geometry.threshold
            idx, e = idx[keep], e[keep]
            layer, rest = np.divmod(idx, self.NZ * self.NY)
            iz, iy = np.divmod(rest, self.NY)
            r = radii[layer]
            y = (iy - (self.NY - 1) / 2) * cell
            z = (iz - (self.NZ - 1) / 2) * cell
            a = np.arctan2(y, r) + rot
            events.append(np.stack([r * np.cos(a), r * np.sin(a), z, e], axis=1))
        return CellList.from_showers(events)


SETUPS: dict[str, type[Setup]] = {s.dataset: s for s in (Stcf, Bes3, DarkShine, Cepc, Par04Dataset2, Par04Dataset3)}


def setup_names() -> list[str]:
    return list(SETUPS)


def particle_codes(names: list[str]) -> np.ndarray:
    return np.array([PDG[p] for p in names], dtype=np.int64)
