"""An L2 barrier on the map: where the minima of ``U_lambda = U + lambda/2 |w - c|^2`` are, where they
were without the term (lambda = 0), U itself (dotted contours over the map of U_lambda) and how each
minimum moved as lambda grew, for a regularised landscape
(`descent.objectives.regularized`: the registered ``NAME-l2`` landscapes, whose parameters ``l2`` and
``center`` the parameters box sets).

Every number comes from the objective module: the minima of ``U_lambda`` are the landscape's own
(`regularized` found them), those of U the base landscape's, and the paths are
`regularization_path` of the base from lambda = 0 to the landscape's lambda (``PATH_POINTS`` values),
continued up to ``search_top`` (``SEARCH_POINTS`` more) to tell at which lambda a minimum vanishes (it
merges with a saddle: the path's first NaN, said as the two lambdas around it).

>>> from descent.landscapes import get_landscape
>>> shown = barrier(get_landscape("double-well-l2", l2=0.5))
>>> [(m, round(p[0], 3)) for m, p in shown.minima]
[('left', -0.889), ('right', 0.976)]
>>> [round(v, 2) for v in shown.vanishes["left"]]
[2.64, 2.88]
>>> barrier(get_landscape("double-well")) is None
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from descent.landscapes import Landscape
from descent.objectives.regularized import RegularizationPath, RegularizedLandscape, regularization_path
from descent.plots.static import landscape_grid

PATH_POINTS = 41  # lambdas from 0 to the landscape's own: the drawn path of each minimum
SEARCH_POINTS = 40  # lambdas above it, up to `search_top`: where a minimum vanishes
SEARCH_LOWEST = 10.0  # the search goes up to max(SEARCH_LOWEST, SEARCH_FACTOR * lambda)
SEARCH_FACTOR = 4.0
BASE_STYLE = {"global_min": "star-open", "local_min": "circle-open"}
PATH_COLOR = "#ff8fd0"
CONTOUR_RESOLUTION = 60  # U without the term: a grid of this many points a side


@dataclass(frozen=True)
class Barrier:
    """What the page shows of a regularised landscape (module docstring). ``path``: the base's minima
    followed over ``path.lambdas`` (the first ``PATH_POINTS`` from 0 to ``strength``, then up to
    ``search_top``); ``vanishes[id]``: the two lambdas between which minimum ``id`` of U is gone."""

    strength: float
    center: tuple[float, ...]
    minima: list[tuple[str, tuple[float, ...]]]
    base_minima: list[tuple[str, str, tuple[float, ...]]]
    path: RegularizationPath
    search_top: float
    vanishes: dict[str, tuple[float, float]]

    def drawn(self, point: str) -> np.ndarray:
        """Minimum ``point``'s path from lambda = 0 to the landscape's lambda ``[PATH_POINTS, 2]``."""
        return self.path.positions[point][:PATH_POINTS]


def lambdas(strength: float) -> tuple[np.ndarray, float]:
    """The lambdas the paths are computed at (drawn, then searched) and the top of the search."""
    top = max(SEARCH_LOWEST, SEARCH_FACTOR * strength)
    drawn = np.linspace(0.0, strength, PATH_POINTS)
    return np.concatenate([drawn, np.linspace(strength, top, SEARCH_POINTS + 1)[1:]]), top


@lru_cache(maxsize=32)  # as many as the runner's landscape cache holds: a shown landscape keeps its barrier
def barrier(landscape: Landscape) -> Barrier | None:
    """The barrier of ``landscape`` when it is a regularised 2-D one (else None); cached per landscape."""
    if not isinstance(landscape, RegularizedLandscape) or landscape.base is None or landscape.dim != 2:
        return None
    base = landscape.base
    grid, top = lambdas(landscape.strength)
    path = regularization_path(base, grid, landscape.center)
    vanishes = {}
    for point, positions in path.positions.items():
        gone = np.flatnonzero(np.isnan(positions[:, 0]))
        if gone.size:
            k = int(gone[0])
            vanishes[point] = (float(grid[max(k - 1, 0)]), float(grid[k]))
    return Barrier(
        strength=landscape.strength,
        center=tuple(landscape.center),
        minima=[(p.id, p.position) for p in landscape.minima],
        base_minima=[(p.id, p.kind, p.position) for p in base.minima if p.smooth and not p.on_boundary],
        path=path,
        search_top=top,
        vanishes=vanishes,
    )


# --- on the map ------------------------------------------------------------------------------------------
def traces(landscape: Landscape) -> list[dict[str, Any]]:
    """The map's traces of the barrier (none for another landscape): each minimum of U's path as
    lambda grows from 0 to the landscape's lambda, U's minima (hollow markers) and the bowl's centre.
    The minima of U_lambda are the landscape's known points, drawn with the others."""
    shown = barrier(landscape)
    if shown is None:
        return []
    data: list[dict[str, Any]] = [_without(landscape.base)]  # type: ignore[attr-defined]
    grid = shown.path.lambdas[:PATH_POINTS]
    for i, (point, _, _) in enumerate(shown.base_minima):
        xy = shown.drawn(point)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "minima's paths, λ from 0",
                "uid": f"l2-path-{point}",
                "legendgroup": "l2-path",
                "showlegend": i == 0,
                "x": [_num(v) for v in xy[:, 0]],
                "y": [_num(v) for v in xy[:, 1]],
                "customdata": grid.tolist(),
                "line": {"color": PATH_COLOR, "width": 2.5, "dash": "dash"},
                "hovertemplate": f"{point} at λ = %{{customdata:.4g}}<br>(%{{x:.4f}}, %{{y:.4f}})"
                "<extra></extra>",
            }
        )
    if shown.base_minima:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "minima without L2 (λ = 0)",
                "uid": "l2-base-minima",
                "x": [p[0] for _, _, p in shown.base_minima],
                "y": [p[1] for _, _, p in shown.base_minima],
                "text": [point for point, _, _ in shown.base_minima],
                "marker": {
                    "symbol": [BASE_STYLE.get(kind, "circle-open") for _, kind, _ in shown.base_minima],
                    "size": 14,
                    "color": PATH_COLOR,
                    "line": {"width": 2},
                },
                "hovertemplate": "%{text} without the L2 term (λ = 0)<br>(%{x:.4f}, %{y:.4f})<extra></extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "L2 centre c",
            "uid": "l2-center",
            "showlegend": False,
            "x": [shown.center[0]],
            "y": [shown.center[1]],
            "marker": {"symbol": "cross-thin-open", "size": 14, "color": PATH_COLOR, "line": {"width": 2}},
            "hovertemplate": "centre c of the L2 bowl (%{x:.4g}, %{y:.4g})<extra></extra>",
        }
    )
    return data


