"""Plotly figures of a run, as plain dicts (no validation pass, so they build in milliseconds).

Big arrays travel as plotly.js typed-array specs (``{"dtype": "f8", "bdata": ...}``). Every figure
is drawn in its final state (full trails, balls at their last position); the browser's player
(assets/arena.js) then rewinds it and plays the run back frame by frame, using the trace indices listed
in ``layout.meta``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from descent.landscapes import Landscape
from descent.plots.static import landscape_grid

COLORS = ("#ff2d55", "#ffd60a", "#30d158", "#bf5af2", "#0a84ff", "#ff9f0a")
ARROWS = {  # kind -> (label, colour)
    "force": ("−lr·∇U (force step)", "#ff9f0a"),
    "coast": ("inertia (coast, no force)", "#64d2ff"),
    "update": ("update taken", "#ffffff"),
}
POINT_STYLE = {
    "global_min": ("star", "#ffd60a", 16),
    "local_min": ("circle", "#ffffff", 11),
    "saddle": ("x", "#ff453a", 11),
    "max": ("triangle-up", "#000000", 11),
}
FONT = {"family": "Inter, system-ui, -apple-system, Segoe UI, sans-serif", "size": 12, "color": "#d8dee9"}
PAPER = "#161b22"
PLOT = "#0d1117"
GRID = "#2b3240"
MAP_RESOLUTION = 200
HOVER_RESOLUTION = 60  # the invisible hover layer (clicks are placed exactly by the player)
COLORSCALE = "Viridis"
SURFACE_RESOLUTION = 70


def typed(values: Any, dtype: str = "f8") -> dict[str, str]:
    """A plotly.js typed-array spec of a flat numeric array."""
    array = np.ascontiguousarray(
        np.asarray(values, dtype=np.float64 if dtype == "f8" else np.float32).ravel()
    )
    return {"dtype": dtype, "bdata": base64.b64encode(array.tobytes()).decode("ascii")}


def color(index: int) -> str:
    return COLORS[index % len(COLORS)]


# --- the landscape, cached per landscape ------------------------------------------------------------
@lru_cache(maxsize=16)
def _grid(landscape: Landscape, resolution: int):
    xs, ys, values = landscape_grid(landscape, resolution)
    finite = np.isfinite(values)
    fill = np.nanmax(np.where(finite, values, -np.inf)) if finite.any() else 0.0
    values = np.where(finite, values, fill)
    return xs, ys, values


def _rank(values: np.ndarray) -> tuple[np.ndarray, list[float], list[str]]:
    """Colour by quantile of U (so shallow and steep parts both show); ticks give U at quantiles."""
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")
    ranks = np.empty_like(flat)
    ranks[order] = np.linspace(0.0, 1.0, flat.size)
    ticks = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    labels = [f"{v:.3g}" for v in np.quantile(flat, ticks)]
    return ranks.reshape(values.shape), ticks, labels


def _axis(title: str, bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    axis: dict[str, Any] = {
        "title": {"text": title},
        "gridcolor": GRID,
        "zeroline": False,
        "color": "#aab4c3",
    }
    if bounds is not None:
        axis["range"] = list(bounds)
    return axis


#: A legend above the plot area, in one line where it fits (never over the plot).
LEGEND_ABOVE = {
    "orientation": "h",
    "x": 1,
    "xanchor": "right",
    "y": 1.0,
    "yanchor": "bottom",
    "bgcolor": "rgba(0,0,0,0)",
    "font": {"size": 11},
}


def _layout(**extra: Any) -> dict[str, Any]:
    layout = {
        "paper_bgcolor": PAPER,
        "plot_bgcolor": PLOT,
        "font": FONT,
        "margin": {"l": 50, "r": 16, "t": 36, "b": 42},
        "hovermode": "closest",
        "legend": {
            "orientation": "h",
            "y": 1.02,
            "yanchor": "bottom",
            "x": 0,
            "bgcolor": "rgba(0,0,0,0)",
            "font": {"size": 12},
        },
    }
    layout.update(extra)
    return layout


def _points_trace(landscape: Landscape) -> dict[str, Any] | None:
    points = landscape.critical_points
    if not points:
        return None
    return {
        "type": "scatter",
        "mode": "markers+text",
        "name": "known points",
        "uid": "known-points",
        "showlegend": False,
        "x": [p.position[0] for p in points],
        "y": [p.position[1] for p in points],
        "text": [p.id for p in points],
        "textposition": "top center",
        "textfont": {"color": "#ffffff", "size": 11},
        "marker": {
            "symbol": [POINT_STYLE[p.kind][0] for p in points],
            "color": [POINT_STYLE[p.kind][1] for p in points],
            "size": [POINT_STYLE[p.kind][2] for p in points],
            "line": {"color": "#000", "width": 1},
        },
        "customdata": [p.kind.replace("_", " ") for p in points],
        "hovertemplate": "%{text}: %{customdata}<br>(%{x:.3f}, %{y:.3f})<extra></extra>",
    }


def _hover_layer(landscape: Landscape) -> dict[str, Any]:
    """An invisible heatmap over the map: U under the cursor, clicks anywhere, and the colour bar."""
    xs, ys, values = _grid(landscape, HOVER_RESOLUTION)
    ranks, ticks, labels = _rank(values)
    return {
        "type": "heatmap",
        "name": "U",
        "x": typed(xs),
        "y": typed(ys),
        "z": {**typed(ranks, "f4"), "shape": f"{len(ys)}, {len(xs)}"},
        "customdata": {**typed(values, "f4"), "shape": f"{len(ys)}, {len(xs)}"},
        "colorscale": COLORSCALE,
        "opacity": 0,
        "showlegend": False,
        "zmin": 0,
        "zmax": 1,
        "colorbar": {
            "title": {"text": "U", "side": "right"},
            "tickvals": ticks,
            "ticktext": labels,
            "thickness": 12,
            "len": 0.9,
            "outlinewidth": 0,
        },
        "hovertemplate": "x %{x:.3f}, y %{y:.3f}<br>U %{customdata:.4g}<br>click: drop the ball here"
        "<extra></extra>",
    }


def landscape_png(landscape: Landscape, pixels: int = 720) -> bytes:
    """The map's background: filled contours of U at quantile-spaced levels (so shallow and steep parts
    both show) with thin contour lines, exactly covering the landscape's box. Drawn once per landscape
    and served as an image, so redrawing a trajectory never redraws the contours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys, values = _grid(landscape, MAP_RESOLUTION)
    (x0, x1), (y0, y1) = landscape.bounds
    aspect = (y1 - y0) / (x1 - x0)
    width = pixels
    height = int(min(max(pixels * aspect, 240), 1200))
    ranks, _, _ = _rank(values)
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    levels = np.linspace(0.0, 1.0, 25)
    ax.contourf(xs, ys, ranks, levels=levels, cmap="viridis")
    ax.contour(xs, ys, ranks, levels=levels, colors="k", linewidths=0.5, alpha=0.35)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def landscape_token(text: str, params: dict[str, float]) -> str:
    raw = json.dumps([text, params], sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_landscape_token(token: str) -> tuple[str, dict[str, float]]:
    text, params = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    if not isinstance(text, str) or not isinstance(params, dict):
        raise ValueError("bad landscape token")
    return text, params


# --- the map ---------------------------------------------------------------------------------------
def map_figure(
    landscape: Landscape,
    racers: list[dict[str, Any]],
    run_id: str,
    arrows: list[str] | None,
    swarm: dict[str, Any] | None,
    start: list[float],
    ghost: bool = True,
    background: str | None = None,
    arrow_labels: dict[str, str] | None = None,
    marks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The 2-D contour map with, per racer, its full path (faint), its trail and its ball; the update
    arrows of racer 0 (``arrow_labels``: legend texts other than `ARROWS`'); a swarm's balls; ``marks``:
    the landscape's own traces under the paths (an L2 barrier's, `descent.arena.barrier`).
    ``racers``: dicts with ``label``, ``color``, ``x``, ``y``."""
    data: list[dict[str, Any]] = [_hover_layer(landscape), *(marks or [])]
    points = _points_trace(landscape)
    if points:
        data.append(points)
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "start",
            "showlegend": False,
            "x": [start[0]],
            "y": [start[1]],
            "hovertemplate": "start (%{x:.3f}, %{y:.3f})<extra></extra>",
            "marker": {"symbol": "circle-open", "size": 16, "color": "#ffffff", "line": {"width": 2}},
        }
    )
    meta: dict[str, Any] = {"run": run_id, "ghost": [], "trail": [], "ball": [], "arrows": {}, "swarm": None}
    for i, racer in enumerate(racers):
        group = f"r{i}"
        if ghost:
            meta["ghost"].append(len(data))
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": typed(racer["x"], "f4"),
                    "y": typed(racer["y"], "f4"),
                    "name": racer["label"] + " (path)",
                    "uid": f"ghost-{i}",  # the player finds the trace's drawing by it (assets/arena.js)
                    "legendgroup": group,
                    "showlegend": False,
                    "hoverinfo": "skip",
                    "opacity": 0.45,
                    "line": {"color": racer["color"], "width": 1.2, "dash": "dot"},
                }
            )
        meta["trail"].append(len(data))
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": typed(racer["x"]),
                "y": typed(racer["y"]),
                "name": racer["label"],
                "uid": f"trail-{i}",
                "legendgroup": group,
                "showlegend": False,  # the banner and the leaderboard name the racers by colour
                "hoverinfo": "skip",
                "line": {"color": racer["color"], "width": 2.6},
            }
        )
        meta["ball"].append(len(data))
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [racer["x"][-1]],
                "y": [racer["y"][-1]],
                "name": racer["label"] + " (ball)",
                "uid": f"ball-{i}",
                "legendgroup": group,
                "showlegend": False,
                "hovertemplate": racer["label"] + "<br>(%{x:.4f}, %{y:.4f})<extra></extra>",
                "marker": {"size": 15, "color": racer["color"], "line": {"color": "#ffffff", "width": 2}},
            }
        )
    if arrows:
        x_end, y_end = (racers[0]["x"][-1], racers[0]["y"][-1]) if racers else (start[0], start[1])
        for kind in arrows:
            meta["arrows"][kind] = len(data)
            if kind == "lookahead":
                data.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": "Nesterov look-ahead",
                        "uid": "arrow-lookahead",
                        "legendgroup": "arrows",
                        "x": [None],
                        "y": [None],
                        "hoverinfo": "skip",
                        "marker": {
                            "symbol": "circle-x-open",
                            "size": 13,
                            "color": "#64d2ff",
                            "line": {"width": 2},
                        },
                    }
                )
                continue
            label, colour = ARROWS[kind]
            label = (arrow_labels or {}).get(kind, label)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": label,
                    "uid": f"arrow-{kind}",
                    "legendgroup": "arrows",
                    "x": [x_end, x_end],
                    "y": [y_end, y_end],
                    "hoverinfo": "skip",
                    "line": {"color": colour, "width": 3},
                    "marker": {
                        "symbol": ["circle", "arrow"],
                        "size": [0, 13],
                        "angleref": "previous",
                        "color": colour,
                    },
                }
            )
    if swarm is not None:
        meta["swarm"] = len(data)
        data.append(
            {
                "type": "scattergl",
                "mode": "markers",
                "name": f"{swarm['n']} balls",
                "x": typed(swarm["x"], "f4"),
                "y": typed(swarm["y"], "f4"),
                "hoverinfo": "skip",
                "marker": {
                    "size": 5,
                    "color": swarm["color"],
                    "opacity": 0.75,
                    "line": {"width": 0.5, "color": "#000"},
                },
            }
        )
    (x0, x1), (y0, y1) = landscape.bounds
    images = background_images(landscape, background)
    layout = _layout(
        xaxis={**_axis("x", (x0, x1)), "showgrid": False},
        yaxis={**_axis("y", (y0, y1)), "showgrid": False},
        uirevision=_landscape_revision(landscape),
        images=images,
        meta=meta,
        clickmode="event",
    )
    # one line above the plot: a horizontal legend would stack a group's entries
    layout["legend"] = {**layout["legend"], "traceorder": "normal", "font": {"size": 11}}
    return {"data": data, "layout": layout}


def background_images(landscape: Landscape, background: str | None) -> list[dict[str, Any]]:
    """The map's contour image (``background``: its URL) laid over the landscape's box, under the data."""
    if not background:
        return []
    (x0, x1), (y0, y1) = landscape.bounds
    return [
        {
            "source": background,
            "xref": "x",
            "yref": "y",
            "x": x0,
            "y": y1,
            "sizex": x1 - x0,
            "sizey": y1 - y0,
            "sizing": "stretch",
            "layer": "below",
            "xanchor": "left",
            "yanchor": "top",
        }
    ]


def map_key(figure: dict[str, Any]) -> str:
    """A digest of the map figure without what a run changes (the points of its paths, balls, arrows
    and swarm, the racers' names, ``meta.run``): figures with the same key differ only by their run, so
    the player can put a new run into the figure the page already shows instead of drawing a new one."""
    meta = figure["layout"]["meta"]
    named = {*meta["ghost"], *meta["trail"], *meta["ball"]}  # names and hover texts hold the labels
    moving = {*named, *meta["arrows"].values(), *([] if meta["swarm"] is None else [meta["swarm"]])}

    def skeleton(i: int, trace: dict[str, Any]) -> dict[str, Any]:
        drop = ("x", "y", "name", "hovertemplate") if i in named else ("x", "y") if i in moving else ()
        return {k: v for k, v in trace.items() if k not in drop}

    data = [skeleton(i, trace) for i, trace in enumerate(figure["data"])]
    layout = {**figure["layout"], "meta": {k: v for k, v in meta.items() if k not in ("run", "key")}}
    text = json.dumps({"data": data, "layout": layout}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _landscape_revision(landscape: Landscape) -> str:
    return f"{landscape.name}:{landscape.formula}:{sorted(landscape.params.items())}"


# --- the 3-D surface -------------------------------------------------------------------------------
def surface_figure(
    landscape: Landscape, racers: list[dict[str, Any]], run_id: str, swarm: dict[str, Any] | None
) -> dict[str, Any]:
    """The surface U(x, y) with trails and balls lifted onto it (z = U + a small offset)."""
    xs, ys, values = _grid(landscape, SURFACE_RESOLUTION)
    low, high = float(values.min()), float(np.quantile(values, 0.97))
    high = high if high > low else low + 1.0
    clipped = np.minimum(values, high)
    lift = 0.05 * (high - low)
    data: list[dict[str, Any]] = [
        {
            "type": "surface",
            "x": typed(xs),
            "y": typed(ys),
            "z": {**typed(clipped, "f4"), "shape": f"{len(ys)}, {len(xs)}"},
            "colorscale": "Viridis",
            "showscale": False,
            "opacity": 1.0,
            "name": "U",
            "hovertemplate": "U %{z:.4g}<extra></extra>",
            "contours": {"z": {"show": True, "usecolormap": True, "project": {"z": False}, "width": 1}},
        }
    ]
    (x0, x1), (y0, y1) = landscape.bounds
    meta: dict[str, Any] = {
        "run": run_id,
        "trail": [],
        "ball": [],
        "swarm": None,
        "lift": lift,
        "zmax": high,
        "box": [x0, x1, y0, y1],
    }

    def boxed(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points outside the box become gaps (a diverging ball leaves the surface, not the scene)."""
        out = ~((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        return (np.where(out, np.nan, x), np.where(out, np.nan, y), np.where(out, np.nan, z))

    for i, racer in enumerate(racers):
        x, y, z = boxed(
            np.asarray(racer["x"]),
            np.asarray(racer["y"]),
            np.minimum(np.asarray(racer["loss"], dtype=np.float64), high) + lift,
        )
        meta["trail"].append(len(data))
        data.append(
            {
                "type": "scatter3d",
                "mode": "lines",
                "name": racer["label"],
                "legendgroup": f"r{i}",
                "x": typed(x),
                "y": typed(y),
                "z": typed(z),
                "hoverinfo": "skip",
                "line": {"color": racer["color"], "width": 6},
            }
        )
        meta["ball"].append(len(data))
        data.append(
            {
                "type": "scatter3d",
                "mode": "markers",
                "showlegend": False,
                "legendgroup": f"r{i}",
                "x": [_num(x[-1])],
                "y": [_num(y[-1])],
                "z": [_num(z[-1])],
                "hoverinfo": "skip",
                "marker": {"size": 7, "color": racer["color"], "line": {"color": "#fff", "width": 1}},
            }
        )
    if swarm is not None:
        meta["swarm"] = len(data)
        x, y, z = boxed(
            np.asarray(swarm["x"]),
            np.asarray(swarm["y"]),
            np.minimum(np.asarray(swarm["loss"], dtype=np.float64), high) + lift,
        )
        data.append(
            {
                "type": "scatter3d",
                "mode": "markers",
                "name": f"{swarm['n']} balls",
                "x": typed(x, "f4"),
                "y": typed(y, "f4"),
                "z": typed(z, "f4"),
                "hoverinfo": "skip",
                "marker": {"size": 2.5, "color": swarm["color"], "opacity": 0.8},
            }
        )
    scene = {
        "xaxis": {
            "title": {"text": "x"},
            "range": [x0, x1],
            "backgroundcolor": PLOT,
            "gridcolor": GRID,
            "color": "#aab4c3",
        },
        "yaxis": {
            "title": {"text": "y"},
            "range": [y0, y1],
            "backgroundcolor": PLOT,
            "gridcolor": GRID,
            "color": "#aab4c3",
        },
        "zaxis": {
            "title": {"text": "U"},
            "range": [low - lift, high + 3 * lift],
            "backgroundcolor": PLOT,
            "gridcolor": GRID,
            "color": "#aab4c3",
        },
        "camera": {"eye": {"x": -1.7, "y": -1.8, "z": 1.3}},
        "domain": {"x": [0.06, 1.0], "y": [0.0, 1.0]},  # room for the U axis' labels on the left
        "aspectmode": "manual",
        "aspectratio": {"x": 1.25, "y": 1.0, "z": 0.6},
    }
    layout = _layout(
        scene=scene,
        uirevision=_landscape_revision(landscape),
        meta=meta,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return {"data": data, "layout": layout}


# --- curves against step ------------------------------------------------------------------------------
def _y_range(curves: list[np.ndarray]) -> tuple[float, float]:
    finite = np.concatenate([c[np.isfinite(c)] for c in curves]) if curves else np.array([0.0])
    if finite.size == 0:
        return (0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    pad = 0.05 * (high - low) if high > low else 1.0
    return (low - pad, high + pad)


def loss_figure(
    racers: list[dict[str, Any]],
    run_id: str,
    swarm: dict[str, Any] | None,
    target: float | None,
    view_end: float | None = None,
) -> dict[str, Any]:
    """Loss against step per racer (a swarm: median and the 10-90% band)."""
    data: list[dict[str, Any]] = []
    curves: list[np.ndarray] = []
    if swarm is not None:
        steps = swarm["steps"]
        q10, q50, q90 = swarm["loss_quantiles"]
        curves += [q10, q90]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": typed(steps),
                "y": typed(q90),
                "name": "90%",
                "line": {"width": 0},
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": typed(steps),
                "y": typed(q10),
                "name": "10-90% of balls",
                "fill": "tonexty",
                "fillcolor": "rgba(255,45,85,0.18)",
                "line": {"width": 0},
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": typed(steps),
                "y": typed(q50),
                "name": "median",
                "line": {"color": swarm["color"], "width": 2},
            }
        )
    for i, racer in enumerate(racers):
        loss = np.asarray(racer["loss"], dtype=np.float64)
        curves.append(loss)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": typed(racer["steps"]),
                "y": typed(loss),
                "name": racer["label"],
                "legendgroup": f"r{i}",
                "showlegend": False,  # named by colour in the banner and the leaderboard
                "line": {"color": racer["color"], "width": 2},
                "hovertemplate": "step %{x}<br>U %{y:.5g}<extra>" + racer["label"] + "</extra>",
            }
        )
    y_range = _y_range(curves)
    if target is not None and y_range[0] <= target <= y_range[1]:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [0, max(_last_steps(racers, swarm), 1)],
                "y": [target, target],
                "name": f"target {target:.4g}",
                "line": {"color": "#30d158", "width": 1, "dash": "dot"},
            }
        )
    end = view_end or _last_steps(racers, swarm)
    layout = _layout(
        xaxis=_axis("step", (0, end)),
        yaxis=_axis("loss U", y_range),
        meta={"run": run_id},
        title={"text": "loss against step", "font": {"size": 13}, "x": 0.01, "y": 0.97},
    )
    layout["legend"] = LEGEND_ABOVE
    layout["margin"] = {**layout["margin"], "t": 58}
    return {"data": data, "layout": layout}


def energy_figure(
    racer: dict[str, Any] | None, run_id: str, note: str = "", view_end: float | None = None
) -> dict[str, Any]:
    """Kinetic, potential and total energy of racer 0 against step (heavy-ball family only)."""
    data: list[dict[str, Any]] = []
    curves: list[np.ndarray] = []
    last = 1
    if racer is not None:
        steps = racer["steps"]
        last = float(steps[-1]) if len(steps) else 1
        for key, label, colour, dash in (
            ("potential", "potential U", "#0a84ff", "solid"),
            ("kinetic", "kinetic |v|²/2", "#ff9f0a", "solid"),
            ("total", "total (friction drains it)", "#ffffff", "dash"),
        ):
            if racer.get(key) is None:
                continue
            values = np.asarray(racer[key], dtype=np.float64)
            curves.append(values)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": typed(steps),
                    "y": typed(values),
                    "name": label,
                    "line": {"color": colour, "width": 2, "dash": dash},
                }
            )
    y_range = _y_range(curves)
    annotations = []
    if note:
        annotations.append(
            {
                "text": note,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 13, "color": "#8b949e"},
            }
        )
    layout = _layout(
        xaxis=_axis("step", (0, view_end or last)),
        yaxis=_axis("energy", y_range),
        annotations=annotations,
        meta={"run": run_id},
        title={"text": "energy against step (unit mass)", "font": {"size": 13}, "x": 0.01, "y": 0.98},
    )
    layout["legend"] = LEGEND_ABOVE
    layout["margin"] = {**layout["margin"], "t": 58}
    return {"data": data, "layout": layout}


