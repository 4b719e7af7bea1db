"""CaloChallenge 2022 datasets (CaloChallenge/homepage, reference/calochallenge/README.md).

The readouts are read from the challenge's own binning XML files (data/binning/). Dataset 1 is
the ATLAS calorimeter (photons and pions; no Geant4 set-up here, CaloChallenge files only);
datasets 2 and 3 are the Par04 W/Si calorimeter, simulated by `calobench simulate` as a
stand-in: 90 sub-layers of 1.4 mm W + 0.3 mm Si, two sub-layers per readout layer, flat slabs
instead of the Par04 cylinder (inner radius 800 mm; over the readout radius, < 42 mm, the
sagitta is below 1.1 mm).
"""

from __future__ import annotations

from pathlib import Path

from calobench.data.geometry import Geometry, from_binning
from calobench.datasets.detector import Material, SamplingSlabs
from calobench.datasets.benchmark_reference import ReferenceRecipe
from calobench.datasets.registry import CHALLENGE_SOURCE, Dataset, data_path, register

#: Depth of one readout layer in the Par04 W/Si geometry of datasets 2 and 3:
#: two physical layers of 1.4 mm W + 0.3 mm Si (reference/calochallenge/README.md).
PAR04_LAYER_DEPTH_MM = 3.4

#: Nominal depth (mm) of the ATLAS layers of dataset 1, measured from the presampler,
#: for drawing and point-cloud views only (the challenge gives no depths).
ATLAS_LAYER_DEPTH_MM = {0: 0.0, 1: 95.0, 2: 240.0, 3: 455.0, 12: 1000.0, 13: 1500.0, 14: 2000.0}

#: The challenge stores silicon deposits divided by the Par04 sampling fraction 0.033, so that
#: E_tot / E_inc is near 1; its 15.15 keV readout threshold is 0.5 keV of raw silicon deposit
#: divided by the same factor.
PAR04 = SamplingSlabs(absorber=Material("G4_W"), sensor=Material("G4_Si"), absorber_mm=1.4, sensor_mm=0.3,
                      sublayers=90, half_width_mm=500.0, sampling_fraction=0.033,
                      log_energy=True, sparse_output=True)
PAR04_THRESHOLD_MEV = 0.01515


#: The challenge's histogram ranges in mm (evaluate_plotting_helper.py) of the centres of energy
#: and widths in eta / phi ("ec", "width") and in r ("ec_r", "width_r"): datasets 2 and 3 ...
PAR04_HISTOGRAM_RANGES = {"ec": (-30.0, 30.0), "width": (0.0, 30.0), "ec_r": (0.0, 42.0), "width_r": (0.0, 20.0)}
#: ... and dataset 1, whose outer layers get wider ranges: 12 and 13 in eta / phi, 12 to 14 in r.
ATLAS_HISTOGRAM_RANGES = {"ec": (-100.0, 100.0), "width": (0.0, 100.0), "ec_r": (0.0, 500.0), "width_r": (0.0, 500.0)}
ATLAS_OUTER_HISTOGRAM_RANGES = {"ec": (-500.0, 500.0), "width": (0.0, 400.0), "ec_r": (0.0, 1500.0),
                                "width_r": (0.0, 1500.0)}


def binning_file(filename: str) -> Path:
    """Path of a shipped official binning XML."""
    return data_path("binning", filename)


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


def _geometry(name: str, filename: str, threshold: float, description: str, depth, ranges) -> Geometry:
    # every cell is drawn PAR04_LAYER_DEPTH_MM deep (dataset 1 too: the challenge gives no depths)
    return from_binning(name, binning_file(filename), threshold, description, depth, PAR04_LAYER_DEPTH_MM, ranges)


