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
)


def get_experiment(name: str) -> ModuleType:
    """The experiment module called ``name`` (it has ``CLAIM``, ``Config`` and ``run``)."""
    if name not in EXPERIMENT_NAMES:
        raise invalid("experiment", name, f"one of: {listed(list(EXPERIMENT_NAMES))} or 'all'")
    return importlib.import_module(f"descent.experiments.{name.replace('-', '_')}")


def run_experiment(name: str, quick: bool = False, progress=None) -> Result:
    """Run one experiment at its full size, or its quick size (what the tests run)."""
    module = get_experiment(name)
    config = module.Config.quick() if quick else module.Config()
    return module.run(config, progress=progress)


__all__ = ["EXPERIMENT_NAMES", "VERDICTS", "Result", "get_experiment", "run_experiment", "verdict_from"]
