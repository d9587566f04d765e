"""Post-processing on hand-made scores: n-best span search, windows, null answers (BERT-style cls first and
XLNet-style cls last), output formats, and the vectorised search against a brute-force double loop."""

from __future__ import annotations

import numpy as np
import pytest

from dicenlp.tasks.qa import evaluate_qa
from dicenlp.tasks.qa_postprocess import NO_SPAN_ODDS, postprocess_qa, span_candidates

NEG = -10.0
CONTEXT = "Rollo led the Norse to Normandy in 911"
#          0    5   9   13    19 22       31 34


def word_offsets(text):
    """Character offsets of white-space words (a word-level 'tokenizer' for hand-made features)."""
    out, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        out.append((start, start + len(word)))
        pos = start + len(word)
    return out


def bert_feature(context=CONTEXT, n_question=3):
    """[CLS] q q q [SEP] context words [SEP]: offsets -1 outside the context, cls at 0."""
    words = word_offsets(context)
    length = 1 + n_question + 1 + len(words) + 1
    start = np.full(length, -1)
    end = np.full(length, -1)
    first = n_question + 2
    for i, (s, e) in enumerate(words):
        start[first + i], end[first + i] = s, e
    return start, end, 0, first


def xlnet_feature(context=CONTEXT, n_question=3):
    """context words <sep> q q q <sep> <cls>: context first, cls LAST."""
    words = word_offsets(context)
    length = len(words) + 1 + n_question + 1 + 1
    start = np.full(length, -1)
    end = np.full(length, -1)
    for i, (s, e) in enumerate(words):
        start[i], end[i] = s, e
    return start, end, length - 1, 0


def scores_for(length, starts: dict, ends: dict):
    s = np.full(length, NEG)
    e = np.full(length, NEG)
    for i, v in starts.items():
        s[i] = v
    for i, v in ends.items():
        e[i] = v
    return s, e


@pytest.mark.parametrize("layout", [bert_feature, xlnet_feature])
def test_best_span_from_hand_made_scores(layout):
    off_s, off_e, cls, first = layout()
    # words: Rollo(0) led(1) the(2) Norse(3) to(4) Normandy(5) in(6) 911(7)
    s, e = scores_for(len(off_s), {first + 3: 5.0, first + 5: 4.0}, {first + 3: 1.0, first + 5: 6.0})
    s[cls], e[cls] = 2.0, 2.0  # null score 4 < best span 11
    examples = [{"id": "q", "context": CONTEXT}]
    out = postprocess_qa(examples, np.array([0]), off_s[None], off_e[None], s[None], e[None], np.array([cls]),
                         with_null=True)
    # best: start Norse (5) + end Normandy (6) = 11 → "Norse to Normandy"
    assert out.best_span["q"] == "Norse to Normandy"
    assert out.null_odds["q"] == pytest.approx(4.0 - 11.0)
    nbest = out.nbest["q"]
    assert nbest[0] == {"text": "Norse to Normandy", "probability": pytest.approx(nbest[0]["probability"]),
                        "start_logit": 5.0, "end_logit": 6.0}
    totals = [d["start_logit"] + d["end_logit"] for d in nbest]
    assert totals == sorted(totals, reverse=True)
    assert sum(d["probability"] for d in nbest) == pytest.approx(1.0)
    assert sum(d["text"] == "" for d in nbest) == 1  # the null answer is listed once (v2.0)
    # second: Normandy..Normandy = 10; the end-before-start pair (Normandy, Norse) is never proposed
    assert nbest[1]["text"] == "Normandy"
    assert all(d["text"] != "" or d["start_logit"] == 2.0 for d in nbest)


@pytest.mark.parametrize("layout", [bert_feature, xlnet_feature])
def test_null_answer_wins_when_its_score_is_higher(layout):
    off_s, off_e, cls, first = layout()
    s, e = scores_for(len(off_s), {first: 1.0}, {first: 1.0})
    s[cls], e[cls] = 3.0, 3.0  # null 6 > span 2: null_odds = +4
    out = postprocess_qa([{"id": "q", "context": CONTEXT}], np.array([0]), off_s[None], off_e[None], s[None],
                         e[None], np.array([cls]), with_null=True)
    assert out.null_odds["q"] == pytest.approx(4.0)
    assert out.answers(threshold=0.0) == {"q": ""}
    assert out.answers(threshold=5.0) == {"q": "Rollo"}
    assert out.answers() == {"q": "Rollo"}  # v1.1: never null
    assert out.nbest["q"][0]["text"] == ""


def test_cls_scores_never_make_a_span():
    """The null position is not context: a high cls score must not yield a span through it (XLNet: last)."""
    off_s, off_e, cls, first = xlnet_feature()
    s, e = scores_for(len(off_s), {cls: 50.0, first + 7: 1.0}, {cls: 50.0, first + 7: 1.0})
    out = postprocess_qa([{"id": "q", "context": CONTEXT}], np.array([0]), off_s[None], off_e[None], s[None],
                         e[None], np.array([cls]))
    assert out.best_span["q"] == "911"


def test_max_answer_length_and_question_tokens_are_respected():
    off_s, off_e, cls, first = bert_feature()
    # best raw pair spans all 8 words; question token 1 has the highest start score
    s, e = scores_for(len(off_s), {1: 99.0, first: 9.0, first + 6: 1.0}, {first + 7: 9.0, first + 6: 0.5})
    out = postprocess_qa([{"id": "q", "context": CONTEXT}], np.array([0]), off_s[None], off_e[None], s[None],
                         e[None], np.array([cls]), max_answer_length=3)
    assert out.best_span["q"] == "in 911"  # (in, 911) = 10 is the best span of at most 3 tokens
    assert all(len(d["text"].split()) <= 3 for d in out.nbest["q"])


