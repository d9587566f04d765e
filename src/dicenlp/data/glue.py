"""Readers for the sentence(-pair) classification data of Tables 7–9: MRPC, QQP, SST-2 and SST-5.

Every reader returns ``Examples`` (columns: ``ids``, ``text_a``, ``text_b`` or None, ``label`` int64).

Local layouts (one folder per dataset, the files as their publishers distribute them):

=========  =====================================================================================================
MRPC       GLUE: ``train.tsv``, ``dev.tsv`` with the header ``Quality  #1 ID  #2 ID  #1 String  #2 String`` (the
           file starts with a UTF-8 byte-order mark, inherited from Microsoft's original file), and GLUE's
           unlabeled ``test.tsv`` (header ``index  #1 ID ...``), which is never scored here.
           Original: ``msr_paraphrase_train.txt`` (+ ``mrpc_dev_ids.tsv`` or ``dev_ids.tsv``: the 408 ``#1 ID``,
           ``#2 ID`` pairs GLUE moved to dev, one pair per line, no header) and ``msr_paraphrase_test.txt``
           (1,725 *labeled* pairs, same five columns). Train/dev are built from the original file exactly as
           GLUE's ``download_glue_data.py`` does when ``train.tsv``/``dev.tsv`` are absent.
QQP        GLUE: ``train.tsv``, ``dev.tsv`` with ``id  qid1  qid2  question1  question2  is_duplicate``; GLUE's
           ``test.tsv`` (``id  question1  question2``) has no labels.
SST-2      GLUE: ``train.tsv``, ``dev.tsv`` with ``sentence  label``; a ``test.tsv`` is scored only if it is
           labeled (``sentence  label``, e.g. the 1,821 test sentences of SST); GLUE's own is ``index  sentence``.
SST-5      ``train``, ``dev``, ``test`` as either TSV with the header ``sentence  label`` (labels 0–4, the layout
           of SentEval's ``SST/fine`` files plus a header line) or JSON lines ``{"text", "label"[, "label_text"]}``
           (the layout of ``SetFit/sst5``: ``train.jsonl``, ``dev.jsonl`` or ``validation.jsonl``, ``test.jsonl``).
=========  =====================================================================================================

TSV files are read like GLUE reads them: tab-separated, **no quoting** (``csv.QUOTE_NONE``): a field such as
``" The foodservice pie business ...`` starts with a literal quote and must not swallow the following lines,
as a quoting CSV reader would. A row with too few or too many fields raises ``GlueFormatError`` naming the
file, the line and the expected columns (``on_bad_row="skip"`` skips and counts them instead: older QQP
releases have a few such rows, which ``transformers``' ``QqpProcessor`` also skipped).

Hub copies (``load_hub``) are used when the local files are absent: ``nyu-mll/glue`` (configs ``mrpc``,
``qqp``, ``sst2``; their ``test`` splits carry label -1, i.e. none), ``SetFit/sst2`` for SST-2's labeled test
sentences, and ``SetFit/sst5``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from dicenlp.data.text import read_text, text_lines
from dicenlp.errors import DataError, MissingDataError

log = logging.getLogger(__name__)

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a few QQP questions are long; never truncate a field


class GlueFormatError(DataError):
    """A data file does not have the expected layout (the message names the file, line and expectation)."""


@dataclass
class Examples:
    """Columns of one split. ``text_b`` is None for single-sentence tasks; ``label`` is int64 ``[N]``."""

    ids: list[str]
    text_a: list[str]
    text_b: list[str] | None
    label: np.ndarray
    source: str = ""
    skipped_lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.label = np.asarray(self.label, dtype=np.int64).reshape(-1)
        n = len(self.ids)
        if len(self.text_a) != n or self.label.shape[0] != n or (self.text_b is not None and len(self.text_b) != n):
            raise ValueError(f"columns of {self.source or 'examples'} differ in length")

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, indices: Sequence[int] | np.ndarray) -> "Examples":
        idx = np.asarray(indices, dtype=np.int64)
        return Examples(ids=[self.ids[i] for i in idx], text_a=[self.text_a[i] for i in idx],
                        text_b=None if self.text_b is None else [self.text_b[i] for i in idx],
                        label=self.label[idx], source=self.source)

    def head(self, n: int | None) -> "Examples":
        return self if n is None or n >= len(self) else self.select(np.arange(n))

    @staticmethod
    def concat(parts: Sequence["Examples"], source: str = "") -> "Examples":
        pair = parts[0].text_b is not None
        if any((p.text_b is not None) != pair for p in parts):
            raise ValueError("cannot concatenate sentence and sentence-pair examples")
        return Examples(ids=[i for p in parts for i in p.ids], text_a=[t for p in parts for t in p.text_a],
                        text_b=[t for p in parts for t in p.text_b] if pair else None,
                        label=np.concatenate([p.label for p in parts]), source=source or parts[0].source)

    def to_dict(self) -> dict[str, list]:
        out = {"id": self.ids, "text_a": self.text_a, "label": self.label.tolist()}
        if self.text_b is not None:
            out["text_b"] = self.text_b
        return out


# ------------------------------------------------------------------------------------------ layouts
@dataclass(frozen=True)
class TsvLayout:
    """A labeled TSV layout: header names and which columns are the label, the texts and the ids."""

    name: str
    header: tuple[str, ...]
    label: str
    text_a: str
    text_b: str | None
    ids: tuple[str, ...] = ()
    unlabeled_header: tuple[str, ...] | None = None  # the matching GLUE test file (no labels)


MRPC = TsvLayout("MRPC", ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"), label="Quality",
                 text_a="#1 String", text_b="#2 String", ids=("#1 ID", "#2 ID"),
                 unlabeled_header=("index", "#1 ID", "#2 ID", "#1 String", "#2 String"))
QQP = TsvLayout("QQP", ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"), label="is_duplicate",
                text_a="question1", text_b="question2", ids=("id",), unlabeled_header=("id", "question1", "question2"))
SST = TsvLayout("SST", ("sentence", "label"), label="label", text_a="sentence", text_b=None,
                unlabeled_header=("index", "sentence"))

#: dataset → (layout, number of classes)
DATASETS: dict[str, tuple[TsvLayout, int]] = {"mrpc": (MRPC, 2), "qqp": (QQP, 2), "sst2": (SST, 2), "sst5": (SST, 5)}


def _open_text(path: Path) -> io.StringIO:
    # read_text strips the byte-order mark GLUE's MRPC files start with (else the first header cell would be
    # "\ufeffQuality") and names file:line for bytes that are not UTF-8; newline="" lets csv see the file's own
    # line ends.
    return io.StringIO(read_text(path), newline="")


def read_header(path: str | Path) -> tuple[str, ...]:
    """The first row of a TSV file (BOM stripped)."""
    with _open_text(Path(path)) as handle:
        return tuple(next(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), ()))


def is_unlabeled(path: str | Path, layout: TsvLayout) -> bool:
    """True for GLUE's unlabeled test files (``index  sentence``, ``id  question1  question2``, ...)."""
    return layout.unlabeled_header is not None and read_header(path) == layout.unlabeled_header


