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

Load (``--load``): the production server (``descent arena``: waitress, in its own process, timed by
its WSGI middleware from a request's arrival to its last byte, ``DESCENT_ARENA_TIMINGS``) gets the
request a browser sends for Reset Ball from 16 clients at once, each with its own start (so no cache
answers); the slowest of the server's 16 answers must be under 1 s. ``--hostile`` sends the worst links
(huge dimensions and sizes, 30 different 5000-ball swarms, a slow landscape's swarm) and reports the
server's resident memory and its slowest answer.

Live (``--live``): while the lr slider is dragged the page redraws the ball's path (assets/live.js,
POST /api/ball) against the production server in its own process. Each 2 s drag holds the mouse
down and moves it, a move due every 10 ms: redraws per second (distinct paths drawn before release,
over 2 s) and, for each drawn path, the time on the page's clock from the slider change it is for
(the pointer event) to the frame that shows it. Then single changes: the mouse held, the thumb moved
one step at a time, each time waiting for its path. Targets: 20 or more redraws a second, slider
change to first frame under 50 ms median.

    .venv/bin/python benchmarks/arena_latency.py --trials 15 --write   # updates BENCHMARKS.md "## Arena"
    .venv/bin/python benchmarks/arena_latency.py --live                # dragging: redraws/s, latency
    .venv/bin/python benchmarks/arena_latency.py --load 16 --hostile   # the server only, no browser
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import json
import logging
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
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
LIVE_RATE_TARGET = 20.0  # redraws a second while dragging
LIVE_LATENCY_TARGET_MS = 50.0  # slider change -> first frame with its path, median


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


# --- the production server under load ------------------------------------------------------------------
LOAD_TARGET_S = 1.0


class ProductionServer:
    """``descent arena`` (waitress) in its own process on a free loopback port, its requests timed by
    the WSGI middleware into a file; ``rss_mb()`` reads its resident memory from /proc."""

    def __init__(self, threads: int = 2) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.timings = Path(tempfile.mkdtemp(prefix="arena-timings-")) / "timings.jsonl"
        env = {**os.environ, "DESCENT_ARENA_TIMINGS": str(self.timings), "PYTHONPATH": str(ROOT / "src")}
        command = "from descent.cli import main; main()"
        args = ["arena", "--port", str(self.port), "--threads", str(threads)]
        self.process = subprocess.Popen(
            [sys.executable, "-c", command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    out = self.process.stdout.read().decode() if self.process.stdout else ""
                    raise RuntimeError(f"the Arena server did not start: {out[-2000:]}") from None
                time.sleep(0.2)
        self.callbacks = callback_inputs()

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            line = next(line for line in status if line.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system, all its threads), from /proc."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_records(self, count: int, timeout: float = 10) -> list[dict]:
        """The records once there are ``count`` (a request's is written just after its last byte)."""
        deadline = time.monotonic() + timeout
        while len(records := self.records()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return records

    def records(self) -> list[dict]:
        if not self.timings.exists():
            return []
        return [json.loads(line) for line in self.timings.read_text().splitlines() if line.strip()]

    def post(self, body: dict, timeout: float = 120) -> tuple[int, dict, float]:
        """POST one callback request: (HTTP status, the JSON answer or {}, seconds round trip)."""
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + "_dash-update-component", data=data, headers={"Content-Type": "application/json"}
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                text = answer.read()
                status = answer.status
        except urllib.error.HTTPError as error:
            return error.code, {}, time.perf_counter() - start
        seconds = time.perf_counter() - start
        return status, (json.loads(text) if text.strip() else {}), seconds

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if self.process.stdout:
            self.process.stdout.close()


def callback_inputs() -> dict:
    """The page's main callback as Dash's callback map has it (its output key, outputs, inputs,
    states): what a browser's request names."""
    callback_map = create_app().callback_map
    key = next(k for k in callback_map if "state-store.data" in k)
    entry = callback_map[key]
    outputs = []
    for part in key.strip(".").split("..."):
        ident, _, prop = part.rpartition(".")
        outputs.append({"id": ident, "property": prop})
    return {"output": key, "outputs": outputs, "inputs": entry["inputs"], "state": entry["state"]}


def update_request(callbacks: dict, changed: str, values: dict[str, object]) -> dict:
    """The body a browser posts when ``changed`` ("reset-ball.n_clicks", "url.search") fires the page's
    main callback; ``values``: "id.property" -> value (others None; pattern inputs: no components)."""

    def entry(item: dict) -> object:
        if item["id"].startswith("{"):
            return []  # a pattern-matching input (ALL) with no components
        name = f"{item['id']}.{item['property']}"
        return {"id": item["id"], "property": item["property"], "value": values.get(name)}

    return {
        "output": callbacks["output"],
        "outputs": callbacks["outputs"],
        "inputs": [entry(i) for i in callbacks["inputs"]],
        "changedPropIds": [changed],
        "state": [entry(i) for i in callbacks["state"]],
    }


def answer_part(answer: dict, ident: str, prop: str) -> object:
    return answer.get("response", {}).get(ident, {}).get(prop)


def reset_ball_bodies(callbacks: dict, count: int, steps: int | None = None) -> list[dict]:
    """``count`` Reset Ball requests, each for the default ball (its 2000 steps unless ``steps``) from
    its own start (no cache answers)."""
    bodies = []
    for k in range(count):
        state = default_state()
        state.update(
            steps=steps or state["steps"],
            start=[round(-1.8 + 0.2 * (k % 8), 3), round(-1.2 + 0.3 * (k // 8), 3)],
        )
        values = {
            "state-store.data": normalize(state),
            "reset-ball.n_clicks": 1,
            "view-options.value": ["ghost"],
        }
        bodies.append(update_request(callbacks, "reset-ball.n_clicks", values))
    return bodies


def concurrent_posts(server: ProductionServer, bodies: list[dict]) -> list[tuple[int, dict, float]]:
    """Post ``bodies`` from as many threads at once (released together by a barrier)."""
    results: list = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def client(index: int) -> None:
        barrier.wait()
        results[index] = server.post(bodies[index])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def measure_load(server: ProductionServer, clients: int = 16, rounds: int = 3) -> dict:
    """``rounds`` bursts of ``clients`` Reset Ball requests at once (new starts each round): the
    server's slowest answer (middleware, arrival to last byte), the clients' slowest round trip, and
    whether every request got its own run."""
    server.post(reset_ball_bodies(server.callbacks, 1)[0])  # the kernels load once per process
    slowest, trips, distinct = [], [], True
    for r in range(rounds):
        bodies = reset_ball_bodies(server.callbacks, clients)
        for body in bodies:  # a new start each round
            state = body["state"][0]["value"]
            state["start"] = [state["start"][0] + 0.01 * (r + 1), state["start"][1]]
        before = len(server.records())
        results = concurrent_posts(server, bodies)
        records = [
            x
            for x in server.wait_records(before + clients)[before:]
            if x["path"].endswith("_dash-update-component")
        ]
        runs = {(answer_part(a, "anim-store", "data") or {}).get("run") for _, a, _ in results}
        distinct &= all(s == 200 for s, _, _ in results) and len(runs - {None}) == clients
        slowest.append(max(x["seconds"] for x in records))
        trips.append(max(t for _, _, t in results))
    return {"server_max_s": max(slowest), "rounds": slowest, "client_max_s": max(trips), "distinct": distinct}


def link(state_change: dict | None = None, raw: str | None = None) -> str:
    """A ``?s=`` link: the default state with ``state_change``, or ``raw`` JSON text as it is."""
    if raw is None:
        state = default_state()
        state.update(state_change or {})
        raw = json.dumps(state)
    return "?s=" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


#: the links that once cost the most memory or time (name -> link)
WORST_LINKS = {
    "sphere dim=1e7": link({"landscape": "sphere", "params": {"dim": 1e7}}),
    "quadratic dim=6000": link({"landscape": "quadratic", "params": {"dim": 6000}}),
    "sharp-flat-risk size=1e9": link({"landscape": "sharp-flat-risk", "params": {"size": 1e9}}),
    "logistic-risk swarm 5000 x 1000": link(
        raw='{"v":1,"landscape":"logistic-risk","steps":1000,"swarm":{"on":true,"n":5000,"spread":"random"}}'
    ),
    "logistic-risk race 6 x 5000": link(
        {
            "landscape": "logistic-risk",
            "steps": 5000,
            "racers": [{"optimizer": o, "hyper": {"lr": 0.5}} for o in ("gd", "momentum", "nesterov")]
            + [{"optimizer": o, "hyper": {"lr": 0.05}} for o in ("adam", "rmsprop", "adagrad")],
        }
    ),
    **{
        f"5000-ball swarm, seed {k}": link(
            raw=f'{{"v":1,"steps":1000,"seed":{k},"swarm":{{"on":true,"n":5000,"spread":"random"}}}}'
        )
        for k in range(30)
    },
}


def wait_idle(server: ProductionServer, quiet: float = 1.0, timeout: float = 180.0) -> None:
    """Until the server's CPU time stops growing for ``quiet`` seconds (a kernel compiling on a thread
    keeps it growing), at most ``timeout`` seconds."""
    end, last, since = time.perf_counter() + timeout, server.cpu_seconds(), time.perf_counter()
    while time.perf_counter() < end:
        time.sleep(0.2)
        now = server.cpu_seconds()
        if now > last + 0.02:
            last, since = now, time.perf_counter()
        elif time.perf_counter() - since >= quiet:
            return


def measure_hostile(server: ProductionServer, links: dict[str, str] | None = None) -> dict:
    """Open each worst link (the request a browser sends when it loads it) one after the other: the
    server's memory before and at its highest (sampled every 10 ms while the links are answered), and
    for each link its answer's time (middleware: from arrival to last byte) and the CPU time the server
    spent on it (what a shared machine does not inflate)."""
    links = WORST_LINKS if links is None else links
    server.post(update_request(server.callbacks, "url.search", {"url.search": ""}))  # warm
    # the swarms' kernel too (a swarm outside the measured set), and its compile finished: a fresh
    # server compiles it once, in the background (its own fixed cost, not a link's), and a busy machine
    # stretches that compile over the links, which then run on torch meanwhile and hold more memory
    warm_swarm = link(raw='{"v":1,"steps":1000,"seed":1000,"swarm":{"on":true,"n":5000,"spread":"random"}}')
    server.post(update_request(server.callbacks, "url.search", {"url.search": warm_swarm}))
    wait_idle(server)
    before = server.rss_mb()
    samples = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            samples.append(server.rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    answers = {}
    try:
        for name, search in links.items():
            start, cpu = len(server.records()), server.cpu_seconds()
            body = update_request(server.callbacks, "url.search", {"url.search": search})
            status, answer, _ = server.post(body)
            seconds = max(x["seconds"] for x in server.wait_records(start + 1)[start:])
            cpu = server.cpu_seconds() - cpu
            message = (answer_part(answer, "input-message", "children") or "") + (
                answer_part(answer, "run-message", "children") or ""
            )
            answers[name] = {"status": status, "seconds": seconds, "cpu_seconds": cpu, "message": message}
    finally:
        done.set()
        sampler.join()
    samples.append(server.rss_mb())
    return {"rss_before_mb": before, "rss_peak_mb": max(samples), "answers": answers}


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


# --- live while dragging ---------------------------------------------------------------------------------
LIVE_DRAWS = """(since) => (window.__liveDraws || []).filter(d => d.drawn >= since)
  .map(d => ({value: d.value, digest: d.digest, latency: d.latency, serverMs: d.serverMs}))"""
LIVE_QUIET = """() => !window.descentLive || (window.descentLive.inFlight.length === 0 &&
  !window.descentLive.busy && !window.descentLive.pending && !window.descentLive.queued)"""


def live_drag(
    page,
    dx: float,
    seconds: float = 2.0,
    every: float = 0.01,
    slider: str = "lr-slider",
    read: str = LIVE_DRAWS,
) -> tuple[object, int]:
    """One drag of ``slider`` by ``dx`` px over ``seconds``, a move due every ``every`` s (those that
    fell due while the browser took the last ones are sent together, each to its own place); then,
    the mouse still held and the answers in flight landed, ``read(since)`` evaluated in the page
    (default: the paths drawn since the drag began), and the moves made."""
    box = page.locator(f"#{slider} [role=slider]").bounding_box()
    x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x0, y0)
    since = page.evaluate("() => performance.now()")
    page.mouse.down()
    start, moves = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        # every move that is due by now, each at its own place on the way (one call to the browser:
        # while the browser is busy the moves wait for it, none is dropped)
        due = min(int(elapsed / every) + 1, int(seconds / every)) - moves
        if due > 0:
            target = x0 + dx * min(1.0, (moves + due) * every / seconds)
            page.mouse.move(target, y0, steps=due)
            moves += due
        wait = start + moves * every - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    page.mouse.move(x0 + dx, y0)
    page.wait_for_timeout(100)
    page.wait_for_function(LIVE_QUIET, timeout=5_000)
    result = page.evaluate(read, since)
    page.mouse.up()
    return result, moves


def live_steps(page, changes: int) -> list[float]:
    """The mouse held on the lr slider's thumb, moved 3 px at a time (about 6 slider steps: a new
    value each time; back and forth every 20), each time waiting until its path is drawn: the
    latency of each change (ms, page clock)."""
    box = page.locator("#lr-slider [role=slider]").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    out = []
    for k in range(changes):
        count = page.evaluate("() => window.__liveDraws.length")
        x += -3 if (k // 20) % 2 == 0 else 3
        page.mouse.move(x, y)
        page.wait_for_function("(n) => window.__liveDraws.length > n", arg=count, timeout=30_000)
        page.wait_for_function(LIVE_QUIET, timeout=30_000)
        out.append(page.evaluate("() => window.__liveDraws[window.__liveDraws.length - 1].latency"))
    page.mouse.up()
    return out


def measure_live(drags: int, changes: int, server_threads: int = 2) -> dict:
    """``drags`` 2 s drags of the lr slider (1 ball, 1000 steps) against the production server, and
    ``changes`` single changes: redraws a second, and slider change -> drawn path (ms)."""
    from playwright.sync_api import sync_playwright

    server = ProductionServer(threads=server_threads)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1250})
            page.goto(server.url + state_url(one_ball_state()))
            page.wait_for_function(WAIT_RUN, arg=None, timeout=120_000)
            finished = "() => document.getElementById('player-status').dataset.state === 'finished'"
            page.wait_for_function(finished, timeout=60_000)
            live_drag(page, -20, seconds=0.5)  # warm: the kernel loads once per server process
            page.wait_for_function(finished, timeout=60_000)
            single = live_steps(page, changes)  # from about lr 0.016: 60 px left and back
            rates, drag_latency, moves = [], [], []
            for k in range(drags):
                page.wait_for_function(finished, timeout=60_000)
                draws, made = live_drag(page, -110 if k % 2 == 0 else 110)
                rates.append(len({d["digest"] for d in draws}) / 2.0)
                drag_latency += [d["latency"] for d in draws]
                moves.append(made)
            browser.close()
    finally:
        server.close()
    return {"rates": rates, "drag_latency": drag_latency, "single": single, "moves": moves}


def live_main(args: argparse.Namespace) -> None:
    live = measure_live(args.drags, args.changes, args.server_threads)
    rate, lat, single = summary(live["rates"]), summary(live["drag_latency"]), summary(live["single"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"live while dragging the lr slider (1 ball, 1000 steps; production server, {args.server_threads} "
        f"threads; load average {load:.1f}):"
    )
    print(
        f"  redraws a second (distinct paths drawn before release / 2 s): median {rate['median']:.1f} "
        f"(min {rate['min']:.1f}, max {rate['max']:.1f}) over {len(live['rates'])} drags of "
        f"{', '.join(str(m) for m in live['moves'])} moves; target >= {LIVE_RATE_TARGET:.0f}"
    )
    print(
        f"  slider change -> first frame with its path, during the drags: median {lat['median']:.0f} ms "
        f"(p10 {lat['p10']:.0f}, p90 {lat['p90']:.0f}) over {len(live['drag_latency'])} paths; "
        f"target < {LIVE_LATENCY_TARGET_MS:.0f}"
    )
    print(
        f"  single changes (one step, then wait): median {single['median']:.0f} ms (p10 {single['p10']:.0f}, "
        f"p90 {single['p90']:.0f}) over {len(live['single'])} changes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--plays", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    parser.add_argument("--write", action="store_true", help="write the numbers into BENCHMARKS.md")
    parser.add_argument(
        "--load", type=int, default=0, help="N clients pressing Reset Ball at once (server only)"
    )
    parser.add_argument(
        "--hostile", action="store_true", help="the worst links: memory and time (server only)"
    )
    parser.add_argument("--server-threads", type=int, default=2, help="waitress threads for --load/--hostile")
    parser.add_argument(
        "--live", action="store_true", help="dragging the lr slider: redraws/s and latency (live.js)"
    )
    parser.add_argument("--drags", type=int, default=5, help="2 s drags for --live")
    parser.add_argument("--changes", type=int, default=40, help="single slider changes for --live")
    args = parser.parse_args()
    if args.live:
        live_main(args)
        return
    if args.load or args.hostile:
        server_only(args)
        return
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


def server_only(args: argparse.Namespace) -> None:
    server = ProductionServer(threads=args.server_threads)
    try:
        if args.load:
            load = measure_load(server, args.load)
            print(
                f"{args.load} clients pressing Reset Ball at once (waitress, {args.server_threads} threads): "
                f"server's slowest answer {load['server_max_s']:.2f} s (rounds: "
                f"{', '.join(f'{s:.2f}' for s in load['rounds'])}; target < {LOAD_TARGET_S:.0f} s), "
                f"clients' slowest round trip {load['client_max_s']:.2f} s; "
                f"every run its own: {load['distinct']}"
            )
        if args.hostile:
            if args.load:  # a fresh server: its memory before is not the load's
                server.close()
                server = ProductionServer(threads=args.server_threads)
            hostile = measure_hostile(server)
            worst = max(hostile["answers"].items(), key=lambda item: item[1]["seconds"])
            busiest = max(hostile["answers"].items(), key=lambda item: item[1]["cpu_seconds"])
            grown = hostile["rss_peak_mb"] - hostile["rss_before_mb"]
            print(
                f"worst links: server RSS {hostile['rss_before_mb']:.0f} MB before, "
                f"{hostile['rss_peak_mb']:.0f} MB at most (+{grown:.0f}); "
                f"slowest answer {worst[1]['seconds']:.2f} s ({worst[0]}); most CPU time "
                f"{busiest[1]['cpu_seconds']:.2f} s ({busiest[0]})"
            )
            for name, answer in hostile["answers"].items():
                print(
                    f"  {name}: HTTP {answer['status']}, {answer['seconds']:.2f} s  {answer['message'][:140]}"
                )
    finally:
        server.close()


if __name__ == "__main__":
    main()
