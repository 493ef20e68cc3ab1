"""Data parallel training across processes: who am I, where to meet, and what to share.

The same problem file runs as one process, under ``torchrun --nproc-per-node=K`` and under
``srun`` (one task per rank). :func:`detect` reads the rank, the world size and the rendezvous
from the launcher's environment variables; :func:`session` starts the process group (gloo on
CPU, NCCL on GPU) and yields a :class:`Communicator`, the one object the trainer and the runner
talk to:

- every rank draws the *global* collocation points (they depend only on the seed and the
  epoch) and keeps its own contiguous block of each term (:meth:`Communicator.shard`);
- each rank's loss is its share of the global mean (divided by the global point counts), so
  the sum of the ranks' gradients is the gradient of the one-process loss
  (:meth:`Communicator.sum_gradients`); the loss values are summed the same way, so L-BFGS
  sees the same loss and gradient on every rank and takes the same steps;
- grid updates see all points again (:meth:`Communicator.gather_rows`);
- a stop signal seen by any rank stops all of them at the same step (:meth:`Communicator.any`);
- only rank 0 writes files and logs (:attr:`Communicator.is_main`).

With one process every method is a no-op and nothing is started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["Communicator", "Launch", "detect", "expand_hostlist", "session", "shard_range"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    """What the launcher says about this process.

    Attributes:
        rank: this process's rank, 0 to ``world_size - 1``.
        world_size: number of processes.
        local_rank: rank among the processes of this node (selects the GPU).
        address: host of rank 0 (the rendezvous), None when the launcher sets it up itself.
        port: rendezvous port, None with ``address``.
        launcher: ``"torchrun"``, ``"slurm"`` or ``"none"``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    address: str | None = None
    port: int | None = None
    launcher: str = "none"


def detect(environ: Mapping[str, str] | None = None) -> Launch:
    """Rank, world size and rendezvous from torchrun's or SLURM's environment variables.

    torchrun (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) comes first: under ``srun torchrun``
    the SLURM variables describe the torchrun agents, not the workers. A task started by
    ``srun`` alone is recognised by ``SLURM_STEP_NUM_TASKS`` (which the batch script itself
    does not have); its rendezvous is the first host of the step, on ``MASTER_PORT`` or a
    port derived from the job id.
    """
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return Launch(
            rank=int(env["RANK"]),
            world_size=int(env["WORLD_SIZE"]),
            local_rank=int(env.get("LOCAL_RANK", 0)),
            launcher="torchrun",
        )
    if "SLURM_STEP_NUM_TASKS" in env and "SLURM_PROCID" in env:
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", "localhost")
        job = int(env.get("SLURM_JOB_ID", "0"))
        return Launch(
            rank=int(env["SLURM_PROCID"]),
            world_size=int(env["SLURM_STEP_NUM_TASKS"]),
            local_rank=int(env.get("SLURM_LOCALID", 0)),
            address=env.get("MASTER_ADDR") or expand_hostlist(nodes)[0],
            port=int(env.get("MASTER_PORT") or 20000 + job % 20000),
            launcher="slurm",
        )
    return Launch()


