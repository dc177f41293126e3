"""What the Arena reads off a run, all from the engine: the Hessian at the ball (`Landscape.hessian`),
the rule's own stability edge (`UpdateRule.edge`, `edge_math`), the update decomposed as the engine's
``update_parts`` probe recorded it inside the loop, the nearest basin
(`descent.dynamics.nearest_minimum`), and the Boltzmann density exp(-U/T) of the landscape on a grid.

Nothing here steps a ball, replays a rule or takes a gradient: positions and arrows come from
`run_spec`'s trajectory.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from descent.dynamics import Trajectory, nearest_minimum
from descent.landscapes import Landscape
from descent.optim import Optimizer
from descent.optim.hypergradient import learned_rate
from descent.plots.static import landscape_grid

PARTS = ("force", "coast", "update", "scale", "lookahead")  # the outputs of the update_parts probe
_MATH_SYMBOLS = (
    ("sqrt(v_hat)", "√v̂"),
    ("sqrt(s~)", "√s̃"),
    ("sqrt(s)", "√s"),
    ("lambda_max", "λmax"),
    ("beta1", "β1"),
    ("beta", "β"),
    ("mu", "μ"),
    ("P^-1 H", "P⁻¹H"),
)


# --- theory at the ball ------------------------------------------------------------------------------
def hessians(landscape: Landscape, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Hessian at each of ``points`` ``[M, d] -> [M, d, d]`` (zero where it is not finite, e.g. a
    diverged ball) and which of them are finite ``[M]``."""
    points = points.to(torch.float64)
    finite = torch.isfinite(points).all(dim=1)
    safe = torch.where(finite.unsqueeze(1), points, torch.zeros_like(points))
    hess = landscape.hessian(safe)
    ok = finite & torch.isfinite(hess).flatten(1).all(dim=1)
    return torch.where(ok.view(-1, 1, 1), hess, torch.zeros_like(hess)), ok


