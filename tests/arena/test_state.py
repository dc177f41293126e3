"""The Arena's state: JSON <-> URL round trip, validation, and the RunSpecs it builds."""

from __future__ import annotations

import copy

import pytest
import torch

from descent._errors import DescentError
from descent.arena.state import (
    PRESETS,
    decode_state,
    default_state,
    encode_state,
    normalize,
    racer_label,
    state_from_search,
    state_specs,
    state_url,
)
from descent.spec import RunSpec


def _custom() -> dict:
    state = default_state()
    state.update(
        landscape="(x**2 - 1)**2 + 0.5*y**2",
        start=[-1.25, 0.5],
        steps=321,
        seed=7,
        target=-0.1,
        racers=[
            {"optimizer": "nesterov", "hyper": {"lr": 0.015, "momentum": 0.8}},
            {"optimizer": "adam", "hyper": {"lr": 0.05, "beta2": 0.99}},
        ],
    )
    state["swarm"].update(on=True, n=64, noise="langevin", level=0.25, spread="random")
    return state


@pytest.mark.parametrize(
    "state", [default_state(), _custom(), *[copy.deepcopy(s) for s, _ in PRESETS.values()]]
)
def test_url_round_trip(state):
    state = normalize(state)
    assert decode_state(encode_state(state)) == state
    restored, message = state_from_search(state_url(state))
    assert message is None and restored == state


def test_url_token_is_url_safe():
    token = encode_state(_custom())
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "search", ["?s=%%%", "?s=bm90IGpzb24", "?s=" + encode_state({"v": 99}), "?s=" + "A" * 30000]
)
def test_bad_link_falls_back_to_default_with_a_message(search):
    state, message = state_from_search(search)
    assert state == default_state()
    assert message and "could not be restored" in message


def test_empty_search_is_the_default_quietly():
    assert state_from_search("") == (default_state(), None)
    assert state_from_search("?other=1") == (default_state(), None)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"steps": 0}, "invalid steps=0"),
        ({"steps": 10**7}, "invalid steps"),
        ({"start": [1.0]}, "invalid start"),
        ({"start": [float("nan"), 0.0]}, "invalid start x"),
        ({"racers": []}, "invalid racers"),
        ({"racers": [{"optimizer": "sgdx", "hyper": {}}]}, "racer 0 optimizer"),
        ({"racers": [{"optimizer": "gd", "hyper": {"lr": -1}}]}, "gd.lr"),
        ({"racers": [{"optimizer": "gd", "hyper": {"momentum": 0.9}}]}, "gd hyper-parameter"),
        ({"swarm": {"n": 0}}, "swarm balls"),
        ({"swarm": {"noise": "pink"}}, "swarm noise"),
        ({"colour": "red"}, "state field"),
        ({"steps": 9000, "racers": [{"optimizer": "gd", "hyper": {}}] * 4}, "race size"),
    ],
)
def test_bad_values_raise_one_message_format(change, words):
    state = default_state()
    state.update(change) if "swarm" not in change else state["swarm"].update(change["swarm"])
    with pytest.raises(DescentError, match="invalid") as error:
        normalize(state)
    assert words in str(error.value)


def test_swarm_work_is_bounded():
    state = default_state()
    state["swarm"].update(on=True, n=5000)
    state["steps"] = 5000
    with pytest.raises(DescentError, match="invalid swarm size"):
        normalize(state)


def test_specs_of_a_race_share_start_budget_and_seed():
    state = normalize(_custom() | {"swarm": default_state()["swarm"]})
    specs = state_specs(state, [0.0, 0.0])
    assert [s.optimizer for s in specs] == ["nesterov", "adam"]
    assert all(isinstance(s, RunSpec) for s in specs)
    assert {(tuple(map(tuple, s.starts)), s.steps, s.seed) for s in specs} == {(((-1.25, 0.5),), 321, 7)}
    assert specs[1].hyper == {"lr": 0.05, "beta2": 0.99}
    assert all(s.version == 2 and s.save == "every:1" and s.transforms == [] for s in specs)
    # the ball's arrows come from the engine's probe, at the frames it saves
    ball_probes = [{"name": "update_parts", "every": 1}, {"name": "optimizer_state", "every": 1}]
    assert specs[0].probes == ball_probes and specs[1].probes == []
    long = normalize(state | {"steps": 5000, "racers": state["racers"][:1]})
    (spec,) = state_specs(long, [0.0, 0.0])
    assert spec.save == "every:2"
    assert spec.probes == [{"name": "update_parts", "every": 2}, {"name": "optimizer_state", "every": 2}]


