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
from dataclasses import asdict, dataclass, fields

import torch

from descent._errors import check_number, invalid, listed

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
            raise invalid("events field", unknown[0], f"one of: {listed(sorted(known))}")
        return cls(**data)


def norm(t: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each row of ``[N, d]`` (one call; a row's value does not depend on N)."""
    return torch.linalg.vector_norm(t, dim=1)


@dataclass
class EventLog:
    """Per-particle first steps of each event (``-1``: never) and the running state the outcome needs.

    ``settled_since``: the first step of the particle's last converged stretch (when it is converged
    at the end); ``min_loss`` / ``min_loss_step``: the running minimum of the loss and where it was.
    """

    steps: dict[str, torch.Tensor]
    settled_since: torch.Tensor
    min_loss: torch.Tensor
    min_loss_step: torch.Tensor


NEVER = 1 << 62  # "not yet" while running; -1 in the log


class EventTracker:
    """The events of every state, for the particles still moving.

    Events that stop a particle (diverged, left the box, the ``stop_on`` ones) are decided at every
    step (:meth:`stops`). Events that are only recorded are evaluated in batches of saved states (the
    loop never writes into a tensor, so the queued states stay valid): the same first steps as
    checking after every step, for a few calls per batch (:meth:`record`, :meth:`flush`).
    """

    #: numbers per batch (particles x dimension x steps): a small 2-D swarm batches up to 32 steps, a
    #: large swarm or a network's whole parameter vectors none (32 queued [100, 8970] states cost more
    #: to concatenate than the step itself)
    BATCH_NUMBERS = 1 << 17

    def __init__(self, events: Events, objective, n: int, dtype: torch.dtype, device: torch.device):
        self.events = events
        self.batch = max(1, min(32, self.BATCH_NUMBERS // max(n * objective.dim, 1)))
        self.unbounded = not objective.bounded_below
        spans = events.diverge_spans
        low = torch.tensor([lo for lo, _ in objective.bounds], dtype=dtype, device=device)
        high = torch.tensor([hi for _, hi in objective.bounds], dtype=dtype, device=device)
        self.box_center, self.box_inverse = (low + high) / 2, 2 / (high - low)
        self.far_inverse = 2 / ((high - low) * (1 + 2 * spans))
        # one box for every coordinate (a network's weights): the reach needs only each particle's
        # largest and smallest coordinate, not a scaled copy of the whole [N, d] state
        self.one_box = len(set(objective.bounds)) == 1
        self.points = known_points(objective)
        self.radius = events.capture_radius if events.capture_radius is not None else objective.radius()
        self.centers = None
        if events.near and self.points:
            self.centers = torch.tensor([p.position for p in self.points], dtype=dtype, device=device)
        self.stop_converged = "converged" in events.stop_on
        self.stop_target = "target" in events.stop_on
        self.can_stop = self.unbounded or bool(events.stop_on)
        names = ["converged"] + ["target"] * (events.target_loss is not None)
        names += [f"near:{p.id}" for p in self.points] * (self.centers is not None)
        never = torch.full((n,), NEVER, dtype=torch.int64, device=device)
        self.first = {name: never.clone() for name in names}
        self.diverged = never.clone()
        self.left_box = never.clone()
        self.unsettled = torch.full((n,), -1, dtype=torch.int64, device=device)  # last step not converged
        self.min_loss = torch.full((n,), math.inf, dtype=dtype, device=device)
        self.min_loss_step = torch.full((n,), -1, dtype=torch.int64, device=device)
        self.queue: list[tuple] = []

    # --- every step ------------------------------------------------------------------------------
    def bad(self, x: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Diverged: beyond the widened box or not finite (a NaN fails every comparison), or a non-finite
        energy or gradient (their sum is then not finite; a sum that overflows is as good as diverged)."""
        reach = self._reach(x, self.far_inverse)
        return ~((reach <= 1) & torch.isfinite(value + grad.amax(dim=1)))

    def outside(self, x: torch.Tensor) -> torch.Tensor:
        """Outside the box (NaN counts as outside)."""
        return ~(self._reach(x, self.box_inverse) <= 1)

    def _reach(self, x: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        """max_i |x_i - center_i| * inverse_i per particle ``[N]`` (NaN where a coordinate is NaN)."""
        if self.one_box:
            low, high = x.amin(dim=1), x.amax(dim=1)  # torch's aminmax(dim=1) is 10x slower on the CPU
            return torch.maximum(high - self.box_center[0], self.box_center[0] - low) * inverse[0]
        return ((x - self.box_center) * inverse).abs().amax(dim=1)

    def converged(self, grad: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        step_tol = self.events.step_tol
        assert step_tol is not None  # Events.__post_init__ replaces a None step_tol
        return (norm(grad) < self.events.grad_tol) & (norm(update) < step_tol)

    def mark_diverged(self, k: int, now: torch.Tensor) -> None:
        self.diverged = torch.where(now, torch.clamp(self.diverged, max=k), self.diverged)

    def stops(self, k, x, value, grad, update, moving: torch.Tensor | None) -> torch.Tensor | None:
        """Which moving particles (None: all) stop at state k for a reason other than divergence:
        left the box (landscapes unbounded below) or a ``stop_on`` event. None when none can."""
        if not self.can_stop:
            return None
        stop = torch.zeros_like(value, dtype=torch.bool)
        if self.unbounded:
            left = self.outside(x)
            if moving is not None:
                left &= moving
            self.left_box = torch.where(left, torch.clamp(self.left_box, max=k), self.left_box)
            stop |= left
        if self.stop_converged:
            stop |= self.converged(grad, update)
        if self.stop_target:
            stop |= value <= self.events.target_loss
        return stop if moving is None else stop & moving

    # --- recorded in batches ------------------------------------------------------------------------
    def record(self, k, x, value, grad, update, moving: torch.Tensor | None) -> None:
        """Queue state k for the recorded events (``moving``: which particles were still moving)."""
        self.queue.append((k, x, value, grad, update, moving))
        if len(self.queue) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Evaluate the queued states: ``[S, N]`` at once (a swarm of one particle batches 32 steps
        into one call per operation; a large swarm is flushed every step, as ``[N]``)."""
        queue, self.queue = self.queue, []
        if not queue:
            return
        ks, xs, values, grads, updates, movings = zip(*queue)
        n, count = values[0].shape[0], len(queue)
        if count == 1:  # k is a Python number: no reduction over steps
            at = ks[0]
            value, moving = values[0], movings[0]
            converged = self.converged(grads[0], updates[0])
            positions = xs[0]
        else:  # the queued steps are consecutive: made on the device, no host-to-device copy
            at = (ks[0] + torch.arange(count, dtype=torch.int64, device=values[0].device)).unsqueeze(1)
            value = torch.stack(values)  # [S, N]
            full = torch.ones_like(values[0], dtype=torch.bool)
            moving = torch.stack([full if m is None else m for m in movings])
            converged = self.converged(torch.cat(grads), torch.cat(updates)).view(count, n)
            positions = torch.cat(xs)
        if moving is not None:
            converged = converged & moving
        self._first("converged", converged, at)
        unconverged = ~converged if moving is None else moving & ~converged
        self.unsettled = torch.maximum(self.unsettled, self._last(unconverged, at))
        masked = value if moving is None else torch.where(moving, value, math.inf)
        if count == 1:
            low, when = masked, at
        else:
            low, where = masked.min(dim=0)  # the first occurrence of the minimum
            when = at.squeeze(1)[where]
        better = low < self.min_loss
        self.min_loss = torch.where(better, low, self.min_loss)
        self.min_loss_step = torch.where(better, when, self.min_loss_step)
        if "target" in self.first:
            reached = value <= self.events.target_loss
            self._first("target", reached if moving is None else reached & moving, at)
        if self.centers is not None:
            distance = point_distances(positions, self.centers).view(count, n, -1).squeeze(0)
            for i, point in enumerate(self.points):
                near = distance[..., i] < self.radius
                self._first(f"near:{point.id}", near if moving is None else near & moving, at)

    def _first(self, name: str, fired: torch.Tensor, at: torch.Tensor | int) -> None:
        """Keep the earliest step at which ``fired`` ([N], or [S, N] over the steps ``at``)."""
        first = torch.where(fired, at, NEVER)
        if first.ndim == 2:
            first = first.amin(dim=0)
        self.first[name] = torch.minimum(self.first[name], first)

    @staticmethod
    def _last(fired: torch.Tensor, at: torch.Tensor | int) -> torch.Tensor:
        """The latest step at which ``fired`` (-1: never)."""
        last = torch.where(fired, at, -1)
        return last.amax(dim=0) if last.ndim == 2 else last

    def log(self, final_converged: torch.Tensor) -> EventLog:
        """The event log (``-1``: never), after the last flush."""
        self.flush()

        def plain(t: torch.Tensor) -> torch.Tensor:
            return torch.where(t == NEVER, -1, t).cpu()

        steps = {"diverged": plain(self.diverged)}
        steps["converged"] = plain(self.first["converged"])
        if self.unbounded:
            steps["left_box"] = plain(self.left_box)
        steps.update({name: plain(t) for name, t in self.first.items() if name != "converged"})
        settled = torch.where(final_converged, self.unsettled + 1, -1).cpu()
        return EventLog(steps, settled, self.min_loss.cpu(), self.min_loss_step.cpu())


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
    steps = log.steps
    settled = log.settled_since
    xs, gs, us = x.detach().cpu(), grad.detach().cpu(), update.detach().cpu()

    def assign(mask: torch.Tensor, label_code: torch.Tensor | int, when: torch.Tensor) -> None:
        nonlocal code, step
        free = mask & (code == labels.index(MOVING))
        code = torch.where(free, label_code, code)
        step = torch.where(free, when, step)

    assign(steps["diverged"] >= 0, labels.index(DIVERGED), steps["diverged"])
    finite = torch.isfinite(xs).all(dim=1) & torch.isfinite(gs).all(dim=1)
    step_tol = events.step_tol
    assert step_tol is not None  # Events.__post_init__ replaces a None step_tol
    converged = finite & (norm(gs) < events.grad_tol) & (norm(us) < step_tol)
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
