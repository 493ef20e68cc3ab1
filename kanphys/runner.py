"""From a problem file to a finished run directory: load, build, train, evaluate, write."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kanphys.evaluate import error_metrics, evaluate_fields, evaluation_grid
from kanphys.io.fields import write_fields_h5, write_fields_vtu
from kanphys.io.files import write_csv, write_json, write_text
from kanphys.io.run import Run
from kanphys.kan import KAN, BSpline
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
    return model_keys, {k: v for k, v in overrides.items() if k not in names}


def default_model(problem: Problem, grid: int = 5, width: int = 10) -> KAN:
    """A ``[d, width, m]`` cubic B-spline KAN."""
    return KAN([problem.domain.dim, width, len(problem.fields)], basis=BSpline(grid=grid))


def build_model(
    problem: Problem,
    factory: Callable | None,
    kwargs: Mapping[str, Any],
    *,
    seed: int,
    dtype: torch.dtype,
    device,
) -> Surrogate:
    """Build the network with torch's RNG seeded locally (the global state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = factory(**kwargs) if factory is not None else default_model(problem, **kwargs)
    net = net.to(dtype=dtype, device=device)
    outputs = net.widths[-1] if hasattr(net, "widths") else None
    if outputs is not None and (net.widths[0], outputs) != (
        problem.domain.dim,
        len(problem.fields),
    ):
        raise ValueError(
            f"model maps {net.widths[0]} -> {outputs} values; problem {problem.name!r} "
            f"needs {problem.domain.dim} coordinates -> {len(problem.fields)} fields"
        )
    lower, upper = problem.domain.bounds
    return Surrogate(net, list(lower), list(upper), problem.initial_parameters())


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


def run(problem_file: str | Path, options: RunOptions = RunOptions()) -> Run:
    """Train the problem file's model on its problem and write a run directory."""
    source = load_problem_file(problem_file)
    model_kwargs, plan_overrides = split_overrides(source.model, options.overrides)
    plan = resolve_plan(source, options, plan_overrides)
    out = Path(options.out) if options.out else default_out(source.problem)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists and is not empty; choose another --out or "
            f"continue it with `kanphys resume {out}`"
        )
    model = build_model(
        source.problem,
        source.model,
        model_kwargs,
        seed=options.seed,
        dtype=DTYPES[options.dtype],
        device=options.device,
    )
    config = {
        "problem_file": str(source.path),
        "problem": source.problem.name,
        **options.to_dict(),
        "plan": plan.to_dict(),
        "model": model.config(),
    }
    write_json(out / "config.json", config)
    write_text(out / "problem.txt", f"{source.problem}\n")
    trainer = Trainer(
        source.problem,
        model,
        plan,
        seed=options.seed,
        checkpoint=out / "checkpoint.pt",
        progress=options.progress,
    )
    return _train_and_finish(trainer, out, config)


def resume(run_dir: str | Path, *, progress: bool = False) -> Run:
    """Continue an interrupted run from its latest checkpoint, then finish it."""
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
        device=config["device"],
        progress=progress,
    )
    return _train_and_finish(trainer, previous.path, config)


def _train_and_finish(trainer: Trainer, out: Path, config: dict[str, Any]) -> Run:
    trainer.fit()
    finish(trainer, out, config)
    return Run.load(out)


def finish(trainer: Trainer, out: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """Write history, fields and metrics of a trained run into ``out``; return the metrics."""
    problem, model = trainer.problem, trainer.model
    write_csv(out / "history.csv", trainer.columns, trainer.rows)
    grid = evaluation_grid(problem.domain, config.get("resolution"))
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
    }
    write_fields_vtu(out / "fields.vtu", grid, values)
    write_fields_h5(
        out / "fields.h5",
        grid,
        values,
        coordinates=problem.coordinates,
        fields=problem.fields,
        problem=problem.name,
        metadata={"metrics": metrics, "config": dict(config)},
    )
    write_json(out / "metrics.json", metrics)
    log.info("wrote %s: rel_l2 %s", out, metrics["rel_l2"])
    return metrics


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
