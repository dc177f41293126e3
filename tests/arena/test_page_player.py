"""The player (issue 11): the 3-D view moves with the map; Step takes one optimizer step; the progress
bar is scaled to the run's length; the outcome banner does not tell the end while the ball is at the
start. Each test keeps a screenshot in artifacts/arena/."""

from __future__ import annotations

import time

import pytest

from descent.arena.state import default_state
from tests.arena.arena_page import ArenaPage

pytestmark = pytest.mark.browser

# where the ball is on the map and on the 3-D surface (the figures' own ball traces, at rest)
BALLS_JS = """() => {
  const map = document.querySelector('#map-graph .js-plotly-plot');
  const surf = document.querySelector('#surface-graph .js-plotly-plot');
  const mb = map.data[map.layout.meta.ball[0]], mt = map.data[map.layout.meta.trail[0]];
  const sm = surf && surf.layout && surf.layout.meta;
  const sb = sm && sm.ball ? surf.data[sm.ball[0]] : null;
  const st = sm && sm.trail ? surf.data[sm.trail[0]] : null;
  return {step: window.descentArena.step, map: [mb.x[0], mb.y[0]],
          surface: sb ? [sb.x[0], sb.y[0]] : null, trail: st ? st.x.length : null, mapTrail: mt.x.length,
          surfaceRun: sm ? sm.run : null, run: window.descentArena.anim.run};
}"""


@pytest.fixture()
def arena(page, arena_url) -> ArenaPage:
    arena = ArenaPage(page, arena_url)
    arena.show(default_state())
    return arena


def _balls_when(arena: ArenaPage, check, timeout: float = 15.0) -> dict:
    """The balls read from the page once ``check`` holds for them (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        balls = arena.page.evaluate(BALLS_JS)
        if check(balls) or time.monotonic() > deadline:
            return balls
        time.sleep(0.1)


def test_the_3d_ball_and_trail_move_with_the_map(arena, artifacts):
    """Plateau: crawl paused mid-way: the 3-D ball is where the map's ball is (x ~ 0.7 early on, not
    in the well at x ~ 11), and its trail ends there."""
    arena.set_speed("slow (60 steps/s)", 60)
    run = arena.run_id()
    arena.preset("Plateau: crawl")
    arena.page.wait_for_function(
        "(prev) => window.descentArena.anim.run !== prev && window.descentArena.step > 120", arg=run
    )
    arena.click("pause-button")
    arena.page.wait_for_function("document.getElementById('player-status').dataset.state === 'paused'")

    def same(b):
        return b["surface"] is not None and b["surfaceRun"] == b["run"] and b["surface"][0] == b["map"][0]

    balls = _balls_when(arena, same)
    arena.shot(artifacts / "page-3d-follows-the-map.png")
    assert 120 < balls["step"] < 1500, balls
    assert balls["map"][0] < 9, balls  # still on the plateau
    assert balls["surface"] == pytest.approx(balls["map"], abs=1e-9), balls
    assert balls["trail"] == balls["mapTrail"], balls  # the same trail so far

    # and it moves on with the map: seek further by clicking the progress bar
    bar = arena.page.locator("#progress-bar").bounding_box()
    arena.page.mouse.click(bar["x"] + 0.5 * bar["width"], bar["y"] + bar["height"] / 2)
    later = _balls_when(arena, lambda b: b["map"][0] > balls["map"][0] and same(b))
    assert later["surface"] == pytest.approx(later["map"], abs=1e-9), later
    assert later["map"][0] > balls["map"][0] and later["step"] > balls["step"] + 100, later