def swarm_figure(
    landscape: Landscape, run_id: str, swarm: dict[str, Any] | None, density: dict[str, Any] | None
) -> dict[str, Any]:
    """Histogram of the balls' x against the Boltzmann marginal density in x."""
    (x0, x1), _ = landscape.bounds
    data: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"run": run_id, "hist": None}
    if swarm is not None:
        meta["hist"] = 0
        data.append(
            {
                "type": "histogram",
                "x": typed(swarm["final_x"], "f4"),
                "histnorm": "probability density",
                "xbins": {"start": x0, "end": x1, "size": (x1 - x0) / 60},
                "autobinx": False,
                "name": "balls now",
                "marker": {"color": swarm["color"], "opacity": 0.7},
            }
        )
    if density is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": typed(density["x"]),
                "y": typed(density["density"]),
                "name": f"Boltzmann exp(−U/T), T={density['temperature']:.3g}",
                "line": {"color": "#ffffff", "width": 2},
            }
        )
    layout = _layout(
        xaxis=_axis("x", (x0, x1)),
        yaxis=_axis("density"),
        meta=meta,
        bargap=0.02,
        title={"text": "swarm: where the balls are (x)", "font": {"size": 13}, "x": 0.01, "y": 0.98},
    )
    layout["legend"] = LEGEND_ABOVE
    layout["margin"] = {**layout["margin"], "t": 58}
    return {"data": data, "layout": layout}


