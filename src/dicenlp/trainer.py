"""The one training loop of every task (Hugging Face Accelerate).

Launch (the loop is unchanged in each case)::

    python train.py task=wsj loss=dsc                                   # CPU or one GPU
    accelerate launch --num_processes 4 train.py task=wsj loss=dsc hydra.run.dir=outputs/wsj_dsc
    torchrun --nproc_per_node 4 train.py task=wsj loss=dsc hydra.run.dir=outputs/wsj_dsc

Conventions, with the reasons:
* A *step* is an optimizer step. Gradient accumulation is Accelerate's (``accelerator.accumulate``); we
  count a step only when ``accelerator.sync_gradients`` is true, so ``max_steps``, ``eval_every``, warmup
  and logging are all in optimizer steps whatever ``grad_accum`` and the number of processes are.
* The LR scheduler is NOT passed through ``accelerator.prepare`` (which would step it once per process);
  it is stepped once per optimizer step, and ``total_steps`` is computed from the already sharded train
  dataloader, so the LR reaches its end value exactly at the last step on 1 or N processes.
* The loss is computed by the task from the logits (``task.compute_loss``), never ``outputs.loss``.
* Evaluation gathers ``task.eval_outputs`` with ``pad_across_processes`` + ``gather_for_metrics`` (which
  drops the duplicated samples of the last distributed batch) and restores ``feature_index`` order.
* The best weights (by the task's dev ``primary_metric``) are kept as a CPU copy on every rank, so the
  final test evaluation uses them without touching the disk; with ``save_checkpoint`` the main process
  writes them once at the end (``save_pretrained``, safetensors).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
                          get_polynomial_decay_schedule_with_warmup)

from dicenlp.tasks.base import EVAL_PAD_VALUE, EvalResult, Task

log = logging.getLogger(__name__)


@dataclass
class TrainerConfig:
    """Optimisation and evaluation settings (``configs/trainer/default.yaml`` mirrors these fields)."""

    lr: float = 3e-5
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-8
    batch_size: int = 32            # per process, before accumulation
    eval_batch_size: int = 64
    grad_accum: int = 1
    max_epochs: float = 3
    max_steps: int = -1             # > 0 overrides max_epochs
    warmup_ratio: float = 0.1
    scheduler: str = "linear"       # linear | polynomial | constant
    poly_lr_end_ratio: float = 0.25  # polynomial: decay to lr * ratio (the official "polydecay" uses lr/4)
    poly_power: float = 1.0
    max_grad_norm: float = 1.0      # <= 0 disables clipping
    eval_every: float = 1.0         # an int: every N steps; a float <= 1.0: that fraction of an epoch
    mixed_precision: str = "no"     # no | fp16 | bf16
    save_checkpoint: bool = False
    num_workers: int = 0
    log_every: int = 10

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown trainer settings {unknown}; known: {sorted(known)}")
        return cls(**values)


@dataclass
class FitResult:
    dev: dict[str, float] | None
    test: dict[str, float] | None
    best_step: int
    total_steps: int
    train_time_s: float
    examples_per_s: float
    predictions: dict[str, EvalResult]


# ---------------------------------------------------------------------------------------- pieces
def build_optimizer(model: nn.Module, cfg: TrainerConfig) -> torch.optim.Optimizer:
    """AdamW with two groups: weight decay on matrices, none on biases and LayerNorm weights (ndim < 2)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, eps=cfg.adam_epsilon)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainerConfig, total_steps: int):
    """Warmup (``warmup_ratio`` of the steps) then linear decay to 0, polynomial decay to
    ``lr * poly_lr_end_ratio`` (the official scripts' "polydecay"), or constant."""
    if cfg.scheduler not in ("linear", "polynomial", "constant"):
        raise ValueError(f"unknown scheduler {cfg.scheduler!r}; expected linear, polynomial or constant")
    warmup = math.ceil(cfg.warmup_ratio * total_steps)
    if cfg.scheduler == "constant" or cfg.lr == 0:  # lr 0 (frozen-model checks) has nothing to decay
        return get_constant_schedule_with_warmup(optimizer, warmup)
    if cfg.scheduler == "linear":
        return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    return get_polynomial_decay_schedule_with_warmup(
        optimizer, warmup, total_steps, lr_end=cfg.lr * cfg.poly_lr_end_ratio, power=cfg.poly_power)


