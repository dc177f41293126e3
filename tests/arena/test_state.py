"""The Arena's state: JSON <-> URL round trip, validation, and the RunSpecs it builds."""

from __future__ import annotations

import copy

import pytest

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


def test_swarm_specs():
    state = default_state()
    state["swarm"].update(on=True, n=50, noise="gradient", level=2.0, spread="start")
    (spec,) = state_specs(normalize(state), [-1.7, 0.0])
    assert spec.grad_noise == 2.0 and spec.optimizer == "momentum"
    assert spec.starts == [[-1.7, 0.0]] * 50
    assert spec.record_every == 10  # 2000 steps in at most 200 frames
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
