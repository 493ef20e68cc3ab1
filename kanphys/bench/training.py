"""``kanphys bench training``: wall time of a problem's default plan with the closed-form
derivative engine and with autograd (the same plan, seed and points), and the accuracy each
reaches."""

from __future__ import annotations

import logging
import tempfile
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
            metrics = run(problem_file, options).metrics
        records.append(
            {
                "problem": metrics["problem"],
                "engine": "kanphys-fast" if engine == "auto" else "kanphys-autograd",
                "rel_l2": metrics["rel_l2"],
                "wall_time_s": round(metrics["wall_time_s"], 2),
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
    for r in records:
        print(
            f"{r['engine']:18s} rel_l2 {r['rel_l2']}  {r['wall_time_s']:.1f} s, {r['steps']} steps"
        )
    print(f"autograd / fast wall time: {ratio:.2f}")
    if args.json:
        write_json(args.json, {"records": records, "autograd_over_fast": round(ratio, 3)})
    return 0
