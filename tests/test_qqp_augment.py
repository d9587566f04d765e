"""Table 8 QQP variants: exact sizes and label shares, determinism, label-preserving mention replacement."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dicenlp.data.glue import Examples, read_local
from dicenlp.data.qqp_augment import VARIANTS, Augmenter, find_mentions, make_variant

from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def train() -> Examples:
    return read_local("qqp", REPO_ROOT / "data" / "samples" / "glue" / "QQP")["train"]


def mentions(text):
    return [(text[s:e], k) for s, e, k in find_mentions(text)]


def test_mention_rules():
    assert mentions("Who will win the 2016 election, Donald Trump or Hillary Clinton?") == [
        ("2016", "YEAR"), ("Donald Trump", "CAP2"), ("Hillary Clinton", "CAP2")]
    assert mentions("How is life at IIT Bombay in March?") == [("IIT", "ACR"), ("Bombay", "CAP1"), ("March", "TIME")]
    # sentence-initial and function words are not names; "I" is not a name; numbers glued to letters are not numbers
    assert mentions("What is it? India is big. I think so") == []
    assert mentions("Can I get 12th marks, 3.5 CGPA and an iPhone 7 in New York City?") == [
        ("3.5", "NUM"), ("CGPA", "ACR"), ("7", "NUM"), ("New York City", "CAP3")]
    assert mentions("Is Trump's plan good?") == [("Trump", "CAP1")]


def test_variant_sizes_and_ratios_exact(train):
    p, n = int(train.label.sum()), int((train.label == 0).sum())
    assert (p, n) == (14, 26)
    expected = {"original": (40, 14), "plus_positive": (2 * n, n), "plus_negative": (2 * n, p),
                "minus_negative": (2 * p, p), "plus_both": (2 * n, n)}
    for variant in VARIANTS:
        out, report = make_variant(train, variant, seed=3, min_count=2)
        size, positives = expected[variant]
        assert (len(out), int(out.label.sum())) == (size, positives), variant
        assert (report.size, report.positives, report.negatives) == (size, positives, size - positives)
        assert report.as_dict()["paper_size"] > 0 and str(report).startswith(f"QQP {variant}: {size:,} pairs")


def test_variants_are_deterministic_for_a_seed(train):
    for variant in ("minus_negative", "plus_positive", "plus_both"):
        a, _ = make_variant(train, variant, seed=7)
        b, _ = make_variant(train, variant, seed=7)
        c, _ = make_variant(train, variant, seed=8)
        assert (a.ids, a.text_a, a.text_b, a.label.tolist()) == (b.ids, b.text_a, b.text_b, b.label.tolist())
        assert (a.ids, a.text_a, a.text_b) != (c.ids, c.text_a, c.text_b)


def test_minus_negative_keeps_every_positive_and_a_subset_of_negatives(train):
    out, report = make_variant(train, "minus_negative", seed=0)
    assert set(out.ids) <= set(train.ids)
    assert set(np.array(train.ids)[train.label == 1]) <= set(out.ids)
    assert report.removed_negative == 12
    order = [train.ids.index(i) for i in out.ids]
    assert order == sorted(order)  # original order kept


def test_generated_pairs_replace_mentions_consistently(train):
    out, report = make_variant(train, "plus_both", seed=1)
    lexicon = Augmenter(train).lexicon.entries
    by_id = dict(zip(train.ids, range(len(train))))
    new = [i for i, x in enumerate(out.ids) if x.startswith("aug")]
    assert len(new) == report.added_positive + report.added_negative == 24
    for i in new:
        template = by_id[out.ids[i].split("-of-")[1]]
        assert out.label[i] == train.label[template]  # the template's label
        src_a, src_b = train.text_a[template], train.text_b[template]
        assert (out.text_a[i], out.text_b[i]) != (src_a, src_b)
        mapping = {}
        for src, dst in ((src_a, out.text_a[i]), (src_b, out.text_b[i])):
            # dst = the template with each mention span replaced: the text between mentions is unchanged
            spans = find_mentions(src)
            cuts = [0] + [x for s, e, _ in spans for x in (s, e)] + [len(src)]
            pieces = [src[cuts[j]:cuts[j + 1]] for j in range(0, len(cuts), 2)]
            match = re.fullmatch("(.+?)".join(map(re.escape, pieces)), dst)
            assert match, (src, dst)
            for (s, e, kind), replacement in zip(spans, match.groups()):
                if replacement != src[s:e]:
                    assert replacement in lexicon[kind]  # another mention of the same type
                # one replacement per mention string, in both questions
                assert mapping.setdefault((kind, src[s:e]), replacement) == replacement
    # originals are untouched
    kept = [i for i, x in enumerate(out.ids) if not x.startswith("aug")]
    assert all(out.text_a[i] == train.text_a[by_id[out.ids[i]]] for i in kept)


def test_lexicon_and_templates(train):
    aug = Augmenter(train, min_count=2)
    assert aug.lexicon.entries["CAP2"] == ["Donald Trump", "Hillary Clinton", "Narendra Modi"]  # count desc, text
    assert aug.lexicon.entries["YEAR"] == ["2016", "2017"]
    assert aug.templates(1).size > 0 and aug.templates(0).size > 0
    with pytest.raises(ValueError, match="unknown QQP variant"):
        make_variant(train, "plus_neutral")


def test_no_template_is_a_clear_error():
    plain = Examples(["1", "2", "3"], ["how are you?", "what is it?", "why?"], ["fine?", "a thing?", "because?"],
                     np.array([1, 0, 0]))
    with pytest.raises(ValueError, match="no training pair of label 1 has a replaceable mention"):
        make_variant(plain, "plus_positive")


def test_larger_set_reaches_the_formula_sizes():
    rng = np.random.default_rng(0)
    names = ["Paris", "London", "Delhi", "Tokyo", "Lagos", "Lima"]
    n = 3000
    a = [f"Is {names[i % 6]} bigger than {names[(i + 1) % 6]} in {1990 + i % 30}?" for i in range(n)]
    b = [f"How big was {names[(i + 2) % 6]} in {1990 + (i * 7) % 30}?" for i in range(n)]
    train = Examples([str(i) for i in range(n)], a, b, (rng.random(n) < 0.37).astype(np.int64))
    p, q = int(train.label.sum()), n - int(train.label.sum())
    out, report = make_variant(train, "plus_positive", seed=0)
    assert (len(out), int(out.label.sum())) == (2 * q, q) and report.positive_share == 0.5
    out, report = make_variant(train, "minus_negative", seed=0)
    assert (len(out), int(out.label.sum())) == (2 * p, p)
