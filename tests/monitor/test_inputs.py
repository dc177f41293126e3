"""The monitor takes any model's inputs (a tensor, a tuple of tensors, a dict of tensors, as arguments or
as one argument) with the same numbers as the same network fed one concatenated tensor, and refuses bad
input with one line naming the parameter, before any work."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import descent
from descent._errors import DescentError
from descent.monitor.physics import check_optimizer

torch.set_num_threads(1)

N, LEFT = 24, 3
X = torch.randn(N, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 3, (N,), generator=torch.Generator().manual_seed(1))


class Joined(nn.Module):
    """Two branches on the first 3 and the last 2 features, then a head: fed one tensor."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.h = nn.Linear(LEFT, 4), nn.Linear(5 - LEFT, 4), nn.Linear(8, 3)
        self.double()

    def both(self, left, right):
        return self.h(torch.tanh(torch.cat([self.a(left), self.b(right)], 1)))

    def forward(self, x):
        return self.both(x[:, :LEFT], x[:, LEFT:])


class Two(Joined):  # model(left, right) or model(left=..., right=...)
    def forward(self, left, right):
        return self.both(left, right)


class OneDict(Joined):  # model({"left": ..., "right": ...})
    def forward(self, batch):
        return self.both(batch["left"], batch["right"])


def _split(x, form):
    left, right = x[:, :LEFT], x[:, LEFT:]
    return {"joined": x, "tuple": (left, right), "kwargs": {"left": left, "right": right}}.get(
        form, {"left": left, "right": right}
    )


def _forward(model, x, form):
    """The training loop's own call, as its user writes it."""
    inputs = _split(x, form)
    if form == "tuple":
        return model(*inputs)
    return model(**inputs) if form == "kwargs" else model(inputs)


MODELS = {"joined": Joined, "tuple": Two, "kwargs": Two, "dict": OneDict}


def _run(form, with_monitor=True, steps=12, batch=8):
    model = MODELS[form]()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    monitor = None
    if with_monitor:
        held = (_split(X, form), Y)
        loss_fn = nn.functional.cross_entropy
        monitor = descent.watch(model, optimizer, loss_fn, held, every=4, verbose=False, probes=2)
    generator = torch.Generator().manual_seed(2)
    for _ in range(steps):
        index = torch.randint(0, N, (batch,), generator=generator)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(_forward(model, X[index], form), Y[index])
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.step(loss)
    return model, monitor


@pytest.fixture(scope="module")
def joined_rows():
    return _run("joined")[1].rows


