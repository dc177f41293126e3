"""The monitor leaves training alone (bit-identical parameters, optimizer state, buffers and random
state with and without it), reads every supported optimizer, writes its outputs, and rejects bad input
with one line naming the parameter before doing any work."""

from __future__ import annotations

import html
import json
import math

import pytest
import torch
from torch import nn

import descent
from descent._errors import DescentError
from descent.optim import TorchOptimizer

torch.set_num_threads(1)

X = torch.randn(96, 5, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 3, (96,), generator=torch.Generator().manual_seed(1))


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 3))


def _train(make_optimizer, with_monitor: bool, steps: int = 30):
    model = _net()
    optimizer = make_optimizer(model.parameters())
    criterion = nn.CrossEntropyLoss()
    monitor = None
    if with_monitor:
        monitor = descent.watch(
            model, optimizer, criterion, (X[:40], Y[:40]), every=4, verbose=False, full=True
        )
    torch.manual_seed(123)  # dropout and the batches draw from the global generator
    for _ in range(steps):
        index = torch.randint(0, 96, (16,))
        optimizer.zero_grad()
        loss = criterion(model(X[index]), Y[index])
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.step(loss)
    return model, optimizer, torch.get_rng_state(), monitor


MAKERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.5, centered=True),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.05, lr_decay=0.01),
    "descent-momentum": lambda p: TorchOptimizer(p, "momentum", lr=0.05, momentum=0.9),
    "descent-adam": lambda p: TorchOptimizer(p, "adam", lr=1e-2),
    "descent-langevin": lambda p: TorchOptimizer(p, "langevin", lr=0.05, temperature=1e-3),
}


@pytest.mark.parametrize("name", ["sgd-momentum", "adam", "descent-momentum"])
def test_training_is_bit_identical_with_and_without_the_monitor(name):
    plain_model, plain_opt, plain_rng, _ = _train(MAKERS[name], False)
    model, opt, rng, monitor = _train(MAKERS[name], True)
    assert len(monitor.rows) == 7
    for a, b in zip(plain_model.state_dict().values(), model.state_dict().values()):  # BN buffers too
        assert torch.equal(a, b)
    for p, q in zip(plain_model.parameters(), model.parameters()):
        for key, value in plain_opt.state[p].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt.state[q][key]))
    assert torch.equal(plain_rng, rng)
    assert model.training and all(m.training for m in model.modules())


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_optimizer_gives_finite_physics(name):
    _, optimizer, _, monitor = _train(MAKERS[name], True, steps=8)
    row = monitor.rows[-1]
    for key in (
        "temperature",
        "sharpness",
        "edge",
        "edge_ratio",
        "suggested_lr",
        "grad_norm",
        "hessian_trace",
    ):
        assert math.isfinite(row[key]) and row[key] != 0, key
    inertial = row["momentum"] > 0
    assert math.isfinite(row["kinetic_temperature"]) == inertial
    assert row["batch_size"] == 16 and row["parameters"] == sum(p.numel() for p in monitor.params)
    if name == "descent-langevin":  # the injected thermal noise adds its temperature
        assert row["temperature"] > 1e-3


def test_report_writes_rows_figure_and_text(tmp_path):
    _, _, _, monitor = _train(MAKERS["sgd-momentum"], True, steps=12)
    files = monitor.report(tmp_path)
    assert sorted(files) == ["csv", "html", "json", "md", "png"]
    rows = json.loads(files["json"].read_text())["rows"]
    assert [r["step"] for r in rows] == [4, 8, 12]
    assert files["csv"].read_text().splitlines()[0].split(",")[:3] == ["step", "loss", "loss_se"]
    assert monitor.rows[-1]["advice"] in files["md"].read_text()
    page = files["html"].read_text()  # the steps table: each run of a diagnosis with its last advice
    rows = monitor.rows
    ends = [
        r
        for r, after in zip(rows, [*rows[1:], None])
        if after is None or after["diagnosis"] != r["diagnosis"]
    ]
    assert "<th>advice" in page and page.count("<tr><td>") == len(ends)
    for row in ends:
        assert f"<td>{html.escape(row['diagnosis'])}</td><td>{html.escape(row['advice'])}</td></tr>" in page
    assert files["png"].stat().st_size > 10_000
    assert monitor.line.startswith("step 12 | loss ") and monitor.postfix["dx"] == monitor.diagnosis.name


def _loop(model, optimizer, monitor, steps: int) -> None:
    """Full-batch steps on the first 8 examples (no dropout or batch norm in these models)."""
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(X[:8]), Y[:8])
        loss.backward()
        optimizer.step()
        monitor.step(loss)


def test_verbose_prints_one_line_per_check(capsys):
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = descent.watch(model, optimizer, nn.CrossEntropyLoss(), (X[:20], Y[:20]), every=2)
    _loop(model, optimizer, monitor, 4)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" |")[0] for line in lines] == ["step 2", "step 4"]


class _Reshaper(nn.Module):  # data-dependent control flow: torch.func.vmap cannot trace it
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(5, 3)

    def forward(self, x):
        if float(x.sum()) > 1e9:
            return x
        return self.linear(x)


