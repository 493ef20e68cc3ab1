"""Symbolic regression of tabular data: train a sparse KAN, prune it, read off the formula.

:func:`regress` splits the samples into training and held-out points, trains a KAN on the
training points with the sparsity penalty, prunes it, retrains it on finer grids, turns it into
a formula tuned against the training misfit, and verifies network and formula on the held-out
points.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from kanphys.kan.basis import BSpline
from kanphys.kan.network import KAN
from kanphys.model import Surrogate
from kanphys.symbolic.laws import SymbolicOptions, SymbolicResult, formula_of
from kanphys.symbolic.sparsify import Sparsify, prune
from kanphys.symbolic.verify import data_metrics

__all__ = ["RegressOptions", "Regression", "fit_network", "regress", "split"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegressOptions:
    """How :func:`regress` trains and reads the KAN.

    Attributes:
        hidden: hidden layer widths (``(5,)``: a ``[d, 5, 1]`` KAN before pruning).
        grid: initial B-spline intervals.
        grids: finer grids the pruned network is extended to and retrained on.
        warmup: Adam steps before L-BFGS (from the random initial weights).
        steps: L-BFGS iterations with the sparsity penalty.
        lbfgs_steps: L-BFGS iterations without it, per grid.
        sparsify: the penalty of the first training (None: no penalty and no pruning).
        prune_threshold: attribution score below which nodes and edges are removed.
        smaller_first: with one hidden layer, try narrower networks ``[d, k, 1]`` (k = 1, 2,
            ...) before the pruned width, and stop at the first whose formula fits the
            validation points as well as its network or to ``exact_tolerance``.
        exact_tolerance: validation RMSE, relative to the spread of the outputs, that counts
            as exact.
        test_fraction: share of the samples held out for verification.
        validation_fraction: share of the training samples used to choose the width.
        seed: seeds the splits and the initial weights.
        symbolic: how the formula is fitted.
    """

    hidden: tuple[int, ...] = (5,)
    grid: int = 5
    grids: tuple[int, ...] = (10, 20)
    warmup: int = 300
    steps: int = 300
    lbfgs_steps: int = 100
    sparsify: Sparsify | None = field(default_factory=lambda: Sparsify(weight=3e-2))
    prune_threshold: float = 3e-2
    smaller_first: bool = True
    exact_tolerance: float = 1e-7
    test_fraction: float = 0.2
    validation_fraction: float = 0.2
    seed: int = 0
    symbolic: SymbolicOptions = field(default_factory=SymbolicOptions)


@dataclass
class Regression:
    """The result: the trained network, the formula, held-out metrics and the widths tried."""

    model: Surrogate
    result: SymbolicResult
    metrics: dict
    tried: list[dict] = field(default_factory=list)


def split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out indices of ``n`` samples (a seeded permutation)."""
    if not 0 < fraction < 1:
        raise ValueError(f"test fraction must lie in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * fraction))
    return order[n_test:], order[:n_test]


def _mse(model, x: Tensor, y: Tensor) -> Tensor:
    return (model(x) - y).square().mean()


def _lbfgs(model, x: Tensor, y: Tensor, steps: int, penalty: Sparsify | None = None) -> None:
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        max_iter=steps,
        history_size=50,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-14,
        tolerance_change=1e-16,
    )

    def closure():
        optimizer.zero_grad(set_to_none=True)
        loss = _mse(model, x, y)
        if penalty is not None:
            loss = loss + penalty.penalty(model, x)
        loss.backward()
        return loss

    optimizer.step(closure)


def _network(widths: list[int], x: Tensor, options: RegressOptions) -> Surrogate:
    net = KAN(
        widths,
        BSpline(grid=options.grid),
        generator=torch.Generator().manual_seed(options.seed),
        dtype=x.dtype,
    )
    lower, upper = x.min(0).values, x.max(0).values
    return Surrogate(net, lower.tolist(), upper.tolist())


