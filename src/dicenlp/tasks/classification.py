"""Sentence and sentence-pair classification (PAPER.md §3.4–3.6; Tables 7, 8, 9): ``kind: classification``.

Datasets: ``mrpc`` and ``qqp`` (pairs, binary, F1 of the positive class = paraphrase / duplicate), ``sst2``
(binary sentiment, accuracy), ``sst5`` (5 classes, accuracy and macro-F1). Files and layouts:
``dicenlp.data.glue``; the QQP training-set variants of Table 8: ``dicenlp.data.qqp_augment``.

Pipeline::

    local files (data_dir) or the Hub copies ─► Examples per split (train, dev, test when labeled)
      ─► QQP only: the Table 8 variant of the training set (seeded, printed sizes and ratios)
      ─► datasets.Dataset.map(batched=True): tokenizer(text_a[, text_b], truncation, max_length), cached as an
         Arrow file keyed by a hash of (texts, labels, tokenizer, max_length)
      ─► SequenceClassifier: summary vector (BERT pooler / XLNet last token) → dropout → linear, K logits
      ─► loss_fn(logits, labels): K = 1 → binary (sigmoid; the dice family's set-level dice over the batch),
         K = C → softmax (the dice family one-vs-rest per class)
      ─► predictions (logit > 0 for K = 1, argmax otherwise) ─► metrics against the split's gold labels.

The head follows from the task × loss pair by ONE rule (``num_outputs``), shared with every task through
``binary_output_form``: a binary task under ``dl``/``tl``/``dsc`` gets 1 logit + sigmoid (as the official MRPC
code); under ``ce``/``wce``/``fl`` a 2-way softmax; a multi-class task (SST-5) a C-way softmax for every loss.

Evaluation splits: ``dev`` selects the checkpoint; ``test`` is built only when labeled data exist (MRPC:
``msr_paraphrase_test.txt``; SST-2: a labeled ``test.tsv`` or the Hub's ``SetFit/sst2`` test; SST-5: always).
GLUE's own test files carry no labels and are never scored. See docs/classification.md.

Example (plain Python, no Hydra)::

    from dicenlp.tasks.classification import ClassificationTask
    from dicenlp.models.backbone import load_backbone
    task = ClassificationTask(dataset="mrpc", data_dir="data/samples/glue/MRPC")
    tokenizer, encoder = load_backbone("tiny-bert")
    task.setup(tokenizer)
    model = task.build_model(encoder, "dsc")      # 1 logit + sigmoid
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from dicenlp.data.cache import FEATURE_CACHE, tokenizer_fingerprint
from dicenlp.data.glue import DATASETS, HUB_SOURCES, Examples, load_hub, local_files, read_local
from dicenlp.data.qqp_augment import VARIANTS, make_variant
from dicenlp.metrics.classification import classification_metrics
from dicenlp.models.classifier import SequenceClassifier
from dicenlp.tasks.base import EvalResult, Task, binary_output_form

log = logging.getLogger(__name__)

#: Bump when the feature layout changes, so stale caches are never reused.
FEATURE_VERSION = 1
SOURCES = ("auto", "local", "hub")

#: What to put where, per dataset (shown when the data is missing).
DATA_HELP = {
    "mrpc": "GLUE MRPC: train.tsv and dev.tsv (GLUE's download_glue_data.py), or Microsoft's msr_paraphrase_train.txt "
            "+ mrpc_dev_ids.tsv; for the test split also msr_paraphrase_test.txt (labeled, 1,725 pairs)",
    "qqp": "GLUE QQP: train.tsv and dev.tsv (id qid1 qid2 question1 question2 is_duplicate)",
    "sst2": "GLUE SST-2: train.tsv and dev.tsv (sentence label); for the test split a labeled test.tsv "
            "(sentence label: SST's 1,821 test sentences, e.g. the test split of SetFit/sst2)",
    "sst5": "SST-5: train/dev/test as .tsv (sentence label) or .jsonl (text, label; the SetFit/sst5 files)",
}


HEADS = ("sigmoid", "softmax")


def num_outputs(num_labels: int, loss_name: str, head: str | None = None) -> int:
    """Logits per example for a task with ``num_labels`` classes under ``loss_name`` (THE head rule).

    Binary tasks follow ``binary_output_form``: ``"sigmoid"`` → 1 logit, ``"softmax"`` → 2 logits.
    Multi-class tasks always get ``num_labels`` logits (softmax; the dice family is one-vs-rest in the loss).
    ``head`` overrides the binary form: ``"softmax"`` under ``dsc`` gives 2 logits, and the dice is then
    computed for both classes and averaged (the dice lag study, docs/classification.md).
    """
    if num_labels < 2:
        raise ValueError(f"a classification task needs at least 2 classes, got {num_labels}")
    form = binary_output_form(loss_name)  # also validates the loss name
    if head is not None:
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS} or null (the loss's rule), not {head!r}")
        form = head
    if num_labels == 2 and form == "sigmoid":
        return 1
    return num_labels


def decode(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prediction [B] long, score [B] float)`` from ``[B, K]`` logits.

    K = 1: prediction = 1 iff sigmoid(logit) > 0.5 (logit > 0); score = sigmoid(logit) = P(class 1).
    K = 2: prediction = argmax; score = softmax(...)[:, 1] = P(class 1).
    K > 2: prediction = argmax; score = the winning class's probability.
    """
    logits = logits.float()
    if logits.shape[-1] == 1:
        score = torch.sigmoid(logits[:, 0])
        return (logits[:, 0] > 0).long(), score
    probs = torch.softmax(logits, dim=-1)
    pred = probs.argmax(dim=-1)
    score = probs[:, 1] if logits.shape[-1] == 2 else probs.gather(1, pred[:, None])[:, 0]
    return pred, score


