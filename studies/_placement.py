"""Which GPU each local worker process gets (`run --workers K`): round-robin over the visible GPUs, or over
`--devices`, each child seeing only its own through CUDA_VISIBLE_DEVICES, so a machine with several cards
uses all of them instead of K workers on the first. Plain process arithmetic: no GPU is touched here."""

from __future__ import annotations

import os

from ._errors import StudyError


def parse_devices(text: str, source: str) -> list[str]:
    """`--devices 0,1,3`: GPU indices (as CUDA_VISIBLE_DEVICES takes them), each once."""
    items = [item.strip() for item in text.split(",")]
    if not items or any(not item.isdigit() for item in items) or len(set(items)) != len(items):
        raise StudyError(source, "--devices", f"GPU indices separated by commas, each once (e.g. 0,1), got {text!r}")
    return items


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (its own setting, else all)."""
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        return [item.strip() for item in named.split(",") if item.strip() and item.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def place(workers: int, gpus: list[str]) -> list[str | None]:
    """Each worker's CUDA_VISIBLE_DEVICES: the GPUs in turn; None for all when there is none (the CPU)."""
    return [gpus[i % len(gpus)] if gpus else None for i in range(workers)]


def placement_line(places: list[str | None]) -> str:
    if not any(p is not None for p in places):
        return "no GPU: every worker trains on the CPU"
    return ", ".join(f"worker {i + 1} on GPU {p}" for i, p in enumerate(places))
