"""Hessian tools against the exact Hessian (``torch.autograd.functional.hessian``) of a small tanh MLP
on 100 digits images: the top eigenvalues by Lanczos, Hutchinson's trace and its standard error
against the closed-form variance, the tracker along a GD run against cold ``eigsh``, and the
preconditioned sharpness against the exact matrix and torch's own Adam."""

from __future__ import annotations

import math

import pytest
import torch

from descent._errors import DescentError
from descent.optim import TorchOptimizer
from descent.train import build_model, flat_parameters, functional_loss, load_dataset, loss_function
from descent.train.hessian import (
    HessianOperator,
    SharpnessTracker,
    adam_preconditioner,
    hutchinson_trace,
    hvp,
    lanczos_refine,
    top_eigenvalues,
)

torch.set_num_threads(1)
WIDTH = 6  # 64*6 + 6 + 6*10 + 10 = 460 parameters


def small_problem(steps: int = 30, lr: float = 0.5):
    """A tanh MLP on the first 100 digits with MSE, after ``steps`` GD steps (a Hessian with both
    signs of eigenvalues)."""
    data = load_dataset("digits", n=125, test_fraction=0.2, seed=0)
    model = build_model(f"mlp:{WIDTH}", 64, 10, activation="tanh", seed=0)
    loss = loss_function("mse", "classification")
    x, y = data.x_train, data.y_train
    optimizer = TorchOptimizer(model.parameters(), "gd", lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(model(x), y).backward()
        optimizer.step()
    return model, loss, x, y


@pytest.fixture(scope="module")
def problem():
    model, loss, x, y = small_problem()
    fn = functional_loss(model, loss, x, y)
    theta = flat_parameters(model)
    exact = torch.autograd.functional.hessian(fn, theta, vectorize=True)
    return fn, theta, 0.5 * (exact + exact.T)


def test_hessian_vector_products_equal_the_exact_hessian_times_v(problem):
    fn, theta, hessian = problem
    v = torch.randn(theta.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(hvp(fn, theta, v), hessian @ v, rtol=1e-10, atol=1e-12)
    operator = HessianOperator(fn, theta)
    assert torch.allclose(operator(v), hessian @ v, rtol=1e-10, atol=1e-12)
    assert operator.products == 1
    assert math.isclose(operator.value, float(fn(theta)), rel_tol=1e-14)


def test_top_eigenvalues_by_lanczos_within_1e_6_of_the_exact_hessians(problem):
    fn, theta, hessian = problem
    exact = torch.linalg.eigvalsh(hessian)
    assert exact[0] < 0 < exact[-1]  # both signs: 'LA' must pick the largest algebraic
    top = top_eigenvalues(fn, theta, k=3)
    for i, value in enumerate(top.values):
        assert abs(value / float(exact[-1 - i]) - 1) < 1e-6, (i, value, float(exact[-1 - i]))
    residual = hessian @ top.vectors - top.vectors * torch.tensor(top.values, dtype=torch.float64)
    assert float(residual.norm(dim=0).max()) < 1e-5 * float(exact[-1])
    assert top.products > 3


def test_the_largest_algebraic_eigenvalue_not_the_largest_in_magnitude():
    """A quadratic whose most negative eigenvalue is larger in magnitude than its top one."""
    generator = torch.Generator().manual_seed(4)
    q, _ = torch.linalg.qr(torch.randn(50, 50, dtype=torch.float64, generator=generator))
    spectrum = torch.linspace(-1.0, 2.0, 50, dtype=torch.float64)
    spectrum[0] = -9.0
    matrix = q @ torch.diag(spectrum) @ q.T
    top = top_eigenvalues(lambda w: 0.5 * w @ matrix @ w, torch.zeros(50, dtype=torch.float64), k=2)
    assert abs(top.values[0] - 2.0) < 1e-9 and abs(top.values[1] - float(spectrum[-2])) < 1e-9


def test_a_warm_start_from_the_eigenvector_needs_fewer_products(problem):
    fn, theta, _ = problem
    cold = top_eigenvalues(fn, theta)
    warm = top_eigenvalues(fn, theta, v0=cold.vectors[:, 0])
    assert abs(warm.values[0] / cold.values[0] - 1) < 1e-9
    assert warm.products < cold.products


def test_hutchinson_trace_within_3_se_and_its_se_against_the_closed_form_variance(problem):
    fn, theta, hessian = problem
    samples = 300
    trace = hutchinson_trace(fn, theta, samples=samples, seed=0)
    exact = float(torch.trace(hessian))
    assert abs(trace.mean - exact) <= 3 * trace.se, (trace.mean, exact, trace.se)
    # one Rademacher probe's variance is 2 sum_{i != j} H_ij^2; the sample variance s^2 estimates it
    # with standard error sqrt((m4 - s^4)/n), m4 the sample's fourth central moment
    off = hessian - torch.diag(torch.diagonal(hessian))
    variance = 2 * float((off**2).sum())
    values = torch.tensor(trace.samples, dtype=torch.float64)
    s2 = trace.se**2 * samples
    m4 = float(((values - values.mean()) ** 4).mean())
    assert abs(s2 - variance) <= 3 * math.sqrt((m4 - s2**2) / samples), (s2, variance)
    assert abs(trace.se / math.sqrt(variance / samples) - 1) < 0.25
    again = hutchinson_trace(fn, theta, samples=samples, seed=0)
    assert again.samples == trace.samples  # the seed fixes the probes


def test_hutchinson_rademacher_probes_see_only_the_off_diagonal():
    """On a quadratic with a large diagonal and a small off-diagonal part, the probes' variance is
    2 sum_{i != j} H_ij^2 (Gaussian probes would add 2 sum_i H_ii^2)."""
    generator = torch.Generator().manual_seed(5)
    off = 0.01 * torch.randn(40, 40, dtype=torch.float64, generator=generator)
    matrix = torch.diag(torch.linspace(1.0, 10.0, 40, dtype=torch.float64)) + off + off.T
    matrix.fill_diagonal_(0).add_(torch.diag(torch.linspace(1.0, 10.0, 40, dtype=torch.float64)))
    trace = hutchinson_trace(
        lambda w, m=matrix: 0.5 * w @ m @ w, torch.zeros(40, dtype=torch.float64), 400, seed=1
    )
    variance = 2 * float((matrix - torch.diag(torch.diagonal(matrix))).square().sum())
    assert abs(trace.se / math.sqrt(variance / 400) - 1) < 0.25
    assert abs(trace.mean - float(torch.trace(matrix))) <= 3 * trace.se


def test_preconditioned_sharpness_against_the_exact_matrix(problem):
    fn, theta, hessian = problem
    scale = torch.rand(theta.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.1
    # the eigenvalues of P^-1 H (not symmetric), computed directly
    exact = torch.linalg.eigvals(hessian / scale.unsqueeze(1)).real.sort().values
    top = top_eigenvalues(fn, theta, k=2, scale=scale)
    assert abs(top.values[0] / float(exact[-1]) - 1) < 1e-6
    assert abs(top.values[1] / float(exact[-2]) - 1) < 1e-6
    trace = hutchinson_trace(fn, theta, samples=200, seed=3, scale=scale)
    assert abs(trace.mean - float(torch.sum(torch.diagonal(hessian) / scale))) <= 3 * trace.se


def test_adam_preconditioner_reads_torch_adams_state():
    """``(1 - beta1^t)(sqrt(v/(1 - beta2^t)) + eps)`` from descent's adam equals the same formula on
    torch.optim.Adam's own second moment after the same steps."""
    ours_model, loss, x, y = small_problem(steps=0)
    torch_model, *_ = small_problem(steps=0)
    betas, eps, lr = (0.8, 0.95), 1e-6, 1e-3
    ours = TorchOptimizer(ours_model.parameters(), "adam", lr=lr, betas=betas, eps=eps)
    theirs = torch.optim.Adam(torch_model.parameters(), lr=lr, betas=betas, eps=eps)
    for _ in range(7):
        for model, optimizer in ((ours_model, ours), (torch_model, theirs)):
            optimizer.zero_grad()
            loss(model(x), y).backward()
            optimizer.step()
    scale = adam_preconditioner(ours, list(ours_model.parameters()))
    v = torch.cat([theirs.state[p]["exp_avg_sq"].reshape(-1) for p in torch_model.parameters()])
    expected = (1 - betas[0] ** 7) * (torch.sqrt(v / (1 - betas[1] ** 7)) + eps)
    assert torch.allclose(scale, expected, rtol=1e-10, atol=0)
    assert torch.allclose(adam_preconditioner(theirs, list(torch_model.parameters())), expected, rtol=1e-12)


def test_lanczos_refine_is_exact_from_an_eigenvector_and_bounded_by_lambda_max(problem):
    fn, theta, hessian = problem
    exact = torch.linalg.eigh(hessian)
    operator = HessianOperator(fn, theta)
    value, vector = lanczos_refine(operator, exact.eigenvectors[:, -1], 3)
    assert abs(value / float(exact.eigenvalues[-1]) - 1) < 1e-12
    noisy = exact.eigenvectors[:, -1] + 0.3 * exact.eigenvectors[:, 0]  # plus the most negative one
    value, _ = lanczos_refine(operator, noisy, 2)
    assert value <= float(exact.eigenvalues[-1]) * (1 + 1e-12)
    assert abs(value / float(exact.eigenvalues[-1]) - 1) < 1e-10  # 2-D invariant space: exact


def test_the_tracker_uses_at_most_3_products_and_agrees_within_1_percent_along_a_gd_run():
    """Full-batch GD at lr 0.5: the sharpness starts at 6.0, above 2/lr = 4, falls and then hovers near
    4 (this small net's edge of stability) while its eigenvector turns; every 10 steps the tracker
    spends 3 products (thick-restart Lanczos from its last 2 Ritz vectors), and a cold eigsh runs
    every 100."""
    model, loss, x, y = small_problem(steps=0)
    optimizer = TorchOptimizer(model.parameters(), "gd", lr=0.5)
    tracker = SharpnessTracker(every=10, cold_every=100)
    for step in range(601):
        tracker(step, functional_loss(model, loss, x, y), flat_parameters(model))
        if step == 0:
            first = tracker.vector.clone()
        optimizer.zero_grad()
        loss(model(x), y).backward()
        optimizer.step()
    assert tracker.steps == list(range(0, 601, 10))
    assert max(tracker.hvps[1:]) <= 3
    assert tracker.cold_steps == list(range(0, 601, 100))
    tracked = tracker.tracked_at(tracker.cold_steps)
    errors = [abs(t / c - 1) for t, c in zip(tracked, tracker.cold_values)]
    assert max(errors) < 0.01, errors
    # what was tracked moved: the top eigenvector turned, and the sharpness reached the edge 2/lr
    assert abs(float(first @ tracker.vector)) < 0.9
    assert tracker.values[0] > 1.3 * 4.0 and abs(tracker.values[-1] / 4.0 - 1) < 0.15


def crossing_family(n: int = 40, rotation: float = 0.3):
    """``H(t) = U(t) diag(10 - 4t, 7 + 2t, bulk) U(t)^T`` with the bulk spread over [-1, 4] and
    ``U(t) = U_0 exp(t S)``, ``S`` skew with spectral norm ``rotation``: the top two eigenvalues cross
    at t = 1/2 (both 8) while every eigenvector turns."""
    generator = torch.Generator().manual_seed(7)
    u0, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=generator))
    skew = torch.randn(n, n, dtype=torch.float64, generator=generator)
    skew = rotation * (skew - skew.T) / torch.linalg.matrix_norm(skew - skew.T, 2)
    bulk = torch.linspace(-1.0, 4.0, n - 2, dtype=torch.float64)

    def hessian(t: float) -> torch.Tensor:
        top = torch.tensor([10.0 - 4.0 * t, 7.0 + 2.0 * t], dtype=torch.float64)
        u = u0 @ torch.linalg.matrix_exp(t * skew)
        return u @ torch.diag(torch.cat([top, bulk])) @ u.T

    return hessian


def track_crossing(keep: int) -> tuple[list[float], SharpnessTracker]:
    """The tracker (a check at each of 21 points t = 0, 0.05, ..., 1) on the quadratic loss
    ``w^T H(t) w / 2``: its relative error against the exact largest eigenvalue at each check."""
    hessian, tracker, errors = crossing_family(), SharpnessTracker(every=1, keep=keep), []
    for step in range(21):
        matrix = hessian(step / 20)
        value = tracker(step, lambda w, m=matrix: 0.5 * w @ m @ w, torch.zeros(40, dtype=torch.float64))
        errors.append(abs(value / float(torch.linalg.eigvalsh(matrix)[-1]) - 1))
    return errors, tracker


def test_the_tracker_follows_the_larger_branch_through_a_crossing_of_the_top_two_eigenvalues():
    """Two kept Ritz vectors hold both branches, so the Rayleigh-Ritz step picks the rising one;
    one vector (plain Lanczos, keep=1) follows the falling branch past the crossing."""
    errors, tracker = track_crossing(keep=2)
    assert max(tracker.hvps[1:]) <= 3
    assert max(errors) < 0.01, errors
    single, _ = track_crossing(keep=1)
    assert max(single[:11]) < 1e-4 and max(single[11:]) > 0.05, single  # the crossing is real


def test_bad_input_is_refused_before_any_work(problem):
    fn, theta, _ = problem
    with pytest.raises(DescentError, match="invalid k=0"):
        top_eigenvalues(fn, theta, k=0)
    with pytest.raises(DescentError, match="invalid k="):
        top_eigenvalues(fn, theta, k=theta.numel())
    with pytest.raises(DescentError, match="invalid theta="):
        top_eigenvalues(fn, theta.reshape(1, -1))
    with pytest.raises(DescentError, match="invalid scale="):
        top_eigenvalues(fn, theta, scale=-torch.ones_like(theta))
    with pytest.raises(DescentError, match="invalid samples=1"):
        hutchinson_trace(fn, theta, samples=1, seed=0)
    with pytest.raises(DescentError, match="invalid products=0"):
        SharpnessTracker(products=0)
    with pytest.raises(DescentError, match="invalid every=0"):
        SharpnessTracker(every=0)
    with pytest.raises(DescentError, match="invalid keep=4"):
        SharpnessTracker(products=3, keep=4)
