"""The optimizer read as physics: every supported rule is a heavy ball in a metric ``P``,

    u <- beta u - eta P^-1 g,    w <- w + u,

with step ``eta``, momentum ``beta`` (0: over-damped) and a diagonal metric ``P`` (1 for SGD; Adam's,
RMSprop's, AdaGrad's running scale otherwise). In the coordinates ``z = P^1/2 w`` it is the plain heavy
ball, so one set of formulas serves every rule (REFERENCE.md, "Physics dictionary"):

- time step ``eta`` (over-damped) or ``sqrt(eta)`` (inertial: mass 1, velocity ``u/sqrt(eta)``),
  friction per step ``1 - beta``, effective learning rate ``eta/(1 - beta)``;
- noise temperature per parameter ``T = eta tr(P^-1 Sigma)/(2 B d (1 - beta))``;
- kinetic energy ``K = u^T P u/(2 eta)`` and kinetic temperature ``2K/d`` (inertial rules only);
- the stability edge: the sharpness ``lambda_max(P^-1 H)`` must stay below ``E = c/lr``, with the
  rule's own constant ``c`` (descent.optim's edge declarations): GD 2, heavy ball ``2(1 + beta)``,
  Nesterov ``2(1 + beta)/(1 + 2 beta)``, Adam ``2(1 + beta1)/(1 - beta1)``, RMSprop ``2(1 + mu)``,
  AdaGrad 2 (on its decayed lr).

Torch's SGD keeps the buffer ``b`` with ``w <- w - lr b``, so its velocity is ``u = -lr b``; Adam's is
``u = -lr m/P`` with ``P = (1 - beta1^t)(sqrt(v_hat) + eps)`` (`descent.train.hessian.adam_preconditioner`),
so that ``eta = lr (1 - beta1)`` (AMSGrad: the running maximum of ``v``). The factor ``1 - beta1^t`` makes
Adam's edge a little lower than the rules' declaration (which omits it) in the first ``~1/(1 - beta1)``
steps. Only the first param group's hyper-parameters are read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from descent._errors import DescentError, invalid, listed
from descent.optim import TorchOptimizer, stability_edge
from descent.train.hessian import adam_preconditioner

#: torch optimizers the monitor reads (their subclasses too, as the class they extend), and descent's
#: rules (through TorchOptimizer)
TORCH_OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")
DESCENT_RULES = ("gd", "momentum", "nesterov", "adam", "adamw", "amsgrad", "rmsprop", "adagrad", "langevin")
#: the hypergradient rules: their base rule's physics at the rate they learned (one per param group)
HD_RULES = ("hd-sgd", "hd-momentum", "hd-adam")


#: each edge family's formula for the largest stable sharpness E (of ``P^-1 H`` for adaptive rules)
EDGE_MATH = {
    "gd": "2/lr",
    "momentum": "2(1+beta)/lr",
    "nesterov": "2(1+beta)/((1+2beta) lr)",
    "adam": "2(1+beta1)/((1-beta1) lr) on P^-1 H",
    "rmsprop": "2(1+mu)/lr on P^-1 H",
    "adagrad": "2/lr on P^-1 H",
}


#: a coordinate whose root mean square gradient is under this fraction of the median is idle
#: (`Dynamics.active_scale`)
IDLE = 1e-3


@dataclass(frozen=True)
class Dynamics:
    """The optimizer's state now, in physical terms (see the module's docstring)."""

    rule: str  # gd, momentum, nesterov, adam, rmsprop, adagrad (the edge's family)
    lr: float  # the learning rate it steps with now (AdaGrad's decayed one)
    eta: float  # the heavy ball's step in the metric P
    beta: float  # momentum (0: over-damped)
    edge_constant: float  # c: the edge sharpness is c/lr
    scale: torch.Tensor | None  # P [d], None for the identity
    velocity: torch.Tensor | None  # u [d] from the momentum buffers, None when over-damped
    thermal: float = 0.0  # a temperature the rule injects itself (descent's langevin)
    floor: float = 0.0  # the P of a coordinate that has had no gradient: (1 - beta1^t) eps (adaptive)

    @property
    def active_scale(self) -> torch.Tensor | None:
        """P with the coordinates training barely moves set to inf: those whose root mean square
        gradient ``r = (P - floor)/(1 - beta1^t)`` is under eps or under ``IDLE`` times the median r.
        In the metric a coordinate's share of the training noise is ``Var(g)/P <= r``, so leaving
        them out changes ``tr(P^-1 Sigma)`` by under that fraction of a typical coordinate's share;
        and there the held batch, in evaluation mode, may give a gradient far above the training one,
        which ``1/P`` then blows up (a bias before a batch norm: ~1e-7 in training, O(1) held)."""
        if self.scale is None or self.floor <= 0:
            return self.scale
        excess = self.scale - self.floor  # (1 - beta1^t) r
        idle = excess < torch.clamp(IDLE * excess.median(), min=self.floor)
        return torch.where(idle, torch.inf, self.scale)

    @property
    def inertial(self) -> bool:
        return self.beta > 0

    @property
    def time_step(self) -> float:
        return self.eta**0.5 if self.inertial else self.eta

    @property
    def friction(self) -> float:
        return 1.0 - self.beta

    @property
    def effective_lr(self) -> float:
        return self.eta / (1.0 - self.beta)

    @property
    def edge(self) -> float:
        """The largest stable sharpness at this lr, ``c/lr``."""
        return self.edge_constant / self.lr

    def edge_lr(self, sharpness: float) -> float:
        """The largest stable lr at ``sharpness``, ``c/S`` (inf when S <= 0)."""
        return self.edge_constant / sharpness if sharpness > 0 else float("inf")


def check_optimizer(optimizer: object) -> str:
    """The rule family of ``optimizer``, or a one-line error naming it."""
    name = type(optimizer).__name__
    if isinstance(optimizer, TorchOptimizer):
        if optimizer.name in DESCENT_RULES + HD_RULES:
            return optimizer.name
        name = f"TorchOptimizer({optimizer.name!r})"
    for cls in type(optimizer).__mro__:  # a subclass reads as the most derived torch class it extends
        if cls.__name__ in TORCH_OPTIMIZERS and cls is getattr(torch.optim, cls.__name__):
            return cls.__name__
    rules = listed(DESCENT_RULES + HD_RULES)
    allowed = f"torch.optim {listed(TORCH_OPTIMIZERS)} or a descent TorchOptimizer ({rules})"
    raise invalid("optimizer", name, allowed)


def read_dynamics(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> Dynamics:
    """The optimizer's ``Dynamics`` over ``params`` (flat vectors in their order)."""
    kind = check_optimizer(optimizer)
    group = optimizer.param_groups[0]
    lr = float(group["lr"])
    if kind in HD_RULES:
        return _hypergradient(optimizer, kind, group)
    if kind in ("SGD", "gd", "langevin", "momentum", "nesterov"):
        return _sgd(optimizer, params, kind, group, lr)
    if kind in ("Adam", "AdamW", "adam", "adamw", "amsgrad"):
        beta1 = float(group["betas"][0])
        amsgrad = kind == "amsgrad" or bool(group.get("amsgrad", False))
        scale = _amsgrad_scale(optimizer, params, group) if amsgrad else _adam_scale(optimizer, params)
        momentum = _flat(optimizer, params, "exp_avg")
        velocity = None if scale is None or momentum is None else -lr * momentum / scale
        c = 2 * (1 + beta1) / (1 - beta1)
        steps = _first_state(optimizer, params, "step")
        t = 1.0 if steps is None else float(steps.reshape(-1)[0])
        floor = (1 - beta1**t) * float(group["eps"])
        return Dynamics("adam", lr, lr * (1 - beta1), beta1, c, scale, velocity, floor=floor)
    if kind in ("RMSprop", "rmsprop"):
        mu = float(group["momentum"])
        square = _flat(optimizer, params, "square_avg")
        mean = _flat(optimizer, params, "grad_avg") if group["centered"] else None
        if square is not None and mean is not None:
            square = square - mean**2
        scale = None if square is None else torch.sqrt(square) + group["eps"]
        buffer_name = "buffer" if kind == "rmsprop" else "momentum_buffer"
        buffer = _flat(optimizer, params, buffer_name) if mu > 0 else None
        velocity = None if buffer is None else -lr * buffer
        return Dynamics("rmsprop", lr, lr, mu, 2 * (1 + mu), scale, velocity, floor=float(group["eps"]))
    # AdaGrad: lr / (1 + (t - 1) lr_decay), P = sqrt(sum of g^2) + eps
    total = _flat(optimizer, params, "sum")
    steps = _first_state(optimizer, params, "step")
    t = 1.0 if steps is None else float(steps.reshape(-1)[0])
    lr = lr / (1 + (t - 1) * float(group["lr_decay"]))
    scale = None if total is None else torch.sqrt(total) + group["eps"]
    return Dynamics("adagrad", lr, lr, 0.0, 2.0, scale, None, floor=float(group["eps"]))


