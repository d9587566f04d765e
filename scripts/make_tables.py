#!/usr/bin/env python
"""Print (and save) the paper's tables next to our runs.

    python scripts/make_tables.py table5                       # runs under outputs/reproduce/table5
    python scripts/make_tables.py table5 --runs outputs/        # any folder of runs
    python scripts/make_tables.py --runs outputs/demo           # plain comparison of runs (no paper numbers)

With a table name it writes docs/results/<table>.md and docs/results/<table>.png (paper vs ours).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

from dicenlp.files import write_text_atomic  # noqa: E402
from dicenlp.tables import collect_cells, load_results, paper_table_markdown, runs_table_markdown  # noqa: E402


def plot_cells(cells, path: Path, title: str) -> None:
    """Grouped bars: the paper's printed primary number and ours (mean ± std) per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted(cells, key=lambda c: (c.dataset, c.row))
    metric = list(cells[0].paper)[-1]
    labels = [f"{c.dataset}\n{c.row}" for c in cells]
    paper = [c.paper.get(metric, float("nan")) for c in cells]
    ours = [c.ours(metric) or (float("nan"), 0.0, 0) for c in cells]
    x = range(len(cells))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(cells)), 4))
    ax.bar([i - 0.2 for i in x], paper, width=0.4, label="paper", color="#9e9e9e")
    ax.bar([i + 0.2 for i in x], [o[0] for o in ours], width=0.4, yerr=[o[1] for o in ours], label="dicenlp",
           color="#1f77b4")
    finite = [v for v in paper + [o[0] for o in ours] if v == v]
    if finite:
        ax.set_ylim(max(0, min(finite) - 5), min(100, max(finite) + 2))
    ax.set_xticks(list(x), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?", help="table3 … table10 (as in configs/experiment/)")
    parser.add_argument("--runs", type=Path, help="folder searched for results.json (default outputs/reproduce/<table>)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "results", help="where .md/.png go")
    args = parser.parse_args(argv)
    if not args.table and not args.runs:
        parser.error("give a table name, --runs, or both")
    runs_dir = args.runs or REPO_ROOT / "outputs" / "reproduce" / args.table
    results = load_results(runs_dir) if runs_dir.exists() else []
    if not args.table:
        print(runs_table_markdown(results))
        return 0
    cells = collect_cells(results, args.table)
    markdown = f"## {args.table}: paper vs dicenlp\n\nRuns: `{runs_dir}`\n\n" + paper_table_markdown(cells)
    print(markdown)
    if cells:
        write_text_atomic(args.out / f"{args.table}.md", markdown)
        plot_cells(cells, args.out / f"{args.table}.png", f"{args.table}: paper vs dicenlp")
        print(f"wrote {args.out / (args.table + '.md')} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