def empty_figure(message: str = "") -> dict[str, Any]:
    return {
        "data": [],
        "layout": _layout(
            xaxis={"visible": False},
            yaxis={"visible": False},
            meta={"run": None},
            annotations=[{"text": message, "showarrow": False, "font": {"size": 14, "color": "#8b949e"}}],
        ),
    }


def _last_steps(racers: list[dict[str, Any]], swarm: dict[str, Any] | None) -> float:
    last = [float(r["steps"][-1]) for r in racers if len(r["steps"])]
    if swarm is not None and len(swarm["steps"]):
        last.append(float(swarm["steps"][-1]))
    return max(last) if last else 1.0


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def finite_or_none(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().to(torch.float64).numpy()


# --- the narrated step -------------------------------------------------------------------------------
#: Each part of a narrated step (`descent.arena.narrate`) as an arrow: its colour.
STEP_COLORS = {
    "force": "#ff9f0a",
    "transforms": "#30d158",
    "weight_decay": "#8e8e93",
    "inertia": "#64d2ff",
    "kick": "#bf5af2",
    "lookahead": "#ffd60a",
    "adaptive": "#ff375f",
    "update": "#ffffff",
    "lookahead_point": "#64d2ff",
    "lookahead_force": "#ffb340",
}
STEP_ZOOM = 0.4  # the zoomed view's margin around the step, in its own size
STEP_MIN_VIEW = 0.02  # the zoomed view spans at least this share of the box


def step_view(
    landscape: Landscape, arrows: dict[str, tuple[tuple[float, ...], tuple[float, ...]]], zoom: bool
) -> tuple[list[float], list[float]]:
    """The step map's x and y ranges: the box, or (``zoom``) the step's arrows with a margin."""
    (x0, x1), (y0, y1) = landscape.bounds
    if not zoom:
        return [x0, x1], [y0, y1]
    xs, ys = [], []
    for origin, vector in arrows.values():
        for x, y in ((origin[0], origin[1]), (origin[0] + vector[0], origin[1] + vector[1])):
            if math.isfinite(x) and math.isfinite(y):
                xs.append(x)
                ys.append(y)
    if not xs:
        return [x0, x1], [y0, y1]
    half = 0.5 * max(max(xs) - min(xs), max(ys) - min(ys)) * (1 + 2 * STEP_ZOOM)
    half = max(half, 0.5 * STEP_MIN_VIEW * max(x1 - x0, y1 - y0))
    cx, cy = 0.5 * (max(xs) + min(xs)), 0.5 * (max(ys) + min(ys))
    return [cx - half, cx + half], [cy - half, cy + half]


def step_figure(
    landscape: Landscape,
    arrows: dict[str, tuple[tuple[float, ...], tuple[float, ...]]],
    labels: dict[str, str],
    path: tuple[np.ndarray, np.ndarray],
    step: int,
    zoom: bool = True,
    background: str | None = None,
) -> dict[str, Any]:
    """The map of one narrated step: the contour, the ball's path up to the step's end, the ball before
    and after, and each arrow of ``arrows`` (``{name: (origin, vector)}``, `Narration.arrows`) drawn at
    its true length as an annotation named ``name`` (head at origin + vector). ``labels``: the arrows'
    names in words; ``zoom``: the view fits the step (else the whole box)."""
    x_range, y_range = step_view(landscape, arrows, zoom)
    (x0, x1), (y0, y1) = landscape.bounds
    px, py = path
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "path",
            "x": typed(px),
            "y": typed(py),
            "showlegend": False,
            "hovertemplate": "(%{x:.4g}, %{y:.4g})<extra>path</extra>",
            "line": {"color": COLORS[0], "width": 1.5},
            "marker": {"size": 5, "color": COLORS[0]},
            "opacity": 0.6,
        }
    ]
    before = arrows["update"][0]
    after = tuple(o + v for o, v in zip(*arrows["update"]))
    for name, point, symbol in (("w_k (before)", before, "circle"), ("w_k+1 (after)", after, "circle-open")):
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [_num(point[0])],
                "y": [_num(point[1])],
                "showlegend": False,
                "hovertemplate": name + " (%{x:.6g}, %{y:.6g})<extra></extra>",
                "marker": {
                    "symbol": symbol,
                    "size": 14,
                    "color": COLORS[0],
                    "line": {"color": "#fff", "width": 2},
                },
            }
        )
    annotations = []
    for name, (origin, vector) in arrows.items():
        head = (origin[0] + vector[0], origin[1] + vector[1])
        if not all(math.isfinite(v) for v in (*origin, *head)) or math.hypot(*vector) == 0:
            continue
        annotations.append(
            {
                "name": name,
                "x": head[0],
                "y": head[1],
                "ax": origin[0],
                "ay": origin[1],
                "xref": "x",
                "yref": "y",
                "axref": "x",
                "ayref": "y",
                "text": "",
                "showarrow": True,
                "arrowhead": 2,
                "arrowsize": 1.2,
                "arrowwidth": 1.5 if name in ("update", "lookahead_point") else 3,
                "arrowcolor": STEP_COLORS.get(name, "#ffffff"),
                "opacity": 0.75 if name in ("update", "lookahead_point", "lookahead_force") else 1.0,
                "hovertext": labels.get(name, name),
                "captureevents": False,
            }
        )
    images = background_images(landscape, background)
    layout = _layout(
        xaxis={**_axis("x", tuple(x_range)), "showgrid": False},
        yaxis={**_axis("y", tuple(y_range)), "showgrid": False, "scaleanchor": "x", "scaleratio": 1},
        images=images,
        annotations=annotations,
        showlegend=False,
        meta={"step": step, "zoom": zoom, "arrows": [a["name"] for a in annotations]},
        title={
            "text": f"step {step}: w_{step} → w_{step + 1}" + (" (zoomed on the step)" if zoom else ""),
            "font": {"size": 13},
            "x": 0.01,
            "y": 0.98,
        },
    )
    return {"data": data, "layout": layout}


