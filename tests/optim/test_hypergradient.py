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
from descent.optim.hypergradient import PROBE

torch.set_num_threads(1)

DTYPE = torch.float64
HD = ("hd-sgd", "hd-momentum", "hd-adam")
BASE = {"hd-sgd": "gd", "hd-momentum": "momentum", "hd-adam": "adam"}


# --- an independent reference: one particle, the paper's equations written out step by step ---------
class ReferenceParticle:
    """One particle of ``name`` with python-float hyper-parameters, stepped by ``step(g)``.

    Step 1 is a probe at PROBE * lr. Per step t >= 2 (u: the base rule's direction, r: the rate the
    last step moved at, P: 1, or Adam's sqrt(v_hat) + eps, z: the tangent, mu: the discount):
      s = -r u_prev, y = g - g_prev, lambda = y.s / s.P s (kept when s = 0),
      with smoothing nu: lambda = Y/S, Y <- nu Y + y.s, S <- nu S + s.P s (kept when S = 0),
      dL/dr = -g.z, q = mu q - y/r (H z; 0 until a step after the probe, t >= 3),
      a = min(hyper_lr, 1/(z.q)) when that curvature is > 0,
      r0 = lr at t = 2 (after the probe), else r;
      r' = r0 - a dL/dr, or with gain kappa > 0: r' = r0 exp(kappa cos(g, z)) (cos 0 when z = 0);
      r <- min(r' clipped to [r0/2, 2 r0], edge/lambda when lambda > 0),
      w <- w - r u,  z <- mu z + u (z = 0 after the probe).
    """

    def __init__(self, name: str, hyper: dict[str, float], w: torch.Tensor) -> None:
        self.name, self.hp, self.w = name, hyper, w.clone()
        self.rate = 0.0
        self.curvature = 0.0
        self.ys = self.ss = 0.0
        self.t = 0
        self.g_prev = self.u_prev = None
        self.tangent = torch.zeros_like(w)
        self.curved = torch.zeros_like(w)
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
        if self.t == 1:
            self.rate = PROBE * self.hp["lr"]
        else:
            s = -self.rate * self.u_prev
            y = g - self.g_prev
            nu = self.hp.get("smoothing", 0.0)
            self.ys = nu * self.ys + float(torch.dot(y, s))
            self.ss = nu * self.ss + float(torch.dot(s, metric * s))
            if self.ss > 0:
                self.curvature = self.ys / self.ss
            dloss_drate = -float(torch.dot(g, self.tangent))
            if self.t > 2:  # H z by the secants: H u_prev = -y / r (exact on a quadratic)
                self.curved = self.hp["discount"] * self.curved - y / self.rate
            rate_curvature = float(torch.dot(self.tangent, self.curved))
            a = self.hp["hyper_lr"]
            if rate_curvature > 0:
                a = min(a, 1.0 / rate_curvature)
            old = self.hp["lr"] if self.t == 2 else self.rate
            new = old - a * dloss_drate
            kappa = self.hp.get("gain", 0.0)
            if kappa > 0:
                norms = float(torch.linalg.vector_norm(g) * torch.linalg.vector_norm(self.tangent))
                new = old * math.exp(kappa * (-dloss_drate / norms if norms > 0 else 0.0))
            new = min(max(new, old / 2), 2 * old)
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
        self.tangent = self.hp["discount"] * self.tangent + u if self.t > 1 else torch.zeros_like(u)
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
    far outside it (to rounding: 1e-12). The steps where the rate does not change are those where x
    has reached 0. The first
    step is the probe (PROBE * lr), the second moves at lr: below the edge 2/h, nothing cuts it."""
    land = get_landscape("quadratic", dim=1, mu=h)
    for hyper_lr in (1e-3 / h**3, 1.0, 1e12):
        rule = RULES["hd-sgd"]
        hp = rule.resolve({"lr": fraction / h, "hyper_lr": hyper_lr, "discount": 0.0})
        x = torch.ones(1, 1, dtype=DTYPE)
        state = rule.init(x)
        rates = []
        for _ in range(40):
            update, state = rule.update(land.gradient(x), state, x, hp, None)
            x = x + update
            rates.append(float(state["rate"]))
        rates_h = torch.tensor(rates, dtype=DTYPE) * h
        assert bool((rates_h[1:] >= rates_h[:-1] - 1e-12).all()), "the rate must not move away from 1/h"
        assert bool((rates_h <= 1 + 1e-12).all()), f"crossed 1/h: {rates_h.max().item()}"
        assert rates_h[0] == pytest.approx(PROBE * fraction) and rates_h[1] == pytest.approx(fraction)
        assert rates_h[2] > rates_h[1], "the first learned step must move the rate toward 1/h"
        if hyper_lr == 1e12:  # the step along r is 1/(u.H u): the rate reaches 1/h, doubling at most
            assert rates_h[-1] == pytest.approx(1.0, rel=1e-12)


# --- the hypergradient is the derivative of the next loss in the rate -------------------------------
@pytest.mark.parametrize("name", HD)
def test_the_hypergradient_equals_autograd_through_one_unrolled_step(name):
    """discount = 0 (a horizon of one step, Baydin et al.'s rule): after a few steps, one more step is
    taken with the rate of the state as an autograd leaf and hyper_lr = 0 (so the step's rate is that
    leaf: derivative 1); dL(w_next)/dr by autograd through the rule's own update equals the
    hypergradient the rule reports at the next step, within 1e-12."""
    rule = RULES[name]
    hyper = _hyper(name, lr=0.05, hyper_lr=0.01, discount=0.0)
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


def _direction(name: str, state: dict) -> torch.Tensor:
    """u_t, the base rule's direction of the step the state was made for (w_{t+1} = w_t - r_t u_t)."""
    return state[{"hd-sgd": "grad", "hd-momentum": "buffer", "hd-adam": "direction"}[name]]


@pytest.mark.parametrize("name", HD)
@pytest.mark.parametrize("mu", [0.5, 0.9])
def test_the_discounted_hypergradient_is_autograd_through_the_unrolled_steps(name, mu):
    """The path after the probe is rebuilt from w_1 with the rates r_j + mu^(K-1-j) delta (a rate change
    delta held over the past, discounted by mu per step back) and the rule's directions u_j held fixed
    (the first-order tangent: the Hessian term, through which u_j would follow w_j, is dropped);
    dL(w_K)/d delta by autograd at delta = 0 equals the hypergradient -g_K.z_K the rule reports at K."""
    hyper = _hyper(name, lr=0.02 if name == "hd-adam" else 0.05, hyper_lr=0.01, discount=mu)
    steps = 8
    path, grads, states = _run_rule(
        name, hyper, bumpy, torch.tensor([[0.9, -1.2, 0.4]], dtype=DTYPE), steps + 1
    )
    delta = torch.zeros(1, 1, dtype=DTYPE, requires_grad=True)
    w = path[1]
    for j in range(1, steps):
        torch.testing.assert_close(path[j + 1] - path[j], -states[j]["rate"] * _direction(name, states[j]))
        w = w - (states[j]["rate"] + mu ** (steps - 1 - j) * delta) * _direction(name, states[j])
    torch.testing.assert_close(w.detach(), path[steps], rtol=1e-12, atol=1e-14)
    (by_autograd,) = torch.autograd.grad(bumpy(w).sum(), delta)
    assert abs(float(states[steps]["hypergradient"]) - float(by_autograd)) <= 1e-12
    assert abs(float(by_autograd)) > 1e-3


QUADRATIC = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 0.2]], dtype=DTYPE)


