"""The rules that learn their learning rate (hd-sgd, hd-momentum, hd-adam; descent.optim.hypergradient)
against independent references: the rate on h x^2/2 against 1/h, the hypergradient against autograd
through one unrolled step, the rate's floor and cap against the secant curvature measured here from the
recorded path, and the engine and the torch adapter against a one-particle loop written out below."""

from __future__ import annotations

import math

import pytest
import torch

from descent import Optimizer, get_landscape, simulate
from descent._errors import DescentError
from descent.optim import RULES, TorchOptimizer

torch.set_num_threads(1)

DTYPE = torch.float64
HD = ("hd-sgd", "hd-momentum", "hd-adam")
BASE = {"hd-sgd": "gd", "hd-momentum": "momentum", "hd-adam": "adam"}


# --- an independent reference: one particle, the paper's equations written out step by step ---------
class ReferenceParticle:
    """One particle of ``name`` with python-float hyper-parameters, stepped by ``step(g)``.

    Per step t (u: the base rule's direction, r: the rate, P: 1, or Adam's sqrt(v_hat) + eps):
      s = -r u_prev, y = g - g_prev, lambda = y.s / s.P s (kept when s = 0),
      dL/dr = -g.u_prev, a = min(hyper_lr, 1/(lambda u_prev.P u_prev)) when that curvature is > 0,
      r <- min(r - a dL/dr clipped to [r/2, 2r], edge/lambda when lambda > 0),
      w <- w - r u.
    """

    def __init__(self, name: str, hyper: dict[str, float], w: torch.Tensor) -> None:
        self.name, self.hp, self.w = name, hyper, w.clone()
        self.rate = hyper["lr"]
        self.curvature = 0.0
        self.t = 0
        self.g_prev = self.u_prev = None
        self.buffer = torch.zeros_like(w)
        self.m = torch.zeros_like(w)
        self.v = torch.zeros_like(w)
        self.rates: list[float] = []

    def edge_numerator(self) -> float:
        if self.name == "hd-sgd":
            return 2.0
        if self.name == "hd-momentum":
            return 2.0 * (1.0 + self.hp["momentum"])
        return (2.0 + 2.0 * self.hp["beta1"]) / (1.0 - self.hp["beta1"])

    def step(self, g: torch.Tensor) -> torch.Tensor:
        self.t += 1
        metric = torch.ones_like(g)
        if self.name == "hd-adam":
            b1, b2 = self.hp["beta1"], self.hp["beta2"]
            self.m = b1 * self.m + (1 - b1) * g
            self.v = b2 * self.v + (1 - b2) * g * g
            metric = torch.sqrt(self.v / (1 - b2**self.t)) + self.hp["eps"]
        if self.u_prev is not None:
            s = -self.rate * self.u_prev
            y = g - self.g_prev
            s_metric_s = float(torch.dot(s, metric * s))
            if s_metric_s > 0:
                self.curvature = float(torch.dot(y, s)) / s_metric_s
            dloss_drate = -float(torch.dot(g, self.u_prev))
            rate_curvature = self.curvature * float(torch.dot(self.u_prev, metric * self.u_prev))
            a = self.hp["hyper_lr"]
            if rate_curvature > 0:
                a = min(a, 1.0 / rate_curvature)
            new = self.rate - a * dloss_drate
            new = min(max(new, self.rate / 2), 2 * self.rate)
            if self.curvature > 0:
                new = min(new, self.edge_numerator() / self.curvature)
            self.rate = new
        if self.name == "hd-sgd":
            u = g
        elif self.name == "hd-momentum":
            self.buffer = self.hp["momentum"] * self.buffer + g
            u = self.buffer
        else:
            u = self.m / (1 - self.hp["beta1"] ** self.t) / metric
        self.w = self.w - self.rate * u
        self.g_prev, self.u_prev = g, u
        self.rates.append(self.rate)
        return self.w


def _gradient(f, w: torch.Tensor) -> torch.Tensor:
    w = w.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(w).sum(), w)
    return g


