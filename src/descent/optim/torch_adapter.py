"""`TorchOptimizer`: any descent rule as a `torch.optim.Optimizer`, for training `nn.Module`s.

Each parameter tensor is one particle: flattened to ``[1, numel]``, stepped by the rule's pure
``update``, reshaped back. A rule whose state couples a particle's coordinates (``rule.per_model``:
the hypergradient rules' one learned rate) takes each param group whole, as one particle. The rule's
state (its tensors ``[1, numel]`` and an int64 ``step``) lives in
``self.state[p]``, so ``state_dict`` / ``load_state_dict`` carry it, step count included.

Hyper-parameters live in the param groups under torch's names, with the rule's defaults, and every
``step()`` reads them from its group at that moment, so torch's schedulers (``StepLR``,
``CosineAnnealingLR``, ``OneCycleLR``, ``ReduceLROnPlateau``, ...) and per-group settings work. The
exception: a rule that learns its rate (``hd-sgd``, ``hd-momentum``, ``hd-adam``) reads ``lr`` once, as
its start, learns one rate per param group, and refuses a later change of ``lr`` (a scheduler would
be ignored); `TorchOptimizer.rate` gives the rate in use.

=========  =================================================================================
rule       group keys (torch's meaning)
=========  =================================================================================
gd         lr, weight_decay                                       (SGD)
momentum   lr, momentum, weight_decay              (SGD(momentum) at constant lr, see below)
nesterov   lr, momentum, weight_decay                             (SGD(nesterov=True))
adagrad    lr, lr_decay, eps, weight_decay                        (Adagrad)
rmsprop    lr, alpha, eps, momentum, centered, weight_decay       (RMSprop)
adam       lr, betas, eps, weight_decay                           (Adam)
amsgrad    lr, betas, eps, weight_decay                           (Adam(amsgrad=True))
adamw      lr, betas, eps, weight_decay (decoupled: w <- w*(1 - lr*wd))   (AdamW)
langevin   lr, temperature, weight_decay                          (no torch counterpart)
=========  =================================================================================

``weight_decay`` is coupled L2 (g <- g + wd*w) everywhere except adamw, as in torch. Every group also
holds the engine's options ``grad_noise`` (sigma of g <- g + sigma*z), ``clip_norm`` (g <- g*min(1,
max_norm/|g|), per parameter tensor) and ``seed``; per step the gradient goes through noise, clipping,
then weight decay, then the rule. Values are validated by the rule's ``resolve`` at construction, in
``add_param_group`` and at every step (before any parameter moves), so a bad value raises
:class:`~descent._errors.DescentError` naming it.

``momentum`` keeps the seeds' velocity form ``v <- beta*v - lr*g, w <- w + v``. At constant lr it gives
torch ``SGD(momentum)``'s iterates (``v = -lr*b``); after the lr changes from lr1 to lr2 the two part
ways by ``mu^j (lr2 - lr1) b`` on the j-th step. Use ``nesterov`` or torch's own SGD for torch's form.

Random numbers (langevin's noise, ``grad_noise``) come from the counter-based stream
:class:`descent.random.Draw` keyed by (``seed``, particle id, step): the particle id of a parameter is
its index in the optimizer's parameter list (over all groups, as in ``state_dict``) and the step is its
own step count before this step, so a run is reproducible and continues exactly after a save/load.

Training a ``nn.Linear`` under ``StepLR``:

>>> import torch
>>> from descent.optim import TorchOptimizer
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Linear(2, 1, dtype=torch.float64)
>>> x = torch.randn(64, 2, dtype=torch.float64)
>>> y = x @ torch.tensor([[2.0], [-1.0]], dtype=torch.float64) + 0.5
>>> opt = TorchOptimizer(model.parameters(), "momentum", lr=0.3, momentum=0.5)
>>> scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=25, gamma=0.5)
>>> for _ in range(75):
...     opt.zero_grad()
...     loss = torch.nn.functional.mse_loss(model(x), y)
...     loss.backward()
...     opt.step()
...     scheduler.step()
>>> opt.param_groups[0]["lr"], int(opt.state[model.weight]["step"])
(0.0375, 75)
>>> [round(v, 6) for v in model.weight.detach().flatten().tolist()], round(model.bias.item(), 6)
([2.0, -1.0], 0.5)
>>> loss.item() < 1e-18
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from descent._errors import invalid, listed
from descent.optim._base import Hyper, HyperParam, UpdateRule
from descent.optim.hypergradient import learned_rate
from descent.optim.optimizer import get_rule
from descent.optim.transforms import ClipNorm, GradNoise, Transform, WeightDecay
from descent.random import Draw

#: the engine's options every group carries besides the rule's hyper-parameters
ENGINE_OPTIONS = ("grad_noise", "clip_norm", "seed")

_WEIGHT_DECAY = HyperParam("weight_decay", 0.0, 0.0, None, help="coupled L2: g <- g + weight_decay*w")


def torch_defaults(rule: UpdateRule) -> dict[str, object]:
    """The rule's defaults under torch's names: ``beta1, beta2`` become ``betas``, flags are bools, and
    every rule gets ``weight_decay`` (0: coupled L2, except adamw's own decoupled decay)."""
    defaults: dict[str, object] = {}
    table = rule.defaults()
    for h in rule.hyperparams:
        if h.name == "beta1":
            defaults["betas"] = (table["beta1"], table["beta2"])
        elif h.name == "beta2":
            continue
        elif h.flag:
            defaults[h.name] = bool(h.default)
        else:
            defaults[h.name] = h.default
    defaults.setdefault("weight_decay", _WEIGHT_DECAY.default)
    return defaults


@dataclass(frozen=True)
class GroupSettings:
    """A param group's values, validated: the rule's ``hp``, the gradient transforms in order, the seed."""

    hp: dict[str, Hyper]
    transforms: tuple[Transform, ...]
    seed: int
    needs_draw: bool


def group_settings(rule: UpdateRule, group: Mapping[str, Any]) -> GroupSettings:
    """Read and validate a group's values (raises ``DescentError`` naming the bad one)."""
    names = [h.name for h in rule.hyperparams]
    hyper = {name: group[name] for name in names if name not in ("beta1", "beta2")}
    if "beta1" in names:
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise invalid(f"{rule.name}.betas", betas, "a pair (beta1, beta2)")
        hyper["beta1"], hyper["beta2"] = betas
    hp = rule.resolve(hyper)

    transforms: list[Transform] = []
    if group["grad_noise"] != 0:
        transforms.append(GradNoise(group["grad_noise"]))
    if group["clip_norm"] is not None:
        transforms.append(ClipNorm(group["clip_norm"]))
    if "weight_decay" not in hp:  # coupled L2; adamw's decay is the rule's own
        weight_decay = _WEIGHT_DECAY.validate(group["weight_decay"], rule.name)
        if weight_decay != 0:
            transforms.append(WeightDecay(weight_decay))

    seed = group["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise invalid(f"{rule.name}.seed", seed, "an integer >= 0")
    needs_draw = rule.name == "langevin" or any(t.kind == "grad_noise" for t in transforms)
    return GroupSettings(hp, tuple(transforms), seed, needs_draw)


class TorchOptimizer(torch.optim.Optimizer):
    """The descent rule ``name`` as a torch optimizer over ``params`` (tensors or param-group dicts).

    ``hyper`` are the group defaults under torch's names (see the module's table); ``grad_noise``,
    ``clip_norm`` and ``seed`` are the engine's options, also per group.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        name: str,
        *,
        seed: int = 0,
        grad_noise: Hyper = 0.0,
        clip_norm: float | None = None,
        **hyper: object,
    ) -> None:
        self.name = get_rule(name).name  # raises for an unknown rule
        defaults = torch_defaults(self.rule)
        self._check_keys(hyper, defaults)
        defaults.update(hyper)
        defaults.update(seed=seed, grad_noise=grad_noise, clip_norm=clip_norm)
        group_settings(self.rule, defaults)  # validate before anything else
        super().__init__(params, defaults)

    @property
    def rule(self) -> UpdateRule:
        return get_rule(self.name)

    def _check_keys(self, given: Mapping[str, object], allowed: Mapping[str, object]) -> None:
        for key in given:
            if key == "schedule":
                allowed_schedule = "a torch.optim.lr_scheduler on this optimizer (it reads group['lr'])"
                raise invalid("schedule", given[key], allowed_schedule)
            if key not in allowed and key not in ENGINE_OPTIONS:
                options = listed(sorted([*allowed, *ENGINE_OPTIONS]))
                raise invalid(f"{self.name} option", key, f"one of: {options}")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group``, with the group's keys and values validated first."""
        options = {k: v for k, v in param_group.items() if k not in ("params", "param_names")}
        self._check_keys(options, self.defaults)
        group_settings(self.rule, {**self.defaults, **param_group})
        super().add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "name": self.name}

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step of every parameter that has a gradient, with its group's values as they are now."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        settings = [group_settings(self.rule, group) for group in self.param_groups]  # all, before any moves
        if self.rule.per_model:
            for index, group in enumerate(self.param_groups):
                self._check_start(index, group)
        particle = 0
        for group, setting in zip(self.param_groups, settings):
            params = list(group["params"])
            if self.rule.per_model and any(p.grad is not None for p in params):
                self._step_group(params, particle, setting)
                self.state[params[0]].setdefault("start_lr", float(group["lr"]))
            elif not self.rule.per_model:
                for i, p in enumerate(params):
                    if p.grad is not None:
                        self._step_parameter(p, p.grad, particle + i, setting)
            particle += len(params)
        return loss

    def rate(self, group: int = 0) -> float:
        """The rate param group ``group`` steps with now: the rate a learned-rate rule (``per_model``)
        has learned, kept in the state of the group's first parameter (its ``lr`` before the first
        step), else the group's ``lr``."""
        settings = self.param_groups[group]
        if self.rule.per_model and settings["params"]:
            rate = learned_rate(self.state.get(settings["params"][0], {}))
            if rate is not None:
                return float(rate[0])
        return float(settings["lr"])

    def _check_start(self, index: int, group: dict[str, Any]) -> None:
        """A learned-rate rule reads the group's ``lr`` once, as the start of the rate it learns: a
        later change (a torch scheduler, a write to ``param_groups[i]["lr"]``) would be ignored, so it
        is refused."""
        state = self.state.get(group["params"][0], {}) if group["params"] else {}
        if "start_lr" in state and float(group["lr"]) != state["start_lr"]:
            raise invalid(
                f"param_groups[{index}]['lr']",
                group["lr"],
                f"{state['start_lr']:g}, as at the first step: {self.name} learns its own rate from that "
                f"start (now {self.rate(index):.4g}), so a scheduler or a later change of lr is refused, "
                "not ignored",
            )

    def _step_group(self, params: list[torch.Tensor], particle: int, setting: GroupSettings) -> None:
        """A rule whose state couples its coordinates (a learned rate: ``rule.per_model``) steps the
        whole group as one particle: its parameters concatenated (a missing gradient counts as zero),
        the state kept with the group's first parameter."""
        flat = torch.cat([p.detach().reshape(-1) for p in params]).unsqueeze(0)
        grads = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1) for p in params]
        ).unsqueeze(0)
        updates = self._update(params[0], flat, grads, particle, setting)
        for p, update in zip(params, updates[0].split([p.numel() for p in params])):
            p.add_(update.reshape(p.shape))

    def _step_parameter(
        self, p: torch.Tensor, grad: torch.Tensor, particle: int, setting: GroupSettings
    ) -> None:
        flat = p.detach().reshape(1, -1)
        p.add_(self._update(p, flat, grad.detach().reshape(1, -1), particle, setting).reshape(p.shape))

    def _update(
        self,
        key: torch.Tensor,
        flat: torch.Tensor,
        grads: torch.Tensor,
        particle: int,
        setting: GroupSettings,
    ) -> torch.Tensor:
        """The rule's update ``[1, n]`` of the particle ``flat`` (its state kept in ``self.state[key]``)."""
        state = self.state[key]
        if not state:
            state.update(self.rule.init(flat))
        draw = None
        if setting.needs_draw:
            draw = Draw(setting.seed, torch.tensor([particle]), int(state["step"]), flat.dtype)
        for transform in setting.transforms:
            grads = transform(grads, flat, draw)
        updates, new_state = self.rule.update(grads, dict(state), flat, setting.hp, draw)
        state.update(new_state)
        return updates
