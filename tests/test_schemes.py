"""Tag schemes ↔ spans: hand cases, conlleval parity (via seqeval's default mode), round trips, strict errors."""

import random

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from dicenlp.data.schemes import (IllFormedTagsError, batch_tags_to_spans, canonical_scheme, convert_tags,
                                  guess_scheme, is_well_formed, spans_to_tags, tags_to_spans)


@pytest.mark.parametrize("tags, spans", [
    ("B-PER I-PER O B-LOC", [(0, 1, "PER"), (3, 3, "LOC")]),
    ("B-PER B-PER", [(0, 0, "PER"), (1, 1, "PER")]),
    ("O O", []),
    ("", []),
    ("B-LOC I-LOC I-LOC", [(0, 2, "LOC")]),                     # sentence-final entity kept (official-code bug)
    ("I-PER", [(0, 0, "PER")]),                                   # conlleval: I at start opens a chunk
    ("O I-PER I-PER", [(1, 2, "PER")]),                           # I after O opens a chunk
    ("B-PER I-LOC", [(0, 0, "PER"), (1, 1, "LOC")]),              # type change splits
    ("B-PER E-PER E-PER", [(0, 1, "PER"), (2, 2, "PER")]),        # E after E opens a chunk
    ("S-PER I-PER", [(0, 0, "PER"), (1, 1, "PER")]),
    ("B-ORG M-ORG E-ORG S-LOC", [(0, 2, "ORG"), (3, 3, "LOC")]),  # BMES
    ("B-WORK_OF_ART I-WORK_OF_ART", [(0, 1, "WORK_OF_ART")]),
    ("B I E S", [(0, 2, ""), (3, 3, "")]),                        # untyped (word segmentation)
    ("B-NN E-NN S-VV B-NR I-NR E-NR", [(0, 1, "NN"), (2, 2, "VV"), (3, 5, "NR")]),
])
def test_hand_cases(tags, spans):
    assert tags_to_spans(tags.split()) == spans


def test_iob1_decoding_and_encoding():
    tags = "I-PER I-PER B-PER O I-LOC I-ORG".split()
    spans = [(0, 1, "PER"), (2, 2, "PER"), (4, 4, "LOC"), (5, 5, "ORG")]
    assert tags_to_spans(tags, "IOB1", strict=True) == spans
    assert spans_to_tags(spans, 6, "IOB1") == tags
    assert convert_tags(tags, "IOB1", "BIO") == "B-PER I-PER B-PER O B-LOC B-ORG".split()
    assert convert_tags(tags, "IOB1", "BIOES") == "B-PER E-PER S-PER O S-LOC S-ORG".split()


def test_encoding_each_scheme():
    spans = [(0, 1, "PER"), (2, 2, "PER"), (4, 6, "LOC")]
    assert spans_to_tags(spans, 7, "BIO") == "B-PER I-PER B-PER O B-LOC I-LOC I-LOC".split()
    assert spans_to_tags(spans, 7, "iob2") == "B-PER I-PER B-PER O B-LOC I-LOC I-LOC".split()
    assert spans_to_tags(spans, 7, "BIOES") == "B-PER E-PER S-PER O B-LOC I-LOC E-LOC".split()
    assert spans_to_tags(spans, 7, "BMES") == "B-PER E-PER S-PER O B-LOC M-LOC E-LOC".split()
    with pytest.raises(ValueError, match="BIES needs every position"):
        spans_to_tags(spans, 7, "BIES")
    assert spans_to_tags([(0, 1, "NN"), (2, 2, "VV")], 3, "BIES") == ["B-NN", "E-NN", "S-VV"]


def test_overlapping_or_outside_spans_raise():
    with pytest.raises(ValueError, match="overlap"):
        spans_to_tags([(0, 2, "PER"), (1, 1, "LOC")], 3)
    with pytest.raises(ValueError, match="outside"):
        spans_to_tags([(2, 3, "PER")], 3)


TAGS = ["O", "O", "O"] + [f"{p}-{t}" for p in "BIES" for t in ("PER", "LOC")]


def _random_sentences(rng, n, alphabet):
    return [[rng.choice(alphabet) for _ in range(rng.randint(0, 12))] for _ in range(n)]