def test_windows_of_one_example_are_merged_and_null_takes_the_minimum():
    """Two overlapping windows of one example: the best span may come from either; null = min over windows."""
    context = "one two three four five six"
    words = word_offsets(context)

    def window(first_word, n_words):
        length = 2 + n_words + 1  # [CLS] q [SEP]-less toy: cls, one question token, context, sep
        start = np.full(length, -1)
        end = np.full(length, -1)
        for i in range(n_words):
            start[2 + i], end[2 + i] = words[first_word + i]
        return start, end

    a_s, a_e = window(0, 4)  # one two three four
    b_s, b_e = window(2, 4)  # three four five six
    sa, ea = scores_for(6 + 1, {2: 3.0, 0: 1.0}, {3: 3.0, 0: 1.0})  # "one two" = 6, null 2
    sb, eb = scores_for(6 + 1, {4: 4.0, 0: 0.5}, {5: 4.0, 0: 0.0})  # "five six" = 8, null 0.5
    out = postprocess_qa([{"id": "q", "context": context}], np.array([0, 0]), np.stack([a_s, b_s]),
                         np.stack([a_e, b_e]), np.stack([sa, sb]), np.stack([ea, eb]), np.array([0, 0]),
                         with_null=True)
    assert out.best_span["q"] == "five six"
    assert out.null_odds["q"] == pytest.approx(0.5 - 8.0)  # min null (window b) - best span
    texts = [d["text"] for d in out.nbest["q"]]
    assert "one two" in texts and "five six" in texts


def test_examples_without_features_or_spans():
    off_s = np.full((1, 4), -1)
    out = postprocess_qa([{"id": "a", "context": "x"}, {"id": "b", "context": "y"}], np.array([0]), off_s, off_s,
                         np.zeros((1, 4)), np.zeros((1, 4)), np.array([0]), with_null=True)
    assert out.best_span == {"a": "", "b": ""}
    assert out.null_odds == {"a": NO_SPAN_ODDS, "b": NO_SPAN_ODDS}
    assert out.answers(0.0) == {"a": "", "b": ""}


def test_vectorised_search_equals_a_brute_force_double_loop():
    rng = np.random.default_rng(0)
    n, length, n_best, max_len = 40, 50, 7, 6
    s = rng.normal(size=(n, length))
    e = rng.normal(size=(n, length))
    mask = rng.random((n, length)) < 0.7
    cands = span_candidates(s, e, mask, n_best_size=n_best, max_answer_length=max_len)
    for f in range(n):
        # brute force restricted to the top-n_best starts and ends, as the search (and HF) defines it
        ctx = np.flatnonzero(mask[f])
        top_s = ctx[np.argsort(-s[f, ctx])[:n_best]]
        top_e = ctx[np.argsort(-e[f, ctx])[:n_best]]
        brute = sorted(((s[f, i] + e[f, j], i, j) for i in top_s for j in top_e if 0 <= j - i < max_len),
                       reverse=True)[:n_best]
        got = [(sc, i, j) for sc, i, j in zip(cands.score[f], cands.start[f], cands.end[f]) if np.isfinite(sc)]
        assert [(round(a, 9), i, j) for a, i, j in got] == [(round(a, 9), i, j) for a, i, j in brute]


def test_evaluate_qa_scores_and_files():
    """Scores that single out the gold answer give EM = F1 = 100 and the official files."""
    off_s, off_e, cls, first = xlnet_feature()
    examples = [{"id": "a", "context": CONTEXT, "answers": {"text": ["Normandy"], "answer_start": [23]}},
                {"id": "b", "context": CONTEXT, "answers": {"text": [], "answer_start": []}}]
    s = np.full((2, len(off_s)), NEG)
    e = np.full((2, len(off_s)), NEG)
    s[0, first + 5] = e[0, first + 5] = 5.0  # a: Normandy
    s[0, cls] = e[0, cls] = 0.0
    s[1, first] = e[1, first] = 1.0  # b: a weak span, a strong null
    s[1, cls] = e[1, cls] = 4.0
    arrays = {"offset_start": np.stack([off_s, off_s]), "offset_end": np.stack([off_e, off_e]),
              "cls_index": np.array([cls, cls]), "example_index": np.array([0, 1])}
    result = evaluate_qa(examples, arrays, s, e, version_2=True)
    assert result.metrics["em"] == 100.0 and result.metrics["f1"] == 100.0
    assert result.metrics["has_ans_total"] == 1 and result.metrics["no_ans_total"] == 1
    assert result.extra_files["predictions.json"] == {"a": "Normandy", "b": ""}
    # per question: the answer and its official EM / F1 (the tables' bootstrap rescoring)
    assert result.predictions == [{"id": "a", "prediction": "Normandy", "em": 1.0, "f1": 1.0},
                                  {"id": "b", "prediction": "", "em": 1.0, "f1": 1.0}]
    assert set(result.extra_files) == {"predictions.json", "nbest_predictions.json", "null_odds.json"}
    assert result.extra_files["null_odds.json"] == {"a": pytest.approx(-10.0), "b": pytest.approx(6.0)}
    # a fixed threshold above b's odds answers b with its span
    fixed = evaluate_qa(examples, arrays, s, e, version_2=True, null_threshold=7.0)
    assert fixed.extra_files["predictions.json"]["b"] == "Rollo" and fixed.metrics["em"] == 50.0
    assert [p["em"] for p in fixed.predictions] == [1.0, 0.0]
    v1 = evaluate_qa(examples[:1], {k: v[:1] for k, v in arrays.items()}, s[:1], e[:1], version_2=False)
    assert v1.metrics == {"em": 100.0, "f1": 100.0, "total": 1}
    assert set(v1.extra_files) == {"predictions.json", "nbest_predictions.json"}
