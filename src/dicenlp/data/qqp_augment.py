"""The QQP training-set variants of the data-imbalance study (PAPER.md §3.5, Table 8).

``make_variant(train, variant, seed)`` returns a new training set and a ``VariantReport`` (sizes, ratios).
With P positives (duplicates, label 1) and N negatives in the original set (QQP: 37% / 63%):

=================  =============================================================  ======================
variant            construction                                                    size, positive share
=================  =============================================================  ======================
``original``       the training set as is                                          P + N, P/(P+N)
``plus_positive``  + (N − P) new positives                                         2N, 50%
``plus_negative``  + (N − P) new negatives (the same number of new examples)       2N, P/2N (QQP: ~29%)
``minus_negative`` N − P negatives removed (seeded, exact)                         2P, 50%
``plus_both``      ``minus_negative``, then + (N − P) new positives and + (N − P)  2N, 50%
                   new negatives (both kinds of augmentation, the distribution
                   kept balanced)
=================  =============================================================  ======================

With the paper's counts (363,871 pairs, 37% positive) these rules give 458,478 / 458,478 / 269,264 pairs,
against the printed 458,477 / 458,477 / 269,165; on GLUE's train.tsv (363,846 pairs) the sizes follow from
its own P and N (printed by ``python -m dicenlp.data.qqp_augment``). The paper prints 21% / 79% for
+negative, which no construction of that size that keeps the original positives can reach (it would need
P/2N = 0.21 with P/(P+N) = 0.37); we keep the size and the construction, and report the resulting ratio.

New examples (the paper: spaCy mentions relinked to other DBpedia entities; offline here) are made from
*templates*, existing pairs of the wanted label, by replacing their entity-like mentions with other mentions
of the same type taken from a lexicon built from the training set itself:

* **Mentions** (deterministic regular expressions, ``find_mentions``):
  - ``NUM``: a number token (``\\d+`` with optional ``,``/``.`` groups, not glued to letters); ``YEAR`` when
    it is 4 digits 1900–2099;
  - ``ACR``: an all-capital word of 2–6 letters (``USA``, ``IIT``, ``JEE``), not in the stop list;
  - ``TIME``: a month or weekday name (``TIME_WORDS``) not at the start of a sentence;
  - ``CAP1``/``CAP2``/``CAP3``: a maximal run of 1, 2 or ≥3 capitalised words (``[A-Z][a-z][A-Za-z]*``,
    separated by single spaces), e.g. ``India``, ``Donald Trump``, ``Bank of America`` is two runs. The
    first word of the text and words right after ``. ? !`` are skipped (capitalised by position, not
    because they name something), and so are capitalised function words (``What``, ``How``, ``The``,
    ``I``, ...; ``STOPWORDS``).
* **Lexicon**: every distinct mention string of the training set (both labels, both questions) per type
  with its count; strings seen fewer than ``min_count`` times (default 2: drops typos) are left out; the
  entries are sorted (count desc, then text) so the lexicon does not depend on hash order.
* **A new example**: draw a template (templates of the label are shuffled once and reused round-robin, so
  each is used ⌊k/E⌋ or ⌈k/E⌉ times for k new examples from E eligible templates), then map each distinct
  mention string of the pair to a uniformly drawn *different* lexicon entry of its type and substitute it
  at every occurrence in **both** questions. The consistent substitution keeps the relation between the
  questions, hence the label (a duplicate stays a duplicate). A template is eligible when at least one of
  its mentions has a type with ≥ 2 lexicon entries.

Everything is driven by one ``numpy.random.Generator(seed)``, so a (train set, variant, seed) always gives
the same set. Cost on a synthetic QQP-sized set (364k pairs): see docs/classification.md
(``scripts/bench_qqp_augment.py``).
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from dicenlp.data.glue import Examples

log = logging.getLogger(__name__)

VARIANTS = ("original", "plus_positive", "plus_negative", "minus_negative", "plus_both")

#: PAPER.md §3.5: (size, positive share) printed for each training set.
PAPER_SIZES = {"original": (363_871, 0.37), "plus_positive": (458_477, 0.50), "plus_negative": (458_477, 0.21),
               "minus_negative": (269_165, 0.50), "plus_both": (458_477, 0.50)}

#: Capitalised words that are function words or question words, not names (compared lower-cased).
STOPWORDS = frozenset("""
a an the this that these those there here what which who whom whose when where why how whether if then than
i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
is am are was were be been being do does did done have has had having can could shall should will would may
might must ought not no nor and or but so yet for of in on at by to from with without about above below into
onto over under after before since until while during through between among against upon within
all any some each every both either neither few many much more most other such own same only just also very
too again ever never always often sometimes please yes ok okay hi hello dear mr mrs ms dr vs etc
""".split())

_NUM = r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])"
_CAPWORD = r"[A-Z][a-z][A-Za-z]*"
_ACR = r"[A-Z]{2,6}"
# One pass finds all three kinds; alternation order makes an acronym win over a capitalised run.
_MENTION = re.compile(
    rf"(?P<num>{_NUM})"
    rf"|(?<![\w'’])(?P<acr>{_ACR})(?![\w'’])"
    rf"|(?<![\w'’])(?P<cap>{_CAPWORD}(?: {_CAPWORD})*)(?![A-Za-z0-9])"
)
#: Month and weekday names get their own type (else "March" could become "India").
TIME_WORDS = frozenset("""january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday""".split())


def _starts_sentence(text: str, start: int) -> bool:
    """True when ``text[start:]`` begins the text or follows ``. ? !`` and whitespace."""
    j = start - 1
    while j >= 0 and text[j].isspace():
        j -= 1
    return j < 0 or (text[j] in ".?!" and j < start - 1)


def find_mentions(text: str) -> list[tuple[int, int, str]]:
    """Entity-like mentions of ``text`` as ``(start, end, type)``, non-overlapping, left to right."""
    out = []
    for m in _MENTION.finditer(text):
        if m.lastgroup == "num":
            s = m.group()
            kind = "YEAR" if len(s) == 4 and s[:2] in ("19", "20") else "NUM"
            out.append((m.start(), m.end(), kind))
            continue
        if m.lastgroup == "acr":
            if m.group().lower() not in STOPWORDS:
                out.append((m.start(), m.end(), "ACR"))
            continue
        # A capitalised run: drop words capitalised by position or function words, split the rest into runs.
        run: list[tuple[int, int]] = []
        pos = m.start()
        for word in m.group().split(" "):
            start, end = pos, pos + len(word)
            pos = end + 1
            positional = _starts_sentence(text, start)
            if word.lower() in TIME_WORDS and not positional:
                if run:
                    out.append((run[0][0], run[-1][1], f"CAP{min(len(run), 3)}"))
                run = []
                out.append((start, end, "TIME"))
            elif positional or word.lower() in STOPWORDS:
                if run:
                    out.append((run[0][0], run[-1][1], f"CAP{min(len(run), 3)}"))
                run = []
            else:
                run.append((start, end))
        if run:
            out.append((run[0][0], run[-1][1], f"CAP{min(len(run), 3)}"))
    return out


@dataclass
class Lexicon:
    """Per mention type, the distinct mention strings (sorted by count desc, text) and their counts."""

    entries: dict[str, list[str]]
    counts: dict[str, np.ndarray]

    @classmethod
    def build(cls, mentions: list[list[tuple[int, int, str]]], texts: list[str], min_count: int = 2) -> "Lexicon":
        counter: Counter = Counter()
        for spans, text in zip(mentions, texts):
            counter.update((kind, text[s:e]) for s, e, kind in spans)
        by_type: dict[str, list[tuple[int, str]]] = {}
        for (kind, surface), count in counter.items():
            if count >= min_count:
                by_type.setdefault(kind, []).append((-count, surface))
        entries, counts = {}, {}
        for kind in sorted(by_type):
            items = sorted(by_type[kind])
            entries[kind] = [s for _, s in items]
            counts[kind] = np.array([-c for c, _ in items], dtype=np.int64)
        return cls(entries, counts)

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.entries.items()}


@dataclass
class VariantReport:
    """Achieved sizes and label shares of a variant, with the paper's printed ones beside them."""

    variant: str
    size: int
    positives: int
    negatives: int
    added_positive: int = 0
    added_negative: int = 0
    removed_negative: int = 0
    templates_positive: int = 0
    templates_negative: int = 0
    duplicate_pairs: int = 0
    seconds: float = 0.0

    @property
    def positive_share(self) -> float:
        return self.positives / self.size if self.size else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "positive_share": round(self.positive_share, 4),
                "paper_size": PAPER_SIZES[self.variant][0], "paper_positive_share": PAPER_SIZES[self.variant][1]}

    def __str__(self) -> str:
        paper_size, paper_share = PAPER_SIZES[self.variant]
        return (f"QQP {self.variant}: {self.size:,} pairs, {100 * self.positive_share:.1f}% positive / "
                f"{100 * (1 - self.positive_share):.1f}% negative (+{self.added_positive:,} pos, "
                f"+{self.added_negative:,} neg, -{self.removed_negative:,} neg) | paper: {paper_size:,}, "
                f"{100 * paper_share:.0f}% / {100 * (1 - paper_share):.0f}%")