def bumpy(w: torch.Tensor) -> torch.Tensor:
    """A non-quadratic landscape on ``[N, d]`` rows, d >= 2: softened wells (log cosh, written so it
    cannot overflow) with a non-convex coupling; gradient and curvature are bounded everywhere (no
    overflow at any rate) and the Hessian is not constant."""
    z = torch.linspace(0.5, 3.0, w.shape[-1], dtype=w.dtype) * (w - 0.3)
    wells = (z.abs() + torch.log1p(torch.exp(-2 * z.abs())) - math.log(2)).sum(-1)
    return wells + 0.4 * torch.sin(w[..., 0]) * torch.sin(w[..., 1]) + 0.1 * torch.tanh(w.sum(-1)) ** 2


def _hyper(name: str, **given: float) -> dict[str, float]:
    return {**RULES[name].defaults(), **given}


def _run_rule(name: str, hyper: dict, f, w: torch.Tensor, steps: int):
    """The rule by itself on ``[N, d]`` rows: positions, gradients and states of every step."""
    rule = RULES[name]
    hp = rule.resolve(hyper)
    state = rule.init(w)
    path, grads, states = [w], [], []
    for _ in range(steps):
        g = _gradient(f, w)
        update, state = rule.update(g, state, w, hp, None)
        w = w + update
        path.append(w)
        grads.append(g)
        states.append(state)
    grads.append(_gradient(f, w))
    return path, grads, states


# --- on h x^2/2 the rate moves monotonically toward 1/h and never past it ---------------------------
@pytest.mark.parametrize("h", [0.5, 2.0, 10.0])
@pytest.mark.parametrize("fraction", [0.01, 0.3, 0.9])
def test_the_rate_on_a_quadratic_climbs_to_one_over_h_without_crossing(h, fraction):
    """Plain hypergradient descent keeps r below 1/h only while hyper_lr h^3 x_{t-1}^2 <= 1 (r - 1/h is
    multiplied by 1 - hyper_lr h^3 x^2 each step); the rule's step is capped at 1/(u.H u), which makes
    that hold for every hyper_lr: tested from well inside the condition (1e-3/h^3 with |x| <= 1) to
    far outside it. The steps where the rate does not change are those where x has reached 0."""
    land = get_landscape("quadratic", dim=1, mu=h)
    for hyper_lr in (1e-3 / h**3, 1.0, 1e12):
        rule = RULES["hd-sgd"]
        hp = rule.resolve({"lr": fraction / h, "hyper_lr": hyper_lr})
        x = torch.ones(1, 1, dtype=DTYPE)
        state = rule.init(x)
        rates = []
        for _ in range(40):
            update, state = rule.update(land.gradient(x), state, x, hp, None)
            x = x + update
            rates.append(float(state["rate"]))
        rates_h = torch.tensor(rates, dtype=DTYPE) * h
        assert bool((rates_h[1:] >= rates_h[:-1]).all()), "the rate must not move away from 1/h"
        assert bool((rates_h <= 1 + 1e-12).all()), f"crossed 1/h: {rates_h.max().item()}"
        assert rates_h[1] > rates_h[0], "the first measured step must move the rate toward 1/h"
        if hyper_lr == 1e12:  # the step along r is 1/(u.H u): the rate reaches 1/h, doubling at most
            assert rates_h[-1] == pytest.approx(1.0, rel=1e-12)


# --- the hypergradient is the derivative of the next loss in the rate -------------------------------
@pytest.mark.parametrize("name", HD)
def test_the_hypergradient_equals_autograd_through_one_unrolled_step(name):
    """After a few steps, one more step is taken with the rate of the state as an autograd leaf and
    hyper_lr = 0 (so the step's rate is that leaf: derivative 1); dL(w_next)/dr by autograd through the
    rule's own update equals the hypergradient the rule reports at the next step, within 1e-12."""
    rule = RULES[name]
    hyper = _hyper(name, lr=0.05, hyper_lr=0.01)
    if name == "hd-adam":
        hyper["lr"] = 0.02
    w = torch.tensor([[0.9, -1.2, 0.4]], dtype=DTYPE)
    path, grads, states = _run_rule(name, hyper, bumpy, w, 6)
    w, g, state = path[-1], grads[-1], states[-1]

    leaf = state["rate"].clone().requires_grad_(True)
    update, taken = rule.update(g, {**state, "rate": leaf}, w, rule.resolve({**hyper, "hyper_lr": 0.0}), None)
    assert torch.equal(taken["rate"].detach(), leaf.detach()), "the cap must not bind in this check"
    w_next = w + update
    (by_autograd,) = torch.autograd.grad(bumpy(w_next).sum(), leaf)

    detached = {key: value.detach() for key, value in taken.items()}
    _, after = rule.update(_gradient(bumpy, w_next), detached, w_next.detach(), rule.resolve(hyper), None)
    assert abs(float(after["hypergradient"]) - float(by_autograd)) <= 1e-12
    assert abs(float(by_autograd)) > 1e-3  # a derivative worth comparing