def _sgd(optimizer, params, kind: str, group, lr: float) -> Dynamics:
    beta = float(group.get("momentum", 0.0))
    thermal = float(group["temperature"]) if kind == "langevin" else 0.0
    if beta == 0:
        return Dynamics("gd", lr, lr, 0.0, stability_edge("gd", 1.0), None, None, thermal)
    nesterov = kind == "nesterov" or bool(group.get("nesterov", False))
    rule = "nesterov" if nesterov else "momentum"
    dampening = float(group.get("dampening", 0.0))
    if kind == "momentum":  # descent's velocity form keeps u itself
        velocity = _flat(optimizer, params, "velocity")
    else:
        buffer = _flat(optimizer, params, "buffer" if kind == "nesterov" else "momentum_buffer")
        velocity = None if buffer is None else -lr * buffer
    c = stability_edge(rule, 1.0, beta) / (1 - dampening)
    return Dynamics(rule, lr, lr * (1 - dampening), beta, c, None, velocity, thermal)


def _hypergradient(optimizer, kind: str, group) -> Dynamics:
    """A hypergradient rule steps its whole param group as one particle (its state, flat over the
    group, kept with the group's first parameter) at the rate ``r`` it holds now: hd-sgd is GD at r,
    hd-momentum the heavy ball in torch's buffer form (u = -r b), hd-adam Adam at r."""
    state = optimizer.state.get(group["params"][0], {})
    lr = optimizer.rate(0)
    if kind == "hd-sgd":
        return Dynamics("gd", lr, lr, 0.0, stability_edge("gd", 1.0), None, None)
    if kind == "hd-momentum":
        beta = float(group["momentum"])
        buffer = state.get("buffer")
        velocity = None if buffer is None else -lr * buffer.detach().reshape(-1)
        return Dynamics("momentum", lr, lr, beta, stability_edge("momentum", 1.0, beta), None, velocity)
    beta1, beta2 = (float(b) for b in group["betas"])
    scale = velocity = None
    floor = 0.0
    if "exp_avg_sq" in state and int(state["step"]) > 0:  # P = (1 - beta1^t)(sqrt(v_hat) + eps)
        t = float(state["step"])
        v_hat = state["exp_avg_sq"].detach().reshape(-1) / (1 - beta2**t)
        scale = (1 - beta1**t) * (torch.sqrt(v_hat) + float(group["eps"]))
        velocity = -lr * state["exp_avg"].detach().reshape(-1) / scale
        floor = (1 - beta1**t) * float(group["eps"])
    c = 2 * (1 + beta1) / (1 - beta1)
    return Dynamics("adam", lr, lr * (1 - beta1), beta1, c, scale, velocity, floor=floor)