def read_tsv(path: str | Path, layout: TsvLayout, num_labels: int = 2, on_bad_row: str = "error") -> Examples:
    """Read a labeled TSV file of ``layout`` (GLUE quoting rules: none). See the module docstring."""
    path = Path(path)
    if on_bad_row not in ("error", "skip"):
        raise ValueError(f"on_bad_row must be 'error' or 'skip', not {on_bad_row!r}")
    if not path.is_file():
        raise MissingDataError("no such file", where=str(path))
    width = len(layout.header)
    expected = "\t".join(layout.header)
    ids, text_a, text_b, labels, skipped = [], [], [], [], []
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = tuple(next(reader, ()))
        if header != layout.header:
            if layout.unlabeled_header is not None and header == layout.unlabeled_header:
                raise GlueFormatError(f"{path}:1: this is an unlabeled {layout.name} test file (GLUE's test split "
                                      f"is scored only by the GLUE server); expected a labeled header {expected!r}")
            raise GlueFormatError(f"{path}:1: expected the {layout.name} header {expected!r}, found "
                                  f"{chr(9).join(header)!r}")
        col = {name: i for i, name in enumerate(layout.header)}
        i_label, i_a = col[layout.label], col[layout.text_a]
        i_b = col[layout.text_b] if layout.text_b else None
        i_ids = [col[c] for c in layout.ids]
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank (e.g. trailing) line
            problem = None
            if len(row) != width:
                problem = (f"expected {width} tab-separated columns ({', '.join(layout.header)}), found {len(row)}")
            else:
                raw = row[i_label].strip()
                if not (raw.isdigit() and int(raw) < num_labels):
                    problem = f"expected a label in 0..{num_labels - 1} in column {layout.label!r}, found {raw!r}"
            if problem:
                if on_bad_row == "skip":
                    skipped.append(line)
                    continue
                raise GlueFormatError(f"{path}:{line}: {problem}")
            labels.append(int(raw))
            text_a.append(row[i_a])
            if i_b is not None:
                text_b.append(row[i_b])
            ids.append("_".join(row[i] for i in i_ids) if i_ids else f"{path.stem}-{len(ids)}")
    if skipped:
        log.warning("%s: skipped %d malformed rows (lines %s%s)", path, len(skipped),
                    ", ".join(map(str, skipped[:10])), " ..." if len(skipped) > 10 else "")
    return Examples(ids, text_a, text_b if layout.text_b else None, np.asarray(labels, dtype=np.int64),
                    source=str(path), skipped_lines=skipped)


