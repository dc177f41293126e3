"""Shared checks of the experiments' tests."""

import json

import pytest

from descent.spec import RunSpec


def check_specs(result) -> None:
    """The result stores the specs of its runs: at least one, one per distinct run, each a dict that
    round-trips through JSON and `RunSpec.from_dict` unchanged. An experiment made of the training
    lab's runs (no engine run) stores their `TrainConfig`s in ``config["runs"]`` instead: the same
    checks through `TrainConfig.from_dict` (a run may repeat only as another case's seed; none here)."""
    if not result.specs and result.config.get("runs"):
        from descent.train.loop import TrainConfig

        stored = json.loads(json.dumps(result.config["runs"]))
        configs = [TrainConfig.from_dict(data) for data in stored]
        assert [c.to_dict() for c in configs] == stored
        assert len({json.dumps(data, sort_keys=True) for data in stored}) == len(stored), "a run twice"
        return
    assert result.specs, f"{result.name} stores no specs"
    digests = []
    for data in result.specs:
        spec = RunSpec.from_dict(json.loads(json.dumps(data)))
        assert spec.to_dict() == data
        digests.append(spec.digest)
    assert len(set(digests)) == len(digests), "a run is stored twice"


@pytest.fixture
def specs_round_trip():
    return check_specs
