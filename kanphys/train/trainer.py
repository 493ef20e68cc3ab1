"""Runs a plan on a problem and a surrogate: stages, grid steps, history, checkpoints, resume."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from kanphys.derivatives.analytic import Requests
from kanphys.distributed import Communicator
from kanphys.kan.network import KAN
from kanphys.model import Surrogate
from kanphys.problem import Problem
from kanphys.train.batch import INTERIOR, TermPoints, sample_points, to_tensors
from kanphys.train.checkpoint import load_checkpoint, save_checkpoint
from kanphys.train.gridstate import carry_adam_state
from kanphys.train.loss import check_finite, regularization, residuals, total_loss
from kanphys.train.methods import Methods
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
        comm: the ranks of a data parallel run (see :mod:`kanphys.distributed`); each rank
            trains on its block of the points and only rank 0 writes the checkpoint.
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
        comm: Communicator | None = None,
    ) -> None:
        self.problem, self.model, self.plan, self.seed = problem, model, plan, seed
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.progress = progress
        self.comm = comm or Communicator()
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
        self.methods = Methods(problem, plan, seed)
        if self.comm.active and (
            self.methods.pointwise or plan.balance is not None or plan.regularize is not None
        ):
            raise ValueError(
                "loss balancing, attention, causal weights and regularisation are not "
                f"supported with {self.comm.world_size} ranks yet; train in one process"
            )
        self._last_terms: dict[str, torch.Tensor] = {}
        self._last_adam: tuple[Surrogate, torch.optim.Optimizer] | None = None
        self._carried: tuple[Surrogate, dict] | None = None
        self._stage_problem: tuple[int, Problem] | None = None
        for ramp in plan.curriculum:
            if ramp.constant not in problem.constants:
                raise ValueError(
                    f"curriculum ramps {ramp.constant!r}, which is not a constant of problem "
                    f"{problem.name!r} (constants: {sorted(problem.constants)})"
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
                if self.position.step == 0:
                    self.methods.new_stage()
                if isinstance(stage, (UpdateGrid, ExtendGrid)):
                    self._grid_step(stage)
                else:
                    self._run_stage(stage, bar, callback)
                    adam = isinstance(self.optimizer, torch.optim.Adam)
                    self._last_adam = (self.model, self.optimizer) if adam else None
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
            if isinstance(stage, Adam):
                self.methods.after_adam_step(self, self._last_terms)
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

    def loss_problem(self) -> Problem:
        """The problem the loss uses now: the declared one, with the constants of the
        plan's curriculum for the current stage."""
        stage = self.position.stage
        if self._stage_problem is None or self._stage_problem[0] != stage:
            values = {
                ramp.constant: ramp.value(stage)
                for ramp in self.plan.curriculum
                if ramp.value(stage) is not None
            }
            problem = self.problem
            if values:
                problem = replace(problem, constants={**problem.constants, **values})
            self._stage_problem = (stage, problem)
        return self._stage_problem[1]

    def _frozen(self) -> bool:
        stages = self.plan.stages
        return self.position.stage < len(stages) and isinstance(stages[self.position.stage], LBFGS)

    def loss(self):
        """The weighted total loss (a tensor) and each term's mean square, on the current batch."""
        batch = self.batch()
        terms = residuals(self.loss_problem(), self.model, batch, self.requests)
        self._last_terms = {name: r.detach() for name, r in terms.items()}
        factors = {}
        if self.methods.pointwise:
            factors = self.methods.factors(self._last_terms, batch, self._frozen())
        return total_loss(terms, self.methods.weights(), factors)

    def loss_and_backward(self) -> tuple[float, dict[str, float]]:
        """Accumulate the gradient of the loss, ``plan.chunk_size`` points of a term at a time.

        Memory then stays bounded for large collocation sets: each chunk's graph is freed by
        its backward pass. Returns the total loss and each term's mean square.

        Raises:
            TrainingError: when a term's loss is not finite.
        """
        batch = self.batch()
        penalty = regularization(self.plan.regularize, self.model, batch)
        local = {name: len(term.points) for name, term in batch.items()}
        sizes = self.comm.total_sizes(local)  # the global means' divisors
        chunk = self.plan.chunk_size
        n_chunks = max(-(-n // chunk) for n in local.values())
        if n_chunks == 1 and not self.comm.active:
            total, terms = self.loss()
            total.backward()
            return float(total.detach()) + penalty, terms
        problem, weights = self.loss_problem(), self.methods.weights()
        factors = self._chunked_factors(batch, chunk, n_chunks)
        sums: dict[str, float] = {}
        for index in range(n_chunks):
            part = {k: _slice(t, index * chunk, chunk) for k, t in batch.items()}
            part = {k: t for k, t in part.items() if len(t.points)}
            squares = residuals(problem, self.model, part, self.requests)
            loss = sum(
                weights.get(term, 1.0)
                * (
                    r.square()
                    if term not in factors
                    else factors[term][index * chunk : index * chunk + len(r)] * r.square()
                ).sum()
                / (r.shape[1] * sizes[_key(self.problem, term)])
                for term, r in squares.items()
            )
            loss.backward()
            for term, r in squares.items():
                sums[term] = sums.get(term, 0.0) + float(r.detach().square().sum()) / (
                    r.shape[1] * sizes[_key(self.problem, term)]
                )
        self.comm.sum_gradients(self.model.parameters())
        terms = self.comm.sum_values(sums, self.problem.terms)
        check_finite(terms)
        total = sum(weights.get(name, 1.0) * v for name, v in terms.items())
        return total + penalty, terms

    def _chunked_factors(self, batch, chunk: int, n_chunks: int) -> dict[str, torch.Tensor]:
        """Pointwise factors for the chunked loss, from a first pass over all points (its
        detached residuals also feed the attention update)."""
        if not self.methods.pointwise:
            return {}
        parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        for index in range(n_chunks):
            part = {k: _slice(t, index * chunk, chunk) for k, t in batch.items()}
            part = {k: t for k, t in part.items() if len(t.points)}
            for term, r in residuals(self.loss_problem(), self.model, part, self.requests).items():
                parts[term].append(r.detach())
        self._last_terms = {term: torch.cat(rs) for term, rs in parts.items()}
        return self.methods.factors(self._last_terms, batch, self._frozen())

    def batch(self) -> dict[str, TermPoints]:
        """The collocation points of the current epoch, as tensors of the model's dtype."""
        key = (self.position.epoch, self.methods.version, self.model.dtype, self.model.device)
        if self._batch is None or self._batch[0] != key:
            drawn = sample_points(
                self.problem, self.plan.sampler, seed=self.seed, epoch=self.position.epoch
            )
            drawn[INTERIOR] = TermPoints(self.methods.interior(drawn[INTERIOR].points))
            drawn = self.comm.shard(drawn)
            self.methods.on_batch(key[:2])
            self._batch = (key, to_tensors(drawn, self.model.dtype, self.model.device))
        return self._batch[1]

    def _make_optimizer(self, stage: Adam | LBFGS) -> torch.optim.Optimizer:
        if isinstance(stage, LBFGS) and stage.dtype and DTYPES[stage.dtype] != self.model.dtype:
            log.info("switching the model to %s for L-BFGS", stage.dtype)
            self.model = self.model.to(DTYPES[stage.dtype])
        params = list(self.model.parameters())
        if isinstance(stage, Adam):
            optimizer = torch.optim.Adam(params, lr=stage.lr, betas=stage.betas)
            if self._carried is not None and self._carried[0] is self.model:
                optimizer.load_state_dict(self._carried[1])
                for group in optimizer.param_groups:
                    group["betas"] = stage.betas
            self._carried = None
            return optimizer
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
        if not isinstance(self.model.net, KAN):
            log.info("skipping %s: the model is not a KAN", type(stage).__name__)
            return
        old = self.model
        self._apply_grid_step(stage)
        source = None
        if self._carried is not None and self._carried[0] is old:
            source = self._carried[1]
        elif self._last_adam is not None and self._last_adam[0] is old:
            source = self._last_adam[1].state_dict()
        self._carried = None
        if stage.carry and source is not None:
            self._carried = (self.model, carry_adam_state(old, self.model, source))
        self._last_adam = None

    def _apply_grid_step(self, stage: UpdateGrid | ExtendGrid) -> None:
        points = self.comm.gather_rows(self.batch()[INTERIOR].points)  # all ranks' points
        if isinstance(stage, ExtendGrid):
            log.info("extending the grid to %d intervals", stage.grid)
            self.model = self.model.extend_grid(stage.grid, points)
        else:
            log.info("updating the grid from %d collocation points", len(points))
            self.model = self.model.update_grid(points, stage.grid_eps)

    def _record(self, lr: float, total: float, terms: dict[str, float]) -> None:
        losses = [terms[t] for t in self.problem.terms]
        self.rows.append(
            [self.position.global_step, self.position.stage, lr, total, *losses, self.elapsed]
        )

    # ----------------------------------------------------------- checkpoints
    def _maybe_checkpoint(self) -> None:
        every = self.plan.checkpoint_every
        if self.comm.any(self._stop_signal is not None):  # every rank stops at the same step
            self.save()
            raise Preempted(
                f"stopped by signal {self._stop_signal or 'on another rank'} at step "
                f"{self.position.global_step}"
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
            "methods": self.methods.state_dict(),
        }

    def save(self) -> None:
        """Write the checkpoint file (atomically), if one was given."""
        if self.checkpoint is not None and self.comm.is_main:
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
        comm: Communicator | None = None,
    ) -> Trainer:
        """A trainer positioned exactly where ``checkpoint`` was written."""
        content = load_checkpoint(checkpoint, map_location=device)
        constraints = problem.constraints
        model = Surrogate.from_config(
            content["model_config"],
            dtype=DTYPES[content["dtype"]],
            device=device,
            constraints=None
            if constraints is None
            else constraints.bind(problem.coordinates, problem.fields),
        )
        model.load_state_dict(content["model"])
        trainer = cls(
            problem,
            model,
            plan,
            seed=content["seed"],
            checkpoint=checkpoint,
            progress=progress,
            comm=comm,
        )
        trainer.position = Position(**content["position"])
        trainer.rows = [[int(r[0]), int(r[1]), *r[2:]] for r in content["history"].tolist()]
        trainer.elapsed = content["elapsed"]
        if "methods" in content:
            trainer.methods.load_state_dict(content["methods"])
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
