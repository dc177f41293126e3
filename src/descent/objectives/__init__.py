"""Objectives: what the engine minimises. Every objective has ``value_and_grad(x [N, d], batch)``
over particles, bounds, known critical points, a default start and a default learning rate.

- :class:`~descent.landscapes.Landscape`: an energy landscape written in the formula language
  (``batch`` is ignored; ``data_size`` is None).
- :class:`EmpiricalRisk`: a model's risk over a data set; ``batch`` holds each particle's example
  indices ``[N, B]`` (the engine draws them), None for the full data; ``data_size`` is n.
- :class:`NetworkObjective`: a small torch model on a data set, one whole network (its parameters
  flattened) per particle, evaluated with ``torch.func.functional_call`` and ``vmap``.
- :class:`RegularizedLandscape`: any of them plus an L2 potential ``lambda/2 |w - c|^2``
  (:func:`regularized`; the seeds' and theory landscapes are registered with it as ``NAME-l2``).
"""

from descent.landscapes import Landscape, get_landscape, resolve_landscape
from descent.objectives.network import (
    NetworkObjective,
    breast_cancer_mlp,
    digits_mlp,
    mlp_objective,
    network_objective,
)
from descent.objectives.perturbed import PerturbedLandscape, perturbed_landscape, sharp_flat_risk
from descent.objectives.regularized import (
    RegularizationPath,
    RegularizedLandscape,
    regularization_path,
    regularized,
)
from descent.objectives.risk import EmpiricalRisk, empirical_risk, logistic_risk

Objective = Landscape  # the common base: geometry, Hessians and value_and_grad

__all__ = [
    "EmpiricalRisk",
    "Landscape",
    "NetworkObjective",
    "Objective",
    "PerturbedLandscape",
    "RegularizationPath",
    "RegularizedLandscape",
    "breast_cancer_mlp",
    "digits_mlp",
    "empirical_risk",
    "get_landscape",
    "logistic_risk",
    "mlp_objective",
    "network_objective",
    "perturbed_landscape",
    "regularization_path",
    "regularized",
    "sharp_flat_risk",
    "resolve_landscape",
]