def test_matches_conlleval_rules_on_random_ill_formed_sequences():
    """seqeval's default mode is a port of conlleval's startOfChunk/endOfChunk: the decoders must agree on
    *any* sequence, including ill-formed ones, across sentence boundaries (batch path)."""
    rng = random.Random(0)
    sentences = _random_sentences(rng, 400, TAGS)
    ours = batch_tags_to_spans(sentences)
    for tags, spans in zip(sentences, ours):
        theirs = sorted((s, e, t) for t, s, e in get_entities(list(tags)))
        assert spans == theirs, tags
        assert tags_to_spans(tags) == spans  # one-sentence path == batch path


@pytest.mark.parametrize("scheme", ["BIO", "IOB1", "BIOES", "BMES"])
def test_round_trip_random_spans(scheme):
    rng = random.Random(1)
    for _ in range(200):
        length = rng.randint(0, 15)
        spans, pos = [], 0
        while pos < length:
            pos += rng.randint(0, 2)
            if pos >= length:
                break
            end = min(length - 1, pos + rng.randint(0, 3))
            spans.append((pos, end, rng.choice(["PER", "LOC"])))
            pos = end + 1
        tags = spans_to_tags(spans, length, scheme)
        assert tags_to_spans(tags, scheme, strict=True) == spans
        assert is_well_formed(tags, scheme)


@pytest.mark.parametrize("scheme, tags, position", [
    ("BIO", "O I-PER", 1),
    ("BIO", "I-PER", 0),
    ("BIO", "B-PER I-LOC", 1),
    ("BIO", "B-PER E-PER", 1),           # E is not a BIO prefix
    ("IOB1", "O B-PER", 1),              # B only after a chunk of the same type
    ("IOB1", "I-LOC B-PER", 1),
    ("BIOES", "B-PER O", 0),             # B must be followed by I/E
    ("BIOES", "B-PER", 0),               # chunk left open at the end
    ("BIOES", "O E-PER", 1),
    ("BIOES", "B-PER I-PER S-PER", 1),
    ("BIOES", "B-PER M-PER E-PER", 1),   # M belongs to BMES
    ("BMES", "B-PER I-PER E-PER", 1),
    ("BIES", "S-NN O", 1),               # BIES has no O
])
def test_strict_mode_names_the_position(scheme, tags, position):
    with pytest.raises(IllFormedTagsError, match=f"position {position}: .*scheme {canonical_scheme(scheme)}"):
        tags_to_spans(tags.split(), scheme, strict=True)
    tags_to_spans(tags.split(), scheme)  # lenient mode never raises on known prefixes
    assert not is_well_formed(tags.split(), scheme)


def test_strict_error_uses_location_labels():
    with pytest.raises(IllFormedTagsError, match=r"train.txt:7, position 2"):
        batch_tags_to_spans([["O"], ["B-X", "I-X", "I-Y"]], "BIO", strict=True, where=["train.txt:3", "train.txt:7"])


@pytest.mark.parametrize("bad", ["X-PER", "O-PER", "b-PER", "PER"])
def test_unknown_tags_always_raise(bad):
    with pytest.raises(IllFormedTagsError, match=f"sentence 1, position 1: cannot parse tag '{bad}'"):
        batch_tags_to_spans([["O"], ["O", bad]])


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown tag scheme"):
        tags_to_spans(["O"], "BILUO")


def test_guess_scheme():
    assert guess_scheme([["B-PER", "I-PER", "O"], ["O"]]) == "BIO"
    assert guess_scheme([["I-PER", "I-PER", "O", "I-LOC"]]) == "IOB1"
    assert guess_scheme([["B-PER", "E-PER", "S-LOC"]]) == "BIOES"
    assert guess_scheme([["B-PER", "M-PER", "E-PER"]]) == "BMES"


def test_batch_of_large_corpus_is_fast():
    """Vectorised path: 20k sentences decode in well under a second even on a shared CPU."""
    import time

    rng = random.Random(2)
    sentences = _random_sentences(rng, 20000, TAGS)
    t0 = time.perf_counter()
    out = batch_tags_to_spans(sentences)
    assert time.perf_counter() - t0 < 5.0
    assert len(out) == 20000
