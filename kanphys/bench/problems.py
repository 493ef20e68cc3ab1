"""``kanphys bench problems``: the problem library, a KAN and an MLP baseline on each problem.

Both models train by the problem file's plan, with the same seed, collocation points and
wall-time budget (training stops after the step that crosses the budget). The MLP is the
runner's baseline (``model=mlp``: a tanh MLP with about as many parameters as the KAN; grid
steps skipped). Errors are measured on the evaluation grid of the runner against the exact or
reference solution, plus each problem's own measure where the table needs one (cavity
centerlines, plate displacement, inverse coefficient).

``kanphys bench problems --json results/benchmarks/problems.json`` writes one record per
problem and model (``problem``, ``model``, ``rel_l2`` per field, ``wall_time_s``, ``n_params``,
``steps``, ``anchor``, ``target``, ``measured``, ``met``, ``budget_s``) and a Markdown table
beside it. With ``--only``, records of other problems already in the file are kept, so the
table can be filled one problem at a time.

``--keep DIR`` keeps each run's directory, ``DIR/<problem>-<model>/`` (config, checkpoint,
history, metrics, fields: ``kanphys plot`` and ``kanphys export`` read it), and
``--figures DIR`` writes a compact catalogue figure per run (solution, error, loss history:
``DIR/<problem>.png`` for the KAN, ``DIR/<problem>-mlp.png`` for the baseline).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kanphys.evaluate import evaluation_grid
from kanphys.io.files import write_json, write_text
from kanphys.runner import DTYPES, ProblemFile, RunOptions, build_model, finish, load_problem_file
from kanphys.train.plan import Plan
from kanphys.train.trainer import Trainer

__all__ = [
    "PROBLEMS",
    "TRUE_PARAMETERS",
    "Entry",
    "Outputs",
    "benchmark",
    "caption",
    "keep_run",
    "main",
    "markdown_table",
    "measure",
    "merge_records",
    "redraw",
    "train_with_budget",
    "write_figure",
]

log = logging.getLogger(__name__)
FOLDER = Path(__file__).resolve().parents[2] / "problems"
DEFAULT_JSON = Path("results") / "benchmarks" / "problems.json"
FIGURE_BYTES = 200_000  # catalogue figures above this are reduced to 256 colours


@dataclass(frozen=True)
class Entry:
    """One row of the table: the published anchor and the target of a problem.

    Attributes:
        name: the problem file's stem in ``problems/``.
        anchor: the best published result found (text).
        target: the goal per measure, e.g. ``{"u": 1e-3}``; measures are ``rel_l2`` fields or
            the problem's own (see :func:`measure`).
    """

    name: str
    anchor: str
    target: Mapping[str, float]


PROBLEMS = (
    Entry("poisson2d_exact", "KAN paper [2,10,1]: MSE ~1e-7", {"u": 1e-4}),
    Entry("poisson_holes", "MLP PINN ~1e-2", {"u": 1e-3}),
    Entry("helmholtz2d", "adaptive KAN 1.0-1.8e-3; MLP+RBA 3.5e-3", {"u": 5e-4}),
    Entry("diffusion1d", "adaptive KAN 2.1e-4", {"u": 5e-5}),
    Entry("wave1d", "MLP PINN ~1e-1", {"u": 1e-2}),
    Entry("advection", "MLP with curriculum 2.0e-2", {"u": 1e-2}),
    Entry("burgers", "adaptive KAN 2.4e-2; MLP 1.5e-2", {"u": 5e-3}),
    Entry("allen_cahn", "Chebyshev KAN 5.2e-2; best MLP 2.2e-5", {"u": 1e-2}),
    Entry("kovasznay", "none found", {"u": 1e-3, "v": 1e-3}),
    Entry("cavity", "Ghia et al. centerline tables", {"u_centerline": 2e-2, "v_centerline": 2e-2}),
    Entry("plate_hole", "KINN strong form 6.3e-3", {"displacement": 5e-3}),
    Entry("inverse_diffusion", "adaptive KAN: 3.6% error at heavy noise", {"D": 1e-2}),
)


TRUE_PARAMETERS = {"inverse_diffusion": {"D": 0.25}}


@dataclass(frozen=True)
class Outputs:
    """What a benchmark run leaves besides its record.

    Attributes:
        keep: folder for each run's directory, ``KEEP/<problem>-<model>/`` (the files of
            ``kanphys run``); None keeps none.
        figures: folder for the catalogue figures, ``<problem>.png`` (KAN) and
            ``<problem>-mlp.png`` (PNG, 100 dpi); None writes none.
    """

    keep: Path | None = None
    figures: Path | None = None


class _OutOfTime(Exception):
    """Raised by the training callback once the wall-time budget is spent."""


def train_with_budget(trainer: Trainer, budget_s: float | None) -> bool:
    """Run ``trainer`` to the end of its plan or until ``budget_s`` seconds of training.

    Returns:
        True if the budget stopped training before the plan's end.
    """

    def stop_when_spent(current: Trainer) -> None:
        if budget_s is not None and current.elapsed >= budget_s:
            raise _OutOfTime

    try:
        trainer.fit(callback=stop_when_spent)
    except _OutOfTime:
        log.info("%s: budget of %.0f s spent", trainer.problem.name, budget_s)
        return True
    return False


def _values(model, points: np.ndarray) -> np.ndarray:
    """Model values ``(M, m)`` in float64 (forward passes only, in chunks)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(points), 8192):
            x = torch.as_tensor(points[start : start + 8192], dtype=model.dtype)
            out.append(model(x.to(model.device)).to(torch.float64).cpu().numpy())
    return np.concatenate(out)


