"""Update rules and the Optimizer options: stability edges, Langevin's stationary law, gradient noise,
clipping, coupled weight decay, validation errors, purity.

Statistical checks use the seeded counter-based stream (deterministic) and tolerances of a few standard
errors, stated next to each, so that they would also pass for most other seeds.
"""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from descent._errors import DescentError
from descent.landscapes import get_landscape
from descent.optim import RULES, Optimizer, get_rule, stability_edge
from descent.random import Draw

torch.set_num_threads(1)

DTYPE = torch.float64


# --- stability edge ---------------------------------------------------------------------------
def _unstable(name: str, lrs: torch.Tensor, curvature: float, momentum: float, steps: int) -> torch.Tensor:
    """Run ``name`` on U = h x^2/2 for each lr (one particle per lr, per-particle lr tensor) and say
    which runs grow: |x| (two consecutive iterates, to see through the oscillation) at the end versus
    half-way. Non-finite counts as growing."""
    land = get_landscape("quadratic", dim=1, mu=curvature)
    rule = RULES[name]
    hyper = {"lr": lrs} if name == "gd" else {"lr": lrs, "momentum": momentum}
    hp = rule.resolve(hyper)
    x = torch.ones(len(lrs), 1, dtype=DTYPE)
    state = rule.init(x)
    previous = x
    half = None
    for k in range(steps):
        updates, state = rule.update(land.gradient(x), state, x, hp, None)
        previous, x = x, x + updates
        if k == steps // 2:
            half = (x.abs() + previous.abs()).squeeze(1)
    end = (x.abs() + previous.abs()).squeeze(1)
    return ~(end <= half)


def empirical_edge(name: str, curvature: float, momentum: float, steps: int = 2000) -> float:
    """The largest stable lr by multi-section: 65 lrs per round (one batched run), keep the cell where
    stability is lost, three rounds. The final cell is ~3e-5 of the edge wide; near the edge the growth
    is geometric, so the decision is right down to |lr/edge - 1| ~ 1/steps and below."""
    lo, hi = 0.05 / curvature, 10.0 / curvature
    for _ in range(3):
        lrs = torch.linspace(lo, hi, 65, dtype=DTYPE)
        unstable = _unstable(name, lrs, curvature, momentum, steps)
        assert not unstable[0] and unstable[-1], "the bracket must straddle the edge"
        first = int(torch.nonzero(unstable)[0])
        assert bool(unstable[first:].all()), "stability must be lost once, at one edge"
        lo, hi = float(lrs[first - 1]), float(lrs[first])
    return (lo + hi) / 2


@pytest.mark.parametrize("draw", range(3))
@pytest.mark.parametrize("name", ["gd", "momentum", "nesterov"])
def test_stability_edge_matches_bisection(name: str, draw: int) -> None:
    """stability_edge (GD 2/h, heavy ball 2(1 + b)/h, Nesterov 2(1 + b)/((1 + 2b) h)) against the
    empirical edge on a 1-D quadratic, within 1e-3 relative, at seeded random curvature and momentum."""
    rng = random.Random(1000 * draw + len(name))
    curvature = math.exp(rng.uniform(math.log(0.1), math.log(20.0)))
    momentum = 0.0 if name == "gd" else rng.uniform(0.1, 0.95)
    predicted = stability_edge(name, curvature, momentum)
    measured = empirical_edge(name, curvature, momentum)
    assert abs(measured / predicted - 1) < 1e-3, (name, curvature, momentum, predicted, measured)


def test_stability_edge_closed_forms_and_no_edge_without_curvature() -> None:
    assert stability_edge("gd", 4.0) == 0.5
    assert stability_edge("momentum", 4.0, 0.5) == 0.75
    assert stability_edge("nesterov", 4.0, 0.5) == pytest.approx(0.375, rel=1e-15)
    assert stability_edge("nesterov", 4.0, 0.0) == stability_edge("gd", 4.0)
    for name in ("gd", "momentum", "nesterov"):
        assert stability_edge(name, 0.0, 0.9) == math.inf
        assert stability_edge(name, -1.0, 0.9) == math.inf