def _bowl(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((w @ QUADRATIC) * w).sum(-1)


@pytest.mark.parametrize("name", HD)
def test_the_tangents_curvature_by_secants_is_the_exact_hessian_on_a_quadratic(name):
    """On w.A w/2 every secant is exact (y = A s), so the rule's H z_t (state "curved", built as
    mu H z_{t-1} - y_t/r_{t-1}) is A z_t, and the rate's curvature z.H z is exact, whatever the rates."""
    hyper = _hyper(name, lr=0.1 if name == "hd-adam" else 0.2, hyper_lr=1.0, discount=0.8)
    w = torch.tensor([[1.0, -0.5, 2.0]], dtype=DTYPE)
    path, grads, states = _run_rule(name, hyper, _bowl, w, 20)
    for t in range(2, 20):  # states[t] holds H z_t, states[t - 1] the tangent z_t
        torch.testing.assert_close(
            states[t]["curved"], states[t - 1]["tangent"] @ QUADRATIC, rtol=1e-9, atol=1e-12
        )
    assert float(states[19]["curved"].abs().max()) > 1e-3


def test_on_a_quadratic_the_first_order_tangent_misses_the_hessian_term_by_its_closed_form():
    """hd-sgd on w.A w/2 with the directions u_j = g(w_j) left to follow w_j: the exact dL(w_K)/d delta
    (autograd, the Hessian term kept) is -g_K.q_K with q_{j+1} = mu (I - r_j A) q_j + g_j (MARTHE's
    tangent), and the rule's first-order -g_K.z_K (z_{j+1} = mu z_j + g_j) differs from it by
    g_K.(q_K - z_K); that difference is not negligible here."""
    mu, steps = 0.9, 10
    hyper = _hyper("hd-sgd", lr=0.2, hyper_lr=0.01, discount=mu)
    path, grads, states = _run_rule(
        "hd-sgd", hyper, _bowl, torch.tensor([[1.0, -0.5, 2.0]], dtype=DTYPE), steps + 1
    )
    delta = torch.zeros(1, 1, dtype=DTYPE, requires_grad=True)
    w = path[1]
    q = z = torch.zeros_like(w)
    for j in range(1, steps):
        rate = states[j]["rate"]
        g = w.detach() @ QUADRATIC
        q = mu * (q - rate * q @ QUADRATIC) + g
        z = mu * z + g
        w = w - (rate + mu ** (steps - 1 - j) * delta) * (w @ QUADRATIC)
    (exact,) = torch.autograd.grad(_bowl(w).sum(), delta)
    g_last = grads[steps]
    assert float(exact) == pytest.approx(-float((g_last * q).sum()), rel=1e-10)
    hessian_term = float((g_last * (q - z)).sum())
    assert float(states[steps]["hypergradient"]) == pytest.approx(float(exact) + hessian_term, rel=1e-10)
    assert abs(hessian_term) > 0.1 * abs(float(exact))


@pytest.mark.parametrize("name", HD)
@pytest.mark.parametrize("mu", [0.0, 0.9])
def test_a_start_100_times_the_edge_does_not_diverge(name, mu):
    """The first step is a probe at PROBE * lr, and the second is capped at the edge the probe measured:
    from 100 times the edge on a quadratic of curvatures 1 and 10 (SGD 2/10, the heavy ball 2(1+beta)/10;
    Adam, whose first step moves each coordinate by about lr, from lr = 100 times the distance to the
    minimum) the loss never exceeds 1000 times the start's and ends below it, where one step of the base
    rule at that rate multiplies it by more than 1000."""
    c, s = math.cos(0.4), math.sin(0.4)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=DTYPE)
    hessian = rotation @ torch.diag(torch.tensor([1.0, 10.0], dtype=DTYPE)) @ rotation.T
    w = torch.tensor([[1.5, 1.0]], dtype=DTYPE)
    lr = 100 * {"hd-sgd": 2 / 10, "hd-momentum": 2 * 1.9 / 10, "hd-adam": 1.5}[name]
    rule = RULES[name]
    hp = rule.resolve({"lr": lr, "discount": mu})
    state = rule.init(w)

    def loss(x: torch.Tensor) -> float:
        return float(0.5 * ((x @ hessian) * x).sum())

    start = loss(w)
    losses = []
    for _ in range(300):
        update, state = rule.update(w @ hessian, state, w, hp, None)
        if not losses:
            assert float(state["rate"]) == pytest.approx(PROBE * lr)
        w = w + update
        losses.append(loss(w))
    assert max(losses) <= 1e3 * start and losses[-1] < start
    base_rule = RULES[BASE[name]]
    base_hp = base_rule.resolve({"lr": lr})
    w0 = torch.tensor([[1.5, 1.0]], dtype=DTYPE)
    update, _ = base_rule.update(w0 @ hessian, base_rule.init(w0), w0, base_hp, None)
    assert loss(w0 + update) > 1e3 * start


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
    """With hyper_lr = 0 the rate is lr after the probe (the cap, >= the true edge, does not bind below
    it): the iterates are torch.optim's SGD, SGD with momentum (the buffer form) and Adam, stepped at
    PROBE * lr once and at lr after."""
    land = get_landscape("quadratic", kappa=10.0, angle=0.4)
    starts = land.random_starts(4, torch.Generator().manual_seed(2))
    makers = {
        "hd-sgd": lambda p: torch.optim.SGD(p, lr=0.05),
        "hd-momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
        "hd-adam": lambda p: torch.optim.Adam(p, lr=0.01),
    }
    for name, make in makers.items():
        lr = 0.01 if name == "hd-adam" else 0.05
        ours = simulate(land, Optimizer.build(name, hyper_lr=0.0, lr=lr), starts, 80)
        w = starts.clone().requires_grad_(True)
        reference = make([w])
        path = [starts]
        for k in range(80):
            reference.param_groups[0]["lr"] = PROBE * lr if k == 0 else lr
            w.grad = land.gradient(w.detach())
            reference.step()
            path.append(w.detach().clone())
        torch.testing.assert_close(ours.positions, torch.stack(path), rtol=1e-12, atol=1e-14)


