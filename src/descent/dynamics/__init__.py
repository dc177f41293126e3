"""The one simulation loop (with what it saves, its events and its probes), its readable reference,
mini-batches and the trajectory it returns."""

from descent.dynamics.batches import MODES, Batching
from descent.dynamics.events import Events, outcome_labels
from descent.dynamics.probes import (
    PROBES,
    EnergyLedger,
    GradNorm,
    Kinetic,
    OptimizerState,
    Probe,
    StepView,
    UpdateParts,
    probe_from_dict,
)
from descent.dynamics.save import SaveAt
from descent.dynamics.simulate import simulate
from descent.dynamics.trajectory import SCHEMA, Trajectory, nearest_minimum

__all__ = [
    "MODES",
    "PROBES",
    "SCHEMA",
    "Batching",
    "EnergyLedger",
    "Events",
    "GradNorm",
    "Kinetic",
    "OptimizerState",
    "Probe",
    "SaveAt",
    "StepView",
    "Trajectory",
    "UpdateParts",
    "nearest_minimum",
    "outcome_labels",
    "probe_from_dict",
    "simulate",
]
