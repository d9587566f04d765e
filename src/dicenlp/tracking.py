"""Experiment tracking. The only module that imports ``wandb``.

``results.json`` in the run directory is the ground truth; a tracker is a view on it for dashboards.
``logger=wandb`` runs are grouped by task × model × loss (so the seeds of one table cell aggregate in the
W&B "Group" view) and tagged with the task, loss and model names (so runs filter by any of them).
Offline use needs no account: ``WANDB_MODE=offline`` (or ``logger.mode=offline``), later ``wandb sync``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

log = logging.getLogger(__name__)


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


class Tracker:
    """No-op tracker (``logger=none``); also the interface of the others."""

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def summary(self, values: Mapping[str, Any]) -> None:
        pass

    def finish(self, ok: bool) -> None:
        pass


class Trackers(Tracker):
    """Several trackers as one (every run's metrics file, plus W&B when chosen)."""

    def __init__(self, *trackers: Tracker):
        self.trackers = trackers

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.log(metrics, step)

    def summary(self, values: Mapping[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.summary(values)

    def finish(self, ok: bool) -> None:
        for tracker in self.trackers:
            tracker.finish(ok)


class WandbTracker(Tracker):
    """A real ``wandb`` run: flattened config, per-step train/dev metrics, test metrics in the summary."""

    def __init__(self, *, project: str, config: Mapping[str, Any], group: str, name: str, tags: list[str],
                 directory: str, entity: str | None = None, mode: str | None = None, job_type: str = "train"):
        import wandb

        self._run = wandb.init(project=project, entity=entity, group=group, name=name, tags=tags,
                               config=flatten(config), dir=directory, mode=mode, job_type=job_type,
                               reinit="create_new")

    @property
    def run(self):
        return self._run

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log(dict(metrics), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        self._run.summary.update(dict(values))

    def finish(self, ok: bool) -> None:
        # finish even on failure, so one failed job of a sweep does not poison the next
        self._run.finish(exit_code=0 if ok else 1)


def make_tracker(logger_cfg: Mapping[str, Any] | None, *, config: Mapping[str, Any], task: str, loss: str,
                 model: str, seed: int, directory: str) -> Tracker:
    """Tracker for ``configs/logger/<name>.yaml`` (``name: none`` or ``name: wandb``)."""
    kind = (logger_cfg or {}).get("name", "none")
    if kind in (None, "none"):
        return Tracker()
    if kind != "wandb":
        raise ValueError(f"unknown logger {kind!r}; expected none or wandb")
    model_short = model.rstrip("/").split("/")[-1]
    scale = (config.get("scale") or {}).get("name") or "paper"
    # a mini or smoke run never lands in the group of the paper-scale runs of its cell
    group = logger_cfg.get("group") or f"{task}-{model_short}-{loss}" + ("" if scale == "paper" else f"-{scale}")
    return WandbTracker(project=logger_cfg.get("project") or "dicenlp", entity=logger_cfg.get("entity"),
                        mode=logger_cfg.get("mode"), group=group, name=f"{group}-seed{seed}",
                        tags=[f"task:{task}", f"loss:{loss}", f"model:{model_short}", f"scale:{scale}",
                              *logger_cfg.get("tags", [])],
                        config=config, directory=directory)
