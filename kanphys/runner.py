"""From a problem file to a finished run directory: load, build, train, evaluate, write."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kanphys.distributed import Communicator
from kanphys.evaluate import EvaluationGrid, error_metrics, evaluate_fields, evaluation_grid
from kanphys.geometry.mesh import MeshDomain
from kanphys.io.fields import write_fields_h5, write_fields_vtu
from kanphys.io.files import write_csv, write_json, write_text
from kanphys.io.run import Run
from kanphys.io.units import units_table
from kanphys.kan import KAN, MLP, BSpline
from kanphys.model import Surrogate
from kanphys.problem import Problem
from kanphys.train.plan import PLAN_SHORTCUTS, Plan, apply_overrides
from kanphys.train.trainer import Trainer

__all__ = [
    "ProblemFile",
    "RunOptions",
    "build_model",
    "load_problem_file",
    "resume",
    "run",
    "solve",
    "versions",
]

log = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class ProblemFile:
    """What a problem file defines: ``problem``, and optionally ``model()`` and ``plan``."""

    path: Path
    problem: Problem
    model: Callable[..., nn.Module] | None
    plan: Plan
    quick_plan: Plan | None


def load_problem_file(path: str | Path) -> ProblemFile:
    """Import a problem file as a module (without running its ``__main__`` block)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"problem file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"kanphys_problem_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problem = getattr(module, "problem", None)
    if not isinstance(problem, Problem):
        raise ValueError(f"{path} must define a module-level `problem = kanphys.Problem(...)`")
    return ProblemFile(
        path,
        problem,
        getattr(module, "model", None),
        getattr(module, "plan", None) or Plan(),
        getattr(module, "quick_plan", None),
    )


@dataclass(frozen=True)
class RunOptions:
    """How to run a problem file (the command line's options)."""

    out: Path | None = None
    quick: bool = False
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    resolution: int | None = None
    progress: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "overrides": dict(self.overrides),
            "resolution": self.resolution,
        }


def split_overrides(factory: Callable | None, overrides: Mapping[str, Any]) -> tuple[dict, dict]:
    """Overrides for ``model()`` (its keyword parameters) and for the plan (the rest)."""
    names = set(inspect.signature(factory).parameters) if factory is not None else {"grid", "width"}
    model_keys = {k: v for k, v in overrides.items() if k in names}
    rest = {k: v for k, v in overrides.items() if k not in names and k != "model"}
    return model_keys, rest


def default_model(problem: Problem, grid: int = 5, width: int = 10) -> KAN:
    """A ``[d, width, m]`` cubic B-spline KAN (``d`` counts a periodic coordinate twice)."""
    return KAN([n_inputs(problem), width, len(problem.fields)], basis=BSpline(grid=grid))


def n_inputs(problem: Problem) -> int:
    """The network input width: the coordinates, plus one per periodic (embedded) one."""
    bound = bind_constraints(problem)
    return problem.domain.dim if bound is None else bound.n_inputs(problem.domain.dim)


def bind_constraints(problem: Problem):
    """The problem's hard constraints bound to its coordinates and fields (None if none)."""
    if problem.constraints is None:
        return None
    return problem.constraints.bind(problem.coordinates, problem.fields)


def mlp_baseline(problem: Problem, n_params: int, depth: int = 3) -> MLP:
    """A tanh MLP with ``depth`` hidden layers of equal width whose parameter count is the
    closest to ``n_params`` (for side-by-side comparisons with a KAN)."""
    d, m = n_inputs(problem), len(problem.fields)

    def count(w: int) -> int:
        return (d + 1) * w + (depth - 1) * (w + 1) * w + (w + 1) * m

    width = min(range(2, 1025), key=lambda w: abs(count(w) - n_params))
    return MLP([d, *[width] * depth, m], activation="tanh")


