"""Classification metrics on hand-computed cases (positive-class P/R/F1, accuracy, true macro-F1)."""

import numpy as np
import pytest

from dicenlp.metrics.classification import (binary_metrics, classification_metrics, confusion_matrix,
                                            multiclass_metrics)


def test_binary_hand_computed():
    gold = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    pred = np.array([1, 0, 1, 1, 0, 0, 1, 1])
    # TP = 3 (0, 2, 6), FN = 1 (1), FP = 2 (3, 7), TN = 2 (4, 5)
    m = binary_metrics(pred, gold)
    assert m["precision"] == pytest.approx(60.0)
    assert m["recall"] == pytest.approx(75.0)
    assert m["f1"] == pytest.approx(100 * 6 / 9)  # 2TP / (2TP + FP + FN)
    assert m["accuracy"] == pytest.approx(62.5)
    # F1 equals the harmonic mean of P and R
    assert m["f1"] == pytest.approx(2 * 60 * 75 / 135)


def test_binary_positive_class_is_label_one():
    # Predicting every pair a paraphrase: recall 100, precision = share of positives.
    gold = np.array([1, 1, 1, 0])
    m = binary_metrics(np.ones(4, dtype=int), gold)
    assert (m["precision"], m["recall"]) == (75.0, 100.0)
    assert m["f1"] == pytest.approx(100 * 2 * 0.75 / 1.75)


def test_binary_zero_division_is_zero():
    m = binary_metrics(np.zeros(2, dtype=int), np.array([1, 0]))
    assert m == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 50.0}
    m = binary_metrics(np.array([1, 0]), np.array([0, 0]))
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


def test_multiclass_true_macro_f1():
    gold = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    # class 0: P 1/2 R 1/2 F1 1/2; class 1: P 2/3 R 1 F1 4/5; class 2: P 1 R 1/2 F1 2/3
    m = multiclass_metrics(pred, gold, 3)
    assert m["accuracy"] == pytest.approx(100 * 4 / 6)
    assert m["macro_f1"] == pytest.approx(100 * (0.5 + 0.8 + 2 / 3) / 3)
    assert (m["f1_0"], m["f1_1"], m["f1_2"]) == pytest.approx((50.0, 80.0, 100 * 2 / 3))
    assert m["macro_precision"] == pytest.approx(100 * (0.5 + 2 / 3 + 1) / 3)
    assert m["macro_recall"] == pytest.approx(100 * (0.5 + 1 + 0.5) / 3)
    # The official code's "micro" (harmonic mean of macro-P and macro-R) is a different number.
    p, r = m["macro_precision"], m["macro_recall"]
    assert 2 * p * r / (p + r) == pytest.approx(69.33, abs=0.01)
    assert m["macro_f1"] == pytest.approx(65.56, abs=0.01)


def test_multiclass_absent_class_counts_as_zero():
    gold = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    m = multiclass_metrics(pred, gold, 4)  # class 3 never occurs
    assert m["f1_3"] == 0.0
    assert m["macro_f1"] == pytest.approx(100 * (0.5 + 0.8 + 2 / 3) / 4)


def test_confusion_matrix_and_validation():
    assert confusion_matrix([0, 1, 1], [1, 1, 0], 2).tolist() == [[0, 1], [1, 1]]
    with pytest.raises(ValueError, match="differ in length"):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)


def test_dispatch_and_empty():
    assert set(classification_metrics([1], [1], 2)) == {"precision", "recall", "f1", "accuracy"}
    assert "macro_f1" in classification_metrics([4], [4], 5)
    assert binary_metrics(np.array([], dtype=int), np.array([], dtype=int))["accuracy"] == 0.0


def test_large_random_matches_loop():
    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 5, 10_000), rng.integers(0, 5, 10_000)
    m = multiclass_metrics(pred, gold, 5)
    f1s = []
    for c in range(5):
        tp = np.sum((pred == c) & (gold == c))
        fp = np.sum((pred == c) & (gold != c))
        fn = np.sum((pred != c) & (gold == c))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    assert m["macro_f1"] == pytest.approx(100 * np.mean(f1s))
    assert m["accuracy"] == pytest.approx(100 * np.mean(pred == gold))
