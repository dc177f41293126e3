"""Events: what a particle reached and when, with their thresholds in one place (the spec).

Each event records, per particle, the first step (0 = the start) at which it fired, -1 if never:

- ``diverged``:  a non-finite position, energy or gradient, or farther than ``diverge_spans`` box
  sizes beyond the box. Always freezes the particle at its last finite state.
- ``left_box``:  left the box of a landscape unbounded below (the saddle). Always freezes it.
- ``converged``: a small gradient and a small last step, |g| < ``grad_tol`` and |dx| < ``step_tol``.
- ``target``:    the loss reached ``target_loss``.
- ``near:<id>``: within the capture radius of the known critical point ``id`` (when ``near=True``).

``converged`` and ``target`` freeze a particle only when listed in ``stop_on``. The outcome label is
derived from the events and the final state with the same thresholds, first match wins:
``diverged`` > ``minimum:<id>`` / ``saddle:<id>`` (converged within the capture radius of a known
point) > ``stationary`` (converged elsewhere) > ``target`` > ``escaped`` (left the box) > ``moving``.
A particle that stopped is therefore never ``moving``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch

from descent._errors import check_number, invalid

STOPPABLE = ("converged", "target")
DIVERGED, STATIONARY, TARGET, ESCAPED, MOVING = "diverged", "stationary", "target", "escaped", "moving"


@dataclass(frozen=True)
class Events:
    """Event thresholds and which events stop a particle.

    >>> Events(grad_tol=0.05, stop_on=("converged",)).step_tol
    0.05
    """

    grad_tol: float = 1e-3
    step_tol: float | None = None
    target_loss: float | None = None
    diverge_spans: float = 100.0
    near: bool = False
    capture_radius: float | None = None
    stop_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_number("grad_tol", self.grad_tol, 0.0, None, low_open=True)
        if self.step_tol is None:
            object.__setattr__(self, "step_tol", 1e-4 if self.grad_tol == 1e-3 else float(self.grad_tol))
        check_number("step_tol", self.step_tol, 0.0, None, low_open=True)
        if self.target_loss is not None:
            check_number("target_loss", self.target_loss)
        check_number("diverge_spans", self.diverge_spans, 0.0, None, low_open=True)
        if self.capture_radius is not None:
            check_number("capture_radius", self.capture_radius, 0.0, None, low_open=True)
        stop_on = (self.stop_on,) if isinstance(self.stop_on, str) else tuple(self.stop_on)
        for name in stop_on:
            if name not in STOPPABLE:
                raise invalid("stop_on", name, f"a list of {STOPPABLE} (diverged and left_box always stop)")
        if "target" in stop_on and self.target_loss is None:
            raise invalid("stop_on", "target", "a target_loss to stop at")
        object.__setattr__(self, "stop_on", stop_on)

    def to_dict(self) -> dict:
        return {**asdict(self), "stop_on": list(self.stop_on)}

    @classmethod
    def from_dict(cls, data: dict | None) -> Events:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise invalid("events field", unknown[0], f"one of {sorted(known)}")
        return cls(**data)


def row_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over the last axis of ``[N, d]``, a left fold of columns for small d (bitwise the same for a
    row whatever N, and on the CPU much faster than ``sum(dim=1)`` over a short axis)."""
    if t.shape[1] > 8:
        return t.sum(dim=1)
    total = t[:, 0]
    for j in range(1, t.shape[1]):
        total = total + t[:, j]
    return total


@dataclass
class EventLog:
    """Per-particle first steps of each event (``-1``: never) and the running state the outcome needs.

    ``settled_since``: the first step of the particle's current converged stretch (-1 when not
    converged now); ``min_loss`` / ``min_loss_step``: the running minimum of the loss.
    """

    steps: dict[str, torch.Tensor] = field(default_factory=dict)
    settled_since: torch.Tensor | None = None
    min_loss: torch.Tensor | None = None
    min_loss_step: torch.Tensor | None = None


