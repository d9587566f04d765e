"""Experiment tracking. The only module that imports ``wandb``.

``results.json`` in the run directory is the ground truth; a tracker is a view on it for dashboards.
``logger=wandb`` runs are grouped by task × model × loss (and scale) so the seeds of one table cell aggregate in
the W&B "Group" view, and tagged with the task, loss, model and scale names (so runs filter by any of them).

What a W&B run holds:
* config: the resolved run config (flattened, with ``scale.name``), plus ``git_commit`` and ``loss_variant`` (the
  loss config's name, e.g. ``dsc_official``);
* history: ``train/*`` every ``log_every`` steps and ``dev/*`` at every evaluation, against ``trainer/step``
  (the optimizer step; ``define_metric``), and ``dev/<primary>`` with its running maximum (``summary="max"``);
* summary (``summary_of``): exactly results.json's numbers: the best checkpoint's ``dev/*`` and the ``test/*``
  metrics, ``best_step`` ..., ``throughput/*`` (training speed, evaluation time), and for a paper-table cell ``paper/<metric>`` (the printed number) and
  ``delta/<metric>`` (ours − paper) on the split the paper reports, so the dashboard sorts cells by their gap;
* ``per_class``: a table of per-class precision/recall/F1 (tasks that report ``f1_<class>``);
* an artifact ``results-<run id>`` with results.json and config.yaml.

Offline use needs no account: ``WANDB_MODE=offline`` (or ``logger.mode=offline``), later ``wandb sync``. The run
files go to ``<run_dir>/wandb`` unless ``WANDB_DIR`` is set. A resumed run continues its W&B run (same id).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

log = logging.getLogger(__name__)

#: The x axis of every logged metric (the optimizer step).
STEP_KEY = "trainer/step"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; lists are kept as values (W&B shows them as such)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def scale_name(config: Mapping[str, Any]) -> str | None:
    """The config's scale (``scale.name``, CONTRACT §3), or None for configs without one."""
    scale = config.get("scale")
    return scale.get("name") if isinstance(scale, Mapping) else scale


def reported_split(results: Mapping[str, Any]) -> str:
    """The split the paper reports for this cell (``table.split``), else test when there is one, else dev."""
    table = (results.get("config") or {}).get("table")
    split = table.get("split") if isinstance(table, Mapping) else None
    return split if split in ("dev", "test") and results.get(split) else ("test" if results.get("test") else "dev")


def summary_of(results: Mapping[str, Any]) -> dict[str, Any]:
    """The dashboard summary of a run: results.json's numbers, plus the paper's number and our difference."""
    summary: dict[str, Any] = {f"{split}/{k}": v for split in ("dev", "test")
                               for k, v in (results.get(split) or {}).items()}
    summary.update({k: results[k] for k in ("best_step", "total_steps", "train_time_s") if k in results})
    summary.update(flatten(results.get("throughput") or {}, "throughput/"))  # throughput/real_token_fraction.eval
    split = reported_split(results)
    for metric, printed in (results.get("paper") or {}).items():
        if printed is None:
            continue
        summary[f"paper/{metric}"] = printed
        ours = (results.get(split) or {}).get(metric)
        if ours is not None:
            summary[f"delta/{metric}"] = ours - printed
    return summary


def per_class_rows(results: Mapping[str, Any]) -> list[list[Any]]:
    """``[split, class, precision, recall, f1]`` for every ``f1_<class>`` metric of dev and test."""
    rows = []
    for split in ("dev", "test"):
        metrics = results.get(split) or {}
        for key in sorted(k for k in metrics if k.startswith("f1_")):
            name = key[len("f1_"):]
            rows.append([split, name, metrics.get(f"precision_{name}"), metrics.get(f"recall_{name}"), metrics[key]])
    return rows


class Tracker:
    """No-op tracker (``logger=none``); also the interface of the others."""

    #: an id that a resumed run passes back to ``make_tracker`` to continue the same dashboard run
    run_id: str | None = None

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def record_results(self, results: Mapping[str, Any], files: Iterable[Path] = ()) -> None:
        """The finished run's results (results.json's content) and the files to keep with them."""

    def finish(self, ok: bool) -> None:
        pass


