#!/usr/bin/env python
"""Peak memory of BERT-MRC's span-match head: candidate pairs (dicenlp) vs all pairs (the official form).

    python scripts/bench_mrc_memory.py                                  # L=256, H=768, B=8 (figures in docs/ner.md)
    python scripts/bench_mrc_memory.py --batch 8 --all-pairs-max-batch 8   # on a GPU, measure all pairs at B=8 too

What is measured: one forward + backward of the span-match head alone (the encoder is the same in both forms)
on random encoder states ``h`` [B, L, H] that require grad, in fp32:

* ``all pairs``: the official ``start_end_match`` head: ``[h_i; h_j]`` for every (i, j) → [B, L, L, 2H] →
  MLP → [B, L, L] logits (``SpanMatchHead.all_pairs_logits``);
* ``candidates``: ``dicenlp.models.mrc.SpanMatchHead``: project h twice ([B, L, H] each), gather and add only
  the candidate pairs (N of them) → MLP → [N]. N is given for two cases: every pair of the band
  ``start <= end < start + max_span_len`` (the worst case: every token predicted as a start and an end), and
  the training cap ``max_span_candidates`` (16384 per batch by default).

Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU; on a CPU the peak resident set size of a fresh
subprocess per measurement minus its size just before the forward pass (torch's CPU allocator is invisible to
tracemalloc). Memory is linear in B for both forms, so on a CPU the all-pairs form is measured at a smaller
batch (``--all-pairs-max-batch``, default 1 on CPU) and scaled to B; the table says which numbers are scaled.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(form: str, batch: int, length: int, hidden: int, n_candidates: int, device: str) -> dict:
    """One forward + backward; returns peak bytes above the state before the forward pass."""
    import torch

    from dicenlp.models.mrc import SpanMatchHead

    torch.manual_seed(0)
    head = SpanMatchHead(hidden, 1, dropout=0.1).to(device)
    h = torch.randn(batch, length, hidden, device=device, requires_grad=True)
    if form == "candidates":
        b = torch.randint(0, batch, (n_candidates,), device=device)
        i = torch.randint(0, length, (n_candidates,), device=device)
        j = torch.clamp(i + torch.randint(0, 32, (n_candidates,), device=device), max=length - 1)
        index = torch.stack([b, i, j], 1)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _rss_bytes()
    if form == "candidates":
        out = head.score(*head.project(h), index)
    else:
        out = head.all_pairs_logits(h)
    out.float().sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"form": form, "batch": batch, "n_candidates": n_candidates if form == "candidates" else batch * length ** 2,
            "peak_bytes": int(peak)}


def run_isolated(args: list[str]) -> dict:
    """A fresh interpreter per CPU measurement (``ru_maxrss`` is a process-lifetime maximum)."""
    out = subprocess.run([sys.executable, __file__, "--one", *args], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--max-span-len", type=int, default=32)
    parser.add_argument("--candidate-cap", type=int, default=16384)
    parser.add_argument("--all-pairs-max-batch", type=int, default=None,
                        help="measure the all-pairs form at most at this batch and scale linearly (default: 1 on "
                             "CPU, the full batch on GPU)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--one", nargs=5, metavar=("FORM", "B", "L", "H", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.one:
        form, b, length, hidden, n = args.one
        print(json.dumps(measure(form, int(b), int(length), int(hidden), int(n), device)))
        return 0

    B, L, H, K = args.batch, args.length, args.hidden, args.max_span_len
    band = B * sum(min(K, L - i) for i in range(L))  # every in-band pair of a full-length context
    ap_batch = min(B, args.all_pairs_max_batch or (B if device == "cuda" else 1))

    def one(form: str, batch: int, n: int) -> dict:
        if device == "cuda":
            return measure(form, batch, L, H, n, device)
        return run_isolated([form, str(batch), str(L), str(H), str(n), "--device", "cpu"])

    rows = []
    for name, n in (("candidates: every in-band pair", band), ("candidates: training cap", min(band, args.candidate_cap))):
        r = one("candidates", B, n)
        rows.append((name, r["n_candidates"], r["peak_bytes"], False))
    r = one("all_pairs", ap_batch, 0)
    scaled = r["peak_bytes"] * B / ap_batch
    rows.append((f"all pairs ([B, L, L, 2H] concat){'' if ap_batch == B else f', measured at B={ap_batch}, x{B // ap_batch}'}",
                 B * L * L, scaled, ap_batch != B))
    concat_gib = B * L * L * 2 * H * 4 / 2 ** 30

    dev_name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"BERT-MRC span-match head, forward + backward, fp32, L={L}, H={H}, B={B}, max_span_len={K}, "
          f"device: {dev_name}\n")
    print("| form | scored pairs | peak memory |")
    print("|---|---:|---:|")
    for name, n, peak, is_scaled in rows:
        print(f"| {name} | {n:,} | {peak / 2 ** 20:,.0f} MiB{' (scaled)' if is_scaled else ''} |")
    print(f"\nThe all-pairs concatenation alone is B·L²·2H·4 bytes = {concat_gib:.2f} GiB.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
