"""``kanphys bench export``: a run exported onto a million-point mesh, timed, its memory measured.

The benchmark makes a briefly trained run of a 3-D Poisson problem (:data:`PROBLEM`, 20 Adam
steps of a ``[3, 8, 1]`` KAN), writes structured hexahedral meshes of the unit cube with meshio
(``n`` points per axis: 100 gives 1,000,000 points and 970,299 hexahedra), and measures, each
in a fresh process:

- ``evaluate``: :func:`kanphys.io.export.evaluate` of every field (``u``, ``grad_u``,
  ``u_exact``, ``u_error``, ``residual_poisson``) at the mesh's points, on the full mesh and on
  one with an eighth of its points;
- ``export``: the whole of ``kanphys export RUN --mesh FILE --format vtu`` on the full mesh
  (read the mesh, evaluate at the points and at the cell centroids, write the ``.vtu``);

each for two chunk sizes; evaluation is repeated (``--repeats``, default 3) and the medians
kept. Peak memory is the growth of the process's resident set (peak RSS,
``VmHWM``, reset before the step through ``/proc/self/clear_refs``; ``ru_maxrss`` where there is
no ``/proc``) above its size before the step, so it counts torch's CPU tensors as well as
numpy's arrays. ``working_mb`` is that growth less the evaluation's result (the arrays
returned, which must scale with the mesh): the memory evaluation itself needs, which grows with
the chunk size and stays the same whatever the mesh size.
"""

from __future__ import annotations

import logging
import multiprocessing
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kanphys.io.files import write_json, write_text

__all__ = ["PROBLEM", "cube_mesh", "main", "markdown_report", "measure", "peak_rss_mb"]

log = logging.getLogger(__name__)
DEFAULT_JSON = Path("results") / "benchmarks" / "export.json"

PROBLEM = '''"""-lap(u) = 3 pi^2 sin(pi x) sin(pi y) sin(pi z) on the unit cube; u = 0 on it."""
import torch

import kanphys as kp
from kanphys import lap

PI = torch.pi
cube = kp.Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def exact(p):
    return torch.sin(PI * p[:, 0]) * torch.sin(PI * p[:, 1]) * torch.sin(PI * p[:, 2])


problem = kp.Problem(
    "cube",
    domain=cube,
    fields=["u"],
    equations={"poisson": lambda s: -lap(s.u) - 3 * PI**2 * exact(s.x_all)[:, None]},
    conditions=[kp.Dirichlet("faces", on=cube.boundary, field="u", value=0.0)],
    exact={"u": exact},
    units={"x": "m", "y": "m", "z": "m", "u": "K", "poisson": "K/m^2"},
)


def model():
    return kp.KAN([3, 8, 1], basis=kp.BSpline(grid=5, order=3))


plan = kp.Plan(stages=[kp.Adam(steps=20, lr=1e-2)], sampler=kp.Sobol(interior=256, boundary=128))
'''


def cube_mesh(n: int):
    """A meshio mesh of the unit cube: ``n`` points per axis (``n**3`` points), ``(n - 1)**3``
    hexahedra in VTK vertex order, points ordered with x fastest."""
    import meshio

    from kanphys.geometry import Box
    from kanphys.io.export import grid_sites

    sites = grid_sites(Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), n)
    return meshio.Mesh(sites.points, list(sites.cells))


def peak_rss_mb() -> float:
    """The process's peak resident set size (MB): ``VmHWM`` from ``/proc``, else
    ``ru_maxrss`` (kilobytes on Linux, bytes on macOS)."""
    status = _proc_status()
    if "VmHWM" in status:
        return status["VmHWM"]
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _rss_mb() -> float:
    """The resident set size now (MB), or the peak where ``/proc`` is missing."""
    return _proc_status().get("VmRSS", peak_rss_mb())


def _proc_status() -> dict[str, float]:
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = float(value.split()[0]) / 1024.0  # kB
    return out


def _reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _step(spec: dict[str, Any]) -> dict[str, Any]:
    """One measured step (in a fresh process): evaluate or export, with its peak RSS growth."""
    import gc

    from kanphys.io.run import Run
    from kanphys.runner import load_problem_file

    run = Run.load(spec["run"])
    problem = load_problem_file(run.config["problem_file"]).problem
    model = run.model()
    _warm_up(problem, model)
    task = _evaluation(spec, problem, model) if spec["stage"] == "evaluate" else _export(spec)
    gc.collect()
    before = _rss_mb()
    exact_peak = _reset_peak()
    started, cpu_started = time.perf_counter(), time.process_time()
    result, written = task()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    growth = peak_rss_mb() - before
    working = round(growth - result / 2**20, 1) if spec["stage"] == "evaluate" else None
    return {
        **{key: spec[key] for key in ("stage", "points", "cells", "chunk")},
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_growth_mb": round(growth, 1),
        "result_mb": round(result / 2**20, 1),
        "working_mb": working,
        "written_mb": round(written / 2**20, 1),
        "peak_reset": exact_peak,
    }


