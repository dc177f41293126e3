"""Each rule declares its physics once: time step, friction, kinetic energy and stability edge. The edges
are checked against an independent computation: the spectral radius of the rule's linear map."""

import math

import pytest
import torch

from descent.optim import RULES, stability_edge

torch.set_num_threads(1)
DTYPE = torch.float64


def heavy_ball_radius(lr: float, beta: float, lam: float, nesterov: bool = False) -> float:
    """Spectral radius of the heavy-ball (or Nesterov) iteration on lam x^2/2, from its 2 x 2 matrix."""
    if nesterov:  # x_{k+1} = y_k - lr lam y_k, y_k = x_k + beta (x_k - x_{k-1})
        a = (1 + beta) * (1 - lr * lam)
        b = -beta * (1 - lr * lam)
    else:  # x_{k+1} = x_k - lr lam x_k + beta (x_k - x_{k-1})
        a, b = 1 + beta - lr * lam, -beta
    matrix = torch.tensor([[a, b], [1.0, 0.0]], dtype=DTYPE)
    return float(torch.linalg.eigvals(matrix).abs().max())


@pytest.mark.parametrize("rule, beta", [("gd", 0.0), ("momentum", 0.5), ("momentum", 0.9), ("nesterov", 0.9)])
def test_edges_separate_stable_from_unstable_learning_rates(rule, beta):
    lam = 7.0
    edge = stability_edge(rule, lam, beta)
    for factor, stable in ((0.99, True), (1.01, False)):
        radius = heavy_ball_radius(factor * edge, beta, lam, nesterov=rule == "nesterov")
        assert (radius < 1) == stable, (rule, beta, factor, radius)


def test_edges_use_the_top_eigenvalue_of_the_hessian_and_are_infinite_without_curvature():
    rule = RULES["momentum"]
    hessian = torch.tensor([[[3.0, 1.0], [1.0, 3.0]], [[-1.0, 0.0], [0.0, -2.0]]], dtype=DTYPE)
    edge = rule.edge(hessian, rule.init(torch.zeros(2, 2, dtype=DTYPE)), rule.resolve({"momentum": 0.5}))
    assert edge[0].item() == pytest.approx(2 * 1.5 / 4.0, rel=1e-14)
    assert math.isinf(edge[1].item())


def test_adams_edge_is_on_the_preconditioned_sharpness():
    """With its second moment frozen, Adam on a diagonal quadratic is, per coordinate, a heavy ball of
    step lr (1 - beta1) / P_i in EMA form; the edge from the rule separates stable from unstable
    iterations of that linear map."""
    rule = RULES["adam"]
    curvature = torch.tensor([10.0, 0.5], dtype=DTYPE)
    state = rule.init(torch.zeros(1, 2, dtype=DTYPE))
    state["exp_avg_sq"] = torch.tensor([[4.0, 0.01]], dtype=DTYPE)
    state["step"] = torch.tensor(10_000)
    hp = rule.resolve({"lr": 0.1})
    edge = float(rule.edge(torch.diag(curvature).unsqueeze(0), state, hp)[0])
    beta1, beta2 = 0.9, 0.999
    scale = torch.sqrt(state["exp_avg_sq"][0] / (1 - beta2**10_000)) + 1e-8

    def radius(lr: float) -> float:
        worst = 0.0
        for lam, p in zip(curvature.tolist(), scale.tolist()):
            # m <- b1 m + (1 - b1) lam x;  x <- x - (lr / p) m   (bias correction ~ 1 at step 10,000)
            step = lr / p
            matrix = torch.tensor(
                [[beta1, (1 - beta1) * lam], [-step * beta1, 1 - step * (1 - beta1) * lam]], dtype=DTYPE
            )
            worst = max(worst, float(torch.linalg.eigvals(matrix).abs().max()))
        return worst

    assert radius(0.99 * edge) < 1 < radius(1.01 * edge)
    assert edge == pytest.approx(
        (2 + 2 * beta1) / ((1 - beta1) * max((curvature / scale).tolist())), rel=1e-12
    )


def test_time_step_friction_and_kinetic_energy():
    momentum, gd, adam = RULES["momentum"], RULES["gd"], RULES["adam"]
    hp = momentum.resolve({"lr": 0.04, "momentum": 0.9})
    assert momentum.time_step(hp) == pytest.approx(0.2)
    assert momentum.friction(hp) == pytest.approx(0.1 / 0.2)
    update = torch.tensor([[0.02, 0.0]], dtype=DTYPE)
    assert momentum.kinetic_energy(update, hp).item() == pytest.approx(0.5 * (0.02 / 0.2) ** 2)
    assert gd.time_step(gd.resolve({"lr": 0.3})) == 0.3 and gd.friction(gd.resolve({})) is None
    assert adam.kinetic_energy(update, adam.resolve({})) is None
    assert all(rule.edge_fn is not None and rule.edge_math for rule in RULES.values())
