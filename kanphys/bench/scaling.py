"""``kanphys bench scaling``: the KAN paper's scaling law and KAN-versus-MLP accuracy per parameter.

Two studies, one process, one thread by default:

* ``fit``: supervised fitting of ``f(x, y) = exp(sin(pi x) + y^2)`` on ``[-1, 1]^2`` from 1000
  training and 1000 test samples in float64. KANs ``[2, 1, 1]`` and ``[2, 5, 1]`` grow their grid
  through 3, 5, 10, 20, 50, 100, 200 (then 500, 1000 while the error still scales), trained
  at every grid with L-BFGS (the paper's optimiser) until converged or out of budget
  (:func:`until_converged`), in three variants from the same start (:data:`OPTIMIZERS`: with
  and without a Jacobi rescaling of the variables, and torch's L-BFGS on the raw loss, which
  stalls), and as a reference with Levenberg-Marquardt; a further LM series of ``[2, 1, 1]``
  on 10000 samples shows where 1000 samples stop the law. tanh MLPs of depth 2 to 4 and
  width 5 to 200 are trained on the same data with Adam then L-BFGS. The slope of log test
  RMSE against log parameter count is fitted over the grids before the error levels off
  (:func:`scaling_window`).
* ``pde``: ``problems/poisson2d.py`` with a ``[2, 10, 1]`` KAN on grids 5, 10, 20, 50 (L-BFGS,
  then grid extension, as the problem file's plan) and MLPs from ``[2, 20, 20, 1]`` to
  ``[2, 100, 100, 100, 1]`` (Adam, then L-BFGS), each until its loss stops falling or its
  budget runs out, all in float64: relative L2 error, parameters and wall time.

``kanphys bench scaling --json results/benchmarks/scaling.json --figure
results/benchmarks/scaling.png`` writes the records, a Markdown report beside the JSON, and a
log-log figure with the ``N^-4`` reference line.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from kanphys.io.files import write_json, write_text
from kanphys.kan import KAN, MLP, BSpline
from kanphys.kan.layer import BASE_FUNCTIONS

__all__ = [
    "FULL",
    "QUICK",
    "Settings",
    "fit_slope",
    "fit_study",
    "gauss_newton_scale",
    "kan_jacobian",
    "lbfgs",
    "levenberg_marquardt",
    "main",
    "markdown_report",
    "merge_results",
    "pde_study",
    "plot",
    "run_study",
    "scaling_window",
    "target_function",
    "until_converged",
]

log = logging.getLogger(__name__)
DTYPE = torch.float64
POISSON = Path(__file__).resolve().parents[2] / "problems" / "poisson2d.py"
TARGET_SLOPE = -3.5
TARGET_TEXT = {True: "yes", False: "no", None: "-"}


def _mlp_widths(depths: Sequence[int], widths: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """``[2, w, ..., w, 1]`` with ``depth`` linear layers (``depth - 1`` hidden layers)."""
    return tuple((2, *[w] * (d - 1), 1) for d in depths for w in widths)


@dataclass(frozen=True)
class Settings:
    """Sizes and iteration budgets of the study (:data:`FULL` and :data:`QUICK`).

    Attributes:
        n_train: training samples of the fitted function.
        n_test: test samples.
        seed: seed of the samples and of the first model (restart ``r`` uses ``seed + r``).
        kan_widths: KAN shapes of the fitting study.
        grids: grids every KAN goes through.
        extra_grids: further grids, each tried only while the grid before was still in the
            scaling regime (its test error fell at least as ``1 / grid``, see
            :func:`scaling_window`).
        kan_optimizers: the L-BFGS variants each KAN is trained with, a series each (names
            of :data:`OPTIMIZERS`; Levenberg-Marquardt follows if ``lm_iters``).
        jacobi_floor: floor of the ``lbfgs-jacobi`` scaling, relative to the mean diagonal
            entry (:func:`gauss_newton_scale`).
        kan_iters: at most this many L-BFGS iterations at each grid; training stops earlier
            once ``chunk`` iterations lower the training RMSE by less than ``fit_rel_tol``.
        chunk: L-BFGS iterations per round of the convergence check (function fitting).
        fit_rel_tol: relative fall of the training RMSE over one round below which a fit has
            converged.
        restarts: random initialisations tried at the first grid; the one with the lowest
            training loss after ``restart_iters`` L-BFGS iterations is kept (the test data is not
            used to choose).
        restart_iters: L-BFGS iterations per restart.
        lm_iters: Levenberg-Marquardt iterations at each grid (0: no LM series).
        large_n_train: training samples of a further LM series of the ``[2, 1, 1]`` KAN (same
            test samples), which shows where 1000 samples stop the law (0: none).
        mlp_widths: MLP shapes of the fitting study.
        mlp_adam_steps: Adam steps before L-BFGS for the MLPs.
        mlp_lbfgs_iters: at most this many L-BFGS iterations for the MLPs, in rounds of
            ``mlp_chunk`` with the same convergence test as the KANs.
        mlp_chunk: L-BFGS iterations per round for the MLPs.
        pde_kan_stages: ``(grid, L-BFGS steps)`` of the PDE KAN, extended from one to the next:
            the problem file's steps, then further rounds of ``pde_chunk`` steps until converged.
        pde_kan_max: at most this many L-BFGS steps at each PDE grid.
        pde_mlp_widths: MLP shapes of the PDE study.
        pde_mlp_adam: Adam steps of the PDE MLPs.
        pde_mlp_lbfgs: at most this many L-BFGS steps of the PDE MLPs (rounds of ``pde_chunk``).
        pde_chunk: L-BFGS steps per round of the PDE convergence check.
        pde_rel_tol: relative fall of the PDE loss over one round below which training has
            converged.
        pde_interior: interior collocation points (None: the problem file's sampler).
        pde_boundary: boundary points (None: the problem file's sampler).
        pde_resolution: evaluation grid points per axis (None: the default 101).
    """

    n_train: int = 1000
    n_test: int = 1000
    seed: int = 0
    kan_widths: tuple[tuple[int, ...], ...] = ((2, 1, 1), (2, 5, 1))
    grids: tuple[int, ...] = (3, 5, 10, 20, 50, 100, 200)
    extra_grids: tuple[int, ...] = (500, 1000)
    kan_optimizers: tuple[str, ...] = ("lbfgs", "lbfgs-raw", "lbfgs-jacobi")
    jacobi_floor: float = 1e-2
    kan_iters: int = 500
    chunk: int = 250
    fit_rel_tol: float = 0.01
    restarts: int = 8
    restart_iters: int = 100
    lm_iters: int = 100
    large_n_train: int = 10000
    mlp_widths: tuple[tuple[int, ...], ...] = _mlp_widths((2,), (5, 10, 20, 50, 100, 200)) + (
        _mlp_widths((3, 4), (5, 10, 20, 50, 100))
    )
    mlp_adam_steps: int = 1000
    mlp_lbfgs_iters: int = 2000
    mlp_chunk: int = 1000
    pde_kan_stages: tuple[tuple[int, int], ...] = ((5, 300), (10, 400), (20, 800), (50, 800))
    pde_kan_max: int = 1100
    pde_mlp_widths: tuple[tuple[int, ...], ...] = (
        (2, 20, 20, 1),
        (2, 50, 50, 1),
        (2, 100, 100, 1),
        (2, 100, 100, 100, 1),
    )
    pde_mlp_adam: int = 1000
    pde_mlp_lbfgs: int = 1500
    pde_chunk: int = 300
    pde_rel_tol: float = 0.1
    pde_interior: int | None = 1024
    pde_boundary: int | None = 256
    pde_resolution: int | None = None


FULL = Settings()
QUICK = Settings(
    n_train=400,
    n_test=200,
    kan_widths=((2, 1, 1),),
    grids=(3, 5, 10),
    extra_grids=(),
    kan_iters=100,
    chunk=50,
    restarts=8,
    restart_iters=100,
    lm_iters=15,
    large_n_train=800,
    mlp_widths=((2, 5, 1),),
    mlp_adam_steps=30,
    mlp_lbfgs_iters=30,
    mlp_chunk=15,
    pde_kan_stages=((5, 8), (10, 8)),
    pde_kan_max=16,
    pde_mlp_widths=((2, 8, 8, 1),),
    pde_mlp_adam=10,
    pde_mlp_lbfgs=8,
    pde_chunk=4,
    pde_interior=128,
    pde_boundary=32,
    pde_resolution=21,
)


# ------------------------------------------------------------------------------ slope fitting
def fit_slope(n: Sequence[float], error: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of ``log(error) = intercept + slope * log(n)``."""
    if len(n) != len(error) or len(n) < 2:
        raise ValueError(f"fit_slope needs >= 2 matching points, got {len(n)} and {len(error)}")
    x = [math.log(v) for v in n]
    y = [math.log(v) for v in error]
    x_mean, y_mean = math.fsum(x) / len(x), math.fsum(y) / len(y)
    denominator = math.fsum((a - x_mean) ** 2 for a in x)
    if denominator == 0:
        raise ValueError("fit_slope needs at least two distinct sizes")
    slope = math.fsum((a - x_mean) * (b - y_mean) for a, b in zip(x, y, strict=True)) / denominator
    return slope, y_mean - slope * x_mean


def local_slopes(size: Sequence[float], error: Sequence[float]) -> list[float]:
    """``d log(error) / d log(size)`` between consecutive points."""
    return [
        math.log(error[i + 1] / error[i]) / math.log(size[i + 1] / size[i])
        for i in range(len(size) - 1)
    ]


def scaling_window(size: Sequence[float], error: Sequence[float], min_rate: float = 1.0) -> int:
    """The number of leading points before the error levels off.

    A point is kept while the error keeps falling at least as ``size^-min_rate`` from the point
    before (with ``min_rate = 1``: at least halving per doubling of the grid); the first step
    that falls slower, or rises, ends the window. The float64 round-off floor of this study
    (about 1e-15 relative) is far below every error reached, so it never ends a window first.
    """
    end = 1
    for rate in local_slopes(size, error):
        if not rate <= -min_rate:
            break
        end += 1
    return end


# ------------------------------------------------------------------------------ function fitting
def target_function(x: Tensor) -> Tensor:
    """``exp(sin(pi x) + y^2)`` of points ``(N, 2)``, as ``(N, 1)``."""
    return torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2].square())


