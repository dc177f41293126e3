"""The page's modes, registered by name: each mode is a name, a button label, what it shows (beside the
map, and optionally in the map's place) and the callbacks that fill it.

- ``play``: the player (a single ball, a race or a swarm, as the state says): the 3-D surface and the
  theory at the ball beside the map (`descent.arena.playmode`);
- ``step``: one optimizer step at a time, told in words and arrows (`descent.arena.stepmode`);
- ``maps``: the basin map and the phase map beside the map (`descent.arena.mapsmode`).

The layout asks the registry for the mode buttons and the panels (`mode_buttons`, `main_panels`,
`side_panels`); `register_modes` wires the switch and each mode's own callbacks. Every element a
mode adds has an id of its own, and a mode's callbacks address their outputs by those ids (Dash's
``output=dict(...)``: a dict of named outputs, never a position in a list). A mode that wants to change
the page's state writes the whole new state into the ``state-request`` store; the page's one state
callback (`descent.arena.callbacks`) applies it like any other control.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dash import ALL, Dash, Input, Output, ctx, html, no_update

DEFAULT_MODE = "play"
HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}


@dataclass(frozen=True)
class Mode:
    """One of the page's modes. ``side``: what it shows beside the map; ``main``: what it shows in the
    map's place (None: the map stays); ``register``: its callbacks (given the Dash app); ``player``:
    whether the player's bar shows in this mode."""

    name: str
    label: str
    title: str
    side: Callable[[], Any] | None = None
    main: Callable[[], Any] | None = None
    register: Callable[[Dash], None] | None = None
    player: bool = True


MODES: dict[str, Mode] = {}


def register_mode(mode: Mode) -> Mode:
    """Add ``mode`` to the page under its name (a name is registered once)."""
    if mode.name in MODES and MODES[mode.name] != mode:
        raise ValueError(f"an Arena mode named {mode.name!r} is registered already")
    MODES[mode.name] = mode
    return mode


def mode_id(kind: str, name: str) -> dict[str, str]:
    """The id of a mode's element: ``kind`` 'button', 'side' or 'main'."""
    return {"type": f"mode-{kind}", "mode": name}


def _builtin() -> None:
    """The page's own modes (imported here: their modules import this one)."""
    from descent.arena import mapsmode, playmode, stepmode

    register_mode(playmode.MODE)
    register_mode(stepmode.MODE)
    register_mode(mapsmode.MODE)


def modes() -> dict[str, Mode]:
    if not MODES:
        _builtin()
    return MODES


def mode_buttons() -> html.Div:
    return html.Div(
        [
            html.Button(
                mode.label,
                id=mode_id("button", name),
                n_clicks=0,
                title=mode.title,
                className="mode-button" + (" active" if name == DEFAULT_MODE else ""),
            )
            for name, mode in modes().items()
        ],
        className="modes",
        role="tablist",
    )


def side_panels() -> list:
    return [
        html.Div(mode.side(), id=mode_id("side", name), style=SHOWN if name == DEFAULT_MODE else HIDDEN)
        for name, mode in modes().items()
        if mode.side is not None
    ]


def main_panels() -> list:
    return [
        html.Div(mode.main(), id=mode_id("main", name), className="mode-main", style=HIDDEN)
        for name, mode in modes().items()
        if mode.main is not None
    ]


def switch(name: str) -> dict[str, Any]:
    """Every output of the mode switch for mode ``name``, by name."""
    chosen = modes()[name]
    return {
        "mode": name,
        "buttons": ["mode-button" + (" active" if n == name else "") for n in modes()],
        "sides": [SHOWN if n == name else HIDDEN for n, m in modes().items() if m.side is not None],
        "mains": [SHOWN if n == name else HIDDEN for n, m in modes().items() if m.main is not None],
        "map": HIDDEN if chosen.main is not None else SHOWN,
        "player": SHOWN if chosen.player else HIDDEN,
    }


def register_modes(app: Dash) -> None:
    """The mode switch (a button per mode -> the ``mode`` store and what is shown) and each mode's
    callbacks."""

    @app.callback(
        output={
            "mode": Output("mode", "data"),
            "buttons": Output(mode_id("button", ALL), "className"),
            "sides": Output(mode_id("side", ALL), "style"),
            "mains": Output(mode_id("main", ALL), "style"),
            "map": Output("map-slot", "style"),
            "player": Output("player-bar", "style"),
        },
        inputs={"clicks": Input(mode_id("button", ALL), "n_clicks")},
        prevent_initial_call=True,
    )
    def _switch(clicks):
        trigger = ctx.triggered_id
        if not isinstance(trigger, dict) or trigger.get("mode") not in modes() or not any(clicks or []):
            return dict.fromkeys(("mode", "buttons", "sides", "mains", "map", "player"), no_update)
        return switch(trigger["mode"])

    for mode in modes().values():
        if mode.register is not None:
            mode.register(app)
