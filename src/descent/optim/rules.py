"""The update rules. Each is documented with its math; g is the (processed) gradient, t the step count
starting at 1. Conventions follow torch.optim (see REFERENCE.md), except `momentum`, which uses the
seeds' velocity form; the mapping to torch's buffer form is v = -lr * b at constant lr.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypedDict, cast

import torch

from descent.optim._base import Hyper, HyperParam, State, UpdateRule, per_particle


# --- the rules' states: typed dicts of tensors shaped like the particles [N, d], plus the step count ---
class GDState(TypedDict):
    step: torch.Tensor  # int64 scalar: steps taken


class MomentumState(GDState):
    velocity: torch.Tensor  # v, the seeds' velocity (displacement per step)


class NesterovState(GDState):
    buffer: torch.Tensor  # b, torch's momentum buffer


class AdagradState(GDState):
    sum: torch.Tensor  # s, the summed squared gradient


class RMSpropState(GDState):
    square_avg: torch.Tensor  # s, running mean of g^2
    grad_avg: torch.Tensor  # m, running mean of g (centred)
    buffer: torch.Tensor  # b, momentum on the scaled step


class AdamState(GDState):
    exp_avg: torch.Tensor  # m, first moment
    exp_avg_sq: torch.Tensor  # v, second moment
    max_exp_avg_sq: torch.Tensor  # running maximum of v (AMSGrad)


def _state(typed: GDState) -> State:
    """A rule's typed state as the engine's ``State`` (``dict[str, Tensor]``). The cast holds: every
    field of GDState and of the TypedDicts that extend it is a tensor, and each init builds its state
    with exactly its TypedDict's keys (mypy checks that); mypy only refuses a TypedDict as a ``dict``
    because a TypedDict in general may hold other values."""
    return cast(State, typed)


def _no_steps(params: torch.Tensor) -> torch.Tensor:
    """The step count of a fresh state: an int64 scalar 0 on the particles' device."""
    return torch.zeros((), dtype=torch.int64, device=params.device)


LR = "learning rate (step size; time step lr for GD, sqrt(lr) for the heavy ball)"


def _lr(default: float) -> HyperParam:
    return HyperParam("lr", default, 0.0, None, low_open=True, help=LR)


def _beta(name: str, default: float, help: str) -> HyperParam:
    return HyperParam(name, default, 0.0, 1.0, high_open=True, help=help)


def _eps(default: float) -> HyperParam:
    return HyperParam("eps", default, 0.0, None, help="added to the denominator, outside the square root")


def _power(beta: Hyper, t: torch.Tensor) -> torch.Tensor:
    """beta**t as exp(t log beta): the same bits for a particle whatever the batch's size (torch's
    ``pow`` with a tensor exponent is not length-invariant on the CPU); no host copy on CUDA."""
    log_beta = torch.log(beta) if isinstance(beta, torch.Tensor) else math.log(beta)
    return torch.exp(t * log_beta)


def _next_step(state: State) -> tuple[torch.Tensor, State]:
    step = state["step"] + 1
    return step, {**state, "step": step}


# --- stability edges (REFERENCE.md, "Quadratics"; Adam on the preconditioned sharpness) --------------
def _column_of(value: Hyper, n: int, like: torch.Tensor) -> torch.Tensor:
    """A hyper-parameter as a ``[N]`` tensor (floats broadcast, ``[N]`` and ``[N, 1]`` flattened)."""
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1)
    return tensor.expand(n) if tensor.numel() == 1 else tensor


