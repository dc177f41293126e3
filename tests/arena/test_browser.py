"""The Arena in a real browser (Debian's Chromium through Playwright): the seeds' experiments by hand,
a shared link, a bad formula, the 3-D view. Each test keeps a screenshot in artifacts/arena/."""

from __future__ import annotations

import io
import math

import pytest

from descent.arena.state import PRESETS, default_state
from tests.arena.arena_page import ArenaPage

pytestmark = pytest.mark.browser

LEFT_MIN = (-0.9603, 0.0)  # double well, tilt 0.3 (refined by Newton in the engine)
RIGHT_MIN = (1.0356, 0.0)


def _near(point, target, tol=0.05) -> bool:
    return math.dist(point, target) < tol


@pytest.fixture()
def arena(page, arena_url) -> ArenaPage:
    arena = ArenaPage(page, arena_url)
    arena.show(default_state())  # each test starts from the default state, in the same page
    return arena


def test_double_well_momentum_zero_then_point_nine(arena, artifacts):
    """The seeds' experiment: Double Well, momentum 0, Reset Ball, run -> the left (local) minimum;
    momentum 0.9 -> over the hill to the global one. Read from the page, not from Python."""
    run = arena.run_id()
    assert arena.page.title() == "The Descent Arena"
    assert "The Descent Arena" in arena.page.inner_text("h1")
    arena.set_speed("faster (4000 steps/s)", 4000)
    arena.choose("landscape-dropdown", "double-well")
    arena.set_number("momentum-input", 0)
    run = arena.wait_new_run(run)
    plays = arena.plays()
    arena.click("reset-ball")
    run = arena.wait_new_run(run)
    arena.click("play-button")
    arena.wait_played(plays + 1)
    assert "minimum:left (local)" in arena.outcome()
    (ball,) = arena.balls()
    assert _near(ball, LEFT_MIN), ball
    assert arena.page.input_value("#momentum-input") == "0"
    arena.shot(artifacts / "double-well-momentum-0.png")

    arena.set_number("momentum-input", 0.9)
    run = arena.wait_new_run(run)
    plays = arena.plays()
    arena.click("reset-ball")
    run = arena.wait_new_run(run)
    assert "minimum:right (global)" in arena.outcome()
    (ball,) = arena.balls()
    assert _near(ball, RIGHT_MIN), ball
    arena.shot(artifacts / "double-well-momentum-0.9.png")


def test_plateau_presets_crawl_and_momentum(arena, artifacts):
    run = arena.run_id()
    arena.set_speed_instant()
    steps = {}
    for preset in ("Plateau: crawl", "Plateau: momentum"):
        arena.preset(preset)
        run = arena.wait_new_run(run)
        text = arena.outcome()
        assert "minimum:well (global) at step" in text, text
        steps[preset] = int(text.rsplit("at step", 1)[1].split()[0])
        (ball,) = arena.balls()
        assert ball[0] > 9.0, ball  # in the well beyond the slope (x ~ 10)
        arena.shot(artifacts / f"{preset.replace(': ', '-').replace(' ', '-').lower()}.png")
    # momentum 0.9 crosses the plateau several times faster (terminal speed lr*slope/(1 - beta))
    assert steps["Plateau: momentum"] * 3 < steps["Plateau: crawl"], steps
    assert arena.page.input_value("#momentum-input") == "0.9"


def test_url_round_trip_restores_the_same_run(arena, browser, arena_url, artifacts):
    arena.set_speed_instant()
    run = arena.show(PRESETS["Saddle"][0])
    arena.set_number("lr-input", 0.04)
    run = arena.wait_new_run(run)
    outcome, balls, link = arena.outcome(), arena.balls(), arena.share_link()
    assert arena.shared_state()["racers"][0]["hyper"]["lr"] == 0.04
    assert "?s=" in arena.page.url  # the address bar holds the state too

    other = browser.new_page(viewport={"width": 1600, "height": 1250})
    try:
        again = ArenaPage(other, arena_url)
        other.goto(link)
        again.wait_new_run(None)
        assert again.outcome() == outcome
        assert sum(again.balls(), []) == pytest.approx(sum(balls, []), abs=1e-9)
        assert other.input_value("#lr-input") == "0.04"
        assert "saddle" in other.inner_text("#landscape-dropdown")
        again.shot(artifacts / "url-round-trip.png")
    finally:
        other.close()


