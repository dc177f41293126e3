"""`TorchOptimizer`: any descent rule as a torch.optim.Optimizer, at constant learning rate.

torch.optim's plain for-loop implementation (``foreach=False``) is the independent reference: the same
options dict (torch's names) goes to ours and to torch's class, and a small float64 network trains to
the same parameters. Also: group values are read at every step (set by hand, per group), bad values
raise naming the parameter, the engine's options (seed, gradient noise, clipping) and the doctest.
Schedulers and save/load are in ``test_adapter_schedulers.py``.
"""

from __future__ import annotations

import copy
import doctest
import math

import pytest
import torch

import descent.optim.torch_adapter as torch_adapter
from descent._errors import DescentError
from descent.optim import TorchOptimizer
from descent.random import normal
from tests.optim.adapter_cases import CASES, DTYPE, RTOL, STEPS, data, loss_of, network, rel_err, train_step

torch.set_num_threads(1)


def twins() -> tuple[torch.nn.Module, torch.nn.Module]:
    first = network()
    return first, copy.deepcopy(first)


def assert_same_params(ours: torch.nn.Module, ref: torch.nn.Module, context: str, rtol: float = RTOL) -> None:
    for (label, p), q in zip(ours.named_parameters(), ref.parameters()):
        err = rel_err(p.detach(), q.detach())
        assert err <= rtol, f"{context}: {label} differs by {err:.2e} (relative)"


@pytest.mark.parametrize("case", list(CASES))
def test_trains_a_network_like_torch(case: str) -> None:
    """The same options dict to ours and to torch's class: the same parameters at every step."""
    name, options, torch_class, torch_only = CASES[case]
    inputs, targets = data()
    ours_model, ref_model = twins()
    ours = TorchOptimizer(ours_model.parameters(), name, **options)
    reference = torch_class(ref_model.parameters(), **options, **torch_only, foreach=False)
    losses = []
    for k in range(STEPS):
        losses.append(train_step(ours_model, ours, inputs, targets))
        train_step(ref_model, reference, inputs, targets)
        assert_same_params(ours_model, ref_model, f"{case} step {k}")
    assert losses[-1] < 0.5 * losses[0]  # it does train
    assert int(ours.state[ours_model[0].weight]["step"]) == STEPS


def test_param_groups_carry_torch_names_and_the_rule_defaults() -> None:
    model = network()
    adam = TorchOptimizer(model.parameters(), "adam", lr=0.01)
    group = adam.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (0.01, (0.9, 0.999), 1e-8)
    assert group["weight_decay"] == 0.0
    assert (group["seed"], group["grad_noise"], group["clip_norm"]) == (0, 0.0, None)
    assert "beta1" not in group
    rmsprop = TorchOptimizer(model.parameters(), "rmsprop").param_groups[0]
    reference = torch.optim.RMSprop(model.parameters()).param_groups[0]
    for key in ("lr", "alpha", "eps", "momentum", "centered", "weight_decay"):
        assert rmsprop[key] == reference[key], key
    assert TorchOptimizer(model.parameters(), "adamw").param_groups[0]["weight_decay"] == 1e-2  # torch's
    assert TorchOptimizer(model.parameters(), "langevin").param_groups[0]["temperature"] == 0.1
    assert "momentum" not in TorchOptimizer(model.parameters(), "gd").defaults


def test_setting_group_lr_by_hand_changes_the_step() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=DTYPE))
    opt = TorchOptimizer([w], "gd", lr=0.1)
    for lr in (0.1, 0.25, 0.0625):
        opt.param_groups[0]["lr"] = lr
        before = w.detach().clone()
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
        assert torch.equal(w.detach(), before - lr * 2 * before)

    # and under Adam, hand-set lr and betas follow torch step for step
    inputs, targets = data(1)
    ours_model, ref_model = twins()
    ours = TorchOptimizer(ours_model.parameters(), "adam", lr=0.01)
    reference = torch.optim.Adam(ref_model.parameters(), lr=0.01, foreach=False)
    for k in range(30):
        for opt in (ours, reference):
            opt.param_groups[0]["lr"] = 0.01 / (1 + k)
            opt.param_groups[0]["betas"] = (0.9 - 0.01 * k, 0.999)
        train_step(ours_model, ours, inputs, targets)
        train_step(ref_model, reference, inputs, targets)
        assert_same_params(ours_model, ref_model, f"hand-set adam step {k}")


