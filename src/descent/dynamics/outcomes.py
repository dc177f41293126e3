"""Per-particle outcomes (DESIGN.md), first match wins:

``diverged`` (non-finite, or farther than ``DIVERGE_SPANS`` box sizes from the box) >
``minimum:<id>`` (within the capture radius of a known minimum, small gradient, small step) >
``saddle:<id>`` (near a known saddle and stalled) > ``stationary`` (small gradient and step, no known
point near) > ``escaped`` (left the box of a landscape unbounded below) > ``moving``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from descent.landscapes import Landscape

DIVERGE_SPANS = 100.0
DIVERGED, STATIONARY, ESCAPED, MOVING = "diverged", "stationary", "escaped", "moving"


@dataclass(frozen=True)
class Classifier:
    """Vectorised outcome codes for a landscape: code 0 diverged, 1..P known points, then the rest.

    ``labels[code]`` is the outcome string. ``grad_tol``/``step_tol`` define "stalled".
    """

    landscape: Landscape
    grad_tol: float = 1e-3
    step_tol: float = 1e-4

    @property
    def points(self):
        return tuple(p for p in self.landscape.critical_points if p.is_minimum or p.kind == "saddle")

    @property
    def labels(self) -> list[str]:
        named = [f"{'minimum' if p.is_minimum else 'saddle'}:{p.id}" for p in self.points]
        return [DIVERGED, *named, STATIONARY, ESCAPED, MOVING]

    def code(self, label: str) -> int:
        return self.labels.index(label)

    def positions(self, like: torch.Tensor) -> torch.Tensor:
        coords = [p.position for p in self.points] or [[0.0] * self.landscape.dim]
        return torch.tensor(coords, dtype=like.dtype, device=like.device)

    def classify(
        self,
        x: torch.Tensor,
        grad: torch.Tensor,
        step: torch.Tensor,
        centers: torch.Tensor | None = None,
        *,
        diverged: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Outcome codes ``[N]`` for positions ``x``, gradients and last displacements ``step``.

        ``diverged`` (bool ``[N]``): the particles the caller already marked diverged (code 0); the
        caller vouches that every other particle has finite ``x``, ``grad`` and is not `_far`, so those
        checks are skipped (``simulate`` guarantees this after each step: it freezes bad particles).
        """
        n_points = len(self.points)
        labels_moving = n_points + 3
        codes = torch.full((x.shape[0],), labels_moving, dtype=torch.int64, device=x.device)
        stalled = (row_sum(grad * grad) < self.grad_tol**2) & (row_sum(step * step) < self.step_tol**2)
        if diverged is None:
            finite = torch.isfinite(x).all(dim=1) & torch.isfinite(grad).all(dim=1)
            stalled &= finite
        if not self.landscape.bounded_below:
            out = ~self.landscape.inside(x)
            codes = torch.where(out if diverged is not None else out & finite, n_points + 2, codes)
        codes = torch.where(stalled, n_points + 1, codes)
        if n_points:
            centers = self.positions(x) if centers is None else centers
            points = x if diverged is not None else torch.nan_to_num(x)
            nearest_distance, nearest = _distances(points, centers).min(dim=1)  # [N, P] -> [N]
            near = stalled & (nearest_distance < self.landscape.radius())
            codes = torch.where(near, nearest + 1, codes)
        if diverged is not None:
            return codes.masked_fill(diverged, 0)
        return codes.masked_fill(~finite | self._far(x), 0)

    def far_limits(self) -> tuple[list[float], list[float]]:
        """The box widened by ``DIVERGE_SPANS`` box sizes on each side, as (low, high) per coordinate."""
        low = [b[0] - DIVERGE_SPANS * (b[1] - b[0]) for b in self.landscape.bounds]
        high = [b[1] + DIVERGE_SPANS * (b[1] - b[0]) for b in self.landscape.bounds]
        return low, high

    def _far(self, x: torch.Tensor, limits: tuple[list[float], list[float]] | None = None) -> torch.Tensor:
        """[N]: is any coordinate beyond the widened box (column by column: on the CPU several times
        faster than a comparison over ``[N, d]`` reduced along d)."""
        low, high = self.far_limits() if limits is None else limits
        far = (x[:, 0] < low[0]) | (x[:, 0] > high[0])
        for j in range(1, x.shape[1]):
            far |= (x[:, j] < low[j]) | (x[:, j] > high[j])
        return far

    def nearest_minimum(self, x: torch.Tensor) -> list[str | None]:
        """Id of the nearest known minimum for each particle (None when the landscape knows none)."""
        minima = self.landscape.minima
        if not minima:
            return [None] * x.shape[0]
        centers = torch.tensor([p.position for p in minima], dtype=x.dtype, device=x.device)
        index = torch.cdist(torch.nan_to_num(x), centers).argmin(dim=1).tolist()
        return [minima[i].id for i in index]


def row_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over the last axis of ``[N, d]``: for small d a loop over columns (``sum(dim=1)`` over a
    short inner axis is about 30x slower on the CPU)."""
    if t.shape[1] > 8:
        return t.sum(dim=1)
    total = t[:, 0]
    for j in range(1, t.shape[1]):
        total = total + t[:, j]
    return total


def _distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[N, P]`` computed directly, sqrt(sum_j (x_j - c_j)^2): exact to rounding,
    unlike `torch.cdist`'s default |x|^2 - 2 x.c + |c|^2 (taken for N > 25), and faster for the few
    known points of a landscape: cdist's direct kernel on the CPU (about 3x), one pass per coordinate
    over ``[N, P]`` on CUDA (where cdist's direct kernel is about 30x slower than this).
    """
    if x.device.type == "cpu":
        return torch.cdist(x, centers, compute_mode="donot_use_mm_for_euclid_dist")
    squared = (x[:, :1] - centers[:, 0]).square()
    for j in range(1, x.shape[1]):
        squared = squared + (x[:, j : j + 1] - centers[:, j]).square()
    return squared.sqrt()
