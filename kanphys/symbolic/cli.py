"""``kanphys symbolic RUN_DIR`` and ``kanphys regress DATA.csv``: formulas and their files.

Both write, into one folder: ``formula.tex``, ``formula.py``, ``formula.json``,
``symbolic.json`` (per-edge choices with R^2, snapping, verification metrics) and
``symbolic_edges.png`` (each edge with its fit).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from kanphys.io.files import write_json
from kanphys.symbolic.export import edge_figure, write_formula_fields, write_formula_files
from kanphys.symbolic.laws import SymbolicOptions, SymbolicResult, formula_of
from kanphys.symbolic.library import make_library
from kanphys.symbolic.regress import RegressOptions, regress
from kanphys.symbolic.sparsify import Sparsify, prune
from kanphys.symbolic.verify import problem_metrics

__all__ = [
    "add_parsers",
    "lowest_loss_run",
    "main_regress",
    "main_symbolic",
    "read_table",
    "symbolic_run",
]

log = logging.getLogger(__name__)
FIGURE = "symbolic_edges.png"


def add_parsers(commands) -> None:
    """Add the ``symbolic`` and ``regress`` subcommands to the ``kanphys`` parser."""
    symbolic = commands.add_parser("symbolic", help="read a formula off a trained KAN run")
    symbolic.add_argument(
        "run_dir",
        type=Path,
        nargs="+",
        help="run directory; given several (e.g. seeds), the one with the lowest final loss",
    )
    symbolic.add_argument("--threshold", type=float, default=1e-2, help="pruning score (0: off)")
    symbolic.add_argument("--retrain", type=int, default=100, help="L-BFGS steps after pruning")
    symbolic.add_argument("--out", type=Path, help="folder for the files (default RUN_DIR)")
    symbolic.add_argument("--export", help="also write the formula's fields: vtu, vti, vts, h5")
    _common(symbolic)
    regression = commands.add_parser("regress", help="find a formula for tabular data")
    regression.add_argument("data", type=Path, help="CSV file with a header row")
    regression.add_argument("--inputs", required=True, help="input columns, e.g. x,y")
    regression.add_argument("--output", required=True, help="output column")
    regression.add_argument("--out", type=Path, help="folder (default DATA_symbolic beside it)")
    regression.add_argument("--hidden", default="5", help="hidden widths before pruning, e.g. 5")
    regression.add_argument("--warmup", type=int, default=300, help="Adam steps first")
    regression.add_argument("--steps", type=int, default=300, help="sparsified L-BFGS steps")
    regression.add_argument("--grids", default="10,20", help="finer grids to retrain on")
    regression.add_argument("--sparsity", type=float, default=3e-2, help="penalty weight")
    regression.add_argument("--threshold", type=float, default=3e-2, help="pruning score")
    regression.add_argument("--seed", type=int, default=0)
    _common(regression)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--library", help="comma-separated library functions (default all)")
    parser.add_argument("--no-snap", action="store_true", help="keep the fitted constants")
    parser.add_argument("--tune-steps", type=int, default=100, help="constant tuning (0: off)")
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="L,I,J=NAME",
        help="fix edge I->J of layer L to a library function or 'numeric' (repeat)",
    )


def _symbolic_options(args: argparse.Namespace) -> SymbolicOptions:
    library = tuple(n.strip() for n in args.library.split(",")) if args.library else None
    make_library(library)
    return SymbolicOptions(
        library=library,
        snap=not args.no_snap,
        tune_steps=args.tune_steps,
        fixed=dict(_parse_fix(item) for item in args.fix),
    )


def _parse_fix(item: str) -> tuple[tuple[int, int, int], str]:
    """``"0,1,0=sin"`` -> ``((0, 1, 0), "sin")``."""
    edge, sep, name = item.partition("=")
    parts = edge.split(",")
    if not sep or len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--fix {item!r} is not of the form LAYER,SOURCE,TARGET=NAME")
    layer, source, target = (int(p) for p in parts)
    return (layer, source, target), name.strip()


def _report(result: SymbolicResult, metrics: dict, extra: dict) -> dict:
    return {
        "expressions": {n: str(e) for n, e in zip(result.outputs, result.expressions, strict=True)},
        "inputs": list(result.inputs),
        "edges": [e.to_dict() for e in result.edges],
        "error_before_snap": result.error_before_snap,
        "error": result.error,
        "snapping": result.snapping,
        "verification": metrics,
        **extra,
    }


def write_outputs(folder: Path, result: SymbolicResult, metrics: dict, extra: dict, library):
    """Write the formula files, ``symbolic.json`` and the edge figure into ``folder``."""
    written = write_formula_files(folder, result.formula)
    write_json(folder / "symbolic.json", _report(result, metrics, extra))
    written.append(folder / "symbolic.json")
    written.append(edge_figure(folder / FIGURE, result.edges, library))
    return written


# --------------------------------------------------------------------------- run directories
def _term_points(problem, seed: int) -> dict:
    from kanphys.train.batch import sample_points
    from kanphys.train.plan import Sobol

    return sample_points(problem, Sobol(interior=2048, boundary=256), seed=seed, epoch=0)


def _pde_loss(problem, batch, weights):
    """The training loss (weighted mean squares of the residuals) of any model, by autograd."""
    from kanphys.train.batch import to_tensors
    from kanphys.train.loss import residuals

    def loss(model) -> torch.Tensor:
        terms = residuals(problem, model, to_tensors(batch, model.dtype, model.device))
        return sum(weights.get(name, 1.0) * r.square().mean() for name, r in terms.items())

    return loss


def _retrain(problem, model, weights, steps: int, seed: int):
    from kanphys.train.plan import LBFGS, Plan, Sobol
    from kanphys.train.trainer import Trainer

    plan = Plan(
        stages=(LBFGS(steps=steps),),
        sampler=Sobol(interior=2048, boundary=256),
        weights=weights,
        checkpoint_every=0,
    )
    return Trainer(problem, model, plan, seed=seed).fit()


def symbolic_run(
    run_dir: str | Path,
    *,
    threshold: float = 1e-2,
    retrain: int = 100,
    options: SymbolicOptions | None = None,
    out: str | Path | None = None,
    export: str | None = None,
) -> tuple[SymbolicResult, dict, list[Path]]:
    """Read a formula off a run's KAN, verify it, and write its files.

    Args:
        run_dir: a run directory (``kanphys run``).
        threshold: prune nodes and edges scoring below it first (0: no pruning).
        retrain: L-BFGS steps on the problem's loss after pruning.
        options: fitting, tuning and snapping.
        out: folder for the files (default the run directory).
        export: also write the formula's fields in this ``kanphys export`` format.

    Returns:
        The result, the verification metrics and the files written.
    """
    from kanphys.io.run import Run
    from kanphys.runner import load_problem_file

    options = options or SymbolicOptions()
    started = time.perf_counter()
    run = Run.load(run_dir)
    problem = load_problem_file(run.config["problem_file"]).problem
    weights = dict(run.config.get("plan", {}).get("weights", {}))
    seed = int(run.config.get("seed", 0))
    network = run.model().to(torch.float64)
    batch = _term_points(problem, seed)
    points = torch.as_tensor(np.concatenate([t.points for t in batch.values()]))
    model = network
    if threshold > 0:
        model = prune(network, points, threshold)
        log.info("pruned %s to %s", network.net.widths, model.net.widths)
        if retrain > 0:
            model = _retrain(problem, model, weights, retrain, seed)
    result = formula_of(
        model,
        points,
        _pde_loss(problem, batch, weights),
        inputs=tuple(problem.coordinates),
        outputs=tuple(problem.fields),
        options=options,
    )
    metrics = problem_metrics(problem, network, result.formula)
    metrics["pruned_network"] = problem_metrics(problem, model, model)["network"]
    folder = Path(out) if out is not None else Path(run_dir)
    extra = {
        "widths": network.net.widths,
        "pruned_widths": model.net.widths,
        "time_s": time.perf_counter() - started,
    }
    written = write_outputs(folder, result, metrics, extra, make_library(options.library))
    if export:
        target = folder / "export" / f"formula.{export if export != 'vtkhdf' else 'hdf'}"
        written += write_formula_fields(problem, result.formula, target, export)
    return result, metrics, written


def lowest_loss_run(run_dirs: list[str | Path]) -> tuple[Path, dict[str, float]]:
    """The run with the lowest final training loss (``metrics.json``) among runs of one
    problem and plan (for instance several seeds: a small KAN may need a few starts to find
    the structure of a law), and every run's loss.

    Raises:
        FileNotFoundError: naming a run without ``metrics.json``.
        ValueError: naming a run without a final loss.
    """
    losses: dict[str, float] = {}
    for run_dir in map(Path, run_dirs):
        path = run_dir / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} is not a finished run: no metrics.json")
        loss = json.loads(path.read_text()).get("final_loss")
        if loss is None or not np.isfinite(loss):
            raise ValueError(f"{path} has no finite final_loss ({loss!r})")
        losses[str(run_dir)] = float(loss)
    return Path(min(losses, key=losses.get)), losses


def main_symbolic(args: argparse.Namespace) -> int:
    run_dir, losses = lowest_loss_run(args.run_dir)
    if len(losses) > 1:
        print(f"reading {run_dir} (lowest final loss {losses[str(run_dir)]:.3g} of {len(losses)})")
    result, metrics, _ = symbolic_run(
        run_dir,
        threshold=args.threshold,
        retrain=args.retrain,
        options=_symbolic_options(args),
        out=args.out,
        export=args.export,
    )
    _print(result, metrics)
    return 0


def _print(result: SymbolicResult, metrics: dict) -> None:
    for name, expr in zip(result.outputs, result.expressions, strict=True):
        print(f"{name} = {expr}")
    for who in ("network", "formula"):
        print(f"{who:8s} {metrics[who]}")


# ------------------------------------------------------------------------------- regression
def read_table(path: str | Path, columns: list[str]) -> np.ndarray:
    """The named columns ``(N, k)`` of a CSV file with a header row.

    Raises:
        ValueError: naming a missing column, or a row with a value that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    if not rows:
        raise ValueError(f"{path} is empty")
    header = [name.strip() for name in rows[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; the columns are {header}")
    index = [header.index(c) for c in columns]
    data = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            data.append([float(row[i]) for i in index])
        except (ValueError, IndexError) as error:
            raise ValueError(f"{path}, line {number}: {error}") from error
    if not data:
        raise ValueError(f"{path} has no data rows")
    return np.array(data, dtype=np.float64)


def main_regress(args: argparse.Namespace) -> int:
    inputs = [n.strip() for n in args.inputs.split(",") if n.strip()]
    table = read_table(args.data, [*inputs, args.output])
    hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
    options = RegressOptions(
        hidden=hidden,
        warmup=args.warmup,
        steps=args.steps,
        grids=tuple(int(g) for g in args.grids.split(",") if g.strip()),
        sparsify=Sparsify(weight=args.sparsity) if args.sparsity > 0 else None,
        prune_threshold=args.threshold,
        seed=args.seed,
        symbolic=_symbolic_options(args),
    )
    started = time.perf_counter()
    found = regress(table[:, :-1], table[:, -1], tuple(inputs), args.output, options)
    folder = args.out or args.data.with_name(f"{args.data.stem}_symbolic")
    extra = {"data": str(args.data), "tried": found.tried, "time_s": time.perf_counter() - started}
    library = make_library(options.symbolic.library)
    write_outputs(folder, found.result, found.metrics, extra, library)
    _print(found.result, found.metrics)
    print(f"wrote {folder}")
    return 0
