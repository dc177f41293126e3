"""Each seed claim as a named, reproducible experiment: ``run(config) -> Result``.

>>> [name for name in EXPERIMENT_NAMES][:2]
['double-well-momentum', 'plateau-momentum']
"""

from __future__ import annotations

import importlib
from types import ModuleType

from descent._errors import invalid, listed
from descent.experiments._base import VERDICTS, Result, verdict_from

EXPERIMENT_NAMES: tuple[str, ...] = (
    "double-well-momentum",
    "plateau-momentum",
    "saddle-escape",
    "learning-rate",
    "conditioning",
    "temperature",
    "sgd-noise",
    "adaptive",
    "overdamped",
    "batch-table",
    "edge-of-stability",
    "vanishing-exploding",
    "regularization",
    "flat-minima",
    "learning-to-learn",
    "diagnose",
)


def get_experiment(name: str) -> ModuleType:
    """The experiment module called ``name`` (it has ``CLAIM``, ``Config`` and ``run``)."""
    if name not in EXPERIMENT_NAMES:
        raise invalid("experiment", name, f"one of: {listed(list(EXPERIMENT_NAMES))} or 'all'")
    return importlib.import_module(f"descent.experiments.{name.replace('-', '_')}")


#: the experiments on networks: their full size (the issue's protocol) takes minutes, so the test
#: suite runs their quick size, which states the same criteria (their own tests check both sizes)
QUICK_IN_TESTS = (
    "batch-table",
    "edge-of-stability",
    "flat-minima",
    "vanishing-exploding",
    "regularization",
    "learning-to-learn",
    "diagnose",
)


def ci_size(name: str) -> str:
    """The size the test suite runs experiment ``name`` at: ``"full"``, or ``"quick"``."""
    return "quick" if name in QUICK_IN_TESTS else "full"


def run_experiment(name: str, quick: bool = False, progress=None) -> Result:
    """Run one experiment at its full size, or its quick size (what the tests run)."""
    module = get_experiment(name)
    config = module.Config.quick() if quick else module.Config()
    return module.run(config, progress=progress)


__all__ = [
    "EXPERIMENT_NAMES",
    "VERDICTS",
    "Result",
    "ci_size",
    "get_experiment",
    "run_experiment",
    "verdict_from",
]
