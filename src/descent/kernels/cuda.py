"""The kernels on a CUDA GPU (Numba's CUDA target): one thread per particle, the steps inside it.

The same generated pieces as the CPU kernels: ``value_and_grad`` from the expression tree
(:mod:`~descent.kernels.codegen`), the rule's lines, the gradient transforms and the observation of
events from :mod:`~descent.kernels.loop`, the counter-based stream of :mod:`~descent.kernels.stream`,
each compiled as a CUDA device function. The state has the CPU kernel's layout, one array
``state[R, N]`` with a row per quantity (:func:`descent.kernels.loop.layout`), so a run's results are
read the same way. Thread i (particle i) runs steps k0+1..k1::

    load particle i's rows of ``state`` and its hyper-parameters into registers
    for k = k0+1, ..., k1 while it has not stopped:
        s, m' = rule(transforms(g), m)            (loop._RULES, loop.TRANSFORMS)
        U', g' = value_and_grad(x + s)
        if x + s is beyond the widened box or U' + max_j g'_j is not finite:
            diverged at k, stopped at k; x, U, g, u, m stay as they were
        else:
            x, U, g, u, m = x + s, U', g', s, m'; the running minimum of U and its step
            observe at k: settled / since / converged, target, left_box, near points, stop_on
        frame k (SaveAt) and snapshot k (built-in probes) when due
    frames and snapshots of the later steps of the chunk hold its frozen state
    store its rows of ``state``

There is no hot/cold split and no masking: a branch costs a thread only the side it takes, and the
events are observed at every step (the same first steps as the CPU kernel, which observes only the
steps its hot pass flags). The Adam family's bias corrections come from the rule's per-block lines
with a block of one lane: each particle's beta1, beta2 are the block's shared values.

Arithmetic: Numba's CUDA defaults, the same policy as the CPU kernels' ``fastmath={"contract"}``:
fused multiply-add contraction, IEEE division and square root, subnormals kept (the GPU computes
them at full speed, so float32 needs no flush to zero). ``exp``, ``log``, ``sin``, ... are CUDA's
libdevice functions (within 2 ULP, not always the C library's results), so a run on the device agrees
with the CPU kernel to rounding, not bit for bit.

``run_cuda`` has :func:`descent.kernels.backend.run_kernel`'s signature and result; the starts are a
CUDA tensor and every array the kernels touch is a torch tensor on that device, handed to Numba
without a copy (``__cuda_array_interface__``); the trajectory is built on the host, as the torch
engine does on a GPU. Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set before numba is
imported) the same kernels run as Python on the CPU, on CPU tensors: how the tests check them on a
machine without a GPU.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from descent.dynamics.events import Events, known_points
from descent.dynamics.save import SaveAt
from descent.dynamics.trajectory import Trajectory
from descent.kernels import stream
from descent.kernels.backend import _hyper_rows, kernel_rule, kernel_trajectory, unsupported
from descent.kernels.cache import Kernel, load, timed_first_call
from descent.kernels.codegen import value_and_grad_source
from descent.kernels.loop import (
    _FRAME_OF,
    _RULES,
    TRANSFORMS,
    _expand,
    _observe,
    _resolve,
    hyper_names,
    layout,
    squared_threshold,
)
from descent.kernels.probes import snapshot_steps
from descent.kernels.stream import as_uint64
from descent.optim.schedules import Constant

#: threads per block of a launch (one thread per particle)
THREADS = 128
#: particle-steps per launch: a long run goes in chunks of about this much work (a fraction of a
#: second on a large GPU), so the progress bar moves and Ctrl-C keeps the chunks that finished; each
#: launch reads and writes the whole state once, so a chunk must be long enough to hide that
CHUNK_WORK = 1e11
#: the stream's functions, compiled again as device functions for the kernels that draw numbers
STREAM_FUNCTIONS = ("mix64", "counter_key", "bits_at", "uniform_at", "normal_at")

_KERNELS: dict[tuple, tuple[object, Kernel]] = {}
_LAST: dict = {}


def _cuda():
    """``numba.cuda`` (imported on first use: it is the simulator when NUMBA_ENABLE_CUDASIM=1)."""
    from numba import cuda

    return cuda


def simulated() -> bool:
    """Whether Numba's CUDA target is its simulator (kernels run as Python on the CPU)."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