@dataclass(frozen=True)
class Data:
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def make_data(n_train: int, n_test: int, seed: int) -> Data:
    """Uniform samples of :func:`target_function` on ``[-1, 1]^2`` in float64.

    The test samples are drawn first, so they are the same for every ``n_train``, and a
    larger training set holds a smaller one (same seed).
    """
    generator = torch.Generator().manual_seed(seed)
    x_test = 2 * torch.rand(n_test, 2, generator=generator, dtype=DTYPE) - 1
    x_train = 2 * torch.rand(n_train, 2, generator=generator, dtype=DTYPE) - 1
    return Data(x_train, target_function(x_train), x_test, target_function(x_test))


def n_params(model: nn.Module) -> int:
    """Trainable parameters: for a KAN ``G + k`` coefficients, ``w_b`` and ``w_s`` per edge."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def n_params_paper(model: KAN) -> int:
    """The KAN paper's count: ``G`` per edge (``15 G`` for ``[2, 5, 1]``)."""
    edges = sum(a * b for a, b in zip(model.widths[:-1], model.widths[1:], strict=False))
    return edges * model.basis.grid


def rmse(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(x) - y).square().mean().sqrt())


def until_converged(
    train_round: Callable[[int], int],
    error: Callable[[], float],
    max_steps: int,
    chunk: int,
    rel_tol: float,
) -> tuple[int, bool]:
    """Train in rounds of ``chunk`` steps until a round lowers ``error()`` by less than
    ``rel_tol`` (relative), or until ``max_steps`` steps are done.

    ``train_round(n)`` trains for at most ``n`` steps and returns the steps it did. Returns the
    steps done and whether the error converged (False: the budget ran out first).
    """
    done, before = 0, error()
    while done < max_steps:
        steps = train_round(min(chunk, max_steps - done))
        done += steps
        after = error()
        if steps == 0 or not after < (1 - rel_tol) * before:
            return done, True
        before = after
    return done, False


