"""The training loop: batch modes draw the right examples, a descent rule through the adapter equals
a hand-written torch.optim loop, resume is bit for bit, clipping is counted, files are written."""

from __future__ import annotations

import csv
import json
import math

import matplotlib.image
import pytest
import torch

from descent._errors import DescentError
from descent.train.checkpoint import load_checkpoint
from descent.train.data import load_dataset
from descent.train.loop import METRICS, TIMES, TrainConfig, batch_indices, train
from descent.train.models import build_model, flat_parameters, loss_function

SMALL = dict(dataset="iris", model="mlp:8", seed=3)  # 120 training examples


@pytest.mark.parametrize("batch_size, sizes", [("full", [120]), (1, [1] * 120), (32, [32, 32, 32, 24])])
def test_batch_modes_draw_the_right_examples_per_step(batch_size, sizes):
    recorded = []

    def record(module, args):
        if isinstance(module, torch.nn.Sequential):  # the whole model, not its layers
            recorded.append(len(args[0]))

    hook = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        result = train(TrainConfig(**SMALL, batch_size=batch_size, epochs=2), plot=False)
    finally:
        hook.remove()
    n_test = len(result.data.x_test)
    epoch = [*sizes, 120, n_test]  # the steps, then the evaluation on the training and test parts
    assert recorded == [120, n_test, *epoch, *epoch]  # the start is evaluated first
    assert [row["steps"] for row in result.metrics] == [len(sizes), 2 * len(sizes)]
    assert [row["examples"] for row in result.metrics] == [120, 240]


def test_batch_indices_are_seeded_permutations():
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    first, second = batch_indices(50, 7, a), batch_indices(50, 7, a)
    assert [len(part) for part in first] == [7] * 7 + [1]
    assert torch.equal(torch.cat(first).sort().values, torch.arange(50))
    assert not torch.equal(torch.cat(first), torch.cat(second))  # a new order each epoch
    assert torch.equal(torch.cat(first), torch.cat(batch_indices(50, 7, b)))


def hand_written_sgd(config: TrainConfig) -> torch.nn.Module:
    """The same run as a plain loop with torch.optim.SGD(momentum): same data, model and order."""
    data = load_dataset(config.dataset, seed=config.seed)
    model = build_model(config.model, data.n_features, data.n_outputs, seed=config.seed)
    loss = loss_function("cross-entropy", "classification")
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        for index in torch.randperm(len(data.x_train), generator=generator).split(config.batch_size):
            optimizer.zero_grad()
            loss(model(data.x_train[index]), data.y_train[index]).backward()
            optimizer.step()
    return model


def test_descent_momentum_equals_torch_sgd_momentum_at_constant_lr():
    config = TrainConfig(**SMALL, optimizer="momentum", lr=0.05, momentum=0.9, batch_size=16, epochs=5)
    ours = flat_parameters(train(config, plot=False).model)
    theirs = flat_parameters(hand_written_sgd(config))
    assert ours.norm() > 1  # the run moved
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def rows_without_times(rows):
    return [{k: v for k, v in row.items() if k not in TIMES} for row in rows]


def assert_same_run(a, b):
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    state_a, state_b = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    for key in state_a:
        for name, value in state_a[key].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b[key][name])), name
    assert rows_without_times(a.metrics) == rows_without_times(b.metrics)
    assert a.initial == b.initial


