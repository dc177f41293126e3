"""RunSpec: complete, versioned, hashable; one default-lr policy; a stored spec replays to the same run."""

import json
import pickle

import pytest
import torch

from descent._errors import DescentError
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
    assert spec.backend == "torch" and spec.digest == "3a52019ddd2655ca"  # as before "auto" was the default
    assert run_spec(spec).outcomes == ["minimum:origin"]


# a spec as `descent run --momentum 0.9 --steps 300` stored it before "auto" was the default
STORED = (
    '{"backend":"torch","batch_mode":"replacement","batch_size":null,"device":"cpu","dtype":"float64",'
    '"events":{},"hyper":{"momentum":0.9},"landscape":"double-well","landscape_params":{},'
    '"optimizer":"momentum","probes":[],"save":"every:1","schedule":null,"seed":0,"starts":"default",'
    '"steps":300,"transforms":[],"version":2}'
)


def test_new_specs_ask_for_auto_which_runs_the_kernel_where_it_can():
    spec = RunSpec(hyper={"momentum": 0.9}, steps=300)
    assert spec.backend == "auto"
    traj = run_spec(spec)
    assert traj.backend == "kernel" and traj.fallback is None and traj.spec["backend"] == "auto"
    assert traj.summary()["backend"] == "kernel" and traj.outcomes == ["minimum:right"]


def test_auto_falls_back_to_torch_and_says_why():
    traj = run_spec(RunSpec(landscape="logistic-risk", optimizer="gd", steps=20))
    assert traj.backend == "torch" and traj.fallback == "no kernel supports objectives with data yet"
    summary = traj.summary()
    assert (summary["backend"], summary["fallback"]) == ("torch", traj.fallback)
    assert run_spec(RunSpec(steps=20, backend="torch")).fallback is None  # asked for torch: no fallback


@pytest.mark.parametrize("stored", [STORED, STORED.replace('"backend":"torch",', "")])
def test_a_stored_spec_with_backend_torch_or_none_replays_on_torch_exactly(stored):
    spec = RunSpec.from_json(stored)
    assert spec.backend == "torch"
    assert spec.to_json() == STORED and spec.digest == "c788c6c1e0f42075"  # its digest is unchanged
    traj = run_spec(spec)
    assert traj.backend == "torch" and traj.fallback is None
    direct = run_spec(RunSpec(hyper={"momentum": 0.9}, steps=300, backend="torch"))
    assert torch.equal(traj.positions, direct.positions) and torch.equal(traj.loss, direct.loss)
    assert traj.outcomes == direct.outcomes and torch.equal(traj.outcome_step, direct.outcome_step)


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


def test_shared_streams_are_stored_and_the_default_leaves_digests_as_they_were():
    spec = RunSpec(optimizer="langevin", starts="default:3", steps=50)
    assert "streams" not in spec.to_dict()  # a spec from before the field hashes as it did
    shared = spec.with_(streams="shared")
    assert shared.to_dict()["streams"] == "shared" and shared.digest != spec.digest
    assert RunSpec.from_json(shared.to_json()) == shared
    runs = run_spec(shared.with_(backend="torch")).positions
    assert torch.equal(runs[:, 0], runs[:, 1]) and torch.equal(runs[:, 1], runs[:, 2])
    with pytest.raises(DescentError, match=r"invalid streams='common': expected one of: particle, shared"):
        RunSpec(streams="common")


def test_to_dict_is_a_copy():
    spec = RunSpec(hyper={"lr": [0.1, 0.2]}, landscape_params={"a": 1.0})
    data = spec.to_dict()
    data["hyper"]["lr"].append(9.0)
    data["landscape_params"]["a"] = 2.0
    assert spec.hyper == {"lr": [0.1, 0.2]} and spec.landscape_params == {"a": 1.0}
