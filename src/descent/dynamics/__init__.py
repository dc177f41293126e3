"""The one simulation loop, its outcomes and its physics readout."""

from descent.dynamics.outcomes import Classifier
from descent.dynamics.simulate import simulate, time_step
from descent.dynamics.trajectory import SCHEMA, Trajectory

__all__ = ["SCHEMA", "Classifier", "Trajectory", "simulate", "time_step"]
