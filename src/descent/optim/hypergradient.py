"""Rules that learn their own learning rate by hypergradient descent (Baydin et al., ICLR 2018): SGD,
heavy-ball momentum and Adam, each with one rate per particle (a column ``[N, 1]`` of the state).

Each base rule moves by ``w_t = w_{t-1} - r_{t-1} u_{t-1}`` along its own direction u (SGD: g; heavy
ball: the buffer b <- beta*b + g; Adam: m_hat/(sqrt(v_hat) + eps)). Holding u fixed, the loss after the
step depends on the rate through that step alone, so its hypergradient is

    dL(w_t)/dr_{t-1} = -g_t . u_{t-1}                              (state "hypergradient")

and the rate takes a gradient step on it, additively (Baydin et al.'s form), in a trust region:

    r_t = min( clip(r_{t-1} - a_t dL/dr, r_{t-1}/2, 2 r_{t-1}), edge_t ),   a_t = min(hyper_lr, 1/(u.H u))

- **the step a_t**: along the last direction the loss is phi(r) = L(w_{t-1} - r u_{t-1}), of curvature
  phi'' = u.H u. A gradient step on phi moves r toward phi's minimum r* without passing it exactly when
  a phi'' <= 1; plain hypergradient descent (a = hyper_lr) needs that condition from its user (on
  h x^2/2 it reads hyper_lr h^3 x_{t-1}^2 <= 1). Here a_t is cut to 1/phi'', phi'' measured (below),
  so r moves toward r* and never past it for every hyper_lr; hyper_lr -> inf gives r_t = r* (for SGD
  that is Barzilai-Borwein's step s.s/s.y). On h x^2/2 the rate moves monotonically toward 1/h.
- **the trust region** [r/2, 2r]: dL/dr is a derivative at r, trusted for changes of the order of r
  itself. It bounds the rate's growth where phi is flat or concave (phi'' <= 0: no r* to stop at) and
  where the hypergradient's scale is large (the heavy ball's buffer is ~ g/(1 - beta)), and it keeps
  the rate positive by construction: r_t >= r_{t-1}/2 > 0 and the cap below is positive, so the rate
  is never negative, nor 0 (which would stop the particle and with it the measurements).
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
  kept (state "curvature", 0 before any measurement). The first step, before any measurement, uses
  ``lr`` uncapped.

``lr`` is the starting rate (a schedule, or a torch scheduler setting ``group["lr"]``, changes only that
start); the rate in use is ``state["rate"]``. Under `TorchOptimizer` each parameter tensor is a particle,
so each tensor learns its own rate.

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


class HDSGDState(GDState):
    rate: torch.Tensor  # r, the learned rate in use, [N, 1]
    curvature: torch.Tensor  # lambda, the last secant curvature measured (0: none), [N, 1]
    hypergradient: torch.Tensor  # dL(w_t)/dr_{t-1} = -g_t . u_{t-1}, [N, 1]
    grad: torch.Tensor  # g_{t-1}, the last gradient (also SGD's direction u_{t-1})


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
    )


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
    ``curvature`` and ``hypergradient``, each ``[N, 1]``. ``direction`` is u_{t-1}, ``metric`` the
    diagonal of P, ``edge_factor`` the numerator of the rule's edge (2 for SGD)."""
    start = per_particle(hp["lr"], params)
    previous = torch.where(state["step"] == 0, start, state["rate"])
    last_step = -previous * direction  # s = w_t - w_{t-1}
    length = _dot(last_step * metric, last_step)  # s.P s
    measured = length > 0
    secant = _dot(grads - state["grad"], last_step) / torch.where(measured, length, torch.ones_like(length))
    curvature = torch.where(measured, secant, state["curvature"])
    hypergradient = -_dot(grads, direction)
    bend = curvature * _dot(direction * metric, direction)  # phi'' = u.H u
    bends = bend > 0
    hyper_lr = per_particle(hp["hyper_lr"], params)
    step_size = torch.where(
        bends, torch.clamp(1 / torch.where(bends, bend, torch.ones_like(bend)), max=hyper_lr), hyper_lr
    )
    rate = torch.clamp(previous - step_size * hypergradient, min=previous / TRUST, max=previous * TRUST)
    bounded = curvature > 0
    edge = torch.where(
        bounded, edge_factor / torch.where(bounded, curvature, torch.ones_like(curvature)), torch.inf
    )
    return {"rate": torch.minimum(rate, edge), "curvature": curvature, "hypergradient": hypergradient}


