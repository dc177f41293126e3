"""A new state's first frame waits only for the plain runs: the page's state callback runs no probed
spec (the ball's ``update_parts`` and ``optimizer_state`` probes cost most of a Reset Ball), and what
reads the probes (the arrows, an adaptive rule's theory at the ball) comes with the player's later
request; what the page draws is the same as when everything was read from the probed run."""

from __future__ import annotations

import json

import pytest
import torch

from descent.arena import runner
from descent.arena.callbacks import RUNS_BY_ID, VIEWS_BY_ID, view_outputs
from descent.arena.playmode import slower_views
from descent.arena.runner import probed_ball, run_state
from descent.arena.state import default_state, normalize
from descent.arena.views import build_views, later_views

torch.set_num_threads(1)

RULES = {
    "gd": {"lr": 0.02},
    "momentum": {"lr": 0.02, "momentum": 0.9},
    "nesterov": {"lr": 0.02, "momentum": 0.8},
    "adam": {"lr": 0.05},
    "rmsprop": {"lr": 0.01},
    "adagrad": {"lr": 0.3},
    "langevin": {"lr": 0.01, "temperature": 0.05},
}


def ball(rule: str, start=(-1.3, 0.4), steps: int = 400) -> dict:
    state = default_state()
    state.update(racers=[{"optimizer": rule, "hyper": dict(RULES[rule])}], start=list(start), steps=steps)
    return normalize(state)


@pytest.fixture
def specs_run(monkeypatch):
    """The specs the engine runs (`run_spec` as the runner calls it), in order."""
    seen = []
    real = runner.run_spec

    def spy(spec, *args, **kwargs):
        seen.append(spec)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(runner, "run_spec", spy)
    return seen


def test_the_state_callback_runs_no_probed_run_and_the_later_request_does(specs_run):
    state = ball("momentum", start=(-1.234, 0.321))  # no cache has it
    run_id = view_outputs(state, 0, ["ghost"], None)["anim"]["run"]  # the state callback's run
    probed = [s for s in specs_run if s.probes and s.steps > 2]
    assert specs_run and not probed, [(s.steps, s.probes) for s in specs_run]
    assert [s.steps for s in specs_run if s.probes] == [2]  # the first two steps: which arrows
    specs_run.clear()
    later = slower_views(run_id)
    assert later["arrows"]["run"] == run_id
    assert [s.steps for s in specs_run] == [state["steps"]] and specs_run[0].probes


@pytest.mark.parametrize("rule", list(RULES))
def test_the_first_frame_and_the_later_views_draw_what_the_probed_run_gives(rule):
    run = run_state(ball(rule))
    probed = probed_ball(run)
    plain = run.trajectories[0]
    for name in ("positions", "loss", "outcome_step", "stop_step"):  # a probe only reads the steps
        assert torch.equal(getattr(plain, name), getattr(probed, name)), name
    assert plain.outcomes == probed.outcomes
    first = build_views(run, "r1", ghost=True)
    reference = build_views(run, "r1", ghost=True, probed=probed)  # everything read from the probed run
    assert json.dumps(first.map, sort_keys=True, default=str) == json.dumps(
        reference.map, sort_keys=True, default=str
    )
    assert {k: v for k, v in first.anim.items() if k != "theory"} == {
        k: v for k, v in reference.anim.items() if k != "theory"
    }
    assert (first.lr_note, first.lr_note_level, first.edge_marker) == (
        reference.lr_note,
        reference.lr_note_level,
        reference.edge_marker,
    )
    later = later_views(run, "r1")
    adaptive = probed.optimizer.rule.physics == "adaptive"
    if adaptive:  # its edge reads the running scale: the theory comes with the probed run
        assert first.anim["theory"] is None and later["theory"] == reference.anim["theory"]
        assert later["lr_note"] == (reference.lr_note, reference.lr_note_level, reference.edge_marker)
        assert later["theory"]["state"] == "running"
    else:
        assert first.anim["theory"] == reference.anim["theory"] and later["theory"] is None
    assert later["arrows"]["run"] == "r1" and {"origin", "force", "update"} <= set(later["arrows"])


def test_a_swarm_has_no_later_probes():
    state = default_state()
    state["swarm"].update(on=True, n=50)
    state["steps"] = 200
    run_id = view_outputs(normalize(state), 0, [], None)["anim"]["run"]
    assert RUNS_BY_ID.items.get(run_id) is not None
    later = slower_views(run_id)
    assert later["arrows"] is None and later["surface"] == VIEWS_BY_ID.items[run_id].surface


def test_the_slower_views_show_they_are_stale_until_the_new_runs_arrive():
    """A new run's first frame dims the 3-D, loss and energy views (they still show the previous run:
    a new user saw the plateau's surface beside another landscape's map); the later request restores
    them with the new run's figures."""
    first = view_outputs(ball("gd", start=(-1.11, 0.2)), 0, ["ghost"], None)
    assert all(first[f"{name}_class"].endswith(" stale") for name in ("surface", "loss", "energy"))
    later = slower_views(first["anim"]["run"])
    assert [later[f"{name}_class"] for name in ("surface", "loss", "energy")] == [
        "graph surface",
        "graph small",
        "graph small",
    ]
    assert later["surface"] is not None and later["loss"] is not None
