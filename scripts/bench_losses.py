#!/usr/bin/env python
"""Forward + backward time of every dicenlp loss against CE (a benchmark, not a test).

    python scripts/bench_losses.py                    # binary [16384] and multi-class [16384 x 50], CPU
    python scripts/bench_losses.py --threads 2 --repeats 50 --device cuda --markdown
    python scripts/bench_losses.py --threads 1 --repeats 40 --markdown --compare 78239bb   # before/after
    python scripts/bench_losses.py --threads 1 --fallback   # + multi-class DSC without its fused CPU kernel
    python scripts/bench_losses.py --threads 1 --widths     # + the kernel built for AVX2 and for 4-float vectors

Prints, per input shape, the median time of ``loss(logits, target).backward()`` over ``--repeats`` runs
(after warm-up; each timed run follows an untimed run of the same loss, see ``time_fwd_bwd``) and its
ratio to CE's time on the same input (median over rounds of the ratio within a round). For comparison it also times
``official*``: a re-implementation (written for this benchmark, not the official code) of the official
DiceLoss *algorithm* (ShannonAI/dice_loss_for_NLP, loss/dice_loss.py, as described in OFFICIAL_CODE.md §2):
binary = sigmoid and one set-level ratio over the flattened batch; multi-class = softmax, one-hot, then
a Python loop over the C classes computing a per-row squared-denominator dice for each, summed over
classes and averaged over rows. Only its cost is meant to be representative; its bugs are not reproduced.

``--compare REV`` also times the non-CE losses of ``dicenlp.losses`` as of git revision REV (its files are
read with ``git show`` into a temporary package), in the same round-robin, so a before/after comparison
sees the same machine load. The header reports the load average (the project's CPU is shared).
"""

from __future__ import annotations

import argparse
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

from dicenlp.losses import _cpu_kernels, build_loss

LOSSES = [
    ("ce", {}),
    ("wce", None),
    ("fl", dict(gamma=2.0)),
    ("dl", {}),
    ("tl", dict(alpha=0.3, beta=0.7)),
    ("dsc", {}),
    ("dsc (mean)", dict(reduction="mean")),
    ("dsc (ohem 0.3)", dict(ohem_ratio=0.3)),
]


def load_losses_at(rev: str):
    """``dicenlp.losses`` as of git revision ``rev``, imported as a separate package (relative imports only)."""
    root = Path(__file__).resolve().parents[1]
    pkg_dir = "src/dicenlp/losses"
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:{pkg_dir}"], cwd=root, check=True,
                           capture_output=True, text=True).stdout.split()
    tmp = Path(tempfile.mkdtemp(prefix="bench_losses_"))
    pkg = f"_losses_at_{rev.replace('~', '_').replace('^', '_')}"
    (tmp / pkg).mkdir()
    for name in names:
        if name.endswith(".py"):
            text = subprocess.run(["git", "show", f"{rev}:{pkg_dir}/{name}"], cwd=root, check=True,
                                  capture_output=True, text=True).stdout
            (tmp / pkg / name).write_text(text)
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module(pkg)  # (its __init__ imports every module: the files can go)
    finally:
        sys.path.remove(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)


def without_cpu_kernels(loss):
    """``loss`` with dicenlp's fused CPU kernels switched off: its PyTorch implementation (what runs where
    no C compiler is found, and on GPUs)."""
    def run(x, t):
        usable = _cpu_kernels.usable
        _cpu_kernels.usable = lambda _x: False
        try:
            return loss(x, t)
        finally:
            _cpu_kernels.usable = usable
    return run


def with_kernel_build(loss, march, lanes):
    """``loss`` with the fused CPU kernel built for another vector width (e.g. the AVX2 build, as an AVX2-only
    CPU would get it; this CPU must be able to run it). None where it cannot be built."""
    target, cached = _cpu_kernels.vector_target, _cpu_kernels.kernels
    _cpu_kernels.vector_target = lambda: (march, lanes)
    cached.cache_clear()
    try:
        lib = cached()
    finally:
        _cpu_kernels.vector_target = target
        cached.cache_clear()
    if lib is None:
        return None

    def run(x, t):
        _cpu_kernels.kernels = lambda: lib
        try:
            return loss(x, t)
        finally:
            _cpu_kernels.kernels = cached
    return run


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


