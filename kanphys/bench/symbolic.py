"""``kanphys bench symbolic``: does symbolic regression give back the exact formula?

Three parts, each judged by sympy (``simplify(found - truth) == 0`` or ``found.equals(truth)``)
after the constants are snapped:

- ``exp_sin``: exp(sin(pi x) + y^2) from 1000 samples on [-1, 1]^2 with
  :func:`kanphys.symbolic.regress` (target: exact, held-out RMSE <= 1e-6);
- ``poisson2d``: ``[2, 2, 1]`` KANs trained on ``problems/poisson2d.py`` without solution
  data (a short plan, seeds 0 to 7), the one with the lowest training loss read by
  :func:`kanphys.symbolic.cli.symbolic_run` (target: sin(pi x) sin(pi y) or an equivalent
  form, relative L2 <= 1e-5);
- ``feynman``: formulas of 1 to 4 variables from the Feynman symbolic regression benchmark
  (Udrescu and Tegmark 2020, their sampling ranges), 1000 samples each, next to pykan 0.2.8's
  ``auto_symbolic`` on the same samples when pykan is installed (``pip install -e '.[bench]'``).

A formula is only handed to sympy when its held-out relative RMSE is below 1e-6 (a formula
that misfits the data cannot be exact, and sympy can take long to say so). Floats the tool
left in it are then snapped by :func:`snap_floats` (rationals times 1, pi, 1/pi or square
roots of 2, pi and 2 pi, within 1e-6: ``0.0795774681`` becomes ``1/(4*pi)``) before sympy is
asked again. Symbols are positive where the sampling range is (``sqrt(a) sqrt(b) = sqrt(a b)``
there).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from kanphys.io.files import write_json, write_text
from kanphys.symbolic.regress import RegressOptions, regress, split

__all__ = [
    "FEYNMAN",
    "Formula",
    "equivalent",
    "feynman",
    "main",
    "markdown_table",
    "pykan_fit",
    "snap_floats",
]

log = logging.getLogger(__name__)
DEFAULT_JSON = Path("results") / "benchmarks" / "symbolic.json"
PROBLEM = Path(__file__).resolve().parents[2] / "problems" / "poisson2d.py"
PARTS = ("exp_sin", "poisson2d", "feynman")
EXACT_RTOL = 1e-6
POISSON_SEEDS = 8


@dataclass(frozen=True)
class Formula:
    """One benchmark formula: its Feynman number, variables, expression and sampling range."""

    name: str
    variables: tuple[str, ...]
    expression: str
    low: float = 1.0
    high: float = 5.0


FEYNMAN = (
    Formula("I.6.2a", ("theta",), "exp(-theta**2/2)/sqrt(2*pi)", 1, 3),
    Formula("I.6.2", ("sigma", "theta"), "exp(-(theta/sigma)**2/2)/(sqrt(2*pi)*sigma)", 1, 3),
    Formula("I.12.1", ("mu", "Nn"), "mu*Nn"),
    Formula("I.12.4", ("q1", "epsilon", "r"), "q1/(4*pi*epsilon*r**2)"),
    Formula("I.12.5", ("q2", "Ef"), "q2*Ef"),
    Formula("I.14.3", ("m", "g", "z"), "m*g*z"),
    Formula("I.14.4", ("k", "x"), "k*x**2/2"),
    Formula("I.25.13", ("q", "C"), "q/C"),
    Formula("I.27.6", ("d1", "d2", "n"), "1/(1/d1 + n/d2)"),
    Formula("I.29.4", ("omega", "c"), "omega/c", 1, 10),
    Formula("I.34.27", ("h", "omega"), "h*omega/(2*pi)"),
    Formula("I.39.1", ("pF", "V"), "3*pF*V/2"),
    Formula("I.43.31", ("mob", "kb", "T"), "mob*kb*T"),
    Formula("I.47.23", ("gamma", "pr", "rho"), "sqrt(gamma*pr/rho)"),
    Formula("II.3.24", ("P", "r"), "P/(4*pi*r**2)"),
    Formula("II.4.23", ("q", "epsilon", "r"), "q/(4*pi*epsilon*r)"),
    Formula("II.8.31", ("epsilon", "Ef"), "epsilon*Ef**2/2"),
    Formula("II.11.28", ("n", "alpha"), "1 + n*alpha/(1 - n*alpha/3)", 0, 1),
    Formula("II.27.18", ("epsilon", "Ef"), "epsilon*Ef**2"),
    Formula("II.38.14", ("Y", "sigma"), "Y/(2*(1 + sigma))"),
    Formula("III.12.43", ("n", "h"), "n*h/(2*pi)"),
    Formula("III.15.27", ("alpha", "n", "d"), "2*pi*alpha/(n*d)"),
    Formula("I.12.2", ("q1", "q2", "epsilon", "r"), "q1*q2/(4*pi*epsilon*r**2)"),
)


def _symbols(names: Sequence[str], positive: bool = False) -> dict:
    import sympy

    return {n: sympy.Symbol(n, real=True, positive=positive or None) for n in names}


def truth_of(formula: Formula):
    """The sympy expression of a benchmark formula (real symbols)."""
    import sympy

    return sympy.sympify(formula.expression, locals=_symbols(formula.variables))


def samples(formula: Formula, n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform samples of the formula's variables on its range, and its values."""
    import sympy

    rng = np.random.default_rng(seed)
    x = rng.uniform(formula.low, formula.high, (n, len(formula.variables)))
    symbols = _symbols(formula.variables)
    f = sympy.lambdify([symbols[v] for v in formula.variables], truth_of(formula), "numpy")
    return x, np.broadcast_to(np.asarray(f(*x.T), dtype=np.float64), (n,)).copy()


