"""SGD noise as temperature: the formulas against exact enumeration, the Lyapunov equations against
their closed forms, and the heavy ball's temperature lr s^2 / (2 (1 - beta)) against the engine.

Tolerances: enumeration and closed forms to 1e-12; the engine's stationary variance (4000 particles,
several decorrelated frames) to 4 %.
"""

import itertools

import numpy as np
import pytest
import torch

from descent import DescentError
from descent.dynamics import SaveAt, simulate
from descent.landscapes import get_landscape
from descent.optim import Optimizer
from descent.theory import noise

torch.set_num_threads(1)


def test_temperature_formula():
    assert noise.sgd_temperature(0.1, 2.0) == pytest.approx(0.1)
    assert noise.sgd_temperature(0.1, 2.0, batch=4) == pytest.approx(0.025)
    assert noise.sgd_temperature(0.1, 2.0, batch=4, momentum=0.9) == pytest.approx(0.25)
    n = 100
    assert noise.sgd_temperature(0.1, 2.0, batch=10, n=n, replacement=False) == pytest.approx(0.01 * 90 / 99)
    assert noise.sgd_temperature(0.1, 2.0, batch=n, n=n, replacement=False) == 0.0  # the full batch is exact
    with pytest.raises(DescentError, match="dataset size"):
        noise.minibatch_covariance(1.0, 4, replacement=False)
    with pytest.raises(DescentError, match="batch"):
        noise.without_replacement_factor(10, 11)


def _per_example(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2)) @ np.array([[1.0, 0.3], [0.0, 0.5]])


@pytest.mark.parametrize("n, batch", [(6, 1), (6, 3), (7, 4), (5, 5)])
def test_without_replacement_covariance_by_enumerating_every_batch(n, batch):
    grads = _per_example(n)
    mean = grads.mean(0)
    cov = (grads - mean).T @ (grads - mean) / n
    batches = [grads[list(s)].mean(0) - mean for s in itertools.combinations(range(n), batch)]
    exact = sum(np.outer(b, b) for b in batches) / len(batches)
    assert np.allclose(exact, noise.minibatch_covariance(cov, batch, n, replacement=False), atol=1e-12)


@pytest.mark.parametrize("n, batch", [(4, 1), (4, 2), (3, 3)])
def test_with_replacement_covariance_by_enumerating_every_draw(n, batch):
    grads = _per_example(n)
    mean = grads.mean(0)
    cov = (grads - mean).T @ (grads - mean) / n
    draws = [grads[list(s)].mean(0) - mean for s in itertools.product(range(n), repeat=batch)]
    exact = sum(np.outer(b, b) for b in draws) / len(draws)
    assert np.allclose(exact, noise.minibatch_covariance(cov, batch), atol=1e-12)


@pytest.mark.parametrize("lr", [0.01, 0.3, 0.6])
def test_discrete_lyapunov_gives_the_langevin_variance(lr):
    """The Langevin step is SGD with noise variance 2T/lr: both give T / (h (1 - lr h / 2))."""
    h, temperature = 3.0, 0.2
    cov = noise.sgd_stationary_covariance([[h]], [[2 * temperature / lr]], lr)
    assert cov[0, 0] == pytest.approx(noise.discrete_langevin_variance(h, lr, temperature), rel=1e-12)
    assert noise.discrete_langevin_variance(h, lr, temperature) == pytest.approx(
        temperature / (h * (1 - lr * h / 2))
    )
    with pytest.raises(DescentError, match="stable"):
        noise.discrete_langevin_variance(h, 1.0, temperature)


def test_isotropic_noise_is_one_temperature_and_equipartition_averages_the_rest():
    hessian = np.array([[2.0, 0.5], [0.5, 1.0]])
    lr, s2 = 0.01, 0.4
    cov = noise.sgd_stationary_covariance(hessian, s2 * np.eye(2), lr, discrete=False)
    assert np.allclose(cov, lr * s2 / 2 * np.linalg.inv(hessian), atol=1e-14)  # T H^-1, T = lr s^2 / 2
    assert noise.equipartition_temperature(hessian, cov) == pytest.approx(lr * s2 / 2)
    # anisotropic noise: no single temperature, but tr(H S)/d = lr tr(C)/(2d) still
    c = np.array([[0.9, 0.1], [0.1, 0.1]])
    cov = noise.sgd_stationary_covariance(hessian, c, lr, discrete=False)
    assert noise.equipartition_temperature(hessian, cov) == pytest.approx(lr * np.trace(c) / 4, rel=1e-12)


def test_heavy_ball_temperature_in_the_small_step_limit():
    h, beta, s2 = 2.0, 0.9, 1.0
    for lr in (1e-3, 1e-4):
        variance = noise.heavy_ball_stationary_covariance([[h]], [[s2]], lr, beta)[0, 0]
        temperature = noise.sgd_temperature(lr, s2, momentum=beta)
        assert variance * h / temperature == pytest.approx(1.0, abs=20 * lr / (1 - beta))


def test_engine_heavy_ball_with_gradient_noise_has_the_predicted_variance():
    """Momentum plus grad_noise s on h x^2/2: the stationary variance of the engine's iterates equals the
    exact discrete heavy-ball value, and T = lr s^2 / (2 (1 - beta)) to its small-step accuracy."""
    h, beta, lr, s = 2.0, 0.9, 0.01, 1.5
    well = get_landscape("quadratic", kappa=1.0, mu=h, dim=1)
    starts = torch.zeros(4000, 1, dtype=torch.float64)
    optimizer = Optimizer.build("momentum", lr=lr, momentum=beta, grad_noise=s)
    traj = simulate(well, optimizer, starts, 1500, save=SaveAt(every=100), seed=3)
    sample = traj.positions[6:, :, 0]  # after 600 steps (relaxation ~ 1/((1 - beta)) ~ 10s of steps)
    measured = float(sample.var())
    exact = noise.heavy_ball_stationary_covariance([[h]], [[s * s]], lr, beta)[0, 0]
    assert measured == pytest.approx(exact, rel=0.04)
    temperature = noise.sgd_temperature(lr, s * s, momentum=beta)
    assert exact * h / temperature == pytest.approx(1.0, abs=0.02)