# --- Langevin ---------------------------------------------------------------------------------
@pytest.mark.parametrize("lr_h", [0.1, 0.8, 1.5])
def test_langevin_stationary_variance_is_the_exact_discrete_value(lr_h: float) -> None:
    """On U = h x^2/2 the Langevin chain x <- (1 - lr h) x + sqrt(2 lr T) z is AR(1) with stationary
    variance T/(h (1 - lr h/2)). Sample variance over N = 200,000 independent particles after a
    burn-in that leaves a bias below 1e-9: its standard error is sqrt(2/(N - 1)) relative (0.32 %);
    tolerance 4 standard errors. The continuous-time value T/h must be rejected (it is 5-75 % off)."""
    h, temperature, n = 2.0, 0.3, 200_000
    lr = lr_h / h
    land = get_landscape("quadratic", dim=1, mu=h)
    opt = Optimizer.build("langevin", lr=lr, temperature=temperature)
    ids = torch.arange(n)
    x = torch.zeros(n, 1, dtype=DTYPE)
    state = opt.init(x)
    contraction = abs(1 - lr_h)
    burn_in = math.ceil(math.log(1e-9) / (2 * math.log(contraction)))
    for k in range(burn_in):
        updates, state = opt.step(k, x, land.gradient(x), state, Draw(20, ids, k, DTYPE))
        x = x + updates
    exact = temperature / (h * (1 - lr_h / 2))
    standard_error = math.sqrt(2 / (n - 1))
    ratio = float(x.var()) / exact
    assert abs(ratio - 1) < 4 * standard_error, (ratio, standard_error)
    assert abs(float(x.mean())) < 4 * math.sqrt(exact / n)
    assert abs(float(x.var()) / (temperature / h) - 1) > 8 * standard_error


def test_langevin_is_reproducible_and_per_particle() -> None:
    """The same seed gives the same path; another seed another; and a particle's path does not depend
    on which other particles share the batch (its draws are keyed by its own id)."""
    opt = Optimizer.build("langevin", lr=0.05, temperature=0.2)
    land = get_landscape("double-well")

    def run(seed: int, ids: torch.Tensor) -> torch.Tensor:
        x = land.start().repeat(len(ids), 1)
        state = opt.init(x)
        for k in range(20):
            updates, state = opt.step(k, x, land.gradient(x), state, Draw(seed, ids, k, DTYPE))
            x = x + updates
        return x

    four = torch.arange(4)
    assert torch.equal(run(1, four), run(1, four))
    assert not torch.equal(run(1, four), run(2, four))
    assert torch.equal(run(1, torch.tensor([2]))[0], run(1, four)[2])


# --- gradient noise ---------------------------------------------------------------------------
def test_gradient_noise_is_reproducible_with_a_seeded_stream() -> None:
    opt = Optimizer.build("gd", lr=0.1, grad_noise=0.5)
    g = torch.ones(3, 2, dtype=DTYPE)
    x = torch.zeros(3, 2, dtype=DTYPE)
    ids = torch.arange(3)
    first = opt.process_gradient(g, x, Draw(9, ids, 0, DTYPE))
    again = opt.process_gradient(g, x, Draw(9, ids, 0, DTYPE))
    other = opt.process_gradient(g, x, Draw(10, ids, 0, DTYPE))
    later = opt.process_gradient(g, x, Draw(9, ids, 1, DTYPE))
    assert torch.equal(first, again)
    assert not torch.equal(first, other) and not torch.equal(first, later)
    # without noise the gradient is passed through untouched, and needs no draw
    quiet = Optimizer.build("gd", lr=0.1)
    assert torch.equal(quiet.process_gradient(g, x, None), g) and not quiet.needs_draw
    with pytest.raises(DescentError, match="draw"):
        opt.process_gradient(g, x, None)


