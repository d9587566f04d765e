#!/usr/bin/env python
"""`make data`: write the public datasets' Hub copies into data/ in the layouts the readers read.

    python scripts/prepare_data.py                 # every public dataset
    python scripts/prepare_data.py conll03 mrpc    # some of them
    python scripts/prepare_data.py --list          # what is public and what must be obtained by hand

Needs network (the Hugging Face Hub). A dataset already in place is skipped. Datasets that must be obtained by
hand (LDC: CTB5/6, WSJ, OntoNotes 4/5; MSRA, UD 1.4, Tweets, QuoRef, MRPC's test file) are listed with the task's
own instructions (docs/pos.md, ner.md, mrc.md, classification.md).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "data"
sys.path.insert(0, str(REPO_ROOT / "src"))

from dicenlp.files import write_json_atomic  # noqa: E402


def conll03(target: Path) -> list[Path]:
    """CoNLL-2003 English (IOB2) from the Hub → train.txt / dev.txt / test.txt column files."""
    from dicenlp.data.mrc_ner import load_hub_ner, write_tagged_file

    written = []
    for split, sentences in load_hub_ner().items():
        path = target / f"{split}.txt"
        write_tagged_file(path, sentences, scheme="BIO")
        written.append(path)
    return written


def _squad_json(rows, version: str) -> dict:
    """Hub rows (id, title, context, question, answers) → the official SQuAD JSON layout."""
    articles: dict[str, dict[str, list]] = defaultdict(dict)
    for row in rows:
        paragraph = articles[row["title"]].setdefault(row["context"], [])
        answers = [{"text": t, "answer_start": int(s)} for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"])]
        qa = {"id": row["id"], "question": row["question"], "answers": answers}
        if version == "v2.0":
            qa["is_impossible"] = not answers
        paragraph.append(qa)
    data = [{"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}
            for title, paragraphs in articles.items()]
    return {"version": version, "data": data}


def squad(target: Path, name: str = "rajpurkar/squad", version: str = "v1.1") -> list[Path]:
    import datasets

    written = []
    for hub_split, split in (("train", "train"), ("validation", "dev")):
        rows = datasets.load_dataset(name, split=hub_split)
        path = target / f"{split}-{version}.json"
        write_json_atomic(path, _squad_json(rows, version), indent=None)
        written.append(path)
    return written


def glue(dataset: str):
    def prepare(target: Path) -> list[Path]:
        from dicenlp.data.glue import download

        return list(download(dataset, target).values())

    prepare.__doc__ = f"{dataset} from the Hub copies (dicenlp.data.glue.HUB_SOURCES) → the local layout"
    return prepare


#: name → (folder under data/, a file whose presence means "done", preparer)
PUBLIC = {
    "conll03": ("conll03", "train.txt", conll03),
    "squad": ("squad", "train-v1.1.json", lambda t: squad(t, "rajpurkar/squad", "v1.1")),
    "squad2": ("squad2", "train-v2.0.json", lambda t: squad(t, "rajpurkar/squad_v2", "v2.0")),
    "mrpc": ("glue/MRPC", "train.tsv", glue("mrpc")),
    "qqp": ("glue/QQP", "train.tsv", glue("qqp")),
    "sst2": ("glue/SST-2", "train.tsv", glue("sst2")),
    "sst5": ("sst5", "train.jsonl", glue("sst5")),
}
BY_HAND = {
    "ctb5, ctb6": "LDC2005T01 / LDC2007T36 → data/ctb5, data/ctb6 (docs/pos.md)",
    "wsj": "Penn Treebank WSJ (LDC99T42) → data/wsj (docs/pos.md)",
    "ud14": "Universal Dependencies 1.4 (LINDAT) → data/ud14 (docs/pos.md)",
    "ud_en": "UD English-EWT (github.com/UniversalDependencies/UD_English-EWT) → data/ud_en (docs/pos.md)",
    "tweets": "Ritter et al. 2011 Twitter POS → data/tweets (docs/pos.md)",
    "ontonotes5, ontonotes4": "LDC2013T19 / LDC2011T03 → data/ontonotes5, data/ontonotes4 (docs/ner.md)",
    "msra": "SIGHAN 2006 MSRA NER → data/msra (docs/ner.md)",
    "quoref": "allennlp.org/quoref (SQuAD layout) → data/quoref (docs/mrc.md)",
    "mrpc test": "msr_paraphrase_test.txt (labeled) → data/glue/MRPC (docs/classification.md)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(PUBLIC)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list public and by-hand datasets, then exit")
    args = parser.parse_args(argv)
    if args.list:
        print("public (make data):\n  " + "\n  ".join(f"{k:8s} → data/{v[0]}" for k, v in PUBLIC.items()))
        print("by hand:\n  " + "\n  ".join(f"{k}: {v}" for k, v in BY_HAND.items()))
        return 0
    unknown = sorted(set(args.names) - set(PUBLIC))
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; public ones: {sorted(PUBLIC)}")
    failed = []
    for name in args.names or list(PUBLIC):
        folder, marker, prepare = PUBLIC[name]
        target = DATA / folder
        if (target / marker).exists():
            print(f"{name}: already in {target}")
            continue
        print(f"{name}: downloading into {target} …", flush=True)
        try:
            for path in prepare(target):
                print(f"  wrote {path.relative_to(REPO_ROOT)}")
        except Exception as err:  # noqa: BLE001 - report every dataset, then fail at the end
            failed.append(name)
            print(f"{name}: FAILED ({type(err).__name__}: {str(err)[:300]})", file=sys.stderr)
    print("\nto obtain by hand:\n  " + "\n  ".join(f"{k}: {v}" for k, v in BY_HAND.items()))
    if failed:
        print(f"\nfailed: {', '.join(failed)} (no network? the Hub must be reachable)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
