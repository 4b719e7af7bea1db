"""Simulation: real Geant4 reference samples (``calobench simulate``).

The set-ups are generic builders (setups.py); each dataset's numbers and materials come from
its module in calobench.datasets. Geant4 needs the optional extra ``calobench[geant4]``
(geant4-pybind 0.1.3); nothing here imports it until a simulation starts.
"""

__all__ = ["simulate"]


def simulate(*args, **kwargs):
    """See calobench.simulation.runner.simulate."""
    from calobench.simulation.runner import simulate as run
    return run(*args, **kwargs)