GROUP_DEFAULTS = {"nesterov": {"lr": 0.01, "momentum": 0.9}, "adam": {"lr": 0.01}, "rmsprop": {"lr": 0.002}}


@pytest.mark.parametrize(
    ("name", "torch_class", "torch_only", "first", "second"),
    [
        (
            "nesterov",
            torch.optim.SGD,
            {"nesterov": True},
            {"lr": 0.05},
            {"momentum": 0.5, "weight_decay": 0.1},
        ),
        ("adam", torch.optim.Adam, {}, {"betas": (0.5, 0.9)}, {"lr": 0.002, "eps": 1e-4}),
        (
            "rmsprop",
            torch.optim.RMSprop,
            {},
            {"centered": True, "momentum": 0.3},
            {"alpha": 0.95, "eps": 1e-6},
        ),
    ],
)
def test_per_group_settings_match_torch(name, torch_class, torch_only, first, second) -> None:
    """[{'params': layer 1, ...}, {'params': layer 2, ...}]: each group steps with its own values."""
    inputs, targets = data(2)
    ours_model, ref_model = twins()
    defaults = GROUP_DEFAULTS[name]

    def groups(model):
        return [{"params": model[0].parameters(), **first}, {"params": model[2].parameters(), **second}]

    ours = TorchOptimizer(groups(ours_model), name, **defaults)
    reference = torch_class(groups(ref_model), **defaults, **torch_only, foreach=False)
    for key, value in second.items():
        assert ours.param_groups[1][key] == value
    for key in first:
        if key not in second:
            assert ours.param_groups[1][key] == ours.defaults[key]
    for k in range(50):
        train_step(ours_model, ours, inputs, targets)
        train_step(ref_model, reference, inputs, targets)
        assert_same_params(ours_model, ref_model, f"{name} groups step {k}")


def test_add_param_group_takes_its_own_values() -> None:
    frozen, head = network(), torch.nn.Linear(1, 1, dtype=DTYPE)
    opt = TorchOptimizer(frozen.parameters(), "momentum", lr=0.1)
    opt.add_param_group({"params": head.parameters(), "lr": 0.5, "momentum": 0.0})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.0
    before = head.weight.detach().clone()
    head(torch.ones(1, 1, dtype=DTYPE)).sum().backward()
    opt.step()
    assert torch.equal(head.weight.detach(), before - 0.5 * torch.ones_like(before))


BAD = [
    ("adam", {"lr": -1.0}, "adam.lr"),
    ("adam", {"betas": (0.9, 1.5)}, "adam.beta2"),
    ("adam", {"betas": (-0.1, 0.999)}, "adam.beta1"),
    ("adam", {"betas": 0.9}, "adam.betas"),
    ("adam", {"eps": -1e-8}, "adam.eps"),
    ("adam", {"weight_decay": -0.1}, "adam.weight_decay"),
    ("adamw", {"weight_decay": math.nan}, "adamw.weight_decay"),
    ("momentum", {"momentum": 1.0}, "momentum.momentum"),
    ("rmsprop", {"centered": 2}, "rmsprop.centered"),
    ("rmsprop", {"alpha": 1.0}, "rmsprop.alpha"),
    ("adagrad", {"lr_decay": -1.0}, "adagrad.lr_decay"),
    ("langevin", {"temperature": -1.0}, "langevin.temperature"),
    ("adam", {"momentum": 0.9}, "adam option='momentum'"),  # not an Adam setting: unknown, not ignored
    ("gd", {"nesterov": True}, "gd option='nesterov'"),
    ("gd", {"schedule": "step:10:0.5"}, "schedule"),
    ("gd", {"seed": -1}, "gd.seed"),
    ("gd", {"seed": 1.5}, "gd.seed"),
    ("gd", {"clip_norm": 0.0}, "clip_norm"),
    ("gd", {"grad_noise": -1.0}, "grad_noise"),
    ("lbfgs", {}, "optimizer"),
]


