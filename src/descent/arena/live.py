"""Live redraw while a slider is dragged: ``POST /api/ball`` runs the ball (racer 0) of an Arena state
and answers its path as compact JSON, so the page (assets/live.js) redraws the trajectory many times a
second during the drag. Dash's callbacks cannot: it drops an answer that is out of date by the time it
comes, so a slider with ``updatemode='drag'`` draws nothing until it is released. On release the page's
own callback runs the state as before.

The request body is JSON::

    {"s": "<the ?s= token of the page's state>" | "state": {...},
     "control": "lr-slider", "value": -1.52,       # optional: the control being dragged, its value
     "client": "k3j2", "seq": 17}                  # optional: the page's id and this request's number

The state is checked by `descent.arena.state.normalize` and the control applied by the page's own
reducer (`descent.arena.controls.reduce`), so the path is the one the released slider gives. The ball
runs through `run_spec` with the compiled kernel where it takes the run (backend ``"auto"``), no probes,
``steps`` of the state (at most its cap), positions saved every ``ceil(steps / 1000)`` steps. The answer::

    {"control": ..., "value": ..., "seq": 17, "optimizer": "momentum", "hyper": {"lr": 0.0302, ...},
     "label": "momentum lr=0.0302 β=0.9", "steps": 1000, "every": 1, "x": [...], "y": [...],
     "backend": "kernel", "ms": 1.3}

(a non-finite coordinate, after a divergence, is ``null``). A request that a newer one of the same
``client`` has overtaken before it ran answers ``{"superseded": true}`` without running. Anything
wrong with a request answers HTTP 400 with ``{"error": "<one line>"}`` (the package's message format),
never a 500. A run that the kernel does not take (a landscape with data) stops after
``LIVE_SECONDS`` of CPU time with a message, or as soon as a newer request of its client arrives.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from typing import Any

from dash import Dash

from descent._errors import DescentError, invalid, listed
from descent.arena.state import MAX_FRAMES_PLAYER, decode_state, normalize, racer_label, short, state_specs

log = logging.getLogger(__name__)

LIVE_ROUTE = "/api/ball"
#: the controls a live request may set (a slider being dragged, or its number box)
LIVE_CONTROLS = ("lr-slider", "momentum-slider", "lr-input", "momentum-input")
MAX_BODY = 64 * 1024  # bytes of request: a state token is at most 20000 characters
LIVE_FRAMES = MAX_FRAMES_PLAYER  # points of a path: at most this many (every ceil(steps / 1000) steps)
LIVE_SECONDS = 0.5  # CPU seconds of one live run (only a torch run comes near: a landscape with data)
CLIENTS = 256  # pages whose latest request number is remembered


class _Superseded(Exception):
    """A newer request of the same client arrived: this one's answer would not be drawn."""


class _Latest:
    """The newest request number seen per client (the last ``CLIENTS`` clients)."""

    def __init__(self) -> None:
        self.seqs: OrderedDict[str, int] = OrderedDict()
        self.lock = threading.Lock()

    def admit(self, client: str | None, seq: int | None) -> bool:
        """Record ``seq`` as ``client``'s newest; False when a newer one came first."""
        if client is None or seq is None:
            return True
        with self.lock:
            if self.seqs.get(client, -1) > seq:
                return False
            self.seqs[client] = seq
            self.seqs.move_to_end(client)
            while len(self.seqs) > CLIENTS:
                self.seqs.popitem(last=False)
            return True

    def overtaken(self, client: str | None, seq: int | None) -> bool:
        if client is None or seq is None:
            return False
        with self.lock:
            return self.seqs.get(client, -1) > seq


LATEST = _Latest()


def live_state(body: object) -> dict[str, Any]:
    """The checked state of a live request's body, with its control applied; raises DescentError."""
    from descent.arena.controls import reduce

    if not isinstance(body, dict):
        raise invalid("live request", short(body), 'a JSON object with "s" or "state"')
    unknown = sorted(set(body) - {"s", "state", "control", "value", "client", "seq"})
    if unknown:
        raise invalid("live request field", short(unknown[0]), "s, state, control, value, client or seq")
    if "s" in body:
        state = decode_state(body["s"])
    elif "state" in body:
        state = normalize(body["state"])
    else:
        raise invalid("live request", "no state", 'a JSON object with "s" (a ?s= token) or "state"')
    control = body.get("control")
    if control is None:
        return state
    if control not in LIVE_CONTROLS:
        raise invalid("live control", short(control), f"one of: {listed(LIVE_CONTROLS)}")
    return normalize(reduce(state, control, body.get("value")))


