"""`adamtune status`: where a running study stands, which worker runs what, and who is still alive."""

from __future__ import annotations

from datetime import timedelta

from ._format import table
from ._views import StudyView


def status_text(view: StudyView, heartbeat_ages: dict[int, timedelta]) -> str:
    """State counts, the best trial so far, and each running trial with its worker, device, epochs done and the
    time since its last heartbeat (from the store)."""
    lines = [f"study {view.name}: {view.counts_text()}"]
    if view.counts["complete"]:
        best = view.best
        lines.append(f"best so far: trial #{best.number} value {best.value:.4f} ({best.summary})")
    running = view.running() if view.counts["running"] else []
    if running:
        rows = []
        for t in running:
            age = heartbeat_ages.get(t.number)
            ago = f"{age.total_seconds():.0f} s ago" if age is not None else "no heartbeat"
            rows.append([t.number, t.worker or "?", t.device or "?", t.epochs, ago, t.summary])
        lines += ["", table(["running", "worker", "device", "epochs done", "last heartbeat", "configuration"], rows)]
    return "\n".join(lines)
