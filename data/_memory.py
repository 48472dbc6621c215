"""How much memory a device has free, for checks that refuse work which cannot fit before it starts."""

from __future__ import annotations

import os

import torch


def free_memory(device: torch.device) -> int | None:
    """Bytes free on `device`: on a GPU what CUDA reports; on the CPU the kernel's MemAvailable, or less when
    this process's cgroup (a container's memory limit) allows less. None when it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    found = [n for n in (_meminfo_available(), _cgroup_room()) if n is not None]
    return min(found) if found else None


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    """The memory limit of this process's cgroup (a container's) minus what the group uses; None without one.
    cgroup v2 (`0::/group`: memory.max, memory.current) or v1 (`N:memory:/group`: memory.limit_in_bytes)."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as fh:
            lines = [line.rstrip("\n").split(":", 2) for line in fh]
    except OSError:
        return None
    for _, controllers, group in lines:
        if controllers == "":
            files = (f"/sys/fs/cgroup{group}/memory.max", f"/sys/fs/cgroup{group}/memory.current")
        elif "memory" in controllers.split(","):
            base = f"/sys/fs/cgroup/memory{group}"
            files = (f"{base}/memory.limit_in_bytes", f"{base}/memory.usage_in_bytes")
        else:
            continue
        try:
            with open(files[0], encoding="ascii") as fh:
                limit = fh.read().strip()
            with open(files[1], encoding="ascii") as fh:
                used = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # v1 writes "no limit" as a number near 2**63
            return max(0, int(limit) - used)
    return None
