"""The diagnoses: small named rules over the last few checks' rows, each with stated thresholds
(`Thresholds`) and advice in numbers. The first rule that fires, in this order, is the diagnosis:

==========  =======================================================================================
name        fires when (window = the last ``window`` checks, newest last)
==========  =======================================================================================
diverging   the loss is not finite; or the sharpness is past the edge (``S/E >= edge``) and the loss
            rises (over the window by more than ``rising``, relative, and beyond 2 standard errors or
            at every check); or, below the edge, the loss rises by more than ``blowup`` and 2 standard
            errors (a run that blew up and saturated); or the loss is above ``blown`` times its best
            (if that is > 0) and above its start (it blew up earlier). After a blow-up the advice is
            ``min(c/(2 S_max), lr/blown)``
edge        ``S/E >= edge`` and the loss does not rise: about to diverge (or at the edge of stability)
oscillating successive updates are anti-aligned: median cosine over the window ``<= oscillating``
saddle      stalled (below) and the smallest Hessian eigenvalue is negative beyond ``saddle * S``
plateau     stalled: flat loss, not at a noise floor (``d T/2 < hot L``), and a gradient small for the
            curvature, ``|g|_P^2 / (S L) < small_gradient`` (even the suggested lr would move the loss by
            less than that fraction per step), or lost in the noise: the held gradient's squared norm
            under ``snr`` times ``tr(P^-1 Sigma)/n_held``, its value for pure noise
hot         the noise floor ``d T / 2`` (SGD's stationary excess loss) is ``>= hot`` times the loss,
            and the loss is flat
cold        the loss is flat or slow (relative fall per step ``< slow``), the sharpness is ``<= cold_edge``
            of the edge and the noise floor ``<= cold`` times the loss: the lr can rise
healthy     none of the above
==========  =======================================================================================

The noise floor's ratio to the loss is the median over the window. "Flat": the loss changed over the
window by less than ``flat`` (relative) per step, or by less than two standard errors of the windows'
mean batch losses. The suggested lr is half the edge lr at the
measured sharpness, ``c/(2S)`` (``1/lambda_max`` for GD).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Thresholds:
    """The numbers every rule compares against (see the module's table)."""

    window: int = 3
    edge: float = 1.0
    rising: float = 0.02
    blowup: float = 0.1
    blown: float = 10.0
    oscillating: float = -0.5
    saddle: float = 0.01
    small_gradient: float = 1e-3
    snr: float = 2.0
    flat: float = 1e-4
    hot: float = 0.5
    cool_target: float = 0.1
    cold: float = 0.01
    cold_edge: float = 0.05
    slow: float = 1e-2


@dataclass(frozen=True)
class Diagnosis:
    """A rule's verdict: its name, one sentence with advice, and the numbers it suggests."""

    name: str
    message: str
    lr: float | None = None
    batch_size: int | None = None


def _g(x: float) -> str:
    return f"{x:.3g}"


def loss_change(window: Sequence[Row]) -> tuple[float, float, int]:
    """The loss change from the window's first row to its last, its standard error and the steps."""
    first, last = window[0], window[-1]
    se = math.hypot(first.get("loss_se", 0.0) or 0.0, last.get("loss_se", 0.0) or 0.0)
    return last["loss"] - first["loss"], se, max(last["step"] - first["step"], 1)


def rising(window: Sequence[Row], th: Thresholds) -> bool:
    """The loss rose over the window by more than ``rising`` (relative) and beyond noise: by more than
    two standard errors, or at every check (a growing loss inflates its own standard error)."""
    if len(window) < 2:
        return False
    change, se, _ = loss_change(window)
    every_check = all(b["loss"] > a["loss"] for a, b in zip(window, window[1:]))
    return change > th.rising * abs(window[0]["loss"]) and (change > 2 * se or every_check)


def flat(window: Sequence[Row], th: Thresholds) -> bool:
    if len(window) < 2:
        return False
    change, se, steps = loss_change(window)
    return abs(change) / steps < th.flat * abs(window[0]["loss"]) or abs(change) < 2 * se


def floor_ratio(window: Sequence[Row]) -> float:
    """The noise floor ``d T/2`` over the loss, the median over the window (one check's ``tr(Sigma)``
    from a few dozen examples is heavy-tailed)."""
    ratios = sorted(r["noise_floor"] / abs(r["loss"]) if r["loss"] else math.inf for r in window)
    return ratios[len(ratios) // 2]


def stalled(window: Sequence[Row], th: Thresholds) -> bool:
    """Flat loss, not at a noise floor (``d T/2 < hot * L``), and a gradient that is small for the
    curvature (``|g|_P^2 <= small_gradient * S * L``) or lost in the noise: the held gradient's squared
    norm is under ``snr`` times what noise alone gives it, ``tr(P^-1 Sigma)/n_held``."""
    last = window[-1]
    loss = abs(last["loss"])
    curvature = max(last["sharpness"], 0.0)
    small = last["grad_norm_metric"] ** 2 <= th.small_gradient * curvature * loss
    noisy = last["gradient_snr"] < th.snr
    return flat(window, th) and floor_ratio(window) < th.hot and (small or noisy)


def _lower(last: Row) -> str:
    return f"lower lr below {_g(last['edge_lr'])} (suggested {_g(last['suggested_lr'])})"


def diverging(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    last = window[-1]
    if not math.isfinite(last["loss"]):
        return Diagnosis(
            "diverging", f"diverged: the loss is {last['loss']}; {_lower(last)}", last["suggested_lr"]
        )
    best = last["best_loss"]
    blown = best > 0 and last["loss"] > max(th.blown * best, last["start_loss"])
    up = rising(window, th)
    if last["edge_ratio"] >= th.edge and (up or blown):
        message = (
            f"diverging: sharpness {_g(last['sharpness'])} is past the edge {_g(last['edge'])} "
            f"({last['edge_math']}) and the loss rises: {_lower(last)}"
        )
        return Diagnosis("diverging", message, last["suggested_lr"])
    lr = _after_blowup(last, th)
    if blown:
        message = (
            f"diverged: the loss {_g(last['loss'])} is {_g(last['loss'] / last['best_loss'])} times its best "
            f"{_g(last['best_loss'])} and above its start {_g(last['start_loss'])}; the sharpness peaked at "
            f"{_g(last['max_sharpness'])}: lower lr to {_g(lr)}"
        )
        return Diagnosis("diverging", message, lr)
    change, se, steps = loss_change(window)
    if up and change > th.blowup * abs(window[0]["loss"]) and change > 2 * se:  # beyond noise, strictly
        message = (
            f"diverging: the loss rose {_g(100 * change / abs(window[0]['loss']))} % in {steps} steps while "
            f"the sharpness {_g(last['sharpness'])} is below the edge; it peaked at "
            f"{_g(last['max_sharpness'])} (a blow-up that saturated the model?): lower lr to {_g(lr)}"
        )
        return Diagnosis("diverging", message, lr)
    return None


def _after_blowup(last: Row, th: Thresholds) -> float:
    """The lr to advise after a blow-up: half the edge lr at the largest sharpness seen, ``c/(2 S_max)``,
    but at most ``lr/blown`` (a saturated model's sharpness no longer bounds the lr that blew it up)."""
    edge_lr = last["edge"] * last["lr"] / last["max_sharpness"] if last["max_sharpness"] > 0 else math.inf
    return min(edge_lr / 2, last["lr"] / th.blown)


def edge(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    last = window[-1]
    if last["edge_ratio"] >= th.edge:
        message = (
            f"at the edge: sharpness {_g(last['sharpness'])} is past the edge {_g(last['edge'])} "
            f"({last['edge_math']}) though the loss does not rise yet: {_lower(last)}"
        )
        return Diagnosis("edge", message, last["suggested_lr"])
    return None


def oscillating(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    cosines = sorted(r["update_cosine"] for r in window if math.isfinite(r["update_cosine"]))
    if not cosines or cosines[len(cosines) // 2] > th.oscillating:
        return None
    last = window[-1]
    message = (
        f"oscillating across a valley: successive updates are anti-aligned (cosine "
        f"{_g(cosines[len(cosines) // 2])}); the step overshoots curvature {_g(last['sharpness'])}: "
        f"lower lr to {_g(last['suggested_lr'])}"
    )
    return Diagnosis("oscillating", message, last["suggested_lr"])


def saddle(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    last = window[-1]
    lam = last["lambda_min"]
    if not (math.isfinite(lam) and stalled(window, th) and lam < -th.saddle * abs(last["sharpness"])):
        return None
    efold = 1.0 / (last["effective_lr"] * -lam)
    batch = max(1, last["batch_size"] // 4)
    message = (
        f"stalled at a saddle: gradient {_g(last['grad_norm'])}, flat loss, negative curvature "
        f"{_g(lam)} (escape grows e-fold every {_g(efold)} steps): raise lr to "
        f"{_g(last['suggested_lr'])} or heat it with batch size {batch}"
    )
    return Diagnosis("saddle", message, last["suggested_lr"], batch)


def plateau(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    if not stalled(window, th):
        return None
    last = window[-1]
    message = (
        f"stalled on a plateau: gradient {_g(last['grad_norm'])}, flat loss, no negative curvature "
        f"found, sharpness {_g(last['sharpness'])}: the landscape is flat here; raise lr to "
        f"{_g(last['suggested_lr'])} or change the initialisation/architecture"
    )
    return Diagnosis("plateau", message, last["suggested_lr"])


def hot(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    last = window[-1]
    ratio, loss = floor_ratio(window), abs(last["loss"])
    if not (ratio >= th.hot and flat(window, th)):
        return None
    floor = ratio * loss
    factor = ratio / th.cool_target
    batch = math.ceil(last["batch_size"] * factor)
    lr = last["lr"] / factor
    message = (
        f"too hot: temperature {_g(last['temperature'])} puts a noise floor d*T/2 = {_g(floor)} at "
        f"{_g(floor / loss)} of the loss {_g(loss)}: batch size {batch} or lr {_g(lr)} cools it to "
        f"{_g(th.cool_target)} of the loss"
    )
    return Diagnosis("hot", message, lr, batch)


def cold(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    if len(window) < 2:
        return None
    last = window[-1]
    change, _, steps = loss_change(window)
    slow = -change / steps < th.slow * abs(window[0]["loss"])
    if not (slow and last["edge_ratio"] <= th.cold_edge and floor_ratio(window) <= th.cold):
        return None
    message = (
        f"too cold: lr {_g(last['lr'])} is {_g(last['edge_ratio'])} of its edge and the noise floor is "
        f"{_g(floor_ratio(window))} of the loss: raise lr to {_g(last['suggested_lr'])} "
        f"(edge {_g(last['edge_lr'])})"
    )
    return Diagnosis("cold", message, last["suggested_lr"])


RULES: tuple[Callable[[Sequence[Row], Thresholds], Diagnosis | None], ...] = (
    diverging,
    edge,
    oscillating,
    saddle,
    plateau,
    hot,
    cold,
)
NAMES = ("diverging", "edge", "oscillating", "saddle", "plateau", "hot", "cold", "healthy", "starting")


def diagnose(rows: Sequence[Row], th: Thresholds | None = None) -> Diagnosis:
    """The first rule that fires on the last ``window`` rows, else healthy (or starting with 1 row)."""
    th = th or Thresholds()
    window = list(rows[-th.window :])
    for rule in RULES:
        found = rule(window, th)
        if found is not None:
            return found
    last = window[-1]
    if len(window) < 2:
        return Diagnosis("starting", "starting: one check so far, no trend yet", last["suggested_lr"])
    change, _, steps = loss_change(window)
    message = (
        f"healthy: loss {_g(last['loss'])} changes {_g(100 * change / steps / abs(window[0]['loss']))} % per "
        f"step, sharpness at {_g(last['edge_ratio'])} of the edge; suggested lr {_g(last['suggested_lr'])}"
    )
    return Diagnosis("healthy", message, last["suggested_lr"])
