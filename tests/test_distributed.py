"""Data parallel training: launch detection, sharding, the sharded loss and gradient, and two
ranks under torchrun (gloo, CPU) against one process.

The torchrun test is an integration test (marked ``integration``): it starts real processes.
"""

import copy
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys.cli import main
from kanphys.distributed import Communicator, Launch, detect, expand_hostlist, shard_range
from kanphys.train.batch import INTERIOR, TermPoints

# Adam, a grid extension (on all ranks' points), Adam again (with carried moments), L-BFGS;
# 33 interior points, so the two ranks' shards differ in size. While a file ``hold`` exists
# beside it, each rank waits in its first loss evaluation, its PID in ``waiting-RANK``.
PROBLEM = textwrap.dedent(
    '''
    """-u'' = pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0."""

    import os
    import pathlib
    import time

    import torch

    import kanphys as kp
    from kanphys import lap

    HERE = pathlib.Path(__file__).parent


    def hold_while_asked():
        hold = HERE / "hold"
        if hold.exists():
            (HERE / f"waiting-{os.environ.get('RANK', 0)}").write_text(str(os.getpid()))
            deadline = time.monotonic() + 60
            while hold.exists() and time.monotonic() < deadline:
                time.sleep(0.01)


    def poisson(s):
        hold_while_asked()
        return -lap(s.u) - torch.pi**2 * torch.sin(torch.pi * s.x)


    line = kp.Interval(0.0, 1.0)
    problem = kp.Problem(
        "poisson1d",
        domain=line,
        fields=["u"],
        equations={"poisson": poisson},
        conditions=[kp.Dirichlet("ends", on=line.boundary, field="u", value=0.0)],
        exact={"u": lambda p: torch.sin(torch.pi * p[:, 0])},
    )


    def model(grid: int = 5, width: int = 4):
        return kp.KAN([1, width, 1], basis=kp.BSpline(grid=grid))


    plan = kp.Plan(
        stages=[kp.Adam(steps=6), kp.ExtendGrid(grid=7), kp.Adam(steps=3), kp.LBFGS(steps=4)],
        sampler=kp.Sobol(interior=33, boundary=2),
        weights={"ends": 10.0},
        checkpoint_every=1,
    )
    '''
)


# ---------------------------------------------------------------------------- launch detection
def test_detect_reads_torchrun_variables_before_slurm_ones():
    environ = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "SLURM_PROCID": "0"}
    environ |= {"SLURM_STEP_NUM_TASKS": "2"}
    assert detect(environ) == Launch(rank=3, world_size=4, local_rank=1, launcher="torchrun")


def test_detect_reads_an_srun_task_and_its_rendezvous():
    environ = {
        "SLURM_PROCID": "5",
        "SLURM_STEP_NUM_TASKS": "8",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_NODELIST": "gpu[07-08]",
        "SLURM_JOB_ID": "123456",
    }
    launch = detect(environ)
    assert (launch.rank, launch.world_size, launch.local_rank) == (5, 8, 1)
    assert (launch.address, launch.port, launch.launcher) == ("gpu07", 20000 + 3456, "slurm")
    assert detect({**environ, "MASTER_PORT": "1234"}).port == 1234


def test_batch_script_and_plain_shell_are_one_process():
    batch_shell = {"SLURM_PROCID": "0", "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n1"}
    assert detect(batch_shell) == Launch()
    assert detect({}) == Launch()


def test_expand_hostlist_expands_ranges_and_keeps_zero_padding():
    assert expand_hostlist("localhost") == ["localhost"]
    assert expand_hostlist("gpu[01-03,10],login2") == ["gpu01", "gpu02", "gpu03", "gpu10", "login2"]


