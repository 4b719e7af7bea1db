"""The Geant4 application of one worker process (the run manager is a process-wide singleton).

``init_worker`` builds geometry, physics and scoring once per process; ``run_chunk`` simulates
a list of primaries with a given Geant4 seed and returns, per event, the touched raw cells
(int64 indices) with their deposits (MeV) and the Geant4 CPU time of the event in ms
(process CPU time, so that other load on the machine does not inflate it).
Scoring is the C++ G4MultiFunctionalDetector (G4PSEnergyDeposit / G4PSEnergyDeposit3D).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from calobench.simulation.g4env import import_geant4, make_physics_list
from calobench.datasets import get_dataset
from calobench.simulation.setups import G4NAME, Primaries, make_setup

_STATE: dict = {}
#: Geant4's serial run manager is one per process: one block at a time.
_LOCK = threading.Lock()


def init_worker(dataset: str, physics: str, cut_mm: float) -> None:
    """Build the Geant4 application of ``dataset`` in this process (once)."""
    if _STATE:
        if (_STATE["dataset"], _STATE["physics"], _STATE["cut_mm"]) != (dataset, physics, cut_mm):
            raise RuntimeError(f"this process already runs the Geant4 application of {_STATE['dataset']} "
                               f"({_STATE['physics']}, cut {_STATE['cut_mm']} mm): one per process; "
                               f"give this production fresh workers")
        return
    g4, _ = import_geant4()
    setup = make_setup(get_dataset(dataset))
    state = _STATE
    state.update(dataset=dataset, physics=physics, cut_mm=cut_mm, setup=setup, g4=g4, primaries=None, cursor=0)

    class Detector(g4.G4VUserDetectorConstruction):
        def Construct(self):
            world, scorers = setup.build(g4)
            state["scorers"] = scorers
            return world

        def ConstructSDandField(self):
            sdm = g4.G4SDManager.GetSDMpointer()
            self.detectors = []
            for logical, (spec, volumes) in state["scorers"].items():
                mfd = g4.G4MultiFunctionalDetector(f"cal{logical}")
                prim = g4.G4PSEnergyDeposit("edep") if spec[0] == "1d" else g4.G4PSEnergyDeposit3D("edep", *spec[1:])
                mfd.RegisterPrimitive(prim)
                sdm.AddNewDetector(mfd)
                for volume in volumes:
                    volume.SetSensitiveDetector(mfd)
                self.detectors.append((mfd, prim))

    class Gun(g4.G4VUserPrimaryGeneratorAction):
        def __init__(self):
            super().__init__()
            self.gun = g4.G4ParticleGun(1)
            self.table = g4.G4ParticleTable.GetParticleTable()

        def GeneratePrimaries(self, event):
            state["t0"] = time.process_time()
            p: Primaries = state["primaries"]
            i = state["cursor"]
            self.gun.SetParticleDefinition(self.table.FindParticle(G4NAME[int(p.pdg[i])]))
            self.gun.SetParticleEnergy(float(state["kinetic"][i]))
            self.gun.SetParticlePosition(g4.G4ThreeVector(*map(float, p.position[i])))
            self.gun.SetParticleMomentumDirection(g4.G4ThreeVector(*map(float, p.direction[i])))
            self.gun.GeneratePrimaryVertex(event)

    class Events(g4.G4UserEventAction):
        def __init__(self):
            super().__init__()
            self.ids = None

        def EndOfEventAction(self, event):
            if self.ids is None:
                sdm = g4.G4SDManager.GetSDMpointer()
                self.ids = [sdm.GetCollectionID(f"cal{logical}/edep") for logical in state["scorers"]]
            hce = event.GetHCofThisEvent()
            index, energy = [], []
            for hcid in self.ids:
                for key, value in hce.GetHC(hcid):
                    index.append(key)
                    energy.append(value)
            state["index"].append(np.array(index, dtype=np.int64))
            state["energy"].append(np.array(energy, dtype=np.float64))
            state["ms"].append(1000.0 * (time.process_time() - state["t0"]))
            state["cursor"] += 1

    class Actions(g4.G4VUserActionInitialization):
        def Build(self):
            self.SetUserAction(Gun())
            self.SetUserAction(Events())

    run_manager = g4.G4RunManagerFactory.CreateRunManager(g4.G4RunManagerType.Serial)
    run_manager.SetVerboseLevel(0)
    state["objects"] = [Detector(), make_physics_list(physics), Actions()]
    for obj in state["objects"]:
        run_manager.SetUserInitialization(obj)
    ui = g4.G4UImanager.GetUIpointer()
    for command in ("/control/verbose 0", "/run/verbose 0", "/event/verbose 0", "/tracking/verbose 0",
                    "/process/em/verbose 0", "/process/verbose 0", "/run/printProgress 0"):
        ui.ApplyCommand(command)
    if hasattr(g4, "G4EmParameters"):
        g4.G4EmParameters.Instance().SetVerbose(0)
    run_manager.Initialize()
    for command in ("/process/em/verbose 0", "/process/had/verbose 0"):
        ui.ApplyCommand(command)
    ui.ApplyCommand(f"/run/setCut {cut_mm} mm")
    state["run_manager"] = run_manager


def run_chunk(primaries: Primaries, seed: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Simulate the primaries with Geant4 seed ``seed``. Returns (indices, deposits, ms per event)."""
    state = _STATE
    g4 = state["g4"]
    g4.G4Random.setTheSeed(int(seed))
    state.update(primaries=primaries, kinetic=primaries.kinetic, cursor=0, index=[], energy=[], ms=[])
    state["run_manager"].BeamOn(len(primaries.pdg))
    if state["cursor"] != len(primaries.pdg):
        raise RuntimeError(f"Geant4 simulated {state['cursor']} of {len(primaries.pdg)} events")
    return state["index"], state["energy"], np.array(state["ms"])


def _silence_stdout() -> None:
    """Send this worker's stdout (the Geant4 banner and run messages) to /dev/null; errors
    (G4Exception) still reach stderr."""
    import os
    import sys

    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def worker_task(args: tuple) -> tuple:
    """Task entry point (a Dask task or a Pool task): (chunk, dataset, physics, cut, primaries
    arrays, seed) -> (chunk, indices, deposits, ms). The Geant4 application is built on the
    process's first task; a worker with several threads runs its blocks one at a time."""
    chunk, dataset, physics, cut_mm, arrays, seed = args
    with _LOCK:
        if not _STATE:
            _silence_stdout()
        init_worker(dataset, physics, cut_mm)
        index, energy, ms = run_chunk(Primaries.from_arrays(arrays), seed)
    return chunk, index, energy, ms