def test_swarm_specs():
    state = default_state()
    state["swarm"].update(on=True, n=50, noise="gradient", level=2.0, spread="start")
    (spec,) = state_specs(normalize(state), [-1.7, 0.0])
    assert spec.transforms == [{"kind": "grad_noise", "sigma": 2.0}] and spec.optimizer == "momentum"
    assert spec.starts == [[-1.7, 0.0]] * 50
    assert spec.save == "every:10"  # 2000 steps in at most 200 frames
    assert spec.probes == []  # no arrows in a swarm
    state["swarm"].update(noise="none")
    (spec,) = state_specs(normalize(state), [-1.7, 0.0])
    assert spec.transforms == []
    state["swarm"].update(noise="langevin", level=0.3, spread="random")
    (spec,) = state_specs(normalize(state), [-1.7, 0.0])
    assert spec.optimizer == "langevin" and spec.hyper == {"temperature": 0.3, "lr": 0.02}
    assert spec.starts == "random:50"


def test_racer_label():
    assert (
        racer_label({"optimizer": "momentum", "hyper": {"lr": 0.02, "momentum": 0.0}})
        == "momentum lr=0.02 β=0"
    )
    assert (
        racer_label({"optimizer": "adam", "hyper": {"lr": 0.05, "beta2": 0.99}}) == "adam lr=0.05 beta2=0.99"
    )


# Links made by the Arena before the engine's spec version 2 (the state format did not change).
OLD_RACE_LINK = (
    "?s=eyJsYW5kc2NhcGUiOiJkb3VibGUtd2VsbCIsInBhcmFtcyI6e30sInJhY2VycyI6W3siaHlwZXIiOnsibHIiOjAuMDIsIm1vbW"
    "VudHVtIjowLjh9LCJvcHRpbWl6ZXIiOiJuZXN0ZXJvdiJ9LHsiaHlwZXIiOnsibHIiOjAuMDV9LCJvcHRpbWl6ZXIiOiJhZGFtIn1d"
    "LCJzZWVkIjozLCJzdGFydCI6Wy0xLjUsMC40XSwic3RlcHMiOjYwMCwic3dhcm0iOnsibGV2ZWwiOjEuMCwibiI6NTAwLCJub2lzZS"
    "I6ImdyYWRpZW50Iiwib24iOmZhbHNlLCJzcHJlYWQiOiJzdGFydCJ9LCJ0YXJnZXQiOm51bGwsInYiOjF9"
)
OLD_SWARM_LINK = (
    "?s=eyJsYW5kc2NhcGUiOiJkb3VibGUtd2VsbCIsInBhcmFtcyI6e30sInJhY2VycyI6W3siaHlwZXIiOnsibHIiOjAuMDIsIm1vbW"
    "VudHVtIjowLjl9LCJvcHRpbWl6ZXIiOiJtb21lbnR1bSJ9XSwic2VlZCI6MCwic3RhcnQiOm51bGwsInN0ZXBzIjozMDAsInN3YXJt"
    "Ijp7ImxldmVsIjoxLjUsIm4iOjQwLCJub2lzZSI6ImdyYWRpZW50Iiwib24iOnRydWUsInNwcmVhZCI6InN0YXJ0In0sInRhcmdldC"
    "I6bnVsbCwidiI6MX0"
)
# The version-1 specs the Arena of that time built from them (as its JSON export stored them).
V1 = {"landscape": "double-well", "landscape_params": {}, "schedule": None, "clip_norm": None, "l2": 0.0}
V1 |= {"record_every": 1, "grad_tol": None, "target_loss": None, "dtype": "float64", "device": "cpu"}
OLD_RACE_SPECS = [
    V1 | {"optimizer": "nesterov", "hyper": {"lr": 0.02, "momentum": 0.8}, "grad_noise": 0.0},
    V1 | {"optimizer": "adam", "hyper": {"lr": 0.05}, "grad_noise": 0.0},
]
OLD_RACE_SPECS = [s | {"starts": [[-1.5, 0.4]], "steps": 600, "seed": 3} for s in OLD_RACE_SPECS]
OLD_SWARM_SPEC = V1 | {
    "optimizer": "momentum",
    "hyper": {"lr": 0.02, "momentum": 0.9},
    "grad_noise": 1.5,
    "starts": [[-1.7, 0.0]] * 40,
    "steps": 300,
    "seed": 0,
    "record_every": 2,
}


