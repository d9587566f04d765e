"""Flat decoding of scored NER spans: the best set of non-overlapping spans per sentence.

BERT-MRC asks one query per entity type, so its raw output (every span whose start, end and span-match
decisions pass their thresholds) may nest and overlap, within a type and across types. That is right for
nested data (ACE, GENIA) and wrong for flat data (CoNLL-03, OntoNotes 5, MSRA, OntoNotes 4), where a word
belongs to at most one entity: of two overlapping spans at least one is a false positive.

**The rule** (``flat_select``), per sentence, over the candidate spans of *all* entity types: keep the set of
pairwise non-overlapping candidates with the **largest total probability** ``Σ p`` (``MrcNerTask`` gives each
span ``p = p_start · p_end · p_match``, the probability of the three decisions that made it), i.e. the flat
reading with the most expected correct entities. Solved exactly by weighted interval scheduling (dynamic
programming over the candidates sorted by end). Unlike greedy selection by score, one long span cannot push
out two shorter ones that are jointly more probable ("China … Uzbekistan" spanning two entities, issue 16).

Ties (equal totals) are broken deterministically: candidates are visited by end, then start descending, then
``tiebreak`` (the type's order), and a later candidate replaces the earlier choice only when it is strictly
better, so the earlier-ending, then the shorter, then the first-typed span is kept.

``overlap_mask`` flags spans that overlap another one of the same sentence, vectorised over a corpus (gold
checks, overlap statistics). docs/ner.md compares the rule with the official BERT-MRC flat decoder.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np


def flat_select(sentence: np.ndarray, start: np.ndarray, end: np.ndarray, log_p: np.ndarray,
                tiebreak: np.ndarray | None = None) -> np.ndarray:
    """The non-overlapping spans of largest total probability, per sentence.

    Args:
        sentence, start, end: ``[N]`` int arrays; spans are ``[start, end]`` (end inclusive) in ``sentence``.
        log_p: ``[N]`` float, the natural log of each span's probability (``<= 0``; the weights are ``exp``).
        tiebreak: ``[N]`` int, the last tie-breaker (e.g. the type index); default 0.

    Returns:
        ``[N]`` bool: ``True`` for the kept spans. Spans that only touch (``[0, 2]``, ``[3, 5]``) do not overlap.

    Weighted interval scheduling: with the candidates of a sentence sorted by end,
    ``best[n] = max(best[n - 1], best[q(n)] + p_n)`` where ``q(n)`` counts the candidates ending before
    candidate ``n`` starts. A Python loop over the *candidates* (a few per sentence), never over tokens.
    """
    sentence, start, end = (np.asarray(a, np.int64) for a in (sentence, start, end))
    log_p = np.asarray(log_p, np.float64)
    tiebreak = np.zeros_like(sentence) if tiebreak is None else np.asarray(tiebreak, np.int64)
    if np.isnan(log_p).any():
        raise ValueError("span scores must not be NaN")
    order = np.lexsort((-log_p, tiebreak, -start, end, sentence))  # the last key is the primary one
    keep = np.zeros(len(order), bool)
    bounds = np.flatnonzero(np.diff(sentence[order])) + 1
    for group in np.split(order, bounds) if len(order) else []:
        starts, ends = start[group].tolist(), end[group].tolist()
        weights = np.exp(log_p[group]).tolist()
        best, take = [0.0], []
        for n, (a, w) in enumerate(zip(starts, weights)):
            with_n = best[bisect_left(ends, a, 0, n)] + w
            take.append(with_n > best[n])
            best.append(with_n if take[n] else best[n])
        n = len(group)
        while n:  # trace the optimal set back from the last candidate
            if take[n - 1]:
                keep[group[n - 1]] = True
                n = bisect_left(ends, starts[n - 1], 0, n - 1)
            else:
                n -= 1
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