@pytest.mark.parametrize("form", ["tuple", "kwargs", "dict"])
def test_split_inputs_give_the_rows_of_one_concatenated_input(form, joined_rows):
    model, monitor = _run(form)
    assert monitor.held.spread == (form != "dict")
    assert len(monitor.rows) == len(joined_rows) == 3
    for row, joined in zip(monitor.rows, joined_rows):
        assert row["batch_size"] == 8  # the forward pre-hook found the batch in args, kwargs or a dict
        for key, value in joined.items():
            if key == "seconds":
                continue
            if isinstance(value, float) and math.isfinite(value):
                assert row[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
            elif isinstance(value, float):
                assert not math.isfinite(row[key]) or key == "lambda_min", key
            else:
                assert row[key] == value, key


@pytest.mark.parametrize("form", ["tuple", "dict"])
def test_training_with_split_inputs_is_bit_identical_with_the_monitor(form):
    plain, _ = _run(form, with_monitor=False)
    watched, _ = _run(form)
    for a, b in zip(plain.state_dict().values(), watched.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("form", ["tuple", "kwargs", "dict"])
def test_the_loop_fallback_gives_the_per_example_gradients_of_autograd(form):
    """The loop over examples (when torch.func.vmap fails) against vmap and against autograd on the
    concatenated network, example by example."""
    model, monitor = _run(form, steps=4)
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    losses, grads = monitor.held.per_example(theta)
    monitor.held.vmap_failed = "forced by the test"
    loop_losses, loop_grads = monitor.held.per_example(theta)
    assert torch.allclose(loop_grads, grads, rtol=1e-12, atol=1e-14)
    assert torch.allclose(loop_losses, losses, rtol=1e-12, atol=1e-14)
    joined = Joined()
    joined.load_state_dict(model.state_dict())
    for i in (0, N - 1):
        joined.zero_grad()
        nn.functional.cross_entropy(joined(X[i : i + 1]), Y[i : i + 1]).backward()
        expected = torch.cat([p.grad.reshape(-1) for p in joined.parameters()])
        assert torch.allclose(loop_grads[i], expected, rtol=1e-12, atol=1e-14)


def _small():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    held = (X[:10].float(), Y[:10])
    return model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), held


NAN_X = X[:10].float().clone()
NAN_X[3, 1] = math.nan


@pytest.mark.parametrize(
    "change, parameter, said",
    [
        ({"products": 10**9}, "products", "[1, 39]"),  # 39 trained parameters
        ({"products": 201}, "products", None),
        ({"probes": 10**9}, "probes", "[2, 1000]"),
        ({"probes": 1001}, "probes", None),
        ({"noise_examples": 11}, "noise_examples", "[2, 10]"),  # 10 held examples
        ({"curvature_examples": 10**9}, "curvature_examples", "[1, 10]"),
        ({"seed": 2**63}, "seed", None),
        ({"seed": 2**70}, "seed", None),
        ({"held": (NAN_X, Y[:10])}, "held", "NaN"),
        ({"held": (X[:10].float() / 0, Y[:10])}, "held", "infinity"),
        ({"held": (X[:10].float(), Y[:10].float())}, "held", "loss_fn(model(x), y) cannot run"),
        ({"held": (X[:10, :4].float(), Y[:10])}, "held", "the model cannot run on it (RuntimeError"),
        ({"held": (X[:10], Y[:10])}, "held", "the model cannot run on it"),  # float64 into float32
        ({"held": ((X[:10].float(), X[:10].float()), Y[:10])}, "held", "cannot run"),  # 2 args, takes 1
        ({"held": ({"x": X[:10].float()}, Y[:9])}, "held", "same first dimension"),
        ({"held": ({1: X[:10].float()}, Y[:10])}, "held", None),
        ({"held": ((), Y[:10])}, "held", None),
        ({"loss_fn": nn.CrossEntropyLoss(reduction="none")}, "loss_fn", "shaped [10]"),
        (
            {"loss_fn": lambda o, t: nn.functional.cross_entropy(o, t).detach().item()},
            "loss_fn",
            "returned a float",
        ),
        ({"loss_fn": lambda o, t: nn.functional.cross_entropy(o, t).detach()}, "loss_fn", "gradient path"),
        ({"tensorboard": 123}, "tensorboard", None),
        ({"tensorboard": ""}, "tensorboard", None),
        ({"verbose": "no"}, "verbose", None),
        ({"verbose": 1}, "verbose", None),
    ],
)
def test_bad_input_is_one_line_before_any_work(change, parameter, said, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a tensorboard folder would appear here
    model, optimizer, loss_fn, held = _small()
    arguments = {"model": model, "optimizer": optimizer, "loss_fn": loss_fn, "held": held, **change}
    with pytest.raises(DescentError) as error:
        descent.watch(**arguments)
    message = str(error.value)
    assert error.value.parameter == parameter and "\n" not in message
    assert message.startswith(f"invalid {parameter}=")
    assert said is None or said in message
    assert not model._forward_pre_hooks and not list(tmp_path.iterdir())


def test_the_bounds_admit_their_largest_values():
    """products = d, probes 1000 and seed 2**63 - 1 (to which the monitor adds the step) all run."""
    torch.manual_seed(0)
    model = nn.Linear(2, 1)  # d = 3
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    held = (X[:10, :2].float(), X[:10, 2:3].float())
    monitor = descent.watch(
        model, optimizer, nn.functional.mse_loss, held, every=1, verbose=False, products=3, probes=1000,
        seed=2**63 - 1, noise_examples=10, curvature_examples=10,
    )  # fmt: skip
    optimizer.zero_grad()
    nn.functional.mse_loss(model(held[0]), held[1]).backward()
    optimizer.step()
    row = monitor.step()
    hessian = (
        2 * torch.cat([held[0], torch.ones(10, 1)], 1).T @ torch.cat([held[0], torch.ones(10, 1)], 1) / 10
    )
    assert row["sharpness"] == pytest.approx(float(torch.linalg.eigvalsh(hessian)[-1]), rel=1e-5)
    assert row["hessian_trace"] == pytest.approx(float(hessian.trace()), rel=0.1)  # 1000 probes: ~3 %


def test_an_optimizer_subclass_reads_as_the_class_it_extends():
    class MySGD(torch.optim.SGD):
        pass

    class MyAdamW(torch.optim.AdamW):
        pass

    params = [nn.Parameter(torch.zeros(2))]
    assert check_optimizer(MySGD(params, lr=0.1)) == "SGD"
    assert check_optimizer(MyAdamW(params)) == "AdamW"
    assert check_optimizer(torch.optim.Adam(params)) == "Adam"
    rows = []
    for make in (torch.optim.SGD, MySGD):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
        optimizer = make(model.parameters(), lr=0.1, momentum=0.9)
        monitor = descent.watch(model, optimizer, nn.CrossEntropyLoss(), _small()[3], every=2, verbose=False)
        for _ in range(4):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:8].float()), Y[:8])
            loss.backward()
            optimizer.step()
            monitor.step(loss)
        rows.append([{k: v for k, v in row.items() if k != "seconds"} for row in monitor.rows])
    assert rows[0][-1]["rule"] == "momentum"
    assert str(rows[0]) == str(rows[1])  # the same numbers, NaNs included


