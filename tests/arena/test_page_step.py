"""Step by step, narrated (issue 11, item 4): the "Step by step" mode takes the ball's run one optimizer
step at a time; each step's parts are arrows on the map (their heads chained from w_k to w_k+1) and
the step is told beside it in words and numbers, all equal to `descent.arena.narrate.narrate_step`
(compared here in Python). Screenshots in artifacts/arena/."""

from __future__ import annotations

import math

import pytest

from descent.arena import figures
from descent.arena.narrate import narrate_step
from descent.arena.state import default_state, normalize
from descent.arena.stepmode import ARROW_LABELS, num
from tests.arena.arena_page import ArenaPage

pytestmark = pytest.mark.browser

SHOWN_JS = """() => {
  const gd = document.querySelector('#step-graph .js-plotly-plot');
  return {step: gd && gd.layout.meta ? gd.layout.meta.step : null,
          annotations: gd ? (gd.layout.annotations || []).map((a) => ({name: a.name, x: a.x, y: a.y,
                                                                     ax: a.ax, ay: a.ay})) : [],
          sentences: Array.from(document.querySelectorAll('#step-sentences p')).map((p) => p.innerText),
          theory: Array.from(document.querySelectorAll('#step-theory p')).map((p) => p.innerText),
          number: document.getElementById('step-number').value,
          lr: document.getElementById('step-lr') && document.getElementById('step-lr').dataset.value,
          drawn: !!(gd && gd.querySelector('.annotation'))};
}"""


@pytest.fixture()
def arena(page, arena_url) -> ArenaPage:
    return ArenaPage(page, arena_url)


def _mode(arena: ArenaPage, label: str) -> None:
    arena.page.get_by_role("button", name=label, exact=True).click()


def _wait_step(arena: ArenaPage, k: int) -> dict:
    arena.page.wait_for_function(
        """(k) => { const gd = document.querySelector('#step-graph .js-plotly-plot');
                    return gd && gd.layout && gd.layout.meta && gd.layout.meta.step === k
                      && document.getElementById('step-number').value === String(k)
                      && gd.querySelector('.annotation') !== null; }""",
        arg=k,
    )
    return arena.page.evaluate(SHOWN_JS)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def _check_against_engine(shown: dict, state: dict, k: int) -> None:
    n = narrate_step(state, k)
    assert shown["step"] == k and shown["number"] == str(k)
    assert shown["sentences"] == list(n.sentences), shown["sentences"]
    assert shown["theory"] == list(n.theory_sentences), shown["theory"]
    assert float(shown["lr"]) == n.lr
    # the numbers beside the map: every row's x and y, as shown and exactly (data-value)
    expected = {"before": n.before, "gradient": n.gradient, "update": n.update, "after": n.after}
    expected |= {p.name: p.vector for p in n.parts}
    table = shown["table"]
    for key, vector in expected.items():
        assert key in table, (key, table)
        assert table[key]["text"] == [num(v) for v in vector], (key, table[key], vector)
        assert [float(v) for v in table[key]["values"]] == list(vector), (key, table[key], vector)
    for part in n.parts:
        assert table[part.name]["label"] == part.label
    # the arrows on the map: each of Narration.arrows() with a length, head at origin + vector
    arrows = {name: a for name, a in n.arrows().items() if math.hypot(*a[1]) > 0}
    drawn = {a["name"]: a for a in shown["annotations"]}
    assert set(drawn) == set(arrows), (set(drawn), set(arrows))
    for name, (origin, vector) in arrows.items():
        a = drawn[name]
        assert _same(a["ax"], origin[0]) and _same(a["ay"], origin[1]), (name, a, origin)
        assert _same(a["x"], origin[0] + vector[0]) and _same(a["y"], origin[1] + vector[1]), (name, a)
    # chained head to tail from w_k: the last part's head, and the whole step's, end at w_k+1
    last = [p for p in n.parts if p.name in drawn][-1]
    for name in (last.name, "update"):
        assert _same(drawn[name]["x"], n.after[0]) and _same(drawn[name]["y"], n.after[1]), (name, n.after)


def _read(arena: ArenaPage, k: int) -> dict:
    shown = _wait_step(arena, k)
    shown["table"] = arena.page.evaluate(
        """() => { const rows = {};
                   document.querySelectorAll('#step-numbers tr.step-row').forEach((tr) => {
                     const cells = Array.from(tr.querySelectorAll('td'));
                     rows[tr.dataset.key] = {label: cells[0].innerText.trim(),
                       text: cells.slice(1, 3).map((td) => td.innerText.trim()),
                       values: cells.slice(1, 3).map((td) => td.dataset.value)}; });
                   return rows; }"""
    )
    return shown


