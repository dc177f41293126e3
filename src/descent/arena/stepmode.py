"""The page's "Step by step" mode: the ball's run one optimizer step at a time (Previous / Next and the
step's number), each step taken apart by `descent.arena.narrate.narrate_step`: its parts drawn as
arrows at their true length on a map zoomed on the step, and beside it the step told in words with
its numbers (every number the narration's, which are the engine's).

Step ``k`` is the step from w_k to w_k+1 of the ball (racer 0; never the swarm) of the page's state.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from descent._errors import DescentError, invalid
from descent.arena import figures
from descent.arena.layout import GRAPH_CONFIG
from descent.arena.modes import Mode
from descent.arena.narrate import LABELS, Narration, ball_spec, narrate_step
from descent.arena.runner import run_cached
from descent.arena.state import normalize

log = logging.getLogger(__name__)

ARROW_LABELS = {
    **LABELS,
    "transforms": "the transforms' change",
    "update": "the whole step w_k+1 − w_k",
    "lookahead_point": "to Nesterov's look-ahead point",
    "lookahead_force": "−lr·∇U at the look-ahead point",
}


def num(value: float | None) -> str:
    """A number as the step's table writes it (6 significant digits)."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value + 0.0:.6g}"


def main_panel() -> html.Div:
    return html.Div(
        [
            dcc.Graph(id="step-graph", config=GRAPH_CONFIG, className="graph map"),
            html.Div(
                id="step-key", className="step-key", role="list", **{"aria-label": "the arrows' colours"}
            ),
        ],
        className="step-main",
    )


def arrow_key(arrows: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]) -> list:
    """The map's key, under the map (so it covers none of it): one entry per arrow drawn (a part with
    a length; `Narration.arrows`), its colour (`figures.STEP_COLORS`) and what it is (`ARROW_LABELS`)."""
    drawn = [name for name, (_, vector) in arrows.items() if math.hypot(*vector) > 0]
    return [
        html.Span(
            [
                html.Span(
                    className="swatch",
                    style={
                        "background": figures.STEP_COLORS.get(name, "#ffffff"),
                        "border": "1px solid #888",
                        "display": "inline-block",
                        "width": "1.6em",
                        "height": "0.35em",
                        "marginRight": "0.3em",
                        "verticalAlign": "middle",
                    },
                ),
                ARROW_LABELS.get(name, name),
            ],
            className="step-key-entry",
            role="listitem",
            style={"marginRight": "1em", "whiteSpace": "nowrap", "display": "inline-block"},
            **{"data-key": name},
        )
        for name in drawn
    ]


def side_panel() -> html.Div:
    return html.Div(
        [
            html.H3("Step by step"),
            html.Div(
                "The ball's run (the first racer; a swarm's noise left out), one optimizer step at a time: "
                "step k goes from w_k to w_k+1.",
                className="hint",
            ),
            html.Div(
                [
                    html.Button("◂ Previous", id="step-prev", n_clicks=0, title="the step before"),
                    html.Button(
                        "Next ▸", id="step-next", n_clicks=0, className="primary", title="the next step"
                    ),
                    html.Label("step", htmlFor="step-number"),
                    dcc.Input(
                        id="step-number",
                        type="text",  # the typed text reaches the server as typed (a number box sends None)
                        inputMode="numeric",
                        value="0",
                        debounce=True,
                        className="num-input",
                    ),
                    html.Span(id="step-of", className="hint"),
                ],
                className="row step-controls",
            ),
            dcc.Checklist(
                id="step-zoom",
                value=["zoom"],
                options=[
                    {"label": " zoom the map on the step (arrows at their true length)", "value": "zoom"}
                ],
            ),
            html.Div(id="step-message", className="message", role="alert"),
            html.Div(id="step-sentences", className="step-words"),
            html.Div(id="step-numbers"),
            html.Div(id="step-theory", className="step-words theory-words"),
            dcc.Store(id="step-k", data={"k": 0, "next": 0, "prev": 0}),
        ],
        className="panel step-panel side-panel",
        id="step-panel",
    )


# --- what the panel shows ---------------------------------------------------------------------------
def _vector_cells(vector: tuple[float, ...] | None) -> list:
    if vector is None:
        return [html.Td("—", className="num"), html.Td("—", className="num")]
    return [html.Td(num(v), className="num", **{"data-value": repr(float(v))}) for v in vector[:2]]


def _row(
    key: str, label: Any, vector: tuple[float, ...] | None, length: float | None, colour: str | None = None
):
    swatch = html.Span(className="swatch", style={"background": colour}) if colour else None
    return html.Tr(
        [
            html.Td([swatch, label] if swatch else label),
            *_vector_cells(vector),
            html.Td(num(length) if length is not None else "", className="num"),
        ],
        id=f"step-row-{key}",
        className="step-row",
        **{"data-key": key},
    )