# --- the source ----------------------------------------------------------------------------------------
def _lines(lines: list[str], pad: int) -> str:
    return "\n".join(" " * pad + line if line else "" for line in lines)


def _registers(rows: dict[str, int]) -> dict[str, str]:
    """The variable of each row name of ``layout``: the first name of its row (momentum's U0 is M0)."""
    first: dict[int, str] = {}
    for name, r in rows.items():
        first.setdefault(r, name)
    return {name: first[r] for name, r in rows.items()}


def _gmax(prefix: str, dim: int) -> list[str]:
    """gm = the largest of prefix0..prefix{d-1}, NaN winning (as the CPU kernel's check)."""
    return [f"gm = {prefix}0"] + [
        f"gm = {prefix}{j} if (({prefix}{j} > gm) | ({prefix}{j} != {prefix}{j})) else gm"
        for j in range(1, dim)
    ]


def _far(prefix: str, dim: int) -> str:
    """Beyond the widened box (the divergence check): |(v - c) f| > 1 in some coordinate, or NaN."""
    return " | ".join(f"(not (abs(({prefix}{j} - c{j}) * f{j}) <= one))" for j in range(dim))


def _settings(dim: int, points: int) -> list[str]:
    """The box, the widened box and the known points as scalars."""
    arrays = {"c": "center", "f": "far_inverse", "b": "box_inverse"}
    lines = [f"{a}{j} = {array}[{j}]" for a, array in arrays.items() for j in range(dim)]
    return lines + [f"pc{i}_{j} = centers[{i}, {j}]" for i in range(points) for j in range(dim)]


def _prepare(rule: str, dim: int, transforms: tuple[str, ...], scheduled: bool) -> list[str]:
    """Lines before the rule's: the scheduled lr, the step's random keys, the gradient transforms in
    order (as ``loop_source`` prepares them, with particle i's keys)."""
    draws = set(_RULES[rule].draws) | ({"grad_noise"} if "grad_noise" in transforms else set())
    lines = ["lr = lr * fac"] if scheduled else []
    lines += [
        f"key_{purpose} = counter_key(seed, PURPOSE_{purpose.upper()}, i, k - 1)" for purpose in sorted(draws)
    ]
    for n, kind in enumerate(transforms):
        norm = f"norm = math.sqrt({' + '.join(f'g{j} * g{j}' for j in range(dim))})"
        lines += _expand(
            [line.replace("#NORM#", norm).replace("{t}", f"tr{n}") for line in TRANSFORMS[kind]], dim
        )
    return lines