def _evaluation(spec: dict[str, Any], problem, model):
    """The evaluation at the mesh's points (read now, outside the measurement): a callable
    returning the bytes of the result and 0 bytes written."""
    from kanphys.io.export import evaluate, mesh_sites

    sites = mesh_sites(spec["mesh"], 3)

    def task() -> tuple[int, int]:
        evaluation = evaluate(problem, model, sites, chunk=spec["chunk"])
        return sum(v.nbytes for frame in evaluation.frames for v in frame.values()), 0

    return task


def _export(spec: dict[str, Any]):
    """``kanphys export RUN --mesh FILE --format vtu``: a callable returning 0 result bytes
    and the bytes written."""
    from kanphys.io.export import export

    def task() -> tuple[int, int]:
        files = export(spec["run"], "vtu", mesh=spec["mesh"], out=spec["out"], chunk=spec["chunk"])
        return 0, sum(Path(f).stat().st_size for f in files)

    return task


def _warm_up(problem, model) -> None:
    """Import what a step imports and evaluate once, so that neither counts in its memory."""
    import h5py  # noqa: F401
    import meshio  # noqa: F401
    import pyvista  # noqa: F401

    from kanphys.io.export import Sites, evaluate

    points = np.random.default_rng(0).random((256, 3))
    evaluate(problem, model, Sites("points", points, ()), chunk=64)


def _in_child(spec: dict[str, Any], queue) -> None:
    import torch

    torch.set_num_threads(spec["threads"])
    try:
        queue.put(_step(spec))
    except BaseException as error:  # reported to the parent, which raises
        queue.put({"error": f"{type(error).__name__}: {error}"})


def _result(queue, process) -> dict[str, Any]:
    """The child's record, or an error record when it died without one (killed, crashed)."""
    import queue as queues

    while True:
        try:
            return queue.get(timeout=1.0)
        except queues.Empty:
            if not process.is_alive() and queue.empty():
                return {"error": f"the process ended with exit code {process.exitcode}"}


def measure(spec: dict[str, Any], *, fresh: bool = True) -> dict[str, Any]:
    """Run :func:`_step` in a fresh (spawned) process, so that earlier steps leave no memory
    behind (``fresh=False``: in this process, quicker, for smoke tests)."""
    if not fresh:
        return _step(spec)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_in_child, args=(spec, queue))
    process.start()
    record = _result(queue, process)
    process.join()
    if "error" in record:
        raise RuntimeError(
            f"bench export step {spec['stage']} (chunk {spec['chunk']}): {record['error']}"
        )
    return record


def prepare(folder: Path, sizes: Sequence[int]) -> tuple[Path, dict[int, Path]]:
    """The briefly trained run of :data:`PROBLEM` and a ``.vtu`` cube mesh per size."""
    import meshio

    from kanphys.runner import RunOptions, run

    source = folder / "cube.py"
    write_text(source, PROBLEM)
    run_dir = folder / "run"
    run(source, RunOptions(out=run_dir, resolution=5, dtype="float64"))
    meshes = {}
    for n in sizes:
        meshes[n] = folder / f"cube{n}.vtu"
        meshio.write(meshes[n], cube_mesh(n), file_format="vtu")
    return run_dir, meshes


def steps(run_dir: Path, meshes: dict[int, Path], chunks: Sequence[int], threads: int) -> list:
    """Evaluation on every mesh and the full export on the largest, for every chunk size."""
    largest = max(meshes)
    out = []
    for n, mesh in sorted(meshes.items(), reverse=True):
        for chunk in chunks:
            base = {"run": str(run_dir), "mesh": str(mesh), "chunk": int(chunk)}
            base |= {"points": n**3, "cells": (n - 1) ** 3, "threads": threads}
            out.append({**base, "stage": "evaluate"})
            if n == largest:
                out.append({**base, "stage": "export", "out": str(mesh.with_name("out.vtu"))})
    return out