class EventTracker:
    """Evaluates the events after each step for the particles still moving, and says which stop."""

    def __init__(self, events: Events, objective, n: int, dtype: torch.dtype, device: torch.device):
        self.events = events
        self.objective = objective
        self.unbounded = not objective.bounded_below
        spans = events.diverge_spans
        self.far_low = [lo - spans * (hi - lo) for lo, hi in objective.bounds]
        self.far_high = [hi + spans * (hi - lo) for lo, hi in objective.bounds]
        self.box_low = [lo for lo, _ in objective.bounds]
        self.box_high = [hi for _, hi in objective.bounds]
        self.grad_tol2 = events.grad_tol**2
        self.step_tol2 = events.step_tol**2
        self.points = known_points(objective)
        self.radius = events.capture_radius if events.capture_radius is not None else objective.radius()
        never = torch.full((n,), -1, dtype=torch.int64, device=device)
        names = ["diverged", "converged"] + ["left_box"] * self.unbounded
        names += ["target"] * (events.target_loss is not None)
        names += [f"near:{p.id}" for p in self.points] * events.near
        self.log = EventLog(
            steps={name: never.clone() for name in names},
            settled_since=never.clone(),
            min_loss=torch.full((n,), math.inf, dtype=dtype, device=device),
            min_loss_step=never.clone(),
        )
        self.centers = None
        if events.near and self.points:
            self.centers = torch.tensor([p.position for p in self.points], dtype=dtype, device=device)
        self.stop_converged = "converged" in events.stop_on
        self.stop_target = "target" in events.stop_on

    def bad(self, x: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Particles whose new state is diverged: non-finite (a row sum is non-finite when any entry is)
        or beyond the widened box (column by column)."""
        bad = ~torch.isfinite(row_sum(x) + value + row_sum(grad))
        for j in range(x.shape[1]):
            bad |= (x[:, j] < self.far_low[j]) | (x[:, j] > self.far_high[j])
        return bad

    def outside(self, x: torch.Tensor) -> torch.Tensor:
        out = (x[:, 0] < self.box_low[0]) | (x[:, 0] > self.box_high[0])
        for j in range(1, x.shape[1]):
            out |= (x[:, j] < self.box_low[j]) | (x[:, j] > self.box_high[j])
        return out

    def _fire(self, name: str, now: torch.Tensor, k: int) -> None:
        first = self.log.steps[name]
        self.log.steps[name] = torch.where((first < 0) & now, k, first)

    def observe(
        self,
        k: int,
        x: torch.Tensor,
        value: torch.Tensor,
        grad: torch.Tensor,
        update: torch.Tensor,
        diverged_now: torch.Tensor,
        moving: torch.Tensor | None,
    ) -> torch.Tensor:
        """Record the events of the state after step ``k`` for the ``moving`` particles (None: all) and
        return which of them stop here (``[N]`` bool): diverged, left the box, or a ``stop_on`` event.
        Frozen particles keep their records (their state does not change)."""
        log = self.log
        active = diverged_now.logical_not() if moving is None else moving & ~diverged_now
        self._fire("diverged", diverged_now, k)
        converged = (row_sum(grad * grad) < self.grad_tol2) & (row_sum(update * update) < self.step_tol2)
        converged &= active
        self._fire("converged", converged, k)
        since = log.settled_since
        settled = torch.where(converged, torch.where(since < 0, k, since), -1)
        log.settled_since = settled if moving is None else torch.where(moving, settled, since)
        better = active & (value < log.min_loss)
        log.min_loss = torch.where(better, value, log.min_loss)
        log.min_loss_step = torch.where(better, k, log.min_loss_step)
        stop = diverged_now
        if self.unbounded:
            left = active & self.outside(x)
            self._fire("left_box", left, k)
            stop = stop | left
        if self.events.target_loss is not None:
            reached = active & (value <= self.events.target_loss)
            self._fire("target", reached, k)
            if self.stop_target:
                stop = stop | reached
        if self.stop_converged:
            stop = stop | converged
        if self.centers is not None:
            distance = point_distances(x, self.centers)
            for i, point in enumerate(self.points):
                self._fire(f"near:{point.id}", active & (distance[:, i] < self.radius), k)
        return stop if moving is None else stop & moving


def known_points(objective) -> tuple:
    """The objective's minima and saddles: the points an outcome can name."""
    return tuple(p for p in objective.critical_points if p.is_minimum or p.kind == "saddle")


def point_distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[N, P]``, sqrt(sum_j (x_j - c_j)^2) column by column (exact to rounding,
    unlike the |x|^2 - 2 x.c + |c|^2 shortcut)."""
    squared = (x[:, :1] - centers[:, 0]).square()
    for j in range(1, x.shape[1]):
        squared = squared + (x[:, j : j + 1] - centers[:, j]).square()
    return squared.sqrt()


def outcome_labels(objective) -> list[str]:
    """Every label a run on ``objective`` can give, in order of precedence."""
    named = [f"{'minimum' if p.is_minimum else 'saddle'}:{p.id}" for p in known_points(objective)]
    return [DIVERGED, *named, STATIONARY, TARGET, ESCAPED, MOVING]


def outcomes(
    events: Events, objective, log: EventLog, x: torch.Tensor, grad: torch.Tensor, update: torch.Tensor
) -> tuple[list[str], torch.Tensor]:
    """Each particle's outcome label and the step it was reached, from the event log and the final
    state, with the events' thresholds (module docstring)."""
    n = x.shape[0]
    labels = outcome_labels(objective)
    points = known_points(objective)
    code = torch.full((n,), labels.index(MOVING), dtype=torch.int64)
    step = torch.full((n,), -1, dtype=torch.int64)
    steps = {name: t.cpu() for name, t in log.steps.items()}
    settled = log.settled_since.cpu()
    xs, gs, us = x.detach().cpu(), grad.detach().cpu(), update.detach().cpu()

    def assign(mask: torch.Tensor, label_code: torch.Tensor | int, when: torch.Tensor) -> None:
        nonlocal code, step
        free = mask & (code == labels.index(MOVING))
        code = torch.where(free, label_code, code)
        step = torch.where(free, when, step)

    assign(steps["diverged"] >= 0, labels.index(DIVERGED), steps["diverged"])
    finite = torch.isfinite(xs).all(dim=1) & torch.isfinite(gs).all(dim=1)
    converged = finite & (row_sum(gs * gs) < events.grad_tol**2) & (row_sum(us * us) < events.step_tol**2)
    if points:
        centers = torch.tensor([p.position for p in points], dtype=xs.dtype)
        distance, nearest = point_distances(torch.nan_to_num(xs), centers).min(dim=1)
        radius = events.capture_radius if events.capture_radius is not None else objective.radius()
        assign(converged & (distance < radius), nearest + 1, settled)
    assign(converged, labels.index(STATIONARY), settled)
    if "target" in steps:
        assign(steps["target"] >= 0, labels.index(TARGET), steps["target"])
    if "left_box" in steps:
        assign(steps["left_box"] >= 0, labels.index(ESCAPED), steps["left_box"])
    return [labels[c] for c in code.tolist()], step
