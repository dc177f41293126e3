"""The Arena never waits seconds for a kernel to compile: a new formula's first swarm is either run on
torch within the budget or refused for now with a message that says why; once the kernel is built, the
same state runs on it (and the refusal was not remembered)."""

import uuid

import pytest
import torch

from descent._errors import DescentError
from descent.arena import runner
from descent.arena.runner import run_state
from descent.arena.state import default_state, normalize
from descent.kernels.backend import compiling, wait_for_compiles

torch.set_num_threads(1)


def fresh_state() -> dict:
    coefficient = 1 + int(uuid.uuid4().hex[:6], 16) / 2**24  # a formula no kernel was built for
    state = default_state()
    state.update(landscape=f"(x**2 - 1)**2 + {coefficient!r}*y**2", steps=1000)
    state["swarm"].update(on=True, n=3000, noise="gradient", level=1.0, spread="random")  # ~0.35 s on torch
    return normalize(state)


def test_a_new_formulas_swarm_runs_on_torch_at_once_then_on_its_kernel(deferring):
    state = fresh_state()
    first = run_state(state).trajectories[0]
    assert first.backend == "torch" and "built in the background" in first.fallback
    assert wait_for_compiles(timeout=300)
    assert run_state(state).trajectories[0].backend == "torch"  # the same state: from the cache
    state["seed"] = 1
    assert run_state(state).trajectories[0].backend == "kernel"


def test_a_run_over_budget_while_its_kernel_compiles_is_refused_for_now_not_for_good(deferring, monkeypatch):
    state = fresh_state()
    monkeypatch.setattr(runner, "RUN_SECONDS", 1e-6)  # as if torch were too slow for this swarm
    with pytest.raises(DescentError, match="being built"):
        run_state(state)
    assert wait_for_compiles(timeout=300)
    monkeypatch.setattr(runner, "RUN_SECONDS", 0.7)
    assert run_state(state).trajectories[0].backend == "kernel"


def test_a_run_over_budget_is_not_said_to_wait_for_another_runs_kernel(deferring, monkeypatch):
    """While a new formula's kernel compiles, a run that no kernel takes (a landscape with data) and is
    over its budget is refused as too long, not 'being built' (the check asks about its own kernel)."""
    monkeypatch.setattr(runner, "REFUSED", runner.LRUCache(64))  # this refusal is remembered: not elsewhere
    while True:  # logistic-risk's own build (a second or more) done before the compile starts
        try:
            runner.get_landscape("logistic-risk")
            break
        except runner.LandscapeBuilding:
            pass
    ball = fresh_state()
    ball["swarm"]["on"] = False
    assert "built in the background" in run_state(ball).trajectories[0].fallback  # compiles (seconds)
    other = default_state()
    other.update(landscape="logistic-risk", steps=3000, seed=int(uuid.uuid4().hex[:6], 16))
    monkeypatch.setattr(runner, "RUN_SECONDS", 1e-6)
    with pytest.raises(DescentError) as refused:
        run_state(normalize(other))
    assert compiling(), "the other kernel finished compiling first: the test did not test anything"
    assert "being built" not in str(refused.value) and "would take about" in str(refused.value)
    assert wait_for_compiles(timeout=300)
