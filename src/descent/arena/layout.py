"""The page: a sidebar of controls and a main column of views. Stable element ids (tests use them).

The number boxes take any number (``step="any"``, no ``min``/``max``): Dash's Input sends ``None`` for a
value that fails the browser's own range or step check, so the server could neither accept 0.999 nor
name a rejected -1. The server checks every value and the page shows its message (field, value, what
is allowed).
"""

from __future__ import annotations

from dash import dcc, html

from descent.arena.state import FORMULA, LR_LOG_RANGE, PRESETS
from descent.landscapes import LANDSCAPES
from descent.optim import RULES

#: the classes of the graphs the player's later request fills (the state callback adds " stale" to them
#: while they still show the previous run)
VIEW_CLASSES = {"surface": "graph surface", "loss": "graph small", "energy": "graph small"}

SPEEDS = [
    ("slow (60 steps/s)", 60),
    ("normal (250 steps/s)", 250),
    ("fast (1000 steps/s)", 1000),
    ("faster (4000 steps/s)", 4000),
    ("instant", 0),
]
DEFAULT_SPEED = 250
GRAPH_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "filename": "descent-arena", "scale": 2},
}


def _section(title: str, *children, class_name: str = "") -> html.Section:
    return html.Section([html.H3(title), *children], className=f"panel {class_name}".strip())


def _field(label: str, control, hint: str | None = None, class_name: str = "") -> html.Div:
    parts = [html.Label(label), control]
    if hint:
        parts.append(html.Div(hint, className="hint"))
    return html.Div(parts, className=f"field {class_name}".strip())


def _landscape_options() -> list[dict]:
    options = [{"label": f"{name} — {entry.summary}", "value": name} for name, entry in LANDSCAPES.items()]
    options.append({"label": "custom formula… (type it below)", "value": FORMULA})
    return options


def _optimizer_options() -> list[dict]:
    return [{"label": f"{name} — {rule.summary}", "value": name} for name, rule in RULES.items()]


def _lr_marks() -> dict:
    low, high = LR_LOG_RANGE
    marks = {}
    for exponent in range(int(low), int(high) + 1):
        marks[exponent] = {"label": f"1e{exponent}" if exponent else "1"}
    return marks


def racer_row_components(rows: list[dict]) -> list:
    """The race table's rows: colour, optimizer, and inputs for lr, momentum and other hyper-parameters."""
    from descent.arena.figures import color

    if not rows:
        return []
    header = html.Div(
        [html.Span(""), html.Span("optimizer"), html.Span("lr"), html.Span("β"), html.Span("other (k=v)")],
        className="racer-row head",
    )
    items = [header]
    for row in rows:
        i = row["index"]
        items.append(
            html.Div(
                [
                    html.Span(className="swatch", style={"background": color(i)}),
                    html.Span(row["optimizer"], className="racer-name"),
                    dcc.Input(
                        id={"type": "racer-lr", "index": i},
                        type="number",
                        value=row["lr"],
                        step="any",
                        debounce=True,
                        className="cell",
                    ),
                    dcc.Input(
                        id={"type": "racer-momentum", "index": i},
                        type="number",
                        value=row["momentum"],
                        step="any",
                        debounce=True,
                        className="cell",
                        disabled=not row["has_momentum"],
                    ),
                    dcc.Input(
                        id={"type": "racer-other", "index": i},
                        type="text",
                        value=row["other"],
                        debounce=True,
                        className="cell",
                        placeholder="e.g. beta2=0.99",
                    ),
                ],
                className="racer-row",
            )
        )
    return items


