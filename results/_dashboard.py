"""optuna-dashboard on the study store, optionally read-only.

optuna-dashboard has no authentication and exposes write endpoints (delete or rename a study, tell
a trial, edit notes, upload or delete artifacts, migrate the schema). Read-only mode wraps its WSGI
app and answers 403 to every request that is not a read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

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


# waitress: a production WSGI server (a thread pool, and a connection that sends nothing for
# CHANNEL_TIMEOUT seconds is closed). optuna-dashboard's own wsgiref server is single-threaded, so one
# half-open connection froze it for everyone. Waitress takes CONNECTION_LIMIT connections at once and
# times out only silent ones: clients that trickle a header line every few seconds held every slot and
# blocked every GET until they closed, so a request whose headers are not complete HEADER_TIMEOUT seconds
# after they began is closed too (checked every CLEANUP_INTERVAL seconds).
THREADS = 8
CHANNEL_TIMEOUT = 30
CONNECTION_LIMIT = 100
HEADER_TIMEOUT = 10
CLEANUP_INTERVAL = 1


def serve_dashboard(storage, host: str, port: int, *, read_only: bool, artifacts: str | None = None,
                    on_listening: Callable[[], None] | None = None) -> None:
    """Serve until interrupted; trial artifacts (learning curves, best config) come from `artifacts`, where
    each learning curve is drawn the first time someone opens it. `on_listening` is called once the socket
    listens (a connection made from then on is answered), so a URL printed there works when it is read."""
    import optuna_dashboard

    from ._artifacts import artifact_store
    from ._curve_drawing import CurveDrawingStore

    store = CurveDrawingStore(artifact_store(artifacts), storage) if artifacts and Path(artifacts).is_dir() else None
    import waitress

    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    sockets: dict = {}  # waitress's socket map: the listening servers, then the connections
    server = waitress.create_server(refuse_writes(app) if read_only else app, map=sockets, host=host, port=port,
                                    threads=THREADS, channel_timeout=CHANNEL_TIMEOUT,
                                    connection_limit=CONNECTION_LIMIT, cleanup_interval=CLEANUP_INTERVAL,
                                    ident="adamtune")
    for listener in list(sockets.values()):  # one per address `host` resolves to
        if hasattr(listener, "maintenance") and hasattr(listener, "active_channels"):
            bound_header_time(listener, HEADER_TIMEOUT)
    if on_listening is not None:
        on_listening()
    server.run()


def bound_header_time(server, seconds: float) -> None:
    """Close a connection whose request's headers are still incomplete `seconds` after they began, as
    waitress's own maintenance closes silent ones (it marks them `will_close`)."""
    maintenance = server.maintenance

    def maintain(now: float) -> None:
        maintenance(now)
        for channel in list(server.active_channels.values()):
            request = channel.request
            if request is None or request.headers_finished:
                continue
            if getattr(channel, "_adamtune_request", None) is not request:  # first seen now
                channel._adamtune_request, channel._adamtune_since = request, now
            elif now - channel._adamtune_since > seconds:
                channel.will_close = True

    server.maintenance = maintain
