"""QuoRef EM and F1 as its official evaluation computes them (``quoref_eval.py`` of allennlp-reading-comprehension,
which scores with DROP's ``drop_eval.get_metrics``).

A QuoRef answer is a *set of spans* (about 10% of the questions have several, e.g. "the names of the two
artists"); the gold answer of a question is the list of all its ``answers[*].text``. A prediction is a string
(one span, what an extractive QA model outputs) or a list of strings.

* Normalisation, per token of ``re.split(" |-", text)``: lower case; remove ``string.punctuation`` unless the
  token is a number; numbers become ``str(float(token))`` ("1,000" is not a number, "911" becomes "911.0");
  remove a/an/the; collapse white space. Empty tokens are dropped.
* EM: 1 iff the sets of normalised spans are equal and the span counts match.
* F1: every span is a bag (set) of tokens; predicted and gold bags are aligned one-to-one to maximise the
  summed bag F1 (a bag pair scores 0 when the gold bag has numbers and the predicted bag shares none of them);
  F1 = mean over max(#gold, #predicted) slots, rounded to 2 decimals per question.
* Corpus scores: 100 x the mean over questions; a missing prediction scores 0.

For one predicted span (always, here) against k gold spans this gives F1 = best bag F1 / k: a single span cannot
fully answer a multi-span question, exactly as in the QuoRef paper's BERT/XLNet baselines that Table 6 copies.
"""

from __future__ import annotations

import itertools
import re
import string
from typing import Iterable, Mapping, Sequence

import numpy as np

from dicenlp.metrics.squad import mean_scores

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCTUATION)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize_answer(text: str) -> str:
    """DROP/QuoRef normalisation of one span (see module docstring)."""
    parts = [_normalize_token(tok) for tok in re.split(" |-", text)]
    return " ".join(p for p in parts if p.strip()).strip()


def _bags(answer: str | Sequence[str]) -> tuple[list[str], list[set[str]]]:
    spans = [answer] if isinstance(answer, str) else list(answer)
    normalized = [normalize_answer(s) for s in spans]
    return normalized, [set(n.split()) for n in normalized]


def _bag_f1(predicted: set[str], gold: set[str]) -> float:
    common = len(gold & predicted)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(gold) if gold else 1.0
    return 0.0 if precision == 0.0 and recall == 0.0 else 2 * precision * recall / (precision + recall)


def _numbers_match(gold: set[str], predicted: set[str]) -> bool:
    gold_numbers = {w for w in gold if _is_number(w)}
    return not gold_numbers or bool(gold_numbers & {w for w in predicted if _is_number(w)})


def _aligned_scores(scores: np.ndarray) -> np.ndarray:
    """Per gold span (row), its score under the best one-to-one assignment of gold to predicted spans (0 when
    unassigned), padded with zeros to max(#gold, #predicted): ``drop_eval._align_bags``. Bags are small (a
    handful of spans), so the assignment is found by enumeration; scipy only for unusually large ones."""
    n_gold, n_pred = scores.shape
    out = np.zeros(max(n_gold, n_pred))
    if n_gold == 0 or n_pred == 0:
        return out
    if min(n_gold, n_pred) == 1 or max(n_gold, n_pred) <= 8:
        best, best_pairs = -1.0, []
        if n_gold <= n_pred:
            candidates = (list(zip(range(n_gold), perm)) for perm in itertools.permutations(range(n_pred), n_gold))
        else:
            candidates = (list(zip(perm, range(n_pred))) for perm in itertools.permutations(range(n_gold), n_pred))
        for pairs in candidates:
            total = sum(scores[g, q] for g, q in pairs)
            if total > best:
                best, best_pairs = total, pairs
    else:  # pragma: no cover - not seen in QuoRef
        from scipy.optimize import linear_sum_assignment

        best_pairs = list(zip(*linear_sum_assignment(-scores)))
    for g, q in best_pairs:
        out[g] = max(out[g], scores[g, q])
    return out


def quoref_em_f1(prediction: str | Sequence[str], gold: Sequence[str]) -> tuple[float, float]:
    """``(EM, F1)`` of one question, both in [0, 1] (F1 rounded to 2 decimals, as ``drop_eval.get_metrics``)."""
    pred_spans, pred_bags = _bags(prediction)
    gold_spans, gold_bags = _bags(gold)
    em = float(set(pred_spans) == set(gold_spans) and len(pred_spans) == len(gold_spans))
    scores = np.array([[_bag_f1(p, g) if _numbers_match(g, p) else 0.0 for p in pred_bags] for g in gold_bags],
                      dtype=np.float64).reshape(len(gold_bags), len(pred_bags))
    aligned = _aligned_scores(scores)
    # numpy rounding of the numpy mean, as the official round(np.mean(...), 2) (0.475 → 0.48, not 0.47)
    f1 = float(np.round(np.mean(aligned), 2)) if aligned.size else 0.0
    return em, f1


def quoref_evaluate(examples: Iterable[Mapping], predictions: Mapping[str, str | Sequence[str]]) -> dict[str, float]:
    """``{"exact_match", "f1", "total", "missing"}`` in % over the examples (``id``, ``answers["text"]``)."""
    return mean_scores(examples, predictions, lambda prediction, golds, qid: quoref_em_f1(prediction, golds))
