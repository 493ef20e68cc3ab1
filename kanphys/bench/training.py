"""``kanphys bench training``: time of a problem's default plan with the closed-form
derivative engine and with autograd (the same plan, seed and points), and the accuracy each
reaches. Both the training wall time and the CPU time of the whole run are recorded; with one
thread the CPU time is what other jobs on a shared machine do not inflate."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from kanphys.io.files import write_json
from kanphys.runner import RunOptions, run

__all__ = ["compare_engines", "main"]

log = logging.getLogger(__name__)


def compare_engines(problem_file: str | Path, *, overrides: dict | None = None) -> list[dict]:
    """Run the problem file once per engine; return one record per engine."""
    records = []
    for engine in ("auto", "autograd"):
        with tempfile.TemporaryDirectory() as folder:
            options = RunOptions(
                out=Path(folder) / "run", overrides={**(overrides or {}), "engine": engine}
            )
            started = time.process_time()
            metrics = run(problem_file, options).metrics
            cpu = time.process_time() - started
        records.append(
            {
                "problem": metrics["problem"],
                "engine": "kanphys-fast" if engine == "auto" else "kanphys-autograd",
                "rel_l2": metrics["rel_l2"],
                "wall_time_s": round(metrics["wall_time_s"], 2),
                "cpu_time_s": round(cpu, 2),
                "steps": metrics["steps"],
            }
        )
        log.info("%s", records[-1])
    return records


def main(args) -> int:
    """Entry point of ``kanphys bench training``."""
    import torch

    torch.set_num_threads(args.threads)
    records = compare_engines(args.file)
    fast, slow = records
    ratio = slow["wall_time_s"] / fast["wall_time_s"]
    cpu_ratio = slow["cpu_time_s"] / fast["cpu_time_s"]
    for r in records:
        print(
            f"{r['engine']:18s} rel_l2 {r['rel_l2']}  {r['wall_time_s']:.1f} s training, "
            f"{r['cpu_time_s']:.1f} s CPU, {r['steps']} steps"
        )
    print(f"autograd / fast: wall time {ratio:.2f}, CPU time {cpu_ratio:.2f}")
    if args.json:
        summary = {
            "autograd_over_fast": round(ratio, 3),
            "autograd_over_fast_cpu": round(cpu_ratio, 3),
        }
        write_json(args.json, {"records": records, **summary})
    return 0