def build_model(
    problem: Problem,
    factory: Callable | None,
    kwargs: Mapping[str, Any],
    *,
    seed: int,
    dtype: torch.dtype,
    device,
    baseline: str = "kan",
) -> Surrogate:
    """Build the network with torch's RNG seeded locally (the global state is left as it was).

    With ``baseline="mlp"`` the network is :func:`mlp_baseline` with about as many parameters
    as the KAN that ``factory`` builds (the same plan then trains it, grid steps skipped).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = factory(**kwargs) if factory is not None else default_model(problem, **kwargs)
        if baseline == "mlp":
            net = mlp_baseline(problem, sum(p.numel() for p in net.parameters()))
        elif baseline != "kan":
            raise ValueError(f"unknown model={baseline!r}; choose 'kan' or 'mlp'")
    net = net.to(dtype=dtype, device=device)
    outputs = net.widths[-1] if hasattr(net, "widths") else None
    if outputs is not None and (net.widths[0], outputs) != (n_inputs(problem), len(problem.fields)):
        raise ValueError(
            f"model maps {net.widths[0]} -> {outputs} values; problem {problem.name!r} "
            f"needs {n_inputs(problem)} inputs -> {len(problem.fields)} fields"
        )
    lower, upper = problem.domain.bounds
    return Surrogate(
        net, list(lower), list(upper), problem.initial_parameters(), bind_constraints(problem)
    )


def resolve_plan(source: ProblemFile, options: RunOptions, overrides: Mapping[str, Any]) -> Plan:
    plan = source.plan
    if options.quick:
        plan = source.quick_plan or plan.quick()
    try:
        return apply_overrides(plan, overrides)
    except KeyError as error:
        known = ", ".join(PLAN_SHORTCUTS)
        raise ValueError(
            f"unknown override {error.args[0]!r}: not a model() argument nor a plan "
            f"setting ({known})"
        ) from error


def default_out(problem: Problem) -> Path:
    return Path("results") / "runs" / f"{problem.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(
    problem_file: str | Path,
    options: RunOptions = RunOptions(),
    *,
    comm: Communicator | None = None,
) -> Run:
    """Train the problem file's model on its problem and write a run directory.

    With ``comm`` (see :func:`kanphys.distributed.session`) every rank trains on its block
    of the points and rank 0 alone writes the run directory.
    """
    comm = comm or Communicator()
    source = load_problem_file(problem_file)
    model_kwargs, plan_overrides = split_overrides(source.model, options.overrides)
    plan = resolve_plan(source, options, plan_overrides)
    out = Path(options.out) if options.out else default_out(source.problem)
    out = comm.broadcast_object(out)  # rank 0's default name (its clock) for every rank
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists and is not empty; choose another --out or "
            f"continue it with `kanphys resume {out}`"
        )
    comm.barrier()  # every rank has looked before rank 0 writes
    model = build_model(
        source.problem,
        source.model,
        model_kwargs,
        seed=options.seed,
        dtype=DTYPES[options.dtype],
        device=comm.device_for(options.device),
        baseline=str(options.overrides.get("model", "kan")),
    )
    if model.constraints is not None:  # so that Run.model() can rebuild them
        model.constraints = replace(model.constraints, source=str(source.path))
    comm.broadcast_module(model)
    config = {
        "problem_file": str(source.path),
        "problem": source.problem.name,
        **options.to_dict(),
        "plan": plan.to_dict(),
        "model": model.config(),
        "world_size": comm.world_size,
    }
    if comm.is_main:
        write_json(out / "config.json", config)
        write_text(out / "problem.txt", f"{source.problem}\n")
    trainer = Trainer(
        source.problem,
        model,
        plan,
        seed=options.seed,
        checkpoint=out / "checkpoint.pt",
        progress=options.progress and comm.is_main,
        comm=comm,
    )
    return _train_and_finish(trainer, out, config)


def resume(run_dir: str | Path, *, progress: bool = False, comm: Communicator | None = None) -> Run:
    """Continue an interrupted run from its latest checkpoint, then finish it.

    The continuation is bit-identical to an uninterrupted run when the number of ranks is
    the same as before (another number shards the points differently: equal to rounding).
    """
    comm = comm or Communicator()
    previous = Run.load(run_dir)
    config = previous.config
    source = load_problem_file(config["problem_file"])
    options = RunOptions(quick=config["quick"], overrides=config["overrides"])
    _, plan_overrides = split_overrides(source.model, config["overrides"])
    plan = resolve_plan(source, options, plan_overrides)
    trainer = Trainer.restore(
        source.problem,
        plan,
        previous.path / "checkpoint.pt",
        device=comm.device_for(config["device"]),
        progress=progress and comm.is_main,
        comm=comm,
    )
    if config.get("world_size", 1) != comm.world_size and comm.is_main:
        log.warning(
            "%s ran on %d ranks and continues on %d: equal to rounding, not bit-identical",
            run_dir,
            config.get("world_size", 1),
            comm.world_size,
        )
    return _train_and_finish(trainer, previous.path, config)


def _train_and_finish(trainer: Trainer, out: Path, config: dict[str, Any]) -> Run:
    trainer.fit()
    if trainer.comm.is_main:
        finish(trainer, out, config)
    trainer.comm.barrier()  # the run directory is complete for every rank
    return Run.load(out)


def finish(trainer: Trainer, out: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """Write history, fields and metrics of a trained run into ``out``; return the metrics."""
    problem, model = trainer.problem, trainer.model
    write_csv(out / "history.csv", trainer.columns, trainer.rows)
    grid = _evaluation_grid(problem.domain, config.get("resolution"))
    values = evaluate_fields(problem, model, grid.points)
    metrics = {
        "problem": problem.name,
        **error_metrics(problem, values),
        "final_loss": trainer.rows[-1][3] if trainer.rows else None,
        "wall_time_s": trainer.elapsed,
        "steps": trainer.position.global_step,
        "n_params": sum(p.numel() for p in model.parameters()),
        "parameters": {name: p.item() for name, p in model.params.items()},
        "dtype": str(model.dtype).removeprefix("torch."),
        "initial_dtype": config.get("dtype"),
        "device": str(model.device),
        "seed": trainer.seed,
        "n_eval_points": int(grid.points.shape[0]),
        "versions": versions(),
        "units": dict(problem.units),
    }
    units = units_table(problem, values)
    write_fields_vtu(out / "fields.vtu", grid, values, units)
    write_fields_h5(
        out / "fields.h5",
        grid,
        values,
        coordinates=problem.coordinates,
        fields=problem.fields,
        problem=problem.name,
        metadata={"metrics": metrics, "config": dict(config), "units": units},
        units=units,
    )
    if problem.domain.time_index is not None:
        metadata = {"metrics": metrics, "config": dict(config), "versions": metrics["versions"]}
        write_time_series(out / "fields.pvd", problem, model, metadata)
    write_json(out / "metrics.json", metrics)
    log.info("wrote %s: rel_l2 %s", out, metrics["rel_l2"])
    return metrics


def _evaluation_grid(domain, resolution: int | None) -> EvaluationGrid:
    """The mesh of a :class:`MeshDomain` with one cell type (unless a resolution is asked
    for), so that fields land on the user's own mesh; else a regular grid."""
    if isinstance(domain, MeshDomain) and len(domain.cells) == 1 and resolution is None:
        cell_type, cells = domain.cells[0]
        used, renumbered = np.unique(cells, return_inverse=True)
        return EvaluationGrid(domain.points[used], renumbered.reshape(cells.shape), cell_type)
    return evaluation_grid(domain, resolution)


