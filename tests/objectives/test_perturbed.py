"""The perturbed landscape: per-example losses U + xi_i V whose mean is U. A batch's loss and gradient
equal autograd of the batch mean of the per-example losses; the full data is U itself; the engine's
batches give gradient noise of variance sigma^2 s'(x)^2 / B."""

import math

import pytest
import torch

from descent import DescentError
from descent.dynamics.batches import draw_indices
from descent.landscapes import get_landscape
from descent.objectives.perturbed import perturbed_landscape, sharp_flat_risk, warp
from descent.spec import RunSpec, run_spec

torch.set_num_threads(1)
HEIGHT, SKEW, SIGMA = 0.25, 0.5, 2.5


def sharp_flat_example_losses(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """l_i(x) = H (s^2 - 1)^2 + xi_i s, s = (exp(c x) - 1)/c, written out here: ``[N, n]``."""
    s = torch.expm1(SKEW * x[:, 0]) / SKEW
    return (HEIGHT * (s * s - 1) ** 2).unsqueeze(1) + weights.unsqueeze(0) * s.unsqueeze(1)


@pytest.fixture(scope="module")
def risk():
    return sharp_flat_risk(HEIGHT, SKEW, SIGMA, size=64, seed=1)


def test_weights_are_centred_with_variance_sigma_squared(risk):
    assert risk.data_size == 64
    assert abs(float(risk.weights.mean())) < 1e-14
    assert float(risk.weights.var(unbiased=False)) == pytest.approx(SIGMA**2, rel=1e-12)


def test_batch_loss_and_gradient_are_autograd_of_the_batch_mean(risk):
    x = torch.tensor([[0.3], [-1.0], [1.2]], dtype=torch.float64)
    batch = torch.randint(0, 64, (3, 5), generator=torch.Generator().manual_seed(0))
    value, grad = risk.value_and_grad(x, batch)
    xg = x.clone().requires_grad_(True)
    losses = sharp_flat_example_losses(xg, risk.weights)
    expected = losses.gather(1, batch).mean(dim=1)
    (expected_grad,) = torch.autograd.grad(expected.sum(), xg)
    assert torch.allclose(value, expected.detach(), rtol=1e-12, atol=1e-14)
    assert torch.allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    assert torch.allclose(risk.example_losses(x), losses.detach(), rtol=1e-12, atol=1e-14)


def test_the_full_data_is_the_landscape_itself(risk):
    landscape = get_landscape("sharp-flat", height=HEIGHT, skew=SKEW, dim=1)
    x = torch.linspace(-2.0, 1.5, 9, dtype=torch.float64).unsqueeze(1)
    value, grad = risk.value_and_grad(x)
    assert torch.equal(value, landscape.value(x)) and torch.equal(grad, landscape.gradient(x))
    every = torch.arange(64).expand(9, -1)
    batch_value, batch_grad = risk.value_and_grad(x, every)
    assert torch.allclose(batch_value, value, atol=1e-13) and torch.allclose(batch_grad, grad, atol=1e-13)
    assert torch.allclose(risk.example_losses(x).mean(dim=1), value, atol=1e-13)
    assert risk.bounds == landscape.bounds and risk.critical_points == landscape.critical_points


def test_engine_batches_give_noise_of_variance_sigma2_exp_2cx_over_b():
    risk = sharp_flat_risk(HEIGHT, SKEW, SIGMA, size=512, seed=0)
    draws, batch, x0 = 20000, 4, 0.5
    indices = draw_indices(7, "replacement", batch, 512, torch.arange(draws), 0)
    x = torch.full((draws, 1), x0, dtype=torch.float64)
    _, grad = risk.value_and_grad(x, indices)
    variance = float(grad[:, 0].var())
    expected = SIGMA**2 * math.exp(2 * SKEW * x0) / batch
    assert variance == pytest.approx(expected, rel=4 * math.sqrt(2 / draws))
    full = float(risk.gradient(x[:1])[0, 0])
    assert float(grad[:, 0].mean()) == pytest.approx(full, abs=4 * math.sqrt(expected / draws))


def test_a_spec_runs_it_and_a_full_batch_particle_is_plain_gd(risk):
    params = {"height": HEIGHT, "skew": SKEW, "dim": 1}
    common = {"optimizer": "gd", "hyper": {"lr": 0.05}, "starts": [[0.3]], "steps": 200, "save": "summary"}
    noisy = RunSpec(landscape="sharp-flat-risk", batch_size=[2, 64], **common)
    plain = RunSpec(landscape="sharp-flat", landscape_params=params, **common)
    mixed = run_spec(noisy, landscape=risk)
    reference = run_spec(plain)
    assert torch.equal(mixed.final_position[1], reference.final_position[0])
    assert not torch.equal(mixed.final_position[0], reference.final_position[0])


def test_bad_input_raises():
    with pytest.raises(DescentError, match="size"):
        sharp_flat_risk(size=1)
    with pytest.raises(DescentError, match="sigma"):
        sharp_flat_risk(sigma=-1.0)
    quadratic = get_landscape("quadratic", dim=2)
    with pytest.raises(DescentError, match="term.dim"):
        perturbed_landscape(quadratic, warp(0.5, ((-1.0, 1.0),)), torch.zeros(4), name="bad")
    with pytest.raises(DescentError, match="weights"):
        perturbed_landscape(quadratic, quadratic, torch.tensor([1.0, math.nan]), name="bad")
