"""The ``kanphys`` command: run, resume, info."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

__all__ = ["EXIT_PREEMPTED", "main", "parse_overrides"]

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: stopped by a signal after checkpointing; resume continues


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``["steps=100", "lr=1e-3", "method=halton"]`` -> ``{"steps": 100, "lr": 0.001, ...}``."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kanphys", description="Physics-informed KAN solver toolkit"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train a problem file and write a run directory")
    run.add_argument(
        "file", type=Path, help="problem file defining `problem` (and `model()`, `plan`)"
    )
    run.add_argument("--out", type=Path, help="run directory (default results/runs/NAME-TIME)")
    run.add_argument("--quick", action="store_true", help="a few steps on few points (smoke test)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    run.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    run.add_argument("--resolution", type=int, help="evaluation grid points per axis")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="plan and model settings: steps=, lr=, lbfgs_steps=, interior=, grid=, ...",
    )
    resume = commands.add_parser("resume", help="continue a run from its latest checkpoint")
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("--no-progress", action="store_true")
    commands.add_parser("info", help="versions, devices and threads")
    bench = commands.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench", required=True
    )
    derivatives = bench.add_parser("derivatives", help="derivative engines vs autograd, pykan, MLP")
    derivatives.add_argument(
        "--json", type=Path, help="write records here (and a .md table beside)"
    )
    derivatives.add_argument("--points", type=int, default=4096)
    derivatives.add_argument("--repeats", type=int, default=7)
    derivatives.add_argument("--threads", type=int, default=1)
    derivatives.add_argument("--device", default="cpu")
    derivatives.add_argument("--quick", action="store_true", help="only the smallest KAN")
    derivatives.add_argument("--no-memory", action="store_true", help="skip peak-memory runs")
    derivatives.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        help="time by wall clock or process CPU time (default: cpu for one CPU thread)",
    )
    training = bench.add_parser(
        "training", help="a problem's default plan: fast engine vs autograd"
    )
    training.add_argument("file", type=Path, nargs="?", default=Path("problems/poisson2d.py"))
    training.add_argument("--json", type=Path, help="write the records here")
    training.add_argument("--threads", type=int, default=1)
    scaling = bench.add_parser("scaling", help="KAN scaling law and KAN vs MLP per parameter")
    scaling.add_argument("--json", type=Path, help="write records here (and a .md report beside)")
    scaling.add_argument("--figure", type=Path, help="write the log-log figure (PNG) here")
    scaling.add_argument("--part", choices=["fit", "pde", "all"], default="all")
    scaling.add_argument("--quick", action="store_true", help="a tiny version (seconds)")
    scaling.add_argument("--threads", type=int, default=1)
    scaling.add_argument("--problem", type=Path, help="default: problems/poisson2d.py")
    problems = bench.add_parser("problems", help="the problem library: KAN and MLP baseline")
    problems.add_argument("--only", nargs="+", metavar="NAME", help="these problems only")
    problems.add_argument(
        "--json", type=Path, help="records (default results/benchmarks/problems.json; .md beside)"
    )
    problems.add_argument("--models", default="kan,mlp", help="kan, mlp or kan,mlp")
    problems.add_argument(
        "--budget", type=float, default=1800.0, help="training seconds per model (0: no limit)"
    )
    problems.add_argument("--quick", action="store_true", help="quick plans (smoke test)")
    problems.add_argument("--threads", type=int, default=1)
    problems.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep each run directory as DIR/NAME-MODEL"
    )
    problems.add_argument(
        "--figures", type=Path, metavar="DIR", help="write DIR/NAME.png: solution, error, losses"
    )
    symbolic_bench = bench.add_parser("symbolic", help="exact recovery of formulas vs pykan")
    symbolic_bench.add_argument(
        "--json", type=Path, help="results (default results/benchmarks/symbolic.json; .md beside)"
    )
    symbolic_bench.add_argument(
        "--only", nargs="+", metavar="PART", help="exp_sin, poisson2d and/or feynman"
    )
    symbolic_bench.add_argument("--quick", action="store_true", help="2 formulas (smoke test)")
    symbolic_bench.add_argument("--threads", type=int, default=1)
    export_bench = bench.add_parser("export", help="export onto a million-point mesh: time, memory")
    export_bench.add_argument(
        "--json", type=Path, help="results (default results/benchmarks/export.json; .md beside)"
    )
    export_bench.add_argument("--n", type=int, default=100, help="mesh points per axis (n^3)")
    export_bench.add_argument("--chunks", default="8192,65536", help="two chunk sizes")
    export_bench.add_argument("--repeats", type=int, default=3, help="evaluation repeats")
    export_bench.add_argument("--quick", action="store_true", help="tiny meshes (smoke test)")
    export_bench.add_argument("--threads", type=int, default=1)
    export = commands.add_parser("export", help="write a run's fields for ParaView or h5py")
    export.add_argument("run_dir", type=Path)
    export.add_argument(
        "--format", required=True, help="vtu, vti, vts, pvd, xdmf, vtkhdf or h5 (results.h5)"
    )
    export.add_argument("--mesh", type=Path, help="evaluate on the points of this mesh file")
    export.add_argument("--points", type=Path, help="evaluate at the points of a .csv/.npy file")
    export.add_argument("--resolution", type=int, help="regular grid points per axis")
    export.add_argument("--times", help="T0:T1:K (K times) or t1,t2,... for a time series")
    export.add_argument("--fields", help="comma-separated names (default all): u,grad_u,...")
    export.add_argument("--out", type=Path, help="file to write (default RUN_DIR/export/...)")
    export.add_argument(
        "--chunk", type=int, default=8192, help="points evaluated at a time (bounds memory)"
    )
    plot = commands.add_parser("plot", help="figures of a run: network, edges, losses, fields")
    plot.add_argument("run_dir", type=Path)
    plot.add_argument("--out", type=Path, help="folder for the figures (default RUN_DIR/plots)")
    plot.add_argument("--formats", default="png,pdf", help="comma-separated: png, pdf, svg")
    plot.add_argument("--no-render", action="store_true", help="skip the PyVista render")
    _slurm_parser(commands)
    collect = commands.add_parser("collect", help="one CSV/markdown table of a sweep's metrics")
    collect.add_argument("dir", type=Path, help="a sweep directory (or runs below it)")
    from kanphys.symbolic.cli import add_parsers

    add_parsers(commands)
    return parser


def _slurm_parser(commands) -> None:
    slurm = commands.add_parser("slurm", help="SLURM batch jobs").add_subparsers(
        dest="slurm", required=True
    )
    submit = slurm.add_parser(
        "submit",
        help="write and submit an sbatch script (a job array for a sweep)",
        usage="kanphys slurm submit FILE [options] [-- kanphys run arguments]",
    )
    submit.add_argument("file", type=Path, help="the problem file")
    submit.add_argument("--nodes", type=int, default=1)
    submit.add_argument("--gpus-per-node", type=int, default=0)
    submit.add_argument("--cpus-per-task", type=int, default=1)
    submit.add_argument("--nproc-per-node", type=int, help="processes per node (default GPUs)")
    submit.add_argument("--time", help="time limit [D-]HH:MM:SS")
    submit.add_argument("--partition")
    submit.add_argument("--job-name")
    submit.add_argument(
        "--sweep", action="append", metavar="KEY=V1,V2", help="one axis of a sweep (repeat)"
    )
    submit.add_argument("--out", type=Path, help="sweep directory (default results/slurm/...)")
    submit.add_argument("--signal-seconds", type=int, default=120, help="USR1 before the limit")
    submit.add_argument("--no-requeue", action="store_true", help="do not requeue on preemption")
    submit.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    submit.add_argument("--wait", action="store_true", help="wait for the job; its exit status")


def _split_run_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``slurm submit ... -- ARGS``: the ARGS go to ``kanphys run`` inside the job."""
    if argv[:1] == ["slurm"] and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv, run_args = _split_run_args(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "run" or any(e.startswith("-") or "=" not in e for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    from kanphys.distributed import detect

    level = logging.INFO if detect().rank == 0 else logging.WARNING  # rank 0 logs
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "info":
        print(info())
        return 0
    if args.command == "bench":  # kanphys bench NAME runs kanphys.bench.NAME.main
        return importlib.import_module(f"kanphys.bench.{args.bench}").main(args)
    if args.command == "export":
        return _export(args)
    if args.command == "plot":
        return _plot(args)
    if args.command in ("symbolic", "regress"):
        return _symbolic(args)
    if args.command in ("slurm", "collect"):
        return _cluster(args, run_args)
    from kanphys.distributed import session
    from kanphys.train.loss import TrainingError
    from kanphys.train.trainer import Preempted

    progress = not args.no_progress and sys.stderr.isatty()
    device = args.device if args.command == "run" else _recorded_device(args.run_dir)
    try:
        with session(device) as comm:
            result = _run_or_resume(args, progress, comm)
    except Preempted as stop:
        print(f"kanphys: {stop}; continue with `kanphys resume`", file=sys.stderr)
        return EXIT_PREEMPTED
    except (ValueError, FileNotFoundError, FileExistsError, TypeError, TrainingError) as error:
        print(f"kanphys: error: {error}", file=sys.stderr)
        return 2
    metrics = result.metrics
    if comm.is_main:
        print(
            f"{result.path}: rel_l2 {metrics['rel_l2']}  steps {metrics['steps']}  "
            f"time {metrics['wall_time_s']:.1f} s"
        )
    return 0


def _run_or_resume(args: argparse.Namespace, progress: bool, comm):
    from kanphys.runner import RunOptions, resume, run

    if args.command == "run":
        options = RunOptions(
            out=args.out,
            quick=args.quick,
            seed=args.seed,
            device=args.device,
            dtype=args.dtype,
            overrides=parse_overrides(args.overrides),
            resolution=args.resolution,
            progress=progress,
        )
        return run(args.file, options, comm=comm)
    return resume(args.run_dir, progress=progress, comm=comm)


def _recorded_device(run_dir: Path) -> str:
    """The device a run directory was trained on (to pick the backend before resuming)."""
    try:
        return str(json.loads((run_dir / "config.json").read_text()).get("device", "cpu"))
    except (OSError, ValueError):
        return "cpu"  # resume reports the missing or broken run directory


def _cluster(args: argparse.Namespace, run_args: list[str]) -> int:
    """``kanphys slurm submit`` and ``kanphys collect``."""
    try:
        if args.command == "collect":
            from kanphys.collect import main as collect

            csv_path, md_path, table = collect(args.dir)
            print(table, end="")
            print(f"wrote {csv_path} and {md_path}", file=sys.stderr)
            return 0
        from kanphys import slurm

        args.run_args = run_args
        return slurm.main(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"kanphys: error: {error}", file=sys.stderr)
        return 2


def _plot(args: argparse.Namespace) -> int:
    from kanphys.plot import plot_run

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    try:
        written = plot_run(args.run_dir, args.out, formats=formats, render=not args.no_render)
    except (ValueError, FileNotFoundError) as error:
        print(f"kanphys: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(str(path) for path in written))
    return 0


def _export(args: argparse.Namespace) -> int:
    from kanphys.io.export import export

    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    try:
        written = export(
            args.run_dir,
            args.format,
            out=args.out,
            mesh=args.mesh,
            points=args.points,
            resolution=args.resolution,
            times=args.times,
            fields=fields,
            chunk=args.chunk,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"kanphys: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(str(path) for path in written))
    return 0


def _symbolic(args: argparse.Namespace) -> int:
    from kanphys.symbolic.cli import main_regress, main_symbolic

    try:
        return main_symbolic(args) if args.command == "symbolic" else main_regress(args)
    except (ValueError, FileNotFoundError, TypeError) as error:
        print(f"kanphys: error: {error}", file=sys.stderr)
        return 2


def info() -> str:
    """Versions, devices and threads, one per line."""
    import torch

    from kanphys.runner import versions

    lines = [f"{name:10s} {version}" for name, version in versions().items()]
    lines.append(
        f"{'threads':10s} {torch.get_num_threads()} (interop {torch.get_num_interop_threads()})"
    )
    devices = ["cpu"] + [
        f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())
    ]
    lines.append(f"{'devices':10s} {', '.join(devices)}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
