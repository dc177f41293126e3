"""Live while you drag (issue 11, item 2): the learning-rate and momentum sliders redraw the ball's
trajectory during the drag (assets/live.js asking POST /api/ball, descent/arena/live.py), each drawn
path equal to `run_spec` for the value shown; without live.js nothing is drawn until release; the
endpoint answers a bad request with a one-line message, never a 500.

The page is served by the production server (``descent arena``: waitress, 2 threads) in its own
process, as a visitor gets it: a server in the test's own process would share its interpreter lock
with the mouse that drives the drag. Screenshots go to artifacts/arena/."""

from __future__ import annotations

import json
import math
import statistics
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from benchmarks.arena_latency import ProductionServer, live_drag

from descent.arena.state import default_state, encode_state, normalize, state_url
from descent.spec import RunSpec, run_spec

pytestmark = pytest.mark.browser

DRAWS_JS = """(since) => (window.__liveDraws || []).filter(d => d.drawn >= since).map(d => ({
  seq: d.seq, control: d.control, value: d.value, optimizer: d.optimizer, hyper: d.hyper, label: d.label,
  digest: d.digest, points: d.points, t0: d.t0, drawn: d.drawn, latency: d.latency}))"""
PATH_JS = """(seq) => { const d = window.__liveDraws.find(e => e.seq === seq); return [d.x, d.y]; }"""
TRAIL_JS = """() => { const gd = document.querySelector('#map-graph .js-plotly-plot');
  const t = gd.data[gd.layout.meta.trail[0]];
  return window.descentLive ? window.descentLive.digest(t.x, t.y) : Array.from(t.x).join(',').length; }"""


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    """``descent arena`` (waitress, 2 threads) in its own process on a free loopback port."""
    server = ProductionServer(threads=2)
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="module")
def live_page(browser, live_url):
    context = browser.new_context(viewport={"width": 1600, "height": 1250})
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def one_ball(steps: int = 1000, **hyper: float) -> dict:
    state = default_state()
    state["steps"] = steps
    state["racers"][0]["hyper"].update(hyper)
    return normalize(state)


def open_state(page, url: str, state: dict) -> None:
    page.goto(url + state_url(state))
    page.wait_for_function(
        """() => { const el = document.getElementById('player-status');
                   return el && el.dataset.state === 'finished' &&
                          !!document.getElementById('share-link').value; }""",
        timeout=120_000,
    )


def drag(page, slider: str, dx: float, seconds: float = 2.0) -> dict:
    """Hold the mouse down on ``slider``'s thumb and move it ``dx`` px over ``seconds``, a move due every
    10 ms (`benchmarks/arena_latency.live_drag`); before the release, at one instant: the paths drawn,
    the map's ball trail (its digest), the note and the thumb's value; and the moves made."""
    read = f"""(since) => ({{draws: ({DRAWS_JS})(since), figure: ({TRAIL_JS})(),
      note: (document.getElementById('live-note') || {{}}).textContent || '',
      value: parseFloat(document.querySelector('#{slider} [role=slider]').getAttribute('aria-valuenow'))}})"""
    result, moves = live_drag(page, dx, seconds, slider=slider, read=read)
    return {**result, "moves": moves}


def ball_path(state: dict) -> tuple[list[float], list[float]]:
    """The ball's positions from `run_spec` (kernel where it runs: what the page asks for)."""
    racer = state["racers"][0]
    spec = RunSpec(
        landscape=state["landscape"],
        optimizer=racer["optimizer"],
        hyper=dict(racer["hyper"]),
        steps=state["steps"],
        seed=state["seed"],
        save="every:1",
        backend="auto",
    )
    positions = run_spec(spec).positions[:, 0, :].double()
    return positions[:, 0].tolist(), positions[:, 1].tolist()


def same_path(drawn: list, expected: list[float]) -> bool:
    if len(drawn) != len(expected):
        return False
    for a, b in zip(drawn, expected):
        if a is None or not math.isfinite(b):
            if not (a is None and not math.isfinite(b)):
                return False
        elif abs(a - b) > 1e-9:
            return False
    return True


def lr_of(slider_value: float) -> float:
    """The lr the page's reducer sets for a log10 slider value (3 significant digits)."""
    return float(f"{10**slider_value:.3g}")