# --- the maps of outcomes ----------------------------------------------------------------------------
OUTCOME_COLORS = {
    "global": "#ffd60a",
    "local": "#0a84ff",
    "saddle": "#bf5af2",
    "stationary": "#5ac8fa",
    "target": "#30d158",
    "escaped": "#ff9f0a",
    "diverged": "#ff453a",
    "moving": "#8e8e93",
}
LOCAL_COLORS = ("#0a84ff", "#30d158", "#64d2ff", "#5e5ce6", "#66d4cf", "#ac8e68")
SHADE = 0.9  # of a band of the colour scale: settled at step 0 (bright) to never (dark)


def outcome_colors(landscape: Landscape, labels: tuple[str, ...]) -> list[str]:
    """A colour per outcome label (the same for every map of one landscape): the global minimum gold,
    local minima blue-greens, a saddle purple, diverged red, still moving grey."""
    colours, local = [], 0
    for label in labels:
        kind, _, point = label.partition(":")
        if kind == "minimum":
            try:
                is_global = landscape.point(point).kind == "global_min"
            except Exception:  # noqa: BLE001 - an unknown point: a local colour
                is_global = False
            if is_global:
                colours.append(OUTCOME_COLORS["global"])
            else:
                colours.append(LOCAL_COLORS[local % len(LOCAL_COLORS)])
                local += 1
        else:
            colours.append(OUTCOME_COLORS.get(kind, "#8e8e93"))
    return colours


