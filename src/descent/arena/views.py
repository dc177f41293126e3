"""Turns an `ArenaRun` into what the page shows: figures, the player's frame data, the leaderboard,
the outcome lines and the theory at the ball. Pure functions of the run (no Dash callbacks here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from dash import html

from descent.arena import barrier, figures, readout
from descent.arena.runner import ArenaRun, first_steps, probed_ball
from descent.arena.state import LR_LOG_RANGE, MAX_FRAMES_PLAYER, MAX_FRAMES_RACE, racer_label
from descent.dynamics import Trajectory
from descent.optim import RULES

BACKGROUND_ROUTE = "/_arena/landscape.png"  # served by create_app: the map's contour image


@dataclass
class Views:
    run_id: str
    map: dict
    surface: dict
    loss: dict
    energy: dict
    swarm: dict
    anim: dict
    outcome: list
    leaderboard: Any
    lr_note: str
    lr_note_level: str
    edge_marker: dict
    theory_static: str
    theory: dict = field(default_factory=dict)


def build_views(run: ArenaRun, run_id: str, ghost: bool = True, probed: Trajectory | None = None) -> Views:
    """What the page shows of ``run`` at once. Without ``probed`` (the ball's probed run,
    `probed_ball`) nothing waits for the ball's probes: the map's arrows are those of the ball's first
    two steps (`first_steps`) and an adaptive rule's theory, which reads its running scale, comes
    later (`later_views`); with it, everything is read from it (the reference: the same figures)."""
    landscape = run.landscape
    state = run.state
    racers: list[dict[str, Any]] = []
    swarm: dict[str, Any] | None = None
    start = state["start"] or [float(v) for v in landscape.start().squeeze(0).tolist()]
    target = state["target"] if state["target"] is not None else readout.auto_target(landscape)
    if run.swarm:
        swarm = _swarm_data(run)
    else:
        for i, (racer_state, traj) in enumerate(zip(state["racers"], run.trajectories)):
            racers.append(_racer_data(i, racer_state, traj, target))
    ball_traj = run.trajectories[0]
    rule = run.specs[0].optimizer
    hyper = {k: _scalar(v) for k, v in ball_traj.optimizer.hp.items()}
    later = probed is None and not run.swarm and _reads_state(ball_traj)
    theory = None if later else _theory(run, probed if probed is not None else ball_traj)
    parts = None if run.swarm else readout.update_parts(probed if probed is not None else first_steps(run))
    arrow_kinds = None if parts is None else readout.arrow_kinds(parts)
    swarm_fig = figures.empty_figure(
        "turn the swarm on<br>to compare where the balls are<br>with the Boltzmann density"
    )
    density = None
    if swarm is not None:
        temp = readout.temperature(rule, hyper, readout.grad_noise(run.specs[0].transforms))
        density = readout.boltzmann(landscape, temp) if temp else None
        swarm["temperature"] = temp
        swarm["boltzShare"] = density["globalShare"] if density else None
        swarm_fig = figures.swarm_figure(landscape, run_id, swarm, density)

    max_step = int(max([r["steps"][-1] for r in racers] + ([swarm["steps"][-1]] if swarm else [0])))
    view_end = _play_end(racers, max_step)
    background = f"{BACKGROUND_ROUTE}?k={figures.landscape_token(state['landscape'], state['params'])}"
    kick = {"coast": "thermal kick (Langevin, no force)"} if rule == "langevin" else None
    map_fig = figures.map_figure(
        landscape,
        racers,
        run_id,
        arrow_kinds,
        swarm,
        start,
        ghost=ghost,
        background=background,
        arrow_labels=kick,
        marks=barrier.traces(landscape),
    )
    map_fig["layout"]["meta"]["key"] = figures.map_key(map_fig)
    surface_fig = figures.surface_figure(landscape, racers, run_id, swarm)
    loss_fig = figures.loss_figure(racers, run_id, swarm, target if not run.swarm else None, view_end)
    energy_racer, note = _energy(ball_traj, racers[0] if racers else None, run.swarm)
    energy_fig = figures.energy_figure(energy_racer, run_id, note, view_end)

    max_step = int(max([r["steps"][-1] for r in racers] + ([swarm["steps"][-1]] if swarm else [0])))
    play_end = _play_end(racers, max_step)
    anim = {
        "run": run_id,
        "mapKey": map_fig["layout"]["meta"]["key"],
        "maxStep": max_step,
        "playEnd": play_end,
        "racers": [_anim_racer(r) for r in racers],
        "frameEvery": _frame_every(racers[0]["steps"] if racers else swarm["steps"]),
        "swarm": _anim_swarm(swarm) if swarm else None,
        "theory": None if theory is None else readout.typed_theory(theory),
        "target": target,
        "lrLog": list(LR_LOG_RANGE),
    }
    outcome = _outcome_lines(run, racers, swarm)
    board = _leaderboard(racers, target) if racers else _swarm_board(swarm)
    lr_note, level, marker = _edge_note(theory if theory is not None else _running(ball_traj.optimizer))
    static = f"{rule}: {RULES[rule].math}"
    return Views(
        run_id,
        map_fig,
        surface_fig,
        loss_fig,
        energy_fig,
        swarm_fig,
        anim,
        outcome,
        board,
        lr_note,
        level,
        marker,
        static,
        theory or {},
    )


def _reads_state(trajectory: Trajectory) -> bool:
    """Does the rule's stability edge read its running state (an adaptive rule's scale)?"""
    return trajectory.optimizer.rule.physics == "adaptive"


def _theory(run: ArenaRun, ball: Trajectory) -> dict:
    """`readout.ball_theory` at the player's frames of the ball's run ``ball`` (with the rule's state
    where ``ball`` recorded it: the probed run)."""
    frames = slice(None) if run.swarm else player_frames(ball)  # a swarm's: every frame
    states = readout.frame_states(ball, frames)
    return readout.ball_theory(run.landscape, ball.optimizer, ball.positions[frames, 0, :], states)


def _running(optimizer) -> dict:
    """What `_edge_note` reads of the theory of an adaptive rule's probed run (``state: running``; no
    edge at step 0, before the first step forms the running scale)."""
    formula, where = readout.edge_formula(optimizer)
    lr = float(optimizer.lr_at(0))
    return {
        "lr": lr,
        "rule": optimizer.name,
        "formula": formula,
        "where": where,
        "state": "running",
        "edge": [None],
    }


def later_views(run: ArenaRun, run_id: str) -> dict[str, Any]:
    """What waits for the ball's probed run (`probed_ball`): the update arrows (None for a swarm) and,
    for a rule whose edge reads its running state, the theory at the ball (its frames' typed arrays)
    and the note under the lr slider (``lr_note``: text, level, the edge marker's style)."""
    if run.swarm:
        return {"arrows": None, "theory": None, "lr_note": None}
    probed = probed_ball(run)
    arrows = build_arrows(run, run_id, probed)
    if not _reads_state(probed):
        return {"arrows": arrows, "theory": None, "lr_note": None}
    theory = _theory(run, probed)
    return {"arrows": arrows, "theory": readout.typed_theory(theory), "lr_note": _edge_note(theory)}


def _play_end(racers: list[dict[str, Any]], max_step: int) -> int:
    """Where playback stops: the whole budget, or shortly after the last racer settled for good
    (a minimum, a saddle, diverged, escaped: nothing visible moves after that)."""
    if not racers or any(r["outcome"] == "moving" for r in racers):
        return max_step
    settled = max(r["outcomeStep"] for r in racers)
    return int(min(max_step, math.ceil(1.2 * settled) + 20))


# --- per racer -------------------------------------------------------------------------------------
#: The player gets every recorded frame up to this many: a run of up to ``MAX_FRAMES_RACE`` steps
#: records every step, so Step moves the ball one optimizer step (a longer run is thinned, and the
#: player says by how much).
PLAYER_FRAMES = max(MAX_FRAMES_PLAYER, MAX_FRAMES_RACE + 1)


def player_frames(traj) -> np.ndarray:
    """The recorded frames the player gets: all of them up to ``PLAYER_FRAMES``, else that many
    evenly spaced, the first and the last (the final position, exact) always among them."""
    total = len(traj.steps)
    if total <= PLAYER_FRAMES:
        return np.arange(total)
    return np.unique(np.round(np.linspace(0, total - 1, PLAYER_FRAMES)).astype(np.int64))


def _racer_data(index: int, racer_state: dict, traj, target: float | None) -> dict[str, Any]:
    landscape = traj.landscape
    frames = player_frames(traj)
    positions = figures.to_numpy(traj.positions[frames, 0, :])
    loss = figures.to_numpy(traj.loss[frames, 0])
    outcome = traj.outcomes[0]
    step = int(traj.outcome_step[0])
    label = racer_label(racer_state)
    return {
        "index": index,
        "label": label,
        "color": figures.color(index),
        "frames": frames,
        "steps": traj.steps.numpy().astype(np.int64)[frames],
        "x": positions[:, 0],
        "y": positions[:, 1],
        "loss": loss,
        "outcome": outcome,
        "outcomeStep": step,
        "stepsRun": traj.steps_run,
        "text": readout.describe_outcome(landscape, outcome, step, traj.steps_run, traj.nearest_minimum[0]),
        "badge": readout.outcome_badge(landscape, outcome, step, traj.steps_run, traj.nearest_minimum[0]),
        "rank": (readout.OUTCOME_ORDER.index(readout.outcome_class(landscape, outcome)), step),
        "toTarget": readout.steps_to_target(traj, target),
        "diverged": outcome == "diverged",
    }


def _anim_racer(racer: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": racer["label"],
        "color": racer["color"],
        "steps": racer["steps"].tolist(),
        "x": figures.typed(racer["x"]),
        "y": figures.typed(racer["y"]),
        "loss": figures.typed(racer["loss"]),
        "outcome": racer["outcome"],
        "outcomeStep": racer["outcomeStep"],
        "text": racer["text"],
        "diverged": racer["diverged"],
        "toTarget": racer["toTarget"],
    }


def _frame_every(steps: np.ndarray) -> int:
    """How many optimizer steps apart the player's frames are (the largest gap: 1 when every step is
    there)."""
    return int(np.diff(steps).max()) if len(steps) > 1 else 1


def _energy(traj, racer: dict[str, Any] | None, swarm: bool) -> tuple[dict[str, Any] | None, str]:
    if swarm:
        return None, "energy is shown for a single ball<br>(turn the swarm off)"
    base = {"steps": racer["steps"], "potential": racer["loss"]}
    if not traj.has_inertia:
        return base, f"{traj.optimizer.name} has no inertia:<br>no kinetic energy (try momentum or nesterov)"
    kinetic = figures.to_numpy(traj.kinetic_energy[racer["frames"], 0])
    return {**base, "kinetic": kinetic, "total": kinetic + racer["loss"]}, ""


# --- arrows ------------------------------------------------------------------------------------------
def _nice(value: float) -> float:
    """The 1-2-5 number at or below ``value``."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for mantissa in (5, 2, 1):
        if mantissa * 10**exponent <= value:
            return float(mantissa * 10**exponent)
    return float(10**exponent)


def build_arrows(run: ArenaRun, run_id: str, probed: Trajectory | None = None) -> dict[str, Any] | None:
    """The ball's update arrows at the player's frames, read from the engine's ``update_parts`` probe
    (of ``probed``, the ball's probed run: `probed_ball`): at frame k the step k-1 -> k (force step,
    coast, update; Nesterov's look-ahead point; the adaptive scale), drawn from where that step started
    (``origin``). Sent by a second, later callback."""
    if run.swarm:
        return None
    traj = probed if probed is not None else probed_ball(run)
    parts = readout.update_parts(traj)
    kinds = readout.arrow_kinds(parts)
    vectors = {k: figures.to_numpy(parts[k]) for k in kinds if k != "lookahead"}
    # one scale per run, so lengths compare across frames: a typical arrow (the 75th percentile of the
    # longest arrow per frame while the ball still moves) is drawn about a tenth of the box long
    lengths = np.stack([np.linalg.norm(v, axis=1) for v in vectors.values()])
    longest = np.nan_to_num(lengths, nan=0.0, posinf=np.inf).max(axis=0)  # NaN: no arrow at that frame
    settled = _frame_of(traj, int(traj.outcome_step[0])) if traj.outcomes[0] != "moving" else len(longest)
    moving = longest[: max(settled, 1) + 1]
    moving = moving[np.isfinite(moving) & (moving > 0)]
    typical = float(np.quantile(moving, 0.75)) if moving.size else 0.0
    scale = _nice(0.1 * run.landscape.span / typical) if typical > 0 else 1.0
    frames = player_frames(traj)
    anim: dict[str, Any] = {"run": run_id, "scale": scale}
    anim["origin"] = figures.typed(figures.to_numpy(parts["origin"])[frames])
    for kind, vec in vectors.items():
        anim[kind] = figures.typed(vec[frames] * scale)  # NaN: no arrow at that frame
    if "lookahead" in kinds:
        anim["lookahead"] = figures.typed(figures.to_numpy(parts["lookahead"])[frames])
    if traj.optimizer.rule.physics == "adaptive":
        anim["adaptive"] = figures.typed(figures.to_numpy(parts["scale"])[frames])
    anim["note"] = (
        f"update arrows on the map: the step that led to the frame, from where it started, ×{scale:g} "
        "their true length (recorded by the engine's update_parts probe)"
    )
    return anim


def _frame_of(traj, step: int) -> int:
    """The index of the first saved frame at or after ``step``."""
    return int(np.searchsorted(traj.steps.numpy(), step))


# --- swarm -------------------------------------------------------------------------------------------
def _swarm_data(run: ArenaRun) -> dict[str, Any]:
    traj = run.trajectories[0]
    positions = traj.positions.to(torch.float64)  # [T, N, 2]
    loss = traj.loss.to(torch.float64)
    finite = torch.where(torch.isfinite(loss), loss, torch.full_like(loss, math.nan)).numpy()
    with np.errstate(all="ignore"):
        quantiles = [
            np.nanquantile(finite, q, axis=1) if np.isfinite(finite).any() else np.zeros(len(finite))
            for q in (0.1, 0.5, 0.9)
        ]
    counts: dict[str, int] = {}
    for outcome in traj.outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    n = positions.shape[1]
    return {
        "n": n,
        "color": figures.color(0),
        "steps": traj.steps.numpy().astype(np.int64),
        "x": positions[-1, :, 0].numpy(),
        "y": positions[-1, :, 1].numpy(),
        "loss": loss[-1].numpy(),
        "final_x": positions[-1, :, 0].numpy(),
        "frames_x": positions[:, :, 0].numpy(),
        "frames_y": positions[:, :, 1].numpy(),
        "frames_loss": loss.numpy(),
        "loss_quantiles": quantiles,
        "share": readout.global_basin_share(run.landscape, positions),
        "outcomes": counts,
        "stepsRun": traj.steps_run,
        "label": racer_label(run.state["racers"][0]),
    }


def _anim_swarm(swarm: dict[str, Any]) -> dict[str, Any]:
    return {
        "n": swarm["n"],
        "steps": swarm["steps"].tolist(),
        "color": swarm["color"],
        "x": figures.typed(swarm["frames_x"], "f4"),
        "y": figures.typed(swarm["frames_y"], "f4"),
        "loss": figures.typed(np.nan_to_num(swarm["frames_loss"], nan=0.0, posinf=0.0, neginf=0.0), "f4"),
        "share": swarm["share"],
        "boltzShare": swarm.get("boltzShare"),
        "temperature": swarm.get("temperature"),
    }


# --- text --------------------------------------------------------------------------------------------
def _swatch(colour: str) -> html.Span:
    return html.Span(className="swatch", style={"background": colour})


def _outcome_lines(run: ArenaRun, racers: list[dict[str, Any]], swarm: dict[str, Any] | None) -> list:
    if swarm is not None:
        n = swarm["n"]
        parts = sorted(swarm["outcomes"].items(), key=lambda kv: -kv[1])
        landscape = run.landscape
        described = []
        for outcome, count in parts:
            kind, _, point = outcome.partition(":")
            tag = ""
            if kind == "minimum":
                tag = " (global)" if landscape.point(point).kind == "global_min" else " (local)"
            described.append(f"{outcome}{tag} {100 * count / n:.0f}%")
        line = f"{n} balls after {swarm['stepsRun']} steps: " + ", ".join(described)
        return [html.Div([_swatch(swarm["color"]), html.Span(line, className="outcome-line")])]
    # the player fills `outcome-now-i` with where the ball is at the shown step: the run's end is
    # labelled as such, so it is never read as the ball's state at step 0
    return [
        html.Div(
            [
                _swatch(r["color"]),
                html.B(r["label"] + ": "),
                html.Span(id=f"outcome-now-{r['index']}", className="outcome-now"),
                html.Span("final result of the run: ", className="outcome-label"),
                html.Span(r["text"], className="outcome-line" + (" bad" if r["diverged"] else "")),
            ]
        )
        for r in racers
    ]


def _leaderboard(racers: list[dict[str, Any]], target: float | None) -> html.Table:
    """The racers ranked by outcome (a global minimum, a local one, a saddle, ..., escaped, diverged)
    then by the step it was reached: the same outcome step as the banner's. The target column is
    another count: the first step whose loss is at or below the target."""
    target_text = f"first step with U ≤ {target:.4g}" if target is not None else "first step at target"
    header = html.Tr(
        [
            html.Th("#"),
            html.Th("optimizer"),
            html.Th("loss now"),
            html.Th(target_text),
            html.Th("outcome (step it was reached)"),
        ]
    )
    rows = []
    for rank, r in enumerate(sorted(racers, key=lambda r: (*r["rank"], r["index"])), start=1):
        i = r["index"]
        badge, level, detail = r["badge"]
        rows.append(
            html.Tr(
                [
                    html.Td(html.Span(str(rank), id=f"lb-rank-{i}", className="rank")),
                    html.Td([_swatch(r["color"]), r["label"]]),
                    html.Td(html.Span(id=f"lb-loss-{i}", className="num")),
                    html.Td(str(r["toTarget"]) if r["toTarget"] is not None else "—", className="num"),
                    html.Td([html.Span(badge, className=f"badge {level}"), " ", detail]),
                ],
                id=f"lb-row-{i}",
                className="lb-row",
            )
        )
    return html.Table([html.Thead(header), html.Tbody(rows)], className="leaderboard", id="leaderboard-table")


def _swarm_board(swarm: dict[str, Any]) -> html.Div:
    temp = swarm.get("temperature")
    boltz = swarm.get("boltzShare")
    share = swarm["share"]
    items = [
        html.Div(
            ["balls in the global minimum's basin now: ", html.B(id="swarm-share-now")], className="stat"
        )
    ]
    if share is not None:
        items.append(html.Div(f"at the end: {100 * share[-1]:.1f}%", className="stat"))
    items.append(
        html.Div(
            f"temperature T = {temp:.4g}" if temp else "temperature: no closed form for this noise and rule",
            className="stat",
        )
    )
    if boltz is not None:
        items.append(
            html.Div(f"Boltzmann share of the global basin at T: {100 * boltz:.1f}%", className="stat")
        )
    return html.Div(items, className="swarm-board")


def _edge_note(theory: dict) -> tuple[str, str, dict]:
    """The note under the lr slider and where the rule's stability edge at the start sits on it."""
    lr, rule, formula = theory["lr"], theory["rule"], theory["formula"]
    edge = theory["edge"][0]
    hidden = {"display": "none"}
    if not formula:
        return f"{rule} declares no stability edge", "info", hidden
    if theory["state"] == "running":
        return (
            f"{rule}'s edge {formula} reads its running scale ({theory['where']}): it is shown at the "
            "ball, frame by frame, from the run's own state (none before the first step; along a "
            "direction with no gradient yet the scale is eps and the edge tiny)",
            "info",
            hidden,
        )
    if theory["state"] == "fresh":
        shown = "none (no positive curvature)" if edge is None else f"{edge:.3g}"
        return (
            f"{rule}'s edge {formula} reads its running scale ({theory['where']}), which no probe records; "
            f"with a fresh state (P = eps) it is {shown} at the start: a formal bound, not a warning",
            "info",
            hidden,
        )
    if edge is None:
        return "stability edge at the start: none (no positive curvature there)", "info", hidden
    low, high = LR_LOG_RANGE
    position = (math.log10(edge) - low) / (high - low)
    percent = 100 * min(max(position, 0.0), 1.0)
    marker = {"display": "block", "left": f"calc({percent:.2f}% + {8 - 0.16 * percent:.2f}px)"}
    if lr > edge:
        return (
            f"lr {lr:.4g} is above the stability edge at the start ({formula} = {edge:.4g}): "
            "each step overshoots more; expect the ball to diverge",
            "bad",
            marker,
        )
    if lr > 0.8 * edge:
        return (
            f"lr {lr:.4g} is close to the stability edge at the start ({formula} = {edge:.4g}; the "
            "edge at the ball's current curvature is under Theory at the ball)",
            "warn",
            marker,
        )
    return (
        f"stability edge at the start: {formula} = {edge:.4g} (the edge at the ball's current "
        "curvature, which the slider's marker follows, is under Theory at the ball)",
        "ok",
        marker,
    )


def _scalar(value: object) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.reshape(-1)[0])
    return float(value)  # type: ignore[arg-type]
