"""Dash callbacks: the page's one state callback, which applies a user action to the state (controls ->
state -> controls) and runs the state (state -> the map and the player's data), its outputs addressed
by name (``CONTROL_OUTPUTS``, ``VIEW_OUTPUTS``); the share link; and, through the mode registry
(`descent.arena.modes`), every mode's own callbacks (the player's slower views, exports and client-side
hooks: `descent.arena.playmode`). Server callbacks never raise: any error becomes a message on the
page and the previous run stays on screen.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, no_update

from descent._errors import DescentError
from descent.arena import barrier
from descent.arena import views as views_module
from descent.arena.controls import CONTROLS, control_values, racer_rows, reduce
from descent.arena.layout import VIEW_CLASSES, racer_row_components
from descent.arena.runner import (
    CACHE_BYTES,
    LandscapeBuilding,
    LRUCache,
    building,
    get_landscape,
    run_state,
    tensor_bytes,
)
from descent.arena.state import FORMULA, PRESETS, default_state, normalize, state_from_search, state_url

log = logging.getLogger(__name__)

# run id -> ArenaRun, for the player's later views (`playmode`); run id -> Views, for the slower views. Both
# are bounded in bytes too: a swarm's run holds tens of MB, its views (the player's lists) about as much.
RUNS_BY_ID = LRUCache(16, CACHE_BYTES, lambda run: tensor_bytes(run.trajectories))
VIEWS_BY_ID = LRUCache(16, CACHE_BYTES, lambda views: _run_bytes(views.run_id))


def _run_bytes(run_id: str) -> int:
    run = RUNS_BY_ID.items.get(run_id)
    return tensor_bytes(run.trajectories) if run is not None else 2**20


# controls whose change is read from their value (the rest: buttons, clicks, url)
_VALUE_INPUTS = [c for c in CONTROLS if c != "formula-input"]
_RACER_FIELDS = {"racer-lr": "lr", "racer-momentum": "momentum", "racer-other": "other"}
_RACER_INPUTS = {"racer-lr": "lrs", "racer-momentum": "betas", "racer-other": "others"}  # the inputs' names


def _error_text(error: Exception) -> str:
    if isinstance(error, DescentError):
        return str(error)
    log.exception("arena callback failed")
    return f"internal error ({type(error).__name__}): {error}"


def controller(
    trigger: Any, values: dict[str, Any], state: dict | None, search: str | None, formula: str | None
) -> tuple[dict[str, Any], str, str]:
    """Apply the triggering control to the state: (new state, message, preset note). Never raises."""
    new, message, note, _ = control_step(trigger, values, state, search, formula)
    return new, message, note


def control_step(
    trigger: Any, values: dict[str, Any], state: dict | None, search: str | None, formula: str | None
) -> tuple[dict[str, Any], str, str, dict[str, Any] | None]:
    """`controller`'s (new state, message, note) and the user's action to apply again once the
    landscape it waits for is built (``{"control", "value"}``; None when it does not wait). Never
    raises."""
    note = ""
    try:
        current = normalize(state) if state else default_state()
    except DescentError:
        current = default_state()
    action: dict[str, Any] | None = None
    try:
        if trigger is None or trigger == "url":
            action = {"control": "url", "value": search}
            new, message = state_from_search(search)  # the nearest valid state, and what was refused
            return new, message or "", note, None
        elif isinstance(trigger, dict) and trigger.get("type") == "preset":
            new = reduce(current, "preset", trigger["index"])
            note = PRESETS[trigger["index"]][1]
        elif trigger in ("formula-apply", "formula-input"):
            action = {"control": "formula", "value": formula}
            new = reduce(current, "formula", formula)
        elif trigger == "map-click":
            if not values.get("map-click"):
                return current, "", note, None
            new = reduce(current, "map-click", values["map-click"])
        elif trigger == "start-default":
            new = reduce(current, "start-default", None)
        elif trigger == "state-request":
            # a mode's new state (descent.arena.modes), checked like a link's; or an action that waited
            # for a landscape's build, applied again (`register`'s build poll)
            request = values.get("state-request")
            replay = request.get("replay") if isinstance(request, dict) else None
            if isinstance(replay, dict) and replay.get("control") == "url":
                action = replay
                new, message = state_from_search(replay.get("value"))
                return new, message or "", note, None
            if isinstance(replay, dict):
                action = replay
                new = reduce(current, str(replay.get("control")), replay.get("value"))
                return new, "", note, None
            if not isinstance(request, dict) or "state" not in request:
                return current, "", note, None
            new = normalize(request["state"])
        else:
            action = {"control": trigger, "value": values.get(trigger)}
            new = reduce(current, trigger, values.get(trigger))
        return new, "", note, None
    except Exception as error:  # noqa: BLE001 - shown on the page
        fallback = current if trigger not in (None, "url") else default_state()
        retry = action if isinstance(error, LandscapeBuilding) else None
        return fallback, _error_text(error), note, retry


def _same(shown: Any, value: Any) -> bool:
    """Is the control already showing this value (then leave it alone: less to re-render)?"""
    if isinstance(shown, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return abs(shown - value) <= 1e-12 * max(1.0, abs(shown))
    return shown == value


def run_views(state: dict | None, resets: int | None, options: list | None) -> dict[str, Any]:
    """``{"views": Views}`` of ``state``'s run (its plain runs: what reads the ball's probes comes with
    the player's later request, `descent.arena.playmode`), or ``{"error": message}``."""
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