def ball_spec(state: dict[str, Any], default_start: list[float]):
    """The `RunSpec` of the state's ball (racer 0) for a live redraw: the page's spec of it without
    probes (so the compiled kernel takes it), its positions saved every ``ceil(steps / 1000)`` steps."""
    alone = {**state, "racers": state["racers"][:1], "swarm": {**state["swarm"], "on": False}}
    every = max(1, math.ceil(state["steps"] / (LIVE_FRAMES - 1)))
    return state_specs(alone, default_start)[0].with_(probes=[], save=f"every:{every}")


def _budget(client: str | None, seq: int | None):
    """A progress callback: stop at ``LIVE_SECONDS`` of CPU time, or when the client sent a newer one."""
    start = time.thread_time()

    def check(done: int, steps: int) -> None:
        if LATEST.overtaken(client, seq):
            raise _Superseded()
        used = time.thread_time() - start
        if used > LIVE_SECONDS and done < steps:
            raise invalid(
                "steps",
                steps,
                f"a live redraw the server can do in {LIVE_SECONDS:g} s (this landscape runs without the "
                f"compiled kernel: {done} steps took {used:.1f} s); fewer steps, or release the slider",
            )

    return check


def _coordinates(values) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]


def ball_path(state: dict[str, Any], client: str | None = None, seq: int | None = None) -> dict[str, Any]:
    """Run the ball of a normalised ``state`` (`run_spec`) and return its path; raises DescentError."""
    from descent.arena.runner import check_start, get_landscape
    from descent.spec import run_spec

    landscape = get_landscape(state["landscape"], state["params"])
    check_start(state, landscape)
    spec = ball_spec(state, [float(v) for v in landscape.start().squeeze(0).tolist()])
    start = time.perf_counter()
    traj = run_spec(spec, _budget(client, seq), landscape=landscape)
    seconds = time.perf_counter() - start
    positions = traj.positions[:, 0, :].double()
    racer = state["racers"][0]
    return {
        "optimizer": racer["optimizer"],
        "hyper": racer["hyper"],
        "label": racer_label(racer),
        "steps": state["steps"],
        "every": int(spec.save.split(":")[1]),
        "x": _coordinates(positions[:, 0]),
        "y": _coordinates(positions[:, 1]),
        "backend": traj.backend,
        "ms": round(1000 * seconds, 3),
    }


def answer(raw: bytes) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) for a live request's body. Never raises."""
    try:
        if len(raw) > MAX_BODY:
            raise invalid("live request", f"{len(raw)} bytes", f"at most {MAX_BODY} bytes")
        try:
            body = json.loads(raw.decode() or "null")
        except (UnicodeDecodeError, ValueError, RecursionError):
            text = raw[:40].decode(errors="replace")
            raise invalid("live request", short(text), "a JSON object") from None
        client, seq = _client(body)
        if not LATEST.admit(client, seq):
            return 200, {"superseded": True, "seq": seq}
        state = live_state(body)
        path = ball_path(state, client, seq)
        value = body.get("value")
        shown = value if isinstance(value, (int, float)) and math.isfinite(value) else None
        return 200, {"control": body.get("control"), "value": shown, "seq": seq, **path}
    except _Superseded:
        return 200, {"superseded": True, "seq": seq}
    except DescentError as error:
        return 400, {"error": " ".join(str(error).split())}
    except Exception as error:  # noqa: BLE001 - a live request is never a 500
        log.exception("live redraw failed")
        return 400, {"error": f"live redraw failed ({type(error).__name__}): {' '.join(str(error).split())}"}


def _client(body: object) -> tuple[str | None, int | None]:
    if not isinstance(body, dict):
        return None, None
    client, seq = body.get("client"), body.get("seq")
    if client is not None and not (isinstance(client, str) and 0 < len(client) <= 64):
        raise invalid("live client", short(client), "a string of 1 to 64 characters")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**53):
        raise invalid("live seq", short(seq), "an integer in [0, 2**53)")
    return client, seq


def register(app: Dash) -> None:
    """Add ``POST LIVE_ROUTE`` to the Dash app's Flask server."""
    from flask import Response, request

    @app.server.route(LIVE_ROUTE, methods=["POST"])
    def _live_ball() -> Response:
        length = request.content_length
        if length is not None and length > MAX_BODY:
            error = invalid("live request", f"{length} bytes", f"at most {MAX_BODY} bytes")
            status, body = 400, {"error": str(error)}
        else:
            status, body = answer(request.stream.read(MAX_BODY + 1))  # no more, whatever it says
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
        headers = {"Cache-Control": "no-store"}
        return Response(text, status=status, mimetype="application/json", headers=headers)