def cuda_source(
    rule: str,
    dim: int,
    unbounded: bool = False,
    transforms: tuple[str, ...] = (),
    scheduled: bool = False,
    points: int = 0,
) -> str:
    """Source of the kernels ``start(...)`` (state 0 of each particle) and ``advance(...)`` (steps
    k0+1..k1) for ``rule`` in dimension ``dim``, with the arguments of the CPU kernel's functions of
    the same names (``loop_source``; ``unbounded``, ``transforms``, ``scheduled``, ``points`` as there)."""
    if rule not in _RULES:
        raise ValueError(f"no kernel for the rule {rule!r}")
    if any(kind not in TRANSFORMS for kind in transforms):
        raise ValueError(f"no kernel for the transforms {transforms!r}")
    spec = _RULES[rule]
    hypers = hyper_names(rule, transforms)
    rows = layout(rule, dim, points)
    registers = _registers(rows)
    own = list(dict.fromkeys(registers.values()))  # one register per row, in the order of the rows
    xs, gs, ys, hs = (", ".join(f"{a}{j}" for j in range(dim)) for a in "xgyh")
    letters = {"X", "G", "U", *(m.upper() for m in spec.state)}
    coordinates = [name for name in own if name.rstrip("0123456789") in letters]
    observe = lambda k: _resolve("\n".join(_observe(dim, k, unbounded, points)), registers)  # noqa: E731
    frame = [f"frames_x[f, i, {j}] = X{j}" for j in range(dim)] + ["frames_e[f, i] = E"]
    frame += [f"frames_u[f, i, {j}] = {registers[f'U{j}']}" for j in range(dim)]
    snapshot = [f"snapshots[q, {rows[name]}, i] = {name}" for name in own]
    saves = [
        "f = frame_of(k, every, marks)",
        "if f >= 0:",
        *("    " + line for line in frame),
        "q = frame_of(k, 0, snap)",
        "if q >= 0:",
        *("    " + line for line in snapshot),
    ]

    # --- start ---------------------------------------------------------------------------------------
    init = [f"X{j} = x{j}" for j in range(dim)] + [f"G{j} = g{j}" for j in range(dim)]
    init += [f"{name} = zero" for name in coordinates if name[0] not in "XG"]
    init += ["E = e", "LOW = F(np.inf)", "LOWK = F(-1.0)", "SET = zero", "SINCE = F(-1.0)"]
    init += [f"{name} = F(-1.0)" for name in ("STOP", "DIV", "LEFT", "CONV", "TGT")]
    init += [f"NEARP{i} = F(-1.0)" for i in range(points)] + (["NC = zero"] if points else [])
    store = [f"state[{rows[name]}, i] = {name}" for name in own]
    start = f"""
def start(starts, state, center, far_inverse, box_inverse, grad_tol, step_tol, target, stop_converged,
          stop_target, centers, near_sq):
    i = cuda.grid(1)
    if i >= starts.shape[0]:
        return
    one = F(1.0)
    zero = F(0.0)
    active = 1
{_lines(_settings(dim, points), 4)}
{_lines([f"x{j} = starts[i, {j}]" for j in range(dim)], 4)}
    e, {gs} = value_and_grad({xs})
{_lines(init, 4)}
{_lines(_gmax("g", dim), 4)}
    if ({_far("x", dim)}) | (not math.isfinite(e + gm)):
        DIV = zero
        STOP = zero
    else:
        LOW = e
        LOWK = zero
{_lines(observe("zero").splitlines(), 8)}
{_lines(store, 4)}
"""

    # --- advance -------------------------------------------------------------------------------------
    # the rule's per-block lines with a block of one lane: its shared hyper-parameters are its own
    block = {h.upper(): h for h in spec.hyper} | {name: name for name in spec.rows}
    block_pre = ["lanes = 1", "shared = True", *(f"{h}0 = {h}" for h in spec.shared)]
    block_pre += _resolve("\n".join(spec.block_pre), block).splitlines() if spec.block_pre else []
    rule_pre = _resolve("\n".join(spec.pre), block).splitlines() if spec.pre else []
    step = [f"{h} = {h}_i" for h in hypers]  # afresh each step: a schedule's line rebinds lr
    step += [f"x{j} = X{j}" for j in range(dim)] + [f"g{j} = G{j}" for j in range(dim)]
    step += [f"{m}{j} = {m.upper()}{j}" for m in spec.state for j in range(dim)]
    step += block_pre + _prepare(rule, dim, transforms, scheduled) + rule_pre + _expand(spec.lines, dim)
    step += [f"y{j} = x{j} + s{j}" for j in range(dim)] + [
        f"en, {hs} = value_and_grad({ys})",
        *_gmax("h", dim),
    ]
    moved = [f"X{j} = y{j}" for j in range(dim)] + [f"G{j} = h{j}" for j in range(dim)]
    if spec.update is None:
        moved += [f"U{j} = s{j}" for j in range(dim)]
    moved += [f"{m.upper()}{j} = {m}n{j}" for m in spec.state for j in range(dim)]
    moved += ["E = en", "if en < LOW:", "    LOW = en", "    LOWK = kf", *observe("kf").splitlines()]
    advance = f"""
def advance(state, hyper, factors, seed, k0, k1, every, marks, frames_x, frames_e, frames_u, snap,
            snapshots, center, far_inverse, box_inverse, grad_tol, step_tol, target, stop_converged,
            stop_target, centers, near_sq):
    i = cuda.grid(1)
    if i >= state.shape[1]:
        return
    one = F(1.0)
    zero = F(0.0)
    two = F(2.0)
    active = 1
    column = i if hyper.shape[1] > 1 else 0
{_lines(_settings(dim, points), 4)}
{_lines([f"{h}_i = hyper[{r}, column]" for r, h in enumerate(hypers)], 4)}
{_lines([f"{name} = state[{rows[name]}, i]" for name in own], 4)}
{_lines([f"{name} = zero" for name in spec.rows], 4)}
    k = k0
    while k < k1 and STOP < zero:
        k += 1
        kf = F(k)
{_lines(["fac = F(factors[k - 1])"] if scheduled else [], 8)}
{_lines(step, 8)}
        if ({_far("y", dim)}) | (not math.isfinite(en + gm)):
            DIV = kf
            STOP = kf
        else:
{_lines(moved, 12)}
{_lines(saves, 8)}
    if every > 0 or marks.shape[0] > 1 or snap.shape[0] > 1:  # a stopped particle's later frames
        for later in range(k + 1, k1 + 1):
            k = later
{_lines(saves, 12)}
{_lines(store, 4)}
"""
    return _FRAME_OF + start + "\n" + advance