def equivalent(found, truth, names: Sequence[str], positive: bool = False) -> bool:
    """Whether sympy proves ``found == truth`` (both rewritten on real symbols ``names``,
    positive ones with ``positive``)."""
    import sympy

    symbols = _symbols(names, positive)
    found = sympy.sympify(str(found), locals=symbols)
    truth = sympy.sympify(str(truth), locals=symbols)
    try:
        if sympy.simplify(found - truth) == 0:
            return True
        return bool(found.equals(truth))
    except (TypeError, ValueError, RecursionError):  # sympy gives up on some forms
        return False


def _relative_rmse(rmse: float, y: np.ndarray) -> float:
    return rmse / max(float(np.sqrt(np.mean(y**2))), 1e-300)


def _factors() -> tuple:
    import sympy

    roots = (sympy.sqrt(2), sympy.sqrt(sympy.pi), sympy.sqrt(2 * sympy.pi))
    return (sympy.Integer(1), sympy.pi, 1 / sympy.pi, *roots, *(1 / r for r in roots[1:]))


def snap_floats(expression, names: Sequence[str] = (), rtol: float = EXACT_RTOL):
    """``expression`` with every float replaced by the one of ``p/q`` times 1, ``pi``,
    ``1/pi``, ``sqrt(2)``, ``sqrt(pi)``, ``sqrt(2 pi)``, ``1/sqrt(pi)`` or ``1/sqrt(2 pi)``
    (``q <= 100``) within ``rtol`` (relative) of it with the smallest ``q``:
    the benchmark's snapping, the same for every tool (``113/355`` is within 1e-7 of
    ``1/pi``; much larger ``q`` would match any float). ``names`` are read as symbols (not as
    sympy functions such as ``gamma``)."""
    import sympy

    factors = _factors()

    def close(value: float):
        found = []
        for factor in factors:
            ratio = Fraction(value / float(factor)).limit_denominator(100)
            exact = sympy.Rational(ratio.numerator, ratio.denominator) * factor
            if abs(float(exact) - value) <= rtol * abs(value):
                found.append((ratio.denominator, exact))
        return min(found, key=lambda pair: pair[0])[1] if found else value

    expression = sympy.sympify(str(expression), locals=_symbols(names))
    return expression.xreplace({f: close(float(f)) for f in expression.atoms(sympy.Float)})


def _judge(found, truth, names, rmse: float, y_test: np.ndarray, positive: bool = False) -> bool:
    if _relative_rmse(rmse, y_test) > EXACT_RTOL:
        return False
    snapped = snap_floats(found, names)
    return equivalent(found, truth, names, positive) or equivalent(snapped, truth, names, positive)


