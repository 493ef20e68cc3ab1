"""The run-time state of a plan's training methods: adaptive points, balancing and attention
weights, causal weights. The trainer calls it at fixed places; its state goes into checkpoints,
so a resumed run continues exactly."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from kanphys.problem import Problem
from kanphys.train.adaptive import adapt
from kanphys.train.batch import INTERIOR, TermPoints
from kanphys.train.causal import causal_factors
from kanphys.train.loss import residuals
from kanphys.train.plan import RAR, Plan
from kanphys.train.weighting import balance_from_gradients, blend, rba_update, term_gradients

__all__ = ["Methods"]


class Methods:
    """Adaptive sampling, loss balancing, attention and causal weights of one training run.

    Args:
        problem: the problem.
        plan: the plan (its ``adaptive``, ``balance``, ``attention`` and ``causal`` options).
        seed: the run's seed (adaptive candidate draws).

    Raises:
        ValueError: for causal weighting without a time coordinate, or attention on an
            unknown term.
    """

    def __init__(self, problem: Problem, plan: Plan, seed: int) -> None:
        self.problem, self.plan, self.seed = problem, plan, seed
        self.points: np.ndarray | None = None
        self.rounds = 0
        self.balance: dict[str, float] = {}
        self.attention: dict[str, Tensor] = {}
        self.causal: Tensor | None = None
        self._frozen: dict[str, Tensor] | None = None
        self._batch_key: tuple | None = None
        if plan.causal is not None and problem.time_index is None:
            raise ValueError(f"causal weighting needs a time-dependent problem; {problem.name!r}")
        unknown = set(plan.attention.terms if plan.attention else ()) - set(problem.terms)
        if unknown:
            raise ValueError(f"attention (RBA) names unknown terms {sorted(unknown)}")

    # --------------------------------------------------------------- points
    def interior(self, drawn: np.ndarray) -> np.ndarray:
        """The interior points in use: RAR adds its points to the drawn ones, RAD replaces
        them once it has run."""
        if self.points is None:
            return drawn
        if isinstance(self.plan.adaptive, RAR):
            return np.concatenate([drawn, self.points])
        return self.points

    @property
    def version(self) -> int:
        """Changes whenever the point set changes (part of the batch cache key)."""
        return self.rounds

    # -------------------------------------------------------------- weights
    def weights(self) -> dict[str, float]:
        """Each term's weight: the plan's fixed weight times the balancing weight."""
        return {
            name: self.plan.weights.get(name, 1.0) * self.balance.get(name, 1.0)
            for name in self.problem.terms
        }

    @property
    def pointwise(self) -> bool:
        return self.plan.attention is not None or self.plan.causal is not None

    def factors(
        self, terms: Mapping[str, Tensor], batch: Mapping[str, TermPoints], frozen: bool
    ) -> dict[str, Tensor]:
        """Pointwise factors on the squared residuals: causal weights on the equations times
        the square of the attention weights. ``terms`` are the (detached) full residuals;
        with ``frozen`` (L-BFGS) the factors last computed are reused."""
        if frozen and self._frozen is not None:
            return self._frozen
        out: dict[str, Tensor] = {}
        if self.plan.causal is not None:
            out.update(self._causal(terms, batch))
        if self.plan.attention is not None:
            for name in self._attention_terms():
                weights = self._attention_weights(name, terms[name])
                out[name] = out[name] * weights.square() if name in out else weights.square()
        self._frozen = out
        return out

    def _causal(self, terms, batch) -> dict[str, Tensor]:
        names = list(self.problem.equations)
        squares = sum(terms[name].detach().square().mean(dim=1) for name in names)
        t = batch[INTERIOR].points[:, self.problem.time_index]
        domain, option = self.problem.domain, self.plan.causal
        factors, self.causal = causal_factors(
            t, squares, domain.t0, domain.t1, option.chunks, option.eps
        )
        return dict.fromkeys(names, factors)

    def _attention_terms(self) -> tuple[str, ...]:
        return self.plan.attention.terms or tuple(self.problem.equations)

    def _attention_weights(self, name: str, r: Tensor) -> Tensor:
        weights = self.attention.get(name)
        if weights is None or weights.shape[0] != r.shape[0]:
            weights = torch.ones(r.shape[0], 1, dtype=r.dtype, device=r.device)
            self.attention[name] = weights
        return weights.to(r)

    def on_batch(self, key: tuple) -> None:
        """Called when the trainer draws its points; forgets the attention and frozen weights
        when they belong to other points (a new sample epoch or adaptive round)."""
        if key != self._batch_key:
            self.attention, self._frozen, self._batch_key = {}, None, key

    def new_stage(self) -> None:
        """Called at the start of each optimiser stage: L-BFGS freezes fresh factors."""
        self._frozen = None

    # ---------------------------------------------------------------- hooks
    def after_adam_step(self, trainer, terms: Mapping[str, Tensor]) -> None:
        """Update what changes during Adam: attention (every step, from the step's residuals
        ``terms``), balancing (every ``balance.every`` steps) and adaptive points."""
        step = trainer.position.global_step
        self._frozen = None
        if self.plan.attention is not None:
            option = self.plan.attention
            for name in self._attention_terms():
                weights = self._attention_weights(name, terms[name])
                self.attention[name] = rba_update(weights, terms[name], option.gamma, option.eta)
        if self.plan.balance is not None and step % self.plan.balance.every == 0:
            self.update_balance(trainer.model, trainer.loss_problem(), trainer.batch(), trainer)
        if self.plan.adaptive is not None and step % self.plan.adaptive.every == 0:
            self.adapt(trainer.model, trainer.loss_problem())

    def update_balance(self, model: nn.Module, problem: Problem, batch, trainer) -> None:
        """New balancing weights from the gradient of each term at the current parameters."""
        terms = residuals(problem, model, batch, trainer.requests)
        params = [p for p in model.parameters() if p.requires_grad]
        gradients = term_gradients(terms, params)
        option = self.plan.balance
        new = balance_from_gradients(gradients, set(problem.equations), option.mode)
        self.balance = blend(self.balance, new, option.alpha)

    def adapt(self, model: nn.Module, problem: Problem) -> None:
        """One round of RAR or RAD."""
        sampler = self.plan.sampler
        self.points = adapt(
            problem,
            model,
            self.plan.adaptive,
            self.points,
            n_interior=sampler.count("interior", INTERIOR),
            sampling=sampler.method,
            seed=self.seed,
            round_=self.rounds,
        )
        self.rounds += 1

    # ---------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "points": None if self.points is None else torch.as_tensor(self.points),
            "rounds": self.rounds,
            "balance": dict(self.balance),
            "attention": dict(self.attention),
            "causal": self.causal,
            "frozen": self._frozen,
            "batch_key": self._batch_key,
        }

    def load_state_dict(self, state: Mapping) -> None:
        points = state["points"]
        self.points = None if points is None else points.numpy()
        self.rounds, self.balance = int(state["rounds"]), dict(state["balance"])
        self.attention, self.causal = dict(state["attention"]), state["causal"]
        self._frozen = state["frozen"]
        key = state["batch_key"]
        self._batch_key = None if key is None else tuple(key)
