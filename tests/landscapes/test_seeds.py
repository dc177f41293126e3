"""The seeds' landscapes: their geometry, and the double-well claim over learning-rate bands."""

import math

import pytest
import torch

from descent import Optimizer, simulate
from descent.landscapes import LANDSCAPES, get_landscape, landscape_names

torch.set_num_threads(1)
SEEDS = ["double-well", "plateau", "saddle", "saddle-bounded", "quadratic"]


@pytest.mark.parametrize("name", SEEDS)
def test_analytic_gradient_matches_autograd(name):
    land = get_landscape(name)
    x = land.random_starts(300, torch.Generator().manual_seed(1))
    torch.testing.assert_close(land.gradient(x), land.autograd_gradient(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", landscape_names())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_value_and_grad_is_bit_identical_to_value_and_gradient(name, dtype):
    """The simulation loop's one-pass call returns exactly what ``value`` and ``gradient`` return,
    inside the box, far outside it, and at non-finite points."""
    land = get_landscape(name)
    inside = land.random_starts(500, torch.Generator().manual_seed(2))
    odd = torch.tensor([[1e200] * land.dim, [-1e30] * land.dim, [float("nan")] * land.dim])
    x = torch.cat([inside, 50 * inside, odd.to(inside.dtype)]).to(dtype)
    value, grad = land.value_and_grad(x)
    torch.testing.assert_close(value, land.value(x), rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(grad, land.gradient(x), rtol=0, atol=0, equal_nan=True)
    assert value.dtype == grad.dtype == dtype


@pytest.mark.parametrize("name", SEEDS)
def test_known_points_are_stationary_with_the_labelled_curvature(name):
    land = get_landscape(name)
    for point in land.critical_points:
        x = torch.tensor([point.position], dtype=torch.float64)
        assert land.gradient(x).norm() < 1e-10, point
        eigenvalues = torch.linalg.eigvalsh(land.hessian(x)[0])
        if point.is_minimum:
            assert eigenvalues.min() > 0, point
        if point.kind == "saddle":
            assert eigenvalues.min() < 0 < eigenvalues.max(), point
        assert point.value == pytest.approx(float(land.value(x)[0]), abs=1e-12)


def test_double_well_left_is_local_right_is_global_with_a_barrier_between():
    land = get_landscape("double-well")
    left, right, barrier = (land.point(i) for i in ("left", "right", "barrier"))
    assert left.kind == "local_min" and right.kind == "global_min"
    assert left.position[0] < barrier.position[0] < right.position[0]
    assert right.value < left.value < barrier.value
    # the global minimum is the lowest point over a dense grid of the box
    grid = land.random_starts(200_000, torch.Generator().manual_seed(0))
    assert float(land.value(grid).min()) >= right.value - 1e-12


def _batched_outcomes(momentum: float, lrs: torch.Tensor, steps: int = 5000) -> list[str]:
    land = get_landscape("double-well")
    opt = Optimizer.build("momentum", lr=lrs, momentum=momentum)
    return simulate(land, opt, land.start().expand(len(lrs), -1), steps).outcomes


def test_plain_gd_settles_in_the_left_minimum_for_every_lr_in_the_band():
    lrs = torch.linspace(0.002, 0.08, 79, dtype=torch.float64)
    assert set(_batched_outcomes(0.0, lrs)) == {"minimum:left"}


def test_momentum_09_reaches_the_global_minimum_for_every_lr_in_the_band():
    lrs = torch.linspace(0.01, 0.05, 81, dtype=torch.float64)
    assert set(_batched_outcomes(0.9, lrs)) == {"minimum:right"}


def test_plateau_force_is_constant_along_the_plateau():
    land = get_landscape("plateau")
    slope, length = land.params["slope"], land.params["length"]
    x = torch.stack(
        [torch.linspace(0, length, 200, dtype=torch.float64), torch.zeros(200, dtype=torch.float64)], 1
    )
    force = -land.gradient(x)[:, 0]
    torch.testing.assert_close(force, torch.full_like(force, slope), atol=1e-6, rtol=0)
    assert land.minima[0].position[0] > length


def test_momentum_crosses_the_plateau_faster():
    land = get_landscape("plateau")
    opt = Optimizer.build("momentum", lr=land.default_lr, momentum=torch.tensor([0.0, 0.9]))
    traj = simulate(land, opt, land.start().expand(2, -1), 4000)
    assert traj.outcomes == ["minimum:well", "minimum:well"]
    crawl, fast = (int(s) for s in traj.outcome_step)
    assert crawl > 4 * fast  # terminal speed up to 1/(1 - beta) = 10


def test_saddle_is_unbounded_below_and_exactly_on_the_axis_gd_never_leaves():
    land = get_landscape("saddle")
    assert not land.bounded_below
    starts = torch.tensor([[1.5, 0.0], [1.5, 1e-6]], dtype=torch.float64)
    traj = simulate(land, Optimizer.build("gd", lr=0.05), starts, 3000)
    assert traj.outcomes[0] == "saddle:origin"
    assert traj.outcomes[1] == "escaped"


def test_quadratic_has_the_requested_condition_number_and_rotation():
    land = get_landscape("quadratic", kappa=50.0, mu=0.5, angle=math.pi / 6)
    hessian = land.hessian(torch.zeros(1, 2, dtype=torch.float64))[0]
    eigenvalues, vectors = torch.linalg.eigh(hessian)
    assert eigenvalues.tolist() == pytest.approx([0.5, 25.0])
    top = vectors[:, 1]
    assert abs(
        float(top @ torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)], dtype=torch.float64))
    ) == pytest.approx(1.0)


def test_registry_lists_every_landscape_and_rejects_bad_parameters():
    assert set(SEEDS) <= set(landscape_names())
    with pytest.raises(ValueError, match=r"invalid double-well.tilt=5.0: expected"):
        get_landscape("double-well", tilt=5.0)
    with pytest.raises(ValueError, match="invalid quadratic parameter='kapa'"):
        get_landscape("quadratic", kapa=3)
    with pytest.raises(ValueError, match="invalid landscape='nope'"):
        get_landscape("nope")
    for entry in LANDSCAPES.values():
        land = entry.build()
        assert land.description and land.default_lr > 0
