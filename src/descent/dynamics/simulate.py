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
from descent.optim.schedules import Constant

Progress = Callable[[int, int], None]

# Batching for small swarms, where each step is a few dozen tiny tensor calls: steps are taken in chunks
# of up to MAX_CHUNK steps and CHUNK_ROWS particle-steps before being checked (the first chunks grow
# from MIN_CHUNK steps, each as long as the steps before it); outcome classification and recorded frames
# are batched by CHUNK_ROWS particle-steps too. Swarms of more than CHUNK_ROWS / MIN_CHUNK particles
# are handled one step at a time.
MAX_CHUNK = 64
MIN_CHUNK = 4
CHUNK_ROWS = 1 << 15


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
    ``check_every`` steps (and at the last step); ``outcome_step`` is the step from which the final
    outcome held, i.e. the last classified step at which the particle's outcome changed (0 if never).

    How the loop is organised (the results are those of checking and classifying after every step,
    bit for bit): while no particle has stopped, it takes a chunk of up to ``MAX_CHUNK`` steps
    (``CHUNK_ROWS`` particle-steps) without looking, then checks the whole chunk for divergence and
    stop conditions in one batch (one host synchronisation per chunk). If some particle stopped at
    a step of the chunk, the steps before it are kept, that step is redone with masks as below, and
    the random generator is rewound to just after it. Once a particle has stopped, every step is
    taken with masks (frozen particles keep their state) and checked at once. Outcome classification
    and the recorded frames are batched the same way (each step's tensors are kept until then).

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
    steps, record_every, check_every = int(steps), int(record_every), int(check_every)
    n = starts.shape[0]
    device, dtype = starts.device, starts.dtype
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))

    x = starts.detach().clone()
    stepper = _hyper_on(optimizer, x)
    state = stepper.init(x)
    value, grad = landscape.value_and_gradient(x)
    last_update = torch.zeros_like(x)
    stop_step = torch.full((n,), -1, dtype=torch.int64, device=device)
    diverged = ~(torch.isfinite(x).all(dim=1) & torch.isfinite(value) & torch.isfinite(grad).all(dim=1))
    active = ~diverged
    outcomes = _Outcomes(classifier, x, grad, last_update)
    far_limits = classifier.far_limits()

    def _bad(x, value, grad):
        """Particles that diverged at this state: non-finite, or beyond the widened box."""
        return _unhealthy(x, value, grad) | classifier._far(x, far_limits)

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

    recorder = _Recorder(optimizer, n, dtype, device)
    recorder.add(0, x, value, last_update)
    n_active = int(active.sum())
    done = 0  # steps taken and kept
    chunk = min(MAX_CHUNK, _batch(n))

    def _bookkeep() -> None:
        """After step ``done`` is kept: queue its classification and its frame, report progress."""
        if done % check_every == 0 or done == steps or n_active == 0:
            outcomes.add(done, x, grad, last_update, diverged)
        if record_every and done % record_every == 0:
            recorder.add(done, x, value, last_update)
        if progress is not None:
            progress(done, steps)

    interrupted = False
    try:
        while done < steps:
            if n_active == n and n > 0:
                # nothing has stopped: a chunk of steps, then one check of all of them
                size = min(chunk, steps - done, max(MIN_CHUNK, done))  # short first chunks: little
                # is wasted when a particle stops early (a divergence within a few steps is common)
                rng = generator.get_state()
                taken = []  # (updates, state, x, value, grad) after each step of the chunk
                xk, gk, sk = x, grad, state
                for j in range(size):
                    uk, sk = stepper.step(done + j, xk, gk, sk, generator)
                    xk = xk + uk
                    vk, gk = landscape.value_and_gradient(xk)
                    taken.append((uk, sk, xk, vk, gk))
                cu, cx, cv, cg = (_joined([t[i] for t in taken]) for i in (0, 2, 3, 4))
                stop = _stopping(_bad(cx, cv, cg), cx, cv, cg, cu)
                first = size
                if bool(stop.any()):  # the one host sync of the chunk
                    first = int(stop.view(size, n).any(dim=1).nonzero()[0, 0])
                start_x, start_grad, start_state = x, grad, state
                for j in range(first):
                    last_update, state, x, value, grad = taken[j]
                    done += 1
                    _bookkeep()
                if first == size:
                    continue
                # some particle stops at the chunk's step `first`: redo that step with masks, from
                # what was computed, and rewind the generator to just after it
                updates, new_state, x_new, value_new, grad_new = taken[first]
                if not torch.equal(generator.get_state(), rng):
                    generator.set_state(rng)
                    xr, gr, sr = start_x, start_grad, start_state
                    for j in range(first + 1):
                        stepper.step(done - first + j, xr, gr, sr, generator)  # the same draws again
                        _, sr, xr, _, gr = taken[j]
            else:
                updates, new_state = stepper.step(done, x, grad, state, generator)
                # every particle is evaluated at x + u (one code path); frozen ones discard the
                # result, keeping x and the value and gradient already computed there
                x_new = x + updates
                value_new, grad_new = landscape.value_and_gradient(x_new)
            bad = _bad(x_new, value_new, grad_new) & active
            take = active & ~bad
            rows = _rows(take, x)
            state = new_state
            x = torch.where(rows, x_new, x)
            value = torch.where(take, value_new, value)
            grad = torch.where(rows, grad_new, grad)
            last_update = torch.where(rows, updates, last_update)
            diverged = diverged | bad
            stopping = active & _stopping(bad, x, value, grad, last_update)
            stop_step = torch.where(stopping, done + 1, stop_step)
            active = active & ~stopping
            n_active = int(active.sum())  # the one host sync of this step
            done += 1
            _bookkeep()
            if n_active == 0:
                break
    except KeyboardInterrupt:
        interrupted = True
    last = done
    if recorder.steps[-1] != last:
        recorder.add(last, x, value, last_update)
    codes, since = outcomes.result()
    codes = torch.where(diverged, torch.zeros_like(codes), codes)
    # an escaped particle is frozen outside the box: say so even if it stalled there
    if not landscape.bounded_below:
        out = active.logical_not() & ~diverged & ~landscape.inside(x)
        codes = torch.where(out, torch.full_like(codes, classifier.code(ESCAPED)), codes)
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


