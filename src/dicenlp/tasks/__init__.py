"""Task registry: ``build_task(kind, **params)`` imports the task class lazily (heavy deps stay unloaded)."""

from __future__ import annotations

import importlib

from dicenlp.tasks.base import EvalResult, Task

#: ``kind`` in configs/task/*.yaml → "module:Class".
TASKS = {
    "tagging": "dicenlp.tasks.tagging:TaggingTask",
    "mrc_ner": "dicenlp.tasks.mrc_ner:MrcNerTask",
    "qa": "dicenlp.tasks.qa:QuestionAnsweringTask",
    "classification": "dicenlp.tasks.classification:ClassificationTask",
}


def task_class(kind: str) -> type[Task]:
    if kind not in TASKS:
        raise ValueError(f"unknown task kind {kind!r}; known: {sorted(TASKS)}")
    module, cls = TASKS[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def build_task(kind: str, **params) -> Task:
    """Instantiate the task class registered under ``kind`` with plain keyword arguments."""
    return task_class(kind)(**params)


__all__ = ["EvalResult", "Task", "TASKS", "build_task", "task_class"]
