"""Conformance of the update rules with torch.optim, in float64.

torch.optim's plain for-loop implementation (``foreach=False``) is the ground truth. Rule <-> torch:

    gd -> SGD                 momentum -> SGD(momentum)      nesterov -> SGD(nesterov=True)
    adagrad -> Adagrad        rmsprop -> RMSprop (momentum and centred options)
    adam -> Adam              adamw -> AdamW                 amsgrad -> Adam(amsgrad=True)

State keys map one to one (``sum``, ``square_avg``, ``grad_avg``, ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``, ``step``; our ``buffer`` is torch's ``momentum_buffer``) except for ``momentum``:
it keeps the seeds' velocity ``v <- beta*v - lr*g, w <- w + v`` where torch keeps the buffer
``b <- beta*b + g, w <- w - lr*b``. At constant lr the two give the same iterates with ``v = -lr*b``;
after a learning-rate change from lr1 to lr2 they part ways by a predicted amount (tested below).

"Relative" error here is norm-wise: ``max|ours - ref| / max|ref|`` over the compared tensor (or over
a whole trajectory), so coordinates that converge to 0 do not make the test meaningless.

Hyper-parameters are drawn at random, seeded per (rule, landscape) with crc32 (not Python's salted
``hash``), so every run checks the same draws.
"""

from __future__ import annotations

import functools
import math
import random
import zlib

import pytest
import torch

from descent.landscapes import get_landscape
from descent.optim import RULES, Optimizer, Step, per_particle

torch.set_num_threads(1)

DTYPE = torch.float64
STEP_RTOL = 1e-12
TRAJECTORY_RTOL = 1e-9
TRAJECTORY_STEPS = 500
LANDSCAPES = ("quadratic", "double-well", "saddle-bounded", "plateau")

# (rule, variant) pairs: rmsprop is checked with and without momentum and centring.
CASES = [
    ("gd", {}),
    ("momentum", {}),
    ("nesterov", {}),
    ("adagrad", {}),
    ("rmsprop", {"momentum": False, "centered": False}),
    ("rmsprop", {"momentum": True, "centered": False}),
    ("rmsprop", {"momentum": False, "centered": True}),
    ("rmsprop", {"momentum": True, "centered": True}),
    ("adam", {}),
    ("adamw", {}),
    ("amsgrad", {}),
]
CASE_IDS = [name + "".join(f"-{k}" for k, v in variant.items() if v) for name, variant in CASES]