def read_jsonl(path: str | Path, num_labels: int, text_key: str = "text", label_key: str = "label") -> Examples:
    """JSON lines with a text and an integer label per line (the ``SetFit/sst5`` layout)."""
    path = Path(path)
    ids, texts, labels = [], [], []
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise GlueFormatError(f"{path}:{line_no}: not a JSON object ({err.msg})") from None
        if not isinstance(record, dict) or text_key not in record or label_key not in record:
            raise GlueFormatError(f"{path}:{line_no}: expected an object with keys {text_key!r} and {label_key!r}")
        label = record[label_key]
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < num_labels:
            raise GlueFormatError(
                f"{path}:{line_no}: expected {label_key!r} in 0..{num_labels - 1}, found {label!r}")
        ids.append(str(record.get("id", f"{path.stem}-{len(ids)}")))
        texts.append(str(record[text_key]))
        labels.append(label)
    return Examples(ids, texts, None, np.asarray(labels, dtype=np.int64), source=str(path))


# ------------------------------------------------------------------------------------------ MRPC original
def read_id_pairs(path: str | Path) -> list[tuple[str, str]]:
    """GLUE's ``mrpc_dev_ids.tsv``: one ``#1 ID<TAB>#2 ID`` pair per line, no header."""
    path = Path(path)
    pairs = []
    with _open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            cells = line.rstrip("\r\n").split("\t")
            if len(cells) != 2 or not all(c.strip().isdigit() for c in cells):
                raise GlueFormatError(
                    f"{path}:{line_no}: expected two tab-separated sentence ids, found {line.strip()!r}")
            pairs.append((cells[0].strip(), cells[1].strip()))
    return pairs


def split_mrpc_dev(train: Examples, dev_ids: list[tuple[str, str]]) -> tuple[Examples, Examples]:
    """GLUE's train/dev split of ``msr_paraphrase_train.txt``: the pairs listed in the dev ids go to dev
    (file order kept), the rest stay in train (4,076 → 3,668 + 408)."""
    wanted = {f"{a}_{b}" for a, b in dev_ids}
    is_dev = np.fromiter((i in wanted for i in train.ids), dtype=bool, count=len(train))
    missing = wanted - {i for i, d in zip(train.ids, is_dev) if d}
    if missing:
        raise GlueFormatError(f"{len(missing)} dev id pairs are not in {train.source} (e.g. {sorted(missing)[0]}): "
                              "is this Microsoft's msr_paraphrase_train.txt?")
    return train.select(np.flatnonzero(~is_dev)), train.select(np.flatnonzero(is_dev))


