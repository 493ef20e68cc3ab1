"""``kanphys bench derivatives``: cost of a forward+backward pass and of a Laplacian-residual
training step for KANs (closed-form engine and autograd), pykan, and tanh MLPs of about the same
size, timed round-robin in one process."""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from kanphys.bench.timing import peak_memory_mb, round_robin
from kanphys.derivatives.analytic import Requests
from kanphys.derivatives.autograd import partial
from kanphys.derivatives.jet import network_jet
from kanphys.derivatives.state import State
from kanphys.io.files import write_json, write_text
from kanphys.kan import KAN, MLP, BSpline
from kanphys.model import Surrogate

__all__ = ["SHAPES", "Record", "main", "run_benchmark"]

log = logging.getLogger(__name__)
SHAPES = (((2, 10, 1), 5), ((2, 32, 32, 1), 5), ((2, 32, 32, 1), 20), ((3, 64, 64, 64, 1), 5))
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Record:
    impl: str
    widths: list[int]
    grid: int | None
    dtype: str
    n_points: int
    op: str
    median_ms: float
    peak_mb: float
    n_params: int
    kan_widths: list[int]
    kan_grid: int


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def matching_mlp(kan: nn.Module, widths: Sequence[int], dtype, device) -> MLP:
    """A tanh MLP with the KAN's depth whose parameter count is nearest to the KAN's."""
    target = n_params(kan)
    hidden = len(widths) - 2

    def count(w: int) -> int:
        sizes = [widths[0], *[w] * hidden, widths[-1]]
        return sum(a * b + b for a, b in itertools.pairwise(sizes))

    width = min(range(1, 2048), key=lambda w: abs(count(w) - target))
    return MLP([widths[0], *[width] * hidden, widths[-1]], dtype=dtype, device=device)