def kanphys_fit(formula: Formula, x, y, options: RegressOptions) -> dict[str, Any]:
    """Regress one formula from its samples with kanphys; its record."""
    started = time.perf_counter()
    found = regress(x, y, formula.variables, "f", options)
    seconds = time.perf_counter() - started
    expression = found.result.expressions[0]
    rmse = found.metrics["formula"]["rmse"]
    _, test = split(len(x), options.test_fraction, options.seed)
    return {
        "expression": str(expression),
        "test_rmse": rmse,
        "exact": _judge(
            expression, truth_of(formula), formula.variables, rmse, y[test], formula.low > 0
        ),
        "time_s": round(seconds, 2),
        "widths": found.metrics["widths"],
    }


def pykan_fit(formula: Formula, x, y, *, steps: int = 20, seed: int = 0) -> dict[str, Any]:
    """pykan 0.2.8 on the same samples and split, in its default float32: a ``[d, 5, 1]`` KAN
    trained with its sparsity penalty, pruned, retrained, ``auto_symbolic`` with its default
    library, retrained, then its formula with the constants rounded to 4 digits and passed to
    ``nsimplify`` (with pi); the formula is evaluated in float64."""
    import sympy
    import torch
    from kan import KAN

    train, test = split(len(x), 0.2, seed)
    tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    data = {
        "train_input": tensor(x[train]),
        "train_label": tensor(y[train]).reshape(-1, 1),
        "test_input": tensor(x[test]),
        "test_label": tensor(y[test]).reshape(-1, 1),
    }
    quiet = {"steps": steps, "log": steps + 1}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kanphys-pykan-") as scratch:  # its history file
        model = KAN(
            width=[x.shape[1], 5, 1], grid=5, k=3, seed=seed, auto_save=False, ckpt_path=scratch
        )
        model.fit(data, opt="LBFGS", lamb=1e-3, **quiet)
        model = model.prune()
        model.fit(data, opt="LBFGS", **quiet)
        model.auto_symbolic(verbose=0)
        model.fit(data, opt="LBFGS", update_grid=False, **quiet)
        expression = model.symbolic_formula(var=list(formula.variables))[0][0]
    seconds = time.perf_counter() - started
    expression = sympy.nsimplify(_round(expression, 4), [sympy.pi], tolerance=1e-4)
    symbols = _symbols(formula.variables)
    expression = sympy.sympify(str(expression), locals=symbols)
    f = sympy.lambdify([symbols[v] for v in formula.variables], expression, "numpy")
    with np.errstate(all="ignore"):
        predicted = np.broadcast_to(np.asarray(f(*x[test].T), dtype=np.float64), (len(test),))
    rmse = float(np.sqrt(np.mean((predicted - y[test]) ** 2)))
    rmse = rmse if math.isfinite(rmse) else math.inf
    return {
        "expression": str(expression),
        "test_rmse": rmse,
        "exact": _judge(
            expression, truth_of(formula), formula.variables, rmse, y[test], formula.low > 0
        ),
        "time_s": round(seconds, 2),
    }


def _round(expression, digits: int):
    import sympy

    return expression.xreplace(
        {a: sympy.Float(round(float(a), digits)) for a in expression.atoms(sympy.Float)}
    )


def _pykan_available() -> bool:
    try:
        import kan  # noqa: F401
    except ImportError:
        return False
    return True


def feynman(
    formulas: Sequence[Formula] = FEYNMAN,
    options: RegressOptions | None = None,
    *,
    pykan: bool = True,
    on_record: Callable[[dict], None] | None = None,
) -> list[dict[str, Any]]:
    """One record per formula: kanphys's result and, with ``pykan``, pykan's."""
    options = options or feynman_options()
    records = []
    for formula in formulas:
        x, y = samples(formula)
        record: dict[str, Any] = {
            "name": formula.name,
            "truth": formula.expression,
            "variables": list(formula.variables),
            "range": [formula.low, formula.high],
            "kanphys": kanphys_fit(formula, x, y, options),
        }
        if pykan:
            try:
                record["pykan"] = pykan_fit(formula, x, y)
            except Exception as error:  # pykan failing is a result too
                record["pykan"] = {"error": f"{type(error).__name__}: {error}", "exact": False}
        log.info("%s", record)
        records.append(record)
        if on_record is not None:
            on_record(record)
    return records


