"""Landscapes whose first build is slow (issue 12 item 7: digits-slice trains a network at first use)
are built in the background (`descent.arena.runner.built`): a request waits at most ``BUILD_WAIT``, then
hears "being built"; every request for it shares one build; its own error reaches the asker; at most
``MAX_BUILDS`` at once. The page's controller keeps the action and applies it again when asked (the
build poll's ``replay``). Slow builds are simulated with sleeps (no CPU); no browser."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from descent._errors import DescentError
from descent.arena import runner
from descent.arena.callbacks import control_step
from descent.arena.state import default_state

torch.set_num_threads(1)


@pytest.fixture()
def quick(monkeypatch):
    monkeypatch.setattr(runner, "BUILD_WAIT", 0.2)
    yield
    for future, _ in list(runner.BUILDS.values()):
        future.result(timeout=10)
    runner.BUILDS.clear()


def _slow(value, seconds: float, calls: list):
    def make():
        calls.append(1)
        time.sleep(seconds)
        if isinstance(value, Exception):
            raise value
        return value

    return make


def test_a_slow_build_answers_being_built_at_once_and_is_shared_until_it_ends(quick):
    calls: list = []
    make = _slow("built", 0.8, calls)
    started = time.perf_counter()
    with pytest.raises(runner.LandscapeBuilding, match="slow-one is being built"):
        runner.built("k1", "slow-one", make)
    assert time.perf_counter() - started < 0.2 + 0.15
    assert runner.building()
    with pytest.raises(runner.LandscapeBuilding):
        runner.built("k1", "slow-one", make)
    time.sleep(0.8)
    assert not runner.building()
    assert runner.built("k1", "slow-one", make) == "built" and len(calls) == 1
    assert "k1" not in runner.BUILDS  # handed over: the landscape cache keeps it from here


def test_a_quick_build_is_answered_in_the_same_request(quick):
    assert runner.built("k2", "quick-one", _slow("built", 0.0, [])) == "built"


def test_the_builds_own_error_reaches_the_asker(quick):
    error = DescentError("invalid x=1: expected 2")
    with pytest.raises(DescentError, match="invalid x=1"):
        runner.built("k3", "bad-one", _slow(error, 0.0, []))
    with pytest.raises(runner.LandscapeBuilding):
        runner.built("k4", "bad-later", _slow(error, 0.5, []))
    time.sleep(0.6)
    with pytest.raises(DescentError, match="invalid x=1") as raised:
        runner.built("k4", "bad-later", _slow(error, 0.5, []))
    assert not isinstance(raised.value, runner.LandscapeBuilding)


def test_at_most_max_builds_run_at_once(quick):
    for i in range(runner.MAX_BUILDS):
        with pytest.raises(runner.LandscapeBuilding, match="being built"):
            runner.built(f"busy{i}", f"busy-{i}", _slow("built", 0.6, []))
    with pytest.raises(runner.LandscapeBuilding, match="cannot be built now") as refused:
        runner.built("one-more", "one-more", _slow("built", 0.0, []))
    assert f"building {runner.MAX_BUILDS} other landscapes" in str(refused.value)


def test_the_controller_keeps_a_waiting_action_and_applies_it_when_replayed(quick, monkeypatch):
    release = threading.Event()
    real = runner._build

    def slow_build(text, params):
        if text == "quadratic-l2":
            release.wait(10)
        return real(text, params)

    monkeypatch.setattr(runner, "_build", slow_build)
    runner.LANDSCAPE_CACHE.clear()
    state = default_state()
    values = {"landscape-dropdown": "quadratic-l2"}
    new, message, _, retry = control_step("landscape-dropdown", values, state, "", "")
    assert new == state and "quadratic-l2 is being built" in message
    assert retry == {"control": "landscape-dropdown", "value": "quadratic-l2"}
    release.set()
    while runner.building():
        time.sleep(0.05)
    replay = {"state-request": {"replay": retry, "t": 1}}
    new, message, _, retry = control_step("state-request", replay, state, "", "")
    assert (new["landscape"], message, retry) == ("quadratic-l2", "", None)
    runner.LANDSCAPE_CACHE.clear()


@pytest.mark.parametrize("resolution", [801, 5, 200])
def test_the_arena_takes_digits_slice_with_its_default_table_only(resolution):
    """Any other resolution trains and tabulates anew (minutes at 801): a link cannot start one."""
    with pytest.raises(DescentError, match="invalid digits-slice parameters=.*its defaults in the Arena"):
        runner.check_landscape_params("digits-slice", {"resolution": resolution})
    assert not runner.building()