def _hyper_on(optimizer: Optimizer, like: torch.Tensor) -> Optimizer:
    """``optimizer`` with its per-particle tensors (hyper-parameters, gradient noise, weight decay) moved
    to ``like``'s device once, instead of at every step (on CUDA each host copy is a sync), and the
    hyper-parameters shaped ``[N, 1]`` once (a reshape is a call per step). Dtypes are kept: the rules
    convert where they use them, exactly as before."""

    def moved(value: object, column: bool) -> object:
        if not isinstance(value, torch.Tensor):
            return value
        value = value.to(device=like.device)
        return value.reshape(-1, 1) if column and value.ndim == 1 else value

    hp = {k: moved(v, True) for k, v in optimizer.hp.items()}
    noise, l2 = moved(optimizer.grad_noise, False), moved(optimizer.l2, False)
    if all(hp[k] is optimizer.hp[k] for k in hp) and noise is optimizer.grad_noise and l2 is optimizer.l2:
        return optimizer
    return dataclasses.replace(optimizer, hp=hp, grad_noise=noise, l2=l2)


def _unhealthy(x: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Particles with a non-finite position, energy or gradient, in one pass over ``[N]``: a row sum is
    non-finite when any entry is (sums that overflow are of positions far beyond any box anyway)."""
    return ~torch.isfinite(row_sum(x) + value + row_sum(grad))


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-particle mask ``[N]`` widened to ``like``'s ``[N, d]``, contiguous: `torch.where` on CPU
    is several times slower with a broadcast ``[N, 1]`` mask than with a full one."""
    return torch.stack([mask] * like.shape[1], dim=1)


def _batch(n: int) -> int:
    """How many steps of ``n`` particles to handle in one batch: ``CHUNK_ROWS`` particle-steps, or one
    step at a time for large swarms (where a step's own work hides the per-call cost anyway)."""
    steps = CHUNK_ROWS // max(n, 1)
    return steps if steps >= MIN_CHUNK else 1


def _joined(parts: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
    """The steps' tensors ``[N, ...]`` one after the other, ``[S*N, ...]`` (no copy for one step)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class _Outcomes:
    """Outcome codes and, per particle, the last classified step at which its code changed.

    Classification requests are queued with references to that step's tensors (the loop never
    writes into a tensor in place) and classified in batches of up to ``CHUNK_ROWS`` particle-steps:
    the same codes, row by row, as classifying each step on its own, for a few calls per batch.
    """

    def __init__(self, classifier: Classifier, x: torch.Tensor, grad: torch.Tensor, step: torch.Tensor):
        self.classifier = classifier
        self.codes = classifier.classify(x, grad, step)
        self.since = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        self.centers = classifier.positions(x)
        self.limit = _batch(x.shape[0])
        self.queue: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, k: int, x: torch.Tensor, grad: torch.Tensor, step: torch.Tensor, diverged: torch.Tensor):
        """Classify the state after step ``k`` (``diverged``: the particles already marked so)."""
        self.queue.append((k, x, grad, step, diverged))
        if len(self.queue) >= self.limit:
            self.flush()

    def flush(self) -> None:
        queue, self.queue = self.queue, []
        if not queue:
            return
        ks, xs, grads, steps, diverged = zip(*queue)
        codes = self.classifier.classify(
            _joined(xs), _joined(grads), _joined(steps), self.centers, diverged=_joined(diverged)
        )
        if len(queue) == 1:
            self.since = torch.where(codes != self.codes, ks[0], self.since)
            self.codes = codes
            return
        codes = codes.view(len(queue), -1)  # [S, N]
        before = torch.cat([self.codes.unsqueeze(0), codes[:-1]])
        at = torch.as_tensor(ks, dtype=torch.int64).to(codes.device, non_blocking=True).unsqueeze(1)
        changed = torch.where(codes != before, at, -1).amax(dim=0)  # last step of a change, or -1
        self.since = torch.where(changed >= 0, changed, self.since)
        self.codes = codes[-1]

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.flush()
        return self.codes, self.since


class _Recorder:
    """Collects recorded frames (references to the loop's tensors, stacked and moved to the host in
    batches of up to ``CHUNK_ROWS`` particle-frames) and, at the end, the physics time step of each."""

    def __init__(self, optimizer: Optimizer, n: int, dtype: torch.dtype, device: torch.device) -> None:
        self.optimizer = optimizer
        self.n, self.dtype, self.device = n, dtype, device
        self.steps: list[int] = []
        self.queue: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.blocks: list[tuple[torch.Tensor, ...]] = []
        self.limit = _batch(n)

    def add(self, k: int, x: torch.Tensor, value: torch.Tensor, update: torch.Tensor) -> None:
        self.steps.append(k)
        self.queue.append((x, value, update))
        if len(self.queue) >= self.limit:
            self._flush()

    def _flush(self) -> None:
        queue, self.queue = self.queue, []
        if queue:
            # stack makes new memory, so the host copies share nothing with the loop's tensors
            self.blocks.append(tuple(_host(torch.stack(parts)) for parts in zip(*queue)))

    def _time_steps(self) -> torch.Tensor:
        """``[T, N]``: the time step of the step that led to each frame (the first: of step 0)."""
        physics = self.optimizer.rule.physics

        def at(k: int) -> torch.Tensor:
            # made on the host: no round trip through the device for a constant
            lr = torch.as_tensor(self.optimizer.lr_at(max(k - 1, 0)), dtype=self.dtype, device="cpu")
            return time_step(physics, lr.expand(self.n) if lr.ndim == 0 else lr.reshape(-1))

        if type(self.optimizer.schedule) is Constant:
            return at(0).expand(len(self.steps), self.n).contiguous()
        return torch.stack([at(k) for k in self.steps])

    def finish(self, **fields) -> Trajectory:
        self._flush()
        positions, loss, displacement = (
            parts[0] if len(parts) == 1 else torch.cat(parts) for parts in zip(*self.blocks)
        )
        return Trajectory(
            steps=torch.tensor(self.steps),
            positions=positions,
            loss=loss,
            displacement=displacement,
            time_step=self._time_steps(),
            dtype=str(self.dtype).removeprefix("torch."),
            device=str(self.device),
            **fields,
        )


def _host(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the host (a new tensor already: no further copy on the CPU)."""
    return t.detach() if t.device.type == "cpu" else t.detach().cpu()