def test_a_model_vmap_cannot_handle_falls_back_to_a_loop_and_says_so_once():
    model = _Reshaper()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = descent.watch(model, optimizer, nn.CrossEntropyLoss(), (X[:10], Y[:10]), every=1, verbose=False)
    with pytest.warns(UserWarning, match="fall back to a loop") as caught:
        _loop(model, optimizer, monitor, 3)
    assert len([w for w in caught if "fall back" in str(w.message)]) == 1
    # the loop's gradients are the same per-example gradients: check against autograd, example 0
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    _, grads = monitor.held.per_example(theta)
    model.zero_grad()
    nn.functional.cross_entropy(model(X[:1]), Y[:1]).backward()
    expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert torch.allclose(grads[0], expected, atol=1e-6)
    assert any("loop" in note for note in monitor.notes)


def _ok():
    model = _net()
    return model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), (X[:10], Y[:10])


@pytest.mark.parametrize(
    "change, parameter",
    [
        ({"every": 0}, "every"),
        ({"every": 2.5}, "every"),
        ({"every": True}, "every"),
        ({"held": X[:10]}, "held"),
        ({"held": (X[:10], Y[:9])}, "held"),
        ({"held": (X[:1], Y[:1])}, "held"),
        ({"held": (X[:10], [0] * 10)}, "held"),
        ({"model": "net"}, "model"),
        ({"model": nn.ReLU()}, "model"),
        ({"optimizer": torch.optim.LBFGS(nn.Linear(2, 2).parameters())}, "optimizer"),
        ({"optimizer": torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)}, "optimizer"),
        ({"optimizer": TorchOptimizer(nn.Linear(2, 2).parameters(), "gd")}, "optimizer"),
        ({"loss_fn": 3}, "loss_fn"),
        ({"products": 0}, "products"),
        ({"probes": 1}, "probes"),
        ({"noise_examples": 1}, "noise_examples"),
    ],
)
def test_bad_input_is_one_line_naming_the_parameter(change, parameter):
    model, optimizer, loss_fn, held = _ok()
    arguments = {
        "model": model,
        "optimizer": optimizer,
        "loss_fn": loss_fn,
        "held": held,
        "every": 5,
        **change,
    }
    with pytest.raises(DescentError) as error:
        descent.watch(**arguments)
    assert error.value.parameter == parameter and "\n" not in str(error.value)
    assert not model._forward_pre_hooks  # no work done: not even the hook


def test_best_loss_and_peak_sharpness_are_the_runs_so_far():
    """Each row's best_loss is the least of the start and every check's loss so far, its max_sharpness
    the largest sharpness so far (kept as the run goes, not reread from the rows)."""
    _, _, _, monitor = _train(MAKERS["sgd-momentum"], True, steps=40)
    rows = monitor.rows
    for i, row in enumerate(rows):
        assert row["best_loss"] == min([row["start_loss"], *(r["loss"] for r in rows[: i + 1])])
        assert row["max_sharpness"] == max(r["sharpness"] for r in rows[: i + 1])
    assert len({r["best_loss"] for r in rows}) > 1 and len({r["max_sharpness"] for r in rows}) > 1


def test_an_epochs_last_partial_batch_does_not_set_the_batch_size():
    """Batches of 8 with a last batch of 4: the check after the partial batch still reads B = 8 (the
    largest seen), else its temperature would be twice too high."""
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = descent.watch(model, optimizer, nn.CrossEntropyLoss(), (X[:20], Y[:20]), every=3, verbose=False)
    for size in (8, 8, 4, 8, 8, 4):  # checks after steps 3 and 6: both after a batch of 4
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(X[:size]), Y[:size])
        loss.backward()
        optimizer.step()
        monitor.step(loss)
    assert [row["batch_size"] for row in monitor.rows] == [8, 8]


