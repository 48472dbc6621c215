"""How numbers, configurations and tables look in a terminal, a report and the dashboard: one rule each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt(value: Any) -> str:
    """A value in a table cell: '-' for nothing; floats with 4 decimals, or 4 significant digits when tiny
    or huge (a learning rate of 3e-05 stays readable); 0.0 is '0.0000' like any other value."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if value and (abs(value) < 1e-3 or abs(value) >= 1e4) else f"{value:.4f}"
    return str(value)


def fmt_param(value: Any) -> str:
    """A sampled value in a parameter listing: 6 significant digits, so lr=0.00123457 is shown whole."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def describe(config: dict[str, Any]) -> str:
    """The configuration in words, for tables and the dashboard."""
    optimizer = str(config.get("optimizer", "adam")).replace("adamw", "AdamW").replace("adam", "Adam")
    parts = [f"{optimizer} lr={config.get('lr', 1e-3):.2g}"]
    if config.get("scheduler", "none") != "none":
        parts[0] += f" {config['scheduler']}"
    if config.get("weight_decay"):
        parts.append(f"wd={config['weight_decay']:.1g}")
    if config.get("dropout"):
        parts.append(f"dropout {config['dropout']:.2f}")
    if config.get("rotation"):
        parts.append(f"rotation {config['rotation']:.0f}°")
    loss = config.get("loss")
    if loss in ("l1", "huber"):  # not the task's default (cross-entropy, MSE, BCE)
        parts.append("L1" if loss == "l1" else f"Huber δ={config.get('huber_delta', 1.0):.2g}")
    if config.get("class_weights"):
        parts.append("class weights")
    depth = config.get("depth", 1)
    parts.append(f"batch {config.get('batch_size')}, width {config.get('width')}"
                 + (f" x {depth} layers" if depth != 1 else ""))
    return ", ".join(parts)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text columns a person can read in a terminal or a CI log."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])