def _watched():
    model, optimizer, loss_fn, held = _small()
    return model, optimizer, descent.watch(model, optimizer, loss_fn, held, every=2, verbose=False)


def _step(model, optimizer, monitor, loss=None):
    optimizer.zero_grad()
    batch_loss = nn.functional.cross_entropy(model(X[:8].float()), Y[:8])
    batch_loss.backward()
    optimizer.step()
    return monitor.step(batch_loss if loss is None else loss)


@pytest.mark.parametrize("bad", [[0.5], "0.5", b"1", True, {"loss": 1.0}])
def test_step_refuses_a_loss_that_is_not_a_number_and_does_not_count_it(bad):
    model, optimizer, monitor = _watched()
    with pytest.raises(DescentError, match=r"^invalid step\(loss\)=") as error:
        _step(model, optimizer, monitor, bad)
    assert error.value.parameter == "step(loss)" and monitor.steps == 0


def test_step_refuses_a_tensor_of_many_values_before_counting_it_and_goes_on():
    """A CPU loss is read at once (its number: cheaper than stacking a thousand tensors at the check);
    one of several values is refused there, before the step is counted (a device's loss is kept as a
    tensor, without a sync, and checked at the next check)."""
    model, optimizer, monitor = _watched()
    with pytest.raises(DescentError, match=r"^invalid step\(loss\)='a tensor shaped \[3\]'"):
        _step(model, optimizer, monitor, torch.ones(3))
    assert monitor.steps == 0
    assert _step(model, optimizer, monitor) is None and _step(model, optimizer, monitor)["step"] == 2


def test_step_takes_numbers_one_element_tensors_and_nan_as_data():
    model, optimizer, monitor = _watched()
    values = [np.float32(1.0), 3, torch.tensor([2.0]), torch.tensor(math.nan), None, math.inf]
    for value in values:
        _step(model, optimizer, monitor, value)
    assert [row["step"] for row in monitor.rows] == [2, 4, 6]
    assert monitor.rows[0]["loss"] == pytest.approx(2.0) and monitor.rows[0]["loss_se"] == pytest.approx(1.0)
    assert math.isnan(monitor.rows[1]["loss"])  # NaN is data: the diagnosis reads it
    assert monitor.rows[2]["loss"] == math.inf


def test_report_into_a_place_it_cannot_write_is_one_line_naming_folder(tmp_path):
    model, optimizer, monitor = _watched()
    _step(model, optimizer, monitor)
    _step(model, optimizer, monitor)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for folder in (a_file, a_file / "sub", None, ""):
        with pytest.raises(DescentError, match=r"^invalid folder=") as error:
            monitor.report(folder)
        assert error.value.parameter == "folder" and "\n" not in str(error.value)
    assert sorted(monitor.report(tmp_path / "ok")) == ["csv", "html", "json", "md", "png"]


def test_a_tensorboard_folder_it_cannot_make_is_one_line_naming_tensorboard(tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    model, optimizer, loss_fn, held = _small()
    with pytest.raises(DescentError, match=r"^invalid tensorboard=.*NotADirectoryError") as error:
        descent.watch(model, optimizer, loss_fn, held, tensorboard=a_file / "runs")
    assert error.value.parameter == "tensorboard" and not model._forward_pre_hooks
