"""Chinese joint segmentation + POS at the character level (dicenlp.data.chinese_pos)."""

from pathlib import Path

import pytest

from dicenlp.data.chinese_pos import (char_tags_to_words, read_chinese_pos, word_char_spans, words_to_char_tags)
from dicenlp.data.conll import ColumnFormatError
from dicenlp.data.schemes import IllFormedTagsError

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
SHARED_UD = REPO.parent / "shared" / "data" / "ud"


def test_words_to_bies_and_back():
    words, tags = ["上海", "浦东", "开发区", "是", "。"], ["NR", "NR", "NN", "VC", "PU"]
    chars, bies = words_to_char_tags(words, tags)
    assert chars == list("上海浦东开发区是。")
    assert bies == ["B-NR", "E-NR", "B-NR", "E-NR", "B-NN", "I-NN", "E-NN", "S-VC", "S-PU"]
    assert word_char_spans(words, tags) == [(0, 1, "NR"), (2, 3, "NR"), (4, 6, "NN"), (7, 7, "VC"), (8, 8, "PU")]
    assert char_tags_to_words(chars, bies, strict=True) == (words, tags)


def test_ill_formed_prediction_decodes_leniently_like_conlleval():
    chars = list("上海浦东")
    # I-NR after E-NR starts a new word (conlleval), a type change splits a word
    assert char_tags_to_words(chars, ["B-NR", "E-NR", "I-NR", "E-NN"]) == (["上海", "浦", "东"], ["NR", "NR", "NN"])
    # BMES inside tag M is accepted as I
    assert char_tags_to_words(chars, ["B-NR", "M-NR", "E-NR", "S-PU"]) == (["上海浦", "东"], ["NR", "PU"])
    with pytest.raises(IllFormedTagsError):
        char_tags_to_words(chars, ["B-NR", "E-NR", "I-NR", "E-NN"], strict=True)


def test_sample_layouts_agree():
    ctb = read_chinese_pos(SAMPLES / "ctb" / "dev.txt", layout="word_pos")
    ud = read_chinese_pos(SAMPLES / "ud_zh" / "zh-ud-dev.conllu", layout="conllu", conllu_tag="xpos")
    assert len(ctb) > 10 and [(s.tokens, s.tags) for s in ctb] == [(s.tokens, s.tags) for s in ud]
    assert ctb[0].line_no == 1


def test_word_pos_delimiter_and_errors(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("上海_NR 的_DEG a_b_NN\n\n浦东/NR\n", encoding="utf-8")
    with pytest.raises(ColumnFormatError, match=rf"{p}:3: expected items 'word_TAG'.*'浦东/NR'"):
        read_chinese_pos(p)
    p.write_text("上海_NR 的_DEG a_b_NN\n", encoding="utf-8")
    s = read_chinese_pos(p)[0]
    assert s.tokens == ["上海", "的", "a_b"] and s.tags == ["NR", "DEG", "NN"]
    p.write_text("上海/NR 的/DEG\n", encoding="utf-8")
    assert read_chinese_pos(p, delimiter="/")[0].tags == ["NR", "DEG"]
    p.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ColumnFormatError, match="no sentences"):
        read_chinese_pos(p)


def test_char_bmes_layout(tmp_path):
    p = tmp_path / "c.bmes"
    p.write_text("上\tB-NR\n海\tE-NR\n是\tS-VC\n\n开\tB-NN\n发\tM-NN\n区\tE-NN\n", encoding="utf-8")
    sents = read_chinese_pos(p, layout="char_bmes")
    assert [(s.tokens, s.tags, s.line_no) for s in sents] == [(["上海", "是"], ["NR", "VC"], 1),
                                                             (["开发区"], ["NN"], 5)]
    p.write_text("上\tB-NR\n海\tS-NR\n", encoding="utf-8")
    with pytest.raises(ColumnFormatError, match=rf"{p}:1: sentence starting here is not valid BMES"):
        read_chinese_pos(p, layout="char_bmes")
    p.write_text("上海\tS-NR\n", encoding="utf-8")
    with pytest.raises(ColumnFormatError, match="one character per line"):
        read_chinese_pos(p, layout="char_bmes")


def test_columns_layout_and_unknown_layout(tmp_path):
    p = tmp_path / "w.tsv"
    p.write_text("上海\tNR\n是\tVC\n", encoding="utf-8")
    assert read_chinese_pos(p, layout="columns")[0].tokens == ["上海", "是"]
    with pytest.raises(ValueError, match="unknown Chinese POS layout"):
        read_chinese_pos(p, layout="xml")


@pytest.mark.skipif(not SHARED_UD.is_dir(), reason="../shared/data absent")
def test_real_chinese_ud_roundtrip():
    sents = read_chinese_pos(SHARED_UD / "zh_gsd-ud-dev.conllu", layout="conllu")
    assert len(sents) == 500
    n_multi = 0
    for s in sents:
        chars, bies = words_to_char_tags(s.tokens, s.tags)
        assert "".join(chars) == "".join(s.tokens)
        assert char_tags_to_words(chars, bies, strict=True) == (s.tokens, s.tags)
        n_multi += sum(len(w) > 1 for w in s.tokens)
    assert n_multi > 1000  # words are multi-character: segmentation is part of the task