# ------------------------------------------------------------------------------------------ local splits
MRPC_DEV_IDS = ("mrpc_dev_ids.tsv", "dev_ids.tsv")


def local_files(dataset: str, data_dir: str | Path) -> dict[str, Path]:
    """The files of ``dataset`` present in ``data_dir`` per split (``{}`` when none). Unlabeled test files
    are left out. For MRPC, ``train``/``dev`` may instead be ``msr_paraphrase_train.txt`` (+ dev ids)."""
    data_dir = Path(data_dir)
    layout, _ = DATASETS[dataset]
    found: dict[str, Path] = {}
    if dataset == "sst5":
        for split, names in (("train", ("train.tsv", "train.jsonl")),
                             ("dev", ("dev.tsv", "dev.jsonl", "validation.jsonl")),
                             ("test", ("test.tsv", "test.jsonl"))):
            for name in names:
                if (data_dir / name).is_file():
                    found[split] = data_dir / name
                    break
        return found
    for split in ("train", "dev", "test"):
        path = data_dir / f"{split}.tsv"
        if path.is_file() and not (split == "test" and is_unlabeled(path, layout)):
            found[split] = path
    if dataset == "mrpc":
        original = data_dir / "msr_paraphrase_train.txt"
        ids = next((data_dir / n for n in MRPC_DEV_IDS if (data_dir / n).is_file()), None)
        if ("train" not in found or "dev" not in found) and original.is_file() and ids is not None:
            found["train"] = found["dev"] = original
            found["dev_ids"] = ids
        test = data_dir / "msr_paraphrase_test.txt"
        if test.is_file():
            found["test"] = test  # the labeled 1,725 pairs (GLUE's test.tsv is the same pairs without labels)
    return found


def read_local(dataset: str, data_dir: str | Path, on_bad_row: str = "error") -> dict[str, Examples]:
    """Every labeled split of ``dataset`` found in ``data_dir`` (see ``local_files``)."""
    layout, num_labels = DATASETS[dataset]
    files = local_files(dataset, data_dir)
    splits: dict[str, Examples] = {}
    if "dev_ids" in files:
        full = read_tsv(files["train"], layout, num_labels, on_bad_row)
        splits["train"], splits["dev"] = split_mrpc_dev(full, read_id_pairs(files["dev_ids"]))
    for split in ("train", "dev", "test"):
        if split in splits or split not in files:
            continue
        path = files[split]
        splits[split] = (read_jsonl(path, num_labels) if path.suffix == ".jsonl"
                         else read_tsv(path, layout, num_labels, on_bad_row))
    return splits


# ------------------------------------------------------------------------------------------ Hub
#: dataset → split → (repository, config, Hub split, text_a column, text_b column or None)
HUB_SOURCES: dict[str, dict[str, tuple[str, str | None, str, str, str | None]]] = {
    "mrpc": {"train": ("nyu-mll/glue", "mrpc", "train", "sentence1", "sentence2"),
             "dev": ("nyu-mll/glue", "mrpc", "validation", "sentence1", "sentence2")},
    "qqp": {"train": ("nyu-mll/glue", "qqp", "train", "question1", "question2"),
            "dev": ("nyu-mll/glue", "qqp", "validation", "question1", "question2")},
    "sst2": {"train": ("nyu-mll/glue", "sst2", "train", "sentence", None),
             "dev": ("nyu-mll/glue", "sst2", "validation", "sentence", None),
             "test": ("SetFit/sst2", None, "test", "text", None)},  # SST's 1,821 labeled test sentences
    "sst5": {"train": ("SetFit/sst5", None, "train", "text", None),
             "dev": ("SetFit/sst5", None, "validation", "text", None),
             "test": ("SetFit/sst5", None, "test", "text", None)},
}


