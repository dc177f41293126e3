"""`TorchOptimizer`: any descent rule as a torch.optim.Optimizer. Training a small nn.Linear regression
(a weight matrix and a bias, float64) must match torch.optim step for step."""

from __future__ import annotations

import pytest
import torch

from descent._errors import DescentError
from descent.optim import Step, TorchOptimizer

torch.set_num_threads(1)

DTYPE = torch.float64
RTOL = 1e-12

# descent rule and hyper-parameters -> the torch.optim optimizer that must give the same iterates
CASES = {
    "gd": ({"lr": 0.05}, lambda p: torch.optim.SGD(p, lr=0.05, foreach=False)),
    "momentum": (
        {"lr": 0.02, "momentum": 0.9},
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, foreach=False),
    ),
    "nesterov": (
        {"lr": 0.02, "momentum": 0.8},
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True, foreach=False),
    ),
    "adagrad": ({"lr": 0.1}, lambda p: torch.optim.Adagrad(p, lr=0.1, foreach=False)),
    "rmsprop": (
        {"lr": 0.01, "momentum": 0.5, "centered": True},
        lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True, foreach=False),
    ),
    "adam": (
        {"lr": 0.05, "beta1": 0.8},
        lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.999), foreach=False),
    ),
    "adamw": (
        {"lr": 0.05, "weight_decay": 0.1},
        lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1, foreach=False),
    ),
    "amsgrad": ({"lr": 0.05}, lambda p: torch.optim.Adam(p, lr=0.05, amsgrad=True, foreach=False)),
}


def regression_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(64, 3, generator=generator, dtype=DTYPE)
    weight = torch.tensor([[1.5, -2.0, 0.5]], dtype=DTYPE)
    targets = inputs @ weight.T + 0.7 + 0.1 * torch.randn(64, 1, generator=generator, dtype=DTYPE)
    return inputs, targets


def twin_models() -> tuple[torch.nn.Linear, torch.nn.Linear]:
    torch.manual_seed(0)
    first = torch.nn.Linear(3, 1, dtype=DTYPE)
    second = torch.nn.Linear(3, 1, dtype=DTYPE)
    second.load_state_dict(first.state_dict())
    return first, second


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return (ours - ref).abs().max().item() / ref.abs().max().item()


@pytest.mark.parametrize("name", list(CASES))
def test_trains_linear_regression_like_torch(name: str) -> None:
    hyper, make_reference = CASES[name]
    inputs, targets = regression_problem()
    ours_model, ref_model = twin_models()
    ours = TorchOptimizer(ours_model.parameters(), name, **hyper)
    reference = make_reference(ref_model.parameters())
    first_loss = None
    for k in range(8):
        for model, opt in ((ours_model, ours), (ref_model, reference)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            opt.step()
            first_loss = first_loss if first_loss is not None else float(loss.detach())
        for (label, p), q in zip(ours_model.named_parameters(), ref_model.parameters()):
            assert p.shape == q.shape
            err = rel_err(p.detach(), q.detach())
            assert err <= RTOL, f"{name} step {k}: {label} differs from torch by {err:.2e}"
    with torch.no_grad():
        final = float(torch.nn.functional.mse_loss(ours_model(inputs), targets))
    assert final < first_loss  # it does train


def test_closure_returns_the_loss_and_steps_like_torch() -> None:
    inputs, targets = regression_problem(1)
    ours_model, ref_model = twin_models()
    ours = TorchOptimizer(ours_model.parameters(), "adam", lr=0.01)
    reference = torch.optim.Adam(ref_model.parameters(), lr=0.01, foreach=False)

    def closure_for(model, opt):
        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            return loss

        return closure

    for _ in range(4):
        loss_ours = ours.step(closure_for(ours_model, ours))
        loss_ref = reference.step(closure_for(ref_model, reference))
        assert float(loss_ours.detach()) == pytest.approx(float(loss_ref.detach()), rel=RTOL)
    for p, q in zip(ours_model.parameters(), ref_model.parameters()):
        assert rel_err(p.detach(), q.detach()) <= RTOL
    assert ours.step() is None


def test_schedule_matches_torch_step_lr() -> None:
    """The schedule's step index advances once per optimizer step, like torch's StepLR per scheduler step."""
    inputs, targets = regression_problem(2)
    gd_model, gd_ref_model = twin_models()
    gd = TorchOptimizer(gd_model.parameters(), "gd", lr=0.1, schedule=Step(every=3, gamma=0.5))
    gd_ref = torch.optim.SGD(gd_ref_model.parameters(), lr=0.1, foreach=False)
    scheduler = torch.optim.lr_scheduler.StepLR(gd_ref, step_size=3, gamma=0.5)
    for _ in range(10):
        for model, opt in ((gd_model, gd), (gd_ref_model, gd_ref)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            opt.step()
        scheduler.step()
    for p, q in zip(gd_model.parameters(), gd_ref_model.parameters()):
        assert rel_err(p.detach(), q.detach()) <= RTOL


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


def test_noise_is_reproducible_with_a_generator() -> None:
    def run(seed: int) -> torch.Tensor:
        w = torch.nn.Parameter(torch.zeros(4, dtype=DTYPE))
        opt = TorchOptimizer(
            [w], "langevin", lr=0.1, temperature=0.5, generator=torch.Generator().manual_seed(seed)
        )
        for _ in range(3):
            opt.zero_grad()
            (w**2).sum().backward()
            opt.step()
        return w.detach().clone()

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_bad_options_fail_at_construction() -> None:
    model = torch.nn.Linear(2, 1, dtype=DTYPE)
    with pytest.raises(DescentError, match="adam.lr"):
        TorchOptimizer(model.parameters(), "adam", lr=-1.0)
    with pytest.raises(DescentError, match="optimizer"):
        TorchOptimizer(model.parameters(), "lbfgs")