def _darker(colour: str, share: float = 0.7) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    keep = 1 - share
    return f"rgb({round(r * keep)},{round(g * keep)},{round(b * keep)})"


def outcome_colorscale(colours: list[str]) -> list[list]:
    """One band per outcome (``[k, k+1)`` of z over ``[0, K]``): its colour bright at the band's start
    (settled at once) and dark at its end (settled late, or never)."""
    count = len(colours)
    scale: list[list] = []
    for k, colour in enumerate(colours):
        scale.append([k / count, colour])
        scale.append([(k + 1) / count, _darker(colour)])
    return scale


def outcome_z(outcome: np.ndarray, settle: np.ndarray, steps: int) -> np.ndarray:
    """The heatmap's z: the outcome's band plus a shade by the steps to settle (-1: never, darkest)."""
    shade = np.where(settle >= 0, np.log1p(np.maximum(settle, 0)) / math.log1p(max(steps, 1)), 1.0)
    return outcome.astype(np.float64) + SHADE * np.clip(shade, 0.0, 1.0)


def _outcome_heatmap(x, y, outcome, settle, steps, colours, hover: str) -> dict[str, Any]:
    rows, columns = outcome.shape
    return {
        "type": "heatmap",
        "name": "outcome",
        "x": typed(x),
        "y": typed(y),
        "z": {**typed(outcome_z(outcome, settle, steps), "f4"), "shape": f"{rows}, {columns}"},
        "customdata": {**typed(settle, "f4"), "shape": f"{rows}, {columns}"},
        "zmin": 0,
        "zmax": len(colours),
        "colorscale": outcome_colorscale(colours),
        "showscale": False,
        "hovertemplate": hover + "<br>settled at step %{customdata} (-1: still moving)<extra></extra>",
    }