def laplacian_loss_autograd(model: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Mean square of lap(u) - 1 by nested autograd (the usual PINN way)."""
    points = x.detach().requires_grad_(True)
    u = model(points)
    lap = sum(partial(u, points, (i, i)) for i in range(points.shape[1]))
    return (lap - 1).square().mean()


def _state_loss(model: Surrogate, x: Tensor, requests: Requests | None) -> Tensor:
    """The residual loss as the trainer computes it (``requests`` persist across steps)."""
    names = "xyz"[: x.shape[1]]
    state = State(model, x, coordinates=names, fields=("u",), requests=requests)
    return (state.lap(state.u) - 1).square().mean()


def _step(loss: Callable[[], Tensor], params: list[Tensor]) -> Callable[[], None]:
    def run() -> None:
        for p in params:
            p.grad = None
        loss().backward()

    return run


def kanphys_cases(
    widths, grid, dtype, device, x
) -> dict[str, tuple[nn.Module, dict[str, Callable]]]:
    net = KAN(list(widths), basis=BSpline(grid=grid), generator=torch.Generator().manual_seed(0))
    net = net.to(dtype=dtype, device=device)
    model = Surrogate(net, [-1.0] * len(x[0]), [1.0] * len(x[0]))
    params = list(model.parameters())
    scale = model.inv_half_width
    requests = Requests()

    def fast_forward() -> Tensor:
        value, _ = network_jet(net.layers, model.normalize(x), scale, ())
        return value.square().mean()

    fast = {
        "fwd_bwd": _step(fast_forward, params),
        "laplacian_step": _step(lambda: _state_loss(model, x, requests), params),
    }
    slow = {
        "fwd_bwd": _step(lambda: model(x).square().mean(), params),
        "laplacian_step": _step(lambda: _state_loss(model, x, None), params),
    }
    return {"kanphys-fast": (model, fast), "kanphys-autograd": (model, slow)}


def mlp_cases(kan: nn.Module, widths, dtype, device, x) -> dict[str, tuple[nn.Module, dict]]:
    mlp = matching_mlp(kan, widths, dtype, device)
    params = list(mlp.parameters())
    ops = {
        "fwd_bwd": _step(lambda: mlp(x).square().mean(), params),
        "laplacian_step": _step(lambda: laplacian_loss_autograd(mlp, x), params),
    }
    return {"mlp": (mlp, ops)}


def pykan_cases(widths, grid, dtype, device, x) -> dict[str, tuple[nn.Module, dict]]:
    """pykan 0.2.8 in its speed mode (no symbolic branch, no saved activations)."""
    try:
        from kan import KAN as PyKAN
    except ImportError:
        log.warning("pykan is not installed (pip install -e '.[bench]'); skipping it")
        return {}
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        model = PyKAN(
            width=list(widths),
            grid=grid,
            k=3,
            seed=0,
            auto_save=False,
            ckpt_path=os.path.join(folder, "model"),
            device=str(device),
        )
    model = model.speed().to(dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    ops = {
        "fwd_bwd": _step(lambda: model(x).square().mean(), params),
        "laplacian_step": _step(lambda: laplacian_loss_autograd(model, x), params),
    }
    return {"pykan": (model, ops)}


def run_benchmark(
    *,
    shapes=SHAPES,
    dtypes=("float32", "float64"),
    n_points: int = 4096,
    repeats: int = 7,
    device: str = "cpu",
    impls: Sequence[str] | None = None,
    memory: bool = True,
    clock: str = "wall",
) -> list[Record]:
    """Time every implementation on every shape and dtype; one round-robin per (shape, dtype).

    ``clock="cpu"`` times by the process's CPU time (see :func:`round_robin`)."""
    device = torch.device(device)
    records: list[Record] = []
    for widths, grid in shapes:
        for dtype_name in dtypes:
            records += _benchmark_shape(
                widths, grid, dtype_name, n_points, repeats, device, impls, memory, clock
            )
    return records


def _benchmark_shape(widths, grid, dtype_name, n_points, repeats, device, impls, memory, clock):
    dtype = DTYPES[dtype_name]
    generator = torch.Generator().manual_seed(1)
    x = (2 * torch.rand(n_points, widths[0], generator=generator, dtype=dtype) - 1).to(device)
    cases = kanphys_cases(widths, grid, dtype, device, x)
    cases.update(mlp_cases(cases["kanphys-fast"][0].net, widths, dtype, device, x))
    cases.update(pykan_cases(widths, grid, dtype, device, x))
    if impls:
        cases = {k: v for k, v in cases.items() if k in impls}
    runs = {(impl, op): run for impl, (_, ops) in cases.items() for op, run in ops.items()}
    times = round_robin(
        {f"{i}/{o}": r for (i, o), r in runs.items()}, repeats=repeats, warmup=1, clock=clock
    )
    out = []
    for (impl, op), run in runs.items():
        model = cases[impl][0]
        peak = peak_memory_mb(run, device) if memory else math.nan
        model_widths = list(model.widths) if hasattr(model, "widths") else list(widths)
        out.append(
            Record(
                impl,
                model_widths,
                grid if impl != "mlp" else None,
                dtype_name,
                n_points,
                op,
                round(times[f"{impl}/{op}"], 3),
                round(peak, 2),
                n_params(model),
                list(widths),
                grid,
            )
        )
        log.info("%s", out[-1])
    return out


def markdown_table(records: Sequence[Record]) -> str:
    """One row per (KAN shape, dtype, op): milliseconds per implementation and the key ratios."""
    impls = ["kanphys-fast", "kanphys-autograd", "pykan", "mlp"]
    rows = {}
    for r in records:
        key = (str(r.kan_widths), r.kan_grid, r.dtype, r.op)
        rows.setdefault(key, {})[r.impl] = r
    head = (
        "| KAN | grid | dtype | op | "
        + " | ".join(f"{i} ms" for i in impls)
        + " | autograd/fast | pykan/fast | fast/mlp | fast MB | autograd MB |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (widths, grid, dtype, op), cells in rows.items():
        ms = [f"{cells[i].median_ms:.2f}" if i in cells else "-" for i in impls]
        fast = cells.get("kanphys-fast")

        def ratio(a, b):
            return f"{a.median_ms / b.median_ms:.1f}" if a and b else "-"

        mem = [
            f"{cells[i].peak_mb:.1f}" if i in cells else "-"
            for i in ("kanphys-fast", "kanphys-autograd")
        ]
        lines.append(
            f"| {widths} | {grid} | {dtype} | {op} | "
            + " | ".join(ms)
            + " | "
            + " | ".join(
                [
                    ratio(cells.get("kanphys-autograd"), fast),
                    ratio(cells.get("pykan"), fast),
                    ratio(fast, cells.get("mlp")),
                ]
            )
            + " | "
            + " | ".join(mem)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(args) -> int:
    """Entry point of ``kanphys bench derivatives``."""
    torch.set_num_threads(args.threads)
    shapes = SHAPES[:1] if args.quick else SHAPES
    clock = args.clock or ("cpu" if args.device == "cpu" and args.threads == 1 else "wall")
    records = run_benchmark(
        shapes=shapes,
        n_points=args.points,
        repeats=args.repeats,
        device=args.device,
        memory=not args.no_memory,
        clock=clock,
    )
    table = markdown_table(records)
    print(table)
    if args.json:
        path = Path(args.json)
        write_json(path, [asdict(r) for r in records])
        header = (
            f"# Derivative benchmark\n\n`kanphys bench derivatives --json {path}` on "
            f"{args.device}, {args.threads} thread(s), N = {args.points} points, median of "
            f"{args.repeats} round-robin repeats of the {clock} time; ratios are within this one "
            "run. (CPU time of the process is used for one-thread CPU runs: other jobs on a shared "
            "machine do not inflate it.)\n\n"
        )
        write_text(path.with_suffix(".md"), header + table)
    return 0
