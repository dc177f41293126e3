"""The Descent Arena: a Dash page where a ball rolls on a landscape, races other optimizers, swarms at a
temperature and shows the theory at the ball. The simulation runs in Python through `run_spec`; the
browser plays the recorded trajectories back (assets/arena.js).

>>> app = create_app()
>>> app.title
'The Descent Arena'
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dash import Dash

ASSETS = Path(__file__).parent / "assets"
THREADS = 2  # waitress worker threads: a run holds the GIL, so more threads only slow each answer down
TIMINGS_ENV = "DESCENT_ARENA_TIMINGS"  # a file: one JSON line per request (path, seconds from arrival)

__all__ = ["THREADS", "TimingMiddleware", "TrimMiddleware", "create_app", "serve"]


def create_app() -> Dash:
    """A new Dash app with the Arena's layout and callbacks (its Flask server is ``app.server``)."""
    from descent.arena import live
    from descent.arena.callbacks import register
    from descent.arena.layout import create_layout

    app = Dash(
        __name__, title="The Descent Arena", assets_folder=str(ASSETS), update_title=None, serve_locally=True
    )
    app.layout = create_layout()
    register(app)
    _background_route(app)
    live.register(app)  # POST /api/ball: the ball's path while a slider is dragged (assets/live.js)
    path = os.environ.get(TIMINGS_ENV)
    if path:
        app.server.wsgi_app = TimingMiddleware(app.server.wsgi_app, _append_to(path))  # type: ignore[method-assign]
    return app


class TimingMiddleware:
    """WSGI middleware that times each request from its arrival at the application to its last byte
    sent (the response iterable's ``close``) and gives ``record({"path", "method", "status", "start",
    "seconds", "bytes"})`` to ``sink``. Switched on by ``DESCENT_ARENA_TIMINGS=<file>`` (JSON lines) or
    by wrapping ``app.server.wsgi_app`` in a test."""

    def __init__(self, app: Callable, sink: Callable[[dict[str, Any]], None]) -> None:
        self.app = app
        self.sink = sink

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        start = time.perf_counter()
        wall = time.time()
        status: list[str] = []

        def respond(code: str, headers: list, *args: Any) -> Callable:
            status.append(code)
            return start_response(code, headers, *args)

        body = self.app(environ, respond)
        return _Timed(body, self, environ, status, start, wall)


class _Timed:
    """The response iterable, counted and timed to its ``close`` (after the server sent the last byte)."""

    def __init__(
        self, body: Iterable[bytes], owner: TimingMiddleware, environ: dict, status: list, start, wall
    ):
        self.body, self.owner, self.environ, self.status = body, owner, environ, status
        self.start, self.wall, self.size = start, wall, 0

    def __iter__(self):
        for chunk in self.body:
            self.size += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.owner.sink(
                {
                    "path": self.environ.get("PATH_INFO", ""),
                    "method": self.environ.get("REQUEST_METHOD", ""),
                    "status": (self.status or ["?"])[0].split(" ")[0],
                    "start": self.wall,
                    "seconds": time.perf_counter() - self.start,
                    "bytes": self.size,
                }
            )


def _libc() -> Any:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _fewer_malloc_arenas(arenas: int = 2) -> None:
    """glibc: at most ``arenas`` malloc arenas (else each worker thread keeps its own, and the memory
    a big run freed in one thread is not reused by the others)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(-8, arenas)  # M_ARENA_MAX


class TrimMiddleware:
    """WSGI middleware that gives the memory freed after a large response back to the system (glibc's
    ``malloc_trim``): a 5000-ball swarm's run, views and JSON are ~150 MB for the time of one request."""

    LARGE = 2**20  # bytes of response

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.libc = _libc()
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        body = self.app(environ, start_response)
        if self.libc is None:
            return body
        return _Timed(
            body, TimingMiddleware(self.app, self._trim), environ, [], time.perf_counter(), time.time()
        )

    def _trim(self, record: dict[str, Any]) -> None:
        if record["bytes"] >= self.LARGE and self.lock.acquire(blocking=False):
            try:
                self.libc.malloc_trim(0)
            finally:
                self.lock.release()


def _append_to(path: str) -> Callable[[dict[str, Any]], None]:
    lock = threading.Lock()

    def sink(record: dict[str, Any]) -> None:
        with lock, open(path, "a") as out:
            out.write(json.dumps(record) + "\n")

    return sink


def _background_route(app: Dash) -> None:
    """GET /_arena/landscape.png?k=<token>: the map's contour image of one landscape (cached)."""
    from flask import Response, request

    from descent.arena.figures import landscape_png, parse_landscape_token
    from descent.arena.runner import LRUCache, get_landscape
    from descent.arena.views import BACKGROUND_ROUTE

    images = LRUCache(32)

    @app.server.route(BACKGROUND_ROUTE)
    def _landscape_png() -> Response:
        token = request.args.get("k", "")
        try:
            if len(token) > 4000:
                raise ValueError("token too long")
            text, params = parse_landscape_token(token)
            png = images.get(token, lambda: landscape_png(get_landscape(text, params)))
        except Exception:  # noqa: BLE001 - a bad or stale token is a 404, never a crash
            return Response("no such landscape", status=404, mimetype="text/plain")
        return Response(png, mimetype="image/png", headers={"Cache-Control": "public, max-age=86400"})


def serve(
    host: str = "127.0.0.1",
    port: int = 8050,
    debug: bool = False,
    threads: int = THREADS,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the Arena on ``host:port`` (loopback by default) until interrupted: through waitress, a
    production WSGI server, with ``threads`` worker threads in one process; Flask's development server
    (reloader, debugger) only with ``debug``."""
    import torch

    torch.set_num_threads(1)  # one core per request: the requests share the machine, not one run
    app = create_app()
    if debug:
        announce(f"Descent Arena on http://{host}:{port}/ (Flask development server, debug mode)")
        app.run(host=host, port=port, debug=True)
        return
    from waitress import serve as waitress_serve

    from descent.arena.runner import warm_landscapes
    from descent.kernels.backend import defer_compiling

    defer_compiling()  # a new formula runs on torch at once while its kernel compiles (seconds)
    warm_landscapes()
    _fewer_malloc_arenas()
    app.server.wsgi_app = TrimMiddleware(app.server.wsgi_app)  # type: ignore[method-assign]

    announce(
        f"Descent Arena on http://{host}:{port}/ "
        f"(waitress, 1 process, {threads} worker threads; Ctrl-C to stop)"
    )
    waitress_serve(app.server, host=host, port=port, threads=threads, ident="descent-arena")
