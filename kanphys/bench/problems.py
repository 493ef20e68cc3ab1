"""``kanphys bench problems``: the problem library, a KAN and an MLP baseline on each problem.

Both models train by the problem file's plan, with the same seed, collocation points and
wall-time budget (training stops after the step that crosses the budget). The MLP is the
runner's baseline (``model=mlp``: a tanh MLP with about as many parameters as the KAN; grid
steps skipped). Errors are measured on the evaluation grid of the runner against the exact or
reference solution, plus each problem's own measure where the table needs one (cavity
centerlines, plate displacement, inverse coefficient).

``kanphys bench problems --json results/benchmarks/problems.json`` writes one record per
problem and model (``problem``, ``model``, ``rel_l2`` per field, ``wall_time_s``, ``n_params``,
``steps``, ``anchor``, ``target``, ``measured``, ``met``) and a Markdown table beside it. With
``--only``, records of other problems already in the file are kept, so the table can be filled
one problem at a time.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kanphys.evaluate import evaluation_grid
from kanphys.io.files import write_json, write_text
from kanphys.runner import DTYPES, ProblemFile, build_model, load_problem_file
from kanphys.train.plan import Plan
from kanphys.train.trainer import Trainer

__all__ = [
    "PROBLEMS",
    "TRUE_PARAMETERS",
    "Entry",
    "benchmark",
    "main",
    "markdown_table",
    "measure",
    "merge_records",
    "train_with_budget",
]

log = logging.getLogger(__name__)
FOLDER = Path(__file__).resolve().parents[2] / "problems"
DEFAULT_JSON = Path("results") / "benchmarks" / "problems.json"


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
    Entry("poisson2d", "KAN paper [2,10,1]: MSE ~1e-7", {"u": 1e-4}),
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
) -> dict[str, Any]:
    """Train one model (``"kan"`` or ``"mlp"``) on one problem; return its record."""
    problem = source.problem
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
    return {
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
    }


def benchmark(
    names: Sequence[str] | None = None,
    *,
    models: Sequence[str] = ("kan", "mlp"),
    budget_s: float | None = 1800.0,
    quick: bool = False,
    folder: Path = FOLDER,
    on_record: Callable[[dict], None] | None = None,
) -> list[dict[str, Any]]:
    """Records of every (problem, model) pair, in table order.

    Args:
        names: problems to run (default all of :data:`PROBLEMS`).
        models: ``"kan"`` and/or ``"mlp"``.
        budget_s: training wall-time budget per model (None: the whole plan).
        quick: the quick plan of each file (smoke test).
        folder: where the problem files are.
        on_record: called with each record as soon as it exists (to save partial results).

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
            record = run_one(source, entry, kind, plan=plan, budget_s=budget_s)
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
        f"Generated by `kanphys bench problems` on {settings.get('date', '?')}: "
        f"{settings.get('budget', '?')}, one thread, float32 then the plan's L-BFGS dtype, "
        "seed 0. `measured` is the error the target applies to (relative L2 unless stated).",
        "",
        "| problem | model | measured | target | met | rel L2 per field | params | steps "
        "| time (s) | anchor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        measured = ", ".join(f"{k} {_format(r['measured'].get(k))}" for k in r["target"])
        target = ", ".join(f"{k} <= {v:g}" for k, v in r["target"].items())
        rel = ", ".join(f"{k} {_format(v)}" for k, v in r["rel_l2"].items())
        budget = " (budget)" if r.get("stopped_by_budget") else ""
        lines.append(
            f"| {r['problem']} | {r['model']} | {measured} | {target} | "
            f"{'yes' if r['met'] else 'no'} | {rel} | {r['n_params']} | {r['steps']}{budget} | "
            f"{r['wall_time_s']:.0f} | {r['anchor']} |"
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
        )
    except ValueError as error:
        print(f"kanphys: error: {error}")
        return 2
    for r in merge_records(old, new):
        print(f"{r['problem']:18s} {r['model']:4s} {r['measured']}  met {r['met']}")
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0
