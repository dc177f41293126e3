"""The edge-of-stability experiment's measurements: its sharpness at every check against the exact
Hessian of an independent replay of the same training with torch's own optimizers, the threshold
logic of its claim rows, the stop at divergence, and the quick size's rows (whichever way they fall)."""

from __future__ import annotations

import math

import pytest
import torch

from descent.experiments import edge_of_stability as m
from descent.experiments._base import Result, Runs
from descent.experiments.figures import MIN_FONT_PT, WIDTH_IN, text_sizes
from descent.spec import RunSpec, run_spec
from descent.train import build_model, functional_loss, loss_function
from tests.experiments.conftest import check_specs

torch.set_num_threads(1)

TINY = m.Config(n=100, widths=(4,), steps=30, every=10, cold_every=20, gd_lrs=(0.5,), tol=1e-10)


def torch_optimizer(run: m.Run, params) -> torch.optim.Optimizer:
    """``run`` as torch's own optimizer: SGD, SGD with momentum, or Adam."""
    h = run.hyper
    if run.rule == "adam":
        return torch.optim.Adam(params, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"])
    return torch.optim.SGD(params, lr=h["lr"], momentum=h.get("momentum", 0.0))


def replay(config: m.Config, run: m.Run, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The same run with torch.optim (SGD, SGD with momentum, Adam) and the exact Hessian at each
    check: lambda_max(H), or lambda_max(P^-1 H) with Adam's P from torch's own state."""
    model = build_model(f"mlp:{config.widths[0]}", 64, 10, activation="tanh", seed=config.seed)
    loss = loss_function("mse", "classification")
    optimizer = torch_optimizer(run, model.parameters())
    steps, sharpness, losses = [], [], []
    for step in range(config.steps + 1):
        optimizer.zero_grad()
        value = loss(model(x), y)
        losses.append(float(value.detach()))
        if step % config.every == 0 and (run.rule != "adam" or step > 0):
            theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
            hessian = torch.autograd.functional.hessian(
                functional_loss(model, loss, x, y), theta, vectorize=True
            )
            if run.rule == "adam":
                beta1, beta2 = run.hyper["beta1"], run.hyper["beta2"]
                v = torch.cat([optimizer.state[p]["exp_avg_sq"].reshape(-1) for p in model.parameters()])
                scale = (1 - beta1**step) * (torch.sqrt(v / (1 - beta2**step)) + 1e-8)
                hessian = hessian / scale.sqrt().unsqueeze(0) / scale.sqrt().unsqueeze(1)
            steps.append(step)
            sharpness.append(float(torch.linalg.eigvalsh(0.5 * (hessian + hessian.T))[-1]))
        if step == config.steps:
            break
        value.backward()
        optimizer.step()
    return {"steps": steps, "sharpness": sharpness, "loss": losses}


@pytest.fixture(scope="module")
def tiny():
    """TINY's whole plan trained by the engine (GD lr 0.5 and the control in one swarm), its specs."""
    net, plan, runs = m.objective(TINY), m.runs_of(TINY), Runs()
    return net, plan, m.train(TINY, plan, net, runs), runs.specs


@pytest.mark.parametrize("kind", ["gd", "momentum", "adam"])
def test_the_sharpness_at_every_check_is_the_exact_hessians_of_an_independent_replay(kind, tiny):
    net, plan, trained, _ = tiny
    x, y = m.digits(TINY.n)
    run = next(r for r in plan if r.rule == kind)
    measured = m.measure(TINY, run, net, trained[run.id])
    exact = replay(TINY, run, x, y)
    assert measured["steps"] == exact["steps"] == list(range(10 if kind == "adam" else 0, 31, 10))
    for ours, theirs in zip(measured["sharpness"], exact["sharpness"]):
        assert abs(ours / theirs - 1) < 1e-8, (kind, ours, theirs)
    assert measured["loss_steps"] == [0, 10, 20, 30] and not measured["diverged"]
    for ours, theirs in zip(measured["loss"], exact["loss"][::10]):
        assert abs(ours / theirs - 1) < 1e-10
    # the cold eigsh every 20 steps (and the tracker, cold at its first check) saw the same matrix
    assert measured["cold_steps"] == [s for s in exact["steps"] if s % 20 == 0]
    for step, cold in zip(measured["cold_steps"], measured["cold"]):
        assert abs(cold / exact["sharpness"][exact["steps"].index(step)] - 1) < 1e-8
    assert max(measured["tracker_products"]) <= 3


def test_the_engines_iterates_are_torch_optims_over_100_steps():
    """Every run of the protocol (GD at three lrs in one swarm, the heavy ball, Adam) against torch's
    SGD, SGD(momentum) and Adam on the same network and data, step by step in float64."""
    config = m.Config(n=100, widths=(8,), steps=100, every=1)
    net, plan = m.objective(config), m.runs_of(config)
    trained = m.train(config, plan, net)
    x, y = m.digits(config.n)
    loss = loss_function("mse", "classification")
    for run in plan:
        ours = trained[run.id]["trajectory"].positions[:, trained[run.id]["particle"]]
        assert ours.shape[0] == 101 and ours.dtype == torch.float64
        model = build_model("mlp:8", 64, 10, activation="tanh", seed=config.seed)
        optimizer = torch_optimizer(run, model.parameters())
        for step in range(101):
            theirs = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
            assert (ours[step] - theirs).abs().max() < 1e-10, (run.id, step)
            optimizer.zero_grad()
            loss(model(x), y).backward()
            optimizer.step()


def test_the_specs_are_one_per_rule_and_each_replays_its_run(tiny):
    net, plan, trained, specs = tiny
    check_specs(Result("x", "", "", [], {}, [], specs))
    assert [s["optimizer"] for s in specs] == ["gd", "momentum", "adam"]
    assert specs[0]["hyper"] == {"lr": [0.5, 0.05]} and specs[0]["starts"] == "default:2"
    assert all(s["save"] == "every:10" and s["landscape"] == m.OBJECTIVE for s in specs)
    assert [p["name"] for p in specs[2]["probes"]] == ["optimizer_state"]
    start = build_model(f"mlp:{TINY.widths[0]}", 64, 10, activation="tanh", seed=TINY.seed)
    for data in specs:
        replayed = run_spec(RunSpec.from_dict(data), landscape=m.objective(TINY))
        original = next(t["trajectory"] for t in trained.values() if t["trajectory"].spec == data)
        assert torch.equal(replayed.positions, original.positions)
        assert torch.equal(
            original.positions[0, 0], torch.cat([p.detach().reshape(-1) for p in start.parameters()])
        )
    with pytest.raises(ValueError, match="invalid runs="):
        m.spec(TINY, plan[-2:])


def test_the_edges_of_the_protocol():
    plan = {run.id: run for run in m.runs_of(m.Config())}
    assert plan["gd/lr=0.1"].edge == pytest.approx(20.0)
    assert plan["gd/lr=0.2"].edge == pytest.approx(10.0)
    assert plan["momentum/lr=0.1/beta=0.5"].edge == pytest.approx(30.0)
    assert plan["control/lr=0.05"].edge == pytest.approx(40.0)
    assert plan["adam/lr=0.001"].edge == pytest.approx(38.0 / 1e-3)


def test_after_reaching_takes_the_checks_after_the_first_at_095_edges():
    stats = m.after_reaching([1.0, 9.4, 9.5, 10.0, 12.0, 9.0], 10.0)
    assert stats["first"] == 2  # 9.5 = 0.95 x 10 counts as reached
    assert stats["median"] == pytest.approx(1.0) and stats["max"] == pytest.approx(1.2)
    assert stats["checks"] == 3
    never = m.after_reaching([1.0, 9.0], 10.0)
    assert never["first"] is None and math.isnan(never["median"]) and math.isnan(never["max"])
    last = m.after_reaching([1.0, 9.6], 10.0)  # reached at the last check: nothing after it
    assert last["first"] == 1 and last["checks"] == 0 and math.isnan(last["median"])


def fake(values: list[float], losses: tuple[float, float] = (1.0, 0.1)) -> dict:
    n = len(values)
    return {
        "steps": [10 * i for i in range(n)],
        "sharpness": values,
        "loss": list(losses),
        "products": [12] * n,
        "warm_at_cold": values[:1],
        "cold": values[:1],
        "tracked_at_cold": values[:1],
    }


def test_the_claim_rows_follow_the_bands_and_every_size_states_the_same_criteria():
    plan = m.runs_of(m.Config())
    series = {
        "gd/lr=0.1": [5.0, 19.0, 21.0, 20.0, 19.5],  # reached at 19 (0.95 x 20), median 1.0: holds
        "gd/lr=0.2": [5.0, 9.5, 14.0, 10.0, 10.0],  # median 1.0 but a peak of 1.4 edges: max fails
        "momentum/lr=0.1/beta=0.5": [5.0, 10.0, 20.0],  # never reaches 0.95 x 30: median and max fail
        "control/lr=0.05": [5.0, 30.0, 39.0],  # below its edge 40: holds
        "adam/lr=0.001": [1e3, 4e4, 4.6e4, 4.5e4],  # 1.21 and 1.18 edges: median fails, max holds
    }
    measured = {run.id: fake([float(v) for v in series[run.id]]) for run in plan}
    measured["gd/lr=0.2"]["loss"] = [1.0, 0.5]  # the loss did not fall below 0.2 of its start
    rows = {row.id: row for row in m._rows(m.Config(), plan, measured)}
    assert rows["gd/lr=0.1/median"].passed and rows["gd/lr=0.1/max"].passed and rows["gd/lr=0.1/loss"].passed
    assert rows["gd/lr=0.1/reached"].value == 10
    assert rows["gd/lr=0.2/median"].passed and not rows["gd/lr=0.2/max"].passed
    assert not rows["gd/lr=0.2/loss"].passed
    assert not rows["momentum/lr=0.1/beta=0.5/median"].passed
    assert not rows["momentum/lr=0.1/beta=0.5/max"].passed
    assert rows["control/lr=0.05/max"].passed and rows["control/lr=0.05/max"].value == pytest.approx(39 / 40)
    assert rows["control/lr=0.05/reached"].value == 20  # 39 >= 0.95 x 40: reached, yet below the edge
    assert math.isnan(rows["momentum/lr=0.1/beta=0.5/reached"].value)
    assert not rows["adam/lr=0.001/median"].passed and rows["adam/lr=0.001/max"].passed
    assert all(row.about == "claim" for row in rows.values() if row.is_check and "lanczos" not in row.id)
    assert all(row.about == "theory" for row in rows.values() if "lanczos" in row.id)
    quick = {row.id: row for row in m._rows(m.Config.quick(), m.runs_of(m.Config.quick()), measured)}
    for id, row in rows.items():
        if row.is_check:
            assert quick[id].criterion == row.criterion and quick[id].about == row.about, id


def test_a_diverging_run_is_measured_up_to_its_divergence_and_marked():
    config = m.Config(n=100, widths=(4,), steps=300, every=10, cold_every=20)
    run = m.Run("gd/lr=1e4", "GD lr 1e4", "gd", {"lr": 1e4}, 2e-4, "edge")
    net = m.objective(config)
    trained = m.train(config, [run], net)[run.id]
    diverged_at = int(trained["trajectory"].events["diverged"][0])
    measured = m.measure(config, run, net, trained)
    assert measured["diverged"] and 0 < diverged_at < 300
    assert measured["loss_steps"][-1] == diverged_at and math.isnan(measured["loss"][-1])
    assert all(s < diverged_at for s in measured["steps"] + measured["loss_steps"][:-1])
    assert len(measured["steps"]) == (diverged_at - 1) // 10 + 1
    assert all(math.isfinite(v) for v in measured["sharpness"] + measured["loss"][:-1])


@pytest.fixture(scope="module")
def quick():
    result = m.run(m.Config.quick())
    yield result
    import matplotlib.pyplot as plt

    for figure in result.figures:
        plt.close(figure)


def test_the_quick_size_measures_every_run_and_its_instrument_checks_pass(quick):
    plan = m.runs_of(m.Config.quick())
    for run in plan:
        assert quick.row(f"{run.id}/max").is_check and quick.row(f"{run.id}/lanczos").passed
        assert quick.row(f"{run.id}/final").value > 0
    for row in quick.checks:  # each check passes or fails by its own numbers
        if row.criterion.startswith("|measured - theory|"):
            assert row.passed == (abs(row.value - row.theory) <= row.tolerance), row.id
        elif row.criterion.startswith("measured <"):
            assert row.passed == (row.theory - row.value > row.tolerance), row.id
    assert quick.claim_checks and quick.verdict in ("held", "did not hold", "partly held")
    check_specs(quick)
    assert [spec["optimizer"] for spec in quick.specs] == ["gd", "momentum", "adam"]
    figure = quick.figure
    assert figure.get_size_inches()[0] <= WIDTH_IN + 1e-9 and min(text_sizes(figure)) >= MIN_FONT_PT