def _hyper_lr(default: float) -> HyperParam:
    return HyperParam(
        "hyper_lr", default, 0.0, None, help="step of the rate along -dL/dr (at most 1/(u.H u) measured)"
    )


# --- hd-sgd ---------------------------------------------------------------------------------
def _hd_sgd_init(params: torch.Tensor) -> State:
    return cast(State, _sgd_typed(params))


def _hd_sgd_update(grads, state, params, hp, draw):
    learned = _learned_rate(grads, state, params, hp, state["grad"], 1.0, 2.0)
    _, state = _next_step(state)
    return -learned["rate"] * grads, {**state, **learned, "grad": grads}


HD_SGD: UpdateRule = UpdateRule(
    "hd-sgd",
    "SGD learning its own rate by hypergradient descent, capped at the measured edge 2/lambda",
    (_lr(0.01), _hyper_lr(0.01)),
    _hd_sgd_init,
    _hd_sgd_update,
    physics="adaptive",
    per_model=True,
    per_coordinate=False,
    math="r <- min(clip(r + a*g.g_prev, r/2, 2r), 2/lambda), a = min(hyper_lr, 1/(lambda |g_prev|^2)), "
    "lambda = y.s/s.s (secant);  w <- w - r*g",
    edge_fn=_gd_edge,
    edge_math="2/lambda_max",
)


# --- hd-momentum (the heavy ball in torch's buffer form: the rate scales the whole step) -------------
def _hd_momentum_init(params: torch.Tensor) -> State:
    return cast(State, HDMomentumState(**_sgd_typed(params), buffer=torch.zeros_like(params)))


def _hd_momentum_update(grads, state, params, hp, draw):
    beta = per_particle(hp["momentum"], params)
    learned = _learned_rate(grads, state, params, hp, state["buffer"], 1.0, 2 * (1 + beta))
    _, state = _next_step(state)
    buffer = beta * state["buffer"] + grads
    return -learned["rate"] * buffer, {**state, **learned, "grad": grads, "buffer": buffer}


HD_MOMENTUM: UpdateRule = UpdateRule(
    "hd-momentum",
    "heavy ball learning its own rate by hypergradient descent, capped at 2(1+beta)/lambda",
    (_lr(0.01), _beta("momentum", 0.9, "beta: buffer decay"), _hyper_lr(0.001)),
    _hd_momentum_init,
    _hd_momentum_update,
    physics="adaptive",
    per_model=True,
    per_coordinate=False,
    math="r <- min(clip(r + a*g.b, r/2, 2r), 2(1+beta)/lambda), a = min(hyper_lr, 1/(lambda |b|^2)), "
    "lambda = y.s/s.s (secant);  b <- beta*b + g;  w <- w - r*b",
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
    new.update(learned, grad=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq, direction=direction)
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
    ),
    _hd_adam_init,
    _hd_adam_update,
    physics="adaptive",
    per_model=True,
    math="u = m_hat/(sqrt(v_hat) + eps);  r <- min(clip(r + a*g.u_prev, r/2, 2r), "
    "(2+2beta1)/((1-beta1) lambda)), a = min(hyper_lr, 1/(lambda u_prev.P u_prev)), "
    "lambda = y.s/s.P s, P = sqrt(v_hat) + eps;  w <- w - r*u",
    edge_fn=_adam_edge,
    edge_math="(2+2beta1)/((1-beta1) lambda_max(P^-1 H)), P = sqrt(v_hat) + eps",
)
