"""Probes read the inside of the loop: the update decomposed by the rule itself, the gradient norm and
the kinetic energy, at the steps asked for, with schedules, noise and per-particle hyper-parameters."""

import pytest
import torch

from descent import Optimizer, get_landscape, simulate
from descent.dynamics import GradNorm, Kinetic, UpdateParts, probe_from_dict

torch.set_num_threads(1)
WELL = get_landscape("double-well")
STARTS = WELL.random_starts(3, torch.Generator().manual_seed(0))


def run(name, probes, steps=60, **hyper):
    opt = Optimizer.build(name, schedule={"kind": "cosine", "total": steps, "final": 0.2}, **hyper)
    return simulate(WELL, opt, STARTS, steps, probes=probes, seed=5)


def test_heavy_ball_parts_are_inertia_plus_force():
    """v_{k+1} = beta v_k - lr_k g_k: the coast is beta times the previous displacement, the force step
    -lr_k g_k, and the two add up to the displacement the loop took."""
    lrs = torch.tensor([0.01, 0.02, 0.03], dtype=torch.float64)
    traj = run("momentum", [UpdateParts(every=1)], lr=lrs, momentum=0.8)
    parts = traj.probes["update_parts"]
    displacement = traj.positions[1:] - traj.positions[:-1]
    torch.testing.assert_close(parts["update"][1:], displacement, rtol=0, atol=1e-15)
    torch.testing.assert_close(parts["coast"][2:], 0.8 * displacement[:-1], rtol=1e-13, atol=1e-16)
    lr_k = torch.stack([lrs * traj.optimizer.schedule(k) for k in range(60)]).unsqueeze(-1)
    grads = WELL.gradient(traj.positions[:-1].reshape(-1, 2)).reshape(60, 3, 2)
    torch.testing.assert_close(parts["force"][1:], -lr_k * grads, rtol=1e-13, atol=1e-16)
    torch.testing.assert_close(
        parts["coast"][1:] + parts["force"][1:], parts["update"][1:], rtol=0, atol=1e-15
    )
    assert torch.isnan(parts["force"][0]).all()  # no step led to the start


def test_adams_parts_give_its_effective_scale_and_langevins_coast_is_its_thermal_kick():
    traj = run("adam", [UpdateParts(every=4)], lr=0.05)
    parts = traj.probes["update_parts"]
    steps = parts["steps"]
    assert steps.tolist() == list(range(0, 61, 4))
    ratio = parts["update"][1:] / parts["force"][1:]
    torch.testing.assert_close(parts["scale"][1:], ratio, equal_nan=True)
    langevin = run("langevin", [UpdateParts(every=1)], lr=0.01, temperature=0.2)
    kick = langevin.probes["update_parts"]
    torch.testing.assert_close(kick["coast"][1:] + kick["force"][1:], kick["update"][1:], rtol=0, atol=1e-15)
    variance = float(kick["coast"][1:].var())  # sqrt(2 lr_k T) z: mean variance 2 T mean(lr_k)
    lr_mean = sum(0.01 * langevin.optimizer.schedule(k) for k in range(60)) / 60
    assert variance == pytest.approx(2 * 0.2 * lr_mean, rel=0.25)  # 360 draws: SE ~ 7.5 %, 3.3 SE


def test_grad_norm_and_kinetic_energy():
    traj = run("momentum", [GradNorm(every=5), Kinetic(every=5)], lr=0.02, momentum=0.9)
    steps = traj.probes["grad_norm"]["steps"]
    expected = WELL.gradient(traj.positions[steps].reshape(-1, 2)).norm(dim=1).reshape(len(steps), 3)
    torch.testing.assert_close(traj.probes["grad_norm"]["grad_norm"], expected)
    torch.testing.assert_close(traj.probes["kinetic"]["kinetic"][1:], traj.kinetic_energy[steps][1:])
    assert torch.isnan(run("adam", [Kinetic()], lr=0.05).probes["kinetic"]["kinetic"]).all()


def test_one_call_equals_the_batched_finish():
    probe = UpdateParts()
    traj = run("nesterov", [probe], lr=0.02, momentum=0.9)
    assert set(traj.probes["update_parts"]) == {"force", "coast", "update", "scale", "lookahead", "steps"}
    lookahead = traj.probes["update_parts"]["lookahead"][1:]
    torch.testing.assert_close(lookahead, traj.positions[:-1] + traj.probes["update_parts"]["coast"][1:])


def test_probes_by_name_and_bad_ones():
    assert isinstance(probe_from_dict("grad_norm"), GradNorm)
    assert probe_from_dict({"name": "update_parts", "every": 7}).every == 7
    with pytest.raises(ValueError, match="invalid update_parts.every=0"):
        probe_from_dict({"name": "update_parts", "every": 0})
    with pytest.raises(ValueError, match="invalid probe='energy_ledger'"):
        simulate(WELL, Optimizer.build("adam"), STARTS, 5, probes=[probe_from_dict("energy_ledger")])