# --- the floor and the cap ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", HD)
def test_the_rate_stays_positive_and_under_the_measured_edge_in_hostile_settings(name):
    """A start far above the edge, 16 particles on a non-convex landscape, hyper_lr huge (1e12) or 0
    (the start kept until the cap cuts it): the rate is positive and finite at every step and, once a
    step has measured a positive secant curvature lambda (computed here from the recorded positions and
    gradients, and Adam's second moment), at most the rule's edge at lambda. The cap binds at some
    steps (the check is not vacuous)."""
    w = 3 * torch.randn(16, 2, generator=torch.Generator().manual_seed(5), dtype=DTYPE)
    binding = 0
    for hyper_lr in (1e12, 0.0):
        hyper = _hyper(name, lr=200.0 if name == "hd-adam" else 20.0, hyper_lr=hyper_lr)
        path, grads, states = _run_rule(name, hyper, bumpy, w, 60)
        numerator = ReferenceParticle(name, hyper, w[0]).edge_numerator()
        for t in range(1, len(states)):  # state t was made at w_t = path[t] with gradient grads[t]
            rate = states[t]["rate"].squeeze(1)
            assert bool((rate > 0).all()) and bool(torch.isfinite(rate).all())
            s = path[t] - path[t - 1]
            y = grads[t] - grads[t - 1]
            metric = torch.ones_like(s)
            if name == "hd-adam":  # P = sqrt(v_hat) + eps after step t + 1
                v_hat = states[t]["exp_avg_sq"] / (1 - hyper["beta2"] ** (t + 1))
                metric = torch.sqrt(v_hat) + hyper["eps"]
            curvature = (y * s).sum(1) / (s * metric * s).sum(1)
            measured = (s != 0).any(1) & (curvature > 0)
            cap = numerator / curvature[measured]
            assert bool((rate[measured] <= cap * (1 + 1e-9)).all()), f"step {t}"
            binding += int((rate[measured] >= cap * (1 - 1e-9)).sum())
    assert binding > 0


def test_hyper_lr_zero_is_the_base_rule_below_the_edge():
    """With hyper_lr = 0 the rate stays at lr (the cap, >= the true edge, does not bind below it): the
    iterates are gd's, momentum's (its velocity form is the buffer form at constant lr) and adam's."""
    land = get_landscape("quadratic", kappa=10.0, angle=0.4)
    starts = land.random_starts(4, torch.Generator().manual_seed(2))
    for name, base in BASE.items():
        hyper = {"lr": 0.05} if name != "hd-adam" else {"lr": 0.01}
        ours = simulate(land, Optimizer.build(name, hyper_lr=0.0, **hyper), starts, 80)
        theirs = simulate(land, Optimizer.build(base, **hyper), starts, 80)
        torch.testing.assert_close(ours.positions, theirs.positions, rtol=1e-12, atol=1e-14)


# --- the engine and the torch adapter against the one-particle reference ------------------------------
PER_PARTICLE = {
    "hd-sgd": {},
    "hd-momentum": {"momentum": [0.0, 0.5, 0.8, 0.9, 0.95, 0.7]},
    "hd-adam": {"beta1": [0.0, 0.5, 0.9, 0.9, 0.8, 0.95], "beta2": [0.9, 0.99, 0.999, 0.9, 0.95, 0.999]},
}


