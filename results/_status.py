"""`adamtune status`: where a running study stands, which worker runs what, and who is still alive."""

from __future__ import annotations

from datetime import datetime, timezone

from ._format import table
from ._views import StudyView


def status_text(view: StudyView, heartbeats: dict[int, datetime]) -> str:
    """State counts, the best trial so far, and each running trial with its worker, epochs done and the
    age of its last heartbeat (`heartbeats`: trial number -> naive UTC time, from the store)."""
    lines = [f"study {view.name}: {view.counts_text()}"]
    if view.complete:
        best = view.best
        lines.append(f"best so far: trial #{best.number} value {best.value:.4f} ({best.summary})")
    running = [t for t in view.trials if t.state == "running"]
    if running:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = []
        for t in running:
            beat = heartbeats.get(t.number)
            ago = f"{(now - beat).total_seconds():.0f} s ago" if beat else "no heartbeat"
            rows.append([t.number, t.worker or "?", t.epochs, ago, t.summary])
        lines += ["", table(["running", "worker", "epochs done", "last heartbeat", "configuration"], rows)]
    return "\n".join(lines)
