"""Paper tables from runs: the paper's number, ours (mean ± std over seeds), the differences, and per dataset a
paired bootstrap test of each loss against CE.

Runs are ``results.json`` files (``dicenlp.run``) carrying ``table``, ``cell``, ``scale`` and ``paper``; the
table's layout (cells, labels, printed numbers, reported split and metrics) comes from
``configs/experiment/<table>.yaml`` (``dicenlp.experiments``).

Significance (``paired_bootstrap``). For one dataset, a loss's runs and the CE runs are scored on the same
test examples. One bootstrap replicate draws N of the N examples with replacement, rescores every run (each
seed) on that sample, and averages over the seeds of each loss; the replicate's difference is loss − CE. The
two-sided p-value is twice the share of replicates on the other side of zero than the observed difference
(+1 smoothing). Corpus-level metrics (span F1, the F1 of the positive class) are recomputed from the
resampled per-example counts (tp, fp, fn); averages (accuracy, SQuAD EM/F1) from per-example scores. Why
this test: it works from one seed on (a test over seeds needs many seeds to have any power, and the paper
reports single runs), it is paired (both systems see the same resampled examples, which removes the
examples' difficulty from the comparison), and pooling the seeds into each replicate keeps the seed
variation inside each system's score. What it does not measure is the variation between training runs
beyond the seeds that were run: read it with the ± over seeds beside it.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from dicenlp.experiments import CellSpec, TableSpec, cell_of
from dicenlp.run_folder import config_changes

#: Bootstrap replicates and their seed (fixed: regenerating a table gives the same p-values).
N_BOOTSTRAP = 1000
BOOTSTRAP_SEED = 0
#: Loss that every other loss of a dataset is tested against.
REFERENCE_LOSS = "ce"

SCALE_NOTES = {
    "smoke": "**Smoke scale**: a tiny *random* model on the bundled samples for a few steps. These numbers test the "
             "pipeline; they say nothing about which loss is better. See `SCALE=mini` for a real encoder.",
    "mini": "**Mini scale**: a small pretrained encoder on capped training sets, the same budget for every loss, on "
            "a CPU. Compare the losses with each other; the paper's numbers (large encoders, full data) are "
            "shown for orientation only.",
}


def load_results(root: str | Path) -> list[dict[str, Any]]:
    """Every complete run (a ``results.json``) below ``root``, oldest first; ``run_dir`` = its folder."""
    paths = sorted(Path(root).rglob("results.json"), key=lambda p: p.stat().st_mtime)
    return [{**json.loads(p.read_text(encoding="utf-8")), "run_dir": str(p.parent)} for p in paths]


def run_metrics(result: dict[str, Any], split: str | None = None) -> tuple[str, dict[str, float]]:
    """The metrics a table reports: ``split`` if given, else test when the run has one, else dev."""
    split = split or ("test" if result.get("test") else "dev")
    return split, result.get(split) or {}


# ----------------------------------------------------------------------------- per-example scores


@dataclass
class ExampleScores:
    """One run's per-example statistics on a split: ``counts`` [N, 3] = (tp, fp, fn) for corpus-level
    P/R/F1, or ``values`` [N] in [0, 1] whose mean × 100 is the metric. ``key`` identifies the examples."""

    key: str
    counts: np.ndarray | None = None
    values: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.counts if self.counts is not None else self.values)

    def metric(self, index: np.ndarray | None = None, metric: str = "f1") -> np.ndarray | float:
        """The metric on all examples, or per row of ``index`` [B, N] (bootstrap samples): [B]."""
        if self.values is not None:
            v = self.values if index is None else self.values[index]
            return 100.0 * v.mean(axis=-1)
        c = self.counts if index is None else self.counts[index]
        tp, fp, fn = np.moveaxis(c.sum(axis=-2), -1, 0)
        denominator = {"precision": tp + fp, "recall": tp + fn, "f1": 2 * tp + fp + fn}[metric]
        numerator = 2 * tp if metric == "f1" else tp
        return 100.0 * np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=float),
                                 where=denominator > 0)


def _counts(pred: Iterable, gold: Iterable) -> tuple[int, int, int]:
    pred, gold = {tuple(p) for p in pred}, {tuple(g) for g in gold}
    return len(pred & gold), len(pred - gold), len(gold - pred)


def example_scores(result: dict[str, Any], split: str, metric: str) -> ExampleScores | None:
    """Per-example statistics of ``metric`` from ``<run_dir>/predictions_<split>.json``, or None when the task
    kind or metric has none. Each task kind's predictions file holds what its metric needs per example."""
    path = Path(result.get("run_dir") or result["output_dir"]) / f"predictions_{split}.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text(encoding="utf-8"))
    task = (result.get("config") or {}).get("task") or {}
    kind = task.get("kind")
    key = hashlib.sha1()
    if kind == "classification":
        key.update(json.dumps([r["id"] for r in rows]).encode())
        gold = np.array([r["label"] for r in rows])
        pred = np.array([r["pred"] for r in rows])
        if metric == "accuracy":
            return ExampleScores(key.hexdigest(), values=(gold == pred).astype(float))
        if metric in ("precision", "recall", "f1") and set(gold.tolist()) <= {0, 1}:  # F1 of the positive class
            counts = np.stack([(pred == 1) & (gold == 1), (pred == 1) & (gold == 0), (pred == 0) & (gold == 1)], 1)
            return ExampleScores(key.hexdigest(), counts=counts.astype(float))
        return None
    if kind == "qa" and metric in ("em", "f1"):
        key.update(json.dumps([r["id"] for r in rows]).encode())
        return ExampleScores(key.hexdigest(), values=np.array([r[metric] for r in rows], dtype=float))
    if kind in ("mrc_ner", "tagging") and metric in ("precision", "recall", "f1"):
        key.update(json.dumps([r["tokens"] for r in rows], ensure_ascii=False).encode())
        if kind == "mrc_ner":  # predicted spans carry their scores: {"span": [start, end, type], "score": ...}
            counts = [_counts([p["span"] for p in r["pred"]], r["gold"]) for r in rows]
        else:
            from dicenlp.metrics.tagging import decode_spans

            scheme = "bies" if (task.get("params") or {}).get("char_level") else "word"
            gold = decode_spans([r["gold"] for r in rows], scheme)
            pred = decode_spans([r["pred"] for r in rows], scheme)
            counts = [_counts(p, g) for p, g in zip(pred, gold)]
        return ExampleScores(key.hexdigest(), counts=np.array(counts, dtype=float).reshape(-1, 3))
    return None


