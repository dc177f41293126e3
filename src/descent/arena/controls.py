"""The controls as a reducer: ``reduce(state, control, value) -> state`` applies one user action to the
state, and ``control_values(state)`` renders the state back into every control. One Dash callback
wires the two, so the state is the single source of truth and a URL or a preset sets every control.

Bad input raises `DescentError` with the package's message format; the callback shows it and keeps the
previous state.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from descent._errors import DescentError, invalid, listed
from descent.arena.runner import check_start, check_work, get_landscape
from descent.arena.state import (
    FORMULA,
    LR_LOG_RANGE,
    MAX_RACERS,
    PRESETS,
    field_number,
    normalize,
    short,
    state_from_search,
)
from descent.landscapes import LANDSCAPES
from descent.optim import RULES
from descent.spec import default_lr

#: Controls whose value the reducer reads (Dash component ids).
CONTROLS = (
    "landscape-dropdown",
    "formula-input",
    "params-input",
    "optimizer-dropdown",
    "lr-slider",
    "lr-input",
    "momentum-slider",
    "momentum-input",
    "race-dropdown",
    "steps-input",
    "seed-input",
    "target-input",
    "swarm-on",
    "swarm-n",
    "noise-kind",
    "noise-level",
    "swarm-spread",
)


def _has(rule: str, name: str) -> bool:
    return any(h.name == name for h in RULES[rule].hyperparams)


def _round(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def _fresh_racer(name: str, lr: float | None, momentum: float = 0.9) -> dict[str, Any]:
    hyper: dict[str, float] = {}
    if lr is not None:
        hyper["lr"] = lr
    if name in ("momentum", "nesterov"):
        hyper["momentum"] = momentum
    return {"optimizer": name, "hyper": hyper}


def _reset_lrs(state: dict[str, Any]) -> None:
    """New landscape: every racer takes the landscape's own learning rate (its rule's kind)."""
    landscape = get_landscape(state["landscape"], state["params"])
    for racer in state["racers"]:
        racer["hyper"]["lr"] = default_lr(landscape, racer["optimizer"])


def parse_pairs(text: str, what: str) -> dict[str, float]:
    """'tilt=0.3, kappa=10' -> {'tilt': 0.3, 'kappa': 10.0}."""
    out: dict[str, float] = {}
    for item in (text or "").replace(";", ",").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise invalid(what, short(item.strip()), "key=value pairs separated by commas, e.g. tilt=0.3")
        out[key.strip()] = field_number(f"{what} {key.strip()}", value.strip())
    return out


def reduce(state: dict[str, Any], control: str, value: Any) -> dict[str, Any]:
    """The state after the user set ``control`` to ``value`` (a new dict; raises DescentError)."""
    new = copy.deepcopy(state)
    ball = new["racers"][0]
    if control == "url":
        restored, message = state_from_search(value)
        if message:
            raise DescentError(message)
        return restored
    if control == "preset":
        if value not in PRESETS:
            raise invalid("preset", value, f"one of: {listed(PRESETS)}")
        return copy.deepcopy(PRESETS[value][0])
    if control == "landscape-dropdown":
        if value == FORMULA or value is None:
            return new  # the formula box applies it
        if value not in LANDSCAPES:
            raise invalid("landscape", value, f"one of: {listed(LANDSCAPES)}")
        new.update(landscape=value, params={}, start=None)
        _reset_lrs(new)
    elif control == "formula":
        text = (value or "").strip()
        if not text:
            raise invalid("formula", value, "an expression in x and y, e.g. (x**2 - 1)**2 + y**2")
        get_landscape(text, {})  # parse now: a bad formula never enters the state
        new.update(landscape=text, params={}, start=None)
        _reset_lrs(new)
    elif control == "params-input":
        params = parse_pairs(value, f"{new['landscape']} parameter")
        get_landscape(new["landscape"], params)
        new.update(params=params, start=None)
    elif control == "optimizer-dropdown":
        if value not in RULES:
            raise invalid("optimizer", value, f"one of: {listed(RULES)}")
        momentum = ball["hyper"].get("momentum", 0.9)
        hyper = {"lr": ball["hyper"].get("lr", 0.01)}
        if _has(value, "momentum") and value != "rmsprop":
            hyper["momentum"] = momentum
        if RULES[value].normalized_step != RULES[ball["optimizer"]].normalized_step:
            hyper["lr"] = default_lr(get_landscape(new["landscape"], new["params"]), value)
        new["racers"][0] = {"optimizer": value, "hyper": hyper}
    elif control == "lr-slider":
        low, high = LR_LOG_RANGE
        ball["hyper"]["lr"] = _round(10 ** field_number("lr slider", value, low, high), 3)
    elif control == "lr-input":
        ball["hyper"]["lr"] = field_number("lr", value, 0.0, 10.0, low_open=True)
    elif control in ("momentum-slider", "momentum-input"):
        beta = field_number("momentum", value, 0.0, 1.0, high_open=True)
        if _has(ball["optimizer"], "momentum"):
            ball["hyper"]["momentum"] = beta
        elif ball["optimizer"] == "gd" and beta > 0:
            new["racers"][0] = _fresh_racer("momentum", ball["hyper"].get("lr"), beta)
        elif beta > 0:
            raise invalid(
                f"{ball['optimizer']} momentum",
                beta,
                f"0: {ball['optimizer']} has no momentum (its inertia is beta1 for the adam family)",
            )
    elif control == "race-dropdown":
        names = list(value or []) if isinstance(value, (list, tuple)) else [value]
        for name in names:
            if not isinstance(name, str) or name not in RULES:
                raise invalid("racer", short(name), f"one of: {listed(RULES)}")
        if len(names) > MAX_RACERS - 1:
            raise invalid(
                "racers",
                short(names),
                f"at most {MAX_RACERS - 1} racers beside the ball ({MAX_RACERS} runs in all): "
                "remove one before adding another",
            )
        existing = {r["optimizer"]: r for r in new["racers"][1:]}
        landscape = get_landscape(new["landscape"], new["params"])
        lr = ball["hyper"].get("lr")
        racers = [ball]
        for name in names:
            if name in existing:
                racers.append(existing[name])
            else:
                own = default_lr(landscape, name) if RULES[name].normalized_step else lr
                racers.append(_fresh_racer(name, own))
        new["racers"] = racers
    elif control == "racer-field":
        index, name, raw = value
        if not 1 <= index < len(new["racers"]):
            raise invalid("racer", index, f"1 to {len(new['racers']) - 1}")
        racer = new["racers"][index]
        label = f"racer {index} ({racer['optimizer']})"
        if name == "lr":
            racer["hyper"]["lr"] = field_number(f"{label} lr", raw, 0.0, 10.0, low_open=True)
        elif name == "momentum":
            if not _has(racer["optimizer"], "momentum"):
                raise invalid(f"{label} momentum", raw, "nothing: this rule has no momentum")
            racer["hyper"]["momentum"] = field_number(f"{label} momentum", raw, 0.0, 1.0, high_open=True)
        elif name == "other":
            other = parse_pairs(str(raw or ""), f"{label} hyper-parameter")
            kept = {k: v for k, v in racer["hyper"].items() if k in ("lr", "momentum")}
            racer["hyper"] = {**kept, **other}
        else:
            raise invalid("racer field", name, "lr, momentum or other")
    elif control == "map-click":
        try:
            point = value["points"][0] if isinstance(value, dict) and "points" in value else value
            x, y = float(point["x"]), float(point["y"])
        except (TypeError, KeyError, IndexError, ValueError, OverflowError):
            raise invalid("map click", short(value), "a point {x, y} on the map") from None
        new["start"] = [_round(x, 4), _round(y, 4)]
    elif control == "start-default":
        new["start"] = None
    elif control == "steps-input":
        new["steps"] = value
    elif control == "seed-input":
        new["seed"] = value
    elif control == "target-input":
        new["target"] = None if value in (None, "") else field_number("target loss", value)
    elif control == "swarm-on":
        new["swarm"]["on"] = "on" in (value or [])
    elif control == "swarm-n":
        new["swarm"]["n"] = value
    elif control == "noise-kind":
        new["swarm"]["noise"] = value
    elif control == "noise-level":
        new["swarm"]["level"] = field_number("noise level", value, 0.0, 1e3)
    elif control == "swarm-spread":
        new["swarm"]["spread"] = value
    else:
        raise invalid("control", control, f"one of: {listed(CONTROLS)}")
    normalized = normalize(new)
    landscape = get_landscape(normalized["landscape"], normalized["params"])
    check_start(normalized, landscape)
    check_work(normalized, landscape)
    return normalized


def racer_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The race table: one row per racer after the ball (its fields as shown in the inputs)."""
    rows = []
    for index, racer in enumerate(state["racers"][1:], start=1):
        name = racer["optimizer"]
        hyper = racer["hyper"]
        rows.append(
            {
                "index": index,
                "optimizer": name,
                "lr": hyper.get("lr"),
                "momentum": hyper.get("momentum") if _has(name, "momentum") else None,
                "has_momentum": _has(name, "momentum"),
                "other": ", ".join(f"{k}={v:g}" for k, v in hyper.items() if k not in ("lr", "momentum")),
            }
        )
    return rows