@pytest.mark.parametrize(
    ("name", "options", "label"), BAD, ids=[f"{n}-{next(iter(o), '')}" for n, o, _ in BAD]
)
def test_bad_values_raise_naming_the_parameter(name: str, options: dict, label: str) -> None:
    model = network()
    with pytest.raises(DescentError, match=f"^invalid {label}") as error:
        TorchOptimizer(model.parameters(), name, **options)
    assert "\n" not in str(error.value)  # the engine's one-line message
    if name != "lbfgs" and "schedule" not in options:  # the same value in a param group
        with pytest.raises(DescentError, match=f"^invalid {label}"):
            TorchOptimizer(
                [{"params": model[0].parameters()}, {"params": model[2].parameters(), **options}], name
            )


def test_bad_value_set_in_a_group_fails_at_step_before_anything_moves() -> None:
    model = network()
    opt = TorchOptimizer(
        [{"params": model[0].parameters()}, {"params": model[2].parameters()}], "momentum", lr=0.1
    )
    with pytest.raises(DescentError, match="momentum.momentum"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2, dtype=DTYPE))], "momentum": -0.5})
    assert len(opt.param_groups) == 2
    loss_of(model, *data()).backward()
    before = [p.detach().clone() for p in model.parameters()]
    opt.param_groups[1]["lr"] = -0.1
    with pytest.raises(DescentError, match="momentum.lr"):
        opt.step()
    assert all(torch.equal(p.detach(), q) for p, q in zip(model.parameters(), before))
    assert not opt.state


def test_closure_returns_the_loss_and_steps_like_torch() -> None:
    inputs, targets = data(3)
    ours_model, ref_model = twins()
    ours = TorchOptimizer(ours_model.parameters(), "adam", lr=0.01)
    reference = torch.optim.Adam(ref_model.parameters(), lr=0.01, foreach=False)

    def closure_for(model, opt):
        def closure():
            opt.zero_grad()
            loss = loss_of(model, inputs, targets)
            loss.backward()
            return loss

        return closure

    for _ in range(5):
        loss_ours = ours.step(closure_for(ours_model, ours))
        loss_ref = reference.step(closure_for(ref_model, reference))
        assert float(loss_ours.detach()) == pytest.approx(float(loss_ref.detach()), rel=RTOL)
    assert_same_params(ours_model, ref_model, "closure")
    assert ours.step() is None


def test_parameters_without_gradient_are_left_alone() -> None:
    used = torch.nn.Parameter(torch.ones(3, dtype=DTYPE))
    unused = torch.nn.Parameter(torch.full((2,), 5.0, dtype=DTYPE))
    opt = TorchOptimizer([used, unused], "adam", lr=0.1)
    (used**2).sum().backward()
    opt.step()
    assert torch.equal(unused.detach(), torch.full((2,), 5.0, dtype=DTYPE))
    assert unused not in opt.state
    first_step = 1.0 - 0.1 * 2.0 / (2.0 + 1e-8)  # Adam's first step is lr*g/(|g| + eps), g = 2
    torch.testing.assert_close(used.detach(), torch.full((3,), first_step, dtype=DTYPE), rtol=1e-15, atol=0)


def test_state_is_the_rules_state_flattened() -> None:
    model = network()
    opt = TorchOptimizer(model.parameters(), "adam")
    loss_of(model, *data()).backward()
    opt.step()
    state = opt.state[model[0].weight]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert state["step"].dtype == torch.int64 and int(state["step"]) == 1
    assert state["exp_avg"].shape == (1, model[0].weight.numel())


