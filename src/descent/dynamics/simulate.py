"""`simulate`: the step loop of the lab, batched over particles ``[N, d]``, in three parts (diffrax-style):
the loop itself, ``SaveAt`` (what to keep), ``Events`` (what a particle reached, when it stops) and
probes (what to measure inside the loop).

Per step k = 0, 1, ...:
    g~ = transforms(grad U(w_k; batch_k))          gradient noise, clipping, weight decay
    (u, s) = rule.update(g~, s, w_k, hp_k, draw_k)  w_{k+1} = w_k + u
    grad U(w_{k+1}; batch_{k+1}), then the events of state k + 1

Random numbers (Langevin and gradient noise, mini-batch indices) come from the counter-based stream
keyed by (seed, particle, step, purpose), so a particle's run does not depend on the others.
Frozen particles (diverged, left the box, or a ``stop_on`` event) are masked at every step: they
keep their state; a diverged one keeps its last finite state. An interrupted run (Ctrl-C) returns
what it finished, with ``interrupted=True``. ``descent.dynamics.reference`` is the same loop written
plainly, one particle at a time; the two are tested equal bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from descent._errors import invalid, listed
from descent.dynamics.batches import Batching, batched_value_and_grad
from descent.dynamics.events import Events, EventTracker, outcomes
from descent.dynamics.probes import Probe, StepView
from descent.dynamics.save import (
    SaveAt,
    check_budget,
    default_budget,
    frame_bytes,
    resident_bytes,
    working_bytes,
)
from descent.dynamics.trajectory import Trajectory, nearest_minimum
from descent.optim import Optimizer
from descent.random import STREAMS, Draw, stream_ids

Progress = Callable[[int, int], None]
BACKENDS = ("torch", "kernel", "auto")


def simulate(
    objective,
    optimizer: Optimizer,
    starts: torch.Tensor,
    steps: int,
    *,
    save: SaveAt | None = None,
    events: Events | None = None,
    probes: Sequence[Probe] = (),
    seed: int = 0,
    batching: Batching | None = None,
    memory_budget: int | None = None,
    progress: Progress | None = None,
    spec: dict | None = None,
    backend: str = "torch",
    streams: str = "particle",
) -> Trajectory:
    """Run ``optimizer`` on ``objective`` from ``starts`` ([N, d]) for at most ``steps`` steps.

    >>> from descent.landscapes import get_landscape
    >>> well = get_landscape("double-well")
    >>> traj = simulate(well, Optimizer.build("momentum", lr=0.02, momentum=0.9), well.start(), 2000)
    >>> traj.outcomes
    ['minimum:right']

    ``backend``: ``"torch"`` (this loop), ``"kernel"`` (a compiled kernel, :mod:`descent.kernels`; an
    error names what it does not support yet) or ``"auto"`` (the kernel where
    :func:`descent.kernels.backend.unsupported` says it supports the run, else this loop). The
    trajectory's ``backend`` says which ran and, when ``"auto"`` fell back to this loop, its
    ``fallback`` says why.

    ``streams``: ``"particle"`` (particle i draws its noise and mini-batches from the stream keyed by
    i) or ``"shared"`` (every particle draws particle 0's: common random numbers, so particle i's run
    equals the run of its start and settings alone; `descent.spec` says why).
    """
    save = SaveAt() if save is None else save
    events = Events() if events is None else events
    if starts.ndim != 2 or starts.shape[1] != objective.dim:
        raise invalid("starts", tuple(starts.shape), f"a tensor of shape [N, {objective.dim}]")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise invalid("steps", steps, "an integer >= 0")
    steps = int(steps)
    n, dim = starts.shape
    device, dtype = starts.device, starts.dtype
    for probe in probes:
        probe.check(optimizer)
    check_memory(optimizer, n, dim, dtype, steps, save, probes, memory_budget)
    if backend not in BACKENDS:
        raise invalid("backend", backend, f"one of: {listed(BACKENDS)}")
    if streams not in STREAMS:
        raise invalid("streams", streams, f"one of: {listed(STREAMS)}")
    fallback = None
    extra: dict[str, bool] = {}
    if backend != "torch":
        if device.type == "cuda":  # the CUDA kernels: one thread per particle (descent.kernels.cuda)
            from descent.kernels.cuda import cuda_unsupported as unsupported
            from descent.kernels.cuda import run_cuda as run_kernel
        else:
            from descent.kernels.backend import run_kernel, unsupported

            extra = {"defer": backend == "auto"}  # an "auto" run need not wait for a compilation
        reason = unsupported(objective, optimizer, starts, save, events, probes, batching, steps)
        if reason is None and streams == "shared" and device.type == "cuda" and optimizer.needs_draw:
            reason = "shared random streams on CUDA"
        if reason is None:
            from descent.kernels.backend import NotCompiledYet

            try:
                return run_kernel(
                    objective, optimizer, starts, steps, save, events, seed, progress, spec, probes,
                    streams=streams, **extra,
                )  # fmt: skip
            except NotCompiledYet as waiting:  # only on the CPU, only for "auto" (defer_compiling)
                fallback = str(waiting)
        elif backend == "kernel":
            raise invalid("backend", backend, f"'torch' or 'auto' here: no kernel supports {reason} yet")
        else:
            fallback = f"no kernel supports {reason} yet"

    ids = stream_ids(n, streams, device)
    opt = optimizer.on(starts)
    groups = batching.groups(device) if batching is not None else None

    def evaluate(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return batched_value_and_grad(objective, x, batching, groups, seed, k, ids)

    x = starts.detach().clone()
    value, grad = evaluate(x, 0)
    state = opt.init(x)
    last_update = torch.zeros_like(x)
    tracker = EventTracker(events, objective, n, dtype, device)
    diverged = tracker.bad(x, value, grad)
    tracker.mark_diverged(0, diverged)
    tracker.record(0, x, value, grad, last_update, ~diverged)
    stopped = tracker.stops(0, x, value, grad, last_update, ~diverged)
    stopped = diverged if stopped is None else diverged | stopped
    stop_step = torch.where(stopped, 0, torch.full((n,), -1, dtype=torch.int64, device=device))
    active = ~stopped
    n_active = int(active.sum())
    saved = _Frames(save.frame_count(steps), n, dim, dtype)
    saved.add(0, x, value, last_update)
    records = _ProbeRecords(probes)
    records.add(StepView(0, x, value, grad, last_update, state, opt, active=active))

    done = 0
    interrupted = False
    report_every = max(steps // 200, 1)
    try:
        for k in range(steps):
            if n_active == 0:
                break
            hp = opt.hp_at(k)
            draw = Draw(seed, ids, k, dtype) if opt.needs_draw else None
            grad_used = opt.process_gradient(grad, x, draw)
            update, new_state = opt.rule.update(grad_used, state, x, hp, draw)
            x_new = x + update
            value_new, grad_new = evaluate(x_new, k + 1)
            bad = tracker.bad(x_new, value_new, grad_new)
            x_before, state_before, moving = x, state, active
            if n_active == n and not bool(bad.any()):  # the common step: nobody frozen, nobody diverged
                x, value, grad, last_update, state = x_new, value_new, grad_new, update, new_state
                moved, moving_arg, stopping = active, None, None
            else:
                moved = active & ~bad
                rows = moved.unsqueeze(1)
                x = torch.where(rows, x_new, x)
                value = torch.where(moved, value_new, value)
                grad = torch.where(rows, grad_new, grad)
                last_update = torch.where(rows, update, last_update)
                state = _masked_state(rows, new_state, state)
                stopping = bad & active
                tracker.mark_diverged(k + 1, stopping)
                moving_arg = moved
            tracker.record(k + 1, x, value, grad, last_update, moving_arg)
            more = tracker.stops(k + 1, x, value, grad, last_update, moving_arg)
            if more is not None:
                stopping = more if stopping is None else stopping | more
            if stopping is not None and bool(stopping.any()):
                stop_step = torch.where(stopping, k + 1, stop_step)
                active = active & ~stopping
                n_active = int(active.sum())
            done = k + 1
            if save.wants(done):
                saved.add(done, x, value, last_update)
            if records.due(done):
                step_update = torch.where(moved.unsqueeze(1), update, torch.zeros_like(update))
                view = StepView(
                    done,
                    x,
                    value,
                    grad,
                    step_update,
                    state,
                    opt,
                    hp,
                    x_before,
                    grad_used,
                    state_before,
                    draw,
                    moving,
                )
                records.add(view)
            if progress is not None and (done % report_every == 0 or done == steps):
                progress(done, steps)
    except KeyboardInterrupt:
        interrupted = True
    if saved.steps[-1] != done:
        saved.add(done, x, value, last_update)
    log = tracker.log(tracker.converged(grad, last_update))
    labels, outcome_step = outcomes(events, objective, log, x, grad, last_update)
    return Trajectory(
        landscape=objective,
        optimizer=optimizer,
        **saved.finish(),
        time_step=None,
        outcomes=labels,
        outcome_step=outcome_step,
        stop_step=stop_step.cpu(),
        nearest_minimum=nearest_minimum(objective, x),
        steps_run=done,
        interrupted=interrupted,
        seed=int(seed),
        dtype=str(dtype).removeprefix("torch."),
        device=str(device),
        spec=spec,
        events=log.steps,
        event_thresholds=events.to_dict(),
        final_position=x.detach().cpu(),
        final_loss=value.detach().cpu(),
        final_update=last_update.detach().cpu(),
        min_loss=log.min_loss,
        min_loss_step=log.min_loss_step,
        probes=records.finish(),
        save=save,
        fallback=fallback,
    )


def check_memory(optimizer, n, dim, dtype, steps, save, probes=(), budget=None) -> int:
    """Estimate the bytes a run of ``n`` particles holds and refuse it, before anything is allocated,
    when that exceeds ``budget`` (default: half the machine's memory); returns the estimate."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    state_tensors = sum(1 for v in optimizer.init(torch.zeros(1, dim, dtype=dtype)).values() if v.ndim == 2)
    frames = save.frame_count(steps)
    probe_numbers = sum((steps // p.every + 2) * n * p.width(dim) for p in probes)
    return check_budget(
        save,
        steps,
        frames,
        frame_bytes(n, dim, itemsize),
        working_bytes(n, dim, itemsize, state_tensors) + probe_numbers * itemsize + resident_bytes(),
        default_budget() if budget is None else int(budget),
        n,
    )


def _masked_state(rows: torch.Tensor, new: dict, old: dict) -> dict:
    """The rule's new state for the particles that moved, the old one for the rest (the step counter,
    shared by all particles, always advances)."""
    return {
        name: torch.where(rows, value, old[name]) if value.ndim == 2 else value for name, value in new.items()
    }


class _Frames:
    """Saved frames in host arrays allocated once for the most frames the run can save (so memory is
    what the estimate said), filled as the run goes and trimmed at the end."""

    def __init__(self, capacity: int, n: int, dim: int, dtype: torch.dtype) -> None:
        self.steps: list[int] = []
        self.positions = torch.empty((capacity, n, dim), dtype=dtype)
        self.loss = torch.empty((capacity, n), dtype=dtype)
        self.displacement = torch.empty((capacity, n, dim), dtype=dtype)

    def add(self, k: int, x: torch.Tensor, value: torch.Tensor, update: torch.Tensor) -> None:
        i = len(self.steps)
        if i == self.positions.shape[0]:  # a final frame beyond the planned ones (never expected)
            self.positions = torch.cat([self.positions, torch.empty_like(self.positions[:1])])
            self.loss = torch.cat([self.loss, torch.empty_like(self.loss[:1])])
            self.displacement = torch.cat([self.displacement, torch.empty_like(self.displacement[:1])])
        self.positions[i].copy_(x)
        self.loss[i].copy_(value)
        self.displacement[i].copy_(update)
        self.steps.append(k)

    def finish(self) -> dict:
        t = len(self.steps)
        return {
            "steps": torch.tensor(self.steps, dtype=torch.int64),
            "positions": self.positions[:t],
            "loss": self.loss[:t],
            "displacement": self.displacement[:t],
        }


class _ProbeRecords:
    """Each probe's outputs at the steps it was called, moved to the host."""

    def __init__(self, probes: Sequence[Probe]) -> None:
        self.probes = list(probes)
        self.steps: dict[str, list[int]] = {p.name: [] for p in self.probes}
        self.collected: dict[str, list] = {p.name: [] for p in self.probes}

    def due(self, k: int) -> bool:
        return any(k % p.every == 0 for p in self.probes)

    def add(self, view: StepView) -> None:
        for probe in self.probes:
            if view.k % probe.every:
                continue
            self.steps[probe.name].append(view.k)
            self.collected[probe.name].append(probe.collect(view))

    def finish(self) -> dict[str, dict[str, torch.Tensor]]:
        out = {}
        for probe in self.probes:
            record = probe.finish(self.collected[probe.name])
            record["steps"] = torch.tensor(self.steps[probe.name], dtype=torch.int64)
            out[probe.name] = record
        return out
