"""learning-to-learn's measurements against a hand-written loop: the fixed-rate grid and its tuned rate
(torch.optim.SGD on the same data order), the relative excess of hd-sgd recomputed from runs by hand,
the logged rate read from the optimizer's state; hostile configurations refused in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from descent._errors import DescentError
from descent.experiments import learning_to_learn as ltl
from descent.optim import TorchOptimizer
from descent.optim.hypergradient import PROBE
from descent.train.data import load_dataset
from descent.train.models import build_model

torch.set_num_threads(1)

CONFIG = ltl.Config(
    examples=200, epochs=2, seeds=3, grid=(0.1, 1.0, 10.0), starts=(0.01, 1.0, 10.0), engine_steps=3
)


@pytest.fixture(scope="module")
def result():
    out = ltl.run(CONFIG)
    yield out
    import matplotlib.pyplot as plt

    for figure in out.figures:
        plt.close(figure)


def hand_loop(seed: int, make, read_rate=None) -> tuple[float, list[float]]:
    """Seed ``seed``'s network and data order trained by a plain loop: per epoch a fresh
    ``randperm`` from one generator seeded with ``seed``, batches of 32; the final mean cross-entropy
    over the whole training set, and the rate read after each step."""
    data = load_dataset("digits", seed=0, n=CONFIG.examples)
    x, y = data.x_train, data.y_train
    model = build_model(f"mlp:{CONFIG.width}", 64, 10, seed=seed)
    optimizer = make(model.parameters())
    generator = torch.Generator().manual_seed(seed)
    rates = []
    for _ in range(CONFIG.epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), CONFIG.batch):
            indices = order[start : start + CONFIG.batch]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[indices]), y[indices]).backward()
            optimizer.step()
            if read_rate is not None:
                rates.append(read_rate(optimizer, model))
    with torch.no_grad():
        loss = float(torch.nn.functional.cross_entropy(model(x), y))
    return (loss if math.isfinite(loss) else math.inf), rates


def hand_grid() -> dict[float, list[float]]:
    centre = CONFIG.centres[0]
    return {
        centre * m: [
            hand_loop(s, lambda p, lr=centre * m: torch.optim.SGD(p, lr=lr))[0] for s in range(CONFIG.seeds)
        ]
        for m in CONFIG.grid
    }


def state_rate(optimizer, model) -> float:
    return float(optimizer.state[next(model.parameters())]["rate"])


def test_the_fixed_rate_grid_and_its_tuned_rate_match_a_hand_loop_with_torch_sgd(result):
    grid = hand_grid()
    for lr, losses in grid.items():
        row = result.row(f"grid/sgd/{ltl._start_label(lr)}")
        mean = float(np.mean(losses))
        if math.isfinite(mean):
            assert row.value == pytest.approx(mean, rel=1e-12)
            assert row.se == pytest.approx(np.std(losses, ddof=1) / math.sqrt(len(losses)), rel=1e-9)
        else:
            assert row.value == math.inf
    tuned = min(grid, key=lambda lr: float(np.mean(grid[lr])))
    assert result.value("tuned/sgd") == tuned


def test_the_relative_excess_of_hd_sgd_is_recomputed_from_hand_runs(result):
    grid = hand_grid()
    tuned = min(grid, key=lambda lr: float(np.mean(grid[lr])))
    for multiplier in CONFIG.starts:
        lr = CONFIG.centres[0] * multiplier

        def make(params, lr=lr):
            return TorchOptimizer(
                params, "hd-sgd", lr=lr, hyper_lr=CONFIG.hyper_lrs[0], discount=CONFIG.discounts[0]
            )

        runs = [hand_loop(s, make, state_rate) for s in range(CONFIG.seeds)]
        ratios = np.array([loss for loss, _ in runs]) / np.array(grid[tuned])
        label = ltl._start_label(lr)
        row = result.row(f"excess/hd-sgd/{label}")
        if np.all(np.isfinite(ratios)):
            assert row.value == pytest.approx(ratios.mean() - 1.0, rel=1e-9, abs=1e-12)
            assert row.se == pytest.approx(ratios.std(ddof=1) / math.sqrt(len(ratios)), rel=1e-9)
        else:
            assert row.value == math.inf and not row.passed
        assert row.passed == (row.value < ltl.WITHIN - 3 * row.se)
        finals = np.array([rates[-1] for _, rates in runs])
        assert result.value(f"rate/hd-sgd/{label}") == pytest.approx(np.exp(np.log(finals).mean()), rel=1e-12)


def test_the_rate_log_is_the_optimizers_state():
    data = ltl.digits(CONFIG)
    order = ltl.batches(len(data.y), CONFIG.batch, CONFIG.epochs, 7)
    model = ltl.model_for(CONFIG, 7)
    optimizer = TorchOptimizer(model.parameters(), "hd-sgd", lr=0.05, hyper_lr=0.01)
    seen: list[float] = []
    first = next(model.parameters())
    optimizer.register_step_post_hook(lambda opt, args, kwargs: seen.append(float(opt.state[first]["rate"])))
    run = ltl.train(model, optimizer, data, order, ltl.rate_in_use)
    assert run.rates == seen and len(seen) == len(order)
    assert run.rates[0] == PROBE * 0.05  # the first step is the probe, before any measurement
    assert len(set(run.rates)) > 1  # the rate moved
    assert run.final_loss == ltl.full_loss(model, data)


def test_each_rule_runs_at_its_library_default_discount():
    from descent.optim import RULES

    assert ltl.Config().discounts == tuple(RULES[rule].defaults()["discount"] for rule in ltl.RULES)


def test_the_engine_and_the_adapter_agree_and_the_spec_is_stored(result):
    assert result.row("engine/hd-sgd").passed
    assert result.specs and result.specs[0]["optimizer"] == "hd-sgd"


def test_a_diverged_run_never_wins_the_tuning_and_fails_its_check():
    assert ltl.tune({0.1: np.array([1.0, 1.0]), 1.0: np.array([0.1, math.inf])}) == 0.1
    assert ltl.relative_excess(np.array([1.0, math.inf]), np.array([1.0, 1.0])) == (math.inf, math.inf)
    excess, se = ltl.relative_excess(np.array([1.0, 3.0]), np.array([1.0, 2.0]))
    assert excess == pytest.approx(0.25) and se == pytest.approx(0.25)


@pytest.mark.parametrize(
    "field, value",
    [
        ("width", 0),
        ("width", True),
        ("batch", 1.5),
        ("epochs", -1),
        ("seeds", 1),
        ("seed", -3),
        ("examples", 10),
        ("examples", 5000),
        ("grid", ()),
        ("grid", (0.1, -1.0)),
        ("starts", (float("nan"),)),
        ("starts", [0.1, 1.0]),
        ("centres", (0.1, 0.01)),
        ("hyper_lrs", (0.01, 0.001, math.inf)),
        ("discounts", (0.9, 0.0)),
        ("discounts", (0.9, 1.0, 0.0)),
        ("discounts", (0.9, True, 0.0)),
        ("momentum", 1.0),
        ("momentum", True),
        ("engine_steps", 0),
    ],
)
def test_hostile_configurations_are_refused_in_one_line(field, value):
    with pytest.raises(DescentError) as error:
        ltl.Config(**{field: value})
    message = str(error.value)
    assert "\n" not in message and field in message