def test_the_lr_slider_redraws_the_trajectory_while_dragged(live_page, live_url, artifacts):
    """A 2 s drag of the lr slider, a move every 10 ms: at least 40 distinct trajectories drawn before
    release, each for the value the page shows; a few of them equal to `run_spec` for their lr to
    1e-9; the map's ball trace holds the last one; on release the page's own run follows."""
    state = one_ball(1000)
    open_state(live_page, live_url, state)
    result = drag(live_page, "lr-slider", -110)
    live_page.screenshot(path=str(artifacts / "page-live-drag.png"), full_page=False)
    draws = result["draws"]
    digests = {d["digest"] for d in draws}
    assert len(digests) >= 40, (result["moves"], len(draws))
    latencies = [d["latency"] for d in draws]
    print(
        f"\nlive drag: {result['moves']} moves, {len(draws)} draws ({len(digests)} distinct) in 2 s; "
        f"slider change -> drawn: median {statistics.median(latencies):.0f} ms, "
        f"max {max(latencies):.0f} ms"
    )
    for d in draws:
        assert d["control"] == "lr-slider" and d["points"] == 1001, d
        assert d["hyper"] == {"lr": lr_of(d["value"]), "momentum": 0.9}, d
        assert f"lr={d['hyper']['lr']:.4g}" in d["label"], d
    # the figure shows the last drawn path, and the note names its values
    assert result["figure"] == draws[-1]["digest"]
    assert draws[-1]["label"] in result["note"], result["note"]
    # a few drawn paths against run_spec for their lr
    for d in (draws[0], draws[len(draws) // 2], draws[-1]):
        xs, ys = live_page.evaluate(PATH_JS, d["seq"])
        ex, ey = ball_path(one_ball(1000, lr=d["hyper"]["lr"]))
        assert same_path(xs, ex) and same_path(ys, ey), d
    # released: the page's callback runs the released value as before
    lr = lr_of(result["value"])
    live_page.wait_for_function(
        """(lr) => { const el = document.getElementById('player-status');
                     const box = document.getElementById('lr-input');
                     return el && el.dataset.state === 'finished' && box.value !== '' &&
                            Math.abs(parseFloat(box.value) - lr) < 1e-12; }""",
        arg=lr,
        timeout=60_000,
    )
    assert live_page.inner_text("#live-note") == ""


def test_the_momentum_slider_redraws_while_dragged(live_page, live_url):
    """The momentum slider too: the drawn paths are `run_spec`'s for the β shown."""
    state = one_ball(1000)
    open_state(live_page, live_url, state)
    result = drag(live_page, "momentum-slider", -80, seconds=1.0)
    draws = result["draws"]
    assert len({d["digest"] for d in draws}) >= 10, (result["moves"], len(draws))
    for d in (draws[0], draws[-1]):
        beta = d["value"]
        assert d["hyper"] == {"lr": 0.02, "momentum": beta}, d
        xs, ys = live_page.evaluate(PATH_JS, d["seq"])
        ex, ey = ball_path(one_ball(1000, momentum=beta))
        assert same_path(xs, ex) and same_path(ys, ey), d


def test_without_live_js_nothing_is_drawn_until_release(browser, live_url):
    """The control: with assets/live.js blocked the page draws nothing while the slider is held
    (Dash sends the value on release), so the test above measures live.js."""
    context = browser.new_context(viewport={"width": 1600, "height": 1250})
    page = context.new_page()
    try:
        page.route("**/live.js*", lambda route: route.abort())
        open_state(page, live_url, one_ball(1000))
        before = page.evaluate(TRAIL_JS)
        result = drag(page, "lr-slider", -110, seconds=1.0)
        assert result["draws"] == [] and result["figure"] == before
    finally:
        context.close()


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "api/ball", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_endpoint_answers_a_bad_request_in_one_line(live_url):
    token = encode_state(one_ball(1000))
    status, answer = post(live_url, json.dumps({"s": token, "control": "lr-slider", "value": -1.5}).encode())
    assert status == 200 and answer["hyper"] == {"lr": 0.0316, "momentum": 0.9} and len(answer["x"]) == 1001
    ex, ey = ball_path(one_ball(1000, lr=0.0316))
    assert same_path(answer["x"], ex) and same_path(answer["y"], ey)
    bad = {
        "steps over the cap": {"state": {**one_ball(), "steps": 10**7}},
        "unknown landscape": {"state": {**one_ball(), "landscape": "nope"}},
        "undefined formula": {"state": {**one_ball(), "landscape": "log(-1 - x**2)"}},
        "huge dimension": {"state": {**one_ball(), "landscape": "sphere", "params": {"dim": 1e7}}},
        "start off the map": {"state": {**one_ball(), "start": [1e9, 0]}},
        "bad token": {"s": "not a token"},
        "momentum out of range": {"s": token, "control": "momentum-slider", "value": 1.5},
        "unknown control": {"s": token, "control": "steps-input", "value": 5},
        "a list": [1, 2],
    }
    for name, body in bad.items():
        status, answer = post(live_url, json.dumps(body).encode())
        assert status == 400 and set(answer) == {"error"}, (name, status, answer)
        assert answer["error"].startswith("invalid ") and "\n" not in answer["error"], (name, answer)
    for raw in (b"", b"NaN", b"[" * 100_000, b"{" * 10, b'{"s": "' + b"x" * 70_000 + b'"}'):
        status, answer = post(live_url, raw)
        assert status == 400 and "\n" not in answer["error"], (raw[:20], status, answer)


def test_a_drag_back_to_where_it_began_leaves_the_map_as_it_was(live_page, live_url):
    """Dragged away and back to the lr it began at (the state does not change, so no new run comes):
    on release the map's ball path and trail are the page's run again, not the last live path."""
    open_state(live_page, live_url, one_ball(1000))
    paths = """() => { const gd = document.querySelector('#map-graph .js-plotly-plot'), m = gd.layout.meta;
      const d = (i) => window.descentLive.digest(gd.data[i].x, gd.data[i].y);
      return [d(m.ghost[0]), d(m.trail[0])]; }"""
    before = live_page.evaluate(paths)
    box = live_page.locator("#lr-slider [role=slider]").bounding_box()
    x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    live_page.mouse.move(x0, y0)
    live_page.mouse.down()
    live_page.mouse.move(x0 - 40, y0, steps=8)
    live_page.wait_for_function("() => window.descentLive.drag && window.descentLive.drag.drawn > 0")
    assert live_page.evaluate(paths) != before
    live_page.mouse.move(x0, y0, steps=8)
    live_page.mouse.up()
    live_page.wait_for_function("(b) => JSON.stringify((" + paths + ")()) === JSON.stringify(b)", arg=before)
