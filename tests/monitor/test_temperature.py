"""The monitor's temperature against the exact one on a quadratic with injected gradient noise of known
covariance C: per-example gradients ``A w + x`` with ``x ~ N(0, C)``, so ``tr(Sigma) = tr(C)`` and the
exact temperature is ``T = lr tr(C) / (2 B d (1 - beta))``. The monitor estimates ``tr(Sigma)`` from a
held batch of n draws: its relative standard error is ``sqrt(2 tr(C^2)/n) / tr(C)`` (Gaussian x), which
the monitor's own stated error must match, and the estimate must be within 5 % and 4 standard errors."""

from __future__ import annotations

import math

import pytest
import torch

import descent
from descent.optim import TorchOptimizer
from tests.monitor.quadratic import DTYPE, NoiseSource, Quadratic, mean_energy, sgd_step, spectrum_matrix

torch.set_num_threads(1)

D, N_HELD, B = 12, 4000, 8


def _noise(seed: int) -> NoiseSource:
    g = torch.Generator().manual_seed(100 + seed)
    lower = torch.tril(torch.randn(D, D, generator=g, dtype=DTYPE)) * 0.5 + torch.eye(D, dtype=DTYPE)
    return NoiseSource(lower, seed)


def _watched_run(model, optimizer, held, source, *, every: int, steps: int, batch: int):
    """``steps`` SGD steps on batches of ``batch`` fresh noise vectors, watched with tr(Sigma) from the
    whole held batch at every check."""
    zeros = torch.zeros(len(held))
    monitor = descent.watch(
        model, optimizer, mean_energy, (held, zeros), every=every, verbose=False, full=True
    )
    for _ in range(steps):
        monitor.step(sgd_step(model, optimizer, source.draw(batch)))
    return monitor


OPTIMIZERS = {
    "sgd": (lambda p: torch.optim.SGD(p, lr=0.05), 0.0),
    "sgd-momentum": (lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), 0.9),
    "nesterov": (lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.5, nesterov=True), 0.5),
    "descent-momentum": (lambda p: TorchOptimizer(p, "momentum", lr=0.02, momentum=0.8), 0.8),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_temperature_matches_the_injected_noise(name):
    make, beta = OPTIMIZERS[name]
    seed = sorted(OPTIMIZERS).index(name)
    source = _noise(seed)
    hessian = spectrum_matrix(torch.linspace(0.5, 5.0, D), seed)
    model = Quadratic(hessian, torch.ones(D))
    optimizer = make(model.parameters())
    held = source.draw(N_HELD)
    monitor = _watched_run(model, optimizer, held, source, every=10, steps=20, batch=B)
    row = monitor.rows[-1]
    lr = optimizer.param_groups[0]["lr"]
    c = source.covariance
    exact = lr * float(torch.trace(c)) / (2 * B * D * (1 - beta))
    relative_se = math.sqrt(2 * float(torch.trace(c @ c)) / N_HELD) / float(torch.trace(c))
    assert row["batch_size"] == B and row["momentum"] == pytest.approx(beta)
    assert row["temperature_se"] / exact == pytest.approx(relative_se, rel=0.2)  # its stated error is right
    assert abs(row["temperature"] / exact - 1) < 0.05
    assert abs(row["temperature"] - exact) < 4 * row["temperature_se"]


def test_temperature_of_a_centred_held_batch_is_exact():
    """A held batch built so that its sample covariance is known exactly (the draws centred): the
    monitor's T equals ``lr tr(S)/(2 B d (1 - beta))`` with S the unbiased sample covariance."""
    source = _noise(7)
    held = source.draw(50)
    held = held - held.mean(dim=0)
    sample_trace = float((held**2).sum()) / (len(held) - 1)
    model = Quadratic(spectrum_matrix(torch.linspace(1.0, 2.0, D), 7), torch.ones(D))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.7)
    monitor = descent.watch(
        model, optimizer, mean_energy, (held, torch.zeros(50)), every=3, verbose=False, full=True
    )
    for _ in range(3):
        monitor.step(sgd_step(model, optimizer, source.draw(5)))
    row = monitor.rows[-1]
    assert row["temperature"] == pytest.approx(0.03 * sample_trace / (2 * 5 * D * 0.3), rel=1e-10)
    w = model.w.detach()
    gradient = model.hessian @ w  # the centred batch's mean gradient is exactly A w
    assert row["grad_norm"] == pytest.approx(float(torch.linalg.vector_norm(gradient)), rel=1e-10)
    # configurational temperature |grad U|^2 / tr H (Hutchinson is exact only in expectation)
    config = float(gradient @ gradient) / float(torch.trace(model.hessian))
    assert row["config_temperature"] == pytest.approx(config, rel=0.5)


