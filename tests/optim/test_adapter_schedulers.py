"""`TorchOptimizer` under torch's learning-rate schedulers, and save/load in the middle of a run.

Every rule with a torch counterpart trains a small float64 network under ``StepLR``,
``CosineAnnealingLR``, ``OneCycleLR`` (cycling momentum / beta1 where the rule has one) and
``ReduceLROnPlateau`` like torch.optim's for-loop implementation under the same scheduler. The seeds'
``momentum`` form is the exception: under a schedule it follows the velocity recurrence
``v <- beta_k*v - lr_k*g, w <- w + v`` (written out below as the reference) and parts from torch's buffer
form by ``mu^j (lr2 - lr1) b_k`` after a change (REFERENCE.md, "Optimizer conventions").
"""

from __future__ import annotations

import copy
import io

import pytest
import torch

from descent.optim import TorchOptimizer
from tests.optim.adapter_cases import CASES, DTYPE, RTOL, STEPS, data, loss_of, network, rel_err, train_step

torch.set_num_threads(1)

SCHEDULERS = ("step", "cosine", "one-cycle", "plateau")

# case -> (our rule, options under torch's names, torch class, torch-only options)
# the seeds' momentum form departs from torch's under a schedule: tested on its own below
SCHEDULED = {name: case for name, case in CASES.items() if not name.startswith("momentum")}


def cycles_momentum(opt: torch.optim.Optimizer) -> bool:
    return "momentum" in opt.defaults or "betas" in opt.defaults


def make_scheduler(kind: str, opt: torch.optim.Optimizer, cycle_momentum: bool, steps: int = STEPS):
    """The scheduler ``kind`` on ``opt``; ``cycle_momentum`` only for OneCycleLR."""
    lr = opt.defaults["lr"]
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=25, gamma=0.5)
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=0.01 * lr)
    if kind == "one-cycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=steps, cycle_momentum=cycle_momentum
        )
    # a 10 % relative threshold counts slow progress as a plateau, so the lr does drop
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3, threshold=0.1)


def advance(scheduler, loss: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(loss)
    else:
        scheduler.step()


def group_values(opt: torch.optim.Optimizer, keys: tuple[str, ...] = ("lr", "momentum", "betas")) -> tuple:
    """The first group's values at ``keys`` (None where it has no such key)."""
    group = opt.param_groups[0]
    return tuple(group.get(key) for key in keys)


@pytest.mark.parametrize("kind", SCHEDULERS)
@pytest.mark.parametrize("case", list(SCHEDULED))
def test_rule_under_scheduler_matches_torch(case: str, kind: str) -> None:
    name, options, torch_class, torch_only = SCHEDULED[case]
    inputs, targets = data()
    ours_model = network()
    ref_model = copy.deepcopy(ours_model)
    ours = TorchOptimizer(ours_model.parameters(), name, **options)
    reference = torch_class(ref_model.parameters(), **options, **torch_only, foreach=False)
    cycle = cycles_momentum(ours)  # torch's SGD always has a momentum key: follow our rule
    ours_scheduler = make_scheduler(kind, ours, cycle)
    ref_scheduler = make_scheduler(kind, reference, cycle)
    lrs, momenta = set(), set()
    for k in range(STEPS):
        # compare the keys our rule has (torch's SGD always has a momentum key)
        keys = tuple(key for key in ("lr", "momentum", "betas") if key in ours.defaults)
        assert group_values(ours, keys) == group_values(reference, keys), f"step {k}: the schedulers disagree"
        lr, momentum, betas = group_values(ours)
        lrs.add(lr)
        momenta.add(momentum if betas is None else betas[0])
        loss = train_step(ours_model, ours, inputs, targets)
        ref_loss = train_step(ref_model, reference, inputs, targets)
        advance(ours_scheduler, loss)
        advance(ref_scheduler, ref_loss)
        for (label, p), q in zip(ours_model.named_parameters(), ref_model.parameters()):
            err = rel_err(p.detach(), q.detach())
            assert err <= RTOL, f"{case} under {kind}, step {k}: {label} differs by {err:.2e} (relative)"
    assert len(lrs) >= 3, "the scheduler must really change the learning rate"
    if kind == "one-cycle" and cycle:
        assert len(momenta) > STEPS // 2, "OneCycleLR must cycle the momentum"


def test_one_cycle_needs_cycle_momentum_false_without_momentum() -> None:
    """As with torch's Adagrad: a rule with neither momentum nor betas cannot have its momentum cycled."""
    for name in ("gd", "adagrad", "langevin"):
        opt = TorchOptimizer(network().parameters(), name)
        with pytest.raises(ValueError, match="momentum"):
            torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
        torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10, cycle_momentum=False)


