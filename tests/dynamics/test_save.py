"""Memory is bounded by what is saved: a request over the budget is refused before it starts, with the
estimate and the option that fixes it; files are decimated under their size limit."""

import json
import resource

import pytest
import torch

from descent import Optimizer, get_landscape, simulate
from descent._errors import DescentError
from descent.dynamics import SaveAt
from descent.dynamics.save import resident_bytes
from descent.dynamics.simulate import check_memory
from descent.spec import RunSpec, run_spec

torch.set_num_threads(1)


def test_a_run_over_the_budget_is_refused_at_once_with_the_estimate_and_the_fix():
    land = get_landscape("double-well")
    starts = land.random_starts(200_000, torch.Generator().manual_seed(0))
    gd = Optimizer.build("gd", lr=0.01)
    budget = resident_bytes() + 500 * 2**20  # what the process holds already, plus 500 MB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DescentError) as info:
        simulate(land, gd, starts, 1000, memory_budget=budget)
    message = str(info.value)
    assert "invalid save='every:1'" in message and "1001 saved frames" in message
    assert "--save every:" in message and "--save summary" in message
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 100_000  # kB: nothing was allocated for the frames
    # the suggested setting fits the same budget, one coarser step would not be needed
    every = int(message.split("--save every:")[1].split()[0])
    check_memory(gd, 200_000, 2, torch.float64, 1000, SaveAt(every=every), budget=budget)
    with pytest.raises(DescentError):
        check_memory(gd, 200_000, 2, torch.float64, 1000, SaveAt(every=max(every // 3, 1)), budget=budget)


def test_the_estimate_counts_what_is_saved_not_the_steps():
    land = get_landscape("double-well")
    starts = land.random_starts(1000, torch.Generator().manual_seed(0))
    # a million steps saving a summary fits a small budget; saving every step does not
    budget = resident_bytes() + 4 * 2**20
    with pytest.raises(DescentError):
        simulate(land, Optimizer.build("gd", lr=0.01), starts, 1_000_000, memory_budget=budget)
    traj = simulate(
        land, Optimizer.build("gd", lr=0.01), starts, 10, save=SaveAt.summary(), memory_budget=budget
    )
    assert traj.positions.shape == (2, 1000, 2)


def test_json_of_a_large_swarm_stays_under_its_limit_and_keeps_every_outcome_count(tmp_path):
    traj = run_spec(RunSpec(starts="random:20000", steps=300, optimizer="gd", save="every:1"))
    path = traj.write_json(tmp_path / "trajectory.json", max_bytes=2_000_000)
    assert path.stat().st_size < 2_000_000
    data = json.loads(path.read_text())
    assert sum(data["summary"]["outcomes"].values()) == 20000
    assert data["steps"][0] == 0 and data["steps"][-1] == 300
    csv_path = traj.write_csv(tmp_path / "trajectory.csv", max_bytes=2_000_000)
    assert csv_path.stat().st_size < 2_000_000


def test_json_of_a_small_run_keeps_everything(tmp_path):
    spec = RunSpec(
        landscape="double-well", optimizer="adam", hyper={"lr": 0.05}, starts="random:5", steps=300
    )
    traj = run_spec(spec)
    data = json.loads(traj.write_json(tmp_path / "trajectory.json").read_text())
    assert data["decimation"] == {"particles": "all", "frames": "all", "per_particle": "all"}
    assert len(data["positions"]) == 301 and len(data["particles"]["outcome"]) == 5
    labels = data["outcome_labels"]
    assert [labels[c] for c in data["particles"]["outcome"]] == traj.outcomes
    csv_lines = traj.write_csv(tmp_path / "trajectory.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 1 + 301 * 5


def test_a_swarm_too_large_for_memory_is_refused_before_its_starts_are_made():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DescentError, match=r"invalid starts=200000000 particles: .* expected at most about"):
        run_spec(RunSpec(starts="random:200000000", steps=10, save="summary"), memory_budget=2**30)
    with pytest.raises(DescentError, match=r"invalid starts=10000000000 particles"):
        run_spec(RunSpec(starts="grid:100000", steps=10, save="summary"), memory_budget=2**30)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB
