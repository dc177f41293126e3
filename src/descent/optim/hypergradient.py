"""Rules that learn their own learning rate by hypergradient descent (Baydin et al., ICLR 2018): SGD,
heavy-ball momentum and Adam, each with one rate per particle (a column ``[N, 1]`` of the state).

Each base rule moves by ``w_t = w_{t-1} - r_{t-1} u_{t-1}`` along its own direction u (SGD: g; heavy
ball: the buffer b <- beta*b + g; Adam: m_hat/(sqrt(v_hat) + eps)). Holding u fixed, the loss after the
step depends on the last rate through that step alone: dL(w_t)/dr_{t-1} = -g_t . u_{t-1}, Baydin et
al.'s one-step hypergradient. It is greedy: it asks which rate makes the *next* loss least, and on
noisy mini-batches it settles well below the rate that is best over a whole run (the short-horizon
bias; Wu, Ren, Liao & Grosse, ICLR 2018). Here the rate's change is held over a horizon instead:

- **the discounted tangent** (a first-order forward-mode hypergradient, as in MARTHE, Donini et al.
  2020): a change dr of every past rate, discounted by mu per step back (r_{t-1-k} + mu^k dr), moves
  w_t by -z_t dr with

      z_t = mu z_{t-1} + u_{t-1},     dL(w_t)/dr = -g_t . z_t          (state "tangent", "hypergradient")

  to first order: the Hessian term, through which each u_j would follow the moved w_j (MARTHE's
  z_t = mu (I - r H) z_{t-1} + u_{t-1} for SGD), is dropped; it would cost a Hessian-vector product per
  step. The horizon is ~1/(1-mu) steps; mu = 0 is Baydin et al.'s rule. hd-sgd's tangent at mu = 0.9
  (its default) is the heavy ball's buffer: the same ten-step memory that hd-momentum's direction b and
  hd-adam's m (beta, beta1 = 0.9) already give their one-step hypergradient g_t . u_{t-1}, whose
  default discount is therefore 0. Along a flat direction the
  gradients agree from step to step and their products add up over the horizon, while along a sharp,
  oscillating one they alternate and cancel: a longer horizon weighs the progress a larger rate buys
  against the noise and oscillation it costs over that horizon rather than over one step.

and the rate takes a gradient step on it, additively, in a trust region:

    r_t = min( clip(r_{t-1} - a_t dL/dr, r_{t-1}/2, 2 r_{t-1}), edge_t ),   a_t = min(hyper_lr, 1/(z.H z))

- **the step a_t**: along the tangent the loss is phi(dr) = L(w_t - dr z_t), of curvature phi'' =
  z.H z. A gradient step on phi moves r toward phi's minimum without passing it exactly when a phi''
  <= 1; plain hypergradient descent (a = hyper_lr) needs that condition from its user (on h x^2/2, mu =
  0, it reads hyper_lr h^3 x_{t-1}^2 <= 1). Here a_t is cut to 1/phi'', phi'' measured by the secants of
  the steps that make up z: each step s_j = -r_j u_j meets y_{j+1} = g_{j+1} - g_j, so H u_j ~ -y_{j+1}/
  r_j and H z_t ~ mu (H z_{t-1}) - y_t/r_{t-1} (state "curved"; exact on a quadratic, whatever the
  rates). So r moves toward the minimum and never past it for every hyper_lr; hyper_lr -> inf gives
  that minimum (for SGD at mu = 0, Barzilai-Borwein's step s.s/s.y). On h x^2/2 (mu = 0) the rate moves
  monotonically toward 1/h.
- **the trust region** [r/2, 2r]: dL/dr is a derivative at r, trusted for changes of the order of r
  itself. It bounds the rate's growth where phi is flat or concave (phi'' <= 0: no minimum to stop at)
  and where the hypergradient's scale is large (the heavy ball's buffer is ~ g/(1 - beta)), and it keeps
  the rate positive by construction: r_t >= r_{t-1}/2 > 0 and the cap below is positive, so the rate
  is never negative, nor 0 (which would stop the particle and with it the measurements).
- **or multiplicatively** (``gain`` kappa > 0; Baydin et al.'s multiplicative variant, exponentiated):
  r_t = clip(r_{t-1} exp(kappa cos(g_t, z_t)), r/2, 2r), capped as below. The step depends on the
  hypergradient's sign and the angle only, not on its size: the additive a g.z vanishes with the
  gradients late in training and freezes the rate there, this one keeps moving it by up to a factor
  e^kappa per step (on h x^2/2, mu = 0: cos = +1 while r < 1/h, -1 past it, whatever the scale of x).
  kappa = 0 is the additive rule above.
- **capped at the measured stability edge**: the curvature is the secant one along the last step
  s = w_t - w_{t-1}, y = g_t - g_{t-1}: lambda = y.s / s.P s (P = I; Adam: P = diag(sqrt(v_hat) + eps),
  the preconditioner of the step being taken). It is the Rayleigh quotient along s of the Hessian
  averaged over the step (of P^-1 H for Adam), and the cap is the rule's own edge (``edge_fn``) with
  lambda in place of lambda_max: 2/lambda (SGD), 2(1 + beta)/lambda (heavy ball), (2 + 2 beta1)/
  ((1 - beta1) lambda) (Adam: a heavy ball of step lr (1 - beta1) over a frozen preconditioner). What
  is capped is thus the rate against the curvature *along the direction the particle moves*: exact in
  1-D; on a quadratic lambda <= lambda_max, so the cap is never below the true edge and a rate under
  it can still be unstable along a sharper direction the particle has not stepped along (the secant
  is what a step measures for free; lambda_max would cost Hessian-vector products). lambda <= 0 (flat
  or concave along the step) gives no cap. A step of length 0 measures nothing: the last lambda is
  kept (state "curvature", 0 before any measurement). On mini-batches y also carries the difference of
  two batches' noise, and one noisy secant can cut the rate: with ``smoothing`` nu the cap reads
  lambda = sum_j nu^(t-j) y_j.s_j / sum_j nu^(t-j) s_j.P s_j (states "secant_ys", "secant_ss"), a
  Rayleigh quotient over the recent steps, each weighted by its length (nu = 0: the last step's).
- **the first step is a probe** at ``PROBE * lr``: no curvature has been measured yet, and a start far
  past the edge would throw the particle away in one uncapped step (100 times the edge multiplies a
  quadratic's loss by ~4e4; on a network it kills the units). The probe measures lambda along u_0 at a
  thousandth of the start; the second step moves at ``min(lr, edge)``, and the rate is learned from the
  third on. The probe's step is left out of the tangent (its rate was not r).

``lr`` is the starting rate (an engine schedule changes only that start); the rate in use is
``state["rate"]``. Under `TorchOptimizer` each param group is one particle
(``per_model``), so each group learns one rate, kept in the state of its first parameter
(`TorchOptimizer.rate`); a later change of the group's ``lr`` (a scheduler) is refused.

The physics is declared ``adaptive`` (time step 1 per step): the time step, friction and kinetic energy
read ``hp``, while the rate here lives in the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch

from descent.optim._base import Hyper, HyperParam, State, UpdateRule, per_particle
from descent.optim.rules import (
    GDState,
    _adam_edge,
    _beta,
    _eps,
    _gd_edge,
    _lr,
    _momentum_edge,
    _next_step,
    _no_steps,
    _power,
)

#: the most the rate changes by in one step, as a factor (the trust region [r/TRUST, TRUST r])
TRUST = 2.0
#: the first step moves at PROBE * lr: it measures the curvature before the start is taken
PROBE = 1e-3
#: hd-sgd's default discount: the ten-step memory (mu = 0.9) that hd-momentum's and hd-adam's directions
#: already carry (b and m average the gradients with beta, beta1 = 0.9), whose default discount is 0
SGD_DISCOUNT = 0.9


class HDSGDState(GDState):
    rate: torch.Tensor  # r, the learned rate in use, [N, 1]
    curvature: torch.Tensor  # lambda, the last secant curvature measured (0: none), [N, 1]
    hypergradient: torch.Tensor  # dL(w_t)/dr ~ -g_t . z_t, [N, 1]
    grad: torch.Tensor  # g_{t-1}, the last gradient (also SGD's direction u_{t-1})
    tangent: torch.Tensor  # z_t = mu z_{t-1} + u_{t-1}, minus dw_t/dr to first order
    curved: torch.Tensor  # H z_t by the secants of its steps: mu (H z_{t-1}) - y_t / r_{t-1}
    secant_ys: torch.Tensor  # the discounted sum of the secants' y.s, [N, 1]
    secant_ss: torch.Tensor  # the discounted sum of the steps' s.P s, [N, 1]


class HDMomentumState(HDSGDState):
    buffer: torch.Tensor  # b <- beta*b + g, the heavy ball's direction


class HDAdamState(HDSGDState):
    exp_avg: torch.Tensor  # m, first moment
    exp_avg_sq: torch.Tensor  # v, second moment
    direction: torch.Tensor  # u = m_hat/(sqrt(v_hat) + eps) of the last step


def _sgd_typed(params: torch.Tensor) -> HDSGDState:
    column = torch.zeros(*params.shape[:-1], 1, dtype=params.dtype, device=params.device)
    return HDSGDState(
        step=_no_steps(params),
        rate=column,
        curvature=column,
        hypergradient=column,
        grad=torch.zeros_like(params),
        tangent=torch.zeros_like(params),
        curved=torch.zeros_like(params),
        secant_ys=column,
        secant_ss=column,
    )


def learned_rate(state: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """The rate each particle of a hypergradient rule's ``state`` steps with, ``[N]`` (the state's
    column ``rate``); None for a rule that learns none."""
    rate = state.get("rate")
    return None if rate is None else rate.reshape(rate.shape[0], -1)[:, 0]


def _divisor(value: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    """``value`` where ``usable``, else 1: a quotient whose other rows the caller discards (a
    ``torch.where`` after it), without a division by zero there."""
    return torch.where(usable, value, torch.ones_like(value))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise a.b, ``[N, d] -> [N, 1]``."""
    return (a * b).sum(dim=-1, keepdim=True)