def test_bad_formula_shows_its_error_and_the_page_keeps_working(arena, artifacts):
    run = arena.run_id()
    arena.set_speed_instant()
    before = arena.outcome()
    arena.choose("landscape-dropdown", "custom formula… (type it below)")
    box = arena.page.locator("#formula-input")
    box.fill("x**2 + __import__('os').getcwd()")
    arena.click("formula-apply")
    arena.page.wait_for_function("document.getElementById('input-message').innerText.length > 0")
    message = arena.message()
    assert "invalid landscape formula" in message and "__import__" in message, message
    assert arena.outcome() == before  # the previous run stays
    arena.shot(artifacts / "bad-formula.png")

    box.fill("(x**2 - 1)**2 + 0.5*y**2")
    arena.click("formula-apply")
    run = arena.wait_new_run(run)
    assert arena.message() == ""
    assert "minimum:" in arena.outcome()


def test_click_on_the_map_drops_the_ball_there(arena, artifacts):
    run = arena.run_id()
    arena.set_speed_instant()
    box = arena.page.locator("#map-graph .nsewdrag").bounding_box()
    # the point (x, y) = (0.5, 1.0) of the double well's box [-2, 2] x [-1.5, 1.5]
    px = box["x"] + box["width"] * (0.5 + 2) / 4
    py = box["y"] + box["height"] * (1.5 - 1.0) / 3
    arena.page.mouse.click(px, py)
    run = arena.wait_new_run(run)
    start = arena.shared_state()["start"]
    assert start == pytest.approx([0.5, 1.0], abs=0.03), start
    first = arena.page.evaluate(
        "() => { const r = window.descentArena.anim.racers[0]; return [r.x[0], r.y[0]]; }"
    )
    assert first == pytest.approx(start, abs=1e-9)
    assert "the landscape's default" not in arena.page.inner_text("#start-text")
    arena.shot(artifacts / "map-click.png")


def test_too_large_a_step_warns_then_diverges(arena, artifacts):
    run = arena.run_id()
    arena.set_speed_instant()
    arena.preset("Too large a step")
    arena.wait_new_run(run)
    assert "diverged at step" in arena.outcome()
    note = arena.page.inner_text("#lr-note")
    assert "above the stability edge" in note, note
    assert arena.page.is_visible("#edge-marker")
    assert "diverged" in arena.page.inner_text("#leaderboard")
    arena.shot(artifacts / "too-large-a-step.png")