@pytest.mark.parametrize(
    "optimizer, schedule, hyper",
    [
        ("momentum", "step:3:0.5", {}),  # the lr falls once, after epoch 3
        ("langevin", None, {"temperature": 1e-4}),  # noise from the counter-based stream
        ("torch:Adam", "onecycle", {"betas": (0.8, 0.99)}),
    ],
)
def test_resume_is_bit_for_bit(tmp_path, optimizer, schedule, hyper):
    base = dict(
        **SMALL, optimizer=optimizer, lr=0.01, batch_size=16, clip=1.0, schedule=schedule, hyper=hyper
    )
    straight = train(TrainConfig(**base, epochs=4), tmp_path / "straight", plot=False)

    def stop_after_two(epoch, total):
        if epoch == 2:
            raise KeyboardInterrupt

    cut = train(TrainConfig(**base, epochs=4), tmp_path / "cut", progress=stop_after_two, plot=False)
    assert cut.interrupted and len(cut.metrics) == 2
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 2
    resumed = train(TrainConfig(**base, epochs=4), tmp_path / "cut", resume=True, plot=False)
    assert not resumed.interrupted
    assert_same_run(straight, resumed)
    written = json.loads((tmp_path / "cut" / "metrics.json").read_text())["epochs"]
    assert rows_without_times(written) == rows_without_times(straight.metrics)


def test_resume_to_more_epochs_with_a_constant_schedule(tmp_path):
    base = dict(**SMALL, optimizer="nesterov", lr=0.02, momentum=0.8, weight_decay=1e-3, batch_size=8)
    straight = train(TrainConfig(**base, epochs=3), plot=False)
    train(TrainConfig(**base, epochs=1), tmp_path, plot=False)
    resumed = train(TrainConfig(**base, epochs=3), tmp_path, resume=True, plot=False)
    assert_same_run(straight, resumed)


def test_resume_refuses_another_config(tmp_path):
    train(TrainConfig(**SMALL, epochs=1, schedule="cosine"), tmp_path, plot=False)
    with pytest.raises(DescentError) as error:
        train(TrainConfig(**SMALL, epochs=1, lr=0.2, schedule="cosine"), tmp_path, resume=True)
    assert error.value.parameter == "lr"
    with pytest.raises(DescentError) as error:  # cosine's period is the run's length
        train(TrainConfig(**SMALL, epochs=2, schedule="cosine"), tmp_path, resume=True)
    assert error.value.parameter == "epochs"
    with pytest.raises(DescentError) as error:
        train(TrainConfig(**SMALL, epochs=1), tmp_path / "empty", resume=True)
    assert error.value.parameter == "resume"


def test_clipping_is_counted_and_applied():
    config = dict(**SMALL, optimizer="gd", lr=0.1, batch_size="full", epochs=3)
    free = train(TrainConfig(**config), plot=False)
    data, model = free.data, build_model("mlp:8", 4, 3, seed=3)
    loss_function("cross-entropy", "classification")(model(data.x_train), data.y_train).backward()
    start_norm = math.sqrt(sum(float(p.grad.square().sum()) for p in model.parameters()))
    assert free.metrics[0]["grad_norm"] == pytest.approx(start_norm, rel=1e-12)
    assert [row["clipped_steps"] for row in free.metrics] == [0, 0, 0]

    clip = start_norm / 10
    clipped = train(TrainConfig(**config, clip=clip), plot=False)
    assert [row["clipped_steps"] for row in clipped.metrics] == [1, 1, 1]
    assert clipped.metrics[0]["grad_norm"] == pytest.approx(start_norm, rel=1e-12)  # before clipping
    for row in clipped.metrics:  # one GD step an epoch, on a gradient of norm clip
        assert row["update_norm"] == pytest.approx(0.1 * clip, rel=1e-5)
    loose = train(TrainConfig(**config, clip=1e6), plot=False)
    assert torch.equal(flat_parameters(loose.model), flat_parameters(free.model))
    assert sum(row["clipped_steps"] for row in loose.metrics) == 0