def hessian_eigenvalues(landscape: Landscape, points: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (ascending) of the Hessian at each of ``points`` ``[M, d] -> [M, d]``; NaN where the
    Hessian is not finite."""
    hess, ok = hessians(landscape, points)
    return _eigenvalues(hess, ok)


def _eigenvalues(hess: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    eig = torch.linalg.eigvalsh(0.5 * (hess + hess.transpose(1, 2)))
    return torch.where(ok.unsqueeze(1), eig, torch.full_like(eig, math.nan))


def edge_formula(optimizer: Optimizer) -> tuple[str, str]:
    """The rule's own ``edge_math`` with Greek letters for the page, as (the formula, what its symbols
    are): ``("2/λmax(P⁻¹H)", "P = √s + eps")``; the second is empty where there is nothing to say."""
    text = optimizer.rule.edge_math
    for plain, symbol in _MATH_SYMBOLS:
        text = text.replace(plain, symbol)
    formula, _, where = text.partition(", ")
    return formula, where


def ball_theory(
    landscape: Landscape, optimizer: Optimizer, positions: torch.Tensor, states: dict | None = None
) -> dict:
    """Per frame, for positions ``[T, d]``: Hessian eigenvalues and the rule's local stability edge
    ``rule.edge(H, state, hp)`` against the learning rate.

    ``states``: the rule's state at each frame (``{name: [T, d]}``, ``step`` ``[T]``, from the
    ``optimizer_state`` probe). The edge of an adaptive rule is on the sharpness preconditioned by its
    running scale, so it is only defined once a step has formed that scale: NaN at the start
    (``state: "running"``). Without ``states`` every rule is evaluated with a fresh state and said so
    (``state: "fresh"``) for the rules whose edge reads it.
    """
    hess, ok = hessians(landscape, positions)
    eig = _eigenvalues(hess, ok)
    points = torch.nan_to_num(positions.to(torch.float64))
    hp = {**optimizer.hp, "lr": optimizer.lr_at(0)}
    adaptive = optimizer.rule.physics == "adaptive"
    if states is not None:
        state = {name: value.to(torch.float64) for name, value in states.items()}
        edge = optimizer.rule.edge(hess, state, hp)
        if adaptive:
            edge = torch.where(states["step"] > 0, edge, torch.full_like(edge, math.nan))
    else:
        edge = optimizer.rule.edge(hess, optimizer.init(points), hp)
    edge = torch.where(ok, edge, torch.full_like(edge, math.nan))
    formula, where = edge_formula(optimizer)
    lr = float(hp["lr"])
    eig = numerically_zeroed(eig)
    shape, kappa = curvature_shape(eig[:, 0], eig[:, -1])
    rate = torch.full_like(edge, lr)
    held = None if states is None else learned_rate(states)
    if held is not None:  # a rule that learns its rate (hd-*): the rate it holds
        rate = held.to(torch.float64)
    ratio = torch.where(edge > 0, rate / edge, torch.full_like(edge, math.nan))
    return {
        "rule": optimizer.name,
        "lr": lr,
        "formula": formula,
        "where": where,
        "state": ("running" if states is not None else "fresh") if adaptive else None,
        "lamMin": _clean(eig[:, 0].tolist()),
        "lamMax": _clean(eig[:, -1].tolist()),
        "edge": _clean(edge.tolist()),
        "shape": [SHAPES[int(k)] for k in shape.tolist()],
        "kappa": _clean(kappa.tolist()),
        "lrRatio": _clean(ratio.tolist()),
    }


#: What the curvature at a point looks like, by the signs of the Hessian's flattest and steepest
#: eigenvalues (a curvature within `FLAT` of the largest one in size counts as zero).
SHAPES = ("unknown", "bowl", "flat-bowl", "saddle", "flat-ridge", "hilltop", "flat")
FLAT = 1e-8


def numerically_zeroed(eig: torch.Tensor) -> torch.Tensor:
    """Eigenvalues ``[M, d]`` with those that are zero up to rounding set to 0: |λ| <= `FLAT` ·
    max(1, |steepest|) at the same point (the tolerance `curvature_shape` counts as flat), so the page
    shows "flattest 0", not -6.25e-34, where it says the curvature is zero.

    >>> numerically_zeroed(torch.tensor([[-6.25e-34, 2.0], [-1e-3, 2.0]], dtype=torch.float64)).tolist()
    [[0.0, 2.0], [-0.001, 2.0]]
    """
    scale = eig.abs().nan_to_num(nan=0.0).amax(dim=1, keepdim=True).clamp(min=1.0)
    return torch.where(eig.abs() <= FLAT * scale, torch.zeros_like(eig), eig)


#: The condition number κ = steepest / flattest in words, by thresholds: κ < 2 nearly round, < 10
#: mildly stretched, < 100 stretched, else a narrow valley.
KAPPA_WORDS = ((2.0, "nearly round"), (10.0, "mildly stretched"), (100.0, "stretched"))


def kappa_words(kappa: float) -> str:
    """The valley's shape for a condition number κ >= 1: "nearly round" (κ < 2), "mildly stretched"
    (κ < 10), "stretched" (κ < 100), else "a narrow valley".

    >>> [kappa_words(k) for k in (1.0, 4.4, 30.0, 1e4)]
    ['nearly round', 'mildly stretched', 'stretched', 'a narrow valley']
    """
    return next((words for limit, words in KAPPA_WORDS if kappa < limit), "a narrow valley")


def curvature_shape(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For the Hessian's flattest and steepest eigenvalues ``[M]``: the index in `SHAPES` of the shape
    (a bowl: both positive; flat-bowl: one zero, one positive; a saddle; flat-ridge: one zero, one
    negative; a hilltop; flat: both zero) and the condition number λmax/λmin where it is finite (a
    bowl; NaN elsewhere: a zero or negative curvature has no finite condition number)."""
    scale = torch.maximum(low.abs(), high.abs()).clamp(min=1.0)
    tol = FLAT * scale
    lo = torch.where(low.abs() <= tol, 0, torch.sign(low))
    hi = torch.where(high.abs() <= tol, 0, torch.sign(high))
    table = {(1, 1): 1, (0, 1): 2, (-1, 1): 3, (-1, 0): 4, (-1, -1): 5, (0, 0): 6}
    finite = (torch.isfinite(low) & torch.isfinite(high)).tolist()
    shape = torch.tensor(
        [table.get((int(a), int(b)), 0) if f else 0 for a, b, f in zip(lo.tolist(), hi.tolist(), finite)],
        dtype=torch.int64,
    )
    kappa = torch.where(shape == 1, high / low, torch.full_like(high, math.nan))
    return shape, kappa


def frame_states(trajectory: Trajectory, frames, particle: int = 0) -> dict | None:
    """The ``optimizer_state`` probe of one particle at the saved frames ``frames`` (indices), or None
    when the run did not record it at exactly those steps."""
    record = trajectory.probes.get("optimizer_state")
    if record is None:
        return None
    wanted = trajectory.steps[frames].reshape(-1)
    index = {int(k): i for i, k in enumerate(record["steps"].tolist())}
    if any(int(k) not in index for k in wanted):
        return None
    rows = torch.tensor([index[int(k)] for k in wanted])
    return {
        name: value[rows] if name == "step" else value[rows, particle]
        for name, value in record.items()
        if name != "steps"
    }


