"""SLURM jobs: sweeps, the batch script, ``kanphys collect``, and (integration) a real one-node
SLURM cluster started by the tests: a 2-point sweep as a job array, and a preempted job that
is requeued and resumes from its checkpoint by itself, bit-identical to an uninterrupted run.

The cluster lives under a temporary directory: ``munged`` with its own key and socket,
``slurmctld -i`` and ``slurmd -N localhost`` with a generated ``slurm.conf``; the daemons are
stopped by their recorded PIDs. Debian's ``slurm-wlm`` and ``munge`` are installed with apt when
missing (as root); without root or apt the integration tests are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys.cli import main
from kanphys.collect import collect, markdown_table
from kanphys.slurm import Job, batch_script, job_states, parse_sweep, point_name, wait_for

QUICK = ["--quick", "--no-progress"]


# --------------------------------------------------------------------------------- sweeps
def test_sweep_is_the_product_of_its_axes_last_key_fastest():
    points = parse_sweep(["lr=1e-2,1e-3", "grid=5,10,20"])
    assert len(points) == 6
    assert points[0] == {"lr": "1e-2", "grid": "5"}
    assert points[1] == {"lr": "1e-2", "grid": "10"}
    assert points[-1] == {"lr": "1e-3", "grid": "20"}
    assert parse_sweep([]) == [{}]


@pytest.mark.parametrize(
    ("items", "message"),
    [(["lr"], "'lr'"), (["=1,2"], "'=1,2'"), (["lr="], "'lr='"), (["a=1", "a=2"], "'a' twice")],
)
def test_malformed_sweep_is_refused_naming_the_item(items, message):
    with pytest.raises(ValueError, match=message):
        parse_sweep(items)


def test_point_names_are_readable_directory_names():
    assert point_name({}) == "run"
    assert point_name({"lr": "1e-2", "weights.ends": "10"}) == "lr=1e-2_weights.ends=10"
    assert point_name({"method": "a/b c"}) == "method=a-b-c"


# ----------------------------------------------------------------------------- the script
def script(tmp_path, job=None, points=({},), run_args=()):
    return batch_script(
        tmp_path / "poisson.py", tmp_path / "out", job or Job(), list(points), list(run_args)
    )


def test_sweep_becomes_a_job_array_with_one_run_directory_per_point(tmp_path):
    text = script(tmp_path, points=parse_sweep(["grid=5,10", "lr=0.1,0.2"]), run_args=["steps=9"])
    assert "#SBATCH --array=0-3\n" in text
    assert "    grid=5_lr=0.1\n" in text and "    grid=10_lr=0.2\n" in text
    assert "    'grid=10 lr=0.1'\n" in text
    assert 'RUN_DIR="$OUT/${NAMES[$INDEX]}"' in text
    assert 'ARGS=(resume "$RUN_DIR"' in text and 'ARGS=(run "$PROBLEM" --out "$RUN_DIR"' in text
    assert "RUN_ARGS=(\n    steps=9\n)" in text
    assert "#SBATCH --array" not in script(tmp_path)


def test_script_asks_for_the_resources_a_signal_and_requeue(tmp_path):
    job = Job(nodes=2, gpus_per_node=4, cpus_per_task=16, time="1-02:00:00", partition="gpu")
    text = script(tmp_path, job)
    for line in [
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --time=1-02:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --signal=B:USR1@120",
        "#SBATCH --requeue",
        f"#SBATCH --output={tmp_path}/out/logs/%x-%A_%a.out",
    ]:
        assert line + "\n" in text, line
    assert "srun --kill-on-bad-exit=1" in text and "-m torch.distributed.run" in text
    assert "--nproc-per-node=4" in text and '--rdzv-endpoint="$HEAD:$PORT"' in text
    assert "--standalone" in script(tmp_path)  # one node: no rendezvous host needed
    assert "trap 'PREEMPTED=1; scancel --signal=TERM" in text
    assert 'scontrol requeue "$SLURM_JOB_ID"' in text
    plain = script(tmp_path, Job(signal_seconds=0, requeue=False))
    assert "#SBATCH --signal" not in plain and "#SBATCH --no-requeue" in plain


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_script_is_valid_bash(tmp_path):
    path = tmp_path / "job.sbatch"
    path.write_text(script(tmp_path, Job(nodes=3), parse_sweep(["a=1,2"]), ["--quick"]))
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("job", "message"),
    [({"nodes": 0}, "--nodes"), ({"time": "90 minutes"}, "--time"), ({"cpus_per_task": 0}, "cpus")],
)
def test_bad_resources_are_refused_naming_the_option(job, message):
    with pytest.raises(ValueError, match=message):
        Job(**job)


def test_dry_run_prints_the_script_and_writes_nothing(problem_file, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["slurm", "submit", str(problem_file), "--sweep", "grid=4,5", "--out", str(out)]
    assert main([*argv, "--dry-run", "--time", "00:10:00", "--", "--quick", "steps=3"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=0-1" in printed and "#SBATCH --time=00:10:00" in printed
    assert "RUN_ARGS=(\n    --quick\n    steps=3\n)" in printed
    assert f"PROBLEM={problem_file}" in printed
    assert not out.exists()


def test_gpus_imply_the_cuda_device_and_out_in_run_arguments_is_refused(
    problem_file, tmp_path, capsys
):
    argv = ["slurm", "submit", str(problem_file), "--dry-run", "--gpus-per-node", "2"]
    assert main(argv) == 0
    assert "RUN_ARGS=(\n    --device\n    cuda\n)" in capsys.readouterr().out
    assert main([*argv, "--", "--out", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- collect
def fake_run(folder: Path, overrides: dict, metrics: dict | None, checkpoint: bool = False):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"overrides": overrides}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if checkpoint:
        (folder / "checkpoint.pt").write_bytes(b"")


def test_collect_tables_a_sweep_in_sweep_order_with_unfinished_points(tmp_path):
    points = [{"run": "grid=5", "grid": "5"}, {"run": "grid=10", "grid": "10"}]
    points.append({"run": "grid=20", "grid": "20"})
    (tmp_path / "sweep.json").write_text(json.dumps({"keys": ["grid"], "points": points}))
    metrics = {"rel_l2": {"u": 0.0123456}, "max_abs_error": {"u": 0.5}, "steps": 42}
    fake_run(tmp_path / "grid=5", {"grid": 5}, {**metrics, "final_loss": 1e-3})
    fake_run(tmp_path / "grid=10", {"grid": 10}, None, checkpoint=True)
    columns, rows = collect(tmp_path)
    assert columns[:3] == ["run", "grid", "state"]
    assert [r["state"] for r in rows] == ["done", "stopped", "pending"]
    assert rows[0]["rel_l2_u"] == 0.0123456 and rows[0]["steps"] == 42
    table = markdown_table(columns, rows)
    assert table.splitlines()[0] == (
        "| run | grid | state | rel_l2_u | max_abs_error_u | final_loss | steps |"
    )
    assert "| grid=5 | 5 | done | 0.01235 | 0.5 | 0.001 | 42 |" in table


def test_collect_command_writes_csv_and_markdown_for_run_directories(tmp_path, capsys):
    fake_run(tmp_path / "a", {"lr": 0.1}, {"rel_l2": {"u": 0.25}, "steps": 3})
    fake_run(tmp_path / "b", {"lr": 0.2}, {"rel_l2": {"u": 0.5}, "steps": 3})
    assert main(["collect", str(tmp_path)]) == 0
    assert "| a | 0.1 | done | 0.25 | 3 |" in capsys.readouterr().out
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert lines == ["run,lr,state,rel_l2_u,steps", "a,0.1,done,0.25,3", "b,0.2,done,0.5,3"]
    assert (tmp_path / "sweep.md").read_text().startswith("| run | lr |")
    assert main(["collect", str(tmp_path / "missing")]) == 2


# ---------------------------------------------------------------------- a one-node cluster
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _install_slurm() -> str | None:
    """None when slurm and munge are there (installed now if need be), else why not."""
    if all(shutil.which(p) for p in ("munged", "slurmctld", "slurmd", "sbatch")):
        return None
    if os.geteuid() != 0:
        return "SLURM is not installed and installing it needs root"
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "slurm-wlm", "munge"]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return f"apt-get install slurm-wlm munge failed: {done.stderr[-500:]}"
    return None


SLURM_CONF = """\
ClusterName=kanphystest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CryptoType=crypto/munge
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=4
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """A one-node SLURM cluster under ``root``; ``env`` points the SLURM commands at it."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf"), "OMP_NUM_THREADS": "1"}

    def start(self) -> None:
        root = self.root
        for folder in ("state", "spool"):
            (root / folder).mkdir()
        ports = {"ctld_port": _free_port(), "d_port": _free_port()}
        conf = SLURM_CONF.format(root=root, cpus=os.cpu_count() or 1, **ports)
        (root / "slurm.conf").write_text(conf)
        self.run("mungekey", "--create", f"--keyfile={root}/munge.key")
        self.run(
            "munged",
            "--force",
            f"--key-file={root}/munge.key",
            f"--socket={root}/munge.socket",
            f"--pid-file={root}/munged.pid",
            f"--log-file={root}/munged.log",
            f"--seed-file={root}/munged.seed",
        )
        self.run("slurmctld", "-i", "-f", str(root / "slurm.conf"))
        self.run("slurmd", "-N", "localhost", "-f", str(root / "slurm.conf"))
        deadline = time.monotonic() + 30
        while "idle" not in self.run("sinfo", "-h", "-o", "%T", check=False).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node did not come up: {self.logs()}")
            time.sleep(0.2)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr}")
        return done

    def job(self, job_id: str) -> str:
        return self.run("scontrol", "show", "job", job_id, check=False).stdout

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.root.glob("*.log"))
        )

    def stop(self) -> None:
        """Cancel what is left, then stop slurmd, slurmctld and munged by their PIDs."""
        self.run("scancel", "--user=root", check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.root / f"{name}.pid"
            if not pid_file.is_file():
                continue
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _install_slurm()
    if reason is not None:
        pytest.skip(reason)
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def submit(cluster, problem_file, out, *options, wait=True):
    """``kanphys slurm submit`` as a process (waiting for the job to end with ``wait``)."""
    command = [sys.executable, "-m", "kanphys", "slurm", "submit", str(problem_file)]
    command += ["--out", str(out), *(["--wait"] if wait else []), *options]
    return subprocess.Popen(
        command, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until(condition, what: str, cluster, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{cluster.logs()}")
        time.sleep(0.2)


def logs_of(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((out / "logs").glob("*.out")))


@pytest.mark.integration
def test_sweep_runs_as_a_job_array_and_collects_into_one_table(cluster, problem_file, tmp_path):
    out = tmp_path / "sweep"
    job = submit(cluster, problem_file, out, "--sweep", "grid=4,6", "--", *QUICK, "width=2")
    stdout, stderr = job.communicate(timeout=180)
    assert job.returncode == 0, f"{stdout}{stderr}{logs_of(out)}"
    for grid in (4, 6):
        run = kp.Run.load(out / f"grid={grid}")
        assert run.config["overrides"] == {"grid": grid, "width": 2}
        assert run.metrics["steps"] == 15
        assert run.model().net.basis.grid == grid
    assert logs_of(out).count("kanphys: job") == 2  # two array tasks, no restarts
    assert main(["collect", str(out)]) == 0
    lines = (out / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("run,grid,state,rel_l2_u,max_abs_error_u,final_loss,steps")
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["grid=4", "4", "done"],
        ["grid=6", "6", "done"],
    ]


@pytest.mark.integration
def test_preempted_job_requeues_itself_and_resumes_bit_identically(cluster, problem_file, tmp_path):
    """USR1 to the batch shell (what ``--signal=B:USR1@T`` sends): the training checkpoints
    and stops, the job requeues itself and the new start resumes the run to its end."""
    out = tmp_path / "job"
    hold, waiting = problem_file.parent / "hold", problem_file.parent / "waiting"
    hold.touch()  # training waits at its first loss evaluation until the test lets it go
    job = submit(cluster, problem_file, out, "--", *QUICK)
    try:
        wait_until(waiting.exists, "training to start", cluster)
        job_id = cluster.run("squeue", "-h", "-o", "%A").stdout.split()[0]
        cluster.run("scancel", "--batch", "--signal=USR1", job_id)

        def torchrun_got_it():  # torchrun logs that it passes the signal on to its workers
            log = logs_of(out)
            return "death signal" in log or "closing signal" in log

        wait_until(torchrun_got_it, "the signal to arrive", cluster)
        time.sleep(0.5)
    finally:
        hold.unlink()
    # SLURM holds a requeued job for about two minutes; let it start sooner, though not within
    # the second its previous run's credential was revoked (slurmd would refuse that start).
    wait_until(lambda: "Restarts=1" in cluster.job(job_id), "the requeue", cluster)
    wait_until(lambda: "JobState=PENDING" in cluster.job(job_id), "the requeue", cluster)
    time.sleep(3)
    cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
    stdout, stderr = job.communicate(timeout=180)
    log = logs_of(out)
    assert job.returncode == 0, f"{stdout}{stderr}{log}"
    assert "stopped by signal 15 at step 1" in log
    assert "kanphys: preempted; requeueing job" in log
    assert "(restart 1): resume " in log

    reference = tmp_path / "reference"
    assert main(["run", str(problem_file), *QUICK, "--out", str(reference)]) == 0
    resumed, uninterrupted = kp.Run.load(out / "run"), kp.Run.load(reference)
    assert resumed.metrics["steps"] == uninterrupted.metrics["steps"] == 15
    for column in ("step", "stage", "lr", "loss", "loss_poisson", "loss_ends"):
        np.testing.assert_array_equal(resumed.history()[column], uninterrupted.history()[column])
    state = torch.load(out / "run" / "checkpoint.pt", weights_only=True)["model"]
    for name, value in torch.load(reference / "checkpoint.pt", weights_only=True)["model"].items():
        assert torch.equal(state[name], value), name


@pytest.mark.integration
def test_srun_alone_starts_two_ranks_that_match_one_process(cluster, problem_file, tmp_path):
    """``srun --ntasks=2 python -m kanphys run``: ranks and rendezvous from SLURM's variables."""
    arguments = ["run", str(problem_file), *QUICK, "--dtype", "float64"]
    two, one = tmp_path / "two", tmp_path / "one"
    srun = ["srun", "--ntasks=2", "--cpus-per-task=1", sys.executable, "-m", "kanphys"]
    done = cluster.run(*srun, *arguments, "--out", str(two), check=False)
    assert done.returncode == 0, f"{done.stdout}{done.stderr}"
    assert done.stdout.count("rel_l2") == 1  # rank 0 alone prints
    assert "rank 0 of 2 (slurm, gloo)" in done.stderr
    assert main([*arguments, "--out", str(one)]) == 0
    assert kp.Run.load(two).config["world_size"] == 2
    np.testing.assert_allclose(
        kp.Run.load(two).history()["loss"], kp.Run.load(one).history()["loss"], rtol=1e-12
    )


