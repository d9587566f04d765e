#!/usr/bin/env python
"""Print and save a paper table from its runs: the paper's numbers, ours (mean ± std over seeds), the
differences, and a paired bootstrap test of each loss against CE per dataset.

    python scripts/make_tables.py table5                     # runs in outputs/reproduce/paper/table5
    python scripts/make_tables.py table5 --scale mini        # runs in outputs/reproduce/mini/table5
    python scripts/make_tables.py --all --scale mini         # every table that has runs at that scale
    python scripts/make_tables.py table5 --runs outputs/     # runs anywhere below a folder
    python scripts/make_tables.py --runs outputs/demo        # a plain comparison of any runs

A table goes to docs/results/<scale>/<table>.md and .png, and the dev curves of its runs (one panel per dataset,
one line per row, mean over seeds with their min–max band) to <table>_curves.png (--tables-root to change).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

from dicenlp.curves import METRICS_FILE, plot_cells, read_metrics  # noqa: E402
from dicenlp.experiments import SCALES, load_table, table_names  # noqa: E402
from dicenlp.files import write_text_atomic  # noqa: E402
from dicenlp.tables import (Comparison, TableRuns, collect, header_markdown, load_results,  # noqa: E402
                            random_model_note, runs_table_markdown, table_markdown)

OUTPUTS = REPO_ROOT / "outputs" / "reproduce"
RESULTS = REPO_ROOT / "docs" / "results"


def plot_table(table: TableRuns, path: Path) -> None:
    """Grouped bars per cell: the paper's printed primary number and ours (mean ± std over seeds); * marks
    p < 0.05 against CE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = table.spec.primary
    cells = [c for c in table.cells if c.ours(metric)]
    paper = [(c.spec.paper or {}).get(metric) for c in cells]
    paper = [float("nan") if v is None else v for v in paper]
    ours = [c.ours(metric) for c in cells]
    x = range(len(cells))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(cells)), 4.5))
    ax.bar([i - 0.2 for i in x], paper, width=0.4, label="paper", color="#9e9e9e")
    ax.bar([i + 0.2 for i in x], [o[0] for o in ours], width=0.4, yerr=[o[1] for o in ours], capsize=3,
           label=f"dicenlp ({table.scale})", color="#1f77b4")
    for i, (cell, o) in enumerate(zip(cells, ours)):
        if isinstance(cell.comparison, Comparison) and cell.comparison.p < 0.05:
            ax.annotate("*", (i + 0.2, o[0] + o[1]), ha="center", va="bottom", fontsize=12)
    finite = [v for v in paper + [o[0] for o in ours] if v == v]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 5), min(100.0, max(finite) + 3))
    ax.set_xticks(list(x), [f"{table.spec.label(c.spec.dataset)}\n{c.spec.row}" for c in cells], rotation=45,
                  ha="right", fontsize=8)
    ax.set_ylabel(metric)
    seeds = sorted({r["seed"] for r in table.runs})
    ax.set_title(f"{table.spec.name} at {table.scale} scale: paper vs dicenlp (mean ± std, seeds {seeds})", fontsize=10)
    ax.legend(fontsize=8)
    if table.scale != "paper":
        fig.text(0.01, 0.01, f"{table.scale} scale: compare the losses with each other, not with the paper's bars",
                 fontsize=7, color="#b00000")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_table_curves(table: TableRuns, path: Path) -> Path | None:
    """The dev primary metric over steps of the table's runs side by side: one panel per dataset, one line per
    row (the loss, with the model where the table has one); None when no run has a metrics.jsonl."""
    runs = [{"dataset": table.spec.label(cell.spec.dataset), "loss": cell.spec.row,
             "records": read_metrics(Path(run["run_dir"]) / METRICS_FILE)}
            for cell in table.cells for run in cell.runs if (Path(run["run_dir"]) / METRICS_FILE).is_file()]
    return plot_cells(runs, path, table.spec.primary,
                      title=f"{table.spec.name} at {table.scale} scale: dev {table.spec.primary} over training steps")


def write_table(name: str, scale: str, runs_dir: Path, out_dir: Path, command: str | None = None) -> TableRuns:
    """Print the table and save it as <out_dir>/<name>.md and .png, its runs' dev curves as <name>_curves.png
    (when it has runs)."""
    table = collect(load_table(name), load_results(runs_dir) if runs_dir.exists() else [], scale)
    table.runs_dir = str(runs_dir.relative_to(REPO_ROOT) if runs_dir.is_relative_to(REPO_ROOT) else runs_dir)
    markdown = header_markdown(table, command) + "\n" + table_markdown(table)
    print(markdown)
    if table.runs:
        write_text_atomic(out_dir / f"{name}.md", markdown)
        plot_table(table, out_dir / f"{name}.png")
        curves = plot_table_curves(table, out_dir / f"{name}_curves.png")
        print(f"wrote {out_dir / name}.md and .png" + (f", {curves.name}" if curves else "") + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="*", help=f"table names ({', '.join(table_names())})")
    parser.add_argument("--scale", default="paper", choices=SCALES)
    parser.add_argument("--all", action="store_true", help="every table that has runs at --scale")
    parser.add_argument("--runs", type=Path, help="folder searched for results.json "
                                                  "(default <runs-root>/<scale>/<table>)")
    parser.add_argument("--runs-root", type=Path, default=OUTPUTS, help="default outputs/reproduce")
    parser.add_argument("--tables-root", type=Path, default=RESULTS, help="tables go to <tables-root>/<scale>/ "
                                                                         "(default docs/results)")
    parser.add_argument("--command", help=argparse.SUPPRESS)  # the command that made the runs (reproduce.py)
    args = parser.parse_args(argv)
    if not args.tables and not args.all:
        if not args.runs:
            parser.error("give table names, --all, or --runs")
        results = load_results(args.runs) if args.runs.exists() else []
        print(runs_table_markdown(results))
        note = random_model_note(results)
        if note:
            print(note)
        return 0
    names = args.tables
    if args.all:
        names = [t for t in table_names() if any((args.runs_root / args.scale / t).rglob("results.json"))]
        if not names:
            print(f"no runs at scale {args.scale} in {args.runs_root / args.scale}; run e.g. "
                  f"`make reproduce-ner SCALE={args.scale}` first")
            return 0
    try:
        for name in names:
            write_table(name, args.scale, args.runs or args.runs_root / args.scale / name,
                        args.tables_root / args.scale, args.command)
    except ValueError as err:  # an unknown table or a malformed table file: say so, no traceback
        print(f"make_tables: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
