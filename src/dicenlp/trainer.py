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
* The best weights (by the task's dev ``primary_metric``) are written once per improvement by the main process
  (``<output_dir>/best/``) and loaded by every process for the final test evaluation.
* Resume: after every evaluation but the last, the full state goes to ``<output_dir>/state/``
  (``dicenlp.checkpoints``); ``fit(resume_from=...)`` continues from it and ends with the same metrics and
  weights as an uninterrupted run. The training order of epoch ``e`` depends only on (seed, e) and the
  batches of the interrupted epoch already trained on are skipped (``epoch_batches``).
* A failure on one process stops every process: the loss of every step (and any exception in the forward
  pass) is checked on all processes at once (``check_step``).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
                          get_polynomial_decay_schedule_with_warmup)

from dicenlp.checkpoints import (TrainState, load_best, prune_best, read_train_state, save_best,
                                 save_training_state)
from dicenlp.distributed import agree_on_failure
from dicenlp.errors import ConfigError, DataError, NonFiniteLossError, RunDirError
from dicenlp.tasks.base import EVAL_PAD_VALUE, EvalResult, Task

log = logging.getLogger(__name__)

SCHEDULERS = ("linear", "polynomial", "constant")
PRECISIONS = ("no", "fp16", "bf16")
RESUME_MODES = ("auto", "never", "must")


@dataclass
class TrainerConfig:
    """Optimisation and evaluation settings (``configs/trainer/default.yaml`` mirrors these fields).
    Every value is checked when the config is made (``ConfigError`` naming ``trainer.<key>``)."""

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
    resume: str = "auto"            # auto | never | must (what run.py does with a run folder that holds a run)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}", where="trainer", expected=f"one of {sorted(known)}")
        return cls(**values)

    def __post_init__(self) -> None:
        for key, valid, expected in _CHECKS:
            value = getattr(self, key)
            if not valid(value):
                raise ConfigError(f"{value!r} is not valid", where=f"trainer.{key}", expected=expected)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: (field, check, what is expected): the config's validation, one line per key.