def typed_theory(theory: dict) -> dict:
    """`ball_theory` with its per-frame arrays as float32 typed-array specs (NaN for "none")."""
    import base64

    def pack(values: list | None) -> dict | None:
        if values is None:
            return None
        array = np.array([math.nan if v is None else v for v in values], dtype=np.float32)
        return {"dtype": "f4", "bdata": base64.b64encode(array.tobytes()).decode("ascii")}

    return {
        **theory,
        "lamMin": pack(theory["lamMin"]),
        "lamMax": pack(theory["lamMax"]),
        "edge": pack(theory["edge"]),
        "kappa": pack(theory["kappa"]),
        "lrRatio": pack(theory["lrRatio"]),
        "shape": pack([SHAPES.index(k) for k in theory["shape"]]),
        "shapes": list(SHAPES),
    }


# --- the update, decomposed ---------------------------------------------------------------------------
def update_parts(trajectory: Trajectory, particle: int = 0) -> dict[str, Any]:
    """The ``update_parts`` probe of one particle at each saved frame ``[T, d]``: the step k-1 -> k that
    led to frame k, as the engine took it (exact with gradient noise, and when not every step is saved):

    - ``force``: the force step -lr g~ (g~: the gradient after the transforms, noise included),
    - ``coast``: what the rule does with no force (inertia; Langevin's kick),
    - ``update``: the step itself, x_k - x_{k-1},
    - ``scale``: the adaptive scale update / force per coordinate,
    - ``lookahead``: Nesterov's look-ahead point x_{k-1} + coast,
    - ``origin``: where the step started, x_{k-1} = x_k - update.

    NaN at frames the probe did not see (the start, and a last frame off the probe's period).
    Raises KeyError when the run did not request the probe.
    """
    record = trajectory.probes["update_parts"]
    probe_steps = {int(k): i for i, k in enumerate(record["steps"].tolist())}
    rows = [probe_steps.get(int(k), -1) for k in trajectory.steps.tolist()]
    index = torch.tensor(rows, dtype=torch.int64)
    seen = (index >= 0).unsqueeze(1)
    out: dict[str, Any] = {"rule": trajectory.optimizer.name, "steps": trajectory.steps}
    for name in PARTS:
        values = record[name][:, particle, :].to(torch.float64)[index.clamp(min=0)]
        out[name] = torch.where(seen, values, torch.full_like(values, math.nan))
    out["origin"] = trajectory.positions[:, particle, :].to(torch.float64) - out["update"]
    out["seen"] = seen.squeeze(1)
    return out


def arrow_kinds(parts: dict[str, Any]) -> list[str]:
    """The arrows to draw: the force step and the update always, the coast where the rule has one
    (inertia, Langevin's kick: not zero somewhere), Nesterov's look-ahead point."""
    kinds = ["force", "update"]
    coast = parts["coast"]
    if bool((torch.isfinite(coast) & (coast != 0)).any()):
        kinds.insert(1, "coast")
    if parts["rule"] == "nesterov":
        kinds.append("lookahead")
    return kinds


# --- noise, temperature, Boltzmann ---------------------------------------------------------------------
def grad_noise(transforms: list[dict]) -> float:
    """The gradient-noise level sigma of a spec's ``transforms`` (0 without noise; a per-particle list
    has no single level and gives 0)."""
    for transform in transforms:
        if transform.get("kind") == "grad_noise":
            sigma = transform.get("sigma", 0.0)
            return 0.0 if isinstance(sigma, list) else float(sigma)
    return 0.0


def temperature(rule: str, hyper: dict[str, float], noise: float) -> float | None:
    """The temperature of a noisy run: Langevin's T; gradient noise of std sigma per coordinate is
    `descent.theory.noise.sgd_temperature` (lr sigma^2/2 for GD, lr sigma^2/(2(1 - beta)) for the heavy
    ball); None where no formula is known (Nesterov, adaptive rules)."""
    from descent.theory.noise import sgd_temperature

    lr = float(hyper.get("lr", math.nan))
    if rule == "langevin":
        return float(hyper.get("temperature", 0.0)) or None
    if noise <= 0 or not math.isfinite(lr) or rule not in ("gd", "momentum"):
        return None
    beta = float(hyper.get("momentum", 0.9)) if rule == "momentum" else 0.0
    return sgd_temperature(lr, noise**2, momentum=beta)


def _in_global_basin(landscape: Landscape, points: torch.Tensor) -> torch.Tensor:
    """For each of ``points`` ``[M, d]``: is its nearest known minimum a global one? ``[M]`` of 0/1."""
    global_ids = {p.id for p in landscape.global_minima}
    nearest = nearest_minimum(landscape, points.to(torch.float64))
    return torch.tensor([m in global_ids for m in nearest], dtype=torch.float64)


