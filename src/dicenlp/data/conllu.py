"""Reader for CoNLL-U files (Universal Dependencies, https://universaldependencies.org/format.html).

A CoNLL-U sentence is a block of lines separated by a blank line:

* ``# ...`` comment lines (``sent_id``, ``text`` ...) are skipped;
* word lines have exactly 10 TAB-separated fields
  ``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC``; ``ID`` is an integer counted from 1;
* multi-word token lines (``ID`` a range such as ``1-2``, e.g. English "didn't", Spanish "del") are the
  surface form of the syntactic words that follow them: skipped, because POS tags belong to the words;
* empty nodes (``ID`` a decimal such as ``8.1``, enhanced dependencies only) are skipped: they are not
  words of the sentence.

``read_conllu(path, tag="upos")`` returns ``dicenlp.data.conll.Sentence`` objects (tokens = FORM,
tags = UPOS or XPOS), so every POS task works on the same structure whatever its file format.
"""

from __future__ import annotations

import re
from pathlib import Path

from dicenlp.data.conll import ColumnFormatError, Sentence, line_blocks
from dicenlp.errors import MissingDataError

#: Field indices of the 10 CoNLL-U columns.
FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
_TAG_FIELDS = {"upos": 3, "xpos": 4}
_RANGE_ID = re.compile(r"^\d+-\d+$")
_EMPTY_NODE_ID = re.compile(r"^\d+\.\d+$")
_WORD_ID = re.compile(r"^\d+$")


def read_conllu(path: str | Path, tag: str = "upos", allow_empty: bool = False) -> list[Sentence]:
    """Read the words and POS tags of a CoNLL-U file.

    Args:
        path: ``.conllu`` file (UTF-8).
        tag: ``"upos"`` (universal POS, column 4) or ``"xpos"`` (language-specific POS, column 5).
        allow_empty: return ``[]`` for a file without sentences instead of raising.

    Returns:
        ``list[Sentence]``; ``Sentence.line_no`` is the line of the sentence's first word line,
        ``Sentence.columns`` holds the 10 fields of each word.

    Raises:
        ColumnFormatError (a ``ValueError``) naming ``file:line``: a line that does not have 10 TAB-separated
        fields, a word ID that is not the next integer, an empty FORM, or a missing tag (``_``) in the
        requested column; a file without sentences.
    """
    if tag not in _TAG_FIELDS:
        raise ValueError(f"tag must be 'upos' or 'xpos', got {tag!r}")
    tag_index = _TAG_FIELDS[tag]
    path = Path(path)
    if not path.is_file():
        raise MissingDataError("CoNLL-U file not found", where=str(path))
    sentences: list[Sentence] = []
    for block in line_blocks(path, is_skipped=lambda line: line.startswith("#")):
        words: list[list[str]] = []
        for line_no, line in block:
            fields = line.split("\t")
            if len(fields) != 10:
                raise ColumnFormatError(path, line_no, f"expected 10 TAB-separated CoNLL-U fields "
                                                       f"(ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC), "
                                                       f"found {len(fields)}: {line!r}")
            word_id = fields[0]
            if _RANGE_ID.match(word_id) or _EMPTY_NODE_ID.match(word_id):
                continue  # multi-word token or empty node: not a word with its own POS
            if not _WORD_ID.match(word_id):
                raise ColumnFormatError(path, line_no, f"expected an integer word ID, a range 'N-M' or an empty "
                                                       f"node 'N.M' in the ID field, found {word_id!r}")
            if int(word_id) != len(words) + 1:
                raise ColumnFormatError(path, line_no, f"expected word ID {len(words) + 1} (IDs count from 1 "
                                                       f"within a sentence; missing blank line?), found {word_id}")
            if not fields[1]:
                raise ColumnFormatError(path, line_no, "empty FORM field")
            if fields[tag_index] in ("", "_"):
                raise ColumnFormatError(path, line_no, f"no {tag.upper()} tag ({fields[tag_index]!r}) for word "
                                                       f"{fields[1]!r}; this treebank may not annotate "
                                                       f"{tag.upper()}: use tag='upos' or 'xpos'")
            if not words:
                start_line = line_no
            words.append(fields)
        if words:
            sentences.append(Sentence(tokens=[w[1] for w in words], tags=[w[tag_index] for w in words],
                                      line_no=start_line, columns=words))
    if not sentences and not allow_empty:
        raise ColumnFormatError(path, None, "no sentences found; expected CoNLL-U word lines (10 TAB-separated "
                                            "fields) with a blank line after each sentence")
    return sentences
