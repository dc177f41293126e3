"""descent: gradient descent seen as physics. Landscapes are energies, optimizers are dynamics."""

__version__ = "0.1.0"

from descent._errors import DescentError  # noqa: E402
from descent.dynamics import Trajectory, simulate  # noqa: E402
from descent.landscapes import Landscape, get_landscape  # noqa: E402
from descent.objectives import EmpiricalRisk  # noqa: E402  (registers the objectives with data)
from descent.optim import Optimizer  # noqa: E402
from descent.spec import RunSpec, run_spec  # noqa: E402

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
]