def test_batch_norm_curvature_is_the_training_losss_and_a_bias_before_it_raises_no_alarm():
    """Adam on Linear -> BatchNorm -> Tanh -> Linear (the Linear's bias before the batch norm is a
    direction the training loss, normalised by the batch mean, does not see: Adam's scale for it stays
    near eps). The monitor's sharpness is the top eigenvalue of D H D, D = P^-1/2, of the loss with the
    batch norm on batch statistics (the exact Hessian by autograd, products = d: exact Lanczos), not
    of the evaluation-mode loss, where that bias has curvature and D blows it up; the running
    statistics are untouched."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, y = X.double(), Y
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    d = sum(p.numel() for p in model.parameters())
    monitor = descent.watch(
        model, optimizer, nn.CrossEntropyLoss(), (x[:32], y[:32]), every=10, verbose=False, products=d
    )
    for _ in range(30):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x[:16]), y[:16])
        loss.backward()
        optimizer.step()
        monitor.step(loss)
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    names = [n for n, _ in model.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def train_mode_loss(w):
        params, start = {}, 0
        for name, p in zip(names, model.parameters()):
            params[name] = w[start : start + p.numel()].view(p.shape)
            start += p.numel()
        copies = {k: b.clone() for k, b in model.named_buffers()}  # the model's own stay untouched
        outputs = torch.func.functional_call(model, {**params, **copies}, (x[:32],))
        return nn.functional.cross_entropy(outputs, y[:32])

    model.train()
    hessian = torch.autograd.functional.hessian(train_mode_loss, theta)
    state = [optimizer.state[p] for p in model.parameters()]
    t = state[0]["step"]
    scale = torch.cat([(s["exp_avg_sq"] / (1 - 0.999**t)).sqrt().reshape(-1) + 1e-8 for s in state])
    scale = scale * (1 - 0.9**t)  # Adam's preconditioner (Cohen et al. 2022)
    root = scale.rsqrt()
    exact = float(torch.linalg.eigvalsh(root[:, None] * hessian * root[None, :])[-1])
    row = monitor.rows[-1]
    assert row["sharpness"] == pytest.approx(exact, rel=1e-4)
    assert row["edge_ratio"] < 1 and row["diagnosis"] != "edge"
    assert all(torch.equal(b, buffers[k]) for k, b in model.named_buffers())


def test_a_bias_before_batch_norm_adds_no_noise_it_does_not_have_in_training():
    """Adam on Linear -> BatchNorm -> Tanh -> Linear, the first Linear's bias trained or frozen: the
    batch mean removes it in training, so both runs take the same steps (to rounding), and the
    monitor must read the same noise and temperature. Held in evaluation mode that bias has a
    gradient, which Adam's scale for it (its training gradient's size, ~1e-17, plus eps) would blow
    up by 1/eps; the monitor leaves out the coordinates training barely moves (Dynamics.active_scale)."""
    rows = {}
    for frozen in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 3)).double()
        model[0].bias.requires_grad_(not frozen)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
        monitor = descent.watch(
            model, optimizer, nn.CrossEntropyLoss(), (X[:32].double(), Y[:32]), every=10, verbose=False
        )
        for step in range(30):
            optimizer.zero_grad()
            batch = slice(16 * (step % 2), 16 * (step % 2) + 16)
            loss = nn.functional.cross_entropy(model(X[batch].double()), Y[batch])
            loss.backward()
            optimizer.step()
            monitor.step(loss)
        rows[frozen] = monitor.rows[-1]
    for key in ("noise_trace", "temperature", "grad_norm_metric", "sharpness"):
        assert rows[False][key] == pytest.approx(rows[True][key], rel=1e-6), key
    assert rows[False]["diagnosis"] == rows[True]["diagnosis"]


def test_idle_coordinates_are_those_under_a_thousandth_of_the_median_gradient_or_eps():
    from descent.monitor.physics import IDLE, Dynamics

    c, eps = 0.5, 1e-8  # P = c (r + eps), floor = c eps
    r = torch.tensor([1.0, 3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.9 * IDLE * 2.0, 1.1 * IDLE * 2.0, 0.0, 0.5 * eps])
    dyn = Dynamics("adam", 0.1, 0.01, 0.9, 38.0, c * (r + eps), None, floor=c * eps)  # median r: 2
    active = dyn.active_scale
    assert torch.isinf(active).tolist() == [False] * 7 + [True, False, True, True]
    assert torch.equal(active[~torch.isinf(active)], dyn.scale[~torch.isinf(active)])
    assert Dynamics("gd", 0.1, 0.1, 0.0, 2.0, None, None).active_scale is None


@pytest.mark.parametrize("examples", [20, 96])
def test_per_example_gradients_past_the_memory_budget_go_by_chunks_with_the_same_numbers(
    monkeypatch, examples
):
    """A network whose per-example gradients would pass ``PER_EXAMPLE_BYTES`` (a 25M-weight model: 3.2
    GB for 32 examples) gets them a chunk at a time, twice (the mean, then the distances): the noise,
    its error, the loss and the gradient equal the all-at-once ones (float64, 1e-12), and no call
    holds more than the budget's rows."""
    from descent.monitor import measure

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    held = measure.HeldBatch(
        model, [n for n, _ in model.named_parameters()], nn.CrossEntropyLoss(), X.double(), Y
    )
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    scale = torch.rand(theta.numel(), generator=torch.Generator().manual_seed(2), dtype=torch.float64) + 0.5
    whole = held.noise(theta, scale, examples, first=7)
    rows = 6
    monkeypatch.setattr(measure, "PER_EXAMPLE_BYTES", rows * theta.numel() * 8)
    sizes = []
    original = held.per_example_parts
    monkeypatch.setattr(held, "per_example_parts", lambda t, i: sizes.append(len(i)) or original(t, i))
    chunked = held.noise(theta, scale, examples, first=7)
    assert max(sizes) == rows and sum(sizes) == 2 * min(examples, len(Y))
    for field in ("trace", "trace_se", "loss"):
        assert getattr(chunked, field) == pytest.approx(getattr(whole, field), rel=1e-12)
    torch.testing.assert_close(chunked.gradient, whole.gradient, rtol=1e-12, atol=1e-15)
    assert chunked.examples == whole.examples
