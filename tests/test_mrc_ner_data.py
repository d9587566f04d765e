"""NER data: column/char/SIGHAN/BERT-MRC JSON readers, conversions and round trips, MSRA split, Hub mapping."""

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, shared_data
from dicenlp.data.conll import read_column_file
from dicenlp.data.mrc_ner import (MrcExample, NerDataError, NerSentence, context_tokens, hf_to_sentences,
                                  load_ner_splits, mrc_to_sentences, read_mrc_json, read_mrc_sentences,
                                  read_slash_file, read_tagged_file, sentences_to_mrc, split_train_dev,
                                  write_mrc_json, write_tagged_file)
from dicenlp.data.schemes import spans_to_tags

SAMPLES = REPO_ROOT / "data" / "samples"
CONLL = SAMPLES / "conll03"
MSRA = SAMPLES / "msra"


def _queries(task: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "configs" / "task" / f"{task}.yaml").read_text())["task"]["params"]["queries"]


def test_conll_fixture_reads_with_docstart_and_tricky_cases():
    sents = read_tagged_file(CONLL / "train.txt", scheme="BIO", strict=True)
    assert all("-DOCSTART-" not in s.tokens for s in sents)
    first = sents[0]
    assert first.tokens[:5] == ["Smith", "told", "Jones", "that", "Smith"]
    # the repeated mention is two gold entities, and the sentence-final entities are kept
    assert first.entities == [(0, 0, "PER"), (2, 2, "PER"), (4, 4, "PER"), (7, 8, "ORG")]
    assert sents[1].entities == [(3, 3, "LOC"), (5, 5, "LOC")] and len(sents[1].tokens) == 6
    assert sents[3].entities == [(0, 0, "LOC"), (2, 3, "PER"), (4, 5, "PER"), (7, 8, "PER")]  # adjacent PERs
    assert sents[0].source.endswith("train.txt:3")


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_bio_iob1_bioes_fixtures_hold_identical_spans(split):
    bio = read_tagged_file(CONLL / f"{split}.txt", scheme="BIO", strict=True)
    iob1 = read_tagged_file(CONLL / "iob1" / f"{split}.txt", scheme="IOB1", strict=True)
    bioes = read_tagged_file(CONLL / "bioes" / f"{split}.txt", scheme="BIOES", strict=True)
    auto = [read_tagged_file(p) for p in (CONLL / "iob1" / f"{split}.txt", CONLL / "bioes" / f"{split}.txt")]
    for other in (iob1, bioes, *auto):
        assert [(s.tokens, s.entities) for s in other] == [(s.tokens, s.entities) for s in bio]


def test_strict_reader_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("-DOCSTART- -X- -X- O\n\nRain NN O O\nin NN O O\nOslo NNP I-NP I-LOC\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt:5: tag 'I-LOC' \(after 'O'"):
        read_tagged_file(bad, scheme="BIO", strict=True)
    assert read_tagged_file(bad, scheme="BIO")[0].entities == [(2, 2, "LOC")]  # conlleval repair


def test_round_trip_tags_mrc_spans_tags_on_fixture(tmp_path):
    raw = read_column_file(CONLL / "train.txt", tag_col=3)
    sents = read_tagged_file(CONLL / "train.txt")
    examples = sentences_to_mrc(sents, _queries("conll03"))
    assert len(examples) == 4 * len(sents)
    assert examples[0].qas_id == "0.1" and examples[0].entity_label == "PER"
    assert examples[0].start_position == [0, 2, 4] and examples[0].end_position == [0, 2, 4]
    path = tmp_path / "mrc-ner.train"
    write_mrc_json(path, examples)
    back = mrc_to_sentences(read_mrc_json(path))
    assert [spans_to_tags(s.entities, len(s.tokens), "BIO") for s in back] == [r.tags for r in raw]
    assert [s.tokens for s in back] == [r.tokens for r in raw]
    # and write → read of the JSON objects themselves is the identity
    assert read_mrc_json(path) == [MrcExample(**{**e.__dict__, "impossible": not e.start_position,
                                                 "span_position": [f"{a};{b}" for a, b in
                                                                   zip(e.start_position, e.end_position)]})
                                   for e in examples]


