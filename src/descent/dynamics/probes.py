"""Probes: small objects the loop calls every ``every`` steps with a view of the step, returning what
to record (tensors whose first axis is the particle). Faces read what happens inside the loop from
probes; none replays a rule.

Built in (``PROBES``, by name in a spec: ``{"name": "energy_ledger"}``):

- ``grad_norm``:    |grad U(x_k)|
- ``kinetic``:      the rule's kinetic energy |V|^2/2, V = dx/h (heavy-ball family; NaN otherwise)
- ``update_parts``: the update decomposed: the force step -lr g, the coast u(0, s) (what the rule
                    does with no force: inertia, or Langevin's kick), the update itself, the adaptive
                    scale u / (-lr g) and Nesterov's look-ahead point x + coast
- ``optimizer_state``: the rule's state after the step (for ``rule.edge`` on the running preconditioner)
- ``learned_rate``: the rate a rule that learns it (``hd-sgd``, ``hd-momentum``, ``hd-adam``) steps with
                    after the step (its state's ``rate``; NaN for a rule with none)
- ``energy_ledger``: for the heavy-ball family, E_k = |V_k|^2/2 + U(x_k) and the energy dissipated by
                    friction, D_k = gamma h |V_{k+1}|^2 (its own formula, not a residual), summed:
                    E_k + sum_{j<k} D_j - E_0 is the ledger's imbalance, O(h) over a fixed time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from descent._errors import invalid, listed
from descent.optim._base import per_particle
from descent.optim.hypergradient import learned_rate
from descent.random import Draw


@dataclass
class StepView:
    """What a probe sees after step ``k`` (the state is the one after k steps; ``k = 0``: the start).

    ``x_before``, ``grad_used`` (the transformed gradient the rule received), ``state_before`` and
    ``hp`` describe the step that led here (None at k = 0); ``update`` is this step's displacement
    (zero for frozen particles), ``active`` which particles moved.
    """

    k: int
    x: torch.Tensor
    value: torch.Tensor
    grad: torch.Tensor
    update: torch.Tensor
    state: dict
    optimizer: Any
    hp: dict | None = None
    x_before: torch.Tensor | None = None
    grad_used: torch.Tensor | None = None
    state_before: dict | None = None
    draw: Any = None
    active: torch.Tensor | None = None


class Probe:
    """Base: ``name``, ``every`` and ``__call__(view) -> {output: tensor [N, ...]}``.

    The loop calls ``collect(view)`` at each of the probe's steps and ``finish(collected)`` once at the
    end; by default they are ``__call__`` and stacking its outputs over the calls. A probe may instead
    keep references in ``collect`` (the loop never writes into a tensor) and compute everything at once
    in ``finish``: one batched call instead of one per step.
    """

    name = "probe"
    every = 1

    def check(self, optimizer) -> None:
        """Raise at construction of a run if this probe cannot read ``optimizer``."""

    def __call__(self, view: StepView) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def collect(self, view: StepView) -> object:
        return {key: value.detach() for key, value in self(view).items()}

    def finish(self, collected: list) -> dict[str, torch.Tensor]:
        """``{output: [calls, N, ...]}`` on the host."""
        keys = collected[0].keys() if collected else ()
        return {key: torch.stack([c[key] for c in collected]).cpu() for key in keys}

    def width(self, dim: int) -> int:
        """Numbers recorded per particle per call (for the memory estimate)."""
        return 1

    def to_dict(self) -> dict:
        return {"name": self.name, "every": self.every}


@dataclass
class GradNorm(Probe):
    every: int = 1
    name = "grad_norm"

    def __call__(self, view: StepView) -> dict[str, torch.Tensor]:
        return {"grad_norm": view.grad.norm(dim=1)}


@dataclass
class Kinetic(Probe):
    every: int = 1
    name = "kinetic"

    def __call__(self, view: StepView) -> dict[str, torch.Tensor]:
        rule = view.optimizer.rule
        hp = view.hp if view.hp is not None else view.optimizer.hp_at(0)
        kinetic = rule.kinetic_energy(view.update, hp)
        if kinetic is None:
            kinetic = torch.full_like(view.value, math.nan)
        return {"kinetic": kinetic}


@dataclass
class UpdateParts(Probe):
    every: int = 1
    name = "update_parts"

    def width(self, dim: int) -> int:
        return 5 * dim

    def __call__(self, view: StepView) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.finish([self.collect(view)]).items()}

    def collect(self, view: StepView) -> object:
        """The step's inputs, by reference: the parts of all calls are computed at once in finish."""
        if view.k == 0:
            return view.x
        return (
            view.optimizer,
            view.x_before,
            view.grad_used,
            view.state_before,
            view.hp,
            view.draw,
            view.update,
        )

    def finish(self, collected: list) -> dict[str, torch.Tensor]:
        """The parts of every recorded step from one call of the rule on all of them: ``[calls, N, d]``
        (NaN at the start, which no step led to)."""
        steps = [c for c in collected if isinstance(c, tuple)]
        like = collected[0] if not isinstance(collected[0], tuple) else collected[0][1]
        calls, (n, d) = len(collected), like.shape
        out = {key: torch.full((calls, n, d), math.nan, dtype=like.dtype) for key in UPDATE_PARTS}
        out["update"] = torch.zeros((calls, n, d), dtype=like.dtype)
        if not steps:
            return out
        rows = torch.tensor([i for i, c in enumerate(collected) if isinstance(c, tuple)])
        optimizer = steps[0][0]
        x_before = torch.cat([c[1] for c in steps])  # [S * N, d]
        grad_used = torch.cat([c[2] for c in steps])
        update = torch.cat([c[6] for c in steps])
        state = _stacked_states([c[3] for c in steps], n)
        hp = _stacked_hyper([c[4] for c in steps], n, like)
        draws = [c[5] for c in steps]
        draw = None if draws[0] is None else Draw.stacked(draws)
        force = -per_particle(hp["lr"], x_before) * grad_used
        coast, _ = optimizer.rule.update(torch.zeros_like(grad_used), state, x_before, hp, draw)
        safe = torch.where(force == 0, torch.ones_like(force), force)
        parts = {
            "force": force,
            "coast": coast,
            "update": update,
            "scale": torch.where(force == 0, torch.full_like(force, math.nan), update / safe),
            "lookahead": x_before + coast,
        }
        for key, value in parts.items():
            out[key][rows] = value.reshape(len(steps), n, d).detach().to("cpu", like.dtype)
        return out


