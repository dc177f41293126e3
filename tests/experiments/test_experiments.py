"""Every registered experiment, run at its full size (the experiments on networks at their quick size,
`descent.experiments.ci_size`): each check's criterion recomputed here from the
row's own numbers, every theory check passing, the verdict following from the claim checks (whichever
way it falls), one criterion at every size, a legible figure, and the JSON and specs round-tripping.

What each experiment measures is in its rows; the numbers' independent references (closed forms, exact
recurrences, Kramers' law, the chain's own stationary law) are computed inside the experiment and named
in each row's group; the theory modules themselves are tested in ``tests/theory``.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from descent.experiments import EXPERIMENT_NAMES, ci_size, get_experiment
from descent.experiments._base import Result, dumps
from descent.experiments.figures import MIN_FONT_PT, WIDTH_IN, text_sizes
from descent.experiments.rows import Z_POWER

torch.set_num_threads(1)


def run(name: str, quick: bool) -> Result:
    module = get_experiment(name)
    config = module.Config.quick() if quick else module.Config()
    return module.run(config)


def close(result: Result) -> None:
    import matplotlib.pyplot as plt

    for figure in result.figures:
        plt.close(figure)


_RESULTS: dict[str, Result] = {}


def at_tested_size(name: str) -> Result:
    """``name`` run once at the size the suite tests it (`ci_size`), kept for this module's tests."""
    if name not in _RESULTS:
        _RESULTS[name] = run(name, quick=ci_size(name) == "quick")
    return _RESULTS[name]


@pytest.fixture(scope="module", params=EXPERIMENT_NAMES)
def full(request):
    yield at_tested_size(request.param)


@pytest.fixture(scope="module", autouse=True)
def _close_figures():
    yield
    for result in _RESULTS.values():
        close(result)
    _RESULTS.clear()


def criterion_holds(row) -> bool:
    """The check's criterion, recomputed from the row's value, theory and tolerance alone."""
    value, theory, tolerance = row.value, row.theory, row.tolerance
    if not (math.isfinite(theory) and math.isfinite(tolerance)) or math.isnan(value):
        return False
    if row.criterion.startswith("|measured - theory|") or row.criterion == "measured = theory":
        return abs(value - theory) <= tolerance
    if row.criterion.startswith("measured >"):
        return value - theory > tolerance
    if row.criterion.startswith("measured <"):
        return theory - value > tolerance
    raise AssertionError(f"{row.id}: unknown criterion {row.criterion!r}")


def test_every_check_passes_or_fails_by_its_own_criterion(full):
    assert full.claim_checks, f"{full.name}: a verdict needs at least one claim check"
    for row in full.checks:
        assert row.passed == criterion_holds(row), (full.name, row)


def test_every_theory_check_passes(full):
    """The simulation against its closed forms: a failure here is a bug in the instrument."""
    failed = [(row.id, row.value, row.theory, row.criterion) for row in full.theory_checks if not row.passed]
    assert not failed, f"{full.name}: {failed}"


def test_the_verdict_follows_from_the_claim_checks(full):
    passed = [row.passed for row in full.claim_checks]
    expected = "held" if all(passed) else ("did not hold" if not any(passed) else "partly held")
    assert full.verdict == expected
    for row in full.checks:
        if not row.passed:
            assert row.label in full.explanation, row.id


def test_statistical_tolerances_are_standard_errors_and_every_check_states_its_power(full):
    for row in full.checks:
        if row.se is not None:
            assert row.se > 0 and "SE" in row.criterion, row
        if row.theory:
            assert row.power is not None and row.power >= 0, row
            assert row.power >= (row.tolerance + Z_POWER * (row.se or 0.0)) / abs(row.theory) - 1e-12


@pytest.mark.parametrize("name", [name for name in EXPERIMENT_NAMES if ci_size(name) == "full"])
def test_the_quick_size_asserts_the_same_criteria(name):
    full = at_tested_size(name)
    quick = run(name, quick=True)
    close(quick)
    assert quick.claim_checks
    shared = {row.id: row for row in quick.checks}.keys() & {row.id for row in full.checks}
    assert shared, f"{full.name}: the quick size shares no check with the full size"
    for row in quick.checks:
        if row.id in shared:
            assert row.criterion == full.row(row.id).criterion, row.id
            assert row.about == full.row(row.id).about, row.id


def test_the_figures_are_legible_at_the_cards_width(full):
    assert full.figures, f"{full.name} draws no figure"
    for figure in full.figures:
        assert figure.get_size_inches()[0] <= WIDTH_IN + 1e-9
        assert min(text_sizes(figure)) >= MIN_FONT_PT
    assert full.figure_png().startswith(b"\x89PNG")


def test_the_json_reads_back_the_same_rows(full, tmp_path):
    paths = full.save(tmp_path)
    text = paths["json"].read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = Result.from_dict(json.loads(text))
    assert len(back.rows) == len(full.rows)
    for mine, theirs in zip(full.rows, back.rows):
        for field in ("id", "label", "passed", "criterion", "about"):
            assert getattr(mine, field) == getattr(theirs, field)
        for field in ("value", "se", "theory", "tolerance", "power"):
            a, b = getattr(mine, field), getattr(theirs, field)
            assert (a is None and b is None) or a == b or (math.isnan(a) and math.isnan(b))
    assert back.verdict == full.verdict and back.explanation == full.explanation
    assert dumps(back.to_dict()) == text


def test_the_specs_of_its_runs_are_stored(full, specs_round_trip):
    specs_round_trip(full)
