"""Dash callbacks: one callback per user action that applies it to the state (controls -> state ->
controls) and runs the state (state -> the map and the player's data); one that follows with the slower
views; the exports; and the client-side player hooks (assets/arena.js). Server callbacks never raise:
any error becomes a message on the page and the previous run stays on screen.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, dcc, no_update

from descent._errors import DescentError
from descent.arena import views as views_module
from descent.arena.controls import CONTROLS, control_values, racer_rows, reduce
from descent.arena.layout import racer_row_components
from descent.arena.runner import CACHE_BYTES, LRUCache, run_state, tensor_bytes
from descent.arena.state import FORMULA, PRESETS, default_state, normalize, state_from_search, state_url

log = logging.getLogger(__name__)

# run id -> ArenaRun, for the arrows callback; run id -> Views, for the slower views' callback. Both
# are bounded in bytes too: a swarm's run holds tens of MB, its views (the player's lists) about as much.
RUNS_BY_ID = LRUCache(16, CACHE_BYTES, lambda run: tensor_bytes(run.trajectories))
VIEWS_BY_ID = LRUCache(16, CACHE_BYTES, lambda views: _run_bytes(views.run_id))


def _run_bytes(run_id: str) -> int:
    run = RUNS_BY_ID.items.get(run_id)
    return tensor_bytes(run.trajectories) if run is not None else 2**20


# controls whose change is read from their value (the rest: buttons, clicks, url)
_VALUE_INPUTS = [c for c in CONTROLS if c != "formula-input"]
_RACER_FIELDS = {"racer-lr": "lr", "racer-momentum": "momentum", "racer-other": "other"}


def _error_text(error: Exception) -> str:
    if isinstance(error, DescentError):
        return str(error)
    log.exception("arena callback failed")
    return f"internal error ({type(error).__name__}): {error}"


def controller(
    trigger: Any, values: dict[str, Any], state: dict | None, search: str | None, formula: str | None
) -> tuple[dict[str, Any], str, str]:
    """Apply the triggering control to the state: (new state, message, preset note). Never raises."""
    note = ""
    try:
        current = normalize(state) if state else default_state()
    except DescentError:
        current = default_state()
    try:
        if trigger is None or trigger == "url":
            new, message = state_from_search(search)  # the nearest valid state, and what was refused
            return new, message or "", note
        elif isinstance(trigger, dict) and trigger.get("type") == "preset":
            new = reduce(current, "preset", trigger["index"])
            note = PRESETS[trigger["index"]][1]
        elif trigger in ("formula-apply", "formula-input"):
            new = reduce(current, "formula", formula)
        elif trigger == "map-click":
            if not values.get("map-click"):
                return current, "", note
            new = reduce(current, "map-click", values["map-click"])
        elif trigger == "start-default":
            new = reduce(current, "start-default", None)
        elif trigger == "state-request":
            # a mode's new state (descent.arena.modes): checked like a link's
            request = values.get("state-request")
            if not isinstance(request, dict) or "state" not in request:
                return current, "", note
            new = normalize(request["state"])
        else:
            new = reduce(current, trigger, values.get(trigger))
        return new, "", note
    except Exception as error:  # noqa: BLE001 - shown on the page
        fallback = current if trigger not in (None, "url") else default_state()
        return fallback, _error_text(error), note


def _same(shown: Any, value: Any) -> bool:
    """Is the control already showing this value (then leave it alone: less to re-render)?"""
    if isinstance(shown, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return abs(shown - value) <= 1e-12 * max(1.0, abs(shown))
    return shown == value


def run_views(state: dict | None, resets: int | None, options: list | None) -> dict[str, Any]:
    """Everything the runner callback outputs, or an error message with the old views kept."""
    if not state:
        return {"error": ""}
    try:
        state = normalize(state)
        ghost = "ghost" in (options or [])
        # a new id (the player restarts) for a new state, a Reset Ball or another drawing of the path
        key = json.dumps(state, sort_keys=True) + f"|{resets or 0}|{ghost}"
        run_id = hashlib.sha1(key.encode()).hexdigest()[:12]
        run = run_state(state)
        RUNS_BY_ID.get(run_id, lambda: run)
        return {"views": views_module.build_views(run, run_id, ghost=ghost)}
    except Exception as error:  # noqa: BLE001 - shown on the page
        return {"error": _error_text(error)}


def arrows_for(anim: dict | None) -> dict | None:
    """The ball's update arrows for the run the player just loaded (None in swarm mode or on error)."""
    if not anim or not anim.get("run"):
        return None
    run = RUNS_BY_ID.items.get(anim["run"])
    if run is None:
        return None
    try:
        return views_module.build_arrows(run, anim["run"])
    except Exception as error:  # noqa: BLE001 - arrows are optional
        log.warning("arrows failed: %s", error)
        return None


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
    from descent.arena.modes import register_modes

    register_modes(app)
    control_outputs = [
        *[Output(c, "value") for c in CONTROLS],
        Output("state-store", "data"),
        Output("share-store", "data"),
        Output("input-message", "children"),
        Output("start-text", "children"),
        Output("landscape-info", "children"),
        Output("params-input", "placeholder"),
        Output("momentum-slider", "disabled"),
        Output("momentum-input", "disabled"),
        Output("preset-note", "children"),
        Output("racer-rows", "children"),
    ]
    view_outputs = [
        Output("map-graph", "figure"),
        Output("map-key", "data"),
        Output("board-title", "children"),
        Output("anim-store", "data"),
        Output("outcome-text", "children"),
        Output("leaderboard", "children"),
        Output("run-message", "children"),
        Output("lr-note", "children"),
        Output("lr-note", "className"),
        Output("edge-marker", "style"),
        Output("rule-math", "children"),
        Output("theory-rule", "children"),
    ]

    # One request per user action: the controller (controls -> state -> controls) and the runner
    # (state -> the map and the player's data) in one callback. The map figure travels only when its
    # structure changes (landscape, start, racers, swarm, ghost): otherwise the player puts the new run
    # into the figure the page already shows (assets/arena.js). The slower views follow in `_more`.
    @app.callback(
        [*control_outputs, *view_outputs],
        [
            Input("url", "search"),
            Input({"type": "preset", "index": ALL}, "n_clicks"),
            Input("formula-apply", "n_clicks"),
            Input("formula-input", "n_submit"),
            Input("map-click", "data"),
            Input("start-default", "n_clicks"),
            Input({"type": "racer-lr", "index": ALL}, "value"),
            Input({"type": "racer-momentum", "index": ALL}, "value"),
            Input({"type": "racer-other", "index": ALL}, "value"),
            *[Input(c, "value") for c in _VALUE_INPUTS],
            Input("reset-ball", "n_clicks"),
            Input("view-options", "value"),
            Input("state-request", "data"),
        ],
        [State("state-store", "data"), State("formula-input", "value"), State("map-key", "data")],
    )
    def _update(search, presets, _apply, _submit, click, _default, lrs, betas, others, *rest):
        try:
            return _update_or_raise(
                search, presets, _apply, _submit, click, _default, lrs, betas, others, *rest
            )
        except Exception as error:  # noqa: BLE001 - a request the page never sends (a forged store)
            controls = [no_update] * len(control_outputs)
            controls[len(CONTROLS) + 2] = _error_text(error)  # input-message
            return [*controls, *[no_update] * len(view_outputs)]

    def _update_or_raise(search, presets, _apply, _submit, click, _default, lrs, betas, others, *rest):
        *values_list, resets, options, request, state, formula, map_key = rest
        trigger = ctx.triggered_id
        if trigger in ("reset-ball", "view-options") and state:
            # the same state, run again (a new id: the player restarts) or drawn another way
            controls = [no_update] * len(control_outputs)
            new = state
        else:
            controls, new = _control(
                trigger, search, presets, click, lrs, betas, others, values_list, state, formula, request
            )
        if new == state and trigger not in ("reset-ball", "view-options"):
            return [*controls, *[no_update] * len(view_outputs)]
        return [*controls, *_views(new, resets, options, map_key)]

    def _control(trigger, search, presets, click, lrs, betas, others, values_list, state, formula, request):
        """The controller's outputs (``control_outputs``) and the new state."""
        values = dict(zip(_VALUE_INPUTS, values_list))
        values["map-click"] = click
        values["state-request"] = request
        if isinstance(trigger, dict) and trigger.get("type") == "preset" and not any(presets or []):
            trigger = None  # the preset buttons' first render, not a click
        if isinstance(trigger, dict) and trigger.get("type") in _RACER_FIELDS:
            field = _RACER_FIELDS[trigger["type"]]
            column = {"lr": lrs, "momentum": betas, "other": others}[field]
            entries = next(
                e
                for e in ctx.inputs_list
                if isinstance(e, list) and e and e[0]["id"]["type"] == trigger["type"]
            )
            ids = [entry["id"]["index"] for entry in entries]
            index = trigger["index"]
            values["racer-field"] = (index, field, column[ids.index(index)] if index in ids else None)
            trigger = "racer-field"
        new, message, note = controller(trigger, values, state, search, formula)
        shown = control_values(new)
        if message and trigger in ("formula-apply", "formula-input"):
            shown["formula-input"] = formula  # keep the user's text to fix it
            shown["landscape-dropdown"] = values.get("landscape-dropdown")
        if trigger == "landscape-dropdown" and values.get("landscape-dropdown") == FORMULA:
            shown["landscape-dropdown"] = FORMULA
            shown["landscape-info"] = "Type a formula in x and y in the box and press Apply (or Enter)."
        current = {**values, "formula-input": formula}
        outputs = [no_update if _same(shown[c], current.get(c)) else shown[c] for c in CONTROLS]
        changed = new != state
        old_rows = racer_rows(normalize(state)) if state else None
        rows = (
            racer_row_components(shown["racer-rows"])
            if trigger != "racer-field" and shown["racer-rows"] != old_rows
            else no_update
        )
        controls = [
            *outputs,
            new if changed else no_update,
            state_url(new),
            message,
            shown["start-text"],
            shown["landscape-info"],
            shown["params-placeholder"],
            shown["momentum-disabled"],
            shown["momentum-disabled"],
            note,
            rows,
        ]
        return controls, new

    def _views(state, resets, options, map_key):
        """The runner's outputs: the map only when its structure changed, the player's data, the texts."""
        result = run_views(state, resets, options)
        if "views" not in result:
            return [*[no_update] * 6, result["error"], *[no_update] * 5]
        v = result["views"]
        VIEWS_BY_ID.get(v.run_id, lambda: v)
        key = v.map["layout"]["meta"]["key"]
        return [
            v.map if key != map_key else no_update,
            key,
            "Swarm" if v.anim.get("swarm") else "Leaderboard",
            v.anim,
            v.outcome,
            v.leaderboard,
            "",
            v.lr_note,
            f"note {v.lr_note_level}",
            v.edge_marker,
            v.theory_static,
            v.theory_static,
        ]

    # after the map: the 3-D surface, the curves, the swarm histogram and the update arrows, in one
    # request (made already by the runner, except the arrows: replaying the rule costs a short run).
    # The player asks for them (`views-request`: the run's id) once the map shows the run's first
    # frame, so that this work and these figures' drawing never delay that frame.
    @app.callback(
        output={
            "surface": Output("surface-graph", "figure"),
            "loss": Output("loss-graph", "figure"),
            "energy": Output("energy-graph", "figure"),
            "swarm": Output("swarm-graph", "figure"),
            "arrows": Output("arrows-store", "data"),
        },
        inputs={"run_id": Input("views-request", "data")},
        prevent_initial_call=True,
    )
    def _more(run_id):
        v = VIEWS_BY_ID.items.get(run_id)
        if v is None:
            return dict.fromkeys(("surface", "loss", "energy", "swarm", "arrows"), no_update)
        return {
            "surface": v.surface,
            "loss": v.loss,
            "energy": v.energy,
            "swarm": v.swarm,
            "arrows": arrows_for({"run": run_id}),
        }

    @app.callback(
        Output("download", "data"),
        [Input("csv-button", "n_clicks"), Input("json-button", "n_clicks")],
        State("state-store", "data"),
        prevent_initial_call=True,
    )
    def _download(_csv, _json, state):
        if not state:
            return no_update
        try:
            return export("json" if ctx.triggered_id == "json-button" else "csv", state)
        except Exception as error:  # noqa: BLE001
            log.warning("export failed: %s", error)
            return no_update

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
        [
            Input("play-button", "n_clicks"),
            Input("pause-button", "n_clicks"),
            Input("step-button", "n_clicks"),
            Input("speed-dropdown", "value"),
            Input("play-options", "value"),
        ],
        prevent_initial_call="initial_duplicate",
    )
    app.clientside_callback(
        ClientsideFunction("arena", "share"), Output("share-link", "value"), Input("share-store", "data")
    )
    app.clientside_callback(
        ClientsideFunction("arena", "png"),
        Output("png-sink", "data"),
        Input("png-button", "n_clicks"),
        prevent_initial_call=True,
    )