class Trackers(Tracker):
    """Several trackers as one (every run's metrics file, plus W&B when chosen)."""

    def __init__(self, *trackers: Tracker):
        self.trackers = trackers

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.log(metrics, step)

    @property
    def run_id(self) -> str | None:
        return next((t.run_id for t in self.trackers if t.run_id), None)

    def record_results(self, results: Mapping[str, Any], files: Iterable[Path] = ()) -> None:
        for tracker in self.trackers:
            tracker.record_results(results, files)

    def finish(self, ok: bool) -> None:
        for tracker in self.trackers:
            tracker.finish(ok)


class WandbTracker(Tracker):
    """A real ``wandb`` run (see the module docstring for what it holds)."""

    def __init__(self, *, project: str, config: Mapping[str, Any], group: str, name: str, tags: list[str],
                 directory: str, entity: str | None = None, mode: str | None = None, job_type: str = "train",
                 primary_metric: str | None = None, run_id: str | None = None):
        import wandb

        wandb_dir = os.environ.get("WANDB_DIR")
        if wandb_dir:  # honoured; wandb itself falls back to a temporary folder when it does not exist yet
            Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(project=project, entity=entity, group=group, name=name, tags=tags,
                               config=flatten(config), dir=wandb_dir or directory,
                               mode=mode, job_type=job_type, reinit="create_new", id=run_id,
                               resume="allow" if run_id else None)
        self.run_id = self._run.id
        self._run.define_metric(STEP_KEY)
        for prefix in ("train", "dev", "test"):
            self._run.define_metric(f"{prefix}/*", step_metric=STEP_KEY)
        if primary_metric:  # the best dev value so far, live during training
            self._run.define_metric(f"dev/{primary_metric}", step_metric=STEP_KEY, summary="max")

    @property
    def run(self):
        return self._run

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log({**metrics, STEP_KEY: step})

    def record_results(self, results: Mapping[str, Any], files: Iterable[Path] = ()) -> None:
        import wandb

        rows = per_class_rows(results)
        if rows:
            self._run.log({"per_class": wandb.Table(columns=["split", "class", "precision", "recall", "f1"],
                                                    data=rows)})
        self._run.summary.update(summary_of(results))  # last: the summary is exactly results.json's numbers
        artifact = wandb.Artifact(f"results-{self._run.id}", type="results")
        for path in files:
            artifact.add_file(str(path))
        self._run.log_artifact(artifact)

    def finish(self, ok: bool) -> None:
        # finish even on failure, so one failed job of a sweep does not poison the next
        self._run.finish(exit_code=0 if ok else 1)


def make_tracker(logger_cfg: Mapping[str, Any] | None, *, config: Mapping[str, Any], task: str, loss: str,
                 model: str, seed: int, directory: str, primary_metric: str | None = None,
                 extra_config: Mapping[str, Any] | None = None, run_id: str | None = None) -> Tracker:
    """Tracker for ``configs/logger/<name>.yaml`` (``name: none`` or ``name: wandb``); ``run_id`` continues the
    dashboard run of a resumed run."""
    kind = (logger_cfg or {}).get("name", "none")
    if kind in (None, "none"):
        return Tracker()
    if kind != "wandb":
        from dicenlp.errors import ConfigError

        raise ConfigError(f"unknown logger {kind!r}", where="logger.name", expected="none or wandb")
    model_short = model.rstrip("/").split("/")[-1]
    scale = scale_name(config) or "paper"
    # a mini or smoke run never lands in the group of the paper-scale runs of its cell
    group = logger_cfg.get("group") or f"{task}-{model_short}-{loss}" + ("" if scale == "paper" else f"-{scale}")
    tags = [f"task:{task}", f"loss:{loss}", f"model:{model_short}", f"scale:{scale}", *logger_cfg.get("tags", [])]
    return WandbTracker(project=logger_cfg.get("project") or "dicenlp", entity=logger_cfg.get("entity"),
                        mode=logger_cfg.get("mode"), group=group, name=f"{group}-seed{seed}", tags=tags,
                        config={**config, **(extra_config or {})}, directory=directory,
                        primary_metric=primary_metric, run_id=run_id)
