"""optuna-dashboard on the study store, optionally read-only.

optuna-dashboard has no authentication and exposes write endpoints (delete or rename a study, tell
a trial, edit notes, upload or delete artifacts, migrate the schema). Read-only mode wraps its WSGI
app and answers 403 to every request that is not a read.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_writes(app):
    """Refuse anything but GET/HEAD/OPTIONS with 403 before the dashboard sees it."""

    def guarded(environ, start_response):
        if environ.get("REQUEST_METHOD", "GET").upper() not in READ_METHODS:
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"adamtune dashboard is read-only: this request would change the study store\n"]
        return app(environ, start_response)

    return guarded


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def serve_dashboard(storage, host: str, port: int, *, read_only: bool, artifacts: str | None = None) -> None:
    """Serve until interrupted; trial artifacts (learning curves, best config) come from `artifacts`."""
    import optuna_dashboard

    from ._artifacts import artifact_store

    store = artifact_store(artifacts) if artifacts and Path(artifacts).is_dir() else None
    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    server = make_server(host, port, refuse_writes(app) if read_only else app, handler_class=_QuietHandler)
    server.serve_forever()