def time_fwd_bwd(fns, logits, target, repeats, warmup, device):
    """Median forward+backward seconds per function, and the median over rounds of the ratio to CE's time in
    the same round. The functions are timed round-robin (one run of each per round), so load changes on a
    shared machine hit every loss alike, in a new random order each round. Each timed run directly follows
    an untimed run of the same function: its cost is then the function's own work, not its neighbour's
    memory state (buffers freed by a big neighbour are returned to the OS and page-faulted back in; with
    single runs, CE timed right after the official re-implementation took ~25% longer than the same CE
    elsewhere, and the ratios moved with the round-robin's composition)."""
    times = {label: [] for label in fns}
    order = list(fns)
    rng = random.Random(0)
    for i in range(warmup + repeats):
        rng.shuffle(order)
        for label in order:
            fn = fns[label]
            fn(logits.detach().clone().requires_grad_(True), target).backward()  # untimed: steady state
            x = logits.detach().clone().requires_grad_(True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn(x, target).backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times[label].append(time.perf_counter() - t0)
    ratio = {label: statistics.median(a / b for a, b in zip(ts, times["ce"])) for label, ts in times.items()}
    return {label: statistics.median(ts) for label, ts in times.items()}, ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--positions", type=int, default=16384)
    ap.add_argument("--classes", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--markdown", action="store_true", help="print one markdown table")
    ap.add_argument("--compare", metavar="REV", default=None,
                    help="also time the losses of dicenlp.losses at this git revision (same round-robin)")
    ap.add_argument("--fallback", action="store_true",
                    help="also time the multi-class DSC rows with the fused CPU kernel switched off")
    ap.add_argument("--widths", action="store_true",
                    help="also time multi-class DSC with the kernel built for AVX2 (8 floats) and for 4-float vectors")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    n, C = args.positions, args.classes
    inputs = {
        f"binary [{n}]": (torch.randn(n, generator=g).to(device) * 3,
                          (torch.rand(n, generator=g) < 0.1).long().to(device)),
        f"multi-class [{n} x {C}]": (torch.randn(n, C, generator=g).to(device) * 3,
                                     torch.randint(0, C, (n,), generator=g).to(device)),
    }
    old = load_losses_at(args.compare) if args.compare else None
    rows = []  # (loss, {shape: seconds})
    results: dict[str, dict[str, float]] = {}
    load_before = os.getloadavg()
    for shape, (x, y) in inputs.items():
        classes = C if x.dim() == 2 else 2
        fns = {}
        for label, prm in LOSSES:
            prm = dict(label_counts=list(range(classes, 0, -1))) if prm is None else prm
            fns[label] = build_loss(label.split(" ")[0], **prm).to(device)
            if args.fallback and label.startswith("dsc") and x.dim() == 2:
                fns[f"{label} [PyTorch, no kernel]"] = without_cpu_kernels(fns[label])
            if args.widths and label == "dsc" and x.dim() == 2:
                for name, (march, lanes) in (("AVX2 build", (["-march=x86-64-v3"], 8)), ("4-float build", ([], 4))):
                    run = with_kernel_build(fns[label], march, lanes)
                    if run is not None:
                        fns[f"{label} [{name}]"] = run
            if old is not None and label not in ("ce", "wce"):
                fns[f"{label} @{args.compare}"] = old.build_loss(label.split(" ")[0], **prm).to(device)
        fns["official* (re-impl.)"] = official_multiclass_dice if x.dim() == 2 else official_binary_dice
        medians, ratios = time_fwd_bwd(fns, x, y, args.repeats, args.warmup, device)
        for label, seconds in medians.items():
            results.setdefault(label, {})[shape] = (seconds, ratios[label])
    shapes = list(inputs)
    load_after = os.getloadavg()
    header = f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, " \
             f"median of {args.repeats} forward+backward runs (× CE: median of the per-round ratios); " \
             f"load average (1 min) " \
             f"{load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} CPUs"
    print(header)
    if args.markdown:
        print("\n| loss | " + " | ".join(f"{s} ms (× CE)" for s in shapes) + " |")
        print("|---|" + "---|" * len(shapes))
    for label, by_shape in results.items():
        cells = [f"{1e3 * by_shape[s][0]:.2f} ({by_shape[s][1]:.2f}×)" if s in by_shape else "–" for s in shapes]
        if args.markdown:
            print(f"| {label} | " + " | ".join(cells) + " |")
        else:
            print(f"{label:22s}" + "".join(f"  {s}: {c:>18s}" for s, c in zip(shapes, cells)))
        rows.append(label)


if __name__ == "__main__":
    main()
