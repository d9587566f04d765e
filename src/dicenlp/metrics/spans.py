"""Span-level micro precision / recall / F1 (PAPER.md §3.1, §3.2: "span-level micro-averaged P, R, F1").

Spans are any hashable tuples that identify one mention, e.g. ``(sentence_id, type, start, end)``. Gold and
predictions are compared as **sets**: a prediction is a true positive iff the identical tuple is gold.

    P = TP / (TP + FP),   R = TP / (TP + FN),   F1 = 2PR / (P + R)        (percentages, 0–100)

with the conventions of conlleval/seqeval for empty sets: P = 0 when nothing is predicted, R = 0 when
nothing is gold, F1 = 0 when P + R = 0. Micro averaging sums TP/FP/FN over all types first.
The per-type table uses the same formulas per type (``type_of(span)``, by default ``span[1]``).

Duplicate tuples in one input count once (a mention is a set element): readers must give each gold
mention a distinct identity (sentence, type, start, end), which also means repeated mentions of the same
string in one sentence are distinct gold entities (unlike the official MRC-NER code, OFFICIAL_CODE.md §5).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable


@dataclass(frozen=True)
class PRF:
    """Counts and percentages of one row of a span-F1 table."""

    tp: int
    fp: int
    fn: int

    @property
    def n_pred(self) -> int:
        return self.tp + self.fp

    @property
    def n_gold(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return 100.0 * self.tp / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return 100.0 * self.tp / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "support": self.n_gold}


@dataclass(frozen=True)
class SpanScores:
    """Micro scores (``micro``) and the per-type table (``per_type``, sorted by type name)."""

    micro: PRF
    per_type: dict[str, PRF] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.micro.precision

    @property
    def recall(self) -> float:
        return self.micro.recall

    @property
    def f1(self) -> float:
        return self.micro.f1

    def metrics(self, per_type: bool = True) -> dict[str, float]:
        """Flat metrics dict: ``precision``, ``recall``, ``f1`` (micro, %) and, with ``per_type``,
        ``f1_<TYPE>`` etc. for each type."""
        out = {"precision": self.precision, "recall": self.recall, "f1": self.f1}
        if per_type:
            for typ, row in self.per_type.items():
                out.update({f"precision_{typ}": row.precision, f"recall_{typ}": row.recall, f"f1_{typ}": row.f1})
        return out

    def table(self) -> str:
        """A plain-text table in the style of conlleval / seqeval's ``classification_report``."""
        rows = [("type", "precision", "recall", "f1", "support")]
        for typ, r in self.per_type.items():
            rows.append((typ, f"{r.precision:.2f}", f"{r.recall:.2f}", f"{r.f1:.2f}", str(r.n_gold)))
        m = self.micro
        rows.append(("micro", f"{m.precision:.2f}", f"{m.recall:.2f}", f"{m.f1:.2f}", str(m.n_gold)))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                         for row in rows)


def _default_type(span) -> str:
    return str(span[1])


def span_scores(predicted: Iterable[Hashable], gold: Iterable[Hashable],
                type_of: Callable[[Hashable], str] | None = _default_type) -> SpanScores:
    """Micro P/R/F1 of ``predicted`` against ``gold`` (sets of span tuples) plus a per-type table.

    Args:
        predicted, gold: iterables of hashable span tuples, e.g. ``(sentence_id, type, start, end)``.
        type_of: span → type name for the per-type table (default ``span[1]``); ``None`` skips the table.
    """
    pred_set, gold_set = set(predicted), set(gold)
    tp_set = pred_set & gold_set
    micro = PRF(tp=len(tp_set), fp=len(pred_set) - len(tp_set), fn=len(gold_set) - len(tp_set))
    per_type: dict[str, PRF] = {}
    if type_of is not None:
        tp_c = Counter(type_of(s) for s in tp_set)
        pred_c = Counter(type_of(s) for s in pred_set)
        gold_c = Counter(type_of(s) for s in gold_set)
        for typ in sorted(set(pred_c) | set(gold_c)):
            per_type[typ] = PRF(tp=tp_c[typ], fp=pred_c[typ] - tp_c[typ], fn=gold_c[typ] - tp_c[typ])
    return SpanScores(micro=micro, per_type=per_type)


__all__ = ["PRF", "SpanScores", "span_scores"]
