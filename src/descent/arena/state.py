"""The Arena's whole state as one JSON-able dict, its URL form, its presets and its `RunSpec`s.

The state (schema ``STATE_VERSION``) holds everything a run depends on::

    {"v": 1, "landscape": "double-well" | "<formula in x, y>", "params": {"tilt": 0.3},
     "racers": [{"optimizer": "momentum", "hyper": {"lr": 0.02, "momentum": 0.0}}, ...],
     "start": null | [x, y], "steps": 2000, "seed": 0, "target": null | float,
     "swarm": {"on": false, "n": 500, "noise": "gradient" | "langevin" | "none", "level": 1.0,
               "spread": "start" | "random"}}

In the URL it is base64url-encoded compact JSON in ``?s=``, so a link reproduces the run. Racer 0 is
"the ball" (the seeds' single ball); the others race it from the same start with the same budget. In
swarm mode racer 0's optimizer drives ``n`` balls with gradient noise (the transform
``{"kind": "grad_noise", "sigma": level}``) or at Langevin temperature ``level`` (the ``langevin`` rule
at racer 0's learning rate).

The state is not a spec: :func:`state_specs` builds the engine's `RunSpec` (version 2) from it, so a link
made for an older spec format still opens. The ball's spec asks for the ``update_parts`` probe at the
frames it saves: the Arena draws its update arrows from it. Every spec asks for the ``"auto"`` backend:
the compiled kernel where it supports the run, else torch (the ball's probes, say); the two agree up to
floating-point rounding, so nothing on the page depends on which one ran.

Every value is checked here with the package's one message format; decoding a URL never raises.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
from typing import Any
from urllib.parse import parse_qs

from descent._errors import DescentError, check_number, invalid, listed
from descent.landscapes import LANDSCAPES
from descent.optim import RULES
from descent.spec import RunSpec

STATE_VERSION = 1
MAX_STEPS = 10_000
MAX_BALLS = 5_000
MAX_RACERS = 6
MAX_RACE_WORK = 30_000  # racers x steps: each racer is its own run, about 0.3 ms a step
MAX_SWARM_WORK = 5_000_000  # balls x steps of one batched swarm run
MAX_FRAMES_RACE = 3_000  # recorded frames per racer (the exports hold them all)
MAX_FRAMES_PLAYER = 1_001  # of those, sent to the browser's player: evenly spaced, first and last kept
MAX_FRAMES_SWARM = 200  # recorded frames of a swarm (N balls each)
NOISE_KINDS = ("gradient", "langevin", "none")
SPREADS = ("start", "random")
INERTIAL = ("momentum", "nesterov")
LR_LOG_RANGE = (-4.0, 0.5)  # the learning-rate slider, in log10(lr)
LR_MAX = 10.0  # the largest learning rate a box or a link takes (the slider stops at 10**0.5)
FORMULA = "__formula__"  # the landscape dropdown's "custom formula" entry
MAX_FORMULA = 500  # characters of a formula (the parser's own limit)

DEFAULT_STATE: dict[str, Any] = {
    "v": STATE_VERSION,
    "landscape": "double-well",
    "params": {},
    "racers": [{"optimizer": "momentum", "hyper": {"lr": 0.02, "momentum": 0.9}}],
    "start": None,
    "steps": 2000,
    "seed": 0,
    "target": None,
    "swarm": {"on": False, "n": 500, "noise": "gradient", "level": 1.0, "spread": "start"},
}


def default_state() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_STATE)


def _ball(landscape: str, optimizer: str, steps: int, **hyper: float) -> dict[str, Any]:
    state = default_state()
    state.update(landscape=landscape, steps=steps, racers=[{"optimizer": optimizer, "hyper": dict(hyper)}])
    return state


def _race(landscape: str, steps: int, *racers: tuple[str, dict[str, float]]) -> dict[str, Any]:
    state = default_state()
    state.update(
        landscape=landscape,
        steps=steps,
        racers=[{"optimizer": name, "hyper": dict(hyper)} for name, hyper in racers],
    )
    return state


#: The seeds' experiments, one click each (name -> (state, what to watch)).
PRESETS: dict[str, tuple[dict[str, Any], str]] = {
    "Double Well: stuck": (
        _ball("double-well", "momentum", 2000, lr=0.02, momentum=0.0),
        "Momentum 0: the ball rolls into the nearest valley and stays in the left (local) minimum.",
    ),
    "Double Well: escape": (
        _ball("double-well", "momentum", 2000, lr=0.02, momentum=0.9),
        "Momentum 0.9: the ball keeps enough speed to climb the barrier and reach the global minimum.",
    ),
    "Plateau: crawl": (
        _ball("plateau", "momentum", 2500, lr=0.1, momentum=0.0),
        "Momentum 0 on a gentle slope: the ball crawls at lr*slope per step before it finds the well.",
    ),
    "Plateau: momentum": (
        _ball("plateau", "momentum", 2500, lr=0.1, momentum=0.9),
        "Momentum 0.9: speed builds to lr*slope/(1 - beta), about ten times the crawl.",
    ),
    "Saddle": (
        _race("saddle", 300, ("gd", {"lr": 0.05}), ("momentum", {"lr": 0.05, "momentum": 0.9})),
        "Started a hair off the stable axis, GD lingers at the saddle; momentum leaves it much sooner.",
    ),
    "Too large a step": (
        {**_ball("quadratic", "gd", 300, lr=0.21), "params": {"kappa": 10.0}},
        "lr 0.21 is above the stability edge 2/lambda_max = 0.2: each step overshoots more and the run "
        "diverges.",
    ),
}


# --- validation -----------------------------------------------------------------------------------
def short(value: object, width: int = 60) -> object:
    """``value`` for a message: itself when its repr is short, else its repr cut to ``width``
    characters (a link may carry a megabyte of list)."""
    text = repr(value)
    return value if len(text) <= width else _Cut(text[: width - 3] + "...")


class _Cut(str):
    def __repr__(self) -> str:
        return str(self)


def field_number(
    parameter: str, value: object, low: float | None = None, high: float | None = None, **kw: bool
) -> float:
    """`check_number` whose message shows a long value cut short, and that also turns an empty box
    (None, "") and an integer too large for a float (OverflowError) into the one message format."""
    lo, hi = ("(" if kw.get("low_open") else "["), (")" if kw.get("high_open") else "]")
    upper = "inf)" if high is None else f"{high}{hi}"
    bounds = f" in {lo}{'-inf' if low is None else low}, {upper}"
    allowed = "a finite number" + ("" if low is None and high is None else bounds)
    if value is None or value == "":
        raise invalid(parameter, _Cut("(empty)"), allowed)
    try:
        return check_number(parameter, value, low, high, **kw)
    except (DescentError, OverflowError):
        raise invalid(parameter, short(value), allowed) from None


def field_int(parameter: str, value: object, low: int, high: int) -> int:
    allowed = f"an integer in [{low}, {high}]"
    if value is None or value == "":
        raise invalid(parameter, _Cut("(empty)"), allowed)
    try:
        number = field_number(parameter, value, low, high)
    except DescentError:
        raise invalid(parameter, short(value), allowed) from None
    if number != int(number):
        raise invalid(parameter, short(value), allowed)
    return int(number)


def rule_hyper_names(optimizer: str) -> list[str]:
    return [h.name for h in RULES[optimizer].hyperparams]


def _racer(data: object, index: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise invalid(f"racer {index}", short(data), "an object with 'optimizer' and 'hyper'")
    unknown = sorted(set(data) - {"optimizer", "hyper"})
    if unknown:
        raise invalid(f"racer {index} field", short(unknown[0]), "optimizer or hyper")
    name = data.get("optimizer")
    if not isinstance(name, str) or name not in RULES:
        raise invalid(f"racer {index} optimizer", short(name), f"one of: {listed(RULES)}")
    hyper = data.get("hyper") or {}
    if not isinstance(hyper, dict):
        raise invalid(f"racer {index} hyper", short(hyper), "an object of numbers")
    hyper = {k: field_number(f"{name}.{k}", v) for k, v in hyper.items()}  # finite numbers first
    if "lr" in hyper:  # the Arena's range, the same as its boxes' (the rule's own is (0, inf))
        field_number(f"{name}.lr", hyper["lr"], 0.0, LR_MAX, low_open=True)
    RULES[name].resolve(hyper)  # names and ranges, the rule's own message
    return {"optimizer": name, "hyper": hyper}


def normalize(data: object) -> dict[str, Any]:
    """A complete, checked copy of a state dict (missing fields take defaults); raises DescentError.

    It checks the state's form and ranges; what depends on the landscape (that it can be built, the
    start on its map) is checked when it is built (`descent.arena.runner.get_landscape`)."""
    if not isinstance(data, dict):
        raise invalid("state", type(data).__name__, "a JSON object")
    state = default_state()
    unknown = sorted(set(data) - set(state))
    if unknown:
        raise invalid("state field", short(unknown[0]), f"one of: {listed(sorted(state))}")
    state.update({k: v for k, v in data.items() if k != "swarm"})
    swarm = data.get("swarm")
    if swarm is not None and not isinstance(swarm, dict):
        raise invalid("swarm", short(swarm), "an object with " + listed(DEFAULT_STATE["swarm"]))
    unknown = sorted(set(swarm or {}) - set(DEFAULT_STATE["swarm"]))
    if unknown:
        raise invalid("swarm field", short(unknown[0]), f"one of: {listed(sorted(DEFAULT_STATE['swarm']))}")
    state["swarm"].update(swarm or {})
    if state["v"] != STATE_VERSION:
        raise invalid("state version", short(state["v"]), f"{STATE_VERSION}")
    landscape = state["landscape"]
    if not isinstance(landscape, str) or not landscape.strip():
        raise invalid("landscape", short(landscape), f"one of: {listed(LANDSCAPES)}; or a formula in x, y")
    if len(landscape) > MAX_FORMULA:
        raise invalid(
            "landscape", short(landscape), f"a name or a formula of at most {MAX_FORMULA} characters"
        )
    state["landscape"] = landscape.strip()
    params = state["params"] or {}
    if not isinstance(params, dict):
        raise invalid("landscape parameters", short(params), "an object of numbers")
    name = state["landscape"] if len(state["landscape"]) <= 40 else "landscape"
    state["params"] = {str(k): field_number(f"{name} parameter {k}", v) for k, v in params.items()}
    racers = state["racers"]
    if not isinstance(racers, list) or not racers:
        raise invalid("racers", short(racers), f"a list of 1 to {MAX_RACERS} optimizers")
    if len(racers) > MAX_RACERS:
        raise invalid(
            "racers",
            _Cut(f"{len(racers)} optimizers"),
            f"at most {MAX_RACERS} (the ball and {MAX_RACERS - 1} others)",
        )
    state["racers"] = [_racer(r, i) for i, r in enumerate(racers)]
    start = state["start"]
    if start is not None:
        if not isinstance(start, (list, tuple)) or len(start) != 2:
            raise invalid("start", short(start), "null (the landscape's default) or [x, y]")
        state["start"] = [field_number("start x", start[0]), field_number("start y", start[1])]
    state["steps"] = field_int("steps", state["steps"], 1, MAX_STEPS)
    state["seed"] = field_int("seed", state["seed"], 0, 2**31 - 1)
    if state["target"] is not None:
        state["target"] = field_number("target loss", state["target"])
    swarm = state["swarm"]
    if not isinstance(swarm["on"], bool):
        raise invalid("swarm on", short(swarm["on"]), "true or false")
    swarm["n"] = field_int("swarm balls", swarm["n"], 1, MAX_BALLS)
    if not isinstance(swarm["noise"], str) or swarm["noise"] not in NOISE_KINDS:
        raise invalid("swarm noise", short(swarm["noise"]), f"one of: {listed(NOISE_KINDS)}")
    swarm["level"] = field_number("noise level", swarm["level"], 0.0, 1e3)
    if not isinstance(swarm["spread"], str) or swarm["spread"] not in SPREADS:
        raise invalid("swarm spread", short(swarm["spread"]), f"one of: {listed(SPREADS)}")
    if swarm["on"] and swarm["n"] * state["steps"] > MAX_SWARM_WORK:
        raise invalid(
            "swarm size",
            _Cut(f"{swarm['n']} balls x {state['steps']} steps"),
            f"at most {MAX_SWARM_WORK:,} ball-steps (fewer balls or steps keep the page responsive)",
        )
    if not swarm["on"] and len(state["racers"]) * state["steps"] > MAX_RACE_WORK:
        raise invalid(
            "race size",
            _Cut(f"{len(state['racers'])} racers x {state['steps']} steps"),
            f"at most {MAX_RACE_WORK:,} racer-steps (fewer racers or steps keep the page responsive)",
        )
    return state


#: the order in which `repair` takes a link's fields (a field is checked with the ones before it)
_FIELDS = ("v", "landscape", "params", "racers", "start", "steps", "seed", "target")


LEFT_OUT = "the first ones run, the rest are left out"


def repair(data: object) -> tuple[dict[str, Any], list[str]]:
    """The nearest valid state to ``data``: each field that does not check out takes its default
    value (a racer that does not is left out), with one message per field saying why. Never raises.

    Only the form and ranges are checked here (`normalize`); the landscape, its parameters and the
    start on its map are checked by `descent.arena.runner.restore`."""
    if not isinstance(data, dict):
        return default_state(), [str(invalid("state", type(data).__name__, "a JSON object"))]
    state = default_state()
    messages: list[str] = []
    unknown = sorted(set(data) - set(state))
    if unknown:
        messages.append(str(invalid("state field", short(unknown[0]), f"one of: {listed(sorted(state))}")))

    def attempt(change: dict[str, Any]) -> bool:
        nonlocal state
        try:
            state = normalize({**state, **change})
        except DescentError as error:
            messages.append(str(error))
            return False
        return True

    for field in _FIELDS:
        if field not in data:
            continue
        if field == "params" and "landscape" in data and state["landscape"] != _text(data["landscape"]):
            continue  # the parameters of a landscape that was refused
        if field == "racers" and isinstance(data["racers"], list) and data["racers"]:
            racers = data["racers"]
            if len(racers) <= MAX_RACERS and attempt({"racers": racers}):
                continue
            if len(racers) <= MAX_RACERS:
                messages.pop()
            kept = []
            for index, racer in enumerate(racers):
                try:
                    kept.append(_racer(racer, index))
                except DescentError as error:
                    messages.append(str(error))
            if len(kept) > MAX_RACERS:
                allowed = f"at most {MAX_RACERS} (the ball and {MAX_RACERS - 1} others): {LEFT_OUT}"
                messages.append(str(invalid("racers", _Cut(f"{len(kept)} optimizers"), allowed)))
                kept = kept[:MAX_RACERS]
            if kept:
                attempt({"racers": kept})
            continue
        attempt({field: data[field]})
    if "swarm" in data:
        swarm = data["swarm"]
        if not isinstance(swarm, dict):
            attempt({"swarm": swarm})
        else:
            for key in ("on", "n", "noise", "level", "spread"):
                if key in swarm:
                    attempt({"swarm": {**state["swarm"], key: swarm[key]}})
            extra = sorted(set(swarm) - set(DEFAULT_STATE["swarm"]))
            if extra:
                attempt({"swarm": {**state["swarm"], extra[0]: swarm[extra[0]]}})
    return state, messages


def _text(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


# --- URL --------------------------------------------------------------------------------------------
def encode_state(state: dict[str, Any]) -> str:
    """base64url (no padding) of the compact JSON of ``state``."""
    text = json.dumps(state, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(token: str) -> object:
    """The JSON inside a ``?s=`` token; raises DescentError on anything malformed."""
    if not isinstance(token, str) or len(token) > 20_000:
        raise invalid(
            "shared state",
            "(too long)" if isinstance(token, str) else token,
            "a ?s= token of at most 20000 characters",
        )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise invalid(
            "shared state", short(token[:40]), "the ?s= token of a link made by the Arena"
        ) from None


def decode_state(token: str) -> dict[str, Any]:
    """Inverse of :func:`encode_state`; raises DescentError on anything malformed."""
    return normalize(_decode(token))


def state_url(state: dict[str, Any]) -> str:
    """The query string that reproduces ``state``: ``?s=...``."""
    return "?s=" + encode_state(state)


def state_from_search(search: str | None) -> tuple[dict[str, Any], str | None]:
    """The state in a page's query string, or the nearest valid one and a message saying what was
    refused (each field that does not check out, its value and what is allowed). Never raises, but
    for `descent.arena.runner.LandscapeBuilding` (its landscape is being built: ask again later).

    The landscape is built here (checked before, `descent.arena.runner.get_landscape`): a link whose
    landscape or parameters cannot be built opens the default landscape; one whose start is off the
    map, the landscape's default start."""
    if not search or search in ("?", ""):
        return default_state(), None
    try:
        query = parse_qs(search.lstrip("?"), max_num_fields=20)
    except ValueError:
        query = {}
    tokens = query.get("s")
    if not tokens:
        return default_state(), None
    try:
        data = _decode(tokens[0])
        if not isinstance(data, dict) or data.get("v", STATE_VERSION) != STATE_VERSION:
            normalize(data)  # not a state of this format at all: its message
    except DescentError as error:
        return default_state(), f"This link's state could not be restored: {error}. Showing the default."
    state, messages = repair(data)
    state, more = _repair_landscape(state)
    messages += more
    if not messages:
        return state, None
    defaulted = [m for m in messages if not m.endswith(LEFT_OUT)]  # the others say what happened
    ending = " Showing the default for " + ("that." if len(defaulted) == 1 else "those.") if defaulted else ""
    return state, "This link's state was restored in part: " + "; ".join(messages) + "." + ending


