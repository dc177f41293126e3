"""`Trajectory`: what a simulation saved, its physics readout and its files (JSON, CSV).

Files stay small: ``trajectory.json`` and ``trajectory.csv`` are decimated (evenly spaced particles and
frames, first and last kept) to stay under ``max_bytes`` (50 MB unless asked otherwise); the outcome
counts, event counts and each particle's outcome code cover every particle when they fit.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from descent.optim.schedules import Constant

SCHEMA = "descent.trajectory/2"
MAX_FILE_BYTES = 50_000_000
JSON_NUMBER_BYTES = 22  # a float64 in JSON with its separator, as written


@dataclass(eq=False)
class Trajectory:
    """Saved frames ``steps [T]``, ``positions [T, N, d]``, ``loss [T, N]``, the last displacement
    ``displacement [T, N, d]``; the final state of every particle (``final_position``, ``final_loss``,
    ``final_update``), the running minimum of its loss, the first step of each event (``events``), its
    ``outcomes`` with ``outcome_step``, ``stop_step`` (-1: never stopped) and ``nearest_minimum``, and
    each probe's records (``probes[name][output]``: ``[calls, N, ...]``, with ``probes[name]["steps"]``).
    """

    landscape: Any
    optimizer: Any
    steps: torch.Tensor
    positions: torch.Tensor
    loss: torch.Tensor
    displacement: torch.Tensor
    outcomes: list[str]
    outcome_step: torch.Tensor
    stop_step: torch.Tensor
    nearest_minimum: list[str | None]
    steps_run: int
    interrupted: bool
    seed: int
    dtype: str
    device: str
    spec: dict | None = None
    time_step: torch.Tensor | None = None
    events: dict[str, torch.Tensor] = field(default_factory=dict)
    event_thresholds: dict = field(default_factory=dict)
    final_position: torch.Tensor | None = None
    final_loss: torch.Tensor | None = None
    final_update: torch.Tensor | None = None
    min_loss: torch.Tensor | None = None
    min_loss_step: torch.Tensor | None = None
    probes: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    save: Any = None
    backend: str = "torch"  # the backend that ran: "torch" or "kernel"
    compile_seconds: float | None = None  # the kernel backend's compile (or disk-cache load) time
    fallback: str | None = None  # why backend "auto" ran torch: what the kernel does not support

    def __post_init__(self) -> None:
        if self.final_position is None:
            self.final_position = self.positions[-1]
        if self.final_loss is None:
            self.final_loss = self.loss[-1]
        if self.time_step is None:
            self.time_step = self._time_steps()

    @property
    def objective(self):
        return self.landscape

    # --- physics ----------------------------------------------------------------------------
    def _time_steps(self) -> torch.Tensor:
        """``[T, N]``: the rule's time step for the step that led to each frame (the first: step 0)."""
        rule, n, t = self.optimizer.rule, len(self.outcomes), len(self.steps)

        def at(k: int) -> torch.Tensor:
            h = rule.time_step(self.optimizer.hp_at(max(k - 1, 0)))
            h = torch.as_tensor(h, dtype=self.positions.dtype, device="cpu").reshape(-1)
            return h.expand(n) if h.numel() == 1 else h

        if isinstance(self.optimizer.schedule, Constant):  # one time step for every frame
            return at(0).expand(t, n)
        return torch.stack([at(k) for k in self.steps.tolist()]) if t else torch.empty(0, n)

    @property
    def velocity(self) -> torch.Tensor:
        """Displacement over the physical time step: dx/dt at each frame, ``[T, N, d]``."""
        step = self.time_step
        assert step is not None  # __post_init__ fills it
        return self.displacement / step.unsqueeze(-1)

    def _velocity_at(self, frames: torch.Tensor, particles: torch.Tensor) -> torch.Tensor:
        """:attr:`velocity` at some frames and particles only ``[F, P, d]``."""
        displacement = _kept(self.displacement, frames, particles)
        step = self.time_step
        assert step is not None  # __post_init__ fills it
        if step.shape[1] and step.stride(1) == 0:  # one time step for all particles (a broadcast view)
            step = step[:, :1].index_select(0, frames).expand(-1, len(particles))
        else:
            step = _kept(step, frames, particles)
        return displacement / step.unsqueeze(-1)

    @property
    def has_inertia(self) -> bool:
        return self.optimizer.rule.physics == "inertial"

    @property
    def kinetic_energy(self) -> torch.Tensor | None:
        """|v|^2/2 with unit mass, for the heavy-ball family; None for rules without inertia."""
        if not self.has_inertia:
            return None
        return 0.5 * (self.velocity**2).sum(dim=-1)

    @property
    def potential_energy(self) -> torch.Tensor:
        return self.loss

    @property
    def total_energy(self) -> torch.Tensor | None:
        kinetic = self.kinetic_energy
        return None if kinetic is None else kinetic + self.loss

    def summary(self) -> dict:
        """Outcome shares and headline numbers (used by the CLI and the Arena)."""
        final = self.final_loss
        assert final is not None  # __post_init__ fills it
        finite = final[torch.isfinite(final)]
        counts = Counter(self.outcomes)
        n = len(self.outcomes)
        return {
            "particles": n,
            "steps_run": self.steps_run,
            "outcomes": dict(counts),
            "shares": {label: count / n for label, count in counts.items()} if n else {},
            "events": {name: int((t >= 0).sum()) for name, t in self.events.items()},
            "final_loss_min": float(finite.min()) if finite.numel() else math.nan,
            "final_loss_median": float(finite.median()) if finite.numel() else math.nan,
            "interrupted": self.interrupted,
            "backend": self.backend,
            "fallback": self.fallback,
        }

    # --- files ------------------------------------------------------------------------------
    def _decimation(self, max_bytes: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(kept particles, kept frames, per-particle arrays for all) so the JSON stays under max_bytes."""
        n, t, d = len(self.outcomes), len(self.steps), self.positions.shape[-1]
        per_particle = 12 * JSON_NUMBER_BYTES  # outcome code, steps, final state, ...
        everyone = n * per_particle <= max_bytes // 4
        room = max_bytes // 2 if everyone else 3 * max_bytes // 4
        width = (2 * d + 4) * JSON_NUMBER_BYTES  # position, velocity, loss, energies
        cells = max(room // width, 4)
        keep_p = _even_indices(n, max(1, min(n, 500, cells // 2)))
        keep_t = _even_indices(t, max(2, min(t, 2000, cells // max(len(keep_p), 1))))
        return keep_p, keep_t, everyone

    def to_dict(self, max_bytes: int = MAX_FILE_BYTES) -> dict:
        """The ``trajectory.json`` payload (module docstring)."""
        from descent import __version__

        keep_p, keep_t, everyone = self._decimation(max_bytes)
        n, t = len(self.outcomes), len(self.steps)
        final_position, final_loss = self.final_position, self.final_loss
        assert final_position is not None and final_loss is not None  # __post_init__ fills them
        velocity = self._velocity_at(keep_t, keep_p)  # only the kept frames: no copy of the whole run
        loss = _kept(self.loss, keep_t, keep_p)
        kinetic = 0.5 * (velocity**2).sum(dim=-1) if self.has_inertia else None

        def pick(tensor: torch.Tensor) -> list:
            return _finite_list(_kept(tensor, keep_t, keep_p))

        labels = sorted(set(self.outcomes))
        codes = {label: i for i, label in enumerate(labels)}
        rows = range(n) if everyone else keep_p.tolist()
        return {
            "schema": SCHEMA,
            "package_version": __version__,
            "spec": self.spec,
            "landscape": self.landscape.describe(),
            "optimizer": self.optimizer.to_dict(),
            "dtype": self.dtype,
            "device": self.device,
            "seed": self.seed,
            "steps_run": self.steps_run,
            "interrupted": self.interrupted,
            "summary": self.summary(),
            "events": self.event_thresholds,
            "decimation": {
                "particles": "all" if len(keep_p) == n else keep_p.tolist(),
                "frames": "all" if len(keep_t) == t else f"{len(keep_t)} of {t}",
                "per_particle": "all" if everyone else "the kept particles",
            },
            "steps": self.steps[keep_t].tolist(),
            "positions": pick(self.positions),
            "loss": _finite_list(loss),
            "velocity": _finite_list(velocity),
            "kinetic_energy": None if kinetic is None else _finite_list(kinetic),
            "potential_energy": _finite_list(loss),
            "total_energy": None if kinetic is None else _finite_list(kinetic + loss),
            "outcome_labels": labels,
            "particles": {
                "index": list(rows),
                "outcome": [codes[self.outcomes[i]] for i in rows],
                "outcome_step": self.outcome_step[list(rows)].tolist(),
                "stop_step": self.stop_step[list(rows)].tolist(),
                "nearest_minimum": [self.nearest_minimum[i] for i in rows],
                "start": _finite_list(self.positions[0, list(rows)]),
                "final": _finite_list(final_position[list(rows)]),
                "final_loss": _finite_list(final_loss[list(rows)]),
                "events": {name: s[list(rows)].tolist() for name, s in self.events.items()},
            },
        }

    def write_json(self, path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(max_bytes)))
        return path

    def write_csv(self, path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> Path:
        """One row per (saved step, particle): step, particle, x0..x{d-1}, loss, speed, outcome, and
        ``lr``, the learned rate, when the ``learned_rate`` probe ran (empty at step 0 and at a step it
        skipped)."""
        path = Path(path)
        keep_p, keep_t, _ = self._decimation(max_bytes)
        dim = self.positions.shape[-1]
        speed = self._velocity_at(keep_t, keep_p).norm(dim=-1)  # [kept frames, kept particles]
        learned = self.probes.get("learned_rate")
        rates = {}  # step -> the probe's call (none at step 0: no rate is learned before a step)
        if learned is not None:
            rates = {int(k): i for i, k in enumerate(learned["steps"].tolist()) if k > 0}
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            header = ["step", "particle", *[f"x{i}" for i in range(dim)], "loss", "speed", "outcome"]
            writer.writerow(header + (["lr"] if learned is not None else []))
            for a, ti in enumerate(keep_t.tolist()):
                step = int(self.steps[ti])
                for b, pi in enumerate(keep_p.tolist()):
                    row = [
                        step,
                        pi,
                        *self.positions[ti, pi].tolist(),
                        float(self.loss[ti, pi]),
                        float(speed[a, b]),
                        self.outcomes[pi],
                    ]
                    if learned is not None:
                        row.append(float(learned["rate"][rates[step], pi]) if step in rates else "")
                    writer.writerow(row)
        return path


def nearest_minimum(objective, x: torch.Tensor) -> list[str | None]:
    """Id of the nearest known minimum for each particle (None when the objective knows none)."""
    minima = objective.minima
    if not minima:
        return [None] * x.shape[0]
    centers = torch.tensor([p.position for p in minima], dtype=x.dtype, device=x.device)
    index = torch.cdist(torch.nan_to_num(x), centers).argmin(dim=1).tolist()
    return [minima[i].id for i in index]


def _kept(tensor: torch.Tensor, frames: torch.Tensor, particles: torch.Tensor) -> torch.Tensor:
    """``tensor[frames][:, particles]`` without copying every particle of the kept frames first."""
    return tensor.index_select(1, particles).index_select(0, frames)


def _even_indices(total: int, limit: int) -> torch.Tensor:
    """At most ``limit`` evenly spaced indices of ``range(total)``, first and last included."""
    if total <= limit:
        return torch.arange(total)
    return torch.unique(torch.linspace(0, total - 1, limit).round().long())


def _finite_list(tensor: torch.Tensor):
    """Nested list with non-finite values as None (valid JSON)."""
    values = tensor.tolist()

    def clean(v):
        if isinstance(v, list):
            return [clean(e) for e in v]
        return v if math.isfinite(v) else None

    return clean(values)
