"""Paper tables from runs: read every ``results.json`` under a folder, average seeds, print beside the paper.

A run belongs to a paper cell when its config carries ``paper`` (set by ``configs/experiment/<table>/<cell>.yaml``):
``{table, dataset, row, metrics: {name: printed value}, split?}``. Runs of one cell (same table, dataset, row)
are seeds: we report their mean (± sample std when there are several) next to the printed number.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable


def load_results(root: str | Path) -> list[dict[str, Any]]:
    """Every complete run (a ``results.json``) below ``root``, oldest first."""
    paths = sorted(Path(root).rglob("results.json"), key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def run_metrics(result: dict[str, Any], split: str | None = None) -> tuple[str, dict[str, float]]:
    """The metrics a table reports: ``split`` if given, else test when the run has one, else dev."""
    split = split or ("test" if result.get("test") else "dev")
    return split, result.get(split) or {}


@dataclass
class Cell:
    """One row of one dataset in a table: the paper's numbers and our seeds."""

    table: str
    dataset: str
    row: str
    paper: dict[str, float]
    split: str | None = None
    runs: list[dict[str, float]] = field(default_factory=list)

    def ours(self, metric: str) -> tuple[float, float, int] | None:
        values = [r[metric] for r in self.runs if metric in r]
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.fmean(values), std, len(values)


def collect_cells(results: Iterable[dict[str, Any]], table: str | None = None) -> list[Cell]:
    cells: dict[tuple[str, str, str], Cell] = {}
    for result in results:
        paper = result.get("paper") or (result.get("config") or {}).get("paper")
        if not paper or (table and paper.get("table") != table):
            continue
        key = (paper["table"], paper["dataset"], paper["row"])
        cell = cells.setdefault(key, Cell(*key, paper=dict(paper.get("metrics") or {}), split=paper.get("split")))
        cell.runs.append(run_metrics(result, cell.split)[1])
    return list(cells.values())


def _fmt(value: float | None, std: float = 0.0, n: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ± {std:.2f}" if n > 1 else f"{value:.2f}"


def paper_table_markdown(cells: list[Cell], metrics: list[str] | None = None) -> str:
    """Markdown: per cell the paper's printed value and ours (mean ± std over seeds), and the difference."""
    if not cells:
        return "(no runs with paper numbers found)\n"
    metrics = metrics or list(dict.fromkeys(m for c in cells for m in c.paper))
    header = ["dataset", "model"] + [f"paper {m}" for m in metrics] + [f"ours {m}" for m in metrics] + ["Δ " + metrics[-1], "seeds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in sorted(cells, key=lambda c: (c.dataset, c.row)):
        ours = [cell.ours(m) for m in metrics]
        last, printed = ours[-1], cell.paper.get(metrics[-1])
        delta = f"{last[0] - printed:+.2f}" if last and printed is not None else "–"
        n = max((o[2] for o in ours if o), default=0)
        lines.append("| " + " | ".join([cell.dataset, cell.row]
                                       + [_fmt(cell.paper.get(m)) for m in metrics]
                                       + [_fmt(*o) if o else "–" for o in ours] + [delta, str(n)]) + " |")
    return "\n".join(lines) + "\n"


def runs_table_markdown(results: list[dict[str, Any]]) -> str:
    """Markdown comparison of arbitrary runs (e.g. the demo's losses): one line per run."""
    if not results:
        return "(no results.json found)\n"
    metric_names = list(dict.fromkeys(m for r in results for m in run_metrics(r)[1]))
    header = ["task", "loss", "model", "seed", "split"] + metric_names + ["train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        split, metrics = run_metrics(r)
        model = ((r.get("config") or {}).get("model") or {}).get("name") or Path(str(r["model"])).name
        lines.append("| " + " | ".join([r["task"], r["loss"], str(model), str(r["seed"]), split]
                                       + [_fmt(metrics.get(m)) for m in metric_names]
                                       + [f"{r.get('train_time_s', 0):.1f}"]) + " |")
    return "\n".join(lines) + "\n"