def controls() -> html.Aside:
    presets = html.Div(
        [
            html.Button(
                name, id={"type": "preset", "index": name}, className="preset", title=note, n_clicks=0
            )
            for name, (_, note) in PRESETS.items()
        ],
        className="presets",
    )
    landscape = _section(
        "Landscape",
        dcc.Dropdown(
            id="landscape-dropdown",
            options=_landscape_options(),
            value="double-well",
            clearable=False,
            searchable=True,
        ),
        html.Div(
            [
                dcc.Input(
                    id="formula-input",
                    type="text",
                    placeholder="custom formula, e.g. (x**2 - 1)**2 + y**2",
                    debounce=True,
                    n_submit=0,
                    className="grow",
                    spellCheck=False,
                ),
                html.Button("Apply", id="formula-apply", n_clicks=0, className="small"),
            ],
            className="row",
        ),
        html.Div(
            className="hint",
            children=[
                "x, y, + − * / ** (or ^), sin cos tan exp log sqrt abs tanh sigmoid softplus min max clip, "
                "pi, e"
            ],
        ),
        _field(
            "parameters",
            dcc.Input(id="params-input", type="text", debounce=True, placeholder="", spellCheck=False),
        ),
        html.Div(id="landscape-info", className="info"),
    )
    optimizer = _section(
        "Optimizer (the ball)",
        dcc.Dropdown(
            id="optimizer-dropdown", options=_optimizer_options(), value="momentum", clearable=False
        ),
        _field(
            "learning rate (log scale)",
            html.Div(
                [
                    html.Div(
                        [
                            dcc.Slider(
                                id="lr-slider",
                                min=LR_LOG_RANGE[0],
                                max=LR_LOG_RANGE[1],
                                step=0.01,
                                value=-1.7,
                                marks=_lr_marks(),
                                updatemode="mouseup",
                                included=False,
                                allow_direct_input=False,
                            ),
                            html.Div(
                                id="edge-marker",
                                className="edge-marker",
                                style={"display": "none"},
                                title="stability edge at the ball's curvature now: a larger lr overshoots",
                            ),
                        ],
                        className="slider-wrap",
                    ),
                    dcc.Input(
                        id="lr-input",
                        type="number",
                        step="any",
                        debounce=True,
                        className="num-input",
                    ),
                ],
                className="row",
            ),
        ),
        html.Div(id="lr-note", className="note ok"),
        _field(
            "momentum β (0 ≤ β < 1: type 0.99 or 0.999 in the box)",
            html.Div(
                [
                    html.Div(
                        dcc.Slider(
                            id="momentum-slider",
                            min=0,
                            max=0.99,
                            step=0.01,
                            value=0.9,
                            marks={0: "0", 0.5: "0.5", 0.9: "0.9"},
                            updatemode="mouseup",
                            allow_direct_input=False,
                        ),
                        className="slider-wrap",
                    ),
                    dcc.Input(
                        id="momentum-input",
                        type="number",
                        step="any",
                        debounce=True,
                        className="num-input",
                    ),
                ],
                className="row",
            ),
        ),
        html.Div(id="rule-math", className="math"),
    )
    start = _section(
        "Start and budget",
        html.Div(
            [
                "start ",
                html.B(id="start-text"),
                " ",
                html.Button("default start", id="start-default", n_clicks=0, className="small"),
            ],
            className="info",
        ),
        html.Div("Click anywhere on the map to drop the ball there.", className="hint"),
        html.Div(
            [
                _field(
                    "steps",
                    dcc.Input(
                        id="steps-input",
                        type="number",
                        step="any",
                        debounce=True,
                        className="num-input",
                    ),
                ),
                _field(
                    "seed",
                    dcc.Input(
                        id="seed-input",
                        type="number",
                        step="any",
                        debounce=True,
                        className="num-input",
                    ),
                ),
                _field(
                    "target U",
                    dcc.Input(
                        id="target-input",
                        type="number",
                        step="any",
                        debounce=True,
                        placeholder="auto",
                        className="num-input",
                    ),
                ),
            ],
            className="row three",
        ),
    )
    race = _section(
        "Race",
        html.Div("Race other optimizers from the same start with the same step budget.", className="hint"),
        dcc.Dropdown(
            id="race-dropdown",
            options=[{"label": n, "value": n} for n in RULES],
            multi=True,
            placeholder="add optimizers to the race…",
        ),
        html.Div(id="racer-rows", className="racer-rows"),
    )
    swarm = _section(
        "Swarm and temperature",
        dcc.Checklist(
            id="swarm-on", options=[{"label": " swarm: many balls with noise", "value": "on"}], value=[]
        ),
        html.Div(
            [
                _field(
                    "balls",
                    dcc.Input(
                        id="swarm-n",
                        type="number",
                        step="any",
                        debounce=True,
                        className="num-input",
                    ),
                ),
                _field(
                    "noise level",
                    dcc.Input(
                        id="noise-level",
                        type="number",
                        step="any",
                        debounce=True,
                        className="num-input",
                    ),
                ),
            ],
            className="row",
        ),
        dcc.RadioItems(
            id="noise-kind",
            options=[
                {"label": " gradient noise σ (on the ball's optimizer)", "value": "gradient"},
                {"label": " Langevin temperature T (over-damped)", "value": "langevin"},
                {"label": " no noise", "value": "none"},
            ],
            value="gradient",
            className="radios",
        ),
        dcc.RadioItems(
            id="swarm-spread",
            options=[
                {"label": " all from the start", "value": "start"},
                {"label": " spread at random over the map", "value": "random"},
            ],
            value="start",
            className="radios",
        ),
    )
    view = _section(
        "View",
        dcc.Checklist(
            id="view-options",
            value=["ghost"],
            options=[{"label": " show the whole path faintly", "value": "ghost"}],
        ),
        dcc.Checklist(
            id="play-options",
            value=["autoplay"],
            options=[{"label": " play automatically after each change", "value": "autoplay"}],
        ),
    )
    return html.Aside(
        [
            html.Section(
                [
                    html.H3("Experiments from the seeds"),
                    presets,
                    html.Div(id="preset-note", className="hint"),
                ],
                className="panel",
            ),
            landscape,
            optimizer,
            start,
            race,
            swarm,
            view,
        ],
        className="sidebar",
    )


