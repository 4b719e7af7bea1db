"""Simulation: real Geant4 reference samples (``calobench simulate``) and GFlash.

Geant4 needs the optional extra ``calobench[geant4]`` (geant4-pybind 0.1.3); nothing here
imports it until a simulation starts.
"""

from calobench.simulation.reference_timing import geant4_ms_per_event

__all__ = ["geant4_ms_per_event", "simulate"]


def simulate(*args, **kwargs):
    """See calobench.simulation.runner.simulate."""
    from calobench.simulation.runner import simulate as run
    return run(*args, **kwargs)