def load_hub(dataset: str) -> dict[str, Examples]:
    """The public Hub copies of ``dataset`` (needs network or a filled HF datasets cache).

    Rows without a label (label -1, as in GLUE's test splits) are dropped."""
    from datasets import load_dataset

    _, num_labels = DATASETS[dataset]
    splits = {}
    for split, (repo, config, hub_split, col_a, col_b) in HUB_SOURCES[dataset].items():
        data = load_dataset(repo, config, split=hub_split)
        label = np.asarray(data["label"], dtype=np.int64)
        keep = np.flatnonzero((label >= 0) & (label < num_labels))
        ids = [str(i) for i in data["idx"]] if "idx" in data.column_names else [str(i) for i in range(len(data))]
        text_a, text_b = list(data[col_a]), list(data[col_b]) if col_b else None
        name = f"{repo}{'/' + config if config else ''}:{hub_split}"
        splits[split] = Examples(ids, text_a, text_b, label, source=name).select(keep)
    return splits


# ------------------------------------------------------------------------------------------ writing
#: Local file names ``write_local`` uses per split.
LOCAL_NAMES = {"mrpc": {"train": "train.tsv", "dev": "dev.tsv", "test": "msr_paraphrase_test.txt"},
               "qqp": {"train": "train.tsv", "dev": "dev.tsv"},
               "sst2": {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
               "sst5": {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}}


_BREAKS = re.compile(r"[\t\r\n]+")


def _cell(text: str) -> str:
    # GLUE files are read without quoting: a tab or line break inside a text would shift the columns.
    return _BREAKS.sub(" ", text)


def write_local(dataset: str, splits: dict[str, Examples], data_dir: str | Path) -> dict[str, Path]:
    """Write ``splits`` in the local layout ``read_local`` reads (atomically; tabs/line breaks in a text become
    spaces). Ids that the source lacks (the Hub copies carry one ``idx``) are written as that index."""
    from dicenlp.files import write_text_atomic

    layout, _ = DATASETS[dataset]
    data_dir = Path(data_dir)
    written = {}
    for split, ex in splits.items():
        path = data_dir / LOCAL_NAMES[dataset][split]
        if path.suffix == ".jsonl":
            text = "".join(json.dumps({"id": i, "text": t, "label": int(y)}, ensure_ascii=False) + "\n"
                           for i, t, y in zip(ex.ids, ex.text_a, ex.label.tolist()))
        else:
            rows = []
            for n, (i, y) in enumerate(zip(ex.ids, ex.label.tolist())):
                values = {layout.label: str(y), layout.text_a: _cell(ex.text_a[n])}
                if layout.text_b:
                    values[layout.text_b] = _cell(ex.text_b[n])
                n_ids = len(layout.ids)
                parts = i.split("_") if n_ids > 1 and i.count("_") == n_ids - 1 else [i] * n_ids
                values.update(zip(layout.ids, parts))
                rows.append("\t".join(values.get(c, "") for c in layout.header))
            text = "\t".join(layout.header) + "\n" + "".join(r + "\n" for r in rows)
        written[split] = write_text_atomic(path, text)
    return written


def download(dataset: str, data_dir: str | Path) -> dict[str, Path]:
    """Fetch the Hub copies of ``dataset`` (``load_hub``) and write them into ``data_dir`` (``write_local``)."""
    return write_local(dataset, load_hub(dataset), data_dir)


__all__ = ["DATASETS", "Examples", "GlueFormatError", "HUB_SOURCES", "LOCAL_NAMES", "MRPC", "QQP", "SST", "TsvLayout",
           "download", "is_unlabeled", "load_hub", "local_files", "read_header", "read_id_pairs", "read_jsonl",
           "read_local", "read_tsv", "split_mrpc_dev", "write_local"]


if __name__ == "__main__":  # python -m dicenlp.data.glue sst5 data/sst5
    import argparse

    parser = argparse.ArgumentParser(description="Write the Hub copy of a dataset in the local layout")
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("data_dir")
    args = parser.parse_args()
    for split, path in download(args.dataset, args.data_dir).items():
        print(f"{split}: {path}")