# --- the seeds' momentum form ----------------------------------------------------------------
def test_momentum_equals_torch_sgd_at_constant_lr() -> None:
    inputs, targets = data(1)
    ours_model = network()
    ref_model = copy.deepcopy(ours_model)
    ours = TorchOptimizer(ours_model.parameters(), "momentum", lr=0.02, momentum=0.9)
    reference = torch.optim.SGD(ref_model.parameters(), lr=0.02, momentum=0.9, foreach=False)
    for k in range(STEPS):
        train_step(ours_model, ours, inputs, targets)
        train_step(ref_model, reference, inputs, targets)
        for p, q in zip(ours_model.parameters(), ref_model.parameters()):
            assert rel_err(p.detach(), q.detach()) <= RTOL, f"step {k}"
            # the velocity is -lr times torch's buffer
            v, b = ours.state[p]["velocity"], reference.state[q]["momentum_buffer"]
            assert rel_err(v.reshape(b.shape), -0.02 * b) <= RTOL


@pytest.mark.parametrize("kind", SCHEDULERS)
def test_momentum_under_scheduler_follows_the_velocity_recurrence(kind: str) -> None:
    """Reference: v <- beta_k*v - lr_k*g; w <- w + v, by hand. Its lr_k and beta_k come from the same
    scheduler on a torch SGD that holds only the schedule (it never steps)."""
    lr, mu = 0.02, 0.9
    inputs, targets = data(2)
    ours_model = network()
    ref_model = copy.deepcopy(ours_model)
    ours = TorchOptimizer(ours_model.parameters(), "momentum", lr=lr, momentum=mu)
    holder = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1, dtype=DTYPE))], lr=lr, momentum=mu)
    ours_scheduler = make_scheduler(kind, ours, True)
    ref_scheduler = make_scheduler(kind, holder, True)
    velocity = [torch.zeros_like(w) for w in ref_model.parameters()]
    lrs = set()
    for k in range(STEPS):
        lr_k, beta_k = holder.param_groups[0]["lr"], holder.param_groups[0]["momentum"]
        assert group_values(ours)[:2] == (lr_k, beta_k)
        lrs.add(lr_k)
        loss = train_step(ours_model, ours, inputs, targets)
        holder.step()  # nothing to step: keeps the scheduler's order check quiet

        ref_model.zero_grad()
        ref_loss = loss_of(ref_model, inputs, targets)
        ref_loss.backward()
        with torch.no_grad():
            for w, v in zip(ref_model.parameters(), velocity):
                v.mul_(beta_k).sub_(lr_k * w.grad)
                w.add_(v)
        advance(ours_scheduler, loss)
        advance(ref_scheduler, float(ref_loss.detach()))
        for (label, p), q in zip(ours_model.named_parameters(), ref_model.parameters()):
            err = rel_err(p.detach(), q.detach())
            assert err <= RTOL, f"momentum under {kind}, step {k}: {label} differs by {err:.2e}"
    assert len(lrs) >= 3


@pytest.mark.parametrize("gamma", [0.5, 0.25])
def test_momentum_departs_from_torch_after_an_lr_change_as_predicted(gamma: float) -> None:
    """Both take each step from torch's parameters (copied into ours), so both see the same gradient.
    Before StepLR's change ours equals torch (v = -lr*b); the j-th step after lr1 -> lr2 differs by
    ours - torch = mu^j (lr2 - lr1) b_k, b_k being torch's buffer just before the change."""
    lr1, mu, change = 0.02, 0.8, 25
    lr2 = lr1 * gamma  # a power of two: exact
    inputs, targets = data(3)
    ours_model = network()
    ref_model = copy.deepcopy(ours_model)
    ours = TorchOptimizer(ours_model.parameters(), "momentum", lr=lr1, momentum=mu)
    reference = torch.optim.SGD(ref_model.parameters(), lr=lr1, momentum=mu, foreach=False)
    schedulers = [
        torch.optim.lr_scheduler.StepLR(opt, step_size=change, gamma=gamma) for opt in (ours, reference)
    ]
    buffers_at_change = None
    for k in range(change + 12):
        if k == change:
            assert ours.param_groups[0]["lr"] == reference.param_groups[0]["lr"] == lr2
            buffers_at_change = [
                reference.state[q]["momentum_buffer"].clone() for q in ref_model.parameters()
            ]
        with torch.no_grad():
            for p, q in zip(ours_model.parameters(), ref_model.parameters()):
                p.copy_(q)
        before = [q.detach().clone() for q in ref_model.parameters()]
        train_step(ours_model, ours, inputs, targets)
        train_step(ref_model, reference, inputs, targets)
        for scheduler in schedulers:
            scheduler.step()
        for i, (p, q) in enumerate(zip(ours_model.parameters(), ref_model.parameters())):
            ours_update, torch_update = p.detach() - before[i], q.detach() - before[i]
            if k < change:
                assert rel_err(ours_update, torch_update) <= RTOL, f"step {k}"
            else:
                j = k - change + 1
                predicted = mu**j * (lr2 - lr1) * buffers_at_change[i]
                assert rel_err(ours_update, torch_update) > 1e-3  # the forms really part ways
                err = rel_err(ours_update - torch_update, predicted)
                assert err <= RTOL, f"step {k}: difference off the prediction by {err:.2e}"