@dataclass
class Comparison:
    """A loss against the reference (CE) on one dataset: observed difference, 95% interval, p-value."""

    delta: float
    low: float
    high: float
    p: float
    n_examples: int


def paired_bootstrap(system: Sequence[ExampleScores], reference: Sequence[ExampleScores], metric: str,
                     n_boot: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> Comparison:
    """Paired bootstrap over examples, seeds pooled (module docstring). Every run must score the same examples."""
    n = len(reference[0])
    rng = np.random.default_rng(seed)

    def pooled(runs: Sequence[ExampleScores], index: np.ndarray | None) -> np.ndarray:
        return np.mean([r.metric(index, metric) for r in runs], axis=0)

    observed = float(pooled(system, None) - pooled(reference, None))
    deltas = []
    for start in range(0, n_boot, 50):  # blocks of replicates bound the memory ([50, N] indices)
        index = rng.integers(0, n, size=(min(50, n_boot - start), n))
        deltas.append(pooled(system, index) - pooled(reference, index))
    deltas = np.concatenate(deltas)
    other_side = (deltas <= 0).sum() if observed > 0 else (deltas >= 0).sum() if observed < 0 else n_boot
    p = min(1.0, 2 * (other_side + 1) / (n_boot + 1))
    low, high = np.percentile(deltas, [2.5, 97.5])
    return Comparison(observed, float(low), float(high), p, n)


# ----------------------------------------------------------------------------- cells and tables


@dataclass
class CellRuns:
    """One cell of a table and the runs (seeds) made of it."""

    spec: CellSpec
    runs: list[dict[str, Any]] = field(default_factory=list)
    split: str | None = None  # the split reported: the table's, or dev for a dataset without that split (QQP)
    stale: int = 0  # older runs of this cell made with another config, left out
    comparison: Comparison | str | None = None  # vs the reference loss; a str says why there is none

    def ours(self, metric: str) -> tuple[float, float, int] | None:
        values = [run_metrics(r, self.split)[1][metric] for r in self.runs if metric in run_metrics(r, self.split)[1]]
        if not values:
            return None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)


