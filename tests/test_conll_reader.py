"""The generic column-file reader (dicenlp.data.conll)."""

from pathlib import Path

import pytest

from dicenlp.data.conll import ColumnFormatError, Sentence, read_column_file, write_column_file

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

CONLL03_STYLE = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def write(tmp_path, text, name="f.txt"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_conll03_layout_columns_and_docstart(tmp_path):
    sents = read_column_file(write(tmp_path, CONLL03_STYLE), token_col=0, tag_col=3)
    assert [s.tokens for s in sents] == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert [s.tags for s in sents] == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert [s.line_no for s in sents] == [3, 7, 12]
    # default tag column is the last one; other columns stay available
    again = read_column_file(write(tmp_path, CONLL03_STYLE))
    assert [s.tags for s in again] == [s.tags for s in sents]
    assert [c[1] for c in again[0].columns] == ["NNP", "VBZ", "JJ"]
    pos = read_column_file(write(tmp_path, CONLL03_STYLE), tag_col=1)
    assert pos[0].tags == ["NNP", "VBZ", "JJ"]


def test_docstart_without_blank_line_ends_sentence(tmp_path):
    sents = read_column_file(write(tmp_path, "a X\nb Y\n-DOCSTART- O\nc Z\n"))
    assert [s.tokens for s in sents] == [["a", "b"], ["c"]]


def test_tab_separated_with_spaces_in_token_crlf_bom(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_bytes("\ufeffNew York\tNNP\r\nis\tVBZ\r\n\r\n \t \r\nok\tJJ\r\n".encode("utf-8"))
    sents = read_column_file(p, sep="\t")
    assert sents[0].tokens == ["New York", "is"] and sents[0].tags == ["NNP", "VBZ"]
    assert sents[1] == Sentence(["ok"], ["JJ"], 5, [["ok", "JJ"]])


def test_whitespace_lines_and_trailing_blank_lines(tmp_path):
    sents = read_column_file(write(tmp_path, "\n\n  \na\tDT\n   \n\n\nb\tNN\n\n\n"))
    assert [(s.tokens, s.line_no) for s in sents] == [(["a"], 4), (["b"], 8)]


def test_inconsistent_columns_names_file_and_line(tmp_path):
    p = write(tmp_path, "The DT\ndog NN\n\nbarks VBZ extra\n")
    with pytest.raises(ColumnFormatError) as info:
        read_column_file(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:4:") and "expected 2 columns (as on line 1), found 3" in msg
    assert info.value.line_no == 4 and info.value.path == str(p)


def test_too_few_columns_for_requested_tag_column(tmp_path):
    p = write(tmp_path, "\nThe DT\n")
    with pytest.raises(ColumnFormatError, match=rf"{p}:2: expected at least 4 whitespace-separated columns"):
        read_column_file(p, tag_col=3)


def test_empty_field_with_tab_separator(tmp_path):
    p = write(tmp_path, "The\tDT\ndog\t\n")
    with pytest.raises(ColumnFormatError, match=rf"{p}:2: empty column"):
        read_column_file(p, sep="\t")


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART- -X- O\n\n"])
def test_empty_file_is_an_error_unless_allowed(tmp_path, text):
    p = write(tmp_path, text)
    with pytest.raises(ColumnFormatError, match="no sentences found"):
        read_column_file(p)
    assert read_column_file(p, allow_empty=True) == []


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_column_file(tmp_path / "nope.txt")


def test_write_then_read_roundtrip(tmp_path):
    data = [(["a", "b"], ["X", "Y"]), (["c"], ["Z"])]
    p = tmp_path / "out.tsv"
    write_column_file(p, data)
    assert [(s.tokens, s.tags) for s in read_column_file(p, sep="\t")] == data
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.skipif(not (SHARED / "conll03").is_dir(), reason="../shared/data absent")
def test_real_conll03_dev_slice():
    sents = read_column_file(SHARED / "conll03" / "valid.txt", token_col=0, tag_col=3)
    assert len(sents) == 3250  # README: 3,250 sentences, 5,942 entities
    n_entities = sum(t.startswith("B-") for s in sents for t in s.tags)
    assert n_entities == 5942
    assert all(len(s.tokens) == len(s.tags) for s in sents)
    assert all(tok != "-DOCSTART-" for s in sents for tok in s.tokens)