def _first_state(optimizer, params, name: str) -> torch.Tensor | None:
    for p in params:
        value = optimizer.state.get(p, {}).get(name)
        if value is not None:
            return value
    return None


def _flat(optimizer, params, name: str) -> torch.Tensor | None:
    """The state ``name`` of every parameter, flat and concatenated (None if a parameter lacks it)."""
    parts = []
    for p in params:
        value = optimizer.state.get(p, {}).get(name)
        if value is None:
            return None
        parts.append(value.detach().reshape(-1))
    return torch.cat(parts)


def _amsgrad_scale(optimizer, params, group) -> torch.Tensor | None:
    """AMSGrad's P: Adam's with the running maximum of the second moment."""
    maximum, steps = _flat(optimizer, params, "max_exp_avg_sq"), _first_state(optimizer, params, "step")
    if maximum is None or steps is None:
        return None
    beta1, beta2 = group["betas"]
    t = float(steps.reshape(-1)[0])
    return ((1 - beta1**t) * (torch.sqrt(maximum / (1 - beta2**t)) + group["eps"])).to(params[0].dtype)


def _adam_scale(optimizer, params) -> torch.Tensor | None:
    try:
        return adam_preconditioner(optimizer, params).to(params[0].dtype)
    except DescentError:  # not stepped yet
        return None
