"""Learning curves of every run, with or without W&B.

Each run appends its logged values to ``<run_dir>/metrics.jsonl`` as they happen, one JSON object per line::

    {"step": 10, "train/loss": 0.53, "train/lr": 2.9e-05, "train/epoch": 0.4}
    {"step": 25, "dev/f1": 71.2, "dev/precision": 70.1, "dev/recall": 72.3}

and at the end draws them into ``<run_dir>/curves.png`` (training loss, learning rate, dev metrics over optimizer
steps). A line is flushed as soon as it is written, so a killed run keeps its curves up to the kill.
``plot_cells`` draws the dev curves of many runs side by side (one panel per dataset, one line per loss).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

from dicenlp.files import write_text_atomic
from dicenlp.tracking import Tracker

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"


class MetricsFile(Tracker):
    """A tracker that appends every ``log(metrics, step)`` to a JSON-lines file.

    ``resume_step``: a run resumed from the state of that step continues the file: the records of later steps
    (logged before the kill, and logged again now) are dropped first, so the curves have no duplicates."""

    def __init__(self, path: str | Path, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._handle = self.path.open("a", encoding="utf-8")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def finish(self, ok: bool) -> None:
        self._handle.close()


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The records of a ``metrics.jsonl`` (a torn last line of a killed run is skipped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def series(records: Iterable[Mapping[str, float]], key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one logged key, in logging order."""
    points = [(r["step"], r[key]) for r in records if key in r]
    return [p[0] for p in points], [p[1] for p in points]


def _save_figure(fig, path: Path) -> Path:
    """``fig.savefig`` through a temporary file and a rename (no half-written PNG)."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(records: list[Mapping[str, float]], path: str | Path, title: str = "",
             primary_metric: str | None = None) -> Path:
    """One run's curves: training loss, learning rate and the dev metrics, each against optimizer steps."""
    plt = _pyplot()
    dev_keys = sorted({k for r in records for k in r if k.startswith("dev/")})
    if primary_metric and f"dev/{primary_metric}" in dev_keys:  # the selection metric first, then the rest
        dev_keys.remove(f"dev/{primary_metric}")
        dev_keys.insert(0, f"dev/{primary_metric}")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key in zip(axes[:2], ("train/loss", "train/lr")):
        steps, values = series(records, key)
        ax.plot(steps, values, color="#1f77b4")
        ax.set_title(key)
        ax.set_xlabel("step")
    for key in dev_keys[:4]:  # a few metrics stay readable; metrics.jsonl has them all
        steps, values = series(records, key)
        axes[2].plot(steps, values, marker="o", markersize=3, label=key.removeprefix("dev/"))
    axes[2].set_title("dev")
    axes[2].set_xlabel("step")
    if dev_keys:
        axes[2].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save_figure(fig, Path(path))


def plot_cells(runs: Iterable[Mapping[str, Any]], path: str | Path, metric: str, title: str = "",
               sharey: bool = False) -> Path | None:
    """Dev ``metric`` over steps for many runs: one panel per dataset, one line per loss (mean over seeds, with
    the seeds' min–max as a band). ``runs``: dicts with ``dataset``, ``loss`` and ``records`` (metrics.jsonl);
    panels and lines keep the order in which their first run comes (a table passes its grid order).
    ``sharey``: one y scale for all panels (when they are compared). Returns None when no run logged the metric."""
    key = f"dev/{metric}"
    grouped: dict[str, dict[str, list[dict[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        steps, values = series(run["records"], key)
        if steps:
            grouped[str(run["dataset"])][str(run["loss"])].append(dict(zip(steps, values)))
    if not grouped:
        return None
    plt = _pyplot()
    n = len(grouped)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False, sharey=sharey)
    for ax, dataset in zip(axes.flat, grouped):
        for loss, seeds in grouped[dataset].items():
            steps = sorted(set().union(*seeds))
            columns = [[s[t] for s in seeds if t in s] for t in steps]
            mean = [sum(c) / len(c) for c in columns]
            line, = ax.plot(steps, mean, label=f"{loss} ({len(seeds)} seed{'s' * (len(seeds) > 1)})")
            if len(seeds) > 1:
                ax.fill_between(steps, [min(c) for c in columns], [max(c) for c in columns],
                                color=line.get_color(), alpha=0.15)
        ax.set_title(dataset)
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save_figure(fig, Path(path))


__all__ = ["CURVES_FILE", "METRICS_FILE", "MetricsFile", "plot_cells", "plot_run", "read_metrics", "series"]
