"""The Arena's messages list choices as the package does (`descent._errors.listed`: 'one of: a, b'),
never as a Python list or tuple ("one of ['a', 'b']")."""

import re

import pytest
import torch

from descent._errors import DescentError, listed
from descent.arena.controls import CONTROLS, reduce
from descent.arena.live import LIVE_CONTROLS, live_state
from descent.arena.runner import check_landscape_params, get_landscape
from descent.arena.state import NOISE_KINDS, PRESETS, SPREADS, default_state, normalize, repair
from descent.landscapes import LANDSCAPES
from descent.optim import RULES

torch.set_num_threads(1)


def swarm(**change) -> dict:
    state = default_state()
    state["swarm"].update(change)
    return state


def racer(name: str) -> dict:
    return {**default_state(), "racers": [{"optimizer": name, "hyper": {"lr": 0.01}}]}


# (what raises, the names its message must list)
CASES = {
    "preset": (lambda: reduce(default_state(), "preset", 10**6), PRESETS),
    "landscape box": (lambda: reduce(default_state(), "landscape-dropdown", "nope"), LANDSCAPES),
    "optimizer box": (lambda: reduce(default_state(), "optimizer-dropdown", "sgdx"), RULES),
    "racers box": (lambda: reduce(default_state(), "race-dropdown", ["sgdx"]), RULES),
    "control": (lambda: reduce(default_state(), "no-such-control", 1), CONTROLS),
    "live control": (lambda: live_state({"state": default_state(), "control": "steps"}), LIVE_CONTROLS),
    "landscape parameter": (lambda: check_landscape_params("double-well", {"nope": 1}), ["tilt"]),
    "landscape name": (lambda: get_landscape(5, {}), LANDSCAPES),
    "racer optimizer": (lambda: normalize(racer("sgdx")), RULES),
    "state field": (lambda: normalize({**default_state(), "nope": 1}), sorted(default_state())),
    "swarm field": (lambda: normalize(swarm(nope=1)), sorted(default_state()["swarm"])),
    "swarm noise": (lambda: normalize(swarm(noise="loud")), NOISE_KINDS),
    "swarm spread": (lambda: normalize(swarm(spread="wide")), SPREADS),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_message_lists_its_choices_as_words(case):
    raises, names = CASES[case]
    with pytest.raises(DescentError) as caught:
        raises()
    message = str(caught.value)
    assert "one of: " + listed(names) in message, message
    assert not re.search(r"[\[(]'", message), message  # no "['a', ..." nor "('a', ..."


def test_a_links_unknown_field_is_listed_as_words():
    _, messages = repair({**default_state(), "nope": 1})
    assert messages and "one of: " + listed(sorted(default_state())) in messages[0], messages
