"""The stability-edge alarm against runs whose crossing step is known in closed form, and its false
alarms over a suite of stable runs.

Crossings: (a) torch SGD (plain, heavy ball, Nesterov) on a quadratic whose lr ramps linearly, so the
edge sharpness c/lr falls through the fixed top eigenvalue at a computable step; (b) a quadratic whose
curvature grows along a new direction, ``A(t) = A0 + kappa t v v^T``, so its top eigenvalue (computed
exactly each step) crosses 2/lr at a known step while the top eigenvector turns (the warm-started
Lanczos must follow it). The alarm must fire within +-50 steps of the crossing.
Stable suite: 24 runs (seeds, spectra, rules: SGD, heavy ball, Nesterov, descent's momentum, Adam,
RMSprop) at 40-90 % of the edge with noisy batches: alarms on fewer than 5 % of them.
"""

from __future__ import annotations

import pytest
import torch

import descent
from descent.optim import TorchOptimizer, stability_edge
from tests.monitor.quadratic import DTYPE, NoiseSource, Quadratic, mean_energy, sgd_step, spectrum_matrix

torch.set_num_threads(1)

D, EVERY, TOLERANCE = 8, 10, 50


def _held(source: NoiseSource, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return source.draw(n), torch.zeros(n)


@pytest.mark.parametrize("rule, momentum", [("gd", 0.0), ("momentum", 0.9), ("nesterov", 0.5)])
def test_alarm_fires_when_a_ramped_lr_crosses_the_edge(rule, momentum):
    top = 10.0
    model = Quadratic(spectrum_matrix(torch.linspace(1.0, top, D), 1), torch.ones(D))
    c = stability_edge(rule, 1.0, momentum)  # the edge lr at curvature lambda is c/lambda
    lr0, rate = 0.3 * c / top, 0.004 * c / top  # lr_t = lr0 + rate t crosses c/top at t = 175
    crossing = (c / top - lr0) / rate
    optimizer = torch.optim.SGD(model.parameters(), lr=lr0, momentum=momentum, nesterov=rule == "nesterov")
    source = NoiseSource(0.1 * torch.eye(D, dtype=DTYPE), 0)
    monitor = descent.watch(model, optimizer, mean_energy, _held(source), every=EVERY, verbose=False)
    for t in range(1, 300):
        monitor.step(sgd_step(model, optimizer, source.draw(4)))
        optimizer.param_groups[0]["lr"] = lr0 + rate * t  # the lr of step t + 1
        if monitor.alarms:
            break
    assert monitor.alarms, "no alarm"
    assert abs(monitor.alarms[0] - crossing) <= TOLERANCE
    assert monitor.rows[-1]["edge_ratio"] >= 1


def test_alarm_follows_curvature_that_grows_in_a_new_direction():
    base = spectrum_matrix(torch.linspace(1.0, 4.0, D), 2)
    g = torch.Generator().manual_seed(5)
    v = torch.randn(D, generator=g, dtype=DTYPE)
    v = v / torch.linalg.vector_norm(v)
    kappa, lr = 0.05, 0.1  # the edge sharpness is 2/lr = 20
    tops = [float(torch.linalg.eigvalsh(base + kappa * t * torch.outer(v, v))[-1]) for t in range(600)]
    crossing = next(t for t, top in enumerate(tops) if top >= 2 / lr)
    model = Quadratic(base, torch.ones(D))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    source = NoiseSource(0.1 * torch.eye(D, dtype=DTYPE), 1)
    monitor = descent.watch(model, optimizer, mean_energy, _held(source), every=EVERY, verbose=False)
    for t in range(1, 600):
        monitor.step(sgd_step(model, optimizer, source.draw(4)))
        model.hessian.copy_(base + kappa * t * torch.outer(v, v))
        if monitor.alarms:
            break
    assert monitor.alarms and abs(monitor.alarms[0] - crossing) <= TOLERANCE
    before = [r for r in monitor.rows if r["step"] < crossing - EVERY]
    assert all(r["sharpness"] == pytest.approx(tops[r["step"] - 1], rel=1e-6) for r in before[-5:])


def _stable_run(index: int) -> bool:
    """Run ``index`` of the suite at a fraction of its edge; whether the alarm fired."""
    g = torch.Generator().manual_seed(1000 + index)
    top = float(2 + 18 * torch.rand((), generator=g, dtype=DTYPE))
    eigenvalues = torch.sort(top * torch.rand(D, generator=g, dtype=DTYPE))[0]
    eigenvalues[-1] = top
    fraction = float(0.4 + 0.5 * torch.rand((), generator=g, dtype=DTYPE))
    model = Quadratic(spectrum_matrix(eigenvalues, index), torch.randn(D, generator=g, dtype=DTYPE))
    kind = index % 6
    if kind == 0:
        optimizer = torch.optim.SGD(model.parameters(), lr=fraction * 2 / top)
    elif kind == 1:
        optimizer = torch.optim.SGD(model.parameters(), lr=fraction * 3.8 / top, momentum=0.9)
    elif kind == 2:
        edge = stability_edge("nesterov", top, 0.5)
        optimizer = torch.optim.SGD(model.parameters(), lr=fraction * edge, momentum=0.5, nesterov=True)
    elif kind == 3:
        optimizer = TorchOptimizer(model.parameters(), "momentum", lr=fraction * 3.0 / top, momentum=0.5)
    elif kind == 4:  # at the noise floor P ~ sd of a batch's gradient noise, 0.3/sqrt(4)
        optimizer = torch.optim.Adam(model.parameters(), lr=fraction * 38 * 0.15 / top)
    else:
        optimizer = torch.optim.RMSprop(model.parameters(), lr=fraction * 2 * 0.15 / top)
    source = NoiseSource(0.3 * torch.eye(D, dtype=DTYPE), index)
    monitor = descent.watch(model, optimizer, mean_energy, _held(source), every=EVERY, verbose=False)
    for _ in range(200):
        monitor.step(sgd_step(model, optimizer, source.draw(4)))
    return bool(monitor.alarms)


def test_alarm_false_positives_under_five_percent_over_stable_runs():
    alarms = [_stable_run(index) for index in range(24)]
    assert sum(alarms) / len(alarms) < 0.05, [i for i, fired in enumerate(alarms) if fired]
