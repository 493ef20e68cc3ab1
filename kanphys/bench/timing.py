"""Round-robin timing and peak-memory measurement of callables, for side-by-side comparisons."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch

__all__ = ["CLOCKS", "peak_memory_mb", "round_robin"]

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def round_robin(
    cases: Mapping[str, Callable[[], object]],
    *,
    repeats: int = 7,
    warmup: int = 2,
    clock: str = "wall",
) -> dict[str, float]:
    """Median time (ms) of each case, timed in turns so machine noise hits all alike.

    ``clock="wall"`` measures elapsed time; ``clock="cpu"`` the CPU time of this process, which
    other jobs on a shared machine do not inflate (meaningful for one-thread CPU runs).
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    now = CLOCKS[clock]
    for _ in range(warmup):
        for run in cases.values():
            run()
    samples: dict[str, list[float]] = {key: [] for key in cases}
    for _ in range(repeats):
        for key, run in cases.items():
            _synchronize()
            started = now()
            run()
            _synchronize()
            samples[key].append((now() - started) * 1e3)
    return {key: statistics.median(values) for key, values in samples.items()}


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def peak_memory_mb(run: Callable[[], object], device: torch.device) -> float:
    """Peak memory (MB) allocated by torch during one call of ``run``, above the starting level.

    CUDA: the caching allocator's peak statistic. CPU: the running sum, in time order, of the
    profiler's own (not inherited) allocation and free events.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - start) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted(
        (e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start
    )
    level = peak = 0
    for event in events:
        level += event.self_cpu_memory_usage
        peak = max(peak, level)
    return peak / 2**20
