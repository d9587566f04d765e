"""SQuAD-style examples → model features: overlapping windows over long contexts, with answer token positions.

``prepare_features`` is the batched function given to ``datasets.Dataset.map(batched=True)``. One example
(question + context) becomes one or more *features* (windows)::

    BERT  (question first, right padding):  [CLS] question [SEP] context-window [SEP]
    XLNet (context first,  left padding):   context-window <sep> question <sep> <cls>

The layout is read from the tokenizer, never assumed:

* which side the context goes on: ``context_first=None`` follows the Hugging Face convention (context first
  exactly when ``tokenizer.padding_side == "left"``, i.e. XLNet, as in XLNet's own SQuAD code);
* which tokens are context: ``encoding.sequence_ids(i)`` (special tokens are ``None``);
* where the null ("no answer in this window") position is: the ``cls_token`` among the special tokens of the
  feature's ``input_ids`` (index 0 for BERT, the last index for XLNet).

Windows: ``max_length`` tokens in all; the question is cut to ``max_query_length`` tokens first; consecutive
windows share ``doc_stride`` context tokens (the fast tokenizer's ``stride`` with ``return_overflowing_tokens``).
Note: the official code (``squad_convert_examples_to_features`` of transformers 3.x, like Google's BERT) uses
``doc_stride`` as the *step* between window starts instead; docs/mrc.md compares both.

Answer positions: the first gold answer's characters ``[answer_start, answer_start + len(text))`` map to the
last context token starting at or before ``answer_start`` and the first context token ending at or after the
answer end (the Hugging Face rule). When the answer is not entirely inside a window, or the question is
unanswerable, start = end = the null position. Every feature keeps its context tokens' character offsets
(``offset_start``/``offset_end``, -1 outside the context) so that predictions map back to context text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Bumped whenever the features change, so that stale caches are never read.
FEATURE_VERSION = 1

#: Columns written by ``prepare_features`` (``token_type_ids`` only when the tokenizer returns them).
FEATURE_COLUMNS = ("input_ids", "token_type_ids", "offset_start", "offset_end", "cls_index", "start_positions",
                   "end_positions", "example_index", "context_length")


def resolve_context_first(tokenizer, context_first: bool | None) -> bool:
    """Context before the question? ``None`` → the Hugging Face rule: yes iff the tokenizer pads on the left."""
    return tokenizer.padding_side == "left" if context_first is None else bool(context_first)


def check_window_settings(tokenizer, max_length: int, doc_stride: int, max_query_length: int) -> None:
    """Raise ``ValueError`` unless a window has room for the question, the specials and more than ``doc_stride``
    context tokens (the tokenizer's overflow needs stride < the truncated sequence's length)."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    room = max_length - max_query_length - specials
    if max_query_length < 1 or doc_stride < 0 or room <= doc_stride:
        raise ValueError(f"max_length={max_length} leaves {room} context tokens after max_query_length="
                         f"{max_query_length} and {specials} special tokens; need more than doc_stride={doc_stride}")
    if tokenizer.cls_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no cls token; the QA task scores 'no answer in this "
                         "window' at the cls position")


def truncate_questions(questions: list[str], tokenizer, max_query_length: int) -> list[str]:
    """Questions without leading white space, cut after their ``max_query_length``-th token (by offsets)."""
    questions = [q.lstrip() for q in questions]
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True,
                        return_attention_mask=False, return_token_type_ids=False)
    for i, offsets in enumerate(encoded["offset_mapping"]):
        if len(offsets) > max_query_length:
            questions[i] = questions[i][:offsets[max_query_length - 1][1]]
    return questions


def prepare_features(batch: dict[str, list[Any]], tokenizer, *, max_length: int, doc_stride: int,
                     max_query_length: int, context_first: bool) -> dict[str, list[Any]]:
    """Batched ``datasets.map`` function: examples (``question``, ``context``, ``answers``, ``example_index``)
    → features (``FEATURE_COLUMNS``); see the module docstring."""
    questions = truncate_questions(batch["question"], tokenizer, max_query_length)
    contexts = batch["context"]
    first, second = (contexts, questions) if context_first else (questions, contexts)
    encoded = tokenizer(first, second, truncation="only_first" if context_first else "only_second",
                        max_length=max_length, stride=doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True, return_token_type_ids=True, return_attention_mask=False,
                        padding=False)
    context_id = 0 if context_first else 1
    cls_id = tokenizer.cls_token_id
    out: dict[str, list[Any]] = {name: [] for name in FEATURE_COLUMNS}
    for i, example in enumerate(encoded["overflow_to_sample_mapping"]):
        ids = encoded["input_ids"][i]
        seq_ids = encoded.sequence_ids(i)
        is_context = np.array([s == context_id for s in seq_ids], dtype=bool)
        offsets = np.asarray(encoded["offset_mapping"][i], dtype=np.int64).reshape(-1, 2)
        offset_start = np.where(is_context, offsets[:, 0], -1)
        offset_end = np.where(is_context, offsets[:, 1], -1)
        cls_index = next(p for p, (s, t) in enumerate(zip(seq_ids, ids)) if s is None and t == cls_id)
        answers = batch["answers"][example]
        start = end = cls_index
        context_tokens = np.flatnonzero(is_context)
        if answers["text"] and context_tokens.size:
            start_char = int(answers["answer_start"][0])
            end_char = start_char + len(answers["text"][0])
            starts, ends = offset_start[context_tokens], offset_end[context_tokens]
            if starts[0] <= start_char and ends[-1] >= end_char:  # the answer lies inside this window
                start = int(context_tokens[np.searchsorted(starts, start_char, side="right") - 1])
                end = int(context_tokens[min(np.searchsorted(ends, end_char, side="left"), len(ends) - 1)])
        # numpy rows: datasets writes lists of arrays to Arrow directly (python lists are type-scanned first)
        out["input_ids"].append(np.asarray(ids, dtype=np.int32))
        if "token_type_ids" in encoded:
            out["token_type_ids"].append(np.asarray(encoded["token_type_ids"][i], dtype=np.int8))
        out["offset_start"].append(offset_start.astype(np.int32))
        out["offset_end"].append(offset_end.astype(np.int32))
        out["cls_index"].append(cls_index)
        out["start_positions"].append(start)
        out["end_positions"].append(end)
        out["example_index"].append(int(batch["example_index"][example]))
        out["context_length"].append(int(context_tokens.size))
    if "token_type_ids" not in encoded:
        del out["token_type_ids"]
    return out
