#!/usr/bin/env python
"""Run every cell of a paper table at a scale, then print the table next to the paper's numbers.

    python scripts/reproduce.py table5 --scale smoke            # tiny random model on the bundled samples, seconds
    python scripts/reproduce.py table5 --scale mini --datasets conll03 --seeds 1 2 3   # small encoder, CPU
    python scripts/reproduce.py table5                          # the paper's setting: needs a GPU and the data
    python scripts/reproduce.py table5 --launcher "accelerate launch --num_processes 4"
    python scripts/reproduce.py table5 --slurm -- hydra.launcher.partition=gpu     # one SLURM job per cell × seed
    python scripts/reproduce.py table5 --dry-run                # the commands only
    python scripts/reproduce.py table5 -- trainer.mixed_precision=bf16   # Hydra overrides for every cell (after --)

The cells come from configs/experiment/<table>.yaml at the scale (dicenlp.experiments). Each (cell, seed) runs
    <launcher> train.py experiment=<table> <cell overrides> scale=<scale> seed=<n>
        hydra.run.dir=outputs/reproduce/<scale>/<table>/<cell>/seed<n> <overrides>
and is skipped when that folder holds a results.json of the same config, so an interrupted grid resumes where
it stopped. Before anything runs it checks that every dataset is in place and, at the paper scale, that there is a
GPU (--allow-cpu to go on without one); it then stops at once with one message naming what is missing.
The table goes to docs/results/<scale>/<table>.md and .png (scripts/make_tables.py).
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
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from dicenlp.experiments import SCALES, CellSpec, TableSpec, load_table, table_names  # noqa: E402
from dicenlp.run_folder import finished_result, other_config  # noqa: E402
from make_tables import OUTPUTS, RESULTS, write_table  # noqa: E402



def parse_args(argv: list[str]) -> argparse.Namespace:
    """Options anywhere among the table names; Hydra overrides after ``--``."""
    overrides = []
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", metavar="table",
                        help=f"one or more of {', '.join(table_names())} (configs/experiment/<table>.yaml)")
    parser.add_argument("--scale", default="paper", choices=SCALES, help="paper (default), mini or smoke")
    parser.add_argument("--seeds", nargs="+", default=["42"], metavar="N", help="seeds: 1 2 3 (or 1,2,3)")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", default=[],
                        help="only these values of a table's first grid key (e.g. conll03); tables without any of "
                             "them are skipped")
    parser.add_argument("--launcher", default="", help='what runs train.py, e.g. "accelerate launch --num_processes 4" '
                                                        '(default: python; at smoke scale the cells run inside this '
                                                        'process unless a launcher is given)')
    parser.add_argument("--slurm", action="store_true", help="one SLURM job per cell × seed (= --hydra-launcher slurm)")
    parser.add_argument("--hydra-launcher", metavar="NAME",
                        help="run the grid as one Hydra multirun with this launcher (slurm, submitit_local, ...)")
    parser.add_argument("--allow-cpu", action="store_true", help="paper scale without a GPU (days for the real models)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    parser.add_argument("--runs-root", type=Path, default=OUTPUTS, help="runs go to <runs-root>/<scale>/<table>/<cell>/"
                                                                       "seed<N> (default outputs/reproduce)")
    parser.add_argument("--tables-root", type=Path, default=RESULTS, help="tables go to <tables-root>/<scale>/ "
                                                                         "(default docs/results)")
    args = parser.parse_intermixed_args(argv)
    args.runs_root, args.tables_root = args.runs_root.absolute(), args.tables_root.absolute()
    args.overrides = overrides
    try:
        args.seeds = [int(s) for word in args.seeds for s in word.replace(",", " ").split()]
    except ValueError:
        parser.error(f"--seeds takes integers, got {' '.join(args.seeds)} (Hydra overrides go after --)")
    args.datasets = [d for word in args.datasets for d in word.replace(",", " ").split()]
    if args.slurm:
        args.hydra_launcher = args.hydra_launcher or "slurm"
    if args.hydra_launcher and args.launcher:
        parser.error("--launcher and a Hydra launcher exclude each other: a SLURM job uses its node's GPUs through "
                     "hydra.launcher.tasks_per_node (docs/reproduction.md)")
    return args


def compose(table: str, cell: CellSpec, scale: str, overrides: list[str], run_dir: Path) -> dict:
    """The resolved config of a cell, as train.py will compose it (without Hydra's own node)."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO_ROOT / "configs")):
        cfg = hydra_compose("train", overrides=[f"experiment={table}", *cell.overrides, f"scale={scale}",
                                                *[o for o in overrides if not o.startswith(("hydra.", "hydra/"))],
                                                f"output_dir={run_dir}"])
    return OmegaConf.to_container(cfg, resolve=True)


def missing(configs: list[dict], scale: str, need_gpu: bool) -> list[str]:
    """What keeps the grid from running: no GPU (paper scale), a dataset not in place, an encoder that cannot be
    loaded offline. One line each (datasets and encoders checked once)."""
    from dicenlp.run import resolve_data_dir
    from dicenlp.tasks import build_task

    problems = []
    if need_gpu:
        import torch

        if not torch.cuda.is_available():
            problems.append("no GPU (torch.cuda.is_available() is False): the paper scale trains the paper's large "
                            "encoders on full datasets. Install a CUDA build of torch, use SCALE=mini (a small encoder, "
                            "CPU) or SCALE=smoke (seconds), or pass --allow-cpu to run anyway")
    seen = set()
    for config in configs:
        task = config["task"]
        key = (task["kind"], repr(task.get("params")))
        if key not in seen:
            seen.add(key)
            try:
                build_task(task["kind"], **resolve_data_dir(task.get("params") or {})).check_data()
            except (FileNotFoundError, ValueError) as err:
                problems.append(f"{task['name']}: {err}")
        model = config["model"]["name_or_path"]
        if model not in seen:
            seen.add(model)
            problems += encoder_problem(model, scale)
    return list(dict.fromkeys(problems))  # variants of one dataset (Table 8) share one message


def encoder_problem(name_or_path: str, scale: str) -> list[str]:
    """An encoder given by Hub name that is not in the local cache, with the Hub switched off."""
    from huggingface_hub import constants, try_to_load_from_cache

    if name_or_path.startswith("tiny-") or Path(name_or_path).is_dir() or not constants.HF_HUB_OFFLINE:
        return []

    if isinstance(try_to_load_from_cache(name_or_path, "config.json"), str):
        return []
    hint = "MINI_MODEL=/local/dir (DICENLP_MINI_MODEL)" if scale == "mini" else "model.name_or_path=/local/dir"
    return [f"encoder {name_or_path}: not a local directory and not in the Hugging Face cache, and HF_HUB_OFFLINE is "
            f"set; allow the download or give a local copy with {hint}"]


def sweep_command(args: argparse.Namespace, spec: TableSpec, cells: list[CellSpec]) -> list[str]:
    """One Hydra multirun over the cells × seeds (their grid is a product), laid out as reproduce's own runs."""
    values = {key: list(dict.fromkeys(c.values[key] for c in cells)) for key in spec.grid}
    subdir = "_".join(f"${{hydra.runtime.choices.{k}}}" if "." not in k else f"${{{k}}}" for k in spec.grid)
    return [sys.executable, "train.py", "-m", f"experiment={spec.name}",
            *[f"{key}={','.join(v)}" for key, v in values.items()], f"scale={args.scale}",
            f"seed={','.join(map(str, args.seeds))}", f"hydra/launcher={args.hydra_launcher}",
            f"hydra.sweep.dir={args.runs_root / args.scale / spec.name}",
            f"hydra.sweep.subdir={subdir}/seed${{seed}}", *args.overrides]


def _short(path: Path) -> Path:
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


def run_in_process(config: dict) -> int:
    """``dicenlp.run.run`` on a composed config, as train.py would; 0 if it finished, 1 if it raised."""
    import traceback

    from dicenlp.run import run

    try:
        result = run(config)
    except Exception:  # noqa: BLE001 - one failed cell must not stop the grid; its traceback is the log
        traceback.print_exc()
        return 1
    split = "test" if result["test"] else "dev"
    print(f"  {split} {result['primary_metric']} = {result[split][result['primary_metric']]:.2f}", flush=True)
    return 0


def show_table(args: argparse.Namespace, table: str, command: str) -> None:
    write_table(table, args.scale, args.runs_root / args.scale / table, args.tables_root / args.scale, command)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        specs = [load_table(name) for name in args.tables]
    except ValueError as err:
        print(f"reproduce: {err}", file=sys.stderr)
        return 2
    if args.datasets:
        known = {d for spec in specs for d in spec.datasets(args.scale)}
        unknown = [d for d in args.datasets if d not in known]
        if unknown:
            print(f"reproduce: no dataset {', '.join(unknown)} in {', '.join(args.tables)} at scale {args.scale} "
                  f"(datasets: {', '.join(sorted(known))})", file=sys.stderr)
            return 2
    codes = []
    for spec in specs:
        datasets = [d for d in args.datasets if d in spec.datasets(args.scale)]
        if args.datasets and not datasets:
            print(f"reproduce {spec.name}: none of the datasets {', '.join(args.datasets)}; skipped")
            continue
        codes.append(reproduce(args, spec, spec.cells(args.scale, datasets)))
    return max(codes, default=0)


def reproduce(args: argparse.Namespace, spec: TableSpec, cells: list[CellSpec]) -> int:
    """Run (or list, or submit) the cells × seeds of one table, then print its table. Exit code: 0 ok, 1 a
    run failed, 2 nothing was run (something is missing)."""
    table = spec.name
    command = shlex.join(["python", "scripts/reproduce.py", table, "--scale", args.scale, "--seeds",
                          *map(str, args.seeds), *(["--datasets", *args.datasets] if args.datasets else []),
                          *(["--", *args.overrides] if args.overrides else [])])
    out_root = args.runs_root / args.scale / table
    jobs = [(cell, seed, out_root / cell.name / f"seed{seed}") for cell in cells for seed in args.seeds]
    try:
        configs = {cell.name: compose(table, cell, args.scale, args.overrides, out_root / cell.name)
                   for cell in cells}
    except Exception as err:  # a Hydra override or config error: one line, no traceback
        print(f"reproduce {table}: the configuration does not compose: {err}", file=sys.stderr)
        return 2

    def config_of(cell: CellSpec, seed: int, run_dir: Path) -> dict:
        # composed once per cell; no config value interpolates the seed or the run dir
        return {**configs[cell.name], "seed": seed, "output_dir": str(run_dir)}

    def train_command(cell: CellSpec, seed: int, run_dir: Path) -> list[str]:
        return [*(shlex.split(args.launcher) or [sys.executable]), "train.py", f"experiment={table}", *cell.overrides,
                f"scale={args.scale}", f"seed={seed}", f"hydra.run.dir={_short(run_dir)}",
                *args.overrides]

    if args.dry_run:
        if args.hydra_launcher:
            print(shlex.join(sweep_command(args, spec, cells)))
            return 0
        for cell, seed, run_dir in jobs:
            done = finished_result(run_dir, config_of(cell, seed, run_dir)) is not None
            print(("# done: " if done else "") + shlex.join(train_command(cell, seed, run_dir)))
        return 0

    problems = missing(list(configs.values()), args.scale,
                       need_gpu=args.scale == "paper" and not args.allow_cpu and not args.hydra_launcher)
    # one run per folder (dicenlp.run_folder): a folder holding a run of another config is never overwritten
    problems += [f"{_short(run_dir)}: {why}; delete it to rerun with these settings, or keep both with another "
                 f"RUNS_DIR" for cell, seed, run_dir in jobs if (why := other_config(run_dir, config_of(cell, seed, run_dir)))]
    if problems:
        print(f"reproduce {table} (scale {args.scale}): nothing was run:\n  - " + "\n  - ".join(problems),
              file=sys.stderr)
        return 2

    if args.hydra_launcher:
        if all(finished_result(run_dir, config_of(cell, seed, run_dir)) for cell, seed, run_dir in jobs):
            print(f"reproduce {table} ({args.scale}): all {len(jobs)} cells × seeds are done already; nothing submitted")
            show_table(args, table, command)
            return 0
        sweep = sweep_command(args, spec, cells)
        print(f"reproduce {table} ({args.scale}): {len(jobs)} jobs through hydra/launcher={args.hydra_launcher} "
              f"(those already done return at once)\n{shlex.join(sweep)}", flush=True)
        code = subprocess.call(sweep, cwd=REPO_ROOT)
        show_table(args, table, command)
        return 0 if code == 0 else 1

    # smoke cells take a second each: run them in this process (the same composed config and dicenlp.run.run
    # as train.py) rather than paying one interpreter start and torch import per cell
    in_process = args.scale == "smoke" and not args.launcher
    failed, start_all = [], time.time()
    for i, (cell, seed, run_dir) in enumerate(jobs, 1):
        tag = f"[{i}/{len(jobs)}] {table} {cell.name} seed {seed}"
        if finished_result(run_dir, config_of(cell, seed, run_dir)) is not None:
            print(f"{tag}: done already ({_short(run_dir)}/results.json)", flush=True)
            continue
        command_line = train_command(cell, seed, run_dir)
        print(f"{tag}: {'(in process) ' if in_process else ''}{shlex.join(command_line)}", flush=True)
        start = time.time()
        code = run_in_process(config_of(cell, seed, run_dir)) if in_process else subprocess.call(command_line,
                                                                                                  cwd=REPO_ROOT)
        print(f"{tag}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.time() - start:.0f} s "
              f"(total {time.time() - start_all:.0f} s)", flush=True)
        if code != 0:
            failed.append(f"{cell.name} seed {seed}")
    show_table(args, table, command)
    if failed:
        print(f"reproduce {table}: failed: {', '.join(failed)} (their logs are above; rerun to retry them)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
