"""Each diagnosis on a small constructed case whose physics is known: quadratics (``U = c + w^T A w/2``,
optionally with injected gradient noise) run by torch's SGD at chosen fractions of the edge, a saddle
``diag(1, -0.1)`` started on its stable manifold, a nearly flat bowl. The advice's numbers are
checked against the closed form: the suggested lr is ``1/lambda_max`` for GD, the edge lr ``2/lambda_max``."""

from __future__ import annotations

import pytest
import torch

import descent
from descent.monitor import Thresholds
from tests.monitor.quadratic import DTYPE, NoiseSource, Quadratic, mean_energy, sgd_step, spectrum_matrix

torch.set_num_threads(1)

D = 6


def _run(
    eigenvalues, lr, *, steps, start=None, noise=0.0, batch=4, offset=0.0, every=10, seed=0, centre=True
):
    hessian = (
        spectrum_matrix(eigenvalues, seed) if len(eigenvalues) > 2 else torch.diag(torch.tensor(eigenvalues))
    )
    d = len(eigenvalues)
    start = torch.ones(d, dtype=DTYPE) if start is None else start
    model = Quadratic(hessian, start, offset)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    source = NoiseSource(noise * torch.eye(d, dtype=DTYPE), seed)
    held = source.draw(64)
    if centre:
        held = held - held.mean(dim=0)  # the held gradient is then exactly A w
    monitor = descent.watch(
        model, optimizer, mean_energy, (held, torch.zeros(64)), every=every, verbose=False, full=True
    )
    names = []
    for _ in range(steps):
        monitor.step(sgd_step(model, optimizer, source.draw(batch)))
        if monitor.rows and monitor.rows[-1]["step"] == monitor.steps:
            names.append(monitor.diagnosis.name)
    return monitor, names


def test_diverging_past_the_edge_with_a_rising_loss():
    monitor, names = _run(torch.linspace(1.0, 10.0, D), lr=1.3 * 2 / 10, steps=60, every=5)
    assert names[-1] == "diverging"
    assert monitor.diagnosis.lr == pytest.approx(1 / 10, rel=1e-6)  # suggested: 1/lambda_max
    assert "lower lr below 0.2 " in monitor.diagnosis.message  # the edge lr 2/lambda_max


def test_edge_past_the_edge_while_the_loss_still_falls():
    """The top mode grows by |1 - 2.02| = 1.02 a step from 1e-6 while the slow mode falls: the loss
    falls for a while though the run has already crossed the edge."""
    start = torch.tensor([1e-6, 1.0], dtype=DTYPE)
    monitor, names = _run([10.0, 1.0], lr=1.01 * 2 / 10, steps=30, start=start)
    assert names == ["edge"] * 3


def test_oscillating_across_a_valley():
    monitor, names = _run([10.0, 9.0], lr=1.8 / 10, steps=40)  # |1 - lr*lambda| = 0.8: stable, flipping
    assert names[1:] == ["oscillating"] * 3
    assert monitor.rows[-1]["update_cosine"] < -0.9
    assert monitor.diagnosis.lr == pytest.approx(0.1, rel=1e-6)


def test_saddle_found_by_lanczos_on_minus_h():
    """On U = 1 + (x^2 - 0.1 y^2)/2 started at (1e-3, 1e-9): the gradient is tiny, the loss flat, and the
    smallest eigenvalue -0.1 (found by Lanczos on -H) makes it a saddle, not a plateau."""
    start = torch.tensor([1e-3, 1e-9], dtype=DTYPE)
    monitor, names = _run([1.0, -0.1], lr=0.1, steps=40, start=start, offset=1.0)
    assert names[-1] == "saddle"
    assert monitor.rows[-1]["lambda_min"] == pytest.approx(-0.1, rel=1e-3)
    assert "e-fold every 100 steps" in monitor.diagnosis.message  # 1/(lr |lambda_min|)


def test_plateau_without_negative_curvature():
    start = torch.tensor([1e-3, 1e-9], dtype=DTYPE)
    monitor, names = _run([1.0, 0.1], lr=0.1, steps=40, start=start, offset=1.0)
    assert names[-1] == "plateau"
    assert monitor.rows[-1]["lambda_min"] == pytest.approx(0.1, rel=1e-3)


def test_plateau_where_the_held_gradient_is_only_noise():
    """A nearly flat bowl (curvature 0.01) at height 1 with gradient noise: at its bottom the held
    gradient is the held noise's mean, whose squared norm is tr(Sigma)/n (gradient_snr ~ 1): no direction
    to follow, and the noise floor is far below the loss, so it is a plateau, not a hot run."""
    monitor, names = _run(
        [0.01] * D, lr=0.1, steps=40, start=torch.zeros(D), noise=0.1, offset=1.0, centre=False
    )
    assert names[-1] == "plateau"
    row = monitor.rows[-1]
    assert row["gradient_snr"] < 2 and row["noise_floor"] < 1e-3 * row["loss"]
    assert row["lambda_min"] == pytest.approx(0.01, rel=1e-3)


def test_hot_at_the_noise_floor_advises_batch_and_lr():
    """Batch 1, lr at half the edge and strong noise: the loss sits at the noise floor d T/2."""
    monitor, names = _run(
        torch.linspace(1.0, 2.0, D), lr=0.5, steps=200, start=torch.zeros(D), noise=1.0, batch=1
    )
    assert names[-1] == "hot"
    row = monitor.rows[-1]
    factor = row["noise_floor"] / (Thresholds().cool_target * row["loss"])
    assert monitor.diagnosis.batch_size == pytest.approx(factor, rel=0.01, abs=1)
    assert monitor.diagnosis.lr == pytest.approx(0.5 / factor, rel=1e-6)


def test_cold_far_below_the_edge_advises_a_larger_lr():
    monitor, names = _run(torch.linspace(1.0, 10.0, D), lr=1e-4, steps=40)
    assert names[1:] == ["cold"] * 3
    assert monitor.diagnosis.lr == pytest.approx(0.1, rel=1e-6)


def test_healthy_and_starting():
    """A wide spectrum at lr 1/lambda_max: the slow modes keep the loss falling by a few % a step."""
    monitor, names = _run(torch.logspace(-1, 1, D), lr=0.1, steps=40, noise=0.01)
    assert names == ["starting", "healthy", "healthy", "healthy"]


def test_a_run_that_reaches_nan_is_diverged_and_the_monitor_keeps_going():
    monitor, names = _run(torch.linspace(1.0, 10.0, D), lr=3 * 2 / 10, steps=600, every=20)
    assert not torch.isfinite(monitor.model.w).all()
    assert names[-1] == "diverging" and "the loss is nan" in monitor.diagnosis.message
    assert monitor.alarms[0] == 20  # past the edge from the first check
    assert monitor.diagnosis.lr == pytest.approx(0.06)  # min(1/lambda_max, lr/10)