def _without(base: Landscape) -> dict[str, Any]:
    """U without the term, as dotted contour lines over the map of U_lambda (levels at quantiles of U on
    the grid, as the map's own colours, so shallow and steep parts both show)."""
    xs, ys, values = landscape_grid(base, CONTOUR_RESOLUTION)
    finite = np.isfinite(values)
    ranks = np.full(values.shape, np.nan)
    order = np.argsort(values[finite], kind="stable")
    ranks[finite] = np.argsort(order, kind="stable") / max(order.size - 1, 1)
    return {
        "type": "contour",
        "name": "U without L2 (dotted contours)",
        "uid": "l2-without",
        "x": xs.tolist(),
        "y": ys.tolist(),
        "z": [[_num(v) for v in row] for row in ranks],
        "contours": {"coloring": "lines", "start": 0.04, "end": 0.96, "size": 0.08},
        "line": {"color": PATH_COLOR, "width": 1, "dash": "dot"},
        "colorscale": [[0, PATH_COLOR], [1, PATH_COLOR]],
        "showscale": False,
        "showlegend": True,
        "opacity": 0.55,
        "hoverinfo": "skip",
    }


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


# --- in words --------------------------------------------------------------------------------------------
def _at(position: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in position) + ")"


def text(landscape: Landscape) -> str:
    """One line: lambda and c, where the minima are at this lambda and at lambda = 0, and at which
    lambda each minimum of U vanishes (or that none does up to the search's top). "" for a landscape
    without a barrier."""
    shown = barrier(landscape)
    if shown is None:
        return ""
    now = ", ".join(f"{point} {_at(p)}" for point, p in shown.minima) or "none"
    before = ", ".join(f"{point} {_at(p)}" for point, _, p in shown.base_minima) or "none"
    parts = [
        f"L2 barrier λ/2·|w − c|² with λ = {shown.strength:.4g}, c = {_at(shown.center)}: "
        f"minima at this λ: {now}; without it (λ = 0): {before}."
    ]
    for point, _, _ in shown.base_minima:
        if point in shown.vanishes:
            low, high = shown.vanishes[point]
            tense = "vanished" if high <= shown.strength else "vanishes"
            parts.append(f"{point} {tense} (merges with a saddle) between λ = {low:.4g} and {high:.4g}.")
    if shown.base_minima and not shown.vanishes:
        parts.append(f"No minimum vanishes for λ up to {shown.search_top:.4g}.")
    parts.append(
        "On the map: dotted contours, U without the term"
        + (
            "; dashed, each minimum's path as λ grows from 0; hollow markers, U's minima."
            if shown.base_minima
            else "."
        )
    )
    return " ".join(parts)
