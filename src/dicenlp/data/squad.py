"""Reader for the SQuAD JSON layout (SQuAD v1.1, SQuAD v2.0 and QuoRef, which is distributed in the same layout).

Layout (``train-v1.1.json``, ``dev-v2.0.json``, ``quoref-dev-v0.1.json``)::

    {"version": "v2.0",
     "data": [{"title": str,
               "paragraphs": [{"context": str,
                               "qas": [{"id": str, "question": str,
                                        "answers": [{"text": str, "answer_start": int}, ...],
                                        "is_impossible": bool}]}]}]}   # is_impossible: v2.0 only

``read_squad_json`` flattens it into one example per question, the row layout of the Hugging Face ``squad`` /
``squad_v2`` datasets (so both sources feed the same code)::

    {"id", "title", "context", "question", "answers": {"text": [...], "answer_start": [...]}, "is_impossible"}

Everything the task relies on is checked, and errors name the file and the entry
(``data[3].paragraphs[1].qas[0] (id '5733...')``) and say what was expected: missing keys, wrong types, duplicate
question ids, ``answer_start`` outside the context, an answer text that is not ``context[start:start+len]``, an
unanswerable question that has answers. QuoRef's multi-span answers are kept as the list of spans (see
docs/mrc.md for how they are scored).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from dicenlp.data.text import read_text
from dicenlp.errors import DataError

#: Hugging Face Hub copies of the datasets (``datasets.load_dataset(name)``, splits train/validation).
HUB_NAMES = {"squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2"}


class SquadFormatError(DataError):
    """A SQuAD-layout file does not have the expected structure (message names file and entry)."""


def _expect(cond: bool, path: Path | str, where: str, what: str) -> None:
    if not cond:
        raise SquadFormatError(f"{path}: {where}: {what}")


def read_squad_json(path: str | Path, *, check_answers: bool = True, allow_empty: bool = False) -> list[dict[str, Any]]:
    """Flat examples (one per question) of a SQuAD v1.1/v2.0/QuoRef JSON file; see the module docstring.
    A file without any question is an error unless ``allow_empty``."""
    path = Path(path)
    try:
        obj = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise SquadFormatError(f"{path}: line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})") from err
    examples = examples_from_squad_obj(obj, source=path, check_answers=check_answers)
    if not examples and not allow_empty:
        raise SquadFormatError("no questions", where=str(path),
                               expected='at least one question in data[].paragraphs[].qas (SQuAD JSON layout)')
    return examples


def examples_from_squad_obj(obj: Any, *, source: str | Path = "<object>",
                            check_answers: bool = True) -> list[dict[str, Any]]:
    """Flat, validated examples from an already parsed SQuAD-layout object."""
    _expect(isinstance(obj, dict) and isinstance(obj.get("data"), list), source, "top level",
            'expected an object with a "data" list (SQuAD JSON layout)')
    examples: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for i, article in enumerate(obj["data"]):
        where_a = f"data[{i}]"
        _expect(isinstance(article, dict) and isinstance(article.get("paragraphs"), list), source, where_a,
                'expected an object with a "paragraphs" list')
        title = article.get("title", "")
        for j, paragraph in enumerate(article["paragraphs"]):
            where_p = f"{where_a}.paragraphs[{j}]"
            _expect(isinstance(paragraph, dict), source, where_p, "expected an object")
            context = paragraph.get("context")
            _expect(isinstance(context, str), source, where_p, 'expected a string "context"')
            _expect(isinstance(paragraph.get("qas"), list), source, where_p, 'expected a "qas" list')
            for k, qa in enumerate(paragraph["qas"]):
                examples.append(_read_qa(qa, context, title, source, f"{where_p}.qas[{k}]", seen, check_answers))
    return examples


def _read_qa(qa: Any, context: str, title: str, source, where: str, seen: dict[str, str],
             check_answers: bool) -> dict[str, Any]:
    _expect(isinstance(qa, dict), source, where, "expected an object")
    qid = qa.get("id")
    _expect(isinstance(qid, (str, int)) and str(qid) != "", source, where, 'expected a non-empty "id"')
    qid = str(qid)
    where = f"{where} (id {qid!r})"
    _expect(qid not in seen, source, where, f"duplicate question id (first at {seen.get(qid)})")
    seen[qid] = where
    _expect(isinstance(qa.get("question"), str), source, where, 'expected a string "question"')
    answers = qa.get("answers", [])
    _expect(isinstance(answers, list), source, where, '"answers" must be a list')
    impossible = qa.get("is_impossible", False)
    _expect(isinstance(impossible, bool), source, where, '"is_impossible" must be true or false')
    _expect(not (impossible and answers), source, where, "is_impossible is true but the question has answers")
    texts, starts = [], []
    for m, answer in enumerate(answers):
        where_ans = f"{where}.answers[{m}]"
        _expect(isinstance(answer, dict) and isinstance(answer.get("text"), str), source, where_ans,
                'expected an object with a string "text"')
        start = answer.get("answer_start")
        _expect(isinstance(start, int) and not isinstance(start, bool), source, where_ans,
                'expected an integer "answer_start"')
        text = answer["text"]
        _expect(0 <= start and start + len(text) <= len(context), source, where_ans,
                f"answer_start {start} + len(text) {len(text)} lies outside the context ({len(context)} chars)")
        if check_answers:
            found = context[start:start + len(text)]
            _expect(found == text, source, where_ans,
                    f"answer text {text!r} is not at answer_start {start} (the context has {found!r} there)")
        texts.append(text)
        starts.append(start)
    return {"id": qid, "title": title, "context": context, "question": qa["question"],
            "answers": {"text": texts, "answer_start": starts}, "is_impossible": impossible or not texts}


def load_hub_split(name: str, split: str) -> list[dict[str, Any]]:
    """Examples of a Hub copy (``HUB_NAMES`` key or any dataset with the ``squad`` columns) in our row layout.

    Needs network or a filled ``datasets`` cache. ``split`` is the Hub's name (``train``/``validation``)."""
    import datasets

    rows = datasets.load_dataset(HUB_NAMES.get(name, name), split=split)
    return list(examples_from_rows(rows, source=f"hub:{name}[{split}]"))


def examples_from_rows(rows: Iterable[Mapping[str, Any]], *, source: str = "<rows>") -> Iterable[dict[str, Any]]:
    """Rows with the Hugging Face ``squad`` columns (``id``, ``context``, ``question``, ``answers``) → examples."""
    for n, row in enumerate(rows):
        missing = {"id", "context", "question", "answers"} - set(row)
        _expect(not missing, source, f"row {n}", f"missing columns {sorted(missing)}")
        texts = list(row["answers"]["text"])
        yield {"id": str(row["id"]), "title": row.get("title", ""), "context": row["context"],
               "question": row["question"],
               "answers": {"text": texts, "answer_start": [int(s) for s in row["answers"]["answer_start"]]},
               "is_impossible": not texts}
