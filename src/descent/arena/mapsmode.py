"""The page's "Maps" mode: beside the contour map, the basin map (where each start of a grid over the
box ends, for the ball's rule and settings) and the phase map (where each setting of the rule's
learning rate and its second hyper-parameter ends, from the ball's start), each computed by the
engine in one batched run (`descent.arena.maps`), coloured by outcome and shaded by the steps to
settle, the rule's stability edge at each known minimum over the phase map. A click on a basin cell
drops the ball there; a click on a phase cell sets the sliders to its setting (`maps.cell_to_state`,
written into the page's ``state-request``).

The two maps are two callbacks, so the server computes them side by side (the kernel releases the
GIL). A map is made for ``n`` cells a side and the state's steps, at most what `maps.MAX_WORK` allows
(the panel says when it took fewer steps).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
from dash import Dash, Input, Output, State, dcc, html, no_update

from descent._errors import DescentError
from descent.arena import figures, maps
from descent.arena.layout import GRAPH_CONFIG
from descent.arena.modes import Mode
from descent.arena.runner import get_landscape
from descent.arena.state import normalize

log = logging.getLogger(__name__)

SIZES = (50, 100, 200, 300)
DEFAULT_N = 200


class _Recent:
    """The last ``size`` maps made, by key (the click callbacks read the maps shown)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, make):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()  # outside the lock: the two maps are made side by side
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


MAPS = _Recent(8)  # (kind, n, state) -> BasinMap / PhaseMap (a 200 x 200 map: about 0.7 MB)
OUTPUTS = ("figure", "legend", "status", "source")


def side_panel() -> html.Div:
    def one(kind: str, hint: str) -> html.Div:
        return html.Div(
            [
                dcc.Graph(id=f"{kind}-graph", config=GRAPH_CONFIG, className="graph outcome-map"),
                html.Div(id=f"{kind}-legend", className="map-legend"),
                html.Div(id=f"{kind}-status", className="hint"),
                html.Div(hint, className="hint"),
                dcc.Store(id=f"{kind}-source"),
            ]
        )

    return html.Div(
        [
            html.H3("Maps of outcomes"),
            html.Div(
                [
                    html.Label("cells a side", htmlFor="maps-n"),
                    dcc.Dropdown(
                        id="maps-n",
                        options=[{"label": f"{n} × {n}", "value": n} for n in SIZES],
                        value=DEFAULT_N,
                        clearable=False,
                        searchable=False,
                        className="maps-n",
                    ),
                ],
                className="row",
            ),
            html.Div(id="maps-message", className="message", role="alert"),
            one("basin", "click a start: the ball drops there"),
            one("phase", "click a setting: the sliders take it (dashed: the rule's stability edge)"),
        ],
        className="panel side-panel maps-panel",
        id="maps-panel",
    )


def _key(kind: str, n: int, state: dict[str, Any]) -> str:
    """What a map depends on: the landscape, the ball's rule and settings, the steps and the seed (and
    the start, for the phase map); not the other racers, the swarm or the target."""
    used = {k: state[k] for k in ("landscape", "params", "steps", "seed")}
    used["ball"] = state["racers"][0]
    if kind == "phase":
        used["start"] = state["start"]
    return json.dumps([kind, n, used], sort_keys=True)