def write_time_series(
    path: Path, problem: Problem, model: Surrogate, metadata: Mapping[str, Any]
) -> list[Path]:
    """Write a ``.pvd`` time series (one file per time, ``DEFAULT_STEPS`` times over the
    problem's interval) on the default spatial sites (the mesh of a mesh domain, else a
    regular grid)."""
    from kanphys.io.export import DEFAULT_STEPS, default_sites, evaluate, write

    domain = problem.domain
    times = np.linspace(domain.t0, domain.t1, DEFAULT_STEPS)
    sites = default_sites(domain.space)
    evaluation = evaluate(problem, model, sites, times=times, metadata=metadata)
    return write(path, evaluation, "pvd")


def versions() -> dict[str, str]:
    """Versions of kanphys, Python and the numerical libraries."""
    import numpy
    import scipy

    from kanphys import __version__

    return {
        "kanphys": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "platform": sys.platform,
    }


def solve(
    problem: Problem,
    model: nn.Module | None = None,
    plan: Plan | None = None,
    *,
    seed: int = 0,
    dtype: str = "float32",
    device: str = "cpu",
) -> tuple[Surrogate, dict]:
    """Train in memory, without files: returns the surrogate and its error metrics.

    Args:
        problem: the problem.
        model: a network (default ``KAN([d, 10, m])``), wrapped in a :class:`Surrogate` and
            trained in place (converted to ``dtype`` and ``device``).
        plan: the training plan (default :class:`Plan`).
        seed: collocation seed (and model seed when ``model`` is None).
    """
    factory = (lambda: model) if model is not None else None
    surrogate = build_model(problem, factory, {}, seed=seed, dtype=DTYPES[dtype], device=device)
    trainer = Trainer(problem, surrogate, plan or Plan(), seed=seed)
    trained = trainer.fit()
    grid = evaluation_grid(problem.domain)
    return trained, error_metrics(
        problem, evaluate_fields(problem, trained, grid.points, residuals=False)
    )