def test_gradient_noise_has_the_right_mean_and_variance() -> None:
    """g + sigma*z with per-particle sigma (a tensor): 40,000 particles per sigma. The sample variance's
    standard error is sqrt(2/(n - 1)) relative (0.7 %), the mean's sigma/sqrt(n); tolerance 4 SE each."""
    sigmas = torch.tensor([0.1, 1.0, 3.0], dtype=DTYPE)
    n = 40_000
    opt = Optimizer.build("gd", lr=0.1, grad_noise=sigmas.repeat_interleave(n))
    g = torch.full((3 * n, 1), 2.0, dtype=DTYPE)
    noisy = opt.process_gradient(g, torch.zeros_like(g), Draw(3, torch.arange(3 * n), 0, DTYPE))
    noise = (noisy - g).reshape(3, n)
    for i, sigma in enumerate(sigmas.tolist()):
        assert abs(float(noise[i].var()) / sigma**2 - 1) < 4 * math.sqrt(2 / (n - 1))
        assert abs(float(noise[i].mean())) < 4 * sigma / math.sqrt(n)


def test_gradient_noise_is_a_temperature() -> None:
    """GD with gradient noise of scale s on U = h x^2/2 is Langevin at T = lr*s^2/2: stationary variance
    T/(h (1 - lr h/2)). N = 100,000 particles; SE sqrt(2/(N - 1)) = 0.45 %; tolerance 4 SE."""
    h, lr, s, n = 1.5, 0.4, 0.8, 100_000
    land = get_landscape("quadratic", dim=1, mu=h)
    opt = Optimizer.build("gd", lr=lr, grad_noise=s)
    ids = torch.arange(n)
    x = torch.zeros(n, 1, dtype=DTYPE)
    state = opt.init(x)
    for k in range(60):  # |1 - lr h| = 0.4: bias 0.4^120 after burn-in
        updates, state = opt.step(k, x, land.gradient(x), state, Draw(4, ids, k, DTYPE))
        x = x + updates
    temperature = lr * s**2 / 2
    exact = temperature / (h * (1 - lr * h / 2))
    assert abs(float(x.var()) / exact - 1) < 4 * math.sqrt(2 / (n - 1))


# --- clipping and weight decay ----------------------------------------------------------------
def test_clipping_bounds_the_norm_and_keeps_the_direction() -> None:
    """Per-particle norm clipping: no processed gradient is longer than clip_norm, every one points the
    same way as the raw gradient, and gradients already within the bound are untouched (bit for bit)."""
    clip = 0.7
    generator = torch.Generator().manual_seed(8)
    raw = torch.randn(200, 5, generator=generator, dtype=DTYPE)
    raw = raw * torch.logspace(-3, 3, 200, dtype=DTYPE).unsqueeze(1)
    raw[0] = 0.0
    raw[1] = raw[1] / raw[1].norm() * clip  # exactly on the bound (to rounding)
    opt = Optimizer.build("gd", lr=0.1, clip_norm=clip)
    clipped = opt.process_gradient(raw, torch.zeros_like(raw), None)
    raw_norm, clipped_norm = raw.norm(dim=1), clipped.norm(dim=1)
    assert bool(torch.isfinite(clipped).all())
    assert bool((clipped_norm <= clip * (1 + 1e-15)).all())
    inside = raw_norm <= clip
    assert torch.equal(clipped[inside], raw[inside])
    outside = ~inside
    assert int(outside.sum()) > 50 and int(inside.sum()) > 50
    torch.testing.assert_close(
        clipped_norm[outside], torch.full_like(clipped_norm[outside], clip), rtol=1e-14, atol=0
    )
    # same direction: clipped = c * raw with c > 0, so the unit vectors agree
    unit_raw = raw[1:] / raw_norm[1:].unsqueeze(1)
    unit_clipped = clipped[1:] / clipped_norm[1:].unsqueeze(1)
    torch.testing.assert_close(unit_clipped, unit_raw, rtol=0, atol=1e-15)
    assert torch.equal(clipped[0], raw[0])


def test_options_apply_in_the_documented_order() -> None:
    """Noise, then clipping, then coupled weight decay: with huge noise the clipped gradient still
    respects the bound, and l2*w is added after clipping (so it is not clipped)."""
    clip, l2 = 0.5, 0.3
    x = torch.full((50, 3), 2.0, dtype=DTYPE)
    g = torch.zeros(50, 3, dtype=DTYPE)
    noisy_clip = Optimizer.build("gd", lr=0.1, grad_noise=100.0, clip_norm=clip)
    processed = noisy_clip.process_gradient(g, x, Draw(0, torch.arange(50), 0, DTYPE))
    torch.testing.assert_close(
        processed.norm(dim=1), torch.full((50,), clip, dtype=DTYPE), rtol=1e-14, atol=0
    )
    everything = Optimizer.build("gd", lr=0.1, grad_noise=100.0, clip_norm=clip, l2=l2)
    processed_l2 = everything.process_gradient(g, x, Draw(0, torch.arange(50), 0, DTYPE))
    torch.testing.assert_close(processed_l2, processed + l2 * x, rtol=0, atol=0)


