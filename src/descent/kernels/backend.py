"""The kernel backend of ``simulate``: which runs it takes, and the run itself.

``unsupported(...)`` names what a run needs that the kernels do not do yet (None: the kernel can run
it); ``run_kernel(...)`` runs it and builds the same :class:`~descent.dynamics.trajectory.Trajectory`
as the torch backend, with the outcome labels from :func:`descent.dynamics.events.outcomes`.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import threading
import time

import numba
import numpy as np
import torch

from descent.dynamics.events import EventLog, Events, known_points, outcomes
from descent.dynamics.probes import PROBES
from descent.dynamics.save import SaveAt
from descent.dynamics.simulate import _ProbeRecords
from descent.dynamics.trajectory import Trajectory, nearest_minimum
from descent.kernels import flush
from descent.kernels.cache import Kernel, load, module_source, timed_first_call
from descent.kernels.codegen import value_and_grad_source
from descent.kernels.loop import BLOCK, MAX_STEPS, RULES, hyper_names, layout, loop_source, squared_threshold
from descent.kernels.probes import record_probes, snapshot_steps
from descent.kernels.stream import as_uint64
from descent.optim.schedules import Constant

_KERNELS: dict[tuple, tuple[object, Kernel]] = {}
#: float32 kernels flush subnormals to zero (FTZ/DAZ, :mod:`descent.kernels.flush`; x86 only)
FLUSH_FLOAT32 = flush.AVAILABLE
_LAST: dict = {}
_DEFERRING = False  # set by defer_compiling: an "auto" run never waits for a compilation
_COMPILING: dict[str, threading.Thread] = {}  # kernel digest -> the thread compiling it
_COMPILING_LOCK = threading.Lock()


class NotCompiledYet(Exception):
    """An ``"auto"`` run found its kernel still compiling (see `defer_compiling`): run it on torch."""


def defer_compiling(on: bool = True) -> None:
    """For servers: with ``on``, an ``"auto"`` run whose kernel is not compiled in this process yet
    runs on the torch loop at once (its ``fallback`` says so) while the kernel compiles (or loads from
    the disk cache) on a background thread; later runs use it. A first compilation takes seconds, a
    torch run of the Arena's size tens of milliseconds. ``backend="kernel"`` always waits."""
    global _DEFERRING
    _DEFERRING = on


def wait_for_compiles(timeout: float | None = None) -> bool:
    """Wait for the background compilations started so far; True when all have finished."""
    with _COMPILING_LOCK:
        threads = list(_COMPILING.values())
    for thread in threads:
        thread.join(timeout)
    return not any(thread.is_alive() for thread in threads)


def compiling() -> bool:
    """Is a background compilation (`defer_compiling`) still running?"""
    with _COMPILING_LOCK:
        return any(thread.is_alive() for thread in _COMPILING.values())


def _compile_in_background(kernel: Kernel, warm_up) -> None:
    with _COMPILING_LOCK:
        if kernel.digest in _COMPILING:
            return
        thread = threading.Thread(
            target=timed_first_call, args=(kernel, warm_up), name=f"compile-{kernel.digest}", daemon=True
        )
        _COMPILING[kernel.digest] = thread
    thread.start()


def unsupported(
    objective, optimizer, starts, save: SaveAt, events: Events, probes, batching, steps: int = 0
) -> str | None:
    """What of this run the kernel backend does not support yet, in words; None when it runs it."""
    energy = getattr(objective, "energy", None)
    if getattr(objective, "data_size", None) is not None:
        return "objectives with data"
    if getattr(energy, "tree", None) is None or getattr(objective, "_fused", None) is None:
        return "objectives that are not formulas"
    if objective.dim > MAX_DIM:
        return f"landscapes of more than {MAX_DIM} dimensions (a kernel unrolls every coordinate)"
    rule = kernel_rule(optimizer)
    if rule not in RULES:
        return f"the rule {optimizer.rule.name!r}"
    custom = [p for p in probes if type(p) not in PROBES.values()]
    if custom:
        return f"custom probes ({', '.join(type(p).__name__ for p in custom)})"
    if batching is not None:
        return "mini-batches"
    if starts.device.type != "cpu":
        return f"the device {starts.device.type!r}"
    if starts.dtype not in (torch.float32, torch.float64):
        return f"the dtype {starts.dtype}"
    most = MAX_POINTS[str(starts.dtype).removeprefix("torch.")]
    if events.near and len(known_points(objective)) > most:
        return f"near events with more than {most} known points"
    return too_long(steps, starts.dtype)


