"""Tag schemes ↔ spans: BIO (IOB2), IOB1, BIOES (IOBES), BMES and BIES.

A *span* is ``(start, end, type)`` with ``end`` **inclusive** (token or character indices), e.g. the tags
``B-PER I-PER O B-LOC`` hold the spans ``[(0, 1, "PER"), (3, 3, "LOC")]``.

Decoding (tags → spans) follows **conlleval** (the CoNLL shared-task scorer, and seqeval's default mode)
for every scheme, so well-formed input decodes the same under any scheme name and ill-formed input is
repaired the way the official scorer repairs it:

* a tag is ``PREFIX-TYPE`` (split at the first ``-``; ``TYPE`` may be empty: ``B``, ``I``, ``E``, ``S``) or ``O``;
* prefixes ``B I E S O`` plus the aliases ``M`` (= ``I``, BMES) are accepted by the decoder;
* a chunk **starts** at ``B``/``S``; at ``I``/``E`` after ``O``, after ``E``/``S`` or at the start of the
  sentence; and wherever the type changes;
* a chunk **ends** before ``B``/``S``/``O`` and after ``E``/``S``, and wherever the type changes.
  So ``O I-PER I-PER`` is one PER span (as conlleval), ``B-PER I-LOC`` is two spans, ``B-PER E-PER E-PER``
  is ``(0, 1)`` and ``(2, 2)``.

``strict=True`` instead rejects every sequence that is not well formed *for the named scheme* and raises
``IllFormedTagsError`` naming the position, the tag and what was expected (e.g. ``I-PER`` after ``O`` in BIO;
``B-PER`` followed by ``O`` in BIOES; any ``O`` in BIES). Unknown prefixes always raise.

Encoding (spans → tags) writes the canonical form of the scheme; overlapping spans cannot be written as
tags and raise ``ValueError``.

Schemes (``scheme`` arguments, case-insensitive):

=========  ==================================================================================
``BIO``    (alias ``IOB2``) ``B`` begins every chunk, ``I`` continues it.
``IOB1``   (alias ``IOB``) ``I`` begins and continues chunks; ``B`` only begins a chunk that
           directly follows a chunk of the same type (the original CoNLL-2003 files).
``BIOES``  (alias ``IOBES``) ``S`` single-token chunk, ``B``/``I``/``E`` begin/inside/end.
``BMES``   as BIOES with ``M`` for inside (Chinese NER distributions, e.g. Lattice-LSTM's).
``BIES``   as BIOES without ``O``: every position belongs to a chunk (character-level Chinese
           word segmentation + POS, where a chunk is a word and its type the POS tag).
=========  ==================================================================================

The decoder is vectorised (numpy over a flat array of all sentences) because it runs over whole corpora
in readers and evaluation; ``tags_to_spans`` is the one-sentence convenience wrapper.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from dicenlp.errors import DataError

Span = tuple[int, int, str]

#: Canonical scheme name for every accepted name.
_ALIASES = {"BIO": "BIO", "IOB2": "BIO", "IOB1": "IOB1", "IOB": "IOB1", "BIOES": "BIOES", "IOBES": "BIOES",
            "BMES": "BMES", "BMEOS": "BMES", "BIES": "BIES"}

#: Prefix letters a well-formed sequence of each scheme may use.
_ALLOWED = {"BIO": "BIO", "IOB1": "BIO", "BIOES": "BIESO", "BMES": "BMESO", "BIES": "BIES"}

# Internal prefix codes (M is folded into I for decoding).
_O, _B, _I, _E, _S = 0, 1, 2, 3, 4
_CODE = {"O": _O, "B": _B, "I": _I, "M": _I, "E": _E, "S": _S}


class IllFormedTagsError(DataError):
    """A tag sequence is not well formed for its scheme (strict mode), or a tag cannot be parsed.

    ``sentence`` and ``position`` (when known) locate the tag, ``detail`` is the message without the location,
    so that a reader can name ``file:line`` of the exact token."""

    sentence: int | None = None
    position: int | None = None
    detail: str = ""


def _located(sentence: int, position: int, where: Sequence[str] | None, detail: str) -> IllFormedTagsError:
    loc = where[sentence] if where is not None else f"sentence {sentence}"
    err = IllFormedTagsError(f"{loc}, position {position}: {detail}")
    err.sentence, err.position, err.detail = sentence, position, detail
    return err


def canonical_scheme(scheme: str) -> str:
    """``"iob2"`` → ``"BIO"`` etc.; raises ``ValueError`` for an unknown scheme."""
    key = scheme.upper()
    if key not in _ALIASES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {sorted(_ALIASES)}")
    return _ALIASES[key]


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` → ``("B", "PER")``, ``"O"`` → ``("O", "")``, ``"B"`` → ``("B", "")``.

    The type is everything after the first ``-`` (types such as ``WORK_OF_ART`` or ``B-X-Y`` survive).
    Raises ``IllFormedTagsError`` for an unknown prefix or a typed ``O``.
    """
    prefix, sep, typ = tag.partition("-")
    if prefix not in _CODE or (prefix == "O" and sep):
        raise IllFormedTagsError(f"cannot parse tag {tag!r}: expected 'O' or PREFIX-TYPE with PREFIX in B, I, M, E, S")
    return prefix, typ


