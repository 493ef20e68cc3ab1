"""The ``kanphys`` command: run, resume, info."""

from __future__ import annotations

import argparse
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "run" or any(e.startswith("-") or "=" not in e for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "info":
        print(info())
        return 0
    if args.command == "bench" and args.bench == "derivatives":
        from kanphys.bench import derivatives

        return derivatives.main(args)
    if args.command == "bench" and args.bench == "training":
        from kanphys.bench import training

        return training.main(args)
    if args.command == "bench" and args.bench == "scaling":
        from kanphys.bench import scaling

        return scaling.main(args)
    if args.command == "export":
        return _export(args)
    from kanphys.runner import RunOptions, resume, run
    from kanphys.train.loss import TrainingError
    from kanphys.train.trainer import Preempted

    progress = not args.no_progress and sys.stderr.isatty()
    try:
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
            result = run(args.file, options)
        else:
            result = resume(args.run_dir, progress=progress)
    except Preempted as stop:
        print(f"kanphys: {stop}; continue with `kanphys resume`", file=sys.stderr)
        return EXIT_PREEMPTED
    except (ValueError, FileNotFoundError, FileExistsError, TypeError, TrainingError) as error:
        print(f"kanphys: error: {error}", file=sys.stderr)
        return 2
    metrics = result.metrics
    print(
        f"{result.path}: rel_l2 {metrics['rel_l2']}  steps {metrics['steps']}  "
        f"time {metrics['wall_time_s']:.1f} s"
    )
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
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"kanphys: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(str(path) for path in written))
    return 0


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
