#!/usr/bin/env python
"""The dice lag on binary decisions (issue 16): MRPC and a SQuAD-format slice, CE vs DSC variants, 3 seeds.

    python scripts/dice_lag_study.py splits --out ../study-data       # the derived splits (outside the repository)
    python scripts/dice_lag_study.py run mrpc --data ../study-data --runs ../study-runs --model <dir>
    python scripts/dice_lag_study.py run squad --data ../study-data --runs ../study-runs --model <dir>
    python scripts/dice_lag_study.py report mrpc --runs ../study-runs --figure docs/figures/dice_lag_mrpc.png

``splits`` writes (rules fixed, so anyone can redo them; docs/classification.md and docs/mrc.md state them):

* ``<out>/mrpc/``: GLUE's ``dev.tsv`` (408 pairs) becomes the held-out test set (``msr_paraphrase_test.txt``),
  and 408 pairs of GLUE's ``train.tsv`` become the dev set, stratified by label (the dev part has the training
  file's positive rate): per label, the pairs are shuffled with ``numpy.random.default_rng(0)`` and the first
  ones taken; both files keep the original file order. The rest (3,260 pairs) is ``train.tsv``.
* ``<out>/squad/``: the articles of the SQuAD-layout file, in file order i = 0, 1, …: ``i % 6 == 4`` → dev,
  ``i % 6 == 5`` → test, the rest → train (no context is shared between splits).

``run`` trains every (variant, seed) of a dataset one after another (``python train.py …`` with every setting
on the command line, so no preset can change it) into ``<runs>/<dataset>/<variant>/seed<N>``; a run whose
``results.json`` exists is skipped, so an interrupted study resumes. ``timing.json`` in each run folder holds
the run's wall time and CPU time (the whole process: loading, tokenising or reading the cache, training, tests). ``report`` prints the table (mean ± std over seeds,
dev-selected checkpoint, scored on the held-out test split; MRPC also the share of predicted positives) and
draws the dev curves (mean over seeds, min–max band).
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

MRPC_DEV_SIZE = 408
SPLIT_SEED = 0
SQUAD_FOLD = 6  # article i: i % 6 == 4 → dev, == 5 → test


# ------------------------------------------------------------------------------------------ splits
def split_mrpc(glue_dir: Path, out: Path, dev_size: int = MRPC_DEV_SIZE, seed: int = SPLIT_SEED) -> dict[str, int]:
    """GLUE MRPC train/dev → study train/dev/test (module docstring). Returns the split sizes."""
    from dicenlp.data.glue import MRPC, read_tsv, write_local

    train = read_tsv(glue_dir / "train.tsv", MRPC)
    test = read_tsv(glue_dir / "dev.tsv", MRPC)
    if dev_size >= len(train):
        raise SystemExit(f"{glue_dir / 'train.tsv'} has {len(train)} pairs: cannot split off {dev_size} for dev")
    rng = np.random.default_rng(seed)
    dev_idx = []
    for label in (0, 1):  # stratified: each label gets its share of the dev part (rounded; the rest to label 1)
        members = np.flatnonzero(train.label == label)
        take = round(dev_size * len(members) / len(train)) if label == 0 else dev_size - len(dev_idx)
        dev_idx.extend(rng.permutation(members)[:take].tolist())
    is_dev = np.zeros(len(train), dtype=bool)
    is_dev[dev_idx] = True
    splits = {"train": train.select(np.flatnonzero(~is_dev)), "dev": train.select(np.flatnonzero(is_dev)),
              "test": test}
    write_local("mrpc", splits, out)
    return {name: len(ex) for name, ex in splits.items()}


def split_squad(path: Path, out: Path, fold: int = SQUAD_FOLD) -> dict[str, int]:
    """A SQuAD-layout file → train/dev/test JSON files by article (module docstring). Returns question counts."""
    from dicenlp.data.squad import read_squad_json
    from dicenlp.files import write_json_atomic

    read_squad_json(path)  # validates the file (clear messages) before anything is written
    obj = json.loads(path.read_text(encoding="utf-8"))
    parts: dict[str, list] = {"train": [], "dev": [], "test": []}
    for i, article in enumerate(obj["data"]):
        parts["dev" if i % fold == fold - 2 else "test" if i % fold == fold - 1 else "train"].append(article)
    sizes = {}
    for name, articles in parts.items():
        if not articles:
            raise SystemExit(f"{path}: {len(obj['data'])} articles leave the {name} split empty (need {fold})")
        write_json_atomic(out / f"{name}.json", {"version": obj.get("version", "1.1"), "data": articles})
        sizes[name] = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
    return sizes


# ------------------------------------------------------------------------------------------ variants
#: Settings every run of a dataset shares (the budget; ``{data}`` and ``{model}`` are filled in by ``run``).
COMMON = {
    "mrpc": ["task=mrpc", "task.params.data_dir={data}/mrpc", "task.params.max_length=128",
             "task.params.require_test=true", "trainer.max_epochs=2", "trainer.max_steps=-1",
             "trainer.eval_every=0.25", "trainer.eval_batch_size=64", "trainer.grad_accum=1",
             "trainer.scheduler=linear", "trainer.adam_epsilon=1e-6", "trainer.max_grad_norm=1.0",
             "trainer.mixed_precision=no", "trainer.log_every=5"],
    "squad": ["task=squad", "task.params.data_dir={data}/squad", "task.params.train_file=train.json",
              "task.params.dev_file=dev.json", "task.params.test_file=test.json", "task.params.hub_name=null",
              "task.params.max_length=256", "task.params.doc_stride=128", "task.params.max_query_length=64",
              "trainer.max_epochs=2", "trainer.max_steps=-1", "trainer.eval_every=0.25",
              "trainer.eval_batch_size=64", "trainer.adam_epsilon=1e-6", "trainer.max_grad_norm=1.0",
              "trainer.mixed_precision=no", "trainer.log_every=1", "model.dropout=0.1"],
}
COMMON_ALL = ["model.name_or_path={model}", "model.name=all-MiniLM-L6-v2", "logger=none"]

#: Optimisation recipes. ``reference``: the measurement of issue 16 (lr, batch and epochs as stated there; the rest
#: the standard BERT fine-tuning values). ``official``: the official dice scripts (OFFICIAL_CODE.md §1b, §1c)
#: except the number of epochs, which is the study's budget for every variant.
RECIPES = {
    "mrpc": {
        "reference": ["trainer.lr=5e-5", "trainer.batch_size=32", "trainer.warmup_ratio=0.1",
                      "trainer.weight_decay=0.01", "model.dropout=0.1"],
        "official": ["trainer.lr=3e-5", "trainer.batch_size=20", "trainer.warmup_ratio=0.002",
                     "trainer.weight_decay=0.003", "model.dropout=0.2"],
    },
    "squad": {
        "reference": ["trainer.lr=1e-4", "trainer.batch_size=16", "trainer.grad_accum=1", "trainer.scheduler=linear",
                      "trainer.warmup_ratio=0.1", "trainer.weight_decay=0.01"],
        "official": ["trainer.lr=2e-5", "trainer.batch_size=2", "trainer.grad_accum=20",
                     "trainer.scheduler=polynomial", "trainer.poly_lr_end_ratio=0.25", "trainer.poly_power=1.0",
                     "trainer.warmup_ratio=0.06", "trainer.weight_decay=0.002"],
    },
}

CE = ["loss=ce", "loss.reduction=mean"]
#: The project's dsc = the official dice: set level, squared denominator, alpha 0.01, smooth 1, no OHEM.
DSC = ["loss=dsc", "loss.alpha=0.01", "loss.smooth=1.0", "loss.square_denominator=true", "loss.reduction=batch",
       "loss.ohem_ratio=0.0"]


def _with(overrides: list[str], changes: list[str]) -> list[str]:
    """``overrides`` + ``changes`` (``key=value`` strings), a key in ``changes`` replacing the same key before."""
    keys = {c.split("=", 1)[0] for c in changes}
    return [o for o in overrides if o.split("=", 1)[0] not in keys] + changes


#: dataset → variant → (what it is, loss overrides + recipe overrides). Plot and table order = this order.
VARIANTS: dict[str, dict[str, tuple[str, list[str]]]] = {
    "mrpc": {
        "ce": ("CE, reference recipe", CE + RECIPES["mrpc"]["reference"]),
        "dsc": ("DSC (set level, α 0.01), reference recipe", DSC + RECIPES["mrpc"]["reference"]),
        "ce_official": ("CE, official dice recipe", CE + RECIPES["mrpc"]["official"]),
        "dsc_official": ("DSC, official dice recipe", DSC + RECIPES["mrpc"]["official"]),
        "dsc_2class": ("DSC over both classes (2-logit softmax head), reference recipe",
                       DSC + ["+loss.binary_head=softmax"] + RECIPES["mrpc"]["reference"]),
        "dsc_official_5ep": ("DSC, official dice recipe with its 5 epochs (2.5× the budget)",
                             DSC + RECIPES["mrpc"]["official"] + ["trainer.max_epochs=5"]),
        "dsc_mean": ("DSC per example (reduction mean), reference recipe",
                     _with(DSC, ["loss.reduction=mean"]) + RECIPES["mrpc"]["reference"]),
    },
    "squad": {
        "ce": ("CE (softmax over positions), reference recipe", CE + RECIPES["squad"]["reference"]),
        "dsc": ("DSC (set level over the batch's tokens, α 0.01), reference recipe",
                DSC + RECIPES["squad"]["reference"]),
        "ce_official": ("CE, official dice recipe", CE + RECIPES["squad"]["official"]),
        "dsc_official": ("DSC, official dice recipe", DSC + RECIPES["squad"]["official"]),
        "dsc_ohem": ("DSC with OHEM 1 (as many hardest negatives as positives), reference recipe",
                     _with(DSC, ["loss.ohem_ratio=1.0"]) + RECIPES["squad"]["reference"]),
    },
}


TIMING_FILE = "timing.json"  # written by `run` into each run folder: {"wall_s", "cpu_s"} of the whole process


def _children_cpu_s() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_dir(runs: Path, dataset: str, variant: str, seed: int) -> Path:
    return runs / dataset / variant / f"seed{seed}"


def command(dataset: str, variant: str, seed: int, data: Path, model: str, runs: Path,
            extra: list[str] = ()) -> list[str]:
    """The ``python train.py …`` command of one (variant, seed); ``extra`` overrides come last and win."""
    fill = {"data": str(data), "model": model}
    overrides = _with([o.format(**fill) for o in COMMON_ALL + COMMON[dataset]], VARIANTS[dataset][variant][1])
    return [sys.executable, str(REPO_ROOT / "train.py"), *overrides, f"seed={seed}",
            f"hydra.run.dir={run_dir(runs, dataset, variant, seed)}", *extra]


def run_study(dataset: str, variants: list[str], seeds: list[int], data: Path, model: str, runs: Path,
              extra: list[str] = (), dry_run: bool = False) -> int:
    """Every (variant, seed) one after another; a run whose results.json exists is skipped. Returns #failures."""
    failures = 0
    for seed in seeds:  # seed by seed: an interrupted study still has every variant at the first seeds
        for variant in variants:
            folder = run_dir(runs, dataset, variant, seed)
            cmd = command(dataset, variant, seed, data, model, runs, extra)
            if (folder / "results.json").is_file():
                print(f"[done] {dataset}/{variant}/seed{seed}", flush=True)
                continue
            print(f"[run] {shlex.join(cmd)}", flush=True)
            if dry_run:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            start, cpu_start = time.perf_counter(), _children_cpu_s()
            with open(folder / "stdout.log", "w", encoding="utf-8") as log:
                code = subprocess.call(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
            timing = {"wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(_children_cpu_s() - cpu_start, 1)}
            if code == 0:
                (folder / TIMING_FILE).write_text(json.dumps(timing) + "\n")
            else:
                failures += 1
            print(f"[{'ok' if code == 0 else f'FAILED ({code})'}] {dataset}/{variant}/seed{seed}: "
                  f"{timing['wall_s']:.0f} s wall, {timing['cpu_s']:.0f} s CPU (log: {folder / 'stdout.log'})", flush=True)
    return failures


# ------------------------------------------------------------------------------------------ report
def _mean_std(values: list[float], digits: int = 2) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def predicted_positive_share(folder: Path, split: str = "test") -> float:
    """Percentage of the split's pairs the run predicted positive (``predictions_<split>.json``)."""
    preds = json.loads((folder / f"predictions_{split}.json").read_text(encoding="utf-8"))
    return 100.0 * sum(p["pred"] for p in preds) / len(preds)


def mean_scores(folder: Path, split: str = "test") -> tuple[float, float]:
    """Mean predicted P(paraphrase) over the split's non-paraphrases and over its paraphrases."""
    preds = json.loads((folder / f"predictions_{split}.json").read_text(encoding="utf-8"))
    by_label = [[p["score"] for p in preds if p["label"] == label] for label in (0, 1)]
    return statistics.mean(by_label[0]), statistics.mean(by_label[1])


def all_positive_f1(folder: Path, split: str = "test") -> float:
    """F1 of predicting every pair positive on the split = 2·#pos / (n + #pos), in %."""
    preds = json.loads((folder / f"predictions_{split}.json").read_text(encoding="utf-8"))
    pos = sum(p["label"] for p in preds)
    return 200.0 * pos / (len(preds) + pos)


def left_all_positive_step(records: list[dict]) -> int | None:
    """The first dev evaluation at which some pair is predicted negative (dev recall < 100), or None."""
    from dicenlp.curves import series

    for step, recall in zip(*series(records, "dev/recall")):
        if recall < 100.0:
            return step
    return None


def collect(runs: Path, dataset: str) -> dict[str, list[dict]]:
    """variant → the finished seeds' summaries (results.json, wall time, MRPC extras, metrics.jsonl)."""
    from dicenlp.curves import read_metrics

    found: dict[str, list[dict]] = {}
    for variant in VARIANTS[dataset]:
        for results_file in sorted((runs / dataset / variant).glob("seed*/results.json")):
            folder = results_file.parent
            results = json.loads(results_file.read_text(encoding="utf-8"))
            timing = folder / TIMING_FILE
            row = {"folder": folder, "results": results, "records": read_metrics(folder / "metrics.jsonl"),
                   **(json.loads(timing.read_text()) if timing.is_file() else {"wall_s": None, "cpu_s": None})}
            if dataset == "mrpc":
                row["positive_share"] = predicted_positive_share(folder)
                row["all_positive_f1"] = all_positive_f1(folder)
                row["left_step"] = left_all_positive_step(row["records"])
                row["scores"] = mean_scores(folder)
            found.setdefault(variant, []).append(row)
    return found


def table(dataset: str, found: dict[str, list[dict]]) -> str:
    """Markdown: mean ± std over seeds of the test metrics (dev-selected checkpoint) and run facts."""
    if dataset == "mrpc":
        head = ("| variant | seeds | test F1 | test acc | predicted positive % | mean P(paraphrase): non-par. / par. | "
                "dev F1 (selection) | left all-positive at step | best step / steps | wall s | CPU s |")
    else:
        head = "| variant | seeds | test EM | test F1 | dev F1 (selection) | best step / steps | wall s | CPU s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for variant, rows in found.items():
        res = [r["results"] for r in rows]
        steps = f"{_mean_std([r['best_step'] for r in res], 0)} / {res[0]['total_steps']}"
        cells = [variant, str(len(rows))]
        if dataset == "mrpc":
            left = [r["left_step"] for r in rows]
            left_text = ", ".join("never" if s is None else str(s) for s in left)
            cells += [_mean_std([r["test"]["f1"] for r in res]), _mean_std([r["test"]["accuracy"] for r in res]),
                      _mean_std([r["positive_share"] for r in rows], 1),
                      " / ".join(f"{statistics.mean(r['scores'][i] for r in rows):.2f}" for i in (0, 1)),
                      _mean_std([r["dev"]["f1"] for r in res]),
                      left_text]
        else:
            cells += [_mean_std([r["test"]["em"] for r in res]), _mean_std([r["test"]["f1"] for r in res]),
                      _mean_std([r["dev"]["f1"] for r in res])]
        cells += [steps] + [_mean_std([r[k] for r in rows if r[k] is not None], 0) for k in ("wall_s", "cpu_s")]
        lines.append("| " + " | ".join(cells) + " |")
    if dataset == "mrpc" and found:
        base = next(iter(found.values()))[0]["all_positive_f1"]
        lines.append(f"\nAll-positive baseline on the test split: F1 {base:.2f}.")
    return "\n".join(lines)


#: Figure panels (sorted by title): one per recipe.
PANELS = {"mrpc": {"reference": "a) reference recipe: lr 5e-5, batch 32",
                   "official": "b) official dice recipe: lr 3e-5, batch 20"},
          "squad": {"reference": "a) reference recipe: lr 1e-4, batch 16",
                    "official": "b) official dice recipe: lr 2e-5, batch 2 x 20"}}


def figure(dataset: str, found: dict[str, list[dict]], path: Path, title: str = "") -> Path | None:
    """Dev F1 over optimizer steps: one panel per recipe, one line per variant (mean over seeds, min–max band)."""
    from dicenlp.curves import plot_cells

    runs = [{"dataset": PANELS[dataset]["official" if "official" in variant else "reference"],
             "loss": variant, "records": row["records"]}
            for variant, rows in found.items() for row in rows]
    return plot_cells(runs, path, metric="f1", title=title or f"{dataset}: dev F1 over steps (MiniLM-L6)", sharey=True)


# ------------------------------------------------------------------------------------------ analysis
def _logit_grad(loss, logits):
    """(loss value, d loss / d logits) in float64."""
    import torch

    x = logits.detach().clone().requires_grad_(True)
    value = loss(x)
    return value.item(), torch.autograd.grad(value, x)[0]


def analyse_binary_set(n: int = 32, n_pos: int = 22, probs=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)) -> str:
    """MRPC-like batch (68 % positives) in which every example has the same probability q: each loss's value and
    its gradient on one positive's and one negative's logit. Markdown."""
    import torch
    import torch.nn.functional as F

    from dicenlp.losses import build_loss

    y = torch.zeros(n, dtype=torch.float64)
    y[:n_pos] = 1
    dsc, dsc_mean = build_loss("dsc"), build_loss("dsc", reduction="mean")
    losses = {"CE": lambda x: F.binary_cross_entropy_with_logits(x, y),
              "DSC set": lambda x: dsc(x, y), "DSC per example": lambda x: dsc_mean(x, y),
              "DSC 2 classes": lambda x: (dsc(x, y) + dsc(-x, 1 - y)) / 2}
    lines = ["| q | " + " | ".join(f"{k}: loss, ∂/∂z pos, ∂/∂z neg" for k in losses) + " |",
             "|---|" + "---|" * len(losses)]
    for q in probs:
        z = torch.full((n,), float(torch.logit(torch.tensor(q, dtype=torch.float64))), dtype=torch.float64)
        cells = []
        for loss in losses.values():
            value, grad = _logit_grad(loss, z)
            cells.append(f"{value:.4f}, {grad[0].item():+.1e}, {grad[-1].item():+.1e}")
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def analyse_positions(windows: int = 16, length: int = 200, probs=(0.5, 0.2, 0.07, 0.02, 0.005)) -> str:
    """SQuAD-like batch (one start position among ``length`` tokens per window), every token at probability q:
    the summed gradient on the positives' and on the negatives' logits, per loss. Markdown."""
    import torch
    import torch.nn.functional as F

    from dicenlp.losses import build_loss

    y = torch.zeros(windows, length, dtype=torch.float64)
    y[:, 0] = 1
    mask = torch.ones_like(y, dtype=torch.bool)
    jitter = 1e-6 * torch.arange(length, dtype=torch.float64).flip(0)  # breaks OHEM's ties reproducibly
    dsc, dsc_ohem = build_loss("dsc"), build_loss("dsc", ohem_ratio=1.0)
    losses = {"DSC set": lambda x: dsc(x + jitter, y, mask=mask),
              "DSC set, OHEM 1": lambda x: dsc_ohem(x + jitter, y, mask=mask)}
    _, ce_grad = _logit_grad(lambda x: F.cross_entropy(x, torch.zeros(windows, dtype=torch.long)),
                             torch.zeros(windows, length, dtype=torch.float64))
    lines = ["| q | " + " | ".join(f"{k}: loss, Σ∂/∂z pos, Σ∂/∂z neg" for k in losses) + " |",
             "|---|" + "---|" * len(losses)]
    for q in probs:
        z = torch.full((windows, length), float(torch.logit(torch.tensor(q, dtype=torch.float64))),
                       dtype=torch.float64)
        cells = []
        for loss in losses.values():
            value, grad = _logit_grad(loss, z)
            cells.append(f"{value:.4f}, {grad[:, 0].sum().item():+.1e}, {grad[:, 1:].sum().item():+.1e}")
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    lines.append(f"\nCE (softmax over the {length} positions, any equal logits): Σ∂/∂z pos "
                 f"{ce_grad[:, 0].sum().item():+.2f}, Σ∂/∂z neg {ce_grad[:, 1:].sum().item():+.2f}.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_split = sub.add_parser("splits", help="write the derived train/dev/test splits (outside the repository)")
    p_split.add_argument("--out", type=Path, required=True)
    p_split.add_argument("--mrpc", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "mrpc",
                         help="folder with GLUE's MRPC train.tsv and dev.tsv")
    p_split.add_argument("--squad", type=Path,
                         default=REPO_ROOT.parent / "shared" / "data" / "squad1" / "train-xquad-en-first24.json",
                         help="a SQuAD v1.1-layout JSON file")
    p_run = sub.add_parser("run", help="train every (variant, seed) of a dataset, skipping finished runs; "
                           "extra Hydra overrides for every run after --")
    p_run.add_argument("dataset", choices=sorted(VARIANTS))
    p_run.add_argument("--data", type=Path, required=True, help="the --out folder of `splits`")
    p_run.add_argument("--runs", type=Path, required=True, help="where the run folders go")
    p_run.add_argument("--model", required=True, help="encoder: a local model folder or a Hub name")
    p_run.add_argument("--variants", nargs="+", help="default: all of the dataset's variants")
    p_run.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p_run.add_argument("--dry-run", action="store_true", help="print the commands only")
    sub.add_parser("analyse", help="print the loss-landscape tables of docs/classification.md and docs/mrc.md")
    p_rep = sub.add_parser("report", help="print the table (mean ± std over seeds) and draw the dev curves")
    p_rep.add_argument("dataset", choices=sorted(VARIANTS))
    p_rep.add_argument("--runs", type=Path, required=True)
    p_rep.add_argument("--figure", type=Path, help="PNG of the dev curves")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Extra Hydra overrides for every run follow "--" (split off by hand: argparse's subcommands mishandle it).
    overrides = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)

    if args.command == "splits":
        print("mrpc:", split_mrpc(args.mrpc, args.out / "mrpc"))
        print("squad:", split_squad(args.squad, args.out / "squad"))
        return 0
    if args.command == "analyse":
        print("Binary decisions, 68 % positives (MRPC), all probabilities = q:\n")
        print(analyse_binary_set())
        print("\nPositions, one positive per window (SQuAD), all probabilities = q:\n")
        print(analyse_positions())
        return 0
    if args.command == "run":
        variants = args.variants or list(VARIANTS[args.dataset])
        unknown = sorted(set(variants) - set(VARIANTS[args.dataset]))
        if unknown:
            parser.error(f"unknown {args.dataset} variants {unknown}; known: {list(VARIANTS[args.dataset])}")
        failures = run_study(args.dataset, variants, args.seeds, args.data.resolve(), args.model,
                             args.runs.resolve(), overrides, args.dry_run)
        return 1 if failures else 0
    found = collect(args.runs, args.dataset)
    if not found:
        print(f"no finished runs under {args.runs / args.dataset}", file=sys.stderr)
        return 1
    print(table(args.dataset, found))
    if args.figure:
        print(f"figure: {figure(args.dataset, found, args.figure)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
