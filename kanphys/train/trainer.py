"""Runs a plan on a problem and a surrogate: stages, grid steps, history, checkpoints, resume."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from kanphys.derivatives.analytic import Requests
from kanphys.model import Surrogate
from kanphys.problem import Problem
from kanphys.train.batch import INTERIOR, TermPoints, sample_points, to_tensors
from kanphys.train.checkpoint import load_checkpoint, save_checkpoint
from kanphys.train.loss import check_finite, residuals, total_loss
from kanphys.train.plan import LBFGS, Adam, ExtendGrid, Plan, UpdateGrid

__all__ = ["Position", "Preempted", "Trainer"]

log = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _slice(term: TermPoints, start: int, size: int) -> TermPoints:
    def cut(a):
        return None if a is None else a[start : start + size]

    return TermPoints(cut(term.points), cut(term.normals), cut(term.values))


def _key(problem: Problem, term: str) -> str:
    """The batch entry a loss term takes its points from."""
    return INTERIOR if term in problem.equations else term


class Preempted(Exception):
    """Training stopped on a signal after writing a checkpoint; resume continues it."""


@dataclass
class Position:
    """Where training is: stage index, step within the stage, steps done in all, sample epoch."""

    stage: int = 0
    step: int = 0
    global_step: int = 0
    epoch: int = 0


class Trainer:
    """Train a :class:`Surrogate` on a :class:`Problem` by a :class:`Plan`.

    Args:
        problem: the declared problem.
        model: the surrogate (its dtype and device are used throughout).
        plan: stages, sampling, weights, checkpoint cadence.
        seed: seeds the collocation draws; with the same model, CPU runs are bit-identical.
        checkpoint: file for periodic checkpoints (None: no checkpoints).
        progress: show a progress bar with each loss term.
    """

    def __init__(
        self,
        problem: Problem,
        model: Surrogate,
        plan: Plan,
        *,
        seed: int = 0,
        checkpoint: str | Path | None = None,
        progress: bool = False,
    ) -> None:
        self.problem, self.model, self.plan, self.seed = problem, model, plan, seed
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.progress = progress
        self.position = Position()
        self.columns = [
            "step",
            "stage",
            "lr",
            "loss",
            *(f"loss_{t}" for t in problem.terms),
            "time_s",
        ]
        self.rows: list[list[float]] = []
        self.elapsed = 0.0
        self.optimizer: torch.optim.Optimizer | None = None
        self._batch: tuple[tuple, dict[str, TermPoints]] | None = None
        self._stop_signal: int | None = None
        self._memo: tuple | None = None
        self.requests = None if plan.engine == "autograd" else defaultdict(Requests)
        missing = set(plan.weights) - set(problem.terms)
        if missing:
            raise ValueError(
                f"plan weights name unknown terms {sorted(missing)}; terms are {problem.terms}"
            )

    # ----------------------------------------------------------------- running
    def fit(self, callback: Callable[[Trainer], None] | None = None) -> Surrogate:
        """Run the remaining stages; return the trained surrogate (also ``self.model``).

        Raises:
            Preempted: after SIGTERM/SIGUSR1, once the checkpoint is written.
            TrainingError: when a loss term becomes non-finite.
        """
        stages = self.plan.stages
        self._stop_signal = None
        bar = tqdm(
            total=self.plan.total_steps,
            initial=self.position.global_step,
            disable=not self.progress,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        with bar, self._signals():
            while self.position.stage < len(stages):
                stage = stages[self.position.stage]
                if isinstance(stage, (UpdateGrid, ExtendGrid)):
                    self._grid_step(stage)
                else:
                    self._run_stage(stage, bar, callback)
                self.position.stage, self.position.step, self.optimizer = (
                    self.position.stage + 1,
                    0,
                    None,
                )
        self.save()
        return self.model

    def _run_stage(self, stage: Adam | LBFGS, bar, callback) -> None:
        if self.optimizer is None:
            self.optimizer = self._make_optimizer(stage)
        while self.position.step < stage.steps:
            started = time.perf_counter()
            lr, total, terms = (
                self._adam_step(stage) if isinstance(stage, Adam) else self._lbfgs_step()
            )
            self.elapsed += time.perf_counter() - started
            self.position.step += 1
            self.position.global_step += 1
            self._record(lr, total, terms)
            bar.update(1)
            if self.position.global_step % 10 == 0 or self.position.step == stage.steps:
                bar.set_postfix(
                    {"loss": f"{total:.2e}", **{k: f"{v:.1e}" for k, v in terms.items()}}
                )
            if callback is not None:
                callback(self)
            self._maybe_checkpoint()

    def _adam_step(self, stage: Adam):
        every = self.plan.sampler.resample_every
        if every:
            self.position.epoch = self.position.global_step // every
        lr = stage.learning_rate(self.position.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        total, terms = self.loss_and_backward()
        self.optimizer.step()
        return lr, total, terms

    def _lbfgs_step(self):
        first: dict = {}
        params = [p for group in self.optimizer.param_groups for p in group["params"]]

        def closure():
            total, terms = self._evaluate_with_memo(params)
            first.setdefault("values", (total, terms))
            return total

        self.optimizer.step(closure)
        total, terms = first["values"]
        return self.optimizer.param_groups[0]["lr"], total, terms

    def _evaluate_with_memo(self, params: list[torch.Tensor]) -> tuple[float, dict[str, float]]:
        """Loss and gradients at the current parameters, reusing the last evaluation when the
        parameters are unchanged (each L-BFGS iteration starts where the line search ended)."""
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        memo = self._memo
        if memo is not None and memo[0].shape == flat.shape and torch.equal(memo[0], flat):
            for p, grad in zip(params, memo[3], strict=True):
                p.grad = grad.clone()
            return memo[1], memo[2]
        self.optimizer.zero_grad(set_to_none=True)
        total, terms = self.loss_and_backward()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]
        self._memo = (flat, total, terms, grads)
        return total, terms

    def loss(self):
        """The weighted total loss (a tensor) and each term's mean square, on the current batch."""
        terms = residuals(self.problem, self.model, self.batch(), self.requests)
        return total_loss(terms, self.plan.weights)

    def loss_and_backward(self) -> tuple[float, dict[str, float]]:
        """Accumulate the gradient of the loss, ``plan.chunk_size`` points of a term at a time.

        Memory then stays bounded for large collocation sets: each chunk's graph is freed by
        its backward pass. Returns the total loss and each term's mean square.

        Raises:
            TrainingError: when a term's loss is not finite.
        """
        batch = self.batch()
        sizes = {name: len(term.points) for name, term in batch.items()}
        chunk = self.plan.chunk_size
        n_chunks = max(-(-n // chunk) for n in sizes.values())
        if n_chunks == 1:
            total, terms = self.loss()
            total.backward()
            return float(total.detach()), terms
        sums: dict[str, float] = {}
        for index in range(n_chunks):
            part = {k: _slice(t, index * chunk, chunk) for k, t in batch.items()}
            part = {k: t for k, t in part.items() if len(t.points)}
            squares = residuals(self.problem, self.model, part, self.requests)
            loss = sum(
                self.plan.weights.get(term, 1.0)
                * r.square().sum()
                / (r.shape[1] * sizes[_key(self.problem, term)])
                for term, r in squares.items()
            )
            loss.backward()
            for term, r in squares.items():
                sums[term] = sums.get(term, 0.0) + float(r.detach().square().sum()) / (
                    r.shape[1] * sizes[_key(self.problem, term)]
                )
        terms = {name: sums[name] for name in self.problem.terms}
        check_finite(terms)
        total = sum(self.plan.weights.get(name, 1.0) * v for name, v in terms.items())
        return total, terms

    def batch(self) -> dict[str, TermPoints]:
        """The collocation points of the current epoch, as tensors of the model's dtype."""
        key = (self.position.epoch, self.model.dtype, self.model.device)
        if self._batch is None or self._batch[0] != key:
            drawn = sample_points(
                self.problem, self.plan.sampler, seed=self.seed, epoch=self.position.epoch
            )
            self._batch = (key, to_tensors(drawn, self.model.dtype, self.model.device))
        return self._batch[1]

    def _make_optimizer(self, stage: Adam | LBFGS) -> torch.optim.Optimizer:
        if isinstance(stage, LBFGS) and stage.dtype and DTYPES[stage.dtype] != self.model.dtype:
            log.info("switching the model to %s for L-BFGS", stage.dtype)
            self.model = self.model.to(DTYPES[stage.dtype])
        params = list(self.model.parameters())
        if isinstance(stage, Adam):
            return torch.optim.Adam(params, lr=stage.lr, betas=stage.betas)
        return torch.optim.LBFGS(
            params,
            lr=stage.lr,
            max_iter=1,
            max_eval=25,
            history_size=stage.history,
            line_search_fn=stage.line_search,
            tolerance_grad=stage.tolerance,
            tolerance_change=stage.tolerance,
        )

    def _grid_step(self, stage: UpdateGrid | ExtendGrid) -> None:
        if isinstance(stage, ExtendGrid):
            log.info("extending the grid to %d intervals", stage.grid)
            self.model = self.model.extend_grid(stage.grid, self.batch()[INTERIOR].points)
        else:
            log.info(
                "updating the grid from %d collocation points", len(self.batch()[INTERIOR].points)
            )
            self.model = self.model.update_grid(self.batch()[INTERIOR].points)

    def _record(self, lr: float, total: float, terms: dict[str, float]) -> None:
        losses = [terms[t] for t in self.problem.terms]
        self.rows.append(
            [self.position.global_step, self.position.stage, lr, total, *losses, self.elapsed]
        )

    # ----------------------------------------------------------- checkpoints
    def _maybe_checkpoint(self) -> None:
        every = self.plan.checkpoint_every
        if self._stop_signal is not None:
            self.save()
            raise Preempted(
                f"stopped by signal {self._stop_signal} at step {self.position.global_step}"
            )
        if every and self.position.global_step % every == 0:
            self.save()

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: the model (with its grids), the optimiser, the
        position in the plan (stage, step, sample epoch: the collocation points are a function of
        the seed and the epoch), the history, and torch's RNG state."""
        return {
            "model_config": self.model.config(),
            "model": self.model.state_dict(),
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "position": asdict(self.position),
            "columns": self.columns,
            "history": torch.tensor(self.rows, dtype=torch.float64).reshape(-1, len(self.columns)),
            "elapsed": self.elapsed,
            "seed": self.seed,
            "rng": torch.get_rng_state(),
        }

    def save(self) -> None:
        """Write the checkpoint file (atomically), if one was given."""
        if self.checkpoint is not None:
            save_checkpoint(self.checkpoint, self.state_dict())

    @classmethod
    def restore(
        cls,
        problem: Problem,
        plan: Plan,
        checkpoint: str | Path,
        *,
        device=None,
        progress: bool = False,
    ) -> Trainer:
        """A trainer positioned exactly where ``checkpoint`` was written."""
        content = load_checkpoint(checkpoint, map_location=device)
        model = Surrogate.from_config(
            content["model_config"], dtype=DTYPES[content["dtype"]], device=device
        )
        model.load_state_dict(content["model"])
        trainer = cls(
            problem, model, plan, seed=content["seed"], checkpoint=checkpoint, progress=progress
        )
        trainer.position = Position(**content["position"])
        trainer.rows = [[int(r[0]), int(r[1]), *r[2:]] for r in content["history"].tolist()]
        trainer.elapsed = content["elapsed"]
        torch.set_rng_state(content["rng"])
        stage = (
            plan.stages[trainer.position.stage]
            if trainer.position.stage < len(plan.stages)
            else None
        )
        if content["optimizer"] is not None and isinstance(stage, (Adam, LBFGS)):
            trainer.optimizer = trainer._make_optimizer(stage)
            trainer.optimizer.load_state_dict(content["optimizer"])
        return trainer

    # ---------------------------------------------------------------- signals
    def _signals(self):
        trainer = self

        class Handlers:
            def __enter__(self):
                self.saved = {}
                if threading.current_thread() is not threading.main_thread():
                    return self
                for number in (signal.SIGTERM, signal.SIGUSR1):
                    self.saved[number] = signal.signal(number, self.handle)
                return self

            def handle(self, number, frame):
                trainer._stop_signal = number

            def __exit__(self, *exc):
                for number, handler in self.saved.items():
                    signal.signal(number, handler)

        return Handlers()
