"""POS tagging with BERT-Tagger (PAPER.md §3.1, Tables 3 and 4): ``kind: tagging``.

Two unit levels, one code path:

* **word level** (English WSJ, Tweets; UD words): each word is a unit with its POS tag;
* **character level** (``char_level=True``: CTB5, CTB6, Chinese UD 1.4): joint segmentation + POS; each
  character is a unit with a BIES×POS tag (``B-NN I-NN E-NN S-VV``, ``dicenlp.data.chinese_pos``).

Pipeline::

    files (columns | conllu | word_pos | char_bmes) or a Hub dataset ─► word-level sentences
      ─► units + unit tags ─► label vocabulary (training units only, sorted)
      ─► datasets.Dataset.map(batched=True): tokenizer(is_split_into_words=True, truncation=max_length),
         label on the FIRST sub-token of each unit, -100 elsewhere; cached as an Arrow file keyed by a
         hash of (units, labels, tokenizer, max_length): a second run does not re-tokenise
      ─► BertTagger: dropout + linear, [B, L, C] logits ─► loss_fn(logits, labels) (-100 ignored)
      ─► argmax on first sub-tokens ─► unit tags ─► span P/R/F1 against the ORIGINAL gold words.

Units cut off by truncation (or that the tokenizer maps to no sub-token at all) get no prediction and
count as misses: the metric is always computed against every gold word of the original corpus.
A dev/test tag never seen in training is reported with a warning; it cannot be predicted, so its words
count as misses too (their training label is -100).

Example (plain Python, no Hydra)::

    from dicenlp.tasks.tagging import TaggingTask
    from dicenlp.models.backbone import load_backbone
    from dicenlp.losses import build_loss
    task = TaggingTask(name="sample_pos", data_dir="data/samples/pos", max_length=128)
    tokenizer, encoder = load_backbone("tiny-bert")
    task.setup(tokenizer)
    model = task.build_model(encoder, build_loss("dsc"))
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from dicenlp.data.cache import FEATURE_CACHE, tokenizer_fingerprint
from dicenlp.data.chinese_pos import read_char_bmes_file, read_word_pos_file, word_char_spans, words_to_char_tags
from dicenlp.data.conll import Sentence, read_column_file
from dicenlp.data.conllu import read_conllu
from dicenlp.data.schemes import Span
from dicenlp.metrics.tagging import decode_spans, tagging_metrics
from dicenlp.models.tagger import BertTagger
from dicenlp.tasks.base import EvalResult, Task

log = logging.getLogger(__name__)

#: File layouts a tagging task can read (see ``dicenlp.data``).
FORMATS = ("columns", "conllu", "word_pos", "char_bmes")
#: Bump when the feature layout changes, so stale caches are never reused.
FEATURE_VERSION = 1


class TaggingTask(Task):
    """BERT-Tagger POS task. All arguments are plain values (``configs/task/<name>.yaml: params``).

    Args:
        name: dataset name as in the paper's tables (``ctb5``, ``wsj`` ...).
        data_dir: folder holding the split files (ignored when ``hub_name`` is set).
        files: ``{split: filename}`` for ``train``, ``dev`` and optionally ``test``; a null filename means no
            such file (a command-line ``files={train: x, dev: null, test: null}`` merges into the task's files).
        format: ``columns`` (``word<TAB/space>tag``), ``conllu``, ``word_pos`` (``word_TAG`` per sentence line)
            or ``char_bmes`` (``char<TAB>B-NN``).
        char_level: joint segmentation + POS over characters (BIES tags); else word level.
        token_col, tag_col, sep: for ``columns`` (see ``read_column_file``).
        conllu_tag: ``upos`` or ``xpos`` for ``conllu``.
        word_pos_delimiter: separator of word and tag in ``word_pos`` files.
        max_length: sub-tokens per sentence including special tokens; longer sentences are truncated
            (their lost units count as misses).
        cache_dir: where tokenised features are cached (default ``$DICENLP_CACHE/features`` or
            ``~/.cache/dicenlp/features``).
        hub_name, hub_config, hub_revision: load from the Hugging Face Hub with ``datasets.load_dataset``.
        hub_splits: ``{split: hub split name}``; hub_token_column / hub_tag_column: column names (the tag
            column may be a sequence of ``ClassLabel``).
        data_help: what to download and where to put it; shown when files are missing.
        dropout: the tagger head's dropout (None = the encoder's hidden dropout).
        max_examples, split_off, split_seed: caps and split-offs of the sentences (``dicenlp.data.subsets``);
            ``files`` may then lack the parts ``split_off`` creates.
    """

    primary_metric = "f1"

    def __init__(self, name: str = "pos", data_dir: str | None = None, files: Mapping[str, str] | None = None,
                 format: str = "columns", char_level: bool = False, token_col: int = 0, tag_col: int = -1,
                 sep: str | None = None, conllu_tag: str = "upos", word_pos_delimiter: str = "_",
                 max_length: int = 128, cache_dir: str | None = None, hub_name: str | None = None,
                 hub_config: str | None = None, hub_revision: str | None = None,
                 hub_splits: Mapping[str, str] | None = None, hub_token_column: str = "tokens",
                 hub_tag_column: str = "pos_tags", data_help: str | None = None,
                 dropout: float | None = None, max_examples: Mapping[str, int] | None = None,
                 split_off: Mapping[str, Any] | None = None, split_seed: int = 42) -> None:
        super().__init__(max_examples, split_off, split_seed)
        if format not in FORMATS:
            raise ValueError(f"unknown tagging data format {format!r}; expected one of {FORMATS}")
        self.name = name
        self.data_dir = Path(data_dir) if data_dir else None
        files = files or {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
        self.files = {split: name for split, name in files.items() if name}
        if "train" not in self.files:
            raise ValueError(f"files must name at least 'train', got {sorted(self.files)}")
        self.format = format
        self.char_level = bool(char_level)
        self.token_col, self.tag_col, self.sep = token_col, tag_col, sep
        self.conllu_tag = conllu_tag
        self.word_pos_delimiter = word_pos_delimiter
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3 (two special tokens and one word), got {max_length}")
        self.max_length = int(max_length)
        self.cache_dir = Path(cache_dir) if cache_dir else FEATURE_CACHE
        self.hub_name, self.hub_config, self.hub_revision = hub_name, hub_config, hub_revision
        self.hub_splits = dict(hub_splits or {"train": "train", "dev": "validation", "test": "test"})
        self.hub_token_column, self.hub_tag_column = hub_token_column, hub_tag_column
        self.data_help = data_help
        self.dropout = dropout
        self.scheme = "bies" if self.char_level else "word"
        # Filled by setup():
        self.labels: list[str] = []
        self.label_to_id: dict[str, int] = {}
        self.sentences: dict[str, list[Sentence]] = {}
        self.units: dict[str, list[list[str]]] = {}
        self.unit_tags: dict[str, list[list[str]]] = {}
        self.gold_spans: dict[str, list[list[Span]]] = {}
        self.unseen_labels: dict[str, dict[str, int]] = {}
        self.truncated: dict[str, int] = {}
        self._word_index: dict[str, list[np.ndarray]] = {}
        self._pad_id = 0

    # ----------------------------------------------------------------------------------- data
    def split_paths(self) -> dict[str, Path]:
        base = self.data_dir if self.data_dir is not None else Path(".")
        return {split: base / fname for split, fname in self.files.items()}

    def check_data(self) -> None:
        if self.hub_name:
            return  # downloaded by datasets.load_dataset in setup()
        missing = [str(p) for p in self.split_paths().values() if not p.is_file()]
        if missing:
            help_text = f"\n{self.data_help.strip()}" if self.data_help else ""
            raise FileNotFoundError(
                f"task {self.name!r}: missing data file(s) {', '.join(missing)} (format {self.format!r}; "
                f"set task.params.data_dir=... or put the files there; see docs/pos.md).{help_text}")

    def read_split(self, split: str) -> list[Sentence]:
        """Word-level sentences of one split, from files or the Hub."""
        if self.hub_name:
            return self._read_hub_split(split)
        path = self.split_paths()[split]
        if self.format == "columns":
            return read_column_file(path, token_col=self.token_col, tag_col=self.tag_col, sep=self.sep)
        if self.format == "conllu":
            return read_conllu(path, tag=self.conllu_tag)
        if self.format == "word_pos":
            return read_word_pos_file(path, delimiter=self.word_pos_delimiter)
        return read_char_bmes_file(path)

    def _read_hub_split(self, split: str) -> list[Sentence]:
        from datasets import ClassLabel, load_dataset

        hub_split = self.hub_splits[split]
        ds = load_dataset(self.hub_name, self.hub_config, revision=self.hub_revision, split=hub_split)
        feature = ds.features[self.hub_tag_column]
        inner = getattr(feature, "feature", None)
        names = inner.names if isinstance(inner, ClassLabel) else None
        sentences = []
        for i, (tokens, tags) in enumerate(zip(ds[self.hub_token_column], ds[self.hub_tag_column])):
            tags = [names[t] for t in tags] if names is not None else [str(t) for t in tags]
            if tokens:
                sentences.append(Sentence(list(tokens), tags, i + 1))
        if not sentences:
            raise ValueError(f"{self.hub_name} split {hub_split!r} has no sentences")
        return sentences

    def _to_units(self, sentences: list[Sentence]) -> tuple[list[list[str]], list[list[str]], list[list[Span]]]:
        """Units (words or characters), their tags and the gold spans (inclusive ends)."""
        if self.char_level:
            units, tags, spans = [], [], []
            for s in sentences:
                chars, bies = words_to_char_tags(s.tokens, s.tags)
                units.append(chars)
                tags.append(bies)
                spans.append(word_char_spans(s.tokens, s.tags))
            return units, tags, spans
        return ([list(s.tokens) for s in sentences], [list(s.tags) for s in sentences],
                [[(i, i, t) for i, t in enumerate(s.tags)] for s in sentences])

    def read_data(self) -> None:
        """Sentences, units and the label vocabulary of every split (data errors name file:line)."""
        if self.sentences:
            return
        self.check_data()
        self.sentences = self.plan_splits({s: self.read_split(s) for s in ("train", "dev", "test") if s in self.files})
        splits = list(self.sentences)
        for split in splits:
            self.units[split], self.unit_tags[split], self.gold_spans[split] = self._to_units(self.sentences[split])

        self.labels = sorted({t for tags in self.unit_tags["train"] for t in tags})
        self.label_to_id = {t: i for i, t in enumerate(self.labels)}
        for split in splits[1:]:
            counts = Counter(t for tags in self.unit_tags[split] for t in tags if t not in self.label_to_id)
            self.unseen_labels[split] = dict(sorted(counts.items()))
            if counts:
                listed = ", ".join(f"{t} ({n}x)" for t, n in sorted(counts.items()))
                warnings.warn(f"task {self.name!r}: {split} has {sum(counts.values())} unit(s) with label(s) never seen "
                              f"in training: {listed}. They cannot be predicted and count as misses.", stacklevel=2)

    def setup(self, tokenizer) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("TaggingTask needs a fast tokenizer (word_ids() aligns labels to sub-tokens)")
        self.read_data()
        splits = list(self.sentences)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        for split in splits:
            ds = self._tokenize(split, tokenizer)
            self.datasets[split] = ds
            self._word_index[split] = [np.asarray(w, dtype=np.int64) for w in ds["word_index"]]
            covered = [int((w >= 0).sum()) for w in self._word_index[split]]
            lost = [len(u) - c for u, c in zip(self.units[split], covered)]
            self.truncated[split] = sum(1 for n in lost if n > 0)
            if self.truncated[split]:
                warnings.warn(f"task {self.name!r}: {self.truncated[split]} {split} sentence(s) lose "
                              f"{sum(lost)} unit(s) to truncation at max_length={self.max_length} (or have units "
                              f"without sub-tokens); those units count as misses.", stacklevel=2)
        log.info("task %s: %s labels; sentences %s", self.name, len(self.labels),
                 {s: len(self.sentences[s]) for s in splits})

    # ----------------------------------------------------------------------------------- tokenisation
    def _cache_file(self, split: str, tokenizer) -> Path:
        """Arrow cache file of a split, keyed by everything the features depend on."""
        h = hashlib.sha256()
        h.update(json.dumps({"v": FEATURE_VERSION, "max_length": self.max_length, "labels": self.labels,
                             "tokenizer": type(tokenizer).__name__}).encode())
        h.update(tokenizer_fingerprint(tokenizer).encode())
        h.update(json.dumps([self.units[split], self.unit_tags[split]], ensure_ascii=False).encode())
        return self.cache_dir / "tagging" / f"{self.name}-{split}-{h.hexdigest()[:20]}.arrow"

    def _tokenize(self, split: str, tokenizer):
        from datasets import Dataset

        label_ids = [[self.label_to_id.get(t, -100) for t in tags] for tags in self.unit_tags[split]]
        raw = Dataset.from_dict({"tokens": self.units[split], "unit_labels": label_ids,
                                 "feature_index": list(range(len(label_ids)))})
        max_length = self.max_length

        def encode(batch: dict[str, list]) -> dict[str, list]:
            enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
            labels, word_index = [], []
            for i, unit_labels in enumerate(batch["unit_labels"]):
                lab, widx, prev = [], [], None
                for w in enc.word_ids(i):
                    first = w is not None and w != prev  # the first sub-token of unit w
                    lab.append(unit_labels[w] if first else -100)
                    widx.append(w if first else -1)
                    prev = w
                labels.append(lab)
                word_index.append(widx)
            out = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            return {**out, "labels": labels, "word_index": word_index}

        cache = self._cache_file(split, tokenizer)
        cache.parent.mkdir(parents=True, exist_ok=True)
        # new_fingerprint = our key: datasets need not hash the closure (and the tokenizer in it) to name it.
        return raw.map(encode, batched=True, remove_columns=["tokens", "unit_labels"], cache_file_name=str(cache),
                       load_from_cache_file=True, new_fingerprint=cache.stem.rsplit("-", 1)[-1],
                       desc=f"tokenising {self.name}/{split}")

    def collate(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Right-pad to the longest feature: ids with the pad id, masks with 0, labels with -100."""
        length = max(len(f["input_ids"]) for f in features)
        pad_values = {"input_ids": self._pad_id, "attention_mask": 0, "token_type_ids": 0, "labels": -100}
        batch = {}
        for key, pad in pad_values.items():
            if key in features[0]:
                batch[key] = torch.tensor([list(f[key]) + [pad] * (length - len(f[key])) for f in features],
                                          dtype=torch.long)
        batch["feature_index"] = torch.tensor([f["feature_index"] for f in features], dtype=torch.long)
        return batch

    def label_counts(self) -> torch.Tensor:
        """Training-label counts per class (first sub-tokens that survive truncation)."""
        labels = np.concatenate([np.asarray(x, dtype=np.int64) for x in self.datasets["train"]["labels"]])
        return torch.from_numpy(np.bincount(labels[labels >= 0], minlength=len(self.labels)))

    # ----------------------------------------------------------------------------------- model and loss
    def build_model(self, encoder: nn.Module, loss_fn: nn.Module) -> nn.Module:
        """A C-way softmax head for every loss (POS tags are multi-class; see ``dicenlp.models.tagger``)."""
        if not self.labels:
            raise RuntimeError("call setup(tokenizer) before build_model: the label set comes from training data")
        return BertTagger(encoder, num_labels=len(self.labels), dropout=self.dropout)

    def compute_loss(self, outputs, batch, loss_fn) -> torch.Tensor:
        """``loss_fn(logits [B, L, C], labels [B, L])``; only first sub-tokens carry a label (others -100)."""
        return loss_fn(outputs["logits"].float(), batch["labels"])

    # ----------------------------------------------------------------------------------- evaluation
    def eval_outputs(self, outputs, batch) -> dict[str, torch.Tensor]:
        predictions = outputs["logits"].argmax(dim=-1).masked_fill(batch["attention_mask"] == 0, -100)
        return {"predictions": predictions, "feature_index": batch["feature_index"]}

    def predicted_unit_tags(self, split: str, predictions: np.ndarray) -> list[list[str | None]]:
        """Unit tags from sub-token predictions [N, L≥len]; ``None`` where a unit has no first sub-token."""
        out = []
        for i, word_index in enumerate(self._word_index[split]):
            tags: list[str | None] = [None] * len(self.units[split][i])
            first = word_index >= 0
            for unit, label in zip(word_index[first].tolist(), predictions[i, :len(word_index)][first].tolist()):
                tags[unit] = self.labels[label]
            out.append(tags)
        return out

    def evaluate(self, split: str, gathered: Mapping[str, np.ndarray]) -> EvalResult:
        pred_tags = self.predicted_unit_tags(split, gathered["predictions"])
        m = tagging_metrics(self.unit_tags[split], pred_tags, self.scheme, gold_spans=self.gold_spans[split])
        metrics = {k: m[k] for k in ("precision", "recall", "f1", "accuracy")}
        metrics["truncated_sentences"] = float(self.truncated.get(split, 0))
        predictions = []
        for s, tags in enumerate(pred_tags):
            item: dict[str, Any] = {"tokens": self.units[split][s], "gold": self.unit_tags[split][s], "pred": tags}
            if self.char_level:
                item["pred_words"] = [["".join(self.units[split][s][a:b + 1]), t]
                                      for a, b, t in decode_spans([tags], "bies")[0]]
            predictions.append(item)
        return EvalResult(metrics=metrics, predictions=predictions)
