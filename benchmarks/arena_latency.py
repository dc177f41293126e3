"""The Arena in the browser: time from a slider change to the redrawn trajectory, and the frame rate
of a 1000-ball swarm played back.

Serves the Arena from this process (a thread on a free loopback port) and drives Debian's Chromium
through Playwright (``/usr/bin/chromium``, headless, software rendering: no GPU).

Latency: one ball, 1000 steps. Each trial presses the right-arrow key on the focused learning-rate
slider (a new lr every time, so nothing is cached) and measures, on the page's clock, from the key
press to the first animation frame at which the map shows the new run (the player's `stats.drawn`:
the frame in which it draws the run, in the map's figure or, while it plays, on its canvas over the
map). The server's share (the run through `run_spec`, the readouts and the figures) is timed
separately in-process for the same specs. Targets: median under 150 ms.

Frame rate: 1000 balls under gradient noise, 1000 steps (200 recorded frames), played at 250
steps/s; frames counted by the player's requestAnimationFrame loop. Target: at least 30 frames/s.

    .venv/bin/python benchmarks/arena_latency.py --trials 15 --write   # updates BENCHMARKS.md "## Arena"
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import platform
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
try:
    import descent  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))

from descent.arena import create_app  # noqa: E402
from descent.arena.state import default_state, normalize, state_url  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LATENCY_TARGET_MS = 150.0
FPS_TARGET = 30.0


def one_ball_state(steps: int = 1000) -> dict:
    state = default_state()
    state["steps"] = steps
    return normalize(state)


def swarm_state(n: int = 1000, steps: int = 1000) -> dict:
    state = default_state()
    state["steps"] = steps
    state["swarm"].update(on=True, n=n, noise="gradient", level=1.5, spread="random")
    return normalize(state)


def serve() -> tuple[str, object]:
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, create_app().server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/", server


WAIT_RUN = """(prev) => window.descentArena && window.descentArena.anim
  && window.descentArena.anim.run !== prev
  && window.descentArena.stats.drawn[window.descentArena.anim.run] !== undefined"""


def measure_latency(page, url: str, trials: int) -> list[float]:
    page.goto(url + state_url(one_ball_state()))
    page.wait_for_function(WAIT_RUN, arg=None, timeout=120_000)
    page.evaluate("""() => document.addEventListener('keydown', () => { window.__t0 = performance.now(); },
                                                     {capture: true})""")
    thumb = page.locator("#lr-slider [role=slider]")
    out = []
    for _ in range(trials + 1):  # the first trial warms the server's code paths up
        run = page.evaluate("() => window.descentArena.anim.run")
        thumb.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(WAIT_RUN, arg=run, timeout=60_000)
        out.append(
            page.evaluate("() => window.descentArena.stats.drawn[window.descentArena.anim.run] - __t0")
        )
        page.wait_for_function(
            "() => document.getElementById('player-status').dataset.state === 'finished'", timeout=60_000
        )
    return out[1:]


def server_share(trials: int) -> dict[str, list[float]]:
    """The server's part for the same kind of change, in ms per trial, and its breakdown:

    - ``server``: the runner callback's work, uncached (`run_views`: run_spec + readouts + figures);
    - ``engine``: `run_spec` of the ball's spec as the Arena builds it (with the ``update_parts`` probe
      its arrows read), and ``engine_no_probe``: the same spec without the probe (the probe's cost is
      the difference);
    - ``arena``: the Arena's own work on the finished run (readouts, figures, the player's data and the
      arrows of the later callback), with the trajectory cached.
    """
    from descent.arena.callbacks import run_views
    from descent.arena.runner import get_landscape, run_state
    from descent.arena.state import state_specs
    from descent.arena.views import build_arrows, build_views
    from descent.spec import run_spec

    state = one_ball_state()
    landscape = get_landscape(state["landscape"], state["params"])
    out: dict[str, list[float]] = {"server": [], "engine": [], "engine_no_probe": [], "arena": []}

    def timed(key: str, work, *args, **kwargs) -> object:
        start = time.perf_counter()
        result = work(*args, **kwargs)
        out[key].append(1000 * (time.perf_counter() - start))
        return result

    def arena_work(run) -> None:
        build_views(run, "bench", ghost=True)
        build_arrows(run, "bench")

    for k in range(trials):
        state["racers"][0]["hyper"]["lr"] = round(0.02 * (1 + 0.003 * (k + 1)), 6)
        result = timed("server", run_views, state, 0, ["ghost", "autoplay"])
        assert "views" in result, result
        (spec,) = state_specs(state, [-1.7, 0.0])
        timed("engine", run_spec, spec, landscape=landscape)
        timed("engine_no_probe", run_spec, spec.with_(probes=[]), landscape=landscape)
        timed("arena", arena_work, run_state(state))  # the run is cached by run_views
    return out


def measure_fps(page, url: str, plays: int) -> list[float]:
    page.goto(url + state_url(swarm_state()))
    page.wait_for_function(WAIT_RUN, arg=None, timeout=180_000)
    out = []
    for _ in range(plays):
        page.wait_for_function(
            "() => document.getElementById('player-status').dataset.state === 'finished'", timeout=120_000
        )
        before = page.evaluate("() => window.descentArena.stats.plays")
        page.click("#play-button")
        page.wait_for_function("(n) => window.descentArena.stats.plays > n", arg=before)
        page.wait_for_function(
            "() => document.getElementById('player-status').dataset.state === 'finished'", timeout=120_000
        )
        frames = page.evaluate("() => window.descentArena.stats.frames")
        out.append((len(frames) - 1) / ((frames[-1] - frames[0]) / 1000))
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(values),
        "p10": ordered[len(ordered) // 10],
        "p90": ordered[min(len(ordered) - 1, (9 * len(ordered)) // 10)],
        "min": ordered[0],
        "max": ordered[-1],
    }


def write_section(text: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace (or append) the "## Arena" section of BENCHMARKS.md, leaving the others alone."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Arena\n.*?(?=^## |\Z)", re.S | re.M)
    text = text.rstrip("\n") + "\n\n"
    new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    new = new.rstrip("\n") + "\n"
    path.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--plays", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    parser.add_argument("--write", action="store_true", help="write the numbers into BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from playwright.sync_api import sync_playwright

    url, server = serve()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1250})
            latency = measure_latency(page, url, args.trials)
            fps = measure_fps(page, url, args.plays)
            browser.close()
    finally:
        server.shutdown()
    shares = server_share(args.trials)
    lat, srv, rate = summary(latency), summary(shares["server"]), summary(fps)
    engine, bare, arena = (summary(shares[k]) for k in ("engine", "engine_no_probe", "arena"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"latency slider -> redrawn trajectory (1 ball, 1000 steps): median {lat['median']:.0f} ms "
        f"(p10 {lat['p10']:.0f}, p90 {lat['p90']:.0f}; target < {LATENCY_TARGET_MS:.0f})"
    )
    print(f"  of which the server (run_spec + readouts + figures): median {srv['median']:.0f} ms")
    print(
        f"    engine, run_spec of the Arena's spec: median {engine['median']:.0f} ms "
        f"(p10 {engine['p10']:.0f}, p90 {engine['p90']:.0f}); without the update_parts probe "
        f"{bare['median']:.0f} ms (the probe: {engine['median'] - bare['median']:.0f} ms)"
    )
    print(
        f"    Arena (readouts, figures, player data, arrows): median {arena['median']:.1f} ms "
        f"(p10 {arena['p10']:.1f}, p90 {arena['p90']:.1f})"
    )
    print(
        f"frame rate, 1000-ball swarm: median {rate['median']:.1f} fps over {len(fps)} plays "
        f"(min {rate['min']:.1f}; target >= {FPS_TARGET:.0f})"
    )
    if args.write:
        chromium = os.popen(f"{CHROMIUM} --version 2>/dev/null").read().strip().splitlines()
        browser = chromium[-1] if chromium else "chromium"

        def row(name: str, stats: dict, target: str, met: str, digits: int = 0) -> str:
            cells = [f"{stats[k]:.{digits}f}" for k in ("median", "p10", "p90")]
            return f"| {name} | {' | '.join(cells)} | {target} | {met} |"

        lines = [
            "## Arena",
            "",
            f"`benchmarks/arena_latency.py` ({_dt.date.today().isoformat()}; {platform.machine()}, "
            f"{os.cpu_count()} CPU cores, load average {load:.1f} while measuring; {browser} headless with "
            f"software rendering; torch {torch.__version__}, {args.threads} thread(s) in the server).",
            "",
            "| measure | median | p10 | p90 | target | met |",
            "|---|---|---|---|---|---|",
            row(
                "slider change -> redrawn trajectory, 1 ball, 1000 steps (ms)",
                lat,
                f"< {LATENCY_TARGET_MS:.0f}",
                "yes" if lat["median"] < LATENCY_TARGET_MS else "no",
            ),
            row("of which the server: run_spec + readouts + figures (ms)", srv, "", ""),
            row("of which the engine: run_spec with the update_parts probe (ms)", engine, "", ""),
            row("the engine without the probe (ms)", bare, "", ""),
            row("the Arena: readouts, figures, player data, arrows (ms)", arena, "", "", 1),
            row(
                "playback of a 1000-ball swarm (frames/s)",
                rate,
                f">= {FPS_TARGET:.0f}",
                "yes" if rate["median"] >= FPS_TARGET else "no",
                1,
            ),
            "",
            f"Latency: {args.trials} trials, each a right-arrow key on the focused lr slider (a new lr, "
            "nothing cached), timed on the page's clock from the key press to the first animation frame that "
            "shows the new run on the map (one request: the server sends the player's data and no new map "
            "figure when only the run changed; the player draws the run's first frame on its canvas and puts "
            "the run into the figure in the next task). Frame rate: the player's requestAnimationFrame loop "
            "while a 1000-ball swarm (1000 steps, 200 recorded frames) plays at 250 steps/s, "
            f"{len(fps)} plays. The balls are drawn on a canvas over the map; the 3-D view and the histogram "
            "are restyled on a time budget.",
            "",
        ]
        text = "\n".join(lines)
        write_section(text)
        print("wrote the Arena section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
