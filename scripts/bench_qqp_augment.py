#!/usr/bin/env python
"""Time the Table 8 QQP variants (dicenlp.data.qqp_augment) on a synthetic QQP-sized training set.

    python scripts/bench_qqp_augment.py               # 363,846 pairs (GLUE QQP train), 37% duplicates
    python scripts/bench_qqp_augment.py --pairs 50000

The synthetic questions are built from question frames with slots filled by invented capitalised names
(1 and 2 words), acronyms, numbers and years, plus ~30% questions without any mention, so the mention
finder, the lexicon and the generator see QQP-like text at QQP's size. Prints one line per variant.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dicenlp.data.glue import Examples  # noqa: E402
from dicenlp.data.qqp_augment import VARIANTS, Augmenter, make_variant  # noqa: E402

FRAMES = [
    "How do I learn {name} in {num} months?", "What is the best way to get into {name}?",
    "Why is {name} better than {name2}?", "What happened in {name} in {year}?", "Is {acr} worth it in {year}?",
    "How much does a {acr} engineer earn at {name}?", "What do people think of {name2}?",
    "How can I lose {num} kg?", "Who will win the {year} election in {name}?",
    "What is the meaning of life?", "How can I improve my writing skills?", "Why do cats sleep so much?",
    "What are the best books to read?", "How do I stop procrastinating?",
]


def synthetic_qqp(n: int, seed: int = 0) -> Examples:
    rng = np.random.default_rng(seed)
    syll = ["ka", "lo", "mi", "ra", "ten", "vor", "sun", "del", "bra", "zi", "no", "pet", "gar", "lin"]
    names = sorted({("".join(rng.choice(syll, 3))).capitalize() for _ in range(3000)})
    names2 = [f"{a} {b}" for a, b in zip(rng.choice(names, 800).tolist(), rng.choice(names, 800).tolist())]
    acrs = ["".join(rng.choice(list("ABCDEFGHKLMNPRSTUVW"), 3).tolist()) for _ in range(300)]

    def questions() -> list[str]:  # all slots drawn up front (numpy), then one format per question
        frame = rng.integers(len(FRAMES), size=n)
        name, name2 = rng.integers(len(names), size=n), rng.integers(len(names2), size=n)
        acr, num, year = rng.integers(len(acrs), size=n), rng.integers(1, 100, size=n), rng.integers(1950, 2020, size=n)
        return [FRAMES[f].format(name=names[a], name2=names2[b], acr=acrs[c], num=d, year=e)
                for f, a, b, c, d, e in zip(frame.tolist(), name.tolist(), name2.tolist(), acr.tolist(),
                                            num.tolist(), year.tolist())]

    text_a, text_b = questions(), questions()
    label = (rng.random(n) < 0.37).astype(np.int64)
    return Examples([str(i) for i in range(n)], text_a, text_b, label, source="synthetic")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=363_846)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    train = synthetic_qqp(args.pairs, args.seed)
    print(f"synthetic set: {len(train):,} pairs, {100 * train.label.mean():.1f}% positive "
          f"(built in {time.perf_counter() - t0:.1f} s)")
    t0, c0 = time.perf_counter(), time.process_time()
    augmenter = Augmenter(train)
    print(f"mentions + lexicon: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU; "
          f"lexicon sizes {augmenter.lexicon.sizes()}")
    for variant in VARIANTS:
        c0 = time.process_time()
        _, report = make_variant(train, variant, seed=0, augmenter=augmenter)
        print(f"{report} [{report.seconds:.1f} s wall, {time.process_time() - c0:.1f} s CPU, "
              f"{report.duplicate_pairs:,} duplicate pairs]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
