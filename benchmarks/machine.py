"""Who uses this machine's CPUs and memory, read through psutil."""

from __future__ import annotations

import time
from collections.abc import Sequence

import psutil

SPEED_STEPS = 2_000_000


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers when workers > 1)."""
    try:
        process = psutil.Process(pid)
        return [pid, *(child.pid for child in process.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def process_cpu(pids: Sequence[int]) -> dict[int, float]:
    """User plus system CPU seconds of each process still alive."""
    used = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        used[pid] = times.user + times.system
    return used


def resident_bytes(pids: Sequence[int]) -> int:
    """The resident memory of these processes together, now."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def machine_seconds() -> tuple[float, float]:
    """CPU seconds since boot, over all cores: spent on anything but idling, and of
    those, stolen by the hypervisor for other guests (a shared VM's noise)."""
    times = psutil.cpu_times()
    # The busy fields of /proc/stat's first line (guest time is inside user already).
    busy = sum(getattr(times, name, 0.0) for name in
               ("user", "nice", "system", "irq", "softirq", "steal"))  # fmt: skip
    return busy, getattr(times, "steal", 0.0)


def python_speed() -> float:
    """Millions of steps per second of a plain Python loop, best of three: how fast
    one core of this machine is right now (shared machines vary by half or more)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for step in range(SPEED_STEPS):
            total += step
        best = min(best, time.perf_counter() - started)
    return SPEED_STEPS / best / 1e6


def connections_held(pids: Sequence[int], port: int) -> list[int]:
    """How many established connections to ``port`` each process holds, most
    first, leaving out processes that hold none. uvicorn's workers share one
    listening socket and the first to wake accepts every connection waiting, so
    a burst of connects can land unevenly; the split changes the batches."""
    held = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        count = sum(
            1
            for c in connections
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
        if count:
            held.append(count)
    return sorted(held, reverse=True)