def lbfgs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    iters: int,
    history: int = 50,
    *,
    normalise: bool = True,
    scale: Tensor | None = None,
) -> int:
    """Minimise the mean square error by L-BFGS (strong Wolfe); returns the iterations done.

    It stops after ``iters`` iterations, or earlier when the loss or the step stop changing
    (tolerances near float64 round-off).

    Args:
        model: the model whose trainable parameters are optimised.
        x: ``(N, d)`` inputs.
        y: ``(N, m)`` targets.
        iters: at most this many iterations.
        history: stored curvature pairs.
        normalise: minimise the error divided by its value at the start. L-BFGS is invariant
            to a constant factor on the objective except for one test: ``torch.optim.LBFGS``
            keeps a curvature pair only when ``s^T y > 1e-10``, an absolute threshold. Near a
            minimum of a mean square error of 1e-9 or less (a KAN on a fine grid) ``s^T y``
            falls below it, every pair is discarded and the method silently becomes steepest
            descent. Normalised, the test is relative to the loss and the pairs are kept.
            False reproduces the raw behaviour.
        scale: a diagonal change of variables ``theta = theta_0 + scale * z`` (``(P,)``, in
            the order of ``model.parameters()``): L-BFGS on ``z`` with a diagonal initial
            inverse Hessian ``scale^2`` (see :func:`gauss_newton_scale`). None: plain.
    """
    if iters <= 0:
        return 0
    params = [p for p in model.parameters() if p.requires_grad]
    theta0 = _flat(params)
    if scale is not None and scale.shape != theta0.shape:
        shapes = f"{tuple(scale.shape)}, expected {tuple(theta0.shape)}"
        raise ValueError(f"lbfgs: scale has shape {shapes} (one entry per parameter)")
    unit = 1.0
    if normalise:
        with torch.no_grad():
            unit = float((model(x) - y).square().mean()) or 1.0
    z = None if scale is None else torch.zeros_like(theta0, requires_grad=True)
    variables = params if z is None else [z]
    optimizer = torch.optim.LBFGS(
        variables,
        lr=1.0,
        max_iter=iters,
        max_eval=3 * iters,
        history_size=history,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-20,
        tolerance_change=1e-30,
    )

    def closure() -> Tensor:
        if z is not None:
            _assign(params, theta0 + scale * z.detach())
        for p in params:
            p.grad = None
        loss = (model(x) - y).square().mean() / unit
        loss.backward()
        if z is not None:
            z.grad = scale * _flat([p.grad for p in params])
        return loss

    optimizer.step(closure)
    if z is not None:
        _assign(params, theta0 + scale * z.detach())
    return int(optimizer.state[variables[0]].get("n_iter", 0))


def _flat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _assign(params: Sequence[Tensor], theta: Tensor) -> None:
    """Copy the flat vector ``theta`` into ``params`` (in order)."""
    with torch.no_grad():
        for p, chunk in zip(params, theta.split([p.numel() for p in params]), strict=True):
            p.copy_(chunk.reshape(p.shape))


def gauss_newton_scale(model: KAN, x: Tensor, floor: float = 1e-2) -> Tensor:
    """The Jacobi scaling ``1 / sqrt(d + floor * mean(d))`` of a single-output KAN, ``(P,)``.

    ``d = diag(J^T J) / N`` is the diagonal of the Gauss-Newton matrix of the mean square
    error on ``x`` (:func:`kan_jacobian`): about the number of samples in a basis function's
    support, so the coefficients' entries shrink like ``1 / G`` while those of ``w_b`` and
    ``w_s`` do not. ``floor`` (relative to the mean entry, as the damping of
    :func:`levenberg_marquardt`) bounds the scale of parameters the samples hardly determine.
    """
    _, jac = kan_jacobian(model, x)
    diagonal = jac.square().mean(dim=0)
    return (diagonal + floor * diagonal.mean()).rsqrt()


def adam(model: nn.Module, x: Tensor, y: Tensor, steps: int, lr: float = 1e-3) -> None:
    """Adam on the mean square error, the rate decaying geometrically to ``lr / 10``."""
    if steps <= 0:
        return
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.1 ** (step / max(steps - 1, 1))
        optimizer.zero_grad(set_to_none=True)
        (model(x) - y).square().mean().backward()
        optimizer.step()


def kan_jacobian(model: KAN, x: Tensor) -> tuple[Tensor, Tensor]:
    """Outputs ``(N,)`` and the Jacobian ``(N, P)`` of a single-output KAN on ``x``.

    Every layer's output is linear in its spline coefficients, in ``w_s`` and in ``w_b``, so the
    Jacobian is the basis values times the sensitivity of the network output to that layer's
    output (one backward pass: samples do not interact). Columns follow
    ``model.parameters()``.
    """
    if model.widths[-1] != 1:
        raise ValueError(f"kan_jacobian needs one output, the KAN has widths {model.widths}")
    inputs, outputs = [], []
    value = x
    for layer in model.layers:
        inputs.append(value.detach())
        value = layer(value)
        value.retain_grad()
        outputs.append(value)
    value.sum().backward()
    columns = []
    with torch.no_grad():
        for layer, a, z in zip(model.layers, inputs, outputs, strict=True):
            sensitivity, basis = z.grad, layer.basis_values(a)
            for name, parameter in layer.named_parameters(recurse=False):
                if name == "coef":
                    spec, other = "nj,nik,ij->nikj", layer.scale_spline
                elif name == "scale_spline":
                    spec, other = "nj,nik,ikj->nij", layer.coef
                else:
                    spec, other = "nj,ni->nij", None
                if other is None:
                    block = torch.einsum(spec, sensitivity, BASE_FUNCTIONS[layer.base](a))
                else:
                    block = torch.einsum(spec, sensitivity, basis, other)
                columns.append(block.reshape(len(a), parameter.numel()))
    model.zero_grad(set_to_none=True)
    return value.detach().reshape(-1), torch.cat(columns, dim=1)


