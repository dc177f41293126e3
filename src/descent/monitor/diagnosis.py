"""The diagnoses: small named rules over the last few checks' rows, each with stated thresholds
(`Thresholds`) and advice in numbers, and the run's remembered past.

A run's diagnosis (`diagnose`, what ``Monitor.diagnosis`` and the live line say after each check)
weighs two findings:

- *now*: the first rule of the table below that fires on the last ``window`` checks;
- *the past*: what the run did earlier, remembered over all checks (`remember`, `recalled`): a
  blow-up (diverging: a check whose loss was not finite, or over ``blown`` times the best before it,
  or over ``risen`` times the start loss: a network that rose to twice its untrained loss was kicked
  out of its basin, and one that stays there has died, whatever its sharpness now says) or else an
  edge crossing (edge: a check with ``S/E >= edge``).

The diagnosis is the more severe of the two, the other appended ("now:" or "before:"), in the order
of the table below, except that a remembered crossing ranks below the findings now that already ask
for a smaller step (oscillating: a lower lr; hot: a lower lr or a larger batch): a remembered
blow-up outranks everything but a loss diverging now, and a remembered crossing outranks saddle,
plateau, cold and healthy. A run that blew up or crossed the edge and came back *had* an lr too large
for the sharpest region it met, and recovered only by leaving it (a catapult into a flatter region),
luck a lower lr does not need; a monitor that forgets it calls a too-large lr healthy at the end of
such a run, or advises raising it. A hot run's iterate is kicked into sharp regions that the
instability expels at once; its crossing is appended to the hot finding, whose advice (a cooler run)
covers it. The advised lr is the smaller of the two findings' (below).

==========  =======================================================================================
name        fires when (window = the last ``window`` checks, newest last)
==========  =======================================================================================
diverging   now: the loss is not finite; or the sharpness is past the edge (``S/E >= edge``) and the
            loss rises (over the window by more than ``rising``, relative, and beyond 2 standard
            errors or at every check); or the run blew up and its loss is not back to the best before
            the blow-up; or, below the edge and not at a noise floor (``d T/2 < hot L``), the loss
            rises by more than ``blowup`` and 2 standard errors (a run that blew up and saturated).
            Past: the run blew up at some check and came back. After a blow-up the advice is
            ``min(c/(2 S_max), lr/blown)``
edge        now: ``S/E >= edge`` and the loss does not rise: about to diverge (or at the edge of
            stability). Past: the sharpness crossed the edge at some check and is below it now; the
            advice is ``c/(2 S_max)``, half the edge lr at the largest sharpness seen
oscillating successive updates are anti-aligned, median cosine over the window ``<= oscillating``, and
            the step is near the curvature's edge, ``S/E >= oscillating_edge`` (below)
saddle      stalled (below) and the smallest Hessian eigenvalue is negative beyond ``saddle * S``
plateau     stalled: flat loss, not at a noise floor (``d T/2 < hot L``), still above ``learnt`` of
            the start loss, and a gradient small for the curvature, ``|g|_P^2 / (S L) <
            small_gradient`` (even the suggested lr would move the loss by less than that fraction
            per step), or lost in the noise of the steps (`noise_dominated`)
hot         the noise floor ``d T / 2`` (SGD's stationary excess loss) is ``>= hot`` times the loss
            (flat or not: a loss at its noise floor wanders by the floor between checks)
cold        the loss is flat or slow (relative fall per step ``< slow``), the sharpness is ``<= cold_edge``
            of the edge and the noise floor ``<= cold`` times the loss: the lr can rise. Never when
            the run's past caps the lr at or below its value
healthy     none of the above, now or in the past
==========  =======================================================================================

While the sharpness is below the edge after a blow-up (a saturated or dead-unit net's sharpness no
longer bounds the lr that blew it up), every advised lr is at most ``min(c/(2 S_max), lr/blown)``;
after the sharpness crossed the edge without a blow-up, at most ``c/(2 S_max)``. Past the edge the
advice is ``c/(2S)`` at the measured sharpness.

Stalled is not converged: a loss that has fallen below ``learnt`` (a tenth) of its start and then
flattens is a run reaching a minimum (where a gradient lost in the noise is what a minimum looks like
to SGD), not a plateau or a saddle, whose advice (a larger lr, another initialisation) would be wrong.
A gradient is lost in the noise of the steps when the window's true squared gradient (the held
gradient's squared norm less its own noise, ``tr(P^-1 Sigma)/n_held``) is under ``update_snr`` times
the noise of one training batch, ``tr(P^-1 Sigma)/B``: SGD's steps are then a random walk more than a
descent. It is pooled over the window (summed signal over summed noise) like the noise floor, since
each check's ``tr(Sigma)`` comes from a few dozen examples, and it is relative to the training batch,
not to the monitor's held batch (whose size is a setting of the monitor, not of the run).

Oscillating needs ``S/E >= oscillating_edge``: for GD on a quadratic a mode's update flips sign only
if ``lr lambda > 1``, and noise alone gives successive updates a lag-one correlation of
``-lr lambda/2`` per mode (the increments of an AR(1) process), so a cosine ``<= -0.5`` needs
``lr S >= 1``, ``S/E >= 0.5`` (heavy ball: more); ``oscillating_edge = 0.25`` leaves a factor 2 for a
sharpness that 3 Lanczos products underestimate. Below it an anti-aligned pair is batch noise.

The noise floor's ratio to the loss over the window is the window's summed noise floor over its
summed loss (the mean of the per-check estimates: each check's ``tr(Sigma)`` from a few dozen
examples is unbiased but heavy-tailed, and the median of three such estimates is biased low).
``hot = 0.25``: a quarter of the loss or more is SGD's stationary excess, which cooling to
``cool_target`` (0.1) of the loss removes most of.
"Flat": the loss changed over the window by less than ``flat`` (relative) per step, or by less than two
standard errors of the windows' mean batch losses. The suggested lr is half the edge lr at the measured
sharpness, ``c/(2S)`` (``1/lambda_max`` for GD).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
    risen: float = 2.0
    oscillating: float = -0.5
    oscillating_edge: float = 0.25
    saddle: float = 0.01
    small_gradient: float = 1e-3
    update_snr: float = 1.0
    learnt: float = 0.1
    flat: float = 1e-4
    hot: float = 0.25
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
    """The noise floor ``d T/2`` over the loss: the window's summed floor over its summed loss (the
    mean of unbiased, heavy-tailed per-check estimates; their median is biased low)."""
    loss = sum(abs(r["loss"]) for r in window)
    return sum(r["noise_floor"] for r in window) / loss if loss else math.inf


@dataclass
class Past:
    """The run's past over its checks so far, kept as they come (`add`: a check costs the same late in
    a long run as early): ``start`` (the start loss), ``best`` (the least loss before a blow-up, the
    start loss included), ``blowup_step`` (the first check whose loss was not finite, above ``blown``
    times the best before it or above ``risen`` times the start; None if none), ``blowup_best`` (that
    best), ``peak_loss`` (the largest loss since) and ``crossed_step`` (the first check with
    ``S/E >= edge``; None if none)."""

    start: float
    best: float = math.nan  # the start until a check has a loss
    crossed_step: int | None = None
    blowup_step: int | None = None
    blowup_best: float = math.nan
    peak_loss: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.best):
            self.best = self.start

    def add(self, row: Row, th: Thresholds) -> None:
        """Take in the next check's row."""
        loss = row["loss"]
        if self.crossed_step is None and row["edge_ratio"] >= th.edge:
            self.crossed_step = row["step"]
        if self.blowup_step is not None:
            if math.isfinite(self.peak_loss) and not loss <= self.peak_loss:  # a non-finite peak stays
                self.peak_loss = loss
        elif (
            not math.isfinite(loss)
            or (self.best > 0 and loss > th.blown * self.best)
            or (self.start > 0 and loss > th.risen * self.start)
        ):
            self.blowup_step, self.blowup_best, self.peak_loss = row["step"], self.best, loss
        else:
            self.best = min(self.best, loss)

    def onto(self, row: Row) -> Row:
        """A copy of ``row`` with the past's fields added (the rules read them there)."""
        return {
            **row,
            "blowup_step": self.blowup_step,
            "blowup_best": self.blowup_best,
            "peak_loss": self.peak_loss,
            "crossed_step": self.crossed_step,
        }