# --- ReduceLROnPlateau -----------------------------------------------------------------------
def test_reduce_lr_on_plateau_lowers_group_lr_and_the_step_follows() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=DTYPE))
    opt = TorchOptimizer([w], "gd", lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    expected_lr = [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]  # the metric never improves after the first
    for lr in expected_lr:
        assert opt.param_groups[0]["lr"] == lr
        before = w.detach().clone()
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
        assert torch.equal(w.detach(), before - lr * 2 * before)
        scheduler.step(1.0)


# --- save / load in the middle of a run --------------------------------------------------------
RESUME_CASES = {
    "adam": ("adam", {"lr": 0.01, "weight_decay": 0.01}, "step"),
    "adamw": ("adamw", {"lr": 0.01}, "plateau"),
    "momentum": ("momentum", {"lr": 0.02, "momentum": 0.9}, "one-cycle"),
    "rmsprop-centered": ("rmsprop", {"lr": 0.002, "momentum": 0.5, "centered": True}, "cosine"),
    "langevin": ("langevin", {"lr": 0.01, "temperature": 1e-3, "seed": 5}, "step"),
    "gd-noise-clip": ("gd", {"lr": 0.05, "grad_noise": 0.1, "clip_norm": 0.5, "seed": 9}, "cosine"),
}


def saved(obj: dict) -> dict:
    """Through torch.save / torch.load (the default, weights-only loader), as a checkpoint goes."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer)


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_save_load_mid_run_continues_bit_for_bit(case: str) -> None:
    """30 steps, checkpoint (model, optimizer, scheduler), then into a fresh model + fresh optimizer +
    fresh scheduler for 30 more: the same bits as 60 steps without a break, step count included."""
    name, options, kind = RESUME_CASES[case]
    inputs, targets = data(4)
    total, half = 60, 30

    def start(weights: int, opts: dict):
        model = network(weights)
        opt = TorchOptimizer(model.parameters(), name, **opts)
        return model, opt, make_scheduler(kind, opt, cycles_momentum(opt), steps=total)

    def run(model, opt, scheduler, steps: int) -> None:
        for _ in range(steps):
            advance(scheduler, train_step(model, opt, inputs, targets))

    model, opt, scheduler = start(0, options)  # uninterrupted
    run(model, opt, scheduler, total)

    first, first_opt, first_scheduler = start(0, options)  # interrupted
    run(first, first_opt, first_scheduler, half)
    to_save = {
        "model": first.state_dict(),
        "opt": first_opt.state_dict(),
        "scheduler": first_scheduler.state_dict(),
    }
    checkpoint = saved(to_save)
    assert all(int(s["step"]) == half for s in checkpoint["opt"]["state"].values())
    # other weights, and seed 0 where the run has a seed: the checkpoint's must win
    resumed, resumed_opt, resumed_scheduler = start(
        123, {**options, "seed": 0} if "seed" in options else options
    )
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["opt"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    run(resumed, resumed_opt, resumed_scheduler, total - half)

    for (label, p), q in zip(model.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), f"{case}: {label} differs after resuming"
        ours, theirs = opt.state[p], resumed_opt.state[q]
        assert int(theirs["step"]) == total and theirs["step"].dtype == torch.int64
        assert all(torch.equal(ours[key], theirs[key]) for key in ours), f"{case}: {label} state"
    assert opt.param_groups[0]["lr"] == resumed_opt.param_groups[0]["lr"]
    if "seed" in options:
        assert resumed_opt.param_groups[0]["seed"] == options["seed"]  # the checkpoint's seed, not 0


@pytest.mark.parametrize("name", ["hd-sgd", "hd-momentum", "hd-adam"])
def test_a_learned_rate_refuses_a_scheduler_in_one_line_and_says_the_rate_in_use(name: str) -> None:
    """A rule that learns its rate reads lr once, as its start: `rate()` is the learned rate (the
    state's), one per param group; a scheduler's change of lr after the first step is refused before
    any parameter moves, not silently ignored."""
    from descent._errors import DescentError

    model = network()
    x, y = data()
    opt = TorchOptimizer(model.parameters(), name, lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.1)
    for _ in range(3):
        train_step(model, opt, x, y)
        scheduler.step()
    state = opt.state[next(model.parameters())]
    assert opt.rate() == float(state["rate"].reshape(-1)[0]) and opt.rate() != 0.01
    assert [set(opt.state[p]) for p in list(model.parameters())[1:]] == [set()] * 3  # one rate a group
    before = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    loss_of(model, x, y).backward()
    expected = r"^invalid param_groups\[0\]\['lr'\]=0\.001: expected 0\.01, as at the first step"
    with pytest.raises(DescentError, match=expected) as error:
        opt.step()
    assert "\n" not in str(error.value) and "learns its own rate" in str(error.value)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
