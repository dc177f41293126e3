"""regularization: the engine's L2 transform is the L2 potential's gradient, the per-network measurements
against the exact Hessian and autograd, the rows against a replay of a stored spec, and the double
well's fold against its closed form (measurements, not the verdict)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from descent.dynamics import simulate
from descent.experiments import regularization as reg
from descent.experiments.rows import mean_se
from descent.landscapes import get_landscape
from descent.objectives import digits_mlp, regularized
from descent.optim import Optimizer
from descent.spec import RunSpec, run_spec
from descent.train.models import functional_loss, loss_function

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def quick():
    result = reg.run(reg.Config.quick())
    yield result
    import matplotlib.pyplot as plt

    for figure in result.figures:
        plt.close(figure)


def test_weight_decay_is_the_l2_potentials_gradient():
    """Momentum with the coupled L2 transform on the network equals momentum on the network plus the
    L2 potential (descent.objectives.regularized), step for step."""
    net = digits_mlp(width=4, depth=1, examples=60)
    starts = net.inits([0, 1])
    transform = simulate(
        net,
        Optimizer.build("momentum", lr=0.3, momentum=0.9, l2=0.07),
        starts,
        25,
    )
    potential = simulate(
        regularized(net, 0.07), Optimizer.build("momentum", lr=0.3, momentum=0.9), starts, 25
    )
    torch.testing.assert_close(transform.final_position, potential.final_position, rtol=1e-12, atol=1e-13)


def test_measurements_against_the_exact_hessian_and_autograd():
    net = digits_mlp(width=4, depth=1, examples=60)
    strength = 0.05
    w = net.inits([3, 4]) * 1.5
    m = reg.measure_networks(net, w, strength)
    loss_fn = functional_loss(
        net.model, loss_function("cross-entropy", "classification"), net.inputs, net.targets
    )
    for i, row in enumerate(w):
        hessian = torch.autograd.functional.hessian(loss_fn, row)
        assert m["sharpness"][i] == pytest.approx(float(torch.linalg.eigvalsh(hessian)[-1]), rel=1e-7)
        point = row.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(point) + 0.5 * strength * (point**2).sum(), point)
        assert m["residual"][i] == pytest.approx(float(grad.norm() / (strength * row).norm()), rel=1e-10)
        assert m["norm"][i] == pytest.approx(float(row.norm()), rel=1e-14)
        logits = torch.func.functional_call(
            net.model,
            dict(zip([n for n, _ in net.model.named_parameters()], _views(net, row))),
            (net.test_inputs,),
        )
        accuracy = float((logits.argmax(dim=1) == net.test_targets).double().mean())
        assert m["accuracy"][i] == pytest.approx(accuracy, abs=1e-15)


def _views(net, row):
    out, start = [], 0
    for _, p in net.model.named_parameters():
        out.append(row[start : start + p.numel()].view(p.shape))
        start += p.numel()
    return out


def test_the_rows_are_a_replay_of_the_stored_specs(quick):
    config = reg.Config.quick()
    assert len(quick.specs) == len(config.lambdas)
    strength = config.lambdas[1]
    data = next(s for s in quick.specs if s["transforms"] and s["transforms"][0]["l2"] == strength)
    net = reg.network(config)
    w = run_spec(RunSpec.from_dict(data), landscape=net).final_position
    norms = w.norm(dim=1).tolist()
    row = quick.row(f"norm/{strength:g}")
    assert (row.value, row.se) == pytest.approx(mean_se(norms), rel=1e-12)
    _, grad = net.value_and_grad(w, None)
    residual = float(((grad + strength * w).norm(dim=1) / (strength * w).norm(dim=1)).max())
    assert quick.row(f"stationary/{strength:g}").value == pytest.approx(residual, rel=1e-9)
    falls = quick.row(f"norm_falls/{config.lambdas[0]:g}-{strength:g}")
    assert falls.about == "claim" and falls.passed == (falls.value > 3 * falls.se)


def test_every_lambda_from_the_checked_one_has_a_stationarity_check(quick):
    config = reg.Config.quick()
    ids = {row.id for row in quick.checks}
    for strength in config.lambdas:
        assert (f"stationary/{strength:g}" in ids) == (strength >= reg.CHECKED_FROM)
    for low, high in zip(config.lambdas, config.lambdas[1:]):
        assert f"norm_falls/{low:g}-{high:g}" in ids


def test_the_double_well_rows_against_the_closed_form(quick):
    """The fold where U' = U'' = 0 along x: x^2 = (4 - lambda)/12, tilt = (2/3)(4 - lambda) |x|."""
    fold = 4.0 - (1.5 * math.sqrt(12.0) * reg.TILT) ** (2.0 / 3.0)
    x = -math.sqrt((4.0 - fold) / 12.0)
    assert 4 * x**3 - (4 - fold) * x == pytest.approx(reg.TILT, rel=1e-12)  # U_lambda'(x) = 0 there
    row = quick.row("fold")
    assert row.theory == pytest.approx(fold, rel=1e-14) and row.tolerance == pytest.approx(0.01 * fold)
    barriers = []
    for strength in (0.0, reg.BARRIER_LAMBDA):
        well = regularized(get_landscape("double-well", tilt=reg.TILT), strength)
        barriers.append(well.point("barrier").value - well.point("left").value)
    assert quick.row("barrier_rises").value == pytest.approx(barriers[1] - barriers[0], rel=1e-10)
    assert barriers[0] == pytest.approx(
        float(np.ptp([get_landscape("double-well").point(p).value for p in ("left", "barrier")])), rel=1e-12
    )