def remember(rows: Sequence[Row], th: Thresholds) -> Past:
    """The past of the run whose checks are ``rows`` (all of them, oldest first), from scratch."""
    past = Past(rows[0]["start_loss"])
    for row in rows:
        past.add(row, th)
    return past


def _unrecovered(last: Row) -> bool:
    """The run blew up and its loss is not back to the best before the blow-up."""
    return last.get("blowup_step") is not None and not last["loss"] <= last["blowup_best"]


def update_signal_noise(window: Sequence[Row]) -> tuple[float, float]:
    """The window's summed true squared gradient (the held gradient's ``|g|_P^2`` less its own noise,
    ``tr(P^-1 Sigma)/n_held = |g|_P^2/gradient_snr``; unbiased) and its summed noise of one training
    batch, ``tr(P^-1 Sigma)/B``."""
    signal = noise = 0.0
    for row in window:
        g2, snr = row["grad_norm_metric"] ** 2, row["gradient_snr"]
        signal += g2 - (g2 / snr if snr > 0 else 0.0)
        noise += row["noise_trace"] / row["batch_size"]
    return signal, noise


def noise_dominated(window: Sequence[Row], th: Thresholds) -> bool:
    """SGD's steps over the window are more noise than descent: the true squared gradient is under
    ``update_snr`` times one batch's noise, pooled over the window (`update_signal_noise`)."""
    signal, noise = update_signal_noise(window)
    return signal < th.update_snr * noise