def _sharpness(hessian: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """The top eigenvalue of H (``[N, d, d] -> [N]``), or of P^-1 H with P = diag(scale) ``[N, d]``
    (computed on the similar symmetric matrix P^-1/2 H P^-1/2)."""
    h = 0.5 * (hessian + hessian.transpose(-1, -2))
    if scale is not None:
        root = torch.rsqrt(scale)
        h = root.unsqueeze(-1) * h * root.unsqueeze(-2)
    return torch.linalg.eigvalsh(h)[..., -1]


def _edge_over(numerator: torch.Tensor | float, sharpness: torch.Tensor) -> torch.Tensor:
    """numerator / sharpness where the sharpness is positive, inf elsewhere."""
    positive = sharpness > 0
    safe = torch.where(positive, sharpness, torch.ones_like(sharpness))
    return torch.where(positive, numerator / safe, torch.full_like(sharpness, math.inf))


def _gd_edge(hessian, state, hp):
    """2 / lambda_max."""
    return _edge_over(2.0, _sharpness(hessian))


def _momentum_edge(hessian, state, hp):
    """2 (1 + beta) / lambda_max."""
    beta = _column_of(hp["momentum"], hessian.shape[0], hessian)
    return _edge_over(2 * (1 + beta), _sharpness(hessian))


def _nesterov_edge(hessian, state, hp):
    """2 (1 + beta) / ((1 + 2 beta) lambda_max)."""
    beta = _column_of(hp["momentum"], hessian.shape[0], hessian)
    return _edge_over(2 * (1 + beta) / (1 + 2 * beta), _sharpness(hessian))


def _state_row(state: State, name: str, hessian: torch.Tensor) -> torch.Tensor:
    value = state[name].to(hessian.dtype)
    return value.reshape(-1, hessian.shape[-1]).expand(hessian.shape[0], -1)


def _adagrad_edge(hessian, state, hp):
    """2 / lambda_max(P^-1 H), P = sqrt(sum of g^2) + eps (the current preconditioner, frozen)."""
    eps = _column_of(hp["eps"], hessian.shape[0], hessian).unsqueeze(1)
    scale = torch.sqrt(_state_row(state, "sum", hessian)) + eps
    return _edge_over(2.0, _sharpness(hessian, scale))


def _rmsprop_edge(hessian, state, hp):
    """2 (1 + mu) / lambda_max(P^-1 H), P = sqrt(s~) + eps (mu: its momentum, 0 without)."""
    n = hessian.shape[0]
    eps = _column_of(hp["eps"], n, hessian).unsqueeze(1)
    square = _state_row(state, "square_avg", hessian)
    if hp["centered"]:
        square = square - _state_row(state, "grad_avg", hessian) ** 2
    mu = _column_of(hp["momentum"], n, hessian)
    return _edge_over(2 * (1 + mu), _sharpness(hessian, torch.sqrt(square) + eps))


def _adam_edge(hessian, state, hp, second_moment: str = "exp_avg_sq"):
    """(2 + 2 beta1) / ((1 - beta1) lambda_max(P^-1 H)), P = sqrt(v / (1 - beta2^t)) + eps: Adam with
    a frozen preconditioner is a heavy ball of step lr (1 - beta1) (REFERENCE.md). ``state["step"]``
    is one count or one per row of ``hessian``."""
    n = hessian.shape[0]
    beta1 = _column_of(hp["beta1"], n, hessian)
    beta2 = _column_of(hp["beta2"], n, hessian).unsqueeze(1)
    eps = _column_of(hp["eps"], n, hessian).unsqueeze(1)
    t = torch.clamp(state["step"].to(hessian.dtype), min=1).reshape(-1, 1)
    second = _state_row(state, second_moment, hessian)
    scale = torch.sqrt(second / (1 - _power(beta2, t))) + eps
    return _edge_over((2 + 2 * beta1) / (1 - beta1), _sharpness(hessian, scale))


def _amsgrad_edge(hessian, state, hp):
    """Adam's edge with the running maximum of the second moment, which AMSGrad divides by."""
    return _adam_edge(hessian, state, hp, "max_exp_avg_sq")


# --- gd -------------------------------------------------------------------------------------
def _gd_init(params: torch.Tensor) -> State:
    return _state(GDState(step=_no_steps(params)))


def _gd_update(grads, state, params, hp, draw):
    _, state = _next_step(state)
    return -per_particle(hp["lr"], params) * grads, state


GD = UpdateRule(
    "gd",
    "plain gradient descent (over-damped: explicit Euler on x' = -grad U, t = k*lr)",
    (_lr(0.01),),
    _gd_init,
    _gd_update,
    physics="overdamped",
    torch_name="SGD",
    math="w <- w - lr*g",
    edge_fn=_gd_edge,
    edge_math="2/lambda_max",
)


# --- langevin -------------------------------------------------------------------------------
def _langevin_update(grads, state, params, hp, draw):
    _, state = _next_step(state)
    lr = per_particle(hp["lr"], params)
    temperature = per_particle(hp["temperature"], params)
    noise = draw.normal("langevin", params.shape[-1]).to(params.device)
    product = 2 * lr * temperature
    scale = torch.sqrt(product) if isinstance(product, torch.Tensor) else math.sqrt(product)
    return -lr * grads + scale * noise, state


LANGEVIN = UpdateRule(
    "langevin",
    "GD plus thermal noise: samples exp(-U/T) as lr -> 0",
    (_lr(0.01), HyperParam("temperature", 0.1, 0.0, None, help="temperature T (energy units)")),
    _gd_init,
    _langevin_update,
    physics="overdamped",
    math="w <- w - lr*g + sqrt(2*lr*T)*z,  z ~ N(0, I)",
    edge_fn=_gd_edge,
    edge_math="2/lambda_max",
)


# --- momentum (the seeds' velocity form) ----------------------------------------------------
def _momentum_init(params: torch.Tensor) -> State:
    return _state(MomentumState(velocity=torch.zeros_like(params), step=_no_steps(params)))


def _momentum_update(grads, state, params, hp, draw):
    _, state = _next_step(state)
    velocity = (
        per_particle(hp["momentum"], params) * state["velocity"] - per_particle(hp["lr"], params) * grads
    )
    return velocity, {**state, "velocity": velocity}


MOMENTUM = UpdateRule(
    "momentum",
    "heavy ball in the seeds' form (inertia with friction)",
    (_lr(0.01), _beta("momentum", 0.9, "beta: velocity kept per step (1 - beta is friction)")),
    _momentum_init,
    _momentum_update,
    physics="inertial",
    torch_name="SGD",
    math="v <- beta*v - lr*g;  w <- w + v   (torch: b <- beta*b + g, w <- w - lr*b; v = -lr*b)",
    edge_fn=_momentum_edge,
    edge_math="2(1+beta)/lambda_max",
)


# --- nesterov (torch's buffer form) ---------------------------------------------------------
def _nesterov_init(params: torch.Tensor) -> State:
    return _state(NesterovState(buffer=torch.zeros_like(params), step=_no_steps(params)))


def _nesterov_update(grads, state, params, hp, draw):
    _, state = _next_step(state)
    mu = per_particle(hp["momentum"], params)
    buffer = mu * state["buffer"] + grads
    return -per_particle(hp["lr"], params) * (grads + mu * buffer), {**state, "buffer": buffer}


NESTEROV = UpdateRule(
    "nesterov",
    "Nesterov momentum (torch's form: a look-ahead on the buffer)",
    (_lr(0.01), _beta("momentum", 0.9, "beta: buffer decay")),
    _nesterov_init,
    _nesterov_update,
    physics="inertial",
    torch_name="SGD",
    math="b <- beta*b + g;  w <- w - lr*(g + beta*b)",
    edge_fn=_nesterov_edge,
    edge_math="2(1+beta)/((1+2beta) lambda_max)",
)


# --- adagrad --------------------------------------------------------------------------------
def _adagrad_init(params: torch.Tensor) -> State:
    return _state(AdagradState(sum=torch.zeros_like(params), step=_no_steps(params)))


def _adagrad_update(grads, state, params, hp, draw):
    step, state = _next_step(state)
    total = state["sum"] + grads * grads
    t = step.to(params.dtype)  # an int64 step times a float would give float32, rounding the lr
    lr = per_particle(hp["lr"], params) / (1 + (t - 1) * per_particle(hp["lr_decay"], params))
    update = -lr * grads / (torch.sqrt(total) + per_particle(hp["eps"], params))
    return update, {**state, "sum": total}


ADAGRAD = UpdateRule(
    "adagrad",
    "AdaGrad: per-coordinate steps shrink with the summed squared gradient",
    (_lr(0.01), HyperParam("lr_decay", 0.0, 0.0, None, help="lr / (1 + (t - 1)*lr_decay)"), _eps(1e-10)),
    _adagrad_init,
    _adagrad_update,
    physics="adaptive",
    torch_name="Adagrad",
    math="s <- s + g^2;  w <- w - lr/(1 + (t-1)*lr_decay) * g/(sqrt(s) + eps)",
    edge_fn=_adagrad_edge,
    edge_math="2/lambda_max(P^-1 H), P = sqrt(s) + eps",
)


# --- rmsprop --------------------------------------------------------------------------------
def _rmsprop_init(params: torch.Tensor) -> State:
    return _state(
        RMSpropState(
            square_avg=torch.zeros_like(params),
            grad_avg=torch.zeros_like(params),
            buffer=torch.zeros_like(params),
            step=_no_steps(params),
        )
    )


def _rmsprop_update(grads, state, params, hp, draw):
    _, state = _next_step(state)
    alpha = per_particle(hp["alpha"], params)
    square_avg = alpha * state["square_avg"] + (1 - alpha) * grads * grads
    new = {**state, "square_avg": square_avg}
    if hp["centered"]:
        grad_avg = alpha * state["grad_avg"] + (1 - alpha) * grads
        new["grad_avg"] = grad_avg
        denom = torch.sqrt(square_avg - grad_avg * grad_avg) + per_particle(hp["eps"], params)
    else:
        denom = torch.sqrt(square_avg) + per_particle(hp["eps"], params)
    lr = per_particle(hp["lr"], params)
    momentum = hp["momentum"]
    if isinstance(momentum, torch.Tensor) or momentum > 0:
        buffer = per_particle(momentum, params) * state["buffer"] + grads / denom
        new["buffer"] = buffer
        return -lr * buffer, new
    return -lr * grads / denom, new


RMSPROP = UpdateRule(
    "rmsprop",
    "RMSProp: steps scaled by a running RMS of the gradient (optional momentum, centred)",
    (
        _lr(0.01),
        _beta("alpha", 0.99, "decay of the squared-gradient average"),
        _eps(1e-8),
        HyperParam("momentum", 0.0, 0.0, 1.0, high_open=True, help="momentum on the scaled step"),
        HyperParam("centered", 0.0, flag=True, help="divide by the gradient's variance, not its raw RMS"),
    ),
    _rmsprop_init,
    _rmsprop_update,
    physics="adaptive",
    torch_name="RMSprop",
    math="s <- alpha*s + (1-alpha)*g^2;  [centred: m <- alpha*m + (1-alpha)*g, s~ = s - m^2];  "
    "d = sqrt(s~) + eps;  b <- mu*b + g/d;  w <- w - lr*b  (mu = 0: w <- w - lr*g/d)",
    edge_fn=_rmsprop_edge,
    edge_math="2(1+mu)/lambda_max(P^-1 H), P = sqrt(s~) + eps",
)


# --- adam family ----------------------------------------------------------------------------
def _adam_init(params: torch.Tensor) -> State:
    return _state(
        AdamState(
            exp_avg=torch.zeros_like(params),
            exp_avg_sq=torch.zeros_like(params),
            max_exp_avg_sq=torch.zeros_like(params),
            step=_no_steps(params),
        )
    )


def _adam_step(grads, state, params, hp: Mapping[str, Hyper], amsgrad: bool):
    step, state = _next_step(state)
    beta1 = per_particle(hp["beta1"], params)
    beta2 = per_particle(hp["beta2"], params)
    exp_avg = beta1 * state["exp_avg"] + (1 - beta1) * grads
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * grads * grads
    new = {**state, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    t = step.to(params.dtype)
    bias1 = 1 - _power(beta1, t)
    bias2_sqrt = torch.sqrt(1 - _power(beta2, t))
    second = exp_avg_sq
    if amsgrad:
        second = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq)
        new["max_exp_avg_sq"] = second
    denom = torch.sqrt(second) / bias2_sqrt + per_particle(hp["eps"], params)
    return -(per_particle(hp["lr"], params) / bias1) * exp_avg / denom, new


def _adam_update(grads, state, params, hp, draw):
    return _adam_step(grads, state, params, hp, amsgrad=False)


def _amsgrad_update(grads, state, params, hp, draw):
    return _adam_step(grads, state, params, hp, amsgrad=True)


def _adamw_update(grads, state, params, hp, draw):
    decay = -per_particle(hp["lr"], params) * per_particle(hp["weight_decay"], params) * params
    update, state = _adam_step(grads, state, params, hp, amsgrad=False)
    return decay + update, state


ADAM_MATH = (
    "m <- b1*m + (1-b1)*g;  s <- b2*s + (1-b2)*g^2;  w <- w - lr/(1-b1^t) * m/(sqrt(s)/sqrt(1-b2^t) + eps)"
)
_ADAM_HP = (
    _lr(1e-3),
    _beta("beta1", 0.9, "first-moment decay"),
    _beta("beta2", 0.999, "second-moment decay"),
    _eps(1e-8),
)

ADAM = UpdateRule(
    "adam",
    "Adam: momentum on g over a running RMS, bias-corrected",
    _ADAM_HP,
    _adam_init,
    _adam_update,
    physics="adaptive",
    torch_name="Adam",
    math=ADAM_MATH,
    edge_fn=_adam_edge,
    edge_math="(2+2beta1)/((1-beta1) lambda_max(P^-1 H)), P = sqrt(v_hat) + eps",
)
AMSGRAD = UpdateRule(
    "amsgrad",
    "Adam with the running maximum of the second moment",
    _ADAM_HP,
    _adam_init,
    _amsgrad_update,
    physics="adaptive",
    torch_name="Adam",
    math=ADAM_MATH.replace("sqrt(s)", "sqrt(max_s)") + ";  max_s <- max(max_s, s)",
    edge_fn=_amsgrad_edge,
    edge_math="(2+2beta1)/((1-beta1) lambda_max(P^-1 H)), P = sqrt(max v_hat) + eps",
)
ADAMW = UpdateRule(
    "adamw",
    "Adam with decoupled weight decay",
    (*_ADAM_HP, HyperParam("weight_decay", 1e-2, 0.0, None, help="decoupled decay: w <- w*(1 - lr*wd)")),
    _adam_init,
    _adamw_update,
    physics="adaptive",
    torch_name="AdamW",
    math="w <- w*(1 - lr*wd);  then the Adam step",
    edge_fn=_adam_edge,
    edge_math="(2+2beta1)/((1-beta1) lambda_max(P^-1 H)), P = sqrt(v_hat) + eps",
)


# the rules that learn their rate build on the helpers above, so they are imported once those exist
from descent.optim.hypergradient import HD_ADAM, HD_MOMENTUM, HD_SGD  # noqa: E402

RULES: dict[str, UpdateRule] = {
    rule.name: rule
    for rule in (
        GD,
        MOMENTUM,
        NESTEROV,
        ADAGRAD,
        RMSPROP,
        ADAM,
        ADAMW,
        AMSGRAD,
        LANGEVIN,
        HD_SGD,
        HD_MOMENTUM,
        HD_ADAM,
    )
}


def stability_edge(rule: str, lambda_max: float, momentum: float = 0.0) -> float:
    """The largest stable lr of ``rule`` on a quadratic with top curvature ``lambda_max`` (the rule's
    own ``edge`` on ``lambda_max * I``, fresh state): GD 2/lambda; heavy ball 2(1 + beta)/lambda;
    Nesterov 2(1 + beta)/((1 + 2 beta) lambda). Infinite when lambda_max <= 0.
    """
    if lambda_max <= 0:
        return math.inf
    target = RULES[rule]
    hp = target.resolve({"momentum": momentum} if "momentum" in target.defaults() else {})
    hessian = torch.tensor([[[float(lambda_max)]]], dtype=torch.float64)
    return float(target.edge(hessian, target.init(torch.zeros(1, 1, dtype=torch.float64)), hp)[0])