def _hub_dataset_available(repo: str) -> bool:
    """The Hub answers for ``repo`` (one request, 10 s timeout, no retries), or ``datasets`` has it cached."""
    try:
        from huggingface_hub import HfApi

        HfApi().dataset_info(repo, timeout=10)
        return True
    except Exception:  # offline mode, no network, unknown repo
        import datasets.config

        return (Path(datasets.config.HF_DATASETS_CACHE) / repo.replace("/", "___")).is_dir()


class ClassificationTask(Task):
    """MRPC / QQP / SST-2 / SST-5. All arguments are plain values (``configs/task/<name>.yaml: params``).

    Args:
        dataset: ``mrpc``, ``qqp``, ``sst2`` or ``sst5`` (layout, number of classes, Hub source).
        data_dir: folder with the files (``dicenlp.data.glue``); None → the Hub.
        source: ``auto`` (local files when present, else the Hub), ``local`` or ``hub``.
        max_length: sub-tokens per example including special tokens (pairs: ``longest_first`` truncation).
        primary_metric: selects the best checkpoint (``f1`` for MRPC/QQP, ``accuracy`` for SST).
        variant: QQP training-set variant of Table 8 (``original`` | ``plus_positive`` | ``plus_negative`` |
            ``minus_negative`` | ``plus_both``); the dev/test sets are never changed.
        variant_seed: seed of the variant (fixed per dataset, independent of the training seed, so every loss
            of Table 8 trains on the same set).
        min_mention_count: lexicon threshold of the augmentation (``dicenlp.data.qqp_augment``).
        on_bad_row: ``error`` (default) or ``skip`` rows with a missing/extra column or a bad label.
        require_test: ``check_data`` also demands a labeled test split (set by the paper cells reported on test).
        max_train_examples, max_eval_examples: keep only the first N examples (smoke runs); None = all.
        cache_dir: tokenised-feature cache (default ``$DICENLP_CACHE/features`` or ``~/.cache/dicenlp/features``).
        dropout: the head's dropout (None = the encoder's hidden dropout).
        head: a binary task's head, ``"sigmoid"`` (1 logit) or ``"softmax"`` (2 logits); None = the loss's
            rule (``num_outputs``).
        name: the run's task name (defaults to ``dataset``).
    """

    def __init__(self, dataset: str = "mrpc", data_dir: str | None = None, source: str = "auto",
                 max_length: int = 128, primary_metric: str | None = None, variant: str = "original",
                 variant_seed: int = 0, min_mention_count: int = 2, on_bad_row: str = "error",
                 require_test: bool = False, max_train_examples: int | None = None,
                 max_eval_examples: int | None = None,
                 cache_dir: str | None = None, dropout: float | None = None, name: str | None = None,
                 head: str | None = None) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(f"unknown classification dataset {dataset!r}; expected one of {sorted(DATASETS)}")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
        if variant != "original" and dataset != "qqp":
            raise ValueError(f"training-set variants (Table 8) are defined for qqp only, not {dataset!r}")
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3, got {max_length}")
        self.dataset = dataset
        self.name = name or dataset
        self.layout, self.num_labels = DATASETS[dataset]
        self.pair = self.layout.text_b is not None
        self.data_dir = Path(data_dir) if data_dir else None
        self.source = source
        self.max_length = int(max_length)
        self.primary_metric = primary_metric or ("f1" if self.num_labels == 2 and self.pair else "accuracy")
        self.variant, self.variant_seed, self.min_mention_count = variant, int(variant_seed), int(min_mention_count)
        self.on_bad_row = on_bad_row
        self.require_test = bool(require_test)
        self.max_train_examples, self.max_eval_examples = max_train_examples, max_eval_examples
        self.cache_dir = Path(cache_dir) if cache_dir else FEATURE_CACHE
        self.dropout = dropout
        if head is not None and head not in HEADS:
            raise ValueError(f"head must be one of {HEADS} or null (the loss's rule), not {head!r}")
        self.head = head
        # Filled by setup():
        self.examples: dict[str, Examples] = {}
        self.variant_report: dict[str, Any] | None = None
        self._pad = {"input_ids": 0, "token_type_ids": 0, "attention_mask": 0}
        self._left_pad = False

    # ----------------------------------------------------------------------------------- data
    def _use_local(self) -> bool:
        if self.source == "hub":
            return False
        have = self.data_dir is not None and {"train", "dev"} <= set(local_files(self.dataset, self.data_dir))
        return have or self.source == "local"

    def check_data(self) -> None:
        """Local files present → fine. Otherwise (source auto/hub) the Hub copy must be reachable or cached.
        With ``require_test`` a labeled test split must exist too (the cells whose paper number is on test)."""
        if self._use_local():
            files = local_files(self.dataset, self.data_dir) if self.data_dir is not None else {}
            missing = [s for s in ("train", "dev") + (("test",) if self.require_test else ()) if s not in files]
            if missing:
                raise FileNotFoundError(
                    f"task {self.name!r}: no {self.dataset} {'/'.join(missing)} file(s) in {self.data_dir} "
                    f"({DATA_HELP[self.dataset]}). Set task.params.data_dir=... ; see docs/classification.md.")
            return
        if self.require_test and "test" not in HUB_SOURCES[self.dataset]:
            raise FileNotFoundError(
                f"task {self.name!r}: the labeled test split is not on the Hub copy of {self.dataset} and no local "
                f"files were found in {self.data_dir} ({DATA_HELP[self.dataset]}); see docs/classification.md.")
        repos = sorted({repo for repo, *_ in HUB_SOURCES[self.dataset].values()})
        unreachable = [repo for repo in repos if not _hub_dataset_available(repo)]
        if unreachable:
            raise FileNotFoundError(
                f"task {self.name!r}: no local {self.dataset} files in {self.data_dir} and the Hub copy "
                f"({', '.join(unreachable)}) is neither reachable nor cached. Put the files there: "
                f"{DATA_HELP[self.dataset]}; see docs/classification.md.")

    def read_splits(self) -> dict[str, Examples]:
        """Every labeled split (train, dev, test when available), before any variant or limit."""
        if self._use_local():
            self.check_data()
            splits = read_local(self.dataset, self.data_dir, self.on_bad_row)
        else:
            splits = load_hub(self.dataset)
        if "test" not in splits:
            if self.require_test:
                raise FileNotFoundError(f"task {self.name!r}: no labeled test split ({DATA_HELP[self.dataset]})")
            log.info("task %s: no labeled test split (%s); dev is the evaluation set", self.name,
                     DATA_HELP[self.dataset])
        return splits

    def setup(self, tokenizer) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("ClassificationTask needs a fast tokenizer")
        splits = self.read_splits()
        if self.variant != "original":
            splits["train"], report = make_variant(splits["train"], self.variant, self.variant_seed,
                                                   self.min_mention_count)
            self.variant_report = report.as_dict()
            print(report, flush=True)  # the achieved size and ratio belong in every Table 8 log
        splits["train"] = splits["train"].head(self.max_train_examples)
        for split in ("dev", "test"):
            if split in splits:
                splits[split] = splits[split].head(self.max_eval_examples)
        for split, ex in splits.items():
            if len(ex) == 0:
                raise ValueError(f"task {self.name!r}: split {split!r} ({ex.source}) has no examples")
        self.examples = splits
        self._pad = {"input_ids": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
                     "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0), "attention_mask": 0}
        self._left_pad = tokenizer.padding_side == "left"  # XLNet: <cls> last, padding on the left
        for split, ex in splits.items():
            self.datasets[split] = self._tokenize(split, ex, tokenizer)
        log.info("task %s: %s", self.name, {s: len(e) for s, e in splits.items()})

    def _cache_file(self, split: str, ex: Examples, tokenizer) -> Path:
        h = hashlib.sha256()
        h.update(json.dumps({"v": FEATURE_VERSION, "max_length": self.max_length, "pair": self.pair,
                             "tokenizer": type(tokenizer).__name__}).encode())
        h.update(tokenizer_fingerprint(tokenizer).encode())
        h.update(json.dumps([ex.text_a, ex.text_b, ex.label.tolist()], ensure_ascii=False).encode())
        return self.cache_dir / "classification" / f"{self.name}-{split}-{h.hexdigest()[:20]}.arrow"

    def _tokenize(self, split: str, ex: Examples, tokenizer):
        from datasets import Dataset

        raw = Dataset.from_dict({**ex.to_dict(), "feature_index": list(range(len(ex)))})
        max_length, pair = self.max_length, self.pair

        def encode(batch: dict[str, list]) -> dict[str, list]:
            # Segment ids always: XLNet's tokenizer omits them by default, but XLNet's classifier uses them.
            enc = tokenizer(batch["text_a"], batch["text_b"] if pair else None, truncation=True,
                            max_length=max_length, return_token_type_ids=True, return_attention_mask=False)
            return {k: v for k, v in enc.items() if k in ("input_ids", "token_type_ids")}

        cache = self._cache_file(split, ex, tokenizer)
        cache.parent.mkdir(parents=True, exist_ok=True)
        drop = [c for c in ("id", "text_a", "text_b") if c in raw.column_names]
        return raw.map(encode, batched=True, batch_size=2000, remove_columns=drop, cache_file_name=str(cache),
                       load_from_cache_file=True, desc=f"tokenising {self.name}/{split}")

    def collate(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad to the longest feature (on the tokenizer's side: left for XLNet) and build the attention mask."""
        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths)
        batch = {}
        for key in ("input_ids", "token_type_ids"):
            if key not in features[0]:
                continue
            out = np.full((len(features), width), self._pad[key], dtype=np.int64)
            for row, (f, n) in enumerate(zip(features, lengths)):
                if self._left_pad:
                    out[row, width - n:] = f[key]
                else:
                    out[row, :n] = f[key]
            batch[key] = torch.from_numpy(out)
        positions = np.arange(width)[None, :]
        n = np.asarray(lengths)[:, None]
        mask = positions >= width - n if self._left_pad else positions < n
        batch["attention_mask"] = torch.from_numpy(mask.astype(np.int64))
        batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
        batch["feature_index"] = torch.tensor([f["feature_index"] for f in features], dtype=torch.long)
        return batch

    def label_counts(self) -> torch.Tensor:
        """Training-label counts per class, ``[num_labels]`` (after the variant; for WCE weights)."""
        labels = np.asarray(self.datasets["train"]["label"], dtype=np.int64)
        return torch.from_numpy(np.bincount(labels, minlength=self.num_labels))

    # ----------------------------------------------------------------------------------- model and loss
    def build_model(self, encoder: nn.Module, loss_name: str) -> nn.Module:
        return SequenceClassifier(encoder, num_outputs(self.num_labels, loss_name, self.head), dropout=self.dropout)

    def compute_loss(self, outputs, batch, loss_fn) -> torch.Tensor:
        """``loss_fn(logits [B], labels [B])`` (binary, one logit) or ``loss_fn(logits [B, C], labels [B])``.

        With one logit the dice family computes one set-level dice over the examples of the batch
        (``reduction: batch``, PAPER.md Eq. 8; the official MRPC code), CE is binary cross-entropy."""
        logits = outputs["logits"].float()
        if logits.shape[-1] == 1:
            return loss_fn(logits[:, 0], batch["labels"])
        return loss_fn(logits, batch["labels"])

    # ----------------------------------------------------------------------------------- evaluation
    def eval_outputs(self, outputs, batch) -> dict[str, torch.Tensor]:
        pred, score = decode(outputs["logits"])
        return {"pred": pred, "score": score, "feature_index": batch["feature_index"]}

    def evaluate(self, split: str, gathered: Mapping[str, np.ndarray]) -> EvalResult:
        ex = self.examples[split]
        pred = np.asarray(gathered["pred"], dtype=np.int64)
        metrics = classification_metrics(pred, ex.label, self.num_labels)
        predictions = [{"id": i, "label": int(y), "pred": int(p), "score": round(float(s), 6)}
                       for i, y, p, s in zip(ex.ids, ex.label.tolist(), pred.tolist(), gathered["score"].tolist())]
        extra = {"train_set.json": self.train_set_info()}
        return EvalResult(metrics=metrics, predictions=predictions, extra_files=extra)

    def train_set_info(self) -> dict[str, Any]:
        """What the model was trained on: sizes, label counts, sources and the Table 8 variant report."""
        counts = np.bincount(self.examples["train"].label, minlength=self.num_labels).tolist()
        return {"dataset": self.dataset, "variant": self.variant, "variant_seed": self.variant_seed,
                "sizes": {s: len(e) for s, e in self.examples.items()}, "train_label_counts": counts,
                "sources": {s: e.source for s, e in self.examples.items()}, "variant_report": self.variant_report}