# --- the engine and the torch adapter against the one-particle reference ------------------------------
PER_PARTICLE = {
    "hd-sgd": {},
    "hd-momentum": {"momentum": [0.0, 0.5, 0.8, 0.9, 0.95, 0.7]},
    "hd-adam": {"beta1": [0.0, 0.5, 0.9, 0.9, 0.8, 0.95], "beta2": [0.9, 0.99, 0.999, 0.9, 0.95, 0.999]},
}


#: the multiplicative step (gain > 0: r <- r exp(kappa cos(g, z))) and the smoothed edge (smoothing > 0:
#: lambda = the discounted sum of y.s over that of s.P s), per particle; particle 0 is additive
MULTIPLICATIVE = {"gain": [0.0, 0.05, 0.1, 0.3, 1.0, 0.02], "smoothing": [0.9, 0.0, 0.5, 0.99, 0.9, 0.7]}


@pytest.mark.parametrize("name", HD)
@pytest.mark.parametrize("options", [{}, MULTIPLICATIVE], ids=["additive", "multiplicative"])
def test_the_engine_runs_each_particle_as_the_reference_loop(name, options):
    """simulate with six particles, per-particle lr, hyper_lr, discount (with and without the
    multiplicative step and the smoothed edge) and the base rule's own hyper-parameters, equals six runs
    of the reference loop; auto falls back to torch, naming the rule."""
    land = get_landscape("himmelblau")
    starts = land.random_starts(6, torch.Generator().manual_seed(4))
    hyper = {
        "lr": [0.002, 0.005, 0.01, 0.003, 0.008, 0.001]
        if name != "hd-adam"
        else [0.01, 0.05, 0.1, 0.2, 0.02, 0.3],
        "hyper_lr": [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e6],
        "discount": [0.0, 0.5, 0.9, 0.99, 0.0, 0.7],
        **PER_PARTICLE[name],
        **options,
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


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_the_multiplicative_rate_on_a_quadratic_climbs_by_e_to_the_gain_whatever_the_gradients_scale(scale):
    """On h x^2/2 (mu = 0) z_t = g_{t-1}, so cos(g_t, z_t) = +1 while x keeps its sign (r < 1/h) and -1
    once it flips (1/h < r < 2/h): from lr << 1/h the rate is lr exp(kappa (t-2)) until it passes 1/h,
    then stays within a factor e^kappa of 1/h; the same from x_0 = 1e-6, 1 or 1e6 (the additive step,
    hyper_lr g.z, would depend on the scale as x^2)."""
    h, lr, kappa = 4.0, 1e-3, 0.2
    rule = RULES["hd-sgd"]
    hp = rule.resolve({"lr": lr, "discount": 0.0, "gain": kappa})
    x = torch.tensor([[scale]], dtype=DTYPE)
    state = rule.init(x)
    rates = []
    for _ in range(80):
        update, state = rule.update(h * x, state, x, hp, None)
        x = x + update
        rates.append(float(state["rate"]))
    crossed = next(t for t, r in enumerate(rates) if r > 1 / h)
    assert crossed == 2 + math.ceil(math.log(1 / (h * lr)) / kappa) - 1
    for t in range(1, crossed + 1):  # rates[t] is step t + 1's
        assert rates[t] == pytest.approx(lr * math.exp(kappa * (t - 1)), rel=1e-12)
    assert all(math.exp(-kappa) / h <= r <= math.exp(kappa) / h * (1 + 1e-12) for r in rates[crossed:])


def test_the_smoothed_edge_is_the_ratio_of_discounted_secant_sums_and_stays_in_the_spectrum():
    """On w.A w/2 (eigenvalues 1 and 10) with smoothing nu, the curvature the rule reports equals
    sum_j nu^(t-j) y_j.s_j / sum_j nu^(t-j) s_j.s_j computed here from the recorded path; being a ratio
    of sums of s.A s over sums of s.s, it lies between A's smallest and largest eigenvalue."""
    c, s_ = math.cos(0.4), math.sin(0.4)
    rotation = torch.tensor([[c, -s_], [s_, c]], dtype=DTYPE)
    hessian = rotation @ torch.diag(torch.tensor([1.0, 10.0], dtype=DTYPE)) @ rotation.T
    nu = 0.8
    hyper = _hyper("hd-sgd", lr=0.15, hyper_lr=0.01, smoothing=nu)
    path, grads, states = _run_rule(
        "hd-sgd",
        hyper,
        lambda w: 0.5 * ((w @ hessian) * w).sum(-1),
        torch.tensor([[1.5, 1.0]], dtype=DTYPE),
        30,
    )
    ys = ss = 0.0
    for t in range(1, 30):
        step = path[t] - path[t - 1]
        ys = nu * ys + float(((grads[t] - grads[t - 1]) * step).sum())
        ss = nu * ss + float((step * step).sum())
        curvature = float(states[t]["curvature"])
        assert curvature == pytest.approx(ys / ss, rel=1e-10)
        assert 1.0 - 1e-9 <= curvature <= 10.0 + 1e-9
    last = path[29] - path[28]
    assert abs(ys / ss - float((last @ hessian * last).sum() / (last * last).sum())) > 1e-3  # not the last


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