def feynman_options() -> RegressOptions:
    """Regression settings for the Feynman formulas: a small budget per formula (seconds)."""
    return RegressOptions(hidden=(3,), warmup=200, steps=100, lbfgs_steps=50, grids=(10,))


def exp_sin(quick: bool = False) -> dict[str, Any]:
    """Part (a): exp(sin(pi x) + y^2) from 1000 samples on [-1, 1]^2."""
    formula = Formula("exp_sin", ("x", "y"), "exp(sin(pi*x) + y**2)", -1, 1)
    x, y = samples(formula)
    options = RegressOptions(hidden=(1,), sparsify=None, warmup=200, grids=(10,), lbfgs_steps=50)
    record = kanphys_fit(formula, x, y, options)
    record["met"] = record["exact"] and record["test_rmse"] <= 1e-6
    return {"name": formula.name, "truth": formula.expression, **record}


def poisson2d(quick: bool = False, seeds: int = POISSON_SEEDS) -> dict[str, Any]:
    """Part (b): ``[2, 2, 1]`` KANs trained on poisson2d without solution data, one per seed;
    the one with the lowest final training loss is read by ``kanphys symbolic``.

    ``sin(pi x) sin(pi y) = (cos(pi (x - y)) - cos(pi (x + y))) / 2``: a ``[2, 2, 1]`` KAN
    with linear first-layer edges and cosine output edges represents it exactly, but training
    finds that structure only from some starting weights (others settle in a local minimum
    with a much higher loss), hence a few seeds and the loss to choose among them."""
    from kanphys.runner import RunOptions, run
    from kanphys.symbolic.cli import lowest_loss_run, symbolic_run

    steps = 30 if quick else 150
    seeds = min(seeds, 2) if quick else seeds
    overrides = {"width": 2, "lbfgs_steps": steps}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kanphys-bench-") as scratch:
        runs = [Path(scratch) / f"seed{seed}" for seed in range(seeds)]
        for seed, out in enumerate(runs):
            run(PROBLEM, RunOptions(out=out, seed=seed, overrides=overrides))
        chosen, losses = lowest_loss_run(runs)
        trained = time.perf_counter()
        result, metrics, _ = symbolic_run(chosen, out=Path(scratch) / "symbolic")
    expression = result.expressions[0]
    rel_l2 = metrics["formula"]["rel_l2"]["u"]
    exact = equivalent(expression, "sin(pi*x)*sin(pi*y)", ("x", "y"))
    return {
        "name": "poisson2d",
        "truth": "sin(pi*x)*sin(pi*y)",
        "expression": str(expression),
        "command": (
            f"kanphys run problems/poisson2d.py width=2 lbfgs_steps={steps} --seed S "
            f"(S = 0..{seeds - 1}), then kanphys symbolic RUN_DIR... (lowest final loss)"
        ),
        "widths": [2, 2, 1],
        "lbfgs_steps_per_stage": steps,
        "final_loss_by_seed": {Path(k).name: v for k, v in losses.items()},
        "chosen": chosen.name,
        "network_rel_l2": metrics["network"]["rel_l2"]["u"],
        "residual_rms": metrics["formula"]["residual_rms"],
        "rel_l2": rel_l2,
        "exact": exact,
        "met": bool(exact and rel_l2 <= 1e-5),
        "train_time_s": round(trained - started, 2),
        "symbolic_time_s": round(time.perf_counter() - trained, 2),
    }


def _rate(records: Sequence[dict], who: str) -> str:
    ran = [r for r in records if who in r]
    if not ran:
        return "not run"
    exact = sum(bool(r[who].get("exact")) for r in ran)
    return f"{exact}/{len(ran)} ({100 * exact / len(ran):.0f}%)"


def _times(records: Sequence[dict], who: str) -> str:
    seconds = [r[who]["time_s"] for r in records if "time_s" in r.get(who, {})]
    if not seconds:
        return "-"
    return f"{float(np.median(seconds)):.0f} s, {sum(seconds):.0f} s"


def _time(record: dict | None) -> str:
    return "-" if not record or "time_s" not in record else f"{record['time_s']:.0f}"