def _repair_landscape(state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``state`` with a landscape that builds (else its parameters' defaults, else the default
    landscape) and a start on its map (else the default start), and the messages saying why."""
    from descent.arena.runner import LandscapeBuilding, check_start, check_work, get_landscape

    messages: list[str] = []
    try:
        landscape = get_landscape(state["landscape"], state["params"])
    except LandscapeBuilding:
        raise  # not refused: the page applies the link again once it is built
    except DescentError as error:
        messages.append(str(error))
        try:
            if not state["params"]:
                raise
            landscape = get_landscape(state["landscape"], {})
            state = {**state, "params": {}}
        except DescentError:
            state = {**state, "landscape": DEFAULT_STATE["landscape"], "params": {}}
            landscape = get_landscape(state["landscape"], {})
    try:
        check_start(state, landscape)
    except DescentError as error:
        messages.append(str(error))
        state = {**state, "start": None}
    try:
        check_work(state, landscape)
    except DescentError as error:
        messages.append(str(error))
        state = {**state, "swarm": {**state["swarm"], "n": DEFAULT_STATE["swarm"]["n"]}}
    return normalize(state), messages


# --- specs --------------------------------------------------------------------------------------
def is_swarm(state: dict[str, Any]) -> bool:
    return bool(state["swarm"]["on"])


def save_every(state: dict[str, Any]) -> int:
    """Save every k-th step, so that a racer keeps at most ``MAX_FRAMES_RACE`` frames (a swarm
    ``MAX_FRAMES_SWARM``)."""
    frames = MAX_FRAMES_SWARM if is_swarm(state) else MAX_FRAMES_RACE
    return max(1, math.ceil(state["steps"] / frames))


def state_specs(state: dict[str, Any], default_start: list[float]) -> list[RunSpec]:
    """One `RunSpec` per racer (a single one, of ``n`` balls, in swarm mode).

    The ball's spec (racer 0, not in swarm mode) requests the ``update_parts`` and ``optimizer_state``
    probes at its saved frames. ``default_start`` is the landscape's own start, used for a swarm spread
    at the ball's start.
    """
    start = state["start"]
    every = save_every(state)
    common = dict(
        landscape=state["landscape"],
        landscape_params=dict(state["params"]),
        steps=state["steps"],
        seed=state["seed"],
        save=f"every:{every}",
        backend="auto",
    )
    if not is_swarm(state):
        starts = [list(start)] if start is not None else "default"
        # the ball's arrows, and its optimizer's state for the stability edge of adaptive rules
        arrows = [{"name": "update_parts", "every": every}, {"name": "optimizer_state", "every": every}]
        return [
            RunSpec(
                optimizer=r["optimizer"],
                hyper=dict(r["hyper"]),
                starts=starts,
                probes=arrows if i == 0 else [],
                **common,
            )
            for i, r in enumerate(state["racers"])
        ]
    swarm = state["swarm"]
    ball = state["racers"][0]
    n = swarm["n"]
    if swarm["spread"] == "random":
        starts: object = f"random:{n}"
    else:
        point = list(start) if start is not None else list(default_start)
        starts = [point] * n
    if swarm["noise"] == "langevin":
        lr = ball["hyper"].get("lr")
        hyper = {"temperature": swarm["level"], **({"lr": lr} if lr is not None else {})}
        return [RunSpec(optimizer="langevin", hyper=hyper, starts=starts, **common)]
    noisy = swarm["noise"] == "gradient" and swarm["level"] > 0
    transforms = [{"kind": "grad_noise", "sigma": swarm["level"]}] if noisy else []
    return [
        RunSpec(
            optimizer=ball["optimizer"],
            hyper=dict(ball["hyper"]),
            transforms=transforms,
            starts=starts,
            **common,
        )
    ]


def racer_label(racer: dict[str, Any]) -> str:
    """'momentum lr=0.02 β=0.9' and any other hyper-parameter that differs from the rule's default."""
    name = racer["optimizer"]
    hyper = racer["hyper"]
    defaults = RULES[name].defaults()
    parts = [name]
    if "lr" in hyper:
        parts.append(f"lr={hyper['lr']:.4g}")
    if "momentum" in defaults:
        parts.append(f"β={hyper.get('momentum', defaults['momentum']):.4g}")
    for key, value in hyper.items():
        if key not in ("lr", "momentum") and value != defaults.get(key):
            parts.append(f"{key}={value:.4g}")
    return " ".join(parts)