# --- the engine's options: seed, gradient noise, clipping ------------------------------------
def test_langevin_noise_is_the_counter_stream_of_each_parameter() -> None:
    """w <- w - lr*g + sqrt(2*lr*T)*z with z = normal(seed, 'langevin', particle id, step): the particle
    id is the parameter's index in the optimizer's list, the step its own step count (0 first)."""
    first = torch.nn.Parameter(torch.zeros(3, dtype=DTYPE))
    second = torch.nn.Parameter(torch.ones(2, 2, dtype=DTYPE))
    lr, temperature, seed = 0.1, 0.5, 7
    opt = TorchOptimizer(
        [{"params": [first]}, {"params": [second], "temperature": 2.0}],
        "langevin",
        lr=lr,
        temperature=temperature,
        seed=seed,
    )
    for step in range(3):
        expected = []
        for particle, (p, t) in enumerate(((first, temperature), (second, 2.0))):
            z = normal(seed, "langevin", torch.tensor([particle]), step, p.numel()).reshape(p.shape)
            expected.append(p.detach() - lr * 2 * p.detach() + math.sqrt(2 * lr * t) * z)
        opt.zero_grad()
        ((first**2).sum() + (second**2).sum()).backward()
        opt.step()
        for p, e in zip((first, second), expected):
            torch.testing.assert_close(p.detach(), e, rtol=1e-15, atol=1e-15)


def test_seed_makes_a_run_reproducible() -> None:
    def run(seed: int) -> torch.Tensor:
        w = torch.nn.Parameter(torch.zeros(4, dtype=DTYPE))
        opt = TorchOptimizer([w], "langevin", lr=0.1, temperature=0.5, seed=seed)
        for _ in range(3):
            opt.zero_grad()
            (w**2).sum().backward()
            opt.step()
        return w.detach().clone()

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_gradient_noise_then_clipping_then_weight_decay() -> None:
    """g <- g + sigma*z (stream 'grad_noise'), then g <- g*min(1, c/|g|) per tensor, then g + wd*w."""
    w = torch.nn.Parameter(torch.tensor([3.0, -4.0, 1.0], dtype=DTYPE))
    sigma, clip, wd, lr, seed = 0.3, 0.5, 0.2, 0.1, 11
    opt = TorchOptimizer([w], "gd", lr=lr, grad_noise=sigma, clip_norm=clip, weight_decay=wd, seed=seed)
    for step in range(3):
        x = w.detach().clone()
        g = 2 * x + sigma * normal(seed, "grad_noise", torch.tensor([0]), step, 3)[0]
        g = g * min(1.0, clip / g.norm().item())
        expected = x - lr * (g + wd * x)
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
        torch.testing.assert_close(w.detach(), expected, rtol=1e-15, atol=1e-15)


def test_clip_norm_equals_clipping_each_tensor_before_torch() -> None:
    inputs, targets = data(4)
    ours_model, ref_model = twins()
    ours = TorchOptimizer(ours_model.parameters(), "nesterov", lr=0.05, momentum=0.9, clip_norm=0.05)
    reference = torch.optim.SGD(ref_model.parameters(), lr=0.05, momentum=0.9, nesterov=True, foreach=False)
    clipped = 0
    for k in range(40):
        train_step(ours_model, ours, inputs, targets)
        reference.zero_grad()
        loss_of(ref_model, inputs, targets).backward()
        for q in ref_model.parameters():  # g*min(1, c/|g|) per tensor (torch's clip_grad_norm_ adds 1e-6)
            norm = q.grad.norm().item()
            clipped += int(norm > 0.05)
            q.grad.mul_(min(1.0, 0.05 / norm))
        reference.step()
        assert_same_params(ours_model, ref_model, f"clipped step {k}")
    assert clipped > 0


def test_deepcopy_keeps_the_rule_and_state() -> None:
    inputs, targets = data(5)
    model = network()
    opt = TorchOptimizer(model.parameters(), "rmsprop", lr=0.01, centered=True)
    train_step(model, opt, inputs, targets)
    model_copy = copy.deepcopy(model)
    opt_copy = TorchOptimizer(model_copy.parameters(), "rmsprop")
    opt_copy.load_state_dict(copy.deepcopy(opt).state_dict())
    assert copy.deepcopy(opt).name == "rmsprop"
    for _ in range(5):
        train_step(model, opt, inputs, targets)
        train_step(model_copy, opt_copy, inputs, targets)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), model_copy.parameters()))


def test_docstring_example_runs() -> None:
    result = doctest.testmod(torch_adapter, raise_on_error=False, verbose=False)
    assert result.attempted >= 10 and result.failed == 0
