"""SLURM batch jobs for problem files: one run or a sweep (a job array), preemption-safe.

``kanphys slurm submit FILE [options] [-- run arguments]`` writes ``OUT/job.sbatch`` (a
readable bash script) and submits it with ``sbatch``. The script

- starts one ``torchrun`` per node through ``srun``; torchrun starts one process per GPU (or
  ``--nproc-per-node`` processes on CPU) and :mod:`kanphys.distributed` does the rest;
- turns ``--sweep key=v1,v2`` into a job array: task ``i`` runs point ``i`` of the sweep (the
  product of all ``--sweep`` options) into its own run directory ``OUT/key=value_...``;
- with ``--wait``, waits for every task to end for good (requeued runs included) and exits
  with the job's highest exit status;
- asks SLURM for a signal before the time limit (``--signal=B:USR1@SECONDS``), passes it on
  to the training processes as SIGTERM (the trainer checkpoints at the next step boundary and
  exits with code 75), then requeues the job; a requeued job finds the checkpoint and runs
  ``kanphys resume`` instead of ``kanphys run``.

``kanphys collect OUT`` then gathers the runs' metrics into one table.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kanphys.io.files import write_json, write_text

__all__ = [
    "EXIT_PREEMPTED",
    "Job",
    "batch_script",
    "main",
    "parse_sweep",
    "point_name",
    "submit",
    "wait_for",
    "write_job",
]

EXIT_PREEMPTED = 75  # as kanphys.cli.EXIT_PREEMPTED
TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
FINISHED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
}


@dataclass(frozen=True)
class Job:
    """What to ask SLURM for.

    Attributes:
        nodes: number of nodes; one torchrun per node.
        gpus_per_node: GPUs per node (0: CPU); torchrun starts one process per GPU.
        cpus_per_task: CPUs for each node's torchrun and its processes.
        nproc_per_node: processes per node (default: ``gpus_per_node``, at least 1).
        time: time limit, ``[D-]HH:MM:SS`` (None: the partition's default).
        partition: the partition (None: the cluster's default).
        job_name: the job name shown by ``squeue``.
        signal_seconds: SIGUSR1 this many seconds before the time limit (0: none).
        requeue: requeue a preempted job so that it resumes by itself.
    """

    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    nproc_per_node: int | None = None
    time: str | None = None
    partition: str | None = None
    job_name: str = "kanphys"
    signal_seconds: int = 120
    requeue: bool = True

    def __post_init__(self) -> None:
        counts = {"nodes": self.nodes, "cpus_per_task": self.cpus_per_task}
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.gpus_per_node < 0 or (self.nproc_per_node is not None and self.nproc_per_node < 1):
            raise ValueError("--gpus-per-node must be >= 0 and --nproc-per-node >= 1")
        if self.time is not None and not TIME.match(self.time):
            raise ValueError(f"--time {self.time!r} is not of the form [D-]HH:MM:SS")

    @property
    def processes_per_node(self) -> int:
        return self.nproc_per_node or max(self.gpus_per_node, 1)


def parse_sweep(items: Sequence[str]) -> list[dict[str, str]]:
    """``["lr=1e-2,1e-3", "grid=5,10"]`` -> the 4 points of the product, in order (the last
    key varies fastest); no items -> one empty point.

    Raises:
        ValueError: naming an item that is not ``key=v1,v2,...`` or a key given twice.
    """
    keys, values = [], []
    for item in items:
        key, sep, text = item.partition("=")
        choices = [v.strip() for v in text.split(",") if v.strip()]
        if not sep or not key or not choices:
            raise ValueError(f"--sweep {item!r} is not of the form key=v1,v2,...")
        if key in keys:
            raise ValueError(f"--sweep names {key!r} twice")
        keys.append(key)
        values.append(choices)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def point_name(point: dict[str, str]) -> str:
    """The run directory name of a sweep point: ``lr=1e-2_grid=5`` (``run`` for no sweep)."""
    if not point:
        return "run"
    return "_".join(f"{k}={re.sub(r'[^A-Za-z0-9.+-]', '-', v)}" for k, v in point.items())


def _directive(name: str, value) -> str:
    return f"#SBATCH --{name}={value}"


def _directives(job: Job, out: Path, n_points: int) -> list[str]:
    lines = [
        _directive("job-name", job.job_name),
        _directive("nodes", job.nodes),
        _directive("ntasks-per-node", 1),
        _directive("cpus-per-task", job.cpus_per_task),
    ]
    if job.gpus_per_node:
        lines.append(_directive("gpus-per-node", job.gpus_per_node))
    if job.time:
        lines.append(_directive("time", job.time))
    if job.partition:
        lines.append(_directive("partition", job.partition))
    if n_points > 1:
        lines.append(_directive("array", f"0-{n_points - 1}"))
    lines += [
        _directive("output", out / "logs" / "%x-%A_%a.out"),
        _directive("open-mode", "append"),
    ]
    if job.signal_seconds:
        lines.append(_directive("signal", f"B:USR1@{job.signal_seconds}"))
    lines.append("#SBATCH --requeue" if job.requeue else "#SBATCH --no-requeue")
    return lines


def _bash_array(name: str, items: Sequence[str]) -> str:
    if not items:
        return f"{name}=()"
    inner = "".join(f"\n    {shlex.quote(item)}" for item in items)
    return f"{name}=({inner}\n)"


def _launcher(job: Job) -> str:
    """The srun + torchrun line (single node: torchrun's standalone rendezvous)."""
    common = f"--nproc-per-node={job.processes_per_node}"
    if job.nodes == 1:
        rendezvous = "--standalone"
    else:
        rendezvous = (
            '--nnodes="$SLURM_JOB_NUM_NODES" --rdzv-backend=c10d \\\n'
            '    --rdzv-endpoint="$HEAD:$PORT" --rdzv-id="$SLURM_JOB_ID"'
        )
    return (
        'srun --kill-on-bad-exit=1 "$PYTHON" -m torch.distributed.run \\\n'
        f"    {rendezvous} {common} \\\n"
        '    -m kanphys "${ARGS[@]}" &'
    )


def batch_script(
    problem_file: Path,
    out: Path,
    job: Job,
    points: Sequence[dict[str, str]],
    run_args: Sequence[str] = (),
    *,
    python: str | None = None,
) -> str:
    """The sbatch script: resources, the sweep, run-or-resume, srun + torchrun, requeue.

    Args:
        problem_file: the problem file (absolute paths make the script work from anywhere).
        out: the sweep directory: ``job.sbatch``, ``sweep.json``, ``logs/`` and one run
            directory per point.
        job: the resources.
        points: the sweep points (``[{}]`` for a single run).
        run_args: more ``kanphys run`` arguments (``--quick``, ``--dtype float64``,
            ``steps=100``, ...), the same for every point.
        python: the Python that runs kanphys (default: this one).
    """
    python = python or sys.executable
    names = [point_name(p) for p in points]
    overrides = [" ".join(f"{k}={v}" for k, v in p.items()) for p in points]
    what = f"a sweep of {len(points)} points" if len(points) > 1 else "one run"
    head = "\n".join(
        [
            "#!/bin/bash",
            f"# kanphys: {problem_file.name}, {what}. Written by `kanphys slurm submit`;",
            f"# submit it again with: sbatch {out / 'job.sbatch'}",
            *_directives(job, out, len(points)),
        ]
    )
    multinode = ""
    if job.nodes > 1:
        multinode = (
            "\n# torchrun's rendezvous: the first node of the job, a port from the job id.\n"
            'HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
            "PORT=$((20000 + SLURM_JOB_ID % 20000))\n"
        )
    return f"""{head}

set -uo pipefail
export SRUN_CPUS_PER_TASK="${{SLURM_CPUS_PER_TASK:-1}}"

PYTHON={shlex.quote(python)}
PROBLEM={shlex.quote(str(problem_file))}
OUT={shlex.quote(str(out))}
{_bash_array("RUN_ARGS", list(run_args))}

# One run directory per point of the sweep; job array task i runs point i.
{_bash_array("NAMES", names)}
{_bash_array("POINTS", overrides)}
INDEX="${{SLURM_ARRAY_TASK_ID:-0}}"
RUN_DIR="$OUT/${{NAMES[$INDEX]}}"
read -r -a OVERRIDES <<< "${{POINTS[$INDEX]}}"

# A fresh start, or (after a requeue) the continuation from the latest checkpoint.
if [[ -f "$RUN_DIR/checkpoint.pt" ]]; then
    ARGS=(resume "$RUN_DIR" --no-progress)
else
    ARGS=(run "$PROBLEM" --out "$RUN_DIR" --no-progress "${{RUN_ARGS[@]}}" "${{OVERRIDES[@]}}")
fi
echo "kanphys: job ${{SLURM_JOB_ID:-?}} (restart ${{SLURM_RESTART_COUNT:-0}}): ${{ARGS[*]}}"
{multinode}
# SLURM sends USR1 before the time limit (and TERM on preemption): pass TERM on to the
# processes of the job step (torchrun passes it on too); the training processes checkpoint
# at the next step boundary and exit with code 75. (TERM to srun itself would kill the step.)
PREEMPTED=0
trap 'PREEMPTED=1; scancel --signal=TERM "$SLURM_JOB_ID.0"' USR1 TERM

{_launcher(job)}
STEP=$!
wait "$STEP"
STATUS=$?
while kill -0 "$STEP" 2>/dev/null; do  # a trapped signal ends `wait` early
    wait "$STEP"
    STATUS=$?
done

if [[ $PREEMPTED == 1 || $STATUS == {EXIT_PREEMPTED} ]] && [[ -f "$RUN_DIR/checkpoint.pt" ]]; then
    echo "kanphys: preempted; requeueing job $SLURM_JOB_ID to resume from $RUN_DIR"
    scontrol requeue "$SLURM_JOB_ID"
    exit {EXIT_PREEMPTED}
fi
exit "$STATUS"
"""


def write_job(
    problem_file: Path,
    out: Path,
    job: Job,
    points: Sequence[dict[str, str]],
    run_args: Sequence[str] = (),
) -> Path:
    """Write ``OUT/job.sbatch`` and ``OUT/sweep.json`` (the points and their directories)."""
    script = batch_script(problem_file, out, job, points, run_args)
    path = out / "job.sbatch"
    write_text(path, script)
    path.chmod(0o755)
    (out / "logs").mkdir(exist_ok=True)
    sweep = {
        "problem_file": str(problem_file),
        "run_args": list(run_args),
        "keys": list(points[0]) if points else [],
        "points": [{"run": point_name(p), **p} for p in points],
    }
    write_json(out / "sweep.json", sweep)
    return path


def _command(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not on PATH: is this a SLURM login node?")
    return path


def submit(script: Path, *, wait: bool = False, poll: float = 2.0) -> int:
    """``sbatch SCRIPT``; with ``wait``, wait for the job and return its exit status.

    Returns:
        sbatch's exit status, or with ``wait`` the highest exit status of the job's tasks
        (128 + N for a task ended by signal N).
    """
    done = subprocess.run(
        [_command("sbatch"), "--parsable", str(script)], capture_output=True, text=True
    )
    if done.returncode != 0:
        print(done.stderr, end="", file=sys.stderr)
        return done.returncode
    job_id = done.stdout.strip().split(";")[0]
    print(f"Submitted batch job {job_id}", flush=True)
    return wait_for(job_id, poll=poll) if wait else 0


def job_states(job_id: str) -> list[tuple[str, int]] | None:
    """``(state, exit status)`` of each task of a job from ``scontrol show job``; None when
    slurmctld no longer knows the job."""
    done = subprocess.run(
        [_command("scontrol"), "--oneliner", "show", "job", job_id], capture_output=True, text=True
    )
    if done.returncode != 0:
        return None
    states = []
    for line in done.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobState" not in fields:
            continue
        status, _, signal = fields.get("ExitCode", "0:0").partition(":")
        code = int(status) if signal in ("", "0") else 128 + int(signal)
        states.append((fields["JobState"], code))
    return states


def wait_for(job_id: str, *, poll: float = 2.0) -> int:
    """Wait until every task of the job has ended for good and return the highest exit status.

    Unlike ``sbatch --wait``, which returns when a requeued job first stops, a requeued task
    (state ``REQUEUED``, then ``PENDING``) is waited for until its last run ends.

    Raises:
        RuntimeError: when slurmctld forgets the job before it was seen to end (its
            ``MinJobAge`` is shorter than ``poll``).
    """
    while True:
        states = job_states(job_id)
        if states is None:
            raise RuntimeError(f"SLURM no longer knows job {job_id}; see its log for the result")
        if states and all(state in FINISHED for state, _ in states):
            return max(code for _, code in states)
        time.sleep(poll)


def _check_run_args(run_args: Sequence[str]) -> None:
    for item in run_args:
        if item == "--out" or item.startswith("--out="):
            raise ValueError("run arguments must not set --out: each point has its own directory")


def main(args: argparse.Namespace) -> int:
    """``kanphys slurm submit``: write the script, print it (``--dry-run``) or submit it."""
    problem_file = Path(args.file).resolve()
    if not problem_file.is_file():
        raise FileNotFoundError(f"problem file {args.file} does not exist")
    run_args = list(args.run_args)
    _check_run_args(run_args)
    if args.gpus_per_node and "--device" not in run_args:
        run_args = ["--device", "cuda", *run_args]
    job = Job(
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_task,
        nproc_per_node=args.nproc_per_node,
        time=args.time,
        partition=args.partition,
        job_name=args.job_name or f"kanphys-{problem_file.stem}",
        signal_seconds=args.signal_seconds,
        requeue=not args.no_requeue,
    )
    points = parse_sweep(args.sweep or [])
    default = Path("results") / "slurm" / f"{problem_file.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(args.out or default).resolve()
    if args.dry_run:
        print(batch_script(problem_file, out, job, points, run_args), end="")
        return 0
    if (out / "job.sbatch").exists():
        raise FileExistsError(f"{out} already holds a job; choose another --out")
    script = write_job(problem_file, out, job, points, run_args)
    print(f"kanphys: wrote {script}; run directories: {', '.join(map(point_name, points))}")
    try:
        return submit(script, wait=args.wait)
    except RuntimeError as error:
        print(f"kanphys: {error}", file=sys.stderr)
        return 1
