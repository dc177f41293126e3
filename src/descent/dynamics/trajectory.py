"""`Trajectory`: what a simulation recorded, its physics readout and its files (JSON, CSV)."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from descent.landscapes import Landscape
from descent.optim import Optimizer

SCHEMA = "descent.trajectory/1"


@dataclass(eq=False)
class Trajectory:
    """Recorded frames ``steps [T]``, ``positions [T, N, d]``, ``loss [T, N]``, the last displacement
    ``displacement [T, N, d]`` and the physical time step ``time_step [T, N]`` of each frame, plus
    per particle its ``outcomes``, ``outcome_step``, ``stop_step`` (-1: never stopped) and
    ``nearest_minimum``.
    """

    landscape: Landscape
    optimizer: Optimizer
    steps: torch.Tensor
    positions: torch.Tensor
    loss: torch.Tensor
    displacement: torch.Tensor
    time_step: torch.Tensor
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

    # --- physics ----------------------------------------------------------------------------
    @property
    def final_position(self) -> torch.Tensor:
        return self.positions[-1]

    @property
    def final_loss(self) -> torch.Tensor:
        return self.loss[-1]

    @property
    def velocity(self) -> torch.Tensor:
        """Displacement over the physical time step: dx/dt at each frame, ``[T, N, d]``."""
        return self.displacement / self.time_step.unsqueeze(-1)

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
        """Counts of outcomes and the headline numbers (used by the CLI and the Arena)."""
        final = self.final_loss
        finite = final[torch.isfinite(final)]
        return {
            "particles": len(self.outcomes),
            "steps_run": self.steps_run,
            "outcomes": dict(Counter(self.outcomes)),
            "final_loss_min": float(finite.min()) if finite.numel() else math.nan,
            "final_loss_median": float(finite.median()) if finite.numel() else math.nan,
            "interrupted": self.interrupted,
        }

    # --- files ------------------------------------------------------------------------------
    def to_dict(self, max_particles: int = 500, max_frames: int = 2000) -> dict:
        """The ``trajectory.json`` payload; swarms and long runs are decimated evenly (first and last
        frames always kept); per-particle outcomes are kept for every particle."""
        from descent import __version__

        n, t = len(self.outcomes), len(self.steps)
        keep_p = _even_indices(n, max_particles)
        keep_t = _even_indices(t, max_frames)
        kinetic = self.kinetic_energy
        velocity = self.velocity

        def pick(tensor: torch.Tensor) -> list:
            return _finite_list(tensor[keep_t][:, keep_p])

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
            "decimation": {
                "particles": keep_p.tolist() if len(keep_p) < n else "all",
                "frames": "all" if len(keep_t) == t else f"{len(keep_t)} of {t}",
            },
            "steps": self.steps[keep_t].tolist(),
            "positions": pick(self.positions),
            "loss": pick(self.loss),
            "velocity": pick(velocity),
            "kinetic_energy": None if kinetic is None else pick(kinetic),
            "potential_energy": pick(self.loss),
            "total_energy": None if kinetic is None else pick(kinetic + self.loss),
            "particles": [
                {
                    "outcome": o,
                    "outcome_step": int(s),
                    "stop_step": int(st),
                    "nearest_minimum": m,
                    "start": _finite_list(self.positions[0, i]),
                    "final": _finite_list(self.positions[-1, i]),
                    "final_loss": _finite_list(self.loss[-1, i]),
                }
                for i, (o, s, st, m) in enumerate(
                    zip(
                        self.outcomes,
                        self.outcome_step.tolist(),
                        self.stop_step.tolist(),
                        self.nearest_minimum,
                    )
                )
            ],
        }

    def write_json(self, path: str | Path, **kwargs: int) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(**kwargs)))
        return path

    def write_csv(self, path: str | Path, max_particles: int = 500, max_frames: int = 2000) -> Path:
        """One row per (recorded step, particle): step, particle, x0..x{d-1}, loss, speed, outcome."""
        path = Path(path)
        keep_p = _even_indices(len(self.outcomes), max_particles).tolist()
        keep_t = _even_indices(len(self.steps), max_frames).tolist()
        dim = self.positions.shape[-1]
        speed = self.velocity.norm(dim=-1)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "particle", *[f"x{i}" for i in range(dim)], "loss", "speed", "outcome"])
            for ti in keep_t:
                step = int(self.steps[ti])
                for pi in keep_p:
                    writer.writerow(
                        [
                            step,
                            pi,
                            *self.positions[ti, pi].tolist(),
                            float(self.loss[ti, pi]),
                            float(speed[ti, pi]),
                            self.outcomes[pi],
                        ]
                    )
        return path


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
