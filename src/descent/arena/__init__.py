"""The Descent Arena: a Dash page where a ball rolls on a landscape, races other optimizers, swarms at a
temperature and shows the theory at the ball. The simulation runs in Python through `run_spec`; the
browser plays the recorded trajectories back (assets/arena.js).

>>> app = create_app()
>>> app.title
'The Descent Arena'
"""

from __future__ import annotations

from pathlib import Path

from dash import Dash

ASSETS = Path(__file__).parent / "assets"

__all__ = ["create_app", "serve"]


def create_app() -> Dash:
    """A new Dash app with the Arena's layout and callbacks (its Flask server is ``app.server``)."""
    from descent.arena.callbacks import register
    from descent.arena.layout import create_layout

    app = Dash(
        __name__, title="The Descent Arena", assets_folder=str(ASSETS), update_title=None, serve_locally=True
    )
    app.layout = create_layout()
    register(app)
    _background_route(app)
    return app


def _background_route(app: Dash) -> None:
    """GET /_arena/landscape.png?k=<token>: the map's contour image of one landscape (cached)."""
    from flask import Response, request

    from descent.arena.figures import landscape_png, parse_landscape_token
    from descent.arena.runner import _LRU, get_landscape
    from descent.arena.views import BACKGROUND_ROUTE

    images = _LRU(32)

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


def serve(host: str = "127.0.0.1", port: int = 8050, debug: bool = False) -> None:
    """Serve the Arena on ``host:port`` (loopback by default) until interrupted."""
    app = create_app()
    app.run(host=host, port=port, debug=debug)