# ----------------------------------------------------------------------------- decoding


def _encode(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Flat tags → (prefix codes int8, type ids int64, type names, raw prefix letters).

    Tags are parsed once per *distinct* tag (``np.unique``), then broadcast back to every position.
    Raises ``IllFormedTagsError`` with the flat index of the first unparsable tag in ``err.index``.
    """
    if not len(tags):
        return np.zeros(0, np.int8), np.zeros(0, np.int64), [], np.zeros(0, "<U1")
    uniq, inverse = np.unique(np.asarray(tags, dtype=str), return_inverse=True)
    parsed = []
    for tag in uniq.tolist():
        try:
            parsed.append(split_tag(tag))
        except IllFormedTagsError as err:
            err.index = int(np.flatnonzero(np.asarray(tags, dtype=str) == tag)[0])
            raise
    types = sorted({typ for _, typ in parsed})
    type_id = {t: i for i, t in enumerate(types)}
    u_code = np.array([_CODE[p] for p, _ in parsed], dtype=np.int8)
    u_type = np.array([type_id[t] for _, t in parsed], dtype=np.int64)
    u_raw = np.array([p for p, _ in parsed], dtype="<U1")
    inverse = inverse.reshape(-1)
    return u_code[inverse], u_type[inverse], types, u_raw[inverse]


def _chunk_flags(code: np.ndarray, typ: np.ndarray, first: np.ndarray, last: np.ndarray):
    """conlleval's startOfChunk / endOfChunk, vectorised over a flat array.

    ``first``/``last`` mark the first/last position of each sentence (the previous/next tag there is ``O``).
    Returns boolean arrays ``start`` (a chunk starts here) and ``end`` (a chunk ends here).
    """
    n = code.shape[0]
    prev_code = np.empty(n, np.int8)
    prev_typ = np.empty(n, np.int64)
    next_code = np.empty(n, np.int8)
    next_typ = np.empty(n, np.int64)
    if n:
        prev_code[1:], prev_code[0] = code[:-1], _O
        prev_typ[1:], prev_typ[0] = typ[:-1], -1
        next_code[:-1], next_code[-1] = code[1:], _O
        next_typ[:-1], next_typ[-1] = typ[1:], -1
    prev_code[first] = _O
    next_code[last] = _O

    inside = code != _O
    # startOfChunk(prev, cur): B, S; I/E after O, E, S; a type change.
    start = inside & ((code == _B) | (code == _S)
                      | (np.isin(code, (_I, _E)) & np.isin(prev_code, (_O, _E, _S)))
                      | ((prev_code != _O) & (prev_typ != typ)))
    # endOfChunk(cur, next): cur E or S; cur B/I before B, S, O; a type change.
    end = inside & ((code == _E) | (code == _S)
                    | (np.isin(code, (_B, _I)) & np.isin(next_code, (_B, _S, _O)))
                    | ((next_code != _O) & (next_typ != typ)))
    return start, end


def _strict_errors(code: np.ndarray, typ: np.ndarray, first: np.ndarray, last: np.ndarray,
                   raw_prefix: np.ndarray, scheme: str) -> np.ndarray:
    """Boolean array: position ``i`` is ill formed for ``scheme`` (checked against the previous tag)."""
    n = code.shape[0]
    prev_code = np.full(n, _O, np.int8)
    prev_typ = np.full(n, -1, np.int64)
    next_code = np.full(n, _O, np.int8)
    next_typ = np.full(n, -1, np.int64)
    if n:
        prev_code[1:], prev_typ[1:] = code[:-1], typ[:-1]
        next_code[:-1], next_typ[:-1] = code[1:], typ[1:]
    prev_code[first], prev_typ[first] = _O, -1
    next_code[last], next_typ[last] = _O, -1
    same_prev = (prev_typ == typ)
    same_next = (next_typ == typ)

    bad = ~np.isin(raw_prefix, list(_ALLOWED[scheme]))
    if scheme == "BIO":
        # I-X continues B-X or I-X.
        bad |= (code == _I) & ~(np.isin(prev_code, (_B, _I)) & same_prev)
    elif scheme == "IOB1":
        # B-X only right after a chunk of the same type.
        bad |= (code == _B) & ~(np.isin(prev_code, (_B, _I)) & same_prev)
    else:  # BIOES, BMES, BIES
        opens = np.isin(prev_code, (_B, _I)) & same_prev  # previous tag leaves a chunk of this type open
        bad |= np.isin(code, (_I, _E)) & ~opens
        bad |= np.isin(code, (_B, _S, _O)) & np.isin(prev_code, (_B, _I))
        # B/I must be followed by I/E of the same type (catches a chunk left open at the sentence end).
        bad |= np.isin(code, (_B, _I)) & ~(np.isin(next_code, (_I, _E)) & same_next)
    return bad


def _sentence_bounds(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    n = int(offsets[-1])
    first = np.zeros(n, bool)
    last = np.zeros(n, bool)
    nonempty = lengths > 0
    first[offsets[:-1][nonempty]] = True
    last[offsets[1:][nonempty] - 1] = True
    return offsets, first, last


def batch_tags_to_spans(sentences: Sequence[Sequence[str]], scheme: str = "BIO", strict: bool = False,
                        where: Sequence[str] | None = None) -> list[list[Span]]:
    """Spans of every sentence, in order (start ascending), decoded in one vectorised pass.

    Args:
        sentences: tag sequences, one per sentence.
        scheme: the scheme the tags are in (only matters with ``strict=True``; decoding is conlleval's).
        strict: raise ``IllFormedTagsError`` on the first sequence that is ill formed for ``scheme``.
        where: optional description of each sentence for error messages (e.g. ``"train.txt:120"``).
    """
    scheme = canonical_scheme(scheme)
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    flat = [t for s in sentences for t in s]
    offsets, first, last = _sentence_bounds(lengths)
    try:
        code, typ, types, raw = _encode(flat)
    except IllFormedTagsError as err:
        sent = int(np.searchsorted(offsets, err.index, side="right") - 1)
        raise _located(sent, err.index - int(offsets[sent]), where, str(err)) from None

    if strict:
        bad = _strict_errors(code, typ, first, last, raw, scheme)
        if bad.any():
            i = int(np.argmax(bad))
            sent = int(np.searchsorted(offsets, i, side="right") - 1)
            pos = i - int(offsets[sent])
            raise _located(sent, pos, where, f"{describe_tag(sentences[sent], pos)} is not well formed for scheme "
                                             f"{scheme} ({_RULES[scheme]})")

    start, end = _chunk_flags(code, typ, first, last)
    starts = np.flatnonzero(start)
    ends = np.flatnonzero(end)
    assert starts.shape == ends.shape, "conlleval start/end flags must pair up"
    sent_of = np.searchsorted(offsets, starts, side="right") - 1
    rel_start = (starts - offsets[sent_of]).tolist()
    rel_end = (ends - offsets[sent_of]).tolist()
    span_types = [types[t] for t in typ[starts].tolist()]
    out: list[list[Span]] = [[] for _ in sentences]
    for s, a, b, t in zip(sent_of.tolist(), rel_start, rel_end, span_types):
        out[s].append((a, b, t))
    return out


_RULES = {
    "BIO": "I-X must follow B-X or I-X; prefixes B, I, O",
    "IOB1": "B-X only directly after a chunk of type X; prefixes B, I, O",
    "BIOES": "I-X/E-X must follow B-X or I-X, B-X/I-X must be followed by I-X or E-X; prefixes B, I, E, S, O",
    "BMES": "M-X/E-X must follow B-X or M-X, B-X/M-X must be followed by M-X or E-X; prefixes B, M, E, S, O",
    "BIES": "as BIOES and every position is in a chunk; prefixes B, I, E, S (no O)",
}


def describe_tag(tags: Sequence[str], position: int) -> str:
    """``"tag 'I-PER' (after 'O', before 'O')"``: a tag with its neighbours, for messages."""
    prev = tags[position - 1] if position > 0 else "<start>"
    nxt = tags[position + 1] if position + 1 < len(tags) else "<end>"
    return f"tag {tags[position]!r} (after {prev!r}, before {nxt!r})"


def ill_formed_positions(sentences: Sequence[Sequence[str]], scheme: str) -> list[tuple[int, int]]:
    """``(sentence, position)`` of every tag that is not well formed for ``scheme`` (the tags that the default,
    conlleval-style decoding repairs: e.g. in BIO an ``I-X`` without ``B-X`` before it, read as ``B-X``)."""
    scheme = canonical_scheme(scheme)
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    offsets, first, last = _sentence_bounds(lengths)
    code, typ, _, raw = _encode([t for s in sentences for t in s])
    bad = np.flatnonzero(_strict_errors(code, typ, first, last, raw, scheme))
    sent = np.searchsorted(offsets, bad, side="right") - 1
    return list(zip(sent.tolist(), (bad - offsets[sent]).tolist()))


def tags_to_spans(tags: Sequence[str], scheme: str = "BIO", strict: bool = False) -> list[Span]:
    """Spans ``(start, end_inclusive, type)`` of one tag sequence (see the module docstring for the rules)."""
    return batch_tags_to_spans([tags], scheme=scheme, strict=strict)[0]


def is_well_formed(tags: Sequence[str], scheme: str = "BIO") -> bool:
    """Whether ``tags`` is a well-formed sequence of ``scheme`` (strict rules)."""
    try:
        tags_to_spans(tags, scheme, strict=True)
    except IllFormedTagsError:
        return False
    return True


# ----------------------------------------------------------------------------- encoding


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str = "BIO") -> list[str]:
    """Tags of length ``length`` holding ``spans`` in the canonical form of ``scheme``.

    Raises ``ValueError`` if spans overlap (tags cannot express nesting) or fall outside ``[0, length)``.
    For ``BIES`` every position must be covered.
    """
    scheme = canonical_scheme(scheme)
    tags = ["O"] * length
    ordered = sorted(spans, key=lambda s: (s[0], s[1]))
    prev_end, prev_type = -1, None
    inside = "M" if scheme == "BMES" else "I"
    for start, end, typ in ordered:
        if not 0 <= start <= end < length:
            raise ValueError(f"span {(start, end, typ)} is outside a sequence of length {length}")
        if start <= prev_end:
            raise ValueError(f"span {(start, end, typ)} overlaps the previous span ending at {prev_end}: "
                             f"nested or overlapping spans cannot be written as {scheme} tags")
        sfx = f"-{typ}" if typ else ""
        if scheme == "BIO":
            tags[start:end + 1] = [f"B{sfx}"] + [f"I{sfx}"] * (end - start)
        elif scheme == "IOB1":
            lead = "B" if (prev_end == start - 1 and prev_type == typ) else "I"
            tags[start:end + 1] = [f"{lead}{sfx}"] + [f"I{sfx}"] * (end - start)
        elif start == end:
            tags[start] = f"S{sfx}"
        else:
            tags[start:end + 1] = [f"B{sfx}"] + [f"{inside}{sfx}"] * (end - start - 1) + [f"E{sfx}"]
        prev_end, prev_type = end, typ
    if scheme == "BIES" and "O" in tags:
        raise ValueError(f"BIES needs every position in a span; position {tags.index('O')} is not covered")
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str, strict: bool = False) -> list[str]:
    """Re-write a tag sequence from scheme ``source`` into scheme ``target`` (through spans)."""
    return spans_to_tags(tags_to_spans(tags, source, strict=strict), len(tags), target)


def guess_scheme(sentences: Iterable[Sequence[str]]) -> str:
    """Best guess of the scheme of a corpus: ``BMES`` if ``M-`` occurs, ``BIOES`` if ``E-``/``S-`` occur,
    ``IOB1`` if some chunk starts with ``I-`` (sentence start, after ``O`` or after another type) and no chunk
    starts with ``B-`` where IOB1 forbids it (after ``O`` or another type), else ``BIO``. (A BIO file with a few
    ``I-`` tags without ``B-`` stays BIO: its ``B-`` tags after ``O`` show the scheme.)

    A tag that cannot be parsed raises ``IllFormedTagsError`` with ``sentence`` and ``position`` set.
    """
    prefixes: set[str] = set()
    i_starts = b_starts = False
    for s, tags in enumerate(sentences):
        prev_p, prev_t = "O", None
        for pos, tag in enumerate(tags):
            try:
                p, t = split_tag(tag)
            except IllFormedTagsError as err:
                raise _located(s, pos, None, str(err)) from None
            prefixes.add(p)
            new_chunk = prev_p == "O" or prev_t != t
            i_starts |= p == "I" and new_chunk
            b_starts |= p == "B" and new_chunk
            prev_p, prev_t = p, t
    if "M" in prefixes:
        return "BMES"
    if prefixes & {"E", "S"}:
        return "BIOES"
    return "IOB1" if i_starts and not b_starts else "BIO"


__all__ = ["IllFormedTagsError", "Span", "batch_tags_to_spans", "canonical_scheme", "convert_tags", "describe_tag",
           "guess_scheme", "ill_formed_positions", "is_well_formed", "spans_to_tags", "split_tag", "tags_to_spans"]
