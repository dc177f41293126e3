"""RunSpec: complete, versioned, hashable; one default-lr policy; a stored spec replays to the same run."""

import json
import pickle

import pytest
import torch

from descent.landscapes import get_landscape
from descent.spec import SPEC_VERSION, RunSpec, default_lr, run_spec

torch.set_num_threads(1)


def full_spec() -> RunSpec:
    return RunSpec(
        landscape="double-well",
        optimizer="adam",
        hyper={"lr": [0.01, 0.05, 0.1]},
        schedule={"kind": "cosine", "total": 300, "final": 0.1},
        transforms=[{"kind": "grad_noise", "sigma": 0.2}, {"kind": "clip_norm", "max_norm": 2.0}],
        starts="random:3",
        steps=300,
        save="every:10",
        events={"grad_tol": 0.01, "stop_on": ["converged"], "near": True},
        probes=[{"name": "grad_norm", "every": 5}],
        seed=4,
    )


def test_a_spec_round_trips_through_json_and_its_digest_is_its_content():
    spec = full_spec()
    again = RunSpec.from_json(spec.to_json())
    assert again == spec and again.digest == spec.digest and len(spec.digest) == 16
    assert spec.with_(seed=5).digest != spec.digest
    assert json.loads(spec.to_json())["version"] == SPEC_VERSION


def test_a_stored_trajectory_replays_to_the_same_run(tmp_path):
    traj = run_spec(full_spec())
    path = traj.write_json(tmp_path / "trajectory.json")
    again = run_spec(RunSpec.from_json(path.read_text()))
    assert torch.equal(again.positions, traj.positions) and again.outcomes == traj.outcomes
    assert torch.equal(again.probes["grad_norm"]["grad_norm"], traj.probes["grad_norm"]["grad_norm"])


def test_version_1_specs_are_translated():
    old = {
        "landscape": "quadratic",
        "optimizer": "gd",
        "grad_tol": 0.05,
        "record_every": 0,
        "grad_noise": 0.0,
        "clip_norm": 3.0,
        "l2": 0.1,
        "target_loss": None,
    }
    spec = RunSpec.from_dict(old)
    assert spec.save == "summary"
    assert spec.events == {"grad_tol": 0.05, "stop_on": ["converged"]}
    assert spec.transforms == [{"kind": "clip_norm", "max_norm": 3.0}, {"kind": "l2", "l2": 0.1}]
    assert run_spec(spec).outcomes == ["minimum:origin"]


def test_one_default_learning_rate_policy():
    well = get_landscape("double-well")
    assert default_lr(well, "momentum") == default_lr(well, "gd") == well.default_lr
    assert default_lr(well, "adam") == default_lr(well, "rmsprop") == 0.05  # 1/80 of the box's side of 4
    assert run_spec(RunSpec(optimizer="adam", steps=1)).optimizer.hp["lr"] == 0.05


def test_default_times_n_starts_copies_of_the_default_start():
    traj = run_spec(RunSpec(starts="default:4", steps=3, hyper={"momentum": [0.0, 0.3, 0.6, 0.9]}))
    assert torch.equal(traj.positions[0], get_landscape("double-well").start().expand(4, -1))


def test_trajectories_and_objectives_pickle():
    traj = run_spec(RunSpec(steps=20, starts="random:3"))
    again = pickle.loads(pickle.dumps(traj))
    assert torch.equal(again.positions, traj.positions) and again.outcomes == traj.outcomes
    x = torch.randn(5, 2, dtype=torch.float64)
    assert torch.equal(again.landscape.value(x), traj.landscape.value(x))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"steps": -1}, "invalid steps=-1"),
        ({"dtype": "float16"}, "invalid dtype='float16'"),
        ({"starts": "random:x"}, "invalid starts='random:x'"),
        ({"starts": [[0.0, float("nan")]]}, "invalid starts="),
        ({"hyper": {"lr": [0.1, 0.2], "momentum": [0.1, 0.2, 0.3]}}, "invalid hyper="),
        ({"optimizer": "sgdd"}, "invalid optimizer='sgdd'"),
        (
            {"hyper": {"momentum": 1.0}},
            r"invalid momentum.momentum=1.0: expected a finite number in \[0.0, 1.0\)",
        ),
        ({"save": "often"}, "invalid save='often'"),
        ({"events": {"stop_on": ["moving"]}}, "invalid stop_on='moving'"),
        ({"backend": "jax"}, "invalid backend='jax'"),
        ({"version": 1}, "invalid version=1"),
        ({"transforms": [{"kind": "noise"}]}, "invalid transform="),
        ({"probes": ["nope"]}, "invalid probe='nope'"),
        ({"batch_size": 8}, "invalid batch_size=8: expected no batch size: this objective has no data"),
        ({"batch_mode": "nope"}, "invalid batch_mode='nope'"),
        ({"starts": "grid:100000"}, "invalid starts=10000000000 particles"),
    ],
)
def test_bad_specs_fail_before_any_step_with_a_clear_message(bad, message):
    with pytest.raises(ValueError, match=message):
        run_spec(RunSpec(**bad))
