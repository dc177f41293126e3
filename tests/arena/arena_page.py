"""Helpers that drive the Arena page the way a person does (clicks, typing) and read it back."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

BALL_JS = """() => {
  const gd = document.querySelector('#map-graph .js-plotly-plot');
  const m = gd.layout.meta;
  return m.ball.map(i => [gd.data[i].x[0], gd.data[i].y[0]]);
}"""


class ArenaPage:
    def __init__(self, page, url: str) -> None:
        self.page = page
        self.url = url

    # --- waiting ----------------------------------------------------------------------------
    def run_id(self) -> str | None:
        return self.page.evaluate(
            "() => window.descentArena && window.descentArena.anim ? window.descentArena.anim.run : null"
        )

    def plays(self) -> int:
        return self.page.evaluate("() => (window.descentArena && window.descentArena.stats.plays) || 0")

    def wait_new_run(self, previous: str | None, timeout: float = 60_000) -> str:
        """Wait until a run other than ``previous`` is loaded, drawn and played to its end."""
        self.page.wait_for_function(
            """(prev) => {
              const el = document.getElementById('player-status');
              return window.descentArena && window.descentArena.anim && window.descentArena.anim.run !== prev
                && el && el.dataset.run === window.descentArena.anim.run && el.dataset.state === 'finished';
            }""",
            arg=previous,
            timeout=timeout,
        )
        return self.run_id()

    def wait_played(self, plays_before: int, timeout: float = 60_000) -> None:
        self.page.wait_for_function(
            """(n) => window.descentArena.stats.plays > n &&
                     document.getElementById('player-status').dataset.state === 'finished'""",
            arg=plays_before,
            timeout=timeout,
        )

    def open(self, query: str = "") -> str:
        self.page.goto(self.url + query)
        return self.wait_new_run(None)

    def show(self, state: dict) -> str:
        """Go to ``state`` inside the loaded page, as the browser's back button would (no reload)."""
        from descent.arena.state import normalize, state_url

        if self.page.evaluate("() => !window.descentArena || !window.descentArena.anim"):
            return self.open(state_url(state))
        if self.shared_state() == normalize(state):
            return self.run_id()
        run = self.run_id()
        # a fresh query string each time (dcc.Location only reports a search it has not seen)
        self.page.evaluate(
            """(search) => { window.history.pushState(null, '', window.location.pathname + search
                                                      + '&visit=' + Date.now());
                             window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""",
            state_url(state),
        )
        return self.wait_new_run(run)

    # --- acting -----------------------------------------------------------------------------
    def choose(self, dropdown_id: str, text: str) -> None:
        """Open a Dash dropdown, type to filter and pick the first matching option."""
        self.page.click(f"#{dropdown_id}")
        search = self.page.locator("input.dash-dropdown-search")
        if search.count():
            search.first.fill(text)
        options = self.page.locator("[role=option]")
        # the list re-renders while the filter applies (and shows only part of a long list): read its
        # labels at once and click the match, again until the list holds still
        for _ in range(50):
            labels = [label.strip() for label in options.all_inner_texts()]
            match = next((i for i, x in enumerate(labels) if x == text or x.startswith(text + " —")), None)
            if match is not None:
                try:
                    options.nth(match).click(timeout=2_000)
                    break
                except Exception:  # noqa: BLE001 - the list changed under the click: read it again
                    pass
            self.page.wait_for_timeout(100)
        else:
            raise AssertionError(f"no option {text!r} in #{dropdown_id}")
        self.page.keyboard.press("Escape")

    def set_number(self, input_id: str, value: float) -> None:
        box = self.page.locator(f"#{input_id}")
        box.fill(str(value))
        box.press("Enter")

    def click(self, element_id: str) -> None:
        self.page.click(f"#{element_id}")

    def preset(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()

    def set_speed(self, label: str, steps_per_second: int) -> None:
        if self.page.evaluate("() => window.descentArena.speed") != steps_per_second:
            self.choose("speed-dropdown", label)

    def set_speed_instant(self) -> None:
        self.set_speed("instant", 0)

    # --- reading ----------------------------------------------------------------------------
    def outcome(self) -> str:
        return self.page.inner_text("#outcome-text")

    def balls(self) -> list[list[float]]:
        return self.page.evaluate(BALL_JS)

    def message(self) -> str:
        return self.page.inner_text("#input-message") + self.page.inner_text("#run-message")

    def share_link(self) -> str:
        return self.page.input_value("#share-link")

    def shared_state(self) -> dict:
        token = parse_qs(urlparse(self.share_link()).query)["s"][0]
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))

    def shot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)
