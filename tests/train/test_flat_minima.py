"""flat-minima: the stopping rule (the first check at or below the target, the state of the run stopped
there), the measurements against the exact Hessian and a hand-computed loss and error, the paired
Wilcoxon test against its exact null distribution by enumeration, and the quick size's rows (not which
way the verdict falls)."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch

from descent._errors import DescentError
from descent.experiments import flat_minima as fm
from descent.objectives import digits_mlp, network_objective
from descent.spec import RunSpec, run_spec

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def quick():
    result = fm.run(fm.Config.quick())
    yield result
    import matplotlib.pyplot as plt

    for figure in result.figures:
        plt.close(figure)


def test_another_datasets_network_is_the_digits_recipe_on_its_data():
    config = fm.Config(datasets=("digits", "breast-cancer"), examples=(100, 80), width=5, depth=2, lr=0.3)
    net = fm.network(config, 1)
    from descent.train import build_model, load_dataset

    data = load_dataset("breast-cancer", n=80, seed=0)  # the recipe as flat-minima first wrote it by hand
    model = build_model("mlp:5,5", data.n_features, data.n_outputs, activation="relu", seed=0)
    hand = network_objective(
        model, data.x_train, data.y_train, test_inputs=data.x_test, test_targets=data.y_test
    )
    w = hand.inits([0, 1])
    assert torch.equal(net.start(), hand.start()) and torch.equal(net.inits([0, 1]), w)
    assert torch.equal(net.value(w), hand.value(w))
    assert torch.equal(net.metrics(w)["accuracy"], hand.metrics(w)["accuracy"])
    assert net.name == "breast-cancer-mlp"  # the registered landscape (its spec carries the lr)
    assert net.description == f"mlp:5,5 (relu) on {hand.data_size} breast-cancer examples, cross-entropy"
    assert torch.equal(fm.network(config, 0).inputs, digits_mlp(width=5, depth=2, examples=100).inputs)


# --- the stopping rule ----------------------------------------------------------------------------------
def test_the_stop_is_the_first_check_at_or_below_the_target():
    steps = torch.tensor([0, 10, 20, 30, 40])
    losses = torch.tensor(
        [
            [2.0, 2.0, 2.0, 2.0],
            [0.5, 0.009, 0.02, 0.011],
            [0.009, 0.02, 0.02, 0.0105],  # column 1 rises again after its stop: the first check counts
            [0.002, 0.001, 0.01, 0.0101],  # column 2 reaches the target exactly
            [0.001, 0.0005, 0.005, 0.0102],  # column 3 never does
        ],
        dtype=torch.float64,
    )
    assert fm.stopping_points(losses, steps, 0.01) == [2, 1, 3, None]


@pytest.fixture(scope="module")
def tiny():
    """A small digits MLP trained at batch size 8 until a loose target (a few hundred steps)."""
    config = fm.Config(
        datasets=("digits",), examples=(150,), width=6, depth=1, seeds=3, steps=(300,), target=0.3
    )
    net = fm.network(config, 0)
    mode = fm.train(config, net, 0, 8, fm.Runs(), None)
    return config, net, mode


def test_a_stopping_point_is_the_state_of_the_run_stopped_there(tiny):
    """Below the target at its check (the loss recomputed one network at a time), not below it at the
    check before, and equal to the network of the same spec run for exactly that many steps."""
    config, net, mode = tiny
    assert all(s is not None for s in mode["steps"]), mode["steps"]
    loss_fn = fm.training_loss_fn(net)
    spec = fm.swarm_spec(config, 0, 8, net.data_size)
    for i, (step, point, before) in enumerate(zip(mode["steps"], mode["points"], mode["before"])):
        assert float(loss_fn(point)) <= config.target < float(loss_fn(before))
        assert step % config.check == 0
        replay = run_spec(spec.with_(steps=step, save="summary"))  # by the landscape's name alone
        assert torch.equal(replay.final_position[i], point)


def test_a_breast_cancer_spec_replays_by_name():
    config = fm.Config(
        datasets=("breast-cancer",), examples=(120,), width=4, depth=1, seeds=2, steps=(20,), target=0.3
    )
    net = fm.network(config, 0)
    spec = fm.swarm_spec(config, 0, 8, net.data_size)
    assert spec.landscape == "breast-cancer-mlp" and net.dim == 30 * 4 + 4 + 4 * 2 + 2
    by_name, given = run_spec(spec), run_spec(spec, landscape=net)
    assert torch.equal(by_name.final_position, given.final_position)
    with pytest.raises(ValueError, match="datasets"):
        fm.Config(datasets=("iris",))


def test_a_run_that_never_reaches_the_target_has_no_stopping_point(tiny):
    config, net, _ = tiny
    short = fm.Config(**{**config.__dict__, "steps": (20,)})
    mode = fm.train(short, net, 0, fm.FULL, fm.Runs(), None)
    assert mode["steps"] == [None] * config.seeds and mode["points"] == [None] * config.seeds


# --- the measurements ----------------------------------------------------------------------------------
def test_measurements_against_the_exact_hessian_and_hand_computed_gaps():
    net = digits_mlp(width=3, depth=1, examples=120)
    w = run_spec(
        RunSpec(landscape="digits-mlp", optimizer="gd", hyper={"lr": 0.3}, steps=200, save="summary"),
        landscape=net,
    ).final_position[0]
    m = fm.measure(net, w, probes=400, seed=3)
    loss_fn = fm.training_loss_fn(net)
    hessian = torch.autograd.functional.hessian(loss_fn, w)
    exact = torch.linalg.eigvalsh(hessian)
    assert m["sharpness"] == pytest.approx(float(exact[-1]), rel=1e-6)
    assert abs(m["trace"] - float(hessian.trace())) <= 3 * m["trace_se"]
    model = copy.deepcopy(net.model)
    torch.nn.utils.vector_to_parameters(w, model.parameters())
    with torch.no_grad():
        for part, x, y in (("train", net.inputs, net.targets), ("test", net.test_inputs, net.test_targets)):
            out = model(x.to(w.dtype))
            loss = float(torch.nn.functional.cross_entropy(out, y))
            error = float((out.argmax(1) != y).double().mean())
            assert m[f"{part}_loss"] == pytest.approx(loss, rel=1e-10)
            assert m[f"{part}_error"] == pytest.approx(error, abs=1e-12)
    assert m["loss_gap"] == pytest.approx(m["test_loss"] - m["train_loss"])
    assert m["error_gap"] == pytest.approx(m["test_error"] - m["train_error"])


# --- the statistics ----------------------------------------------------------------------------------
def exact_signed_rank(diff: list[float]) -> tuple[float, float]:
    """(one-sided p for "below 0", two-sided p) by enumerating the 2^n sign patterns (no ties, no zeros)."""
    ranks = np.argsort(np.argsort(np.abs(diff))) + 1
    observed = float(ranks[np.asarray(diff) > 0].sum())
    null = [
        sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=len(diff))
    ]
    null = np.array(null, dtype=float)
    low, high = float(np.mean(null <= observed)), float(np.mean(null >= observed))
    return low, min(1.0, 2 * min(low, high))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_wilcoxon_against_its_exact_null_distribution(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=9)
    b = a + rng.normal(0.4, 1.0, size=9)
    result = fm.paired_wilcoxon(a, b)
    less, two = exact_signed_rank(list(a - b))
    assert result.n == 9
    assert result.median_difference == pytest.approx(float(np.median(a - b)), abs=0)
    assert result.p_less == pytest.approx(less, abs=1e-12)
    assert result.p_two_sided == pytest.approx(two, abs=1e-12)


def test_paired_wilcoxon_leaves_out_runs_that_never_stopped():
    a = [1.0, 2.0, math.nan, 4.0, 5.0, 0.5]
    b = [2.0, 3.5, 1.0, 7.0, math.nan, 0.0]
    result = fm.paired_wilcoxon(a, b)
    less, two = exact_signed_rank([-1.0, -1.5, -3.0, 0.5])
    assert (result.n, result.median_difference) == (4, -1.25)
    assert (result.p_less, result.p_two_sided) == (pytest.approx(less), pytest.approx(two))
    assert fm.paired_wilcoxon([1.0, 2.0], [1.0, 2.0]).p_two_sided == 1.0
    assert math.isnan(fm.paired_wilcoxon([math.nan], [1.0]).p_less)


@pytest.mark.parametrize(
    "change",
    [
        {"datasets": ("mnist",)},
        {"examples": (0,)},
        {"batches": (16, 64)},
        {"batches": (16, 16, 0)},
        {"seeds": 1},
        {"lr": -0.1},
        {"target": 0},
        {"probes": 1},
    ],
)
def test_bad_configurations_are_refused(change):
    with pytest.raises(DescentError, match="invalid"):
        fm.Config(**change)


# --- the quick size ----------------------------------------------------------------------------------
def test_the_quick_size_measures_every_run_and_states_the_claim_checks(quick):
    config = fm.Config.quick()
    for check in quick.theory_checks:
        assert check.passed, (check.id, check.value, check.theory)
    for dataset in config.datasets:
        for batch in config.batches:
            bid = "full" if batch == fm.FULL else f"B={batch}"
            assert quick.value(f"reached/{dataset}/{bid}") == config.seeds
            assert quick.value(f"sharpness/{dataset}/{bid}") > 0
        for key, _ in fm.QUANTITIES:
            claim = quick.row(f"claim/{dataset}/{key}")
            assert claim.about == "claim" and claim.criterion == f"measured < {fm.ALPHA:g}"
            assert claim.passed == (claim.value < fm.ALPHA) and 0 < claim.value <= 1
            assert 0 < quick.value(f"p/{dataset}/{key}/B={config.smallest}-full") <= 1
    assert quick.verdict in ("held", "did not hold", "partly held")
    assert len(quick.specs) == len(config.datasets) * len(config.batches)
