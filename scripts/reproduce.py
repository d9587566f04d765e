#!/usr/bin/env python
"""Run every cell of a paper table, then print the table next to the paper's numbers.

    python scripts/reproduce.py table5                         # one seed, sequentially on one GPU
    python scripts/reproduce.py table5 --seeds 1 2 3           # more seeds (mean ± std in the table)
    python scripts/reproduce.py table5 --launcher "accelerate launch --num_processes 4"
    python scripts/reproduce.py table5 --dry-run               # list the commands only
    python scripts/reproduce.py table5 -- trainer.mixed_precision=bf16   # extra overrides for every cell

Cells are the grid of configs/experiment/<table>.yaml. Each (cell, seed) runs in outputs/reproduce/<table>/<cell>/seed<N>;
a cell whose results.json exists is skipped, so an interrupted grid resumes where it stopped. Before anything
runs it checks for a GPU (--allow-cpu to go on without one) and that every dataset of the table is in place.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))


def table_cells(table: str) -> dict[str, list[str]]:
    """``{cell name: its Hydra overrides}``: the product of the grid of configs/experiment/<table>.yaml."""
    import itertools

    from omegaconf import OmegaConf

    path = REPO_ROOT / "configs" / "experiment" / f"{table}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("table*.yaml"))
        raise SystemExit(f"no table {path}; known tables: {', '.join(known)}")
    grid = OmegaConf.to_container(OmegaConf.load(path))["table"]["grid"]
    return {"_".join(map(str, values)): [f"experiment={table}", *(f"{k}={v}" for k, v in zip(grid, values))]
            for values in itertools.product(*grid.values())}


def missing_data(table: str, cells: dict[str, list[str]]) -> list[str]:
    """Messages of every task of the table whose data is not in place (each task checked once)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from dicenlp.run import resolve_data_dir
    from dicenlp.tasks import build_task

    problems, seen = [], set()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO_ROOT / "configs")):
        for overrides in cells.values():
            cfg = compose("train", overrides=[*overrides, "output_dir=unused"])
            task = OmegaConf.to_container(cfg.task, resolve=True)
            key = (task["name"], str(task.get("params")))
            if key in seen:
                continue
            seen.add(key)
            try:
                build_task(task["kind"], **resolve_data_dir(task.get("params", {}))).check_data()
            except FileNotFoundError as err:
                problems.append(f"{task['name']}: {err}")
    return list(dict.fromkeys(problems))  # variants of one dataset (Table 8) share one message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", help="table3 … table10 (configs/experiment/<table>.yaml)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--launcher", default=sys.executable, help='e.g. "accelerate launch --num_processes 4"')
    parser.add_argument("--allow-cpu", action="store_true", help="run even without a GPU (days for the real models)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every cell (after --)")
    args = parser.parse_args(argv)

    cells = table_cells(args.table)
    if not args.dry_run:
        import torch

        problems = []
        if not torch.cuda.is_available() and not args.allow_cpu:
            problems.append("no GPU (torch.cuda.is_available() is False): the paper's models need one; install a "
                            "CUDA build of torch, or pass --allow-cpu to run anyway")
        problems += missing_data(args.table, cells)
        if problems:
            print(f"reproduce {args.table}: nothing was run:\n  - " + "\n  - ".join(problems), file=sys.stderr)
            return 2

    out_root = REPO_ROOT / "outputs" / "reproduce" / args.table
    jobs = [(cell, seed) for cell in cells for seed in args.seeds]
    failed = []
    for i, (cell, seed) in enumerate(jobs, 1):
        run_dir = out_root / cell / f"seed{seed}"
        command = [*shlex.split(args.launcher), "train.py", *cells[cell], f"seed={seed}",
                   f"hydra.run.dir={run_dir}", *args.overrides]
        if args.dry_run:
            print(shlex.join(command))
            continue
        if (run_dir / "results.json").exists():
            print(f"[{i}/{len(jobs)}] {cell} seed {seed}: done already ({run_dir}/results.json)")
            continue
        print(f"[{i}/{len(jobs)}] {cell} seed {seed}: {shlex.join(command)}", flush=True)
        start = time.time()
        code = subprocess.call(command, cwd=REPO_ROOT)
        print(f"[{i}/{len(jobs)}] {cell} seed {seed}: {'ok' if code == 0 else f'FAILED (exit {code})'} "
              f"in {time.time() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(f"{cell} seed {seed}")
    if args.dry_run:
        return 0
    from make_tables import main as make_tables

    make_tables([args.table, "--runs", str(out_root)])
    if failed:
        print("failed cells: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