def levenberg_marquardt(model: KAN, x: Tensor, y: Tensor, iters: int) -> int:
    """Minimise the squared error of a single-output KAN by Levenberg's damped Gauss-Newton.

    The damping is a multiple of the identity (relative to the mean diagonal of ``J^T J``), so
    parameters the samples hardly determine (splines over sparsely sampled ranges) stay near
    their values instead of being fitted to noise; with more parameters than samples the step
    is solved in the sample space. Stops after ``iters`` iterations, when the relative decrease
    falls below 1e-12, or when no damping gives a decrease. Returns the iterations done.
    """
    params = list(model.parameters())
    sizes = [p.numel() for p in params]
    target = y.reshape(-1)

    def assign(theta: Tensor) -> None:
        with torch.no_grad():
            for p, chunk in zip(params, theta.split(sizes), strict=True):
                p.copy_(chunk.reshape(p.shape))

    theta = torch.cat([p.detach().reshape(-1) for p in params])
    damping, done = 1e-3, 0
    while done < iters:
        done += 1
        out, jac = kan_jacobian(model, x)
        residual = out - target
        loss = float(residual.square().sum())
        dual = jac.shape[1] > jac.shape[0]
        normal = jac @ jac.T if dual else jac.T @ jac
        rhs = residual if dual else jac.T @ residual
        eye = torch.eye(len(normal), dtype=normal.dtype)
        level = float(torch.diagonal(normal).mean()) + 1e-300
        improved = False
        while damping < 1e12:
            factor, info = torch.linalg.cholesky_ex(normal + damping * level * eye)
            if int(info) != 0:
                damping *= 10
                continue
            solved = torch.cholesky_solve(rhs[:, None], factor)[:, 0]
            step = -(jac.T @ solved if dual else solved)
            assign(theta + step)
            with torch.no_grad():
                trial = float((model(x).reshape(-1) - target).square().sum())
            if trial < loss:
                theta, improved = theta + step, True
                damping = max(damping / 3, 1e-15)
                break
            damping *= 4
        assign(theta)
        if not improved or loss - trial <= 1e-12 * loss:
            break
    return done


