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
* Batches are padded to their longest feature: evaluation runs the features longest first (``length_order``)
  and ``trainer.group_by_length`` groups training batches by length (``LengthGroupedSampler``), so that
  little of a batch is padding. Evaluation gathers ``task.eval_outputs`` with ``pad_across_processes`` +
  ``gather_for_metrics`` (which drops the duplicated samples of the last distributed batch) and restores
  ``feature_index`` order: the order of evaluation changes no prediction.
* The best weights (by the task's dev ``primary_metric``) are written once per improvement by the main process
  (``<output_dir>/best/``) and loaded by every process for the final test evaluation.
* Resume: after every evaluation but the last, the full state goes to ``<output_dir>/state/``
  (``dicenlp.checkpoints``); ``fit(resume_from=...)`` continues from it and ends with the same metrics and
  weights as an uninterrupted run. The training order of epoch ``e`` depends only on (seed, e) and the
  batches of the interrupted epoch already trained on are skipped (``epoch_batches``).
* A failure on one process stops every process: an exception in the forward pass at once (``agree_on_step``),
  a non-finite loss at the next logging or evaluation step (``StepRecord.check``), where the host waits for
  the device; no other step does (no ``loss.item()`` per step).
* Speed options (docs/performance.md): ``compile`` (``torch.compile``), ``tf32``, data-loader workers and
  pinned memory (automatic on a GPU); AdamW is PyTorch's fused one wherever it exists (CUDA, CPU); DDP runs
  without ``find_unused_parameters`` (the models have no parameter their loss does not reach).
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
    log_every: int = 10             # also how often the host waits for the device (the loss check): see fit
    resume: str = "auto"            # auto | never | must (what run.py does with a run folder that holds a run)
    # speed (docs/performance.md); only group_by_length and tf32 change what is computed
    group_by_length: bool = False   # training batches of similar lengths (shuffled mega-batches)
    compile: bool | str = False     # torch.compile the model: true (inductor) or a backend name
    tf32: bool = True               # TF32 matmuls/convolutions on GPUs that have them (Ampere and later)
    num_workers: int | None = None  # data-loader workers per process; None: 2 on a GPU, 0 on a CPU
    pin_memory: bool | None = None  # page-locked batches (non-blocking copies); None: on a GPU
    ddp_find_unused_parameters: bool = False  # only for a model with parameters its loss does not reach

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
    ("log_every", lambda v: _integer(v) and v >= 1, "an integer number of steps >= 1"),
    ("resume", lambda v: v in RESUME_MODES, f"one of {', '.join(RESUME_MODES)} (see docs/training.md)"),
    ("group_by_length", lambda v: isinstance(v, bool), "true or false"),
    ("compile", lambda v: isinstance(v, bool) or v in torch.compiler.list_backends(exclude_tags=None),
     "true (the inductor backend), false, or a torch.compile backend such as inductor, cudagraphs, aot_eager"),
    ("tf32", lambda v: isinstance(v, bool), "true or false"),
    ("num_workers", lambda v: v is None or (_integer(v) and v >= 0), "null (automatic) or an integer >= 0"),
    ("pin_memory", lambda v: v is None or isinstance(v, bool), "null (automatic), true or false"),
    ("ddp_find_unused_parameters", lambda v: isinstance(v, bool), "true or false"),
]


@dataclass
class FitResult:
    dev: dict[str, float] | None
    test: dict[str, float] | None
    best_step: int
    total_steps: int
    train_time_s: float             # wall time of the training loop, dev evaluations and state saves included
    throughput: dict[str, Any]      # training-only speed, evaluation time, real-token fractions (``throughput``)
    predictions: dict[str, EvalResult]