def _steps(state: dict[str, Any], n: int, rows: int) -> int:
    """The state's steps, or the most a map of ``rows`` x ``n`` cells may take."""
    return max(1, min(int(state["steps"]), maps.MAX_WORK // (rows * n)))


def outcome_map(kind: str, state: dict[str, Any], n: int):
    """The ``kind`` ('basin' or 'phase') map of ``state`` with ``n`` cells a side (cached)."""
    state = normalize(state)
    rows = n if kind == "basin" or maps.phase_axis(state["racers"][0]["optimizer"]) else 1
    steps = _steps(state, n, rows)
    make = maps.basin_map if kind == "basin" else maps.phase_map
    return MAPS.get(_key(kind, n, state), lambda: make(state, n, steps=steps))


def _legend(landscape, outcome_map, colours: list[str]) -> list:
    counts = outcome_map.counts()
    total = sum(counts.values()) or 1
    items = []
    for label, colour in zip(outcome_map.labels, colours):
        if label not in counts:
            continue
        kind, _, point = label.partition(":")
        tag = ""
        if kind == "minimum":
            try:
                tag = " (global)" if landscape.point(point).kind == "global_min" else " (local)"
            except Exception:  # noqa: BLE001
                tag = ""
        items.append(
            html.Span(
                [
                    html.Span(className="swatch", style={"background": colour}),
                    f"{label}{tag} {100 * counts[label] / total:.0f}%",
                ],
                className="legend-item",
            )
        )
    items.append(html.Span("bright: settled soon · dark: late or never", className="legend-item hint"))
    return items


def _status(outcome_map, state: dict[str, Any], seconds: float) -> str:
    rows, columns = outcome_map.shape
    steps = int(outcome_map.spec.steps)
    cut = (
        f" (the first {steps} of the state's {state['steps']}: a map takes at most "
        f"{maps.MAX_WORK:,} cell-steps)"
    )
    engine = "the compiled kernel" if outcome_map.backend == "kernel" else "the torch loop"
    return (
        f"{columns}×{rows} cells × {steps} steps{cut if steps < state['steps'] else ''}: "
        f"{outcome_map.seconds:.2f} s on {engine} ({seconds:.2f} s with the figure)"
    )


def map_outputs(kind: str, state: dict[str, Any], n: int) -> dict[str, Any]:
    """Every output of one map for ``state`` (figure, legend, status, source)."""
    began = time.perf_counter()
    state = normalize(state)
    made = outcome_map(kind, state, n)
    landscape = get_landscape(state["landscape"], state["params"])
    colours = figures.outcome_colors(landscape, made.labels)
    ball = state["racers"][0]
    if kind == "basin":
        start = state["start"] or [float(v) for v in landscape.start().squeeze(0).tolist()]
        figure = figures.basin_figure(landscape, made, start, colours)
    else:
        second = ball["hyper"].get(made.second_name) if made.second_name else None
        figure = figures.phase_figure(made, _lr(state), second, colours)
    return {
        "figure": _fitted(kind, made, figure),
        "legend": _legend(landscape, made, colours),
        "status": _status(made, state, time.perf_counter() - began),
        "source": {"state": state, "n": n},
    }


#: a map's title in two short lines (the plot beside the contour map is narrow: one long line was cut at
#: both ends at 1400 px)
TITLES = {"basin": "basin map: where each start ends", "phase": "phase map: where each setting ends"}
CLICK_NOTE = "<br>click: runs the values shown (4 digits; the cell ran its exact setting)"


def _fitted(kind: str, made, figure: dict[str, Any]) -> dict[str, Any]:
    """``figure`` with its title in two short lines (what, then the grid's size) and, on a phase map,
    each cell's tooltip saying that a click runs the rounded values it shows (`maps.shown`)."""
    rows, columns = made.shape
    layout = figure["layout"]
    title = f"{TITLES[kind]}<br>{columns}×{rows} cells, {int(made.spec.steps)} steps"
    layout["title"] = {**layout.get("title", {}), "text": title, "font": {"size": 11}, "x": 0.5}
    layout["margin"] = {**layout.get("margin", {}), "t": 36}
    if kind == "phase":
        cells = figure["data"][0]
        cells["hovertemplate"] = cells["hovertemplate"].replace("<extra>", CLICK_NOTE + "<extra>", 1)
    return figure


def _lr(state: dict[str, Any]) -> float:
    from descent.spec import default_lr

    hyper = state["racers"][0]["hyper"]
    if "lr" in hyper:
        return float(hyper["lr"])
    return default_lr(get_landscape(state["landscape"], state["params"]), state["racers"][0]["optimizer"])


def nearest_cell(kind: str, outcome_map, x: float, y: float) -> tuple[int, int]:
    """The cell ``[i, j]`` under a click at ``(x, y)`` (a learning rate across on the phase map)."""
    if kind == "basin":
        return int(np.argmin(np.abs(outcome_map.y - y))), int(np.argmin(np.abs(outcome_map.x - x)))
    j = int(np.argmin(np.abs(np.log(outcome_map.lr) - math.log(max(x, 1e-300)))))
    i = int(np.argmin(np.abs(outcome_map.second - y))) if outcome_map.second_name else 0
    return i, j


def clicked_state(kind: str, click: dict | None, source: dict | None, state: dict | None) -> dict | None:
    """The new state a click on a map's cell means (None: not a click on a cell)."""
    if not click or not source or not state or not click.get("points"):
        return None
    point = click["points"][0]
    x, y = point.get("x"), point.get("y")
    if not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
        return None
    made = outcome_map(kind, source["state"], int(source["n"]))
    i, j = nearest_cell(kind, made, float(x), float(y))
    return maps.cell_to_state(made, i, j, state)


def register(app: Dash) -> None:
    for kind in ("basin", "phase"):
        _register_map(app, kind)


def _register_map(app: Dash, kind: str) -> None:
    @app.callback(
        output={
            "figure": Output(f"{kind}-graph", "figure"),
            "legend": Output(f"{kind}-legend", "children"),
            "status": Output(f"{kind}-status", "children"),
            "source": Output(f"{kind}-source", "data"),
            "message": Output("maps-message", "children", allow_duplicate=True),
        },
        inputs={
            "mode": Input("mode", "data"),
            "state": Input("state-store", "data"),
            "n": Input("maps-n", "value"),
        },
        state={"source": State(f"{kind}-source", "data")},
        prevent_initial_call=True,
    )
    def _map(mode, state, n, source):
        nothing = {key: no_update for key in (*OUTPUTS, "message")}
        if mode != "maps" or not state:
            return nothing
        n = int(n or DEFAULT_N)
        if source and source.get("n") == n and source.get("state") == normalize(state):
            return nothing  # shown already
        try:
            return {**map_outputs(kind, state, n), "message": ""}
        except DescentError as error:
            return {**nothing, "message": f"{kind} map: {error}"}
        except Exception as error:  # noqa: BLE001 - shown on the page
            log.exception("%s map failed", kind)
            return {**nothing, "message": f"{kind} map: internal error: {error}"}

    @app.callback(
        output={
            "request": Output("state-request", "data", allow_duplicate=True),
            "message": Output("maps-message", "children", allow_duplicate=True),
        },
        inputs={"click": Input(f"{kind}-graph", "clickData")},
        state={"source": State(f"{kind}-source", "data"), "state": State("state-store", "data")},
        prevent_initial_call=True,
    )
    def _click(click, source, state):
        try:
            new = clicked_state(kind, click, source, state)
        except DescentError as error:
            return {"request": no_update, "message": f"{kind} map: {error}"}
        if new is None:
            return {"request": no_update, "message": no_update}
        return {"request": {"state": new, "t": time.time()}, "message": ""}


MODE = Mode(
    "maps",
    "Maps",
    "where every start and every setting ends: the basin map and the phase map beside the map",
    side=side_panel,
    register=register,
)