def basin_figure(landscape: Landscape, basin, start: list[float], colours: list[str]) -> dict[str, Any]:
    """The basin map (`descent.arena.maps.BasinMap`): each start of the grid coloured by where it
    ends, shaded by when; the known points and the ball's start over it."""
    steps = int(basin.spec.steps)
    data = [
        _outcome_heatmap(
            basin.x, basin.y, basin.outcome, basin.settle, steps, colours, "start (%{x:.3f}, %{y:.3f})"
        )
    ]
    points = _points_trace(landscape)
    if points:
        data.append({**points, "mode": "markers", "hoverinfo": "skip", "hovertemplate": None})
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "the ball's start",
            "x": [start[0]],
            "y": [start[1]],
            "hoverinfo": "skip",
            "marker": {"symbol": "circle-open", "size": 14, "color": "#ffffff", "line": {"width": 2.5}},
        }
    )
    (x0, x1), (y0, y1) = landscape.bounds
    xaxis = {**_axis("start x", (x0, x1)), "showgrid": False}
    yaxis = {**_axis("start y", (y0, y1)), "showgrid": False}
    return {"data": data, "layout": _outcome_layout(basin, "where each start ends", xaxis, yaxis, {})}


def _outcome_layout(outcome_map, what: str, xaxis: dict, yaxis: dict, meta: dict) -> dict[str, Any]:
    rows, columns = outcome_map.shape
    steps = int(outcome_map.spec.steps)
    return _layout(
        xaxis=xaxis,
        yaxis=yaxis,
        showlegend=False,
        meta={"kind": outcome_map.kind, "n": columns, "steps": steps, "key": _map_key(outcome_map), **meta},
        title={
            "text": f"{outcome_map.kind} map: {what} ({columns}×{rows}, {steps} steps)",
            "font": {"size": 12},
        },
        margin={"l": 50, "r": 12, "t": 30, "b": 40},
        clickmode="event",
    )


