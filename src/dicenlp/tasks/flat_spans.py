"""Flat decoding of scored NER spans: keep a set of non-overlapping spans per sentence.

BERT-MRC asks one query per entity type, so its raw output (every span whose start, end and span-match
decisions pass their thresholds) may nest and overlap, within a type and across types. That is right for
nested data (ACE, GENIA) and wrong for flat data (CoNLL-03, OntoNotes 5, MSRA, OntoNotes 4), where a word
belongs to at most one entity: every overlapping span is at least one certain false positive.

**The rule** (``flat_select``), per sentence, over the candidate spans of *all* entity types:

1. rank the candidates by ``score`` descending (``MrcNerTask`` uses
   ``log(p_start · p_end · p_match)``, the log-probability of the three decisions that made the span);
   ties by earlier start, then earlier end (the shorter span), then the type's order in the task's queries;
2. walk down the ranking and keep a span unless it shares a unit (word/character) with a span kept before.

This is the greedy rule of span-based flat NER decoders (e.g. Yu et al. 2020, biaffine NER); the official
BERT-MRC flat decoder differs (docs/ner.md, "Flat decoding"). ``overlap_mask`` flags spans that overlap
another one of the same sentence, vectorised over a corpus (gold checks, overlap statistics).
"""

from __future__ import annotations

import numpy as np


def flat_select(sentence: np.ndarray, start: np.ndarray, end: np.ndarray, score: np.ndarray,
                tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Greedy non-overlapping selection by descending ``score`` within each sentence.

    Args:
        sentence, start, end: ``[N]`` int arrays; spans are ``[start, end]`` (end inclusive) in ``sentence``.
        score: ``[N]`` float; higher is better.
        tiebreak: ``[N]`` int, the last tie-breaker (e.g. the type index); default 0.

    Returns:
        ``[N]`` bool: ``True`` for the kept spans. Deterministic: the order is (score ↓, start ↑, end ↑,
        tiebreak ↑), so equal scores keep the earlier, then the shorter span.

    A Python loop over the *candidates* (a few per sentence), not over tokens: about 5 µs per candidate.
    """
    sentence, start, end = (np.asarray(a, np.int64) for a in (sentence, start, end))
    score = np.asarray(score, np.float64)
    tiebreak = np.zeros_like(sentence) if tiebreak is None else np.asarray(tiebreak, np.int64)
    if np.isnan(score).any():
        raise ValueError("span scores must not be NaN")
    order = np.lexsort((tiebreak, end, start, -score, sentence))  # last key = primary
    keep = np.zeros(len(order), bool)
    current, kept = None, []
    for k, s, a, b in zip(order.tolist(), sentence[order].tolist(), start[order].tolist(), end[order].tolist()):
        if s != current:
            current, kept = s, []
        if all(b < ka or kb < a for ka, kb in kept):
            kept.append((a, b))
            keep[k] = True
    return keep


def overlap_mask(sentence: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``[N]`` bool: span ``k`` shares at least one unit with another span of its sentence.

    Sorted by (sentence, start, end), span ``k`` overlaps an *earlier* span iff its start is at most the
    running maximum of the earlier ends, and a *later* span iff the next span starts at or before its end.
    Sentences are kept apart by offsetting every position by ``sentence · (max position + 2)``.
    Identical duplicates count as overlapping each other.
    """
    sentence, start, end = (np.asarray(a, np.int64) for a in (sentence, start, end))
    n = len(sentence)
    out = np.zeros(n, bool)
    if n < 2:
        return out
    order = np.lexsort((end, start, sentence))
    stride = int(max(start.max(), end.max())) + 2
    a = start[order] + sentence[order] * stride
    b = end[order] + sentence[order] * stride
    running_end = np.maximum.accumulate(b)
    with_earlier = np.zeros(n, bool)
    with_earlier[1:] = a[1:] <= running_end[:-1]
    with_later = np.zeros(n, bool)
    with_later[:-1] = a[1:] <= b[:-1]
    out[order] = with_earlier | with_later
    return out


__all__ = ["flat_select", "overlap_mask"]
