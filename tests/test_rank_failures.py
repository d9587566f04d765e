"""A failure on one process of a distributed run stops every process, within seconds, with its message.

Two processes are started directly (as SLURM's srun or a hand-written launcher does; no torchrun agent that would
kill the survivors), so each must stop by itself: the check points of ``dicenlp.distributed`` and the trainer's
per-step check (``check_step``) make every process raise, the failing one its own exception, and only one
process prints the message.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, TINY_RUN, launch_ranks
#: A toy fit whose loss fails on process 1 at its third step: a NaN, or an exception.
TOY_FIT = r'''
import sys
import torch
from accelerate import Accelerator
from torch import nn
sys.path.insert(0, sys.argv[3])
from test_trainer import ToyTask
from dicenlp.errors import exit_on_user_error
from dicenlp.trainer import TrainerConfig, fit

mode, output_dir = sys.argv[1], sys.argv[2]
accelerator = Accelerator(cpu=True)


class FailsOnProcess1(nn.CrossEntropyLoss):
    calls = 0

    def forward(self, logits, target):
        self.calls += 1
        if self.calls == 3 and accelerator.process_index == 1:
            if mode == "nan":
                return super().forward(logits, target) * float("nan")
            raise RuntimeError("simulated failure of process 1")
        return super().forward(logits, target)


torch.manual_seed(0)
task = ToyTask()
task.setup()
cfg = TrainerConfig(lr=0.05, batch_size=8, max_epochs=2, eval_every=3)
exit_on_user_error(fit, task, task.build_model(None, "ce"), FailsOnProcess1(), accelerator, cfg,
                   output_dir=output_dir)
'''


def _two_ranks(command: list[str], cwd) -> list[tuple[int, str, float]]:
    """Run ``command`` as rank 0 and rank 1 of one job; ``(exit code, stderr, seconds)`` of each."""
    import time

    start = time.monotonic()
    procs = launch_ranks(command, cwd)
    out = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for p in procs:
                os.killpg(p.pid, 9)
            raise AssertionError("a process hung after the other one failed")
        out.append((proc.returncode, err, time.monotonic() - start))
    return out


@pytest.mark.parametrize("mode", ["nan", "exception"])
def test_a_failure_on_one_process_stops_both_with_its_message(tmp_path, mode):
    script = tmp_path / "toy_fit.py"
    script.write_text(TOY_FIT)
    (code0, err0, t0), (code1, err1, t1) = _two_ranks(
        [sys.executable, str(script), mode, str(tmp_path / "run"), str(REPO_ROOT / "tests")], tmp_path)
    assert abs(t0 - t1) < 30  # both stopped at the same check point, not one at the process-group timeout
    if mode == "nan":
        # every process raises; the main process reports the loss of each process, the other stays quiet
        assert code0 == code1 == 2
        assert "error: non-finite training loss at step 3 (process 0: " in err0 and "process 1: nan)" in err0
        assert "error:" not in err1
    else:
        # process 1 keeps its traceback (an unexpected error); process 0 stops because of it, quietly
        assert code1 == 1 and "Traceback" in err1 and "RuntimeError: simulated failure of process 1" in err1
        assert code0 == 2 and "Traceback" not in err0


@pytest.mark.slow
def test_a_setup_failure_on_the_main_process_stops_every_process(tmp_path):
    """The main process fails inside main_process_first (tokenising, here: the cache path is a file) while the
    other waits for it: both stop within seconds (before: the other waited for the process-group timeout)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    (code0, err0, t0), (code1, err1, t1) = _two_ranks(
        [sys.executable, str(REPO_ROOT / "train.py"), "task=sample_pos", *TINY_RUN,
         f"task.params.cache_dir={blocker}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert code0 == 1 and "NotADirectoryError" in err0 and "Traceback" in err0
    assert code1 == 2 and "Traceback" not in err1
    assert abs(t0 - t1) < 30