#: the most coordinates a kernel unrolls: its compile time grows with the dimension (about 90 s at
#: d = 100), so higher-dimensional runs stay on the torch loop
MAX_DIM = 16

#: near events mark the points a particle is near as the bits of one float: at most this many points
MAX_POINTS = {"float32": 24, "float64": 53}


def kernel_rule(optimizer) -> str:
    """The kernel of ``optimizer``'s rule: its name, RMSprop's with its variant (``-centered`` when
    centred, ``-momentum`` when its momentum is a tensor or positive, as torch's rule branches)."""
    name = optimizer.rule.name
    if name == "rmsprop":
        momentum = optimizer.hp["momentum"]
        if optimizer.hp["centered"]:
            name += "-centered"
        if isinstance(momentum, torch.Tensor) or momentum > 0:
            name += "-momentum"
    return name


def too_long(steps: int, dtype: torch.dtype) -> str | None:
    """Why a kernel of ``dtype`` cannot count ``steps`` steps (its step numbers are floats), or None."""
    name = str(dtype).removeprefix("torch.")
    limit = MAX_STEPS.get(name)
    if limit is not None and steps >= limit:
        return f"runs of {steps} steps in {name} (its kernel counts at most {limit - 1} steps)"
    return None


def _copy_frame(state, rows, dim, frames_x, frames_e, frames_u, f: int) -> None:
    """Frame ``f`` (of every particle) from ``state``."""
    for j in range(dim):
        frames_x[f, :, j] = state[rows[f"X{j}"]]
        frames_u[f, :, j] = state[rows[f"U{j}"]]
    frames_e[f] = state[rows["E"]]


def kernel_for(
    objective,
    rule: str,
    dtype: torch.dtype,
    transforms: tuple[str, ...] = (),
    scheduled: bool = False,
    points: int = 0,
    shared_streams: bool = False,
) -> Kernel:
    """The compiled kernel of (the objective's expression, ``rule``, ``dtype``, the transforms' kinds,
    whether the lr is scheduled, the number of known points of near events, whether the particles
    share one random stream)."""
    tree = objective.energy.tree
    ftz = dtype == torch.float32 and FLUSH_FLOAT32
    unbounded = not objective.bounded_below
    key = (
        id(tree),
        objective.dim,
        rule,
        dtype,
        ftz,
        unbounded,
        transforms,
        scheduled,
        points,
        shared_streams,
    )
    if key not in _KERNELS:
        name = str(dtype).removeprefix("torch.")
        loop = loop_source(rule, objective.dim, ftz, unbounded, transforms, scheduled, points, shared_streams)
        source = module_source(value_and_grad_source(tree, objective.dim), loop, name)
        _KERNELS[key] = (tree, load(source))  # the tree is kept, so its id is never reused
    return _KERNELS[key][1]


def kernel_info() -> dict:
    """The last kernel run in this process: its source hash and path, the seconds its compilation
    (or load from the disk cache) took, and the seconds the run itself took."""
    return dict(_LAST)


def _hyper(value, n: int, dtype: np.dtype) -> np.ndarray:
    """A hyper-parameter (a float or a per-particle tensor) as an ``[N]`` array of the run's dtype."""
    if isinstance(value, torch.Tensor):
        return np.ascontiguousarray(value.detach().cpu().reshape(-1).expand(n).numpy().astype(dtype))
    return np.full(n, value, dtype=dtype)