_HEADER = """# generated by descent.kernels.cuda from a validated expression tree; do not edit
import math

import numpy as np
from numba import cuda

F = np.{dtype}

"""


def _stream_source() -> str:
    """The stream's functions (:mod:`descent.kernels.stream`) as CUDA device functions, with an import
    of the module's constants they use: the same source, compiled for the GPU."""
    names, parts = set(), []
    for name in STREAM_FUNCTIONS:
        function = getattr(stream, name).py_func
        constants = (np.generic, float)
        names |= {n for n in function.__code__.co_names if isinstance(getattr(stream, n, None), constants)}
        body = [line for line in inspect.getsource(function).splitlines() if not line.startswith("@")]
        parts.append("@cuda.jit(device=True)\n" + "\n".join(body))
    imports = ", ".join(sorted(names | {"PURPOSE_GRAD_NOISE", "PURPOSE_LANGEVIN"}))
    return f"from descent.kernels.stream import {imports}\n\n\n" + "\n\n\n".join(parts) + "\n"


def module_source(value_and_grad: str, kernels: str, dtype: str) -> str:
    """The whole module: header, ``value_and_grad``, ``frame_of`` and (when the kernels draw numbers)
    the stream as device functions, ``start`` and ``advance`` as kernels."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"no kernel for dtype {dtype!r}")
    source = _HEADER.format(dtype=dtype)
    if "counter_key(" in kernels:
        source += _stream_source() + "\n\n"
    source += f"@cuda.jit(device=True)\n{value_and_grad}\n\n"
    for part in kernels.split("\ndef ")[1:]:
        name = part.split("(", 1)[0]
        decorator = "@cuda.jit(device=True)" if name == "frame_of" else "@cuda.jit(cache=True)"
        source += f"{decorator}\ndef {part.strip()}\n\n\n"
    return source


def cuda_kernel_for(
    objective,
    rule: str,
    dtype: torch.dtype,
    transforms: tuple[str, ...] = (),
    scheduled: bool = False,
    points: int = 0,
) -> Kernel:
    """The CUDA kernels of (the objective's expression, ``rule``, ``dtype``, the transforms' kinds,
    whether the lr is scheduled, the number of known points of near events)."""
    tree = objective.energy.tree
    unbounded = not objective.bounded_below
    key = (id(tree), objective.dim, rule, dtype, unbounded, transforms, scheduled, points)
    if key not in _KERNELS:
        kernels = cuda_source(rule, objective.dim, unbounded, transforms, scheduled, points)
        source = module_source(
            value_and_grad_source(tree, objective.dim), kernels, str(dtype).removeprefix("torch.")
        )
        _KERNELS[key] = (tree, load(source))  # the tree is kept, so its id is never reused
    return _KERNELS[key][1]


# --- which runs --------------------------------------------------------------------------------------
def cuda_unsupported(
    objective, optimizer, starts, save: SaveAt, events: Events, probes, batching, steps: int = 0
) -> str | None:
    """What of this run the CUDA kernels do not support, in words; None when they run it. They run
    what the CPU kernels run (:func:`descent.kernels.backend.unsupported`), from starts on a CUDA
    device (CPU starts under the simulator)."""
    if not simulated():
        if not torch.cuda.is_available():
            return "runs without a CUDA device (torch sees none)"
        if starts.device.type != "cuda":
            return f"starts on the device {starts.device.type!r} (a CUDA run takes them on a CUDA device)"
        if not _cuda().is_available():
            return "runs without Numba's CUDA target (numba.cuda finds no device or no CUDA toolkit)"
    elif starts.device.type != "cpu":
        return f"starts on the device {starts.device.type!r} under the CUDA simulator (it takes CPU starts)"
    return unsupported(objective, optimizer, starts[:0].cpu(), save, events, probes, batching, steps)


def cuda_info() -> dict:
    """The last CUDA run in this process: its source hash and path, the seconds its compilation (or
    load from the disk cache) took, and the seconds the kernels took (launches synchronised, the
    copies of the results to the host excluded)."""
    return dict(_LAST)


def chunks(steps: int, n: int) -> list[tuple[int, int]]:
    """The (k0, k1) step ranges a run of ``steps`` steps on ``n`` particles goes in."""
    size = max(1, min(steps, int(CHUNK_WORK // max(n, 1))))
    return [(k0, min(steps, k0 + size)) for k0 in range(0, steps, size)]


def flops_per_step(objective, rule: str, transforms: tuple[str, ...] = ()) -> dict[str, int]:
    """Floating-point operations of one particle-step, counted in the generated source (+, -, *, / and
    unary minus on floats, one each, so a fused multiply-add counts two; sqrt, exp, log and the like
    one each; comparisons, abs and logic none; the random draws left out): ``gradient``
    (``value_and_grad``, U included), ``rule`` (the transforms and the update, x + s included),
    ``events`` (the divergence check and the observation of the events)."""
    import ast

    def count(source: str) -> int:
        tree = ast.parse(source)
        arithmetic = (ast.Add, ast.Sub, ast.Mult, ast.Div)
        ops = sum(isinstance(node, ast.BinOp) and isinstance(node.op, arithmetic) for node in ast.walk(tree))
        ops += sum(isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) for node in ast.walk(tree))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
        return ops + sum(call.func.attr in _MATH for call in calls)

    dim = objective.dim
    spec = _RULES[rule]
    gradient = count(value_and_grad_source(objective.energy.tree, dim))
    lines = _prepare(rule, dim, transforms, False) + spec.pre + _expand(spec.lines, dim)
    lines += [f"y{j} = x{j} + s{j}" for j in range(dim)]
    lines = [line for line in lines if "counter_key" not in line and "normal_at" not in line]
    rule_ops = count("\n".join(line.strip() for line in lines))
    registers = _registers(layout(rule, dim))
    check = f"bad = ({_far('y', dim)}) | (not math.isfinite(en + gm))"
    observe = _resolve("\n".join(_observe(dim, "kf", not objective.bounded_below)), registers)
    events = count(check) + count(observe)
    return {"gradient": gradient, "rule": rule_ops, "events": events}


_MATH = {"sqrt", "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "atan"}


# --- the run -----------------------------------------------------------------------------------------
def _launch(kernel, n: int, *args) -> None:
    """``kernel`` on ``n`` threads (one block at least: a kernel with no particle returns at once)."""
    threads = max(1, min(THREADS, n))
    kernel[max(1, -(-n // threads)), threads](*args)


def _view(tensor: torch.Tensor):
    """What a kernel takes for ``tensor``: a Numba view of its device memory (no copy), or the numpy
    array of a CPU tensor (the simulator)."""
    return _cuda().as_cuda_array(tensor) if tensor.is_cuda else tensor.numpy()


def _context(device: torch.device):
    """Numba's context of ``device`` (the GPU the tensors live on), or nothing for the simulator."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return _cuda().gpus[device.index if device.index is not None else torch.cuda.current_device()]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        _cuda().synchronize()