def _cell(record: dict | None) -> str:
    if not record:
        return "not run"
    if "error" in record:
        return f"error: {record['error'][:60]}"
    return f"{'yes' if record['exact'] else 'no'}: `{record['expression'][:70]}`"


def markdown_table(results: dict[str, Any]) -> str:
    """The results as Markdown: parts (a) and (b), then one row per Feynman formula."""
    settings = results["settings"]
    lines = [
        "# Symbolic regression: exact recovery",
        "",
        f"Generated by `kanphys bench symbolic` on {settings.get('date', '?')}, one thread, "
        f"float64, seed 0{' (quick)' if settings.get('quick') else ''}. Exact: sympy proves "
        "the formula equal to the truth, as it is or with its floats snapped to p/q times 1, "
        "pi, 1/pi, sqrt(2), sqrt(pi), sqrt(2 pi), 1/sqrt(pi) or 1/sqrt(2 pi) (q <= 100, "
        "within 1e-6; the same for both tools), and its held-out relative RMSE is <= 1e-6.",
        "",
    ]
    if settings.get("partial"):
        lines += [f"Partial results: {settings['partial']}.", ""]
    for part in ("exp_sin", "poisson2d"):
        r = results.get(part)
        if r is None:
            lines.append(f"- {part}: not run")
            continue
        error = r.get("test_rmse", r.get("rel_l2"))
        measure = "test RMSE" if "test_rmse" in r else "rel L2"
        lines.append(
            f"- {part}: `{r['expression']}` - exact {'yes' if r['exact'] else 'no'}, "
            f"{measure} {error:.2e}, target met {'yes' if r['met'] else 'no'}"
        )
        if "command" in r:
            lines.append(
                f"  (`{r['command']}`: {r['chosen']} chosen, network rel L2 "
                f"{r['network_rel_l2']:.1e}; training {r['train_time_s']:.0f} s, formula "
                f"{r['symbolic_time_s']:.0f} s)"
            )
    records = results.get("feynman", [])
    pykan_note = settings.get("pykan", "")
    lines += [
        "",
        f"Feynman formulas, exact recovery: kanphys {_rate(records, 'kanphys')}, "
        f"pykan 0.2.8 auto_symbolic {_rate(records, 'pykan')}{pykan_note}. "
        f"Time per formula (median, total): kanphys {_times(records, 'kanphys')}, "
        f"pykan {_times(records, 'pykan')}.",
        "",
        "| formula | truth | kanphys exact: formula | time (s) | pykan exact: formula | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['name']} | `{r['truth']}` | {_cell(r['kanphys'])} | {_time(r['kanphys'])} "
            f"| {_cell(r.get('pykan'))} | {_time(r.get('pykan'))} |"
        )
    return "\n".join(lines) + "\n"


def _save(path: Path, results: dict) -> None:
    write_json(path, results)
    write_text(path.with_suffix(".md"), markdown_table(results))


def main(args) -> int:
    """Entry point of ``kanphys bench symbolic``."""
    import torch

    torch.set_num_threads(args.threads)
    path = Path(args.json) if args.json else DEFAULT_JSON
    parts = args.only or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        print(f"kanphys: error: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
        return 2
    pykan = _pykan_available()
    results: dict[str, Any] = {
        "settings": {
            "date": time.strftime("%Y-%m-%d"),
            "quick": args.quick,
            "threads": args.threads,
            "pykan": "" if pykan else " (pykan not installed: pip install -e '.[bench]')",
        }
    }
    if args.only and path.exists():  # keep the parts not rerun
        old = json.loads(path.read_text())
        results.update({k: v for k, v in old.items() if k in PARTS and k not in parts})
    for part in ("exp_sin", "poisson2d"):
        if part in parts:
            results[part] = (exp_sin if part == "exp_sin" else poisson2d)(args.quick)
            _save(path, results)
    if "feynman" in parts:
        results["feynman"] = []
        formulas = FEYNMAN[:2] if args.quick else FEYNMAN

        def save(record: dict) -> None:
            results["feynman"].append(record)
            _save(path, results)

        feynman(formulas, feynman_options(), pykan=pykan, on_record=save)
    print(markdown_table(results))
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0