def _log_and_complement(value, dtype: torch.dtype):
    """(1 - beta, log beta) as the torch rules compute them (``_adam_step``, ``_power``)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(dtype)
        return 1 - value, torch.log(value)
    return 1 - value, (math.log(value) if value > 0 else -math.inf)


_TRANSFORM_VALUES = {"grad_noise": "sigma", "clip_norm": "max_norm", "l2": "l2"}


def _hyper_rows(optimizer, names, n: int, dtype: torch.dtype, np_dtype) -> np.ndarray:
    """The ``[len(names), N]`` per-particle hyper-parameters of a kernel (``loop.hyper_names``), or
    ``[len(names), 1]`` when they are the same for every particle."""
    hp = optimizer.hp
    values = {"lr": hp["lr"], "beta": hp.get("momentum", 0.0), "eps": hp.get("eps", 0.0)}
    values.update(
        wd=hp.get("weight_decay", 0.0), decay=hp.get("lr_decay", 0.0), temp=hp.get("temperature", 0.0)
    )
    values.update(mu=hp.get("momentum", 0.0), alpha=hp.get("alpha", 0.0))
    values["ca"] = _log_and_complement(hp["alpha"], dtype)[0] if "alpha" in hp else 0.0
    for t, transform in enumerate(optimizer.transforms):
        values[f"tr{t}"] = getattr(transform, _TRANSFORM_VALUES[transform.kind])
    for short, name in (("a", "beta1"), ("b", "beta2")):
        if name in hp:
            values["b" + short] = hp[name]
            values["c" + short], values["l" + short] = _log_and_complement(hp[name], dtype)
    # one column when every particle has the same values (``advance`` reads column 0 for all)
    columns = n if any(isinstance(values[name], torch.Tensor) for name in names) else 1
    rows = np.empty((len(names), columns), np_dtype)
    for r, name in enumerate(names):
        rows[r] = _hyper(values[name], columns, np_dtype)
    return rows


#: particle-steps per call of ``advance``: a long run goes in chunks of about this much work (a
#: second or less), so the progress bar moves and Ctrl-C keeps the chunks that finished
CHUNK_WORK = 5e8


#: lane-steps below which a run uses one thread: waking other worker threads costs from tens of
#: microseconds to milliseconds on a busy machine, more than such a run's work
SMALL_WORK = 2e7


def run_threads(available: int, n: int, steps: int) -> int:
    """Threads for a run: ``available`` (Numba's thread count: ``NUMBA_NUM_THREADS``,
    ``numba.set_num_threads``), one per block of particles at most, one for a small run."""
    blocks = -(-n // BLOCK)
    return 1 if blocks * BLOCK * steps < SMALL_WORK else max(1, min(available, blocks))


def block_ranges(blocks: int, threads: int) -> list[tuple[int, int]]:
    """``blocks`` blocks in ``threads`` contiguous ranges (first, last + 1) of near-equal size."""
    edges = [blocks * t // threads for t in range(threads + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a] or [(0, 0)]


_POOL: list[concurrent.futures.ThreadPoolExecutor] = []


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    """The process's worker threads for kernel runs (made once; they wait between runs)."""
    if not _POOL:
        _POOL.append(concurrent.futures.ThreadPoolExecutor(max(2, os.cpu_count() or 2), "descent-kernel"))
    return _POOL[0]


def side_by_side(function, ranges: list[tuple[int, int]], *arguments) -> None:
    """``function(first, last, *arguments)`` for each range, one thread each (the kernels release the
    GIL); on Ctrl-C every range still finishes its call, so the state is that of one step."""
    if len(ranges) == 1:
        function(*ranges[0], *arguments)
        return
    running = [_pool().submit(function, *bounds, *arguments) for bounds in ranges]
    try:
        for future in running:
            future.result()
    except KeyboardInterrupt:
        concurrent.futures.wait(running)
        raise


