"""SQuAD EM/F1: each rule of the official v1.1 and v2.0 evaluation scripts on hand-computed cases."""

from __future__ import annotations

import json

import pytest

from conftest import shared_data
from dicenlp.metrics.squad import (best_threshold, examples_from_squad_json, exact_match, f1_v1, f1_v2,
                                   normalize_answer, squad_v1_evaluate, squad_v2_evaluate, squad_v2_raw_scores)


def ex(qid, *answers):
    return {"id": qid, "answers": {"text": list(answers), "answer_start": [0] * len(answers)}}


# ----------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("text, expected", [
    ("Denmark", "denmark"),                          # lower case
    ("U.S.A.", "usa"),                               # punctuation removed (not replaced by a space)
    ("rock-'n'-roll!", "rocknroll"),
    ("The Eiffel Tower", "eiffel tower"),            # articles a/an/the as whole words
    ("a theatre and an anthem", "theatre and anthem"),   # ... but not inside words
    ("Anne", "anne"),
    ("  10th \t and\n11th  ", "10th and 11th"),      # white space collapsed
    ("the.", ""),                                    # punctuation goes first, then the article
    ("Café", "café"),                                # non-ASCII kept (string.punctuation is ASCII)
    ("“quoted”", "“quoted”"),                        # typographic quotes are not string.punctuation
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_after_normalisation():
    assert exact_match("The Eiffel Tower!", "eiffel   tower") == 1
    assert exact_match("Eiffel Towers", "Eiffel Tower") == 0


# ----------------------------------------------------------------------------- token F1
def test_f1_precision_recall_by_hand():
    # pred tokens [big, red, dog] vs gold [red, dog]: P = 2/3, R = 1, F1 = 2 * 2/3 / (5/3) = 0.8
    assert f1_v1("the big red dog", "Red dog") == pytest.approx(0.8)
    assert f1_v2("the big red dog", "Red dog") == pytest.approx(0.8)


def test_f1_counts_repeated_tokens_as_a_multiset():
    # pred [dog, dog, cat], gold [dog, cat, cat]: common = {dog: 1, cat: 1} → P = R = 2/3
    assert f1_v1("dog dog cat", "dog cat cat") == pytest.approx(2 / 3)


def test_f1_no_overlap_is_zero():
    assert f1_v1("Paris", "London") == 0.0 and f1_v2("Paris", "London") == 0.0


def test_empty_answers_differ_between_v1_and_v2():
    # v1.1: no shared token → 0, even when both sides normalise to nothing
    assert f1_v1("", "the") == 0.0
    # v2.0: "if either is no-answer, then F1 is 1 if they agree, 0 otherwise"
    assert f1_v2("", "the") == 1.0
    assert f1_v2("", "") == 1.0
    assert f1_v2("Paris", "") == 0.0 and f1_v2("", "Paris") == 0.0


# ----------------------------------------------------------------------------- v1.1 corpus scores
def test_v1_max_over_gold_answers_and_missing_predictions():
    examples = [ex("q1", "in the 10th century", "10th century"), ex("q2", "Rollo"), ex("q3", "Normandy")]
    preds = {"q1": "10th century", "q2": "Rollo the Viking"}  # q3 missing → 0 but counted
    out = squad_v1_evaluate(examples, preds)
    # q1: EM 1 (second gold), F1 1; q2: EM 0, F1: pred [rollo, viking] gold [rollo] → P 1/2, R 1 → 2/3
    assert out["total"] == 3 and out["missing"] == 1
    assert out["exact_match"] == pytest.approx(100 * 1 / 3)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)


def test_v1_needs_a_gold_answer():
    with pytest.raises(ValueError, match="no gold answer"):
        squad_v1_evaluate([ex("q1")], {"q1": ""})


# ----------------------------------------------------------------------------- v2.0 corpus scores
def test_v2_unanswerable_gold_is_the_empty_string_and_empty_golds_are_dropped():
    examples = [ex("has", "the", "Paris"),  # "the" normalises to "" → dropped, gold = [Paris]
                ex("no")]                     # unanswerable → gold [""]
    out = squad_v2_evaluate(examples, {"has": "", "no": ""})
    assert out["HasAns_exact"] == 0.0 and out["HasAns_f1"] == 0.0  # "" vs Paris
    assert out["NoAns_exact"] == 100.0 and out["NoAns_f1"] == 100.0
    assert out["exact"] == 50.0 and out["total"] == 2
    assert out["HasAns_total"] == 1 and out["NoAns_total"] == 1
    assert "best_f1" not in out  # only with no-answer scores


def test_v2_requires_every_prediction():
    with pytest.raises(ValueError, match="no prediction"):
        squad_v2_evaluate([ex("a", "x"), ex("b")], {"a": "x"})


def test_v2_no_answer_threshold_turns_predictions_into_empty():
    examples = [ex("a", "Paris"), ex("b"), ex("c", "Rome")]
    preds = {"a": "Paris", "b": "Lyon", "c": "Rome"}
    na = {"a": 0.2, "b": 0.9, "c": 0.6}
    # threshold 0.5: b (0.9) and c (0.6) become "" → a: 1, b: 1 (no answer right), c: 0
    out = squad_v2_evaluate(examples, preds, na_probs=na, na_prob_thresh=0.5)
    assert out["exact"] == pytest.approx(200 / 3)
    assert out["HasAns_exact"] == 50.0 and out["NoAns_exact"] == 100.0
    # default threshold 1.0: nothing is null → a 1, b 0, c 1
    assert squad_v2_evaluate(examples, preds, na_probs=na)["exact"] == pytest.approx(200 / 3)
    assert squad_v2_evaluate(examples, preds, na_probs=na)["NoAns_exact"] == 0.0


