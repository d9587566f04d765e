"""Reading data files as UTF-8 text, with errors that name the file and the line.

Python's own ``UnicodeDecodeError`` names neither the file nor the line (``'utf-8' codec can't decode byte 0xe9
in position 1234``); every reader goes through ``read_text`` instead, which reports
``data/x/train.txt:57: not UTF-8 text (byte 0xe9 at column 12)`` and how to convert the file.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import Iterator

from dicenlp.errors import DataError, MissingDataError


def read_text(path: str | Path) -> str:
    """The whole file decoded as UTF-8 (a leading byte-order mark removed, line endings kept as they are).

    Raises ``MissingDataError`` when the file does not exist and ``DataError`` (``file:line``) on bytes that are
    not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError("no such file", where=str(path))
    data = path.read_bytes()
    data = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = len(data[data.rfind(b"\n", 0, err.start) + 1:err.start].decode("utf-8", errors="replace")) + 1
        raise DataError(f"not UTF-8 text (byte 0x{data[err.start]:02x} at column {column})", where=f"{path}:{line}",
                        expected="UTF-8; convert the file, e.g. iconv -f latin1 -t utf-8") from None


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number from 1, line without its line ending)`` of a UTF-8 file; ``\\n``, ``\\r\\n`` and ``\\r`` end
    a line (as ``open(path)`` reads them; unlike ``str.splitlines``, which also splits at U+2028 and others)."""
    for line_no, line in enumerate(io.StringIO(read_text(path), newline=None), start=1):
        yield line_no, line.rstrip("\n")


__all__ = ["read_text", "text_lines"]
