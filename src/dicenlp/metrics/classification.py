"""Classification metrics: binary P/R/F1 of the positive class, accuracy, true macro-F1.

Everything is computed from one confusion matrix (``np.bincount``), so the cost is O(N) in numpy with no
Python loop over examples or classes. Values are returned as percentages (PAPER.md reports 88.92, not 0.8892).

Binary tasks (MRPC, QQP, SST-2; PAPER.md §3.4, Table 7/8): the positive class is label 1 (paraphrase /
duplicate / positive sentiment), as in the official ``cls_acc_f1.py``::

    P = TP / (TP + FP),  R = TP / (TP + FN),  F1 = 2PR / (P + R) = 2TP / (2TP + FP + FN)   (PAPER.md Eq. 4)

with 0 wherever a denominator is 0 (no predicted positives → P = 0; no gold positives → R = 0).

Multi-class tasks (SST-5, Table 9): accuracy, and the *true* macro-F1 = mean over the C classes of the
per-class F1 (each class counted, 0 for a class that is neither predicted nor gold), which is what
``sklearn.metrics.f1_score(average="macro", labels=range(C), zero_division=0)`` returns. Note that the
official code's ``f1_type`` names are swapped: its "micro" averages per-class P and R before the harmonic
mean and its "macro" pools TP/FP/FN (true micro, equal to accuracy for single-label data).
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(pred: np.ndarray, gold: np.ndarray, num_classes: int) -> np.ndarray:
    """``M[g, p]`` = number of examples with gold class ``g`` predicted as ``p``; shape ``[C, C]``."""
    pred = np.asarray(pred, dtype=np.int64).reshape(-1)
    gold = np.asarray(gold, dtype=np.int64).reshape(-1)
    if pred.shape != gold.shape:
        raise ValueError(f"pred and gold differ in length: {pred.shape[0]} vs {gold.shape[0]}")
    for name, values in (("pred", pred), ("gold", gold)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} labels must lie in [0, {num_classes}); got [{values.min()}, {values.max()}]")
    return np.bincount(gold * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes,
                                                                                              num_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def per_class_prf(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 (fractions, shape ``[C]``) from a confusion matrix."""
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    gold = matrix.sum(axis=1)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, gold)
    f1 = _safe_div(2 * tp, predicted + gold)  # = 2PR/(P+R), defined as 0 when TP = 0
    return precision, recall, f1


def binary_metrics(pred: np.ndarray, gold: np.ndarray, positive: int = 1) -> dict[str, float]:
    """``precision``, ``recall``, ``f1`` of class ``positive`` and ``accuracy``, in percent."""
    matrix = confusion_matrix(pred, gold, 2)
    precision, recall, f1 = per_class_prf(matrix)
    total = matrix.sum()
    return {
        "precision": 100.0 * float(precision[positive]),
        "recall": 100.0 * float(recall[positive]),
        "f1": 100.0 * float(f1[positive]),
        "accuracy": 100.0 * float(np.trace(matrix) / total) if total else 0.0,
    }


def multiclass_metrics(pred: np.ndarray, gold: np.ndarray, num_classes: int) -> dict[str, float]:
    """``accuracy``, ``macro_f1`` (mean of per-class F1), ``macro_precision``, ``macro_recall`` and
    ``f1_<c>`` per class, in percent."""
    matrix = confusion_matrix(pred, gold, num_classes)
    precision, recall, f1 = per_class_prf(matrix)
    total = matrix.sum()
    out = {
        "accuracy": 100.0 * float(np.trace(matrix) / total) if total else 0.0,
        "macro_f1": 100.0 * float(f1.mean()),
        "macro_precision": 100.0 * float(precision.mean()),
        "macro_recall": 100.0 * float(recall.mean()),
    }
    out.update({f"f1_{c}": 100.0 * float(v) for c, v in enumerate(f1)})
    return out


def classification_metrics(pred: np.ndarray, gold: np.ndarray, num_classes: int) -> dict[str, float]:
    """Binary metrics of class 1 for ``num_classes == 2``, multi-class metrics otherwise."""
    if num_classes == 2:
        return binary_metrics(pred, gold)
    return multiclass_metrics(pred, gold, num_classes)
