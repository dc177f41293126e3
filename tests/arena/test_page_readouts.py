"""The readouts (issue 11): the condition number by the sign of the curvature, one outcome step in the
banner and the leaderboard, a banner that does not tell the end while the ball is at the start, a
progress bar over the whole run, a sorted leaderboard with honest badges, Step = one optimizer step,
and each stability edge labelled with where it is taken. Screenshots in artifacts/arena/."""

from __future__ import annotations

import re

import pytest

from descent.arena.state import PRESETS, default_state, normalize, state_url
from tests.arena.arena_page import ArenaPage

pytestmark = pytest.mark.browser


@pytest.fixture()
def arena(page, arena_url) -> ArenaPage:
    arena = ArenaPage(page, arena_url)
    _autoplay(arena, True)
    arena.show(default_state())
    return arena


def _autoplay(arena: ArenaPage, on: bool) -> None:
    if arena.page.evaluate("() => !window.descentArena || !window.descentArena.anim"):
        return
    if arena.page.evaluate("() => window.descentArena.autoplay") != on:
        arena.page.click("#play-options label")
        arena.page.wait_for_function("(on) => window.descentArena.autoplay === on", arg=on)


def _load_paused(arena: ArenaPage, state: dict) -> str:
    """Go to ``state`` with autoplay off: the player loads the run and stays at step 0."""
    _autoplay(arena, False)
    run = arena.run_id()
    arena.page.evaluate(
        """(search) => { window.history.pushState(null, '', window.location.pathname + search
                                                  + '&visit=' + Date.now());
                         window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""",
        state_url(normalize(state)),
    )
    arena.page.wait_for_function(
        """(prev) => { const a = window.descentArena.anim, el = document.getElementById('player-status');
                       return a && a.run !== prev && el.dataset.run === a.run && el.dataset.state === 'paused'
                         && document.getElementById('theory-eigs').innerText.length > 0; }""",
        arg=run,
    )
    return arena.run_id()


def test_condition_number_on_the_plateau_says_flat_not_negative(arena, artifacts):
    _load_paused(arena, PRESETS["Plateau: crawl"][0])  # the ball at its start on the straight slope
    eigs = arena.page.inner_text("#theory-eigs")
    kappa = arena.page.inner_text("#theory-kappa")
    assert "negative" not in kappa and "∞" not in kappa, kappa
    assert "flat direction" in kappa and "no finite condition number" in kappa, kappa
    assert "flattest 0" in eigs, eigs  # the slope is straight: zero curvature along x
    arena.shot(artifacts / "page-plateau-flat-kappa.png")


def test_the_banner_does_not_tell_the_end_while_the_ball_is_at_the_start(arena, artifacts):
    _load_paused(arena, PRESETS["Plateau: crawl"][0])
    assert arena.page.evaluate("() => window.descentArena.step") == 0
    banner = arena.outcome()
    assert "step 0, on its way" in banner and "final result of the run: minimum:well" in banner, banner
    assert arena.page.evaluate("() => document.getElementById('progress-fill').style.width") == "0%"
    arena.shot(artifacts / "page-banner-at-step-0.png")
    arena.click("play-button")
    arena.page.wait_for_function("document.getElementById('player-status').dataset.state === 'finished'")
    assert "on its way" not in arena.outcome()


def test_the_progress_bar_spans_the_whole_run(arena, artifacts):
    _played(arena, "Plateau: crawl")
    play_end, max_step = arena.page.evaluate(
        "() => [window.descentArena.anim.playEnd, window.descentArena.anim.maxStep]"
    )
    assert play_end < 0.95 * max_step  # the player stops once every ball has settled
    bar = arena.page.locator("#progress-bar").bounding_box()
    fill = arena.page.locator("#progress-fill").bounding_box()
    assert fill["width"] / bar["width"] == pytest.approx(play_end / max_step, abs=0.01)
    assert f"/ {max_step}" in arena.page.inner_text("#frame-text")


def _race_state() -> dict:
    state = normalize(PRESETS["Too large a step"][0])
    state["racers"] = [
        {"optimizer": "gd", "hyper": {"lr": 0.21}},  # diverges
        {"optimizer": "gd", "hyper": {"lr": 0.02}},  # slow
        {"optimizer": "momentum", "hyper": {"lr": 0.05, "momentum": 0.5}},  # fast
        {"optimizer": "gd", "hyper": {"lr": 0.15}},  # fast, rattling
    ]
    return state


