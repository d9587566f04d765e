"""Chinese joint word segmentation + POS tagging at the character level (PAPER.md §3.1: CTB5, CTB6, UD1.4).

A Chinese POS corpus gives *words* with POS tags; the tagger labels *characters*. Each word becomes a
character span and its POS the span's type, written with the BIES scheme (``dicenlp.data.schemes``)::

    words  上海  浦东  开发        tags  NR  NR  NN
    chars  上 海 浦 东 开 发
    BIES   B-NR E-NR B-NR E-NR B-NN E-NN          spans (0, 1, NR) (2, 3, NR) (4, 5, NN)

A word of one character is ``S-TAG``; of n ≥ 3 characters ``B-TAG I-TAG … E-TAG`` (spans use inclusive
ends, as everywhere in ``dicenlp.data.schemes``). The metric scores a predicted word as correct only if
both its boundaries and its tag match (span-level P/R/F1, as the paper reports).

Accepted file layouts (``read_chinese_pos(path, layout=...)``), all UTF-8:

* ``"word_pos"``: one sentence per line, ``word_TAG`` items separated by whitespace (the layout of the
  common CTB5/CTB6 POS splits, e.g. Jiang et al. 2008 / Shao et al. 2017 preprocessing). The word is
  split from the tag at the **last** delimiter (``_`` by default), so words containing ``_`` survive.
* ``"columns"``: one word per line ``word<TAB>TAG`` (or whitespace), blank line between sentences.
* ``"char_bmes"``: one character per line ``char<TAB>B-NN`` with BMES/BIES tags (Lattice-LSTM and Glyce
  distributions of CTB); converted back to words, strictly (an ill-formed sequence is an error).
* ``"conllu"``: Universal Dependencies CoNLL-U (Chinese UD 1.4), UPOS by default (``conllu_tag="xpos"``
  for the CTB-style XPOS); multi-word tokens and empty nodes are skipped.

Every reader returns word-level ``dicenlp.data.conll.Sentence`` objects; ``words_to_char_tags`` converts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dicenlp.data.conll import ColumnFormatError, Sentence, read_column_file
from dicenlp.data.conllu import read_conllu
from dicenlp.data.schemes import IllFormedTagsError, Span, spans_to_tags, tags_to_spans
from dicenlp.data.text import text_lines
from dicenlp.errors import MissingDataError

LAYOUTS = ("word_pos", "columns", "char_bmes", "conllu")


def word_char_spans(words: Sequence[str], tags: Sequence[str]) -> list[Span]:
    """Character spans ``(start, end_inclusive, tag)`` of the words of one sentence."""
    spans, pos = [], 0
    for word, tag in zip(words, tags, strict=True):
        if not word:
            raise ValueError(f"empty word in {list(words)!r}")
        spans.append((pos, pos + len(word) - 1, tag))
        pos += len(word)
    return spans


def words_to_char_tags(words: Sequence[str], tags: Sequence[str]) -> tuple[list[str], list[str]]:
    """Words with POS → (characters, BIES tags), e.g. ``["上海", "是"], ["NR", "VC"]`` →
    ``(["上", "海", "是"], ["B-NR", "E-NR", "S-VC"])``."""
    chars = [c for w in words for c in w]
    return chars, spans_to_tags(word_char_spans(words, tags), len(chars), "BIES")


def char_tags_to_words(chars: Sequence[str], char_tags: Sequence[str], strict: bool = False
                       ) -> tuple[list[str], list[str]]:
    """(characters, BIES/BMES tags) → (words, POS tags).

    ``strict=False`` decodes like conlleval (``dicenlp.data.schemes``): an ill-formed predicted sequence
    still yields words; characters outside every span (tag ``O``) are dropped. ``strict=True`` raises
    ``IllFormedTagsError`` instead (for reading gold files).
    """
    spans = tags_to_spans(char_tags, "BIES", strict=strict)
    return ["".join(chars[s:e + 1]) for s, e, _ in spans], [t for _, _, t in spans]


# ----------------------------------------------------------------------------- readers


def read_word_pos_file(path: str | Path, delimiter: str = "_", allow_empty: bool = False) -> list[Sentence]:
    """One sentence per line, ``word_TAG word_TAG …`` (whitespace between items)."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError("word_POS file not found", where=str(path))
    sentences = []
    for line_no, line in text_lines(path):
        items = line.split()
        if not items:
            continue
        words, tags = [], []
        for item in items:
            word, sep, tag = item.rpartition(delimiter)
            if not sep or not word or not tag:
                raise ColumnFormatError(path, line_no, f"expected items 'word{delimiter}TAG' separated by "
                                                       f"whitespace, found {item!r}")
            words.append(word)
            tags.append(tag)
        sentences.append(Sentence(words, tags, line_no, [[w, t] for w, t in zip(words, tags)]))
    if not sentences and not allow_empty:
        raise ColumnFormatError(path, None, f"no sentences found; expected one sentence per line of "
                                            f"'word{delimiter}TAG' items")
    return sentences


def read_char_bmes_file(path: str | Path, allow_empty: bool = False) -> list[Sentence]:
    """Character column file ``char<TAB>B-NN`` (BMES or BIES) → word-level sentences."""
    out = []
    for sent in read_column_file(path, token_col=0, tag_col=-1, allow_empty=allow_empty):
        if any(len(c) != 1 for c in sent.tokens):
            bad = next(i for i, c in enumerate(sent.tokens) if len(c) != 1)
            raise ColumnFormatError(path, sent.line_no + bad, f"expected one character per line in a char_bmes "
                                                              f"file, found {sent.tokens[bad]!r}")
        bies = ["I" + t[1:] if t.startswith("M-") or t == "M" else t for t in sent.tags]  # BMES → BIES
        try:
            words, tags = char_tags_to_words(sent.tokens, bies, strict=True)
        except IllFormedTagsError as err:
            raise ColumnFormatError(path, sent.line_no, f"sentence starting here is not valid BMES/BIES: "
                                                        f"{err}") from None
        out.append(Sentence(words, tags, sent.line_no, [[w, t] for w, t in zip(words, tags)]))
    return out


def read_chinese_pos(path: str | Path, layout: str = "word_pos", delimiter: str = "_", conllu_tag: str = "upos",
                     allow_empty: bool = False) -> list[Sentence]:
    """Word-level sentences of a Chinese POS file in one of ``LAYOUTS`` (see the module docstring)."""
    if layout == "word_pos":
        return read_word_pos_file(path, delimiter=delimiter, allow_empty=allow_empty)
    if layout == "columns":
        return read_column_file(path, token_col=0, tag_col=-1, allow_empty=allow_empty)
    if layout == "char_bmes":
        return read_char_bmes_file(path, allow_empty=allow_empty)
    if layout == "conllu":
        return read_conllu(path, tag=conllu_tag, allow_empty=allow_empty)
    raise ValueError(f"unknown Chinese POS layout {layout!r}; expected one of {LAYOUTS}")