def expand_hostlist(hostlist: str) -> list[str]:
    """SLURM's compressed host list as names: ``"gpu[01-03,07],login"`` -> 4 + 1 names."""
    hosts = []
    for name, ranges in re.findall(r"([^,\[]+)(?:\[([^\]]*)\])?,?", hostlist):
        if not ranges:
            hosts.append(name)
            continue
        for part in ranges.split(","):
            first, _, last = part.partition("-")
            for number in range(int(first), int(last or first) + 1):
                hosts.append(f"{name}{number:0{len(first)}d}")
    return hosts


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of ``n`` that ``rank`` takes: contiguous blocks in rank order
    whose sizes differ by at most one, so the blocks concatenated give back all ``n`` rows."""
    return n * rank // world_size, n * (rank + 1) // world_size


class Communicator:
    """The collective operations training needs; no-ops for a single process.

    Args:
        rank: this process's rank.
        world_size: number of processes (a process group must be initialised when > 1).
        local_rank: rank among the processes of this node (selects the GPU).
        device: device of the reduction buffers (the rank's GPU under NCCL, else CPU).
    """

    def __init__(
        self,
        rank: int = 0,
        world_size: int = 1,
        *,
        local_rank: int = 0,
        device: str | torch.device = "cpu",
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"Communicator(rank={self.rank}, world_size={self.world_size})"

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files and logs."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True with several processes (then every rank must make the same calls)."""
        return self.world_size > 1

    def device_for(self, requested: str) -> str:
        """The device this rank trains on: ``cuda`` (or any ``cuda:N``) becomes the rank's
        local GPU when there are several ranks; anything else is used as given."""
        if self.active and requested.startswith("cuda"):
            return f"cuda:{self.local_rank}"
        return requested

    # ------------------------------------------------------------------ points
    def shard(self, batch: Mapping[str, object]) -> dict[str, object]:
        """This rank's block of every term's points: every per-point array of a ``TermPoints``
        (arrays or tensors with one row per point) is cut to the same rows."""
        if not self.active:
            return dict(batch)

        out = {}
        for name, term in batch.items():
            n = len(term.points)
            start, stop = shard_range(n, self.rank, self.world_size)
            rows = {
                f.name: getattr(term, f.name)[start:stop]
                for f in fields(term)
                if getattr(getattr(term, f.name), "shape", ())[:1] == (n,)
            }
            out[name] = replace(term, **rows)
        return out

    def total_sizes(self, sizes: Mapping[str, int]) -> dict[str, int]:
        """Point counts of every term over all ranks (the divisors of the global means)."""
        if not self.active:
            return dict(sizes)
        names = sorted(sizes)
        counts = torch.tensor([sizes[n] for n in names], dtype=torch.int64, device=self.device)
        dist.all_reduce(counts)
        return dict(zip(names, (int(c) for c in counts.tolist()), strict=True))

    def gather_rows(self, tensor: Tensor) -> Tensor:
        """All ranks' rows of ``tensor`` ``(n_rank, ...)``, concatenated in rank order."""
        if not self.active:
            return tensor
        size = torch.tensor([tensor.shape[0]], device=self.device)
        sizes = [torch.zeros_like(size) for _ in range(self.world_size)]
        dist.all_gather(sizes, size)
        longest = int(max(s.item() for s in sizes))
        padded = tensor.new_zeros((longest, *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        parts = [torch.zeros_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded.to(self.device))
        rows = [part[: int(s.item())] for part, s in zip(parts, sizes, strict=True)]
        return torch.cat(rows).to(tensor.device)

    # -------------------------------------------------------------- reductions
    def sum_values(self, values: Mapping[str, float], names: Iterable[str]) -> dict[str, float]:
        """``values`` summed over ranks, for every name in ``names`` (missing ones count 0)."""
        names = list(names)
        if not self.active:
            return {n: values.get(n, 0.0) for n in names}
        buffer = torch.tensor(
            [values.get(n, 0.0) for n in names], dtype=torch.float64, device=self.device
        )
        dist.all_reduce(buffer)
        return dict(zip(names, buffer.tolist(), strict=True))

    def sum_gradients(self, parameters: Iterable[Tensor]) -> None:
        """Sum ``.grad`` over ranks in place (a missing gradient counts as zeros), one flat
        buffer per dtype. Each rank's loss is its share of the global mean, so the sum is the
        gradient of the global loss (the average of the ranks' gradients of equal shards)."""
        if not self.active:
            return
        by_dtype: dict[torch.dtype, list[Tensor]] = {}
        for p in parameters:
            if p.requires_grad:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                by_dtype.setdefault(p.dtype, []).append(p)
        for params in by_dtype.values():
            flat = torch.cat([p.grad.reshape(-1) for p in params]).to(self.device)
            dist.all_reduce(flat)
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
                offset += p.numel()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank (e.g. a stop signal)."""
        if not self.active:
            return flag
        buffer = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(buffer, op=dist.ReduceOp.MAX)
        return bool(buffer.item())

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers."""
        if not self.active:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                data = tensor.detach().to(self.device)
                dist.broadcast(data, src=0)
                tensor.copy_(data)

    def broadcast_object(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every rank is here."""
        if self.active:
            dist.barrier()


@contextlib.contextmanager
def session(
    device: str = "cpu", environ: Mapping[str, str] | None = None
) -> Iterator[Communicator]:
    """Start the process group this launch needs (none for one process), close it after.

    Args:
        device: the requested training device: NCCL for ``cuda``, gloo otherwise.
        environ: the environment to read (default ``os.environ``).
    """
    launch = detect(environ)
    if launch.world_size == 1:
        yield Communicator()
        return
    comm = Communicator(launch.rank, launch.world_size, local_rank=launch.local_rank)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        comm.device = torch.device(comm.device_for(device))
        torch.cuda.set_device(comm.device)
    init = "env://" if launch.address is None else f"tcp://{launch.address}:{launch.port}"
    started = not dist.is_initialized()
    if started:
        dist.init_process_group(
            backend, init_method=init, rank=launch.rank, world_size=launch.world_size
        )
    log.info("rank %d of %d (%s, %s)", launch.rank, launch.world_size, launch.launcher, backend)
    try:
        yield comm
    finally:
        if started:
            dist.destroy_process_group()
