"""The L2 barrier's data on the map (`descent.arena.barrier`, issue 12 item 6) against closed forms and
`descent.objectives.regularized`: on a rotated quadratic every point of each drawn path is the ridge
minimum lambda (A + lambda I)^-1 c; the lambdas said around a vanishing minimum bracket where
`regularized` stops finding it; the map's traces are the paths. No browser."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from descent.arena import barrier, runner
from descent.landscapes import get_landscape as plain_landscape
from descent.landscapes.seeds import quadratic_matrix
from descent.objectives.regularized import regularized

torch.set_num_threads(1)


def get_landscape(name: str, params: dict):
    """The Arena's landscape, waited for while it is built in the background (its barrier with it)."""
    for _ in range(600):
        try:
            return runner.get_landscape(name, params)
        except runner.LandscapeBuilding:
            time.sleep(0.1)
    raise AssertionError(f"{name} was not built in a minute")


def test_each_path_on_a_rotated_quadratic_is_the_ridge_minimum_at_every_lambda():
    landscape = get_landscape("quadratic-l2", {"l2": 2.0, "center": 0.7, "angle": 0.5})
    shown = barrier.barrier(landscape)
    a = quadratic_matrix(landscape.base).numpy()
    c = np.array([0.7, 0.7])
    grid = shown.path.lambdas[: barrier.PATH_POINTS]
    assert grid[0] == 0 and grid[-1] == pytest.approx(2.0)
    ridge = np.array([lam * np.linalg.solve(a + lam * np.eye(2), c) for lam in grid])
    np.testing.assert_allclose(shown.drawn("origin"), ridge, atol=1e-8)
    [path] = [t for t in barrier.traces(landscape) if t["uid"] == "l2-path-origin"]
    np.testing.assert_allclose(np.column_stack([path["x"], path["y"]]), ridge, atol=1e-8)
    assert path["customdata"] == grid.tolist()
    assert shown.minima == [("origin", landscape.point("origin").position)]
    np.testing.assert_allclose(shown.minima[0][1], ridge[-1], atol=1e-8)
    assert shown.vanishes == {} and f"No minimum vanishes for λ up to {shown.search_top:.4g}" in barrier.text(
        landscape
    )


def test_the_lambdas_said_around_a_vanishing_minimum_bracket_where_regularized_loses_it():
    landscape = get_landscape("double-well-l2", {"l2": 1.0})
    shown = barrier.barrier(landscape)
    low, high = shown.vanishes["left"]
    base = plain_landscape("double-well")
    assert any(p.id == "left" for p in regularized(base, low).minima)
    assert not any(p.id == "left" for p in regularized(base, high).minima)
    assert "right" not in shown.vanishes
    line = barrier.text(landscape)
    assert f"left vanishes (merges with a saddle) between λ = {low:.4g} and {high:.4g}" in line
    drawn = [t for t in barrier.traces(landscape) if t["uid"] == "l2-base-minima"][0]
    assert list(zip(drawn["x"], drawn["y"])) == [p.position for p in base.minima]


def test_the_landscape_without_the_term_is_drawn_as_contours_of_the_bases_u():
    landscape = get_landscape("double-well-l2", {"l2": 1.0})
    [without] = [t for t in barrier.traces(landscape) if t["uid"] == "l2-without"]
    gx, gy = np.meshgrid(without["x"], without["y"])
    points = torch.tensor(np.column_stack([gx.ravel(), gy.ravel()]), dtype=torch.float64)
    base_u = plain_landscape("double-well").value(points).numpy()
    levels = np.array(without["z"], dtype=float).ravel()
    assert np.array_equal(np.argsort(levels, kind="stable"), np.argsort(base_u, kind="stable"))  # U's order
    with_term = landscape.value(points).numpy()
    assert not np.array_equal(np.argsort(with_term, kind="stable"), np.argsort(base_u, kind="stable"))


def test_a_minimum_gone_before_the_landscapes_lambda_is_drawn_up_to_where_it_went():
    landscape = get_landscape("plateau-l2", {})  # the well vanishes near lambda = 0.12 < 0.5
    shown = barrier.barrier(landscape)
    low, high = shown.vanishes["well"]
    assert high <= shown.strength and "well vanished" in barrier.text(landscape)
    [path] = [t for t in barrier.traces(landscape) if t["uid"] == "l2-path-well"]
    grid = np.array(path["customdata"])
    gone = np.array([v is None for v in path["x"]])
    assert not gone[grid <= low].any() and gone[grid >= high].all()
    assert not math.isnan(shown.drawn("well")[0, 0])


def test_a_landscape_without_the_term_has_no_barrier():
    landscape = get_landscape("double-well", {})
    assert (
        barrier.barrier(landscape) is None
        and barrier.traces(landscape) == []
        and barrier.text(landscape) == ""
    )