def test_metrics_files_are_written(tmp_path):
    config = TrainConfig(**SMALL, optimizer="torch:SGD", lr=0.1, momentum=0.5, batch_size=10, epochs=3)
    result = train(config, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "config.json",
        "metrics.csv",
        "metrics.json",
        "checkpoint.pt",
        "curves.png",
    }
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(METRICS) and len(rows) == 3
    assert [float(row["test_loss"]) for row in rows] == [row["test_loss"] for row in result.metrics]
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["epochs"] == result.metrics and written["initial"] == result.initial
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == config
    with_betas = TrainConfig(optimizer="adam", hyper={"betas": (0.8, 0.9)})
    assert TrainConfig.from_dict(json.loads(json.dumps(with_betas.to_dict()))) == with_betas
    data, model = result.data, result.model
    with torch.no_grad():
        outputs = model(data.x_train)
    train_loss = float(torch.nn.functional.cross_entropy(outputs, data.y_train))
    accuracy = float((outputs.argmax(1) == data.y_train).double().mean())
    assert result.metrics[-1]["train_loss"] == train_loss
    assert result.metrics[-1]["train_accuracy"] == accuracy
    assert result.metrics[-1]["lr"] == 0.1
    height, width, _ = matplotlib.image.imread(tmp_path / "curves.png").shape
    assert width <= 12 * 110 and height < width


def test_regression_run_has_no_accuracy():
    result = train(
        TrainConfig(
            dataset="linear", n=200, model="linear", optimizer="gd", lr=0.5, batch_size="full", epochs=40
        ),
        plot=False,
    )
    assert result.data.task == "regression" and result.metrics[-1]["train_accuracy"] is None
    assert result.metrics[-1]["train_loss"] < 0.01 * result.initial["train_loss"]


def test_a_diverging_run_stops_at_its_first_non_finite_loss():
    config = dict(dataset="linear", n=100, model="linear", optimizer="gd", batch_size="full", epochs=500)
    stable = train(TrainConfig(**config, lr=0.5), plot=False)
    assert stable.diverged_at is None and stable.epochs_run == 500
    wild = train(TrainConfig(**config, lr=1e3), plot=False)
    losses = [row["train_loss"] for row in wild.metrics]
    assert wild.diverged_at == wild.epochs_run < 500
    assert all(math.isfinite(v) for v in losses[:-1]) and not math.isfinite(losses[-1])


def test_a_diverged_runs_metrics_json_is_strict_json(tmp_path):
    config = dict(dataset="linear", n=100, model="linear", optimizer="gd", batch_size="full", epochs=50)
    train(TrainConfig(**config, lr=1e3), out=tmp_path, plot=False)

    def refuse(token):
        raise AssertionError(f"not strict JSON: {token}")

    data = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse)
    assert data["epochs"][-1]["train_loss"] in ("nan", "inf")


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "half"}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum"),
        ({"optimizer": "torch:Adam", "momentum": 0.9}, "momentum"),
        ({"optimizer": "adam", "hyper": {"betas": (0.9,)}}, "hyper"),
        ({"optimizer": "torch:SGD", "hyper": {"foo": 1}}, "hyper"),
        ({"optimizer": "torch:Nope"}, "optimizer"),
        ({"optimizer": "torch:LBFGS"}, "optimizer"),  # it needs a closure
        ({"optimizer": "torch:SGD", "hyper": {"nesterov": True}}, "optimizer"),  # torch refuses it
        ({"optimizer": "sgdx"}, "optimizer"),
        ({"schedule": "step:0:0.1"}, "schedule"),
        ({"schedule": "linear"}, "schedule"),
        ({"clip": 0}, "clip"),
        ({"dtype": "float16"}, "dtype"),
        ({"device": "tpu"}, "device"),
        ({"model": "mlp:"}, "model"),
        ({"init": "normal:x"}, "init"),
        ({"loss": "hinge"}, "loss"),
        ({"dataset": "mnist"}, "dataset"),
    ],
)
def test_config_is_validated_at_construction(kwargs, parameter):
    with pytest.raises(DescentError) as error:
        TrainConfig(**kwargs)
    assert error.value.parameter == parameter
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"batch_size": 121}, "batch_size"),
        ({"model": "cnn"}, "model"),
        ({"dataset": "linear", "model": "logistic"}, "model"),
        ({"dataset": "linear", "loss": "cross-entropy"}, "loss"),
    ],
)
def test_config_checked_against_the_data_before_training(kwargs, parameter):
    with pytest.raises(DescentError) as error:
        train(TrainConfig(**{**SMALL, **kwargs}))
    assert error.value.parameter == parameter