@dataclass
class TableRuns:
    spec: TableSpec
    scale: str
    cells: list[CellRuns]
    runs_dir: str = ""

    @property
    def runs(self) -> list[dict[str, Any]]:
        return [r for c in self.cells for r in c.runs]


def collect(spec: TableSpec, results: Iterable[dict[str, Any]], scale: str = "paper") -> TableRuns:
    """The table's cells at ``scale`` that have runs, in grid order (plus cells run outside the scale's grid),
    with every dataset's significance tests."""
    by_cell: dict[str, CellRuns] = {}
    for result in results:
        if result.get("table") != spec.name or (result.get("scale") or "paper") != scale:
            continue
        found = cell_of(result.get("config") or {})
        if found and list(found[1].values) == list(spec.grid):  # labels and printed numbers: today's table file
            cell = spec.cell(found[1].values)
            by_cell.setdefault(cell.name, CellRuns(cell)).runs.append(result)
    for cell in by_cell.values():  # seeds of the newest config only (a rerun with other overrides replaces it)
        newest = cell.runs[-1]["config"]
        kept = [r for r in cell.runs if not config_changes(r["config"], newest, ignore=("seed",))]
        cell.stale, cell.runs = len(cell.runs) - len(kept), kept
        # a dataset that lacks the table's split (GLUE's QQP has no labeled test) is reported on its own split
        cell.split = spec.split if not spec.split or any(r.get(spec.split) for r in kept) else run_metrics(kept[-1])[0]
    grid_order = [c.name for c in spec.cells(scale)]
    datasets = {c.spec.dataset for c in by_cell.values()}
    cells = [by_cell.get(c.name) or CellRuns(c) for c in spec.cells(scale) if c.dataset in datasets]
    cells += [c for name, c in by_cell.items() if name not in grid_order]
    table = TableRuns(spec, scale, cells)
    add_comparisons(table)
    return table


def add_comparisons(table: TableRuns) -> None:
    """Each loss's cell against the CE cell of the same dataset and other grid values (``Comparison``)."""
    spec, metric = table.spec, table.spec.primary
    if "loss" not in spec.grid:
        return
    cells = {tuple(sorted(c.spec.values.items())): c for c in table.cells}
    for cell in table.cells:
        if cell.spec.values["loss"] == REFERENCE_LOSS or not cell.runs:
            continue
        ref = cells.get(tuple(sorted({**cell.spec.values, "loss": REFERENCE_LOSS}.items())))
        if ref is None or not ref.runs:
            cell.comparison = "no CE runs"
            continue
        if cell.split != ref.split:
            cell.comparison = "CE reports another split"
            continue
        scores = [[example_scores(r, cell.split or run_metrics(r)[0], metric) for r in c.runs] for c in (cell, ref)]
        if any(s is None for group in scores for s in group):
            cell.comparison = "no per-example scores"
            continue
        if len({s.key for group in scores for s in group}) > 1:
            cell.comparison = "runs scored different examples"
            continue
        reported = [run_metrics(r, cell.split)[1].get(metric) for r in cell.runs + ref.runs]
        recomputed = [s.metric(None, metric) for group in scores for s in group]
        if any(r is None or abs(r - s) > 0.01 for r, s in zip(reported, recomputed)):
            cell.comparison = "predictions do not reproduce the metric"
            continue
        cell.comparison = paired_bootstrap(scores[0], scores[1], metric)