def test_three_steps_of_the_default_double_well_with_momentum(arena, artifacts):
    state = normalize(default_state())
    assert state["landscape"] == "double-well" and state["racers"][0]["hyper"]["momentum"] == 0.9
    arena.show(state)
    _mode(arena, "Step by step")
    shown = _read(arena, 0)
    _check_against_engine(shown, state, 0)
    assert arena.page.is_hidden("#map-graph")  # the step's map takes the map's place
    assert arena.page.is_hidden("#player-bar")  # Previous / Next take the steps
    for k in (1, 2, 3):
        arena.click("step-next")
        _wait_step(arena, k)
    shown = _read(arena, 3)
    arena.shot(artifacts / "page-step-double-well-3.png")
    _check_against_engine(shown, state, 3)
    names = {a["name"] for a in shown["annotations"]}
    assert {"force", "inertia", "update"} <= names, names
    assert "still carries 0.9 of last step's velocity" in " ".join(shown["sentences"])
    # Previous goes back one step, and a typed step number goes there
    arena.click("step-prev")
    _check_against_engine(_read(arena, 2), state, 2)
    arena.set_number("step-number", 40)
    _check_against_engine(_read(arena, 40), state, 40)
    # back to the player: the map again
    _mode(arena, "Player")
    arena.page.wait_for_selector("#map-graph", state="visible")
    arena.page.wait_for_selector("#player-bar", state="visible")


def test_adam_names_its_adaptive_part(arena, artifacts):
    state = normalize(default_state())
    state["racers"] = [{"optimizer": "adam", "hyper": {"lr": 0.05}}]
    state = normalize(state)
    arena.show(state)
    _mode(arena, "Step by step")
    _wait_step(arena, arena.page.evaluate("() => Number(document.getElementById('step-number').value)"))
    arena.set_number("step-number", 0)
    _wait_step(arena, 0)
    arena.click("step-next")
    arena.click("step-next")  # two quick clicks add up
    shown = _read(arena, 2)
    arena.shot(artifacts / "page-step-adam-2.png")
    _check_against_engine(shown, state, 2)
    assert shown["table"]["adaptive"]["label"] == "adaptive rescaling"
    assert "effective_lr" in shown["table"] and "scale" in shown["table"]
    assert "adaptive" in {a["name"] for a in shown["annotations"]}
    words = " ".join(shown["sentences"])
    assert "Adam rescales each coordinate" in words and "The adaptive scale changes the plain step" in words
    _mode(arena, "Player")


def test_a_bad_step_number_is_refused_with_the_typed_text_and_the_range(arena, artifacts):
    state = normalize(default_state())
    arena.show(state)
    _mode(arena, "Step by step")
    _wait_step(arena, arena.page.evaluate("() => Number(document.getElementById('step-number').value)"))
    arena.set_number("step-number", 0)
    _wait_step(arena, 0)
    last = int(arena.page.inner_text("#step-of").split()[1])  # "of LAST (steps 0 to LAST ...)"
    box = arena.page.locator("#step-number")
    for typed in ("abc", "", "-1", "999999", "2.5"):
        box.fill(typed)
        box.press("Enter")
        expected = f"invalid step={typed!r}: expected an integer in [0, {last}]"
        try:
            arena.page.wait_for_function(
                "(m) => document.getElementById('step-message').innerText === m", arg=expected, timeout=10_000
            )
        except Exception:
            raise AssertionError((typed, arena.page.inner_text("#step-message"))) from None
        shown = arena.page.evaluate(SHOWN_JS)
        assert shown["step"] == 0 and shown["number"] == typed  # not clamped: the step shown stays
    arena.set_number("step-number", 5)
    _wait_step(arena, 5)
    assert arena.page.inner_text("#step-message") == ""  # the fixed value clears the message
    arena.shot(artifacts / "page-step-bad-number.png")


def test_the_arrows_have_a_key_under_the_map(arena, artifacts):
    state = normalize(default_state())  # momentum: force, inertia and the whole step at step 3
    arena.show(state)
    _mode(arena, "Step by step")
    _wait_step(arena, arena.page.evaluate("() => Number(document.getElementById('step-number').value)"))
    arena.set_number("step-number", 3)
    shown = _wait_step(arena, 3)
    key = arena.page.evaluate(
        """() => Array.from(document.querySelectorAll('#step-key .step-key-entry')).map((e) => ({
                 name: e.dataset.key, text: e.innerText.trim(),
                 colour: getComputedStyle(e.querySelector('.swatch')).backgroundColor}))"""
    )
    drawn = {a["name"] for a in shown["annotations"]}
    assert [k["name"] for k in key] and {k["name"] for k in key} == drawn, (key, drawn)
    arrows = narrate_step(state, 3).arrows()
    for entry in key:
        hex_colour = figures.STEP_COLORS[entry["name"]].lstrip("#")
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (0, 2, 4))
        assert entry["colour"] == f"rgb({rgb[0]}, {rgb[1]}, {rgb[2]})", entry
        assert entry["text"] == ARROW_LABELS[entry["name"]] and entry["name"] in arrows
    plot = arena.page.locator("#step-graph .nsewdrag").first.bounding_box()
    box = arena.page.locator("#step-key").bounding_box()
    assert box["height"] > 0 and box["y"] >= plot["y"] + plot["height"], (box, plot)  # covers no plot
    arena.shot(artifacts / "page-step-key.png")
