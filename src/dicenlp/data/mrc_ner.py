"""NER data for BERT-MRC (Li et al. 2019): tagged sentences ↔ (query, context) examples ↔ spans.

Every reader returns ``list[NerSentence]``: the words (English) or characters (Chinese) of a sentence and
its gold entities ``(start, end_inclusive, type)`` in those units. These *original* entities are what the
NER metric scores against (every mention, including repeated strings and sentence-final entities, which the
official code lost; OFFICIAL_CODE.md §5).

Formats:

* **CoNLL column files** (English CoNLL-2003/OntoNotes 5 word level, Chinese MSRA/OntoNotes 4 character
  level): ``read_tagged_file`` uses ``dicenlp.data.conll.read_column_file`` (``-DOCSTART-`` handled) and
  ``dicenlp.data.schemes`` (BIO, IOB1, BIOES, BMES; ``scheme="auto"`` guesses it per file).
* **SIGHAN-2006 MSRA word/tag lines** (``中共中央/nt 致/o ...``): ``read_slash_file`` → characters.
* **BERT-MRC JSON** (``mrc-ner.{train,dev,test}``, a JSON array, one object per sentence × entity type;
  fields in OFFICIAL_CODE.md §3): ``read_mrc_json`` / ``write_mrc_json`` and the conversions
  ``sentences_to_mrc`` / ``mrc_to_sentences``. English contexts are space-separated words; Chinese contexts
  are characters (whitespace removed on reading, as the official loader does; written space-separated).
* **Hugging Face Hub** CoNLL-2003 (``eriktks/conll2003``, formerly ``conll2003``): ``load_hub_ner``.

``load_ner_splits`` picks the format of a data directory and returns ``{split: sentences}``; MSRA has no
dev set, so ``dev_ratio`` splits train 9:1 with a fixed seed, as the paper did (PAPER.md §3.2).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from dicenlp.data.conll import ColumnFormatError, read_column_file
from dicenlp.data.schemes import (IllFormedTagsError, Span, batch_tags_to_spans, describe_tag, guess_scheme,
                                  ill_formed_positions, spans_to_tags)
from dicenlp.data.text import read_text, text_lines
from dicenlp.errors import DataError, MissingDataError

log = logging.getLogger(__name__)

#: Split names of this project → BERT-MRC file suffixes.
MRC_FILES = {"train": "mrc-ner.train", "dev": "mrc-ner.dev", "test": "mrc-ner.test"}
LANGUAGES = ("en", "zh")


@dataclass
class NerSentence:
    """One sentence: ``tokens`` (words, or characters for Chinese) and gold ``entities`` (may nest).

    entities: ``(start, end_inclusive, type)`` over ``tokens``, sorted, without duplicates.
    source: where it came from (``file:line`` or ``file[index]``), for error messages.
    line_per_token: ``source`` is ``file:line`` of the first token of a one-token-per-line file (column files),
        so token ``k`` sits on line ``line + k``.
    """

    tokens: list[str]
    entities: list[Span] = field(default_factory=list)
    source: str = ""
    line_per_token: bool = False

    def __post_init__(self) -> None:
        self.entities = sorted(set(map(tuple, self.entities)), key=lambda e: (e[0], e[1], e[2]))

    def where(self, token: int = 0) -> str:
        """``file:line`` of token ``token`` when the file has one token per line, else ``source``."""
        path, _, line = self.source.rpartition(":")
        return f"{path}:{int(line) + token}" if self.line_per_token and line.isdigit() else self.source


@dataclass
class MrcExample:
    """One BERT-MRC JSON object (one sentence × one entity type). Positions are inclusive token indices."""

    context: str
    query: str
    entity_label: str
    start_position: list[int]
    end_position: list[int]
    qas_id: str = ""
    impossible: bool | None = None
    span_position: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"context": self.context, "end_position": list(self.end_position), "entity_label": self.entity_label,
                "impossible": (not self.start_position) if self.impossible is None else self.impossible,
                "qas_id": self.qas_id, "query": self.query,
                "span_position": self.span_position if self.span_position is not None else
                [f"{s};{e}" for s, e in zip(self.start_position, self.end_position)],
                "start_position": list(self.start_position)}


class NerDataError(DataError):
    """Malformed NER data; the message names the file and the record (line or array index)."""


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    return language


def context_tokens(context: str, language: str) -> list[str]:
    """BERT-MRC context string → tokens: words for English, characters (whitespace removed) for Chinese."""
    return context.split() if _check_language(language) == "en" else list("".join(context.split()))


def _rename(entities: Iterable[Span], label_map: Mapping[str, str] | None) -> list[Span]:
    if not label_map:
        return list(entities)
    return [(s, e, label_map.get(t, t)) for s, e, t in entities]


# ----------------------------------------------------------------------------- column files


def read_tagged_file(path: str | Path, scheme: str = "auto", token_col: int = 0, tag_col: int = -1,
                     strict: bool = False, label_map: Mapping[str, str] | None = None,
                     sep: str | None = None, repairs: dict[str, Any] | None = None) -> list[NerSentence]:
    """A CoNLL-style column file (one token per line, blank line between sentences) → sentences.

    Args:
        scheme: ``BIO``/``IOB1``/``BIOES``/``BMES`` or ``auto`` (``schemes.guess_scheme`` on the whole file).
            Decoding follows conlleval for every scheme; ``strict=True`` rejects ill-formed sequences with
            ``file:line``.
        label_map: rename entity types (e.g. MSRA ``{"NR": "PER", "NS": "LOC", "NT": "ORG"}``).
        repairs: filled with ``{str(path): {"scheme", "ill_formed_tags", "first"}}`` when (``strict=False``)
            some tags are not well formed for the scheme and were repaired as conlleval reads them (e.g. in BIO an
            ``I-X`` with no ``B-X`` before it starts a new entity, as if it were ``B-X``); a warning says how many.

    A tag that cannot be parsed (``X-PER``) and, with ``strict``, an ill-formed one raise ``NerDataError`` naming
    ``file:line`` of the tag.
    """
    sentences = read_column_file(path, token_col=token_col, tag_col=tag_col, sep=sep)
    tags = [s.tags for s in sentences]
    try:
        if scheme == "auto":
            scheme = guess_scheme(tags)
        spans = batch_tags_to_spans(tags, scheme=scheme, strict=strict)
    except IllFormedTagsError as err:
        raise NerDataError(err.detail, where=f"{path}:{sentences[err.sentence].line_no + err.position}") from None
    bad = ill_formed_positions(tags, scheme)
    if bad:
        s, pos = bad[0]
        first = f"{path}:{sentences[s].line_no + pos}"
        log.warning("%s: %d tag(s) are not well formed for %s (first at line %d: %s); read as conlleval does "
                    "(e.g. an I-X without B-X starts a new entity); task.params.strict=true rejects them instead",
                    path, len(bad), scheme, sentences[s].line_no + pos, describe_tag(tags[s], pos))
        if repairs is not None:
            repairs[str(path)] = {"scheme": scheme, "ill_formed_tags": len(bad), "first": first}
    return [NerSentence(tokens=list(s.tokens), entities=_rename(sp, label_map), source=f"{path}:{s.line_no}",
                        line_per_token=True)
            for s, sp in zip(sentences, spans)]


def check_entity_types(sentences: Sequence[NerSentence], types: Sequence[str]) -> None:
    """Raise ``NerDataError`` naming the file and line (or record) of the first entity whose type has no query."""
    allowed = set(types)
    for sent in sentences:
        for start, _, typ in sent.entities:
            if typ not in allowed:
                raise NerDataError(f"entity type {typ!r} has no query", where=sent.where(start),
                                   expected=f"one of {list(types)} (add a query to task.params.queries, or rename the "
                                            f"type with task.params.label_map)")


def write_tagged_file(path: str | Path, sentences: Sequence[NerSentence], scheme: str = "BIO") -> None:
    """Write sentences as ``token<TAB>tag`` lines in ``scheme`` (atomically). Nested entities raise."""
    from dicenlp.data.conll import write_column_file

    write_column_file(path, [(s.tokens, spans_to_tags(s.entities, len(s.tokens), scheme)) for s in sentences])


_SLASH = re.compile(r"^(?P<word>.+)/(?P<tag>[A-Za-z]+)$")


def read_slash_file(path: str | Path, label_map: Mapping[str, str] | None = None,
                    outside: str = "o") -> list[NerSentence]:
    """SIGHAN-2006 MSRA NER lines ``word/tag word/tag ...`` (one sentence per line; tags ``nr ns nt o``)
    → character-level sentences; each word tagged ``nr``/``ns``/``nt`` is one entity of type ``NR``/``NS``/
    ``NT`` (upper-cased, then ``label_map``). Empty lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError("MSRA word/tag file not found", where=str(path))
    out = []
    for line_no, line in text_lines(path):
        items = line.split()
        if not items:
            continue
        chars: list[str] = []
        entities = []
        for item in items:
            m = _SLASH.match(item)
            if m is None:
                raise NerDataError(f"{path}:{line_no}: expected word/tag items such as '北京/ns', got {item!r}")
            word, tag = m.group("word"), m.group("tag")
            if tag.lower() != outside:
                entities.append((len(chars), len(chars) + len(word) - 1, tag.upper()))
            chars.extend(word)
        out.append(NerSentence(tokens=chars, entities=_rename(entities, label_map), source=f"{path}:{line_no}"))
    if not out:
        raise NerDataError(f"{path}: no sentences found")
    return out