# ---------------------------------------------------------------------------------------- pieces
def fused_adamw_on(device: torch.device) -> bool:
    """Whether PyTorch has fused AdamW kernels for ``device`` (CUDA, CPU, ...; the Hugging Face Trainer's default
    optimizer ``adamw_torch_fused``): one pass over every parameter instead of a few per parameter tensor, the same
    update up to rounding. On a CPU 4.6× faster than the multi-tensor AdamW (MiniLM, 22M parameters: 49 vs
    226 ms; docs/performance.md)."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    return device.type in _get_fused_kernels_supported_devices()


def build_optimizer(model: nn.Module, cfg: TrainerConfig, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW with two groups: weight decay on matrices, none on biases and LayerNorm weights (ndim < 2).
    ``fused``: PyTorch's fused AdamW kernels (``fused_adamw_on``)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, eps=cfg.adam_epsilon, fused=fused or None)


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


def set_tf32(enabled: bool, device: torch.device) -> bool:
    """TF32 for float32 matmuls and convolutions on a CUDA GPU that has it (compute capability >= 8: A100, H100,
    RTX 30xx and later): products with a 10-bit mantissa, float32 sums; several times the float32 speed. Returns
    whether TF32 is on. Elsewhere (CPUs, older GPUs) nothing changes."""
    if device.type != "cuda" or torch.cuda.get_device_capability(device)[0] < 8:
        return False
    mode = "tf32" if enabled else "ieee"
    torch.backends.cuda.matmul.fp32_precision = mode
    torch.backends.cudnn.conv.fp32_precision = mode
    return enabled


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


def _wait_for_device(device: torch.device) -> None:
    """Let the device finish its queued work (so that a wall-clock interval covers it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class TokenCount:
    """Real tokens (attention mask 1) and token slots (every position of the padded batches) of some batches."""

    real: int = 0
    slots: int = 0

    def fraction(self) -> float | None:
        return self.real / self.slots if self.slots else None


def batch_tokens(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor | None, int]:
    """``(real tokens as a device scalar, token slots)`` of a batch; ``(None, 0)`` without an attention mask."""
    mask = batch.get("attention_mask")
    return (None, 0) if mask is None else (mask.sum(), mask.numel())


# ---------------------------------------------------------------------------------------- data order
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

    def permutation(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self):
        return iter(self.permutation().tolist())


class LengthGroupedSampler(EpochSampler):
    """The epoch's random order (``EpochSampler``) cut into mega-batches of ``mega_batch`` × ``batch_size``
    features, each sorted by length (longest first), the longest feature of the epoch moved to the very front
    (an out-of-memory error shows at the first step): consecutive ``batch_size`` features then have similar
    lengths and little padding, while the mega-batches keep the order random. The Hugging Face Trainer's
    ``group_by_length`` (``LengthGroupedSampler``, 50 batches per mega-batch, fewer when the data has fewer
    than 200 batches). Depends only on (seed, epoch), like ``EpochSampler`` (resume replays the same batches).

    ``batch_size`` is the number of features of one optimizer step (per-process batch × accumulation ×
    processes): Accelerate deals the consecutive batches of the order to the processes."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, mega_batch: int = 50) -> None:
        super().__init__(len(lengths), seed)
        self.lengths = np.asarray(lengths)
        per_mega = max(1, min(mega_batch, len(lengths) // (4 * batch_size)))
        self.mega_size = per_mega * batch_size

    def __iter__(self):
        order = self.permutation().numpy()
        megas = [order[i:i + self.mega_size] for i in range(0, len(order), self.mega_size)]
        megas = [m[np.argsort(-self.lengths[m], kind="stable")] for m in megas]
        if megas:
            longest = int(np.argmax([self.lengths[m[0]] for m in megas]))
            megas[0][0], megas[longest][0] = megas[longest][0], megas[0][0]
        return iter(np.concatenate(megas).tolist() if megas else [])


class OrderSampler(Sampler[int]):
    """A fixed order of the features (evaluation: ``length_order``)."""

    def __init__(self, order: np.ndarray) -> None:
        self.order = np.asarray(order, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        return iter(self.order.tolist())


def length_order(lengths: np.ndarray) -> np.ndarray:
    """Feature indices longest first (ties in feature order): evaluation batches of equal lengths, the largest
    batch first. The order does not change any prediction (``evaluate`` restores ``feature_index`` order)."""
    return np.argsort(-np.asarray(lengths), kind="stable")


def loader_options(cfg: TrainerConfig, device: torch.device) -> dict[str, Any]:
    """DataLoader workers and pinned memory: ``trainer.num_workers`` / ``pin_memory``, automatic when null
    (on a CUDA GPU 2 workers per process and pinned batches, so that collating and copying overlap the
    step; on a CPU none: the workers would take the cores the step runs on)."""
    gpu = device.type == "cuda"
    workers = cfg.num_workers if cfg.num_workers is not None else (2 if gpu else 0)
    pin = cfg.pin_memory if cfg.pin_memory is not None else gpu
    return {"num_workers": workers, "pin_memory": pin, "persistent_workers": workers > 0}


def train_loader(task: Task, cfg: TrainerConfig, seed: int, device: torch.device, processes: int = 1) -> DataLoader:
    """The training batches: random order per (seed, epoch), grouped by length with ``trainer.group_by_length``."""
    dataset = task.datasets["train"]
    if cfg.group_by_length:
        sampler = LengthGroupedSampler(task.lengths("train"), cfg.batch_size * cfg.grad_accum * processes, seed)
    else:
        sampler = EpochSampler(len(dataset), seed)
    # the DataLoader's own generator: creating an iterator must not draw from the global RNG (dropout's), or a
    # resumed run would diverge from an uninterrupted one
    return DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=task.collate,
                      generator=torch.Generator().manual_seed(seed), **loader_options(cfg, device))


def eval_loader(task: Task, split: str, cfg: TrainerConfig, device: torch.device, sort: bool = True) -> DataLoader:
    """The evaluation batches of ``split``, longest first (``sort=False``: in feature order)."""
    dataset = task.datasets[split]
    order = length_order(task.lengths(split)) if sort else np.arange(len(dataset))
    return DataLoader(dataset, batch_size=cfg.eval_batch_size, sampler=OrderSampler(order), collate_fn=task.collate,
                      **loader_options(cfg, device))


def epoch_batches(train_loader: DataLoader, accelerator: Accelerator, epoch: int, skip: int):
    """The training batches of ``epoch`` without its first ``skip`` (those trained on before a resume).

    The one place that knows how a data position is restored: the order of an epoch depends only on the
    epoch (``EpochSampler``), and Accelerate skips the batches without loading them."""
    train_loader.set_epoch(epoch)
    return accelerator.skip_first_batches(train_loader, skip) if skip else train_loader


# ---------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(task: Task, split: str, model: nn.Module, loader: DataLoader, accelerator: Accelerator,
             tokens: TokenCount | None = None) -> EvalResult:
    """Run ``model`` over ``loader`` on every rank, gather ``task.eval_outputs`` once per feature, restore the
    feature order (the loader may hold any order: ``eval_loader`` sorts by length), score. ``tokens`` receives
    the real tokens and token slots of the batches (every process's)."""
    model.eval()
    chunks: dict[str, list[np.ndarray]] = defaultdict(list)
    real, slots = torch.zeros((), dtype=torch.long, device=accelerator.device), 0
    for batch in tqdm(loader, desc=f"eval {split}", leave=False, disable=not accelerator.is_local_main_process):
        outputs = model(batch)
        out = task.eval_outputs(outputs, batch)
        out = {k: accelerator.pad_across_processes(v, dim=1, pad_index=EVAL_PAD_VALUE) if v.dim() >= 2 else v
               for k, v in out.items()}
        for key, value in accelerator.gather_for_metrics(out).items():
            chunks[key].append(_to_numpy(value))
        batch_real, batch_slots = batch_tokens(batch)
        if batch_real is not None:
            real, slots = real + batch_real, slots + batch_slots
    model.train()
    if tokens is not None:
        counts = accelerator.reduce(torch.stack([real, torch.tensor(slots, device=real.device)]), "sum").tolist()
        tokens.real, tokens.slots = tokens.real + int(counts[0]), tokens.slots + int(counts[1])
    gathered = {k: concat_padded(v) for k, v in chunks.items()}
    order = np.argsort(gathered["feature_index"], kind="stable")
    gathered = {k: v[order] for k, v in gathered.items()}
    n_features = len(task.datasets[split])
    if len(order) != n_features or not np.array_equal(gathered["feature_index"], np.arange(n_features)):
        raise RuntimeError(f"evaluation of {split!r} gathered {len(order)} outputs for {n_features} features; "
                           "every feature must be seen exactly once")
    return task.evaluate(split, gathered)


# ---------------------------------------------------------------------------------------- failures
def failure_group(accelerator: Accelerator):
    """The process group that exchanges the per-step failure flags (``agree_on_step``): a CPU (gloo) group, so
    that exchanging a flag the host already holds never waits for the GPU; None for one process."""
    if accelerator.num_processes == 1:
        return None
    import torch.distributed as dist

    return None if "gloo" in str(dist.get_backend()) else dist.new_group(backend="gloo")


def agree_on_step(accelerator: Accelerator, error: Exception | None, group) -> None:
    """After each forward pass: every process learns whether any process failed in it (an exception, e.g. out of
    memory), and then every process stops with that message, instead of the others waiting in the backward pass's
    all-reduce. One process: its exception is raised as it is."""
    if accelerator.num_processes == 1:
        if error is not None:
            raise error
        return
    import torch.distributed as dist

    failed = torch.tensor([float(error is not None)])
    dist.all_reduce(failed, group=group)
    if failed.item():
        agree_on_failure(accelerator, error)  # raises everywhere: the failing process its own exception


class StepRecord:
    """What the training steps leave on the device between two checks, so that no step waits for the device:
    each micro-step's loss and the real tokens of its batch. ``check`` (at logging and evaluation steps) brings
    them to the host at once, from every process."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.clear()

    def clear(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.steps: list[int] = []
        self.real_tokens = torch.zeros((), dtype=torch.long, device=self.device)
        self.slots = 0

    def add(self, loss: torch.Tensor, step: int, batch: Mapping[str, torch.Tensor]) -> None:
        self.losses.append(loss.detach().float())
        self.steps.append(step)
        real, slots = batch_tokens(batch)
        if real is not None:
            self.real_tokens += real
            self.slots += slots

    def check(self, accelerator: Accelerator) -> tuple[float, int, TokenCount]:
        """``(sum of the losses, their number, tokens)`` over every process since the last check; a non-finite
        loss on any process raises ``NonFiniteLossError`` on every process (the main one reports it, naming the
        first such step and every process's loss there)."""
        losses = torch.stack(self.losses)[None]  # [1, micro-steps]
        counts = torch.stack([self.real_tokens, torch.tensor(self.slots, device=self.device)])
        if accelerator.num_processes > 1:
            losses, counts = accelerator.gather(losses), accelerator.reduce(counts, "sum")  # [processes, ...]
        losses, counts = losses.cpu(), counts.tolist()
        steps = self.steps
        self.clear()
        bad = ~torch.isfinite(losses).all(dim=0)
        if bad.any():
            first = int(bad.nonzero()[0])
            values = ", ".join(f"process {r}: {v:g}" for r, v in enumerate(losses[:, first].tolist()))
            err = NonFiniteLossError(f"non-finite training loss at step {steps[first] + 1} ({values})",
                                     expected="a finite loss: lower trainer.lr, or check the data and "
                                              "trainer.mixed_precision")
            err.quiet = not accelerator.is_main_process
            raise err
        return float(losses.double().sum()), losses.numel(), TokenCount(int(counts[0]), int(counts[1]))


# ---------------------------------------------------------------------------------------- fit
def train_step(task: Task, model: nn.Module, loss_fn: nn.Module, batch: Mapping[str, torch.Tensor],
               accelerator: Accelerator, optimizer: torch.optim.Optimizer, max_grad_norm: float,
               group=None) -> torch.Tensor:
    """One micro-step: forward, the task's loss, backward, and on the accumulation cycle's last micro-step
    gradient clipping and the optimizer step (Accelerate). Returns the loss (on the device: no host sync)."""
    with accelerator.accumulate(model):
        loss, error = None, None
        try:
            loss = task.compute_loss(model(batch), batch, loss_fn)
        except Exception as err:  # noqa: BLE001  (every process learns of it in agree_on_step)
            error = err
        agree_on_step(accelerator, error, group)
        accelerator.backward(loss)
        if accelerator.sync_gradients and max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()          # a no-op on accumulation micro-steps (Accelerate)
        optimizer.zero_grad()
    return loss


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

    The host waits for the device only at logging and evaluation steps (``StepRecord.check``: the losses and
    their finiteness check, across processes); a step's only exchange between processes besides the gradients'
    all-reduce is a failure flag that the host already holds (``agree_on_step``).
    """
    output_dir = Path(output_dir)
    device = accelerator.device
    set_tf32(cfg.tf32, device)
    loaders = {"train": train_loader(task, cfg, seed, device, accelerator.num_processes),
               **{split: eval_loader(task, split, cfg, device) for split in ("dev", "test") if split in task.datasets}}
    if "dev" not in loaders:
        raise ValueError(f"task {task.name!r} has no dev split: the best checkpoint is selected on dev")
    for split, loader in loaders.items():
        if len(loader.dataset) == 0:
            raise DataError(f"the {split} split has no features", where=f"task {task.name!r}",
                            expected="at least one example in every split")

    model = model.to(device)
    optimizer = build_optimizer(model, cfg, fused=fused_adamw_on(device))
    if cfg.compile:  # in place: the module and its state dict keep their names (checkpoints, resume)
        model.compile(backend="inductor" if cfg.compile is True else cfg.compile)
    model, optimizer, train_batches = accelerator.prepare(model, optimizer, loaders.pop("train"))
    loss_fn = loss_fn.to(device)  # not prepared: DDP refuses modules without trainable parameters
    eval_loaders = {k: accelerator.prepare(v) for k, v in loaders.items()}

    steps_per_epoch = max(1, math.ceil(len(train_batches) / cfg.grad_accum))
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
    eval_tokens = TokenCount(state.eval_real_tokens, state.eval_token_slots)
    record = StepRecord(device)
    group = failure_group(accelerator)
    model.train()
    start = time.perf_counter() - state.train_time_s
    segment = time.perf_counter()  # start of the training time not yet added to state.train_steps_s

    def timed_eval(split: str) -> EvalResult:
        began = time.perf_counter()
        result = evaluate(task, split, model, eval_loaders[split], accelerator, eval_tokens)
        state.eval_s += time.perf_counter() - began
        state.eval_real_tokens, state.eval_token_slots = eval_tokens.real, eval_tokens.slots
        return result

    def run_dev() -> None:
        result = timed_eval("dev")
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
        for batch in epoch_batches(train_batches, accelerator, state.epoch, state.batch_in_epoch):
            state.batch_in_epoch += 1
            loss = train_step(task, model, loss_fn, batch, accelerator, optimizer, cfg.max_grad_norm, group)
            record.add(loss, state.step, batch)
            state.seen_examples += len(batch["feature_index"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            state.step += 1
            progress.update(1)
            log_now = state.step % cfg.log_every == 0 or state.step == total_steps
            eval_now = state.step % every == 0 or state.step == total_steps
            if not (log_now or eval_now):
                continue
            loss_sum, loss_count, tokens = record.check(accelerator)  # the host waits for the device here only
            state.running_loss += loss_sum
            state.running_count += loss_count
            state.real_tokens += tokens.real
            state.token_slots += tokens.slots
            if log_now:
                mean_loss = state.running_loss / state.running_count
                log_metrics({"train/loss": mean_loss, "train/lr": scheduler.get_last_lr()[0],
                             "train/epoch": state.step / steps_per_epoch}, state.step)
                postfix["loss"] = f"{mean_loss:.4f}"  # the running loss on the console: a plateau shows at once
                progress.set_postfix(postfix)
                state.running_loss, state.running_count = 0.0, 0
            if eval_now:
                _wait_for_device(device)
                state.train_steps_s += time.perf_counter() - segment
                run_dev()
                if state.step < total_steps:  # after the last evaluation only the test remains: nothing to resume
                    state.train_time_s = time.perf_counter() - start
                    save_training_state(accelerator, output_dir, state)
                segment = time.perf_counter()
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
        predictions["test"] = timed_eval("test")
        log_metrics({f"test/{k}": v for k, v in predictions["test"].metrics.items()}, state.step)
    return FitResult(dev=best_dev.metrics, test=predictions["test"].metrics if "test" in predictions else None,
                     best_step=state.best_step, total_steps=total_steps, train_time_s=train_time,
                     throughput=throughput(state), predictions=predictions)


def throughput(state: TrainState) -> dict[str, Any]:
    """results.json ``throughput``: examples and real tokens per second of training time only (the steps, not
    the evaluations nor the state saves; every process together), the evaluation time (dev evaluations and the
    test), and the fraction of real tokens among the token slots of the padded batches (null without an
    attention mask)."""
    seconds = max(state.train_steps_s, 1e-9)
    train, evals = TokenCount(state.real_tokens, state.token_slots), TokenCount(state.eval_real_tokens,
                                                                                 state.eval_token_slots)
    return {"train_examples_per_s": state.seen_examples / seconds, "train_tokens_per_s": state.real_tokens / seconds,
            "train_s": state.train_steps_s, "eval_s": state.eval_s,
            "real_token_fraction": {"train": train.fraction(), "eval": evals.fraction()}}


__all__ = ["EpochSampler", "FitResult", "LengthGroupedSampler", "OrderSampler", "StepRecord", "TokenCount",
           "TrainerConfig", "agree_on_step", "build_optimizer", "build_scheduler", "concat_padded", "epoch_batches",
           "eval_interval", "eval_loader", "evaluate", "fit", "fused_adamw_on", "length_order", "loader_options", "set_tf32",
           "throughput", "train_loader", "train_step"]