# ---------------------------------------------------------------------------------- sharding
@pytest.mark.parametrize("world_size", [1, 2, 3, 7])
@pytest.mark.parametrize("n", [0, 1, 5, 33, 64])
def test_shards_are_contiguous_balanced_and_cover_every_point_once(n, world_size):
    ranges = [shard_range(n, rank, world_size) for rank in range(world_size)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_shard_cuts_points_normals_and_values_alike():
    points = np.arange(10.0).reshape(5, 2)
    batch = {
        INTERIOR: TermPoints(points),
        "wall": TermPoints(points, normals=-points),
        "data": TermPoints(points, values=points[:, :1] * 10),
    }
    first, second = (Communicator(rank, 2).shard(batch) for rank in (0, 1))
    np.testing.assert_array_equal(first[INTERIOR].points, points[:2])
    np.testing.assert_array_equal(second["wall"].normals, -points[2:])
    np.testing.assert_array_equal(second["data"].values, points[2:, :1] * 10)
    assert first["wall"].values is None


def test_one_process_communicator_changes_nothing():
    comm = Communicator()
    assert comm.is_main and not comm.active
    assert comm.total_sizes({"a": 3}) == {"a": 3}
    assert comm.sum_values({"a": 1.5}, ["a", "b"]) == {"a": 1.5, "b": 0.0}
    assert comm.any(True) and not comm.any(False)
    rows = torch.arange(6.0).reshape(3, 2)
    assert comm.gather_rows(rows) is rows
    assert comm.device_for("cuda") == "cuda"
    assert Communicator(1, 4, local_rank=1).device_for("cuda") == "cuda:1"
    with pytest.raises(ValueError, match="rank 2"):
        Communicator(2, 2)


class Unreduced(Communicator):
    """Rank ``rank`` of ``world_size`` without a process group: the reductions leave this
    rank's share as it is, so a test can add the shares up itself."""

    def __init__(self, rank, world_size, sizes):
        super().__init__(rank, world_size)
        self.sizes = sizes

    def total_sizes(self, sizes):
        return dict(self.sizes)

    def sum_values(self, values, names):
        return {name: values.get(name, 0.0) for name in names}

    def sum_gradients(self, parameters):
        pass


def mixed_poisson2d():
    square = kp.Rectangle((0.0, 0.0), (1.0, 2.0))
    return kp.Problem(
        "mixed2d",
        domain=square,
        equations={"pde": lambda s: -kp.lap(s.u) + 0.5 * kp.d(s.u, "x", "y") - s.x * s.y},
        conditions=[kp.Dirichlet("walls", on=square.boundary, field="u", value=0.0)],
    )


@pytest.mark.parametrize("world_size", [2, 3])
def test_sum_of_the_ranks_shares_is_the_one_process_loss_and_gradient(world_size, make_surrogate):
    problem = mixed_poisson2d()
    model = make_surrogate(problem, dtype=torch.float64)
    plan = kp.Plan(
        stages=(kp.Adam(steps=1),), sampler=kp.Sobol(interior=101, boundary=25), chunk_size=16
    )

    def share(comm):
        copied = copy.deepcopy(model)
        total, terms = kp.Trainer(problem, copied, plan, comm=comm).loss_and_backward()
        return total, terms, torch.cat([p.grad.flatten() for p in copied.parameters()])

    whole = share(None)
    sizes = {k: len(t.points) for k, t in kp.Trainer(problem, model, plan).batch().items()}
    shares = [share(Unreduced(rank, world_size, sizes)) for rank in range(world_size)]
    assert sum(s[0] for s in shares) == pytest.approx(whole[0], rel=1e-13)
    for term in problem.terms:
        assert sum(s[1][term] for s in shares) == pytest.approx(whole[1][term], rel=1e-13)
    gradient = sum(s[2] for s in shares)
    torch.testing.assert_close(gradient, whole[2], rtol=1e-12, atol=1e-13)
    assert not torch.allclose(shares[0][2], whole[2])  # each share alone is not the gradient


# --------------------------------------------------------------------------------- torchrun
def torchrun(n_proc: int, *arguments: str, cwd) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={n_proc}", "-m", "kanphys", *arguments]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def parameters(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def popen_torchrun(n_proc: int, *arguments: str, cwd) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={n_proc}", "-m", "kanphys", *arguments]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    pipe = subprocess.PIPE
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=pipe, stderr=pipe, text=True)


def wait_for(path, child, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {path.name}: {child.communicate()}")
        time.sleep(0.05)


@pytest.mark.integration
def test_two_ranks_under_torchrun_stop_together_resume_and_match_one_process(tmp_path):
    """SIGTERM to rank 1 alone: both ranks stop after step 1 and rank 0 writes the checkpoint;
    ``kanphys resume`` under torchrun finishes the run. Adam, grid extension and L-BFGS in
    float64 then agree with one process to rounding (about 1e-16 per step); only rank 0
    writes and prints."""
    problem_file = tmp_path / "poisson1d.py"
    problem_file.write_text(PROBLEM)
    common = [str(problem_file), "--dtype", "float64", "--no-progress"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["run", *common, "--out", str(one)]) == 0

    hold = tmp_path / "hold"
    hold.touch()
    child = popen_torchrun(2, "run", *common, "--out", str(two), cwd=tmp_path)
    try:
        for rank in (0, 1):
            wait_for(tmp_path / f"waiting-{rank}", child)
        os.kill(int((tmp_path / "waiting-1").read_text()), signal.SIGTERM)
        time.sleep(0.5)
    finally:
        hold.unlink()
    _, stderr = child.communicate(timeout=300)
    assert child.returncode != 0
    assert "stopped by signal 15 at step 1" in stderr  # rank 1
    assert "stopped by signal on another rank at step 1" in stderr  # rank 0
    saved = torch.load(two / "checkpoint.pt", weights_only=True)
    assert saved["position"]["global_step"] == 1
    assert sorted(p.name for p in two.iterdir()) == ["checkpoint.pt", "config.json", "problem.txt"]

    done = torchrun(2, "resume", str(two), "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("rel_l2") == 1  # rank 1 neither prints nor logs
    assert done.stderr.count("extending the grid") == 1
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    allowed = {"one", "two", "poisson1d.py", "waiting-0", "waiting-1", "__pycache__"}
    assert {p.name for p in tmp_path.iterdir()} <= allowed  # nothing else in the cwd
    first, second = kp.Run.load(one), kp.Run.load(two)
    assert second.config["world_size"] == 2 and first.config["world_size"] == 1
    h1, h2 = first.history(), second.history()
    assert h2["step"].tolist() == list(range(1, 14))
    for column in ("loss", "loss_poisson", "loss_ends"):
        np.testing.assert_allclose(h2[column], h1[column], rtol=1e-12)
    reference = parameters(one)
    for name, value in parameters(two).items():
        torch.testing.assert_close(value, reference[name], rtol=1e-11, atol=1e-13)
    assert json.loads((two / "metrics.json").read_text())["steps"] == 13


@pytest.mark.parametrize(
    "change",
    [{"balance": kp.GradNorm()}, {"attention": kp.RBA()}, {"regularize": kp.Sparsify()}],
    ids=["balance", "attention", "regularize"],
)
def test_methods_that_need_every_point_on_one_rank_are_refused_with_two(
    change, poisson1d, make_surrogate
):
    plan = kp.Plan(stages=(kp.Adam(steps=1),), sampler=kp.Sobol(interior=8, boundary=2), **change)
    kp.Trainer(poisson1d, make_surrogate(poisson1d), plan)  # one process: fine
    with pytest.raises(ValueError, match="not supported with 2 ranks"):
        kp.Trainer(poisson1d, make_surrogate(poisson1d), plan, comm=Unreduced(0, 2, {}))