def numbers_table(n: Narration) -> html.Table:
    """The step's numbers: where the ball is, the slope, each part of the update and the whole update."""
    rows = [
        _row("before", "ball at w_k", n.before, None),
        _row("gradient", "slope ∇U at w_k", n.gradient, math.hypot(*n.gradient)),
    ]
    for part in n.parts:
        rows.append(_row(part.name, part.label, part.vector, part.length, figures.STEP_COLORS.get(part.name)))
    rows.append(_row("update", "whole step w_k+1 − w_k", n.update, math.hypot(*n.update), "#ffffff"))
    rows.append(_row("after", "ball at w_k+1", n.after, None))
    if n.lookahead is not None:
        rows.append(_row("lookahead_at", "Nesterov's look-ahead point", n.lookahead, None))
        if n.lookahead_gradient is not None:
            rows.append(_row("lookahead_gradient", "slope ∇U there", n.lookahead_gradient, None))
    if n.effective_lr is not None:
        label = f"effective lr {n.effective_lr_formula}"
        rows.append(_row("effective_lr", label, n.effective_lr, None, figures.STEP_COLORS["adaptive"]))
    if n.scale is not None:
        rows.append(_row("scale", "adaptive scale (its step ÷ the force step)", n.scale, None))
    head = html.Tr([html.Th(""), html.Th("x"), html.Th("y"), html.Th("length")])
    lr = html.Div(
        ["learning rate ", html.B(num(n.lr), id="step-lr", **{"data-value": repr(n.lr)}), f" · {n.rule}"]
    )
    return html.Div(
        [lr, html.Table([html.Thead(head), html.Tbody(rows)], className="leaderboard step-table")],
        className="step-numbers",
    )


def parse_step(typed: object, last: int) -> int:
    """The step number typed in the box, or `invalid` naming the box ("step"), the text as typed and
    the allowed range: an integer in [0, last] (never clamped: -1 and 999999 are refused).

    >>> parse_step(" 12 ", 1999)
    12
    >>> parse_step("abc", 1999)
    Traceback (most recent call last):
    ...
    descent._errors.DescentError: invalid step='abc': expected an integer in [0, 1999]
    """
    allowed = f"an integer in [0, {max(last, 0)}]"
    text = "" if typed is None else str(typed).strip()
    try:
        number = float(text)
    except ValueError:
        raise invalid("step", text, allowed) from None
    if not (math.isfinite(number) and number == int(number) and 0 <= number <= last):
        raise invalid("step", text, allowed)
    return int(number)


def step_outputs(state: dict[str, Any], k: int, zoom: bool, typed: object = None) -> dict[str, Any]:
    """Every output of the step mode for step ``k`` of ``state``'s ball (k clipped to the run: the
    Previous / Next clicks), or for the step ``typed`` in the box when given (`parse_step`)."""
    spec, landscape = ball_spec(state)
    trajectory = run_cached(spec, landscape)  # the run narrate_step reads (cached)
    last = int(trajectory.steps_run) - 1
    k = parse_step(typed, last) if typed is not None else min(max(int(k), 0), max(last, 0))
    narration = narrate_step(state, k)
    positions = figures.to_numpy(trajectory.positions[: k + 2, 0, :])
    path = (positions[:, 0], positions[:, 1])
    background = figures_background(state)
    arrows = narration.arrows()
    figure = figures.step_figure(landscape, arrows, ARROW_LABELS, path, k, zoom, background)
    return {
        "figure": figure,
        "key": arrow_key(arrows),
        "sentences": [html.P(s) for s in narration.sentences],
        "numbers": numbers_table(narration),
        "theory": [html.P(s) for s in narration.theory_sentences],
        "number": str(k),
        "k": k,
        "of": f"of {last} (steps 0 to {last} of the ball's run)",
        "message": "",
        "prev": k <= 0,
        "next": k >= last,
    }


def figures_background(state: dict[str, Any]) -> str:
    from descent.arena.views import BACKGROUND_ROUTE

    return f"{BACKGROUND_ROUTE}?k={figures.landscape_token(state['landscape'], state['params'])}"


OUTPUTS = ("figure", "key", "sentences", "numbers", "theory", "number", "k", "of", "message", "prev", "next")


def register(app: Dash) -> None:
    @app.callback(
        output={
            "figure": Output("step-graph", "figure"),
            "key": Output("step-key", "children"),
            "sentences": Output("step-sentences", "children"),
            "numbers": Output("step-numbers", "children"),
            "theory": Output("step-theory", "children"),
            "number": Output("step-number", "value"),
            "k": Output("step-k", "data"),
            "of": Output("step-of", "children"),
            "message": Output("step-message", "children"),
            "prev": Output("step-prev", "disabled"),
            "next": Output("step-next", "disabled"),
        },
        inputs={
            "mode": Input("mode", "data"),
            "state": Input("state-store", "data"),
            "prev": Input("step-prev", "n_clicks"),
            "next": Input("step-next", "n_clicks"),
            "typed": Input("step-number", "value"),
            "zoom": Input("step-zoom", "value"),
        },
        state={"k": State("step-k", "data")},
        prevent_initial_call=True,
    )
    def _step(mode, state, prev, next, typed, zoom, k):
        if mode != "step" or not state:
            return {key: no_update for key in OUTPUTS}
        # the clicks since the step shown (so quick clicks add up while an answer is on its way)
        shown = k if isinstance(k, dict) else {}
        step = int(shown.get("k", 0))
        step += int(next or 0) - int(shown.get("next", 0)) - (int(prev or 0) - int(shown.get("prev", 0)))
        box = ("" if typed is None else typed) if ctx.triggered_id == "step-number" else None
        try:
            out = step_outputs(normalize(state), step, "zoom" in (zoom or []), box)
            return {**out, "k": {"k": out["k"], "next": int(next or 0), "prev": int(prev or 0)}}
        except DescentError as error:
            return {**{key: no_update for key in OUTPUTS}, "message": str(error)}
        except Exception as error:  # noqa: BLE001 - shown on the page
            log.exception("step mode failed")
            return {**{key: no_update for key in OUTPUTS}, "message": f"internal error: {error}"}


MODE = Mode(
    "step",
    "Step by step",
    "one optimizer step at a time, taken apart into arrows and told in words",
    side=side_panel,
    main=main_panel,
    register=register,
    player=False,  # Previous / Next take the steps here
)