def _learned_rate(
    grads: torch.Tensor,
    state: State,
    params: torch.Tensor,
    hp: Mapping[str, Hyper],
    direction: torch.Tensor,
    metric: torch.Tensor | float,
    edge_factor: Hyper,
) -> dict[str, torch.Tensor]:
    """The rate of this step and what it was learned from (module docstring): ``rate``,
    ``curvature`` and ``hypergradient``, each ``[N, 1]``, and ``curved`` (H z_t, like the params).
    ``direction`` is u_{t-1}, ``metric`` the diagonal of P, ``edge_factor`` the numerator of the
    rule's edge (2 for SGD)."""
    start = per_particle(hp["lr"], params)
    last_step = -state["rate"] * direction  # s = w_t - w_{t-1} (0 before the first step)
    nu = per_particle(hp["smoothing"], params)
    ys = nu * state["secant_ys"] + _dot(grads - state["grad"], last_step)  # sum_j nu^(t-j) y_j.s_j
    length = nu * state["secant_ss"] + _dot(last_step * metric, last_step)  # sum_j nu^(t-j) s_j.P s_j
    measured = length > 0
    secant = ys / _divisor(length, measured)
    curvature = torch.where(measured, secant, state["curvature"])
    tangent = state["tangent"]  # z_t (0 until a step at a learned rate was taken)
    hypergradient = -_dot(grads, tangent)
    in_tangent = state["step"] >= 2  # the last step is in z_t (it was not the probe)
    along = -(grads - state["grad"]) / _divisor(state["rate"], in_tangent)
    mu = per_particle(hp["discount"], params)
    curved = torch.where(in_tangent, mu * state["curved"] + along, torch.zeros_like(along))  # H z_t
    bend = _dot(tangent, curved)  # z.H z
    bends = bend > 0
    hyper_lr = per_particle(hp["hyper_lr"], params)
    step_size = torch.where(bends, torch.clamp(1 / _divisor(bend, bends), max=hyper_lr), hyper_lr)
    previous = torch.where(state["step"] <= 1, start, state["rate"])  # after the probe: the start
    kappa = per_particle(hp["gain"], params)
    norms = torch.linalg.vector_norm(grads, dim=-1, keepdim=True) * torch.linalg.vector_norm(
        tangent, dim=-1, keepdim=True
    )
    cosine = -hypergradient / _divisor(norms, norms > 0)  # cos(g_t, z_t)
    changed = torch.where(
        torch.as_tensor(kappa) > 0, previous * torch.exp(kappa * cosine), previous - step_size * hypergradient
    )
    rate = torch.clamp(changed, min=previous / TRUST, max=previous * TRUST)
    bounded = curvature > 0
    edge = torch.where(bounded, edge_factor / _divisor(curvature, bounded), torch.inf)
    rate = torch.minimum(rate, edge)
    rate = torch.where(state["step"] == 0, PROBE * rate, rate)
    return {
        "rate": rate,
        "curvature": curvature,
        "hypergradient": hypergradient,
        "curved": curved,
        "secant_ys": ys,
        "secant_ss": length,
    }


