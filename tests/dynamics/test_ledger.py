"""The energy ledger: for the heavy ball, E_k + sum_{j<k} D_j - E_0 with D_k = gamma h |V_{k+1}|^2 (the
friction's own formula) is a discretisation error, so its worst value over a fixed time shrinks like h.
The slope check would fail for a ledger whose D were the residual (imbalance exactly 0) or zero."""

import math

import torch

from descent.dynamics import EnergyLedger, simulate
from descent.landscapes import get_landscape
from descent.optim import Optimizer

torch.set_num_threads(1)
GAMMA, TIME = 0.5, 20.0
STEPS_H = [0.08, 0.04, 0.02, 0.01, 0.005]  # four halvings of the time step


def ledger(h: float) -> dict:
    """Heavy ball with time step h and friction gamma: lr = h^2, beta = 1 - gamma h, on the double well."""
    well = get_landscape("double-well")
    opt = Optimizer.build("momentum", lr=h * h, momentum=1 - GAMMA * h)
    start = torch.tensor([[-1.9, 0.8], [1.5, -1.2]], dtype=torch.float64)
    traj = simulate(well, opt, start, round(TIME / h), probes=[EnergyLedger()])
    return traj.probes["energy_ledger"]


def slope(hs, imbalances) -> float:
    """Least-squares slope of log(imbalance) against log(h)."""
    x = torch.log(torch.tensor(hs, dtype=torch.float64))
    y = torch.log(torch.tensor(imbalances, dtype=torch.float64))
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x * x).sum())


def first_order(imbalances) -> bool:
    return all(v > 0 and math.isfinite(v) for v in imbalances) and abs(slope(STEPS_H, imbalances) - 1) <= 0.1


def test_the_ledgers_worst_imbalance_shrinks_with_slope_one_in_h():
    records = [ledger(h) for h in STEPS_H]
    worst = [float(r["imbalance"].abs().max()) for r in records]
    assert first_order(worst), (worst, slope(STEPS_H, worst))
    # friction really dissipated energy: the books would be far off without D
    lost = records[-1]["total"][0] - records[-1]["total"][-1]
    assert bool((lost > 0.5).all()) and bool((records[-1]["dissipated"][-1] > 0.5).all())


def test_the_slope_check_rejects_a_residual_or_a_missing_friction_term():
    records = [ledger(h) for h in STEPS_H]
    # D as the residual: the books balance exactly by construction, so there is nothing to measure
    residual = []
    for r in records:
        d = -(r["total"][1:] - r["total"][:-1])  # the energy that went missing each step
        books = r["total"] + torch.cat([torch.zeros_like(d[:1]), d.cumsum(0)]) - r["total"][0]
        residual.append(float(books.abs().max()))
    assert not first_order(residual)
    # D = 0: the imbalance is the energy lost to friction, which does not shrink with h
    zero = [float((r["total"] - r["total"][0]).abs().max()) for r in records]
    assert not first_order(zero)


def test_the_ledger_takes_per_particle_learning_rates_and_momenta():
    """A grid of (lr, beta) in one run: each particle's ledger equals its own run's ledger."""
    well = get_landscape("double-well")
    lrs = torch.tensor([0.004, 0.01, 0.02], dtype=torch.float64)
    betas = torch.tensor([0.5, 0.8, 0.95], dtype=torch.float64)
    start = well.start().expand(3, -1)
    grid = simulate(
        well, Optimizer.build("momentum", lr=lrs, momentum=betas), start, 300, probes=[EnergyLedger()]
    )
    for i in range(3):
        opt = Optimizer.build("momentum", lr=float(lrs[i]), momentum=float(betas[i]))
        alone = simulate(well, opt, start[:1], 300, probes=[EnergyLedger()]).probes["energy_ledger"]
        for key in ("kinetic", "dissipated", "imbalance"):
            torch.testing.assert_close(
                grid.probes["energy_ledger"][key][:, i], alone[key][:, 0], rtol=1e-12, atol=1e-15
            )