def test_round_trip_on_real_conll03_slice():
    path = shared_data("conll03", "valid.txt")
    raw = read_column_file(path, tag_col=3)
    sents = read_tagged_file(path, scheme="BIO", strict=True)
    assert sum(len(s.entities) for s in sents) == 5942  # every dev mention (the official count)
    back = mrc_to_sentences(sentences_to_mrc(sents, _queries("conll03")))
    assert [spans_to_tags(s.entities, len(s.tokens), "BIO") for s in back] == [r.tags for r in raw]


def test_real_bert_mrc_json_matches_the_column_file():
    mrc = read_mrc_sentences(shared_data("mrc_ner_conll03", "mrc-ner.train"))
    cols = read_tagged_file(shared_data("conll03", "train_2k.txt"), scheme="BIO")
    assert len(mrc) == 1000
    assert [(s.tokens, s.entities) for s in mrc] == [(s.tokens, s.entities) for s in cols[:1000]]


def test_mrc_fixture_has_nested_entities():
    sents = read_mrc_sentences(SAMPLES / "mrc_ner" / "mrc-ner.dev")
    nested = [s for s in sents if s.tokens[:3] == ["He", "studied", "at"]][0]
    assert nested.entities == [(4, 6, "ORG"), (4, 8, "ORG"), (6, 6, "LOC")]
    with pytest.raises(ValueError, match="overlap"):
        write_tagged_file(Path("/nonexistent/x.txt"), [nested])


