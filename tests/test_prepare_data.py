"""`make data` writes the Hub copies in the layouts our readers read (checked offline on Hub-shaped rows)."""

from __future__ import annotations

import importlib.util

from conftest import REPO_ROOT
from dicenlp.data.squad import read_squad_json

spec = importlib.util.spec_from_file_location("prepare_data", REPO_ROOT / "scripts" / "prepare_data.py")
prepare_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prepare_data)

ROWS = [  # the columns of rajpurkar/squad(_v2)
    {"id": "q1", "title": "Normans", "context": "The Normans were in Normandy.", "question": "Where?",
     "answers": {"text": ["Normandy"], "answer_start": [20]}},
    {"id": "q2", "title": "Normans", "context": "The Normans were in Normandy.", "question": "Who?",
     "answers": {"text": ["The Normans", "Normans"], "answer_start": [0, 4]}},
    {"id": "q3", "title": "Rhine", "context": "The Rhine flows north.", "question": "When?",
     "answers": {"text": [], "answer_start": []}},
]


def test_hub_rows_become_official_squad_json(tmp_path):
    from dicenlp.files import write_json_atomic

    path = write_json_atomic(tmp_path / "dev-v2.0.json", prepare_data._squad_json(ROWS, "v2.0"))
    examples = read_squad_json(path)
    assert [e["id"] for e in examples] == ["q1", "q2", "q3"]
    by_id = {e["id"]: e for e in examples}
    assert by_id["q2"]["context"] == "The Normans were in Normandy."
    assert by_id["q2"]["answers"] == ROWS[1]["answers"]  # the reader gives back the Hub's row layout
    assert by_id["q3"]["answers"]["text"] == [] and by_id["q3"]["is_impossible"]
    raw = __import__("json").loads(path.read_text())
    assert raw["version"] == "v2.0" and len(raw["data"]) == 2 and len(raw["data"][0]["paragraphs"]) == 1


def test_list_names_public_and_by_hand_datasets(capsys):
    assert prepare_data.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "conll03" in out and "ctb5" in out and "data/glue/MRPC" in out
