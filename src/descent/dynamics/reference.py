"""The readable reference loop: one particle at a time, one step at a time, with plain ``if``s.

It is what ``simulate`` computes, written so a student can read it next to the seeds' formulas
(``w <- w - lr * grad L(w)``; ``v <- beta*v - lr*grad``, ``w <- w + v``). It imports nothing from
``simulate``; the parity test checks the two agree bit for bit in float64.

For each particle i:

    x = start_i;  U, g = objective at x on the batch of step 0;  s = rule.init(x)
    for k = 0, 1, ..., steps - 1 (until the particle stops):
        g~ = transforms(g)                       # noise, clipping, weight decay
        u, s' = rule.update(g~, s, x, hp_k)      # the optimizer's step
        U', g' = objective at x + u on the batch of step k + 1
        if the new state is not finite, or far beyond the box:  diverged at k + 1, stop (keep x)
        x, U, g, s = x + u, U', g', s'
        record the events of step k + 1; stop if one of them freezes the particle
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from descent.dynamics.events import Events
from descent.random import Draw, integers, permutation


@dataclass
class ReferenceParticle:
    """One particle's run: its path (one row per step, repeated once it stopped), losses, events."""

    path: list[list[float]]
    loss: list[float]
    events: dict[str, int]
    stop_step: int
    outcome: str
    outcome_step: int
    min_loss: float
    min_loss_step: int


def reference_run(
    objective,
    optimizer,
    starts: torch.Tensor,
    steps: int,
    *,
    events: Events | None = None,
    seed: int = 0,
    batch_size: int | list | None = None,
    batch_mode: str | list = "replacement",
    streams: str = "particle",
) -> list[ReferenceParticle]:
    """Run every particle of ``starts`` on its own; see the module docstring. ``streams``: particle
    i draws from its own stream (``"particle"``) or from particle 0's (``"shared"``)."""
    events = Events() if events is None else events
    n = starts.shape[0]
    sizes = batch_size if isinstance(batch_size, list) else [batch_size] * n
    modes = batch_mode if isinstance(batch_mode, list) else [batch_mode] * n
    return [
        _one_particle(
            objective,
            optimizer.select(i),
            starts[i : i + 1],
            steps,
            events,
            seed,
            0 if streams == "shared" else i,
            sizes[i],
            modes[i],
        )  # fmt: skip
        for i in range(n)
    ]


def _batch(objective, seed: int, particle: int, step: int, size, mode: str):
    """The example indices ``[1, size]`` of this particle's mini-batch at ``step`` (None: all data)."""
    n = objective.data_size
    if size is None or n is None or size >= n:
        return None
    who = torch.tensor([particle])
    if mode == "replacement":
        return integers(seed, "batch", who, step, size, n)
    if mode == "without":
        return permutation(seed, "batch", who, step, n)[:, :size]
    batches_per_epoch = n // size
    epoch = step // batches_per_epoch
    position = step % batches_per_epoch
    order = permutation(seed, "shuffle", who, epoch, n)
    return order[:, position * size : (position + 1) * size]


