"""The training lab in the Arena (issue 12, items 6 and 7): an L2 barrier's minima and their paths drawn
on the map and said in a line, equal to `regularized` and `regularization_path`; and ``digits-slice``, a
real network's loss, chosen from the picker with a cold cache (a temporary ``DESCENT_CACHE_DIR``): the
server answers "being built" at once, builds it in the background and the page shows it when ready; the
ball rolls 1000 steps, the 3-D view draws and the maps mode names the torch budget. Screenshots in
artifacts/arena/."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from descent.arena import barrier, runner
from descent.arena.state import default_state
from descent.landscapes import get_landscape, network_slice
from descent.objectives.regularized import regularization_path, regularized
from tests.arena.arena_page import ArenaPage

pytestmark = pytest.mark.browser

MAP_TRACES_JS = """() => { const gd = document.querySelector('#map-graph .js-plotly-plot');
  return gd.data.map(t => ({uid: t.uid || null, x: Array.from(t.x || []), y: Array.from(t.y || []),
                            customdata: t.customdata ? Array.from(t.customdata) : null,
                            text: t.text || null})); }"""


@pytest.fixture()
def arena(page, arena_url) -> ArenaPage:
    arena = ArenaPage(page, arena_url)
    arena.show(default_state())
    return arena


def _traces(arena: ArenaPage) -> dict[str, dict]:
    return {t["uid"]: t for t in arena.page.evaluate(MAP_TRACES_JS) if t["uid"]}


def _nan(values: list) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def test_an_l2_barrier_shows_the_minima_with_and_without_it_and_their_paths(arena, artifacts):
    run = arena.run_id()
    arena.choose("landscape-dropdown", "double-well-l2")
    run = arena.wait_new_run(run)
    arena.page.wait_for_function(
        "() => document.getElementById('barrier-text').innerText.includes('λ = 0.5')"
    )
    arena.page.fill("#params-input", "l2=1.5, center=0.2")
    arena.page.press("#params-input", "Enter")
    arena.wait_new_run(run)
    arena.page.wait_for_function(
        "() => document.getElementById('barrier-text').innerText.includes('λ = 1.5')"
    )
    base = get_landscape("double-well")
    expected = regularized(base, 1.5, [0.2, 0.2])
    traces = _traces(arena)
    # the minima of U_lambda drawn (the known points' minima) are regularized(...).minima
    known = traces["known-points"]
    drawn = {name: (x, y) for name, x, y in zip(known["text"], known["x"], known["y"])}
    for point in expected.minima:
        assert drawn[point.id] == pytest.approx(point.position, abs=1e-12), point
    # U's own minima, hollow
    without = traces["l2-base-minima"]
    np.testing.assert_allclose(
        np.column_stack([without["x"], without["y"]]), [p.position for p in base.minima], atol=1e-12
    )
    # each minimum's path from lambda = 0 to 1.5 is regularization_path's, at the lambdas it names
    for point in base.minima:
        path = traces[f"l2-path-{point.id}"]
        lambdas = np.array(path["customdata"])
        assert lambdas[0] == 0 and lambdas[-1] == pytest.approx(1.5) and len(lambdas) == barrier.PATH_POINTS
        reference = regularization_path(base, lambdas, [0.2, 0.2]).positions[point.id]
        np.testing.assert_allclose(_nan(path["x"]), reference[:, 0], atol=1e-9, equal_nan=True)
        np.testing.assert_allclose(_nan(path["y"]), reference[:, 1], atol=1e-9, equal_nan=True)
        assert np.allclose(reference[-1], expected.point(point.id).position, atol=1e-6)  # ends at U_1.5's
    # the line: where the minima are now and without the term, and where the shallow one vanishes
    line = arena.page.inner_text("#barrier-text")
    grid, _ = barrier.lambdas(1.5)
    gone = regularization_path(base, grid, [0.2, 0.2]).positions["left"][:, 0]
    k = int(np.flatnonzero(np.isnan(gone))[0])
    assert f"left vanishes (merges with a saddle) between λ = {grid[k - 1]:.4g} and {grid[k]:.4g}" in line, (
        line
    )
    for point in expected.minima:
        assert f"{point.id} ({point.position[0]:.4g}, {point.position[1]:.4g})" in line, line
    for point in base.minima:
        assert f"{point.id} ({point.position[0]:.4g}, {point.position[1]:.4g})" in line, line
    arena.shot(artifacts / "page-l2-barrier.png")


@pytest.fixture()
def cold_cache(tmp_path, monkeypatch):
    """digits-slice's cache in an empty folder, and no copy of it in the server's caches."""
    monkeypatch.setenv(network_slice.CACHE_ENV, str(tmp_path))
    runner.LANDSCAPE_CACHE.clear()
    yield tmp_path
    runner.LANDSCAPE_CACHE.clear()


def _answer_ms(response) -> float:
    timing = response.request.timing
    return timing["responseStart"] - timing["requestStart"]


def test_digits_slice_from_a_cold_cache_builds_in_the_background_then_rolls(arena, cold_cache, artifacts):
    run = arena.run_id()
    with arena.page.expect_response(lambda r: "_dash-update-component" in r.url) as answer:
        arena.choose("landscape-dropdown", "digits-slice")
    answer.value.finished()
    assert _answer_ms(answer.value) < 2000, _answer_ms(answer.value)  # issue 11: a request under 2 s
    arena.page.wait_for_function(
        "() => document.getElementById('input-message').innerText.includes('being built')"
    )
    assert "digits-slice is being built" in arena.message()
    arena.shot(artifacts / "page-digits-slice-being-built.png")
    started = time.perf_counter()
    run = arena.wait_new_run(run, timeout=300_000)  # the page applies the choice when the build ends
    print(f"digits-slice built and shown {time.perf_counter() - started:.1f} s after the message")
    assert arena.shared_state()["landscape"] == "digits-slice" and arena.message() == ""
    assert list(cold_cache.glob("network-slice-*.npz")), "the table was not cached"
    # 1000 steps at the usual speed: the server's answer and the ball at the engine's end point
    arena.set_speed("normal (250 steps/s)", 250)
    with arena.page.expect_response(lambda r: "_dash-update-component" in r.url) as answer:
        arena.set_number("steps-input", 1000)
    run = arena.wait_new_run(run, timeout=120_000)
    print(f"1000 steps on digits-slice: the server answered in {_answer_ms(answer.value):.0f} ms")
    assert arena.page.evaluate("() => window.descentArena.anim.maxStep") == 1000
    landscape = runner.get_landscape("digits-slice", {})
    traj = runner.run_state(arena.shared_state()).trajectories[0]  # the engine's run of the page's state
    step = arena.page.evaluate("() => window.descentArena.step")  # the player stops once the ball settled
    frame = int(np.searchsorted(traj.steps.numpy(), step))
    assert arena.balls()[0] == pytest.approx(traj.positions[frame, 0].tolist(), abs=1e-12)
    assert "minimum:trained" in arena.outcome(), arena.outcome()
    # the 3-D view: the surface of the slice, with the ball on it
    surface = arena.page.evaluate(
        """() => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
                   return gd.data.map(t => t.type); }"""
    )
    assert "surface" in surface, surface
    arena.shot(artifacts / "page-digits-slice.png")
    # the maps mode: the kernel does not take a tabulated landscape; the torch budget is named
    arena.page.get_by_role("button", name="Maps", exact=False).first.click()
    arena.page.wait_for_function("() => document.getElementById('maps-message').innerText.length > 0")
    text = arena.page.inner_text("#maps-message")
    assert "invalid steps=1000" in text and "torch loop" in text and "compiled kernel does not run it" in text
    assert landscape.name == "digits-slice"
    arena.shot(artifacts / "page-digits-slice-maps.png")