def test_race_swarm_and_webgl_views_render(arena, artifacts):
    from PIL import Image

    run = arena.run_id()
    arena.set_speed_instant()
    arena.choose("race-dropdown", "adam")
    arena.page.keyboard.press("Escape")
    run = arena.wait_new_run(run)
    rows = arena.page.locator("#leaderboard-table tbody tr")
    assert rows.count() == 2
    assert len(arena.balls()) == 2
    lr_box = arena.page.locator("#racer-rows input[type=number]").first  # adam's learning rate
    lr_box.fill("0.1")
    lr_box.press("Enter")
    run = arena.wait_new_run(run)
    assert "adam lr=0.1" in arena.outcome()
    assert arena.shared_state()["racers"][1] == {"optimizer": "adam", "hyper": {"lr": 0.1}}
    # the 3-D surface is drawn by WebGL: a canvas with real pixels
    assert arena.page.locator("#surface-graph canvas").count() > 0
    shot = arena.page.locator("#surface-graph").screenshot()
    image = Image.open(io.BytesIO(shot)).convert("L")
    low, high = image.getextrema()
    assert high - low > 60, (low, high)
    assert len(set(image.resize((64, 64)).tobytes())) > 50
    arena.shot(artifacts / "race.png")

    # export: the map as PNG, the trajectories as CSV and JSON
    for button, suffix in (("png-button", ".png"), ("csv-button", ".csv"), ("json-button", ".json")):
        with arena.page.expect_download() as info:
            arena.click(button)
        download = info.value
        assert download.suggested_filename.endswith(suffix)
        path = artifacts / f"export{suffix}"
        download.save_as(path)
        head = path.read_bytes()[:200]
        assert {
            ".png": head.startswith(b"\x89PNG"),
            ".csv": head.startswith(b"racer,optimizer,step"),
            ".json": b"arena_state" in path.read_bytes(),
        }[suffix]

    arena.page.click("#swarm-on label")
    run = arena.wait_new_run(run)
    assert "balls after" in arena.outcome()
    assert arena.page.is_visible("#swarm-graph")
    share = arena.page.inner_text("#swarm-share-now")
    assert share.endswith("%"), share
    # the swarm on the map is a WebGL scatter (scattergl): its canvas exists and holds every ball
    swarm = arena.page.evaluate("""() => {
      const gd = document.querySelector('#map-graph .js-plotly-plot');
      const trace = gd.data[gd.layout.meta.swarm];
      return {type: trace.type, n: trace.x.length, canvases: gd.querySelectorAll('canvas.gl-canvas').length};
    }""")
    assert swarm == {"type": "scattergl", "n": 500, "canvases": swarm["canvases"]} and swarm["canvases"] > 0
    arena.shot(artifacts / "swarm.png")


def test_a_new_run_of_the_same_map_is_put_into_the_figure_the_page_shows(arena, artifacts):
    """An lr change keeps the map's structure: the server sends no new map figure, the player puts the
    run into the one on the page (paths, names, meta.run) and leaves no trace hidden."""
    run = arena.run_id()
    arena.set_speed("faster (4000 steps/s)", 4000)
    key = arena.page.evaluate("() => document.querySelector('#map-graph .js-plotly-plot').layout.meta.key")
    arena.page.locator("#lr-slider [role=slider]").focus()
    arena.page.keyboard.press("ArrowRight")
    run = arena.wait_new_run(run)
    shown = arena.page.evaluate("""() => {
      const gd = document.querySelector('#map-graph .js-plotly-plot'), m = gd.layout.meta;
      const r = window.descentArena.anim.racers[0], n = r.x.length;
      const i = r.steps.filter(k => k <= window.descentArena.step).length - 1;  // the frame at rest
      const ghost = gd.data[m.ghost[0]], trail = gd.data[m.trail[0]], ball = gd.data[m.ball[0]];
      return {key: m.key, run: m.run, anim: window.descentArena.anim.run, label: r.label,
              names: [ghost.name, trail.name, ball.name],
              ghostEnd: [ghost.x[ghost.x.length - 1], ghost.y[ghost.y.length - 1]],
              ball: [ball.x[0], ball.y[0]], end: [r.x[n - 1], r.y[n - 1]], now: [r.x[i], r.y[i]],
              trail: trail.x.length, frames: i + 1,
              hidden: Array.from(gd.querySelectorAll('g.trace'))
                        .filter(g => g.style.display === 'none').length};
    }""")
    assert shown["key"] == key and shown["run"] == shown["anim"] == run
    assert shown["names"] == [shown["label"] + " (path)", shown["label"], shown["label"] + " (ball)"]
    assert shown["ghostEnd"] == pytest.approx(shown["end"], abs=1e-12)
    assert shown["ball"] == pytest.approx(shown["now"], abs=1e-12) and shown["trail"] == shown["frames"]
    assert shown["hidden"] == 0
    lr = arena.shared_state()["racers"][0]["hyper"]["lr"]
    assert f"lr={lr:.4g}" in shown["label"] and lr != 0.02
    arena.shot(artifacts / "same-map-new-run.png")