def _exact(problem, points: np.ndarray) -> np.ndarray:
    x = torch.as_tensor(points, dtype=torch.float64)
    columns = [problem.exact[f](x).reshape(-1).detach().numpy() for f in problem.fields]
    return np.stack(columns, axis=1)


def _relative(error: np.ndarray, exact: np.ndarray) -> float:
    norm = float(np.linalg.norm(exact))
    return float(np.linalg.norm(error)) / norm if norm > 0 else float(np.linalg.norm(error))


def measure(problem, model, resolution: int | None = None) -> dict[str, Any]:
    """Relative L2 errors per field on the evaluation grid, and the problem's own measures.

    The problem's own measures: ``cavity``: relative L2 of ``u`` on ``x = 0.5`` and of ``v``
    on ``y = 0.5`` (129 points each) against the reference, and against Ghia et al.'s tables
    (``*_ghia``); ``plate_hole``: relative L2 of the displacement vector;
    ``inverse_diffusion``: the relative error of each recovered parameter
    (:data:`TRUE_PARAMETERS`).
    """
    grid = evaluation_grid(problem.domain, resolution)
    predicted, exact = _values(model, grid.points), _exact(problem, grid.points)
    rel = {
        f: _relative(predicted[:, i] - exact[:, i], exact[:, i])
        for i, f in enumerate(problem.fields)
    }
    measured: dict[str, float] = dict(rel)
    special = SPECIAL.get(problem.name)
    if special is not None:
        measured.update(special(problem, model, predicted, exact))
    return {"rel_l2": rel, "measured": measured}


def _cavity(problem, model, predicted, exact) -> dict[str, float]:
    from kanphys.reference import GHIA_RE100_U, GHIA_RE100_V

    s = np.linspace(0.0, 1.0, 129)
    middle = np.full_like(s, 0.5)
    out = {}
    for name, index, points in (
        ("u_centerline", 0, np.column_stack([middle, s])),
        ("v_centerline", 1, np.column_stack([s, middle])),
    ):
        mine, reference = _values(model, points)[:, index], _exact(problem, points)[:, index]
        out[name] = _relative(mine - reference, reference)
    for name, index, table, axis in (
        ("u_centerline_ghia", 0, GHIA_RE100_U, 1),
        ("v_centerline_ghia", 1, GHIA_RE100_V, 0),
    ):
        points = np.full((len(table), 2), 0.5)
        points[:, axis] = table[:, 0]
        mine = _values(model, points)[:, index]
        out[name] = _relative(mine - table[:, 1], table[:, 1])
    return out


def _plate(problem, model, predicted, exact) -> dict[str, float]:
    return {"displacement": _relative(predicted - exact, exact)}


def _parameters(problem, model, predicted, exact) -> dict[str, float]:
    true = TRUE_PARAMETERS[problem.name]
    return {
        name: abs(float(p.detach()) - true[name]) / abs(true[name])
        for name, p in model.params.items()
        if name in true
    }


SPECIAL: dict[str, Callable] = {
    "cavity": _cavity,
    "plate_hole": _plate,
    "inverse_diffusion": _parameters,
}


