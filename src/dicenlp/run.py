"""One run from a composed config: the only place (with train.py) that knows about Hydra/OmegaConf.

``run(cfg)`` = Accelerator + seed → task → tokenizer/encoder → loss → model → ``trainer.fit`` → files:

    <run_dir>/config.yaml             the resolved config (written first)
    <run_dir>/predictions_<split>.json dev (best checkpoint) and test predictions
    <run_dir>/<split>/<name>           task-specific files (e.g. SQuAD's predictions.json, null_odds.json)
    <run_dir>/checkpoint/              best weights with save_pretrained (trainer.save_checkpoint=true)
    <run_dir>/results.json            written LAST and atomically: its presence means the run completed

Only the main process writes; every rank uses the main process's run directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dicenlp.files import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str | None:
    """The repository's commit (with ``-dirty`` when there are uncommitted changes), or None."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def resolve_data_dir(params: dict[str, Any]) -> dict[str, Any]:
    """A relative ``data_dir`` is taken from the current directory, else from the repository root (so the
    bundled ``data/samples`` work wherever the command is started)."""
    data_dir = params.get("data_dir")
    if data_dir and not Path(data_dir).is_absolute() and not Path(data_dir).exists() and (REPO_ROOT / data_dir).exists():
        params = {**params, "data_dir": str(REPO_ROOT / data_dir)}
    return params


def _reset_accelerate_state() -> None:
    """Accelerate keeps one process-wide state and refuses a second ``Accelerator`` with another mixed
    precision. Several runs in one process (Hydra multirun, notebooks, tests) each start from a clean state;
    in a distributed job (one run per process) the state is left alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _no_accelerator() -> bool:
    """True on CPU-only machines. Accelerate needs ``cpu=True`` there to treat ``accelerate launch`` /
    ``torchrun`` workers as one MULTI_CPU (gloo) job instead of N independent single-process runs."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def run(cfg: DictConfig | dict) -> dict[str, Any]:
    """Train and evaluate one (task, loss, model, seed) cell; returns the ``results.json`` content."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list, set_seed

    from dicenlp.losses import build_loss
    from dicenlp.models.backbone import load_backbone
    from dicenlp.tasks import build_task
    from dicenlp.tracking import Tracker, make_tracker
    from dicenlp.trainer import TrainerConfig, fit

    config = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    trainer_cfg = TrainerConfig.from_dict(config["trainer"])
    _reset_accelerate_state()
    accelerator = Accelerator(mixed_precision=trainer_cfg.mixed_precision,
                              gradient_accumulation_steps=trainer_cfg.grad_accum, cpu=_no_accelerator(),
                              # encoders carry parameters a task head never uses (BERT's pooler, XLNet's
                              # mask_emb): DDP must not wait for their gradients
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    output_dir = config["output_dir"]
    if accelerator.num_processes > 1:  # each rank composed its own config: use the main process's run dir
        own_dir, output_dir = output_dir, broadcast_object_list([output_dir])[0]
        if own_dir != output_dir and not accelerator.is_main_process:
            shutil.rmtree(own_dir, ignore_errors=True)  # the stray Hydra dir of this rank
    output_dir = Path(output_dir)
    config["output_dir"] = str(output_dir)
    is_main = accelerator.is_main_process
    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "results.json").unlink(missing_ok=True)  # a stale file must not look like this run's
        write_text_atomic(output_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(config)))

    seed = int(config["seed"])
    set_seed(seed)
    task_cfg, model_cfg, loss_cfg = config["task"], config["model"], config["loss"]
    task = build_task(task_cfg["kind"], **resolve_data_dir(task_cfg.get("params", {})))
    task.check_data()
    tokenizer, encoder = load_backbone(model_cfg["name_or_path"], dropout=model_cfg.get("dropout"))
    with accelerator.main_process_first():  # rank 0 tokenises and fills the cache, the others read it
        task.setup(tokenizer)
    # the loss config's `kind` is the formula, its `name` the variant this run records; a loss that weighs
    # classes by frequency (wce) asks for the task's training-label counts
    loss_fn = build_loss(loss_cfg, label_counts=task.label_counts)
    model = task.build_model(encoder, loss_fn)  # the head the loss needs (loss_fn.binary_head)

    tracker = (make_tracker(config.get("logger"), config=config, task=task_cfg["name"], loss=loss_cfg["name"],
                            model=model_cfg["name"], seed=seed, directory=str(output_dir))
               if is_main else Tracker())
    ok = False
    try:
        fitted = fit(task, model, loss_fn, accelerator, trainer_cfg, log_metrics=tracker.log, seed=seed)
        results = {
            "task": task_cfg["name"], "loss": loss_cfg["name"],
            "loss_params": {k: v for k, v in loss_cfg.items() if k != "name"},
            "model": model_cfg["name_or_path"], "seed": seed,
            "primary_metric": task.primary_metric,
            "dev": fitted.dev, "test": fitted.test, "best_step": fitted.best_step, "total_steps": fitted.total_steps,
            "train_time_s": round(fitted.train_time_s, 3), "examples_per_s": round(fitted.examples_per_s, 3),
            "num_processes": accelerator.num_processes, "mixed_precision": trainer_cfg.mixed_precision,
            "git_commit": git_commit(), "paper": config.get("paper"), "output_dir": str(output_dir),
            "config": config,
        }
        if is_main:
            for split, result in fitted.predictions.items():
                if result.predictions is not None:
                    write_json_atomic(output_dir / f"predictions_{split}.json", result.predictions)
                for name, content in result.extra_files.items():
                    write_json_atomic(output_dir / split / name, content)
            if trainer_cfg.save_checkpoint:
                accelerator.unwrap_model(model).save_pretrained(output_dir / "checkpoint", tokenizer=tokenizer)
            tracker.summary({**{f"dev/{k}": v for k, v in (fitted.dev or {}).items()},
                             **{f"test/{k}": v for k, v in (fitted.test or {}).items()},
                             "best_step": fitted.best_step, "train_time_s": fitted.train_time_s})
            write_json_atomic(output_dir / "results.json", results)
            log.info("results: %s", output_dir / "results.json")
        accelerator.wait_for_everyone()
        ok = True
        return results
    finally:
        tracker.finish(ok)