def phase_figure(phase, lr: float, second: float | None, colours: list[str]) -> dict[str, Any]:
    """The phase map (`descent.arena.maps.PhaseMap`): each setting (lr across on a log axis, the
    rule's second hyper-parameter up) coloured by where the ball ends from its start, shaded by when;
    the rule's stability edge at each known minimum over it; the ball's setting marked."""
    steps = int(phase.spec.steps)
    name = phase.second_name
    strip = name is None
    y = phase.second if not strip else np.zeros(1)
    hover = "lr %{x:.4g}" + ("" if strip else f", {name} %{{y:.4g}}")
    data = [_outcome_heatmap(phase.lr, y, phase.outcome, phase.settle, steps, colours, hover)]
    for curve in phase.edges:
        edge = np.asarray(curve.lr, dtype=np.float64)
        keep = np.isfinite(edge) & (edge > 0)
        if not keep.any():
            continue
        if strip:
            xs, ys = [float(edge[0]), float(edge[0])], [-0.5, 0.5]
        else:
            xs, ys = edge[keep].tolist(), np.asarray(y)[keep].tolist()
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"stability edge at {curve.minimum}",
                "x": xs,
                "y": ys,
                "line": {"color": "#ffffff", "width": 2, "dash": "dash"},
                "hovertemplate": f"stability edge at {curve.minimum} ({phase.edge_math}): lr %{{x:.4g}}"
                "<extra></extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "the ball's setting",
            "x": [lr],
            "y": [second if not strip and second is not None else 0.0],
            "hoverinfo": "skip",
            "marker": {"symbol": "circle-open", "size": 14, "color": "#ffffff", "line": {"width": 2.5}},
        }
    )
    low, high = float(phase.lr[0]), float(phase.lr[-1])
    yaxis = _axis(name or "", None if strip else (float(y[0]), float(y[-1])))
    if strip:
        yaxis.update(visible=False, range=[-0.5, 0.5])
    xaxis = {**_axis("learning rate", (math.log10(low), math.log10(high))), "type": "log", "showgrid": False}
    layout = _outcome_layout(
        phase, "where each setting ends", xaxis, {**yaxis, "showgrid": False}, {"second": name}
    )
    return {"data": data, "layout": layout}


def _map_key(outcome_map) -> str:
    return hashlib.sha1(
        (outcome_map.spec.to_json() + json.dumps(outcome_map.source, sort_keys=True)).encode()
    ).hexdigest()[:16]