@dataclass
class EnergyLedger(Probe):
    """Kinetic, potential and total energy and the cumulative friction loss, every step."""

    every: int = 1
    name = "energy_ledger"
    dissipated: torch.Tensor | None = field(default=None, repr=False)
    initial: torch.Tensor | None = field(default=None, repr=False)

    def check(self, optimizer) -> None:
        if optimizer.rule.physics != "inertial":
            raise invalid(
                "probe", self.name, "an optimizer with inertia (momentum or nesterov) for the ledger"
            )
        if self.every != 1:
            raise invalid("energy_ledger.every", self.every, "1 (the ledger sums every step's friction)")

    def width(self, dim: int) -> int:
        return 5

    def __call__(self, view: StepView) -> dict[str, torch.Tensor]:
        rule = view.optimizer.rule
        if view.k == 0:
            kinetic = torch.zeros_like(view.value)
            self.dissipated = torch.zeros_like(view.value)
        else:
            h = _per_row(rule.time_step(view.hp), view.value)  # [N] (or a number)
            velocity = view.update / per_particle(h, view.update)
            speed2 = (velocity * velocity).sum(dim=1)
            kinetic = 0.5 * speed2
            gamma = _per_row(rule.friction(view.hp), view.value)
            self.dissipated = self.dissipated + gamma * h * speed2
        total = kinetic + view.value
        if view.k == 0:
            self.initial = total
        initial = self.initial
        assert initial is not None  # set at step 0: the ledger sees every step (check: every == 1)
        return {
            "kinetic": kinetic,
            "potential": view.value,
            "total": total,
            "dissipated": self.dissipated,
            "imbalance": total + self.dissipated - initial,
        }


def _per_row(value, like: torch.Tensor):
    """A hyper-parameter (a number, ``[N]`` or ``[N, 1]``) as a number or a ``[N]`` tensor."""
    return value.to(like.dtype).reshape(-1) if isinstance(value, torch.Tensor) else value


@dataclass
class OptimizerState(Probe):
    """The rule's state after the step (its velocity, running averages, step count): what a face needs
    to evaluate ``rule.edge`` where an adaptive rule's preconditioner matters. ``[calls, N, d]`` per
    state tensor, ``step`` ``[calls]``."""

    every: int = 1
    name = "optimizer_state"

    def width(self, dim: int) -> int:
        return 4 * dim

    def __call__(self, view: StepView) -> dict[str, torch.Tensor]:
        return dict(view.state)

    def collect(self, view: StepView) -> object:
        return view.state  # by reference: the loop makes a new state every step


@dataclass
class LearnedRate(Probe):
    """The rate a hypergradient rule has learned after the step (``state["rate"]``), ``[calls, N]``;
    NaN for a rule that does not learn one."""

    every: int = 1
    name = "learned_rate"

    def __call__(self, view: StepView) -> dict[str, torch.Tensor]:
        rate = learned_rate(view.state)
        return {"rate": torch.full_like(view.value, math.nan) if rate is None else rate.clone()}


UPDATE_PARTS = ("force", "coast", "update", "scale", "lookahead")


def _stacked_states(states: list[dict], n: int) -> dict:
    """The rule states of S steps as one state of S * N particles (the step count per row)."""
    out = {}
    for name, value in states[0].items():
        if value.ndim == 0:
            out[name] = torch.stack([s[name] for s in states]).repeat_interleave(n).unsqueeze(1)
        else:
            out[name] = torch.cat([s[name] for s in states])
    return out


def _stacked_hyper(hps: list[dict], n: int, like: torch.Tensor) -> dict:
    """The hyper-parameters of S steps for S * N particles: a number the same at every step stays that
    number (flags stay flags); anything else (a scheduled lr, per-particle tensors) becomes a column
    ``[S * N, 1]``."""
    out = {}
    for name, first in hps[0].items():
        values = [hp[name] for hp in hps]
        if not isinstance(first, torch.Tensor) and all(v == first for v in values):
            out[name] = first
            continue
        columns = [torch.as_tensor(v, dtype=like.dtype, device=like.device).reshape(-1, 1) for v in values]
        out[name] = torch.cat([c.expand(n, 1) for c in columns])
    return out


PROBES: dict[str, type] = {
    p.name: p for p in (GradNorm, Kinetic, UpdateParts, EnergyLedger, OptimizerState, LearnedRate)
}


def probe_from_dict(spec: dict | str) -> Probe:
    """``{"name": "energy_ledger"}``, ``{"name": "update_parts", "every": 10}`` or just a name."""
    given = spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or spec.get("name") not in PROBES:
        raise invalid("probe", given, f"one of: {listed(sorted(PROBES))}")
    every = spec.get("every", 1)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise invalid(f"{spec['name']}.every", every, "an integer >= 1")
    unknown = sorted(set(spec) - {"name", "every"})
    if unknown:
        raise invalid(f"{spec['name']} field", unknown[0], "name or every")
    return PROBES[spec["name"]](every=every)
