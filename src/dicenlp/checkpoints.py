"""What a run keeps on disk to survive a kill: the latest training state and the best weights.

    <run_dir>/state/                  the latest state only (Accelerate ``save_state``: model, optimizer,
                                      scheduler, every process's RNG states) + trainer_state.json (step, epoch,
                                      data position, best metric and step, running loss, ...)
    <run_dir>/best/step<N>/           the best weights so far (model.safetensors) and that evaluation's dev
                                      result (dev.json: metrics, predictions, task files), written once per
                                      improvement by the main process

Crash safety: a state is written into ``state.tmp/`` and swapped in by renames (``state`` → ``state.old``,
``state.tmp`` → ``state``, then ``state.old`` removed), and ``trainer_state.json`` is written last, so a kill at
any moment leaves one complete state (``state``, or ``state.old`` during the swap; ``latest_state`` picks it).
A new best is written next to the previous one (``best/step<N>``) and the previous one is removed only after a
state that points to the new one exists: the state and the best weights never disagree.

The run directory must be one that every process sees (a shared filesystem on multi-node jobs).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

from dicenlp.files import write_json_atomic
from dicenlp.tasks.base import EvalResult

# Accelerate logs every file of every save at INFO: one line per evaluation (ours) is enough
for _name in ("accelerate.checkpointing", "accelerate.accelerator"):
    logging.getLogger(_name).setLevel(logging.WARNING)

STATE_DIR, BEST_DIR = "state", "best"
STATE_FILE = "trainer_state.json"
WEIGHTS_FILE, DEV_FILE = "model.safetensors", "dev.json"


@dataclass
class TrainState:
    """The loop's counters, saved with every state (JSON)."""

    step: int = 0                 # optimizer steps done
    epoch: int = 0                # the epoch in progress
    batch_in_epoch: int = 0       # micro-batches of that epoch already trained on (per process)
    best_metric: float | None = None
    best_step: int = 0
    seen_examples: int = 0
    train_time_s: float = 0.0
    running_loss: float = 0.0     # the not yet logged part of the running training loss (all processes)
    running_count: int = 0
    train_steps_s: float = 0.0    # time in training steps only (no evaluation, no state save)
    eval_s: float = 0.0           # time in evaluations
    real_tokens: int = 0          # training batches: real tokens and token slots (all processes)
    token_slots: int = 0
    eval_real_tokens: int = 0     # evaluation batches: the same
    eval_token_slots: int = 0
    num_processes: int = 1
    extra: dict[str, Any] = field(default_factory=dict)  # the caller's (e.g. the W&B run id)

    def improves(self, metric: float) -> bool:
        return not math.isnan(metric) and (self.best_metric is None or metric > self.best_metric)


def latest_state(run_dir: str | Path) -> Path | None:
    """The complete saved state of ``run_dir`` (``state``, else ``state.old`` left by a kill during a swap)."""
    for name in (STATE_DIR, f"{STATE_DIR}.old"):
        if (Path(run_dir) / name / STATE_FILE).is_file():
            return Path(run_dir) / name
    return None


def read_train_state(state_dir: str | Path) -> TrainState:
    return TrainState(**json.loads((Path(state_dir) / STATE_FILE).read_text(encoding="utf-8")))


def save_training_state(accelerator: Accelerator, run_dir: Path, state: TrainState) -> None:
    """Every process: the full state into ``run_dir/state`` (atomically, see the module docstring)."""
    final, tmp, old = run_dir / STATE_DIR, run_dir / f"{STATE_DIR}.tmp", run_dir / f"{STATE_DIR}.old"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # the main process writes model/optimizer/scheduler, each its RNG states
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json_atomic(tmp / STATE_FILE, asdict(state))  # last: its presence marks a complete state
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        prune_best(run_dir, keep=state.best_step)
    accelerator.wait_for_everyone()


def best_dir(run_dir: Path, step: int) -> Path:
    return run_dir / BEST_DIR / f"step{step}"


def save_best(accelerator: Accelerator, model: nn.Module, result: EvalResult, run_dir: Path, step: int) -> None:
    """The main process writes the weights and dev result of a new best evaluation (once, not per process)."""
    if accelerator.is_main_process:
        from safetensors.torch import save_model

        target = best_dir(run_dir, step)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(accelerator.unwrap_model(model), str(tmp / WEIGHTS_FILE))  # handles tied weights
        write_json_atomic(tmp / DEV_FILE, {"step": step, "metrics": result.metrics, "predictions": result.predictions,
                                           "extra_files": result.extra_files}, indent=None)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    accelerator.wait_for_everyone()


def load_best(accelerator: Accelerator, model: nn.Module, run_dir: Path, step: int) -> EvalResult:
    """Every process: load the best weights into ``model``; returns their dev result."""
    from safetensors.torch import load_model

    target = best_dir(run_dir, step)
    device = accelerator.device
    load_model(accelerator.unwrap_model(model), str(target / WEIGHTS_FILE),
               device="cpu" if device.type == "cpu" else str(device))  # safetensors refuses "cpu:0" (gloo ranks)
    saved = json.loads((target / DEV_FILE).read_text(encoding="utf-8"))
    return EvalResult(metrics=saved["metrics"], predictions=saved["predictions"], extra_files=saved["extra_files"])


def prune_best(run_dir: Path, keep: int) -> None:
    """Remove every best candidate but ``best/step<keep>`` (older bests, and newer ones a resume will redo)."""
    for path in (run_dir / BEST_DIR).glob("step*"):
        if path.name != f"step{keep}":
            shutil.rmtree(path, ignore_errors=True)


def remove_training_state(run_dir: Path) -> None:
    """After a completed run: the state and the best weights are no longer needed (``checkpoint/`` holds the
    best weights when ``trainer.save_checkpoint`` asked for them)."""
    for name in (STATE_DIR, f"{STATE_DIR}.tmp", f"{STATE_DIR}.old", BEST_DIR):
        shutil.rmtree(run_dir / name, ignore_errors=True)


__all__ = ["TrainState", "best_dir", "latest_state", "load_best", "prune_best", "read_train_state",
           "remove_training_state", "save_best", "save_training_state"]
