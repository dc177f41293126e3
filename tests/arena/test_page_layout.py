"""The page's layout (issue 11, item 6) at 1400 x 900, 1100 and 800 px wide: the map is the largest
thing on the page, no legend covers a plot, nothing scrolls sideways, and at 800 px the panels stack
with the map first. Measured from the elements' boxes in Chromium; a screenshot per width in
artifacts/arena/."""

from __future__ import annotations

import pytest

from descent.arena.state import default_state, normalize, state_url
from tests.arena.arena_page import ArenaPage

pytestmark = pytest.mark.browser

SIX = ["momentum", "gd", "nesterov", "adam", "rmsprop", "adagrad"]

MEASURE_JS = """() => {
  const box = (el) => { const r = el.getBoundingClientRect();
                        return {x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height}; };
  const map = box(document.getElementById('map-graph'));
  const mapPlot = box(document.querySelector('#map-graph .nsewdrag'));
  const others = [];
  document.querySelectorAll('.panel, .graph, .player, .outcome, .message').forEach((el) => {
    if (el.id === 'map-graph' || el.offsetParent === null) return;
    others.push({id: el.id || el.className, ...box(el)});
  });
  const legends = [];
  ['map-graph', 'loss-graph', 'energy-graph', 'swarm-graph'].forEach((id) => {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    const plot = gd && gd.querySelector('.nsewdrag');
    if (!plot) return;
    gd.querySelectorAll('g.legend').forEach((lg) => legends.push({id, legend: box(lg), plot: box(plot)}));
  });
  const sidebar = Array.from(document.querySelectorAll('.sidebar .panel')).map(box);
  return {map, mapPlot, others, legends, sidebar, scroll: document.documentElement.scrollWidth,
          width: document.documentElement.clientWidth};
}"""


def _intersect(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and (b["y"] < a["y"] + a["h"])
    )


def _six_racers() -> dict:
    state = normalize(default_state())
    state["racers"] = [{"optimizer": name, "hyper": {"lr": 0.01}} for name in SIX]
    return normalize(state)


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (1100, 900), (800, 900)])
def test_the_map_leads_the_layout(browser, arena_url, artifacts, width, height):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        arena = ArenaPage(page, arena_url)
        arena.open(state_url(_six_racers()))
        page.wait_for_function(
            "() => document.querySelector('#loss-graph .js-plotly-plot .nsewdrag') !== null"
        )
        page.wait_for_timeout(500)
        m = page.evaluate(MEASURE_JS)
        arena.shot(artifacts / f"page-layout-{width}.png")
    finally:
        context.close()
    area = m["map"]["w"] * m["map"]["h"]
    bigger = [o for o in m["others"] if o["w"] * o["h"] >= area]
    assert not bigger, (m["map"], bigger)
    assert m["scroll"] <= m["width"], m  # no horizontal scroll
    assert m["legends"], m
    covering = [lg for lg in m["legends"] if _intersect(lg["legend"], lg["plot"])]
    assert not covering, covering
    map_legend = [lg["legend"] for lg in m["legends"] if lg["id"] == "map-graph"]
    assert all(lg["h"] <= 0.12 * m["map"]["h"] for lg in map_legend), (map_legend, m["map"])
    # the contour itself, not cramped (it was 245 x 200 px with six racers)
    assert m["mapPlot"]["w"] >= 450 and m["mapPlot"]["h"] >= 300, m["mapPlot"]
    if width <= 800:  # stacked: the map comes before every control and every other view
        assert m["map"]["y"] < min(p["y"] for p in m["sidebar"]), m
        assert m["map"]["y"] < 0.5 * height, m["map"]
        views = [o for o in m["others"] if o["id"].startswith(("graph", "panel theory", "panel board"))]
        assert all(m["map"]["y"] < o["y"] for o in views), views
