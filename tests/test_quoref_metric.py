"""QuoRef EM/F1 (the official DROP-style multi-span rules) on hand-computed cases."""

from __future__ import annotations

import pytest

from dicenlp.metrics.quoref import normalize_answer, quoref_em_f1, quoref_evaluate


@pytest.mark.parametrize("text, expected", [
    ("The Edda Rask", "edda rask"),             # lower case, articles
    ("well-known", "well known"),               # hyphens split tokens
    ("N.Y.", "ny"),                             # punctuation removed from words...
    ("911", "911.0"),                           # ... numbers normalised with float()
    ("3.0", "3.0"),                             # and keep their punctuation
    ("1,000", "1000.0"),                        # "1,000" is not a number until the comma goes
    ("  a  ", ""),
])
def test_normalisation(text, expected):
    assert normalize_answer(text) == expected


def test_single_span_questions_behave_like_token_f1():
    assert quoref_em_f1("Edda Rask", ["edda rask"]) == (1.0, 1.0)
    # pred {edda}, gold {edda, rask}: P 1, R 1/2 → F1 2/3 → rounded 0.67
    assert quoref_em_f1("Edda", ["Edda Rask"]) == (0.0, 0.67)


def test_one_span_against_a_two_span_answer_scores_half_at_most():
    # gold bags {rask}, {ohr}; the single predicted bag aligns with one of them: (1 + 0) / 2
    assert quoref_em_f1("Rask", ["Rask", "Ohr"]) == (0.0, 0.5)
    # both spans predicted, in any order: exact
    assert quoref_em_f1(["Ohr", "Rask"], ["Rask", "Ohr"]) == (1.0, 1.0)
    # a repeated span does not match a set of two
    assert quoref_em_f1(["Rask", "Rask"], ["Rask", "Ohr"])[0] == 0.0


def test_numbers_must_match_when_the_gold_has_numbers():
    # gold {911.0, km}: the prediction shares "km" but not the number → bag score 0
    assert quoref_em_f1("12 km", ["911 km"]) == (0.0, 0.0)
    assert quoref_em_f1("911 km long", ["911 km"])[1] == 0.8


def test_f1_is_rounded_like_numpy():
    # aligned slots [1, 0.5, 0.4, 0] → mean 0.475 → numpy rounds to 0.48 (Python's round would give 0.47)
    em, f1 = quoref_em_f1(["1,000 Edda Rask", "Ohr it's 911", ""], ["an a", "it's", "1,000 Ohr", "N.Y. 2 an"])
    assert (em, f1) == (0.0, 0.48)


def test_corpus_scores_and_missing_predictions():
    examples = [{"id": "a", "answers": {"text": ["Rask", "Ohr"]}}, {"id": "b", "answers": {"text": ["carpenter"]}},
                {"id": "c", "answers": {"text": ["the capital"]}}]
    out = quoref_evaluate(examples, {"a": "Rask", "b": "a carpenter"})
    assert out["total"] == 3 and out["missing"] == 1
    assert out["exact_match"] == pytest.approx(100 / 3)
    assert out["f1"] == pytest.approx(100 * (0.5 + 1.0) / 3)