def boltzmann(landscape: Landscape, temp: float, resolution: int = 160) -> dict[str, Any] | None:
    """The Boltzmann density exp(-U/T)/Z over the box: its marginal in x (density per unit x) and the
    probability of the global minimum's basin (grid points whose nearest known minimum is global)."""
    if not temp or temp <= 0 or not landscape.bounded_below:
        return None
    xs, ys, values = landscape_grid(landscape, resolution)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    u = np.where(finite, values, np.inf)
    weight = np.exp(-(u - u[finite].min()) / temp)
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    z = weight.sum() * dx * dy
    marginal = weight.sum(axis=0) * dy / z
    share = None
    if landscape.global_minima:
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        points = torch.tensor(np.stack([gx.ravel(), gy.ravel()], axis=1))
        in_global = _in_global_basin(landscape, points).numpy().reshape(weight.shape)
        share = float((weight * in_global).sum() / weight.sum())
    return {"x": xs.tolist(), "density": marginal.tolist(), "globalShare": share, "temperature": temp}


def global_basin_share(landscape: Landscape, positions: torch.Tensor) -> list[float] | None:
    """Per frame, the share of balls (positions ``[T, N, d]``) whose nearest known minimum is global."""
    if not landscape.global_minima:
        return None
    t, n, d = positions.shape
    flags = _in_global_basin(landscape, positions.reshape(-1, d)).reshape(t, n)
    return flags.mean(dim=1).tolist()


# --- outcomes ------------------------------------------------------------------------------------------
def describe_outcome(
    landscape: Landscape, outcome: str, step: int, steps_run: int, nearest: str | None = None
) -> str:
    """'minimum:left (local) at step 50', 'diverged at step 37', 'still moving after 2000 steps'."""
    kind, _, point_id = outcome.partition(":")
    if kind == "minimum":
        level = "global" if landscape.point(point_id).kind == "global_min" else "local"
        return f"{outcome} ({level}) at step {step}"
    if kind == "saddle":
        return f"{outcome} (stalled at a saddle) at step {step}"
    if outcome == "diverged":
        return f"diverged at step {step}"
    if outcome == "escaped":
        return f"escaped at step {step} (left the box; the landscape is unbounded below)"
    if outcome == "stationary":
        return f"stationary at step {step} (no known critical point near)"
    near = f" (nearest minimum: {nearest})" if nearest else ""
    return f"still moving after {steps_run} steps{near}"


#: The order of outcomes on the leaderboard (best first) and each one's badge and its colour.
OUTCOME_ORDER = ("global", "local", "saddle", "stationary", "moving", "escaped", "diverged")
BADGES = {
    "global": ("global minimum", "ok"),
    "local": ("local minimum", "warn"),
    "saddle": ("stalled at a saddle", "warn"),
    "stationary": ("stopped", "warn"),
    "moving": ("still moving", "info"),
    "escaped": ("escaped", "bad"),
    "diverged": ("diverged", "bad"),
}


def outcome_class(landscape: Landscape, outcome: str) -> str:
    """The outcome's class in `OUTCOME_ORDER`: a minimum is global or local."""
    kind, _, point_id = outcome.partition(":")
    if kind == "minimum":
        return "global" if landscape.point(point_id).kind == "global_min" else "local"
    return kind if kind in OUTCOME_ORDER else "moving"


def outcome_badge(
    landscape: Landscape, outcome: str, step: int, steps_run: int, nearest: str | None = None
) -> tuple[str, str, str]:
    """(badge, its level ok/warn/info/bad, the rest of the sentence) for the leaderboard: the badge
    says what happened, the rest where and when, without repeating it ('diverged', 'at step 59')."""
    cls = outcome_class(landscape, outcome)
    badge, level = BADGES[cls]
    kind, _, point_id = outcome.partition(":")
    if cls in ("global", "local"):
        detail = f"{point_id}, settled at step {step}"
    elif cls == "saddle":
        detail = f"{point_id}, at step {step}"
    elif cls == "moving":
        detail = f"after {steps_run} steps" + (f" (nearest minimum: {nearest})" if nearest else "")
    elif cls == "escaped":
        detail = f"left the box at step {step} (unbounded below)"
    elif cls == "stationary":
        detail = f"at step {step}, no known critical point near"
    else:
        detail = f"at step {step}"
    return badge, level, detail


def steps_to_target(trajectory: Trajectory, target: float | None, particle: int = 0) -> int | None:
    """The first recorded step at which the particle's loss is at or below ``target``."""
    if target is None:
        return None
    hit = torch.nonzero(trajectory.loss[:, particle] <= target)
    return int(trajectory.steps[hit[0, 0]]) if hit.numel() else None


def auto_target(landscape: Landscape) -> float | None:
    """Default race target: within 1e-3 of the global minimum's value (when it is known)."""
    values = [p.value for p in landscape.global_minima if p.value is not None]
    return float(min(values)) + 1e-3 if values else None


# --- helpers ------------------------------------------------------------------------------------------
def _clean(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]