def _carry(
    state: State, hp: Mapping[str, Hyper], params: torch.Tensor, direction: torch.Tensor
) -> torch.Tensor:
    """The tangent after this step, z_{t+1} = mu z_t + u_t; the probe (step 0) is left out of it."""
    tangent = per_particle(hp["discount"], params) * state["tangent"] + direction
    return torch.where(state["step"] == 0, torch.zeros_like(tangent), tangent)


def _hyper_lr(default: float) -> HyperParam:
    return HyperParam(
        "hyper_lr", default, 0.0, None, help="step of the rate along -dL/dr (at most 1/(z.H z) measured)"
    )


def _gain(default: float) -> HyperParam:
    return HyperParam(
        "gain", default, 0.0, None, help="kappa: r <- r exp(kappa cos(g, z)) (0: the additive step on dL/dr)"
    )


def _smoothing(default: float) -> HyperParam:
    return _beta(
        "smoothing", default, "nu: the edge sums its secants y.s, s.s with discount nu (0: the last)"
    )


def _discount(default: float) -> HyperParam:
    return _beta(
        "discount", default, "mu: the tangent's discount, a horizon of ~1/(1-mu) steps (0: one step)"
    )


# --- hd-sgd ---------------------------------------------------------------------------------
def _hd_sgd_init(params: torch.Tensor) -> State:
    return cast(State, _sgd_typed(params))