def test_kinetic_temperature_of_torch_sgd_reads_the_momentum_buffer():
    """torch SGD's buffer b gives the velocity u = -lr b: K = |u|^2/(2 lr), T_kin = 2K/d."""
    source = _noise(3)
    model = Quadratic(spectrum_matrix(torch.linspace(1.0, 2.0, D), 3), torch.ones(D))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    held = source.draw(40)
    monitor = descent.watch(
        model, optimizer, mean_energy, (held, torch.zeros(40)), every=5, verbose=False, full=True
    )
    before = model.w.detach().clone()
    for step in range(5):
        if step == 4:
            before = model.w.detach().clone()
        monitor.step(sgd_step(model, optimizer, source.draw(4)))
    u = model.w.detach() - before  # the last step's displacement is -lr b at constant lr
    row = monitor.rows[-1]
    assert row["kinetic_energy"] == pytest.approx(float(u @ u) / (2 * 0.02), rel=1e-10)
    assert row["kinetic_temperature"] == pytest.approx(float(u @ u) / (0.02 * D), rel=1e-10)


def test_temperature_and_the_equilibrium_check_against_the_stationary_physics():
    """SGD at lr * lambda_max = 0.1 reaches the stationary covariance S of the discrete Lyapunov equation
    ``S = (I - lr A) S (I - lr A)^T + lr^2 C/B`` (descent.theory.noise). The monitor's T (the small-lr
    formula) must be within 5 % of the equipartition temperature ``tr(A S)/d``; its configurational
    temperature ``|grad U|^2 / tr H``, averaged over the checks, must match ``tr(A^2 S)/tr A`` within
    4 standard errors (the checks are ~1.5 relaxation times apart, so nearly independent)."""
    from descent.theory.noise import sgd_stationary_covariance

    source = _noise(11)
    hessian = spectrum_matrix(torch.linspace(0.5, 5.0, D), 11)
    lr, batch = 0.02, 4
    held = source.draw(N_HELD)
    held = held - held.mean(dim=0)  # the held gradient is then exactly A w, the true force
    model = Quadratic(hessian, torch.zeros(D))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    monitor = _watched_run(model, optimizer, held, source, every=150, steps=150 * 40, batch=batch)
    c = source.covariance.numpy()
    s = sgd_stationary_covariance(hessian.numpy(), c / batch, lr)
    a = hessian.numpy()
    equipartition = float((a * s).sum()) / D  # tr(A S)/d
    rows = monitor.rows[3:]  # after the transient
    assert abs(rows[-1]["temperature"] / equipartition - 1) < 0.05
    config = torch.tensor([r["config_temperature"] for r in rows], dtype=DTYPE)
    expected = float((a @ a * s).sum()) / float(a.trace())  # E|A w|^2 / tr A
    se = float(config.std()) / math.sqrt(len(config))
    assert abs(float(config.mean()) - expected) < 4 * se
    assert abs(float(config.mean()) / equipartition - 1) < 0.25  # the equilibrium check reads "equilibrium"


def test_a_subsample_of_the_held_batch_gives_the_noise_and_the_whole_batch_the_force():
    """With noise_examples < n, tr(Sigma) comes from the next block of held examples at each check (its
    stated error grows like 1/sqrt(examples)) while the loss and gradient still use the whole batch."""
    source = _noise(5)
    held = source.draw(400)
    held = held - held.mean(dim=0)
    model = Quadratic(spectrum_matrix(torch.linspace(1.0, 2.0, D), 5), torch.ones(D))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = descent.watch(
        model, optimizer, mean_energy, (held, torch.zeros(400)), every=1, verbose=False, noise_examples=100
    )
    for _ in range(4):
        monitor.step(sgd_step(model, optimizer, source.draw(5)))
        gradient = model.hessian @ model.w.detach()
        assert monitor.rows[-1]["grad_norm"] == pytest.approx(
            float(torch.linalg.vector_norm(gradient)), rel=1e-10
        )
    traces = [r["noise_trace"] for r in monitor.rows]
    assert len(set(traces)) == 4  # four different blocks
    c = source.covariance
    relative_se = math.sqrt(2 * float(torch.trace(c @ c)) / 100) / float(torch.trace(c))
    for row in monitor.rows:
        assert row["noise_trace_se"] / row["noise_trace"] == pytest.approx(relative_se, rel=0.35)
        assert abs(row["noise_trace"] - float(torch.trace(c))) < 4 * row["noise_trace_se"]
