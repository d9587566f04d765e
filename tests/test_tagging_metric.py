"""POS metric (dicenlp.metrics.tagging): span-level micro P/R/F1 + token accuracy, hand-computed cases."""

import pytest

from dicenlp.metrics.tagging import decode_spans, tagging_metrics


def test_word_level_all_predicted_p_equals_r_equals_accuracy():
    gold = [["DT", "NN", "VBZ"], ["PRP", "VBD"]]
    pred = [["DT", "VB", "VBZ"], ["PRP", "VBD"]]
    m = tagging_metrics(gold, pred, "word")
    # 4 of 5 words right; every word predicted once: P = R = F1 = accuracy = 80
    assert m["precision"] == pytest.approx(80.0) and m["recall"] == pytest.approx(80.0)
    assert m["f1"] == pytest.approx(80.0) and m["accuracy"] == pytest.approx(80.0)
    assert (m["n_gold"], m["n_pred"], m["n_correct"], m["n_units"]) == (5, 5, 4, 5)


def test_word_level_missing_predictions_are_misses():
    gold = [["DT", "NN", "VBZ", "RB"]]
    pred = [["DT", "NN", None, None]]          # e.g. the last two words were truncated away
    m = tagging_metrics(gold, pred, "word")
    assert m["precision"] == pytest.approx(100.0)    # 2/2
    assert m["recall"] == pytest.approx(50.0)        # 2/4
    assert m["f1"] == pytest.approx(2 * 100 * 50 / 150)
    assert m["accuracy"] == pytest.approx(50.0)


def test_bies_spans_need_both_boundaries_and_tag():
    # gold words: 上海/NR 浦东/NR 开发/NN   (chars 0-1, 2-3, 4-5)
    gold = [["B-NR", "E-NR", "B-NR", "E-NR", "B-NN", "E-NN"]]
    # predicted: 上海/NR (right) 浦东开/NR (wrong boundary) 发/VV (wrong)
    pred = [["B-NR", "E-NR", "B-NR", "I-NR", "E-NR", "S-VV"]]
    m = tagging_metrics(gold, pred, "bies")
    assert (m["n_gold"], m["n_pred"], m["n_correct"]) == (3, 3, 1)
    assert m["precision"] == pytest.approx(100 / 3) and m["recall"] == pytest.approx(100 / 3)
    assert m["accuracy"] == pytest.approx(100 * 3 / 6)   # chars 0,1,2 right; 3 (I≠E), 4 (E≠B), 5 wrong


def test_bies_wrong_tag_right_boundary_and_missing_chars():
    gold = [["B-NR", "E-NR", "S-VC", "S-PU"]]
    pred = [["B-NN", "E-NN", "S-VC", None]]           # 。 truncated: no prediction → no span
    m = tagging_metrics(gold, pred, "bies")
    assert (m["n_gold"], m["n_pred"], m["n_correct"]) == (3, 2, 1)
    assert m["precision"] == pytest.approx(50.0) and m["recall"] == pytest.approx(100 / 3)
    assert m["f1"] == pytest.approx(2 * 50 * (100 / 3) / (50 + 100 / 3))


def test_gold_spans_given_directly_and_span_identity_includes_sentence():
    gold_tags = [["S-PU"], ["S-PU"]]
    pred = [["S-PU"], ["S-VV"]]
    m = tagging_metrics(gold_tags, pred, "bies", gold_spans=[[(0, 0, "PU")], [(0, 0, "PU")]])
    assert (m["n_gold"], m["n_correct"]) == (2, 1)   # same (0, 0, PU) in two sentences: two gold spans


def test_ill_formed_prediction_uses_conlleval_decoding():
    assert decode_spans([["I-NN", "E-NN", "E-NN", None, "E-VV"]], "bies") == [[(0, 1, "NN"), (2, 2, "NN"),
                                                                              (4, 4, "VV")]]


def test_empty_and_mismatched_inputs():
    m = tagging_metrics([], [], "word")
    assert m["f1"] == 0.0 and m["accuracy"] == 0.0
    with pytest.raises(ValueError, match="2 gold tags but 1 predicted"):
        tagging_metrics([["A", "B"]], [["A"]])
    with pytest.raises(ValueError, match="unknown tagging scheme"):
        tagging_metrics([["A"]], [["A"]], "bio")


def test_against_seqeval_on_bies():
    """Cross-check the char-level span F1 with seqeval (IOBES scheme, strict mode on well-formed tags)."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOBES

    gold = [["B-NR", "E-NR", "S-VC", "B-NN", "I-NN", "E-NN"], ["S-PN", "B-VV", "E-VV"]]
    pred = [["B-NR", "E-NR", "S-VV", "B-NN", "I-NN", "E-NN"], ["S-PN", "S-VV", "S-VV"]]
    m = tagging_metrics(gold, pred, "bies")
    kw = dict(mode="strict", scheme=IOBES)
    assert m["precision"] == pytest.approx(100 * precision_score(gold, pred, **kw))
    assert m["recall"] == pytest.approx(100 * recall_score(gold, pred, **kw))
    assert m["f1"] == pytest.approx(100 * f1_score(gold, pred, **kw))