def _hd_sgd_update(grads, state, params, hp, draw):
    learned = _learned_rate(grads, state, params, hp, state["grad"], 1.0, 2.0)
    tangent = _carry(state, hp, params, grads)
    _, state = _next_step(state)
    return -learned["rate"] * grads, {**state, **learned, "grad": grads, "tangent": tangent}


HD_SGD: UpdateRule = UpdateRule(
    "hd-sgd",
    "SGD learning its own rate by hypergradient descent, capped at the measured edge 2/lambda",
    (_lr(0.01), _hyper_lr(0.01), _discount(SGD_DISCOUNT), _gain(0.0), _smoothing(0.0)),
    _hd_sgd_init,
    _hd_sgd_update,
    physics="adaptive",
    per_model=True,
    per_coordinate=False,
    math="z <- mu*z + g_prev;  r <- min(clip(r + a*g.z, r/2, 2r), 2/lambda), a = min(hyper_lr, 1/(z.Hz)), "
    "Hz <- mu*Hz - y/r, lambda = y.s/s.s (secants);  w <- w - r*g (first step: r = lr/1000)",
    edge_fn=_gd_edge,
    edge_math="2/lambda_max",
)


# --- hd-momentum (the heavy ball in torch's buffer form: the rate scales the whole step) -------------
def _hd_momentum_init(params: torch.Tensor) -> State:
    return cast(State, HDMomentumState(**_sgd_typed(params), buffer=torch.zeros_like(params)))


