"""GLUE / SST readers on fixtures in each published layout, plus the real MRPC slice when present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dicenlp.data.glue import (MRPC, QQP, SST, Examples, GlueFormatError, is_unlabeled, local_files, read_id_pairs,
                               read_jsonl, read_local, read_tsv, split_mrpc_dev, write_local)

from conftest import REPO_ROOT, shared_data

SAMPLES = REPO_ROOT / "data" / "samples" / "glue"
MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"


def test_mrpc_glue_layout_with_bom():
    raw = (SAMPLES / "MRPC" / "train.tsv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfQuality")  # the fixture really has the byte-order mark
    train = read_tsv(SAMPLES / "MRPC" / "train.tsv", MRPC)
    assert len(train) == 16 and train.text_b is not None
    assert train.ids[0] == "1000101_1000102" and train.label[:2].tolist() == [1, 0]
    assert train.text_a[0].startswith("The council approved")


def test_quote_starting_field_does_not_swallow_lines():
    # GLUE reads with quoting off: a field that starts with '"' is literal text, not a quoted field.
    dev = read_tsv(SAMPLES / "MRPC" / "dev.tsv", MRPC)
    assert len(dev) == 8
    assert dev.text_a[0] == '" We are very pleased with the result , " the coach said .'
    assert dev.text_b[0] == 'The coach said he was " very pleased " with the result .'
    assert dev.text_b[-1] == "The central bank left interest rates unchanged ' for now ' ."


def test_unbalanced_quote_is_literal(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text(MRPC_HEADER + '1\t1\t2\t"He said\tHe said "so\n0\t3\t4\tA "b\tc\n', encoding="utf-8")
    ex = read_tsv(path, MRPC)
    assert ex.text_a == ['"He said', 'A "b'] and ex.text_b == ['He said "so', "c"]
    assert ex.label.tolist() == [1, 0]


def test_missing_column_names_file_and_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("\ufeff" + MRPC_HEADER + "1\t1\t2\ta\tb\n0\t3\t4\tonly one sentence\n", encoding="utf-8")
    with pytest.raises(GlueFormatError, match=r"train\.tsv:3: expected 5 tab-separated columns .*found 4"):
        read_tsv(path, MRPC)
    skipped = read_tsv(path, MRPC, on_bad_row="skip")
    assert len(skipped) == 1 and skipped.skipped_lines == [3]


def test_bad_label_and_bad_header(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("sentence\tlabel\ngood\t1\nbad\tpositive\n", encoding="utf-8")
    with pytest.raises(GlueFormatError, match=r"dev\.tsv:3: expected a label in 0\.\.1 .*'positive'"):
        read_tsv(path, SST)
    path.write_text("text\tlabel\nx\t1\n", encoding="utf-8")
    with pytest.raises(GlueFormatError, match=r"dev\.tsv:1: expected the SST header 'sentence\\tlabel'"):
        read_tsv(path, SST)
    path.write_text("sentence\tlabel\nx\t4\n", encoding="utf-8")
    assert read_tsv(path, SST, num_labels=5).label.tolist() == [4]
    with pytest.raises(GlueFormatError, match="0..1"):
        read_tsv(path, SST, num_labels=2)


def test_unlabeled_glue_test_files_are_recognised():
    assert is_unlabeled(SAMPLES / "MRPC" / "test.tsv", MRPC)
    assert is_unlabeled(SAMPLES / "QQP" / "test.tsv", QQP)
    assert is_unlabeled(SAMPLES / "SST-2" / "test.tsv", SST)
    with pytest.raises(GlueFormatError, match="unlabeled MRPC test file"):
        read_tsv(SAMPLES / "MRPC" / "test.tsv", MRPC)


def test_mrpc_local_splits_glue_layout_plus_labeled_test():
    files = local_files("mrpc", SAMPLES / "MRPC")
    assert files["test"].name == "msr_paraphrase_test.txt"  # GLUE's test.tsv has no labels
    splits = read_local("mrpc", SAMPLES / "MRPC")
    assert {k: len(v) for k, v in splits.items()} == {"train": 16, "dev": 8, "test": 10}


def test_mrpc_original_release_with_dev_ids_matches_glue_split():
    original = read_local("mrpc", SAMPLES / "MRPC-original")  # CRLF line ends + BOM
    glue = read_local("mrpc", SAMPLES / "MRPC")
    for split in ("train", "dev", "test"):
        assert original[split].ids == glue[split].ids
        assert original[split].text_a == glue[split].text_a and original[split].text_b == glue[split].text_b
        assert original[split].label.tolist() == glue[split].label.tolist()
    assert not any(t.endswith("\r") for t in original["train"].text_b)


def test_mrpc_dev_ids_errors(tmp_path):
    path = tmp_path / "ids.tsv"
    path.write_text("1000121\t1000122\nnot an id\n", encoding="utf-8")
    with pytest.raises(GlueFormatError, match=r"ids\.tsv:2: expected two tab-separated sentence ids"):
        read_id_pairs(path)
    train = read_tsv(SAMPLES / "MRPC" / "train.tsv", MRPC)
    with pytest.raises(GlueFormatError, match="1 dev id pairs are not in"):
        split_mrpc_dev(train, [("1", "2")])


def test_qqp_and_sst2_layouts():
    qqp = read_local("qqp", SAMPLES / "QQP")
    assert set(qqp) == {"train", "dev"}  # GLUE's QQP test is unlabeled
    assert len(qqp["train"]) == 40 and qqp["train"].ids[0] == "100"
    assert qqp["train"].text_a[0] == "How do I learn Python quickly?" and qqp["train"].label[0] == 1
    sst2 = read_local("sst2", SAMPLES / "SST-2")
    assert set(sst2) == {"train", "dev"} and sst2["train"].text_b is None
    assert sst2["dev"].label.tolist() == [1, 0, 1, 0, 1, 0]


def test_sst5_jsonl_and_tsv(tmp_path):
    sst5 = read_local("sst5", SAMPLES / "SST-5")
    assert {k: len(v) for k, v in sst5.items()} == {"train": 15, "dev": 5, "test": 6}
    assert sorted(set(sst5["train"].label.tolist())) == [0, 1, 2, 3, 4]
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(
            f"{t}\t{y}\n" for t, y in zip(sst5[split].text_a, sst5[split].label)), encoding="utf-8")
    as_tsv = read_local("sst5", tmp_path)
    assert as_tsv["test"].text_a == sst5["test"].text_a and (as_tsv["test"].label == sst5["test"].label).all()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "label": 7}) + "\n", encoding="utf-8")
    with pytest.raises(GlueFormatError, match=r"bad\.jsonl:1: expected 'label' in 0\.\.4, found 7"):
        read_jsonl(bad, 5)


def test_examples_select_concat():
    ex = read_tsv(SAMPLES / "MRPC" / "dev.tsv", MRPC)
    sub = ex.select([2, 0])
    assert sub.ids == [ex.ids[2], ex.ids[0]] and sub.label.tolist() == [ex.label[2], ex.label[0]]
    both = type(ex).concat([ex, sub])
    assert len(both) == len(ex) + 2 and both.to_dict()["text_b"][-1] == ex.text_b[0]


def test_real_mrpc_slice():
    directory = shared_data("mrpc")
    train = read_tsv(directory / "train.tsv", MRPC)
    dev = read_tsv(directory / "dev.tsv", MRPC)
    assert (len(train), len(dev)) == (3668, 408)  # GLUE MRPC train / dev
    assert 0.6 < train.label.mean() < 0.72  # ~68% paraphrases (PAPER.md §3.4)
    assert dev.text_b[0].startswith('" The foodservice pie business')
    assert len(set(train.ids) & set(dev.ids)) == 0


@pytest.mark.parametrize("dataset,folder", [("mrpc", "MRPC"), ("qqp", "QQP"), ("sst2", "SST-2"), ("sst5", "SST-5")])
def test_write_local_round_trip(dataset, folder, tmp_path):
    splits = read_local(dataset, SAMPLES / folder)
    write_local(dataset, splits, tmp_path)
    back = read_local(dataset, tmp_path)
    assert sorted(back) == sorted(splits)
    for split in splits:
        assert (back[split].ids, back[split].text_a, back[split].text_b) == (splits[split].ids, splits[split].text_a,
                                                                              splits[split].text_b)
        assert back[split].label.tolist() == splits[split].label.tolist()


def test_write_local_removes_tabs_and_line_breaks(tmp_path):
    ex = Examples(["1_2"], ["a\tb"], ['"c\r\nd'], np.array([1]))
    write_local("mrpc", {"train": ex}, tmp_path)
    back = read_tsv(tmp_path / "train.tsv", MRPC)
    assert back.text_a == ["a b"] and back.text_b == ['"c d'] and back.ids == ["1_2"]
