"""The narrated step-by-step mode's content: one optimizer step of the Arena's ball taken apart into
named vectors, with sentences in plain words and what the numbers at the ball mean. No UI here.

Step ``k`` (0-based) is the step from w_k to w_{k+1}. Every number is the engine's:

- the position before and after: the run's trajectory (`run_spec`, every step saved);
- the parts of the update: the ``update_parts`` probe (the force step -lr g~, the coast u(0, s): what
  the rule does with no force) and the ``optimizer_state`` probe (the rule's state after the step);
- the gradient ∇U at w_k and at Nesterov's look-ahead point: one plain step of lr 1 from those points
  through `run_spec`, whose ``update_parts`` force is -1·∇U (the probes do not record ∇U itself);
- the curvature and the stability edge: `descent.arena.readout.ball_theory` (the Hessian's
  eigenvalues, the condition number, the rule's own ``edge`` with the state this step used).

What this module adds is arithmetic on those numbers: differences of the parts (the look-ahead
correction, the adaptive rescaling, AdamW's decoupled decay lr·wd·w), the effective learning rate of
an adaptive rule from its state (lr/(√v̂+ε)), lengths, ratios and directions.

The parts add up to the update: ``force`` (+ the transforms' change of it) + ``inertia`` / ``kick`` (+
``weight_decay``) + the rule's remainder (``lookahead`` for Nesterov, ``adaptive`` for AdaGrad, RMSProp
and the Adam family) = w_{k+1} - w_k, up to rounding. Directions are the map's: +x right, +y up.
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from descent._errors import invalid
from descent.arena.readout import ball_theory, frame_states, kappa_words, update_parts
from descent.arena.runner import get_landscape, run_cached
from descent.arena.state import normalize, state_specs
from descent.landscapes import Landscape
from descent.spec import RunSpec, run_spec

#: the probes a narrated run records at every step
NARRATION_PROBES = [{"name": "update_parts", "every": 1}, {"name": "optimizer_state", "every": 1}]

RULE_NAMES = {
    "gd": "Gradient descent",
    "momentum": "Momentum",
    "nesterov": "Nesterov",
    "adagrad": "AdaGrad",
    "rmsprop": "RMSProp",
    "adam": "Adam",
    "adamw": "AdamW",
    "amsgrad": "AMSGrad",
    "langevin": "Langevin",
    "hd-sgd": "Hypergradient SGD",
    "hd-momentum": "Hypergradient momentum",
    "hd-adam": "Hypergradient Adam",
}
ADAM_FAMILY = ("adam", "adamw", "amsgrad")
#: each adaptive rule's effective learning rate per coordinate, as the page writes it
EFFECTIVE_LR = {
    "adagrad": "lr/(1+(t−1)·lr_decay)/(√s+ε)",
    "rmsprop": "lr/(√s+ε)",
    "adam": "lr/(√v̂+ε)",
    "adamw": "lr/(√v̂+ε)",
    "amsgrad": "lr/(√max v̂+ε)",
}
TRANSFORM_NAMES = {"clip_norm": "clipping", "l2": "weight decay", "grad_noise": "gradient noise"}
LABELS = {
    "force": "force step −lr·∇U",
    "inertia": "inertia carried over",
    "kick": "thermal kick √(2·lr·T)·z",
    "weight_decay": "weight decay −lr·wd·w",
    "lookahead": "look-ahead correction",
    "adaptive": "adaptive rescaling",
}
Vector = tuple[float, ...]


@dataclass(frozen=True)
class Part:
    """One named piece of the update: ``vector`` in the landscape's coordinates, drawn from ``origin``
    (the parts are chained head to tail from w_k, so the last one ends at w_{k+1})."""

    name: str
    label: str
    vector: Vector
    origin: Vector

    @property
    def length(self) -> float:
        return math.hypot(*self.vector)


@dataclass(frozen=True)
class Narration:
    """Step ``step`` of the ball (w_k -> w_{k+1}), taken apart and told in words.

    ``parts`` add up to ``update`` = ``after`` - ``before`` (the trajectory's), except at a step the run
    stopped the ball at (``stopped``: its outcome; the step was not taken). ``effective_lr``: an adaptive
    rule's learning rate per coordinate after this step's scale (``effective_lr_formula``; lr/ε where
    its running squared gradient is still zero: ``gradient_seen`` False); ``scale``:
    the probe's update / force per coordinate. ``theory``: the curvature at w_k and the rule's edge
    (``lam_min``, ``lam_max``, ``shape``, ``kappa``, ``edge``, ``edge_formula``, ``where``, ``ratio`` =
    lr / edge; None where there is no finite value)."""

    step: int
    steps_run: int
    rule: str
    lr: float
    before: Vector
    after: Vector
    update: Vector
    gradient: Vector
    parts: tuple[Part, ...]
    effective_lr: Vector | None
    effective_lr_formula: str | None
    scale: Vector | None
    lookahead: Vector | None
    lookahead_gradient: Vector | None
    gradient_seen: tuple[bool, ...] | None
    theory: dict[str, Any]
    sentences: tuple[str, ...]
    theory_sentences: tuple[str, ...]
    stopped: str | None = None

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    def arrows(self) -> dict[str, tuple[Vector, Vector]]:
        """``{name: (origin, vector)}`` in the landscape's coordinates: each part chained from w_k,
        the whole ``update`` from w_k and, for Nesterov, the ``lookahead`` (w_k to the look-ahead point)
        and ``lookahead_force`` (-lr·∇U there, from that point)."""
        out = {p.name: (p.origin, p.vector) for p in self.parts}
        out["update"] = (self.before, self.update)
        if self.lookahead is not None and self.lookahead_gradient is not None:
            out["lookahead_point"] = (self.before, _minus(self.lookahead, self.before))
            out["lookahead_force"] = (self.lookahead, tuple(-self.lr * g for g in self.lookahead_gradient))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "arrows": {k: list(v) for k, v in self.arrows().items()}}


# --- entry points ---------------------------------------------------------------------------------------
def ball_spec(state: dict[str, Any]) -> tuple[RunSpec, Landscape]:
    """The Arena state's ball (racer 0, never the swarm) as the page runs it, with every step saved and
    probed (the page's own spec when it already is: the run is then reused from the cache)."""
    state = normalize(state)
    ball = {**state, "racers": state["racers"][:1], "swarm": {**state["swarm"], "on": False}}
    landscape = get_landscape(ball["landscape"], ball["params"])
    spec = state_specs(ball, [float(v) for v in landscape.start().squeeze(0).tolist()])[0]
    return _every_step(spec), landscape


def narrate_step(state: dict[str, Any], k: int) -> Narration:
    """Step ``k`` (0-based: w_k -> w_{k+1}) of the Arena state's ball; raises DescentError for a bad
    state or ``k``."""
    spec, landscape = ball_spec(state)
    return narrate_spec(spec, k, landscape)


def narrate_spec(spec: RunSpec, k: int, landscape: Landscape | None = None) -> Narration:
    """Step ``k`` of particle 0 of ``spec``'s run (saved and probed at every step: the spec is made so
    if it is not), for a spec with transforms too; ``landscape``: the spec's, built."""
    spec = _every_step(spec)
    if landscape is None:
        landscape = get_landscape(spec.landscape, dict(spec.landscape_params))
    trajectory = run_cached(spec, landscape)
    steps_run = int(trajectory.steps_run)
    k = _check_step(k, steps_run)
    return _narrate(spec, landscape, trajectory, k)


# --- the step -------------------------------------------------------------------------------------------
def _every_step(spec: RunSpec) -> RunSpec:
    """``spec`` saved and probed at every step (itself when it already is)."""

    def name(probe: object) -> object:
        return probe.get("name") if isinstance(probe, dict) else probe

    def every(probe: object) -> object:
        return probe.get("every", 1) if isinstance(probe, dict) else 1

    due = {name(p): every(p) for p in spec.probes}
    if spec.save == "every:1" and all(due.get(p["name"]) == 1 for p in NARRATION_PROBES):
        return spec
    wanted = {p["name"] for p in NARRATION_PROBES}
    kept = [p for p in spec.probes if name(p) not in wanted]
    return spec.with_(save="every:1", probes=[*kept, *NARRATION_PROBES])


def _check_step(k: object, steps_run: int) -> int:
    if steps_run < 1:
        raise invalid("k", k, "no step: the run took none")
    allowed = f"an integer in [0, {steps_run - 1}] (the step from w_k to w_k+1 of a run of {steps_run} steps)"
    if isinstance(k, bool):
        raise invalid("k", k, allowed)
    try:
        index = operator.index(k)  # type: ignore[arg-type]
    except TypeError:
        raise invalid("k", k, allowed) from None
    if not 0 <= index < steps_run:
        raise invalid("k", k, allowed)
    return index


def _slopes(spec: RunSpec, landscape: Landscape, points: torch.Tensor) -> torch.Tensor:
    """∇U at ``points`` ``[M, d]`` from the engine: the force of one plain step of lr 1, -1·∇U."""
    probe = RunSpec(
        landscape=spec.landscape,
        landscape_params=dict(spec.landscape_params),
        optimizer="gd",
        hyper={"lr": 1.0},
        starts=points.tolist(),
        steps=1,
        save="every:1",
        probes=[{"name": "update_parts", "every": 1}],
        seed=spec.seed,
        dtype=spec.dtype,
        backend="torch",
    )
    return -run_spec(probe, landscape=landscape).probes["update_parts"]["force"][1].to(torch.float64)


def _number(value: object) -> float:
    return float(value.reshape(-1)[0]) if isinstance(value, torch.Tensor) else float(value)  # type: ignore[arg-type]


def _narrate(spec: RunSpec, landscape: Landscape, trajectory, k: int) -> Narration:
    optimizer = trajectory.optimizer
    rule = optimizer.name
    hp = optimizer.hp_at(k)
    lr = _number(hp["lr"])
    frame = {int(s): i for i, s in enumerate(trajectory.steps.tolist())}
    at, nxt = frame[k], frame[k + 1]
    positions = trajectory.positions[:, 0, :].to(torch.float64)
    before, after = positions[at], positions[nxt]
    probe = update_parts(trajectory)
    force, coast, recorded = probe["force"][nxt], probe["coast"][nxt], probe["update"][nxt]
    stop = int(trajectory.stop_step[0])
    stopped = trajectory.outcomes[0] if stop == k + 1 else None

    lookahead = probe["lookahead"][nxt] if rule == "nesterov" else None
    points = torch.stack([before, lookahead]) if lookahead is not None else before.unsqueeze(0)
    slopes = _slopes(spec, landscape, points)
    grad = slopes[0]

    parts: list[tuple[str, torch.Tensor, str]] = []
    if spec.transforms:
        plain = -lr * grad
        kinds = [t.get("kind", "") for t in spec.transforms]
        label = " and ".join(TRANSFORM_NAMES.get(kind, kind) for kind in kinds)
        parts += [("force", plain, LABELS["force"]), ("transforms", force - plain, label)]
    else:
        parts.append(("force", force, LABELS["force"]))
    if rule == "langevin":
        parts.append(("kick", coast, LABELS["kick"]))
    elif rule == "adamw":
        decay = -lr * _number(hp["weight_decay"]) * before
        parts += [
            ("weight_decay", decay, LABELS["weight_decay"]),
            ("inertia", coast - decay, LABELS["inertia"]),
        ]
    elif _has_inertia(rule, hp):
        parts.append(("inertia", coast, LABELS["inertia"]))
    rest = "lookahead" if rule == "nesterov" else "adaptive" if optimizer.rule.physics == "adaptive" else None
    if rest is not None and stopped is None:
        parts.append((rest, recorded - sum(v for _, v, _ in parts), LABELS[rest]))

    origin = before.clone()
    chained = []
    for name, vector, label in parts:
        chained.append(Part(name, label, _vec(vector), _vec(origin)))
        origin = origin + vector

    state_after = frame_states(trajectory, torch.tensor([nxt]))
    effective, seen = (None, None)
    if state_after is not None and rule in EFFECTIVE_LR:
        effective, seen = _effective_lr(rule, state_after, hp, lr)
    theory = _theory(landscape, optimizer, before, state_after)
    narration = Narration(
        step=k,
        steps_run=int(trajectory.steps_run),
        rule=rule,
        lr=lr,
        before=_vec(before),
        after=_vec(after),
        update=_vec(after - before),
        gradient=_vec(grad),
        parts=tuple(chained),
        effective_lr=_vec(effective) if effective is not None else None,
        effective_lr_formula=EFFECTIVE_LR.get(rule),
        scale=_vec(probe["scale"][nxt]) if optimizer.rule.physics == "adaptive" else None,
        lookahead=_vec(lookahead) if lookahead is not None else None,
        lookahead_gradient=_vec(slopes[1]) if lookahead is not None else None,
        gradient_seen=tuple(bool(v) for v in seen.tolist()) if seen is not None else None,
        theory=theory,
        sentences=(),
        theory_sentences=(),
        stopped=stopped,
    )
    return _told(narration, hp)


def _has_inertia(rule: str, hp: dict) -> bool:
    if rule in ("momentum", "nesterov") or rule in ADAM_FAMILY:
        return True
    return rule == "rmsprop" and _number(hp["momentum"]) > 0


def _effective_lr(rule: str, state: dict, hp: dict, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """An adaptive rule's lr per coordinate from its state after the step (arithmetic on the
    ``optimizer_state`` probe and the hyper-parameters, as the rule's math states it), and where its
    running squared gradient is not zero."""
    row = {name: value[0].to(torch.float64) for name, value in state.items()}
    t = float(row["step"])
    eps = _number(hp["eps"])
    if rule == "adagrad":
        lr_t = lr / (1 + (t - 1) * _number(hp["lr_decay"]))
        return lr_t / (torch.sqrt(row["sum"]) + eps), row["sum"] > 0
    if rule == "rmsprop":
        square = row["square_avg"] - row["grad_avg"] ** 2 if _number(hp["centered"]) else row["square_avg"]
        return lr / (torch.sqrt(square) + eps), row["square_avg"] > 0
    second = row["max_exp_avg_sq"] if rule == "amsgrad" else row["exp_avg_sq"]
    v_hat = second / (1 - _number(hp["beta2"]) ** t)
    return lr / (torch.sqrt(v_hat) + eps), second > 0


def _theory(landscape: Landscape, optimizer, point: torch.Tensor, state: dict | None) -> dict[str, Any]:
    """`ball_theory` at w_k, with the rule's state after this step (the scale the step used)."""
    theory = ball_theory(landscape, optimizer, point.unsqueeze(0), state)
    return {
        "lam_min": theory["lamMin"][0],
        "lam_max": theory["lamMax"][0],
        "shape": theory["shape"][0],
        "kappa": theory["kappa"][0],
        "edge": _edge(theory["edge"][0], theory["lamMax"][0]),
        "edge_formula": theory["formula"],
        "where": theory["where"],
        "ratio": theory["lrRatio"][0],
    }


def _edge(edge: float | None, lam_max: float | None) -> float | None:
    """The edge, inf where no curvature bends up (``ball_theory`` lists inf as None)."""
    if edge is None and lam_max is not None and lam_max <= 0:
        return math.inf
    return edge


# --- words ----------------------------------------------------------------------------------------------
def fmt(value: float) -> str:
    """A number as the sentences write it: three significant digits."""
    return f"{value + 0.0:.3g}"  # + 0.0: no "-0"


def point_text(vector: Vector) -> str:
    return "(" + ", ".join(fmt(v) for v in vector) + ")"


def direction(vector: Vector) -> str:
    """'left', 'right and up', ...: the map's directions of a 2-D vector (a component under a fifth of
    the other is left unsaid); 'nowhere' for a zero vector."""
    if len(vector) != 2:
        return "along " + point_text(vector)
    x, y = vector
    if not (math.isfinite(x) and math.isfinite(y)) or (x == 0 and y == 0):
        return "nowhere"
    horizontal = "right" if x > 0 else "left"
    vertical = "up" if y > 0 else "down"
    if abs(y) <= 0.2 * abs(x):
        return horizontal
    if abs(x) <= 0.2 * abs(y):
        return vertical
    return f"{horizontal} and {vertical}"


def _moves(vector: Vector) -> str:
    """'0.5 right': how far and which way (use `_still` first: a zero vector has no such phrase)."""
    return f"{fmt(math.hypot(*vector))} {direction(vector)}"


def _still(vector: Vector | None) -> bool:
    """Whether ``vector`` moves nothing (None, or every component exactly 0)."""
    return vector is None or all(v == 0 for v in vector)


def _finite(vector: Vector) -> bool:
    return all(math.isfinite(v) for v in vector)


def _told(n: Narration, hp: dict) -> Narration:
    rule, lr = n.rule, n.lr
    name = RULE_NAMES.get(rule, rule)
    slope = math.hypot(*n.gradient)
    force = n.part("force")
    assert force is not None
    words = [f"Step {n.step}: the ball is at {point_text(n.before)}."]
    if slope > 0:
        downhill = direction(tuple(-g for g in n.gradient))
        plain = "not at all (it rounds to 0)" if force.length == 0 else fmt(force.length)
        words.append(
            f"The slope here pushes the ball {downhill} with force {fmt(slope)}; "
            f"a plain step (−lr·∇U, lr = {fmt(lr)}) would move it {plain}."
        )
    else:
        words.append("The ground is level here: the slope pushes with force 0.")
    changed = n.part("transforms")
    if changed is not None:
        words.append(
            f"Applying the {changed.label} leaves that step as it is."
            if _still(changed.vector)
            else f"Applying the {changed.label} changes that step by {_moves(changed.vector)}."
        )
    if n.stopped is not None:
        total = "but this step was not taken"
    elif not _finite(n.after):
        total = f"so it flies off the map: its new position {point_text(n.after)} is not finite"
    elif _still(n.update):
        total = f"so it does not move at all and stays at {point_text(n.after)}"
    else:
        total = f"so it moves {_moves(n.update)} in all, to {point_text(n.after)}"
    inertia, kick, decay = n.part("inertia"), n.part("kick"), n.part("weight_decay")
    if decay is not None:
        wd = fmt(_number(hp["weight_decay"]))
        words.append(
            f"Weight decay (wd = {wd}) does not pull it here."
            if _still(decay.vector)
            else f"Weight decay (wd = {wd}) pulls it {_moves(decay.vector)}, toward the origin."
        )
    if rule == "gd":
        words.append(f"{name} has no memory: that is the whole step, {total}.")
    elif kick is not None:
        temp = fmt(_number(hp["temperature"]))
        kicks = "gives it no kick" if _still(kick.vector) else f"kicks it {_moves(kick.vector)} at random"
        words.append(f"The heat bath (T = {temp}) {kicks}, {total}.")
    elif rule == "momentum":
        beta = fmt(_number(hp["momentum"]))
        if _number(hp["momentum"]) == 0:
            words.append(f"With β = 0 it carries no velocity from one step to the next, {total}.")
        elif inertia is None or inertia.length == 0:
            words.append(f"It starts at rest, with no velocity to carry, {total}.")
        else:
            words.append(
                f"It still carries {beta} of last step's velocity ({_moves(inertia.vector)}), {total}."
            )
    elif rule == "nesterov":
        words += _nesterov_words(n, hp, total)
    else:
        words += _adaptive_words(n, name, total)
    if n.stopped is not None:
        words.append(
            f"The run stopped the ball at step {n.step + 1} ({n.stopped}), so it stays at "
            f"{point_text(n.after)}."
        )
    return replace(n, sentences=tuple(words), theory_sentences=tuple(_theory_words(n, name)))


def _nesterov_words(n: Narration, hp: dict, total: str) -> list[str]:
    beta = fmt(_number(hp["momentum"]))
    inertia, correction = n.part("inertia"), n.part("lookahead")
    words = []
    if inertia is not None and inertia.length > 0 and n.lookahead is not None:
        ahead = n.lookahead_gradient or ()
        words.append(
            f"Its momentum alone would carry it {_moves(inertia.vector)} to the look-ahead point "
            f"{point_text(n.lookahead)}, where the slope pushes {direction(tuple(-g for g in ahead))} "
            f"with force {fmt(math.hypot(*ahead))}."
        )
    else:
        words.append("It starts at rest: its look-ahead point is where it stands.")
    if correction is not None:
        amount = (
            "no look-ahead correction here"
            if _still(correction.vector)
            else f"a look-ahead correction of {_moves(correction.vector)}"
        )
        words.append(
            f"Nesterov (torch's form) adds the slope here once more, times β = {beta}: {amount}, {total}."
        )
    else:
        words.append(f"Together, {total}.")
    return words


def _adaptive_words(n: Narration, name: str, total: str) -> list[str]:
    words = []
    if n.effective_lr is not None:
        seen = n.gradient_seen or (True,) * len(n.effective_lr)
        per = " and ".join(
            f"{fmt(e)} in {axis} ({fmt(e / n.lr)}× lr)"
            if ok
            else f"{fmt(e)} in {axis} (lr/ε: no gradient there yet)"
            for e, axis, ok in zip(n.effective_lr, "xyzw", seen)
        )
        words.append(
            f"{name} rescales each coordinate: its effective learning rate {n.effective_lr_formula} is {per}."
        )
    inertia, adaptive = n.part("inertia"), n.part("adaptive")
    if inertia is not None:
        if inertia.length > 0:
            words.append(f"Its memory of past gradients alone would move it {_moves(inertia.vector)}.")
        else:
            words.append("It has no memory of past gradients yet.")
    if adaptive is not None and _still(adaptive.vector):
        words.append(f"The adaptive scale leaves the plain step as it is, {total}.")
    elif adaptive is not None:
        words.append(f"The adaptive scale changes the plain step by {_moves(adaptive.vector)}, {total}.")
    else:
        words.append(f"Together, {total}.")
    return words


def _theory_words(n: Narration, name: str) -> list[str]:
    t = n.theory
    low, high, shape, kappa = t["lam_min"], t["lam_max"], t["shape"], t["kappa"]
    words = []
    if shape == "bowl":
        words.append(
            f"The hill curves up in every direction here: its steepest curvature (the Hessian's largest "
            f"eigenvalue) is {fmt(high)}, its flattest {fmt(low)}."
        )
        if kappa is not None:
            words.append(
                f"Their ratio, the condition number, is {fmt(kappa)}: the valley is {kappa_words(kappa)}"
                + (
                    ", so one learning rate suits every direction."
                    if kappa < 10
                    else f": a step safe across it crawls along it, about {fmt(kappa)} times slower."
                )
            )
    elif shape == "saddle":
        words.append(
            f"This is a saddle: the hill curves up with curvature {fmt(high)} and down with {fmt(low)} "
            "(the Hessian's eigenvalues), so the ball rolls off along the downward direction; a saddle "
            "has no finite condition number."
        )
    elif shape == "hilltop":
        words.append(
            f"This is a hilltop: the hill curves down every way (curvatures {fmt(low)} and {fmt(high)}), "
            "so any push rolls the ball off; there is no finite condition number."
        )
    elif shape == "flat-bowl":
        words.append(
            f"The hill is flat in one direction (curvature {_flat(low)}) and curves up with {fmt(high)} in "
            "the other: along the flat one only the slope moves the ball, and with a zero curvature there "
            "is no finite condition number."
        )
    elif shape == "flat-ridge":
        words.append(
            f"The hill is flat in one direction (curvature {_flat(high)}) and curves down with {fmt(low)} "
            "in the other, so the ball rolls off that way; there is no finite condition number."
        )
    elif shape == "flat":
        words.append("The hill is flat here (both curvatures about zero): no condition number.")
    else:
        words.append("The Hessian is not finite here: there is no curvature to read.")
    words.append(_edge_words(n, name))
    return words


def _flat(value: float) -> str:
    """A curvature the readout counts as zero: 'about 0' (or its value where it is not that small)."""
    return "about 0" if abs(value) < 1e-6 else fmt(value)


def _edge_words(n: Narration, name: str) -> str:
    t = n.theory
    edge, ratio, lr = t["edge"], t["ratio"], fmt(n.lr)
    used = " with the scale this step used" if EFFECTIVE_LR.get(n.rule) else ""
    formula = t["edge_formula"] + (f", {t['where']}" if t["where"] else "")
    if edge is None:
        return f"{name}'s stability edge cannot be read here."
    if math.isinf(edge):
        return (
            f"No curvature here bends up, so no learning rate is unstable at this spot ({name}'s edge "
            f"{formula} is infinite); the edge matters near a minimum."
        )
    head = f"{name}'s stability edge here{used} is lr = {fmt(edge)} ({formula})"
    unseen = [axis for axis, ok in zip("xyzw", n.gradient_seen or ()) if not ok]
    if unseen:
        where = " and ".join(unseen)
        return (
            f"{head}, set by {where}, where the rule has seen no gradient yet, so its scale there is "
            f"lr/ε: the edge is that small only until a gradient arrives in {where}, and nothing moves "
            "the ball that way before one does."
        )
    if ratio is None:
        return head + "."
    if t["shape"] in ("saddle", "hilltop", "flat-ridge"):
        return (
            f"{head}; lr = {lr} is {fmt(ratio)}x that edge, which holds only across the upward curve: "
            "the hill curves down the other way, so the ball is unstable along the downhill direction "
            "whatever the lr."
        )
    if ratio < 0.5:
        return f"{head}; lr = {lr} is {fmt(1 / ratio)}x below the edge: safe; you could raise it."
    if ratio < 0.9:
        return f"{head}; lr = {lr} is at {ratio:.0%} of the edge: safe, with little room to raise it."
    if ratio < 1:
        return (
            f"{head}; lr = {lr} is just below it ({ratio:.0%}): stable, but it zig-zags along the steepest "
            "direction and settles slowly; lower it a little."
        )
    return (
        f"{head}; lr = {lr} is {fmt(ratio)}x the edge: unstable here, each step overshoots more along the "
        f"steepest direction; lower lr below {fmt(edge)}."
    )


# --- helpers --------------------------------------------------------------------------------------------
def _vec(tensor: torch.Tensor) -> Vector:
    return tuple(float(v) for v in tensor.reshape(-1).tolist())


def _minus(a: Vector, b: Vector) -> Vector:
    return tuple(x - y for x, y in zip(a, b))