def test_wait_sees_a_requeued_task_through_to_its_end_and_returns_the_highest_status(
    tmp_path, monkeypatch
):
    """A fake ``scontrol`` answers three polls: running and requeued; pending again; done."""
    answers = [
        "JobId=7 ArrayTaskId=0 JobState=RUNNING ExitCode=0:0\\n"
        "JobId=8 ArrayTaskId=1 JobState=REQUEUED ExitCode=0:15",
        "JobId=7 ArrayTaskId=0 JobState=COMPLETED ExitCode=0:0\\n"
        "JobId=8 ArrayTaskId=1 JobState=PENDING ExitCode=0:0",
        "JobId=7 ArrayTaskId=0 JobState=COMPLETED ExitCode=0:0\\n"
        "JobId=8 ArrayTaskId=1 JobState=FAILED ExitCode=2:0",
    ]
    for index, answer in enumerate(answers):
        (tmp_path / f"answer{index}").write_text(answer + "\\n")
    fake = tmp_path / "scontrol"
    fake.write_text(
        "#!/bin/bash\n"
        f"n=$(cat {tmp_path}/count 2>/dev/null || echo 0)\n"
        f"echo $((n + 1)) > {tmp_path}/count\n"
        f'printf "$(cat {tmp_path}/answer$n)\\n"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert wait_for("7", poll=0.01) == 2
    assert (tmp_path / "count").read_text().strip() == "3"
    assert job_states("7") == []  # a fourth poll: nothing known
