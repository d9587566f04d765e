"""CoNLL-U reader (dicenlp.data.conllu): comments, multi-word tokens, empty nodes, UPOS/XPOS, errors."""

from pathlib import Path

import pytest

from dicenlp.data.conll import ColumnFormatError
from dicenlp.data.conllu import read_conllu

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "samples" / "conllu" / "en_sample.conllu"
SHARED_UD = REPO.parent / "shared" / "data" / "ud"


def test_sample_skips_comments_ranges_and_empty_nodes():
    sents = read_conllu(SAMPLE)
    assert [s.tokens for s in sents] == [
        ["We", "did", "n't", "see", "the", "cat", "."],            # 2-3 "didn't" skipped, its words kept
        ["Mary", "likes", "tea", "and", "John", "coffee", "."],    # empty node 5.1 skipped
        ["Go", "home", "!"],
    ]
    assert sents[0].tags == ["PRON", "AUX", "PART", "VERB", "DET", "NOUN", "PUNCT"]
    assert [s.line_no for s in sents] == [3, 14, 26]
    xpos = read_conllu(SAMPLE, tag="xpos")
    assert xpos[1].tags == ["NNP", "VBZ", "NN", "CC", "NNP", "NN", "."]
    assert len(sents[0].columns[0]) == 10


def _write(tmp_path, text):
    p = tmp_path / "x.conllu"
    p.write_text(text, encoding="utf-8")
    return p


W1 = "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n"


def test_wrong_field_count_names_file_and_line(tmp_path):
    p = _write(tmp_path, "# c\n" + W1 + "2 there there ADV RB _ 1 advmod _ _\n\n")
    with pytest.raises(ColumnFormatError, match=rf"{p}:3: expected 10 TAB-separated CoNLL-U fields"):
        read_conllu(p)


def test_non_consecutive_ids_missing_blank_line(tmp_path):
    p = _write(tmp_path, W1 + W1)
    with pytest.raises(ColumnFormatError, match=rf"{p}:2: expected word ID 2 .*found 1"):
        read_conllu(p)


def test_bad_id_and_missing_tag(tmp_path):
    p = _write(tmp_path, W1.replace("1\t", "a\t", 1))
    with pytest.raises(ColumnFormatError, match=rf"{p}:1: expected an integer word ID"):
        read_conllu(p)
    p = _write(tmp_path, W1.replace("\tUH\t", "\t_\t"))
    with pytest.raises(ColumnFormatError, match=rf"{p}:1: no XPOS tag"):
        read_conllu(p, tag="xpos")
    assert read_conllu(p)[0].tags == ["INTJ"]
    with pytest.raises(ValueError, match="upos' or 'xpos"):
        read_conllu(p, tag="lemma")


def test_empty_file(tmp_path):
    p = _write(tmp_path, "# only a comment\n\n")
    with pytest.raises(ColumnFormatError, match="no sentences found"):
        read_conllu(p)
    assert read_conllu(p, allow_empty=True) == []


@pytest.mark.skipif(not SHARED_UD.is_dir(), reason="../shared/data absent")
@pytest.mark.parametrize("name,n_sents", [("en_ewt-ud-dev.conllu", 2001), ("zh_gsd-ud-dev.conllu", 500)])
def test_real_ud_dev(name, n_sents):
    path = SHARED_UD / name
    sents = read_conllu(path)
    assert len(sents) == n_sents
    # Count word lines independently: integer IDs only (no ranges, no empty nodes).
    n_words = sum(1 for line in path.read_text(encoding="utf-8").splitlines()
                  if line and not line.startswith("#") and line.split("\t")[0].isdigit())
    assert sum(len(s) for s in sents) == n_words
    upos = {t for s in sents for t in s.tags}
    assert upos <= {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
                    "PUNCT", "SCONJ", "SYM", "VERB", "X"}
    if name.startswith("en"):
        # "didn't"-style multi-word tokens are split into words
        assert any(s.tokens[i:i + 2] == ["did", "n't"] for s in sents for i in range(len(s.tokens)))
