"""`simulate`: the one step loop of the lab, batched over particles ``[N, d]``.

Per step k = 0, 1, ...:  g = grad U(w_k);  (u, s) = optimizer.step(k, w_k, g, s);  w_{k+1} = w_k + u.

Physics readout (REFERENCE.md): GD is explicit Euler for x' = -grad U with time step h = lr, so the
velocity is u/lr. The heavy ball (momentum, nesterov) is the step-h discretisation of
x'' + gamma x' = -grad U with unit mass, h = sqrt(lr), gamma = (1 - beta)/sqrt(lr): the velocity is
u/h, kinetic energy |u/h|^2/2, potential energy U, and their sum decays by friction.
Adaptive rules have no such mapping: their velocity is the displacement per step.

Particles that go non-finite (or absurdly far) are frozen at their last finite position and marked
``diverged``; on landscapes unbounded below, leaving the box freezes them as ``escaped``.
An interrupted run (Ctrl-C) returns what it finished, with ``interrupted=True``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from descent._errors import check_number, invalid
from descent.dynamics.outcomes import ESCAPED, Classifier, row_sum
from descent.dynamics.trajectory import Trajectory
from descent.landscapes import Landscape
from descent.optim import Optimizer

Progress = Callable[[int, int], None]


def time_step(physics: str, lr: torch.Tensor) -> torch.Tensor:
    """The physical time step of one iteration: lr (over-damped), sqrt(lr) (inertial), 1 (adaptive)."""
    if physics == "overdamped":
        return lr
    if physics == "inertial":
        return torch.sqrt(lr)
    return torch.ones_like(lr)


def simulate(
    landscape: Landscape,
    optimizer: Optimizer,
    starts: torch.Tensor,
    steps: int,
    *,
    record_every: int = 1,
    grad_tol: float | None = None,
    target_loss: float | None = None,
    seed: int = 0,
    check_every: int = 1,
    classifier: Classifier | None = None,
    progress: Progress | None = None,
    spec: dict | None = None,
) -> Trajectory:
    """Run ``optimizer`` on ``landscape`` from ``starts`` ([N, d]) for at most ``steps`` steps.

    Records positions, loss and last displacement every ``record_every`` steps (0: first and last
    only). A particle stops (is frozen) when its gradient norm and its last step both drop below
    ``grad_tol`` (a heavy ball passing fast through a minimum keeps going), or its loss reaches
    ``target_loss``; the run ends when all have stopped. Outcomes are classified every
    ``check_every`` steps; ``outcome_step`` is the step from which the final outcome held.

    >>> from descent.landscapes import get_landscape
    >>> well = get_landscape("double-well")
    >>> traj = simulate(well, Optimizer.build("momentum", lr=0.02, momentum=0.9), well.start(), 2000)
    >>> traj.outcomes
    ['minimum:right']
    """
    if starts.ndim != 2 or starts.shape[1] != landscape.dim:
        raise invalid("starts", tuple(starts.shape), f"a tensor of shape [N, {landscape.dim}]")
    if int(steps) != steps or steps < 0:
        raise invalid("steps", steps, "an integer >= 0")
    if int(record_every) != record_every or record_every < 0:
        raise invalid("record_every", record_every, "an integer >= 0 (0: first and last step only)")
    if int(check_every) != check_every or check_every < 1:
        raise invalid("check_every", check_every, "an integer >= 1")
    if grad_tol is not None:
        check_number("grad_tol", grad_tol, 0.0, None, low_open=True)
    if target_loss is not None:
        check_number("target_loss", target_loss)
    classifier = classifier or Classifier(landscape)
    n = starts.shape[0]
    device, dtype = starts.device, starts.dtype
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))

    x = starts.detach().clone()
    stepper = _hyper_on(optimizer, device)
    state = stepper.init(x)
    value, grad = landscape.value_and_gradient(x)
    last_update = torch.zeros_like(x)
    active = torch.ones(n, dtype=torch.bool, device=device)
    stop_step = torch.full((n,), -1, dtype=torch.int64, device=device)
    diverged = ~(torch.isfinite(x).all(dim=1) & torch.isfinite(value) & torch.isfinite(grad).all(dim=1))
    active &= ~diverged
    codes = classifier.classify(x, grad, last_update)
    since = torch.zeros(n, dtype=torch.int64, device=device)
    escaped_code = classifier.code(ESCAPED)
    centers = classifier.positions(x)
    far_limits = classifier.far_limits(x)

    def _stopping(bad, x, value, grad, step):
        """Which particles stop at this state: diverged, escaped the box, stalled or at the target."""
        stop = bad
        if not landscape.bounded_below:
            stop = stop | ~landscape.inside(x)
        if grad_tol is not None:
            # stalled, not just passing through a minimum: small force and small last step
            stop = stop | ((grad.norm(dim=1) < grad_tol) & (step.norm(dim=1) < grad_tol))
        if target_loss is not None:
            stop = stop | (value <= target_loss)
        return stop

    n_active = int(active.sum())
    all_active, any_active = n_active == n, n_active > 0
    recorder = _Recorder(optimizer, n, dtype, device)
    recorder.add(0, x, value, last_update)
    k = 0
    interrupted = False
    try:
        for k in range(steps):
            updates, state = stepper.step(k, x, grad, state, generator)
            # every particle is evaluated at x + u (one code path); frozen ones discard the result,
            # keeping x and the value and gradient already computed there
            x_new = x + updates
            value_new, grad_new = landscape.value_and_gradient(x_new)
            bad = _unhealthy(x_new, value_new, grad_new) | classifier._far(x_new, far_limits)
            stopping = _stopping(bad, x_new, value_new, grad_new, updates)
            if all_active and not bool(stopping.any()):  # the common case: one host sync, no masks
                x, value, grad, last_update = x_new, value_new, grad_new, updates
            else:
                bad &= active
                take = active & ~bad
                rows = _rows(take, x)
                x = torch.where(rows, x_new, x)
                value = torch.where(take, value_new, value)
                grad = torch.where(rows, grad_new, grad)
                last_update = torch.where(rows, updates, last_update)
                diverged |= bad
                stopping = active & _stopping(bad, x, value, grad, last_update)
                stop_step = torch.where(stopping, k + 1, stop_step)
                active &= ~stopping
                n_active = int(active.sum())  # the one host sync of this step
                all_active, any_active = n_active == n, n_active > 0
            if (k + 1) % check_every == 0 or k + 1 == steps or not any_active:
                # every particle not in `diverged` is finite and in range here: bad ones are frozen
                new_codes = classifier.classify(x, grad, last_update, centers, diverged=diverged)
                since = torch.where(new_codes != codes, k + 1, since)
                codes = new_codes
            if record_every and (k + 1) % record_every == 0:
                recorder.add(k + 1, x, value, last_update)
            if progress is not None:
                progress(k + 1, steps)
            if not any_active:
                break
        else:
            k = steps - 1 if steps else -1
    except KeyboardInterrupt:
        interrupted = True
    last = k + 1 if steps else 0
    if recorder.steps[-1] != last:
        recorder.add(last, x, value, last_update)
    codes = torch.where(diverged, torch.zeros_like(codes), codes)
    # an escaped particle is frozen outside the box: say so even if it stalled there
    if not landscape.bounded_below:
        out = active.logical_not() & ~diverged & ~landscape.inside(x)
        codes = torch.where(out, torch.full_like(codes, escaped_code), codes)
    labels = classifier.labels
    return recorder.finish(
        landscape=landscape,
        optimizer=optimizer,
        spec=spec,
        outcomes=[labels[c] for c in codes.tolist()],
        outcome_step=since.cpu(),
        stop_step=stop_step.cpu(),
        nearest_minimum=classifier.nearest_minimum(x),
        steps_run=last,
        interrupted=interrupted,
        seed=int(seed),
    )


def _hyper_on(optimizer: Optimizer, device: torch.device) -> Optimizer:
    """``optimizer`` with its per-particle hyper-parameter tensors moved to ``device`` once, instead of
    being copied from the host at every step (on CUDA each such copy is a host sync)."""
    hp = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in optimizer.hp.items()}
    if all(hp[k] is optimizer.hp[k] for k in hp):
        return optimizer
    return dataclasses.replace(optimizer, hp=hp)


def _unhealthy(x: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Particles with a non-finite position, energy or gradient, in one pass over ``[N]``: a row sum is
    non-finite when any entry is (sums that overflow are of positions far beyond any box anyway)."""
    return ~torch.isfinite(row_sum(x) + value + row_sum(grad))


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-particle mask ``[N]`` widened to ``like``'s ``[N, d]``, contiguous: `torch.where` on CPU
    is several times slower with a broadcast ``[N, 1]`` mask than with a full one."""
    return torch.stack([mask] * like.shape[1], dim=1)


def _host(t: torch.Tensor) -> torch.Tensor:
    """A host copy of ``t`` that shares no memory with it (one copy, not a transfer and a clone)."""
    return t.detach().clone() if t.device.type == "cpu" else t.detach().cpu()


class _Recorder:
    """Collects recorded frames and the physics time step of each."""

    def __init__(self, optimizer: Optimizer, n: int, dtype: torch.dtype, device: torch.device) -> None:
        self.optimizer = optimizer
        self.n, self.dtype, self.device = n, dtype, device
        self.steps: list[int] = []
        self.frames: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, k: int, x: torch.Tensor, value: torch.Tensor, update: torch.Tensor) -> None:
        # the time step is made on the host: no round trip through the device for a constant
        lr = torch.as_tensor(self.optimizer.lr_at(max(k - 1, 0)), dtype=self.dtype, device="cpu")
        h = time_step(self.optimizer.rule.physics, lr.expand(self.n) if lr.ndim == 0 else lr.reshape(-1))
        self.steps.append(k)
        self.frames.append((_host(x), _host(value), _host(update), _host(h)))

    def finish(self, **fields) -> Trajectory:
        positions, loss, displacement, h = (torch.stack(parts) for parts in zip(*self.frames))
        return Trajectory(
            steps=torch.tensor(self.steps),
            positions=positions,
            loss=loss,
            displacement=displacement,
            time_step=h,
            dtype=str(self.dtype).removeprefix("torch."),
            device=str(self.device),
            **fields,
        )