def control_values(state: dict[str, Any]) -> dict[str, Any]:
    """The value of every control for ``state`` (ids as in `CONTROLS`, plus a few displays)."""
    ball = state["racers"][0]
    rule = ball["optimizer"]
    landscape = get_landscape(state["landscape"], state["params"])
    lr = ball["hyper"].get("lr", default_lr(landscape, rule))
    low, high = LR_LOG_RANGE
    momentum = ball["hyper"].get("momentum", RULES[rule].defaults().get("momentum", 0.0))
    builtin = state["landscape"] in LANDSCAPES
    start = state["start"] or [float(v) for v in landscape.start().squeeze(0).tolist()]
    swarm = state["swarm"]
    return {
        "landscape-dropdown": state["landscape"] if builtin else FORMULA,
        "formula-input": "" if builtin else state["landscape"],
        "params-input": ", ".join(f"{k}={v:g}" for k, v in state["params"].items()),
        "optimizer-dropdown": rule,
        "lr-slider": min(max(math.log10(lr), low), high),
        "lr-input": lr,
        "momentum-slider": momentum,
        "momentum-input": momentum,
        "race-dropdown": [r["optimizer"] for r in state["racers"][1:]],
        "racer-rows": racer_rows(state),
        "steps-input": state["steps"],
        "seed-input": state["seed"],
        "target-input": state["target"],
        "swarm-on": ["on"] if swarm["on"] else [],
        "swarm-n": swarm["n"],
        "noise-kind": swarm["noise"],
        "noise-level": swarm["level"],
        "swarm-spread": swarm["spread"],
        # displays
        "momentum-disabled": not _has(rule, "momentum") and rule != "gd",
        "start-text": f"({start[0]:.3g}, {start[1]:.3g})"
        + ("" if state["start"] else " — the landscape's default"),
        "landscape-info": landscape.description or landscape.formula,
        "params-placeholder": ", ".join(
            f"{k}={v:g}" for k, v in LANDSCAPES[state["landscape"]].defaults.items()
        )
        if builtin
        else "(formulas take no parameters)",
    }