def chunks(steps: int, n: int) -> list[tuple[int, int]]:
    """The (k0, k1) step ranges a run of ``steps`` steps on ``n`` particles goes in."""
    size = max(1, min(steps, int(CHUNK_WORK // max(n, 1))))
    return [(k0, min(steps, k0 + size)) for k0 in range(0, steps, size)]


def run_kernel(
    objective,
    optimizer,
    starts: torch.Tensor,
    steps: int,
    save: SaveAt,
    events: Events,
    seed: int = 0,
    progress=None,
    spec: dict | None = None,
    probes=(),
    defer: bool = False,
    *,
    streams: str = "particle",
) -> Trajectory:
    """Run ``optimizer`` on ``objective`` from ``starts`` with the compiled kernel (see ``simulate``,
    also for ``streams``). ``defer`` (an ``"auto"`` run): raise `NotCompiledYet` instead of waiting
    for a compilation when `defer_compiling` is on."""
    n, dim = starts.shape
    dtype = starts.dtype
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    rule = kernel_rule(optimizer)
    transforms = tuple(t.kind for t in optimizer.transforms)
    scheduled = type(optimizer.schedule) is not Constant
    points = known_points(objective) if events.near else ()
    shared = streams == "shared" and optimizer.needs_draw  # without draws the kernel is the same
    kernel = kernel_for(objective, rule, dtype, transforms, scheduled, len(points), shared)
    # step k's lr is lr * factors[k - 1] (the torch engine's hp_at(k - 1)); the seed as 64 bits
    factors = np.array([optimizer.schedule(k) for k in range(steps)] if scheduled else [1.0], np.float64)
    seed_bits = as_uint64(seed)
    rows = layout(rule, dim, len(points))
    height = max(rows.values()) + 1
    # the frames: every ``every`` steps, or at chosen steps through ``marks`` (marks[k]: the frame of
    # step k, -1 for none; one entry when unused, as ``advance`` never asks for step 0)
    every = 0 if save.is_summary or save.steps else int(save.every)
    wanted = save.frame_steps(steps) if save.steps else list(range(0, steps + 1, every)) if every else [0]
    marks = np.full(steps + 1 if save.steps else 1, -1, np.int64)
    if save.steps:
        marks[wanted] = np.arange(len(wanted))
    n_frames = len(wanted)
    low = torch.tensor([lo for lo, _ in objective.bounds], dtype=dtype)
    high = torch.tensor([hi for _, hi in objective.bounds], dtype=dtype)
    center, box_inverse = (low + high) / 2, 2 / (high - low)  # as the EventTracker computes them
    far_inverse = 2 / ((high - low) * (1 + 2 * events.diverge_spans))
    hyper = _hyper_rows(optimizer, hyper_names(rule, transforms), n, dtype, np_dtype)
    target = events.target_loss if events.target_loss is not None else -math.inf
    radius = events.capture_radius if events.capture_radius is not None else objective.radius()
    settings = (
        center.numpy(), far_inverse.numpy(), box_inverse.numpy(),
        squared_threshold(events.grad_tol, np_dtype), squared_threshold(events.step_tol, np_dtype),
        np_dtype(target), "converged" in events.stop_on, "target" in events.stop_on,
        np.array([p.position for p in points], np_dtype).reshape(len(points), dim),
        squared_threshold(radius, np_dtype),
    )  # fmt: skip

    def frames(count: int, number: int) -> list[np.ndarray]:
        return [np.zeros((number, count, dim), np_dtype), np.zeros((number, count), np_dtype),
                np.zeros((number, count, dim), np_dtype)]  # fmt: skip

    # the probes' steps: a snapshot of the state at each (``snap[k]``: its index, -1 for none)
    taken = snapshot_steps(probes, steps) if probes else []
    snap = np.full(steps + 1 if probes else 1, -1, np.int64)
    snap[taken] = np.arange(len(taken))
    snapshots = np.zeros((len(taken), height, n), np_dtype)

    def warm_up() -> None:  # compiles (or loads) both functions on zero particles
        state = np.zeros((height, 0), np_dtype)
        kernel.module.start(0, 0, np.zeros((0, dim), np_dtype), state, *settings)
        kernel.module.advance(
            0, 0, state, hyper[:, :1], factors, seed_bits, 0, 1, every, marks[:1], *frames(0, 2), snap[:1],
            np.zeros((0, height, 0), np_dtype), *settings,
        )  # fmt: skip

    if defer and _DEFERRING and kernel.compile_seconds is None:
        _compile_in_background(kernel, warm_up)
        raise NotCompiledYet("its compiled kernel is being built in the background")
    timed_first_call(kernel, warm_up)
    state = np.empty((height, n), np_dtype)
    frames_x, frames_e, frames_u = frames(n, n_frames + 1)  # a slot for the final state (untouched
    x0 = np.ascontiguousarray(starts.detach().cpu().numpy())  # zero pages when the run never needs it)
    blocks = -(-n // BLOCK)
    ranges = block_ranges(blocks, run_threads(numba.get_num_threads(), n, steps))
    begin = time.perf_counter()
    side_by_side(
        kernel.module.start, [(a * BLOCK, min(n, b * BLOCK)) for a, b in ranges], x0, state, *settings
    )
    stop_row = state[rows["STOP"]]
    _copy_frame(state, rows, dim, frames_x, frames_e, frames_u, 0)
    if taken:
        snapshots[0] = state
    done, interrupted = 0, False

    def advance(k0: int, k1: int) -> None:
        """Steps k0+1..k1 of every block."""
        side_by_side(kernel.module.advance, ranges, state, hyper, factors, seed_bits, k0, k1, every, marks,
                     frames_x, frames_e, frames_u, snap, snapshots, *settings)  # fmt: skip

    try:
        for k0, k1 in chunks(int(steps), n):
            if n == 0 or not (stop_row < 0).any():
                break
            try:
                advance(k0, k1)
            except KeyboardInterrupt:  # raised once the chunk's call returned: its steps are done
                done, interrupted = k1, True
                break
            done = k1
            if progress is not None:
                progress(done, steps)
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - begin
    _LAST.update(
        digest=kernel.digest, path=str(kernel.path), compile_seconds=kernel.compile_seconds,
        run_seconds=seconds, particles=n, steps=int(steps),
    )  # fmt: skip
    if n and (stop_row >= 0).all():  # the run ends when every particle has stopped (as in simulate)
        done = int(stop_row.max())

    held = [state, snapshots]  # handed over: the trajectory frees them before the outcomes' temporaries
    state = stop_row = snapshots = None
    frames = (frames_x, frames_e, frames_u)
    run = (done, interrupted, seed, spec, dtype, "cpu", kernel.compile_seconds)
    return kernel_trajectory(objective, optimizer, events, save, probes, rule, rows, points, held, frames,
                             wanted, taken, run, streams)  # fmt: skip


def kernel_trajectory(objective, optimizer, events: Events, save: SaveAt, probes, rule: str, rows: dict,
                      points: tuple, held: list, frames: tuple, wanted: list[int], taken: list[int],
                      run: tuple, streams: str = "particle") -> Trajectory:  # fmt: skip
    """The :class:`Trajectory` of a kernel run (CPU or CUDA) from its host arrays, as the torch engine
    builds it: ``held`` = [state ``[R, N]``, the probes' snapshots], emptied here so they are freed
    before the outcome labels' temporaries (the caller keeps no reference); ``frames`` the frame
    arrays (x, U, u) of the steps ``wanted`` with a spare slot after them for the final state; ``run``
    = (done, interrupted, seed, spec, dtype, device, compile_seconds); ``streams`` as ``simulate``'s."""
    done, interrupted, seed, spec, dtype, device, compile_seconds = run
    state, snapshots = held
    held.clear()
    dim = objective.dim

    def coordinates(name: str) -> torch.Tensor:  # [N, d] from the state's consecutive rows, one copy
        first = rows[f"{name}0"]  # (row-major: a reduction over d of a strided view is 20x slower)
        return torch.from_numpy(state[first : first + dim].T.copy())

    def steps_of(name: str) -> torch.Tensor:
        return torch.from_numpy(state[rows[name]].astype(np.int64))

    final_g, min_loss = coordinates("G"), torch.from_numpy(state[rows["LOW"]].copy())
    diverged, left_box, converged, reached = (steps_of(name) for name in ("DIV", "LEFT", "CONV", "TGT"))
    min_step, stop_step = steps_of("LOWK"), steps_of("STOP")
    settled = torch.where(torch.from_numpy(state[rows["SET"]] > 0), steps_of("SINCE"), -1)
    frames_x, frames_e, frames_u = frames
    frame_steps = [k for k in wanted if k <= done]
    kept = len(frame_steps)
    if frame_steps[-1] != done:  # the final state, in the slot after the kept frames
        frame_steps.append(done)
        _copy_frame(state, rows, dim, frames_x, frames_e, frames_u, kept)
        kept += 1
    positions, loss, displacement = (torch.from_numpy(a[:kept]) for a in frames)
    final_x, final_e, final_u = positions[-1], loss[-1], displacement[-1]  # the last frame is the final state

    step_log = {"diverged": diverged, "converged": converged}
    if not objective.bounded_below:
        step_log["left_box"] = left_box
    if events.target_loss is not None:
        step_log["target"] = reached
    records = _ProbeRecords(probes)
    if probes:
        record_probes(records, optimizer, rule, rows, snapshots, taken, done, diverged, seed, streams)
    step_log.update({f"near:{p.id}": steps_of(f"NEARP{i}") for i, p in enumerate(points)})
    state = snapshots = None  # all read: free them before the outcomes' temporaries
    log = EventLog(step_log, settled, min_loss, min_step)
    labels, outcome_step = outcomes(events, objective, log, final_x, final_g, final_u)
    return Trajectory(
        landscape=objective,
        optimizer=optimizer,
        steps=torch.tensor(frame_steps, dtype=torch.int64),
        positions=positions,
        loss=loss,
        displacement=displacement,
        time_step=None,
        outcomes=labels,
        outcome_step=outcome_step,
        stop_step=stop_step,
        nearest_minimum=nearest_minimum(objective, final_x),
        steps_run=done,
        interrupted=interrupted,
        seed=int(seed),
        dtype=str(dtype).removeprefix("torch."),
        device=device,
        spec=spec,
        events=log.steps,
        event_thresholds=events.to_dict(),
        final_position=final_x,
        final_loss=final_e,
        final_update=final_u,
        min_loss=min_loss,
        min_loss_step=min_step,
        probes=records.finish(),
        save=save,
        backend="kernel",
        compile_seconds=compile_seconds,
    )
