"""Span-level micro P/R/F1: hand-computed cases and parity with seqeval (conlleval rules) on tagged data."""

import random

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from dicenlp.data.schemes import batch_tags_to_spans
from dicenlp.metrics.spans import PRF, span_scores


def test_hand_computed_micro_and_per_type():
    gold = {(0, "PER", 0, 1), (0, "LOC", 3, 3), (1, "PER", 2, 2), (1, "ORG", 0, 0)}
    pred = {(0, "PER", 0, 1),            # TP
            (0, "LOC", 3, 4),            # FP (boundary) + FN for (0, LOC, 3, 3)
            (1, "PER", 2, 2),            # TP
            (1, "LOC", 0, 0)}            # FP (type) + FN for (1, ORG, 0, 0)
    s = span_scores(pred, gold)
    assert (s.micro.tp, s.micro.fp, s.micro.fn) == (2, 2, 2)
    assert s.precision == pytest.approx(50.0) and s.recall == pytest.approx(50.0) and s.f1 == pytest.approx(50.0)
    assert s.per_type["PER"].f1 == pytest.approx(100.0)
    assert (s.per_type["LOC"].tp, s.per_type["LOC"].fp, s.per_type["LOC"].fn) == (0, 2, 1)
    assert s.per_type["ORG"].recall == 0.0 and s.per_type["ORG"].precision == 0.0  # nothing predicted
    assert list(s.per_type) == ["LOC", "ORG", "PER"]
    m = s.metrics()
    assert m["f1"] == pytest.approx(50.0) and m["f1_PER"] == pytest.approx(100.0)
    assert "micro" in s.table() and "ORG" in s.table()


def test_unequal_precision_recall():
    gold = {(0, "A", i, i) for i in range(4)}
    pred = {(0, "A", 0, 0), (0, "A", 1, 1), (0, "A", 9, 9)}
    s = span_scores(pred, gold)
    assert s.precision == pytest.approx(200 / 3)
    assert s.recall == pytest.approx(50.0)
    assert s.f1 == pytest.approx(2 * (200 / 3) * 50 / (200 / 3 + 50))  # 57.142857...
    assert s.f1 == pytest.approx(400 / 7)


def test_empty_conventions():
    assert span_scores([], []).f1 == 0.0
    s = span_scores([], [(0, "A", 0, 0)])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    s = span_scores([(0, "A", 0, 0)], [])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


def test_duplicates_count_once_and_custom_type():
    s = span_scores([("x", 1), ("x", 1)], [("x", 1)], type_of=lambda span: span[0])
    assert s.micro == PRF(1, 0, 0) and s.per_type["x"].f1 == 100.0
    assert span_scores([(1,)], [(1,)], type_of=None).per_type == {}


def test_same_as_seqeval_on_random_tag_sequences():
    """Tagged data → spans (conlleval decoding) → span_scores must equal seqeval's micro scores."""
    rng = random.Random(0)
    alphabet = ["O"] * 4 + [f"{p}-{t}" for p in "BI" for t in ("PER", "LOC", "ORG")]
    gold = [[rng.choice(alphabet) for _ in range(rng.randint(1, 20))] for _ in range(300)]
    pred = [[t if rng.random() < 0.8 else rng.choice(alphabet) for t in sent] for sent in gold]

    def tuples(seqs):
        return {(i, t, a, b) for i, spans in enumerate(batch_tags_to_spans(seqs)) for a, b, t in spans}

    s = span_scores(tuples(pred), tuples(gold))
    assert s.precision == pytest.approx(100 * precision_score(gold, pred))
    assert s.recall == pytest.approx(100 * recall_score(gold, pred))
    assert s.f1 == pytest.approx(100 * f1_score(gold, pred))
    report = classification_report(gold, pred, output_dict=True)
    for typ, row in s.per_type.items():
        assert row.f1 == pytest.approx(100 * report[typ]["f1-score"])
        assert row.n_gold == report[typ]["support"]