def _fmt(value: float | None, std: float = 0.0, n: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ± {std:.2f}" if n > 1 else f"{value:.2f}"


def _p(comparison: Comparison | str | None, is_reference: bool) -> str:
    if is_reference:
        return "(ref.)"
    if isinstance(comparison, Comparison):
        return f"{comparison.p:.3f}" + ("*" if comparison.p < 0.05 else "")
    return f"n/a ({comparison})" if comparison else "n/a"


def _distinct(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(values)) or "–"


def header_markdown(table: TableRuns, command: str | None = None) -> str:
    """Title, the scale's caveat, and what the numbers were made with: encoder, seeds, examples used per
    dataset (after caps and split-offs), the runs' folder and commits, the command."""
    spec, runs = table.spec, table.runs
    sizes = {}
    for cell in table.cells:
        for r in cell.runs[:1]:
            split_off = r.get("data_split_off") or {}
            sizes.setdefault(cell.spec.dataset, ", ".join(
                f"{s} {n:,}" + (f" (split off {split_off[s]})" if s in split_off else "")
                for s, n in (r.get("data") or {}).items()) or "?")
    lines = [f"## {spec.name}" + (f" — {spec.title}" if spec.title else "") + f" (scale: {table.scale})", ""]
    if table.scale in SCALE_NOTES:
        lines += [f"> {SCALE_NOTES[table.scale]}", ""]
    lines += [f"- **scale** {table.scale} · **encoder** {_distinct(r['model'] for r in runs)} · "
              f"**seeds** {_distinct(sorted({r['seed'] for r in runs}))} · "
              f"**reported split** {spec.split or 'test, else dev'} · **primary metric** {spec.primary}",
              "- **examples used**: " + "; ".join(f"{spec.label(d)}: {s}" for d, s in sizes.items()),
              f"- **runs** `{table.runs_dir}` · **git** {_distinct(r.get('git_commit') for r in runs)}"]
    if command:
        lines.append(f"- **command** `{command}`")
    return "\n".join(lines) + "\n"


def table_markdown(table: TableRuns) -> str:
    """Per cell: the paper's printed values, ours (mean ± sample std over seeds), ours − paper, ours − CE and
    the bootstrap p-value against CE, the number of seeds."""
    spec, metrics, primary = table.spec, table.spec.metrics, table.spec.primary
    if not table.runs:
        return "(no runs of this table at this scale)\n"
    header = (["dataset", "model"] + [f"paper {m}" for m in metrics] + [f"ours {m}" for m in metrics]
              + [f"Δ paper ({primary})", f"Δ CE ({primary})", "p vs CE", "seeds"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in table.cells:
        paper = cell.spec.paper or {}
        ours = [cell.ours(m) for m in metrics]
        last, printed = ours[-1], paper.get(primary)
        delta_paper = f"{last[0] - printed:+.2f}" if last and printed is not None else "–"
        is_ref = cell.spec.values.get("loss") == REFERENCE_LOSS
        comparison = cell.comparison
        delta_ce = f"{comparison.delta:+.2f}" if isinstance(comparison, Comparison) else "–"
        lines.append("| " + " | ".join(
            [spec.label(cell.spec.dataset) + (f" ({cell.split})" if cell.runs and cell.split != spec.split else ""),
             cell.spec.row] + [_fmt(paper.get(m)) for m in metrics]
            + [_fmt(*o) if o else f"no {spec.split} split" if cell.runs else "not run" for o in ours]
            + [delta_paper, delta_ce, _p(comparison, is_ref) if cell.runs and "loss" in spec.grid else "–",
               str(len(cell.runs))]) + " |")
    stale = [f"{c.spec.name} ({c.stale})" for c in table.cells if c.stale]
    if stale:
        lines += ["", f"Left out: older runs made with another config than the newest run of their cell: "
                      f"{', '.join(stale)}."]
    n_examples = {c.comparison.n_examples for c in table.cells if isinstance(c.comparison, Comparison)}
    test = (f"p vs CE: paired bootstrap over the {_distinct(sorted(n_examples))} {spec.split or ''} examples "
            f"({N_BOOTSTRAP} resamples, seeds pooled), two-sided; * p < 0.05. It measures test-sample noise for "
            f"these trained models; the ± over seeds shows training noise (docs/reproduction.md)."
            if "loss" in spec.grid else "The table has no loss dimension: no test against CE.")
    lines += ["", f"Ours: mean ± sample std over seeds. {test}"]
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


def random_model_note(results: Iterable[dict[str, Any]]) -> str | None:
    """A warning when runs used a tiny random model (``tiny-*``): their differences say nothing about losses."""
    tiny = sorted({str(r["model"]) for r in results if str(r.get("model", "")).startswith("tiny-")})
    if not tiny:
        return None
    return (f"Note: these runs use a tiny randomly initialised model ({', '.join(tiny)}) on small samples. They "
            f"check that every loss trains end to end; their differences say nothing about which loss is better. "
            f"To see the paper's claim on a CPU, run a table at the mini scale, e.g. `make reproduce-ner SCALE=mini` "
            f"(docs/reproduction.md).")
