"""One run from a composed config: the only place (with train.py) that knows about Hydra/OmegaConf.

``run(cfg)`` = checked config → Accelerator → the run folder's plan (new, resume, done) → data read and
validated → tokenizer/encoder → tokenised data → loss → model → ``trainer.fit`` → files:

    <run_dir>/config.yaml             the resolved config (written first)
    <run_dir>/metrics.jsonl           training loss, LR and dev metrics per step, as they are logged
    <run_dir>/curves.png              those curves, drawn at the end
    <run_dir>/state/, best/           the latest training state and the best weights while the run is going
                                      (removed when it completes; dicenlp.checkpoints)
    <run_dir>/predictions_<split>.json dev (best checkpoint) and test predictions
    <run_dir>/<split>/<name>           task-specific files (e.g. SQuAD's predictions.json, null_odds.json)
    <run_dir>/checkpoint/              best weights with save_pretrained (trainer.save_checkpoint=true)
    <run_dir>/results.json            written LAST and atomically: its presence means the run completed

One run per folder (``trainer.resume``, ``dicenlp.run_folder``): the same config continues or returns the finished
results; another config is an error.

Errors a user can fix raise ``dicenlp.errors.UserError`` (train.py prints them without a traceback). Only the
main process writes; every rank uses the main process's run directory and learns of a failure on any rank.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from dicenlp.checkpoints import read_train_state, remove_training_state
from dicenlp.curves import CURVES_FILE, METRICS_FILE, MetricsFile, plot_run, read_metrics
from dicenlp.errors import ConfigError, DeviceError, MissingDataError, UserError
from dicenlp.files import write_json_atomic, write_text_atomic
from dicenlp.run_folder import RunPlan, plan_run_dir

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


def build_task_from_config(task_cfg: Mapping[str, Any]):
    """``configs/task/<name>.yaml`` → task; unknown or invalid ``task.params`` are a ``ConfigError``."""
    from dicenlp.tasks import task_class

    try:
        cls = task_class(task_cfg["kind"])
    except ValueError as err:
        raise ConfigError(str(err), where="task.kind") from None
    params = resolve_data_dir(dict(task_cfg.get("params") or {}))
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}", where="task.params",
                          expected=f"keys of {cls.__name__}: {sorted(accepted)}")
    try:
        return cls(**params)
    except ValueError as err:
        raise ConfigError(str(err), where="task.params") from None


def load_backbone_from_config(model_cfg: Mapping[str, Any]):
    """``(tokenizer, encoder)``; a model that cannot be found or loaded is a ``ConfigError``."""
    from dicenlp.models.backbone import load_backbone

    try:
        return load_backbone(model_cfg["name_or_path"], dropout=model_cfg.get("dropout"),
                             tokenizer_options=model_cfg.get("tokenizer"))
    except (OSError, ValueError) as err:
        raise ConfigError(str(err).splitlines()[0], where="model.name_or_path",
                          expected="a Hugging Face model name (network or a filled HF cache) or a local model "
                                   "directory") from None


def rounded(values: Any, digits: int = 3) -> Any:
    """Floats of a nested dict to ``digits`` decimals (results.json's speed figures)."""
    if isinstance(values, dict):
        return {k: rounded(v, digits) for k, v in values.items()}
    return round(values, digits) if isinstance(values, float) else values


def draw_curves(output_dir: Path, title: str, primary_metric: str) -> None:
    """``curves.png`` from the run's ``metrics.jsonl``. The figure is a view: a plotting failure is logged, not
    raised, so that it never costs a finished run its results.json (the numbers stay in metrics.jsonl)."""
    try:
        plot_run(read_metrics(output_dir / METRICS_FILE), output_dir / CURVES_FILE, title, primary_metric)
    except Exception as err:  # noqa: BLE001  (see the docstring)
        log.warning("could not draw %s: %s", output_dir / CURVES_FILE, err)


# ------------------------------------------------------------------------------------------------ accelerator
def _reset_accelerate_state() -> None:
    """Accelerate keeps one process-wide state and refuses a second ``Accelerator`` with another mixed
    precision. Several runs in one process (Hydra multirun, notebooks, tests) each start from a clean state;
    in a distributed job (one run per process) the state is left alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _distributed_env_from_submitit() -> None:
    """A submitit job with several tasks (SLURM ``hydra.launcher.tasks_per_node=<GPUs>``) runs this function once
    per task: export the ``torch.distributed`` variables (RANK, WORLD_SIZE, MASTER_ADDR, ...) that Accelerate
    reads, so that the tasks form one data-parallel run, as under ``accelerate launch``."""
    if "WORLD_SIZE" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    import submitit

    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def _no_accelerator() -> bool:
    """True on CPU-only machines. Accelerate needs ``cpu=True`` there to treat ``accelerate launch`` /
    ``torchrun`` workers as one MULTI_CPU (gloo) job instead of N independent single-process runs."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def make_accelerator(mixed_precision: str, grad_accum: int, find_unused_parameters: bool = False):
    """An Accelerator; a mixed precision the device cannot run is a ``DeviceError`` (never a silent fp32 run).

    DDP does not look for unused parameters (a graph traversal per step): the task models have none (the
    encoders' pooler and XLNet's ``mask_emb`` are removed or frozen, ``dicenlp.models.base``);
    ``find_unused_parameters`` is for a model of one's own that has some. Batches are copied to the GPU without
    blocking (the loaders pin them, ``trainer.loader_options``)."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs

    _reset_accelerate_state()
    cpu = _no_accelerator()
    try:
        accelerator = Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum, cpu=cpu,
                                  dataloader_config=DataLoaderConfiguration(non_blocking=not cpu),
                                  kwargs_handlers=[DistributedDataParallelKwargs(
                                      find_unused_parameters=find_unused_parameters)])
    except ValueError as err:  # Accelerate's check of fp16/bf16 on a GPU or other device
        raise DeviceError(str(err), where="trainer.mixed_precision", expected="no, or a precision this device runs") \
            from None
    if mixed_precision != "no" and not accelerator.native_amp:  # Accelerate runs fp16 on a CPU as fp32, silently
        raise DeviceError(f"{mixed_precision} mixed precision cannot run on this {accelerator.device.type}",
                          where="trainer.mixed_precision",
                          expected="bf16 (CPUs and recent GPUs) or no; fp16 needs a GPU")
    return accelerator


# ------------------------------------------------------------------------------------------------ run
def run(cfg: DictConfig | dict) -> dict[str, Any]:
    """Train and evaluate one (task, loss, model, seed) cell; returns the ``results.json`` content."""
    from accelerate.utils import broadcast_object_list, set_seed

    from dicenlp.distributed import on_main_process, run_everywhere
    from dicenlp.experiments import cell_of
    from dicenlp.losses import build_loss
    from dicenlp.tracking import Tracker, Trackers, make_tracker
    from dicenlp.trainer import TrainerConfig, fit

    config = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    try:
        table_cell = cell_of(config)  # (table, cell) of a paper-table run, else None
    except ValueError as err:
        raise ConfigError(str(err), where="table.grid") from None
    trainer_cfg = TrainerConfig.from_dict(config["trainer"])
    task_cfg, model_cfg, loss_cfg = config["task"], config["model"], config["loss"]
    task = build_task_from_config(task_cfg)
    _distributed_env_from_submitit()
    accelerator = make_accelerator(trainer_cfg.mixed_precision, trainer_cfg.grad_accum,
                                   trainer_cfg.ddp_find_unused_parameters)
    output_dir = config["output_dir"]
    if accelerator.num_processes > 1:  # each rank composed its own config: use the main process's run dir
        own_dir, output_dir = output_dir, broadcast_object_list([output_dir])[0]
        if own_dir != output_dir and not accelerator.is_main_process:
            shutil.rmtree(own_dir, ignore_errors=True)  # the stray Hydra dir of this rank
    output_dir = Path(output_dir)
    config["output_dir"] = str(output_dir)
    is_main = accelerator.is_main_process

    def prepare_folder() -> RunPlan:  # the main process decides; every process follows
        output_dir.mkdir(parents=True, exist_ok=True)
        plan = plan_run_dir(output_dir, config, trainer_cfg.resume)
        if plan.kind != "done":
            write_text_atomic(output_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(config)))
        return plan

    plan = on_main_process(accelerator, prepare_folder)
    if plan.kind == "done":
        return plan.results

    seed = int(config["seed"])
    set_seed(seed)

    def read_data() -> None:  # before any model is loaded: a data mistake is reported at once
        try:
            task.check_data()
        except FileNotFoundError as err:  # check_data's contract: the message says what to put where
            raise err if isinstance(err, UserError) else MissingDataError(str(err)) from None
        task.read_data()

    run_everywhere(accelerator, read_data, main_first=True)  # main first: it fills the Hub cache the others read
    tokenizer, encoder = load_backbone_from_config(model_cfg)
    run_everywhere(accelerator, lambda: task.setup(tokenizer), main_first=True)  # the others read its cache
    # the loss config's `kind` is the formula, its `name` the variant this run records; a loss that weighs
    # classes by frequency (wce) asks for the task's training-label counts
    try:
        loss_fn = build_loss(loss_cfg, label_counts=task.label_counts)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err), where="loss") from None
    model = task.build_model(encoder, loss_fn)  # the head the loss needs (loss_fn.binary_head)

    resumed = read_train_state(plan.state) if plan.kind == "resume" else None
    commit = git_commit()
    if is_main:
        wandb = make_tracker(config.get("logger"), config=config, task=task_cfg["name"], loss=loss_cfg["name"],
                             model=model_cfg["name"], seed=seed, directory=str(output_dir),
                             primary_metric=task.primary_metric,
                             extra_config={"git_commit": commit, "loss_variant": loss_cfg["name"]},
                             run_id=resumed.extra.get("tracker_run_id") if resumed else None)
        tracker = Trackers(MetricsFile(output_dir / METRICS_FILE, resume_step=resumed.step if resumed else None),
                           wandb)
    else:
        tracker = Tracker()
    ok = False
    try:
        fitted = fit(task, model, loss_fn, accelerator, trainer_cfg, output_dir=output_dir, log_metrics=tracker.log,
                     seed=seed, resume_from=plan.state, state_extra={"tracker_run_id": tracker.run_id})
        results = {
            "task": task_cfg["name"], "loss": loss_cfg["name"],
            "loss_params": {k: v for k, v in loss_cfg.items() if k != "name"},
            "model": model_cfg["name_or_path"], "seed": seed,
            "primary_metric": task.primary_metric,
            "dev": fitted.dev, "test": fitted.test, "best_step": fitted.best_step, "total_steps": fitted.total_steps,
            "train_time_s": round(fitted.train_time_s, 3), "throughput": rounded(fitted.throughput),
            "num_processes": accelerator.num_processes, "mixed_precision": trainer_cfg.mixed_precision,
            "resumed_from_step": resumed.step if resumed else None, "data_repairs": task.data_repairs,
            "git_commit": commit, "output_dir": str(output_dir),
            # which paper-table cell and scale this run is (dicenlp.experiments; tables read these keys)
            "table": table_cell[0].name if table_cell else None, "cell": table_cell[1].name if table_cell else None,
            "scale": (config.get("scale") or {}).get("name"), "paper": table_cell[1].paper if table_cell else None,
            "data": task.data_sizes, "data_split_off": task.split_from,  # examples used per split, and from where
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
            draw_curves(output_dir, f"{task_cfg['name']} × {loss_cfg['name']} × {model_cfg['name']} (seed {seed})",
                        task.primary_metric)
            write_json_atomic(output_dir / "results.json", results)
            remove_training_state(output_dir)
            log.info("results: %s", output_dir / "results.json")
            try:  # a view of results.json: a dashboard failure must not fail a finished run
                tracker.record_results(results, [output_dir / "results.json", output_dir / "config.yaml"])
            except Exception as err:  # noqa: BLE001
                log.warning("could not record the results with the tracker: %s", err)
        accelerator.wait_for_everyone()
        ok = True
        return results
    finally:
        tracker.finish(ok)