# the page's one state callback, its outputs by name: ``controls`` (each control's value, by its id),
# what follows from the state (``CONTROL_OUTPUTS``) and the player's run (``VIEW_OUTPUTS``)
CONTROL_OUTPUTS = {
    "state": ("state-store", "data"),
    "share": ("share-store", "data"),
    "message": ("input-message", "children"),
    "start_text": ("start-text", "children"),
    "landscape_info": ("landscape-info", "children"),
    "params_placeholder": ("params-input", "placeholder"),
    "momentum_slider_disabled": ("momentum-slider", "disabled"),
    "momentum_input_disabled": ("momentum-input", "disabled"),
    "preset_note": ("preset-note", "children"),
    "racer_rows": ("racer-rows", "children"),
    "pending": ("build-pending", "data"),
    "poll_off": ("build-poll", "disabled"),
    "barrier": ("barrier-text", "children"),
}
VIEW_OUTPUTS = {
    "map": ("map-graph", "figure"),
    "map_key": ("map-key", "data"),
    "board_title": ("board-title", "children"),
    "anim": ("anim-store", "data"),
    "outcome": ("outcome-text", "children"),
    "leaderboard": ("leaderboard", "children"),
    "run_message": ("run-message", "children"),
    "lr_note": ("lr-note", "children"),
    "lr_note_class": ("lr-note", "className"),
    "edge_marker": ("edge-marker", "style"),
    "rule_math": ("rule-math", "children"),
    "theory_rule": ("theory-rule", "children"),
    # the slower views (`descent.arena.playmode`) are marked stale until the new run's arrive
    **{f"{name}_class": (f"{name}-graph", "className") for name in ("surface", "loss", "energy")},
}

STALE = " stale"  # added to a slower view's class (layout.VIEW_CLASSES) while it shows the previous run


def unchanged() -> dict[str, Any]:
    """Every output of the state callback left as it is."""
    return {
        "controls": dict.fromkeys(CONTROLS, no_update),
        **dict.fromkeys(CONTROL_OUTPUTS, no_update),
        **dict.fromkeys(VIEW_OUTPUTS, no_update),
    }


def view_outputs(
    state: dict, resets: int | None, options: list | None, map_key: str | None
) -> dict[str, Any]:
    """The run's outputs (``VIEW_OUTPUTS``): the map only when its structure changed, the player's data,
    the texts; on an error, its message with the old run kept."""
    result = run_views(state, resets, options)
    if "views" not in result:
        return {**dict.fromkeys(VIEW_OUTPUTS, no_update), "run_message": result["error"]}
    v = result["views"]
    VIEWS_BY_ID.get(v.run_id, lambda: v)
    key = v.map["layout"]["meta"]["key"]
    return {
        "map": v.map if key != map_key else no_update,
        "map_key": key,
        "board_title": "Swarm" if v.anim.get("swarm") else "Leaderboard",
        "anim": v.anim,
        "outcome": v.outcome,
        "leaderboard": v.leaderboard,
        "run_message": "",
        "lr_note": v.lr_note,
        "lr_note_class": f"note {v.lr_note_level}",
        "edge_marker": v.edge_marker,
        "rule_math": v.theory_static,
        "theory_rule": v.theory_static,
        **{f"{name}_class": css + STALE for name, css in VIEW_CLASSES.items()},
    }


