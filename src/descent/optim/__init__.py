"""Optimizers as pure update rules (init / update) with per-particle hyper-parameters, schedules,
and an adapter that turns any rule into a `torch.optim.Optimizer`."""

from descent.optim._base import HyperParam, UpdateRule, per_particle
from descent.optim.optimizer import Optimizer, get_rule
from descent.optim.rules import RULES, stability_edge
from descent.optim.schedules import (
    Constant,
    Cosine,
    Exponential,
    Product,
    Sequence,
    Step,
    Warmup,
    parse_schedule,
    schedule_from_dict,
    schedule_to_dict,
)
from descent.optim.torch_adapter import TorchOptimizer
from descent.optim.transforms import TRANSFORMS, ClipNorm, GradNoise, WeightDecay, transform_from_dict

__all__ = [
    "RULES",
    "TRANSFORMS",
    "ClipNorm",
    "GradNoise",
    "WeightDecay",
    "transform_from_dict",
    "Constant",
    "Cosine",
    "Exponential",
    "HyperParam",
    "Optimizer",
    "Product",
    "Sequence",
    "Step",
    "TorchOptimizer",
    "UpdateRule",
    "Warmup",
    "get_rule",
    "parse_schedule",
    "per_particle",
    "schedule_from_dict",
    "schedule_to_dict",
    "stability_edge",
]