class Augmenter:
    """Mention replacement over one training set: mentions are found once, the lexicon built once."""

    def __init__(self, train: Examples, min_count: int = 2) -> None:
        if train.text_b is None:
            raise ValueError("QQP augmentation needs sentence pairs")
        self.train = train
        self.mentions_a = [find_mentions(t) for t in train.text_a]
        self.mentions_b = [find_mentions(t) for t in train.text_b]
        self.lexicon = Lexicon.build(self.mentions_a + self.mentions_b, train.text_a + train.text_b, min_count)
        replaceable = {k for k, v in self.lexicon.entries.items() if len(v) >= 2}
        self.eligible = np.fromiter(
            (any(k in replaceable for _, _, k in ma) or any(k in replaceable for _, _, k in mb)
             for ma, mb in zip(self.mentions_a, self.mentions_b)), dtype=bool, count=len(train))

    def templates(self, label: int) -> np.ndarray:
        return np.flatnonzero(self.eligible & (self.train.label == label))

    def generate(self, label: int, count: int, rng: np.random.Generator) -> Examples:
        """``count`` new pairs of ``label`` (see the module docstring)."""
        if count <= 0:
            return self.train.select(np.empty(0, dtype=np.int64))
        templates = self.templates(label)
        if templates.size == 0:
            raise ValueError(f"no training pair of label {label} has a replaceable mention: cannot augment")
        rounds = -(-count // templates.size)
        order = np.concatenate([rng.permutation(templates) for _ in range(rounds)])[:count]
        # One uniform draw per mention occurrence, drawn up front (vectorised); mapped to a lexicon index below.
        n_occ = np.fromiter((len(self.mentions_a[i]) + len(self.mentions_b[i]) for i in order), dtype=np.int64,
                            count=count)
        draws = rng.random(int(n_occ.sum()))
        offsets = np.concatenate([[0], np.cumsum(n_occ)])
        entries = self.lexicon.entries
        index = {k: {s: j for j, s in enumerate(v)} for k, v in entries.items()}
        ids, text_a, text_b = [], [], []
        for n, i in enumerate(order):
            a, b = self.train.text_a[i], self.train.text_b[i]
            u = draws[offsets[n]:offsets[n + 1]]
            mapping: dict[tuple[str, str], str] = {}
            k = 0
            for text, spans in ((a, self.mentions_a[i]), (b, self.mentions_b[i])):
                for s, e, kind in spans:
                    key = (kind, text[s:e])
                    pool = entries.get(kind, ())
                    if key not in mapping and len(pool) >= 2:
                        own = index[kind].get(key[1])
                        if own is None:  # the mention is below min_count: any entry differs from it
                            mapping[key] = pool[int(u[k] * len(pool))]
                        else:  # a different entry: draw among len-1 and skip the mention's own slot
                            j = int(u[k] * (len(pool) - 1))
                            mapping[key] = pool[j + (j >= own)]
                    k += 1
            ids.append(f"aug{label}-{n}-of-{self.train.ids[i]}")
            text_a.append(_substitute(a, self.mentions_a[i], mapping))
            text_b.append(_substitute(b, self.mentions_b[i], mapping))
        return Examples(ids, text_a, text_b, np.full(count, label, dtype=np.int64), source=self.train.source)


def _substitute(text: str, spans: list[tuple[int, int, str]], mapping: dict[tuple[str, str], str]) -> str:
    pieces, last = [], 0
    for s, e, kind in spans:
        pieces.append(text[last:s])
        pieces.append(mapping.get((kind, text[s:e]), text[s:e]))
        last = e
    pieces.append(text[last:])
    return "".join(pieces)


def _count_duplicates(a: list[str], b: list[str]) -> int:
    return len(a) - len(set(zip(a, b)))


def make_variant(train: Examples, variant: str, seed: int = 0, min_count: int = 2,
                 augmenter: Augmenter | None = None) -> tuple[Examples, VariantReport]:
    """The ``variant`` of ``train`` (see the module docstring) and its report. Deterministic for ``seed``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown QQP variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    start = time.perf_counter()
    labels = train.label
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if pos.size + neg.size != len(train):
        raise ValueError("QQP variants need binary labels 0/1")
    gap = max(neg.size - pos.size, 0)
    rng = np.random.default_rng(seed)
    report = VariantReport(variant, len(train), int(pos.size), int(neg.size))
    if variant == "original":
        out = train
    elif variant == "minus_negative" or variant == "plus_both":
        keep_neg = np.sort(rng.choice(neg, size=min(pos.size, neg.size), replace=False))
        out = train.select(np.sort(np.concatenate([pos, keep_neg])))
        report.removed_negative = int(neg.size - keep_neg.size)
    else:
        out = train
    if variant in ("plus_positive", "plus_negative", "plus_both"):
        augmenter = augmenter or Augmenter(train, min_count)
        report.templates_positive = int(augmenter.templates(1).size)
        report.templates_negative = int(augmenter.templates(0).size)
        parts = [out]
        if variant in ("plus_positive", "plus_both"):
            parts.append(augmenter.generate(1, gap, rng))
            report.added_positive = gap
        if variant in ("plus_negative", "plus_both"):
            parts.append(augmenter.generate(0, gap, rng))
            report.added_negative = gap
        new = Examples.concat(parts[1:])
        report.duplicate_pairs = _count_duplicates(out.text_a + new.text_a, out.text_b + new.text_b) - \
            _count_duplicates(out.text_a, out.text_b)
        out = Examples.concat(parts, source=train.source)
    report.size = len(out)
    report.positives = int((out.label == 1).sum())
    report.negatives = int((out.label == 0).sum())
    report.seconds = time.perf_counter() - start
    log.info("%s", report)
    return out, report


def main(argv: list[str] | None = None) -> int:
    """Print the achieved size and label share of every variant of a QQP ``train.tsv``."""
    from dicenlp.data.glue import QQP, read_tsv

    parser = argparse.ArgumentParser(description="QQP training-set variants of Table 8: sizes and ratios")
    parser.add_argument("train_tsv", help="GLUE QQP train.tsv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--examples", type=int, default=3, help="print this many generated pairs per variant")
    args = parser.parse_args(argv)
    train = read_tsv(args.train_tsv, QQP)
    t0 = time.perf_counter()
    augmenter = Augmenter(train, args.min_count)
    print(f"mentions + lexicon: {time.perf_counter() - t0:.1f} s; lexicon sizes {augmenter.lexicon.sizes()}")
    for variant in VARIANTS:
        out, report = make_variant(train, variant, args.seed, args.min_count, augmenter)
        print(f"{report}  [{report.seconds:.1f} s]")
        for i in range(max(0, len(out) - (report.added_positive + report.added_negative)),
                       min(len(out), len(out) - (report.added_positive + report.added_negative) + args.examples)):
            print(f"    {out.label[i]} | {out.text_a[i]} | {out.text_b[i]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
