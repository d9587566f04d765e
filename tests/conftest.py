"""Shared fixtures: compose the real Hydra configs and run the real training path on tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"
#: Slices of real datasets beside the checkout (never copied into the project); tests using them skip if absent.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from intra-op threads, and on a loaded 2-core machine oversubscription made a
# 4-step run 20× slower (17 s vs 0.8 s measured by the QA tests).
torch.set_num_threads(1)

#: Settings that make any task × loss run in seconds on a CPU. They are command-line overrides, so they win
#: over the task's official settings (and scale=smoke), exactly as they would for a user.
TINY_RUN = [
    "model=tiny",
    "logger=none",
    "trainer.max_steps=4",
    "trainer.batch_size=8",
    "trainer.eval_batch_size=16",
    "trainer.grad_accum=1",
    "trainer.eval_every=2",
    "trainer.warmup_ratio=0.0",
    "trainer.mixed_precision=no",
    "trainer.log_every=1",
]


def launch_ranks(command: list[str], cwd, processes: int = 2) -> list:
    """Start ``command`` as every rank of one distributed job, directly (as SLURM's srun does; no torchrun agent
    that would kill or restart processes): ``[subprocess.Popen]``, rank order, output piped, own sessions."""
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = []
    for rank in range(processes):
        env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": str(processes), "RANK": str(rank),
               "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(processes), "PYTHONPATH": str(REPO_ROOT / "src")}
        procs.append(subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, start_new_session=True))
    return procs


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test when that folder (or file) is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real-data slice {path} not available")
    return path


@pytest.fixture
def compose_config():
    """``compose_config(*overrides) -> DictConfig`` from configs/train.yaml (no ``${hydra:}`` needed)."""
    from hydra import compose, initialize_config_dir

    def _compose(*overrides: str, output_dir: str | Path = "unused-output-dir"):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
            return compose("train", overrides=[f"output_dir={output_dir}", *overrides])

    return _compose


@pytest.fixture
def run_train(tmp_path, compose_config):
    """``run_train(*overrides) -> results dict``: the real ``dicenlp.run.run`` on the tiny model.

    The run directory is ``results["output_dir"]`` (inside pytest's tmp_path).
    """
    from dicenlp.run import run

    counter = iter(range(1000))

    def _run(*overrides: str, tiny: bool = True):
        output_dir = tmp_path / f"run{next(counter)}"
        cfg = compose_config(*(TINY_RUN if tiny else []), *overrides, output_dir=output_dir)
        return run(cfg)

    return _run