DATASET_1_PHOTONS = register(Dataset(
    name="calochallenge-1-photons",
    geometry=_geometry("calochallenge-1-photons", "binning_dataset_1_photons.xml", 1.0,
                       "CaloChallenge dataset 1 photons: ATLAS calorimeter, 368 voxels in 5 layers", _atlas_depth, _atlas_ranges),
    particles=("gamma",),
    energy_range=(256.0, 4194304.0),
    reference="CaloChallenge files only",
    seed_document="002",
    challenge_key="ds1_photons",
))
DATASET_1_PIONS = register(Dataset(
    name="calochallenge-1-pions",
    geometry=_geometry("calochallenge-1-pions", "binning_dataset_1_pions.xml", 1.0,
                       "CaloChallenge dataset 1 pions: ATLAS calorimeter, 533 voxels in 7 layers", _atlas_depth, _atlas_ranges),
    particles=("pi+",),
    energy_range=(256.0, 4194304.0),
    reference="CaloChallenge files only",
    seed_document="002",
    challenge_key="ds1_pions",
))


#: the quick preset trains on at most this many showers of datasets 2 and 3 (their references grew
#: to 10 000-20 000 showers for ranking; a quick run stays minutes on a laptop)
QUICK_TRAIN_EVENTS = 1000


def _par04_dataset(number: int, description: str, recipe: ReferenceRecipe | None = None,
                   version: str = "1") -> Dataset:
    """Dataset 2 or 3: the Par04 W/Si geometry of its binning file, simulated as a stand-in.
    Geant4 needs ~13 ms of CPU per GeV in Par04, so the stand-in covers 1-64 GeV, not the
    challenge's 1 GeV-1 TeV."""
    name = f"calochallenge-{number}"
    return Dataset(
        name=name,
        geometry=_geometry(name, f"binning_dataset_{number}.xml", PAR04_THRESHOLD_MEV, description, _par04_depth,
                           _par04_ranges),
        particles=("e-",),
        energy_range=(1000.0, 1000000.0),
        reference=CHALLENGE_SOURCE,
        seed_document="002",
        simulation_energy_range=(1000.0, 64000.0),
        geant4=PAR04,
        small_reference=True,  # embedded: 1000 showers of 6480 cells (ds2), 600 of 40500 (ds3)
        challenge_key=f"ds{number}",
        recipe=recipe,
        version=version,
        quick_train_events=QUICK_TRAIN_EVENTS,
    )


#: 10 000 showers (test split 2000), built on first use; the embedded 1000 are its first events.
#: Made with `calobench simulate --workers 2 --seed 1 --dataset calochallenge-2 -n 10000 --chunk 50`
#: (42 core-minutes of Geant4 on the 2-core development machine, AMD EPYC: 32.2 min wall with a
#: training run beside it, 5.18 events/s, 245 ms per event; 24 MB as sparse HDF5).
DATASET_2_RECIPE = ReferenceRecipe(
    events=10000, seed=1, chunk=50, cut_mm=0.7, core_minutes=42.0,
    fingerprint="4548c872bd78e5b06f0d1dc11e10fcc6da33ae7ca2217531e8bdb3c89610794f",
    physics="EmStandardNoData (data-free G4 EM models via ctypes)", geant4_version="geant4-11-04-patch-01")
DATASET_2 = register(_par04_dataset(2, "CaloChallenge dataset 2: Par04 W/Si, 45 layers x 16 alpha x 9 r",
                                    recipe=DATASET_2_RECIPE, version="2"))
#: 10 000 showers (test split 2000), built on first use; the embedded 600 are its first events.
#: Made with `calobench simulate --workers 1 --seed 1 --dataset calochallenge-3 -n 10000 --chunk 50`
#: (83 core-minutes of Geant4 on the loaded 2-core development machine, 499 ms per event).
DATASET_3_RECIPE = ReferenceRecipe(
    events=10000, seed=1, chunk=50, cut_mm=0.7, core_minutes=83.0,
    fingerprint="996ba9d41f194ccfea0ece5f7a0cb6435dc7cefa0671809716f4c2668d17ea70",
    physics="EmStandardNoData (data-free G4 EM models via ctypes)", geant4_version="geant4-11-04-patch-01")
DATASET_3 = register(_par04_dataset(3, "CaloChallenge dataset 3: Par04 W/Si, 45 layers x 50 alpha x 18 r",
                                    recipe=DATASET_3_RECIPE, version="2"))