def test_l2_adds_l2_times_params_to_the_gradient() -> None:
    """Coupled decay is torch's weight_decay (compared with torch in test_conformance); per particle
    too: a tensor of decays acts row by row."""
    x = torch.tensor([[1.0, -2.0], [3.0, 4.0]], dtype=DTYPE)
    g = torch.tensor([[0.5, 0.5], [-1.0, 0.0]], dtype=DTYPE)
    opt = Optimizer.build("gd", lr=0.25, l2=torch.tensor([0.0, 0.5], dtype=DTYPE))
    torch.testing.assert_close(
        opt.process_gradient(g, x, None), g + torch.tensor([[0.0], [0.5]]) * x, rtol=0, atol=0
    )
    updates, _ = opt.step(0, x, g, opt.init(x))
    torch.testing.assert_close(
        updates, -0.25 * (g + torch.tensor([[0.0], [0.5]], dtype=DTYPE) * x), rtol=0, atol=0
    )


# --- validation -------------------------------------------------------------------------------
def _error(call) -> str:
    with pytest.raises(DescentError) as info:
        call()
    assert isinstance(info.value, ValueError)  # callers may catch either
    return str(info.value)


@pytest.mark.parametrize("name", ["gd", "momentum", "adam", "langevin"])
@pytest.mark.parametrize("bad", [0, -1, float("nan"), "abc", float("inf"), True])
def test_bad_learning_rate_names_parameter_value_and_range(name: str, bad: object) -> None:
    message = _error(lambda: Optimizer.build(name, lr=bad))
    assert f"{name}.lr" in message
    assert repr(bad) in message
    assert "(0.0, inf)" in message  # what is allowed: a number > 0


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("momentum", "momentum"),
        ("nesterov", "momentum"),
        ("rmsprop", "momentum"),
        ("rmsprop", "alpha"),
        ("adam", "beta1"),
        ("adamw", "beta2"),
        ("amsgrad", "beta2"),
    ],
)
def test_momentum_like_parameters_must_stay_below_one(name: str, key: str) -> None:
    message = _error(lambda: Optimizer.build(name, **{key: 1.0}))
    assert f"{name}.{key}" in message and "1.0" in message and "[0.0, 1.0)" in message
    message = _error(lambda: Optimizer.build(name, **{key: -0.1}))
    assert f"{name}.{key}" in message and "-0.1" in message


def test_unknown_hyperparameter_names_it_and_lists_the_allowed_ones() -> None:
    message = _error(lambda: Optimizer.build("adam", betas=(0.9, 0.99)))
    assert "adam hyper-parameter" in message and "'betas'" in message
    for allowed in ("beta1", "beta2", "eps", "lr"):
        assert allowed in message
    message = _error(lambda: Optimizer.build("gd", lr=0.1, momentum=0.9))
    assert "'momentum'" in message and "one of: lr" in message


def test_unknown_optimizer_names_it_and_lists_the_known_ones() -> None:
    message = _error(lambda: Optimizer.build("sgdd", lr=0.1))
    assert "optimizer" in message and "'sgdd'" in message
    for known in RULES:
        assert known in message
    assert _error(lambda: get_rule("Adam")) == _error(lambda: Optimizer.build("Adam"))