def test_links_made_before_spec_v2_still_open_as_the_same_runs():
    race, message = state_from_search(OLD_RACE_LINK)
    assert message is None
    assert race["start"] == [-1.5, 0.4] and [r["optimizer"] for r in race["racers"]] == ["nesterov", "adam"]
    specs = state_specs(race, [-1.7, 0.0])
    assert all(s.version == 2 for s in specs)
    old = [RunSpec.from_dict(s) for s in OLD_RACE_SPECS]  # the engine upgrades the old specs
    # a stored old spec replays on torch, as it ran; the Arena asks for "auto" (the kernel where it can)
    assert all(s.backend == "torch" for s in old) and all(s.backend == "auto" for s in specs)
    old = [s.with_(backend="auto") for s in old]
    ball_probes = [{"name": "update_parts", "every": 1}, {"name": "optimizer_state", "every": 1}]
    assert specs[0] == old[0].with_(probes=ball_probes)  # + the arrows' and the edge's probes
    assert specs[1] == old[1]
    swarm, message = state_from_search(OLD_SWARM_LINK)
    assert message is None and swarm["swarm"]["on"] and swarm["swarm"]["level"] == 1.5
    (spec,) = state_specs(swarm, [-1.7, 0.0])
    assert spec == RunSpec.from_dict(OLD_SWARM_SPEC).with_(backend="auto")
    assert spec.transforms == [{"kind": "grad_noise", "sigma": 1.5}] and spec.save == "every:2"


def test_an_adaptive_balls_edge_is_on_its_running_scale():
    """The Arena's edge for Adam comes from the rule with the run's own state at each frame (the
    optimizer_state probe): defined from the first step on, and far above a fresh state's eps-bound."""
    from descent.arena import readout
    from descent.spec import run_spec

    racers = [{"optimizer": "adam", "hyper": {"lr": 0.05}}]
    state = normalize({**default_state(), "racers": racers, "start": [-1.7, 0.5]})  # a slope along x and y
    spec = state_specs(state, [-1.7, 0.0])[0]
    traj = run_spec(spec)
    frames = torch.arange(len(traj.steps))
    running = readout.ball_theory(
        traj.landscape, traj.optimizer, traj.positions[:, 0], readout.frame_states(traj, frames)
    )
    fresh = readout.ball_theory(traj.landscape, traj.optimizer, traj.positions[:, 0])
    assert running["state"] == "running" and fresh["state"] == "fresh"
    assert running["edge"][0] is None  # no running scale before the first step
    # on the way down the gradient is large, so is the running scale: the edge is far above eps's bound
    assert running["edge"][1] > 1e3 * fresh["edge"][1]
    # it is the rule's edge with that state: recompute it for frame 1 directly
    one = {name: value[1:2] for name, value in readout.frame_states(traj, frames).items()}
    hessian = traj.landscape.hessian(traj.positions[1:2, 0])
    expected = traj.optimizer.rule.edge(hessian, one, traj.optimizer.hp)
    assert running["edge"][1] == pytest.approx(float(expected[0]), rel=1e-12)


def test_repair_keeps_the_fields_that_check_out_and_says_which_did_not():
    from descent.arena.state import repair

    data = {
        "v": 1,
        "steps": 0,
        "seed": 3,
        "racers": [{"optimizer": "gd", "hyper": {"lr": 0.1}}, {"optimizer": "x"}],
    }
    state, messages = repair(data)
    assert state["seed"] == 3 and state["steps"] == default_state()["steps"]
    assert state["racers"] == [{"optimizer": "gd", "hyper": {"lr": 0.1}}]
    assert len(messages) == 2 and "racer 1 optimizer='x'" in messages[0] and "invalid steps=0" in messages[1]
    assert repair(default_state()) == (default_state(), [])


def test_a_long_value_is_cut_short_in_its_message():
    with pytest.raises(DescentError) as error:
        normalize({"v": 1, "start": list(range(10_000))})
    assert len(str(error.value)) < 200 and "invalid start=[0, 1, 2" in str(error.value)
    with pytest.raises(DescentError, match="invalid steps=1000"):
        normalize({"v": 1, "steps": 10**400})  # an OverflowError before