def register(app: Dash) -> None:
    """The page's state callback (controls -> state -> controls, and state -> the player's run), the
    share link, and every mode's callbacks (`descent.arena.modes`: the switch, then each mode's own)."""
    from descent.arena.modes import register_modes

    register_modes(app)

    # One request per user action: the controller (controls -> state -> controls) and the runner
    # (state -> the map and the player's data) in one callback. The map figure travels only when its
    # structure changes (landscape, start, racers, swarm, ghost): otherwise the player puts the new run
    # into the figure the page already shows (assets/arena.js). The slower views follow (the player
    # mode's ``views-request``, `descent.arena.playmode`).
    @app.callback(
        output={
            "controls": {c: Output(c, "value") for c in CONTROLS},
            **{name: Output(*target) for name, target in CONTROL_OUTPUTS.items()},
            **{name: Output(*target) for name, target in VIEW_OUTPUTS.items()},
        },
        inputs={
            "search": Input("url", "search"),
            "presets": Input({"type": "preset", "index": ALL}, "n_clicks"),
            "apply": Input("formula-apply", "n_clicks"),
            "submit": Input("formula-input", "n_submit"),
            "click": Input("map-click", "data"),
            "default": Input("start-default", "n_clicks"),
            "lrs": Input({"type": "racer-lr", "index": ALL}, "value"),
            "betas": Input({"type": "racer-momentum", "index": ALL}, "value"),
            "others": Input({"type": "racer-other", "index": ALL}, "value"),
            "values": {c: Input(c, "value") for c in _VALUE_INPUTS},
            "resets": Input("reset-ball", "n_clicks"),
            "options": Input("view-options", "value"),
            "request": Input("state-request", "data"),
        },
        state={
            "state": State("state-store", "data"),
            "formula": State("formula-input", "value"),
            "map_key": State("map-key", "data"),
        },
    )
    def _update(**inputs):
        try:
            return _update_or_raise(**inputs)
        except Exception as error:  # noqa: BLE001 - a request the page never sends (a forged store)
            return {**unchanged(), "message": _error_text(error)}

    app.clientside_callback(
        ClientsideFunction("arena", "share"), Output("share-link", "value"), Input("share-store", "data")
    )

    @app.callback(
        output={"request": Output("state-request", "data", allow_duplicate=True)},
        inputs={"ticks": Input("build-poll", "n_intervals")},
        state={"pending": State("build-pending", "data")},
        prevent_initial_call=True,
    )
    def _poll_build(ticks, pending):
        """While an action waits for a landscape's build (``build-pending``), apply it again once no
        build is under way (the state callback then clears ``build-pending``, or sets it anew)."""
        if not pending or building():
            return {"request": no_update}
        return {"request": {"replay": pending, "t": ticks}}


def _update_or_raise(
    search, presets, apply, submit, click, default, lrs, betas, others, values, resets, options, request,
    state, formula, map_key,
) -> dict[str, Any]:  # fmt: skip
    trigger = ctx.triggered_id
    if trigger in ("reset-ball", "view-options") and state:
        # the same state, run again (a new id: the player restarts) or drawn another way
        controls, new = unchanged(), state
    else:
        values = {**values, "map-click": click, "state-request": request}
        controls, new = _control(trigger, search, presets, lrs, betas, others, values, state, formula)
    if new == state and trigger not in ("reset-ball", "view-options"):
        return {**controls, **dict.fromkeys(VIEW_OUTPUTS, no_update)}
    return {**controls, **view_outputs(new, resets, options, map_key)}


def _control(trigger, search, presets, lrs, betas, others, values, state, formula) -> tuple[dict, dict]:
    """The controller's outputs (``controls`` and ``CONTROL_OUTPUTS``, by name; the views left as they
    are) and the new state."""
    if isinstance(trigger, dict) and trigger.get("type") == "preset" and not any(presets or []):
        trigger = None  # the preset buttons' first render, not a click
    if isinstance(trigger, dict) and trigger.get("type") in _RACER_FIELDS:
        field = _RACER_FIELDS[trigger["type"]]
        column = {"lr": lrs, "momentum": betas, "other": others}[field]
        ids = [entry["id"]["index"] for entry in ctx.args_grouping[_RACER_INPUTS[trigger["type"]]]]
        index = trigger["index"]
        values["racer-field"] = (index, field, column[ids.index(index)] if index in ids else None)
        trigger = "racer-field"
    new, message, note, retry = control_step(trigger, values, state, search, formula)
    shown = control_values(new)
    if message and trigger in CONTROLS and trigger in values:
        # the refused value stays in its box beside the message (not the old value: retyping that
        # would change nothing, so no request would clear the message), and the state keeps the old
        shown[trigger] = values[trigger]
    if message and trigger in ("formula-apply", "formula-input"):
        shown["formula-input"] = formula  # keep the user's text to fix it
        shown["landscape-dropdown"] = values.get("landscape-dropdown")
    if trigger == "landscape-dropdown" and values.get("landscape-dropdown") == FORMULA:
        shown["landscape-dropdown"] = FORMULA
        shown["landscape-info"] = "Type a formula in x and y in the box and press Apply (or Enter)."
    current = {**values, "formula-input": formula}
    old_rows = racer_rows(normalize(state)) if state else None
    rows = (
        racer_row_components(shown["racer-rows"])
        if trigger != "racer-field" and shown["racer-rows"] != old_rows
        else no_update
    )
    outputs = {
        "controls": {c: no_update if _same(shown[c], current.get(c)) else shown[c] for c in CONTROLS},
        "state": new if new != state else no_update,
        "share": state_url(new),
        "message": message,
        "start_text": shown["start-text"],
        "landscape_info": shown["landscape-info"],
        "params_placeholder": shown["params-placeholder"],
        "momentum_slider_disabled": shown["momentum-disabled"],
        "momentum_input_disabled": shown["momentum-disabled"],
        "preset_note": note,
        "racer_rows": rows,
        "pending": retry,
        "poll_off": retry is None,
        "barrier": barrier.text(get_landscape(new["landscape"], new["params"])),
    }
    return {**unchanged(), **outputs}, new
