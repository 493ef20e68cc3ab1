"""Symbolic regression of tabular data: train a sparse KAN, prune it, read off the formula.

:func:`regress` splits the samples into training and held-out points, trains a KAN on the
training points with the sparsity penalty, prunes it, retrains it on finer grids, turns it into
a formula tuned against the training misfit, and verifies network and formula on the held-out
points. Networks are read simplest first (a sum of functions of one input each, then narrower
hidden layers, then the pruned one). When no formula is exact and every output is positive, it
tries again on the logarithm of the outputs (products, quotients and powers become sums, which
a KAN represents edge by edge) and exponentiates the formula, tuned against the data itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

from kanphys.kan.basis import BSpline
from kanphys.kan.network import KAN
from kanphys.model import Surrogate
from kanphys.symbolic.laws import SymbolicOptions, SymbolicResult, formula_of
from kanphys.symbolic.sparsify import Sparsify, prune
from kanphys.symbolic.verify import data_metrics

__all__ = ["Exponential", "RegressOptions", "Regression", "fit_network", "regress", "split"]

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
        additive_first: before those, try ``[d, 1]`` (a sum of functions of one input each);
            it stops the search only when its formula is exact.
        log_outputs: when no formula is exact and all outputs are positive, repeat everything
            on ``log(output)`` and exponentiate the formula; keep whichever formula is exact or
            else fits the validation points better.
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
    additive_first: bool = True
    log_outputs: bool = True
    exact_tolerance: float = 1e-7
    test_fraction: float = 0.2
    validation_fraction: float = 0.2
    seed: int = 0
    symbolic: SymbolicOptions = field(default_factory=SymbolicOptions)


@dataclass
class Regression:
    """The result: the trained network, the formula, held-out metrics and the networks tried.

    ``target`` is ``"values"``, or ``"log"`` when the network was trained on the logarithm of
    the outputs (the formula is then the exponential of its composition).
    """

    model: Surrogate
    result: SymbolicResult
    metrics: dict
    tried: list[dict] = field(default_factory=list)
    target: str = "values"


class Exponential(nn.Module):
    """``exp`` of a model's outputs: a network trained on log values, in the data's units."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def device(self) -> torch.device:
        return self.model.device

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(self.model(x))


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


def _candidates(
    pruned: Surrogate, x: Tensor, y: Tensor, options: RegressOptions
) -> Iterator[tuple[Surrogate, bool]]:
    """Networks to read, simplest first, each with whether a formula as good as the network
    ends the search: ``[d, 1]``, narrower ``[d, k, 1]``, then the pruned one."""
    widths = pruned.net.widths
    if options.additive_first and len(widths) > 2:
        model = _network([widths[0], widths[-1]], x, options)
        _adam(model, x, y, options.warmup)
        yield _refine(model, x, y, options), False
    if options.smaller_first and len(widths) == 3:
        for k in range(1, widths[1]):
            model = _network([widths[0], k, widths[2]], x, options)
            _adam(model, x, y, options.warmup)
            yield _refine(model, x, y, options), True
    yield pruned, True


@dataclass
class _Found:
    """One formula read off one network, with its validation error."""

    model: Surrogate
    result: SymbolicResult
    rmse: float
    exact: bool
    target: str
    pruned: Surrogate


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
    fitting, checking = (xt[fit_part], yt[fit_part]), (xt[check_part], yt[check_part])
    targets = ["values"] + (["log"] if options.log_outputs and (y > 0).all() else [])
    best, tried = None, []
    for target in targets:
        found = _select(target, fitting, checking, inputs, output, options, tried)
        if best is None or (found.exact, -found.rmse) > (best.exact, -best.rmse):
            best = found
        if best.exact:
            break
    network = best.model if best.target == "values" else Exponential(best.model)
    metrics = data_metrics(network, best.result.formula, x[test], y[test])
    metrics["n_train"], metrics["n_test"] = len(train), len(test)
    metrics["widths"] = best.model.net.widths
    metrics["pruned_widths"] = best.pruned.net.widths
    metrics["target"] = best.target
    return Regression(best.model, best.result, metrics, tried, best.target)


def _select(target: str, fitting, checking, inputs, output, options, tried: list) -> _Found:
    """Train on ``target`` (the outputs or their log), read formulas off the candidate
    networks, simplest first, and stop at the first formula that fits the validation points
    exactly or as well as its network (when that may stop the search). Returns the formula
    with the lowest validation error; appends one record per network to ``tried``."""
    import sympy

    (xf, yf), (xv, yv) = fitting, checking
    values = yf if target == "values" else torch.log(yf)
    symbolic = options.symbolic
    if target == "log":
        symbolic = replace(symbolic, transform=sympy.exp)
    scale = float(torch.cat([yf, yv]).std()) or 1.0
    pruned = fit_network(xf, values, options)
    best = None
    for model, may_stop in _candidates(pruned, xf, values, options):
        result = formula_of(
            model,
            xf,
            lambda candidate: _mse(candidate, xf, yf),
            inputs=tuple(inputs),
            outputs=(output,),
            options=symbolic,
        )
        network = model if target == "values" else Exponential(model)
        check = data_metrics(network, result.formula, xv.numpy(), yv.numpy())
        rmse = check["formula"]["rmse"]
        exact = rmse <= options.exact_tolerance * scale
        tried.append(
            {
                "target": target,
                "widths": model.net.widths,
                "expression": str(result.expressions[0]),
                **check,
            }
        )
        log.info(
            "%s, widths %s: %s (validation rmse %.3g)",
            target,
            model.net.widths,
            result.expressions[0],
            rmse,
        )
        if best is None or rmse < best.rmse:
            best = _Found(model, result, rmse, exact, target, pruned)
        if exact or (may_stop and rmse <= check["network"]["rmse"]):
            break
    return best
