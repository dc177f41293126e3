"""The optimizer read as physics against independent references: the edge the monitor compares the
sharpness with is the rule's own declared edge (descent.optim's ``edge`` on the exact Hessian, with the
optimizer's real state), and torch's optimizers read the same as descent's."""

from __future__ import annotations

import pytest
import torch

from descent.monitor.physics import read_dynamics
from descent.optim import TorchOptimizer
from descent.optim.torch_adapter import group_settings

torch.set_num_threads(1)

D = 4
HESSIAN = torch.tensor(
    [[3.0, 1.0, 0.0, 0.0], [1.0, 2.0, 0.5, 0.0], [0.0, 0.5, 1.0, 0.2], [0.0, 0.0, 0.2, 0.5]]
)
HESSIAN = HESSIAN.to(torch.float64)


def _stepped(optimizer_of, steps: int = 100):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64))
    optimizer = optimizer_of([w])
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * w @ HESSIAN @ w).backward()
        optimizer.step()
    return w, optimizer


def _sharpness(scale):
    h = HESSIAN if scale is None else HESSIAN / torch.sqrt(scale[:, None] * scale[None, :])
    return float(torch.linalg.eigvalsh(h)[-1])


RULES = {
    "gd": {"lr": 0.1},
    "momentum": {"lr": 0.1, "momentum": 0.8},
    "nesterov": {"lr": 0.1, "momentum": 0.6},
    "adam": {"lr": 0.01, "betas": (0.8, 0.99)},
    "amsgrad": {"lr": 0.01, "betas": (0.5, 0.9)},
    "rmsprop": {"lr": 0.01, "momentum": 0.5, "centered": True},
    "adagrad": {"lr": 0.1, "lr_decay": 0.05},
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_the_edge_is_the_rules_own_declaration(name):
    w, optimizer = _stepped(lambda p: TorchOptimizer(p, name, **RULES[name]))
    dynamics = read_dynamics(optimizer, [w])
    rule = optimizer.rule
    state = {k: v for k, v in optimizer.state[w].items()}
    declared = float(rule.edge(HESSIAN[None], state, group_settings(rule, optimizer.param_groups[0]).hp)[0])
    assert dynamics.edge_lr(_sharpness(dynamics.scale)) == pytest.approx(declared, rel=1e-9)
    # after 100 steps Adam's bias correction 1 - beta1^t, which the declaration omits, is 1 - 2e-10
    assert dynamics.edge * dynamics.lr == pytest.approx(dynamics.edge_constant)


TWINS = {
    "momentum": (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8),
        lambda p: TorchOptimizer(p, "momentum", lr=0.1, momentum=0.8),
    ),
    "nesterov": (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.6, nesterov=True),
        lambda p: TorchOptimizer(p, "nesterov", lr=0.1, momentum=0.6),
    ),
    "adam": (lambda p: torch.optim.Adam(p, lr=0.01), lambda p: TorchOptimizer(p, "adam", lr=0.01)),
    "amsgrad": (
        lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True),
        lambda p: TorchOptimizer(p, "amsgrad", lr=0.01),
    ),
    "rmsprop": (
        lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
        lambda p: TorchOptimizer(p, "rmsprop", lr=0.01, momentum=0.5, centered=True),
    ),
    "adagrad": (
        lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05),
        lambda p: TorchOptimizer(p, "adagrad", lr=0.1, lr_decay=0.05),
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_torch_and_descent_optimizers_read_the_same(name):
    torch_w, torch_opt = _stepped(TWINS[name][0])
    ours_w, ours_opt = _stepped(TWINS[name][1])
    a, b = read_dynamics(torch_opt, [torch_w]), read_dynamics(ours_opt, [ours_w])
    assert (a.rule, a.lr, a.eta, a.beta, a.edge_constant) == pytest.approx(
        (b.rule, b.lr, b.eta, b.beta, b.edge_constant)
    )
    for x, y in ((a.scale, b.scale), (a.velocity, b.velocity)):
        assert (x is None) == (y is None)
        if x is not None:
            assert torch.allclose(x, y, rtol=1e-9, atol=1e-15)
    if a.velocity is not None and name != "nesterov":  # u is the last step's displacement
        before = torch_w.detach().clone()
        torch_opt.zero_grad()
        (0.5 * torch_w @ HESSIAN @ torch_w).backward()
        torch_opt.step()
        after = read_dynamics(torch_opt, [torch_w])
        assert torch.allclose(after.velocity, torch_w.detach() - before, rtol=1e-9, atol=1e-15)


def test_physical_terms_of_the_heavy_ball():
    w, optimizer = _stepped(lambda p: torch.optim.SGD(p, lr=0.04, momentum=0.75))
    dynamics = read_dynamics(optimizer, [w])
    assert dynamics.time_step == pytest.approx(0.2)  # sqrt(lr): mass 1
    assert dynamics.friction == pytest.approx(0.25) and dynamics.effective_lr == pytest.approx(0.16)
    assert dynamics.edge == pytest.approx(2 * 1.75 / 0.04)


HD = {
    "hd-sgd": {"lr": 0.05, "hyper_lr": 0.01},
    "hd-momentum": {"lr": 0.02, "momentum": 0.7, "hyper_lr": 1e-3},
    "hd-adam": {"lr": 0.01, "betas": (0.8, 0.99), "hyper_lr": 1e-4},
}


@pytest.mark.parametrize("name", sorted(HD))
def test_a_hypergradient_rule_is_read_at_the_rate_it_learned(name):
    """The base rule's physics at the learned rate (not the starting one), and the edge is the rule's
    own declaration on the exact Hessian with its real state."""
    w, optimizer = _stepped(lambda p: TorchOptimizer(p, name, **HD[name]))
    dynamics = read_dynamics(optimizer, [w])
    state = {k: v for k, v in optimizer.state[w].items()}
    rate = float(state["rate"].reshape(-1)[0])
    assert rate != pytest.approx(HD[name]["lr"]) and dynamics.lr == rate
    rule = optimizer.rule
    declared = float(rule.edge(HESSIAN[None], state, group_settings(rule, optimizer.param_groups[0]).hp)[0])
    assert dynamics.edge_lr(_sharpness(dynamics.scale)) == pytest.approx(declared, rel=1e-9)
    if name != "hd-sgd":  # inertial: a velocity from its buffers, -r b or -r m/P
        assert dynamics.velocity is not None and bool(torch.isfinite(dynamics.velocity).all())
