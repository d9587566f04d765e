"""From per-token start/end scores to answer texts: n-best span search, null answers, official output files.

Pure numpy, no model and no tokenizer: tested on hand-made scores (tests/test_qa_postprocess.py).

Scores. A span (i, j) of one feature scores ``start_scores[i] + end_scores[j]``; the null answer of a feature
scores ``start_scores[c] + end_scores[c]`` at its null position ``c`` (``cls_index``: 0 for BERT, the last token
for XLNet). What a "score" is depends on the loss (``dicenlp.tasks.qa``):

* ``ce`` (softmax over positions): the raw logits, the Hugging Face / Google BERT convention (a per-feature
  constant separates them from log-softmax values);
* per-token binary losses (``fl``, ``dl``, ``tl``, ``dsc``, ``wce``): ``log σ(z)``, the log-probability that the
  token is a start (end), so a span scores ``log p_start(i) + log p_end(j)``, the joint log-probability of two
  independent decisions. (The official code ranked by ``p_start + p_end``, a sum of probabilities.)

Search, vectorised over all features at once: the ``k = n_best_size`` best context starts and the k best
context ends of every feature (``argpartition``), the k x k score matrix, invalid cells (end before start, longer
than ``max_answer_length`` tokens) set to -inf, the ``n_best_size`` best cells per feature. Only the merge of
the few candidates of an example's windows is a Python loop (per example, not per position).

Null answers (SQuAD 2.0): ``null_odds = min over the example's features of the null score - best span score``
(Google BERT's ``score_null - best_non_null``); the answer is "" when ``null_odds > threshold``.
``dicenlp.metrics.squad.best_threshold`` chooses the threshold on dev as ``evaluate-v2.0.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: null_odds of an example without any valid span (no context token): "certainly no answer", finite for JSON.
NO_SPAN_ODDS = 1.0e6


@dataclass
class SpanCandidates:
    """Per feature, the ``n`` best spans in decreasing score; ``score == -inf`` marks an empty slot."""

    start: np.ndarray  # [N, n] token index
    end: np.ndarray  # [N, n] token index (inclusive)
    start_score: np.ndarray  # [N, n]
    end_score: np.ndarray  # [N, n]

    @property
    def score(self) -> np.ndarray:
        return self.start_score + self.end_score


@dataclass
class QAPredictions:
    """Post-processing output; dicts keyed by question id, in example order."""

    best_span: dict[str, str]  # best non-null answer text ("" if the example has no valid span)
    nbest: dict[str, list[dict]]  # nbest_predictions.json entries
    null_odds: dict[str, float] = field(default_factory=dict)  # null_odds.json (with_null only)

    def answers(self, threshold: float | None = None) -> dict[str, str]:
        """predictions.json: the best span, or "" where ``null_odds > threshold`` (``None``: never null)."""
        if threshold is None:
            return dict(self.best_span)
        return {q: ("" if self.null_odds[q] > threshold else text) for q, text in self.best_span.items()}


def span_candidates(start_scores: np.ndarray, end_scores: np.ndarray, context_mask: np.ndarray,
                    n_best_size: int = 20, max_answer_length: int = 30) -> SpanCandidates:
    """The ``n_best_size`` best spans of every feature, both ends inside the context (see module docstring).

    Args:
        start_scores, end_scores: [N, L] float.
        context_mask: [N, L] bool, True for context tokens (padding, question and specials False).
    """
    start_scores = np.asarray(start_scores, dtype=np.float64)
    end_scores = np.asarray(end_scores, dtype=np.float64)
    n_feat, length = start_scores.shape
    s = np.where(context_mask, start_scores, -np.inf)
    e = np.where(context_mask, end_scores, -np.inf)
    k = max(1, min(n_best_size, length))
    top_s = np.argpartition(-s, k - 1, axis=1)[:, :k]  # [N, k]
    top_e = np.argpartition(-e, k - 1, axis=1)[:, :k]
    s_k = np.take_along_axis(s, top_s, 1)
    e_k = np.take_along_axis(e, top_e, 1)
    span_len = top_e[:, None, :] - top_s[:, :, None] + 1  # [N, k, k]
    grid = s_k[:, :, None] + e_k[:, None, :]
    valid = (span_len >= 1) & (span_len <= max_answer_length) & np.isfinite(grid)
    grid = np.where(valid, grid, -np.inf).reshape(n_feat, k * k)
    n = min(n_best_size, k * k)
    best = np.argpartition(-grid, n - 1, axis=1)[:, :n]
    best = np.take_along_axis(best, np.argsort(-np.take_along_axis(grid, best, 1), axis=1, kind="stable"), 1)
    si, ei = best // k, best % k
    start = np.take_along_axis(top_s, si, 1)
    end = np.take_along_axis(top_e, ei, 1)
    ok = np.isfinite(np.take_along_axis(grid, best, 1))
    start_score = np.where(ok, np.take_along_axis(s_k, si, 1), -np.inf)
    end_score = np.where(ok, np.take_along_axis(e_k, ei, 1), 0.0)
    return SpanCandidates(start=start, end=end, start_score=start_score, end_score=end_score)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max()) if x.size else x
    return z / z.sum() if x.size else z


def postprocess_qa(examples: list[dict], feature_example_index: np.ndarray, offset_start: np.ndarray,
                   offset_end: np.ndarray, start_scores: np.ndarray, end_scores: np.ndarray,
                   cls_index: np.ndarray, *, n_best_size: int = 20, max_answer_length: int = 30,
                   with_null: bool = False) -> QAPredictions:
    """Answer texts for every example from the scores of its features.

    Args:
        examples: ``[{"id", "context", ...}]``; feature f belongs to ``examples[feature_example_index[f]]``.
        offset_start, offset_end: [N, L] character offsets of context tokens in the example's context,
            -1 elsewhere (question, specials, padding): they define the context mask.
        start_scores, end_scores: [N, L] (see module docstring); columns beyond a feature's length are ignored.
        cls_index: [N] null position of each feature.
        with_null: SQuAD 2.0: compute ``null_odds`` and put the null answer "" into the n-best lists.

    Returns ``QAPredictions``: ``best_span`` (never null), ``nbest`` (``[{"text", "probability",
    "start_logit", "end_logit"}]``, probabilities a softmax over the listed scores, as Google BERT writes them)
    and ``null_odds``.
    """
    offset_start = np.asarray(offset_start)
    offset_end = np.asarray(offset_end)
    start_scores, end_scores = _fit_width(start_scores, offset_start.shape[1]), _fit_width(end_scores, offset_start.shape[1])
    feature_example_index = np.asarray(feature_example_index)
    cls_index = np.asarray(cls_index)
    cands = span_candidates(start_scores, end_scores, offset_start >= 0, n_best_size, max_answer_length)
    rows = np.arange(len(cls_index))
    null_start = start_scores[rows, cls_index]  # [N] null score parts of every feature
    null_end = end_scores[rows, cls_index]

    n_feat, n_slots = cands.start.shape
    n_ex = len(examples)
    # features of each example side by side: feat_mat [E, F] (feature ids in order, -1 padding)
    counts = np.bincount(feature_example_index, minlength=n_ex) if n_feat else np.zeros(n_ex, dtype=np.int64)
    order = np.argsort(feature_example_index, kind="stable")
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    width = max(int(counts.max()) if n_ex else 0, 1)
    feat_mat = np.full((n_ex, width), -1, dtype=np.int64)
    ex_sorted = feature_example_index[order]
    feat_mat[ex_sorted, np.arange(n_feat) - first[ex_sorted]] = order
    has_feat = feat_mat >= 0
    safe = np.where(has_feat, feat_mat, 0)

    # the n best spans of every example over all its windows: [E, F * n] → top n (stable: window order on ties)
    merged = np.where(has_feat[..., None], cands.score[safe], -np.inf).reshape(n_ex, width * n_slots)
    top = np.argsort(-merged, axis=1, kind="stable")[:, :n_best_size]
    top_score = np.take_along_axis(merged, top, 1)
    f_sel = np.take_along_axis(safe, top // n_slots, 1)
    c_sel = top % n_slots
    tok_s, tok_e = cands.start[f_sel, c_sel], cands.end[f_sel, c_sel]
    char_s, char_e = offset_start[f_sel, tok_s], offset_end[f_sel, tok_e]
    logit_s, logit_e = cands.start_score[f_sel, c_sel], cands.end_score[f_sel, c_sel]
    n_valid = np.isfinite(top_score).sum(1)

    # null: the smallest null score over the example's windows (Google BERT's score_null)
    null_total = null_start + null_end
    f_null = safe[np.arange(n_ex), np.argmin(np.where(has_feat, null_total[safe], np.inf), 1)]
    best = top_score[:, 0] if top_score.shape[1] else np.full(n_ex, -np.inf)
    odds = np.where(np.isfinite(best) & has_feat[:, 0], null_total[f_null] - best, NO_SPAN_ODDS)

    # Python only from here: strings and the JSON entries (lists, no numpy scalars)
    char_s, char_e, logit_s, logit_e = char_s.tolist(), char_e.tolist(), logit_s.tolist(), logit_e.tolist()
    null_s, null_e = null_start[f_null].tolist(), null_end[f_null].tolist()
    n_valid, odds, has_any = n_valid.tolist(), odds.tolist(), has_feat[:, 0].tolist()
    best_span, nbest, null_odds = {}, {}, {}
    for i, example in enumerate(examples):
        qid, context, k = example["id"], example["context"], n_valid[i]
        entries = [(context[a:b], ls, le) for a, b, ls, le in zip(char_s[i][:k], char_e[i][:k], logit_s[i][:k],
                                                                   logit_e[i][:k])]
        best_span[qid] = entries[0][0] if entries else ""
        if with_null:
            null_odds[qid] = odds[i]
            if has_any[i]:
                null_score = null_s[i] + null_e[i]
                rank = sum(1 for e in entries if e[1] + e[2] >= null_score)  # stable: null after equal scores
                entries.insert(min(rank, n_best_size - 1), ("", null_s[i], null_e[i]))
                entries = entries[:n_best_size]
        totals = np.array([e[1] + e[2] for e in entries], dtype=np.float64)
        probs = _softmax(totals).tolist()
        nbest[qid] = [{"text": t, "probability": p, "start_logit": ls, "end_logit": le}
                      for (t, ls, le), p in zip(entries, probs)]
    return QAPredictions(best_span=best_span, nbest=nbest, null_odds=null_odds)


def _fit_width(scores: np.ndarray, width: int) -> np.ndarray:
    """Crop or pad (with -inf) [N, L'] scores to [N, width]: gathered outputs are as wide as the longest batch."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[1] >= width:
        return scores[:, :width]
    return np.pad(scores, ((0, 0), (0, width - scores.shape[1])), constant_values=-np.inf)
