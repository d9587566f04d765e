"""Reader for CoNLL-style column files: one token per line, columns separated by whitespace or tabs,
a blank line between sentences.

Covers the layouts used in this project:

* CoNLL-2003 NER: ``token POS chunk NER`` (space separated, ``-DOCSTART-`` document lines)
  → ``read_column_file(path, token_col=0, tag_col=3)`` (or ``tag_col=-1``, the default);
* WSJ-style POS and Twitter POS (Ritter et al. 2011; Owoputi et al. 2013): ``word<TAB>tag``
  → ``read_column_file(path)``; use ``sep="\\t"`` when tokens may contain spaces;
* CTB column exports: ``word<TAB>POS`` (see ``dicenlp.data.chinese_pos``).

Usage::

    from dicenlp.data.conll import read_column_file
    sentences = read_column_file("data/conll03/train.txt", token_col=0, tag_col=3)
    sentences[0].tokens, sentences[0].tags, sentences[0].line_no   # line_no: 1-based line of the first token

Rules (each violation raises ``ColumnFormatError`` naming ``file:line`` and what was expected):

* every non-blank line of a file has the same number of columns as the file's first token line,
  and that number covers ``token_col`` and ``tag_col``;
* ``-DOCSTART-`` lines (first column) are document separators, never tokens; they also end a sentence;
* lines holding only whitespace count as blank; a UTF-8 BOM and Windows line endings are accepted;
* a file without any sentence raises ``ColumnFormatError`` too (an empty split is a mistake, not data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from dicenlp.data.text import text_lines
from dicenlp.errors import DataError, MissingDataError

DOCSTART = "-DOCSTART-"


class ColumnFormatError(DataError):
    """A malformed data file. ``str(err)`` starts with ``path:line:`` so editors can jump to it."""

    def __init__(self, path: str | Path, line_no: int | None, message: str) -> None:
        self.path = str(path)
        self.line_no = line_no
        super().__init__(message, where=f"{self.path}:{line_no}" if line_no is not None else self.path)


@dataclass
class Sentence:
    """One sentence of a column file.

    tokens: the words, in order.
    tags: one tag per token (same length as ``tokens``).
    line_no: 1-based line number of the sentence's first token in its file (for error messages).
    columns: every column of every token line, ``columns[i]`` = the fields of token ``i`` (kept so that a
        reader can pick a second tag column without re-reading the file).
    """

    tokens: list[str]
    tags: list[str]
    line_no: int
    columns: list[list[str]] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.tokens)


def line_blocks(path: Path, is_break: Callable[[str], bool] = lambda line: False,
                is_skipped: Callable[[str], bool] = lambda line: False) -> Iterator[list[tuple[int, str]]]:
    """Blank-line separated blocks of ``(line_no, line)`` (1-based, line endings and a UTF-8 BOM removed).

    Lines holding only whitespace are blank. ``is_break(line)``: a line that ends the block and is dropped
    (CoNLL-2003's ``-DOCSTART-``); ``is_skipped(line)``: a line dropped without ending it (CoNLL-U comments).
    """
    block: list[tuple[int, str]] = []
    for line_no, line in text_lines(path):
        if not line.strip() or is_break(line):
            if block:
                yield block
            block = []
        elif not is_skipped(line):
            block.append((line_no, line))
    if block:
        yield block


def split_fields(line: str, sep: str | None) -> list[str]:
    """``sep=None``: any run of whitespace; otherwise split on exactly ``sep`` (e.g. ``"\\t"``)."""
    return line.split() if sep is None else line.split(sep)


def read_column_file(path: str | Path, token_col: int = 0, tag_col: int = -1, sep: str | None = None,
                     skip_docstart: bool = True, allow_empty: bool = False) -> list[Sentence]:
    """Read a column file into sentences.

    Args:
        path: the file (UTF-8).
        token_col: column of the word (negative indices count from the end, as in Python).
        tag_col: column of the tag; default the last one.
        sep: ``None`` splits on any whitespace; ``"\\t"`` splits on tabs only (tokens may contain spaces).
            With ``"\\t"`` trailing spaces of the line are dropped and each field is stripped.
        skip_docstart: treat ``-DOCSTART-`` lines as document separators (CoNLL-2003).
        allow_empty: return ``[]`` for a file without sentences instead of raising.

    Returns:
        ``list[Sentence]`` in file order.

    Raises:
        MissingDataError (a ``FileNotFoundError``): ``path`` does not exist.
        ColumnFormatError: inconsistent or too few columns, an empty field, bytes that are not UTF-8, or no
            sentence at all.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError("column file not found", where=str(path))
    sentences: list[Sentence] = []
    n_cols: int | None = None
    first_line_of_width = 0

    def docstart(line: str) -> bool:
        return skip_docstart and split_fields(line, sep)[0].strip() == DOCSTART

    for block in line_blocks(path, is_break=docstart):
        rows = []
        for line_no, line in block:
            fields = split_fields(line.rstrip(" ") if sep is not None else line, sep)
            if sep is not None:
                fields = [f.strip() for f in fields]
            if n_cols is None:
                n_cols = len(fields)
                first_line_of_width = line_no
                needed = max(_required_width(token_col), _required_width(tag_col))
                if n_cols < needed:
                    layout = "whitespace" if sep is None else repr(sep)
                    raise ColumnFormatError(
                        path, line_no,
                        f"expected at least {needed} {layout}-separated columns (token column {token_col}, "
                        f"tag column {tag_col}), found {n_cols}: {line!r}")
            elif len(fields) != n_cols:
                raise ColumnFormatError(
                    path, line_no,
                    f"expected {n_cols} columns (as on line {first_line_of_width}), found {len(fields)}: {line!r}")
            if any(not f for f in fields):
                raise ColumnFormatError(path, line_no, f"empty column in {line!r} (separator {sep!r})")
            rows.append(fields)
        sentences.append(Sentence(tokens=[c[token_col] for c in rows], tags=[c[tag_col] for c in rows],
                                  line_no=block[0][0], columns=rows))
    if not sentences and not allow_empty:
        raise ColumnFormatError(path, None, "no sentences found (the file is empty or holds only blank/-DOCSTART- "
                                            "lines); expected one token per line and a blank line between sentences")
    return sentences


def _required_width(col: int) -> int:
    """Minimum number of columns for index ``col`` to exist (``-1`` needs 1, ``3`` needs 4)."""
    return col + 1 if col >= 0 else -col


def write_column_file(path: str | Path, sentences: list[tuple[list[str], list[str]]], sep: str = "\t") -> None:
    """Write ``(tokens, tags)`` pairs as a two-column file (atomically: temp file, then rename)."""
    path = Path(path)
    lines = []
    for tokens, tags in sentences:
        if len(tokens) != len(tags):
            raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags: {tokens!r}")
        lines.extend(f"{tok}{sep}{tag}" for tok, tag in zip(tokens, tags))
        lines.append("")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    tmp.replace(path)
