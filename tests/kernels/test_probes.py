"""The built-in probes of a kernel run equal the torch backend's: the kernel keeps a snapshot of its
state at each step a probe is due (and the step before), and the probes read them as the views the
torch engine builds (``descent.kernels.probes``)."""

import pytest
import torch

from descent._errors import DescentError
from descent.dynamics import Events, simulate
from descent.dynamics.probes import PROBES, GradNorm, Probe
from descent.dynamics.save import SaveAt
from descent.landscapes import get_landscape
from descent.optim import Optimizer

torch.set_num_threads(1)
N = 48
INERTIAL = ("momentum", "nesterov")


def probes_for(rule, every=1):
    return [
        cls(every=every if name != "energy_ledger" else 1)
        for name, cls in PROBES.items()
        if name != "energy_ledger" or rule in INERTIAL
    ]


def run_both(rule, every, **kw):
    well = get_landscape("double-well")
    gen = torch.Generator().manual_seed(2)
    starts = (torch.rand(N, 2, dtype=torch.float64, generator=gen) * 2 - 1) * torch.tensor([1.8, 1.2])
    line = torch.linspace(0.5, 0.9, N, dtype=torch.float64)
    hyper = {"momentum": line} if rule in INERTIAL else {"temperature": 0.05} if rule == "langevin" else {}
    opt = Optimizer.build(rule, lr=0.02, **hyper, **kw)
    events = Events(grad_tol=1e-4, stop_on=("converged",))
    runs = [
        simulate(well, opt, starts, 400, save=SaveAt(every=25), events=events, probes=probes_for(rule, every),
                 seed=4, backend=backend)
        for backend in ("kernel", "torch")
    ]  # fmt: skip
    return runs


@pytest.mark.parametrize(
    "rule, every", [("momentum", 1), ("nesterov", 3), ("adam", 1), ("rmsprop", 7), ("langevin", 1)]
)
def test_probes_match_torch(rule, every):
    kernel, reference = run_both(rule, every)
    assert kernel.backend == "kernel" and reference.backend == "torch"
    stopped = reference.stop_step[reference.stop_step >= 0]
    if rule != "langevin":  # thermal noise keeps every particle moving
        assert stopped.numel() and int(stopped.min()) < reference.steps_run  # frozen ones are probed too
    assert list(kernel.probes) == list(reference.probes)
    for name, record in reference.probes.items():
        assert list(kernel.probes[name]) == list(record), name
        for key, value in record.items():
            got = kernel.probes[name][key]
            assert got.shape == value.shape, (name, key)
            if not value.dtype.is_floating_point:
                assert torch.equal(got, value), (name, key)
                continue
            assert torch.equal(torch.isnan(got), torch.isnan(value)), (name, key)
            if (
                key == "scale"
            ):  # u / (-lr g): compared times the force, as a ratio of two small numbers is not
                force = record["force"]
                got, value = got * force, value * force
            both = ~torch.isnan(value)
            assert torch.all((got[both] - value[both]).abs() <= 1e-9 * (value[both].abs() + 1)), (name, key)


def test_noisy_gradients_are_probed_with_their_draws():
    """grad_noise: the probes' grad_used takes step k - 1's draws, as in the torch engine."""
    kernel, reference = run_both("momentum", 1, grad_noise=0.2)
    force, expected = kernel.probes["update_parts"]["force"], reference.probes["update_parts"]["force"]
    both = ~torch.isnan(expected)
    assert torch.all((force[both] - expected[both]).abs() <= 1e-9 * (expected[both].abs() + 1))


def test_a_custom_probe_sends_the_run_to_torch():
    class Distance(Probe):
        name = "distance"

        def __call__(self, view):
            return {"distance": view.x.norm(dim=1)}

    well = get_landscape("double-well")
    opt = Optimizer.build("gd", lr=0.01)
    assert simulate(well, opt, well.start(), 10, probes=[Distance()], backend="auto").backend == "torch"
    assert simulate(well, opt, well.start(), 10, probes=[GradNorm()], backend="auto").backend == "kernel"
    with pytest.raises(DescentError, match="custom probes \\(Distance\\)"):
        simulate(well, opt, well.start(), 10, probes=[Distance()], backend="kernel")