def stalled(window: Sequence[Row], th: Thresholds) -> bool:
    """Flat loss, not at a noise floor (``d T/2 < hot * L``), still above ``learnt`` of the start loss
    (below it a flat loss is a run converging), and a gradient that is small for the curvature
    (``|g|_P^2 <= small_gradient * S * L``) or lost in the noise of the steps (`noise_dominated`)."""
    last = window[-1]
    loss = abs(last["loss"])
    if not (
        flat(window, th) and floor_ratio(window) < th.hot and loss >= th.learnt * abs(last["start_loss"])
    ):
        return False
    small = last["grad_norm_metric"] ** 2 <= th.small_gradient * max(last["sharpness"], 0.0) * loss
    return small or noise_dominated(window, th)


def _lower(last: Row) -> str:
    return f"lower lr below {_g(last['edge_lr'])} (suggested {_g(last['suggested_lr'])})"


def diverging(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    last = window[-1]
    if not math.isfinite(last["loss"]):  # the lr that blew up, cut as after any blow-up
        lr = _after_blowup(last, th)
        return Diagnosis("diverging", f"diverged: the loss is {last['loss']}; lower lr to {_g(lr)}", lr)
    up, unrecovered = rising(window, th), _unrecovered(last)
    if last["edge_ratio"] >= th.edge and (up or unrecovered):
        message = (
            f"diverging: sharpness {_g(last['sharpness'])} is past the edge {_g(last['edge'])} "
            f"({last['edge_math']}) and the loss rises: {_lower(last)}"
        )
        return Diagnosis("diverging", message, last["suggested_lr"])
    lr = _after_blowup(last, th)
    if unrecovered:
        message = (
            f"diverged: the loss blew up at step {last['blowup_step']} (peak {_g(last['peak_loss'])}; best "
            f"before {_g(last['blowup_best'])}, start {_g(last['start_loss'])}) and is {_g(last['loss'])}, "
            f"not back to that best; the sharpness peaked at {_g(last['max_sharpness'])}: "
            f"lower lr to {_g(lr)}"
        )
        return Diagnosis("diverging", message, lr)
    change, se, steps = loss_change(window)
    beyond_noise = change > 2 * se and floor_ratio(window) < th.hot  # a noisy run wanders by its floor
    if up and change > th.blowup * abs(window[0]["loss"]) and beyond_noise:
        message = (
            f"diverging: the loss rose {_g(100 * change / abs(window[0]['loss']))} % in {steps} steps while "
            f"the sharpness {_g(last['sharpness'])} is below the edge; it peaked at "
            f"{_g(last['max_sharpness'])} (a blow-up that saturated the model?): lower lr to {_g(lr)}"
        )
        return Diagnosis("diverging", message, lr)
    return None


def peak_edge_lr(last: Row) -> float:
    """The edge lr at the largest sharpness the run has met, ``c/S_max`` (``edge * lr / S_max``: the
    edge is ``c/lr``); inf before any positive sharpness."""
    peak = last["max_sharpness"]
    return last["edge"] * last["lr"] / peak if peak > 0 else math.inf


def _after_blowup(last: Row, th: Thresholds) -> float:
    """The lr to advise after a blow-up: half the edge lr at the largest sharpness seen, ``c/(2 S_max)``,
    but at most ``lr/blown`` (a saturated model's sharpness no longer bounds the lr that blew it up)."""
    return min(peak_edge_lr(last) / 2, last["lr"] / th.blown)


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
    last = window[-1]
    if (
        not cosines
        or cosines[len(cosines) // 2] > th.oscillating
        or not last["edge_ratio"] >= th.oscillating_edge
    ):
        return None
    message = (
        f"oscillating across a valley: successive updates are anti-aligned (cosine "
        f"{_g(cosines[len(cosines) // 2])}) at {_g(last['edge_ratio'])} of the edge; the step overshoots "
        f"curvature {_g(last['sharpness'])}: "
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
        f"{_g(lam)} (escape grows e-fold every {_g(efold)} steps): {_move(last)} or heat it with "
        f"batch size {batch}"
    )
    return Diagnosis("saddle", message, last["suggested_lr"], batch)


def _move(last: Row) -> str:
    """Advice toward the suggested lr: raise it, or (when the run's past caps it) keep at most that."""
    if last["suggested_lr"] > last["lr"]:
        return f"raise lr to {_g(last['suggested_lr'])}"
    return f"keep lr at most {_g(last['suggested_lr'])} (it blew up or crossed the edge before)"


def plateau(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    if not stalled(window, th):
        return None
    last = window[-1]
    message = (
        f"stalled on a plateau: gradient {_g(last['grad_norm'])}, flat loss, no negative curvature "
        f"found, sharpness {_g(last['sharpness'])}: the landscape is flat here; {_move(last)} or change "
        f"the initialisation/architecture"
    )
    return Diagnosis("plateau", message, last["suggested_lr"])


def hot(window: Sequence[Row], th: Thresholds) -> Diagnosis | None:
    last = window[-1]
    ratio = floor_ratio(window)
    if not ratio >= th.hot:
        return None
    factor = ratio / th.cool_target
    batch = math.ceil(last["batch_size"] * factor)
    lr = last["lr"] / factor
    temperature = sum(r["temperature"] for r in window) / len(window)
    loss = sum(abs(r["loss"]) for r in window) / len(window)
    message = (
        f"too hot: temperature {_g(temperature)} puts a noise floor d*T/2 at {_g(ratio)} of the loss "
        f"{_g(loss)} (means over the last {len(window)} checks): batch size {batch} or lr {_g(lr)} "
        f"cools it to {_g(th.cool_target)} of the loss (an annealing for late in training: a cooler run "
        "also moves slower)"
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
#: the findings below edge that already advise a smaller step (a lower lr; for hot, a cooler run): a
#: remembered edge crossing is appended to them and replaces the others (`diagnose`)
LOWERING = ("oscillating", "hot")


def diagnose(rows: Sequence[Row], th: Thresholds | None = None, past: Past | None = None) -> Diagnosis:
    """The run's diagnosis at its latest check (module docstring): the more severe of the finding now
    (`current`) and the run's remembered past (`recalled`: a blow-up, else an edge crossing), the
    other appended; a remembered crossing ranks below the findings that already ask for a smaller step
    (`LOWERING`). The advised lr is the smaller of the two. ``past``: the run's past through its last
    row, kept by the caller (`Past.add`); None: remembered from ``rows``, which must then be all the
    checks (with ``past``, the last ``window`` suffice)."""
    th = th or Thresholds()
    window = list(rows[-th.window :])
    last = window[-1] = (remember(rows, th) if past is None else past).onto(rows[-1])
    now = current(window, th)
    before = recalled(last, th)
    if before is None or NAMES.index(now.name) <= NAMES.index(before.name):
        return now  # diverging or edge now says as much
    lr = min(now.lr, before.lr) if now.lr is not None and before.lr is not None else before.lr
    if before.name == "edge" and now.name in LOWERING:
        return replace(now, message=f"{now.message}; before: {before.message}", lr=lr)
    return replace(before, message=f"{before.message}; now: {now.message}", lr=lr)


def current(window: list[Row], th: Thresholds) -> Diagnosis:
    """The first rule that fires on ``window`` (its last row remembered, `remember`), else healthy (or
    starting with 1 row). Every suggested lr is capped by the run's past (`advice_cap`); cold never
    fires when that cap is at or below the lr."""
    last = window[-1]
    cap = advice_cap(last, th)
    last["suggested_lr"] = min(last["suggested_lr"], cap)
    for rule in RULES:
        if rule is cold and cap <= last["lr"]:  # cold would raise the lr past its cap
            continue
        found = rule(window, th)
        if found is not None:
            return found
    if len(window) < 2:
        return Diagnosis("starting", "starting: one check so far, no trend yet", last["lr"])
    change, _, steps = loss_change(window)
    bound = peak_edge_lr(last)
    message = (
        f"healthy: loss {_g(last['loss'])} changes {_g(100 * change / steps / abs(window[0]['loss']))} % per "
        f"step, sharpness at {_g(last['edge_ratio'])} of the edge: keep lr {_g(last['lr'])} (the sharpest "
        f"region met so far allows up to {_g(bound)}, but a faster run meets sharper ones)"
    )
    return Diagnosis("healthy", message, last["lr"])


def recalled(last: Row, th: Thresholds) -> Diagnosis | None:
    """The run's past (`remember`) as a diagnosis: diverging after a blow-up, edge after the sharpness
    crossed the edge (None if neither), with the lr that past allows: ``min(c/(2 S_max), lr/blown)``
    after a blow-up, ``c/(2 S_max)`` after a crossing."""
    peak = last["max_sharpness"]
    at_peak = (
        f"the sharpness peaked at {_g(peak)}, {_g(peak / last['edge'])} times the edge {_g(last['edge'])} "
        f"({last['edge_math']})"
    )
    if last.get("blowup_step") is not None:
        lr = _after_blowup(last, th)
        message = (
            f"diverged at step {last['blowup_step']}: the loss blew up to {_g(last['peak_loss'])} (best "
            f"before {_g(last['blowup_best'])}, start {_g(last['start_loss'])}) and came back below that "
            f"best ({_g(last['loss'])} now); {at_peak}: lr {_g(last['lr'])} is too large, "
            f"lower it to {_g(lr)}"
        )
        return Diagnosis("diverging", message, lr)
    if last.get("crossed_step") is not None and peak > 0:
        edge_lr = peak_edge_lr(last)
        message = (
            f"crossed the edge at step {last['crossed_step']} ({at_peak}) and is back below it "
            f"({_g(last['edge_ratio'])} of the edge now): lr {_g(last['lr'])} was too large for the "
            f"sharpest region the run met; lower lr below {_g(edge_lr)} (suggested {_g(edge_lr / 2)})"
        )
        return Diagnosis("edge", message, edge_lr / 2)
    return None


def advice_cap(last: Row, th: Thresholds) -> float:
    """The largest lr to advise, from the run's past (`remember`), while the loss is finite and the
    sharpness below the edge (past it, ``c/(2S)`` at the measured sharpness bounds the lr): after the
    sharpness crossed the edge, half the edge lr at the largest sharpness seen, ``c/(2 S_max)``; after
    a blow-up, also at most ``lr/blown`` (`_after_blowup`); else no cap (inf)."""
    if not (math.isfinite(last["loss"]) and last["edge_ratio"] < th.edge):
        return math.inf
    if last.get("blowup_step") is not None:
        return _after_blowup(last, th)
    if last.get("crossed_step") is not None and last["max_sharpness"] > 0:
        return peak_edge_lr(last) / 2
    return math.inf
