"""Maps of outcomes (issue 11, item 3): the "Maps" mode draws the basin map and the phase map beside the
contour map, each computed by the engine (`descent.arena.maps`); a click on a phase cell sets the
ball's lr and momentum to that cell's, a click on a basin cell drops the ball at that cell's start
(both `maps.cell_to_state`, compared here in Python). The time from pressing Maps to both 200 x 200
maps of 1000 steps drawn is printed (target: 1 s with a warm kernel). Screenshots in artifacts/arena/."""

from __future__ import annotations

import time

import pytest

from descent.arena import maps
from descent.arena.state import default_state, normalize
from tests.arena.arena_page import ArenaPage

pytestmark = pytest.mark.browser

ANY_DRAWN_JS = """(args) => { const [kind, old] = args;
  const gd = document.querySelector('#' + kind + '-graph .js-plotly-plot');
  return gd && gd.layout && gd.layout.meta && gd.layout.meta.kind === kind && gd.layout.meta.key !== old
    && gd.querySelector('.hm image, .heatmaplayer image') !== null; }"""

CELL_PIXEL_JS = """(args) => { const [kind, x, y] = args;
  const gd = document.querySelector('#' + kind + '-graph .js-plotly-plot');
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const fl = gd._fullLayout;
  return [box.left + fl.xaxis.d2p(x), box.top + fl.yaxis.d2p(y)]; }"""


@pytest.fixture()
def arena(page, arena_url) -> ArenaPage:
    return ArenaPage(page, arena_url)


def _shown_key(arena: ArenaPage, kind: str) -> str | None:
    return arena.page.evaluate(
        """(kind) => { const gd = document.querySelector('#' + kind + '-graph .js-plotly-plot');
                       return gd && gd.layout && gd.layout.meta ? gd.layout.meta.key || null : null; }""",
        kind,
    )


def _wait_map(arena: ArenaPage, kind: str, old: str | None) -> str:
    arena.page.wait_for_function(ANY_DRAWN_JS, arg=[kind, old], timeout=60_000)
    return _shown_key(arena, kind)


def _click_cell(arena: ArenaPage, made, i: int, j: int, state: dict) -> tuple[dict, dict]:
    """Click cell [i, j] of the map ``made`` on the page: (the page's new state, cell_to_state's)."""
    if made.kind == "basin":
        x, y = float(made.x[j]), float(made.y[i])
    else:
        x, y = float(made.lr[j]), float(made.second[i])
    px, py = arena.page.evaluate(CELL_PIXEL_JS, [made.kind, x, y])
    run = arena.run_id()
    arena.page.mouse.click(px, py)
    arena.wait_new_run(run)
    shared = arena.shared_state()
    # a cell is ~1.5 px on the page: the cell hit may be a neighbour; the page must run exactly its state
    near = [maps.cell_to_state(made, i + di, j + dj, state) for di in (0, -1, 1) for dj in (0, -1, 1)]
    return shared, next((cell for cell in near if cell == shared), near[0])


def test_maps_drawn_and_clicked(arena, artifacts):
    state = normalize({**default_state(), "steps": 1000})
    # a warm kernel: the maps' kernel (this landscape and rule) compiled or loaded once, on a tiny grid
    maps.basin_map(state, 4, steps=5)
    maps.phase_map(state, 4, steps=5)
    arena.show(state)
    arena.page.wait_for_timeout(300)
    began = time.perf_counter()
    arena.page.get_by_role("button", name="Maps", exact=True).click()
    basin_key = _wait_map(arena, "basin", None)
    _wait_map(arena, "phase", None)
    seconds = time.perf_counter() - began
    print(f"\npressing Maps to both 200 x 200 x 1000-step maps drawn: {seconds:.2f} s")
    print("basin:", arena.page.inner_text("#basin-status"))
    print("phase:", arena.page.inner_text("#phase-status"))
    arena.shot(artifacts / "page-maps-double-well.png")
    assert arena.page.is_visible("#map-graph")  # beside the contour map
    for kind in ("basin", "phase"):
        meta = arena.page.evaluate(
            "(k) => document.querySelector('#' + k + '-graph .js-plotly-plot').layout.meta", kind
        )
        assert (meta["n"], meta["steps"]) == (200, 1000), meta
    assert "200×200 cells × 1000 steps" in arena.page.inner_text("#basin-status")
    legend = arena.page.inner_text("#basin-legend")
    assert "minimum:left (local)" in legend and "minimum:right (global)" in legend, legend

    # a phase cell: the ball's lr and momentum become the cell's
    phase = maps.phase_map(state, 200)
    i, j = 120, 60
    shared, expected = _click_cell(arena, phase, i, j, state)
    assert shared == expected
    lr, momentum = (expected["racers"][0]["hyper"][name] for name in ("lr", "momentum"))
    assert any(lr == float(f"{v:.4g}") for v in phase.lr[j - 1 : j + 2])  # as the tooltip shows it
    assert any(momentum == float(f"{v:.4g}") for v in phase.second[i - 1 : i + 2])
    assert arena.page.input_value("#lr-input") == f"{lr:g}"  # the box shows the value run, whole
    assert arena.page.input_value("#momentum-input") == f"{momentum:g}"

    # the maps follow the new setting; a basin cell then drops the ball at its start
    basin_key = _wait_map(arena, "basin", basin_key)
    state = expected
    basin = maps.basin_map(state, 200)
    i, j = 150, 40
    shared, expected = _click_cell(arena, basin, i, j, state)
    assert shared == expected
    assert shared["start"][0] in basin.x[j - 1 : j + 2] and shared["start"][1] in basin.y[i - 1 : i + 2]
    arena.shot(artifacts / "page-maps-after-clicks.png")
    arena.page.get_by_role("button", name="Player", exact=True).click()


@pytest.mark.parametrize("width", [1400, 1100])
def test_the_map_titles_fit_their_plots_and_a_phase_tooltip_says_what_a_click_runs(arena, artifacts, width):
    arena.page.set_viewport_size({"width": width, "height": 900})
    try:
        state = normalize({**default_state(), "steps": 300})
        arena.show(state)
        arena.page.get_by_role("button", name="Maps", exact=True).click()
        for kind in ("basin", "phase"):
            _wait_map(arena, kind, None)
            boxes = arena.page.evaluate(
                """(k) => { const gd = document.querySelector('#' + k + '-graph .js-plotly-plot');
                            const r = (e) => { const b = e.getBoundingClientRect();
                                               return [b.left, b.top, b.right, b.bottom]; };
                            return {title: r(gd.querySelector('.gtitle')),
                                    plot: r(gd.querySelector('.main-svg')),
                                    hover: gd.data[0].hovertemplate}; }""",
                kind,
            )
            (tl, _, tr, _), (pl, _, pr, _) = boxes["title"], boxes["plot"]
            assert pl <= tl and tr <= pr, (kind, width, boxes)  # the title lies inside the plot's width
            if kind == "phase":
                assert "click: runs the values shown (4 digits" in boxes["hover"], boxes["hover"]
        arena.shot(artifacts / f"page-maps-titles-{width}.png")
    finally:
        arena.page.get_by_role("button", name="Player", exact=True).click()
        arena.page.set_viewport_size({"width": 1600, "height": 1250})