_CHECKS: list[tuple[str, Callable[[Any], bool], str]] = [
    ("lr", lambda v: _number(v) and v >= 0, "a learning rate >= 0 (0 freezes the model)"),
    ("weight_decay", lambda v: _number(v) and v >= 0, "a number >= 0"),
    ("adam_epsilon", lambda v: _number(v) and v > 0, "a number > 0"),
    ("batch_size", lambda v: _integer(v) and v >= 1, "an integer >= 1 (examples per process and step)"),
    ("eval_batch_size", lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    ("grad_accum", lambda v: _integer(v) and v >= 1, "an integer >= 1 (1 = no accumulation)"),
    ("max_epochs", lambda v: _number(v) and v > 0, "a number of epochs > 0"),
    ("max_steps", lambda v: _integer(v) and (v == -1 or v >= 1),
     "-1 (train for max_epochs) or a number of optimizer steps >= 1"),
    ("warmup_ratio", lambda v: _number(v) and 0 <= v < 1, "a fraction of the steps in [0, 1)"),
    ("scheduler", lambda v: v in SCHEDULERS, f"one of {', '.join(SCHEDULERS)}"),
    ("poly_lr_end_ratio", lambda v: _number(v) and 0 <= v <= 1, "a fraction of the learning rate in [0, 1]"),
    ("poly_power", lambda v: _number(v) and v > 0, "a number > 0"),
    ("max_grad_norm", _number, "a number (<= 0 disables clipping)"),
    ("eval_every", lambda v: (_integer(v) and v >= 1) or (_number(v) and 0 < v <= 1),
     "an integer number of steps >= 1, or a fraction of an epoch in (0, 1]"),
    ("mixed_precision", lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
    ("save_checkpoint", lambda v: isinstance(v, bool), "true or false"),
    ("num_workers", lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    ("log_every", lambda v: _integer(v) and v >= 1, "an integer number of steps >= 1"),
    ("resume", lambda v: v in RESUME_MODES, f"one of {', '.join(RESUME_MODES)} (see docs/training.md)"),
]


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
    warmup = math.ceil(cfg.warmup_ratio * total_steps)
    if cfg.scheduler == "constant" or cfg.lr == 0:  # lr 0 (frozen-model checks) has nothing to decay
        return get_constant_schedule_with_warmup(optimizer, warmup)
    if cfg.scheduler == "linear":
        return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    return get_polynomial_decay_schedule_with_warmup(
        optimizer, warmup, total_steps, lr_end=cfg.lr * cfg.poly_lr_end_ratio, power=cfg.poly_power)


def eval_interval(cfg: TrainerConfig, steps_per_epoch: int) -> int:
    """``eval_every`` as a number of optimizer steps (a float <= 1 is a fraction of an epoch)."""
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


# ---------------------------------------------------------------------------------------- data position
class EpochSampler(Sampler[int]):
    """A random order of the training set that depends only on (seed, epoch), so that epoch ``e`` of a resumed
    run sees exactly the order of epoch ``e`` of an uninterrupted one. Accelerate's prepared loader calls
    ``set_epoch`` with its epoch counter before each pass (and shards the batches across processes)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


def epoch_batches(train_loader: DataLoader, accelerator: Accelerator, epoch: int, skip: int):
    """The training batches of ``epoch`` without its first ``skip`` (those trained on before a resume).

    The one place that knows how a data position is restored: the order of an epoch depends only on the
    epoch (``EpochSampler``), and Accelerate skips the batches without loading them."""
    train_loader.set_epoch(epoch)
    return accelerator.skip_first_batches(train_loader, skip) if skip else train_loader


# ---------------------------------------------------------------------------------------- failures
def check_step(accelerator: Accelerator, loss: torch.Tensor | None, error: Exception | None, step: int) -> None:
    """Every process learns whether any process failed in this step's forward pass or got a non-finite loss,
    and then every process stops with that message (instead of the others waiting in the next all-reduce)."""
    failed = torch.tensor([float(error is not None)], device=accelerator.device)
    value = torch.full((1,), math.nan, device=accelerator.device) if error else loss.detach().float().reshape(1)
    flags = torch.cat([failed, value])[None]  # [1, 2]: this process's (failed, loss)
    if accelerator.num_processes > 1:
        flags = accelerator.gather(flags)  # [processes, 2]
    flags = flags.cpu()
    if flags[:, 0].any():
        agree_on_failure(accelerator, error)  # raises everywhere: the failing process its own exception
    if not torch.isfinite(flags[:, 1]).all():
        values = ", ".join(f"process {r}: {v:g}" for r, v in enumerate(flags[:, 1].tolist()))
        err = NonFiniteLossError(f"non-finite training loss at step {step + 1} ({values})",
                                 expected="a finite loss: lower trainer.lr, or check the data and "
                                          "trainer.mixed_precision")
        err.quiet = not accelerator.is_main_process
        raise err


# ---------------------------------------------------------------------------------------- fit
def fit(task: Task, model: nn.Module, loss_fn: nn.Module, accelerator: Accelerator, cfg: TrainerConfig, *,
        output_dir: str | Path, log_metrics: Callable[[dict[str, float], int], None] = lambda metrics, step: None,
        seed: int = 0, resume_from: str | Path | None = None, state_extra: Mapping[str, Any] | None = None
        ) -> FitResult:
    """Train ``model`` on ``task``'s train split, select on dev, evaluate the best weights on test.

    ``output_dir`` receives the training state after every evaluation (``state/``) and the best weights
    (``best/``); ``resume_from`` (a ``state/`` folder) continues a run from there. ``state_extra`` is saved with
    every state (``read_train_state(...).extra``). ``log_metrics(metrics, step)`` receives train loss / LR
    every ``log_every`` steps and dev metrics at every evaluation (on the main process only; wire it to a
    tracker); the progress bar shows the running loss and the last and best dev metric. Returns a ``FitResult``.
    """
    output_dir = Path(output_dir)
    train_set = task.datasets["train"]
    # the DataLoader's own generator: creating an iterator must not draw from the global RNG (dropout's), or a
    # resumed run would diverge from an uninterrupted one
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=EpochSampler(len(train_set), seed),
                              collate_fn=task.collate, num_workers=cfg.num_workers,
                              generator=torch.Generator().manual_seed(seed))
    eval_loaders = {split: DataLoader(task.datasets[split], batch_size=cfg.eval_batch_size, shuffle=False,
                                      collate_fn=task.collate, num_workers=cfg.num_workers)
                    for split in ("dev", "test") if split in task.datasets}
    if "dev" not in eval_loaders:
        raise ValueError(f"task {task.name!r} has no dev split: the best checkpoint is selected on dev")
    for split, dataset in [("train", train_set), *((s, task.datasets[s]) for s in eval_loaders)]:
        if len(dataset) == 0:
            raise DataError(f"the {split} split has no features", where=f"task {task.name!r}",
                            expected="at least one example in every split")

    optimizer = build_optimizer(model, cfg)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    loss_fn = loss_fn.to(accelerator.device)  # not prepared: DDP refuses modules without trainable parameters
    eval_loaders = {k: accelerator.prepare(v) for k, v in eval_loaders.items()}

    steps_per_epoch = max(1, math.ceil(len(train_loader) / cfg.grad_accum))
    total_steps = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.max_epochs * steps_per_epoch))
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    accelerator.register_for_checkpointing(scheduler)
    every = eval_interval(cfg, steps_per_epoch)

    state = TrainState(num_processes=accelerator.num_processes, extra=dict(state_extra or {}))
    if resume_from is not None:
        saved = read_train_state(resume_from)
        if saved.num_processes != accelerator.num_processes:
            raise RunDirError(f"the saved state was written by {saved.num_processes} process(es), this run has "
                              f"{accelerator.num_processes}", where=str(resume_from),
                              expected="the same number of processes to resume (or a new run folder)")
        accelerator.load_state(str(resume_from))  # model, optimizer, scheduler, RNG states of every process
        state = TrainState(**{**saved.__dict__, "extra": {**saved.extra, **state.extra}})
        if accelerator.is_main_process:
            prune_best(output_dir, keep=state.best_step)  # bests newer than the state are redone
        log.info("resuming %s at step %d of %d (epoch %d, batch %d)", task.name, state.step, total_steps,
                 state.epoch, state.batch_in_epoch)
    log.info("training %s: %d steps (%d per epoch), evaluating every %d", task.name, total_steps, steps_per_epoch, every)

    progress = tqdm(total=total_steps, initial=state.step, desc=f"train {task.name}",
                    disable=not accelerator.is_local_main_process)
    postfix: dict[str, str] = {}
    model.train()
    start = time.perf_counter() - state.train_time_s

    def run_dev() -> None:
        result = evaluate(task, "dev", model, eval_loaders["dev"], accelerator)
        metric = result.metrics[task.primary_metric]
        log_metrics({f"dev/{k}": v for k, v in result.metrics.items()}, state.step)
        if state.improves(metric):
            state.best_metric, state.best_step = metric, state.step
            save_best(accelerator, model, result, output_dir, state.step)
        best = math.nan if state.best_metric is None else state.best_metric
        log.info("step %d: dev %s %.2f (best %.2f at step %d)", state.step, task.primary_metric, metric, best,
                 state.best_step)
        postfix.update({f"dev_{task.primary_metric}": f"{metric:.2f}", "best": f"{best:.2f}"})
        progress.set_postfix(postfix)

    while state.step < total_steps:
        for batch in epoch_batches(train_loader, accelerator, state.epoch, state.batch_in_epoch):
            state.batch_in_epoch += 1
            with accelerator.accumulate(model):
                loss, error = None, None
                try:
                    loss = task.compute_loss(model(batch), batch, loss_fn)
                except Exception as err:  # noqa: BLE001  (every process learns of it in check_step)
                    error = err
                check_step(accelerator, loss, error, state.step)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()          # a no-op on accumulation micro-steps (Accelerate)
                optimizer.zero_grad()
            state.running_loss += loss.detach().float().item()
            state.running_count += 1
            state.seen_examples += len(batch["feature_index"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            state.step += 1
            progress.update(1)
            if state.step % cfg.log_every == 0 or state.step == total_steps:
                mean_loss = state.running_loss / state.running_count
                log_metrics({"train/loss": mean_loss, "train/lr": scheduler.get_last_lr()[0],
                             "train/epoch": state.step / steps_per_epoch}, state.step)
                postfix["loss"] = f"{mean_loss:.4f}"  # the running loss on the console: a plateau shows at once
                progress.set_postfix(postfix)
                state.running_loss, state.running_count = 0.0, 0
            if state.step % every == 0 or state.step == total_steps:
                run_dev()
                if state.step < total_steps:  # after the last evaluation only the test remains: nothing to resume
                    state.train_time_s = time.perf_counter() - start
                    save_training_state(accelerator, output_dir, state)
            if state.step >= total_steps:
                break
        else:  # the epoch ended
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
    train_time = time.perf_counter() - start
    progress.close()

    if state.best_metric is None:
        raise FloatingPointError(f"no dev evaluation gave a number for {task.primary_metric!r}")
    best_dev = load_best(accelerator, model, output_dir, state.best_step)
    predictions = {"dev": best_dev}
    if "test" in eval_loaders:
        predictions["test"] = evaluate(task, "test", model, eval_loaders["test"], accelerator)
        log_metrics({f"test/{k}": v for k, v in predictions["test"].metrics.items()}, state.step)
    return FitResult(dev=best_dev.metrics, test=predictions["test"].metrics if "test" in predictions else None,
                     best_step=state.best_step, total_steps=total_steps, train_time_s=train_time,
                     examples_per_s=state.seen_examples / max(train_time, 1e-9), predictions=predictions)


__all__ = ["EpochSampler", "FitResult", "TrainerConfig", "build_optimizer", "build_scheduler", "check_step",
           "concat_padded", "epoch_batches", "eval_interval", "evaluate", "fit"]
