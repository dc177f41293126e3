"""The page's "Player" mode: the state's run (a single ball, a race or a swarm) played back in the
browser (assets/arena.js), with the 3-D surface and the theory at the ball beside the map.

The page's state callback (`descent.arena.callbacks`) sends the run's first frame: the map and the
player's data from the plain runs. This mode's callbacks follow it:

- ``views``: once the map shows that first frame the player asks for the rest (``views-request``: the
  run's id): the 3-D surface, the curves, the swarm's histogram, and what reads the ball's probes (its
  probed run, `descent.arena.runner.probed_ball`): the update arrows and, for a rule whose stability
  edge reads its running scale, the theory at the ball and the note under the lr slider;
- ``download``: the run as CSV or JSON; ``png``: the map as an image;
- the player's client-side hooks: a new run (``anim-store``), its arrows (``arrows-store``) and the
  Play / Pause / Step / speed / autoplay controls.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from dash import ClientsideFunction, Dash, Input, Output, State, ctx, dcc, no_update

from descent.arena.callbacks import RUNS_BY_ID, VIEWS_BY_ID
from descent.arena.layout import VIEW_CLASSES, play_side
from descent.arena.modes import Mode
from descent.arena.runner import run_state
from descent.arena.state import normalize, state_url
from descent.arena.views import later_views

log = logging.getLogger(__name__)

#: the slower views' callback's outputs, by name (``lr_note``: only for a rule whose edge reads its
#: running scale; the state callback's note stands otherwise)
VIEWS = {
    "surface": Output("surface-graph", "figure"),
    "loss": Output("loss-graph", "figure"),
    "energy": Output("energy-graph", "figure"),
    "swarm": Output("swarm-graph", "figure"),
    "arrows": Output("arrows-store", "data"),
    "lr_note": Output("lr-note", "children", allow_duplicate=True),
    "lr_note_class": Output("lr-note", "className", allow_duplicate=True),
    "edge_marker": Output("edge-marker", "style", allow_duplicate=True),
    **{f"{name}_class": Output(f"{name}-graph", "className", allow_duplicate=True) for name in VIEW_CLASSES},
}


def slower_views(run_id: str | None) -> dict[str, Any]:
    """The outputs of the ``views`` callback (``VIEWS``) for the run with id ``run_id``: the figures
    made with its first frame and what reads the ball's probes (`views.later_views`). Never raises."""
    v = VIEWS_BY_ID.items.get(run_id)
    if v is None:
        return dict.fromkeys(VIEWS, no_update)
    out = {"surface": v.surface, "loss": v.loss, "energy": v.energy, "swarm": v.swarm}
    out.update({f"{name}_class": css for name, css in VIEW_CLASSES.items()})  # current again
    out.update(arrows=None, lr_note=no_update, lr_note_class=no_update, edge_marker=no_update)
    run = RUNS_BY_ID.items.get(run_id)
    if run is None:
        return out
    try:
        later = later_views(run, run_id)
    except Exception as error:  # noqa: BLE001 - arrows and the running theory are optional
        log.warning("the ball's probed views failed: %s", error)
        return out
    arrows = later["arrows"]
    if arrows is not None and later["theory"] is not None:
        arrows = {**arrows, "theory": later["theory"]}
    out["arrows"] = arrows
    if later["lr_note"] is not None and later["lr_note"] != (v.lr_note, v.lr_note_level, v.edge_marker):
        # the state callback's note is this one unless the probe missed a frame (then: a fresh state)
        text, level, marker = later["lr_note"]
        out.update(lr_note=text, lr_note_class=f"note {level}", edge_marker=marker)
    return out


def export(kind: str, state: dict) -> dict:
    """CSV (one row per step, particle and racer) or JSON (the state, its URL and every trajectory)."""
    run = run_state(normalize(state))
    if kind == "json":
        payload = {
            "arena_state": run.state,
            "url": state_url(run.state),
            "runs": [{"racer": i, "trajectory": t.to_dict()} for i, t in enumerate(run.trajectories)],
        }
        return dcc.send_string(json.dumps(payload), "descent-arena.json")
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        for i, traj in enumerate(run.trajectories):
            path = traj.write_csv(Path(tmp) / f"{i}.csv")
            lines = path.read_text().splitlines()
            if i == 0:
                out.write("racer,optimizer," + lines[0] + "\n")
            for line in lines[1:]:
                out.write(f"{i},{traj.optimizer.name},{line}\n")
    return dcc.send_string(out.getvalue(), "descent-arena.csv")


def register(app: Dash) -> None:
    # after the map: the 3-D surface, the curves, the swarm histogram and what reads the ball's probes,
    # in one request; the player asks for them once the map shows the run's first frame, so that this
    # work and these figures' drawing never delay that frame
    @app.callback(output=VIEWS, inputs={"run_id": Input("views-request", "data")}, prevent_initial_call=True)
    def _views(run_id):
        return slower_views(run_id)

    @app.callback(
        output={"download": Output("download", "data")},
        inputs={"csv": Input("csv-button", "n_clicks"), "json": Input("json-button", "n_clicks")},
        state={"state": State("state-store", "data")},
        prevent_initial_call=True,
    )
    def _download(csv, json, state):
        if not state:
            return {"download": no_update}
        try:
            return {"download": export("json" if ctx.triggered_id == "json-button" else "csv", state)}
        except Exception as error:  # noqa: BLE001
            log.warning("export failed: %s", error)
            return {"download": no_update}

    # the client-side player (assets/arena.js); Dash passes a client-side function its inputs in order
    app.clientside_callback(
        ClientsideFunction("arena", "load"), Output("player-sink", "data"), Input("anim-store", "data")
    )
    app.clientside_callback(
        ClientsideFunction("arena", "arrows"),
        Output("player-sink", "data", allow_duplicate=True),
        Input("arrows-store", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("arena", "control"),
        Output("player-sink", "data", allow_duplicate=True),
        Input("play-button", "n_clicks"),
        Input("pause-button", "n_clicks"),
        Input("step-button", "n_clicks"),
        Input("speed-dropdown", "value"),
        Input("play-options", "value"),
        prevent_initial_call="initial_duplicate",
    )
    app.clientside_callback(
        ClientsideFunction("arena", "png"),
        Output("png-sink", "data"),
        Input("png-button", "n_clicks"),
        prevent_initial_call=True,
    )


MODE = Mode(
    "play",
    "Player",
    "the ball, a race or a swarm played back step by step",
    side=play_side,
    register=register,
)