@dataclass
class DeviceRun:
    """A run's results where the kernels left them (torch tensors on the run's device): ``state``
    ``[R, N]`` with the rows of ``layout(rule, dim, points)``, the frames ``[F, N, d]`` / ``[F, N]`` of
    the steps ``wanted`` (those past ``done`` unused), the probes' ``snapshots`` of the steps ``taken``;
    ``done`` the last step run (the last stop step when every particle stopped), ``seconds`` the
    kernels' time (launches synchronised)."""

    rule: str
    rows: dict[str, int]
    points: tuple
    state: torch.Tensor
    frames_x: torch.Tensor
    frames_e: torch.Tensor
    frames_u: torch.Tensor
    wanted: list[int]
    snapshots: torch.Tensor
    taken: list[int]
    done: int
    interrupted: bool
    seconds: float
    kernel: Kernel


def run_on_device(
    objective,
    optimizer,
    starts: torch.Tensor,
    steps: int,
    save: SaveAt,
    events: Events,
    seed: int = 0,
    progress=None,
    probes=(),
) -> DeviceRun:
    """Run the CUDA kernels and leave the results on the device (``run_cuda`` without the trajectory:
    for a benchmark, or a caller that reduces them there)."""
    reason = cuda_unsupported(objective, optimizer, starts, save, events, probes, None, steps)
    if reason is not None:
        raise ValueError(f"no CUDA kernel supports {reason}")
    n, dim = starts.shape
    device, dtype = starts.device, starts.dtype
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    rule = kernel_rule(optimizer)
    transforms = tuple(t.kind for t in optimizer.transforms)
    scheduled = type(optimizer.schedule) is not Constant
    points = known_points(objective) if events.near else ()
    kernel = cuda_kernel_for(objective, rule, dtype, transforms, scheduled, len(points))
    rows = layout(rule, dim, len(points))
    height = max(rows.values()) + 1

    def on_device(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    # the host's preparation, as run_kernel's: step k's lr factor, frames (every ``every`` steps, or
    # marks[k] >= 0 at chosen steps), the probes' snapshots, the box, the thresholds
    factors = np.array([optimizer.schedule(k) for k in range(steps)] if scheduled else [1.0], np.float64)
    every = 0 if save.is_summary or save.steps else int(save.every)
    wanted = save.frame_steps(steps) if save.steps else list(range(0, steps + 1, every)) if every else [0]
    marks = np.full(steps + 1 if save.steps else 1, -1, np.int64)
    if save.steps:
        marks[wanted] = np.arange(len(wanted))
    taken = snapshot_steps(probes, steps) if probes else []
    snap = np.full(steps + 1 if probes else 1, -1, np.int64)
    snap[taken] = np.arange(len(taken))
    low = torch.tensor([lo for lo, _ in objective.bounds], dtype=dtype)
    high = torch.tensor([hi for _, hi in objective.bounds], dtype=dtype)
    center, box_inverse = (low + high) / 2, 2 / (high - low)  # as the EventTracker computes them
    far_inverse = 2 / ((high - low) * (1 + 2 * events.diverge_spans))
    hyper = _hyper_rows(optimizer, hyper_names(rule, transforms), n, dtype, np_dtype)
    target = events.target_loss if events.target_loss is not None else -math.inf
    radius = events.capture_radius if events.capture_radius is not None else objective.radius()
    box = [on_device(a) for a in (center.numpy(), far_inverse.numpy(), box_inverse.numpy())]
    centers = on_device(np.array([p.position for p in points], np_dtype).reshape(len(points), dim))
    settings = (
        *(_view(a) for a in box),
        squared_threshold(events.grad_tol, np_dtype), squared_threshold(events.step_tol, np_dtype),
        np_dtype(target), "converged" in events.stop_on, "target" in events.stop_on,
        _view(centers), squared_threshold(radius, np_dtype),
    )  # fmt: skip
    hyper_t, factors_t, marks_t, snap_t = (on_device(a) for a in (hyper, factors, marks, snap))
    seed_bits = as_uint64(seed)

    def zeros(*shape) -> torch.Tensor:
        return torch.zeros(shape, dtype=dtype, device=device)

    state = torch.empty((height, n), dtype=dtype, device=device)
    count = len(wanted)
    frames_x, frames_e, frames_u = zeros(count, n, dim), zeros(count, n), zeros(count, n, dim)
    snapshots = zeros(len(taken), height, n)

    def warm_up() -> None:  # compiles (or loads) both kernels on one particle and no step
        one = zeros(height, 1)
        _launch(kernel.module.start, 1, _view(zeros(1, dim)), _view(one), *settings)
        _launch(
            kernel.module.advance, 1, _view(one), _view(hyper_t[:, :1].contiguous()), _view(factors_t),
            seed_bits, 0, 0, every, _view(marks_t[:1].contiguous()), _view(zeros(1, 1, dim)),
            _view(zeros(1, 1)), _view(zeros(1, 1, dim)), _view(snap_t[:1].contiguous()),
            _view(zeros(1, height, 1)), *settings,
        )  # fmt: skip
        _synchronize(device)

    with _context(device), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(under-utilization|low occupancy).*")
        timed_first_call(kernel, warm_up)
        x0 = starts.detach().contiguous()
        _synchronize(device)
        begin = time.perf_counter()
        _launch(kernel.module.start, n, _view(x0), _view(state), *settings)
        _synchronize(device)
        for j in range(dim):
            frames_x[0, :, j] = state[rows[f"X{j}"]]
            frames_u[0, :, j] = state[rows[f"U{j}"]]
        frames_e[0] = state[rows["E"]]
        if taken:
            snapshots[0] = state
        done, interrupted = 0, False
        try:
            for k0, k1 in chunks(int(steps), n):
                if n == 0 or not bool((state[rows["STOP"]] < 0).any()):
                    break
                _launch(
                    kernel.module.advance, n, _view(state), _view(hyper_t), _view(factors_t), seed_bits,
                    k0, k1, every, _view(marks_t), _view(frames_x), _view(frames_e), _view(frames_u),
                    _view(snap_t), _view(snapshots), *settings,
                )  # fmt: skip
                done = k1  # a launched chunk finishes, even when Ctrl-C comes while it runs
                _synchronize(device)
                if progress is not None:
                    progress(done, steps)
        except KeyboardInterrupt:
            interrupted = True
            _synchronize(device)
        seconds = time.perf_counter() - begin
    stop = state[rows["STOP"]]
    if n and bool((stop >= 0).all()):  # the run ends when every particle has stopped (as in simulate)
        done = int(stop.max())
    _LAST.update(
        digest=kernel.digest, path=str(kernel.path), compile_seconds=kernel.compile_seconds,
        run_seconds=seconds, particles=n, steps=int(steps), device=str(device),
    )  # fmt: skip

    return DeviceRun(
        rule, rows, points, state, frames_x, frames_e, frames_u, wanted, snapshots, taken, done, interrupted,
        seconds, kernel,
    )  # fmt: skip


def run_cuda(
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
    *,
    streams: str = "particle",
) -> Trajectory:
    """Run ``optimizer`` on ``objective`` from ``starts`` (a CUDA tensor) with the CUDA kernels; the
    same arguments and result as :func:`descent.kernels.backend.run_kernel` (see ``simulate``).
    ``streams``: each particle's own; ``simulate`` runs a shared-stream run that draws on torch."""
    run = run_on_device(objective, optimizer, starts, steps, save, events, seed, progress, probes)
    # the trajectory on the host, as run_kernel builds it: the kept frames copied into arrays with a
    # spare slot for the final state
    kept = sum(1 for k in run.wanted if k <= run.done)
    frames = []
    for device_frames in (run.frames_x, run.frames_e, run.frames_u):
        host = np.zeros((kept + 1, *device_frames.shape[1:]), dtype=device_frames[:0].cpu().numpy().dtype)
        host[:kept] = device_frames[:kept].cpu().numpy()
        frames.append(host)
    held = [run.state.cpu().numpy(), run.snapshots.cpu().numpy()]
    about = (
        run.done,
        run.interrupted,
        seed,
        spec,
        starts.dtype,
        str(starts.device),
        run.kernel.compile_seconds,
    )
    rule, rows, points, wanted, taken = run.rule, run.rows, run.points, run.wanted, run.taken
    del run
    return kernel_trajectory(
        objective,
        optimizer,
        events,
        save,
        probes,
        rule,
        rows,
        points,
        held,
        tuple(frames),
        wanted,
        taken,
        about,
    )


__all__ = [
    "DeviceRun",
    "cuda_info",
    "cuda_source",
    "cuda_unsupported",
    "flops_per_step",
    "run_cuda",
    "run_on_device",
    "simulated",
]