def _adam(model: Surrogate, x: Tensor, y: Tensor, steps: int, lr: float = 2e-2) -> None:
    """Adam with the learning rate decaying tenfold: a warm start L-BFGS does not get alone."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.1 ** (step / max(steps - 1, 1))
        optimizer.zero_grad(set_to_none=True)
        _mse(model, x, y).backward()
        optimizer.step()


def _refine(model: Surrogate, x: Tensor, y: Tensor, options: RegressOptions) -> Surrogate:
    _lbfgs(model, x, y, options.lbfgs_steps)
    for grid in options.grids:
        model = model.extend_grid(grid, x)
        _lbfgs(model, x, y, options.lbfgs_steps)
    return model


def fit_network(x: Tensor, y: Tensor, options: RegressOptions = RegressOptions()) -> Surrogate:
    """Train (with the sparsity penalty), prune and refine a KAN surrogate on samples ``x``
    ``(N, d)``, ``y`` ``(N, 1)``; the input normalisation comes from the sample bounds and
    everything runs in ``x``'s dtype."""
    model = _network([x.shape[1], *options.hidden, y.shape[1]], x, options)
    _adam(model, x, y, options.warmup)
    if options.sparsify is not None:
        _lbfgs(model, x, y, options.steps, options.sparsify)
        model = prune(model, x, options.prune_threshold)
        log.info("pruned to widths %s", model.net.widths)
    return _refine(model, x, y, options)


def _candidates(pruned: Surrogate, x: Tensor, y: Tensor, options: RegressOptions):
    """Networks to read, simplest first: narrower ``[d, k, 1]``, then the pruned one."""
    widths = pruned.net.widths
    if options.smaller_first and len(widths) == 3:
        for k in range(1, widths[1]):
            model = _network([widths[0], k, widths[2]], x, options)
            _adam(model, x, y, options.warmup)
            yield _refine(model, x, y, options)
    yield pruned


def regress(
    x: np.ndarray,
    y: np.ndarray,
    inputs: tuple[str, ...],
    output: str,
    options: RegressOptions = RegressOptions(),
) -> Regression:
    """Find a formula ``output = f(inputs)`` from samples.

    Args:
        x: ``(N, d)`` input samples.
        y: ``(N,)`` output samples.
        inputs: the ``d`` input names (the formula's symbols).
        output: the output name.
        options: training, pruning and fitting settings.

    Returns:
        The trained network, the formula, and held-out metrics of both.

    Raises:
        ValueError: if the shapes do not match the names or the data is not finite.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    if x.ndim != 2 or x.shape[1] != len(inputs) or len(y) != len(x):
        raise ValueError(
            f"samples: x must be (N, {len(inputs)}) for inputs {inputs} and y (N,), "
            f"got {x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("samples contain NaN or infinite values")
    train, test = split(len(x), options.test_fraction, options.seed)
    fit_part, check_part = split(len(train), options.validation_fraction, options.seed + 1)
    xt, yt = torch.as_tensor(x[train]), torch.as_tensor(y[train])
    pruned = fit_network(xt[fit_part], yt[fit_part], options)
    model, result, tried = _select(
        pruned,
        (xt[fit_part], yt[fit_part]),
        (xt[check_part], yt[check_part]),
        inputs,
        output,
        options,
    )
    metrics = data_metrics(model, result.formula, x[test], y[test])
    metrics["n_train"], metrics["n_test"] = len(train), len(test)
    metrics["widths"] = model.net.widths
    metrics["pruned_widths"] = pruned.net.widths
    return Regression(model, result, metrics, tried)


def _select(pruned: Surrogate, fitting, checking, inputs, output, options: RegressOptions):
    """Read formulas off the candidate networks, simplest first; stop at the first formula
    that fits the validation points exactly or as well as its network. Returns the model and
    formula with the lowest validation error, and one record per network tried."""
    (xf, yf), (xv, yv) = fitting, checking
    scale = float(torch.cat([yf, yv]).std()) or 1.0
    tried, best = [], None
    for model in _candidates(pruned, xf, yf, options):
        result = formula_of(
            model,
            xf,
            lambda candidate: _mse(candidate, xf, yf),
            inputs=tuple(inputs),
            outputs=(output,),
            options=options.symbolic,
        )
        check = data_metrics(model, result.formula, xv.numpy(), yv.numpy())
        rmse = check["formula"]["rmse"]
        tried.append(
            {"widths": model.net.widths, "expression": str(result.expressions[0]), **check}
        )
        log.info(
            "widths %s: %s (validation rmse %.3g)", model.net.widths, result.expressions[0], rmse
        )
        if best is None or rmse < best[2]:
            best = (model, result, rmse)
        if rmse <= options.exact_tolerance * scale or rmse <= check["network"]["rmse"]:
            break
    return best[0], best[1], tried