def eval_interval(cfg: TrainerConfig, steps_per_epoch: int) -> int:
    """``eval_every`` as a number of optimizer steps (a float <= 1 is a fraction of an epoch)."""
    if cfg.eval_every <= 0:
        raise ValueError("trainer.eval_every must be > 0")
    if isinstance(cfg.eval_every, float) and cfg.eval_every <= 1:
        return max(1, round(cfg.eval_every * steps_per_epoch))
    return int(cfg.eval_every)


def concat_padded(chunks: list[np.ndarray], pad_value=EVAL_PAD_VALUE) -> np.ndarray:
    """Concatenate arrays on dim 0 after padding dim 1 (when present) to the longest chunk."""
    if chunks[0].ndim < 2:
        return np.concatenate(chunks)
    width = max(c.shape[1] for c in chunks)
    padded = []
    for c in chunks:
        if c.shape[1] < width:
            pad = [(0, 0)] * c.ndim
            pad[1] = (0, width - c.shape[1])
            c = np.pad(c, pad, constant_values=pad_value)
        padded.append(c)
    return np.concatenate(padded)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.float()  # bf16/fp16 → float32 (numpy has no bfloat16)
    return tensor.numpy()


# ---------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(task: Task, split: str, model: nn.Module, loader: DataLoader, accelerator: Accelerator) -> EvalResult:
    """Run ``model`` over ``loader`` on every rank, gather ``task.eval_outputs`` once per feature, score."""
    model.eval()
    chunks: dict[str, list[np.ndarray]] = defaultdict(list)
    for batch in tqdm(loader, desc=f"eval {split}", leave=False, disable=not accelerator.is_local_main_process):
        outputs = model(batch)
        out = task.eval_outputs(outputs, batch)
        out = {k: accelerator.pad_across_processes(v, dim=1, pad_index=EVAL_PAD_VALUE) if v.dim() >= 2 else v
               for k, v in out.items()}
        for key, value in accelerator.gather_for_metrics(out).items():
            chunks[key].append(_to_numpy(value))
    model.train()
    gathered = {k: concat_padded(v) for k, v in chunks.items()}
    order = np.argsort(gathered["feature_index"], kind="stable")
    gathered = {k: v[order] for k, v in gathered.items()}
    n_features = len(task.datasets[split])
    if len(order) != n_features or not np.array_equal(gathered["feature_index"], np.arange(n_features)):
        raise RuntimeError(f"evaluation of {split!r} gathered {len(order)} outputs for {n_features} features; "
                           "every feature must be seen exactly once")
    return task.evaluate(split, gathered)