# ----------------------------------------------------------------------------- BERT-MRC JSON

_REQUIRED = ("context", "entity_label", "start_position", "end_position")


def read_mrc_json(path: str | Path, language: str = "en") -> list[MrcExample]:
    """Read and validate a BERT-MRC ``mrc-ner.*`` file (a JSON array of objects).

    Raises ``NerDataError`` naming ``file[index]`` (and ``qas_id``) for a missing field, unequal
    start/end lists, a start after its end, or a position outside the context.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError("BERT-MRC file not found", where=str(path))
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise NerDataError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); expected a JSON array of "
                           f"BERT-MRC objects") from None
    if not isinstance(data, list):
        raise NerDataError(f"{path}: expected a JSON array of objects, got {type(data).__name__}")
    out = []
    for i, obj in enumerate(data):
        where = f"{path}[{i}]" + (f" (qas_id {obj.get('qas_id')!r})" if isinstance(obj, dict) and "qas_id" in obj else "")
        if not isinstance(obj, dict):
            raise NerDataError(f"{where}: expected an object, got {type(obj).__name__}")
        missing = [k for k in _REQUIRED if k not in obj]
        if missing:
            raise NerDataError(f"{where}: missing field(s) {missing}; a BERT-MRC object needs {list(_REQUIRED)}")
        starts, ends = obj["start_position"], obj["end_position"]
        if len(starts) != len(ends):
            raise NerDataError(f"{where}: {len(starts)} start positions but {len(ends)} end positions")
        n = len(context_tokens(obj["context"], language))
        for s, e in zip(starts, ends):
            if not (isinstance(s, int) and isinstance(e, int) and 0 <= s <= e < n):
                raise NerDataError(f"{where}: span ({s}, {e}) is not 0 <= start <= end < {n} (context length in "
                                   f"{'words' if language == 'en' else 'characters'})")
        out.append(MrcExample(context=obj["context"], query=obj.get("query", ""), entity_label=obj["entity_label"],
                              start_position=list(starts), end_position=list(ends), qas_id=str(obj.get("qas_id", "")),
                              impossible=obj.get("impossible"), span_position=obj.get("span_position")))
    return out


def write_mrc_json(path: str | Path, examples: Sequence[MrcExample]) -> None:
    """Write a BERT-MRC JSON array, one object per line (atomically: temp file, then rename)."""
    from dicenlp.files import write_text_atomic

    body = ",\n".join(json.dumps(e.to_json(), ensure_ascii=False) for e in examples)
    write_text_atomic(path, f"[\n{body}\n]\n" if examples else "[]\n")


def sentences_to_mrc(sentences: Sequence[NerSentence], queries: Mapping[str, str],
                     language: str = "en") -> list[MrcExample]:
    """One example per (sentence, entity type in ``queries``), in sentence order then ``queries`` order;
    ``qas_id = "<sentence>.<type index from 1>"`` as the official generator writes it.

    Raises ``NerDataError`` if a sentence has an entity type without a query.
    """
    _check_language(language)
    types = list(queries)
    out = []
    for si, sent in enumerate(sentences):
        unknown = {t for _, _, t in sent.entities} - set(types)
        if unknown:
            raise NerDataError(f"{sent.source or f'sentence {si}'}: entity type(s) {sorted(unknown)} have no query; "
                               f"queries are defined for {types}")
        bad = [e for e in sent.entities if not 0 <= e[0] <= e[1] < len(sent.tokens)]
        if bad:
            raise NerDataError(f"{sent.source or f'sentence {si}'}: entities {bad} lie outside the "
                               f"{len(sent.tokens)} tokens of the sentence")
        if language == "zh" and any(len(t) != 1 for t in sent.tokens):
            raise NerDataError(f"{sent.source or f'sentence {si}'}: Chinese BERT-MRC contexts are characters, "
                               f"but some tokens are longer than one character")
        if language == "en" and any(not t or any(c.isspace() for c in t) for t in sent.tokens):
            raise NerDataError(f"{sent.source or f'sentence {si}'}: English tokens must be non-empty and hold no "
                               f"whitespace (contexts are space-separated words)")
        context = " ".join(sent.tokens)
        for ti, typ in enumerate(types, start=1):
            spans = [(s, e) for s, e, t in sent.entities if t == typ]
            out.append(MrcExample(context=context, query=queries[typ], entity_label=typ,
                                  start_position=[s for s, _ in spans], end_position=[e for _, e in spans],
                                  qas_id=f"{si}.{ti}"))
    return out


_QAS = re.compile(r"^(\d+)\.(\d+)$")


def mrc_to_sentences(examples: Sequence[MrcExample], language: str = "en", source: str = "") -> list[NerSentence]:
    """Group BERT-MRC examples back into sentences with all their entities.

    Examples of one sentence share the sentence index of ``qas_id`` (``"<sentence>.<type>"``); files whose
    ids are not of that form are grouped by runs of consecutive examples with the same context and distinct
    types. Raises ``NerDataError`` if examples of one sentence disagree on the context.
    """
    groups: list[list[int]] = []
    keyed = all(_QAS.match(e.qas_id) for e in examples)
    if keyed:
        index: dict[str, int] = {}
        for i, e in enumerate(examples):
            key = _QAS.match(e.qas_id).group(1)
            if key not in index:
                index[key] = len(groups)
                groups.append([])
            groups[index[key]].append(i)
    else:
        for i, e in enumerate(examples):
            prev = groups[-1] if groups else None
            if (prev is not None and examples[prev[0]].context == e.context
                    and e.entity_label not in {examples[j].entity_label for j in prev}):
                prev.append(i)
            else:
                groups.append([i])
    out = []
    for g in groups:
        first = examples[g[0]]
        for j in g[1:]:
            if examples[j].context != first.context:
                raise NerDataError(f"{source}[{j}] (qas_id {examples[j].qas_id!r}): context differs from "
                                   f"{source}[{g[0]}] of the same sentence")
        entities = [(s, e, examples[j].entity_label) for j in g
                    for s, e in zip(examples[j].start_position, examples[j].end_position)]
        out.append(NerSentence(tokens=context_tokens(first.context, language), entities=entities,
                               source=f"{source}[{g[0]}]"))
    return out


def read_mrc_sentences(path: str | Path, language: str = "en",
                       label_map: Mapping[str, str] | None = None) -> list[NerSentence]:
    """``read_mrc_json`` + ``mrc_to_sentences`` (+ optional type renaming)."""
    sentences = mrc_to_sentences(read_mrc_json(path, language), language, source=str(path))
    if label_map:
        for s in sentences:
            s.entities = _rename(s.entities, label_map)
            s.__post_init__()
    return sentences


# ----------------------------------------------------------------------------- Hugging Face Hub


def hf_to_sentences(dataset, tokens_field: str = "tokens", tags_field: str = "ner_tags", scheme: str = "BIO",
                    label_map: Mapping[str, str] | None = None, source: str = "hub",
                    label_names: Sequence[str] | None = None) -> list[NerSentence]:
    """A ``datasets.Dataset`` with a token list column and a tag column: ``ClassLabel`` ids (their names are
    used), plain integer ids (``label_names`` maps them) or tag strings."""
    feature = dataset.features[tags_field]
    names = getattr(getattr(feature, "feature", None), "names", None) or label_names
    tokens_col, tags_col = dataset[tokens_field], dataset[tags_field]
    if names is None and any(isinstance(t, int) for row in tags_col for t in row):
        raise NerDataError(f"{source}: integer tags without label names; pass label_names")
    tags = [[names[t] if isinstance(t, int) else t for t in row] if names is not None else list(row)
            for row in tags_col]
    where = [f"{source}[{i}]" for i in range(len(tags))]
    spans = batch_tags_to_spans(tags, scheme=scheme, where=where)
    return [NerSentence(tokens=list(tok), entities=_rename(sp, label_map), source=w)
            for tok, sp, w in zip(tokens_col, spans, where)]


#: Hub split names → ours.
_HUB_SPLITS = {"train": "train", "validation": "dev", "dev": "dev", "test": "test"}

#: CoNLL-2003's tag ids in every Hub copy (eriktks/conll2003, conll2003, lhoestq/conll2003), for copies whose
#: parquet files lost the ClassLabel names.
CONLL03_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


def _hub_attempts(names: str | Sequence[str]) -> list[tuple[str, str | None]]:
    """Each name as is, then its parquet conversion (script datasets such as ``eriktks/conll2003`` cannot be
    run by ``datasets`` >= 4, but the Hub keeps a parquet copy under ``refs/convert/parquet``)."""
    names = [names] if isinstance(names, str) else list(names)
    return [(n, rev) for n in names for rev in (None, "refs/convert/parquet")]


def load_hub_ner(names: str | Sequence[str] = ("eriktks/conll2003", "lhoestq/conll2003"),
                 label_names: Sequence[str] | None = CONLL03_TAGS, **kwargs) -> dict[str, list[NerSentence]]:
    """Load a token-classification NER dataset from the Hugging Face Hub (network or a filled HF cache).

    ``names``: one Hub name or several tried in order (each also at ``refs/convert/parquet``). CoNLL-2003:
    ``eriktks/conll2003`` (formerly ``conll2003``) and its parquet copy ``lhoestq/conll2003``, IOB2 tags.
    ``label_names`` maps integer tags when the copy has no ``ClassLabel`` names. Raises ``FileNotFoundError``
    naming every attempt when none loads.
    """
    import datasets

    errors = []
    for name, revision in _hub_attempts(names):
        try:
            dsd = datasets.load_dataset(name, revision=revision)
        except Exception as err:  # noqa: BLE001 - any Hub/network failure: try the next copy
            errors.append(f"{name}{'@' + revision if revision else ''}: {type(err).__name__}: {str(err)[:200]}")
            continue
        return {_HUB_SPLITS[k]: hf_to_sentences(v, source=f"{name}:{k}", label_names=label_names, **kwargs)
                for k, v in dsd.items() if k in _HUB_SPLITS}
    raise FileNotFoundError(
        "could not load NER data from the Hugging Face Hub (" + "; ".join(errors) + "). Without network, put "
        "column files train.txt/dev.txt/test.txt (or BERT-MRC mrc-ner.* files) in the task's data_dir (docs/ner.md).")


def hub_available(names: str | Sequence[str]) -> str | None:
    """``None`` if one of the Hub copies can be resolved (cache or network), else the reason (for check_data)."""
    import datasets

    errors = []
    for name, revision in _hub_attempts(names):
        try:
            datasets.load_dataset_builder(name, revision=revision)
            return None
        except Exception as err:  # noqa: BLE001
            errors.append(f"{name}{'@' + revision if revision else ''}: {type(err).__name__}")
    return "; ".join(errors)


# ----------------------------------------------------------------------------- splits


def split_train_dev(sentences: Sequence[NerSentence], dev_ratio: float = 0.1,
                    seed: int = 42) -> tuple[list[NerSentence], list[NerSentence]]:
    """Random train/dev split (``dev_ratio`` of the sentences to dev), reproducible for a given seed and
    independent of the training seed; both parts keep file order (``dicenlp.data.subsets``, as every task's
    ``split_off``)."""
    from dicenlp.data.subsets import DataPlan

    if not 0 < dev_ratio < 1:
        raise ValueError(f"dev_ratio must be in (0, 1), got {dev_ratio}")
    splits, _ = DataPlan(split_off={"dev": ("train", dev_ratio)}, seed=seed).apply({"train": list(sentences)})
    return splits["train"], splits["dev"]


def find_split_file(data_dir: Path, split: str, candidates: Sequence[str]) -> Path | None:
    for name in candidates:
        path = data_dir / name.format(split=split)
        if path.is_file():
            return path
    return None


#: File names tried per split for column files (``{split}`` = train/dev/test; dev also as ``valid``/``testa``).
COLUMN_PATTERNS = ("{split}.txt", "{split}.bio", "{split}.bmes", "{split}.char.bmes", "{split}.char.bio",
                   "{split}.tsv", "{split}.conll")
_SPLIT_ALIASES = {"train": ("train",), "dev": ("dev", "valid", "validation", "testa"), "test": ("test", "testb")}


def column_file(data_dir: Path, split: str) -> Path | None:
    for alias in _SPLIT_ALIASES[split]:
        path = find_split_file(data_dir, alias, COLUMN_PATTERNS)
        if path is not None:
            return path
    return None


def detect_format(data_dir: str | Path) -> str:
    """``mrc_json`` if ``mrc-ner.train`` exists, ``column`` if a train column file exists, else ``missing``."""
    data_dir = Path(data_dir)
    if (data_dir / MRC_FILES["train"]).is_file():
        return "mrc_json"
    if column_file(data_dir, "train") is not None:
        return "column"
    return "missing"


def load_ner_splits(data_dir: str | Path, data_format: str = "auto", language: str = "en", scheme: str = "auto",
                    label_map: Mapping[str, str] | None = None, dev_ratio: float | None = None,
                    split_seed: int = 42, hub_name: str | Sequence[str] | None = None, strict: bool = False,
                    files: Mapping[str, str] | None = None, require_dev: bool = True,
                    repairs: dict[str, Any] | None = None) -> dict[str, list[NerSentence]]:
    """Read train/dev/test sentences of one dataset.

    Args:
        data_format: ``auto`` (``mrc_json`` when ``mrc-ner.train`` exists, else column files, else ``hub``
            when ``hub_name`` is given), ``mrc_json``, ``column``, ``slash`` (MSRA word/tag lines) or ``hub``.
        files: explicit file names per split (relative to ``data_dir``), overriding the usual names.
        dev_ratio: when there is no dev file (MSRA), split train with this ratio and ``split_seed``.
        require_dev: without a dev file and ``dev_ratio``, raise (False: return the splits there are; the task
            then splits one off with its ``split_off`` param).
        repairs: filled with the tag repairs of column files (``read_tagged_file``).
    """
    data_dir = Path(data_dir)
    fmt = data_format
    if fmt == "auto":
        fmt = detect_format(data_dir) if not files else "column"
        if fmt == "missing":
            if hub_name:
                fmt = "hub"
            else:
                raise MissingDataError(f"no NER data in {data_dir}: expected {MRC_FILES['train']} (BERT-MRC JSON) or "
                                        f"a column file such as train.txt (see docs/ner.md)")
    splits: dict[str, list[NerSentence]] = {}
    if fmt == "hub":
        splits = load_hub_ner(hub_name or ("eriktks/conll2003", "lhoestq/conll2003"), label_map=label_map)
    else:
        for split in ("train", "dev", "test"):
            if files and split in files:
                path = data_dir / files[split]
                if not path.is_file():
                    raise MissingDataError(f"{split} file not found", where=str(path))
            elif fmt == "mrc_json":
                path = data_dir / MRC_FILES[split]
                path = path if path.is_file() else None
            elif fmt == "slash":
                path = find_split_file(data_dir, split, ("{split}.txt", "msra_{split}.txt"))
            elif fmt == "column":
                path = column_file(data_dir, split)
            else:
                raise ValueError(f"unknown data_format {data_format!r}; expected auto, mrc_json, column, slash, hub")
            if path is None:
                continue
            if fmt == "mrc_json":
                splits[split] = read_mrc_sentences(path, language, label_map)
            elif fmt == "slash":
                splits[split] = read_slash_file(path, label_map)
            else:
                splits[split] = read_tagged_file(path, scheme=scheme, label_map=label_map, strict=strict,
                                                 repairs=repairs)
    if "train" not in splits:
        raise MissingDataError(f"no training file found in {data_dir} (format {fmt})")
    if "dev" not in splits and (dev_ratio or require_dev):
        if not dev_ratio:
            raise MissingDataError(f"no dev file in {data_dir}; set dev_ratio (e.g. 0.1) to split train 9:1")
        splits["train"], splits["dev"] = split_train_dev(splits["train"], dev_ratio, split_seed)
    return splits


__all__ = ["ColumnFormatError", "MrcExample", "NerDataError", "NerSentence", "check_entity_types", "context_tokens",
           "detect_format",
           "hf_to_sentences", "hub_available", "load_hub_ner", "load_ner_splits", "mrc_to_sentences", "read_mrc_json",
           "read_mrc_sentences", "read_slash_file", "read_tagged_file", "sentences_to_mrc", "split_train_dev",
           "write_mrc_json", "write_tagged_file"]
