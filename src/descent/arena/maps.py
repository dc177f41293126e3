"""The Arena's two maps of outcomes, computed by the engine in one batched run each (no UI here).

- :func:`basin_map`: an ``n x n`` grid of starts over the landscape's box (the cell centres of
  ``RunSpec(starts="grid:n")``), each run with racer 0's rule and settings for the state's steps:
  where each start ends.
- :func:`phase_map`: a grid of racer 0's hyper-parameters from the state's start: where each setting
  ends, with the rule's stability edge at each known minimum drawn over it.
- :func:`cell_to_state`: the Arena state a click on a cell means.

Each map is one `RunSpec` (``save="summary"``, backend ``"auto"``: the compiled kernel where it
supports the run) run through `run_spec`, kept in the map (``map.spec``), so every cell replays.
A cell's outcome is an index into ``map.labels`` (`descent.dynamics.outcome_labels` of the
landscape: the same list, and so the same colours, for every map of one landscape) and its steps to
settle the engine's ``outcome_step`` (-1 where it has none: still moving). Cell ``[i, j]`` is row
``i`` (y, or the second hyper-parameter) and column ``j`` (x, or the learning rate), as a heatmap's
``z[i][j]``; its particle in the run is ``i * columns + j``.

The phase map's axes (``PHASE_AXES``):

- the learning rate, log-spaced from ``1e-3`` to ``10`` times the rule's default lr on the landscape
  (`descent.spec.default_lr`, the landscape's scale for that rule), widened to hold racer 0's lr (x2
  either side) and 1.25 times the largest stability edge the map draws (so the diverged side shows),
  and clamped to the Arena's lr slider (``LR_RANGE``);
- the second axis: ``momentum`` for momentum and Nesterov (and RMSprop, whose momentum 0, the bottom
  row, is plain RMSprop: its ``alpha`` stays at racer 0's value), ``beta1`` for Adam, AdamW and
  AMSGrad, ``temperature`` for Langevin; none for GD and AdaGrad, whose map is a one-row strip over
  the lr (their other settings, AdaGrad's ``lr_decay`` and ``eps``, are not what one explores). A
  decay in [0, 1) (momentum, beta1, alpha) runs linearly over [0, 0.999]; another one (temperature)
  linearly over [0, 2 v] with v racer 0's value (the rule's default where that is 0). ``second=``
  picks another hyper-parameter of the rule, ``lr_range=`` / ``second_range=`` other ranges.

Stability edges (``PhaseMap.edges``): at each known smooth minimum, the rule's own ``edge`` (the
engine's, `descent.optim.UpdateRule.edge`) at the landscape's Hessian there, with a fresh state and
each row's value of the second axis: ``lr_edge`` per row (GD and Langevin ``2/lambda_max``, the
heavy ball ``2(1+beta)/lambda_max``, Nesterov ``2(1+beta)/((1+2beta) lambda_max)``; inf where the
curvature is not positive). The adaptive rules have none on the map: their edge is on the
preconditioned sharpness ``P^-1 H`` with ``P`` the running gradient scale, which depends on the path
and tends to ``eps`` at a minimum, so no lr is stable or unstable there by itself.

What a map runs: the ball's dynamics only (racer 0's rule and hyper-parameters, no swarm noise). Its
spec shares one random stream among the cells (``streams="shared"``: common random numbers), so with
Langevin (or any noise) every cell draws the single ball's noise, particle 0's of the state's seed:
a cell is exactly the run the ball makes once that cell is chosen, and neighbouring cells differ by
their settings, not by their luck. It also makes the noisy maps as quick as the others: the kernel
draws a step's normals once per block of cells, not once per cell.

Sizes are checked before anything is built or run: ``n`` in [2, ``MAX_N``], cells x steps at most
``MAX_WORK`` (200 x 200 cells of 1000 steps, 400 x 400 of 250: the kernel's run takes from 0.2 to 3
CPU-seconds, by landscape and rule), and at most ``MAX_TORCH_WORK`` where the kernel does not support
the run (a landscape with data: the torch loop), with ``MAX_DATA_WORK`` cell-examples a step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from descent._errors import invalid, listed
from descent.arena.runner import MAX_DATA_WORK, check_start, get_landscape
from descent.arena.state import LR_LOG_RANGE, field_int, normalize, short
from descent.dynamics import outcome_labels
from descent.landscapes import Landscape
from descent.optim import RULES
from descent.spec import RunSpec, default_lr, grid_starts, run_spec

MAX_N = 400  # cells on a side
MIN_N = 2
#: cells x steps of one map: the issue's 200 x 200 x 1000 (benchmarks/arena_maps.py: 0.2-0.6 CPU-s on
#: the seeds' and polynomial landscapes, 1.1-1.5 on eggholder and rastrigin)
MAX_WORK = 40_000_000
MAX_TORCH_WORK = 2_000_000  # the same where the kernel does not take the run (the torch loop)
LR_RANGE = (10 ** LR_LOG_RANGE[0], 10 ** LR_LOG_RANGE[1])  # the Arena's lr slider
LR_SPAN = (1e-3, 10.0)  # the lr axis: these multiples of the rule's default lr on the landscape
EDGE_ROOM = 1.25  # the lr axis reaches this multiple of the largest edge it draws
DECAY_RANGE = (0.0, 0.999)  # momentum, beta1, alpha
PHASE_AXES: dict[str, str | None] = {
    "gd": None,
    "adagrad": None,
    "momentum": "momentum",
    "nesterov": "momentum",
    "rmsprop": "momentum",
    "adam": "beta1",
    "adamw": "beta1",
    "amsgrad": "beta1",
    "langevin": "temperature",
}
AUTO = "auto"


@dataclass(frozen=True, eq=False)
class _OutcomeMap:
    """What both maps hold: per cell ``[rows, columns]`` the outcome (an index into ``labels``) and the
    steps to settle (-1: none), the spec that ran them and what ran it."""

    labels: tuple[str, ...]
    outcome: np.ndarray  # int64 [rows, columns]: index into labels
    settle: np.ndarray  # int64 [rows, columns]: outcome_step, -1 where none
    spec: RunSpec
    source: dict[str, Any]  # the (normalised) Arena state the map was made from
    backend: str  # "kernel" or "torch"
    fallback: str | None  # why "auto" ran torch
    compile_seconds: float | None  # the kernel's compile (or disk-cache load) when this process loaded it
    seconds: float  # the whole call (checks, run, labels, edges)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.outcome.shape[0]), int(self.outcome.shape[1]))

    def label(self, i: int, j: int) -> str:
        """The outcome label of cell ``[i, j]``."""
        i, j = self._cell(i, j)
        return self.labels[int(self.outcome[i, j])]

    def counts(self) -> dict[str, int]:
        """How many cells end in each label (labels with none left out)."""
        tally = np.bincount(self.outcome.ravel(), minlength=len(self.labels))
        return {label: int(c) for label, c in zip(self.labels, tally) if c}

    def _cell(self, i: object, j: object) -> tuple[int, int]:
        rows, columns = self.shape
        return field_int("cell row i", i, 0, rows - 1), field_int("cell column j", j, 0, columns - 1)


@dataclass(frozen=True, eq=False)
class BasinMap(_OutcomeMap):
    """Where each start ends: cell ``[i, j]`` started at ``(x[j], y[i])`` (cell centres)."""

    x: np.ndarray = field(default_factory=lambda: np.empty(0))  # [n] cell centres in x
    y: np.ndarray = field(default_factory=lambda: np.empty(0))  # [n] cell centres in y
    kind: str = "basin"


@dataclass(frozen=True)
class EdgeCurve:
    """The rule's stability edge at one known minimum: ``lr[i]``, the largest stable lr with the map's
    row ``i`` value of the second axis (one value for a strip); inf where the curvature is not
    positive."""

    minimum: str  # the minimum's id (its label is "minimum:<id>")
    position: tuple[float, ...]
    lambda_max: float  # the Hessian's largest eigenvalue there
    lr: np.ndarray  # [rows]


@dataclass(frozen=True, eq=False)
class PhaseMap(_OutcomeMap):
    """Where each setting ends, from ``start``: cell ``[i, j]`` ran with lr ``lr[j]`` and
    ``second[i]`` of the hyper-parameter ``second_name`` (None: a one-row strip over the lr)."""

    optimizer: str = ""
    lr: np.ndarray = field(default_factory=lambda: np.empty(0))  # [columns], log-spaced
    second_name: str | None = None
    second: np.ndarray = field(default_factory=lambda: np.empty(0))  # [rows] (empty for a strip)
    start: tuple[float, ...] = ()
    edges: tuple[EdgeCurve, ...] = ()
    edge_math: str = ""  # the rule's edge formula (empty where the map draws none)
    kind: str = "phase"


# --- the checks ----------------------------------------------------------------------------------------
def check_size(n: object, steps: int, rows: int | None = None) -> int:
    """``n`` as an int in [MIN_N, MAX_N] and the map's work (``rows`` x n cells, n x n by default,
    times ``steps``) within ``MAX_WORK``; raises DescentError naming the parameter."""
    n = field_int("n", n, MIN_N, MAX_N)
    cells = n * (n if rows is None else rows)
    if cells * steps > MAX_WORK:
        most = MAX_WORK // cells
        raise invalid(
            "steps",
            steps,
            f"at most {most} for a map of {cells:,} cells (cells x steps at most {MAX_WORK:,}); "
            "fewer steps or a smaller n",
        )
    return n


def _check_engine(spec: RunSpec, landscape: Landscape, cells: int, hyper: dict) -> None:
    """A run the kernel does not take runs on the torch loop: at most ``MAX_TORCH_WORK`` cell-steps
    there (and ``MAX_DATA_WORK`` cell-examples a step on a landscape with data). ``hyper``: racer 0's
    own values (what the kernel supports does not depend on them, and they are quick to check)."""
    from descent.kernels.backend import unsupported

    optimizer = spec.with_(hyper=hyper).build_optimizer(landscape)
    probe = torch.zeros(1, landscape.dim, dtype=torch.float64)
    reason = unsupported(
        landscape, optimizer, probe, spec.save_at(), spec.build_events(), [], None, spec.steps
    )
    if reason is None:
        return
    examples = getattr(landscape, "data_size", None)
    if examples and cells * examples > MAX_DATA_WORK:
        raise invalid(
            "n",
            round(math.sqrt(cells)),
            f"at most {math.isqrt(MAX_DATA_WORK // examples)} cells a side on {short(spec.landscape)} "
            f"(each cell's step sums its {examples} examples)",
        )
    if cells * spec.steps > MAX_TORCH_WORK:
        raise invalid(
            "steps",
            spec.steps,
            f"at most {MAX_TORCH_WORK // cells} for a map of {cells:,} cells here: the compiled kernel "
            f"does not run it ({reason}), the torch loop does, at most {MAX_TORCH_WORK:,} cell-steps",
        )


def _prepare(
    state: object, n: object, steps: object, rows: int | None = None
) -> tuple[dict[str, Any], int, int, Landscape]:
    """The normalised state, n, the steps and the landscape, checked in that order (sizes first)."""
    field_int("n", n, MIN_N, MAX_N)  # before the state: a bad size says so first
    checked = normalize(state)
    count = checked["steps"] if steps is None else field_int("steps", steps, 1, 10**9)
    side = check_size(n, count, rows)
    landscape = get_landscape(checked["landscape"], checked["params"])
    check_start(checked, landscape)
    return checked, side, count, landscape


def _run(spec: RunSpec, landscape: Landscape, shape: tuple[int, int], state: dict, hyper: dict) -> dict:
    """Run ``spec`` (checked first, `_check_engine`) and give the fields both maps hold, but the
    seconds: the labels, each cell's outcome index and settle step as ``shape`` arrays, the spec, the
    source ``state`` and what ran it."""
    rows, columns = shape
    _check_engine(spec, landscape, rows * columns, hyper)
    trajectory = run_spec(spec, landscape=landscape)
    labels = tuple(outcome_labels(landscape))
    index = {label: k for k, label in enumerate(labels)}
    outcome = np.fromiter(map(index.__getitem__, trajectory.outcomes), np.int64, len(trajectory.outcomes))
    settle = trajectory.outcome_step.numpy().astype(np.int64, copy=False)
    return {
        "labels": labels,
        "outcome": outcome.reshape(shape),
        "settle": settle.reshape(shape),
        "spec": spec,
        "source": state,
        "backend": trajectory.backend,
        "fallback": trajectory.fallback,
        "compile_seconds": trajectory.compile_seconds,
    }


def _common(state: dict[str, Any], steps: int) -> dict[str, Any]:
    """The spec fields every map of ``state`` shares (those of the ball's own spec, `state_specs`)."""
    return dict(
        landscape=state["landscape"],
        landscape_params=dict(state["params"]),
        steps=steps,
        seed=state["seed"],
        save="summary",
        backend="auto",
        streams="shared",  # every cell draws the ball's noise (the module docstring)
    )


# --- the basin map -----------------------------------------------------------------------------------
def basin_map(state: object, n: object = 200, *, steps: object = None) -> BasinMap:
    """Where each of an ``n x n`` grid of starts over the box ends with racer 0's rule and settings,
    for the state's steps (``steps``: another number): one run of ``RunSpec(starts="grid:n")``."""
    began = time.perf_counter()
    checked, side, count, landscape = _prepare(state, n, steps)
    ball = checked["racers"][0]
    spec = RunSpec(
        optimizer=ball["optimizer"],
        hyper=dict(ball["hyper"]),
        starts=f"grid:{side}",
        **_common(checked, count),
    )
    ran = _run(spec, landscape, (side, side), checked, ball["hyper"])
    points = grid_starts(landscape, side).numpy().reshape(side, side, 2)
    return BasinMap(
        **ran,
        seconds=time.perf_counter() - began,
        x=points[0, :, 0].copy(),
        y=points[:, 0, 1].copy(),
    )


# --- the phase map -----------------------------------------------------------------------------------
def phase_axis(optimizer: str) -> str | None:
    """The phase map's second hyper-parameter for ``optimizer`` (None: a strip over the lr)."""
    return PHASE_AXES.get(optimizer)


def _second_name(optimizer: str, second: object) -> str | None:
    if second == AUTO:
        return phase_axis(optimizer)
    if second is None:
        return None
    rule = RULES[optimizer]
    names = [h.name for h in rule.hyperparams if h.name != "lr" and not h.flag]
    if not isinstance(second, str) or second not in names:
        raise invalid("second", short(second), f"'auto', None or one of: {listed(names)} ({optimizer}'s)")
    return second


def _second_values(optimizer: str, name: str, hyper: dict, rows: int, given: object) -> np.ndarray:
    spec = {h.name: h for h in RULES[optimizer].hyperparams}[name]
    if given is not None:
        low, high = _range("second_range", given)
        spec.validate(low, optimizer)
        spec.validate(high, optimizer)
    elif spec.high == 1.0:
        low, high = DECAY_RANGE
    else:
        value = hyper.get(name, spec.default) or spec.default or 1.0
        low, high = 0.0, 2.0 * value
    return np.linspace(low, high, rows)


def _range(parameter: str, given: object) -> tuple[float, float]:
    allowed = "two finite numbers [low, high] with low < high"
    if not isinstance(given, (list, tuple)) or len(given) != 2:
        raise invalid(parameter, short(given), allowed)
    try:
        low, high = (float(v) for v in given)
    except (TypeError, ValueError):
        raise invalid(parameter, short(given), allowed) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise invalid(parameter, short(given), allowed)
    return low, high


def stability_edges(
    landscape: Landscape, optimizer: str, hyper: dict, second_name: str | None, second: np.ndarray
) -> tuple[EdgeCurve, ...]:
    """The rule's stability edge at each known smooth minimum of ``landscape`` for each value of the
    second axis (module docstring); none for the adaptive rules and rules without an edge."""
    rule = RULES[optimizer]
    if rule.edge_fn is None or rule.physics == "adaptive":
        return ()
    rows = max(len(second), 1)
    hp = rule.resolve({k: v for k, v in hyper.items() if k != "lr"})
    if second_name is not None:
        hp[second_name] = torch.as_tensor(second, dtype=torch.float64)
    fresh = rule.init(torch.zeros(rows, landscape.dim, dtype=torch.float64))
    curves = []
    for point in landscape.minima:
        if not point.smooth or point.on_boundary:
            continue
        hessian = landscape.hessian(torch.tensor([point.position], dtype=torch.float64))
        if not bool(torch.isfinite(hessian).all()):
            continue
        symmetric = 0.5 * (hessian + hessian.transpose(-1, -2))
        lambda_max = float(torch.linalg.eigvalsh(symmetric)[0, -1])
        edge = rule.edge(hessian.expand(rows, -1, -1), fresh, hp)
        curves.append(EdgeCurve(point.id, tuple(point.position), lambda_max, edge.numpy().copy()))
    return tuple(curves)


def lr_axis(
    landscape: Landscape, optimizer: str, lr: float, edges: tuple[EdgeCurve, ...]
) -> tuple[float, float]:
    """The lr axis's ends (module docstring): ``LR_SPAN`` times the rule's default lr, widened to hold
    ``lr`` (x2 either side) and ``EDGE_ROOM`` times the largest finite edge, within ``LR_RANGE``."""
    scale = default_lr(landscape, optimizer)
    low, high = LR_SPAN[0] * scale, LR_SPAN[1] * scale
    finite = [float(v) for curve in edges for v in curve.lr if math.isfinite(v) and v > 0]
    high = max(high, 2 * lr, EDGE_ROOM * max(finite, default=0.0))
    low = min(low, lr / 2)
    low, high = (min(max(v, LR_RANGE[0]), LR_RANGE[1]) for v in (low, high))
    return (low, high) if low < high else (LR_RANGE[0], LR_RANGE[1])


def phase_map(
    state: object,
    n: object = 200,
    *,
    steps: object = None,
    second: object = AUTO,
    lr_range: object = None,
    second_range: object = None,
) -> PhaseMap:
    """Where each setting of racer 0's rule ends from the state's start: ``n`` learning rates (columns)
    x ``n`` values of the rule's second hyper-parameter (rows; one row where it has none), one run of
    one particle per cell with per-particle hyper-parameters; and the stability edge at each known
    minimum (module docstring). ``second``: ``"auto"`` (``PHASE_AXES``), None (a strip) or a
    hyper-parameter's name; ``lr_range`` / ``second_range``: ``[low, high]`` instead of the default
    axes."""
    began = time.perf_counter()
    field_int("n", n, MIN_N, MAX_N)
    checked = normalize(state)
    ball = checked["racers"][0]
    optimizer, hyper = ball["optimizer"], dict(ball["hyper"])
    name = _second_name(optimizer, second)
    checked, side, count, landscape = _prepare(checked, n, steps, None if name is not None else 1)
    rows = side if name is not None else 1
    values = _second_values(optimizer, name, hyper, rows, second_range) if name else np.empty(0)
    edges = stability_edges(landscape, optimizer, hyper, name, values)
    lr_now = float(hyper.get("lr", default_lr(landscape, optimizer)))
    if lr_range is None:
        low, high = lr_axis(landscape, optimizer, lr_now, edges)
    else:
        low, high = _range("lr_range", lr_range)
        if low <= 0:
            raise invalid("lr_range", short(lr_range), "two learning rates 0 < low < high")
    rates = np.geomspace(low, high, side)
    start = checked["start"]
    point = [float(v) for v in (start if start is not None else landscape.start().squeeze(0).tolist())]
    grid = {"lr": np.tile(rates, rows).tolist()}
    if name is not None:
        grid[name] = np.repeat(values, side).tolist()
    spec = RunSpec(optimizer=optimizer, hyper={**hyper, **grid}, starts=[point], **_common(checked, count))
    ran = _run(spec, landscape, (rows, side), checked, hyper)
    return PhaseMap(
        **ran,
        seconds=time.perf_counter() - began,
        optimizer=optimizer,
        lr=rates,
        second_name=name,
        second=values,
        start=tuple(point),
        edges=edges,
        edge_math=RULES[optimizer].edge_math if edges else "",
    )


# --- a click ------------------------------------------------------------------------------------------
def shown(value: float) -> float:
    """A cell's setting as its tooltip writes it (4 significant digits, ``%{x:.4g}``): the value a click
    runs, so the boxes show it whole (0.03013, not 0.030125245020165198).

    >>> shown(0.030125245020165198), shown(0.6977939698492462)
    (0.03013, 0.6978)
    """
    return float(f"{value:.4g}")


def cell_to_state(map: BasinMap | PhaseMap, i: object, j: object, state: object) -> dict[str, Any]:
    """The Arena state a click on cell ``[i, j]`` means: a basin map's drops the ball at the cell's
    start, a phase map's sets racer 0's sliders to the cell's lr and second hyper-parameter.

    The ball's run in the returned state is the cell's own run: the landscape, racer 0, start, steps
    and seed are the map's (``map.source``, so a map made before the page changed still means what it
    shows), with the cell's change; the other racers, the swarm and the target are ``state``'s. A phase
    cell's lr and second hyper-parameter are written as its tooltip shows them (`shown`: 4 significant
    digits); the cell itself stays what it was computed with."""
    if not isinstance(map, (BasinMap, PhaseMap)):
        raise invalid("map", short(map), "a BasinMap or a PhaseMap")
    i, j = map._cell(i, j)
    current = normalize(state)
    source = map.source
    ball = {"optimizer": source["racers"][0]["optimizer"], "hyper": dict(source["racers"][0]["hyper"])}
    start = source["start"]
    if isinstance(map, BasinMap):
        start = [float(map.x[j]), float(map.y[i])]
    else:
        ball["hyper"]["lr"] = shown(float(map.lr[j]))
        if map.second_name is not None:
            ball["hyper"][map.second_name] = shown(float(map.second[i]))
    changed = {
        **current,
        "landscape": source["landscape"],
        "params": dict(source["params"]),
        "racers": [ball, *current["racers"][1:]],
        "start": start,
        "steps": int(map.spec.steps),
        "seed": source["seed"],
    }
    return normalize(changed)


__all__ = [
    "MAX_N",
    "MAX_TORCH_WORK",
    "MAX_WORK",
    "PHASE_AXES",
    "BasinMap",
    "EdgeCurve",
    "PhaseMap",
    "basin_map",
    "cell_to_state",
    "shown",
    "check_size",
    "lr_axis",
    "phase_axis",
    "phase_map",
    "stability_edges",
]