# ---------------------------------------------------------------------------------------- fit
def fit(task: Task, model: nn.Module, loss_fn: nn.Module, accelerator: Accelerator, cfg: TrainerConfig,
        log_metrics: Callable[[dict[str, float], int], None] = lambda metrics, step: None,
        seed: int = 0) -> FitResult:
    """Train ``model`` on ``task``'s train split, select on dev, evaluate the best weights on test.

    ``log_metrics(metrics, step)`` receives train loss / LR every ``log_every`` steps and dev metrics at
    every evaluation (on the main process only; wire it to a tracker); the progress bar shows the running loss
    and the last and best dev metric. Returns a ``FitResult``.
    """
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(task.datasets["train"], batch_size=cfg.batch_size, shuffle=True,
                              collate_fn=task.collate, num_workers=cfg.num_workers, generator=generator)
    eval_loaders = {split: DataLoader(task.datasets[split], batch_size=cfg.eval_batch_size, shuffle=False,
                                      collate_fn=task.collate, num_workers=cfg.num_workers)
                    for split in ("dev", "test") if split in task.datasets}
    if "dev" not in eval_loaders:
        raise ValueError(f"task {task.name!r} has no dev split: the best checkpoint is selected on dev")

    optimizer = build_optimizer(model, cfg)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    loss_fn = loss_fn.to(accelerator.device)  # not prepared: DDP refuses modules without trainable parameters
    eval_loaders = {k: accelerator.prepare(v) for k, v in eval_loaders.items()}

    steps_per_epoch = max(1, math.ceil(len(train_loader) / cfg.grad_accum))
    total_steps = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.max_epochs * steps_per_epoch))
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    every = eval_interval(cfg, steps_per_epoch)
    log.info("training %s: %d steps (%d per epoch), evaluating every %d", task.name, total_steps, steps_per_epoch, every)

    best_metric, best_step, best_state, best_dev = -math.inf, 0, None, None  # best_dev: the dev EvalResult
    step, seen_examples, running_loss, running_count = 0, 0, 0.0, 0
    progress = tqdm(total=total_steps, desc=f"train {task.name}", disable=not accelerator.is_local_main_process)
    postfix: dict[str, str] = {}
    model.train()
    start = time.perf_counter()

    def run_dev() -> None:
        nonlocal best_metric, best_step, best_state, best_dev
        result = evaluate(task, "dev", model, eval_loaders["dev"], accelerator)
        metric = result.metrics[task.primary_metric]
        log_metrics({f"dev/{k}": v for k, v in result.metrics.items()}, step)
        if metric > best_metric:
            best_metric, best_step, best_dev = metric, step, result
            unwrapped = accelerator.unwrap_model(model)
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in unwrapped.state_dict().items()}
        log.info("step %d: dev %s %.2f (best %.2f at step %d)", step, task.primary_metric, metric, best_metric,
                 best_step)
        postfix.update({f"dev_{task.primary_metric}": f"{metric:.2f}", "best": f"{best_metric:.2f}"})
        progress.set_postfix(postfix)

    while step < total_steps:
        for batch in train_loader:
            with accelerator.accumulate(model):
                outputs = model(batch)
                loss = task.compute_loss(outputs, batch, loss_fn)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite training loss {loss.item()} at step {step}")
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()          # a no-op on accumulation micro-steps (Accelerate)
                optimizer.zero_grad()
            running_loss += loss.detach().float().item()
            running_count += 1
            seen_examples += len(batch["feature_index"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            progress.update(1)
            if step % cfg.log_every == 0 or step == total_steps:
                mean_loss = running_loss / running_count
                log_metrics({"train/loss": mean_loss,
                             "train/lr": scheduler.get_last_lr()[0], "train/epoch": step / steps_per_epoch}, step)
                postfix["loss"] = f"{mean_loss:.4f}"  # the running loss on the console: a plateau shows at once
                progress.set_postfix(postfix)
                running_loss, running_count = 0.0, 0
            if step % every == 0 or step == total_steps:
                run_dev()
            if step >= total_steps:
                break
    train_time = time.perf_counter() - start
    progress.close()

    accelerator.unwrap_model(model).load_state_dict(best_state)
    predictions = {"dev": best_dev}
    if "test" in eval_loaders:
        predictions["test"] = evaluate(task, "test", model, eval_loaders["test"], accelerator)
        log_metrics({f"test/{k}": v for k, v in predictions["test"].metrics.items()}, step)
    return FitResult(dev=predictions["dev"].metrics, test=predictions["test"].metrics if "test" in predictions else None,
                     best_step=best_step, total_steps=total_steps, train_time_s=train_time,
                     examples_per_s=seen_examples / max(train_time, 1e-9), predictions=predictions)


__all__ = ["FitResult", "TrainerConfig", "build_optimizer", "build_scheduler", "concat_padded", "evaluate", "fit",
           "eval_interval"]
