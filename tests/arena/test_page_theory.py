"""Readable theory (issue 11, item 5): each number at the ball says in plain words what it means and
what to do, and every number is the engine's (`descent.arena.readout.ball_theory`: the landscape's
Hessian, the rule's own edge), shown as the page received it. Screenshots in artifacts/arena/."""

from __future__ import annotations

import pytest

from descent.arena import readout
from descent.arena.readout import kappa_words
from descent.arena.runner import probed_ball, run_state
from descent.arena.state import PRESETS, normalize
from descent.arena.views import player_frames
from tests.arena.arena_page import ArenaPage

pytestmark = pytest.mark.browser


@pytest.fixture()
def arena(page, arena_url) -> ArenaPage:
    return ArenaPage(page, arena_url)  # each test goes to its preset's state


def _at_step_one(arena: ArenaPage, state: dict) -> None:
    """Show ``state`` and put the player at step 1 (the ball one step from its start)."""
    arena.show(state)
    arena.page.evaluate("() => { window.descentArena.pause(); window.descentArena.step = 0; }")
    arena.click("step-button")
    arena.page.wait_for_function("() => window.descentArena.step === 1")


def _engine_theory(state: dict) -> dict:
    run = run_state(normalize(state))
    traj = run.trajectories[0]
    frames = player_frames(traj)
    return readout.ball_theory(
        run.landscape, traj.optimizer, traj.positions[frames, 0, :], readout.frame_states(traj, frames)
    )


def _panel(arena: ArenaPage) -> dict[str, str]:
    ids = (
        "theory-eigs",
        "theory-eigs-words",
        "theory-kappa",
        "theory-kappa-words",
        "theory-edge",
        "theory-lr",
    )
    return {i: arena.page.inner_text(f"#{i}") for i in ids}


def test_too_large_a_step_reads_in_words_with_the_engines_numbers(arena, artifacts):
    state = PRESETS["Too large a step"][0]
    _at_step_one(arena, state)  # near the start, before the ball diverges
    theory = _engine_theory(state)
    shown = _panel(arena)
    arena.shot(artifacts / "page-theory-too-large-a-step.png")
    high, low, kappa, edge = theory["lamMax"][1], theory["lamMin"][1], theory["kappa"][1], theory["edge"][1]
    ratio = theory["lrRatio"][1]
    assert (high, low, kappa) == pytest.approx((10.0, 1.0, 10.0), rel=1e-9)
    assert edge == pytest.approx(0.2, rel=1e-9) and ratio == pytest.approx(0.21 / 0.2, rel=1e-9)
    assert shown["theory-eigs"] == f"steepest {high:.4g}, flattest {low:.4g}"
    assert "curves up in every direction" in shown["theory-eigs-words"]
    assert shown["theory-kappa"] == f"{kappa:.4g}"
    assert "steepest ÷ flattest" in shown["theory-kappa-words"]
    assert kappa_words(kappa) in shown["theory-kappa-words"]  # kappa 10: "stretched"
    assert shown["theory-edge"] == f"2/λmax = {edge:.4g}"
    # how far the lr is from the edge, and what to do about it
    assert f"your lr 0.21 is {ratio:.3g}× this edge" in shown["theory-lr"], shown
    assert "overshoots" in shown["theory-lr"] and "lower the lr below 0.2" in shown["theory-lr"], shown


def test_a_saddle_and_a_flat_slope_are_said_as_such(arena, artifacts):
    _at_step_one(arena, PRESETS["Saddle"][0])
    shown = _panel(arena)
    assert (
        "saddle" in shown["theory-eigs-words"]
        and "leaves it along the downward direction" in (shown["theory-eigs-words"])
    ), shown
    assert shown["theory-kappa"].startswith("saddle: no finite condition number"), shown
    assert arena.page.inner_text("#saddle-badge") == "SADDLE"
    arena.shot(artifacts / "page-theory-saddle.png")

    _at_step_one(arena, PRESETS["Plateau: crawl"][0])
    shown = _panel(arena)
    assert "one direction is flat" in shown["theory-eigs-words"], shown
    assert shown["theory-kappa"] == "flat direction: no finite condition number", shown
    assert "% of this edge: stable here" in shown["theory-lr"], shown


def test_an_adaptive_rules_edge_comes_with_its_probed_run(arena, artifacts):
    """Adam's edge reads its running scale (the optimizer_state probe): the page's first frame comes
    from the plain run and the theory follows with the probed one; shown at step 1, it is the
    engine's edge on that scale."""
    state = {**PRESETS["Too large a step"][0], "racers": [{"optimizer": "adam", "hyper": {"lr": 0.05}}]}
    arena.show(state)
    arena.page.wait_for_function(
        "() => window.descentArena.anim.theory && window.descentArena.anim.theory.state === 'running'"
    )
    arena.page.evaluate("() => { window.descentArena.pause(); window.descentArena.step = 0; }")
    arena.page.wait_for_function(
        "() => document.getElementById('theory-edge').textContent.includes('running scale forms')"
    )
    arena.click("step-button")
    arena.page.wait_for_function("() => window.descentArena.step === 1")
    run = run_state(normalize(state))
    probed = probed_ball(run)
    frames = player_frames(probed)
    theory = readout.ball_theory(
        run.landscape, probed.optimizer, probed.positions[frames, 0, :], readout.frame_states(probed, frames)
    )
    assert theory["state"] == "running"
    shown = _panel(arena)["theory-edge"]
    arena.shot(artifacts / "page-theory-adam-running.png")
    formula, _, number = shown.partition(" = ")
    assert formula == theory["formula"], shown
    assert float(number) == pytest.approx(theory["edge"][1], rel=2e-3), shown