def _initial_kan(widths: Sequence[int], data: Data, s: Settings) -> tuple[KAN, int]:
    """The best of ``s.restarts`` random KANs on the first grid (by training loss).

    Each restart runs ``s.restart_iters`` L-BFGS iterations in four rounds, after each of which
    every layer's grid is reset uniformly over the range of its inputs on the training samples
    (as pykan updates grids early in training), so the hidden layers' grids follow their inputs.
    """
    best, best_loss, best_seed = None, math.inf, s.seed
    for restart in range(s.restarts):
        generator = torch.Generator().manual_seed(s.seed + restart)
        model = KAN(widths, BSpline(grid=s.grids[0]), generator=generator, dtype=DTYPE)
        for _ in range(4):
            lbfgs(model, data.x_train, data.y_train, max(s.restart_iters // 4, 1))
            model = model.update_grid(data.x_train, grid_eps=1.0)
        loss = rmse(model, data.x_train, data.y_train)
        log.info("restart %d of KAN %s: train RMSE %.3e", restart, list(widths), loss)
        if loss < best_loss:
            best, best_loss, best_seed = model, loss, s.seed + restart
    return best, best_seed


def fit_lbfgs(
    model: nn.Module, data: Data, s: Settings, *, normalise: bool = True, jacobi: bool = False
) -> tuple[int, bool]:
    """L-BFGS on the training data until converged (:func:`until_converged`).

    Each round is a fresh L-BFGS (its memory restarts); with ``jacobi`` it runs on the
    variables rescaled by :func:`gauss_newton_scale` at the start of the round.
    """

    def train_round(n: int) -> int:
        scale = gauss_newton_scale(model, data.x_train, s.jacobi_floor) if jacobi else None
        return lbfgs(model, data.x_train, data.y_train, n, normalise=normalise, scale=scale)

    return until_converged(
        train_round,
        lambda: rmse(model, data.x_train, data.y_train),
        s.kan_iters,
        s.chunk,
        s.fit_rel_tol,
    )


def fit_lm(model: KAN, data: Data, s: Settings) -> tuple[int, bool]:
    """Levenberg-Marquardt; converged when it stops before ``s.lm_iters``."""
    done = levenberg_marquardt(model, data.x_train, data.y_train, s.lm_iters)
    return done, done < s.lm_iters


OPTIMIZERS: dict[str, Callable[[KAN, Data, Settings], tuple[int, bool]]] = {
    "lbfgs": fit_lbfgs,
    "lbfgs-raw": lambda model, data, s: fit_lbfgs(model, data, s, normalise=False),
    "lbfgs-jacobi": lambda model, data, s: fit_lbfgs(model, data, s, jacobi=True),
    "lm": fit_lm,
}
OPTIMIZER_TEXT = {
    "lbfgs": "L-BFGS (history 50, strong Wolfe) on the mean square error divided by its value "
    "at the start of each round",
    "lbfgs-raw": "the same on the raw mean square error, as `torch.optim.LBFGS` runs it: it "
    "drops every curvature pair with `s^T y <= 1e-10` (an absolute threshold), which on a "
    "small loss turns it into steepest descent",
    "lbfgs-jacobi": "the default for the KAN fits: `lbfgs` on variables rescaled by the "
    "Gauss-Newton diagonal (`theta = theta_0 + D z`, "
    "`D = (diag(J^T J) / N + {jacobi_floor:g} mean)^-1/2`, recomputed at the start of each "
    "round), the variant that converges on fine grids",
}
"""The KAN optimisers by record name: L-BFGS on the normalised loss and Jacobi-rescaled
variables (``lbfgs-jacobi``, :func:`gauss_newton_scale`: the one that converges on fine grids,
the study's default), on the normalised loss alone (``lbfgs``), on the raw loss
(``lbfgs-raw``: ``torch.optim.LBFGS`` as is, which drops its curvature pairs on small losses,
see :func:`lbfgs`), and Levenberg-Marquardt (``lm``)."""


def kan_fit_series(
    widths: Sequence[int], data: Data, s: Settings, large: Data | None = None
) -> list[dict]:
    """A KAN through the grids, once per optimiser (``s.kan_optimizers``, then
    Levenberg-Marquardt if asked).

    All series start from the same KAN (:func:`_initial_kan`). With ``large`` (more training
    samples, the same test samples), a further LM series is fitted to those samples, through
    ``s.grids`` only (a Jacobian of 10000 samples by the parameters of grid 500 is too large).
    """
    started = time.perf_counter()
    start, seed = _initial_kan(widths, data, s)
    start_time = time.perf_counter() - started
    runs = [(name, data) for name in s.kan_optimizers]
    if s.lm_iters > 0:
        runs.append(("lm", data))
        if large is not None:
            runs.append(("lm", large))
    records = []
    for name, samples in runs:
        model = copy.deepcopy(start)
        settings = s if samples is data else replace(s, extra_grids=())
        records += grid_sequence(model, name, samples, settings, seed, start_time)
    return records


def grid_sequence(
    model: KAN, optimizer: str, data: Data, s: Settings, seed: int, elapsed: float
) -> list[dict]:
    """Extend ``model`` through the grids, training with ``optimizer`` at each; a record each.

    After the last grid of ``s.grids``, each of ``s.extra_grids`` is tried while the last step
    was still in the scaling regime (the test error fell at least as ``1 / grid``). Wall times
    are cumulative from ``elapsed``.
    """
    widths, series = model.widths, []
    grids, extra = list(s.grids), list(s.extra_grids)
    while grids:
        grid = grids.pop(0)
        stage_start = time.perf_counter()
        if grid != model.basis.grid:
            model = model.extend_grid(grid, data.x_train)
        iterations, converged = OPTIMIZERS[optimizer](model, data, s)
        stage = time.perf_counter() - stage_start
        elapsed += stage
        series.append(
            {
                "part": "fit",
                "model": "KAN",
                "widths": list(widths),
                "grid": grid,
                "optimizer": optimizer,
                "n_params": n_params(model),
                "n_params_paper": n_params_paper(model),
                "n_train": len(data.x_train),
                "train_rmse": rmse(model, data.x_train, data.y_train),
                "test_rmse": rmse(model, data.x_test, data.y_test),
                "iterations": iterations,
                "converged": converged,
                "seed": seed,
                "stage_time_s": round(stage, 3),
                "wall_time_s": round(elapsed, 3),
            }
        )
        log.info("%s", series[-1])
        errors = [r["test_rmse"] for r in series[-2:]]
        sizes = [r["grid"] for r in series[-2:]]
        improving = len(errors) == 2 and scaling_window(sizes, errors) == 2
        if not grids and extra and improving:
            grids.append(extra.pop(0))
    return series


def mlp_fit_record(widths: Sequence[int], data: Data, s: Settings) -> dict:
    """A tanh MLP trained by Adam then L-BFGS on the fitting data."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(s.seed)
    model = MLP(widths, generator=generator, dtype=DTYPE)
    adam(model, data.x_train, data.y_train, s.mlp_adam_steps)
    iterations, converged = until_converged(
        lambda n: lbfgs(model, data.x_train, data.y_train, n),
        lambda: rmse(model, data.x_train, data.y_train),
        s.mlp_lbfgs_iters,
        s.mlp_chunk,
        s.fit_rel_tol,
    )
    elapsed = time.perf_counter() - started
    record = {
        "part": "fit",
        "model": "MLP",
        "widths": list(widths),
        "grid": None,
        "optimizer": "adam+lbfgs",
        "n_params": n_params(model),
        "n_params_paper": None,
        "n_train": len(data.x_train),
        "train_rmse": rmse(model, data.x_train, data.y_train),
        "test_rmse": rmse(model, data.x_test, data.y_test),
        "iterations": s.mlp_adam_steps + iterations,
        "converged": converged,
        "seed": s.seed,
        "stage_time_s": round(elapsed, 3),
        "wall_time_s": round(elapsed, 3),
    }
    log.info("%s", record)
    return record


def fit_study(s: Settings) -> list[dict]:
    """Every KAN series and every MLP of the function-fitting study."""
    data = make_data(s.n_train, s.n_test, s.seed)
    large = make_data(s.large_n_train, s.n_test, s.seed) if s.large_n_train else None
    records = []
    for widths in s.kan_widths:
        records += kan_fit_series(widths, data, s, large if tuple(widths) == (2, 1, 1) else None)
    for widths in s.mlp_widths:
        records.append(mlp_fit_record(widths, data, s))
    return records


# ------------------------------------------------------------------------------ PDE study
@dataclass
class Progress:
    """A PDE surrogate under training and its totals so far (time, steps, last loss)."""

    model: nn.Module
    time_s: float = 0.0
    steps: int = 0
    loss: float = math.inf


def pde_study(s: Settings, problem_file: str | Path = POISSON) -> list[dict]:
    """poisson2d: a ``[2, 10, 1]`` KAN through the grids, and the MLPs, in float64.

    Every model is trained until converged: after its first stages, rounds of ``s.pde_chunk``
    L-BFGS steps go on until one lowers the loss by less than ``s.pde_rel_tol`` (or the step
    budget runs out; the record's ``converged`` says which).
    """
    from kanphys.evaluate import error_metrics, evaluate_fields, evaluation_grid
    from kanphys.runner import build_model, load_problem_file
    from kanphys.train.plan import LBFGS, Adam, ExtendGrid, Plan
    from kanphys.train.trainer import Trainer

    source = load_problem_file(problem_file)
    problem = source.problem
    sampler = source.plan.sampler
    changes = {"interior": s.pde_interior, "boundary": s.pde_boundary}
    sampler = replace(sampler, **{k: v for k, v in changes.items() if v is not None})
    grid_points = evaluation_grid(problem.domain, s.pde_resolution).points

    def run(progress: Progress, stages) -> int:
        plan = Plan(stages=stages, sampler=sampler, weights=source.plan.weights, checkpoint_every=0)
        trainer = Trainer(problem, progress.model, plan, seed=s.seed)
        started = time.perf_counter()
        progress.model = trainer.fit()
        progress.time_s += time.perf_counter() - started
        progress.steps += trainer.position.global_step
        progress.loss = trainer.rows[-1][3]
        return trainer.position.global_step

    def converge(progress: Progress, first_stages, budget: int) -> bool:
        run(progress, first_stages)
        return until_converged(
            lambda n: run(progress, [LBFGS(steps=n)]),
            lambda: progress.loss,
            budget,
            s.pde_chunk,
            s.pde_rel_tol,
        )[1]

    def record(kind, widths, grid, progress: Progress, converged: bool, stage: float) -> dict:
        values = evaluate_fields(problem, progress.model, grid_points, residuals=False)
        out = {
            "part": "pde",
            "model": kind,
            "widths": list(widths),
            "grid": grid,
            "optimizer": "lbfgs" if kind == "KAN" else "adam+lbfgs",
            "n_params": n_params(progress.model),
            "n_params_paper": n_params_paper(progress.model.net) if kind == "KAN" else None,
            "rel_l2": error_metrics(problem, values)["rel_l2"]["u"],
            "final_loss": progress.loss,
            "steps": progress.steps,
            "converged": converged,
            "seed": s.seed,
            "stage_time_s": round(stage, 3),
            "wall_time_s": round(progress.time_s, 3),
        }
        log.info("%s", out)
        return out

    def initial(factory) -> Progress:
        return Progress(build_model(problem, factory, {}, seed=s.seed, dtype=DTYPE, device="cpu"))

    records = []
    kan_widths = (problem.domain.dim, 10, len(problem.fields))
    first_grid = s.pde_kan_stages[0][0]
    progress = initial(lambda: KAN(kan_widths, basis=BSpline(grid=first_grid)))
    for grid, steps in s.pde_kan_stages:
        before = progress.time_s
        extend = [] if grid == progress.model.net.basis.grid else [ExtendGrid(grid=grid)]
        converged = converge(progress, [*extend, LBFGS(steps=steps)], s.pde_kan_max - steps)
        stage = progress.time_s - before
        records.append(record("KAN", kan_widths, grid, progress, converged, stage))
    for widths in s.pde_mlp_widths:
        progress = initial(lambda w=widths: MLP(w))
        adam_stage = Adam(steps=s.pde_mlp_adam, lr=1e-3, lr_final=1e-4)
        first = [adam_stage, LBFGS(steps=s.pde_chunk)]
        converged = converge(progress, first, s.pde_mlp_lbfgs - s.pde_chunk)
        records.append(record("MLP", widths, None, progress, converged, progress.time_s))
    return records


# ------------------------------------------------------------------------------ summaries
def series_key(record: dict) -> tuple:
    """Records of one scaling series share this key (an MLP series: one depth)."""
    samples = record.get("n_train")
    if record["model"] == "KAN":
        return (record["part"], "KAN", tuple(record["widths"]), record["optimizer"], samples)
    return (record["part"], "MLP", len(record["widths"]) - 1, record["optimizer"], samples)


def series_name(key: tuple) -> str:
    """``KAN [2, 1, 1] lbfgs, 1000 samples``, ``MLP depth 3 adam+lbfgs`` (PDE: no samples)."""
    _, kind, shape, optimizer, samples = key
    name = f"KAN {list(shape)} {optimizer}" if kind == "KAN" else f"MLP depth {shape} {optimizer}"
    return name if samples is None else f"{name}, {samples} samples"


def slopes(records: Sequence[dict]) -> list[dict]:
    """The fitted slope of every series with at least two points in its scaling window.

    KAN series run over the grid (the window is judged against the grid, see
    :func:`scaling_window`); MLP series run over the width at one depth (judged against the
    parameter count). The slope is fitted against the trainable parameter count
    (``slope``) and, for KANs, against the paper's count ``G`` per edge (``slope_paper``).

    A fitting KAN meets the target when ``slope_paper <= TARGET_SLOPE``: at a fixed width that
    count is proportional to the grid, the variable of the ``G^-4`` spline error, while the
    trainable count ``G + k + 2`` per edge grows more slowly than ``G`` on coarse grids and
    so makes every slope steeper (-5 to -5.5 for a converged ``[2, 1, 1]``).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(series_key(r), []).append(r)
    out = []
    for key, group in groups.items():
        metric = "test_rmse" if key[0] == "fit" else "rel_l2"
        group = sorted(group, key=lambda r: r["n_params"])
        errors = [r[metric] for r in group]
        sizes = [r["grid"] if key[1] == "KAN" else r["n_params"] for r in group]
        end = scaling_window(sizes, errors)
        window = group[:end]
        best = min(group, key=lambda r: r[metric])
        entry = {
            "part": key[0],
            "series": series_name(key),
            "model": key[1],
            "metric": metric,
            "window": [r["grid"] if key[1] == "KAN" else r["n_params"] for r in window],
            "slope": None,
            "slope_paper": None,
            "local_slopes": [round(v, 3) for v in local_slopes(sizes, errors)],
            "best": best[metric],
            "best_n_params": best["n_params"],
            "best_grid": best["grid"],
            "meets_target": None,
        }
        if end >= 2:
            entry["slope"] = fit_slope([r["n_params"] for r in window], errors[:end])[0]
            if key[1] == "KAN":
                paper = [r["n_params_paper"] for r in window]
                entry["slope_paper"] = fit_slope(paper, errors[:end])[0]
        if key[0] == "fit" and key[1] == "KAN":
            slope = entry["slope_paper"]
            entry["meets_target"] = slope is not None and slope <= TARGET_SLOPE
        out.append(entry)
    return out


PARTS = ("fit", "pde")


def run_study(
    s: Settings,
    part: str = "all",
    problem_file: str | Path = POISSON,
    on_part: Callable[[dict], None] | None = None,
) -> dict:
    """Run the chosen parts; the records, their slopes and the settings, JSON-able.

    ``on_part`` receives the result so far after each part (``parts`` lists those done), so
    a long study leaves its first part behind even if the second is stopped.
    """
    records, times = [], {}
    studies = {"fit": fit_study, "pde": lambda s: pde_study(s, problem_file)}
    for name, study in studies.items():
        if part in (name, "all"):
            started = time.perf_counter()
            records += study(s)
            times[name] = round(time.perf_counter() - started, 1)
            result = _result(asdict(s), records, times)
            if on_part is not None:
                on_part(result)
    return result


def _result(settings: dict, records: list[dict], times: dict[str, float | None]) -> dict:
    """The JSON-able result: ``times`` holds the seconds of each part run (None: unknown)."""
    return {
        "benchmark": "scaling",
        "function": "exp(sin(pi x) + y^2) on [-1, 1]^2",
        "problem_file": "problems/poisson2d.py",
        "dtype": "float64",
        "threads": torch.get_num_threads(),
        "target_slope": TARGET_SLOPE,
        "parts": [name for name in PARTS if name in times],
        "settings": settings,
        "part_time_s": dict(times),
        "total_time_s": None if None in times.values() else round(sum(times.values()), 1),
        "slopes": slopes(records),
        "records": records,
    }


def _setting_part(key: str) -> str:
    """The study a setting belongs to: ``pde_*`` the PDE study, every other the fitting."""
    return "pde" if key.startswith("pde_") else "fit"


def merge_results(previous: dict, result: dict) -> dict:
    """``result`` completed by the parts of ``previous`` it did not run.

    The records, settings, commands and times of those parts are kept from ``previous``; the
    slopes are refitted on the merged records. So ``--part fit`` reruns the fitting study and
    keeps the PDE study of an existing results file (and the other way round).

    Raises:
        ValueError: ``previous`` is not a result of this benchmark.
    """
    if previous.get("benchmark") != "scaling" or "records" not in previous:
        raise ValueError("merge_results: the previous results are not a scaling benchmark")
    kept = [name for name in previous["parts"] if name not in result["parts"]]
    if not kept:
        return result
    old_times, old_commands = previous.get("part_time_s", {}), previous.get("commands", {})
    times = {name: old_times.get(name) for name in kept} | result["part_time_s"]
    records = [r for r in previous["records"] if r["part"] in kept] + result["records"]
    records.sort(key=lambda r: PARTS.index(r["part"]))
    settings = dict(result["settings"])
    settings |= {k: v for k, v in previous["settings"].items() if _setting_part(k) in kept}
    merged = _result(settings, records, times)
    merged["commands"] = {name: old_commands.get(name) for name in kept}
    merged["commands"] |= result.get("commands", {})
    return merged


def budgets(s: dict) -> list[str]:
    """The training budgets and convergence tests of the settings ``s``, as Markdown bullets."""
    stages = ", ".join(f"G={g}: {n}" for g, n in s["pde_kan_stages"])
    return [
        "Training budgets (`converged`: the convergence test stopped training, not the "
        "budget; for LM, a relative gain below 1e-12 or no gain at any damping):",
        "",
        f"- KAN fits: {s['restarts']} restarts of {s['restart_iters']} L-BFGS iterations "
        "(normalised loss, as `lbfgs` below) at "
        f"G={s['grids'][0]} (lowest training loss kept); then at each grid L-BFGS in rounds "
        f"of {s['chunk']} iterations until a round lowers the training RMSE by less than "
        f"{s['fit_rel_tol']:.0%}, at most {s['kan_iters']}; Levenberg-Marquardt at most "
        f"{s['lm_iters']} iterations per grid.",
        *(
            f"  - `{name}`: {OPTIMIZER_TEXT[name].format(**s)}."
            for name in s.get("kan_optimizers", ("lbfgs",))
        ),
        f"- MLP fits: {s['mlp_adam_steps']} Adam steps, then L-BFGS (as `lbfgs`) in rounds of "
        f"{s['mlp_chunk']} with the same test, at most {s['mlp_lbfgs_iters']}.",
        f"- PDE KAN: L-BFGS steps at each grid ({stages}), then rounds of "
        f"{s['pde_chunk']} steps until a round lowers the loss by less than "
        f"{s['pde_rel_tol']:.0%}, at most {s['pde_kan_max']} steps per grid.",
        f"- PDE MLPs: {s['pde_mlp_adam']} Adam steps, then L-BFGS in rounds of "
        f"{s['pde_chunk']} with the same test, at most {s['pde_mlp_lbfgs']}.",
        f"- PDE collocation points: {_fmt(s['pde_interior'], 'd')} interior, "
        f"{_fmt(s['pde_boundary'], 'd')} boundary (`-`: the problem file's sampler).",
    ]


def _fmt(value, spec: str = ".2e") -> str:
    return "-" if value is None else format(value, spec)


def _provenance(result: dict, command: str) -> list[str]:
    """A bullet per part: the command that ran it and its time (merged results: two runs)."""
    commands, times = result.get("commands", {}), result.get("part_time_s", {})
    lines = []
    for name in result["parts"]:
        seconds = times.get(name)
        took = "time not recorded" if seconds is None else f"{seconds:.0f} s"
        ran = commands.get(name, command)
        ran = f"`{ran}`" if ran else "an earlier run of this benchmark"
        lines.append(f"- `{name}` part: {ran}, {took}.")
    return lines


def markdown_report(result: dict, command: str = "kanphys bench scaling") -> str:
    """Tables of every record and of the fitted slopes."""
    records, lines = result["records"], []
    lines += [
        "# Scaling benchmark",
        "",
        f"float64, {result['threads']} CPU thread(s). Wall times are cumulative along a KAN's "
        "grid sequence (they include the restarts and the coarser grids).",
        "",
        *_provenance(result, command),
        "",
        *budgets(result["settings"]),
        "",
    ]
    fitted = [r for r in records if r["part"] == "fit"]
    if fitted:
        s = result["settings"]
        lines += [
            "## Function fitting",
            "",
            f"`exp(sin(pi x) + y^2)` on `[-1, 1]^2`, {s['n_train']} training and {s['n_test']} "
            "test samples. `params`: trainable parameters (`G + k + 2` per edge); "
            "`paper`: the paper's count (`G` per edge).",
            "",
            "| model | widths | optimizer | samples | grid | params | paper | train RMSE "
            "| test RMSE | iterations | converged | time s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in fitted:
            lines.append(
                f"| {r['model']} | {r['widths']} | {r['optimizer']} | {r['n_train']} | "
                f"{_fmt(r['grid'], 'd')} | {r['n_params']} | {_fmt(r['n_params_paper'], 'd')} | "
                f"{r['train_rmse']:.2e} | {r['test_rmse']:.2e} | {r['iterations']} | "
                f"{TARGET_TEXT[r['converged']]} | {r['wall_time_s']:.1f} |"
            )
        lines.append("")
    pde = [r for r in records if r["part"] == "pde"]
    if pde:
        lines += [
            "## PDE: problems/poisson2d.py",
            "",
            "| model | widths | grid | params | rel L2 | final loss | steps | converged | time s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in pde:
            lines.append(
                f"| {r['model']} | {r['widths']} | {_fmt(r['grid'], 'd')} | {r['n_params']} | "
                f"{r['rel_l2']:.2e} | {_fmt(r['final_loss'])} | {r['steps']} | "
                f"{TARGET_TEXT[r['converged']]} | {r['wall_time_s']:.1f} |"
            )
        lines.append("")
    if result["slopes"]:
        lines += [
            "## Fitted slopes",
            "",
            "Least-squares slope of log error against log parameters over the scaling window: "
            "the leading points while the error at least halves per doubling of the grid "
            "(KAN) or of the parameter count (MLP). An MLP's depth is its number of linear "
            f"layers. Target: a KAN's slope against the paper's count (`G` per edge, so "
            f"against the grid) <= {result['target_slope']} (the paper: -4).",
            "",
            "| part | series | window | slope (params) | slope (paper count) | target met "
            "| local slopes vs grid | best error | at params |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for e in result["slopes"]:
            local = ", ".join(f"{v:.2f}" for v in e["local_slopes"]) if e["model"] == "KAN" else ""
            lines.append(
                f"| {e['part']} | {e['series']} | {e['window']} | {_fmt(e['slope'], '.2f')} | "
                f"{_fmt(e['slope_paper'], '.2f')} | {TARGET_TEXT[e['meets_target']]} | "
                f"{local or '-'} | {e['best']:.2e} | "
                f"{e['best_n_params']} |"
            )
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ figure
def plot(result: dict, path: str | Path) -> None:
    """Log-log figure: fitting test RMSE vs parameters (with ``N^-4``), PDE rel L2 vs
    parameters and vs wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    records = result["records"]
    fitted = [r for r in records if r["part"] == "fit"]
    pde = [r for r in records if r["part"] == "pde"]
    panels = (1 if fitted else 0) + (2 if pde else 0)
    if panels == 0:
        raise ValueError("plot: no records")
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.4), squeeze=False)
    axes = list(axes[0])
    styles = {"lbfgs": "-", "lbfgs-raw": (0, (1, 1)), "lbfgs-jacobi": (0, (4, 1, 1, 1))}
    styles |= {"lm": "--", "adam+lbfgs": ":"}
    if fitted:
        ax = axes.pop(0)
        groups: dict[tuple, list[dict]] = {}
        for r in fitted:
            groups.setdefault(series_key(r), []).append(r)
        for key, group in groups.items():
            group = sorted(group, key=lambda r: r["n_params"])
            n = [r["n_params"] for r in group]
            e = [r["test_rmse"] for r in group]
            if key[1] == "KAN":
                marker = "o" if key[2] == (2, 1, 1) else "s"
                face = None if key[3] in ("lbfgs", "lbfgs-jacobi") else "none"
                style = styles[key[3]] if key[4] == result["settings"]["n_train"] else "-."
                ax.loglog(n, e, ls=style, marker=marker, mfc=face, label=series_name(key))
            else:
                ax.loglog(n, e, ":", marker="^", ms=4, alpha=0.7, label=series_name(key))
        first = result["settings"]["grids"][0]
        starts = [r for r in fitted if r["model"] == "KAN" and r["grid"] == first]
        anchor = min(starts, key=lambda r: r["n_params"], default=None)
        if anchor is not None:
            n0, e0 = anchor["n_params"], anchor["test_rmse"]
            ns = [n0, n0 * 30]
            line = [e0 * (n / n0) ** -4 for n in ns]
            ax.loglog(ns, line, "k-", lw=1, alpha=0.6, label="$N^{-4}$")
        ax.set_xlabel("trainable parameters N")
        ax.set_ylabel("test RMSE")
        ax.set_title("fit exp(sin(πx) + y²)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    if pde:
        kan = [r for r in pde if r["model"] == "KAN"]
        mlp = [r for r in pde if r["model"] == "MLP"]
        for ax, x_key, label in (
            (axes[0], "n_params", "parameters"),
            (axes[1], "wall_time_s", "wall time (s, one thread)"),
        ):
            ax.loglog(
                [r[x_key] for r in kan], [r["rel_l2"] for r in kan], "-o", label="KAN [2,10,1]"
            )
            for r in kan:
                ax.annotate(f"G={r['grid']}", (r[x_key], r["rel_l2"]), fontsize=7)
            ax.loglog([r[x_key] for r in mlp], [r["rel_l2"] for r in mlp], ":^", label="MLP tanh")
            for r in mlp:
                widths = "-".join(str(w) for w in r["widths"][1:-1])
                ax.annotate(widths, (r[x_key], r["rel_l2"]), fontsize=7)
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(label)
            ax.set_ylabel("relative L2 error")
            ax.set_title(f"poisson2d: error vs {label.split(' (')[0]}")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


# ------------------------------------------------------------------------------ entry point
def main(args) -> int:
    """Entry point of ``kanphys bench scaling``."""
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else FULL
    command = "kanphys bench scaling" + (" --quick" if args.quick else "")
    if args.part != "all":
        command += f" --part {args.part}"
    if args.json:
        command += f" --json {args.json}"
    if args.figure:
        command += f" --figure {args.figure}"

    previous = load_previous(args.json) if args.json and args.part != "all" else None
    final: dict = {}

    def save(result: dict) -> None:
        """Write the JSON, the report and the figure (after each part: a partial study); with
        ``--part``, the other part of an existing JSON file is kept (:func:`merge_results`)."""
        result = {**result, "commands": dict.fromkeys(result["parts"], command)}
        if previous is not None:
            result = merge_results(previous, result)
        final.update(result)
        if args.json:
            path = Path(args.json)
            write_json(path, result)
            write_text(path.with_suffix(".md"), markdown_report(result, command))
        if args.figure:
            plot(result, args.figure)

    run_study(settings, args.part, args.problem or POISSON, on_part=save)
    print(markdown_report(final, command))
    return 0


def load_previous(path: str | Path) -> dict | None:
    """The results in ``path`` to merge a partial run into (None if there is no such file).

    Raises:
        ValueError: the file is not a result of this benchmark.
    """
    path = Path(path)
    if not path.exists():
        return None
    previous = json.loads(path.read_text())
    if not isinstance(previous, dict) or previous.get("benchmark") != "scaling":
        raise ValueError(f"{path}: not a scaling benchmark result; choose another --json")
    return previous
