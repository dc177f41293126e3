"""descent: gradient descent seen as physics. Landscapes are energies, optimizers are dynamics.

The public names are imported when first used (PEP 562), so ``import descent`` and the ``descent``
command start without loading torch until a command needs it.

>>> import descent
>>> descent.get_landscape("double-well").name
'double-well'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from descent._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "DescentError": "descent._errors",
    "EmpiricalRisk": "descent.objectives",
    "Landscape": "descent.landscapes",
    "Optimizer": "descent.optim",
    "RunSpec": "descent.spec",
    "Trajectory": "descent.dynamics",
    "get_landscape": "descent.landscapes",
    "run_spec": "descent.spec",
    "simulate": "descent.dynamics",
    "watch": "descent.monitor",
}

if TYPE_CHECKING:
    from descent._errors import DescentError as DescentError
    from descent.dynamics import Trajectory as Trajectory
    from descent.dynamics.simulate import simulate as simulate
    from descent.landscapes import Landscape as Landscape
    from descent.landscapes import get_landscape as get_landscape
    from descent.monitor import watch as watch
    from descent.objectives import EmpiricalRisk as EmpiricalRisk
    from descent.optim import Optimizer as Optimizer
    from descent.spec import RunSpec as RunSpec
    from descent.spec import run_spec as run_spec


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "DescentError",
    "EmpiricalRisk",
    "Landscape",
    "Optimizer",
    "RunSpec",
    "Trajectory",
    "__version__",
    "get_landscape",
    "run_spec",
    "simulate",
    "watch",
]