def test_the_leaderboard_is_sorted_with_honest_badges_and_one_outcome_step(arena, artifacts):
    arena.set_speed_instant()
    arena.show(_race_state())
    rows = arena.page.locator("#leaderboard-table tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    outcomes = [t.split("\t")[-1] for t in texts]
    assert len(outcomes) == 4, texts
    # minima first, by the step they were reached; the diverged run last
    steps = [int(re.search(r"settled at step (\d+)", o).group(1)) for o in outcomes[:2]]
    assert steps == sorted(steps), outcomes
    assert outcomes[2].startswith("still moving"), outcomes  # gd at lr 0.02 needs more than 300 steps
    assert outcomes[-1].startswith("diverged") and "diverged diverged" not in outcomes[-1], outcomes
    assert [t.split("\t")[0].strip() for t in texts] == ["1", "2", "3", "4"], texts
    badges = arena.page.locator("#leaderboard-table .badge").all_inner_texts()
    assert badges == ["global minimum", "global minimum", "still moving", "diverged"], badges
    # the banner and the leaderboard give the same outcome step for each racer
    banner = arena.outcome()
    for text, outcome in zip(texts, outcomes[:2]):
        label = text.split("\t")[1].strip()
        step = re.search(r"settled at step (\d+)", outcome).group(1)
        assert re.search(re.escape(label) + r":[^\n]*at step " + step + r"\b", banner), (label, banner)
    arena.shot(artifacts / "page-leaderboard-sorted.png")

    arena.show(PRESETS["Saddle"][0])  # both runs escape: no "stable" badge on them
    badges = arena.page.locator("#leaderboard-table .badge").all_inner_texts()
    assert badges == ["escaped", "escaped"], badges
    assert "stable" not in arena.page.inner_text("#leaderboard")


def test_step_moves_one_optimizer_step(arena, artifacts):
    _load_paused(arena, {**default_state(), "seed": 1})  # another state than the one shown
    for expected in (1, 2, 3):
        arena.click("step-button")
        arena.page.wait_for_function("(k) => window.descentArena.step === k", arg=expected)
    shown = arena.page.evaluate("""() => {
      const gd = document.querySelector('#map-graph .js-plotly-plot');
      const ball = gd.data[gd.layout.meta.ball[0]], r = window.descentArena.anim.racers[0];
      return {ball: [ball.x[0], ball.y[0]], frame: [r.x[3], r.y[3]], steps: r.steps.slice(0, 4)};
    }""")
    assert shown["steps"] == [0, 1, 2, 3]
    arena.page.wait_for_function(
        """(p) => { const gd = document.querySelector('#map-graph .js-plotly-plot');
                    const b = gd.data[gd.layout.meta.ball[0]];
                    return b.x[0] === p[0] && b.y[0] === p[1]; }""",
        arg=shown["frame"],
    )
    assert arena.page.inner_text("#frame-text").startswith("step 3 / 2000")
    assert "a frame every" not in arena.page.inner_text("#frame-text")
    arena.shot(artifacts / "page-step-3.png")


def _played(arena: ArenaPage, preset: str) -> None:
    """Click ``preset`` and wait until its run has played to the end (at once)."""
    run = arena.run_id()
    arena.set_speed_instant()
    arena.preset(preset)
    arena.wait_new_run(run)


def test_each_stability_edge_says_where_it_is_taken(arena, artifacts):
    _played(arena, "Plateau: crawl")
    note = arena.page.inner_text("#lr-note")
    panel = arena.page.inner_text("#theory-panel")
    assert "edge at the start: 2(1+β)/λmax = 1" in note, note
    assert "stability edge at the ball's current curvature: 2(1+β)/λmax = 0.5005" in panel, panel
    arena.shot(artifacts / "page-two-edges-labelled.png")


def test_a_saddle_is_never_called_stable_and_kappa_words_follow_the_servers_thresholds(arena, artifacts):
    """At the saddle the lr sentence says the ball is unstable downhill whatever the lr (a new user read
    "stable here, every step shrinks the error" under "a saddle... the ball leaves"); kappa's words are
    those of `descent.arena.readout.KAPPA_WORDS`."""
    from descent.arena.readout import kappa_words

    _load_paused(arena, PRESETS["Saddle"][0])
    lr_words = arena.page.inner_text("#theory-lr")
    assert "unstable along the downhill direction" in lr_words and "stable here" not in lr_words, lr_words
    arena.shot(artifacts / "page-saddle-readouts.png")
    _load_paused(arena, default_state())
    kappa = float(re.sub(r"[^0-9.eE+-]", "", arena.page.inner_text("#theory-kappa")) or "nan")
    words = arena.page.inner_text("#theory-kappa-words")
    assert kappa_words(kappa) in words, (kappa, words)
