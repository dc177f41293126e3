"""Update rules as pure functions, optax-style: ``init(params) -> state`` and
``update(grads, state, params, hp, draw) -> (updates, state)``; new params = params + updates.
``draw`` (a :class:`descent.random.Draw`, or None for rules that need no randomness) gives the
step's counter-based random numbers.

Every hyper-parameter may be a float or a tensor broadcastable to ``[N]`` (one value per particle),
so one batched run can hold a whole grid of learning rates and momenta.

Each rule declares its physics once (``descent.optim.physics``): its time step, friction, kinetic
energy and stability edge; theory, the Arena and the experiments call those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from descent._errors import check_number, invalid, listed

if TYPE_CHECKING:
    from descent.random import Draw

Hyper = float | torch.Tensor
State = dict[str, torch.Tensor]
InitFn = Callable[[torch.Tensor], State]
UpdateFn = Callable[
    [torch.Tensor, State, torch.Tensor, Mapping[str, Hyper], "Draw | None"],
    tuple[torch.Tensor, State],
]
EdgeFn = Callable[[torch.Tensor, State, Mapping[str, Hyper]], torch.Tensor]
Physics = Literal["overdamped", "inertial", "adaptive"]


@dataclass(frozen=True)
class HyperParam:
    """One hyper-parameter: its default and allowed interval (``low``/``high``, open or closed)."""

    name: str
    default: float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    help: str = ""
    flag: bool = False  # a 0/1 switch (e.g. rmsprop's centred), never per particle

    def allowed(self) -> str:
        if self.flag:
            return "0 or 1 (false or true)"
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        return (
            f"a number in {lo}{'-inf' if self.low is None else self.low}, "
            f"{'inf)' if self.high is None else str(self.high) + hi}"
        )

    def validate(self, value: object, rule: str) -> Hyper:
        """Return the value as a float or a float tensor, or raise naming ``rule.name``."""
        label = f"{rule}.{self.name}"
        if self.flag:
            if value in (0, 1, True, False, 0.0, 1.0):
                return float(bool(value))
            raise invalid(label, value, self.allowed())
        if isinstance(value, torch.Tensor) or (isinstance(value, (list, tuple)) and len(value) > 0):
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=torch.float64)
            if tensor.ndim > 1:
                raise invalid(
                    label, tuple(tensor.shape), "a float or a 1-D tensor with one value per particle"
                )
            if not bool(torch.isfinite(tensor).all()):
                raise invalid(label, "tensor with non-finite entries", self.allowed())
            lo, hi = tensor.min().item(), tensor.max().item()
            for probe in (lo, hi):
                check_number(
                    label, probe, self.low, self.high, low_open=self.low_open, high_open=self.high_open
                )
            return tensor
        return check_number(
            label, value, self.low, self.high, low_open=self.low_open, high_open=self.high_open
        )


@dataclass(frozen=True)
class UpdateRule:
    """A named optimizer: hyper-parameter table plus the pure ``init``/``update`` pair.

    ``physics`` says how the step maps to time: ``overdamped`` (GD: t = k*lr), ``inertial``
    (heavy ball: time step h = sqrt(lr), unit mass, friction (1 - beta)/sqrt(lr)) or ``adaptive``.
    ``edge(hessian [N, d, d], state, hp) -> [N]`` is the largest stable lr at that curvature and
    state. ``torch_name`` names the `torch.optim` class it conforms to, if any.
    """

    name: str
    summary: str
    hyperparams: tuple[HyperParam, ...]
    init: InitFn
    update: UpdateFn
    physics: Physics = "adaptive"
    torch_name: str | None = None
    math: str = ""
    edge_fn: EdgeFn | None = None
    edge_math: str = ""
    per_coordinate: bool | None = None  # see normalized_step; None: the adaptive rules' step is
    #: the state couples a particle's coordinates (one learned rate): torch's adapter steps a whole
    #: param group as one particle, so a network learns one rate, not one per tensor
    per_model: bool = False

    @property
    def normalized_step(self) -> bool:
        """Whether a step moves each coordinate by about lr whatever the slope (AdaGrad, RMSProp, Adam:
        their default lr is a share of the box), rather than lr times the gradient (GD, the heavy ball,
        and the hypergradient rules built on them: the landscape's own default lr)."""
        return self.physics == "adaptive" if self.per_coordinate is None else self.per_coordinate

    # --- physics (REFERENCE.md, "Physics dictionary") -----------------------------------------------
    def time_step(self, hp: Mapping[str, Hyper]) -> Hyper:
        """The physical time of one step: lr (over-damped), sqrt(lr) (inertial), 1 (adaptive)."""
        lr = hp["lr"]
        if self.physics == "overdamped":
            return lr
        if self.physics == "inertial":
            return torch.sqrt(lr) if isinstance(lr, torch.Tensor) else float(lr) ** 0.5
        return 1.0

    def friction(self, hp: Mapping[str, Hyper]) -> Hyper | None:
        """gamma of x'' + gamma x' = -grad U: (1 - beta)/sqrt(lr) for the heavy-ball family; None
        where the rule has no inertia (over-damped: infinite friction) or no such mapping (adaptive)."""
        if self.physics != "inertial":
            return None
        return (1 - hp["momentum"]) / self.time_step(hp)

    def kinetic_energy(self, update: torch.Tensor, hp: Mapping[str, Hyper]) -> torch.Tensor | None:
        """|V|^2/2 with V = update/h (unit mass) for the heavy-ball family, ``[N]``; None otherwise."""
        if self.physics != "inertial":
            return None
        velocity = update / per_particle(self.time_step(hp), update)
        return 0.5 * (velocity * velocity).sum(dim=-1)

    def edge(self, hessian: torch.Tensor, state: State, hp: Mapping[str, Hyper]) -> torch.Tensor:
        """The largest stable learning rate at Hessian ``[N, d, d]`` (or ``[d, d]``) and ``state``:
        ``[N]``, inf where the curvature is not positive, NaN where the rule declares no edge."""
        hessian = hessian if hessian.ndim == 3 else hessian.unsqueeze(0)
        if self.edge_fn is None:
            return torch.full(hessian.shape[:1], float("nan"), dtype=hessian.dtype)
        return self.edge_fn(hessian, state, hp)

    def defaults(self) -> dict[str, float]:
        return {h.name: h.default for h in self.hyperparams}

    def resolve(self, overrides: Mapping[str, object] | None = None) -> dict[str, Hyper]:
        """Defaults overridden by ``overrides``, each validated; unknown names raise."""
        overrides = dict(overrides or {})
        table = {h.name: h for h in self.hyperparams}
        for key in overrides:
            if key not in table:
                raise invalid(f"{self.name} hyper-parameter", key, f"one of: {listed(sorted(table))}")
        return {name: h.validate(overrides.get(name, h.default), self.name) for name, h in table.items()}


def per_particle(value: Hyper, like: torch.Tensor) -> Hyper:
    """A hyper-parameter ready to broadcast against ``[N, d]`` params: tensors become ``[N, 1]``."""
    if isinstance(value, torch.Tensor):
        value = value.to(dtype=like.dtype, device=like.device)
        return value.reshape(-1, *([1] * (like.ndim - 1))) if value.ndim == 1 else value
    return value


def zeros_like_state(params: torch.Tensor, *names: str) -> State:
    """A state of zero tensors shaped like ``params``, plus a step counter."""
    state = {name: torch.zeros_like(params) for name in names}
    state["step"] = torch.zeros((), dtype=torch.int64, device=params.device)
    return state