def test_other_invalid_values() -> None:
    message = _error(lambda: Optimizer.build("rmsprop", centered=0.5))
    assert "rmsprop.centered" in message and "0.5" in message and "0 or 1" in message
    message = _error(lambda: Optimizer.build("gd", lr=torch.tensor([0.1, 0.0], dtype=DTYPE)))
    assert "gd.lr" in message and "0.0" in message
    message = _error(lambda: Optimizer.build("gd", lr=torch.ones(2, 2, dtype=DTYPE)))
    assert "gd.lr" in message and "1-D tensor" in message
    message = _error(lambda: Optimizer.build("gd", lr=torch.tensor([0.1, float("nan")], dtype=DTYPE)))
    assert "gd.lr" in message and "non-finite" in message
    message = _error(lambda: Optimizer.build("gd", clip_norm=0.0))
    assert "clip_norm" in message and "0.0" in message and "(0.0, inf)" in message
    message = _error(lambda: Optimizer.build("gd", grad_noise=-1.0))
    assert "grad_noise" in message and "-1.0" in message
    message = _error(lambda: Optimizer.build("gd", l2=float("nan")))
    assert "l2" in message and "nan" in message
    message = _error(lambda: Optimizer.build("adagrad", eps=-1e-3))
    assert "adagrad.eps" in message
    message = _error(lambda: Optimizer.build("langevin", temperature=-0.1))
    assert "langevin.temperature" in message and "-0.1" in message


# --- purity and round trips -------------------------------------------------------------------
@pytest.mark.parametrize("name", list(RULES))
def test_update_is_pure(name: str) -> None:
    """update(grads, state, params, ...) never writes to its inputs, and init gives a zero step."""
    rule = RULES[name]
    generator = torch.Generator().manual_seed(1)
    params = torch.randn(4, 3, generator=generator, dtype=DTYPE)
    grads = torch.randn(4, 3, generator=generator, dtype=DTYPE)
    hp = rule.resolve({"centered": 1.0, "momentum": 0.5} if name == "rmsprop" else {})
    state = rule.init(params)
    assert int(state["step"]) == 0
    for _ in range(2):
        before = {k: v.clone() for k, v in state.items()}
        params_before, grads_before = params.clone(), grads.clone()
        updates, new_state = rule.update(grads, state, params, hp, Draw(2, torch.arange(4), 0, DTYPE))
        assert updates.shape == params.shape and updates.dtype == DTYPE
        assert torch.equal(params, params_before) and torch.equal(grads, grads_before)
        for key, value in before.items():
            assert torch.equal(state[key], value), f"{name} wrote to state[{key!r}]"
        assert int(new_state["step"]) == int(state["step"]) + 1
        state = new_state
        params = params + updates


def test_optimizer_dict_round_trip() -> None:
    opt = Optimizer.build(
        "adamw",
        lr=torch.tensor([0.1, 0.01], dtype=DTYPE),
        beta1=0.8,
        clip_norm=2.0,
        l2=0.01,
        grad_noise=0.1,
        schedule={"kind": "cosine", "total": 50, "final": 0.1},
    )
    spec = json.loads(json.dumps(opt.to_dict()))
    again = Optimizer.from_dict(spec)
    assert again.to_dict() == spec
    assert again.lr_at(25) == pytest.approx(opt.lr_at(25), rel=1e-15, abs=0.0)


# langevin is over-damped too, but its thermal kick moves it at zero force (its own tests cover that)
@pytest.mark.parametrize("name", [n for n, r in RULES.items() if r.physics != "adaptive" and n != "langevin"])
def test_the_declared_friction_is_what_the_iterates_do_when_the_force_stops(name) -> None:
    """After steps under a force, steps at zero force: an over-damped rule (infinite friction) stops
    dead; an inertial one coasts, each step's update cut by the declared friction, V' = (1 - gamma h) V
    (= beta V)."""
    rule = RULES[name]
    x = torch.ones(1, 2, dtype=DTYPE)
    hp = rule.resolve({"lr": 0.1} if rule.physics == "overdamped" else {"lr": 0.1, "momentum": 0.7})
    state = rule.init(x)
    for force in (1.0, 1.0, 1.0, 0.0):
        last, state = rule.update(torch.full_like(x, force), state, x, hp, None)
        x = x + last
    coast, _ = rule.update(torch.zeros_like(x), state, x, hp, None)
    if rule.physics == "overdamped":
        assert rule.friction(hp) is None and torch.equal(coast, torch.zeros_like(coast))
    else:
        kept = 1.0 - float(rule.friction(hp)) * float(rule.time_step(hp))
        assert kept == pytest.approx(0.7, rel=1e-12) and bool(last.abs().min() > 0)
        torch.testing.assert_close(coast, kept * last, rtol=1e-12, atol=0.0)