def player() -> html.Div:
    return html.Div(
        [
            html.Button(
                "⟲ Reset Ball",
                id="reset-ball",
                n_clicks=0,
                className="primary",
                title="put the ball back at the start and run again",
            ),
            html.Button("▶ Play", id="play-button", n_clicks=0),
            html.Button("❚❚ Pause", id="pause-button", n_clicks=0),
            html.Button("Step ▸", id="step-button", n_clicks=0, title="one optimizer step forward"),
            dcc.Dropdown(
                id="speed-dropdown",
                options=[{"label": k, "value": v} for k, v in SPEEDS],
                value=DEFAULT_SPEED,
                clearable=False,
                searchable=False,
                className="speed",
            ),
            html.Div(
                html.Div(id="progress-fill", className="progress-fill"),
                id="progress-bar",
                className="progress",
                title="click to jump",
            ),
            html.Span(id="frame-text", className="frame-text"),
            html.Span(id="player-status", className="status"),
        ],
        className="player",
        id="player-bar",
    )


def theory_panel() -> html.Div:
    return html.Div(
        [
            html.H3(
                [
                    "Theory at the ball, ",
                    html.Span(id="theory-step"),
                    " ",
                    html.Span(id="saddle-badge", className="badge saddle hidden"),
                ]
            ),
            html.Div(
                ["curvature of the hill (the Hessian's eigenvalues λ): ", html.B(id="theory-eigs")],
                className="stat",
            ),
            html.Div(id="theory-eigs-words", className="words"),
            html.Div(["condition number κ: ", html.B(id="theory-kappa")], className="stat"),
            html.Div(id="theory-kappa-words", className="words"),
            html.Div(
                ["stability edge at the ball's current curvature: ", html.B(id="theory-edge")],
                className="stat",
            ),
            html.Div(id="theory-lr", className="words"),
            html.Div(id="edge-warning", className="stat warning"),
            html.Div(id="adaptive-scale", className="stat"),
            html.Div(id="arrow-note", className="hint"),
            html.Div(id="theory-rule", className="math"),
        ],
        className="panel theory",
        id="theory-panel",
    )


