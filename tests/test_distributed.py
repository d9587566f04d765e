"""`accelerate launch` and `torchrun` with 2 CPU processes (gloo): one run dir, every feature evaluated once.

(`accelerate launch --cpu` runs one process or needs MPI; `--multi_gpu` on a machine without GPUs starts
torch.distributed workers that Accelerate runs as MULTI_CPU with the gloo backend.)

With lr = 0 the model never changes, so the 2-process run must report exactly the metrics of the
1-process run: any duplicated or missing feature in the gathered evaluation would change them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, TINY_RUN

pytestmark = pytest.mark.slow

FROZEN = ["task=sample_pos", "loss=ce", *TINY_RUN, "trainer.lr=0.0", "trainer.max_steps=2",
          "trainer.eval_batch_size=7"]  # 7 does not divide the eval sets: the last batch is padded by Accelerate


def _launch(prefix: list[str], run_dir, tmp_path) -> dict:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    proc = subprocess.run([*prefix, str(REPO_ROOT / "train.py"), *FROZEN, f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("launcher", [
    [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
     "--mixed_precision", "no", "--dynamo_backend", "no"],
    [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"],
], ids=["accelerate", "torchrun"])
def test_two_processes_match_one_process(tmp_path, launcher):
    single = _launch([sys.executable], tmp_path / "single", tmp_path)
    multi = _launch(launcher, tmp_path / "multi", tmp_path)
    assert multi["num_processes"] == 2 and single["num_processes"] == 1
    assert multi["dev"] == single["dev"] and multi["test"] == single["test"]
    for split in ("dev", "test"):
        one = json.loads((tmp_path / "single" / f"predictions_{split}.json").read_text())
        two = json.loads((tmp_path / "multi" / f"predictions_{split}.json").read_text())
        assert two == one
    # one run directory: the ranks did not leave Hydra dirs of their own next to it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi", "single"]