def test_mrc_reader_errors_name_file_and_record(tmp_path):
    good = {"context": "Rain in Oslo", "query": "q", "entity_label": "LOC", "start_position": [2],
            "end_position": [2], "qas_id": "0.1"}
    cases = [
        ({**good, "end_position": [3]}, r"\[1\] \(qas_id '0.1'\): span \(2, 3\) is not 0 <= start <= end < 3"),
        ({**good, "end_position": [2, 2]}, r"1 start positions but 2 end positions"),
        ({k: v for k, v in good.items() if k != "context"}, r"missing field\(s\) \['context'\]"),
        ({**good, "start_position": [2], "end_position": [1]}, r"span \(2, 1\)"),
    ]
    for obj, msg in cases:
        path = tmp_path / "mrc-ner.dev"
        path.write_text(json.dumps([good, obj]), encoding="utf-8")
        with pytest.raises(NerDataError, match=msg):
            read_mrc_json(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(NerDataError, match="mrc-ner.dev:1: not valid JSON"):
        read_mrc_json(path)
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(NerDataError, match="expected a JSON array"):
        read_mrc_json(path)


def test_grouping_without_qas_ids_and_context_mismatch():
    ex = [MrcExample("a b", "q", "PER", [0], [0]), MrcExample("a b", "q", "LOC", [1], [1]),
          MrcExample("a b", "q", "PER", [], []),  # same context again: a new sentence (type repeats)
          MrcExample("c", "q", "LOC", [], [])]
    sents = mrc_to_sentences(ex)
    assert [(s.tokens, s.entities) for s in sents] == [(["a", "b"], [(0, 0, "PER"), (1, 1, "LOC")]),
                                                       (["a", "b"], []), (["c"], [])]
    bad = [MrcExample("a b", "q", "PER", [], [], qas_id="0.1"), MrcExample("a c", "q", "LOC", [], [], qas_id="0.2")]
    with pytest.raises(NerDataError, match="context differs"):
        mrc_to_sentences(bad, source="f")


def test_sentences_to_mrc_rejects_bad_sentences():
    with pytest.raises(NerDataError, match=r"\['ORG'\] have no query"):
        sentences_to_mrc([NerSentence(["Acme"], [(0, 0, "ORG")])], {"PER": "q"})
    with pytest.raises(NerDataError, match=r"outside the 1 tokens"):
        sentences_to_mrc([NerSentence(["Acme"], [(0, 1, "ORG")])], {"ORG": "q"})
    with pytest.raises(NerDataError, match=r"Chinese BERT-MRC contexts are characters"):
        sentences_to_mrc([NerSentence(["北京", "市"], [])], {"ORG": "q"}, language="zh")


def test_chinese_char_level_formats_agree_and_mrc_round_trip(tmp_path):
    bio = read_tagged_file(MSRA / "train.txt", scheme="BIO", strict=True)
    bmes = read_tagged_file(MSRA / "bmes" / "train.txt", scheme="BMES", strict=True)
    sighan = read_slash_file(MSRA / "sighan" / "train.txt")
    assert [(s.tokens, s.entities) for s in bmes] == [(s.tokens, s.entities) for s in bio]
    assert [(s.tokens, s.entities) for s in sighan] == [(s.tokens, s.entities) for s in bio]
    assert all(len(c) == 1 for s in bio for c in s.tokens)
    mapped = read_tagged_file(MSRA / "train.txt", label_map={"NR": "PER", "NS": "LOC", "NT": "ORG"})
    assert {t for s in mapped for _, _, t in s.entities} == {"PER", "LOC", "ORG"}
    examples = sentences_to_mrc(mapped, _queries("msra"), language="zh")
    path = tmp_path / "mrc-ner.train"
    write_mrc_json(path, examples)
    text = path.read_text(encoding="utf-8")
    assert "人名实体" in text  # written as UTF-8, not escaped
    back = read_mrc_sentences(path, language="zh")
    assert [(s.tokens, s.entities) for s in back] == [(s.tokens, s.entities) for s in mapped]
    assert context_tokens("中 国 人", "zh") == ["中", "国", "人"] == context_tokens("中国 人", "zh")


def test_slash_reader_errors(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("北京/ns 欢迎/o 你\n", encoding="utf-8")
    with pytest.raises(NerDataError, match=r"train.txt:1: expected word/tag items"):
        read_slash_file(path)


def test_msra_split_is_seeded_and_disjoint():
    sents = read_tagged_file(MSRA / "train.txt")
    train, dev = split_train_dev(sents, 0.1, seed=42)
    assert len(dev) == round(0.1 * len(sents)) and len(train) + len(dev) == len(sents)
    train2, dev2 = split_train_dev(sents, 0.1, seed=42)
    assert [s.source for s in dev] == [s.source for s in dev2]
    assert {s.source for s in train}.isdisjoint({s.source for s in dev})
    _, dev3 = split_train_dev(sents, 0.1, seed=7)
    assert [s.source for s in dev3] != [s.source for s in dev]
    splits = load_ner_splits(MSRA, language="zh", dev_ratio=0.1, split_seed=42)
    assert sorted(splits) == ["dev", "test", "train"]
    assert [s.source for s in splits["dev"]] == [s.source for s in dev]
    with pytest.raises(FileNotFoundError, match="dev_ratio"):
        load_ner_splits(MSRA, language="zh")


def test_load_ner_splits_formats(tmp_path):
    col = load_ner_splits(CONLL)
    js = load_ner_splits(SAMPLES / "mrc_ner")
    assert sorted(col) == sorted(js) == ["dev", "test", "train"]
    assert [(s.tokens, s.entities) for s in js["train"][:36]] == [(s.tokens, s.entities) for s in col["train"][:36]]
    slash = load_ner_splits(MSRA / "sighan", data_format="slash", dev_ratio=0.1)
    assert len(slash["test"]) == len(read_tagged_file(MSRA / "test.txt"))
    with pytest.raises(FileNotFoundError, match="no NER data"):
        load_ner_splits(tmp_path)


def test_hub_dataset_mapping_uses_classlabel_names():
    """The mapping of a Hub token-classification dataset (ClassLabel ids → BIO strings → spans), on a real
    ``datasets.Dataset`` built offline with the features of eriktks/conll2003."""
    import datasets

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    ds = datasets.Dataset.from_dict({"tokens": [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]],
                                     "ner_tags": [[3, 0, 7, 0], [1, 2]]}, features=features)
    sents = hf_to_sentences(ds, source="conll2003:train")
    assert [s.entities for s in sents] == [[(0, 0, "ORG"), (2, 2, "MISC")], [(0, 1, "PER")]]
    assert sents[1].source == "conll2003:train[1]"


def test_hub_integer_tags_use_label_names():
    """Parquet copies without ClassLabel names (e.g. a refs/convert/parquet export) map ids via label_names."""
    import datasets

    from dicenlp.data.mrc_ner import CONLL03_TAGS

    ds = datasets.Dataset.from_dict({"tokens": [["Peter", "Blackburn", "in", "Oslo"]], "ner_tags": [[1, 2, 0, 5]]})
    assert hf_to_sentences(ds, label_names=CONLL03_TAGS)[0].entities == [(0, 1, "PER"), (3, 3, "LOC")]
    with pytest.raises(NerDataError, match="integer tags without label names"):
        hf_to_sentences(ds)
