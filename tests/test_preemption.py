"""Preemption: SIGTERM during Adam and again during L-BFGS, then resume, ends bit-identical to
an uninterrupted run; a checkpoint half-written when the process is killed is never used.
"""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys.cli import main


def history(trainer) -> torch.Tensor:
    rows = torch.tensor(trainer.rows, dtype=torch.float64)
    return rows[:, [i for i, name in enumerate(trainer.columns) if name != "time_s"]]


def signal_at(step: int, number: int = signal.SIGTERM):
    """A callback that sends ``number`` to this process once ``step`` is done."""

    def callback(trainer):
        if trainer.position.global_step == step:
            os.kill(os.getpid(), number)

    return callback


def test_sigterm_in_adam_and_again_in_lbfgs_then_resume_is_bit_identical(
    poisson1d, make_plan, make_surrogate, tmp_path
):
    """The tiny plan: Adam steps 1-20, a grid extension, L-BFGS steps 21-30 (float32)."""
    plan = make_plan(checkpoint_every=0)  # the only checkpoints are the signals'
    reference = kp.Trainer(poisson1d, make_surrogate(poisson1d), plan)
    reference.fit()

    path = tmp_path / "checkpoint.pt"
    first = kp.Trainer(poisson1d, make_surrogate(poisson1d), plan, checkpoint=path)
    with pytest.raises(kp.Preempted, match="step 7"):
        first.fit(signal_at(7))
    second = kp.Trainer.restore(poisson1d, plan, path)
    assert (second.position.stage, second.position.global_step) == (0, 7)
    with pytest.raises(kp.Preempted, match="step 25"):
        second.fit(signal_at(25, signal.SIGUSR1))
    third = kp.Trainer.restore(poisson1d, plan, path)
    assert (third.position.stage, third.position.step) == (2, 5)  # inside L-BFGS
    third.fit()

    assert torch.equal(history(third), history(reference))
    state = third.model.state_dict()
    for name, value in reference.model.state_dict().items():
        assert torch.equal(state[name], value), name


# The child trains through the command line and is SIGKILLed in the middle of writing the
# checkpoint of step STEP: half a file is on disk when it dies.
KILLED_WHILE_WRITING = textwrap.dedent(
    """
    import os, signal, sys

    import torch

    from kanphys.cli import main

    STEP = int(sys.argv[1])
    calls = {"n": 0}
    save = torch.save


    def half_then_killed(content, stream, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] < STEP:
            return save(content, stream, *args, **kwargs)
        stream.write(b"PK\\x03\\x04 half of a checkpoint")
        stream.flush()
        os.kill(os.getpid(), signal.SIGKILL)


    torch.save = half_then_killed
    sys.exit(main(sys.argv[2:]))
    """
)


def test_checkpoint_half_written_at_a_kill_is_never_used(problem_file, tmp_path):
    """The problem file checkpoints every step (Adam 12, L-BFGS 3); the kill hits step 5's."""
    out, reference = tmp_path / "run", tmp_path / "reference"
    arguments = ["run", str(problem_file), "--no-progress"]
    child = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_WRITING, "5", *arguments, "--out", str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".checkpoint.pt.")]
    assert len(leftovers) == 1  # the half-written file, under a temporary name
    kept = torch.load(out / "checkpoint.pt", weights_only=True)
    assert kept["position"]["global_step"] == 4  # the previous checkpoint is intact

    assert main(["resume", str(out), "--no-progress"]) == 0
    assert main([*arguments, "--out", str(reference)]) == 0
    resumed, uninterrupted = kp.Run.load(out), kp.Run.load(reference)
    for column in ("step", "lr", "loss", "loss_poisson", "loss_ends"):
        np.testing.assert_array_equal(resumed.history()[column], uninterrupted.history()[column])
    state = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    for name, value in torch.load(reference / "checkpoint.pt", weights_only=True)["model"].items():
        assert torch.equal(state[name], value), name
