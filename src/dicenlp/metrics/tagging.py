"""POS-tagging metrics: span-level micro P/R/F1 (PAPER.md §3.1, Tables 3 and 4) plus token accuracy.

The paper reports "span-level micro-averaged precision, recall and F1" for POS, not token accuracy.

* **Word-level POS** (English WSJ, Tweets, UD with given words): every word is a span of length one,
  ``(sentence, tag, i, i)``. A word with no prediction (cut by truncation, or no sub-token at all) is a
  false negative; so P can exceed R, and when every word has a prediction P = R = F1 = accuracy.
* **Character-level joint segmentation + POS** (CTB5, CTB6, Chinese UD): gold spans are the words,
  ``(sentence, tag, first_char, last_char)``; predicted spans are decoded from the predicted BIES tags with
  conlleval's rules (``dicenlp.data.schemes``). A predicted word counts only if both boundaries and the tag
  are right. A character without a prediction decodes as ``O`` (it belongs to no predicted word).

    P = |pred ∩ gold| / |pred|,  R = |pred ∩ gold| / |gold|,  F1 = 2PR / (P + R)     (percentages)

Token accuracy is the share of units (words, or characters for the char-level tasks) whose predicted tag
(BIES tag for characters) equals the gold tag; units without a prediction count as errors.
The micro P/R/F1 itself is ``dicenlp.metrics.spans.span_scores``.
"""

from __future__ import annotations

from typing import Sequence

from dicenlp.data.schemes import Span, batch_tags_to_spans
from dicenlp.metrics.spans import span_scores

#: Unit-level schemes: ``"word"`` (one span per word) or ``"bies"`` (character BIES tags → word spans).
SCHEMES = ("word", "bies")


def word_spans(tags: Sequence[str | None]) -> list[Span]:
    """Word-level spans ``(i, i, tag)``; ``None`` (no prediction) yields no span."""
    return [(i, i, t) for i, t in enumerate(tags) if t is not None]


def decode_spans(tag_seqs: Sequence[Sequence[str | None]], scheme: str) -> list[list[Span]]:
    """Spans ``(start, end_inclusive, tag)`` of every sentence, for either unit scheme."""
    if scheme == "word":
        return [word_spans(tags) for tags in tag_seqs]
    if scheme == "bies":
        return batch_tags_to_spans([["O" if t is None else t for t in tags] for tags in tag_seqs], "BIES")
    raise ValueError(f"unknown tagging scheme {scheme!r}; expected one of {SCHEMES}")


def tagging_metrics(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str | None]],
                    scheme: str = "word", gold_spans: Sequence[Sequence[Span]] | None = None) -> dict[str, float]:
    """Span-level micro P/R/F1 and token accuracy over a corpus (all values in percent).

    Args:
        gold_tags: gold unit tags per sentence (word tags, or BIES character tags).
        pred_tags: predicted unit tags per sentence, same lengths; ``None`` marks a unit without a prediction.
        scheme: ``"word"`` or ``"bies"``.
        gold_spans: the gold spans per sentence when they are known directly (e.g. the words of a Chinese
            corpus); by default they are decoded from ``gold_tags``.

    Returns:
        ``{"precision", "recall", "f1", "accuracy", "n_gold", "n_pred", "n_correct", "n_units"}``.
    """
    if len(gold_tags) != len(pred_tags):
        raise ValueError(f"{len(gold_tags)} gold sentences but {len(pred_tags)} predicted")
    for i, (g, p) in enumerate(zip(gold_tags, pred_tags)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    if gold_spans is None:
        gold_spans = decode_spans(gold_tags, scheme)
    pred_spans = decode_spans(pred_tags, scheme)
    gold = [(s, t, a, b) for s, spans in enumerate(gold_spans) for a, b, t in spans]
    pred = [(s, t, a, b) for s, spans in enumerate(pred_spans) for a, b, t in spans]
    scores = span_scores(pred, gold, type_of=None).micro
    n_units = sum(len(g) for g in gold_tags)
    n_right = sum(gt == pt for g, p in zip(gold_tags, pred_tags) for gt, pt in zip(g, p))
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1,
            "accuracy": 100.0 * n_right / n_units if n_units else 0.0,
            "n_gold": float(scores.n_gold), "n_pred": float(scores.n_pred), "n_correct": float(scores.tp),
            "n_units": float(n_units)}


__all__ = ["SCHEMES", "decode_spans", "tagging_metrics", "word_spans"]