def markdown_report(records: Sequence[dict[str, Any]], context: dict[str, Any]) -> str:
    """The records as a table, with what they show."""
    lines = [
        "# Export onto a million-point mesh",
        "",
        f"`{context['command']}` on {context['machine']} ({context['threads']} thread(s), a "
        "machine shared with other jobs: CPU time is the steadier measure); "
        "a briefly trained `[3, 8, 1]` KAN of a 3-D Poisson problem, every field (u, grad_u, "
        "u_exact, u_error, residual_poisson) on a structured hexahedral mesh of the unit cube. "
        "Peak RSS growth: the resident set's peak above its size before the step, each step "
        f"in a fresh process (evaluation {context['repeats']} times: medians). Working "
        "memory: that growth less the arrays returned.",
        "",
        "| step | points | chunk | wall time (s) | CPU time (s) | peak RSS growth (MB) "
        "| result (MB) | working memory (MB) | written (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        working = "" if r["working_mb"] is None else f"{r['working_mb']:.1f}"
        lines.append(
            f"| {r['stage']} | {r['points']:,} | {r['chunk']:,} | {r['wall_s']:.1f} "
            f"| {r['cpu_s']:.1f} | {r['peak_rss_growth_mb']:.1f} | {r['result_mb']:.1f} "
            f"| {working} | {r['written_mb']:.1f} |"
        )
    lines += ["", *summary(records), ""]
    return "\n".join(lines)


def summary(records: Sequence[dict[str, Any]]) -> list[str]:
    """Sentences comparing working memory across chunk sizes and mesh sizes, and the whole
    export's memory per point."""
    evaluations = [r for r in records if r["stage"] == "evaluate"]
    sizes = sorted({r["points"] for r in evaluations})
    chunks = sorted({r["chunk"] for r in evaluations})
    working = {(r["points"], r["chunk"]): r["working_mb"] for r in evaluations}
    small, large = sizes[0], sizes[-1]
    out = []
    for chunk in chunks:
        ratio = working[(large, chunk)] / max(working[(small, chunk)], 1e-9)
        out.append(
            f"- chunk {chunk:,}: working memory {working[(small, chunk)]:.1f} MB on "
            f"{small:,} points, {working[(large, chunk)]:.1f} MB on {large:,} points "
            f"({large / small:.0f}x the points: {ratio:.2f}x the memory)."
        )
    ratio = working[(large, chunks[-1])] / max(working[(large, chunks[0])], 1e-9)
    out.append(
        f"- On {large:,} points a chunk {chunks[-1] / chunks[0]:.0f}x larger needs "
        f"{ratio:.1f}x the working memory."
    )
    for r in records:
        if r["stage"] == "export":
            per_point = r["peak_rss_growth_mb"] * 2**20 / r["points"]
            out.append(
                f"- The whole export with chunk {r['chunk']:,} (mesh read, points and cell "
                f"centroids evaluated, .vtu written): {r['peak_rss_growth_mb']:.0f} MB, "
                f"{per_point:.0f} bytes per point."
            )
    return out


MEASURED = ("wall_s", "cpu_s", "peak_rss_growth_mb", "working_mb")


def median_record(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One record of repeated measurements: the median of each measured number, with the
    number of repeats and the range of the peak RSS growth."""
    out = dict(records[0])
    for key in MEASURED:
        values = [r[key] for r in records]
        if values[0] is not None:
            out[key] = round(float(np.median(values)), 3 if key.endswith("_s") else 1)
    growth = [r["peak_rss_growth_mb"] for r in records]
    return {**out, "repeats": len(records), "peak_rss_growth_range_mb": [min(growth), max(growth)]}


def run_benchmark(
    *,
    sizes: Sequence[int],
    chunks: Sequence[int],
    threads: int,
    folder: Path,
    fresh: bool = True,
    repeats: int = 1,
) -> list[dict[str, Any]]:
    """Prepare the run and the meshes in ``folder``, then measure every step (each in a
    fresh process unless ``fresh`` is False; evaluation ``repeats`` times, the median kept)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run_dir, meshes = prepare(folder, sizes)
        records = []
        for spec in steps(run_dir, meshes, chunks, threads):
            count = repeats if spec["stage"] == "evaluate" else 1
            record = median_record([measure(spec, fresh=fresh) for _ in range(count)])
            log.info("%s", record)
            records.append(record)
    finally:
        torch.set_num_threads(previous)
    return records


def main(args) -> int:
    """Entry point of ``kanphys bench export``."""
    sizes = (12, 6) if args.quick else (args.n, args.n // 2)
    chunks = (64, 512) if args.quick else tuple(int(c) for c in args.chunks.split(","))
    if len(chunks) < 2 or min(sizes) < 2:
        raise SystemExit("kanphys bench export: give two chunk sizes and --n of at least 4")
    with tempfile.TemporaryDirectory(prefix="kanphys-bench-export-") as scratch:
        records = run_benchmark(
            sizes=sizes,
            chunks=chunks,
            threads=args.threads,
            folder=Path(scratch),
            fresh=not args.quick,
            repeats=1 if args.quick else args.repeats,
        )
    command = "kanphys bench export" + (" --quick" if args.quick else "")
    context = {
        "command": command,
        "machine": f"{platform.machine()} {platform.system()}",
        "threads": args.threads,
        "mesh_points_per_axis": list(sizes),
        "chunks": list(chunks),
        "repeats": 1 if args.quick else args.repeats,
    }
    report = markdown_report(records, context)
    print(report)
    target = args.json or DEFAULT_JSON
    write_json(target, {"context": context, "records": records})
    write_text(Path(target).with_suffix(".md"), report)
    return 0
