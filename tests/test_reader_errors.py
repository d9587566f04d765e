"""The readers' messages for malformed files: each names the file and line and says what was expected."""

from __future__ import annotations

import logging

import pytest

from dicenlp.data.chinese_pos import read_word_pos_file
from dicenlp.data.conll import read_column_file
from dicenlp.data.conllu import read_conllu
from dicenlp.data.glue import SST, read_jsonl, read_tsv
from dicenlp.data.mrc_ner import NerSentence, check_entity_types, read_mrc_json, read_slash_file, read_tagged_file
from dicenlp.data.schemes import guess_scheme, ill_formed_positions
from dicenlp.data.squad import read_squad_json
from dicenlp.errors import DataError, MissingDataError, UserError

LATIN1 = "café".encode("latin-1")  # b"caf\xe9": not UTF-8


@pytest.mark.parametrize("name, content, reader", [
    ("pos.tsv", b"The\tDT\ndog\tNN\n\n" + LATIN1 + b"\tNN\n", read_column_file),
    ("ner.txt", b"EU B-ORG\n" + LATIN1 + b" O\n", read_tagged_file),
    ("ud.conllu", b"# text\n1\tThe\t_\tDET\tDT\t_\t0\troot\t_\t_\n2\t" + LATIN1 + b"\t_\tNOUN\tNN\t_\t1\tx\t_\t_\n",
     read_conllu),
    ("ctb.txt", "上海_NR 是_VC\n".encode() + LATIN1 + b"_NN\n", read_word_pos_file),
    ("msra.txt", "北京/ns 是/o\n".encode() + LATIN1 + b"/o\n", read_slash_file),
    ("sst.jsonl", b'{"text": "ok", "label": 1}\n{"text": "' + LATIN1 + b'", "label": 0}\n',
     lambda p: read_jsonl(p, num_labels=5)),
    ("sst.tsv", b"sentence\tlabel\nfine\t1\n" + LATIN1 + b"\t0\n", lambda p: read_tsv(p, SST)),
    ("dev.json", b'{"data": [\n{"title": "' + LATIN1 + b'", "paragraphs": []}]}', read_squad_json),
    ("mrc-ner.dev", b'[\n{"context": "' + LATIN1 + b'"}]', read_mrc_json),
])
def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path, name, content, reader):
    path = tmp_path / name
    path.write_bytes(content)
    before = content[:content.index(b"\xe9")]
    line, column = before.count(b"\n") + 1, len(before) - before.rfind(b"\n")
    with pytest.raises(DataError, match=rf"{name}:{line}: not UTF-8 text \(byte 0xe9 at column {column}\); "
                                        rf"expected UTF-8"):
        reader(path)


def test_a_missing_file_is_a_user_error_and_still_a_file_not_found_error(tmp_path):
    with pytest.raises(MissingDataError, match="nope.txt: column file not found") as info:
        read_column_file(tmp_path / "nope.txt")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, UserError)


def test_an_unparsable_tag_names_its_own_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn X-PER\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.txt:5: cannot parse tag 'X-PER': expected 'O' or PREFIX-TYPE"):
        read_tagged_file(path)


def test_i_without_b_in_bio_is_repaired_counted_and_logged(tmp_path, caplog):
    """A BIO file whose entities mostly start with B- but a few with I-: still BIO (not IOB1), the I- tags are
    read as conlleval reads them (a new entity starts), and the count is reported."""
    path = tmp_path / "train.txt"
    path.write_text("EU B-ORG\nrejects O\nGerman I-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n\nin O\nOslo I-LOC\n",
                    encoding="utf-8")
    repairs = {}
    with caplog.at_level(logging.WARNING):
        sentences = read_tagged_file(path, repairs=repairs)
    assert [s.entities for s in sentences] == [[(0, 0, "ORG"), (2, 2, "MISC")], [(0, 1, "PER")], [(1, 1, "LOC")]]
    assert repairs == {str(path): {"scheme": "BIO", "ill_formed_tags": 2, "first": f"{path}:3"}}
    assert "2 tag(s) are not well formed for BIO (first at line 3: tag 'I-MISC' (after 'O', before 'O'))" in caplog.text


def test_guess_scheme_tells_iob1_from_bio_with_mistakes():
    assert guess_scheme([["I-PER", "I-PER", "O", "I-LOC"], ["I-ORG", "B-ORG"]]) == "IOB1"
    assert guess_scheme([["B-PER", "I-PER", "O", "I-LOC"]]) == "BIO"  # a B- after O: IOB1 never writes that
    assert ill_formed_positions([["B-PER", "I-PER", "O", "I-LOC"], ["I-X"]], "BIO") == [(0, 3), (1, 0)]


def test_an_entity_type_without_a_query_names_file_and_line(tmp_path):
    path = tmp_path / "dev.txt"
    path.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\nin O\nOslo B-CITY\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dev.txt:7: entity type 'CITY' has no query; expected one of "
                                        r"\['ORG', 'PER'\] \(add a query to task.params.queries"):
        check_entity_types(read_tagged_file(path), ["ORG", "PER"])
    json_sentence = NerSentence(["a"], [(0, 0, "CITY")], source="mrc-ner.dev[12]")
    with pytest.raises(DataError, match=r"mrc-ner.dev\[12\]: entity type 'CITY'"):
        check_entity_types([json_sentence], ["ORG"])


def test_an_empty_squad_split_is_an_error(tmp_path):
    path = tmp_path / "dev-v2.0.json"
    path.write_text('{"version": "v2.0", "data": []}', encoding="utf-8")
    with pytest.raises(DataError, match=r"dev-v2.0.json: no questions; expected at least one"):
        read_squad_json(path)


def test_the_column_of_a_bad_byte_counts_characters_after_a_byte_order_mark(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"\xef\xbb\xbfQuality\n1\t\xe4\xb8\x8a\xe6\xb5\xb7\t" + LATIN1 + b"\n")  # BOM, 上海 (6 bytes)
    with pytest.raises(DataError, match=r"train.tsv:2: not UTF-8 text \(byte 0xe9 at column 9\)"):
        read_column_file(path)
