#!/usr/bin/env python
"""Flat vs nested decoding of the SAME BERT-MRC predictions (docs/ner.md, "Before and after, on a real slice").

    python scripts/ner_decoding_study.py RUN_DIR [RUN_DIR ...] [--split test]

Reads ``<run>/predictions_<split>.json`` of runs made with ``task.params.decoding=flat`` (the default of the
flat datasets): ``pred`` holds the kept spans and ``dropped`` the overlapping candidates, so ``pred ∪ dropped``
is exactly what nested decoding predicts for the same model. Prints, per run, a markdown table of span P/R/F1
and the number of predicted spans that overlap another one, for

* **nested**: every matched span (``decoding=nested``; the project's only decoding before flat decoding);
* **flat (ours)**: the non-overlapping set with the largest total ``p = p_start·p_end·p_match``
  (``dicenlp.tasks.flat_spans.flat_select``, exact weighted interval scheduling);
* **flat, greedy by p**: keep the most probable span, drop what overlaps it, repeat (the usual greedy rule of
  span-based flat NER);
* **flat, greedy by p_match**: the same greedy rule ranked by the span-match probability alone;

and the time the flat decoder takes on these candidates.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dicenlp.metrics.spans import span_scores  # noqa: E402
from dicenlp.tasks.flat_spans import flat_select, overlap_mask  # noqa: E402


def load_candidates(path: Path) -> tuple[dict[str, np.ndarray], set]:
    """Every candidate (kept and dropped) of a flat run as arrays, and the gold set."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    if rows and "dropped" not in rows[0]:
        sys.exit(f"{path}: no 'dropped' spans; this study needs a run made with task.params.decoding=flat")
    cols = {k: [] for k in ("sentence", "start", "end", "type", "score", "p_match", "kept")}
    for r in rows:
        for kept, items in ((True, r["pred"]), (False, r["dropped"])):
            for x in items:
                a, b, t = x["span"]
                for k, v in zip(cols, (r["sentence"], a, b, t, x["score"], x["p_match"], kept)):
                    cols[k].append(v)
    gold = {(r["sentence"], t, a, b) for r in rows for a, b, t in r["gold"]}
    arrays = {k: np.array(v) for k, v in cols.items()}
    types = sorted(set(cols["type"]))
    arrays["type_id"] = np.array([types.index(t) for t in cols["type"]], np.int64)
    return arrays, gold


def greedy(c: dict[str, np.ndarray], score: np.ndarray) -> np.ndarray:
    """Per sentence: keep the best-scored span, drop every span overlapping it, repeat (ties: earlier start,
    shorter span, type order)."""
    keep = np.zeros(len(score), bool)
    kept: dict[int, list] = {}
    for k in np.lexsort((c["type_id"], c["end"], c["start"], -score)).tolist():
        mine = kept.setdefault(int(c["sentence"][k]), [])
        a, b = int(c["start"][k]), int(c["end"][k])
        if all(b < ka or kb < a for ka, kb in mine):
            mine.append((a, b))
            keep[k] = True
    return keep


def row(name: str, c: dict[str, np.ndarray], keep: np.ndarray, gold: set) -> str:
    pred = {(int(s), str(t), int(a), int(b)) for s, t, a, b in
            zip(c["sentence"][keep], c["type"][keep], c["start"][keep], c["end"][keep])}
    sc = span_scores(pred, gold)
    n_over = int(overlap_mask(c["sentence"][keep], c["start"][keep], c["end"][keep]).sum())
    return (f"| {name} | {len(pred):,} | {n_over:,} | {sc.micro.tp:,} | {sc.precision:.2f} | {sc.recall:.2f} | "
            f"{sc.f1:.2f} |")


def study(run_dir: Path, split: str) -> None:
    c, gold = load_candidates(run_dir / f"predictions_{split}.json")
    ours = flat_select(c["sentence"], c["start"], c["end"], c["score"], c["type_id"])
    if not np.array_equal(ours, c["kept"]):
        sys.exit(f"{run_dir}: re-decoding does not reproduce the run's flat predictions")
    t0 = time.perf_counter()
    for _ in range(10):
        flat_select(c["sentence"], c["start"], c["end"], c["score"], c["type_id"])
    ms = (time.perf_counter() - t0) / 10 * 1e3
    n_sent = len(json.loads((run_dir / f"predictions_{split}.json").read_text()))
    print(f"\n{run_dir} ({split}: {n_sent:,} sentences, {len(gold):,} gold entities, "
          f"{len(ours):,} candidate spans; flat decoder {ms:.1f} ms)\n")
    print("| decoding | predicted | overlapping | correct | P | R | F1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(row("nested (all matched spans)", c, np.ones_like(ours), gold))
    print(row("flat, max Σp (ours)", c, ours, gold))
    print(row("flat, greedy by p", c, greedy(c, c["score"]), gold))
    print(row("flat, greedy by p_match", c, greedy(c, c["p_match"]), gold))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="folders of NER runs made with decoding=flat")
    parser.add_argument("--split", default="test", help="which predictions_<split>.json to read (default test)")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        study(run_dir, args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
