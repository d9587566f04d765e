"""SQuAD EM and F1, rule for rule as the official evaluation scripts v1.1 and v2.0 compute them.

Both scripts (``evaluate-v1.1.py``, ``evaluate-v2.0.py`` from rajpurkar.github.io/SQuAD-explorer) score one
question as the **maximum over its gold answers** of

* EM: ``normalize_answer(pred) == normalize_answer(gold)``;
* F1: bag-of-tokens F1 between ``normalize_answer(pred).split()`` and ``normalize_answer(gold).split()``,

where ``normalize_answer`` lower-cases, removes ``string.punctuation``, removes the articles a/an/the (as whole
words) and collapses white space, in that order. Corpus scores are 100 x the mean over questions.

The two scripts differ in exactly these places (kept here, selected by ``version``):

* v1.1: F1 is 0 whenever no token is shared, also when both sides normalise to nothing; a question without a
  prediction scores 0 ("Unanswered question ... will receive score 0").
* v2.0: gold answers that normalise to "" are dropped, and a question with none left (unanswerable) has the gold
  answer "" (so the prediction "" is the only right answer); F1 is 1 if both sides are empty and 0 if exactly one
  is; a prediction is required for every question (the script would crash); optional no-answer scores
  (``na_probs``: any score where higher means "more likely unanswerable", e.g. ``null_odds.json``) turn a
  prediction into "" above ``na_prob_thresh`` (default 1.0) and give ``best_exact``/``best_f1``, the scores at the
  best threshold, with ``*_thresh``; HasAns/NoAns breakdowns.

Gold data is given as the flat examples of :mod:`dicenlp.data.squad` (``id``, ``answers["text"]``) or as the
official ``{"data": [...]}`` JSON object (``examples_from_squad_json``).
"""

from __future__ import annotations