def play_side() -> html.Div:
    """The play mode's panel beside the map: the 3-D surface and the theory at the ball."""
    return html.Div(
        [
            dcc.Graph(id="surface-graph", config=GRAPH_CONFIG, className=VIEW_CLASSES["surface"]),
            theory_panel(),
        ],
        className="side-panel",
    )


def create_layout() -> html.Div:
    from descent.arena.modes import DEFAULT_MODE, main_panels, mode_buttons, side_panels

    header = html.Header(
        [
            html.Div(
                [
                    html.H1("The Descent Arena"),
                    html.P(
                        "A ball on a hill is the model's state; the slope is the gradient; momentum is "
                        "inertia; noise is temperature. Reach the global minimum."
                    ),
                ],
                className="title",
            ),
            html.Div(
                [
                    dcc.Input(id="share-link", type="text", readOnly=True, className="share"),
                    dcc.Clipboard(
                        target_id="share-link", title="copy the link to this run", className="clip"
                    ),
                    html.Button(
                        "PNG", id="png-button", n_clicks=0, className="small", title="download the map as PNG"
                    ),
                    html.Button(
                        "CSV", id="csv-button", n_clicks=0, className="small", title="trajectories as CSV"
                    ),
                    html.Button(
                        "JSON",
                        id="json-button",
                        n_clicks=0,
                        className="small",
                        title="trajectories and spec as JSON",
                    ),
                ],
                className="actions",
            ),
        ]
    )
    views = html.Main(
        [
            mode_buttons(),
            player(),
            html.Div(id="input-message", className="message", role="alert"),
            html.Div(id="run-message", className="message", role="alert"),
            html.Div(id="outcome-text", className="outcome"),
            html.Div(id="barrier-text", className="barrier"),  # an L2 barrier's minima (barrier.py)
            # the map first and largest; the 3-D surface and the theory at the ball beside it on a wide
            # screen, under it on a narrow one (arena.css)
            # the modes (descent.arena.modes): each shows its panel beside the map, or in its place
            html.Div(
                [
                    html.Div(
                        [
                            html.Div(
                                dcc.Graph(id="map-graph", config=GRAPH_CONFIG, className="graph map"),
                                id="map-slot",
                            ),
                            *main_panels(),
                        ],
                        className="map-main",
                    ),
                    html.Div(side_panels(), className="side"),
                ],
                className="map-row",
            ),
            html.Div(
                [html.H3("Leaderboard", id="board-title"), html.Div(id="leaderboard")],
                className="panel board",
            ),
            html.Div(
                [
                    dcc.Graph(id="loss-graph", config=GRAPH_CONFIG, className=VIEW_CLASSES["loss"]),
                    dcc.Graph(id="energy-graph", config=GRAPH_CONFIG, className=VIEW_CLASSES["energy"]),
                    dcc.Graph(id="swarm-graph", config=GRAPH_CONFIG, className="graph small"),
                ],
                className="grid three",
                id="curves",
            ),
        ],
        className="main",
    )
    stores = [
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="state-store"),
        dcc.Store(id="anim-store"),
        dcc.Store(id="map-key"),  # the structure of the map figure the page shows (see callbacks)
        dcc.Store(id="views-request"),  # set by the player: the run whose slower views it wants now
        dcc.Store(id="arrows-store"),
        dcc.Store(id="share-store"),
        dcc.Store(id="player-sink"),
        dcc.Store(id="url-sink"),
        dcc.Store(id="png-sink"),
        dcc.Store(id="map-click"),
        dcc.Store(id="mode", data=DEFAULT_MODE),  # the mode shown (descent.arena.modes)
        dcc.Store(id="state-request"),  # a mode's new state for the page ({"state": ..., "t": ...})
        # an action that waits for a landscape being built, and the poll that applies it again when ready
        dcc.Store(id="build-pending"),
        dcc.Interval(id="build-poll", interval=1000, disabled=True),
        dcc.Download(id="download"),
    ]
    return html.Div([*stores, header, html.Div([controls(), views], className="body")], className="app")
