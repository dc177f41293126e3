"""Shared checks of the experiments' tests."""

import json

import pytest

from descent.spec import RunSpec


def check_specs(result) -> None:
    """The result stores the specs of its runs: at least one, one per distinct run, each a dict that
    round-trips through JSON and `RunSpec.from_dict` unchanged."""
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
