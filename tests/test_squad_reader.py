"""SQuAD-layout reader: the bundled fixtures, the real SQuAD 2.0 slice, and errors that name file and entry."""

from __future__ import annotations

import json

import pytest

from conftest import REPO_ROOT, shared_data
from dicenlp.data.squad import SquadFormatError, examples_from_rows, read_squad_json

SAMPLES = REPO_ROOT / "data" / "samples" / "squad"


def write(tmp_path, obj, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj, encoding="utf-8")
    return path


def squad(qas, context="Rollo led the Norse.", version="v2.0"):
    return {"version": version, "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_fixtures_read_flat_examples():
    v1 = read_squad_json(SAMPLES / "v1.1" / "dev-v1.1.json")
    assert len(v1) == 7 and not any(e["is_impossible"] for e in v1)
    first = v1[0]
    assert set(first) == {"id", "title", "context", "question", "answers", "is_impossible"}
    assert len(first["answers"]["text"]) == 3  # dev questions keep every gold answer
    for e in v1:
        for text, start in zip(e["answers"]["text"], e["answers"]["answer_start"]):
            assert e["context"][start:start + len(text)] == text
    v2 = read_squad_json(SAMPLES / "v2.0" / "dev-v2.0.json")
    assert sum(e["is_impossible"] for e in v2) == 3
    assert all(e["answers"]["text"] == [] for e in v2 if e["is_impossible"])
    quoref = read_squad_json(SAMPLES / "quoref" / "quoref-dev-v0.1.json")
    assert [len(e["answers"]["text"]) for e in quoref] == [1, 1, 1, 2]  # a multi-span answer


def test_real_squad2_slice():
    examples = read_squad_json(shared_data("squad2", "dev-v2.0-sample.json"))
    assert len(examples) == 208 and sum(e["is_impossible"] for e in examples) == 112
    assert examples[0]["title"] == "Normans" and examples[0]["answers"]["text"][0] == "France"


@pytest.mark.parametrize("obj, where, what", [
    ({"version": "1.1"}, "top level", '"data" list'),
    ({"data": [{"title": "x"}]}, "data[0]", '"paragraphs" list'),
    ({"data": [{"paragraphs": [{"qas": []}]}]}, "data[0].paragraphs[0]", '"context"'),
    (squad([{"question": "Who?", "answers": []}]), "qas[0]", '"id"'),
    (squad([{"id": "q1", "answers": []}]), "(id 'q1')", '"question"'),
    (squad([{"id": "q1", "question": "Who?", "answers": [{"text": "Rollo"}]}]), "answers[0]", "answer_start"),
    (squad([{"id": "q1", "question": "Who?", "answers": [{"text": "Rollo", "answer_start": 99}]}]),
     "answers[0]", "outside the context"),
    (squad([{"id": "q1", "question": "Who?", "answers": [{"text": "Rollo", "answer_start": 1}]}]),
     "answers[0]", "is not at answer_start 1"),
    (squad([{"id": "q1", "question": "Who?", "is_impossible": True,
             "answers": [{"text": "Rollo", "answer_start": 0}]}]), "(id 'q1')", "is_impossible is true"),
    (squad([{"id": "q1", "question": "A?", "answers": []}, {"id": "q1", "question": "B?", "answers": []}]),
     "qas[1] (id 'q1')", "duplicate question id"),
])
def test_errors_name_the_file_and_the_entry(tmp_path, obj, where, what):
    path = write(tmp_path, obj)
    with pytest.raises(SquadFormatError) as err:
        read_squad_json(path)
    message = str(err.value)
    assert str(path) in message and where in message and what in message, message


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path, '{"data": [\n  {"title": "x",,}\n]}')
    with pytest.raises(SquadFormatError, match=r"bad.json: line 2, column"):
        read_squad_json(path)


def test_answer_check_can_be_disabled(tmp_path):
    path = write(tmp_path, squad([{"id": "q1", "question": "Who?",
                                   "answers": [{"text": "Rollo", "answer_start": 1}]}]))
    assert read_squad_json(path, check_answers=False)[0]["answers"]["answer_start"] == [1]


def test_hub_rows_become_the_same_examples():
    rows = [{"id": "a", "title": "T", "context": "Rollo led.", "question": "Who?",
             "answers": {"text": ["Rollo"], "answer_start": [0]}},
            {"id": "b", "title": "T", "context": "Rollo led.", "question": "Why?",
             "answers": {"text": [], "answer_start": []}}]
    examples = list(examples_from_rows(rows))
    assert examples[0]["answers"] == {"text": ["Rollo"], "answer_start": [0]} and not examples[0]["is_impossible"]
    assert examples[1]["is_impossible"]
    with pytest.raises(SquadFormatError, match="missing columns"):
        list(examples_from_rows([{"id": "x"}]))