@functools.cache
def landscape(name: str):
    """Landscapes by name, built once (the double well refines its critical points by Newton)."""
    return get_landscape(name)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max|ours - ref| / max|ref| (0 when both are exactly zero)."""
    diff = (ours - ref).abs().max().item()
    scale = ref.abs().max().item()
    if scale == 0.0:
        return diff
    return diff / scale


def rng_for(*keys: object) -> random.Random:
    return random.Random(zlib.crc32(repr(keys).encode()))


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def draw_hyper(name: str, variant: dict, rng: random.Random, *, gentle: bool = False) -> dict[str, float]:
    """Random hyper-parameters for ``name``.

    ``gentle`` (the 500-step trajectories) keeps steps small enough that runs from a convex basin stay
    in it, and keeps the adaptive rules' preconditioner bounded below: beta2/alpha >= 0.99 and
    eps >= 1e-3. With a fast-forgetting second moment and a tiny eps, Adam and RMSprop near a minimum
    enter the sign-descent regime (steps of size ~lr whatever |g|), which amplifies the last bit of
    rounding by ~1e12 in a few hundred steps: two exact implementations part ways there no matter how
    faithful. The step-by-step test, which cannot accumulate error, covers the full ranges.
    """
    if name in ("gd", "momentum", "nesterov"):
        hp = {"lr": log_uniform(rng, 1e-3, 0.02 if gentle else 0.04)}
        if name != "gd":
            hp["momentum"] = rng.uniform(0.05, 0.9 if gentle else 0.99)
        return hp
    if name == "adagrad":
        return {
            "lr": log_uniform(rng, 1e-3, 0.1 if gentle else 0.5),
            "lr_decay": rng.uniform(0.0, 0.1),
            "eps": log_uniform(rng, 1e-10, 1e-6),
        }
    lr = log_uniform(rng, 1e-4, 0.003 if gentle else 0.05)
    eps = log_uniform(rng, 1e-3, 1e-1) if gentle else log_uniform(rng, 1e-10, 1e-4)
    slow = rng.uniform(0.99, 0.9999) if gentle else rng.uniform(0.8, 0.9999)
    if name == "rmsprop":
        return {
            "lr": lr,
            "alpha": slow,
            "eps": eps,
            "momentum": rng.uniform(0.05, 0.9) if variant.get("momentum") else 0.0,
            "centered": 1.0 if variant.get("centered") else 0.0,
        }
    hp = {"lr": lr, "beta1": rng.uniform(0.0, 0.95), "beta2": slow, "eps": eps}
    if name == "adamw":
        hp["weight_decay"] = rng.uniform(0.0, 0.2)
    return hp


def torch_optimizer(name: str, params: list[torch.Tensor], hp: dict[str, float]) -> torch.optim.Optimizer:
    """The torch.optim counterpart of rule ``name`` at hyper-parameters ``hp`` (floats)."""
    common = {"foreach": False}
    if name == "gd":
        return torch.optim.SGD(params, lr=hp["lr"], **common)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(
            params, lr=hp["lr"], momentum=hp["momentum"], nesterov=name == "nesterov", **common
        )
    if name == "adagrad":
        return torch.optim.Adagrad(
            params,
            lr=hp["lr"],
            lr_decay=hp["lr_decay"],
            eps=hp["eps"],
            initial_accumulator_value=0.0,
            **common,
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=hp["lr"],
            alpha=hp["alpha"],
            eps=hp["eps"],
            momentum=hp["momentum"],
            centered=bool(hp["centered"]),
            **common,
        )
    betas = (hp["beta1"], hp["beta2"])
    if name == "adamw":
        return torch.optim.AdamW(
            params, lr=hp["lr"], betas=betas, eps=hp["eps"], weight_decay=hp["weight_decay"], **common
        )
    return torch.optim.Adam(
        params, lr=hp["lr"], betas=betas, eps=hp["eps"], amsgrad=name == "amsgrad", weight_decay=0.0, **common
    )


@pytest.mark.parametrize("name, variant", CASES, ids=CASE_IDS)
def test_each_rule_declares_the_torch_class_it_is_tested_against(name, variant):
    """``Rule.torch_name`` (shown by ``descent optimizers`` and used by the adapter's param groups) names
    the class these conformance tests build for the rule."""
    hp = draw_hyper(name, variant, rng_for("declared", name))
    built = torch_optimizer(name, [torch.zeros(2, dtype=DTYPE, requires_grad=True)], hp)
    assert type(built).__name__ == RULES[name].torch_name


def test_only_the_rules_without_a_torch_counterpart_are_left_out_of_conformance():
    tested = {name for name, _ in CASES}
    assert {name for name, rule in RULES.items() if rule.torch_name is not None} == tested


def state_keys(name: str, hp: dict) -> dict[str, str]:
    """Our state key -> torch's state key, for the keys torch keeps with these hyper-parameters."""
    if name == "momentum":
        return {"velocity": "momentum_buffer"}
    if name == "nesterov":
        return {"buffer": "momentum_buffer"}
    if name == "adagrad":
        return {"sum": "sum"}
    if name == "rmsprop":
        keys = {"square_avg": "square_avg"}
        if hp["centered"]:
            keys["grad_avg"] = "grad_avg"
        if bool(torch.as_tensor(hp["momentum"]).gt(0).any()):
            keys["buffer"] = "momentum_buffer"
        return keys
    if name in ("adam", "adamw"):
        return {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}
    if name == "amsgrad":
        return {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "max_exp_avg_sq": "max_exp_avg_sq"}
    return {}


def torch_state_as_ours(
    name: str, hp: dict, torch_state: dict[str, torch.Tensor], template: dict, params: torch.Tensor
) -> dict[str, torch.Tensor]:
    """torch's state (tensors shaped like ours) in our form: v = -lr*b for the velocity."""
    state = dict(template)
    for ours, theirs in state_keys(name, hp).items():
        value = torch_state[theirs].detach().clone()
        if name == "momentum":
            value = -per_particle(hp["lr"], params) * value
        state[ours] = value
    if "step" in torch_state:  # SGD keeps no step counter
        state["step"] = torch.as_tensor(int(torch_state["step"].reshape(-1)[0].item()), dtype=torch.int64)
    return state


def assert_state_matches(name: str, hp: dict, ours: dict, mapped: dict, context: str) -> None:
    for key in state_keys(name, hp):
        err = rel_err(ours[key], mapped[key])
        assert err <= STEP_RTOL, f"{context}: state {key} differs from torch by {err:.2e} (relative)"
    assert int(ours["step"]) == int(mapped["step"]), f"{context}: step counter"


def starts(landscape_name: str, n: int, generator: torch.Generator) -> torch.Tensor:
    land = landscape(landscape_name)
    return land.random_starts(n, generator=generator)


# Starts inside a convex basin: (centre, radius) with U's Hessian positive definite in the ball.
def basin_starts(landscape_name: str, n: int, generator: torch.Generator) -> torch.Tensor:
    land = landscape(landscape_name)
    if landscape_name == "quadratic":
        centre, radius = torch.zeros(2, dtype=DTYPE), 1.0
    elif landscape_name == "double-well":  # U_xx = 12x^2 - 4 > 0 for |x| > 0.58; right minimum x ~ 1.04
        centre, radius = torch.tensor(land.point("right").position, dtype=DTYPE), 0.25
    elif landscape_name == "saddle-bounded":  # U_yy = 3y^2 - 2 > 0 for |y| > 0.82; minimum y = sqrt 2
        centre, radius = torch.tensor(land.point("up").position, dtype=DTYPE), 0.3
    else:  # plateau: the Gaussian well is convex within one width (0.5) of its centre
        centre, radius = torch.tensor(land.point("well").position, dtype=DTYPE), 0.15
    direction = torch.randn(n, 2, generator=generator, dtype=DTYPE)
    direction = direction / direction.norm(dim=1, keepdim=True)
    r = radius * torch.rand(n, 1, generator=generator, dtype=DTYPE).sqrt()
    points = centre + r * direction
    hessians = land.hessian(points)
    assert bool((torch.linalg.eigvalsh(hessians)[:, 0] > 0).all()), "starts must lie in a convex region"
    return points


@pytest.mark.parametrize("landscape_name", LANDSCAPES)
@pytest.mark.parametrize(("name", "variant"), CASES, ids=CASE_IDS)
def test_step_by_step_against_torch(name: str, variant: dict, landscape_name: str) -> None:
    """(a) Along torch's trajectory: one step of each from the same params and state, compare params and
    state within 1e-12 (relative), then copy torch's params and state back into ours."""
    rng = rng_for("step", name, variant, landscape_name)
    hp_floats = draw_hyper(name, variant, rng)
    land = landscape(landscape_name)
    generator = torch.Generator().manual_seed(zlib.crc32(landscape_name.encode()))
    x0 = starts(landscape_name, 16, generator)

    p = torch.nn.Parameter(x0.clone())
    reference = torch_optimizer(name, [p], hp_floats)
    rule = RULES[name]
    hp = rule.resolve(hp_floats)
    state = rule.init(x0)
    for k in range(40):
        x = p.detach().clone()
        g = land.gradient(x)
        p.grad = g.clone()
        reference.step()
        updates, state = rule.update(g, state, x, hp, None)
        context = f"{name} {hp_floats} on {landscape_name}, step {k}"
        err = rel_err(x + updates, p.detach())
        assert err <= STEP_RTOL, f"{context}: params differ from torch by {err:.2e} (relative)"
        mapped = torch_state_as_ours(name, hp, reference.state[p], state, x)
        assert_state_matches(name, hp, state, mapped, context)
        assert int(state["step"]) == k + 1
        state = mapped  # copy the reference back so error cannot accumulate


@pytest.mark.parametrize("landscape_name", LANDSCAPES)
@pytest.mark.parametrize(("name", "variant"), CASES, ids=CASE_IDS)
def test_whole_trajectory_against_torch(name: str, variant: dict, landscape_name: str) -> None:
    """(b) 500 free-running steps of each from starts inside a convex basin: equal within 1e-9 relative."""
    rng = rng_for("trajectory", name, variant, landscape_name)
    hp_floats = draw_hyper(name, variant, rng, gentle=True)
    land = landscape(landscape_name)
    generator = torch.Generator().manual_seed(7 + zlib.crc32(landscape_name.encode()))
    x0 = basin_starts(landscape_name, 8, generator)

    p = torch.nn.Parameter(x0.clone())
    reference = torch_optimizer(name, [p], hp_floats)
    opt = Optimizer.build(name, **hp_floats)
    state = opt.init(x0)
    x = x0.clone()
    ours, theirs = [], []
    for k in range(TRAJECTORY_STEPS):
        p.grad = land.gradient(p.detach())
        reference.step()
        updates, state = opt.step(k, x, land.gradient(x), state)
        x = x + updates
        ours.append(x)
        theirs.append(p.detach().clone())
    ours_t, theirs_t = torch.stack(ours), torch.stack(theirs)
    assert bool(torch.isfinite(theirs_t).all())
    err = rel_err(ours_t, theirs_t)
    assert err <= TRAJECTORY_RTOL, f"{name} {hp_floats} on {landscape_name}: trajectories differ by {err:.2e}"


PER_PARTICLE_N = 6


@pytest.mark.parametrize(("name", "variant"), CASES, ids=CASE_IDS)
def test_per_particle_hyperparameters_against_separate_torch_optimizers(name: str, variant: dict) -> None:
    """Tensor hyper-parameters (one value per particle) equal N separate torch optimizers, one per row,
    step by step with the reference copied back."""
    rng = rng_for("per-particle", name, variant)
    rows = [draw_hyper(name, variant, rng) for _ in range(PER_PARTICLE_N)]
    hp_tensors: dict[str, object] = {}
    for key in rows[0]:
        if key == "centered":
            hp_tensors[key] = rows[0][key]
        else:
            hp_tensors[key] = torch.tensor([row[key] for row in rows], dtype=DTYPE)
    land = landscape("double-well")
    x0 = land.random_starts(PER_PARTICLE_N, generator=torch.Generator().manual_seed(3))

    params = [torch.nn.Parameter(x0[i].clone()) for i in range(PER_PARTICLE_N)]
    references = [torch_optimizer(name, [params[i]], rows[i]) for i in range(PER_PARTICLE_N)]
    rule = RULES[name]
    hp = rule.resolve(hp_tensors)
    assert all(isinstance(hp[k], torch.Tensor) for k in hp_tensors if k != "centered")
    state = rule.init(x0)
    for k in range(30):
        x = torch.stack([p.detach().clone() for p in params])
        g = land.gradient(x)
        for i, (p, ref) in enumerate(zip(params, references)):
            p.grad = g[i].clone()
            ref.step()
        updates, state = rule.update(g, state, x, hp, None)
        after = torch.stack([p.detach() for p in params])
        context = f"{name} per-particle, step {k}"
        err = rel_err(x + updates, after)
        assert err <= STEP_RTOL, f"{context}: params differ from torch by {err:.2e} (relative)"
        torch_state = {
            key: torch.stack([ref.state[p][key] for p, ref in zip(params, references)])
            for key in references[0].state[params[0]]
        }
        if "step" in references[0].state[params[0]]:
            torch_state["step"] = references[0].state[params[0]]["step"]
        mapped = torch_state_as_ours(name, hp, torch_state, state, x)
        assert_state_matches(name, hp, state, mapped, context)
        state = mapped


def test_per_particle_rows_differ() -> None:
    """Sanity check on the per-particle path: rows with different lrs really take different steps."""
    rule = RULES["momentum"]
    lrs, momenta = torch.tensor([0.125, 0.25], dtype=DTYPE), torch.tensor([0.0, 0.5], dtype=DTYPE)
    hp = rule.resolve({"lr": lrs, "momentum": momenta})
    x = torch.ones(2, 3, dtype=DTYPE)
    state = rule.init(x)
    updates, state = rule.update(torch.ones_like(x), state, x, hp, None)
    torch.testing.assert_close(
        updates, torch.tensor([[-0.125] * 3, [-0.25] * 3], dtype=DTYPE), rtol=0, atol=0
    )
    updates, _ = rule.update(torch.ones_like(x), state, x, hp, None)
    torch.testing.assert_close(
        updates, torch.tensor([[-0.125] * 3, [-0.375] * 3], dtype=DTYPE), rtol=0, atol=0
    )


# --- momentum: velocity form vs torch's buffer form ------------------------------------------
@pytest.mark.parametrize("gamma", [0.25, 4.0])
def test_momentum_velocity_form_parts_from_torch_after_lr_change(gamma: float) -> None:
    """v = -lr*b at constant lr; after lr1 -> lr2 at step k the forms part ways as predicted.

    Both take each step from the same params and gradient (torch's params copied into ours); each keeps
    its own momentum state. Torch's step is -lr2*(mu*b + g); ours is mu*v - lr2*g = -mu*lr1*b - lr2*g.
    Let e = v + lr2*b. At the change e = -lr1*b_k + lr2*b_k = (lr2 - lr1)*b_k, b_k being torch's buffer
    just before it; afterwards, both seeing the same g, e <- mu*e, and the step difference is the new e.
    So the j-th step after the change (j = 1, 2, ...) differs by ours - torch = mu^j * (lr2 - lr1) * b_k.
    gamma is a power of two, so lr2 = gamma*lr1 is exact and the schedule gives torch's lr bit for bit.
    """
    land = get_landscape("quadratic", kappa=10.0, angle=0.3)
    x0 = land.random_starts(8, generator=torch.Generator().manual_seed(11))
    lr1, mu, change = 0.03, 0.8, 25
    lr2 = lr1 * gamma
    opt = Optimizer.build("momentum", lr=lr1, momentum=mu, schedule=Step(every=change, gamma=gamma))
    assert opt.lr_at(change - 1) == lr1 and opt.lr_at(change) == lr2
    p = torch.nn.Parameter(x0.clone())
    reference = torch.optim.SGD([p], lr=lr1, momentum=mu, foreach=False)
    state = opt.init(x0)
    b_k = None
    for k in range(change + 12):
        if k == change:
            reference.param_groups[0]["lr"] = lr2
            b_k = reference.state[p]["momentum_buffer"].clone()
        x = p.detach().clone()
        g = land.gradient(x)
        p.grad = g.clone()
        reference.step()
        torch_update = p.detach() - x
        ours_update, state = opt.step(k, x, g, state)
        b = reference.state[p]["momentum_buffer"]
        if k < change:  # identical iterates, v = -lr*b
            assert rel_err(ours_update, torch_update) <= STEP_RTOL
            assert rel_err(state["velocity"], -lr1 * b) <= STEP_RTOL
        else:
            j = k - change + 1
            predicted = mu**j * (lr2 - lr1) * b_k
            assert rel_err(ours_update, torch_update) > 1e-3  # the forms really part ways
            err = rel_err(ours_update - torch_update, predicted)
            assert err <= STEP_RTOL, f"step {k}: difference off the prediction by {err:.2e}"
            # equivalently, our velocity is torch's -lr2*b plus the decaying offset
            assert rel_err(state["velocity"], -lr2 * b + predicted) <= STEP_RTOL


def test_momentum_first_step_after_change_is_formula() -> None:
    """The brief's formula on one step: torch -lr2*(mu*b + g), ours mu*v - lr2*g with v = -lr1*b."""
    gen = torch.Generator().manual_seed(5)
    b = torch.randn(4, 2, generator=gen, dtype=DTYPE)
    g = torch.randn(4, 2, generator=gen, dtype=DTYPE)
    lr1, lr2, mu = 0.05, 0.0125, 0.9
    rule = RULES["momentum"]
    state = {**rule.init(b), "velocity": -lr1 * b}
    ours, _ = rule.update(g, state, torch.zeros_like(b), rule.resolve({"lr": lr2, "momentum": mu}), None)
    torch_step = -lr2 * (mu * b + g)
    assert rel_err(ours, -mu * lr1 * b - lr2 * g) <= STEP_RTOL
    assert rel_err(ours - torch_step, mu * (lr2 - lr1) * b) <= 1e-12


@pytest.mark.parametrize("name", ["gd", "nesterov"])
def test_buffer_forms_follow_torch_through_lr_change(name: str) -> None:
    """gd and nesterov use torch's form, so they stay equal to torch across a learning-rate change."""
    land = landscape("double-well")
    x0 = basin_starts("double-well", 6, torch.Generator().manual_seed(2))
    hp = {"lr": 0.02} if name == "gd" else {"lr": 0.02, "momentum": 0.85}
    opt = Optimizer.build(name, schedule=Step(every=20, gamma=0.5), **hp)
    p = torch.nn.Parameter(x0.clone())
    reference = torch_optimizer(name, [p], hp)
    state, x = opt.init(x0), x0.clone()
    for k in range(60):
        reference.param_groups[0]["lr"] = hp["lr"] * 0.5 ** (k // 20)
        p.grad = land.gradient(p.detach())
        reference.step()
        updates, state = opt.step(k, x, land.gradient(x), state)
        x = x + updates
        assert rel_err(x, p.detach()) <= TRAJECTORY_RTOL


# --- options that map onto torch's ----------------------------------------------------------
@pytest.mark.parametrize("name", ["gd", "momentum", "nesterov", "adam", "amsgrad"])
def test_l2_equals_torch_weight_decay(name: str) -> None:
    """Our coupled ``l2`` option is torch's ``weight_decay`` for SGD (all forms) and Adam."""
    land = landscape("saddle-bounded")
    x0 = land.random_starts(8, generator=torch.Generator().manual_seed(4))
    hp = draw_hyper(name, {}, rng_for("l2", name))
    wd = 0.07
    p = torch.nn.Parameter(x0.clone())
    if name in ("gd", "momentum", "nesterov"):
        momentum = hp.get("momentum", 0.0)
        reference = torch.optim.SGD(
            [p], lr=hp["lr"], momentum=momentum, nesterov=name == "nesterov", weight_decay=wd, foreach=False
        )
    else:
        reference = torch.optim.Adam(
            [p],
            lr=hp["lr"],
            betas=(hp["beta1"], hp["beta2"]),
            eps=hp["eps"],
            weight_decay=wd,
            amsgrad=name == "amsgrad",
            foreach=False,
        )
    opt = Optimizer.build(name, l2=wd, **hp)
    state, x = opt.init(x0), x0.clone()
    for k in range(50):
        p.grad = land.gradient(p.detach())
        reference.step()
        updates, state = opt.step(k, x, land.gradient(x), state)
        x = x + updates
        assert rel_err(x, p.detach()) <= TRAJECTORY_RTOL, f"step {k}"


def test_adagrad_rmsprop_adam_defaults_are_torch_defaults() -> None:
    """Defaults are where libraries disagree: ours follow torch.optim, with two documented exceptions
    (gd/momentum/nesterov default lr 0.01 where torch's SGD has 1e-3; momentum 0.9 where SGD has 0)."""
    dummy = [torch.nn.Parameter(torch.zeros(1, dtype=DTYPE))]
    checks = {
        "adagrad": (torch.optim.Adagrad(dummy), {"lr": "lr", "lr_decay": "lr_decay", "eps": "eps"}),
        "rmsprop": (
            torch.optim.RMSprop(dummy),
            {"lr": "lr", "alpha": "alpha", "eps": "eps", "momentum": "momentum", "centered": "centered"},
        ),
        "adam": (torch.optim.Adam(dummy), {"lr": "lr", "eps": "eps"}),
        "amsgrad": (torch.optim.Adam(dummy), {"lr": "lr", "eps": "eps"}),
        "adamw": (torch.optim.AdamW(dummy), {"lr": "lr", "eps": "eps", "weight_decay": "weight_decay"}),
    }
    for name, (reference, keys) in checks.items():
        ours = RULES[name].defaults()
        for our_key, torch_key in keys.items():
            assert ours[our_key] == float(reference.defaults[torch_key]), f"{name}.{our_key}"
        if "beta1" in ours:
            assert (ours["beta1"], ours["beta2"]) == reference.defaults["betas"]
    assert torch.optim.Adagrad(dummy).defaults["initial_accumulator_value"] == 0.0  # ours starts at 0 too
    assert RULES["gd"].defaults()["lr"] == 0.01 and RULES["momentum"].defaults()["momentum"] == 0.9