def _one_particle(objective, optimizer, x, steps, events, seed, stream, size, mode) -> ReferenceParticle:
    bounds = objective.bounds
    spans = events.diverge_spans

    def value_and_grad(point, k):
        return objective.value_and_grad(point, _batch(objective, seed, stream, k, size, mode))

    def reach(point, widen: float) -> float:
        """How far the point is from the box's centre, in half-widths of the box widened by ``widen``
        box sizes on each side (<= 1: inside); NaN when a coordinate is NaN."""
        worst = 0.0
        for c, (lo, hi) in zip(point[0].tolist(), bounds):
            r = abs((c - (lo + hi) / 2) * (2 / ((hi - lo) * (1 + 2 * widen))))
            if math.isnan(r):
                return math.nan
            worst = max(worst, r)
        return worst

    def diverged(point, value, grad) -> bool:
        """Beyond the box widened by ``diverge_spans`` box sizes, or a non-finite state (the energy plus
        the largest gradient entry not finite, as in the engine: an overflow counts)."""
        far = reach(point, spans)
        g = grad[0].tolist()
        if math.isnan(far) or far > 1 or any(math.isnan(v) for v in g):
            return True
        return not math.isfinite(float(value[0]) + max(g))

    def outside(point) -> bool:
        r = reach(point, 0.0)
        return math.isnan(r) or r > 1

    def length(t) -> float:
        return float(torch.linalg.vector_norm(t, dim=1)[0])

    value, grad = value_and_grad(x, 0)
    state = optimizer.init(x)
    last = torch.zeros_like(x)
    record = {"diverged": -1, "converged": -1}
    if not objective.bounded_below:
        record["left_box"] = -1
    if events.target_loss is not None:
        record["target"] = -1
    settled, min_loss, min_step, stop_step = -1, math.inf, -1, -1
    path, losses = [x[0].tolist()], [float(value[0])]

    def observe(k: int, bad: bool) -> bool:
        """Record the events of state k; True when the particle stops here."""
        nonlocal settled, min_loss, min_step
        if bad:
            record["diverged"] = k
            return True
        converged = length(grad) < events.grad_tol and length(last) < events.step_tol
        if converged:
            if record["converged"] < 0:
                record["converged"] = k
            if settled < 0:
                settled = k
        else:
            settled = -1
        if float(value[0]) < min_loss:
            min_loss, min_step = float(value[0]), k
        stop = False
        if "left_box" in record and outside(x):
            if record["left_box"] < 0:
                record["left_box"] = k
            stop = True
        if events.target_loss is not None and float(value[0]) <= events.target_loss:
            if record["target"] < 0:
                record["target"] = k
            stop = stop or "target" in events.stop_on
        if converged and "converged" in events.stop_on:
            stop = True
        return stop

    if observe(0, diverged(x, value, grad)):
        stop_step = 0
    for k in range(steps):
        if stop_step >= 0:
            path.append(path[-1])
            losses.append(losses[-1])
            continue
        draw = Draw(seed, torch.tensor([stream]), k, x.dtype)
        update, new_state = optimizer.step(k, x, grad, state, draw)
        x_new = x + update
        value_new, grad_new = value_and_grad(x_new, k + 1)
        bad = diverged(x_new, value_new, grad_new)
        if not bad:
            x, value, grad, last, state = x_new, value_new, grad_new, update, new_state
        if observe(k + 1, bad):
            stop_step = k + 1
        path.append(x[0].tolist())
        losses.append(float(value[0]))
    outcome, outcome_step = _outcome(objective, events, record, settled, x, grad, last)
    return ReferenceParticle(path, losses, record, stop_step, outcome, outcome_step, min_loss, min_step)


def _outcome(objective, events, record, settled, x, grad, last) -> tuple[str, int]:
    """The label, first match wins: diverged > minimum/saddle > stationary > target > escaped > moving."""
    if record["diverged"] >= 0:
        return "diverged", record["diverged"]
    g = float(torch.linalg.vector_norm(grad, dim=1)[0])
    s = float(torch.linalg.vector_norm(last, dim=1)[0])
    if g < events.grad_tol and s < events.step_tol:
        radius = events.capture_radius if events.capture_radius is not None else objective.radius()
        best, best_distance = None, math.inf
        for point in objective.critical_points:
            if not (point.is_minimum or point.kind == "saddle"):
                continue
            distance = math.sqrt(sum((a - b) ** 2 for a, b in zip(x[0].tolist(), point.position)))
            if distance < best_distance:
                best, best_distance = point, distance
        if best is not None and best_distance < radius:
            return f"{'minimum' if best.is_minimum else 'saddle'}:{best.id}", settled
        return "stationary", settled
    if record.get("target", -1) >= 0:
        return "target", record["target"]
    if record.get("left_box", -1) >= 0:
        return "escaped", record["left_box"]
    return "moving", -1