@pytest.mark.parametrize("name", HD)
def test_the_engine_runs_each_particle_as_the_reference_loop(name):
    """simulate with six particles, per-particle lr, hyper_lr and the base rule's own hyper-parameters,
    equals six runs of the reference loop; auto falls back to torch, naming the rule."""
    land = get_landscape("himmelblau")
    starts = land.random_starts(6, torch.Generator().manual_seed(4))
    hyper = {
        "lr": [0.002, 0.005, 0.01, 0.003, 0.008, 0.001]
        if name != "hd-adam"
        else [0.01, 0.05, 0.1, 0.2, 0.02, 0.3],
        "hyper_lr": [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e6],
        **PER_PARTICLE[name],
    }
    optimizer = Optimizer.build(name, **{k: torch.tensor(v, dtype=DTYPE) for k, v in hyper.items()})
    traj = simulate(land, optimizer, starts, 50, backend="auto")
    assert traj.fallback == f"no kernel supports the rule {name!r} yet"
    assert traj.stop_step.tolist() == [-1] * 6  # every particle ran every step
    defaults = RULES[name].defaults()
    for i in range(6):
        particle = ReferenceParticle(name, {**defaults, **{k: v[i] for k, v in hyper.items()}}, starts[i])
        path = [starts[i]] + [particle.step(land.gradient(particle.w[None])[0]) for _ in range(50)]
        torch.testing.assert_close(traj.positions[:, i], torch.stack(path), rtol=1e-10, atol=1e-12)
    with pytest.raises(DescentError, match="no kernel supports the rule"):
        simulate(land, optimizer, starts, 5, backend="kernel")


@pytest.mark.parametrize("name", HD)
def test_the_torch_adapter_trains_a_model_with_one_learned_rate(name):
    """TorchOptimizer on a small tanh network: the whole model is one particle with one rate (Baydin et
    al.'s global rate), stepped as the reference loop steps the concatenated parameters with the full
    loss's gradient; a second param group learns its own rate."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).to(DTYPE)
    x = torch.randn(32, 3, dtype=DTYPE)
    y = torch.sin(x.sum(1, keepdim=True))
    hyper = {"lr": 0.05, "hyper_lr": 0.01} if name != "hd-adam" else {"lr": 0.01, "hyper_lr": 1e-4}
    groups = [list(model[0].parameters()), list(model[2].parameters())]

    def flat(tensors):
        return torch.cat([t.detach().reshape(-1) for t in tensors])

    particles = [ReferenceParticle(name, _hyper(name, **hyper), flat(g).clone()) for g in groups]
    optimizer = TorchOptimizer([{"params": g} for g in groups], name, **hyper)
    assert RULES[name].torch_name is None
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        grads = [flat(p.grad for p in g).clone() for g in groups]
        optimizer.step()
        for group, particle, g in zip(groups, particles, grads):
            particle.step(g)
            torch.testing.assert_close(flat(group), particle.w, rtol=1e-10, atol=1e-12)
    rates = [float(optimizer.state[g[0]]["rate"]) for g in groups]
    assert rates == pytest.approx([particle.rate for particle in particles], rel=1e-10)
    assert all(not math.isclose(r, hyper["lr"]) for r in rates)  # they learned
    assert all(p not in optimizer.state for g in groups for p in g[1:])  # one state per group
    restored = TorchOptimizer([{"params": g} for g in groups], name, **hyper)
    restored.load_state_dict(optimizer.state_dict())
    assert float(restored.state[groups[1][0]]["rate"]) == rates[1]


def test_a_run_without_an_lr_starts_from_the_landscapes_own_rate():
    """hd-sgd and hd-momentum step lr times the gradient, as GD does: the landscape's default lr (not
    the share of the box the per-coordinate rules get); hd-adam's step is Adam's."""
    from descent.spec import default_lr

    landscape = get_landscape("himmelblau")
    assert default_lr(landscape, "hd-sgd") == default_lr(landscape, "hd-momentum") == landscape.default_lr
    assert default_lr(landscape, "hd-adam") == default_lr(landscape, "adam") != landscape.default_lr


def test_the_arenas_readout_sets_the_learned_rate_against_the_edge():
    from descent.arena.readout import ball_theory

    landscape = get_landscape("quadratic")
    optimizer = Optimizer.build("hd-sgd", lr=0.01)
    positions = torch.tensor([[1.0, 1.0], [0.5, 0.2], [0.1, 0.1]], dtype=torch.float64)
    rates = torch.tensor([[0.01], [0.02], [0.04]], dtype=torch.float64)
    states = {"step": torch.tensor([0, 1, 2]), "rate": rates}
    theory = ball_theory(landscape, optimizer, positions, states)
    assert theory["edge"][0] is None and theory["lrRatio"][0] is None  # no step taken: no edge yet
    edges = torch.tensor(theory["edge"][1:], dtype=torch.float64)
    ratios = torch.tensor(theory["lrRatio"][1:], dtype=torch.float64)
    torch.testing.assert_close(ratios, rates[1:, 0] / edges)  # the rate held, not the starting lr
