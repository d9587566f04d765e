"""Export BERT-MRC NER predictions to CoNLL column files: ``python -m dicenlp.export_ner <run_dir>``.

Reads ``<run_dir>/predictions_<split>.json`` (written by ``kind: mrc_ner`` runs) and writes
``<run_dir>/predictions_<split>.bio``: one token per line, ``token gold predicted`` separated by a space,
a blank line between sentences — the layout conlleval and seqeval read (the last two columns are the gold
and the predicted tag), and one of this project's NER input formats (``read_tagged_file`` reads the gold
with ``tag_col=1`` and the prediction with ``tag_col=-1``). Tags are in BIO by default (``--scheme``).

Only flat predictions can be written as tags: nested predictions (``task.params.decoding=nested``) or nested
gold stop with a message naming the file and the sentence. On flat predictions, seqeval's P/R/F1 on these
columns equal the run's span metric (tests/test_mrc_ner_decoding.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from dicenlp.data.schemes import spans_to_tags
from dicenlp.files import write_text_atomic


class ExportError(ValueError):
    """Predictions that cannot be written as tags; the message names the file and the sentence."""


def _spans(items: Sequence[Any]) -> list[tuple[int, int, str]]:
    """``[start, end, type]`` (gold) or ``{"span": [start, end, type], ...}`` (predictions) → tuples."""
    return [tuple(x["span"] if isinstance(x, dict) else x) for x in items]


def predictions_to_columns(rows: Sequence[dict], scheme: str = "BIO", where: str = "predictions") -> str:
    """The rows of a ``predictions_<split>.json`` → the text of the column file (``token gold pred`` lines)."""
    lines: list[str] = []
    for n, row in enumerate(rows):
        tokens = row["tokens"]
        tags = {}
        for column in ("gold", "pred"):
            try:
                tags[column] = spans_to_tags(_spans(row[column]), len(tokens), scheme)
            except ValueError as err:
                raise ExportError(
                    f"{where}, sentence {row.get('sentence', n)}: the {column} spans cannot be written as {scheme} "
                    f"tags ({err}); only flat NER can be exported (train with task.params.decoding=flat)") from None
        for token, gold, pred in zip(tokens, tags["gold"], tags["pred"]):
            if not token or any(c.isspace() for c in token):
                raise ExportError(f"{where}, sentence {row.get('sentence', n)}: token {token!r} is empty or holds "
                                  f"whitespace and cannot be a column")
            lines.append(f"{token} {gold} {pred}")
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def export_run(run_dir: str | Path, splits: Sequence[str] | None = None, scheme: str = "BIO") -> list[Path]:
    """Write ``predictions_<split>.bio`` next to each ``predictions_<split>.json`` of ``run_dir`` (every split
    found, or ``splits``); returns the written paths (atomic writes)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    if splits:
        sources = [run_dir / f"predictions_{split}.json" for split in splits]
        missing = [str(p) for p in sources if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"no predictions file {', '.join(missing)}")
    else:
        sources = sorted(run_dir.glob("predictions_*.json"))
        if not sources:
            raise FileNotFoundError(f"no predictions_<split>.json in {run_dir}: is it the folder of a finished "
                                    f"NER run (kind: mrc_ner)?")
    written = []
    for source in sources:
        try:
            rows = json.loads(source.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ExportError(f"{source}: not valid JSON ({err})") from None
        if not (isinstance(rows, list) and all(isinstance(r, dict) and {"sentence", "tokens", "gold", "pred"} <= set(r)
                                               for r in rows)):
            raise ExportError(f"{source}: not BERT-MRC NER predictions (expected a list of {{sentence, tokens, gold, "
                              f"pred}} objects)")
        target = source.with_suffix(".bio")
        write_text_atomic(target, predictions_to_columns(rows, scheme, where=str(source)))
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dicenlp.export_ner",
        description="Write <run_dir>/predictions_<split>.bio (token gold predicted; conlleval/seqeval layout) "
                    "from the predictions_<split>.json of a BERT-MRC NER run (flat predictions only).")
    parser.add_argument("run_dir", help="the run folder (holds predictions_dev.json, predictions_test.json)")
    parser.add_argument("--split", action="append", dest="splits", metavar="SPLIT",
                        help="export only this split (repeatable; default: every predictions_*.json)")
    parser.add_argument("--scheme", default="BIO", choices=["BIO", "IOB1", "BIOES", "BMES"],
                        help="tag scheme of the gold and predicted columns (default BIO)")
    args = parser.parse_args(argv)
    try:
        for path in export_run(args.run_dir, args.splits, args.scheme):
            print(path)
    except (FileNotFoundError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
