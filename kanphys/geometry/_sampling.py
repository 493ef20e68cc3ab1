"""Deterministic unit-cube point streams and the accept/reject loop used by every domain.

Nothing here knows about geometry: domains map unit-cube points to their own coordinates and
say which of them to keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.stats import qmc

SAMPLING_METHODS: tuple[str, ...] = ("uniform", "sobol", "halton", "lhs")

_MAX_BATCH = 1 << 20
_MIN_DRAWS_BEFORE_GIVING_UP = 100_000
_MIN_ACCEPTANCE = 1e-4

DrawFn = Callable[[np.ndarray], tuple[np.ndarray, "np.ndarray | None", np.ndarray]]


def check_method(method: str) -> None:
    """Raise if `method` is not one of `SAMPLING_METHODS`.

    Args:
        method: Name of a sampling method.

    Raises:
        ValueError: If the method is unknown; the message lists the choices.
    """
    if method not in SAMPLING_METHODS:
        choices = ", ".join(repr(m) for m in SAMPLING_METHODS)
        raise ValueError(f"unknown sampling method {method!r}; choose one of {choices}")


def check_count(n: int) -> int:
    """Return `n` as an int after checking it is a non-negative integer.

    Args:
        n: Requested number of points.

    Returns:
        The same number as a Python int.

    Raises:
        ValueError: If `n` is not a non-negative integer.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"number of points must be a non-negative integer, got {n!r}")
    return int(n)


def _qmc_engine(cls: type, k: int, seed: int) -> qmc.QMCEngine:
    try:
        return cls(k, scramble=True, rng=seed)
    except TypeError:  # SciPy < 1.15 spells the argument `seed`.
        return cls(k, scramble=True, seed=seed)


class UnitStream:
    """A deterministic stream of points in the unit cube [0, 1)^k.

    Successive `draw` calls continue the same sequence, so rejection loops that need more
    points keep the low discrepancy of QMC methods instead of restarting them.

    Args:
        k: Dimension of the unit cube (0 gives empty rows).
        seed: Seed of the generator or of the QMC scrambling.
        method: One of `SAMPLING_METHODS`.

    Raises:
        ValueError: If the method is unknown.
    """

    def __init__(self, k: int, seed: int, method: str) -> None:
        check_method(method)
        self._k = k
        self._method = method
        self._buffer = np.empty((0, k))
        self._engine = self._make_engine(seed) if k > 0 else None

    def _make_engine(self, seed: int) -> np.random.Generator | qmc.QMCEngine:
        if self._method == "uniform":
            return np.random.default_rng(seed)
        from scipy.stats import qmc  # imported on use: scipy.stats takes a second to import

        cls = {"sobol": qmc.Sobol, "halton": qmc.Halton, "lhs": qmc.LatinHypercube}
        return _qmc_engine(cls[self._method], self._k, seed)

    def draw(self, m: int) -> np.ndarray:
        """Return the next `m` points of the stream, shape (m, k)."""
        if self._engine is None:
            return np.empty((m, 0))
        if len(self._buffer) < m:
            fresh = self._generate(m - len(self._buffer))
            self._buffer = np.concatenate([self._buffer, fresh])
        out, self._buffer = self._buffer[:m], self._buffer[m:]
        return out

    def _generate(self, m: int) -> np.ndarray:
        if self._method == "uniform":
            return self._engine.random((m, self._k))
        if self._method == "sobol" and self._engine.num_generated == 0:
            m = 1 << max(m - 1, 0).bit_length()  # a power of two keeps Sobol' balance
        return self._engine.random(m)


def unit_points(n: int, k: int, seed: int, method: str) -> np.ndarray:
    """Return the first `n` points of a `UnitStream`, shape (n, k)."""
    return UnitStream(k, seed, method).draw(n)


def split_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Split `n` into integer counts proportional to `weights` (largest remainders).

    Args:
        n: Total count.
        weights: Non-negative weights, shape (m,), not all zero.

    Returns:
        Integer counts, shape (m,), summing to `n`. Ties go to the earlier entry.
    """
    share = n * np.asarray(weights, dtype=float) / np.sum(weights)
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def collect(
    n: int, k: int, seed: int, method: str, draw: DrawFn, what: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Draw unit-cube batches, map and filter them with `draw`, until `n` points are kept.

    Args:
        n: Number of points wanted.
        k: Dimension of the unit cube that `draw` consumes.
        seed: Seed of the stream.
        method: One of `SAMPLING_METHODS`.
        draw: Maps unit points (m, k) to (points (m, d), normals (m, d) or None, keep (m,)).
        what: Description of the sampled set, for error messages.

    Returns:
        points (n, d) and normals (n, d) or None.

    Raises:
        ValueError: If `n` or `method` is invalid.
        RuntimeError: If almost nothing is accepted after many draws.
    """
    n = check_count(n)
    stream = UnitStream(k, seed, method)
    chunks: list[tuple[np.ndarray, np.ndarray | None]] = []
    accepted = hits = drawn = 0
    batch = max(n, 1)
    while accepted < n or not chunks:
        points, normals, keep = draw(stream.draw(batch))
        rows = _spread(np.flatnonzero(keep), n - accepted)
        chunks.append((points[rows], None if normals is None else normals[rows]))
        accepted, hits, drawn = accepted + len(rows), hits + int(np.sum(keep)), drawn + batch
        if accepted < n:
            _check_acceptance(hits, drawn, what)
            batch = _next_batch(n - accepted, hits / drawn, batch)
    return _stack(chunks)


def _spread(rows: np.ndarray, need: int) -> np.ndarray:
    """Pick `need` of `rows` evenly spread over the batch (all of them if there are fewer)."""
    if len(rows) <= need:
        return rows
    return rows[np.floor(np.linspace(0, len(rows) - 1, need)).astype(int)]


def _check_acceptance(hits: int, drawn: int, what: str) -> None:
    if drawn >= _MIN_DRAWS_BEFORE_GIVING_UP and hits < _MIN_ACCEPTANCE * drawn:
        raise RuntimeError(
            f"sampling {what}: only {hits} of {drawn} candidate points were accepted "
            f"(rate below {_MIN_ACCEPTANCE:g}); the set is empty or far smaller than its "
            "bounding box"
        )


def _next_batch(remaining: int, rate: float, previous: int) -> int:
    if rate == 0.0:
        return min(4 * previous, _MAX_BATCH)
    return min(math.ceil(1.2 * remaining / rate) + 16, _MAX_BATCH)


def _stack(
    chunks: list[tuple[np.ndarray, np.ndarray | None]],
) -> tuple[np.ndarray, np.ndarray | None]:
    points = np.concatenate([c[0] for c in chunks])
    if chunks[0][1] is None:
        return points, None
    return points, np.concatenate([c[1] for c in chunks])