def _hd_momentum_update(grads, state, params, hp, draw):
    beta = per_particle(hp["momentum"], params)
    learned = _learned_rate(grads, state, params, hp, state["buffer"], 1.0, 2 * (1 + beta))
    buffer = beta * state["buffer"] + grads
    tangent = _carry(state, hp, params, buffer)
    _, state = _next_step(state)
    return -learned["rate"] * buffer, {
        **state,
        **learned,
        "grad": grads,
        "buffer": buffer,
        "tangent": tangent,
    }


HD_MOMENTUM: UpdateRule = UpdateRule(
    "hd-momentum",
    "heavy ball learning its own rate by hypergradient descent, capped at 2(1+beta)/lambda",
    (
        _lr(0.01),
        _beta("momentum", 0.9, "beta: buffer decay"),
        _hyper_lr(0.001),
        _discount(0.0),
        _gain(0.0),
        _smoothing(0.0),
    ),
    _hd_momentum_init,
    _hd_momentum_update,
    physics="adaptive",
    per_model=True,
    per_coordinate=False,
    math="z <- mu*z + b_prev;  r <- min(clip(r + a*g.z, r/2, 2r), 2(1+beta)/lambda), "
    "a = min(hyper_lr, 1/(z.Hz)), Hz <- mu*Hz - y/r, lambda = y.s/s.s (secants);  b <- beta*b + g;  "
    "w <- w - r*b (first step: r = lr/1000)",
    edge_fn=_momentum_edge,
    edge_math="2(1+beta)/lambda_max",
)


# --- hd-adam --------------------------------------------------------------------------------
def _hd_adam_init(params: torch.Tensor) -> State:
    zeros = torch.zeros_like(params)
    return cast(State, HDAdamState(**_sgd_typed(params), exp_avg=zeros, exp_avg_sq=zeros, direction=zeros))


def _hd_adam_update(grads, state, params, hp, draw):
    step, new = _next_step(state)
    beta1 = per_particle(hp["beta1"], params)
    beta2 = per_particle(hp["beta2"], params)
    exp_avg = beta1 * state["exp_avg"] + (1 - beta1) * grads
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * grads * grads
    t = step.to(params.dtype)
    scale = torch.sqrt(exp_avg_sq / (1 - _power(beta2, t))) + per_particle(hp["eps"], params)  # P
    direction = exp_avg / (1 - _power(beta1, t)) / scale
    edge_factor = (2 + 2 * beta1) / (1 - beta1)
    learned = _learned_rate(grads, state, params, hp, state["direction"], scale, edge_factor)
    tangent = _carry(state, hp, params, direction)
    new.update(
        learned, grad=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq, direction=direction, tangent=tangent
    )
    return -learned["rate"] * direction, new


HD_ADAM: UpdateRule = UpdateRule(
    "hd-adam",
    "Adam learning its own rate by hypergradient descent, capped at its preconditioned edge",
    (
        _lr(1e-3),
        _beta("beta1", 0.9, "first-moment decay"),
        _beta("beta2", 0.999, "second-moment decay"),
        _eps(1e-8),
        _hyper_lr(1e-4),
        _discount(0.0),
        _gain(0.0),
        _smoothing(0.0),
    ),
    _hd_adam_init,
    _hd_adam_update,
    physics="adaptive",
    per_model=True,
    math="u = m_hat/(sqrt(v_hat) + eps);  z <- mu*z + u_prev;  r <- min(clip(r + a*g.z, r/2, 2r), "
    "(2+2beta1)/((1-beta1) lambda)), a = min(hyper_lr, 1/(z.Hz)), Hz <- mu*Hz - y/r, "
    "lambda = y.s/s.P s, P = sqrt(v_hat) + eps;  w <- w - r*u (first step: r = lr/1000)",
    edge_fn=_adam_edge,
    edge_math="(2+2beta1)/((1-beta1) lambda_max(P^-1 H)), P = sqrt(v_hat) + eps",
)
