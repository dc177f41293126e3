"""`RunSpec`: the complete, versioned, hashable description of a run that every face builds, and
`run_spec`, the one call that turns it into a `Trajectory`. The CLI writes it into every
``trajectory.json`` (``descent run --spec FILE`` replays it), the Arena puts it in its URL, every
experiment stores the specs of its runs, and a sweep keys its results by ``spec.digest``.

The default learning rate (one policy for every face, :func:`default_lr`): the objective's own
``default_lr`` for the over-damped and inertial rules (GD, Langevin, momentum, Nesterov); for the
adaptive rules, whose step is about lr per coordinate whatever the slope, 1/80 of the box's largest
side, to three significant digits.

The backend: a spec stores the one the user asked for (``"auto"`` unless told otherwise: the compiled
kernel where :func:`descent.kernels.backend.unsupported` says it supports the run, else torch); the
trajectory records the one that ran (``Trajectory.backend``) and, when ``"auto"`` fell back to torch,
why (``Trajectory.fallback``). Every spec this package has written stores its backend; a stored spec
without one (version 1, written before there was a choice) ran on torch and replays on torch.

Random streams (``streams``): ``"particle"`` (the default) gives particle i the counter-based stream
keyed by i, so the particles of a swarm draw independent noise and mini-batches; ``"shared"`` gives
every particle particle 0's stream (common random numbers): particle i's run is then exactly the
single-particle run with its own start and settings, which is what a map of outcomes wants (each
cell is the run one gets by choosing that cell). A spec written before the field existed reads as
``"particle"``, and the field is left out of the canonical JSON at that value, so such specs hash
as they did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, TypedDict, TypeVar, cast

import torch

from descent._errors import check_number, invalid, listed
from descent.dynamics import MODES, Batching, Events, SaveAt, Trajectory, probe_from_dict, simulate
from descent.dynamics.simulate import check_memory
from descent.landscapes import LANDSCAPES, Landscape, get_landscape
from descent.optim import Optimizer, get_rule, transform_from_dict
from descent.random import STREAMS

if TYPE_CHECKING:
    from typing_extensions import Unpack

V = TypeVar("V")

DTYPES = {"float64": torch.float64, "float32": torch.float32}
BACKENDS = ("torch", "kernel", "auto")
DEFAULT_BACKEND = "auto"  # what a new spec asks for; a stored spec keeps the one it names
STORED_BACKEND = "torch"  # what a stored spec without a backend field ran on (module docstring)
DEFAULT_STREAMS = "particle"  # random streams (descent.random.STREAMS): one per particle
SPEC_VERSION = 2
ADAPTIVE_LR_PER_SPAN = 0.0125  # adaptive rules: 1/80 of the box per step


def default_lr(objective: Landscape, optimizer: str) -> float:
    """The learning rate a run gets when none is given (module docstring)."""
    if get_rule(optimizer).normalized_step:
        return float(f"{ADAPTIVE_LR_PER_SPAN * objective.span:.3g}")
    return float(objective.default_lr)


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run; the same spec gives the same trajectory on the same backend.

    ``starts``: ``"default"`` (the objective's start), ``"default:N"`` (N copies of it),
    ``"random:N"`` (uniform in the box, seeded), ``"grid:K"`` (K x K cell centres, 2-D) or a list of
    points. ``hyper`` values may be lists, one per particle; a missing ``lr`` follows
    :func:`default_lr`. ``transforms``: gradient transforms in order (``{"kind": "clip_norm",
    "max_norm": 1}``). ``save``: ``"every:K"``, ``"steps:..."`` or ``"summary"``. ``events``: the
    thresholds of `descent.dynamics.Events` and ``stop_on``. ``batch_size`` (an int, or a list per
    particle) and ``batch_mode``: mini-batches for objectives with data.

    >>> spec = RunSpec(landscape="double-well", hyper={"momentum": 0.0})
    >>> run_spec(spec).outcomes, RunSpec.from_json(spec.to_json()) == spec
    (['minimum:left'], True)
    """

    landscape: str = "double-well"
    landscape_params: dict = field(default_factory=dict)
    optimizer: str = "momentum"
    hyper: dict = field(default_factory=dict)
    schedule: dict | None = None
    transforms: list = field(default_factory=list)
    starts: str | list = "default"
    steps: int = 2000
    save: str = "every:1"
    events: dict = field(default_factory=dict)
    batch_size: int | list | None = None
    batch_mode: str | list = "replacement"
    probes: list = field(default_factory=list)
    seed: int = 0
    dtype: str = "float64"
    device: str = "cpu"
    backend: str = DEFAULT_BACKEND
    streams: str = DEFAULT_STREAMS
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise invalid("steps", self.steps, "an integer >= 0")
        if self.dtype not in DTYPES:
            raise invalid("dtype", self.dtype, f"one of: {listed(sorted(DTYPES))}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise invalid("seed", self.seed, "an integer")
        if self.backend not in BACKENDS:
            raise invalid("backend", self.backend, f"one of: {listed(BACKENDS)}")
        if self.streams not in STREAMS:
            raise invalid("streams", self.streams, f"one of: {listed(STREAMS)}")
        if self.version != SPEC_VERSION:
            raise invalid("version", self.version, f"{SPEC_VERSION} (this package's spec version)")
        get_rule(self.optimizer)
        self.save_at()
        self.build_events()
        for mode in self.batch_mode if isinstance(self.batch_mode, list) else [self.batch_mode]:
            if mode not in MODES:
                raise invalid("batch_mode", mode, f"one of: {listed(MODES)}")
        for probe in self.probes:
            probe_from_dict(probe)
        for transform in self.transforms:
            transform_from_dict(transform)

    # --- forms ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fields as a dict (copies: changing it leaves the spec alone); ``streams`` only when not
        the default (module docstring)."""
        data = {f.name: _copy(getattr(self, f.name)) for f in fields(self)}
        if data["streams"] == DEFAULT_STREAMS:
            del data["streams"]
        return data

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces (what the digest hashes)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """A content hash of the canonical JSON (16 hex digits of its SHA-256)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        """From a dict (a stored spec, or the ``spec`` of a ``trajectory.json``); version-1 fields
        (``record_every``, ``grad_tol``, ``target_loss``, ``grad_noise``, ``clip_norm``, ``l2``) are
        translated, and a missing ``backend`` reads as ``"torch"`` (module docstring), so a stored spec
        replays, and hashes, as it did."""
        if not isinstance(data, dict):
            raise invalid("spec", type(data).__name__, "a JSON object")
        data = _upgrade(dict(data))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise invalid("spec field", unknown[0], f"one of: {listed(sorted(known))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise invalid("spec", text[:40], f"JSON ({error.msg} at line {error.lineno})") from None
        if isinstance(data, dict) and "schema" in data and "spec" in data:  # a trajectory.json
            data = data["spec"]
        return cls.from_dict(data)

    def with_(self, **changes: Unpack[RunSpecChanges]) -> RunSpec:
        """This spec with some fields changed (validated again)."""
        return replace(self, **changes)

    # --- building ---------------------------------------------------------------------------
    def save_at(self) -> SaveAt:
        return SaveAt.parse(self.save)

    def build_events(self) -> Events:
        return Events.from_dict(self.events)

    def build_landscape(self) -> Landscape:
        return resolve_landscape(self.landscape, **self.landscape_params)

    def build_optimizer(self, landscape: Landscape) -> Optimizer:
        hyper = {"lr": default_lr(landscape, self.optimizer), **self.hyper}
        values = {k: _tensor(v) for k, v in hyper.items()}
        # ``hyper`` may also name build's shorthands (grad_noise, clip_norm, l2); clip_norm alone is
        # typed a plain number there. The cast states what build then checks, whatever the JSON held:
        # ClipNorm's check_number passes a finite number > 0 on and raises DescentError otherwise.
        clip_norm = cast("float | None", values.pop("clip_norm", None))
        return Optimizer.build(
            self.optimizer,
            schedule=self.schedule,
            transforms=[transform_from_dict(t) for t in self.transforms],
            clip_norm=clip_norm,
            **values,
        )

    def build_starts(self, landscape: Landscape) -> torch.Tensor:
        dtype, device = DTYPES[self.dtype], self.device
        starts = self.starts
        allowed = "'default', 'default:N', 'random:N' or 'grid:K' with N, K >= 1, or a list of points"
        if isinstance(starts, str):
            kind, _, count = starts.partition(":")
            if kind == "default" and not count:
                points = landscape.start(dtype, device)
            elif kind in ("default", "random", "grid") and count.isdigit() and int(count) >= 1:
                if kind == "default":
                    points = landscape.start(dtype, device).expand(int(count), -1).clone()
                elif kind == "random":
                    generator = torch.Generator().manual_seed(int(self.seed))
                    points = landscape.random_starts(int(count), generator, dtype, device)
                else:
                    points = grid_starts(landscape, int(count), dtype, device)
            else:
                raise invalid("starts", starts, allowed)
        else:
            try:
                points = torch.tensor(starts, dtype=dtype, device=device).reshape(-1, landscape.dim)
            except (TypeError, ValueError, RuntimeError):
                raise invalid("starts", starts, f"points of {landscape.dim} numbers") from None
            if not bool(torch.isfinite(points).all()):
                raise invalid("starts", starts, "finite coordinates")
        n = self.particle_count()
        if n and points.shape[0] == 1:
            points = points.expand(n, -1).clone()
        elif n and points.shape[0] != n:
            raise invalid("starts", f"{points.shape[0]} points", f"1 or {n} (one per hyper-parameter value)")
        return points

    def starts_count(self, dim: int | None = None) -> int:
        """How many particles the spec runs, known before any start is made (``dim``: the objective's
        dimension, which a flat list of coordinates needs)."""
        n = self.particle_count()
        if n:
            return n
        if isinstance(self.starts, str):
            kind, _, count = self.starts.partition(":")
            if count.isdigit():
                return int(count) ** 2 if kind == "grid" else int(count)
            return 1
        flat = self.starts and not isinstance(self.starts[0], list)
        return max(len(self.starts) // (dim if flat and dim else 1), 1)

    def particle_count(self) -> int:
        """N implied by per-particle lists (0 when all are scalars)."""
        lists = [v for v in self.hyper.values() if isinstance(v, list)]
        lists += [v for t in self.transforms for v in t.values() if isinstance(v, list)]
        lists += [v for v in (self.batch_size, self.batch_mode) if isinstance(v, list)]
        lengths = {len(v) for v in lists}
        if len(lengths) > 1:
            raise invalid("hyper", self.hyper, "per-particle lists of one common length")
        return lengths.pop() if lengths else 0


class RunSpecChanges(TypedDict, total=False):
    """The keywords of :meth:`RunSpec.with_`: RunSpec's fields, with their types (a test keeps the
    two equal)."""

    landscape: str
    landscape_params: dict
    optimizer: str
    hyper: dict
    schedule: dict | None
    transforms: list
    starts: str | list
    steps: int
    save: str
    events: dict
    batch_size: int | list | None
    batch_mode: str | list
    probes: list
    seed: int
    dtype: str
    device: str
    backend: str
    streams: str
    version: int


def _copy(value: V) -> V:
    """A copy of a field's value (JSON-like: dicts, lists, numbers, strings). What ``asdict`` gives,
    with a list of numbers copied at once: a map's spec holds 40,000 values per hyper-parameter."""
    if isinstance(value, dict):
        return cast(V, {key: _copy(item) for key, item in value.items()})
    if isinstance(value, list):
        if all(type(item) in (int, float, bool, str) for item in value):
            return cast(V, list(value))
        return cast(V, [_copy(item) for item in value])
    return value


_V1_TRANSFORMS = (("grad_noise", "sigma"), ("clip_norm", "max_norm"), ("l2", "l2"))


def _upgrade(data: dict) -> dict:
    """Translate version-1 fields into version 2 (a stored spec without a backend ran on torch)."""
    data.setdefault("backend", STORED_BACKEND)
    if "record_every" in data:
        every = data.pop("record_every")
        data.setdefault("save", "summary" if every == 0 else f"every:{every}")
    events = dict(data.get("events") or {})
    grad_tol = data.pop("grad_tol", None)
    target = data.pop("target_loss", None)
    if grad_tol is not None:
        events.update(grad_tol=grad_tol, stop_on=[*events.get("stop_on", []), "converged"])
    if target is not None:
        events.update(target_loss=target, stop_on=[*events.get("stop_on", []), "target"])
    if events:
        data["events"] = events
    transforms = list(data.get("transforms") or [])
    for kind, key in _V1_TRANSFORMS:
        value = data.pop(kind, None)
        if value not in (None, 0, 0.0):
            transforms.append({"kind": kind, key: value})
    if transforms:
        data["transforms"] = transforms
    return data


def resolve_landscape(text: str, **params: float) -> Landscape:
    """A registered objective by name, or else a user formula parsed safely."""
    if text in LANDSCAPES:
        return get_landscape(text, **params)
    from descent.landscapes.formula import resolve_landscape as resolve_formula

    return resolve_formula(text, **params)


def grid_starts(
    landscape: Landscape, k: int, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """K x K starts over the box of a 2-D landscape (cell centres), row-major in y then x."""
    if landscape.dim != 2:
        raise invalid("starts", f"grid:{k}", "a grid only on 2-D landscapes")
    (x0, x1), (y0, y1) = landscape.bounds
    xs = x0 + (torch.arange(k, dtype=dtype) + 0.5) * (x1 - x0) / k
    ys = y0 + (torch.arange(k, dtype=dtype) + 0.5) * (y1 - y0) / k
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(device)


def run_spec(
    spec: RunSpec,
    progress: Callable[[int, int], None] | None = None,
    *,
    landscape: Landscape | None = None,
    memory_budget: int | None = None,
) -> Trajectory:
    """Build the objective, optimizer, starts, events, probes and batches of ``spec`` and simulate.

    ``landscape``: the spec's objective when the caller has it built already (a cache's); it must
    be what ``spec.build_landscape()`` builds.
    """
    if landscape is None:
        landscape = spec.build_landscape()
    optimizer = spec.build_optimizer(landscape)
    probes = [probe_from_dict(p) for p in spec.probes]
    save = spec.save_at()
    # refuse a run that would not fit before its starts are made (a billion of them would not either)
    count = spec.starts_count(landscape.dim)
    check_memory(optimizer, count, landscape.dim, DTYPES[spec.dtype], spec.steps, save, probes, memory_budget)
    starts = spec.build_starts(landscape)
    batching = Batching.build(
        spec.batch_size, spec.batch_mode, starts.shape[0], getattr(landscape, "data_size", None)
    )
    return simulate(
        landscape,
        optimizer,
        starts,
        spec.steps,
        save=save,
        events=spec.build_events(),
        probes=probes,
        seed=spec.seed,
        batching=batching,
        memory_budget=memory_budget,
        progress=progress,
        spec=spec.to_dict(),
        backend=spec.backend,
        streams=spec.streams,
    )


def _tensor(value: V) -> V | torch.Tensor:
    """A JSON list as a float64 tensor (per-particle values); anything else as it is."""
    return torch.tensor(value, dtype=torch.float64) if isinstance(value, list) else value


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DTYPES",
    "RunSpec",
    "check_number",
    "default_lr",
    "grid_starts",
    "run_spec",
]