def test_best_threshold_by_hand():
    # Sorted by na score: a (0.1, answerable, right), c (0.3, unanswerable, predicts text: -1),
    # d (0.5, answerable, right), b (0.7, answerable, wrong).
    # all-abstain score = #unanswerable = 1; cumulative: a → 2, c → 1, d → 2, b → 2 (+0)
    # best = 2 first reached at a → threshold 0.1, score 2/4
    examples = [ex("a", "x"), ex("b", "y"), ex("c"), ex("d", "z")]
    preds = {"a": "x", "b": "wrong", "c": "text", "d": "z"}
    na = {"a": 0.1, "b": 0.7, "c": 0.3, "d": 0.5}
    out = squad_v2_evaluate(examples, preds, na_probs=na)
    assert out["best_exact"] == pytest.approx(50.0) and out["best_exact_thresh"] == pytest.approx(0.1)
    exact = {"a": 1, "b": 0, "c": 0, "d": 1}
    has = {"a": True, "b": True, "c": False, "d": True}
    assert best_threshold(preds, exact, na, has) == (pytest.approx(50.0), pytest.approx(0.1))


def test_best_threshold_without_improvement_is_zero():
    # everything is unanswerable and every prediction is text: answering never helps
    examples = [ex("a"), ex("b")]
    out = squad_v2_evaluate(examples, {"a": "x", "b": "y"}, na_probs={"a": 3.0, "b": -2.0})
    assert out["best_exact"] == 100.0 and out["best_exact_thresh"] == 0.0


def test_best_threshold_ties_keep_the_first_maximum():
    # a and b both right: cumulative 1, 2; best at b (strictly greater), threshold = b's score
    examples = [ex("a", "x"), ex("b", "y")]
    out = squad_v2_evaluate(examples, {"a": "x", "b": "y"}, na_probs={"a": -1.0, "b": 2.5})
    assert out["best_f1"] == 100.0 and out["best_f1_thresh"] == 2.5


# ----------------------------------------------------------------------------- the real SQuAD 2.0 slice
def test_real_squad2_slice_perfect_and_empty_predictions():
    path = shared_data("squad2", "dev-v2.0-sample.json")
    obj = json.loads(path.read_text(encoding="utf-8"))
    examples = examples_from_squad_json(obj)
    n_no = sum(1 for e in examples if not e["answers"]["text"])
    assert (len(examples), n_no) == (208, 112)  # README: 208 questions, 112 unanswerable
    perfect = {e["id"]: (e["answers"]["text"][-1] if e["answers"]["text"] else "") for e in examples}
    out = squad_v2_evaluate(examples, perfect)
    assert out["exact"] == 100.0 and out["f1"] == 100.0
    assert (out["HasAns_total"], out["NoAns_total"]) == (96, 112)
    empty = squad_v2_evaluate(examples, {e["id"]: "" for e in examples})
    assert empty["exact"] == pytest.approx(100 * 112 / 208) and empty["HasAns_f1"] == 0.0
    # the v1.1 rules on the answerable questions: first gold answers are perfect
    answerable = [e for e in examples if e["answers"]["text"]]
    v1 = squad_v1_evaluate(answerable, {e["id"]: e["answers"]["text"][0] for e in answerable})
    assert v1["exact_match"] == 100.0 and v1["total"] == 96


def test_real_squad2_slice_against_hand_scored_questions():
    path = shared_data("squad2", "dev-v2.0-sample.json")
    examples = examples_from_squad_json(json.loads(path.read_text(encoding="utf-8")))
    by_id = {e["id"]: e for e in examples}
    q = by_id["56ddde6b9a695914005b9629"]  # "When were the Normans in Normandy?" golds: "10th and 11th centuries", ...
    # prediction "11th centuries" vs "10th and 11th centuries": P = 2/2, R = 2/4 → F1 2/3; EM 0
    one = [q]
    out = squad_v2_evaluate(one, {q["id"]: "11th centuries"})
    assert out["exact"] == 0.0 and out["f1"] == pytest.approx(100 * 2 / 3)


# ----------------------------------------------------------------------------- the threshold we apply
def test_chosen_null_threshold_reproduces_its_score_when_applied():
    from dicenlp.metrics.squad import choose_null_threshold

    examples = [ex("a", "x"), ex("b", "y"), ex("c"), ex("d", "z"), ex("e")]
    spans = {"a": "x", "b": "wrong", "c": "text", "d": "z", "e": "text"}
    # a and c tie at 0.3: a cut between them is impossible (the official search would cut after a)
    odds = {"a": 0.3, "b": 0.9, "c": 0.3, "d": 0.5, "e": 2.0}
    exact, _, has = squad_v2_raw_scores(examples, spans)
    score, threshold = choose_null_threshold(spans, exact, odds, has)
    # all "" scores 2 (c, e); after the tie group {a, c} at 0.3: 2 + 1 - 1 = 2; after d at 0.5: 3 (best)
    assert threshold == 0.5 and score == pytest.approx(60.0)
    applied = {q: ("" if odds[q] > threshold else t) for q, t in spans.items()}
    assert squad_v2_evaluate(examples, applied)["exact"] == pytest.approx(score)


def test_chosen_null_threshold_abstains_everywhere_when_answering_never_helps():
    from dicenlp.metrics.squad import choose_null_threshold

    spans = {"a": "x", "b": "y"}
    score, threshold = choose_null_threshold(spans, {"a": 0, "b": 0}, {"a": -3.0, "b": 4.0},
                                             {"a": False, "b": False})
    assert score == 100.0 and threshold < -3.0  # below every score: all answers are ""
