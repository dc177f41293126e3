"""The kernel backend of ``simulate``: which runs it takes, and the run itself.

``unsupported(...)`` names what a run needs that the kernels do not do yet (None: the kernel can run
it); ``run_kernel(...)`` runs it and builds the same :class:`~descent.dynamics.trajectory.Trajectory`
as the torch backend, with the outcome labels from :func:`descent.dynamics.events.outcomes`.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from descent.dynamics.events import EventLog, Events, outcomes
from descent.dynamics.save import SaveAt
from descent.dynamics.trajectory import Trajectory, nearest_minimum
from descent.kernels import flush
from descent.kernels.cache import Kernel, load, module_source, timed_first_call
from descent.kernels.codegen import value_and_grad_source
from descent.kernels.loop import HYPER, RULES, loop_source, squared_threshold
from descent.optim.schedules import Constant

_KERNELS: dict[tuple, tuple[object, Kernel]] = {}
#: float32 kernels flush subnormals to zero (FTZ/DAZ, :mod:`descent.kernels.flush`; x86 only)
FLUSH_FLOAT32 = flush.AVAILABLE
_LAST: dict = {}


def unsupported(objective, optimizer, starts, save: SaveAt, events: Events, probes, batching) -> str | None:
    """What of this run the kernel backend does not support yet, in words; None when it runs it."""
    energy = getattr(objective, "energy", None)
    if getattr(objective, "data_size", None) is not None:
        return "objectives with data"
    if getattr(energy, "tree", None) is None or getattr(objective, "_fused", None) is None:
        return "objectives that are not formulas"
    if optimizer.rule.name not in RULES:
        return f"the rule {optimizer.rule.name!r} (kernels: {', '.join(RULES)})"
    if optimizer.transforms:
        return "gradient transforms (" + ", ".join(t.kind for t in optimizer.transforms) + ")"
    if type(optimizer.schedule) is not Constant:
        return "learning-rate schedules"
    if probes:
        return "probes"
    if batching is not None:
        return "mini-batches"
    if save.steps:
        return "SaveAt(steps=...)"
    if events.near:
        return "near events"
    if starts.device.type != "cpu":
        return f"the device {starts.device.type!r}"
    if starts.dtype not in (torch.float32, torch.float64):
        return f"the dtype {starts.dtype}"
    return None


def kernel_for(objective, rule: str, dtype: torch.dtype) -> Kernel:
    """The compiled kernel of (the objective's expression, ``rule``, ``dtype``)."""
    tree = objective.energy.tree
    ftz = dtype == torch.float32 and FLUSH_FLOAT32
    key = (id(tree), objective.dim, rule, dtype, ftz)
    if key not in _KERNELS:
        name = str(dtype).removeprefix("torch.")
        loop = loop_source(rule, objective.dim, flush=ftz)
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
    return 1 - value, math.log(value)


def _hyper_rows(hp, names, n: int, dtype: torch.dtype, np_dtype) -> np.ndarray:
    """The ``[len(names), N]`` per-particle hyper-parameters of a kernel (``loop.HYPER``)."""
    values = {"lr": hp["lr"], "beta": hp.get("momentum", 0.0), "eps": hp.get("eps", 0.0)}
    values["wd"] = hp.get("weight_decay", 0.0)
    for short, name in (("a", "beta1"), ("b", "beta2")):
        if name in hp:
            values["b" + short] = hp[name]
            values["c" + short], values["l" + short] = _log_and_complement(hp[name], dtype)
    rows = np.empty((len(names), n), np_dtype)
    for r, name in enumerate(names):
        rows[r] = _hyper(values[name], n, np_dtype)
    return rows


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
) -> Trajectory:
    """Run ``optimizer`` on ``objective`` from ``starts`` with the compiled kernel (see ``simulate``)."""
    n, dim = starts.shape
    dtype = starts.dtype
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    kernel = kernel_for(objective, optimizer.rule.name, dtype)
    every = 0 if save.is_summary else int(save.every)
    n_frames = 1 if every == 0 else steps // every + 1
    low = torch.tensor([lo for lo, _ in objective.bounds], dtype=dtype)
    high = torch.tensor([hi for _, hi in objective.bounds], dtype=dtype)
    center, box_inverse = (low + high) / 2, 2 / (high - low)  # as the EventTracker computes them
    far_inverse = 2 / ((high - low) * (1 + 2 * events.diverge_spans))
    hyper = _hyper_rows(optimizer.hp, HYPER[optimizer.rule.name], n, dtype, np_dtype)
    target = events.target_loss if events.target_loss is not None else 0.0
    settings = (
        center.numpy(), far_inverse.numpy(), box_inverse.numpy(),
        squared_threshold(events.grad_tol, np_dtype), squared_threshold(events.step_tol, np_dtype),
        np_dtype(target),
        events.target_loss is not None, "converged" in events.stop_on, "target" in events.stop_on,
        not objective.bounded_below,
    )  # fmt: skip

    def outputs(count: int, frames: int) -> list[np.ndarray]:
        return [
            np.zeros((frames, count, dim), np_dtype), np.zeros((frames, count), np_dtype),
            np.zeros((frames, count, dim), np_dtype), np.zeros((count, dim), np_dtype),
            np.zeros(count, np_dtype), np.zeros((count, dim), np_dtype), np.zeros((count, dim), np_dtype),
            *(np.zeros(count, np.int64) for _ in range(5)), np.zeros(count, np_dtype),
            np.zeros(count, np.int64), np.zeros(count, np.int64),
        ]  # fmt: skip

    empty = np.zeros((0, dim), np_dtype)
    timed_first_call(
        kernel,
        lambda: kernel.run(empty, np.zeros((len(hyper), 0), np_dtype), 0, every, *settings, *outputs(0, 1)),
    )
    out = outputs(n, n_frames)
    x0 = np.ascontiguousarray(starts.detach().cpu().numpy())
    start = time.perf_counter()
    kernel.run(x0, hyper, int(steps), every, *settings, *out)
    seconds = time.perf_counter() - start
    _LAST.update(
        digest=kernel.digest, path=str(kernel.path), compile_seconds=kernel.compile_seconds,
        run_seconds=seconds, particles=n, steps=int(steps),
    )  # fmt: skip
    frames_x, frames_e, frames_u, final_x, final_e, final_g, final_u = (torch.from_numpy(a) for a in out[:7])
    diverged, left_box, converged, reached, unsettled = (torch.from_numpy(a) for a in out[7:12])
    min_loss, min_step, stop_step = (torch.from_numpy(a) for a in out[12:])

    # the run ends when every particle has stopped (as in simulate)
    done = int(stop_step.max()) if n and bool((stop_step >= 0).all()) else int(steps)
    if every == 0:
        frame_steps = [0]
    else:
        frame_steps = list(range(0, done + 1, every))
    kept = len(frame_steps)
    positions, loss, displacement = frames_x[:kept], frames_e[:kept], frames_u[:kept]
    if frame_steps[-1] != done:
        frame_steps.append(done)
        positions = torch.cat([positions, final_x.unsqueeze(0)])
        loss = torch.cat([loss, final_e.unsqueeze(0)])
        displacement = torch.cat([displacement, final_u.unsqueeze(0)])
    if progress is not None:
        progress(done, steps)

    step_log = {"diverged": diverged, "converged": converged}
    if not objective.bounded_below:
        step_log["left_box"] = left_box
    if events.target_loss is not None:
        step_log["target"] = reached
    norm = torch.linalg.vector_norm
    final_converged = (norm(final_g, dim=1) < events.grad_tol) & (norm(final_u, dim=1) < events.step_tol)
    settled = torch.where(final_converged, unsettled + 1, -1)
    log = EventLog(step_log, settled, min_loss, min_step)
    labels, outcome_step = outcomes(events, objective, log, final_x, final_g, final_u)
    trajectory = Trajectory(
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
        interrupted=False,
        seed=int(seed),
        dtype=str(dtype).removeprefix("torch."),
        device="cpu",
        spec=spec,
        events=log.steps,
        event_thresholds=events.to_dict(),
        final_position=final_x,
        final_loss=final_e,
        final_update=final_u,
        min_loss=min_loss,
        min_loss_step=min_step,
        probes={},
        save=save,
        backend="kernel",
        compile_seconds=kernel.compile_seconds,
    )
    return trajectory