def run_one(
    source: ProblemFile,
    entry: Entry,
    kind: str,
    *,
    plan: Plan,
    budget_s: float | None,
    seed: int = 0,
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    """Train one model (``"kan"`` or ``"mlp"``) on one problem; return its record.

    Raises:
        FileExistsError: if the run directory to keep exists and is not empty.
    """
    problem = source.problem
    out = None if outputs.keep is None else Path(outputs.keep) / f"{problem.name}-{kind}"
    if out is not None and out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose another --keep folder")
    model = build_model(
        problem,
        source.model,
        {},
        seed=seed,
        dtype=DTYPES["float32"],
        device="cpu",
        baseline=kind,
    )
    trainer = Trainer(problem, model, plan, seed=seed)
    started = time.perf_counter()
    stopped = train_with_budget(trainer, budget_s)
    log.info("%s/%s trained in %.1f s", problem.name, kind, time.perf_counter() - started)
    result = measure(problem, trainer.model)
    measured = result["measured"]
    met = all(measured.get(k, math.inf) <= v for k, v in entry.target.items())
    record = {
        "problem": problem.name,
        "model": kind,
        "rel_l2": result["rel_l2"],
        "measured": {k: measured[k] for k in sorted(measured)},
        "wall_time_s": round(trainer.elapsed, 2),
        "n_params": sum(p.numel() for p in trainer.model.net.parameters()),
        "steps": trainer.position.global_step,
        "stopped_by_budget": stopped,
        "parameters": {k: float(p.detach()) for k, p in trainer.model.params.items()},
        "anchor": entry.anchor,
        "target": dict(entry.target),
        "met": bool(met),
        "budget_s": budget_s,
    }
    if out is not None:
        keep_run(source, trainer, out, kind=kind, budget_s=budget_s)
    if outputs.figures is not None:
        name = problem.name if kind == "kan" else f"{problem.name}-{kind}"
        path = Path(outputs.figures) / f"{name}.png"
        write_figure(problem, trainer.model, _history(trainer), record, path)
    return record


def keep_run(
    source: ProblemFile, trainer: Trainer, out: Path, *, kind: str, budget_s: float | None
) -> None:
    """Write ``trainer``'s run directory into ``out`` as ``kanphys run`` does (config,
    problem, checkpoint, history, metrics, fields), so ``kanphys plot``/``export`` read it."""
    model = trainer.model
    if model.constraints is not None:  # so that Run.model() can rebuild them
        model.constraints = replace(model.constraints, source=str(source.path))
    options = RunOptions(seed=trainer.seed, overrides={} if kind == "kan" else {"model": kind})
    config = {
        "problem_file": str(source.path),
        "problem": source.problem.name,
        **options.to_dict(),
        "plan": trainer.plan.to_dict(),
        "model": model.config(),
        "world_size": 1,
        "budget_s": budget_s,
    }
    write_json(out / "config.json", config)
    write_text(out / "problem.txt", f"{source.problem}\n")
    trainer.checkpoint = out / "checkpoint.pt"
    trainer.save()
    finish(trainer, out, config)


def caption(record: Mapping[str, Any], widths: Sequence[int] | None = None) -> str:
    """One line for a catalogue figure: model, steps, training time and budget, error."""
    model = record["model"].upper() + (f" {list(widths)}" if widths else "")
    budget = record.get("budget_s")
    spent = f"{record['wall_time_s']:.0f} s" + (f" of a {budget:.0f} s budget" if budget else "")
    measured = ", ".join(f"{k} {_format(record['measured'].get(k))}" for k in record["target"])
    return f"{record['problem']}: {model}, {record['steps']} steps, {spent}; {measured}"


def write_figure(
    problem, model, history: dict[str, np.ndarray] | None, record: Mapping[str, Any], path: Path
) -> Path | None:
    """The catalogue figure of a trained model (:func:`kanphys.plot.catalogue_figure`), with
    :func:`caption` of its record as the title; None above two dimensions."""
    from kanphys.plot import catalogue_figure, write_png

    widths = getattr(model.net, "widths", None)
    figure = catalogue_figure(problem, model, history, caption(record, widths))
    if figure is None:
        log.info("%s: no catalogue figure above two dimensions", problem.name)
        return None
    return write_png(figure, path, max_bytes=FIGURE_BYTES)


def redraw(run_dir: str | Path, record: Mapping[str, Any], path: str | Path) -> Path | None:
    """The catalogue figure of a kept run directory (``--keep``) and its record, again
    (e.g. after a change of the figure), without training."""
    from kanphys.io.run import Run

    run = Run.load(run_dir)
    problem = load_problem_file(run.config["problem_file"]).problem
    return write_figure(problem, run.model(), run.history(), record, Path(path))


def _history(trainer: Trainer) -> dict[str, np.ndarray] | None:
    if not trainer.rows:
        return None
    table = np.asarray(trainer.rows, dtype=np.float64)
    return {name: table[:, i] for i, name in enumerate(trainer.columns)}


def benchmark(
    names: Sequence[str] | None = None,
    *,
    models: Sequence[str] = ("kan", "mlp"),
    budget_s: float | None = 1800.0,
    quick: bool = False,
    folder: Path = FOLDER,
    on_record: Callable[[dict], None] | None = None,
    outputs: Outputs = Outputs(),
) -> list[dict[str, Any]]:
    """Records of every (problem, model) pair, in table order.

    Args:
        names: problems to run (default all of :data:`PROBLEMS`).
        models: ``"kan"`` and/or ``"mlp"``.
        budget_s: training wall-time budget per model (None: the whole plan).
        quick: the quick plan of each file (smoke test).
        folder: where the problem files are.
        on_record: called with each record as soon as it exists (to save partial results).
        outputs: run directories and figures to keep (default none).

    Raises:
        ValueError: naming an unknown problem or model.
    """
    known = {e.name: e for e in PROBLEMS}
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise ValueError(f"unknown problem(s) {unknown}; the table has {sorted(known)}")
    bad = sorted(set(models) - {"kan", "mlp"})
    if bad:
        raise ValueError(f"unknown model(s) {bad}; choose from kan, mlp")
    records = []
    for entry in (known[n] for n in (names or known)):
        source = load_problem_file(folder / f"{entry.name}.py")
        plan = (source.quick_plan or source.plan.quick()) if quick else source.plan
        for kind in models:
            record = run_one(source, entry, kind, plan=plan, budget_s=budget_s, outputs=outputs)
            log.info("%s", record)
            records.append(record)
            if on_record is not None:
                on_record(record)
    return records


def merge_records(old: Sequence[dict], new: Sequence[dict]) -> list[dict]:
    """``old`` with the (problem, model) pairs of ``new`` replaced or added, in table order."""
    merged = {(r["problem"], r["model"]): r for r in old}
    merged.update({(r["problem"], r["model"]): r for r in new})
    order = {e.name: i for i, e in enumerate(PROBLEMS)}
    return sorted(merged.values(), key=lambda r: (order.get(r["problem"], 99), r["model"]))


def _format(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def markdown_table(records: Sequence[dict], settings: Mapping[str, Any]) -> str:
    """The results as Markdown: one row per problem and model, then what was not run."""
    lines = [
        "# Problem library: KAN and MLP baseline",
        "",
        f"Generated by `kanphys bench problems` (last on {settings.get('date', '?')}): one "
        "thread, float32 then the plan's L-BFGS dtype, seed 0; each row trained for at most "
        "its wall-time budget (`budget (s)`). `measured` is the error the target applies to "
        "(relative L2 unless stated).",
        "",
        "| problem | model | measured | target | met | rel L2 per field | params | steps "
        "| time (s) | budget (s) | anchor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        measured = ", ".join(f"{k} {_format(r['measured'].get(k))}" for k in r["target"])
        target = ", ".join(f"{k} <= {v:g}" for k, v in r["target"].items())
        rel = ", ".join(f"{k} {_format(v)}" for k, v in r["rel_l2"].items())
        stopped = " (budget)" if r.get("stopped_by_budget") else ""
        budget = r.get("budget_s")
        lines.append(
            f"| {r['problem']} | {r['model']} | {measured} | {target} | "
            f"{'yes' if r['met'] else 'no'} | {rel} | {r['n_params']} | {r['steps']}{stopped} | "
            f"{r['wall_time_s']:.0f} | {'-' if budget is None else f'{budget:.0f}'} | "
            f"{r['anchor']} |"
        )
    done = {r["problem"] for r in records}
    missing = [e.name for e in PROBLEMS if e.name not in done]
    if missing:
        lines += ["", f"Not run: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def _save(path: Path, records: list[dict], settings: dict) -> None:
    write_json(path, {"settings": settings, "records": records})
    write_text(path.with_suffix(".md"), markdown_table(records, settings))


def main(args) -> int:
    """Entry point of ``kanphys bench problems``."""
    torch.set_num_threads(args.threads)
    path = Path(args.json) if args.json else DEFAULT_JSON
    old = json.loads(path.read_text())["records"] if path.exists() and args.only else []
    budget = None if args.budget <= 0 else args.budget
    settings = {
        "date": time.strftime("%Y-%m-%d"),
        "budget": "no time budget" if budget is None else f"budget {budget:.0f} s per model",
        "threads": args.threads,
        "quick": args.quick,
    }
    if old:  # rows merged from earlier runs keep their own budgets
        settings["budget"] = "per row (budget_s)"
    new: list[dict] = []

    def save(record: dict) -> None:
        new.append(record)
        _save(path, merge_records(old, new), settings)

    try:
        benchmark(
            args.only or None,
            models=args.models.split(","),
            budget_s=budget,
            quick=args.quick,
            on_record=save,
            outputs=Outputs(args.keep, args.figures),
        )
    except (ValueError, FileExistsError) as error:
        print(f"kanphys: error: {error}")
        return 2
    for r in merge_records(old, new):
        print(f"{r['problem']:18s} {r['model']:4s} {r['measured']}  met {r['met']}")
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0