import collections
import re
import string
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra white space (official order: lower, punctuation,
    articles, white space)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> int:
    """1 if the normalised strings are equal (both versions)."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_v1(prediction: str, gold: str) -> float:
    """Token F1 of ``evaluate-v1.1.py``: 0 when no normalised token is shared (also when both are empty)."""
    return _token_f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def _token_f1(pred_toks: list[str], gold_toks: list[str]) -> float:
    """Harmonic mean of token precision and recall over the multiset of shared tokens (0 if none is shared)."""
    num_same = sum((collections.Counter(pred_toks) & collections.Counter(gold_toks)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def f1_v2(prediction: str, gold: str) -> float:
    """Token F1 of ``evaluate-v2.0.py``: if either side is empty, 1 when both are, else 0."""
    pred_toks = normalize_answer(prediction).split() if prediction else []
    gold_toks = normalize_answer(gold).split() if gold else []
    if not pred_toks or not gold_toks:
        return float(pred_toks == gold_toks)
    return _token_f1(pred_toks, gold_toks)


def examples_from_squad_json(obj: Mapping) -> list[dict]:
    """``[{"id", "answers": {"text": [...]}}]`` from an official SQuAD JSON object (``{"data": [...]}``)."""
    return [{"id": qa["id"], "answers": {"text": [a["text"] for a in qa["answers"]]}}
            for article in obj["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


def gold_texts(example: Mapping) -> list[str]:
    answers = example["answers"]
    return list(answers["text"]) if isinstance(answers, Mapping) else [a["text"] for a in answers]


def mean_scores(examples: Iterable[Mapping], predictions: Mapping[str, Any],
                score: Callable[[Any, list[str], str], tuple[float, float]]) -> dict[str, float]:
    """The official scripts' averaging: ``score(prediction, gold_texts, id) -> (em, f1)`` per question, in %;
    questions without a prediction score 0 and count in ``total`` (reported as ``missing``)."""
    em_sum = f1_sum = 0.0
    total = missing = 0
    for example in examples:
        total += 1
        if example["id"] not in predictions:
            missing += 1
            continue
        em, f1 = score(predictions[example["id"]], gold_texts(example), example["id"])
        em_sum += em
        f1_sum += f1
    if total == 0:
        raise ValueError("no questions to evaluate")
    return {"exact_match": 100.0 * em_sum / total, "f1": 100.0 * f1_sum / total, "total": total,
            "missing": missing}


def squad_v1_evaluate(examples: Iterable[Mapping], predictions: Mapping[str, str]) -> dict[str, float]:
    """``evaluate-v1.1.py``: ``{"exact_match", "f1", "total", "missing"}`` (percentages; missing questions
    score 0 and count in ``total``)."""

    def score(prediction: str, golds: list[str], qid: str) -> tuple[float, float]:
        if not golds:
            raise ValueError(f"question {qid!r} has no gold answer: SQuAD v1.1 scoring needs one "
                             "(use squad_v2_evaluate for data with unanswerable questions)")
        return max(exact_match(prediction, g) for g in golds), max(f1_v1(prediction, g) for g in golds)

    return mean_scores(examples, predictions, score)


def squad_v2_raw_scores(examples: Sequence[Mapping], predictions: Mapping[str, str]
                        ) -> tuple[dict[str, int], dict[str, float], dict[str, bool]]:
    """Per-question ``(exact, f1, has_ans)`` of ``evaluate-v2.0.py`` (``get_raw_scores`` and
    ``make_qid_to_has_ans``): gold answers normalising to "" are dropped; unanswerable gold is ``[""]``."""
    missing = [ex["id"] for ex in examples if ex["id"] not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} question(s) have no prediction (first: {missing[:3]}); SQuAD v2.0 "
                         "scoring needs one per question ('' = no answer)")
    exact, f1, has_ans = {}, {}, {}
    for ex in examples:
        qid = ex["id"]
        texts = gold_texts(ex)
        has_ans[qid] = bool(texts)
        golds = [t for t in texts if normalize_answer(t)] or [""]
        prediction = predictions[qid]
        exact[qid] = max(exact_match(prediction, g) for g in golds)
        f1[qid] = max(f1_v2(prediction, g) for g in golds)
    return exact, f1, has_ans


def best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float], na_probs: Mapping[str, float],
                   has_ans: Mapping[str, bool]) -> tuple[float, float]:
    """``find_best_thresh`` of ``evaluate-v2.0.py``, vectorised: ``(best score in %, threshold)``.

    Questions are visited in increasing ``na_probs`` (stable order of ``na_probs``' keys); predicting an answer
    for all questions up to and including the k-th changes the all-abstain score (number of unanswerable
    questions) by ``score`` for answerable ones and by -1 (non-empty prediction) or 0 for unanswerable ones. The
    best prefix wins; ties keep the earliest (strictly-greater rule), and no improvement gives threshold 0.0.
    """
    qids = [q for q in na_probs if q in scores]
    if not scores:
        raise ValueError("no scores to threshold")
    if not qids:
        return 100.0 * sum(not v for v in has_ans.values()) / len(scores), 0.0
    probs = np.array([na_probs[q] for q in qids], dtype=np.float64)
    order = np.argsort(probs, kind="stable")
    diffs = np.array([scores[q] if has_ans[q] else (-1.0 if predictions[q] else 0.0) for q in qids],
                     dtype=np.float64)[order]
    start = float(sum(not v for v in has_ans.values()))
    cumulative = start + np.cumsum(diffs)
    k = int(np.argmax(cumulative))
    if cumulative[k] > start:
        return 100.0 * float(cumulative[k]) / len(scores), float(probs[order][k])
    return 100.0 * start / len(scores), 0.0


def choose_null_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                          na_probs: Mapping[str, float], has_ans: Mapping[str, bool]) -> tuple[float, float]:
    """The threshold to *apply* (answer "" iff ``na_probs > threshold``): ``(score in %, threshold)``.

    The same search as ``best_threshold`` (the official ``find_best_thresh``), made exact for applying it:
    a cut only falls after the last of several questions with equal ``na_probs`` (all of them are answered at
    that threshold), and when answering never beats abstaining everywhere the threshold lies below every
    score (all ""), where the official script reports 0.0, which is meaningless for unbounded scores such as
    ``null_odds``. Applying the returned threshold reproduces the returned score exactly.
    """
    qids = [q for q in na_probs if q in scores]
    if not qids:
        raise ValueError("no questions with both a score and a no-answer score")
    probs = np.array([na_probs[q] for q in qids], dtype=np.float64)
    order = np.argsort(probs, kind="stable")
    probs = probs[order]
    diffs = np.array([scores[q] if has_ans[q] else (-1.0 if predictions[q] else 0.0) for q in qids],
                     dtype=np.float64)[order]
    start = float(sum(not has_ans[q] for q in qids))
    cumulative = start + np.cumsum(diffs)
    group_end = np.append(probs[1:] != probs[:-1], True)  # a cut may only fall after a tie group
    candidates = np.where(group_end, cumulative, -np.inf)
    k = int(np.argmax(candidates))
    if candidates[k] > start:
        return 100.0 * float(candidates[k]) / len(qids), float(probs[k])
    return 100.0 * start / len(qids), float(probs[0]) - 1.0


def squad_v2_evaluate(examples: Sequence[Mapping], predictions: Mapping[str, str],
                      na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0
                      ) -> dict[str, float]:
    """``evaluate-v2.0.py``: ``exact``, ``f1``, ``total``, ``HasAns_*``, ``NoAns_*`` and, with ``na_probs``,
    ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh`` (percentages)."""
    exact_raw, f1_raw, has_ans = squad_v2_raw_scores(examples, predictions)
    probs = na_probs if na_probs is not None else {q: 0.0 for q in predictions}
    missing_probs = [q for q in exact_raw if q not in probs]
    if missing_probs:
        raise ValueError(f"{len(missing_probs)} question(s) have no no-answer score (first: {missing_probs[:3]})")

    def thresholded(scores: Mapping[str, float]) -> dict[str, float]:
        return {q: (float(not has_ans[q]) if probs[q] > na_prob_thresh else s) for q, s in scores.items()}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    out: dict[str, float] = {}

    def add(prefix: str, qids: list[str]) -> None:
        if not qids:
            return
        out[f"{prefix}exact"] = 100.0 * sum(exact[q] for q in qids) / len(qids)
        out[f"{prefix}f1"] = 100.0 * sum(f1[q] for q in qids) / len(qids)
        out[f"{prefix}total"] = len(qids)

    add("", list(exact))
    add("HasAns_", [q for q in exact if has_ans[q]])
    add("NoAns_", [q for q in exact if not has_ans[q]])
    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = best_threshold(predictions, exact_raw, probs, has_ans)
        out["best_f1"], out["best_f1_thresh"] = best_threshold(predictions, f1_raw, probs, has_ans)
    return out
